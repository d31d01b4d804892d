//! Pool safety: many tenants share a small pool, operations interleave, some fail, some roll back,
//! some are cancelled mid-flight, and still
//!
//! 1. every row any tenant sees is its own, and each tenant's rows end up exactly as its operations
//!    say (rolled-back and failed writes absent, cancelled writes all-or-nothing), checked as the
//!    owner at the end;
//! 2. on PostgreSQL, a connection that comes back out of the pool carries no tenant: a
//!    `before_acquire` hook (SeaORM's `ConnectOptions::map_sqlx_postgres_before_acquire`, which the
//!    library's `TenantDbOptions` passes through to sqlx) runs on the very connection that is about
//!    to be handed out, after sqlx's release and acquire pings, and asks it
//!    `current_setting('tenant_scope.tenant_id', true)` (must be NULL or `''`) and whether it is
//!    still inside a transaction (server: `now() = statement_timestamp()`; client: sqlx's
//!    transaction depth). Every reuse of a pooled connection is inspected this way (the hook runs
//!    at least once per completed operation, minus fresh connections, which have never been used);
//!    after the run every one of the 4 connections is taken out of the pool at once, so each is
//!    inspected once more, and the pool must be able to hand out all 4 (none was lost). A control
//!    run shows that the probe does see a tenant that a session left behind. On MySQL / MariaDB
//!    the same hook reports connections handed out inside a transaction (`@@in_transaction`).
//!
//! The load test: 20 tenants, one task each, 60 mixed operations per task (1,200 in all) over a
//! pool of exactly 4 connections. The operations of one tenant run in order (so a simple model of
//! its rows is exact); those of different tenants interleave freely. About one in ten is
//! cancelled: dropped after a random number of suspensions, or after a random part of the recent
//! latency, which lands anywhere from waiting for a connection to `COMMIT` on the wire.
//!
//! The stage test makes the cancellation points deterministic: a proxy in front of the server
//! holds back the response to the tenant's `BEGIN`, to the statement, or to `COMMIT`, the
//! operation is cancelled while it waits, and the next operation on the (only) connection must
//! find it usable and clean.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::Utc;
use entity::{projects, tasks};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::sea_query::Expr;
use sea_orm::sqlx;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, EntityTrait, Statement,
};
use tenant_scope::{Error, TenantContext, TenantDb, TenantId};
use test_support::{Backend, TestDb};
use tokio::time::timeout;
use uuid::Uuid;

const TENANTS: usize = 20;
const OPS_PER_TENANT: usize = 60;
const POOL: u32 = 4;
/// How long the workers may take before the test fails (they take about a second).
const WATCHDOG: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The probe: inspects a pooled PostgreSQL connection before it is handed out
// ---------------------------------------------------------------------------------------------

/// Counts inspections of pooled connections and what they found.
#[derive(Debug, Default)]
struct Probe {
    /// Connections inspected on their way out of the pool.
    checks: AtomicU64,
    /// Fresh connections opened by the pool (never used before, so not inspected).
    connects: AtomicU64,
    /// What dirty connections carried.
    dirty: Mutex<Vec<String>>,
}

const PROBE_SQL: &str =
    "SELECT current_setting('tenant_scope.tenant_id', true), now() = statement_timestamp()";

impl Probe {
    /// PostgreSQL: the tenant setting, and whether a transaction is open.
    async fn inspect_postgres(&self, conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        use sqlx::{Connection as _, Row as _};
        let client_in_transaction = conn.is_in_transaction();
        // The simple-query protocol: one statement in an implicit transaction of its own, so
        // `now()` (start of the transaction) equals `statement_timestamp()` unless a transaction
        // was left open on the connection.
        let row = sqlx::raw_sql(PROBE_SQL).fetch_one(&mut *conn).await?;
        let setting: Option<String> = row.try_get(0)?;
        let fresh_transaction: bool = row.try_get(1)?;
        self.checks.fetch_add(1, Ordering::SeqCst);
        let carries_tenant = setting.as_deref().is_some_and(|s| !s.is_empty());
        if carries_tenant || !fresh_transaction || client_in_transaction {
            self.found(format!(
                "tenant setting {setting:?}, left in a transaction: server {}, client {}",
                !fresh_transaction, client_in_transaction
            ));
        }
        Ok(())
    }

    /// MySQL / MariaDB: whether a transaction is open (`@@in_transaction`, MariaDB; on MySQL,
    /// which lacks it, only sqlx's own view).
    async fn inspect_mysql(&self, conn: &mut sqlx::MySqlConnection) {
        use sqlx::{Connection as _, Row as _};
        let client_in_transaction = conn.is_in_transaction();
        let server = match sqlx::raw_sql("SELECT @@in_transaction")
            .fetch_one(&mut *conn)
            .await
        {
            Ok(row) => row.try_get::<i64, _>(0).ok().map(|v| v != 0),
            Err(_) => None,
        };
        self.checks.fetch_add(1, Ordering::SeqCst);
        if server == Some(true) || client_in_transaction {
            self.found(format!(
                "left in a transaction: server {server:?}, client {client_in_transaction}"
            ));
        }
    }

    fn found(&self, what: String) {
        self.dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }

    fn checks(&self) -> u64 {
        self.checks.load(Ordering::SeqCst)
    }

    fn connects(&self) -> u64 {
        self.connects.load(Ordering::SeqCst)
    }

