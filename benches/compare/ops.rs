//! The operations, each written three ways: through tenant-scope, as hand-written SeaORM with a
//! manual `tenant_id` filter, and as raw sqlx with a prepared statement (sqlx caches the prepared
//! statement per connection; SeaORM and the library go through the same cache).
//!
//! Writes through tenant-scope also insert an audit event in the write's transaction. A
//! hand-written write has no audit event unless the user adds one: the `*_audit` variants do, the
//! way a user would (a transaction, the write, an `INSERT` into `audit_events`, `COMMIT`).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use entity::{audit_events, comments, tasks};
use sea_orm::ActiveValue::{NotSet, Set, Unchanged};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait, sqlx,
};
use tenant_scope::{TenantContext, TenantId, TenantScope};
use uuid::Uuid;

use crate::layout::{COMMENTS_PER_TASK, Layout};
use crate::setup::{SqlxPool, Target};

/// A task as raw sqlx reads it.
pub(crate) type TaskRow = (Uuid, Uuid, Uuid, Option<Uuid>, String, bool, DateTime<Utc>);
/// A task and one of its comments (if any), as raw sqlx reads the join.
type TaskCommentRow = (
    Uuid,
    Uuid,
    Uuid,
    Option<Uuid>,
    String,
    bool,
    DateTime<Utc>,
    Option<Uuid>,
    Option<Uuid>,
    Option<Uuid>,
    Option<Uuid>,
    Option<String>,
    Option<DateTime<Utc>>,
);

/// The SQL of the raw sqlx variant on each backend: PostgreSQL's `$n`, SQLite's `?`.
struct Sql {
    pg: &'static str,
    sqlite: &'static str,
}

const GET: Sql = Sql {
    pg: "SELECT tenant_id, id, project_id, assignee_id, title, done, created_at FROM tasks \
         WHERE tenant_id = $1 AND id = $2",
    sqlite: "SELECT tenant_id, id, project_id, assignee_id, title, done, created_at FROM tasks \
             WHERE tenant_id = ? AND id = ?",
};
const LIST: Sql = Sql {
    pg: "SELECT tenant_id, id, project_id, assignee_id, title, done, created_at FROM tasks \
         WHERE tenant_id = $1 AND project_id = $2 AND done = $3 ORDER BY id LIMIT 50",
    sqlite: "SELECT tenant_id, id, project_id, assignee_id, title, done, created_at FROM tasks \
             WHERE tenant_id = ? AND project_id = ? AND done = ? ORDER BY id LIMIT 50",
};
const INSERT: Sql = Sql {
    pg: "INSERT INTO tasks (tenant_id, id, project_id, assignee_id, title, done, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         RETURNING tenant_id, id, project_id, assignee_id, title, done, created_at",
    sqlite: "INSERT INTO tasks (tenant_id, id, project_id, assignee_id, title, done, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             RETURNING tenant_id, id, project_id, assignee_id, title, done, created_at",
};
const UPDATE: Sql = Sql {
    pg: "UPDATE tasks SET title = $1 WHERE tenant_id = $2 AND id = $3 \
         RETURNING tenant_id, id, project_id, assignee_id, title, done, created_at",
    sqlite: "UPDATE tasks SET title = ? WHERE tenant_id = ? AND id = ? \
             RETURNING tenant_id, id, project_id, assignee_id, title, done, created_at",
};
const LOAD: Sql = Sql {
    pg: "SELECT t.tenant_id, t.id, t.project_id, t.assignee_id, t.title, t.done, t.created_at, \
         c.tenant_id, c.id, c.task_id, c.author_id, c.body, c.created_at \
         FROM tasks t LEFT JOIN comments c ON c.tenant_id = t.tenant_id AND c.task_id = t.id \
         WHERE t.tenant_id = $1 AND t.id = $2 ORDER BY t.tenant_id, t.id",
    sqlite: "SELECT t.tenant_id, t.id, t.project_id, t.assignee_id, t.title, t.done, \
             t.created_at, c.tenant_id, c.id, c.task_id, c.author_id, c.body, c.created_at \
             FROM tasks t LEFT JOIN comments c ON c.tenant_id = t.tenant_id AND c.task_id = t.id \
             WHERE t.tenant_id = ? AND t.id = ? ORDER BY t.tenant_id, t.id",
};
const AUDIT: Sql = Sql {
    pg: "INSERT INTO audit_events (tenant_id, id, actor, action, table_name, row_id, request_id, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    sqlite: "INSERT INTO audit_events (tenant_id, id, actor, action, table_name, row_id, \
             request_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
};

impl Sql {
    /// The text for `pool`'s backend.
    fn on(&self, pool: &SqlxPool) -> &'static str {
        match pool {
            SqlxPool::Postgres(_) => self.pg,
            SqlxPool::Sqlite(_) => self.sqlite,
        }
    }
}

