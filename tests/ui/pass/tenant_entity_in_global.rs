// The right way to read a tenant-owned entity: the tenant handle of a verified context
// (twin of tests/ui/fail/tenant_entity_in_global.rs).

use entity::projects;
use tenant_scope::{TenantContext, TenantDb};

async fn list_projects(
    db: &TenantDb,
    ctx: &TenantContext,
) -> tenant_scope::Result<Vec<projects::Model>> {
    db.scope(ctx).find::<projects::Entity>().all().await
}

fn main() {
    let _ = list_projects;
}
