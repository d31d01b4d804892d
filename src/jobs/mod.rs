//! Background jobs: a tenant's context sealed into the job, a tenant-fair queue on the database.
//!
//! A job runs as the tenant that enqueued it, never as "whoever ran last" or as nobody:
//!
//! 1. **Enqueue within a scope.** [`enqueue`] writes the job into the library's `jobs` table
//!    ([`JOBS_TABLE`], tenant-owned, row level security on PostgreSQL) through a
//!    [`TenantScope`]: in the scope's transaction if it has one (`tx.scope()` inside
//!    [`TenantDb::transaction`](crate::TenantDb::transaction)), so a job exists exactly if the
//!    write that caused it committed. The job carries the enqueuing context **sealed** ([`JobKey::seal`]): tenant, actor,
//!    permissions, request id and job id, signed with HMAC-SHA256 and expiring. A
//!    [`TenantContext`](crate::TenantContext) leaves the process in no other form.
//! 2. **Claim fairly.** A [`Worker`] takes due jobs through audited system access (one
//!    `system_audit_events` row per worker), one tenant after another in turn (round robin over
//!    the tenants with due jobs, so a tenant with a thousand jobs does not starve one with one),
//!    at most [`Worker::per_tenant_concurrency`] running jobs per tenant across all workers, with
//!    `FOR UPDATE SKIP LOCKED` on PostgreSQL and MySQL/MariaDB (SQLite serializes its writers).
//! 3. **Run only as the sealed tenant.** Before running a job the worker verifies its context with
//!    [`JobVerifier`] (signature, expiry, job id, and the tenant still exists and is active):
//!    the handler gets a [`JobRun`] whose [`scope`](JobRun::scope) is that tenant's, and no other
//!    way to reach tenant data. A job whose context does not verify is never run, and its row says
//!    why: a suspended tenant's job waits (`held`), a deleted tenant's is `cancelled`, a context
//!    that is expired, tampered with or signed with another key is a dead letter.
//! 4. **Retry, then dead-letter.** A failed handler runs again after an exponential backoff
//!    until `max_attempts`, then the job is `dead` with the last error. A worker that stops while
//!    running a job loses its lease, and another worker takes the job again (at least once).
//!
//! Every state change writes an audit event in the tenant's `audit_events` (`job.queued`,
//! `job.started`, `job.succeeded`, `job.retry`, `job.dead`, `job.held`, `job.cancelled`) in the
//! same transaction as the change. A tenant reads its own jobs with [`status`] (another tenant's job
//! id is [`Error::NotFound`], like one that never existed); a scope cannot write `jobs` itself.
//!
//! ```no_run
//! use std::time::Duration;
//! use tenant_scope::jobs::{self, JobError, JobHandler, JobKey, JobRun, NewJob, Worker};
//! use tenant_scope::{TenantContext, TenantDb};
//!
//! struct SendInvoice;
//!
//! #[async_trait::async_trait]
//! impl JobHandler for SendInvoice {
//!     async fn run(&self, job: &JobRun<'_>) -> Result<(), JobError> {
//!         let invoice = job.payload()["invoice"].as_str().unwrap_or_default();
//!         // job.scope() is the enqueuing tenant's, and only that tenant's.
//!         let _ = (invoice, job.scope().tenant());
//!         Ok(())
//!     }
//! }
//!
//! # async fn run(db: &TenantDb, ctx: &TenantContext) -> tenant_scope::Result<()> {
//! let key = JobKey::from_hex(&std::env::var("JOB_KEY").unwrap_or_default())?;
//! // In a request: the job commits with the write that caused it.
//! db.transaction(ctx, |tx| {
//!     let key = key.clone();
//!     Box::pin(async move {
//!         // ... tx.insert(invoice) ...
//!         jobs::enqueue(tx, &key, NewJob::new("send_invoice", serde_json::json!({"invoice": "42"})))
//!             .await
//!     })
//! })
//! .await?;
//! // In the worker process:
//! let worker = Worker::new(db, key, "worker-1")
//!     .await?
//!     .handler("send_invoice", SendInvoice)
//!     .per_tenant_concurrency(2);
//! worker.run_until_idle().await?;
//! # Ok(()) }
//! ```

mod seal;
mod worker;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use uuid::Uuid;

use crate::audit::{self, AuditAction};
use crate::contract::{ID_COLUMN, JOBS_TABLE, TENANT_COLUMN};
use crate::db::TenantScope;
use crate::error::{Error, Result};
use crate::exec::{audited_write, read};

pub use seal::{JobKey, JobVerifier, MIN_KEY_LEN, SealedContext};
pub use worker::{JobError, JobHandler, JobRun, Outcome, Ran, Worker};

/// How long a sealed context stays valid by default ([`NewJob::context_ttl`]): long enough for
/// the default retries.
pub const DEFAULT_CONTEXT_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How many times a job runs at most by default ([`NewJob::max_attempts`]).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// A job to enqueue: its kind (the name of the handler that runs it) and its payload.
#[derive(Clone, Debug)]
pub struct NewJob {
    kind: String,
    payload: serde_json::Value,
    max_attempts: u32,
    delay: Duration,
    ttl: Duration,
}

