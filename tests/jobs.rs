//! Background jobs (`tenant_scope::jobs`), on every backend: a job runs only as the tenant whose
//! sealed context it carries, commits with the write that enqueued it, is never run when its
//! context does not verify (and says why), waits while its tenant is suspended, is cancelled when
//! its tenant is deleted, retries with backoff into a dead letter, takes turns with other
//! tenants' jobs, keeps to the per-tenant limit across workers, is taken again when its worker
//! stops, and writes an audit event per state change.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use entity::{audit_events, jobs as job_rows, projects};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait};
use tenant_scope::jobs::{
    self, JobError, JobHandler, JobKey, JobRun, JobState, NewJob, Outcome, Worker,
};
use tenant_scope::provision::{self, TenantStatus};
use tenant_scope::{Actor, Error, TenantContext, TenantDb, TenantId};
use test_support::{TestDb, project_names};
use tokio::sync::Notify;
use uuid::Uuid;

/// What a handler saw of one run.
#[derive(Clone, Debug)]
struct Seen {
    tenant: TenantId,
    actor: Actor,
    request_id: String,
    attempt: u32,
    payload: serde_json::Value,
}

/// Records each run, then does what `then` says.
#[derive(Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    then: Then,
}

#[derive(Clone)]
enum Then {
    /// Insert a project named after the payload's `name`, as the job's tenant.
    Insert,
    Fail(bool),
    Panic,
    /// Wait for `release`, after saying it started.
    Block {
        started: Arc<Notify>,
        release: Arc<Notify>,
    },
}

impl Recorder {
    fn new(then: Then) -> Self {
        Self {
            seen: Arc::default(),
            then,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl JobHandler for Recorder {
    async fn run(&self, job: &JobRun<'_>) -> Result<(), JobError> {
        let ctx = job.scope().context();
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Seen {
                tenant: job.scope().tenant(),
                actor: ctx.actor().clone(),
                request_id: ctx.request_id().to_owned(),
                attempt: job.attempt(),
                payload: job.payload().clone(),
            });
        match &self.then {
            Then::Insert => {
                let name = job.payload()["name"]
                    .as_str()
                    .unwrap_or("unnamed")
                    .to_owned();
                job.scope()
                    .insert(projects::ActiveModel {
                        name: Set(name),
                        created_at: Set(Utc::now()),
                        ..Default::default()
                    })
                    .await?;
                Ok(())
            }
            Then::Fail(retry) if *retry => Err(JobError::retry("the mail server is down")),
            Then::Fail(_) => Err(JobError::fatal("no such invoice")),
            Then::Panic => panic!("a handler bug"),
            Then::Block { started, release } => {
                started.notify_one();
                release.notified().await;
                Ok(())
            }
        }
    }
}

fn job(name: &str) -> NewJob {
    NewJob::new("work", serde_json::json!({ "name": name }))
}

async fn enqueue(db: &TenantDb, ctx: &TenantContext, key: &JobKey, new: NewJob) -> Uuid {
    jobs::enqueue(&db.scope(ctx), key, new)
        .await
        .expect("enqueue")
}

async fn worker<'a>(db: &'a TenantDb, key: &JobKey, name: &str, handler: &Recorder) -> Worker<'a> {
    Worker::new(db, key.clone(), name)
        .await
        .expect("a worker")
        .handler("work", handler.clone())
        .retry_backoff(Duration::ZERO, Duration::ZERO)
}

/// The actions of the audit events about `job`, in order.
async fn job_events(db: &TenantDb, ctx: &TenantContext, job: Uuid) -> Vec<String> {
    db.scope(ctx)
        .find::<audit_events::Entity>()
        .filter(audit_events::Column::RowId.eq(job))
        .order_by_asc(audit_events::Column::Id)
        .all()
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.action)
        .collect()
}

