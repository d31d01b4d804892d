// Guarantee: a `TenantId` cannot be passed where a row id is expected.
//
// `TenantId` is a newtype over `Uuid`, distinct from the `Uuid` row ids, so `get`, `delete` and
// friends reject it (tests/ui/pass/swap_tenant_id_as_row_id.rs).

use entity::projects;
use tenant_scope::TenantScope;

async fn get_project(scope: &TenantScope<'_>) {
    let tenant = scope.tenant();
    let _project = scope.get::<projects::Entity>(tenant).await;
}

fn main() {
    let _ = get_project;
}
