//! [`TenantDb`], the only way into the database, and the handles it gives out.

use std::future::Future;
use std::pin::Pin;

use std::collections::BTreeSet;

use sea_orm::Iterable;
use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, Query, SelectStatement};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ActiveValue, ColumnTrait, ConnectOptions,
    ConnectionTrait, Database, DatabaseConnection, DbBackend, EntityTrait, IntoActiveModel,
    LoaderTrait, ModelTrait, QueryFilter, QueryResult, Related, Statement, StatementBuilder, Value,
};

use uuid::Uuid;

use crate::audit::{self, AuditAction};
use crate::contract::SYSTEM_AUDIT_TABLE;
use crate::entity::{Global, TenantScoped};
use crate::error::{Error, Result};
use crate::exec::{Exec, Pool, Tx, acquire_ping_redundant, audited_write, read};
use crate::scoped::{AllTenants, GlobalOnly, Scoped, ensure_not_refused, is_plain};
use crate::self_check::{self, Risk};
use crate::tenant::{Actor, TenantContext, TenantId, Verified};
use crate::trace::{self, table_of};
use crate::verify::TenantVerifier;

/// The database, wrapped so that tenant-owned rows are reachable only through a verified
/// [`TenantContext`].
///
/// `TenantDb` does not implement SeaORM's `ConnectionTrait` and never hands one out, so
/// `Entity::find().all(&db)` does not compile. Every query starts from a handle:
///
/// - [`TenantDb::scope`]: one tenant, from a verified context — the everyday handle;
/// - [`TenantDb::transaction`] / [`TenantDb::begin`]: one tenant, several statements, atomically;
/// - [`TenantDb::global`]: read-only access to entities that are not tenant-owned ([`Global`]);
/// - [`TenantDb::system`]: the explicit, logged and audited escape hatch for maintenance across
///   tenants.
///
/// On PostgreSQL every operation of a tenant runs in a transaction that first sets
/// `tenant_scope.tenant_id` (transaction-local), the setting the row level security policies of
/// `tenant_scope_schema::rls` read; see docs/postgres.md.
///
/// It is cheap to clone (the pools are shared).
#[derive(Clone, Debug)]
pub struct TenantDb {
    app: Pool,
    /// The connection of [`TenantDb::system`]; on PostgreSQL it must be configured explicitly.
    system: Option<Pool>,
}

impl TenantDb {
    /// Connects to `url` (`sqlite://…`, `postgres://…`, `mysql://…`) with the default options; see
    /// [`TenantDbOptions`] for a system connection and the self-check.
    ///
    /// On SQLite it verifies that foreign keys are enforced (`PRAGMA foreign_keys`), since the
    /// composite foreign keys are what reject a cross-tenant reference; it refuses to connect if they
    /// are off. On PostgreSQL it runs the [self-check](Risk) and refuses to serve if the role or the
    /// schema would let row level security be bypassed.
    pub async fn connect(url: &str) -> Result<Self> {
        let mut options = ConnectOptions::new(url.to_owned());
        options.sqlx_logging(false);
        TenantDbOptions::new(options).connect().await
    }

    /// Connects with SeaORM connection options (pool size, timeouts, logging); otherwise like
    /// [`TenantDb::connect`].
    pub async fn connect_with(options: ConnectOptions) -> Result<Self> {
        TenantDbOptions::new(options).connect().await
    }