test_support::backend_test!(
    a_job_runs_as_the_tenant_that_enqueued_it,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (a, b) = test_support::two_tenants(&db, &[]).await;
        let key = JobKey::generate();
        let handler = Recorder::new(Then::Insert);
        // Enqueued in the transaction of the write that causes it.
        let id = db
            .transaction(&a.ctx, |tx| {
                let key = key.clone();
                Box::pin(async move {
                    tx.insert(projects::ActiveModel {
                        name: Set("invoice run".into()),
                        created_at: Set(Utc::now()),
                        ..Default::default()
                    })
                    .await?;
                    jobs::enqueue(tx, &key, job("made by the job")).await
                })
            })
            .await
            .expect("the transaction");
        let queued = jobs::status(&db.scope(&a.ctx), id).await.expect("status");
        assert_eq!((queued.state, queued.attempts), (JobState::Queued, 0));
        let w = worker(&db, &key, "w1", &handler).await;
        let ran = w.run_until_idle().await.expect("runs");
        assert_eq!(ran.len(), 1);
        assert_eq!((ran[0].job, ran[0].tenant), (id, a.id));
        assert_eq!(ran[0].outcome, Outcome::Succeeded);
        let seen = handler.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].tenant, a.id);
        assert_eq!(&seen[0].actor, a.ctx.actor(), "the sealed actor");
        assert_eq!(
            seen[0].request_id,
            a.ctx.request_id(),
            "the sealed request id"
        );
        assert_eq!(seen[0].attempt, 1);
        assert_eq!(seen[0].payload["name"], "made by the job");
        assert_eq!(
            project_names(&db, &a.job).await,
            ["invoice run", "made by the job"]
        );
        assert!(
            project_names(&db, &b.job).await.is_empty(),
            "nothing reached the other tenant"
        );
        let done = jobs::status(&db.scope(&a.ctx), id).await.expect("status");
        assert_eq!(
            (done.state, done.attempts, done.last_error),
            (JobState::Succeeded, 1, None)
        );
        assert_eq!(
            job_events(&db, &a.job, id).await,
            ["job.queued", "job.started", "job.succeeded"]
        );
        // Another tenant's job id is an id that never existed.
        let theirs = jobs::status(&db.scope(&b.ctx), id).await;
        assert!(matches!(theirs, Err(Error::NotFound)), "{theirs:?}");
        let never = jobs::status(&db.scope(&b.ctx), Uuid::now_v7()).await;
        assert!(matches!(never, Err(Error::NotFound)), "{never:?}");
        assert!(w.run_once().await.expect("idle").is_none());
    }
);

test_support::backend_test!(
    a_job_exists_only_if_its_transaction_commits,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (a, _b) = test_support::two_tenants(&db, &[]).await;
        let key = JobKey::generate();
        let enqueued = Arc::new(Mutex::new(None));
        let result: Result<(), Error> = db
            .transaction(&a.ctx, |tx| {
                let (key, enqueued) = (key.clone(), Arc::clone(&enqueued));
                Box::pin(async move {
                    let id = jobs::enqueue(tx, &key, job("rolled back")).await?;
                    *enqueued.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
                    Err(Error::Invalid("the request failed".into()))
                })
            })
            .await;
        assert!(result.is_err());
        let id = enqueued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .expect("an id");
        let gone = jobs::status(&db.scope(&a.ctx), id).await;
        assert!(matches!(gone, Err(Error::NotFound)), "{gone:?}");
        let handler = Recorder::new(Then::Insert);
        assert!(
            worker(&db, &key, "w", &handler)
                .await
                .run_once()
                .await
                .expect("run")
                .is_none()
        );
        assert!(handler.seen().is_empty());
    }
);

