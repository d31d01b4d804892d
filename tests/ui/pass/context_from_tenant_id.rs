// The right way from a `TenantId` to a `TenantContext`: verify that the caller belongs to it
// (here with `MembershipVerifier`, a user of the tenant) (twin of
// tests/ui/fail/context_from_tenant_id.rs).

use tenant_scope::{MembershipVerifier, TenantContext, TenantDb, TenantId};
use uuid::Uuid;

async fn context(
    db: &TenantDb,
    tenant: TenantId,
    user: Uuid,
) -> tenant_scope::Result<TenantContext> {
    db.verify(&MembershipVerifier, (tenant, user)).await
}

fn main() {
    let _ = context;
}
