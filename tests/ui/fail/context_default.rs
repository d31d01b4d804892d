// Guarantee: a `TenantContext` cannot be made with `Default`.
//
// There is no "empty" or "any tenant" context: the only way to a context is `TenantDb::verify`
// with a `TenantVerifier` (tests/ui/pass/context_default.rs).

use tenant_scope::TenantContext;

fn main() {
    let _a = TenantContext::default();
    let _b: TenantContext = Default::default();
}