test_support::backend_test!(
    a_context_that_does_not_verify_is_never_run,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (a, b) = test_support::two_tenants(&db, &[]).await;
        let key = JobKey::generate();
        let handler = Recorder::new(Then::Insert);
        // Expired.
        let expired = enqueue(
            &db,
            &a.ctx,
            &key,
            job("expired").context_ttl(Duration::ZERO),
        )
        .await;
        // Another key's.
        let other = enqueue(&db, &a.ctx, &JobKey::generate(), job("other key")).await;
        // Tampered with: A's job made to carry B's sealed context (sealed for B's own job).
        let forged = enqueue(&db, &a.ctx, &key, job("forged")).await;
        let b_job = enqueue(&db, &b.ctx, &key, job("b's")).await;
        let b_token: String = t
            .raw()
            .query_one(
                &Query::select()
                    .column("context")
                    .from("jobs")
                    .and_where(Expr::col("id").eq(b_job))
                    .to_owned(),
            )
            .await
            .expect("read")
            .expect("row")
            .try_get_by_index(0)
            .expect("token");
        t.raw()
            .execute(
                &Query::update()
                    .table("jobs")
                    .value("context", b_token)
                    .and_where(Expr::col("id").eq(forged))
                    .to_owned(),
            )
            .await
            .expect("tamper");
        let w = worker(&db, &key, "w", &handler).await;
        let ran = w.run_until_idle().await.expect("runs");
        let outcome = |id: Uuid| {
            ran.iter()
                .find(|r| r.job == id)
                .map(|r| r.outcome.clone())
                .unwrap_or_else(|| panic!("{id} was taken"))
        };
        let dead = |reason: &str| Outcome::Dead {
            error: format!("not run: {reason}"),
        };
        assert_eq!(outcome(expired), dead("its context has expired"));
        assert_eq!(
            outcome(other),
            dead("its context is not signed with this worker's job key")
        );
        assert_eq!(
            outcome(forged),
            dead("its context was sealed for another job")
        );
        assert_eq!(outcome(b_job), Outcome::Succeeded);
        // Only B's own job ran, as B.
        let seen = handler.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].tenant, b.id);
        assert!(project_names(&db, &a.job).await.is_empty());
        for id in [expired, other, forged] {
            let status = jobs::status(&db.scope(&a.ctx), id).await.expect("status");
            assert_eq!(status.state, JobState::Dead);
            assert!(
                status
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("not run: "))
            );
            assert_eq!(
                job_events(&db, &a.job, id).await,
                ["job.queued", "job.started", "job.dead"]
            );
        }
    }
);

test_support::backend_test!(
    a_suspended_tenants_jobs_wait_and_a_deleted_tenants_are_cancelled,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (a, b) = test_support::two_tenants(&db, &[]).await;
        let key = JobKey::generate();
        let handler = Recorder::new(Then::Insert);
        let waits = enqueue(&db, &a.ctx, &key, job("after the suspension")).await;
        let never = enqueue(&db, &b.ctx, &key, job("never")).await;
        let system = db
            .system("suspend and delete tenants")
            .await
            .expect("system");
        provision::set_status(&system, a.id, TenantStatus::Suspended)
            .await
            .expect("suspend");
        provision::set_status(&system, b.id, TenantStatus::Deleted)
            .await
            .expect("delete");
        let w = worker(&db, &key, "w", &handler).await.hold(Duration::ZERO);
        let first = w.run_once().await.expect("run").expect("a job");
        let second = w.run_once().await.expect("run").expect("a job");
        let mut outcomes = [first, second];
        outcomes.sort_by_key(|r| r.job);
        assert_eq!(
            outcomes
                .iter()
                .map(|r| (r.job, r.outcome.clone()))
                .collect::<Vec<_>>(),
            vec![
                (
                    waits,
                    Outcome::Held {
                        reason: "not run: the tenant is suspended".into()
                    }
                ),
                (
                    never,
                    Outcome::Cancelled {
                        reason: "not run: the tenant is deleted".into()
                    }
                ),
            ]
        );
        assert!(handler.seen().is_empty(), "nothing ran");
        let held = jobs::status(&db.scope(&a.job), waits)
            .await
            .expect("status");
        assert_eq!(
            (held.state, held.attempts),
            (JobState::Queued, 0),
            "not an attempt"
        );
        assert_eq!(
            held.last_error.as_deref(),
            Some("not run: the tenant is suspended")
        );
        // Active again: it runs.
        provision::set_status(&system, a.id, TenantStatus::Active)
            .await
            .expect("resume");
        let ran = w.run_until_idle().await.expect("runs");
        assert_eq!(ran.len(), 1, "{ran:?}");
        assert_eq!(
            (ran[0].job, ran[0].outcome.clone()),
            (waits, Outcome::Succeeded)
        );
        assert_eq!(project_names(&db, &a.job).await, ["after the suspension"]);
        assert_eq!(
            job_events(&db, &a.job, waits).await,
            [
                "job.queued",
                "job.started",
                "job.held",
                "job.started",
                "job.succeeded"
            ]
        );
        assert_eq!(
            job_events(&db, &b.job, never).await,
            ["job.queued", "job.started", "job.cancelled"]
        );
        // The cancelled one stays cancelled.
        assert!(w.run_once().await.expect("run").is_none());
    }
);

