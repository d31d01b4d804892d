// Each handle runs queries through its own methods, never as a SeaORM connection
// (twin of tests/ui/fail/handles_are_not_connections.rs).

use entity::{projects, tenants, users};
use tenant_scope::{
    GlobalDb, SystemDb, TenantDb, TenantId, TenantScope, TenantTransaction, VerifierDb,
};

async fn handles(
    db: &TenantDb,
    scope: &TenantScope<'_>,
    tx: &TenantTransaction<'_>,
    global: &GlobalDb<'_>,
    system: &SystemDb<'_>,
    verifier: &VerifierDb<'_>,
    claimed: TenantId,
) -> tenant_scope::Result<()> {
    let _ = db.foreign_keys_enforced().await?;
    let _ = scope.find::<projects::Entity>().all().await?;
    let _ = tx.scope().find::<projects::Entity>().count().await?;
    let _ = global.find::<tenants::Entity>().all().await?;
    let _ = system.find::<projects::Entity>().count().await?;
    let _ = verifier.find::<users::Entity>(claimed).one().await?;
    Ok(())
}

fn main() {
    let _ = handles;
}
