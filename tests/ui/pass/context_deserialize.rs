// The right way to get a context from a request: deserialize the claim (here a tenant and a user
// id), then verify it (twin of tests/ui/fail/context_deserialize.rs).

use serde::Deserialize;
use tenant_scope::{MembershipVerifier, TenantContext, TenantDb, TenantId};
use uuid::Uuid;

#[derive(Deserialize)]
struct Claim {
    tenant: TenantId,
    user: Uuid,
}

async fn context(db: &TenantDb, body: &str) -> tenant_scope::Result<TenantContext> {
    let claim: Claim = serde_json::from_str(body)
        .map_err(|_| tenant_scope::Error::Invalid("malformed claim".into()))?;
    db.verify(&MembershipVerifier, (claim.tenant, claim.user))
        .await
}

fn main() {
    let _ = context;
}