test_support::backend_test!(
    failures_retry_then_become_dead_letters,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (a, _b) = test_support::two_tenants(&db, &[]).await;
        let key = JobKey::generate();
        let retrying = Recorder::new(Then::Fail(true));
        let id = enqueue(&db, &a.ctx, &key, job("flaky").max_attempts(3)).await;
        let w = worker(&db, &key, "w", &retrying).await;
        let ran = w.run_until_idle().await.expect("runs");
        let error = "the mail server is down".to_owned();
        assert!(matches!(&ran[0].outcome, Outcome::Retrying { error: e, .. } if *e == error));
        assert!(matches!(&ran[1].outcome, Outcome::Retrying { error: e, .. } if *e == error));
        assert_eq!(
            ran[2].outcome,
            Outcome::Dead {
                error: error.clone()
            }
        );
        assert_eq!(ran.len(), 3);
        assert_eq!(
            retrying
                .seen()
                .iter()
                .map(|s| s.attempt)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let dead = jobs::status(&db.scope(&a.ctx), id).await.expect("status");
        assert_eq!(
            (dead.state, dead.attempts, dead.last_error),
            (JobState::Dead, 3, Some(error))
        );
        assert_eq!(
            job_events(&db, &a.job, id).await,
            [
                "job.queued",
                "job.started",
                "job.retry",
                "job.started",
                "job.retry",
                "job.started",
                "job.dead"
            ]
        );
        // The backoff: with a base of one hour, the retry is not due now.
        let slow = enqueue(&db, &a.ctx, &key, job("slow")).await;
        let w = worker(&db, &key, "w2", &retrying)
            .await
            .retry_backoff(Duration::from_secs(3600), Duration::from_secs(7200));
        let ran = w.run_until_idle().await.expect("runs");
        assert_eq!(ran.len(), 1);
        let later = jobs::status(&db.scope(&a.ctx), slow).await.expect("status");
        assert_eq!(later.state, JobState::Queued);
        assert!(
            later.run_at > Utc::now() + chrono::Duration::minutes(59),
            "{later:?}"
        );
        // A fatal error, a panic, a kind nobody handles.
        let fatal = Recorder::new(Then::Fail(false));
        let f = enqueue(&db, &a.ctx, &key, job("fatal")).await;
        let ran = worker(&db, &key, "w3", &fatal)
            .await
            .run_until_idle()
            .await
            .expect("runs");
        assert_eq!(
            ran.iter().find(|r| r.job == f).map(|r| r.outcome.clone()),
            Some(Outcome::Dead {
                error: "no such invoice".into()
            })
        );
        let panics = Recorder::new(Then::Panic);
        let p = enqueue(&db, &a.ctx, &key, job("panics").max_attempts(1)).await;
        let ran = worker(&db, &key, "w4", &panics)
            .await
            .run_until_idle()
            .await
            .expect("runs");
        assert_eq!(
            ran.iter().find(|r| r.job == p).map(|r| r.outcome.clone()),
            Some(Outcome::Dead {
                error: "the handler panicked".into()
            })
        );
        let unknown = enqueue(
            &db,
            &a.ctx,
            &key,
            NewJob::new("nobody", serde_json::Value::Null),
        )
        .await;
        let ran = worker(&db, &key, "w5", &panics)
            .await
            .run_until_idle()
            .await
            .expect("runs");
        assert_eq!(
            ran.iter()
                .find(|r| r.job == unknown)
                .map(|r| r.outcome.clone()),
            Some(Outcome::Dead {
                error: "no handler for jobs of kind \"nobody\"".into()
            })
        );
    }
);

