// The right way to read a tenant-owned row by id: `scope.get`, which takes the row id and adds the
// tenant of the verified context (twin of tests/ui/fail/find_by_id_bare_id.rs).

use entity::projects;
use tenant_scope::TenantScope;
use uuid::Uuid;

async fn get_project(scope: &TenantScope<'_>, id: Uuid) -> tenant_scope::Result<projects::Model> {
    scope.get::<projects::Entity>(id).await
}

fn main() {
    let _ = get_project;
}
