// Guarantee: a `Scoped` query cannot be turned back into an unscoped SeaORM `Select`.
//
// There is no `From<Scoped<..>> for Select<..>`, no `into_inner` and no `Deref`: the tenant
// predicate cannot be dropped and the query cannot be run on another connection. Refine it in place
// instead (tests/ui/pass/scoped_into_select.rs).

use entity::projects;
use tenant_scope::TenantScope;

fn unscope(scope: &TenantScope<'_>) {
    let _select: sea_orm::Select<projects::Entity> = scope.find::<projects::Entity>().into();
}

fn main() {
    let _ = unscope;
}
