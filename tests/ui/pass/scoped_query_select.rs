// The right way to narrow and join: `Scoped`'s own `limit`/`offset` and its joins along composite
// relations, fenced to the same tenant (twin of tests/ui/fail/scoped_query_select.rs).

use entity::{projects, tasks};
use tenant_scope::TenantScope;

async fn page(
    scope: &TenantScope<'_>,
) -> tenant_scope::Result<Vec<(projects::Model, Vec<tasks::Model>)>> {
    scope
        .find::<projects::Entity>()
        .limit(10)
        .offset(20)
        .find_with_related::<tasks::Entity>()
        .all()
        .await
}

fn main() {
    let _ = page;
}