    /// Options for connecting: a separate system connection, and risks to accept.
    ///
    /// ```no_run
    /// # async fn f() -> tenant_scope::Result<()> {
    /// use tenant_scope::TenantDb;
    ///
    /// let db = TenantDb::options("postgres://tenant_scope_app@db/app")
    ///     // The connection `db.system(reason)` uses: a role that may cross tenants (BYPASSRLS).
    ///     .system("postgres://tenant_scope_system@db/app")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn options(app: impl Into<ConnectOptions>) -> TenantDbOptions {
        TenantDbOptions::new(app)
    }

    /// The database backend.
    pub fn backend(&self) -> DbBackend {
        self.app.conn().get_database_backend()
    }

    /// Whether foreign keys are enforced on a connection of the pool (always true on PostgreSQL and
    /// MySQL/InnoDB; a per-connection setting on SQLite).
    pub async fn foreign_keys_enforced(&self) -> Result<bool> {
        foreign_keys_on(self.app.conn()).await
    }

    /// Verifies a claim with `verifier` and returns the context that proves it.
    ///
    /// This is the only way to get a [`TenantContext`]. The verifier decides; a claim it does not
    /// accept is [`Error::Denied`], the same answer for every reason.
    pub async fn verify<V>(&self, verifier: &V, claim: V::Claim) -> Result<TenantContext>
    where
        V: TenantVerifier + ?Sized,
    {
        let lookup = VerifierDb {
            exec: Exec::Pool(&self.app),
        };
        let Verified {
            tenant,
            actor,
            permissions,
        } = verifier.verify(&lookup, claim).await?;
        Ok(TenantContext::new(
            tenant,
            actor,
            permissions,
            Uuid::now_v7().to_string(),
        ))
    }

    /// The handle for one verified tenant.
    pub fn scope<'a>(&'a self, ctx: &'a TenantContext) -> TenantScope<'a> {
        TenantScope {
            exec: Exec::Pool(&self.app),
            ctx,
        }
    }

    /// Runs `f` with a tenant handle inside one transaction: committed if `f` returns `Ok`, rolled
    /// back if it returns `Err` (or panics). On PostgreSQL the tenant is set once, when the
    /// transaction begins.
    ///
    /// ```no_run
    /// # async fn f(db: &tenant_scope::TenantDb, ctx: &tenant_scope::TenantContext,
    /// #            a: entity::projects::ActiveModel, b: entity::projects::ActiveModel)
    /// #            -> tenant_scope::Result<()> {
    /// db.transaction(ctx, |tx| {
    ///     Box::pin(async move {
    ///         tx.insert(a).await?;
    ///         tx.insert(b).await?;
    ///         Ok::<_, tenant_scope::Error>(())
    ///     })
    /// })
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn transaction<F, T, E>(&self, ctx: &TenantContext, f: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c TenantScope<'c>) -> BoxFuture<'c, Result<T, E>>,
        E: From<Error>,
    {
        let tx = self.begin(ctx).await?;
        let result = f(&tx.scope()).await;
        match result {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(err) => {
                // The closure's error is the answer; a failed rollback must not replace it (the
                // connection, still in a transaction, is then closed rather than reused).
                let _ = tx.rollback().await;
                Err(err)
            }
        }
    }

    /// Starts a transaction for one tenant; dropped without [`TenantTransaction::commit`], it rolls
    /// back.
    pub async fn begin<'a>(&'a self, ctx: &'a TenantContext) -> Result<TenantTransaction<'a>> {
        let tx = self.app.begin(ctx.tenant()).await?;
        Ok(TenantTransaction { tx, ctx })
    }

    /// Read-only access to [`Global`] entities (tables that are deliberately not tenant-owned).
    pub fn global(&self) -> GlobalDb<'_> {
        GlobalDb {
            exec: Exec::Pool(&self.app),
        }
    }

    /// The explicit escape hatch for maintenance that crosses tenants (jobs, migrations, scans,
    /// provisioning a tenant). It needs a reason; each call writes an audit event with the reason
    /// (the global table [`SYSTEM_AUDIT_TABLE`]) and logs it at WARN, before any access is given.
    ///
    /// On PostgreSQL it runs on the separately configured system connection
    /// ([`TenantDbOptions::system`]), as a role that may cross tenants; without one it is
    /// [`Error::Config`]: it never falls back to the application's role. On SQLite and MySQL,
    /// which have no row level security, it uses the application's pool unless a system
    /// connection is configured.
    ///
    /// Everything done through it bypasses the tenant predicate; the composite foreign keys still
    /// hold, because the database enforces them.
    pub async fn system(&self, reason: &str) -> Result<SystemDb<'_>> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::Invalid("system access needs a reason".into()));
        }
        let pool = match (&self.system, self.backend()) {
            (Some(pool), _) => pool,
            (None, DbBackend::Postgres) => {
                return Err(Error::Config(
                    "system access is not configured: on PostgreSQL it needs its own connection, \
                     as a role that may cross tenants (TenantDb::options(url).system(url)); it \
                     never runs as the application's role"
                        .into(),
                ));
            }
            (None, _) => &self.app,
        };
        let event = Uuid::now_v7();
        let mut insert = Query::insert();
        insert
            .into_table(SYSTEM_AUDIT_TABLE)
            .columns(["id", "reason", "created_at"])
            .values_panic([
                Expr::val(event),
                Expr::val(reason),
                Expr::val(chrono::Utc::now()),
            ]);
        pool.conn().execute(&insert).await.map_err(|e| {
            Error::Config(format!(
                "system access is audited in the table `{SYSTEM_AUDIT_TABLE}`, and writing its \
                 event failed (does the table exist? see tenant_scope_schema::system_audit_table): {e}"
            ))
        })?;
        tracing::warn!(
            target: "tenant_scope::system",
            reason,
            event = %event,
            "system access across tenants"
        );
        Ok(SystemDb {
            exec: Exec::Pool(pool),
            reason: reason.to_owned(),
            event,
        })
    }
}

/// How to connect a [`TenantDb`]: the application's connection, the system connection, and the
/// risks of the PostgreSQL self-check you accept. Made by [`TenantDb::options`].
#[derive(Clone, Debug)]
#[must_use = "nothing is connected until `connect` is called"]
pub struct TenantDbOptions {
    app: ConnectOptions,
    system: Option<ConnectOptions>,
    accepted: BTreeSet<Risk>,
}

