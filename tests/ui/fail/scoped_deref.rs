// Guarantee: a `Scoped` query does not dereference to the SeaORM `Select` inside it.
//
// Without `Deref`, none of `Select`'s own methods (`all(&conn)`, `into_model`, `paginate`, ...)
// are reachable on a `Scoped` (tests/ui/pass/scoped_deref.rs).

use entity::projects;
use tenant_scope::TenantScope;

fn inner(scope: &TenantScope<'_>) {
    let scoped = scope.find::<projects::Entity>();
    let _select: &sea_orm::Select<projects::Entity> = &*scoped;
}

fn main() {
    let _ = inner;
}