test_support::backend_test!(tenants_take_turns, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let (a, b) = test_support::two_tenants(&db, &[]).await;
    let key = JobKey::generate();
    for i in 0..10 {
        enqueue(&db, &a.ctx, &key, job(&format!("a{i}"))).await;
    }
    // B's jobs come after all of A's.
    for i in 0..2 {
        enqueue(&db, &b.ctx, &key, job(&format!("b{i}"))).await;
    }
    let handler = Recorder::new(Then::Insert);
    let ran = worker(&db, &key, "w", &handler)
        .await
        .run_until_idle()
        .await
        .expect("runs");
    let order: Vec<TenantId> = ran.iter().map(|r| r.tenant).collect();
    assert_eq!(order.len(), 12);
    // One of each in turn while both have jobs: B is done within the first four.
    let b_done = order.iter().rposition(|t| *t == b.id).expect("B ran");
    assert!(b_done <= 3, "B waited behind A: {order:?}");
    assert_eq!(project_names(&db, &a.job).await.len(), 10);
    assert_eq!(project_names(&db, &b.job).await, ["b0", "b1"]);
});

test_support::backend_test!(
    the_per_tenant_limit_holds_across_workers,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (a, b) = test_support::two_tenants(&db, &[]).await;
        let key = JobKey::generate();
        let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let blocking = Recorder::new(Then::Block {
            started: Arc::clone(&started),
            release: Arc::clone(&release),
        });
        let quick = Recorder::new(Then::Insert);
        let a1 = enqueue(&db, &a.ctx, &key, job("a1")).await;
        let a2 = enqueue(&db, &a.ctx, &key, job("a2")).await;
        let b1 = enqueue(&db, &b.ctx, &key, job("b1")).await;
        let w1 = worker(&db, &key, "w1", &blocking).await;
        let w2 = worker(&db, &key, "w2", &quick).await;
        let first = async {
            let ran = w1.run_once().await.expect("w1").expect("a job");
            assert_eq!((ran.job, ran.outcome), (a1, Outcome::Succeeded));
        };
        let second = async {
            started.notified().await;
            // A runs one job (its limit): w2 takes B's, then nothing, though A has a due job.
            let ran = w2.run_once().await.expect("w2").expect("a job");
            assert_eq!(ran.job, b1);
            assert!(
                w2.run_once().await.expect("w2").is_none(),
                "A is at its limit"
            );
            release.notify_one();
        };
        tokio::join!(first, second);
        // A's first is done: its second may run.
        let ran = w2.run_once().await.expect("w2").expect("a job");
        assert_eq!(ran.job, a2);
    }
);

