// The right way back from a sealed job context: verify it with `JobVerifier`
// (twin of tests/ui/fail/sealed_context_is_not_a_context.rs). A job handler never does this
// itself: the `Worker` verifies each job's context and hands the handler the scope.

use tenant_scope::TenantDb;
use tenant_scope::jobs::{JobKey, JobVerifier, SealedContext};
use uuid::Uuid;

async fn scope_from_token(db: &TenantDb, key: JobKey, token: String, job: Uuid) -> tenant_scope::Result<()> {
    let sealed = SealedContext::from_stored(token);
    let ctx = db.verify(&JobVerifier::new(key), (sealed, job)).await?;
    let _scope = db.scope(&ctx);
    Ok(())
}

fn main() {
    let _ = scope_from_token;
}
