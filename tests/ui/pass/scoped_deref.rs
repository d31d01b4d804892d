// The right way to run a scoped query: its own `all`, `one`, `count` and `paginate`
// (twin of tests/ui/fail/scoped_deref.rs).

use entity::projects;
use tenant_scope::TenantScope;

async fn pages(scope: &TenantScope<'_>) -> tenant_scope::Result<Vec<projects::Model>> {
    let total = scope.find::<projects::Entity>().count().await?;
    let first = scope
        .find::<projects::Entity>()
        .paginate(20)
        .fetch_page(0)
        .await?;
    assert!(first.len() as u64 <= total);
    Ok(first)
}

fn main() {
    let _ = pages;
}
