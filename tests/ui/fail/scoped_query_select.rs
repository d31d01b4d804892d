// Guarantee: `Scoped` does not implement SeaORM's `QuerySelect`, whose `query()` would hand out the
// inner `SelectStatement` and whose `join(..)` takes any `RelationDef` (a join that is not fenced to
// the tenant could bring in another tenant's rows).
//
// `Scoped` has its own `limit`, `offset` and tenant-fenced joins
// (tests/ui/pass/scoped_query_select.rs).

use entity::projects;
use sea_orm::{JoinType, QuerySelect, RelationTrait};
use tenant_scope::TenantScope;

fn rewrite(scope: &TenantScope<'_>) {
    let mut scoped = scope.find::<projects::Entity>();
    let _statement = scoped.query();
}

fn join_anything(scope: &TenantScope<'_>) {
    let _joined = scope
        .find::<projects::Entity>()
        .join(JoinType::InnerJoin, projects::Relation::Tenants.def());
}

fn main() {
    let _ = (rewrite, join_anything);
}