impl NewJob {
    /// A job of `kind` with `payload`, to run as soon as a worker is free, up to
    /// [`DEFAULT_MAX_ATTEMPTS`] times.
    pub fn new(kind: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            delay: Duration::ZERO,
            ttl: DEFAULT_CONTEXT_TTL,
        }
    }

    /// At most `attempts` runs (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Ord::max(attempts, 1);
        self
    }

    /// Not before `delay` from now.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// How long the sealed context stays valid ([`DEFAULT_CONTEXT_TTL`] by default). A job still
    /// waiting when it expires is not run: it becomes a dead letter.
    pub fn context_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for its `run_at` and a worker (also a held job of a suspended tenant, and one that
    /// waits for its next attempt).
    Queued,
    /// A worker runs it (until its lease ends).
    Running,
    /// Its handler succeeded.
    Succeeded,
    /// A dead letter: it failed on its last attempt, or it cannot run (its context does not
    /// verify, no handler knows its kind).
    Dead,
    /// Its tenant is deleted: it never runs.
    Cancelled,
}

impl JobState {
    /// The text stored in `jobs.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The state stored as `text`, `None` for text the library does not write.
    pub fn parse(text: &str) -> Option<Self> {
        [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Dead,
            JobState::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// What a tenant sees of one of its jobs ([`status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStatus {
    /// The job's id.
    pub id: Uuid,
    /// Its kind.
    pub kind: String,
    /// Where it is.
    pub state: JobState,
    /// How many times a worker has started it.
    pub attempts: u32,
    /// The most it runs.
    pub max_attempts: u32,
    /// When it may run next.
    pub run_at: DateTime<Utc>,
    /// Why it failed or did not run, if it did not succeed (the handler's error, or the reason the
    /// worker did not run it).
    pub last_error: Option<String>,
}

/// Enqueues `job` in `scope`'s tenant, with `scope`'s context sealed into it (see [`JobKey::seal`]),
/// and returns its id. On a transaction's scope it is part of that transaction.
///
/// # Errors
///
/// The database's error (nothing is enqueued).
pub async fn enqueue(scope: &TenantScope<'_>, key: &JobKey, job: NewJob) -> Result<Uuid> {
    let ctx = scope.context();
    let id = Uuid::now_v7();
    let now = Utc::now();
    let run_at = now + chrono::Duration::from_std(job.delay).unwrap_or(chrono::Duration::zero());
    let sealed = key.seal(ctx, id, job.ttl);
    let payload = job.payload.to_string();
    let mut insert = Query::insert();
    insert
        .into_table(JOBS_TABLE)
        .columns([
            TENANT_COLUMN,
            ID_COLUMN,
            "kind",
            "payload",
            "context",
            "state",
            "attempts",
            "max_attempts",
            "run_at",
            "created_at",
            "updated_at",
        ])
        .values_panic([
            Expr::val(ctx.tenant()),
            Expr::val(id),
            Expr::val(job.kind.as_str()),
            Expr::val(payload),
            Expr::val(sealed.as_str()),
            Expr::val(JobState::Queued.as_str()),
            Expr::val(0i64),
            Expr::val(i64::from(job.max_attempts)),
            Expr::val(run_at),
            Expr::val(now),
            Expr::val(now),
        ]);
    let span = crate::trace::op_span("enqueue", JOBS_TABLE, Some(ctx));
    audited_write!(scope.exec(), ctx.tenant(), span, |conn| {
        sea_orm::ConnectionTrait::execute(&conn, &insert)
            .await
            .map_err(Error::from_db)?;
        audit::record(
            &conn,
            ctx,
            AuditAction::JobQueued,
            JOBS_TABLE,
            Some(id.into()),
        )
        .await?;
        Ok(id)
    })
}

/// One of `scope`'s tenant's jobs.
///
/// # Errors
///
/// [`Error::NotFound`] if the tenant has no such job (another tenant's job included).
pub async fn status(scope: &TenantScope<'_>, job: Uuid) -> Result<JobStatus> {
    let ctx = scope.context();
    let mut select = Query::select();
    select
        .columns([
            "kind",
            "state",
            "attempts",
            "max_attempts",
            "run_at",
            "last_error",
        ])
        .from(JOBS_TABLE)
        .and_where(Expr::col(TENANT_COLUMN).eq(ctx.tenant()))
        .and_where(Expr::col(ID_COLUMN).eq(job));
    let span = crate::trace::op_span("job_status", JOBS_TABLE, Some(ctx));
    let rows = read!(scope.exec(), Some(ctx.tenant()), span, |conn| {
        sea_orm::ConnectionTrait::query_all(&conn, &select).await
    })?;
    let row = rows.first().ok_or(Error::NotFound)?;
    let get = |e: sea_orm::DbErr| Error::from_db(e);
    let state: String = row.try_get_by_index(1).map_err(get)?;
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(JobStatus {
        id: job,
        kind: row.try_get_by_index(0).map_err(get)?,
        state: JobState::parse(&state)
            .ok_or_else(|| Error::Invalid(format!("unknown job state {state:?}")))?,
        attempts: count(row.try_get_by_index(2).map_err(get)?),
        max_attempts: count(row.try_get_by_index(3).map_err(get)?),
        run_at: row.try_get_by_index(4).map_err(get)?,
        last_error: row.try_get_by_index(5).map_err(get)?,
    })
}
