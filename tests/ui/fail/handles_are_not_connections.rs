// Guarantee: no handle that `TenantDb` gives out implements SeaORM's `ConnectionTrait`, so none can
// be passed where SeaORM wants a connection (`Select::all`, `ActiveModel::insert`,
// `UpdateMany::exec`, `Paginator`, `LoaderTrait`, ...).
//
// Each handle has its own methods instead (tests/ui/pass/handles_are_not_connections.rs).

use sea_orm::ConnectionTrait;
use tenant_scope::{GlobalDb, SystemDb, TenantDb, TenantScope, TenantTransaction, VerifierDb};

fn needs_connection<C: ConnectionTrait>(_conn: &C) {}

fn handles(
    db: &TenantDb,
    scope: &TenantScope<'_>,
    tx: &TenantTransaction<'_>,
    global: &GlobalDb<'_>,
    system: &SystemDb<'_>,
    verifier: &VerifierDb<'_>,
) {
    needs_connection(db);
    needs_connection(scope);
    needs_connection(tx);
    needs_connection(global);
    needs_connection(system);
    needs_connection(verifier);
}

fn main() {
    let _ = handles;
}
