//! [`Worker`]: takes due jobs fairly across tenants and runs each as its sealed tenant.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt as _;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult};
use uuid::Uuid;

use super::JobState;
use super::seal::{JobKey, JobVerifier, SealedContext};
use crate::audit::{self, AuditAction};
use crate::contract::{ID_COLUMN, JOBS_TABLE, TENANT_COLUMN, TENANTS_TABLE};
use crate::db::{SystemDb, TenantDb, TenantScope};
use crate::error::{Error, Result};
use crate::exec::{Exec, Pool};
use crate::provision::{self, TenantStatus};
use crate::tenant::{TenantContext, TenantId};

/// The work of one kind of job.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync {
    /// Runs one job. `job.scope()` is the job's tenant's handle, made from its verified sealed
    /// context; it is the only way the handler reaches tenant data. An `Err` runs the job again
    /// later (unless [`JobError::fatal`] or it was the last attempt); a panic counts as an `Err`.
    async fn run(&self, job: &JobRun<'_>) -> std::result::Result<(), JobError>;
}

/// One run of a job, as its handler sees it.
pub struct JobRun<'a> {
    scope: TenantScope<'a>,
    id: Uuid,
    kind: &'a str,
    payload: &'a serde_json::Value,
    attempt: u32,
}

impl<'a> JobRun<'a> {
    /// The handle of the job's tenant, as the context sealed into the job (its actor, its
    /// permissions, its request id).
    pub fn scope(&self) -> &TenantScope<'a> {
        &self.scope
    }

    /// The job's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The job's kind.
    pub fn kind(&self) -> &str {
        self.kind
    }

    /// The job's payload.
    pub fn payload(&self) -> &serde_json::Value {
        self.payload
    }

    /// Which run this is: 1 for the first.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

impl fmt::Debug for JobRun<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobRun")
            .field("tenant", &self.scope.tenant())
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

/// Why a handler failed: stored on the job as its `last_error`, which its tenant can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobError {
    message: String,
    retry: bool,
}

impl JobError {
    /// A failure worth another attempt (a timeout, a service that is down).
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: true,
        }
    }

    /// A failure no retry can mend (bad input): the job becomes a dead letter now.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: false,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retry
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JobError {}

impl From<Error> for JobError {
    /// The library's errors are retried (their text never carries driver or other tenants' data).
    fn from(error: Error) -> Self {
        JobError::retry(error.to_string())
    }
}

/// What became of a job a worker took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its handler succeeded.
    Succeeded,
    /// Its handler failed; it runs again at `at`.
    Retrying {
        /// When it may run again.
        at: DateTime<Utc>,
        /// The handler's error.
        error: String,
    },
    /// A dead letter: the last attempt failed, or the job cannot run.
    Dead {
        /// Why.
        error: String,
    },
    /// Not run: its tenant is suspended; it waits and is tried again later.
    Held {
        /// Why.
        reason: String,
    },
    /// Not run, and never will be: its tenant is deleted.
    Cancelled {
        /// Why.
        reason: String,
    },
}

/// A job a worker took, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ran {
    /// The job.
    pub job: Uuid,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its kind.
    pub kind: String,
    /// What became of it.
    pub outcome: Outcome,
}

/// A job taken by this worker.
struct Claimed {
    tenant: TenantId,
    id: Uuid,
    kind: String,
    payload: String,
    context: SealedContext,
    /// The request id sealed into the job if its context opens with the worker's key (else the
    /// job's id), read once when the job is taken: the request id of the job's audit events and
    /// of the context its handler runs under.
    request_id: String,
    attempts: u32,
    max_attempts: u32,
}