impl TenantDbOptions {
    /// Options for the application's connection: a URL, or SeaORM [`ConnectOptions`] (pool size,
    /// timeouts, statement logging), used as given, with one exception: on PostgreSQL and SQLite
    /// the pool does not ping a connection before handing it out (`test_before_acquire` is
    /// turned off), because the library makes that round trip redundant. On PostgreSQL every
    /// operation begins with a `BEGIN`, which fails on a connection the server closed before
    /// anything ran; the library then takes another connection. A SQLite connection lives in this
    /// process and cannot be closed behind the pool's back. MySQL keeps the ping. (From a URL,
    /// SeaORM's defaults apply; they include sqlx's statement logging, and on SQLite a pool of one
    /// connection.)
    pub fn new(app: impl Into<ConnectOptions>) -> Self {
        Self {
            app: app.into(),
            system: None,
            accepted: BTreeSet::new(),
        }
    }

    /// The connection [`TenantDb::system`] uses. On PostgreSQL it is required for system access,
    /// and its role must be able to cross tenants (a superuser, or a role with `BYPASSRLS`):
    /// `connect` checks that. On SQLite and MySQL it is optional.
    pub fn system(mut self, system: impl Into<ConnectOptions>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Serves even though the self-check finds `risk`. Each accepted risk that is present is
    /// logged at WARN when connecting. For development and migrations in progress; a service in
    /// production should accept none.
    pub fn accept_risk(mut self, risk: Risk) -> Self {
        self.accepted.insert(risk);
        self
    }

    /// Connects, and checks what can be checked before serving:
    ///
    /// - SQLite: foreign keys are enforced on the connection ([`Error::Config`] if not);
    /// - PostgreSQL: the self-check of the application's role and schema ([`Risk`]), and that the
    ///   system connection's role (if configured) may cross tenants.
    pub async fn connect(self) -> Result<TenantDb> {
        let mut app = self.app;
        if acquire_ping_redundant(app.get_url()) {
            app.test_before_acquire(false);
        }
        let app = Database::connect(guard_mysql_pool(app))
            .await
            .map_err(Error::from_db)?;
        check_foreign_keys(&app).await?;
        if app.get_database_backend() == DbBackend::Postgres {
            self_check::refuse_unless_accepted(&app, &self.accepted).await?;
        }
        let system = match self.system {
            Some(options) => {
                let system = Database::connect(guard_mysql_pool(options))
                    .await
                    .map_err(Error::from_db)?;
                if system.get_database_backend() != app.get_database_backend() {
                    return Err(Error::Config(
                        "the system connection is to a different kind of database than the \
                         application's"
                            .into(),
                    ));
                }
                check_foreign_keys(&system).await?;
                if system.get_database_backend() == DbBackend::Postgres {
                    self_check::system_role_crosses_tenants(&system).await?;
                }
                Some(Pool::system(system))
            }
            None => None,
        };
        Ok(TenantDb {
            app: Pool::app(app),
            system,
        })
    }
}

/// How long a MySQL connection returned to the pool may take to answer a ping before it is closed.
const MYSQL_RELEASE_PING: std::time::Duration = std::time::Duration::from_secs(2);

/// On MySQL, a pool that closes a returned connection unless it answers a ping in time.
///
/// sqlx-mysql 0.9 is not cancel-safe while reading a packet: an operation dropped between a
/// packet's header and its body (a timeout, a client that went away) leaves the connection out of
/// step with the server. sqlx's own release ping then waits forever, so the pool loses the
/// connection for good, and a connection that did get back could read the rest of another query's
/// answer. This check runs before that ping: a connection that does not answer is closed, never
/// reused (tests/pool_safety.rs cancels operations mid-statement to check it). It is installed
/// with SeaORM's `map_sqlx_mysql_pool_opts`, replacing a function set there.
fn guard_mysql_pool(mut options: ConnectOptions) -> ConnectOptions {
    if tenant_scope_catalog::Backend::from_url(options.get_url())
        == Ok(tenant_scope_catalog::Backend::MySql)
    {
        options.map_sqlx_mysql_pool_opts(|pool| {
            pool.after_release(|conn, _| {
                Box::pin(async move {
                    match tokio::time::timeout(
                        MYSQL_RELEASE_PING,
                        sea_orm::sqlx::Connection::ping(conn),
                    )
                    .await
                    {
                        Ok(Ok(())) => Ok(true),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(sea_orm::sqlx::Error::Protocol(
                            "a returned connection did not answer a ping in time; closed".into(),
                        )),
                    }
                })
            })
        });
    }
    options
}

async fn check_foreign_keys(conn: &DatabaseConnection) -> Result<()> {
    if foreign_keys_on(conn).await? {
        Ok(())
    } else {
        Err(Error::Config(
            "SQLite foreign keys are off on this connection; composite foreign keys would not \
             reject cross-tenant references (enable `foreign_keys`, sqlx does by default)"
                .into(),
        ))
    }
}

async fn foreign_keys_on<C: ConnectionTrait>(conn: &C) -> Result<bool> {
    if conn.get_database_backend() != DbBackend::Sqlite {
        return Ok(true);
    }
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA foreign_keys",
        ))
        .await
        .map_err(Error::from_db)?;
    let on: i64 = match row {
        Some(row) => row.try_get_by_index(0).map_err(Error::from_db)?,
        None => 0,
    };
    Ok(on == 1)
}

