// Guarantee: a SeaORM query cannot be executed on a `TenantDb`.
//
// `TenantDb` wraps the pool but does not implement `ConnectionTrait`, so an unscoped
// `Entity::find().all(&db)` does not compile. The right way is
// `db.scope(&ctx).find::<projects::Entity>().all()` (tests/ui/pass/execute_on_tenant_db.rs).

use entity::projects;
use sea_orm::EntityTrait;
use tenant_scope::TenantDb;

async fn list_projects(db: TenantDb) {
    let _rows = projects::Entity::find().all(&db).await;
}

fn main() {
    let _ = list_projects;
}
