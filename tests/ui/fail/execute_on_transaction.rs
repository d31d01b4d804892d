// Guarantee: a SeaORM query cannot be executed on a `TenantTransaction`, nor on the handle that
// `TenantDb::transaction` passes to its closure.
//
// A transaction is bound to one tenant and hands out only a `TenantScope`; the underlying SeaORM
// `DatabaseTransaction` never leaves the crate. The right way is
// `tx.scope().find::<projects::Entity>().all()` (tests/ui/pass/execute_on_transaction.rs).

use entity::projects;
use sea_orm::EntityTrait;
use tenant_scope::{TenantContext, TenantDb};

async fn with_begin(db: &TenantDb, ctx: &TenantContext) -> tenant_scope::Result<()> {
    let tx = db.begin(ctx).await?;
    let _rows = projects::Entity::find().all(&tx).await;
    tx.commit().await
}

async fn with_closure(db: &TenantDb, ctx: &TenantContext) -> tenant_scope::Result<()> {
    db.transaction(ctx, |tx| {
        Box::pin(async move {
            let _rows = projects::Entity::find().all(tx).await;
            Ok::<_, tenant_scope::Error>(())
        })
    })
    .await
}

fn main() {
    let _ = (with_begin, with_closure);
}