/// A boxed future, as returned by the closure of [`TenantDb::transaction`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The handle for one verified tenant; made by [`TenantDb::scope`] or inside a transaction.
///
/// Every method restricts to the context's tenant: reads filter on it, inserts set it, updates and
/// deletes match on `(tenant_id, id)`. Another tenant's row is answered exactly like a row that never
/// existed: [`Error::NotFound`], an empty list, a count of zero, nothing changed.
#[derive(Clone, Copy, Debug)]
pub struct TenantScope<'a> {
    exec: Exec<'a>,
    ctx: &'a TenantContext,
}

type ModelOf<A> = <<A as ActiveModelTrait>::Entity as EntityTrait>::Model;

impl<'a> TenantScope<'a> {
    /// The verified context of this handle.
    pub fn context(&self) -> &'a TenantContext {
        self.ctx
    }

    /// The tenant of this handle.
    pub fn tenant(&self) -> TenantId {
        self.ctx.tenant()
    }

    /// Crate-private: a raw read of the built-in verifiers' bookkeeping, which restricts to this
    /// handle's tenant itself.
    pub(crate) async fn query_all(&self, stmt: &SelectStatement) -> Result<Vec<QueryResult>> {
        // The callers (the verifiers' bookkeeping) run inside spans of their own.
        read!(
            self.exec,
            Some(self.tenant()),
            tracing::Span::none(),
            |conn| conn.query_all(stmt).await
        )
    }

    /// Crate-private: runs a raw write of the built-in verifiers' bookkeeping (which always
    /// restricts to this handle's tenant itself) as an audited write of this tenant on `table`'s
    /// row `row_id`; returns the rows affected (no event if none).
    pub(crate) async fn execute<S: StatementBuilder>(
        &self,
        stmt: &S,
        action: AuditAction,
        table: &'static str,
        row_id: Uuid,
    ) -> Result<u64> {
        execute_audited(
            self.exec,
            self.ctx,
            stmt,
            action,
            table,
            Some(row_id.into()),
            Error::from_db,
        )
        .await
    }

    /// A query over `E`, restricted to this tenant: `WHERE "table"."tenant_id" = $1`, the tenant a
    /// bound parameter (see [`Scoped::build`]).
    pub fn find<E: TenantScoped>(&self) -> Scoped<'a, sea_orm::Select<E>> {
        Scoped::tenant(self.exec, self.tenant(), Some(self.ctx))
    }

    /// The row of `E` with this id in this tenant; [`Error::NotFound`] if there is none here (whether
    /// or not another tenant has one).
    pub async fn get<E: TenantScoped>(&self, id: E::Id) -> Result<E::Model> {
        self.find::<E>()
            .filter(E::id_column().eq(id))
            .by_key()
            .await?
            .ok_or(Error::NotFound)
    }

    /// The row of `E` with this id, if the caller holds `permission`: the one authorization entry
    /// point for an action on an existing row.
    ///
    /// The order is fixed. The scoped lookup comes first: a row that does not exist in this tenant
    /// (missing, or another tenant's) is [`Error::NotFound`], whatever the caller's permissions, so
    /// a 403 can never tell a caller that an id exists elsewhere. Only for a row of the caller's own
    /// tenant is the permission checked ([`TenantContext::require`]): [`Error::Forbidden`] without
    /// it.
    ///
    /// ```no_run
    /// # async fn f(scope: tenant_scope::TenantScope<'_>, id: uuid::Uuid) -> tenant_scope::Result<()> {
    /// use entity::projects;
    /// // 404 if there is no such project here, 403 if there is one but the caller may not write it.
    /// let project = scope.authorize::<projects::Entity>(id, "projects.write").await?;
    /// # let _ = project; Ok(()) }
    /// ```
    pub async fn authorize<E: TenantScoped>(
        &self,
        id: E::Id,
        permission: &str,
    ) -> Result<E::Model> {
        let row = self.get::<E>(id).await?;
        self.ctx.require(permission)?;
        Ok(row)
    }

    /// Inserts a row in this tenant and returns it.
    ///
    /// `tenant_id` is set to this tenant; an active model that already names another tenant is
    /// [`Error::TenantMismatch`]. A missing `id` is filled with [`TenantScoped::new_id`]. A reference
    /// to a row that is not in this tenant is rejected by the composite foreign key and answered
    /// [`Error::NotFound`], like a reference to a row that never existed.
    pub async fn insert<A>(&self, mut am: A) -> Result<ModelOf<A>>
    where
        A: ActiveModelTrait + ActiveModelBehavior + Send,
        A::Entity: TenantScoped,
        ModelOf<A>: IntoActiveModel<A>,
    {
        let tenant_col = <A::Entity as TenantScoped>::tenant_column();
        let id_col = <A::Entity as TenantScoped>::id_column();
        self.check_tenant(&am.get(tenant_col))?;
        am.try_set(tenant_col, self.tenant().into())
            .map_err(Error::from_db)?;
        if matches!(am.get(id_col), ActiveValue::NotSet) {
            am.try_set(id_col, <A::Entity as TenantScoped>::new_id().into())
                .map_err(Error::from_db)?;
        }
        let table = table_of::<A::Entity>();
        audit::ensure_not_audit_table(table)?;
        let ctx = self.ctx;
        let span = trace::op_span("insert", table, Some(ctx));
        audited_write!(self.exec, self.tenant(), span, |conn| {
            let model = am.insert(&conn).await.map_err(Error::from_db)?;
            let row = model.get(id_col);
            audit::record(&conn, ctx, AuditAction::Insert, table, Some(row)).await?;
            Ok(model)
        })
    }

    /// Updates the columns that are `Set` in `am`, on the row `(this tenant, am.id)`, and returns the
    /// row as it is now.
    ///
    /// [`Error::NotFound`] if this tenant has no such row; [`Error::TenantMismatch`] if `am` sets or
    /// carries another tenant (a row never moves between tenants); [`Error::Invalid`] if `am` has no
    /// id.
    pub async fn update<A>(&self, mut am: A) -> Result<ModelOf<A>>
    where
        A: ActiveModelTrait + ActiveModelBehavior + Send,
        A::Entity: TenantScoped,
        ModelOf<A>: IntoActiveModel<A>,
    {
        let tenant_col = <A::Entity as TenantScoped>::tenant_column();
        let id_col = <A::Entity as TenantScoped>::id_column();
        self.check_tenant(&am.get(tenant_col))?;
        let id = match am.get(id_col) {
            ActiveValue::Set(v) | ActiveValue::Unchanged(v) => v,
            ActiveValue::NotSet => return Err(Error::Invalid("update needs the row id".into())),
        };
        am.not_set(tenant_col);
        am.not_set(id_col);
        let changed = <A::Entity as EntityTrait>::Column::iter().any(|c| am.get(c).is_set());
        let by_key = Expr::col((A::Entity::default(), tenant_col))
            .eq(self.tenant())
            .and(Expr::col((A::Entity::default(), id_col)).eq(id.clone()));
        let table = table_of::<A::Entity>();
        audit::ensure_not_audit_table(table)?;
        let ctx = self.ctx;
        let span = trace::op_span("update", table, Some(ctx));
        audited_write!(self.exec, self.tenant(), span, |conn| {
            let model = update_by_key(&conn, am, by_key, changed).await?;
            if changed {
                audit::record(&conn, ctx, AuditAction::Update, table, Some(id)).await?;
            }
            Ok(model)
        })
    }

    /// Deletes the row of `E` with this id in this tenant. [`Error::NotFound`] if there is none here;
    /// [`Error::Conflict`] if rows of this tenant still reference it (`ON DELETE RESTRICT`).
    pub async fn delete<E: TenantScoped>(&self, id: E::Id) -> Result<()> {
        let table = table_of::<E>();
        audit::ensure_not_audit_table(table)?;
        let ctx = self.ctx;
        let id: Value = id.into();
        let span = trace::op_span("delete", table, Some(ctx));
        audited_write!(self.exec, self.tenant(), span, |conn| {
            let deleted = E::delete_many()
                .filter(E::tenant_column().eq(self.tenant()))
                .filter(E::id_column().eq(id.clone()))
                .exec(&conn)
                .await
                .map_err(Error::from_delete)?;
            if deleted.rows_affected == 0 {
                return Err(Error::NotFound);
            }
            audit::record(&conn, ctx, AuditAction::Delete, table, Some(id)).await
        })
    }

    /// An `UPDATE` of many rows of `E` in this tenant; see [`ScopedUpdate`].
    pub fn update_many<E: TenantScoped>(&self) -> ScopedUpdate<'a, E> {
        ScopedUpdate {
            exec: self.exec,
            ctx: self.ctx,
            values: Vec::new(),
            condition: sea_orm::Condition::all(),
            limit: None,
            refused: false,
        }
    }

    /// A `DELETE` of many rows of `E` in this tenant; see [`ScopedDelete`].
    pub fn delete_many<E: TenantScoped>(&self) -> ScopedDelete<'a, E> {
        ScopedDelete {
            exec: self.exec,
            ctx: self.ctx,
            condition: sea_orm::Condition::all(),
            limit: None,
            refused: false,
            _entity: std::marker::PhantomData,
        }
    }

    /// Loads, for each model of `models`, its related rows of `R` in one query (SeaORM's batch
    /// loader, with the related query restricted to this tenant).
    ///
    /// A model of another tenant is [`Error::TenantMismatch`].
    pub async fn load_many<R, M>(&self, models: &[M]) -> Result<Vec<Vec<R::Model>>>
    where
        M: ModelTrait + Sync,
        M::Entity: TenantScoped + Related<R>,
        R: TenantScoped,
        R::Model: Send + Sync,
    {
        self.check_models(models)?;
        let related = self.find::<R>().into_select();
        let span = trace::op_span("load_many", table_of::<R>(), Some(self.ctx));
        read!(self.exec, Some(self.tenant()), span, |conn| models
            .load_many(related, &conn)
            .await)
    }

    /// Loads, for each model of `models`, its related row of `R` (a `belongs_to`), in one query.
    pub async fn load_one<R, M>(&self, models: &[M]) -> Result<Vec<Option<R::Model>>>
    where
        M: ModelTrait + Sync,
        M::Entity: TenantScoped + Related<R>,
        R: TenantScoped,
        R::Model: Send + Sync,
    {
        self.check_models(models)?;
        let related = self.find::<R>().into_select();
        let span = trace::op_span("load_one", table_of::<R>(), Some(self.ctx));
        read!(self.exec, Some(self.tenant()), span, |conn| models
            .load_one(related, &conn)
            .await)
    }

    fn check_models<M>(&self, models: &[M]) -> Result<()>
    where
        M: ModelTrait,
        M::Entity: TenantScoped,
    {
        let mine: Value = self.tenant().into();
        let col = <M::Entity as TenantScoped>::tenant_column();
        if models.iter().all(|m| m.get(col) == mine) {
            Ok(())
        } else {
            Err(Error::TenantMismatch)
        }
    }

    /// An active model's tenant value may be unset or this tenant, nothing else.
    fn check_tenant(&self, value: &ActiveValue<Value>) -> Result<()> {
        match value {
            ActiveValue::Set(v) | ActiveValue::Unchanged(v) if *v != self.tenant().into() => {
                Err(Error::TenantMismatch)
            }
            _ => Ok(()),
        }
    }
}

