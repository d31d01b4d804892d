// Guarantee: a SeaORM query cannot be executed on a `SystemDb` either.
//
// Even the cross-tenant escape hatch (`db.system("reason")`) is not a `ConnectionTrait`: its
// queries go through its own `find`, so every cross-tenant read is visibly a `system` call. The
// right way is `system.find::<projects::Entity>().all()` (tests/ui/pass/execute_on_system_db.rs).

use entity::projects;
use sea_orm::EntityTrait;
use tenant_scope::TenantDb;

async fn list_all_projects(db: &TenantDb) -> tenant_scope::Result<()> {
    let system = db.system("nightly usage report").await?;
    let _rows = projects::Entity::find().all(&system).await;
    Ok(())
}

fn main() {
    let _ = list_all_projects;
}
