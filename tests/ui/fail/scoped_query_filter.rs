// Guarantee: `Scoped` does not implement SeaORM's `QueryFilter`, whose `query()` would hand out the
// inner `SelectStatement` (and let a caller rewrite its `WHERE`, dropping the tenant predicate).
//
// `Scoped::filter` only conjoins (tests/ui/pass/scoped_query_filter.rs).

use entity::projects;
use sea_orm::QueryFilter;
use tenant_scope::TenantScope;

fn rewrite(scope: &TenantScope<'_>) {
    let mut scoped = scope.find::<projects::Entity>();
    let _statement = scoped.query();
}

fn main() {
    let _ = rewrite;
}