/// Runs one statement of `ctx`'s tenant as an audited write (see [`audited_write!`]) in the span of
/// the operation `action`; returns the number of rows it affected. The audit event (`action` on
/// `table`, `row_id` if the statement is about one row) is written only if a row was affected.
/// `on_error` classifies a failure of the statement ([`Error::from_delete`] for a delete).
async fn execute_audited<S: StatementBuilder>(
    exec: Exec<'_>,
    ctx: &TenantContext,
    stmt: &S,
    action: AuditAction,
    table: &'static str,
    row_id: Option<Value>,
    on_error: fn(sea_orm::DbErr) -> Error,
) -> Result<u64> {
    let span = trace::op_span(action.as_str(), table, Some(ctx));
    audited_write!(exec, ctx.tenant(), span, |conn| {
        let affected = conn.execute(stmt).await.map_err(on_error)?.rows_affected();
        if affected > 0 {
            audit::record(&conn, ctx, action, table, row_id).await?;
        }
        Ok(affected)
    })
}

/// The `UPDATE` of [`TenantScope::update`] on one connection: the row `by_key` gets the `Set`
/// columns of `am` (if `changed`), and is read back.
async fn update_by_key<A, C>(
    conn: &C,
    am: A,
    by_key: sea_orm::sea_query::SimpleExpr,
    changed: bool,
) -> Result<ModelOf<A>>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    ModelOf<A>: IntoActiveModel<A>,
    C: ConnectionTrait,
{
    if !changed {
        return A::Entity::find()
            .filter(by_key)
            .one(conn)
            .await
            .map_err(Error::from_db)?
            .ok_or(Error::NotFound);
    }
    let update = A::Entity::update_many().set(am).filter(by_key.clone());
    if conn.support_returning() {
        let mut rows = update
            .exec_with_returning(conn)
            .await
            .map_err(Error::from_db)?;
        return rows.pop().ok_or(Error::NotFound);
    }
    let result = update.exec(conn).await.map_err(Error::from_db)?;
    if result.rows_affected == 0 {
        return Err(Error::NotFound);
    }
    A::Entity::find()
        .filter(by_key)
        .one(conn)
        .await
        .map_err(Error::from_db)?
        .ok_or(Error::NotFound)
}

