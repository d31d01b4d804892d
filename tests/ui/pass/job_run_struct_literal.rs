// The right way to a `JobRun`: register a handler with a `Worker`, which verifies each job's
// sealed context and hands the handler its tenant's scope
// (twin of tests/ui/fail/job_run_struct_literal.rs).

use tenant_scope::TenantDb;
use tenant_scope::jobs::{JobError, JobHandler, JobKey, JobRun, Worker};

struct Handler;

#[async_trait::async_trait]
impl JobHandler for Handler {
    async fn run(&self, job: &JobRun<'_>) -> Result<(), JobError> {
        let _tenant = job.scope().tenant();
        Ok(())
    }
}

async fn work(db: &TenantDb, key: JobKey) -> tenant_scope::Result<()> {
    let worker = Worker::new(db, key, "worker-1").await?.handler("work", Handler);
    worker.run_until_idle().await?;
    Ok(())
}

fn main() {
    let _ = work;
}