    fn dirty(&self) -> Vec<String> {
        self.dirty.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Installs the probe on connect options: on PostgreSQL and MySQL, a `before_acquire` hook
    /// (it runs on every idle connection the pool hands out, after sqlx's own ping) and an
    /// `after_connect` hook that counts fresh connections. Nothing on SQLite.
    fn watch(self: &Arc<Self>, options: &mut ConnectOptions, backend: Backend) {
        match backend {
            Backend::Postgres => {
                let probe = self.clone();
                options.map_sqlx_postgres_before_acquire(move |conn, _meta| {
                    let probe = probe.clone();
                    Box::pin(async move {
                        probe.inspect_postgres(conn).await?;
                        Ok(true)
                    })
                });
                let probe = self.clone();
                options.map_sqlx_postgres_pool_opts(move |pool| {
                    let probe = probe.clone();
                    pool.after_connect(move |_conn, _meta| {
                        probe.connects.fetch_add(1, Ordering::SeqCst);
                        Box::pin(async { Ok(()) })
                    })
                });
            }
            Backend::Mysql => {
                let probe = self.clone();
                options.map_sqlx_mysql_before_acquire(move |conn, _meta| {
                    let probe = probe.clone();
                    Box::pin(async move {
                        probe.inspect_mysql(conn).await;
                        Ok(true)
                    })
                });
                let probe = self.clone();
                options.map_sqlx_mysql_pool_opts(move |pool| {
                    let probe = probe.clone();
                    pool.after_connect(move |_conn, _meta| {
                        probe.connects.fetch_add(1, Ordering::SeqCst);
                        Box::pin(async { Ok(()) })
                    })
                });
            }
            Backend::Sqlite => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The model of one tenant's rows
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Task {
    project: Uuid,
    title: String,
    done: bool,
}

/// What one tenant's rows must be. Its operations run in order, so the model is exact, except for
/// cancelled inserts: whether they committed is unknown (the `COMMIT` may be on the wire), so their
/// rows are "maybe" until the end, and those of one cancelled transaction must be all or none.
#[derive(Debug, Default)]
struct Model {
    projects: BTreeMap<Uuid, String>,
    maybe: BTreeMap<Uuid, String>,
    groups: Vec<Vec<Uuid>>,
    tasks: BTreeMap<Uuid, Task>,
    anchor: Uuid,
}

impl Model {
    fn tasks_of(&self, project: Uuid) -> BTreeMap<Uuid, Task> {
        self.tasks
            .iter()
            .filter(|(_, t)| t.project == project)
            .map(|(id, t)| (*id, t.clone()))
            .collect()
    }

    /// Rows of one cancelled write: each may or may not be there, but all or none.
    fn maybe_group(&mut self, rows: Vec<(Uuid, String)>) {
        self.groups.push(rows.iter().map(|(id, _)| *id).collect());
        self.maybe.extend(rows);
    }

    fn remove_project(&mut self, id: Uuid) {
        self.projects.remove(&id);
        self.tasks.retain(|_, t| t.project != id); // ON DELETE CASCADE
    }
}

/// How many operations of each kind ran (and how cancellations went).
#[derive(Debug, Default)]
struct Stats {
    kinds: BTreeMap<&'static str, u64>,
    /// Library calls that ran to completion (each takes one pooled connection).
    completed: u64,
    /// Cancelled operations that were interrupted before they finished.
    interrupted: u64,
    /// Rows of reads, each checked to be the reader's own.
    rows_seen: u64,
}

impl Stats {
    fn merge(&mut self, other: &Stats) {
        for (kind, n) in &other.kinds {
            *self.kinds.entry(kind).or_default() += n;
        }
        self.completed += other.completed;
        self.interrupted += other.interrupted;
        self.rows_seen += other.rows_seen;
    }
}

/// The error a transaction closure returns to make the transaction roll back.
#[derive(Debug)]
enum Abort {
    Requested,
    Lib(Error),
}

impl From<Error> for Abort {
    fn from(e: Error) -> Self {
        Abort::Lib(e)
    }
}

// ---------------------------------------------------------------------------------------------
// One tenant's worker
// ---------------------------------------------------------------------------------------------

/// The fixed part of a worker: its handle, its tenant, the other tenants' anchors.
struct Worker {
    db: TenantDb,
    ctx: TenantContext,
    index: usize,
    /// Every tenant's anchor project (never deleted), including this tenant's.
    anchors: Arc<Vec<(TenantId, Uuid)>>,
}

/// The changing part: the model, the dice, the counters.
struct State {
    model: Model,
    rng: StdRng,
    stats: Stats,
    names: u64,
    /// Recent latency of an operation (moving average), for timing cancellations.
    latency: Duration,
}

impl State {
    fn name(&mut self, what: &str) -> String {
        self.names += 1;
        // The same names in every tenant: uniques are per tenant.
        format!("{what} {}", self.names)
    }

    fn pick<T: Copy>(&mut self, items: impl ExactSizeIterator<Item = T>) -> Option<T> {
        let len = items.len();
        if len == 0 {
            return None;
        }
        let i = self.rng.random_range(0..len);
        items.into_iter().nth(i)
    }

    fn some_project(&mut self) -> Uuid {
        let ids: Vec<Uuid> = self.model.projects.keys().copied().collect();
        self.pick(ids.into_iter())
            .expect("the anchor project always exists")
    }

    /// Where to cancel the next operation: after it was suspended a few times (which lands in
    /// every stage: waiting for a connection, `BEGIN` on the wire, the statement, `COMMIT`), or
    /// after a random part of the recent latency.
    fn cancel(&mut self) -> Cancel {
        if self.rng.random_bool(0.5) {
            Cancel::AfterPending(self.rng.random_range(0..8))
        } else {
            let latency = self.latency.as_micros().max(1) as u64;
            Cancel::After(Duration::from_micros(
                self.rng.random_range(0..latency * 3 / 2),
            ))
        }
    }
}

/// How a cancelled operation is cancelled.
#[derive(Debug, Clone, Copy)]
enum Cancel {
    /// Dropped when it is suspended for the `n + 1`-th time.
    AfterPending(u32),
    /// Dropped after this long (`tokio::time::timeout`).
    After(Duration),
}

impl Cancel {
    /// Runs `f` until it finishes (`Some`) or is cancelled (`None`: the future was dropped).
    async fn run<F: Future>(self, f: F) -> Option<F::Output> {
        match self {
            Cancel::AfterPending(n) => CancelAfterPending::new(f, n).await,
            Cancel::After(after) => timeout(after, f).await.ok(),
        }
    }
}

/// A future that gives up on `inner` (and drops it) when it is suspended once more than allowed.
struct CancelAfterPending<F> {
    inner: Option<Pin<Box<F>>>,
    allowed: u32,
}

impl<F: Future> CancelAfterPending<F> {
    fn new(inner: F, allowed: u32) -> Self {
        Self {
            inner: Some(Box::pin(inner)),
            allowed,
        }
    }
}

impl<F: Future> Future for CancelAfterPending<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.as_mut().poll(cx) {
            Poll::Ready(out) => Poll::Ready(Some(out)),
            Poll::Pending if self.allowed == 0 => {
                // Dropped here, mid-flight, like a cancelled request handler's future.
                self.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                self.allowed -= 1;
                Poll::Pending
            }
        }
    }
}

/// An error with the driver's text (the library keeps it out of `Debug`; a test may read it).
fn show(e: &Error) -> String {
    match e {
        Error::Db(db) => format!("Db({})", db.inner()),
        other => format!("{other:?}"),
    }
}

fn shown<T: std::fmt::Debug>(result: &Result<T, Error>) -> String {
    match result {
        Ok(value) => format!("Ok({value:?})"),
        Err(e) => format!("Err({})", show(e)),
    }
}

fn new_project(id: Uuid, name: String) -> projects::ActiveModel {
    projects::ActiveModel {
        id: Set(id),
        name: Set(name),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
}

fn new_task(id: Uuid, project: Uuid, title: String) -> tasks::ActiveModel {
    tasks::ActiveModel {
        id: Set(id),
        project_id: Set(project),
        assignee_id: Set(None),
        title: Set(title),
        done: Set(false),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
}

impl Worker {
    fn me(&self) -> TenantId {
        self.ctx.tenant()
    }

    fn foreign_anchor(&self, s: &mut State) -> Uuid {
        let others: Vec<Uuid> = self
            .anchors
            .iter()
            .filter(|(t, _)| *t != self.me())
            .map(|(_, id)| *id)
            .collect();
        s.pick(others.into_iter()).expect("other tenants")
    }

    fn check_projects(&self, s: &mut State, rows: &[projects::Model], what: &str, complete: bool) {
        let me = self.me();
        s.stats.rows_seen += rows.len() as u64;
        for row in rows {
            assert_eq!(
                row.tenant_id, me,
                "LEAK: {what} of tenant {} returned a row of tenant {}: {row:?}",
                self.index, row.tenant_id
            );
            let expected = s.model.projects.get(&row.id).or(s.model.maybe.get(&row.id));
            assert_eq!(
                Some(&row.name),
                expected,
                "{what} of tenant {}: a row the model does not have (or with another name): {row:?}",
                self.index
            );
        }
        if !complete {
            return;
        }
        let ids: BTreeSet<Uuid> = rows.iter().map(|r| r.id).collect();
        for (id, name) in &s.model.projects {
            assert!(
                ids.contains(id),
                "{what} of tenant {}: project {id} ({name}) is missing",
                self.index
            );
        }
    }

    fn check_tasks(&self, s: &mut State, rows: &[tasks::Model], expected: &BTreeMap<Uuid, Task>) {
        let me = self.me();
        s.stats.rows_seen += rows.len() as u64;
        for row in rows {
            assert_eq!(
                row.tenant_id, me,
                "LEAK: a task list of tenant {} returned a row of tenant {}: {row:?}",
                self.index, row.tenant_id
            );
        }
        let got: BTreeMap<Uuid, Task> = rows
            .iter()
            .map(|r| {
                let task = Task {
                    project: r.project_id,
                    title: r.title.clone(),
                    done: r.done,
                };
                (r.id, task)
            })
            .collect();
        assert_eq!(&got, expected, "tasks of tenant {}", self.index);
    }

    /// Asserts that the project `id` is not there (a rolled-back or failed write).
    async fn assert_absent(&self, s: &mut State, id: Uuid, what: &str) {
        let got = self.db.scope(&self.ctx).get::<projects::Entity>(id).await;
        s.stats.completed += 1;
        assert!(
            matches!(got, Err(Error::NotFound)),
            "{what}: tenant {} sees a project that should not exist: {}",
            self.index,
            shown(&got)
        );
    }

    /// Asserts that the certain project `id` still has the model's name.
    async fn assert_unchanged(&self, s: &mut State, id: Uuid, what: &str) {
        let row = self
            .db
            .scope(&self.ctx)
            .get::<projects::Entity>(id)
            .await
            .unwrap_or_else(|e| panic!("{what}: get after: {}", show(&e)));
        s.stats.completed += 1;
        self.check_projects(s, std::slice::from_ref(&row), what, false);
    }

    async fn run(self, seed: u64) -> (Model, Stats) {
        let mut s = State {
            model: Model::default(),
            rng: StdRng::seed_from_u64(seed),
            stats: Stats::default(),
            names: 0,
            latency: Duration::from_millis(2),
        };
        let anchor = self.anchors[self.index].1;
        s.model.anchor = anchor;
        s.model.projects.insert(anchor, "anchor".into());
        for _ in 0..OPS_PER_TENANT {
            let roll = s.rng.random_range(0..100);
            let began = Instant::now();
            let kind = self.step(&mut s, roll).await;
            if !kind.starts_with("cancelled") {
                s.latency = (s.latency * 7 + began.elapsed()) / 8;
            }
            *s.stats.kinds.entry(kind).or_default() += 1;
            if s.rng.random_bool(0.3) {
                tokio::task::yield_now().await;
            }
        }
        (s.model, s.stats)
    }

    /// One operation; returns its kind.
    async fn step(&self, s: &mut State, roll: u32) -> &'static str {
        let scope = self.db.scope(&self.ctx);
        match roll {
            0..10 => {
                let id = s.some_project();
                let row = scope
                    .get::<projects::Entity>(id)
                    .await
                    .unwrap_or_else(|e| panic!("get: {}", show(&e)));
                s.stats.completed += 1;
                self.check_projects(s, std::slice::from_ref(&row), "get", false);
                "get"
            }
            10..14 => {
                // Another tenant's row: exactly "not found", for reading, changing and deleting.
                let foreign = self.foreign_anchor(s);
                let got = match s.rng.random_range(0..3) {
                    0 => scope.get::<projects::Entity>(foreign).await.map(drop),
                    1 => scope
                        .update(projects::ActiveModel {
                            id: Set(foreign),
                            name: Set("taken over".into()),
                            ..Default::default()
                        })
                        .await
                        .map(drop),
                    _ => scope.delete::<projects::Entity>(foreign).await,
                };
                s.stats.completed += 1;
                assert!(
                    matches!(got, Err(Error::NotFound)),
                    "another tenant's row must be not found: {}",
                    shown(&got)
                );
                "another tenant's row (get/update/delete)"
            }
            14..22 => {
                let rows = scope
                    .find::<projects::Entity>()
                    .all()
                    .await
                    .unwrap_or_else(|e| panic!("list: {}", show(&e)));
                s.stats.completed += 1;
                self.check_projects(s, &rows, "list", true);
                "list"
            }
            22..26 => {
                let project = s.some_project();
                let rows = scope
                    .find::<tasks::Entity>()
                    .filter(tasks::Column::ProjectId.eq(project))
                    .all()
                    .await
                    .unwrap_or_else(|e| panic!("list tasks: {}", show(&e)));
                s.stats.completed += 1;
                let expected = s.model.tasks_of(project);
                self.check_tasks(s, &rows, &expected);
                "list (filtered)"
            }
            26..30 => {
                let n = scope
                    .find::<projects::Entity>()
                    .count()
                    .await
                    .unwrap_or_else(|e| panic!("count: {}", show(&e)));
                s.stats.completed += 1;
                let certain = s.model.projects.len() as u64;
                let maybe = s.model.maybe.len() as u64;
                assert!(
                    (certain..=certain + maybe).contains(&n),
                    "count of tenant {}: {n}, expected {certain} (+ up to {maybe} cancelled)",
                    self.index
                );
                "count"
            }
            30..38 => {
                let (id, name) = (Uuid::now_v7(), s.name("project"));
                let row = scope
                    .insert(new_project(id, name.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("insert: {}", show(&e)));
                s.stats.completed += 1;
                assert_eq!((row.tenant_id, row.id), (self.me(), id));
                s.model.projects.insert(id, name);
                "insert"
            }
            38..44 => {
                let (id, name) = (s.some_project(), s.name("renamed"));
                let row = scope
                    .update(projects::ActiveModel {
                        id: Set(id),
                        name: Set(name.clone()),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("update: {}", show(&e)));
                s.stats.completed += 1;
                s.model.projects.insert(id, name);
                self.check_projects(s, std::slice::from_ref(&row), "update", false);
                "update"
            }
            44..48 => {
                let anchor = s.model.anchor;
                let deletable: Vec<Uuid> = s
                    .model
                    .projects
                    .keys()
                    .copied()
                    .filter(|id| *id != anchor)
                    .collect();
                let Some(id) = s.pick(deletable.into_iter()) else {
                    return "delete (nothing to delete)";
                };
                scope
                    .delete::<projects::Entity>(id)
                    .await
                    .unwrap_or_else(|e| panic!("delete: {}", show(&e)));
                s.stats.completed += 1;
                s.model.remove_project(id);
                self.assert_absent(s, id, "after delete").await;
                "delete"
            }
            48..54 => {
                let (id, project, title) = (Uuid::now_v7(), s.some_project(), s.name("task"));
                let row = scope
                    .insert(new_task(id, project, title.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("insert task: {}", show(&e)));
                s.stats.completed += 1;
                assert_eq!(row.tenant_id, self.me());
                s.model.tasks.insert(
                    id,
                    Task {
                        project,
                        title,
                        done: false,
                    },
                );
                "insert (child row)"
            }
            54..57 => {
                let project = s.some_project();
                let n = scope
                    .update_many::<tasks::Entity>()
                    .col_expr(tasks::Column::Done, Expr::value(true))
                    .filter(tasks::Column::ProjectId.eq(project))
                    .exec()
                    .await
                    .unwrap_or_else(|e| panic!("update_many: {}", show(&e)));
                s.stats.completed += 1;
                let mut expected = 0;
                for task in s.model.tasks.values_mut() {
                    if task.project == project {
                        task.done = true;
                        expected += 1;
                    }
                }
                assert_eq!(n, expected, "update_many of tenant {}", self.index);
                "update_many"
            }
            57..59 => {
                let n = scope
                    .delete_many::<tasks::Entity>()
                    .filter(tasks::Column::Done.eq(true))
                    .exec()
                    .await
                    .unwrap_or_else(|e| panic!("delete_many: {}", show(&e)));
                s.stats.completed += 1;
                let before = s.model.tasks.len();
                s.model.tasks.retain(|_, t| !t.done);
                assert_eq!(n as usize, before - s.model.tasks.len());
                "delete_many"
            }
            59..64 => {
                let (project, name) = (Uuid::now_v7(), s.name("project"));
                let (task, title) = (Uuid::now_v7(), s.name("task"));
                let (p, t) = (
                    new_project(project, name.clone()),
                    new_task(task, project, title.clone()),
                );
                let seen = self
                    .db
                    .transaction(&self.ctx, |tx| {
                        Box::pin(async move {
                            tx.insert(p).await?;
                            tx.insert(t).await?;
                            tx.find::<projects::Entity>().count().await
                        })
                    })
                    .await
                    .unwrap_or_else(|e| panic!("transaction: {}", show(&e)));
                s.stats.completed += 1;
                s.model.projects.insert(project, name);
                s.model.tasks.insert(
                    task,
                    Task {
                        project,
                        title,
                        done: false,
                    },
                );
                let certain = s.model.projects.len() as u64;
                assert!((certain..=certain + s.model.maybe.len() as u64).contains(&seen));
                "transaction, committed"
            }
            64..68 => {
                // Writes, then the closure fails: everything rolls back.
                let (new, target) = (Uuid::now_v7(), s.some_project());
                let (p, rename) = (
                    new_project(new, s.name("doomed")),
                    projects::ActiveModel {
                        id: Set(target),
                        name: Set(s.name("doomed rename")),
                        ..Default::default()
                    },
                );
                let got = self
                    .db
                    .transaction(&self.ctx, |tx| {
                        Box::pin(async move {
                            tx.insert(p).await?;
                            tx.update(rename).await?;
                            Err::<(), _>(Abort::Requested)
                        })
                    })
                    .await;
                s.stats.completed += 1;
                match got {
                    Err(Abort::Requested) => {}
                    Err(Abort::Lib(e)) => panic!("transaction to roll back failed: {}", show(&e)),
                    Ok(()) => panic!("the transaction must report the closure's error"),
                }
                self.assert_absent(s, new, "rolled-back insert").await;
                self.assert_unchanged(s, target, "rolled-back update").await;
                "transaction, rolled back by the closure"
            }
            68..71 => {
                // A statement fails at the database inside a transaction: a unique violation.
                let (new, taken) = (Uuid::now_v7(), s.some_project());
                let taken_name = s.model.projects[&taken].clone();
                let (p, dup) = (
                    new_project(new, s.name("doomed")),
                    new_project(Uuid::now_v7(), taken_name),
                );
                let got = self
                    .db
                    .transaction(&self.ctx, |tx| {
                        Box::pin(async move {
                            tx.insert(p).await?;
                            tx.insert(dup).await?;
                            Ok::<_, Error>(())
                        })
                    })
                    .await;
                s.stats.completed += 1;
                assert!(matches!(got, Err(Error::Conflict)), "{}", shown(&got));
                self.assert_absent(s, new, "insert before a conflict").await;
                "transaction, failed at the database"
            }
            71..74 => {
                // An explicit transaction dropped without commit.
                let new = Uuid::now_v7();
                let name = s.name("dropped");
                let target = s.some_project();
                let rename = s.name("dropped rename");
                {
                    let tx = self
                        .db
                        .begin(&self.ctx)
                        .await
                        .unwrap_or_else(|e| panic!("begin: {}", show(&e)));
                    tx.scope()
                        .insert(new_project(new, name))
                        .await
                        .unwrap_or_else(|e| panic!("insert in tx: {}", show(&e)));
                    tx.scope()
                        .update(projects::ActiveModel {
                            id: Set(target),
                            name: Set(rename),
                            ..Default::default()
                        })
                        .await
                        .unwrap_or_else(|e| panic!("update in tx: {}", show(&e)));
                    drop(tx);
                }
                s.stats.completed += 1;
                self.assert_absent(s, new, "dropped transaction").await;
                self.assert_unchanged(s, target, "dropped transaction")
                    .await;
                "begin, dropped without commit"
            }
            74..79 => {
                // A reference to another tenant's row (or to none): the composite foreign key
                // rejects it, and the answer is the same "not found".
                let parent = if s.rng.random_bool(0.8) {
                    self.foreign_anchor(s)
                } else {
                    Uuid::now_v7()
                };
                let title = s.name("orphan");
                let got = scope.insert(new_task(Uuid::now_v7(), parent, title)).await;
                s.stats.completed += 1;
                assert!(matches!(got, Err(Error::NotFound)), "{}", shown(&got));
                "insert referencing another tenant's row"
            }
            79..83 => {
                let taken = s.some_project();
                let taken_name = s.model.projects[&taken].clone();
                let got = scope.insert(new_project(Uuid::now_v7(), taken_name)).await;
                s.stats.completed += 1;
                assert!(matches!(got, Err(Error::Conflict)), "{}", shown(&got));
                "insert, unique violation"
            }
            _ => self.cancelled(s).await,
        }
    }

    /// An operation cancelled after a tiny, random time (sometimes before its first poll
    /// returns): the future is dropped wherever it is — waiting for a connection, after `BEGIN`,
    /// mid-statement, or with `COMMIT` on the wire.
    async fn cancelled(&self, s: &mut State) -> &'static str {
        let cancel = s.cancel();
        let scope = self.db.scope(&self.ctx);
        let (kind, interrupted) = match s.rng.random_range(0..5) {
            0 => {
                let (id, name) = (Uuid::now_v7(), s.name("project"));
                let got = cancel
                    .run(scope.insert(new_project(id, name.clone())))
                    .await;
                let interrupted = got.is_none();
                match got {
                    Some(row) => {
                        row.unwrap_or_else(|e| panic!("insert: {}", show(&e)));
                        s.model.projects.insert(id, name);
                    }
                    None => s.model.maybe_group(vec![(id, name)]),
                }
                ("cancelled insert", interrupted)
            }
            1 => {
                let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
                let (name_a, name_b) = (s.name("pair"), s.name("pair"));
                let (pa, pb) = (
                    new_project(a, name_a.clone()),
                    new_project(b, name_b.clone()),
                );
                let got = cancel
                    .run(self.db.transaction(&self.ctx, |tx| {
                        Box::pin(async move {
                            tx.insert(pa).await?;
                            tx.insert(pb).await?;
                            Ok::<_, Error>(())
                        })
                    }))
                    .await;
                let interrupted = got.is_none();
                match got {
                    Some(done) => {
                        done.unwrap_or_else(|e| panic!("transaction: {}", show(&e)));
                        s.model.projects.insert(a, name_a);
                        s.model.projects.insert(b, name_b);
                    }
                    None => s.model.maybe_group(vec![(a, name_a), (b, name_b)]),
                }
                ("cancelled transaction", interrupted)
            }
            2 => {
                let (id, name) = (Uuid::now_v7(), s.name("project"));
                let am = new_project(id, name.clone());
                let got = cancel
                    .run(async {
                        let tx = self.db.begin(&self.ctx).await?;
                        tx.scope().insert(am).await?;
                        tx.commit().await
                    })
                    .await;
                let interrupted = got.is_none();
                match got {
                    Some(done) => {
                        done.unwrap_or_else(|e| panic!("begin/commit: {}", show(&e)));
                        s.model.projects.insert(id, name);
                    }
                    None => s.model.maybe_group(vec![(id, name)]),
                }
                ("cancelled begin/insert/commit", interrupted)
            }
            3 => {
                let got = cancel.run(scope.find::<projects::Entity>().all()).await;
                let interrupted = got.is_none();
                if let Some(rows) = got {
                    let rows = rows.unwrap_or_else(|e| panic!("list: {}", show(&e)));
                    self.check_projects(s, &rows, "list", true);
                }
                ("cancelled list", interrupted)
            }
            _ => {
                let id = s.some_project();
                let got = cancel.run(scope.get::<projects::Entity>(id)).await;
                let interrupted = got.is_none();
                if let Some(row) = got {
                    let row = row.unwrap_or_else(|e| panic!("get: {}", show(&e)));
                    self.check_projects(s, std::slice::from_ref(&row), "get", false);
                }
                ("cancelled get", interrupted)
            }
        };
        if interrupted {
            s.stats.interrupted += 1;
        } else {
            s.stats.completed += 1;
        }
        kind
    }
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

/// The sessions on the test database and what they wait for, for a failure message.
async fn sessions(t: &TestDb) -> String {
    let sql = match t.backend() {
        Backend::Postgres => {
            "SELECT concat_ws(' | ', pid, usename, state, wait_event_type, wait_event, \
             now() - xact_start, left(query, 120)) FROM pg_stat_activity \
             WHERE datname = current_database()"
        }
        Backend::Mysql => {
            "SELECT concat_ws(' | ', id, user, command, time, state, left(info, 120)) \
             FROM information_schema.processlist WHERE db = database()"
        }
        Backend::Sqlite => return "(SQLite has no sessions to show)".into(),
    };
    match t
        .raw()
        .query_all_raw(Statement::from_string(t.db_backend(), sql))
        .await
    {
        Ok(rows) => rows
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("(could not list them: {e})"),
    }
}

/// The probe catches a tenant that a connection carries back into the pool (a session-level
/// setting, which the library never makes), and passes one whose transaction-local setting ended.
async fn probe_control(t: &TestDb) {
    let probe = Arc::new(Probe::default());
    let mut options = test_support::connect_options(&t.app_url());
    options.max_connections(1).min_connections(1);
    probe.watch(&mut options, Backend::Postgres);
    let pool = sea_orm::Database::connect(options)
        .await
        .expect("control pool");
    let tenant = Uuid::now_v7();
    pool.execute_unprepared(&format!(
        "BEGIN; SELECT set_config('tenant_scope.tenant_id', '{tenant}', true); COMMIT"
    ))
    .await
    .expect("local set_config");
    pool.execute_unprepared("SELECT 1").await.expect("select");
    assert!(
        probe.dirty().is_empty(),
        "a transaction-local setting that ended is not a tenant: {:?}",
        probe.dirty()
    );
    pool.execute_unprepared(&format!(
        "SELECT set_config('tenant_scope.tenant_id', '{tenant}', false)"
    ))
    .await
    .expect("session set_config");
    pool.execute_unprepared("SELECT 1").await.expect("select");
    let dirty = probe.dirty();
    assert_eq!(dirty.len(), 1, "the probe must see a session-level tenant");
    assert!(dirty[0].contains(&tenant.to_string()), "{dirty:?}");
    assert!(probe.checks() >= 3);
    pool.close().await.expect("closing the control pool");
}

test_support::backend_test!(
    pool_is_safe_under_interleaved_failing_and_cancelled_operations,
    |t: TestDb| async move {
        let started = Instant::now();
        let postgres = t.backend() == Backend::Postgres;
        let probed = t.backend() != Backend::Sqlite;
        if postgres {
            probe_control(&t).await;
        }
        let probe = Arc::new(Probe::default());
        let db = t
            .tenant_db_with(|o| {
                o.max_connections(POOL)
                    .min_connections(POOL)
                    .acquire_timeout(Duration::from_secs(10));
                probe.watch(o, t.backend());
                o
            })
            .await;

        // Provisioning: 20 tenants, each with an anchor project that is never deleted.
        let system = db.system("pool safety test fixture").await.expect("system");
        let mut contexts = Vec::new();
        let mut anchors = Vec::new();
        for i in 0..TENANTS {
            let ctx = test_support::tenant(&system, &format!("tenant {i}")).await;
            let anchor = db
                .scope(&ctx)
                .insert(new_project(Uuid::now_v7(), "anchor".into()))
                .await
                .expect("anchor");
            anchors.push((ctx.tenant(), anchor.id));
            contexts.push(ctx);
        }
        drop(system);
        let anchors = Arc::new(anchors);
        let checks_before = probe.checks();
        let connects_before = probe.connects();

        // The run: one task per tenant, all at once.
        let run_started = Instant::now();
        let mut workers = tokio::task::JoinSet::new();
        for (index, ctx) in contexts.iter().enumerate() {
            let worker = Worker {
                db: db.clone(),
                ctx: ctx.clone(),
                index,
                anchors: anchors.clone(),
            };
            workers.spawn(async move { (index, worker.run(0x7e57_0000 + index as u64).await) });
        }
        let mut models: BTreeMap<usize, Model> = BTreeMap::new();
        let mut stats = Stats::default();
        let joined_all = timeout(WATCHDOG, async {
            while let Some(joined) = workers.join_next().await {
                let (index, (model, worker_stats)) = match joined {
                    Ok(done) => done,
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(e) => panic!("a worker failed: {e}"),
                };
                stats.merge(&worker_stats);
                models.insert(index, model);
            }
        })
        .await;
        if joined_all.is_err() {
            panic!(
                "the workers did not finish within {WATCHDOG:?} (a lock wait or a pool that \
                 cannot hand out a connection); the database's sessions:\n{}",
                sessions(&t).await
            );
        }
        let run_time = run_started.elapsed();
        let ops: u64 = stats.kinds.values().sum();

        // Every connection of the pool, inspected once more: take all four out at once.
        if probed {
            let (checks, connects) = (probe.checks(), probe.connects());
            // One transaction per tenant: a tenant may hold only its share of the pool.
            let held =
                futures::future::join_all((0..POOL as usize).map(|i| db.begin(&contexts[i]))).await;
            if let Some(Err(e)) = held.iter().find(|h| h.is_err()) {
                panic!(
                    "after the run, the pool could not hand out all {POOL} connections at once \
                     ({}): a connection never came back; the database's sessions:\n{}",
                    show(e),
                    sessions(&t).await
                );
            }
            let inspected = probe.checks() - checks + probe.connects() - connects;
            assert_eq!(
                inspected,
                u64::from(POOL),
                "each pooled connection inspected"
            );
            drop(held);
            let held = futures::future::join_all(
                (0..POOL as usize).map(|i| db.begin(&contexts[contexts.len() - 1 - i])),
            )
            .await;
            assert!(held.iter().all(Result::is_ok), "{held:?}");
            drop(held);
        }

        // As the owner: each tenant's rows are exactly its model's.
        let all_projects = projects::Entity::find()
            .all(t.raw())
            .await
            .expect("projects as owner");
        let all_tasks = tasks::Entity::find()
            .all(t.raw())
            .await
            .expect("tasks as owner");
        let mut maybe_present = 0;
        let mut maybe_absent = 0;
        let mut total_projects = 0;
        let mut total_tasks = 0;
        for (index, model) in &models {
            let tenant = anchors[*index].0;
            let projects: BTreeMap<Uuid, String> = all_projects
                .iter()
                .filter(|p| p.tenant_id == tenant)
                .map(|p| (p.id, p.name.clone()))
                .collect();
            for (id, name) in &model.projects {
                assert_eq!(projects.get(id), Some(name), "tenant {index}: project {id}");
            }
            for (id, name) in &projects {
                let known = model.projects.get(id).or(model.maybe.get(id));
                assert_eq!(
                    known,
                    Some(name),
                    "tenant {index}: a project no operation left: {id}"
                );
            }
            for group in &model.groups {
                let present = group.iter().filter(|id| projects.contains_key(id)).count();
                assert!(
                    present == 0 || present == group.len(),
                    "tenant {index}: a cancelled transaction is half there: {present} of {group:?}"
                );
                if present == 0 {
                    maybe_absent += 1;
                } else {
                    maybe_present += 1;
                }
            }
            let tasks: BTreeMap<Uuid, Task> = all_tasks
                .iter()
                .filter(|t| t.tenant_id == tenant)
                .map(|t| {
                    let task = Task {
                        project: t.project_id,
                        title: t.title.clone(),
                        done: t.done,
                    };
                    (t.id, task)
                })
                .collect();
            assert_eq!(tasks, model.tasks, "tenant {index}: tasks");
            total_projects += projects.len();
            total_tasks += tasks.len();
        }
        assert_eq!(
            all_projects.len(),
            total_projects,
            "projects of no test tenant"
        );
        assert_eq!(all_tasks.len(), total_tasks, "tasks of no test tenant");

        let summary = stats
            .kinds
            .iter()
            .map(|(kind, n)| format!("  {n:4}  {kind}"))
            .collect::<Vec<_>>()
            .join("\n");
        eprintln!(
            "pool safety on {}: {ops} operations of {TENANTS} tenants over {POOL} connections in \
             {} ms ({} ms in all); {} library calls completed, {} operations interrupted by \
             cancellation ({maybe_present} cancelled writes committed, {maybe_absent} did not); \
             {} rows read, all the reader's own\n{summary}",
            t.backend(),
            run_time.as_millis(),
            started.elapsed().as_millis(),
            stats.completed,
            stats.interrupted,
            stats.rows_seen,
        );
        if probed {
            let checks = probe.checks() - checks_before;
            let connects = probe.connects() - connects_before;
            eprintln!(
                "  connections inspected on the way out of the pool: {checks}, dirty: {}; fresh \
                 connections opened during the run: {connects}",
                probe.dirty().len()
            );
            for dirty in probe.dirty() {
                eprintln!("  dirty: {dirty}");
            }
            assert!(
                checks + connects >= stats.completed,
                "every reuse of a connection is inspected: {checks} inspections + {connects} \
                 fresh connections < {} completed calls",
                stats.completed
            );
        }
        if postgres {
            assert!(
                probe.dirty().is_empty(),
                "pooled connections carried a tenant: {:?}",
                probe.dirty()
            );
        }

        assert!(ops >= 1_000, "{ops} operations");
        assert!(
            stats.interrupted > 0,
            "no operation was actually interrupted"
        );
        for kind in [
            "get",
            "list",
            "count",
            "insert",
            "update",
            "delete",
            "transaction, committed",
            "transaction, rolled back by the closure",
            "transaction, failed at the database",
            "begin, dropped without commit",
            "insert referencing another tenant's row",
            "insert, unique violation",
            "cancelled insert",
            "cancelled transaction",
            "cancelled begin/insert/commit",
        ] {
            assert!(
                stats.kinds.get(kind).is_some_and(|n| *n > 0),
                "no operation of kind {kind}: {:?}",
                stats.kinds
            );
        }
        drop(db);
    }
);

// ---------------------------------------------------------------------------------------------
// Cancellation at a chosen point, made deterministic by a proxy that holds a response
// ---------------------------------------------------------------------------------------------

/// Which response the proxy holds back: the one to the first client write that `matches` after the
/// proxy is armed. It forwards the first `split_at` bytes of that response at once (0: none; 4: a
/// MySQL packet header), holds the rest for [`HOLD`], then forwards it.
struct Stall {
    armed: AtomicBool,
    /// Set when a matching request went through; the next server chunk is held.
    pending: AtomicBool,
    triggered: AtomicU64,
    matches: Matcher,
    split_at: usize,
}

/// Whether a client write is the request whose response to hold.
type Matcher = fn(&[u8]) -> bool;

const HOLD: Duration = Duration::from_millis(250);

/// A TCP proxy in front of the database server that can hold back one response (see [`Stall`]).
struct StallProxy {
    addr: std::net::SocketAddr,
    stall: Arc<Mutex<Option<Arc<Stall>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StallProxy {
    async fn start(upstream: String) -> StallProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let stall: Arc<Mutex<Option<Arc<Stall>>>> = Arc::default();
        let shared = stall.clone();
        let task = tokio::spawn(async move {
            let mut relays = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let stall = shared.clone();
                relays.spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let (client_read, client_write) = tokio::io::split(client);
                    let (server_read, server_write) = tokio::io::split(server);
                    tokio::join!(
                        pump(client_read, server_write, stall.clone(), true),
                        pump(server_read, client_write, stall, false),
                    );
                });
            }
        });
        StallProxy { addr, stall, task }
    }

    /// `url` with its host and port replaced by the proxy's.
    fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let user = authority
            .rsplit_once('@')
            .map_or(String::new(), |(user, _)| format!("{user}@"));
        format!("{scheme}://{user}{}{tail}", self.addr)
    }

    /// Holds the response to the next request that `matches`.
    fn arm(&self, matches: Matcher, split_at: usize) -> Arc<Stall> {
        let stall = Arc::new(Stall {
            armed: AtomicBool::new(true),
            pending: AtomicBool::new(false),
            triggered: AtomicU64::new(0),
            matches,
            split_at,
        });
        *self.stall.lock().unwrap_or_else(|p| p.into_inner()) = Some(stall.clone());
        stall
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        // Dropping the accept loop drops its relays (a JoinSet aborts its tasks).
        self.task.abort();
    }
}

async fn pump<R, W>(
    mut from: R,
    mut to: W,
    stall: Arc<Mutex<Option<Arc<Stall>>>>,
    from_client: bool,
) where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let current = stall.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let held = match &current {
            Some(stall) if from_client => {
                if stall.armed.load(Ordering::SeqCst) && (stall.matches)(chunk) {
                    stall.armed.store(false, Ordering::SeqCst);
                    stall.pending.store(true, Ordering::SeqCst);
                    stall.triggered.fetch_add(1, Ordering::SeqCst);
                }
                None
            }
            Some(stall) if stall.pending.swap(false, Ordering::SeqCst) => Some(stall.split_at),
            _ => None,
        };
        let written = match held {
            Some(split_at) => {
                let split_at = split_at.min(n);
                let first = to.write_all(&chunk[..split_at]).await.and(to.flush().await);
                tokio::time::sleep(HOLD).await;
                first.and(to.write_all(&chunk[split_at..]).await)
            }
            None => to.write_all(chunk).await,
        };
        if written.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// `host:port` of a server URL.
fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A MySQL client packet's command byte (after the 3-byte length and the sequence number).
fn mysql_command(chunk: &[u8]) -> Option<u8> {
    chunk.get(4).copied()
}

test_support::backend_test!(
    /// Each operation is cancelled exactly while one of its responses is on its way (the proxy
    /// holds it back), at each stage: the tenant's `BEGIN`, the statement, the `COMMIT`. Then the
    /// next operation takes the same (only) connection: it must get one, within a few seconds,
    /// that carries no tenant and no open transaction. SQLite has no wire: nothing to do there.
    a_cancelled_operation_leaves_a_clean_connection_at_every_stage,
    |t: TestDb| async move {
        let backend = t.backend();
        if backend == Backend::Sqlite {
            return;
        }
        let default_port = if backend == Backend::Postgres { 5432 } else { 3306 };
        let proxy = StallProxy::start(host_port(t.url(), default_port)).await;
        let probe = Arc::new(Probe::default());
        // A pool of one connection through the proxy, fresh for each case (a case that breaks
        // the connection must not hide the next).
        let connect = async || {
            let mut app = test_support::connect_options(&proxy.url(&t.app_url()));
            app.max_connections(1)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(2));
            probe.watch(&mut app, backend);
            TenantDb::options(app)
                .system(test_support::connect_options(t.url()))
                // The stalling proxy keeps one server connection per client.
                .transaction_pooling(false)
                .connect()
                .await
                .expect("the library through the proxy")
        };
        let db = connect().await;
        let system = db.system("cancellation test fixture").await.expect("system");
        let ctx = test_support::tenant(&system, "cancelled").await;
        let anchor = db
            .scope(&ctx)
            .insert(new_project(Uuid::now_v7(), "anchor".into()))
            .await
            .expect("anchor")
            .id;
        drop(system);
        drop(db);

        // (stage, which request's response to hold, bytes of it to let through first)
        let stages: Vec<(&str, Matcher, usize)> = match backend {
            Backend::Postgres => vec![
                (
                    "BEGIN + SET LOCAL",
                    |c| contains(c, b"BEGIN; SET LOCAL tenant_scope.tenant_id"),
                    0,
                ),
                ("statement", |c| c.first() == Some(&b'B'), 0),
                ("COMMIT", |c| contains(c, b"COMMIT"), 0),
                // A read whose values are written in: the tenant and the statement in one message.
                (
                    "SET LOCAL + statement (one message)",
                    |c| c.first() == Some(&b'Q') && contains(c, b"SET LOCAL tenant_scope.tenant_id")
                        && !contains(c, b"BEGIN"),
                    0,
                ),
            ],
            _ => vec![
                (
                    "BEGIN",
                    |c| mysql_command(c) == Some(0x03) && contains(c, b"BEGIN"),
                    4,
                ),
                (
                    "statement",
                    |c| matches!(mysql_command(c), Some(0x16 | 0x17)),
                    4,
                ),
                (
                    "COMMIT",
                    |c| mysql_command(c) == Some(0x03) && contains(c, b"COMMIT"),
                    4,
                ),
            ],
        };
        let mut failures = Vec::new();
        let mut exercised = Vec::new();
        for (stage, matcher, split_at) in stages {
            for op in ["get", "insert", "transaction", "begin/insert/commit"] {
                let db = connect().await;
                let scope = db.scope(&ctx);
                let stall = proxy.arm(matcher, split_at);
                let run = async {
                    match op {
                        "get" => drop(scope.get::<projects::Entity>(anchor).await),
                        "insert" => drop(
                            scope
                                .insert(new_project(Uuid::now_v7(), format!("i {}", Uuid::now_v7())))
                                .await,
                        ),
                        "transaction" => {
                            let am = new_project(Uuid::now_v7(), format!("t {}", Uuid::now_v7()));
                            drop(
                                db.transaction(&ctx, |tx| {
                                    Box::pin(async move {
                                        tx.insert(am).await?;
                                        tx.find::<projects::Entity>().count().await
                                    })
                                })
                                .await,
                            )
                        }
                        _ => {
                            let am = new_project(Uuid::now_v7(), format!("b {}", Uuid::now_v7()));
                            if let Ok(tx) = db.begin(&ctx).await {
                                let _ = tx.scope().insert(am).await;
                                let _ = tx.commit().await;
                            }
                        }
                    }
                };
                let cancelled = timeout(HOLD / 4, run).await.is_err();
                let triggered = stall.triggered.load(Ordering::SeqCst) > 0;
                stall.armed.store(false, Ordering::SeqCst);
                if !(cancelled && triggered) {
                    // This operation has no such stage (e.g. a read's COMMIT).
                    continue;
                }
                exercised.push(format!("{op} @ {stage}"));
                tokio::time::sleep(HOLD + Duration::from_millis(100)).await;
                let dirty_before = probe.dirty().len();
                let next = timeout(
                    Duration::from_secs(4),
                    scope.find::<projects::Entity>().count(),
                )
                .await;
                let outcome = match next {
                    Err(_) => Some("the next operation hung".to_owned()),
                    Ok(Err(e)) => Some(format!("the next operation failed: {}", show(&e))),
                    Ok(Ok(_)) if probe.dirty().len() > dirty_before => Some(format!(
                        "the connection came back dirty: {}",
                        probe.dirty().last().cloned().unwrap_or_default()
                    )),
                    Ok(Ok(_)) => None,
                };
                if let Some(outcome) = outcome {
                    failures.push(format!("{op} cancelled during {stage}: {outcome}"));
                }
            }
        }
        eprintln!(
            "{backend}: cancelled at a held response: {}; {} left a bad connection",
            exercised.join(", "),
            failures.len()
        );
        for failure in &failures {
            eprintln!("  {failure}");
        }
        // Closing the proxy's sockets ends the server sessions a broken connection left behind.
        drop(proxy);
        assert!(
            exercised.len() >= 10,
            "too few cancellation points exercised: {exercised:?}"
        );
        assert!(
            failures.is_empty(),
            "{backend}: cancelled operations left bad connections in the pool:\n{}",
            failures.join("\n")
        );
    }
);