/// Takes due jobs and runs them (see the [module](super) documentation).
///
/// It works through one audited system access, opened by [`Worker::new`] with the reason
/// `job worker <name>`: taking jobs crosses tenants. Running one never does: the handler gets the
/// job's tenant's scope only.
pub struct Worker<'a> {
    db: &'a TenantDb,
    system: SystemDb<'a>,
    key: JobKey,
    name: String,
    handlers: HashMap<String, Arc<dyn JobHandler>>,
    per_tenant: u32,
    lease: Duration,
    backoff: (Duration, Duration),
    hold: Duration,
    /// The tenant served last, for the round robin.
    last: Mutex<Option<TenantId>>,
}

impl fmt::Debug for Worker<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .field("per_tenant", &self.per_tenant)
            .finish_non_exhaustive()
    }
}

impl<'a> Worker<'a> {
    /// A worker named `name` (in the jobs it takes and in its audit event) for jobs sealed with
    /// `key`. By default it runs at most 1 job per tenant at once, holds a job for 5 minutes
    /// ([`lease`](Self::lease)), retries after 1 s, 2 s, 4 s, ... up to 1 hour, and looks at a
    /// suspended tenant's job again after 1 minute.
    ///
    /// # Errors
    ///
    /// As [`TenantDb::system`].
    pub async fn new(db: &'a TenantDb, key: JobKey, name: &str) -> Result<Self> {
        let system = db.system(&format!("job worker {name}")).await?;
        Ok(Self {
            db,
            system,
            key,
            name: name.to_owned(),
            handlers: HashMap::new(),
            per_tenant: 1,
            lease: Duration::from_secs(300),
            backoff: (Duration::from_secs(1), Duration::from_secs(3600)),
            hold: Duration::from_secs(60),
            last: Mutex::new(None),
        })
    }

    /// Runs jobs of `kind` with `handler`.
    pub fn handler(mut self, kind: &str, handler: impl JobHandler + 'static) -> Self {
        self.handlers.insert(kind.to_owned(), Arc::new(handler));
        self
    }

    /// At most `jobs` running jobs per tenant at once (at least 1), counted over every worker.
    pub fn per_tenant_concurrency(mut self, jobs: u32) -> Self {
        self.per_tenant = Ord::max(jobs, 1);
        self
    }

