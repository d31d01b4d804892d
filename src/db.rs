//! [`TenantDb`], the only way into the database, and the handles it gives out.

use std::future::Future;
use std::pin::Pin;

use sea_orm::Iterable;
use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, Query, SelectStatement};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ActiveValue, ColumnTrait, ConnectOptions,
    ConnectionTrait, Database, DatabaseConnection, DbBackend, EntityTrait, IntoActiveModel,
    LoaderTrait, ModelTrait, QueryFilter, QueryResult, Related, Statement, TransactionTrait, Value,
};

use uuid::Uuid;

use crate::entity::{Global, TenantScoped};
use crate::error::{Error, Result};
use crate::scoped::{AllTenants, Exec, GlobalOnly, Scoped, ensure_not_refused, is_plain};
use crate::tenant::{Actor, TenantContext, TenantId, Verified};
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
/// - [`TenantDb::system`]: the explicit, logged escape hatch for maintenance across tenants.
///
/// It is cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct TenantDb {
    conn: DatabaseConnection,
}

impl TenantDb {
    /// Connects to `url` (`sqlite://…`, `postgres://…`, `mysql://…`).
    ///
    /// On SQLite it verifies that foreign keys are enforced (`PRAGMA foreign_keys`), since the
    /// composite foreign keys are what reject a cross-tenant reference; it refuses to connect if they
    /// are off.
    pub async fn connect(url: &str) -> Result<Self> {
        let mut options = ConnectOptions::new(url.to_owned());
        options.sqlx_logging(false);
        Self::connect_with(options).await
    }

    /// Connects with SeaORM connection options (pool size, timeouts, logging).
    pub async fn connect_with(options: ConnectOptions) -> Result<Self> {
        let conn = Database::connect(options).await.map_err(Error::from_db)?;
        let db = Self { conn };
        db.check_foreign_keys().await?;
        Ok(db)
    }

    /// The database backend.
    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }

    /// Whether foreign keys are enforced on a connection of the pool (always true on PostgreSQL and
    /// MySQL/InnoDB; a per-connection setting on SQLite).
    pub async fn foreign_keys_enforced(&self) -> Result<bool> {
        foreign_keys_on(&self.conn).await
    }

    async fn check_foreign_keys(&self) -> Result<()> {
        if foreign_keys_on(&self.conn).await? {
            Ok(())
        } else {
            Err(Error::Config(
                "SQLite foreign keys are off on this connection; composite foreign keys would not \
                 reject cross-tenant references (enable `foreign_keys`, sqlx does by default)"
                    .into(),
            ))
        }
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
            exec: Exec::Conn(&self.conn),
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
            exec: Exec::Conn(&self.conn),
            ctx,
        }
    }

    /// Runs `f` with a tenant handle inside one transaction: committed if `f` returns `Ok`, rolled
    /// back if it returns `Err` (or panics).
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
                tx.rollback().await?;
                Err(err)
            }
        }
    }

    /// Starts a transaction for one tenant; dropped without [`TenantTransaction::commit`], it rolls
    /// back.
    pub async fn begin<'a>(&'a self, ctx: &'a TenantContext) -> Result<TenantTransaction<'a>> {
        let tx = self.conn.begin().await.map_err(Error::from_db)?;
        Ok(TenantTransaction { tx, ctx })
    }

    /// Read-only access to [`Global`] entities (tables that are deliberately not tenant-owned).
    pub fn global(&self) -> GlobalDb<'_> {
        GlobalDb {
            exec: Exec::Conn(&self.conn),
        }
    }

    /// The explicit escape hatch for maintenance that crosses tenants (jobs, migrations, scans,
    /// provisioning a tenant). It needs a reason, which is logged at WARN with every handle made.
    ///
    /// Everything done through it bypasses the tenant predicate; the composite foreign keys still
    /// hold, because the database enforces them.
    pub fn system(&self, reason: &str) -> Result<SystemDb<'_>> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::Invalid("system access needs a reason".into()));
        }
        tracing::warn!(target: "tenant_scope::system", reason, "system access across tenants");
        Ok(SystemDb {
            exec: Exec::Conn(&self.conn),
            reason: reason.to_owned(),
        })
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

    /// Crate-private: raw statements of the built-in verifiers' bookkeeping, which always carry
    /// this handle's tenant.
    pub(crate) fn exec(&self) -> Exec<'a> {
        self.exec
    }

    /// A query over `E`, restricted to this tenant: `WHERE "table"."tenant_id" = $1`, the tenant a
    /// bound parameter (see [`Scoped::build`]).
    pub fn find<E: TenantScoped>(&self) -> Scoped<'a, sea_orm::Select<E>> {
        Scoped::tenant(self.exec, self.tenant())
    }

    /// The row of `E` with this id in this tenant; [`Error::NotFound`] if there is none here (whether
    /// or not another tenant has one).
    pub async fn get<E: TenantScoped>(&self, id: E::Id) -> Result<E::Model> {
        self.find::<E>()
            .filter(E::id_column().eq(id))
            .one()
            .await?
            .ok_or(Error::NotFound)
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
        let exec = self.exec.get();
        am.insert(&exec).await.map_err(Error::from_db)
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
        let exec = self.exec.get();
        let by_key = Expr::col((A::Entity::default(), tenant_col))
            .eq(self.tenant())
            .and(Expr::col((A::Entity::default(), id_col)).eq(id.clone()));
        if !changed {
            return A::Entity::find()
                .filter(by_key)
                .one(&exec)
                .await
                .map_err(Error::from_db)?
                .ok_or(Error::NotFound);
        }
        let update = A::Entity::update_many().set(am).filter(by_key.clone());
        if exec.support_returning() {
            let mut rows = update
                .exec_with_returning(&exec)
                .await
                .map_err(Error::from_db)?;
            return rows.pop().ok_or(Error::NotFound);
        }
        let result = update.exec(&exec).await.map_err(Error::from_db)?;
        if result.rows_affected == 0 {
            return Err(Error::NotFound);
        }
        A::Entity::find()
            .filter(by_key)
            .one(&exec)
            .await
            .map_err(Error::from_db)?
            .ok_or(Error::NotFound)
    }

    /// Deletes the row of `E` with this id in this tenant. [`Error::NotFound`] if there is none here;
    /// [`Error::Conflict`] if rows of this tenant still reference it (`ON DELETE RESTRICT`).
    pub async fn delete<E: TenantScoped>(&self, id: E::Id) -> Result<()> {
        let exec = self.exec.get();
        let result = E::delete_many()
            .filter(E::tenant_column().eq(self.tenant()))
            .filter(E::id_column().eq(id))
            .exec(&exec)
            .await
            .map_err(Error::from_delete)?;
        if result.rows_affected == 0 {
            Err(Error::NotFound)
        } else {
            Ok(())
        }
    }

    /// An `UPDATE` of many rows of `E` in this tenant; see [`ScopedUpdate`].
    pub fn update_many<E: TenantScoped>(&self) -> ScopedUpdate<'a, E> {
        ScopedUpdate {
            exec: self.exec,
            tenant: self.tenant(),
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
            tenant: self.tenant(),
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
        let exec = self.exec.get();
        models
            .load_many(self.find::<R>().into_select(), &exec)
            .await
            .map_err(Error::from_db)
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
        let exec = self.exec.get();
        models
            .load_one(self.find::<R>().into_select(), &exec)
            .await
            .map_err(Error::from_db)
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

/// A transaction of one tenant; made by [`TenantDb::begin`].
///
/// Dropped without [`commit`](TenantTransaction::commit), it rolls back.
#[derive(Debug)]
pub struct TenantTransaction<'a> {
    tx: sea_orm::DatabaseTransaction,
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

    /// Commits.
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await.map_err(Error::from_db)
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await.map_err(Error::from_db)
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
    tenant: TenantId,
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
        self.limit = Some(limit);
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
        let exec = self.exec.get();
        let mut update = E::update_many();
        for (col, expr) in self.values {
            update = update.col_expr(col, expr);
        }
        let update = update.filter(scoped_where::<E>(
            exec.get_database_backend(),
            self.tenant,
            self.condition,
            self.limit,
        ));
        let mut stmt = sea_orm::QueryTrait::into_query(update);
        if let (Some(limit), DbBackend::MySql) = (self.limit, exec.get_database_backend()) {
            stmt.limit(limit);
        }
        let result = exec.execute(&stmt).await.map_err(Error::from_db)?;
        Ok(result.rows_affected())
    }
}

