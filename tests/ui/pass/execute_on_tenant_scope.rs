// The right way to run a query on a tenant handle: the query it makes itself
// (twin of tests/ui/fail/execute_on_tenant_scope.rs).

use entity::projects;
use tenant_scope::TenantScope;

async fn list_projects(scope: TenantScope<'_>) -> tenant_scope::Result<Vec<projects::Model>> {
    scope.find::<projects::Entity>().all().await
}

fn main() {
    let _ = list_projects;
}