    /// How long a taken job is this worker's: past it (a worker that stopped) another worker
    /// takes it again, as another attempt.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Retries after `base`, then twice as long each time, at most `max`.
    pub fn retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = (base, max);
        self
    }

    /// How long a suspended tenant's job waits before it is looked at again.
    pub fn hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// Takes one due job, if there is one, runs it and records what became of it.
    ///
    /// # Errors
    ///
    /// The database's errors (a job taken but not finished is taken again when its lease ends).
    pub async fn run_once(&self) -> Result<Option<Ran>> {
        let Some(job) = self.claim().await? else {
            return Ok(None);
        };
        let outcome = self.decide(&job).await;
        self.finish(&job, &outcome).await?;
        Ok(Some(Ran {
            job: job.id,
            tenant: job.tenant,
            kind: job.kind,
            outcome,
        }))
    }

    /// Runs due jobs until there are none.
    ///
    /// # Errors
    ///
    /// As [`run_once`](Self::run_once).
    pub async fn run_until_idle(&self) -> Result<Vec<Ran>> {
        let mut ran = Vec::new();
        while let Some(one) = self.run_once().await? {
            ran.push(one);
        }
        Ok(ran)
    }

    /// What to do with a job this worker took: run it if its context verifies, else say why not.
    async fn decide(&self, job: &Claimed) -> Outcome {
        if job.attempts > job.max_attempts {
            return Outcome::Dead {
                error: "its worker stopped while running it, and it has no attempts left".into(),
            };
        }
        let verifier = JobVerifier::new(self.key.clone());
        let ctx = match self
            .db
            .verify(&verifier, (job.context.clone(), job.id))
            .await
        {
            Ok(ctx) => ctx,
            Err(_) => return self.why_not(job).await,
        };
        if ctx.tenant() != job.tenant {
            // A token copied into another tenant's row (by someone who can write the table).
            return Outcome::Dead {
                error: "not run: its context was sealed for another tenant".into(),
            };
        }
        let ctx = ctx.with_request_id(job.request_id.clone());
        let Some(handler) = self.handlers.get(&job.kind) else {
            return Outcome::Dead {
                error: format!("no handler for jobs of kind {:?}", job.kind),
            };
        };
        self.run_handler(handler.as_ref(), job, &ctx).await
    }

    /// Why a job's context did not verify.
    async fn why_not(&self, job: &Claimed) -> Outcome {
        if let Err(unsealed) = self.key.inspect(&job.context, job.id) {
            return Outcome::Dead {
                error: format!("not run: {}", unsealed.reason()),
            };
        }
        match provision::tenant_status(&self.system, job.tenant).await {
            Ok(Some(TenantStatus::Suspended)) => Outcome::Held {
                reason: "not run: the tenant is suspended".into(),
            },
            Ok(Some(TenantStatus::Deleted) | None) => Outcome::Cancelled {
                reason: "not run: the tenant is deleted".into(),
            },
            // Active again, or the check failed: look again later, as for a held job.
            Ok(Some(TenantStatus::Active)) | Err(_) => Outcome::Held {
                reason: "not run: its context could not be verified just now".into(),
            },
        }
    }

    async fn run_handler(
        &self,
        handler: &dyn JobHandler,
        job: &Claimed,
        ctx: &TenantContext,
    ) -> Outcome {
        let payload = serde_json::from_str(&job.payload).unwrap_or(serde_json::Value::Null);
        let run = JobRun {
            scope: self.db.scope(ctx),
            id: job.id,
            kind: &job.kind,
            payload: &payload,
            attempt: job.attempts,
        };
        let result = std::panic::AssertUnwindSafe(handler.run(&run))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(JobError::retry("the handler panicked")));
        match result {
            Ok(()) => Outcome::Succeeded,
            Err(error) if error.retry && job.attempts < job.max_attempts => Outcome::Retrying {
                at: Utc::now() + chrono_of(self.backoff_after(job.attempts)),
                error: error.message,
            },
            Err(error) => Outcome::Dead {
                error: error.message,
            },
        }
    }

    /// The wait before the attempt after `attempts`.
    fn backoff_after(&self, attempts: u32) -> Duration {
        let (base, max) = self.backoff;
        let doubled = base.saturating_mul(1u32 << Ord::min(attempts.saturating_sub(1), 30));
        doubled.min(max)
    }

    fn pool(&self) -> Result<&'a Pool> {
        self.system
            .pool()
            .ok_or_else(|| Error::Config("the job worker needs its own system access".into()))
    }

    fn backend(&self) -> DbBackend {
        self.db.backend()
    }

    /// Takes the next due job: the tenants with due jobs in turn after the one served last, each
    /// only while it runs fewer than its limit of jobs.
    async fn claim(&self) -> Result<Option<Claimed>> {
        let now = Utc::now();
        let mut select = Query::select();
        select
            .distinct()
            .column(TENANT_COLUMN)
            .from(JOBS_TABLE)
            .cond_where(due(now))
            .order_by(TENANT_COLUMN, Order::Asc);
        let rows = self.system.query_statement(&select).await?;
        let mut tenants: Vec<TenantId> = rows
            .iter()
            .map(|row| row.try_get_by_index(0).map_err(Error::from_db))
            .collect::<Result<_>>()?;
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = last {
            let after = tenants.iter().position(|t| *t > last).unwrap_or(0);
            tenants.rotate_left(after);
        }
        for tenant in tenants {
            if let Some(job) = self.claim_of(tenant, now).await? {
                *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(tenant);
                return Ok(Some(job));
            }
        }
        Ok(None)
    }

    /// Takes `tenant`'s oldest due job if it runs fewer jobs than the limit: in one transaction
    /// that first locks the tenant's row, so that two workers count its running jobs one after
    /// the other.
    async fn claim_of(&self, tenant: TenantId, now: DateTime<Utc>) -> Result<Option<Claimed>> {
        let backend = self.backend();
        let tx = self.pool()?.begin_system(None, None).await?;
        let conn = Exec::Tx(&tx).open(Some(tenant)).await?;
        let mut lock = Query::select();
        lock.column(ID_COLUMN)
            .from(TENANTS_TABLE)
            .and_where(Expr::col(ID_COLUMN).eq(tenant));
        match backend {
            DbBackend::Postgres => drop(lock.lock(LockType::NoKeyUpdate)),
            DbBackend::MySql => drop(lock.lock(LockType::Update)),
            _ => {}
        }
        conn.query_all(&lock).await.map_err(Error::from_db)?;
        let mut running = Query::select();
        running
            .expr(Expr::col(ID_COLUMN).count())
            .from(JOBS_TABLE)
            .and_where(Expr::col(TENANT_COLUMN).eq(tenant))
            .and_where(Expr::col("state").eq(JobState::Running.as_str()))
            .and_where(Expr::col("locked_until").gte(now));
        let count: i64 = first(conn.query_all(&running).await.map_err(Error::from_db)?)?
            .try_get_by_index(0)
            .map_err(Error::from_db)?;
        if count >= i64::from(self.per_tenant) {
            drop(conn);
            tx.rollback().await?;
            return Ok(None);
        }
        let mut pick = Query::select();
        pick.columns([
            ID_COLUMN,
            "kind",
            "payload",
            "context",
            "attempts",
            "max_attempts",
        ])
        .from(JOBS_TABLE)
        .and_where(Expr::col(TENANT_COLUMN).eq(tenant))
        .cond_where(due(now))
        .order_by("run_at", Order::Asc)
        .order_by(ID_COLUMN, Order::Asc)
        .limit(1);
        if matches!(backend, DbBackend::Postgres | DbBackend::MySql) {
            pick.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = conn.query_all(&pick).await.map_err(Error::from_db)?;
        let Some(row) = rows.first() else {
            drop(conn);
            tx.rollback().await?;
            return Ok(None);
        };
        let job = claimed(&self.key, tenant, row)?;
        let mut take = Query::update();
        take.table(JOBS_TABLE)
            .value("state", JobState::Running.as_str())
            .value("attempts", Expr::col("attempts").add(1))
            .value("locked_until", now + chrono_of(self.lease))
            .value("worker", self.name.as_str())
            .value("updated_at", now)
            .and_where(Expr::col(TENANT_COLUMN).eq(tenant))
            .and_where(Expr::col(ID_COLUMN).eq(job.id))
            .cond_where(due(now));
        if conn
            .execute(&take)
            .await
            .map_err(Error::from_db)?
            .rows_affected()
            != 1
        {
            drop(conn);
            tx.rollback().await?;
            return Ok(None);
        }
        let ctx = self.event_context(&job);
        audit::record(
            &conn,
            &ctx,
            AuditAction::JobStarted,
            JOBS_TABLE,
            Some(job.id.into()),
        )
        .await?;
        drop(conn);
        tx.commit().await?;
        Ok(Some(Claimed {
            attempts: job.attempts + 1,
            ..job
        }))
    }

    /// Records `outcome` on `job` (still this worker's) with its audit event, in one transaction.
    async fn finish(&self, job: &Claimed, outcome: &Outcome) -> Result<()> {
        let now = Utc::now();
        let mut update = Query::update();
        update
            .table(JOBS_TABLE)
            .value("locked_until", Expr::val(None::<DateTime<Utc>>))
            .value("worker", Expr::val(None::<String>))
            .value("updated_at", now);
        let action = match outcome {
            Outcome::Succeeded => {
                update
                    .value("state", JobState::Succeeded.as_str())
                    .value("last_error", Expr::val(None::<String>));
                AuditAction::JobSucceeded
            }
            Outcome::Retrying { at, error } => {
                update
                    .value("state", JobState::Queued.as_str())
                    .value("run_at", *at)
                    .value("last_error", error.as_str());
                AuditAction::JobRetry
            }
            Outcome::Dead { error } => {
                update
                    .value("state", JobState::Dead.as_str())
                    .value("last_error", error.as_str());
                AuditAction::JobDead
            }
            Outcome::Held { reason } => {
                // Not an attempt: it did not run.
                update
                    .value("state", JobState::Queued.as_str())
                    .value("attempts", Expr::col("attempts").sub(1))
                    .value("run_at", now + chrono_of(self.hold))
                    .value("last_error", reason.as_str());
                AuditAction::JobHeld
            }
            Outcome::Cancelled { reason } => {
                update
                    .value("state", JobState::Cancelled.as_str())
                    .value("attempts", Expr::col("attempts").sub(1))
                    .value("last_error", reason.as_str());
                AuditAction::JobCancelled
            }
        };
        update
            .and_where(Expr::col(TENANT_COLUMN).eq(job.tenant))
            .and_where(Expr::col(ID_COLUMN).eq(job.id))
            .and_where(Expr::col("state").eq(JobState::Running.as_str()))
            .and_where(Expr::col("worker").eq(self.name.as_str()));
        let tx = self.pool()?.begin_system(None, None).await?;
        let conn = Exec::Tx(&tx).open(Some(job.tenant)).await?;
        if conn
            .execute(&update)
            .await
            .map_err(Error::from_db)?
            .rows_affected()
            != 1
        {
            // Its lease ended and another worker took it: that worker records its own outcome.
            tracing::warn!(
                target: "tenant_scope::jobs",
                job = %job.id,
                worker = %self.name,
                "a job outlived its lease; its outcome here is not recorded"
            );
            drop(conn);
            return tx.rollback().await;
        }
        let ctx = self.event_context(job);
        audit::record(&conn, &ctx, action, JOBS_TABLE, Some(job.id.into())).await?;
        drop(conn);
        tx.commit().await
    }

    /// The context of the worker's audit events about `job`: the worker's system access in the
    /// job's tenant, with the job's request id ([`Claimed::request_id`]).
    fn event_context(&self, job: &Claimed) -> TenantContext {
        self.system
            .context_for(job.tenant)
            .with_request_id(job.request_id.clone())
    }
}

