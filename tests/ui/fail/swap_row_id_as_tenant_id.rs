// Guarantee: a row id (`Uuid`) cannot be passed where a `TenantId` is expected.
//
// `SystemDb::context_for` takes a `TenantId`; a project's or user's `Uuid` does not convert into
// one implicitly (tests/ui/pass/swap_row_id_as_tenant_id.rs).

use tenant_scope::TenantDb;
use uuid::Uuid;

async fn provision(db: &TenantDb, project_id: Uuid) -> tenant_scope::Result<()> {
    let system = db.system("provision tenant").await?;
    let _ctx = system.context_for(project_id);
    Ok(())
}

fn main() {
    let _ = provision;
}
