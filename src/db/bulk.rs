//! [`ScopedUpdate`] and [`ScopedDelete`]: statements over many rows of one tenant.

use sea_orm::sea_query::{Expr, IntoCondition, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, Iterable,
    QueryFilter, StatementBuilder, Value,
};

use crate::audit::{self, AuditAction};
use crate::entity::TenantScoped;
use crate::error::{Error, Result};
use crate::exec::{Exec, audited_write};
use crate::scoped::{ensure_not_refused, is_plain};
use crate::tenant::{TenantContext, TenantId};
use crate::trace::{self, table_of};

/// A scoped `UPDATE` of many rows; made by [`TenantScope::update_many`](crate::TenantScope::update_many).
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
    pub(super) exec: Exec<'a>,
    pub(super) ctx: &'a TenantContext,
    pub(super) values: Vec<(E::Column, Expr)>,
    pub(super) condition: sea_orm::Condition,
    pub(super) limit: Option<u64>,
    pub(super) refused: bool,
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
    /// subquery or raw SQL, as in [`Scoped::filter`](crate::Scoped::filter)).
    pub fn col_expr(mut self, col: E::Column, expr: impl Into<Expr>) -> Self {
        let expr = expr.into();
        self.refused |= !is_plain(&expr);
        self.values.push((col, expr));
        self
    }

    /// Adds a condition, conjoined with the tenant predicate and earlier conditions (no subquery
    /// or raw SQL, as in [`Scoped::filter`](crate::Scoped::filter)).
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
        audit::ensure_scope_may_write(table)?;
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

/// A scoped `DELETE` of many rows; made by [`TenantScope::delete_many`](crate::TenantScope::delete_many).
#[derive(Debug)]
#[must_use = "nothing is deleted until `exec` is called"]
pub struct ScopedDelete<'a, E: EntityTrait> {
    pub(super) exec: Exec<'a>,
    pub(super) ctx: &'a TenantContext,
    pub(super) condition: sea_orm::Condition,
    pub(super) limit: Option<u64>,
    pub(super) refused: bool,
    pub(super) _entity: std::marker::PhantomData<E>,
}

impl<E: TenantScoped> ScopedDelete<'_, E> {
    /// Adds a condition, conjoined with the tenant predicate and earlier conditions (no subquery
    /// or raw SQL, as in [`Scoped::filter`](crate::Scoped::filter)).
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
        audit::ensure_scope_may_write(table)?;
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

/// Runs one statement of `ctx`'s tenant as an audited write (see [`audited_write!`]) in the span of
/// the operation `action`; returns the number of rows it affected. The audit event (`action` on
/// `table`, `row_id` if the statement is about one row) is written only if a row was affected.
/// `on_error` classifies a failure of the statement ([`Error::from_delete`] for a delete).
pub(super) async fn execute_audited<S: StatementBuilder>(
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
