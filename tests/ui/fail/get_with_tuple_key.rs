// Guarantee: `scope.get` takes only the row id, never a `(TenantId, Uuid)` key.
//
// The tenant half of the key always comes from the verified context, so a caller cannot name
// another tenant's row through `get` (tests/ui/pass/get_with_tuple_key.rs).

use entity::projects;
use tenant_scope::{TenantId, TenantScope};
use uuid::Uuid;

async fn get_project(scope: &TenantScope<'_>, tenant: TenantId, id: Uuid) {
    let _project = scope.get::<projects::Entity>((tenant, id)).await;
}

fn main() {
    let _ = get_project;
}