/// Runs the same sqlx call on whichever pool the target has, with that backend's SQL.
macro_rules! on_pool {
    ($pool:expr, $sql:expr, |$p:ident, $q:ident| $body:expr) => {
        match $pool {
            SqlxPool::Postgres($p) => {
                let $q = $sql.pg;
                $body
            }
            SqlxPool::Sqlite($p) => {
                let $q = $sql.sqlite;
                $body
            }
        }
    };
}

/// The operations benches of one target: its tenant 0, the task with comments, the task that is
/// updated and the project that is listed.
#[derive(Debug)]
pub(crate) struct Fixture {
    pub(crate) target: Target,
    pub(crate) ctx: TenantContext,
    tenant: TenantId,
    task: Uuid,
    edit: Uuid,
    project: Uuid,
    counter: AtomicU64,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

impl Fixture {
    pub(crate) async fn new(target: Target) -> Fixture {
        let tenant = Layout::tenant(0);
        let ctx = context(&target, tenant).await;
        let layout = target.layout;
        Fixture {
            ctx,
            tenant,
            task: layout.first_task(0),
            edit: layout.task(1).1,
            project: layout.project(0).1,
            counter: AtomicU64::new(0),
            target,
        }
    }

    /// Checks that every variant reads what it should (the loops below only time them).
    pub(crate) async fn check(&self) {
        let scope = self.target.db.scope(&self.ctx);
        assert_eq!(
            self.ts_get(&scope).await,
            self.sea_get(&self.target.raw).await
        );
        assert_eq!(self.sqlx_get().await.1, self.task);
        let page = self.ts_list(&scope).await;
        assert_eq!(page.len(), 50, "a page of 50");
        assert_eq!(page, self.sea_list(&self.target.raw).await);
        assert_eq!(self.sqlx_list().await.len(), 50);
        let loaded = self.ts_load(&scope).await;
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].1.len() as u64, COMMENTS_PER_TASK);
        assert_eq!(loaded, self.sea_load(&self.target.raw).await);
        assert_eq!(self.sqlx_load().await.len() as u64, COMMENTS_PER_TASK);
    }

    fn next_title(&self) -> String {
        format!("title {}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    // --- get --------------------------------------------------------------------------------

    pub(crate) async fn ts_get(&self, s: &TenantScope<'_>) -> tasks::Model {
        s.get::<tasks::Entity>(self.task).await.expect("ts get")
    }

    pub(crate) async fn sea_get(&self, c: &impl ConnectionTrait) -> tasks::Model {
        sea_get(c, self.tenant, self.task).await
    }

    pub(crate) async fn sqlx_get(&self) -> TaskRow {
        sqlx_get(&self.target.sqlx, self.tenant, self.task).await
    }

    // --- list -------------------------------------------------------------------------------

    pub(crate) async fn ts_list(&self, s: &TenantScope<'_>) -> Vec<tasks::Model> {
        s.find::<tasks::Entity>()
            .filter(tasks::Column::ProjectId.eq(self.project))
            .filter(tasks::Column::Done.eq(false))
            .order_by_asc(tasks::Column::Id)
            .limit(50)
            .all()
            .await
            .expect("ts list")
    }

    pub(crate) async fn sea_list(&self, c: &impl ConnectionTrait) -> Vec<tasks::Model> {
        tasks::Entity::find()
            .filter(tasks::Column::TenantId.eq(self.tenant))
            .filter(tasks::Column::ProjectId.eq(self.project))
            .filter(tasks::Column::Done.eq(false))
            .order_by_asc(tasks::Column::Id)
            .limit(50)
            .all(c)
            .await
            .expect("seaorm list")
    }

    pub(crate) async fn sqlx_list(&self) -> Vec<TaskRow> {
        let (tenant, project) = (self.tenant.into_uuid(), self.project);
        on_pool!(&self.target.sqlx, LIST, |p, q| {
            sqlx::query_as::<_, TaskRow>(q)
                .bind(tenant)
                .bind(project)
                .bind(false)
                .fetch_all(p)
                .await
                .expect("sqlx list")
        })
    }

    // --- insert -----------------------------------------------------------------------------

    fn new_task(&self) -> tasks::ActiveModel {
        tasks::ActiveModel {
            tenant_id: NotSet,
            id: NotSet,
            project_id: Set(self.project),
            assignee_id: Set(None),
            title: Set(self.next_title()),
            done: Set(false),
            created_at: Set(now()),
        }
    }

    pub(crate) async fn ts_insert(&self, s: &TenantScope<'_>) -> tasks::Model {
        s.insert(self.new_task()).await.expect("ts insert")
    }

    pub(crate) async fn sea_insert(&self, c: &impl ConnectionTrait) -> tasks::Model {
        let mut am = self.new_task();
        am.tenant_id = Set(self.tenant);
        am.id = Set(Uuid::now_v7());
        am.insert(c).await.expect("seaorm insert")
    }

    /// The audit event a user would write by hand: the same columns the library writes.
    pub(crate) async fn sea_audit(&self, c: &impl ConnectionTrait, action: &str, row: Uuid) {
        let event = audit_events::ActiveModel {
            tenant_id: Set(self.tenant),
            id: Set(Uuid::now_v7()),
            actor: Set(self.ctx.actor().to_string()),
            action: Set(action.to_owned()),
            table_name: Set("tasks".to_owned()),
            row_id: Set(Some(row)),
            row_key: Set(Some(row.to_string())),
            request_id: Set(self.ctx.request_id().to_owned()),
            created_at: Set(now()),
        };
        audit_events::Entity::insert(event)
            .exec_without_returning(c)
            .await
            .expect("seaorm audit");
    }

    /// Hand-written insert with its audit event, on `c` (in a transaction of its own if `c` is
    /// the pool).
    pub(crate) async fn sea_insert_audit(&self, c: &DatabaseConnection) -> tasks::Model {
        let txn = c.begin().await.expect("seaorm begin");
        let model = self.sea_insert(&txn).await;
        self.sea_audit(&txn, "insert", model.id).await;
        txn.commit().await.expect("seaorm commit");
        model
    }

    /// Raw sqlx insert; with the audit event, in a transaction with it (without, a single
    /// statement, like the hand-written SeaORM insert).
    pub(crate) async fn sqlx_insert(&self, with_audit: bool) -> TaskRow {
        let (tenant, id, project, title) = (
            self.tenant.into_uuid(),
            Uuid::now_v7(),
            self.project,
            self.next_title(),
        );
        let audit = AUDIT.on(&self.target.sqlx);
        on_pool!(&self.target.sqlx, INSERT, |p, q| {
            let insert = sqlx::query_as::<_, TaskRow>(q)
                .bind(tenant)
                .bind(id)
                .bind(project)
                .bind(None::<Uuid>)
                .bind(title)
                .bind(false)
                .bind(now());
            if !with_audit {
                return insert.fetch_one(p).await.expect("sqlx insert");
            }
            let mut tx = p.begin().await.expect("sqlx begin");
            let row = insert.fetch_one(&mut *tx).await.expect("sqlx insert");
            sqlx::query(audit)
                .bind(tenant)
                .bind(Uuid::now_v7())
                .bind(self.ctx.actor().to_string())
                .bind("insert")
                .bind("tasks")
                .bind(Some(id))
                .bind(self.ctx.request_id())
                .bind(now())
                .execute(&mut *tx)
                .await
                .expect("sqlx audit");
            tx.commit().await.expect("sqlx commit");
            row
        })
    }

    // --- update -----------------------------------------------------------------------------

    pub(crate) async fn ts_update(&self, s: &TenantScope<'_>) -> tasks::Model {
        let am = tasks::ActiveModel {
            id: Unchanged(self.edit),
            title: Set(self.next_title()),
            ..Default::default()
        };
        s.update(am).await.expect("ts update")
    }

    pub(crate) async fn sea_update(&self, c: &impl ConnectionTrait) -> tasks::Model {
        let am = tasks::ActiveModel {
            tenant_id: Unchanged(self.tenant),
            id: Unchanged(self.edit),
            title: Set(self.next_title()),
            ..Default::default()
        };
        am.update(c).await.expect("seaorm update")
    }

    pub(crate) async fn sea_update_audit(&self, c: &DatabaseConnection) -> tasks::Model {
        let txn = c.begin().await.expect("seaorm begin");
        let model = self.sea_update(&txn).await;
        self.sea_audit(&txn, "update", model.id).await;
        txn.commit().await.expect("seaorm commit");
        model
    }

    /// Raw sqlx update; with the audit event, in a transaction with it (without, a single
    /// statement, like the hand-written SeaORM update).
    pub(crate) async fn sqlx_update(&self, with_audit: bool) -> TaskRow {
        let (title, tenant, id) = (self.next_title(), self.tenant.into_uuid(), self.edit);
        let audit = AUDIT.on(&self.target.sqlx);
        on_pool!(&self.target.sqlx, UPDATE, |p, q| {
            let update = sqlx::query_as::<_, TaskRow>(q)
                .bind(title)
                .bind(tenant)
                .bind(id);
            if !with_audit {
                return update.fetch_one(p).await.expect("sqlx update");
            }
            let mut tx = p.begin().await.expect("sqlx begin");
            let row = update.fetch_one(&mut *tx).await.expect("sqlx update");
            sqlx::query(audit)
                .bind(tenant)
                .bind(Uuid::now_v7())
                .bind(self.ctx.actor().to_string())
                .bind("update")
                .bind("tasks")
                .bind(Some(id))
                .bind(self.ctx.request_id())
                .bind(now())
                .execute(&mut *tx)
                .await
                .expect("sqlx audit");
            tx.commit().await.expect("sqlx commit");
            row
        })
    }

    // --- a task with its comments -----------------------------------------------------------

    pub(crate) async fn ts_load(
        &self,
        s: &TenantScope<'_>,
    ) -> Vec<(tasks::Model, Vec<comments::Model>)> {
        s.find::<tasks::Entity>()
            .filter(tasks::Column::Id.eq(self.task))
            .find_with_related::<comments::Entity>()
            .all()
            .await
            .expect("ts load")
    }

    pub(crate) async fn sea_load(
        &self,
        c: &impl ConnectionTrait,
    ) -> Vec<(tasks::Model, Vec<comments::Model>)> {
        tasks::Entity::find()
            .filter(tasks::Column::TenantId.eq(self.tenant))
            .filter(tasks::Column::Id.eq(self.task))
            .find_with_related(comments::Entity)
            .all(c)
            .await
            .expect("seaorm load")
    }

    pub(crate) async fn sqlx_load(&self) -> Vec<TaskCommentRow> {
        let (tenant, id) = (self.tenant.into_uuid(), self.task);
        on_pool!(&self.target.sqlx, LOAD, |p, q| sqlx::query_as::<
            _,
            TaskCommentRow,
        >(q)
        .bind(tenant)
        .bind(id)
        .fetch_all(p)
        .await
        .expect("sqlx load"))
    }
}

/// PostgreSQL, by hand as the application role (row level security applies): setting the tenant
/// for a hand-written read, and the library's write protocol replayed with raw sqlx (`BEGIN;
/// SELECT set_config(..)` in one message, the statements, `COMMIT`), with and without the audit
/// event folded into the write's statement (a data-modifying CTE): a change the library could make.
impl Fixture {
    fn extra(&self) -> &crate::setup::Extra {
        self.target
            .extra
            .as_ref()
            .expect("bench: the extra pools exist for the operation benches")
    }

    /// Hand-written SeaORM as the application role.
    pub(crate) fn raw_app(&self) -> &DatabaseConnection {
        self.extra()
            .raw_app
            .as_ref()
            .expect("bench: the application role's pool exists on PostgreSQL")
    }

    /// What a user writes to set the tenant for row level security by hand, on a transaction of
    /// SeaORM's: `SELECT set_config('tenant_scope.tenant_id', $1, true)`.
    pub(crate) async fn sea_set_tenant(&self, c: &impl ConnectionTrait) {
        c.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT set_config('tenant_scope.tenant_id', $1, true)",
            [self.tenant.as_uuid().to_string().into()],
        ))
        .await
        .expect("bench: set_config");
    }

    fn app_pool(&self) -> &sqlx::PgPool {
        self.extra()
            .app_sqlx
            .as_ref()
            .expect("bench: the application role's sqlx pool exists on PostgreSQL")
    }

    async fn app_begin(&self) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let begin = format!(
            "BEGIN; SELECT set_config('tenant_scope.tenant_id', '{}', true)",
            self.tenant
        );
        self.app_pool()
            .begin_with(sqlx::AssertSqlSafe(begin))
            .await
            .expect("bench: begin with the tenant")
    }

    /// The library's insert, replayed: begin with the tenant, the insert, the audit event, commit.
    pub(crate) async fn sim_insert(&self) -> TaskRow {
        let (tenant, id) = (self.tenant.into_uuid(), Uuid::now_v7());
        let mut tx = self.app_begin().await;
        let row = sqlx::query_as::<_, TaskRow>(INSERT.pg)
            .bind(tenant)
            .bind(id)
            .bind(self.project)
            .bind(None::<Uuid>)
            .bind(self.next_title())
            .bind(false)
            .bind(now())
            .fetch_one(&mut *tx)
            .await
            .expect("sim insert");
        sqlx::query(AUDIT.pg)
            .bind(tenant)
            .bind(Uuid::now_v7())
            .bind(self.ctx.actor().to_string())
            .bind("insert")
            .bind("tasks")
            .bind(Some(id))
            .bind(self.ctx.request_id())
            .bind(now())
            .execute(&mut *tx)
            .await
            .expect("sim audit");
        tx.commit().await.expect("sim commit");
        row
    }

    /// The protocol of a tenant's get before reads went in one message, replayed with raw sqlx
    /// as the application role: `BEGIN; SET LOCAL ..` (one message), the prepared get, and the
    /// transaction dropped (its `ROLLBACK` goes out with the release ping).
    pub(crate) async fn sim_get_bound(&self) -> TaskRow {
        let begin = format!(
            "BEGIN; SET LOCAL tenant_scope.tenant_id = '{}'",
            self.tenant
        );
        let mut tx = self
            .app_pool()
            .begin_with(sqlx::AssertSqlSafe(begin))
            .await
            .expect("bench: begin with the tenant");
        sqlx::query_as::<_, TaskRow>(GET.pg)
            .bind(self.tenant.into_uuid())
            .bind(self.task)
            .fetch_one(&mut *tx)
            .await
            .expect("sim get, bound")
    }

    /// The library's get protocol, replayed with raw sqlx as the application role: the tenant and
    /// the statement with its values written in, one simple-query message.
    pub(crate) async fn sim_get_one_message(&self) -> TaskRow {
        let sql = format!(
            "SET LOCAL tenant_scope.tenant_id = '{t}'; SELECT tenant_id, id, project_id, \
             assignee_id, title, done, created_at FROM tasks WHERE tenant_id = '{t}'::uuid \
             AND id = '{id}'::uuid",
            t = self.tenant,
            id = self.task
        );
        let row = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .fetch_one(self.app_pool())
            .await
            .expect("sim get, one message");
        use sqlx::Row as _;
        (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
            row.get(6),
        )
    }

    /// Like [`Fixture::sim_insert`], with the audit event in the insert's statement: one round
    /// trip less.
    pub(crate) async fn sim_insert_cte(&self) -> TaskRow {
        const CTE: &str = "WITH t AS (INSERT INTO tasks (tenant_id, id, project_id, assignee_id, \
             title, done, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             RETURNING tenant_id, id, project_id, assignee_id, title, done, created_at), \
             a AS (INSERT INTO audit_events (tenant_id, id, actor, action, table_name, row_id, \
             request_id, created_at) SELECT t.tenant_id, $8, $9, 'insert', 'tasks', t.id, $10, $7 \
             FROM t) SELECT * FROM t";
        let (tenant, id) = (self.tenant.into_uuid(), Uuid::now_v7());
        let mut tx = self.app_begin().await;
        let row = sqlx::query_as::<_, TaskRow>(CTE)
            .bind(tenant)
            .bind(id)
            .bind(self.project)
            .bind(None::<Uuid>)
            .bind(self.next_title())
            .bind(false)
            .bind(now())
            .bind(Uuid::now_v7())
            .bind(self.ctx.actor().to_string())
            .bind(self.ctx.request_id())
            .fetch_one(&mut *tx)
            .await
            .expect("sim insert with the audit event in a CTE");
        tx.commit().await.expect("sim commit");
        row
    }
}

