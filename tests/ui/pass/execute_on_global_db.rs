// The right way to read a global entity: the global handle's own `find`
// (twin of tests/ui/fail/execute_on_global_db.rs).

use entity::tenants;
use tenant_scope::TenantDb;

async fn list_tenants(db: &TenantDb) -> tenant_scope::Result<Vec<tenants::Model>> {
    db.global().find::<tenants::Entity>().all().await
}

fn main() {
    let _ = list_tenants;
}