/// Due: queued and its time has come, or running past its lease (its worker stopped).
fn due(now: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(
            Expr::col("state")
                .eq(JobState::Queued.as_str())
                .and(Expr::col("run_at").lte(now)),
        )
        .add(
            Expr::col("state")
                .eq(JobState::Running.as_str())
                .and(Expr::col("locked_until").lt(now)),
        )
}

fn chrono_of(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

fn first(rows: Vec<QueryResult>) -> Result<QueryResult> {
    rows.into_iter()
        .next()
        .ok_or_else(|| Error::Invalid("a count returned no row".into()))
}

fn claimed(key: &JobKey, tenant: TenantId, row: &QueryResult) -> Result<Claimed> {
    let get = Error::from_db;
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    let id: Uuid = row.try_get_by_index(0).map_err(get)?;
    let context = SealedContext::from_stored(row.try_get_by_index::<String>(3).map_err(get)?);
    let request_id = match key.inspect(&context, id) {
        Ok(claims) => claims.request_id,
        Err(_) => id.to_string(),
    };
    Ok(Claimed {
        tenant,
        id,
        kind: row.try_get_by_index(1).map_err(get)?,
        payload: row.try_get_by_index(2).map_err(get)?,
        context,
        request_id,
        attempts: count(row.try_get_by_index(4).map_err(get)?),
        max_attempts: count(row.try_get_by_index(5).map_err(get)?),
    })
}