/// The hand-written SeaORM get: task `id` of `tenant`, with the manual `tenant_id` filter.
pub(crate) async fn sea_get(c: &impl ConnectionTrait, tenant: TenantId, id: Uuid) -> tasks::Model {
    tasks::Entity::find()
        .filter(tasks::Column::TenantId.eq(tenant))
        .filter(tasks::Column::Id.eq(id))
        .one(c)
        .await
        .expect("seaorm get")
        .expect("the task exists")
}

/// The raw sqlx get (a prepared statement): task `id` of `tenant`.
pub(crate) async fn sqlx_get(pool: &SqlxPool, tenant: TenantId, id: Uuid) -> TaskRow {
    let tenant = tenant.into_uuid();
    on_pool!(pool, GET, |p, q| sqlx::query_as::<_, TaskRow>(q)
        .bind(tenant)
        .bind(id)
        .fetch_one(p)
        .await
        .expect("sqlx get"))
}

/// A context for `tenant`, from the system handle (as a job would make one).
pub(crate) async fn context(target: &Target, tenant: TenantId) -> TenantContext {
    target
        .db
        .system("benchmarks")
        .await
        .expect("bench: system access")
        .context_for(tenant)
}

/// Lookups at scale: `n` tasks and `n` projects spread over the whole table (and so over the
/// tenants), each with its tenant's context.
#[derive(Debug)]
pub(crate) struct Spread {
    pub(crate) target: Target,
    contexts: Vec<TenantContext>,
    /// (context index, task id)
    tasks: Vec<(usize, Uuid)>,
    /// (context index, project id)
    projects: Vec<(usize, Uuid)>,
    next: AtomicU64,
}

