//! Data for the example and its tests: the legacy rows (written before tenancy, as the old
//! application wrote them: no tenant, ids from the database), and after adoption a second tenant
//! with rows of its own, and each tenant's users.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
// tenant-scope: allow(connection-trait, connection-type) the legacy application's own writes, as the schema owner, before tenancy exists
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, StatementBuilder};
use tenant_scope::{Error, TenantDb, TenantId, TenantScope, provision};
use uuid::Uuid;

use crate::app::{self, NewInvoice, NewLine};

/// The legacy customers: (name, email).
const CUSTOMERS: [(&str, &str); 3] = [
    ("Wile E. Coyote", "wile@acme.test"),
    ("Road Runner", "beep@acme.test"),
    ("Marvin", "marvin@acme.test"),
];
/// The legacy products: (sku, name, unit price in cents).
const PRODUCTS: [(&str, &str, i64); 3] = [
    ("ANVIL-1", "Anvil", 4_999),
    ("SKATES-R", "Rocket skates", 12_999),
    ("SEED-5", "Bird seed, 5 kg", 299),
];
/// One legacy invoice: (number, customer email, lines as (sku, quantity)).
type LegacyInvoice = (&'static str, &'static str, &'static [(&'static str, i64)]);
/// The legacy invoices.
const INVOICES: [LegacyInvoice; 4] = [
    (
        "A-1001",
        "wile@acme.test",
        &[("ANVIL-1", 2), ("SKATES-R", 1)],
    ),
    ("A-1002", "wile@acme.test", &[("SEED-5", 40)]),
    ("A-1003", "marvin@acme.test", &[("ANVIL-1", 1)]),
    (
        "A-1004",
        "beep@acme.test",
        &[("SEED-5", 1), ("SKATES-R", 2)],
    ),
];

// tenant-scope: allow(connection-type) the legacy application's own writes, as the schema owner, before tenancy exists
async fn run<S: StatementBuilder>(db: &DatabaseConnection, stmt: &S) -> Result<(), DbErr> {
    db.execute(stmt).await.map(drop)
}

/// The id of the row of `table` whose `column` is `value` (legacy ids come from the database).
async fn id_of(
    // tenant-scope: allow(connection-type) the legacy application's own writes, as the schema owner, before tenancy exists
    db: &DatabaseConnection,
    table: &'static str,
    column: &'static str,
    value: &str,
) -> Result<i64, DbErr> {
    let mut select = Query::select();
    select
        .column("id")
        .from(table)
        .and_where(Expr::col(column).eq(value));
    db.query_one(&select)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("{table}.{column}")))?
        .try_get_by_index(0)
}

/// Writes the legacy rows, as the single-tenant application did (as the schema owner, before
/// adoption).
///
/// # Errors
///
/// The database's error.
// tenant-scope: allow(connection-type) the legacy application's own writes, as the schema owner, before tenancy exists
pub async fn legacy(db: &DatabaseConnection) -> Result<(), DbErr> {
    for (name, email) in CUSTOMERS {
        let mut insert = Query::insert();
        insert
            .into_table("customers")
            .columns(["name", "email", "created_at"])
            .values_panic([Expr::val(name), Expr::val(email), Expr::val(Utc::now())]);
        run(db, &insert).await?;
    }
    for (sku, name, price) in PRODUCTS {
        let mut insert = Query::insert();
        insert
            .into_table("products")
            .columns(["sku", "name", "unit_price_cents"])
            .values_panic([Expr::val(sku), Expr::val(name), Expr::val(price)]);
        run(db, &insert).await?;
    }
    for (number, email, lines) in INVOICES {
        let customer = id_of(db, "customers", "email", email).await?;
        let mut insert = Query::insert();
        insert
            .into_table("invoices")
            .columns(["customer_id", "number", "status", "created_at"])
            .values_panic([
                Expr::val(customer),
                Expr::val(number),
                Expr::val("paid"),
                Expr::val(Utc::now()),
            ]);
        run(db, &insert).await?;
        let invoice = id_of(db, "invoices", "number", number).await?;
        for (sku, quantity) in lines.iter() {
            let product = id_of(db, "products", "sku", sku).await?;
            let mut insert = Query::insert();
            insert
                .into_table("invoice_lines")
                .columns(["invoice_id", "product_id", "quantity"])
                .values_panic([Expr::val(invoice), Expr::val(product), Expr::val(*quantity)]);
            run(db, &insert).await?;
        }
    }
    Ok(())
}

/// One tenant's users: a clerk (read and write) and an auditor (read only).
#[derive(Clone, Copy, Debug)]
pub struct Staff {
    /// The tenant.
    pub tenant: TenantId,
    /// The clerk's user id (`invoices.read`, `invoices.write`).
    pub clerk: Uuid,
    /// The auditor's user id (`invoices.read`).
    pub auditor: Uuid,
}

