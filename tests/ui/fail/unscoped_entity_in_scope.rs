// Guarantee: an entity that is not tenant-owned cannot be queried through a tenant handle.
//
// `tenants` is `Global`, not `TenantScoped`; `scope.find` requires `TenantScoped` and the compiler
// says so in plain words ("is not tenant-scoped", from `#[diagnostic::on_unimplemented]`).
// Global entities are read through `db.global()` (tests/ui/pass/unscoped_entity_in_scope.rs).

use entity::tenants;
use tenant_scope::TenantScope;

fn list_tenants(scope: &TenantScope<'_>) {
    let _query = scope.find::<tenants::Entity>();
}

fn main() {
    let _ = list_tenants;
}