test_support::backend_test!(
    a_job_whose_worker_stopped_is_taken_again,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (a, _b) = test_support::two_tenants(&db, &[]).await;
        let key = JobKey::generate();
        let hangs = Recorder::new(Then::Block {
            started: Arc::new(Notify::new()),
            release: Arc::new(Notify::new()),
        });
        let id = enqueue(&db, &a.ctx, &key, job("again")).await;
        // (MySQL's `timestamp` keeps whole seconds: a lease shorter than one could end at once.)
        let w1 = worker(&db, &key, "w1", &hangs)
            .await
            .lease(Duration::from_secs(2));
        // The worker stops in the middle of the job (its future is dropped).
        let stopped = tokio::time::timeout(Duration::from_millis(100), w1.run_once()).await;
        assert!(stopped.is_err(), "still running when stopped");
        let running = jobs::status(&db.scope(&a.ctx), id).await.expect("status");
        assert_eq!(running.state, JobState::Running);
        let quick = Recorder::new(Then::Insert);
        let w2 = worker(&db, &key, "w2", &quick).await;
        assert!(
            w2.run_once().await.expect("w2").is_none(),
            "its lease holds"
        );
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let ran = w2.run_once().await.expect("w2").expect("taken again");
        assert_eq!((ran.job, ran.outcome), (id, Outcome::Succeeded));
        assert_eq!(quick.seen()[0].attempt, 2, "the stopped run was an attempt");
    }
);

test_support::backend_test!(
    scopes_read_their_jobs_and_cannot_write_them,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (a, b) = test_support::two_tenants(&db, &[]).await;
        let key = JobKey::generate();
        let id = enqueue(&db, &a.ctx, &key, job("mine")).await;
        let mine = db
            .scope(&a.ctx)
            .get::<job_rows::Entity>(id)
            .await
            .expect("A reads its job");
        assert_eq!(mine.state, "queued");
        let theirs = db.scope(&b.ctx).get::<job_rows::Entity>(id).await;
        assert!(matches!(theirs, Err(Error::NotFound)), "{theirs:?}");
        let forged = db
            .scope(&a.ctx)
            .insert(job_rows::ActiveModel {
                kind: Set("work".into()),
                payload: Set("{}".into()),
                context: Set("tsj1.forged.sig".into()),
                state: Set("queued".into()),
                attempts: Set(0),
                max_attempts: Set(1),
                run_at: Set(Utc::now()),
                created_at: Set(Utc::now()),
                updated_at: Set(Utc::now()),
                ..Default::default()
            })
            .await;
        assert!(matches!(forged, Err(Error::Invalid(_))), "{forged:?}");
        let mut am: job_rows::ActiveModel = mine.into();
        am.state = Set("succeeded".into());
        let changed = db.scope(&a.ctx).update(am).await;
        assert!(matches!(changed, Err(Error::Invalid(_))), "{changed:?}");
        let deleted = db.scope(&a.ctx).delete::<job_rows::Entity>(id).await;
        assert!(matches!(deleted, Err(Error::Invalid(_))), "{deleted:?}");
    }
);

test_support::backend_test!(
    a_system_context_sealed_into_a_job_has_no_system_pass,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (a, _b) = test_support::two_tenants(&db, &[]).await;
        let key = JobKey::generate();
        // a.job is a context of system access: it passes every permission check.
        assert!(a.job.require("anything").is_ok());
        enqueue(&db, &a.job, &key, job("from a system context")).await;
        struct Checks(Arc<Mutex<Option<Result<(), Error>>>>);
        #[async_trait::async_trait]
        impl JobHandler for Checks {
            async fn run(&self, job: &JobRun<'_>) -> Result<(), JobError> {
                *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(job.scope().context().require("anything"));
                Ok(())
            }
        }
        let checked = Arc::new(Mutex::new(None));
        let w = Worker::new(&db, key.clone(), "w")
            .await
            .expect("worker")
            .handler("work", Checks(Arc::clone(&checked)));
        w.run_until_idle().await.expect("runs");
        let result = checked.lock().unwrap_or_else(|p| p.into_inner()).take();
        assert!(matches!(result, Some(Err(Error::Forbidden))), "{result:?}");
    }
);
