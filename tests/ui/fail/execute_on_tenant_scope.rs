// Guarantee: a SeaORM query cannot be executed on a `TenantScope`.
//
// The tenant handle is not a `ConnectionTrait` either: the only queries it runs are the ones it
// made itself, already restricted to its tenant. The right way is
// `scope.find::<projects::Entity>().all()` (tests/ui/pass/execute_on_tenant_scope.rs).

use entity::projects;
use sea_orm::EntityTrait;
use tenant_scope::TenantScope;

async fn list_projects(scope: TenantScope<'_>) {
    let _rows = projects::Entity::find().all(&scope).await;
}

fn main() {
    let _ = list_projects;
}
