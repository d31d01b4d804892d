// The right way to a `TenantContext`: verify the caller's API key
// (twin of tests/ui/fail/context_default.rs).

use tenant_scope::{ApiKeyVerifier, TenantContext, TenantDb};

async fn context(db: &TenantDb, api_key: String) -> tenant_scope::Result<TenantContext> {
    let ctx = db.verify(&ApiKeyVerifier, api_key).await?;
    Ok(ctx)
}

fn main() {
    let _ = context;
}
