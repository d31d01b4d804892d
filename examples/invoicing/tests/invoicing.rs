//! The invoicing example on every backend: the adopter's path end to end.
//!
//! - the legacy rows survive adoption with their ids, all in the default tenant;
//! - the entities in src/entities are exactly what `tenant-scope generate --module` makes from the
//!   adopted database, on SQLite, PostgreSQL and MySQL alike (so they are byte-identical across
//!   the three), and `tenant-scope check` finds nothing;
//! - over HTTP, another tenant's invoice or customer is the same 404 as one that never existed,
//!   for reads, deletes and references, and nothing is written;
//! - every broken token is the same 401, and so is a valid token on another tenant's subdomain (its
//!   slug or id), an unknown slug or a malformed one; nothing is written;
//! - rows inserted without an id get one from the database, and their audit event names it.

use std::collections::BTreeSet;
use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use invoicing::app::BASE_DOMAIN;
use invoicing::entities::{audit_events, customers, invoice_lines, invoices, products};
use invoicing::idp::{self, Claims, Signer};
use invoicing::seed::{ACME_SLUG, GLOBEX_SLUG, Tenants};
use sea_orm::ColumnTrait;
use serde_json::{Value, json};
use tenant_scope::{TenantDb, TenantId};
use tenant_scope_cli::codegen::{GenerateOptions, Layout, generate};
use tenant_scope_schema::check::{CheckOptions, check};
use test_support::{Backend, TestDb};
use tower::ServiceExt;

/// The example on `t`'s empty database: adopted, connected as the service connects, provisioned.
async fn service(t: &TestDb) -> (TenantDb, Tenants, Router) {
    let (db, tenants) = invoicing::setup(&t.app_url(), t.url())
        .await
        .unwrap_or_else(|e| panic!("{}: the example's setup: {e}", t.backend()));
    let verifier = idp::verifier().expect("the example's JWKS");
    let router = invoicing::app::router(db.clone(), verifier);
    (db, tenants, router)
}

/// One answer: status, `WWW-Authenticate`, and the body with its request id blanked.
#[derive(Debug, PartialEq)]
struct Answer {
    status: StatusCode,
    www_authenticate: Option<String>,
    body: Value,
}

