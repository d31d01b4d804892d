// The right way to look at a scoped query's SQL: `Scoped::build`, which returns the statement
// (tenant as a bound value) without giving up the query (twin of
// tests/ui/fail/scoped_query_trait.rs).

use entity::projects;
use tenant_scope::TenantScope;

fn sql(scope: &TenantScope<'_>) -> String {
    scope.find::<projects::Entity>().build().sql
}

fn main() {
    let _ = sql;
}
