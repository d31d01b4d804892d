// Guarantee: a `TenantContext` cannot be built by struct literal.
//
// Its fields are private, so the only way to a context is `TenantDb::verify` with a
// `TenantVerifier` (tests/ui/pass/context_struct_literal.rs).

use std::collections::BTreeSet;

use tenant_scope::{Actor, TenantContext, TenantId};
use uuid::Uuid;

fn main() {
    let _ctx = TenantContext {
        tenant: TenantId::new(),
        actor: Actor::User(Uuid::now_v7()),
        permissions: BTreeSet::new(),
        request_id: String::from("forged"),
    };
}
