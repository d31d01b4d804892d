// Guarantee: a SeaORM query cannot be executed on a `GlobalDb`.
//
// The global handle reads only `Global` entities, through its own `find`; it is not a
// `ConnectionTrait`, so it cannot run a query over a tenant-owned table (or write anything).
// The right way is `db.global().find::<tenants::Entity>().all()`
// (tests/ui/pass/execute_on_global_db.rs).

use entity::tenants;
use sea_orm::EntityTrait;
use tenant_scope::TenantDb;

async fn list_tenants(db: &TenantDb) {
    let global = db.global();
    let _rows = tenants::Entity::find().all(&global).await;
}

fn main() {
    let _ = list_tenants;
}
