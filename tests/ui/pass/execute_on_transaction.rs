// The right way to query inside a transaction: through the tenant handle of the transaction
// (twin of tests/ui/fail/execute_on_transaction.rs).

use entity::projects;
use tenant_scope::{TenantContext, TenantDb};

async fn with_begin(db: &TenantDb, ctx: &TenantContext) -> tenant_scope::Result<()> {
    let tx = db.begin(ctx).await?;
    let _rows = tx.scope().find::<projects::Entity>().all().await?;
    tx.commit().await
}

async fn with_closure(db: &TenantDb, ctx: &TenantContext) -> tenant_scope::Result<()> {
    db.transaction(ctx, |tx| {
        Box::pin(async move {
            let _rows = tx.find::<projects::Entity>().all().await?;
            Ok::<_, tenant_scope::Error>(())
        })
    })
    .await
}

fn main() {
    let _ = (with_begin, with_closure);
}
