// Guarantee: `TenantDb` and `TenantScope` have none of `ConnectionTrait`'s methods, so raw SQL
// cannot be run on them (`execute_unprepared`, `execute_raw`, `query_all_raw`, ...), even with the
// trait imported.
//
// Raw SQL across tenants goes through the explicit, logged escape hatch:
// `db.system("reason").await?.execute(stmt)` (tests/ui/pass/execute_unprepared.rs).

use sea_orm::ConnectionTrait;
use tenant_scope::{TenantContext, TenantDb};

async fn raw_sql(db: &TenantDb, ctx: &TenantContext) {
    let _ = db.execute_unprepared("DELETE FROM projects").await;
    let scope = db.scope(ctx);
    let _ = scope.execute_unprepared("DELETE FROM projects").await;
}

fn main() {
    let _ = raw_sql;
}
