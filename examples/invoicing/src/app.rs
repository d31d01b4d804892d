//! The HTTP service: customers and invoices (with their lines) over axum, behind JWTs.
//!
//! Every handler reaches the database one way: the [`Tenant`] extractor verifies the caller's token
//! with the [`JwtVerifier`] of [`crate::idp`] (signature, `iss`, `aud`,
//! `exp`, and the subject's membership of the token's tenant, in the database) and yields its
//! `TenantContext`; `db.scope(&ctx)` is then the handler's only handle. Ids are the legacy integers.
//!
//! | route | permission | another tenant's id, or one that never existed |
//! |---|---|---|
//! | `GET /customers` | `invoices.read` | (lists this tenant's only) |
//! | `POST /customers` | `invoices.write` | |
//! | `GET /customers/{id}` | `invoices.read` | 404 |
//! | `POST /invoices` | `invoices.write` | a `customer_id` or `product_id` of another tenant: 404, nothing written |
//! | `GET /invoices/{id}` | `invoices.read` | 404 |
//! | `DELETE /invoices/{id}` | `invoices.write` | 404 (403 only for an own invoice without the permission) |

use axum::extract::{DefaultBodyLimit, FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::ColumnTrait;
use serde::{Deserialize, Serialize};
use tenant_scope::http::{ApiError, Tenant, TenantResolver, request_id_layer};
use tenant_scope::{Error, JwtVerifier, TenantDb, TenantScope};

use crate::entities::{customers, invoice_lines, invoices, products};

/// The permission to read customers and invoices.
pub const READ: &str = "invoices.read";
/// The permission to create customers and create or delete invoices.
pub const WRITE: &str = "invoices.write";
/// The largest request body accepted; a larger one is 413.
pub const BODY_LIMIT: usize = 32 * 1024;
/// The most lines an invoice may have.
pub const MAX_LINES: usize = 100;
const MAX_TEXT: usize = 200;

type ApiResult<T> = Result<T, ApiError>;

/// The router's state; [`Tenant`] finds the resolver through `FromRef`.
#[derive(Clone, Debug)]
struct AppState {
    resolver: TenantResolver,
}

impl FromRef<AppState> for TenantResolver {
    fn from_ref(state: &AppState) -> Self {
        state.resolver.clone()
    }
}

/// The base domain under which a subdomain names a tenant by its slug: `acme.invoicing.localhost`
/// (`*.localhost` is the loopback address for curl and browsers). A request to another host (such
/// as `127.0.0.1:3001`) is served as its token's tenant.
pub const BASE_DOMAIN: &str = "invoicing.localhost";

/// The service, authenticating callers with `verifier`; `request_id_layer` outermost, so every
/// error (the extractors' rejections too) has the one JSON shape. A host under [`BASE_DOMAIN`]
/// must name the token's tenant (by slug or id), or the request is the same 401 as a bad token.
pub fn router(db: TenantDb, verifier: JwtVerifier) -> Router {
    let state = AppState {
        resolver: TenantResolver::with_verifier(db, verifier).subdomains(BASE_DOMAIN),
    };
    Router::new()
        .route("/customers", get(list_customers).post(create_customer))
        .route("/customers/{id}", get(get_customer))
        .route("/invoices", axum::routing::post(create_invoice))
        .route("/invoices/{id}", get(get_invoice).delete(delete_invoice))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
        .layer(request_id_layer())
}

/// A new customer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// The name.
    pub name: String,
    /// The email, unique within the tenant.
    pub email: String,
}

/// One line of a new invoice.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewLine {
    /// The product, of the caller's tenant.
    pub product_id: i64,
    /// How many, at least 1.
    pub quantity: i64,
}

/// A new invoice and its lines.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewInvoice {
    /// The customer, of the caller's tenant.
    pub customer_id: i64,
    /// The invoice number, unique within the tenant.
    pub number: String,
    /// The lines (1 to [`MAX_LINES`]).
    pub lines: Vec<NewLine>,
}

/// An invoice with its lines, as the API answers it.
#[derive(Debug, Serialize)]
pub struct InvoiceView {
    /// The invoice.
    #[serde(flatten)]
    pub invoice: invoices::Model,
    /// Its lines, in id order.
    pub lines: Vec<invoice_lines::Model>,
}