/// A scoped `DELETE` of many rows; made by [`TenantScope::delete_many`].
#[derive(Debug)]
#[must_use = "nothing is deleted until `exec` is called"]
pub struct ScopedDelete<'a, E: EntityTrait> {
    exec: Exec<'a>,
    tenant: TenantId,
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
        self.limit = Some(limit);
        self
    }

    /// Runs the delete; returns the number of rows deleted.
    pub async fn exec(self) -> Result<u64> {
        ensure_not_refused(self.refused)?;
        let exec = self.exec.get();
        let delete = E::delete_many().filter(scoped_where::<E>(
            exec.get_database_backend(),
            self.tenant,
            self.condition,
            self.limit,
        ));
        let mut stmt = sea_orm::QueryTrait::into_query(delete);
        if let (Some(limit), DbBackend::MySql) = (self.limit, exec.get_database_backend()) {
            stmt.limit(limit);
        }
        let result = exec.execute(&stmt).await.map_err(Error::from_delete)?;
        Ok(result.rows_affected())
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
        Scoped::tenant(self.exec, claimed)
    }

    /// Read access to global entities.
    pub fn global(&self) -> GlobalDb<'a> {
        GlobalDb { exec: self.exec }
    }

    /// A raw read for the built-in verifiers, which cannot name generated entities. The statement
    /// itself must restrict to `claimed` (the built-in ones do); the argument is where the
    /// PostgreSQL row-level-security mode will set the claimed tenant for the lookup.
    pub(crate) async fn query_all(
        &self,
        _claimed: TenantId,
        stmt: &SelectStatement,
    ) -> Result<Vec<QueryResult>> {
        let exec = self.exec.get();
        exec.query_all(stmt).await.map_err(Error::from_db)
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
            .one()
            .await?
            .ok_or(Error::NotFound)
    }
}

/// Cross-tenant access for maintenance; made by [`TenantDb::system`], which logs the reason.
#[derive(Debug)]
pub struct SystemDb<'a> {
    exec: Exec<'a>,
    reason: String,
}

impl<'a> SystemDb<'a> {
    /// The reason given for this access.
    pub fn reason(&self) -> &str {
        &self.reason
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
        let exec = self.exec.get();
        am.insert(&exec).await.map_err(Error::from_db)
    }

    /// Runs a raw SQL statement; returns the number of rows affected. The composite foreign keys
    /// still apply: the database rejects a cross-tenant reference here too.
    pub async fn execute(&self, stmt: Statement) -> Result<u64> {
        let exec = self.exec.get();
        exec.execute_raw(stmt)
            .await
            .map(|r| r.rows_affected())
            .map_err(Error::from_db)
    }

    /// Runs a raw SQL query.
    pub async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>> {
        let exec = self.exec.get();
        exec.query_all_raw(stmt).await.map_err(Error::from_db)
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
