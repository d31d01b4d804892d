// The right types: `get` takes the row id (`Uuid`); the tenant comes from the context
// (twin of tests/ui/fail/swap_tenant_id_as_row_id.rs).

use entity::projects;
use tenant_scope::TenantScope;
use uuid::Uuid;

async fn get_project(scope: &TenantScope<'_>, id: Uuid) -> tenant_scope::Result<projects::Model> {
    scope.get::<projects::Entity>(id).await
}

fn main() {
    let _ = get_project;
}
