// The right way to read a global entity such as `tenants`: the global handle
// (twin of tests/ui/fail/unscoped_entity_in_scope.rs).

use entity::tenants;
use tenant_scope::TenantDb;

async fn list_tenants(db: &TenantDb) -> tenant_scope::Result<Vec<tenants::Model>> {
    db.global().find::<tenants::Entity>().all().await
}

fn main() {
    let _ = list_tenants;
}
