// Guarantee: a `TenantContext` cannot be made from a `TenantId` (no `From<TenantId>`, so no
// `.into()` either).
//
// A tenant id is only a name that anyone can parse; a context is proof that the caller was
// verified for that tenant (tests/ui/pass/context_from_tenant_id.rs).

use tenant_scope::{TenantContext, TenantId};

fn main() {
    let tenant = TenantId::new();
    let _a = TenantContext::from(tenant);
    let _b: TenantContext = tenant.into();
}
