// Guarantee: `Scoped` does not implement SeaORM's `QueryTrait`, so `into_query()` / `query()`
// cannot pull the inner statement out to run it elsewhere or edit it.
//
// To see the SQL, `Scoped::build` returns the statement (tests/ui/pass/scoped_query_trait.rs).

use entity::projects;
use sea_orm::QueryTrait;
use tenant_scope::TenantScope;

fn extract(scope: &TenantScope<'_>) {
    let _statement = scope.find::<projects::Entity>().into_query();
}

fn main() {
    let _ = extract;
}
