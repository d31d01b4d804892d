// Guarantee: a tenant-owned entity cannot be read through the global handle.
//
// `db.global()` reads only `Global` entities; `projects` is tenant-owned and the compiler says so
// ("is not a global entity"). Tenant-owned rows are read through `db.scope(&ctx)`
// (tests/ui/pass/tenant_entity_in_global.rs).

use entity::projects;
use tenant_scope::TenantDb;

fn list_projects(db: &TenantDb) {
    let _query = db.global().find::<projects::Entity>();
}

fn main() {
    let _ = list_projects;
}
