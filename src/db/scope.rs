//! [`TenantScope`]: the handle for one verified tenant.

use sea_orm::sea_query::{Expr, ExprTrait, SelectStatement};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait,
    IntoActiveModel, Iterable, LoaderTrait, ModelTrait, QueryFilter, QueryResult, Related,
    StatementBuilder, Value,
};
use uuid::Uuid;

use crate::audit::{self, AuditAction};
use crate::entity::{RowId, TenantScoped};
use crate::error::{Error, Result};
use crate::exec::{Exec, audited_write, read};
use crate::scoped::Scoped;
use crate::tenant::{TenantContext, TenantId};
use crate::trace::{self, table_of};

use super::bulk::execute_audited;
use super::insert::insert_row;
use super::{ModelOf, ScopedDelete, ScopedUpdate};

/// The handle for one verified tenant; made by [`TenantDb::scope`](crate::TenantDb::scope) or inside a transaction.
///
/// Every method restricts to the context's tenant: reads filter on it, inserts set it, updates and
/// deletes match on `(tenant_id, id)`. Another tenant's row is answered exactly like a row that never
/// existed: [`Error::NotFound`], an empty list, a count of zero, nothing changed.
#[derive(Clone, Copy, Debug)]
pub struct TenantScope<'a> {
    pub(super) exec: Exec<'a>,
    pub(super) ctx: &'a TenantContext,
}

impl<'a> TenantScope<'a> {
    /// Where this handle runs its statements (the job queue writes through it).
    pub(crate) fn exec(&self) -> Exec<'a> {
        self.exec
    }

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
    /// [`Error::TenantMismatch`]. A missing `id` is a fresh UUIDv7, or for an integer id the one the
    /// database assigns ([`RowId`] has the table per backend). A reference
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
        if matches!(am.get(id_col), ActiveValue::NotSet)
            && let Some(id) = <<A::Entity as TenantScoped>::Id as RowId>::generate()
        {
            am.try_set(id_col, id.into()).map_err(Error::from_db)?;
        }
        let table = table_of::<A::Entity>();
        audit::ensure_scope_may_write(table)?;
        let ctx = self.ctx;
        let span = trace::op_span("insert", table, Some(ctx));
        audited_write!(self.exec, self.tenant(), span, |conn| {
            let model = insert_row(&conn, am, ctx.tenant()).await?;
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
        let by_id = Expr::col((A::Entity::default(), id_col)).eq(id.clone());
        let by_key = if self.exec.app_filter() {
            Expr::col((A::Entity::default(), tenant_col))
                .eq(self.tenant())
                .and(by_id)
        } else {
            by_id
        };
        let table = table_of::<A::Entity>();
        audit::ensure_scope_may_write(table)?;
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
        audit::ensure_scope_may_write(table)?;
        let ctx = self.ctx;
        let id: Value = id.into();
        let span = trace::op_span("delete", table, Some(ctx));
        audited_write!(self.exec, self.tenant(), span, |conn| {
            let mut delete = E::delete_many();
            if self.exec.app_filter() {
                delete = delete.filter(E::tenant_column().eq(self.tenant()));
            }
            let deleted = delete
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
