// The right way: `get` takes the row id and the tenant comes from the context
// (twin of tests/ui/fail/get_with_tuple_key.rs).

use entity::projects;
use tenant_scope::TenantScope;
use uuid::Uuid;

async fn get_project(scope: &TenantScope<'_>, id: Uuid) -> tenant_scope::Result<projects::Model> {
    scope.get::<projects::Entity>(id).await
}

fn main() {
    let _ = get_project;
}
