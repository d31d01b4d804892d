// The right types: `context_for` takes a `TenantId`; a `Uuid` read from configuration becomes one
// only by an explicit `TenantId::from_uuid` (twin of tests/ui/fail/swap_row_id_as_tenant_id.rs).

use tenant_scope::{TenantContext, TenantDb, TenantId};
use uuid::Uuid;

async fn provision(db: &TenantDb, configured: Uuid) -> tenant_scope::Result<TenantContext> {
    let system = db.system("provision tenant").await?;
    Ok(system.context_for(TenantId::from_uuid(configured)))
}

fn main() {
    let _ = provision;
}