impl Spread {
    pub(crate) async fn new(target: Target, n: u64) -> Spread {
        let layout = target.layout;
        let system = target.db.system("benchmarks").await.expect("bench: system");
        let mut contexts = Vec::new();
        let mut index = std::collections::HashMap::new();
        let mut context_of = |t: u64| {
            *index.entry(t).or_insert_with(|| {
                contexts.push(system.context_for(Layout::tenant(t)));
                contexts.len() - 1
            })
        };
        // Multiplicative spreads: consecutive lookups land far apart in the table.
        let tasks: Vec<(usize, Uuid)> = (0..n)
            .map(|k| {
                let (t, id) = layout.task((k * 2_654_435_761 + 12_345) % layout.rows);
                (context_of(t), id)
            })
            .collect();
        let projects: Vec<(usize, Uuid)> = (0..n)
            .map(|k| {
                let (t, id) = layout.project((k * 2_654_435_761 + 777) % layout.projects());
                (context_of(t), id)
            })
            .collect();
        drop(system);
        let spread = Spread {
            target,
            contexts,
            tasks,
            projects,
            next: AtomicU64::new(0),
        };
        spread.check().await;
        spread
    }

    fn pick(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) as usize % self.tasks.len()
    }

    pub(crate) async fn get(&self) -> tasks::Model {
        let (ctx, id) = self.tasks[self.pick()];
        self.target
            .db
            .scope(&self.contexts[ctx])
            .get::<tasks::Entity>(id)
            .await
            .expect("scale get")
    }

    pub(crate) async fn list(&self) -> Vec<tasks::Model> {
        let (ctx, project) = self.projects[self.pick()];
        let page = self
            .target
            .db
            .scope(&self.contexts[ctx])
            .find::<tasks::Entity>()
            .filter(tasks::Column::ProjectId.eq(project))
            .filter(tasks::Column::Done.eq(false))
            .order_by_asc(tasks::Column::Id)
            .limit(50)
            .all()
            .await
            .expect("scale list");
        black_box(page)
    }

    /// Checks that the lookups find what they should.
    pub(crate) async fn check(&self) {
        let expected = (self.target.layout.per_tenant().min(100) / 2).min(50) as usize;
        for _ in 0..self.tasks.len() {
            self.get().await;
            assert_eq!(self.list().await.len(), expected, "a page of the project");
        }
    }
}