async fn send(
    router: &Router,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let body = match body {
        Some(json) => {
            request = request.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(request.body(body).expect("a request"))
        .await
        .expect("infallible");
    let status = response.status();
    let www_authenticate = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body");
    let mut body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    if let Some(id) = body.pointer_mut("/error/request_id") {
        *id = json!("<request id>");
    }
    Answer {
        status,
        www_authenticate,
        body,
    }
}

/// Every row of every table of the example (and the audit events), counted through system access.
async fn rows(db: &TenantDb) -> [u64; 5] {
    let system = db
        .system("test: count every tenant's rows")
        .await
        .expect("system");
    [
        system
            .find::<customers::Entity>()
            .count()
            .await
            .expect("count"),
        system
            .find::<products::Entity>()
            .count()
            .await
            .expect("count"),
        system
            .find::<invoices::Entity>()
            .count()
            .await
            .expect("count"),
        system
            .find::<invoice_lines::Entity>()
            .count()
            .await
            .expect("count"),
        system
            .find::<audit_events::Entity>()
            .count()
            .await
            .expect("count"),
    ]
}

/// The invoice and customer ids of `tenant`.
async fn ids(db: &TenantDb, tenant: TenantId) -> (BTreeSet<i64>, BTreeSet<i64>) {
    let system = db.system("test: harvest ids").await.expect("system");
    let invoices = system
        .find::<invoices::Entity>()
        .filter(invoices::Column::TenantId.eq(tenant))
        .all()
        .await
        .expect("invoices");
    let customers = system
        .find::<customers::Entity>()
        .filter(customers::Column::TenantId.eq(tenant))
        .all()
        .await
        .expect("customers");
    (
        invoices.iter().map(|i| i.id).collect(),
        customers.iter().map(|c| c.id).collect(),
    )
}

/// An id no tenant has.
const NEVER: i64 = 9_000_000_001;

test_support::empty_backend_test!(
    legacy_rows_keep_their_ids_in_the_default_tenant,
    |t: TestDb| async move {
        invoicing::legacy_database(t.raw())
            .await
            .expect("the legacy database");
        let before = legacy_invoices(&t).await;
        assert_eq!(before.len(), 4, "the legacy invoices");
        let acme = TenantId::new();
        invoicing::adopt(t.raw(), acme).await.expect("adopt");
        let after = legacy_invoices(&t).await;
        assert_eq!(
            before,
            after,
            "{}: ids, references and numbers unchanged",
            t.backend()
        );
        let db = invoicing::connect(&t.app_url(), t.url())
            .await
            .expect("connect");
        let (invoices, customers) = ids(&db, acme).await;
        assert_eq!(invoices, before.iter().map(|r| r.0).collect(), "all Acme's");
        assert_eq!(customers.len(), 3);
    }
);

/// `(id, customer_id, number)` of every invoice, by id, read as the owner.
async fn legacy_invoices(t: &TestDb) -> Vec<(i64, i64, String)> {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = t
        .raw()
        .query_all_raw(Statement::from_string(
            t.db_backend(),
            "SELECT id, customer_id, number FROM invoices ORDER BY id",
        ))
        .await
        .expect("the invoices");
    rows.iter()
        .map(|r| {
            (
                r.try_get_by_index(0).expect("id"),
                r.try_get_by_index(1).expect("customer_id"),
                r.try_get_by_index(2).expect("number"),
            )
        })
        .collect()
}

test_support::empty_backend_test!(
    the_entities_are_what_generate_makes_here,
    |t: TestDb| async move {
        invoicing::legacy_database(t.raw())
            .await
            .expect("the legacy database");
        invoicing::adopt(t.raw(), TenantId::new())
            .await
            .expect("adopt");
        let generated = generate(&GenerateOptions {
            database_url: t.url().to_owned(),
            global: invoicing::schema::GLOBAL.map(str::to_owned).to_vec(),
            layout: Layout::Module,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: generate: {e}", t.backend()));
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/entities");
        let committed: BTreeSet<String> = std::fs::read_dir(&dir)
            .expect("src/entities")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let made: BTreeSet<String> = generated
            .files
            .keys()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(committed, made, "{}: the files", t.backend());
        for (path, text) in &generated.files {
            let want = std::fs::read_to_string(dir.join(path)).expect("a committed entity");
            assert!(
                *text == want,
                "{}: src/entities/{} has drifted from the schema; regenerate it with \
                 `tenant-scope generate --module --output examples/invoicing/src/entities \
                 --global tenants,permissions` (see src/lib.rs)",
                t.backend(),
                path.display()
            );
        }
        let mut options = CheckOptions::new(t.url());
        options.global = vec!["permissions".to_owned()];
        if t.backend() == Backend::Postgres {
            options.app_role = Some(test_support::APP_ROLE.to_owned());
        }
        let report = check(&options).await.expect("check runs");
        assert!(report.is_clean(), "{}: {}", t.backend(), report.to_text());
    }
);

test_support::empty_backend_test!(
    another_tenants_ids_are_not_found_over_http,
    |t: TestDb| async move {
        let (db, tenants, router) = service(&t).await;
        let acme = idp::token(tenants.acme.tenant, tenants.acme.clerk).expect("token");
        let (acme_invoices, acme_customers) = ids(&db, tenants.acme.tenant).await;
        let (globex_invoices, globex_customers) = ids(&db, tenants.globex.tenant).await;
        // Integer ids are unique per tenant: only Globex's ids that Acme does not have itself
        // can show a leak. There must be some, or the test proves nothing.
        let foreign_invoices: Vec<i64> = globex_invoices
            .difference(&acme_invoices)
            .copied()
            .collect();
        let foreign_customers: Vec<i64> = globex_customers
            .difference(&acme_customers)
            .copied()
            .collect();
        // The id `cargo run -p invoicing` shows is one of them.
        assert!(
            foreign_invoices.contains(&tenants.globex_invoice),
            "{}: the example's Globex invoice {} is not Globex's alone",
            t.backend(),
            tenants.globex_invoice
        );
        assert!(
            !foreign_invoices.is_empty() && !foreign_customers.is_empty(),
            "{}: no foreign ids",
            t.backend()
        );
        let acme_job = db
            .system("test: an Acme product")
            .await
            .expect("system")
            .context_for(tenants.acme.tenant);
        let own_product = db
            .scope(&acme_job)
            .find::<products::Entity>()
            .all()
            .await
            .expect("products")[0]
            .id;
        let before = rows(&db).await;

        let missing = send(
            &router,
            Method::GET,
            &format!("/invoices/{NEVER}"),
            &acme,
            None,
        )
        .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for id in &foreign_invoices {
            for method in [Method::GET, Method::DELETE] {
                let answer = send(
                    &router,
                    method.clone(),
                    &format!("/invoices/{id}"),
                    &acme,
                    None,
                )
                .await;
                assert_eq!(
                    answer,
                    missing,
                    "{}: {method} Globex's invoice {id}",
                    t.backend()
                );
            }
        }
        let missing_customer = send(
            &router,
            Method::GET,
            &format!("/customers/{NEVER}"),
            &acme,
            None,
        )
        .await;
        assert_eq!(missing_customer, missing, "one 404 for every kind of row");
        for id in &foreign_customers {
            let answer = send(
                &router,
                Method::GET,
                &format!("/customers/{id}"),
                &acme,
                None,
            )
            .await;
            assert_eq!(answer, missing, "{}: Globex's customer {id}", t.backend());
            // An invoice of Acme for Globex's customer: refused by the composite key, as a 404.
            let answer = send(
                &router,
                Method::POST,
                "/invoices",
                &acme,
                Some(json!({"customer_id": id, "number": "X-1", "lines": [{"product_id": own_product, "quantity": 1}]})),
            )
            .await;
            assert_eq!(
                answer,
                missing,
                "{}: an invoice for Globex's customer {id}",
                t.backend()
            );
        }
        let never_customer = send(
            &router,
            Method::POST,
            "/invoices",
            &acme,
            Some(json!({"customer_id": NEVER, "number": "X-2", "lines": [{"product_id": own_product, "quantity": 1}]})),
        )
        .await;
        assert_eq!(never_customer, missing);
        assert_eq!(
            rows(&db).await,
            before,
            "{}: nothing was written",
            t.backend()
        );

        // 403 only inside one's own tenant: the auditor may read but not delete Acme's invoice, and
        // Globex's invoice is a 404 to them as to anyone of Acme.
        let auditor = idp::token(tenants.acme.tenant, tenants.acme.auditor).expect("token");
        let own = *acme_invoices.first().expect("an invoice of Acme");
        let forbidden = send(
            &router,
            Method::DELETE,
            &format!("/invoices/{own}"),
            &auditor,
            None,
        )
        .await;
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
        let foreign = send(
            &router,
            Method::DELETE,
            &format!("/invoices/{}", foreign_invoices[0]),
            &auditor,
            None,
        )
        .await;
        assert_eq!(foreign, missing);
        assert_eq!(
            rows(&db).await,
            before,
            "{}: nothing was written",
            t.backend()
        );
    }
);

test_support::empty_backend_test!(every_broken_token_is_the_same_401, |t: TestDb| async move {
    let (db, tenants, router) = service(&t).await;
    let acme = tenants.acme;
    let valid = Claims::new(acme.tenant, acme.clerk);
    let now = chrono::Utc::now().timestamp();
    let body = || Some(json!({"name": "Intruder", "email": "intruder@example.test"}));
    let garbage = send(&router, Method::POST, "/customers", "not-a-token", body()).await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert_eq!(garbage.www_authenticate.as_deref(), Some("Bearer"));
    let before = rows(&db).await;
    let broken = [
        (
            "expired",
            Signer::Provider,
            Claims {
                iat: now - 7200,
                exp: now - 3600,
                ..valid.clone()
            },
        ),
        ("forged", Signer::Forger, valid.clone()),
        (
            "another audience",
            Signer::Provider,
            Claims {
                aud: "another-api".into(),
                ..valid.clone()
            },
        ),
        (
            "another issuer",
            Signer::Provider,
            Claims {
                iss: "https://evil.test/".into(),
                ..valid.clone()
            },
        ),
        // Globex's clerk, claiming Acme: not a member of the tenant the token names.
        (
            "not a member",
            Signer::Provider,
            Claims::new(acme.tenant, tenants.globex.clerk),
        ),
        (
            "unknown tenant",
            Signer::Provider,
            Claims::new(TenantId::new(), acme.clerk),
        ),
    ];
    for (why, signer, claims) in broken {
        let token = idp::sign(signer, &claims).expect("sign");
        let answer = send(&router, Method::POST, "/customers", &token, body()).await;
        assert_eq!(answer, garbage, "{}: {why}", t.backend());
    }
    // A valid token on a host that names another tenant: Globex's slug, a slug no tenant has, a
    // label that is no slug, Globex's id.
    let token = idp::sign(Signer::Provider, &valid).expect("sign");
    let globex_id = format!("http://{}.{BASE_DOMAIN}/customers", tenants.globex.tenant);
    for url in [
        format!("http://{GLOBEX_SLUG}.{BASE_DOMAIN}/customers"),
        format!("http://initech.{BASE_DOMAIN}/customers"),
        format!("http://acme_corp.{BASE_DOMAIN}/customers"),
        globex_id,
    ] {
        let answer = send(&router, Method::POST, &url, &token, body()).await;
        assert_eq!(answer, garbage, "{}: {url}", t.backend());
    }
    assert_eq!(
        rows(&db).await,
        before,
        "{}: nothing was written",
        t.backend()
    );
    // The control: the same request with a valid token is served, on its own tenant's slug too.
    for (url, email) in [
        ("/customers".to_owned(), "first@example.test"),
        (
            format!("http://{ACME_SLUG}.{BASE_DOMAIN}/customers"),
            "second@example.test",
        ),
    ] {
        let customer = json!({"name": "Customer", "email": email});
        let served = send(&router, Method::POST, &url, &token, Some(customer)).await;
        assert_eq!(
            served.status,
            StatusCode::CREATED,
            "{}: {url}: {:?}",
            t.backend(),
            served.body
        );
    }
});

test_support::empty_backend_test!(
    new_rows_get_their_id_from_the_database,
    |t: TestDb| async move {
        let (db, tenants, router) = service(&t).await;
        for staff in [tenants.acme, tenants.globex] {
            let token = idp::token(staff.tenant, staff.clerk).expect("token");
            let (_, before) = ids(&db, staff.tenant).await;
            let largest = *before.last().expect("customers");
            let answer = send(
                &router,
                Method::POST,
                "/customers",
                &token,
                Some(json!({"name": "New", "email": "new@example.test"})),
            )
            .await;
            assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
            let id = answer.body["id"].as_i64().expect("an integer id");
            assert!(id > largest, "{}: {id} after {largest}", t.backend());
            if t.backend() == Backend::Sqlite {
                // No counter on SQLite: the next id of this tenant.
                assert_eq!(id, largest + 1);
            }
            let event = db
                .system("test: read the audit event")
                .await
                .expect("system")
                .find::<audit_events::Entity>()
                .filter(audit_events::Column::TenantId.eq(staff.tenant))
                .filter(audit_events::Column::TableName.eq("customers"))
                .filter(audit_events::Column::RowKey.eq(id.to_string()))
                .all()
                .await
                .expect("the audit events");
            assert_eq!(
                event.len(),
                1,
                "{}: one event names customer {id}",
                t.backend()
            );
            assert_eq!(event[0].action, "insert");
            assert_eq!(event[0].row_id, None, "an integer id is no UUID");
        }
        // A row that sets its id keeps it.
        let scope_ctx = db
            .system("test")
            .await
            .expect("system")
            .context_for(tenants.globex.tenant);
        let set = db
            .scope(&scope_ctx)
            .insert(customers::ActiveModel {
                id: sea_orm::ActiveValue::Set(NEVER),
                name: sea_orm::ActiveValue::Set("Chosen".into()),
                email: sea_orm::ActiveValue::Set("chosen@example.test".into()),
                created_at: sea_orm::ActiveValue::Set(chrono::Utc::now()),
                ..Default::default()
            })
            .await
            .expect("an insert with its id");
        assert_eq!(set.id, NEVER);
    }
);
