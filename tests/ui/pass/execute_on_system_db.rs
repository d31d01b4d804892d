// The right way to read across tenants: the system handle's own `find`, with a reason that is
// logged (twin of tests/ui/fail/execute_on_system_db.rs).

use entity::projects;
use tenant_scope::TenantDb;

async fn list_all_projects(db: &TenantDb) -> tenant_scope::Result<Vec<projects::Model>> {
    let system = db.system("nightly usage report").await?;
    system.find::<projects::Entity>().all().await
}

fn main() {
    let _ = list_all_projects;
}
