// Guarantee: a sealed job context is not a `TenantContext`.
//
// A context leaves the process only sealed (`JobKey::seal`), and nothing that needs a context
// takes the sealed form: it comes back only through `JobVerifier`, which checks its signature, its
// expiry, its job and that its tenant is still active (tests/ui/pass/sealed_context_is_not_a_context.rs).

use tenant_scope::jobs::SealedContext;
use tenant_scope::{TenantContext, TenantDb};

fn scope_from_token(db: &TenantDb, token: String) {
    let sealed = SealedContext::from_stored(token);
    let _scope = db.scope(&sealed);
    let _ctx: TenantContext = sealed.into();
}

fn main() {
    let _ = scope_from_token;
}
