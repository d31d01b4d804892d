// The right way to run raw SQL: the explicit, logged system handle, with a reason
// (twin of tests/ui/fail/execute_unprepared.rs).

use sea_orm::{DbBackend, Statement};
use tenant_scope::TenantDb;

async fn purge_revoked_keys(db: &TenantDb) -> tenant_scope::Result<u64> {
    let system = db.system("purge revoked API keys").await?;
    system
        .execute(Statement::from_string(
            DbBackend::Sqlite,
            "DELETE FROM api_keys WHERE revoked_at IS NOT NULL",
        ))
        .await
}

fn main() {
    let _ = purge_revoked_keys;
}