/// Acme's slug: `acme.invoicing.localhost` names it.
pub const ACME_SLUG: &str = "acme";
/// Globex's slug: `globex.invoicing.localhost` names it.
pub const GLOBEX_SLUG: &str = "globex";

/// The two tenants after [`provision()`]: Acme, which holds the legacy rows, and Globex, new.
#[derive(Clone, Copy, Debug)]
pub struct Tenants {
    /// The default tenant of the adoption.
    pub acme: Staff,
    /// A tenant created after adoption, with rows of its own.
    pub globex: Staff,
    /// The id of Globex's last invoice, which no invoice of Acme has (Acme has the four legacy
    /// ones): for showing that Acme asking for it is answered like an id that never existed.
    pub globex_invoice: i64,
}

async fn staff(
    db: &TenantDb,
    tenant: tenant_scope::TenantContext,
    read: Uuid,
    write: Uuid,
) -> Result<Staff, Error> {
    let scope = db.scope(&tenant);
    let clerk = provision::create_user(&scope, "clerk@example.test", "Clerk").await?;
    let auditor = provision::create_user(&scope, "auditor@example.test", "Auditor").await?;
    let billing = provision::create_role(&scope, "billing", &[read, write]).await?;
    let audit = provision::create_role(&scope, "audit", &[read]).await?;
    provision::add_member(&scope, clerk, billing.id).await?;
    provision::add_member(&scope, auditor, audit.id).await?;
    Ok(Staff {
        tenant: tenant.tenant(),
        clerk,
        auditor,
    })
}

/// Globex's catalogue and invoices, written through its scope (ids assigned on insert); returns the
/// id of the last invoice.
async fn globex_rows(scope: &TenantScope<'_>) -> Result<i64, Error> {
    let mut customers = Vec::new();
    for (name, email) in [
        ("Hank Scorpio", "hank@globex.test"),
        ("Homer Simpson", "homer@globex.test"),
        ("Frank Grimes", "frank@globex.test"),
        ("Mindy Simmons", "mindy@globex.test"),
        ("Karl Carlson", "karl@globex.test"),
    ] {
        customers.push(
            scope
                .insert(crate::entities::customers::ActiveModel {
                    name: sea_orm::ActiveValue::Set(name.to_owned()),
                    email: sea_orm::ActiveValue::Set(email.to_owned()),
                    created_at: sea_orm::ActiveValue::Set(Utc::now()),
                    ..Default::default()
                })
                .await?,
        );
    }
    let doomsday = app::insert_product(scope, "DOOM-1", "Doomsday device", 9_999_999).await?;
    let hammock = app::insert_product(scope, "HAMMOCK", "Hammock", 8_900).await?;
    // More products than Acme's three legacy ones, so that on SQLite (ids per tenant) Globex has
    // product ids Acme does not, for the tests of cross-tenant references.
    app::insert_product(scope, "MAGNET-9", "Magnet, industrial", 45_000).await?;
    app::insert_product(scope, "TRAPDOOR", "Trapdoor", 120_000).await?;
    let mut last = None;
    for n in 0..6 {
        let customer = &customers[n % customers.len()];
        let invoice = app::insert_invoice(
            scope,
            NewInvoice {
                customer_id: customer.id,
                number: format!("G-{}", 2001 + n),
                lines: vec![
                    NewLine {
                        product_id: doomsday.id,
                        quantity: 1,
                    },
                    NewLine {
                        product_id: hammock.id,
                        quantity: 1 + n as i64,
                    },
                ],
            },
        )
        .await?;
        last = Some(invoice.invoice.id);
    }
    last.ok_or_else(|| Error::Invalid("Globex has no invoices".into()))
}

/// After adoption: the permissions, Globex and its rows, both tenants' slugs ([`ACME_SLUG`],
/// [`GLOBEX_SLUG`]) and staff. `acme` is the adoption's default tenant.
///
/// # Errors
///
/// The library's error.
pub async fn provision(db: &TenantDb, acme: TenantId) -> Result<Tenants, Error> {
    let system = db
        .system("invoicing: provision the example tenants")
        .await?;
    let read = provision::permission(&system, app::READ, "read customers and invoices").await?;
    let write = provision::permission(&system, app::WRITE, "write customers and invoices").await?;
    let globex = provision::create_tenant_with_slug(&system, "Globex", GLOBEX_SLUG).await?;
    // The adoption made Acme, without a slug.
    provision::set_slug(&system, acme, Some(ACME_SLUG)).await?;
    let acme_ctx = system.context_for(acme);
    let globex_invoice = db
        .transaction(&globex, |scope| Box::pin(globex_rows(scope)))
        .await?;
    Ok(Tenants {
        acme: staff(db, acme_ctx, read.id, write.id).await?,
        globex: staff(db, globex, read.id, write.id).await?,
        globex_invoice,
    })
}
