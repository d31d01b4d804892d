// The right way for a service's own verifier to accept a claim: `Verified::custom` with the
// `VerifierDb` it was given, the explicit and logged entry point for a custom trust root
// (twin of tests/ui/fail/verified_outside_a_verifier.rs).

use tenant_scope::{
    Actor, Error, TenantContext, TenantDb, TenantId, TenantVerifier, Verified, VerifierDb,
};
use uuid::Uuid;

/// Accepts a platform operator's signed claim (the signature check is elided here).
struct Operators;

#[async_trait::async_trait]
impl TenantVerifier for Operators {
    type Claim = (TenantId, Uuid, bool);

    async fn verify(
        &self,
        db: &VerifierDb<'_>,
        (tenant, user, signed): Self::Claim,
    ) -> tenant_scope::Result<Verified> {
        if !signed {
            return Err(Error::Denied);
        }
        Ok(Verified::custom(db, tenant, Actor::User(user), Vec::new()))
    }
}

async fn context(
    db: &TenantDb,
    tenant: TenantId,
    user: Uuid,
) -> tenant_scope::Result<TenantContext> {
    db.verify(&Operators, (tenant, user, true)).await
}

fn main() {
    let _ = context;
}