/// A transaction of one tenant; made by [`TenantDb::begin`].
///
/// Dropped without [`commit`](TenantTransaction::commit), it rolls back.
#[derive(Debug)]
pub struct TenantTransaction<'a> {
    tx: Tx,
    ctx: &'a TenantContext,
}

impl TenantTransaction<'_> {
    /// The tenant handle inside this transaction.
    pub fn scope(&self) -> TenantScope<'_> {
        TenantScope {
            exec: Exec::Tx(&self.tx),
            ctx: self.ctx,
        }
    }

    /// Commits; unless a statement of the transaction failed (a constraint, an error of the
    /// database): then it rolls back and returns [`Error::Invalid`], on every backend alike
    /// (PostgreSQL aborts such a transaction; SQLite and MySQL would otherwise commit the
    /// statements around the failure).
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await
    }
}

/// A scoped `UPDATE` of many rows; made by [`TenantScope::update_many`].
///
/// ```no_run
/// # async fn f(scope: tenant_scope::TenantScope<'_>, project: uuid::Uuid) -> tenant_scope::Result<()> {
/// use entity::tasks;
/// use sea_orm::{ColumnTrait, sea_query::Expr};
/// let closed = scope
///     .update_many::<tasks::Entity>()
///     .col_expr(tasks::Column::Done, Expr::value(true))
///     .filter(tasks::Column::ProjectId.eq(project))
///     .exec()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "nothing is updated until `exec` is called"]
pub struct ScopedUpdate<'a, E: EntityTrait> {
    exec: Exec<'a>,
    ctx: &'a TenantContext,
    values: Vec<(E::Column, Expr)>,
    condition: sea_orm::Condition,
    limit: Option<u64>,
    refused: bool,
}

