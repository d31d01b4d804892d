// Guarantee: a handler's `JobRun` cannot be made up.
//
// A `JobRun` carries the scope of a verified job context; only the `Worker` makes one, after
// `JobVerifier` accepted the job's sealed context. Its fields are private, so a job's scope cannot
// be built around an unverified tenant (tests/ui/pass/job_run_struct_literal.rs).

use tenant_scope::TenantDb;
use tenant_scope::jobs::JobRun;

fn make_up(db: &TenantDb, ctx: &tenant_scope::TenantContext) {
    let payload = serde_json::Value::Null;
    let _run = JobRun {
        scope: db.scope(ctx),
        id: uuid::Uuid::now_v7(),
        kind: "work",
        payload: &payload,
        attempt: 1,
    };
}

fn main() {
    let _ = make_up;
}
