//! The invoicing example under the test kit (`tenant_scope::testing`), on every backend: every
//! tenant-owned entity, and every route over HTTP, as Acme with Globex's ids and the other way
//! round, answers like an id that never existed and writes nothing.

use invoicing::entities::{
    api_keys, customers, invoice_lines, invoices, products, role_permissions, roles, user_roles,
    users,
};
use invoicing::idp;
use serde_json::json;
use tenant_scope::ApiKeyVerifier;
use tenant_scope::testing::{HttpCheck, Route, World};
use test_support::TestDb;

test_support::empty_backend_test!(cross_tenant_is_not_found, |t: TestDb| async move {
    let (db, tenants) = invoicing::setup(&t.app_url(), t.url())
        .await
        .expect("setup");
    let staff = [tenants.acme, tenants.globex];
    let system = db
        .system("kit: an API key per tenant")
        .await
        .expect("system");
    for s in staff {
        let job = system.context_for(s.tenant);
        ApiKeyVerifier::issue(&db.scope(&job), s.clerk, "kit")
            .await
            .expect("key");
    }
    drop(system);
    let world = World::of(&db, &staff.map(|s| s.tenant))
        .await
        .expect("world");
    tenant_scope::check_entities!(
        &world,
        customers::Entity,
        products::Entity,
        invoices::Entity,
        invoice_lines::Entity,
        users::Entity,
        roles::Entity,
        role_permissions::Entity,
        user_roles::Entity,
        api_keys::Entity,
    )
    .await
    .unwrap_or_else(|f| panic!("{}: {f}", t.backend()));

    let router = invoicing::app::router(db.clone(), idp::verifier().expect("JWKS"));
    let mut check = HttpCheck::new(&world, router)
        .route(Route::get("/customers/{customers}"))
        .route(Route::get("/invoices/{invoices}"))
        .route(
            Route::post("/invoices").json_with(["customers", "products"], |ids| {
                json!({
                    "customer_id": ids.get("customers"),
                    "number": "K-1",
                    "lines": [{"product_id": ids.get("products"), "quantity": 1}],
                })
            }),
        )
        .route(Route::delete("/invoices/{invoices}"));
    for s in staff {
        let token = idp::token(s.tenant, s.clerk).expect("token");
        check = check.credentials(s.tenant, [("authorization", format!("Bearer {token}"))]);
    }
    check
        .run()
        .await
        .unwrap_or_else(|f| panic!("{}: {f}", t.backend()));
});