impl<E: TenantScoped> ScopedUpdate<'_, E> {
    /// Sets every column that is `Set` in `am`.
    pub fn set<A>(mut self, am: A) -> Self
    where
        A: ActiveModelTrait<Entity = E>,
    {
        for col in E::Column::iter() {
            if let ActiveValue::Set(v) = am.get(col) {
                self.values.push((col, col.save_as(Expr::val(v))));
            }
        }
        self
    }

    /// Sets a column to an expression of columns, values, operators and function calls (no
    /// subquery or raw SQL, as in [`Scoped::filter`]).
    pub fn col_expr(mut self, col: E::Column, expr: impl Into<Expr>) -> Self {
        let expr = expr.into();
        self.refused |= !is_plain(&expr);
        self.values.push((col, expr));
        self
    }

    /// Adds a condition, conjoined with the tenant predicate and earlier conditions (no subquery
    /// or raw SQL, as in [`Scoped::filter`]).
    pub fn filter<F: IntoCondition>(mut self, condition: F) -> Self {
        let condition = condition.into_condition();
        self.refused |= !is_plain(&Expr::from(condition.clone()));
        self.condition = self.condition.add(condition);
        self
    }

    /// Updates at most `limit` rows (which ones is up to the database).
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(Ord::min(limit, crate::scoped::MAX_ROWS));
        self
    }

    /// Runs the update; returns the number of rows changed. Setting the tenant column is
    /// [`Error::TenantMismatch`]: rows never move between tenants.
    pub async fn exec(self) -> Result<u64> {
        ensure_not_refused(self.refused)?;
        let tenant_col = E::tenant_column();
        let tenant_name = sea_orm::IdenStatic::as_str(&tenant_col);
        if self
            .values
            .iter()
            .any(|(c, _)| sea_orm::IdenStatic::as_str(c) == tenant_name)
        {
            return Err(Error::TenantMismatch);
        }
        if self.values.is_empty() {
            return Ok(0);
        }
        let table = table_of::<E>();
        audit::ensure_not_audit_table(table)?;
        let (ctx, tenant) = (self.ctx, self.ctx.tenant());
        let backend = self.exec.backend();
        let mut update = E::update_many();
        for (col, expr) in self.values {
            update = update.col_expr(col, expr);
        }
        let update = update.filter(scoped_where::<E>(
            backend,
            tenant,
            self.condition,
            self.limit,
        ));
        let mut stmt = sea_orm::QueryTrait::into_query(update);
        if let (Some(limit), DbBackend::MySql) = (self.limit, backend) {
            stmt.limit(limit);
        }
        let action = AuditAction::UpdateMany;
        execute_audited(self.exec, ctx, &stmt, action, table, None, Error::from_db).await
    }
}

/// A scoped `DELETE` of many rows; made by [`TenantScope::delete_many`].
#[derive(Debug)]
#[must_use = "nothing is deleted until `exec` is called"]
pub struct ScopedDelete<'a, E: EntityTrait> {
    exec: Exec<'a>,
    ctx: &'a TenantContext,
    condition: sea_orm::Condition,
    limit: Option<u64>,
    refused: bool,
    _entity: std::marker::PhantomData<E>,
}

impl<E: TenantScoped> ScopedDelete<'_, E> {
    /// Adds a condition, conjoined with the tenant predicate and earlier conditions (no subquery
    /// or raw SQL, as in [`Scoped::filter`]).
    pub fn filter<F: IntoCondition>(mut self, condition: F) -> Self {
        let condition = condition.into_condition();
        self.refused |= !is_plain(&Expr::from(condition.clone()));
        self.condition = self.condition.add(condition);
        self
    }

    /// Deletes at most `limit` rows (which ones is up to the database).
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(Ord::min(limit, crate::scoped::MAX_ROWS));
        self
    }

    /// Runs the delete; returns the number of rows deleted.
    pub async fn exec(self) -> Result<u64> {
        ensure_not_refused(self.refused)?;
        let table = table_of::<E>();
        audit::ensure_not_audit_table(table)?;
        let (ctx, tenant) = (self.ctx, self.ctx.tenant());
        let backend = self.exec.backend();
        let delete = E::delete_many().filter(scoped_where::<E>(
            backend,
            tenant,
            self.condition,
            self.limit,
        ));
        let mut stmt = sea_orm::QueryTrait::into_query(delete);
        if let (Some(limit), DbBackend::MySql) = (self.limit, backend) {
            stmt.limit(limit);
        }
        let action = AuditAction::DeleteMany;
        execute_audited(
            self.exec,
            ctx,
            &stmt,
            action,
            table,
            None,
            Error::from_delete,
        )
        .await
    }
}

