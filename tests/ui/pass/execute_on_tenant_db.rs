// The right way to run a query from a `TenantDb`: verify the caller, take the tenant handle, and
// run the query it makes (twin of tests/ui/fail/execute_on_tenant_db.rs).

use entity::projects;
use tenant_scope::{ApiKeyVerifier, TenantDb};

async fn list_projects(
    db: TenantDb,
    api_key: String,
) -> tenant_scope::Result<Vec<projects::Model>> {
    let ctx = db.verify(&ApiKeyVerifier, api_key).await?;
    let scope = db.scope(&ctx);
    scope.find::<projects::Entity>().all().await
}

fn main() {
    let _ = list_projects;
}
