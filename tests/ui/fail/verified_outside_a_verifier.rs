// Guarantee: a `Verified` (what a verifier hands back, and what `TenantDb::verify` turns into a
// context) cannot be made outside a verifier: `Verified::new` is the built-in verifiers' own, its
// fields are private, and the public `Verified::custom` needs the `VerifierDb` that only
// `TenantDb::verify` hands out (tests/ui/pass/verified_outside_a_verifier.rs).

use tenant_scope::{Actor, TenantId, Verified};
use uuid::Uuid;

fn forged(tenant: TenantId) -> Verified {
    Verified::new(tenant, Actor::User(Uuid::now_v7()), Vec::new())
}

fn forged_literal(tenant: TenantId) -> Verified {
    Verified {
        tenant,
        actor: Actor::User(Uuid::now_v7()),
        permissions: Default::default(),
    }
}

fn main() {
    let _ = (forged, forged_literal);
}