/// The `WHERE` of a scoped bulk statement: the tenant, then the caller's conditions. With a limit on
/// a backend without `UPDATE … LIMIT` (PostgreSQL, SQLite as bundled), the limit goes into a
/// subquery over the same tenant: `tenant_id = $1 AND id IN (SELECT id … WHERE tenant_id = $1 AND …
/// LIMIT n)`. MySQL takes `LIMIT` on the statement itself.
fn scoped_where<E: TenantScoped>(
    backend: DbBackend,
    tenant: TenantId,
    condition: sea_orm::Condition,
    limit: Option<u64>,
) -> sea_orm::Condition {
    let tenant_col = E::tenant_column();
    let own = sea_orm::Condition::all().add(tenant_col.eq(tenant));
    match limit {
        Some(limit) if backend != DbBackend::MySql => {
            let mut sub: SelectStatement = Query::select();
            sub.column(E::id_column())
                .from(E::default())
                .cond_where(tenant_col.eq(tenant))
                .cond_where(condition)
                .limit(limit);
            own.add(E::id_column().in_subquery(sub))
        }
        _ => own.add(condition),
    }
}

/// What a [`TenantVerifier`] may read while it decides: lookups restricted to the tenant the caller
/// *claims*. It cannot write.
#[derive(Debug)]
pub struct VerifierDb<'a> {
    exec: Exec<'a>,
}

impl<'a> VerifierDb<'a> {
    /// A read query over `E` restricted to the claimed tenant.
    pub fn find<E: TenantScoped>(&self, claimed: TenantId) -> Scoped<'a, sea_orm::Select<E>> {
        Scoped::tenant(self.exec, claimed, None)
    }

    /// Read access to global entities.
    pub fn global(&self) -> GlobalDb<'a> {
        GlobalDb { exec: self.exec }
    }

    /// A raw read for the built-in verifiers, which cannot name generated entities. The statement
    /// itself must restrict to `claimed` (the built-in ones do); on PostgreSQL it also runs with
    /// `claimed` set for row level security.
    pub(crate) async fn query_all(
        &self,
        claimed: TenantId,
        stmt: &SelectStatement,
    ) -> Result<Vec<QueryResult>> {
        read!(self.exec, Some(claimed), tracing::Span::none(), |conn| conn
            .query_all(stmt)
            .await)
    }
}

/// Read-only access to [`Global`] entities; made by [`TenantDb::global`].
#[derive(Clone, Copy, Debug)]
pub struct GlobalDb<'a> {
    exec: Exec<'a>,
}

impl<'a> GlobalDb<'a> {
    /// A query over a global entity. It cannot join: see [`GlobalOnly`].
    pub fn find<E: Global>(&self) -> Scoped<'a, sea_orm::Select<E>, GlobalOnly> {
        Scoped::unrestricted(self.exec)
    }

    /// The row of a global entity with this id; [`Error::NotFound`] if there is none.
    pub async fn get<E: Global>(&self, id: impl Into<Value>) -> Result<E::Model> {
        self.find::<E>()
            .filter(E::id_column().eq(id.into()))
            .by_key()
            .await?
            .ok_or(Error::NotFound)
    }
}

/// Cross-tenant access for maintenance; made by [`TenantDb::system`], which logs the reason.
#[derive(Debug)]
pub struct SystemDb<'a> {
    exec: Exec<'a>,
    reason: String,
    event: Uuid,
}

impl<'a> SystemDb<'a> {
    /// The reason given for this access.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The id of the audit event this access wrote (a row of [`SYSTEM_AUDIT_TABLE`]).
    pub fn event_id(&self) -> Uuid {
        self.event
    }

    /// A query over any entity, across all tenants.
    pub fn find<E: EntityTrait>(&self) -> Scoped<'a, sea_orm::Select<E>, AllTenants> {
        Scoped::unrestricted(self.exec)
    }

    /// Inserts a row of any entity (for example a new tenant) and returns it.
    pub async fn insert<A>(&self, am: A) -> Result<ModelOf<A>>
    where
        A: ActiveModelTrait + ActiveModelBehavior + Send,
        ModelOf<A>: IntoActiveModel<A>,
    {
        let conn = self.exec.open(None).await?;
        am.insert(&conn).await.map_err(Error::from_db)
    }

    /// Runs a raw SQL statement; returns the number of rows affected. The composite foreign keys
    /// still apply: the database rejects a cross-tenant reference here too.
    pub async fn execute(&self, stmt: Statement) -> Result<u64> {
        let conn = self.exec.open(None).await?;
        conn.execute_raw(stmt)
            .await
            .map(|r| r.rows_affected())
            .map_err(Error::from_db)
    }

    /// Runs a raw SQL query.
    pub async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>> {
        let conn = self.exec.open(None).await?;
        conn.query_all_raw(stmt).await.map_err(Error::from_db)
    }

    /// A context for acting inside one tenant from a job (for example provisioning its first user).
    /// Its actor is [`Actor::System`], carrying the reason.
    pub fn context_for(&self, tenant: TenantId) -> TenantContext {
        TenantContext::new(
            tenant,
            Actor::System {
                reason: self.reason.clone(),
            },
            Default::default(),
            Uuid::now_v7().to_string(),
        )
        .granted_by_system_access()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>() {}

    #[test]
    fn handles_are_send() {
        is_send::<TenantDb>();
        is_send::<TenantScope<'static>>();
    }
}