fn text(field: &str, value: String) -> Result<String, Error> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_TEXT {
        return Err(Error::Invalid(format!(
            "`{field}` must be 1 to {MAX_TEXT} characters"
        )));
    }
    Ok(trimmed.to_owned())
}

async fn list_customers(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
) -> ApiResult<Json<Vec<customers::Model>>> {
    ctx.require(READ)?;
    let scope = app.resolver.db().scope(&ctx);
    let rows = scope
        .find::<customers::Entity>()
        .order_by_asc(customers::Column::Id)
        .all()
        .await?;
    Ok(Json(rows))
}

async fn create_customer(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Json(body): Json<NewCustomer>,
) -> ApiResult<(StatusCode, Json<customers::Model>)> {
    ctx.require(WRITE)?;
    let scope = app.resolver.db().scope(&ctx);
    let customer = scope
        .insert(customers::ActiveModel {
            name: Set(text("name", body.name)?),
            email: Set(text("email", body.email)?),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await?;
    Ok((StatusCode::CREATED, Json(customer)))
}

async fn get_customer(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path(id): Path<i64>,
) -> ApiResult<Json<customers::Model>> {
    let scope = app.resolver.db().scope(&ctx);
    Ok(Json(scope.authorize::<customers::Entity>(id, READ).await?))
}

/// Inserts `invoice` and its lines in `scope`'s tenant (call it inside a transaction). A customer
/// or product that is not this tenant's is [`Error::NotFound`], like one that never existed: the
/// composite foreign keys refuse it.
pub async fn insert_invoice(
    scope: &TenantScope<'_>,
    invoice: NewInvoice,
) -> Result<InvoiceView, Error> {
    if invoice.lines.is_empty() || invoice.lines.len() > MAX_LINES {
        return Err(Error::Invalid(format!(
            "an invoice has 1 to {MAX_LINES} lines"
        )));
    }
    if invoice.lines.iter().any(|l| l.quantity < 1) {
        return Err(Error::Invalid("a quantity is at least 1".into()));
    }
    let row = scope
        .insert(invoices::ActiveModel {
            customer_id: Set(invoice.customer_id),
            number: Set(text("number", invoice.number)?),
            status: Set("open".to_owned()),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await?;
    let mut lines = Vec::with_capacity(invoice.lines.len());
    for line in invoice.lines {
        lines.push(
            scope
                .insert(invoice_lines::ActiveModel {
                    invoice_id: Set(row.id),
                    product_id: Set(line.product_id),
                    quantity: Set(line.quantity),
                    ..Default::default()
                })
                .await?,
        );
    }
    Ok(InvoiceView {
        invoice: row,
        lines,
    })
}

async fn create_invoice(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Json(body): Json<NewInvoice>,
) -> ApiResult<(StatusCode, Json<InvoiceView>)> {
    ctx.require(WRITE)?;
    let view = app
        .resolver
        .db()
        .transaction(&ctx, |scope| Box::pin(insert_invoice(scope, body)))
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn get_invoice(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path(id): Path<i64>,
) -> ApiResult<Json<InvoiceView>> {
    let scope = app.resolver.db().scope(&ctx);
    let invoice = scope.authorize::<invoices::Entity>(id, READ).await?;
    let lines = scope
        .find::<invoice_lines::Entity>()
        .filter(invoice_lines::Column::InvoiceId.eq(invoice.id))
        .order_by_asc(invoice_lines::Column::Id)
        .all()
        .await?;
    Ok(Json(InvoiceView { invoice, lines }))
}

async fn delete_invoice(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let scope = app.resolver.db().scope(&ctx);
    // 404 for another tenant's invoice (or none), before the permission: a 403 never tells that an
    // id exists elsewhere.
    scope.authorize::<invoices::Entity>(id, WRITE).await?;
    scope.delete::<invoices::Entity>(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A product of `scope`'s tenant (for the seed).
pub(crate) async fn insert_product(
    scope: &TenantScope<'_>,
    sku: &str,
    name: &str,
    unit_price_cents: i64,
) -> Result<products::Model, Error> {
    scope
        .insert(products::ActiveModel {
            sku: Set(sku.to_owned()),
            name: Set(name.to_owned()),
            unit_price_cents: Set(unit_price_cents),
            ..Default::default()
        })
        .await
}
