//! [`Scoped`]: a SeaORM query bound to one tenant and one connection.

use std::marker::PhantomData;

use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, IntoIden};
use sea_orm::{
    ColumnTrait, EntityTrait, ItemsAndPagesNumber, JoinType, Order, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Related, RelationDef, Select, SelectTwo, SelectTwoMany,
};

use crate::entity::TenantScoped;
use crate::error::{Error, Result};
use crate::exec::{Exec, read};
use crate::tenant::{TenantContext, TenantId};
use crate::trace;

/// A SeaORM query already restricted to one tenant and bound to its connection.
///
/// A `Scoped` is made only by a tenant handle ([`TenantDb::scope`](crate::TenantDb::scope),
/// a transaction), by the verifier lookup, or by the explicit system and global handles. For a
/// tenant-owned entity the tenant predicate (`"table"."tenant_id" = $1`, a bound parameter) is added
/// when the `Scoped` is made, before anything else. Everything you can do afterwards only adds to
/// the query: [`filter`](Scoped::filter) conjoins (`AND`) with what is there, joins along relations
/// carry the tenant into their `ON` clause, ordering and limits narrow it. There is no way to get the
/// inner SeaORM query back out: no `into_inner`, no `Deref`, no `QueryFilter` impl.
///
/// ```compile_fail
/// # async fn f(scope: tenant_scope::TenantScope<'_>) {
/// # use entity::projects;
/// // A Scoped cannot be turned back into a plain, unscoped Select.
/// let select: sea_orm::Select<projects::Entity> = scope.find::<projects::Entity>().into();
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a Scoped query does nothing until it is run with `all`, `one`, `count` or `paginate`"]
pub struct Scoped<'a, Q, S = OneTenant> {
    query: Q,
    exec: Exec<'a>,
    /// The tenant every joined table is restricted to; `None` only for the system and global handles.
    tenant: Option<TenantId>,
    /// The verified caller, for the operation's span (`None` for verifier, system and global reads).
    ctx: Option<&'a TenantContext>,
    /// Set when a refinement carried an expression that could read outside the scope (a subquery,
    /// raw SQL); the query then refuses to run.
    refused: bool,
    scope: PhantomData<S>,
}

/// The scope of a [`Scoped`] made by a tenant handle: one tenant. The default.
#[derive(Debug)]
pub enum OneTenant {}

/// The scope of a [`Scoped`] made by [`SystemDb`](crate::SystemDb): every tenant, on purpose.
#[derive(Debug)]
pub enum AllTenants {}

/// The scope of a [`Scoped`] made by [`GlobalDb`](crate::GlobalDb): a global table only. It has no
/// joins: a global table's relations lead into tenant-owned tables, and the global handle has no
/// tenant to restrict them to.
#[derive(Debug)]
pub enum GlobalOnly {}

/// What a scope lets refinements contain. Sealed: implemented by [`OneTenant`], [`AllTenants`] and
/// [`GlobalOnly`].
pub trait ScopeKind: sealed::Sealed {
    /// Whether expressions are restricted to columns, values, operators and function calls: no
    /// subqueries, `EXISTS`, `CASE` or raw SQL, which could read another tenant's rows (a subquery
    /// has no tenant predicate). Only system access ([`AllTenants`]) may use them.
    #[doc(hidden)]
    const PLAIN_EXPRESSIONS_ONLY: bool;
}
impl ScopeKind for OneTenant {
    const PLAIN_EXPRESSIONS_ONLY: bool = true;
}
impl ScopeKind for AllTenants {
    const PLAIN_EXPRESSIONS_ONLY: bool = false;
}
impl ScopeKind for GlobalOnly {
    const PLAIN_EXPRESSIONS_ONLY: bool = true;
}

/// Whether an expression only combines columns, values, operators and function calls.
///
/// A subquery (`IN (SELECT …)`, `EXISTS`, a scalar subquery) has no tenant predicate of its own, so
/// inside a scoped query it could count or copy another tenant's rows; raw SQL (`Expr::cust`) could
/// hold one; `CASE` cannot be inspected. All of these are refused in a tenant (or global) scope:
/// the query returns [`Error::Invalid`] instead of running. Joins along relations
/// ([`Scoped::inner_join`]) are the scoped way to use another table.
pub(crate) fn is_plain(expr: &Expr) -> bool {
    match expr {
        Expr::Column(_)
        | Expr::Value(_)
        | Expr::Values(_)
        | Expr::Keyword(_)
        | Expr::Constant(_)
        | Expr::TypeName(_) => true,
        Expr::Tuple(items) => items.iter().all(is_plain),
        Expr::Unary(_, inner) | Expr::AsEnum(_, inner) => is_plain(inner),
        Expr::Binary(left, _, right) => is_plain(left) && is_plain(right),
        Expr::FunctionCall(call) => call.get_args().iter().all(is_plain),
        // SubQuery, Custom, CustomWithExpr, Case, and whatever sea-query adds later.
        _ => false,
    }
}

/// The largest `LIMIT`/`OFFSET` the databases take (they are signed 64-bit); larger values given
/// by a caller (for example a page number from a query string) are clamped to it rather than
/// overflowing in the driver.
pub(crate) const MAX_ROWS: u64 = i64::MAX as u64;

/// Refuses to run a statement that was refined with an expression outside its scope (see
/// [`is_plain`]): [`Error::Invalid`] if `refused`, before anything reaches the database.
pub(crate) fn ensure_not_refused(refused: bool) -> Result<()> {
    if refused {
        Err(Error::Invalid(
            "a scoped query cannot contain a subquery, EXISTS, CASE or raw SQL: they are not \
             restricted to the tenant; join along a relation instead, or use db.system(reason)"
                .into(),
        ))
    } else {
        Ok(())
    }
}

/// Scopes whose queries may join related tables: [`OneTenant`] (the join is restricted to the
/// tenant) and [`AllTenants`] (system access crosses tenants on purpose).
pub trait Joinable: ScopeKind {}
impl Joinable for OneTenant {}
impl Joinable for AllTenants {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::OneTenant {}
    impl Sealed for super::AllTenants {}
    impl Sealed for super::GlobalOnly {}
}

impl<'a, E: EntityTrait> Scoped<'a, Select<E>, OneTenant> {
    /// A query over a tenant-owned entity, restricted to `tenant`.
    pub(crate) fn tenant(exec: Exec<'a>, tenant: TenantId, ctx: Option<&'a TenantContext>) -> Self
    where
        E: TenantScoped,
    {
        let query = if exec.app_filter() {
            E::find().filter(E::tenant_column().eq(tenant))
        } else {
            E::find()
        };
        Self {
            query,
            exec,
            tenant: Some(tenant),
            ctx,
            refused: false,
            scope: PhantomData,
        }
    }
}

impl<'a, E: EntityTrait, S> Scoped<'a, Select<E>, S> {
    /// Crate-private: the batch loader needs the related query as a SeaORM `Select`.
    pub(crate) fn into_select(self) -> Select<E> {
        self.query
    }

    /// A query over a whole table, for the system and global handles.
    pub(crate) fn unrestricted(exec: Exec<'a>) -> Self {
        Self {
            query: E::find(),
            exec,
            tenant: None,
            ctx: None,
            refused: false,
            scope: PhantomData,
        }
    }
}

impl<Q, S> Scoped<'_, Q, S>
where
    Q: QueryFilter,
    S: ScopeKind,
{
    /// Adds a condition. It is conjoined (`AND`) with the tenant predicate and every earlier
    /// condition, so even `Condition::any()` can only narrow the result.
    ///
    /// In a tenant or global scope the condition may combine columns, values, operators and
    /// function calls only: a subquery, `EXISTS`, `CASE` or raw SQL (`Expr::cust`) is not restricted
    /// to the tenant, so the query then refuses to run ([`Error::Invalid`]). Join along a relation
    /// ([`Scoped::inner_join`]) to filter on another table.
    pub fn filter<F: IntoCondition>(self, condition: F) -> Self {
        let condition = condition.into_condition();
        let refused = self.refused
            || (S::PLAIN_EXPRESSIONS_ONLY && !is_plain(&Expr::from(condition.clone())));
        Self {
            query: self.query.filter(condition),
            refused,
            ..self
        }
    }
}

impl<Q, S> Scoped<'_, Q, S>
where
    Q: QueryOrder,
    S: ScopeKind,
{
    /// Orders by a column or expression, ascending (expressions as in [`Scoped::filter`]).
    pub fn order_by_asc<C: sea_orm::IntoSimpleExpr>(self, col: C) -> Self {
        self.order_by(col, Order::Asc)
    }

    /// Orders by a column or expression, descending (expressions as in [`Scoped::filter`]).
    pub fn order_by_desc<C: sea_orm::IntoSimpleExpr>(self, col: C) -> Self {
        self.order_by(col, Order::Desc)
    }

    /// Orders by a column or expression in the given order (expressions as in
    /// [`Scoped::filter`]).
    pub fn order_by<C: sea_orm::IntoSimpleExpr>(self, col: C, order: Order) -> Self {
        let expr = col.into_simple_expr();
        let refused = self.refused || (S::PLAIN_EXPRESSIONS_ONLY && !is_plain(&expr));
        Self {
            query: self.query.order_by(expr, order),
            refused,
            ..self
        }
    }
}

impl<Q, S> Scoped<'_, Q, S>
where
    Q: QuerySelect,
{
    /// At most `limit` rows (a limit above `i64::MAX` is `i64::MAX`: SQL limits are signed).
    pub fn limit(self, limit: u64) -> Self {
        Self {
            query: QuerySelect::limit(self.query, Ord::min(limit, MAX_ROWS)),
            ..self
        }
    }

    /// Skips the first `offset` rows (an offset above `i64::MAX` is `i64::MAX`: no rows).
    pub fn offset(self, offset: u64) -> Self {
        Self {
            query: QuerySelect::offset(self.query, Ord::min(offset, MAX_ROWS)),
            ..self
        }
    }
}

impl<'a, Q, S> Scoped<'a, Q, S> {
    /// What running this query as the operation `op` on `table` needs: the query, where it runs,
    /// its tenant and its span; [`Error::Invalid`] if it was refined with an expression outside
    /// the scope.
    fn into_read(
        self,
        op: &'static str,
        table: &'static str,
    ) -> Result<(Q, Exec<'a>, Option<TenantId>, tracing::Span)> {
        ensure_not_refused(self.refused)?;
        let span = trace::op_span(op, table, self.ctx);
        Ok((self.query, self.exec, self.tenant, span))
    }
}

/// A relation definition whose `ON` clause also requires the joined table's tenant column to equal
/// the scope's tenant. Generated relations are composite (`(tenant_id, x_id) = (tenant_id, id)`), so
/// this is a second fence, and it keeps a `LEFT JOIN` a left join (the tenant sits in `ON`, not in
/// `WHERE`).
fn fence(rel: RelationDef, tenant: Option<TenantId>, tenant_col: &'static str) -> RelationDef {
    let Some(tenant) = tenant else {
        return rel;
    };
    // The key equalities, any condition the relation already had, and the tenant: all of them.
    // (A hand-written relation with `condition_type(Any)` would otherwise OR the tenant away, and
    // `on_condition` replaces an earlier one rather than adding to it.)
    let previous = rel.on_condition.clone();
    let mut rel = rel;
    rel.condition_type = sea_orm::sea_query::ConditionType::All;
    rel.on_condition(move |left, right| {
        let own = Expr::col((right.clone(), tenant_col.into_iden()))
            .eq(tenant)
            .into_condition();
        match &previous {
            Some(earlier) => sea_orm::Condition::all().add(earlier(left, right)).add(own),
            None => own,
        }
    })
}

impl<'a, E: EntityTrait, S: Joinable> Scoped<'a, Select<E>, S> {
    fn join_related<R>(query: Select<E>, join: JoinType, tenant: Option<TenantId>) -> Select<E>
    where
        R: TenantScoped,
        E: Related<R>,
    {
        let col = tenant_col_name::<R>();
        let mut query = query;
        if let Some(via) = <E as Related<R>>::via() {
            query = QuerySelect::join(query, join, fence(via, tenant, col));
        }
        QuerySelect::join(query, join, fence(<E as Related<R>>::to(), tenant, col))
    }

    /// Inner-joins a related tenant-owned entity (along its composite relation), so that
    /// [`filter`](Scoped::filter) can use its columns. The joined table is restricted to the same
    /// tenant.
    pub fn inner_join<R>(self) -> Self
    where
        R: TenantScoped,
        E: Related<R>,
    {
        Self {
            query: Self::join_related::<R>(self.query, JoinType::InnerJoin, self.tenant),
            ..self
        }
    }

    /// Left-joins a related tenant-owned entity (along its composite relation), restricted to the
    /// same tenant.
    pub fn left_join<R>(self) -> Self
    where
        R: TenantScoped,
        E: Related<R>,
    {
        Self {
            query: Self::join_related::<R>(self.query, JoinType::LeftJoin, self.tenant),
            ..self
        }
    }

    /// Each row with its related row (or `None`), like SeaORM's `find_also_related`.
    pub fn find_also_related<R>(self) -> Scoped<'a, SelectTwo<E, R>, S>
    where
        R: TenantScoped,
        E: Related<R>,
    {
        let query = Self::join_related::<R>(self.query, JoinType::LeftJoin, self.tenant);
        Scoped {
            query: query.select_also(R::default()),
            exec: self.exec,
            tenant: self.tenant,
            ctx: self.ctx,
            refused: self.refused,
            scope: PhantomData,
        }
    }

    /// Each row with all its related rows, like SeaORM's `find_with_related`.
    pub fn find_with_related<R>(self) -> Scoped<'a, SelectTwoMany<E, R>, S>
    where
        R: TenantScoped,
        E: Related<R>,
    {
        let query = Self::join_related::<R>(self.query, JoinType::LeftJoin, self.tenant);
        Scoped {
            query: query.select_with(R::default()),
            exec: self.exec,
            tenant: self.tenant,
            ctx: self.ctx,
            refused: self.refused,
            scope: PhantomData,
        }
    }
}

impl<E: EntityTrait, S> Scoped<'_, Select<E>, S> {
    /// The statement this query runs: SQL with placeholders, and the bound values. The tenant is
    /// always a bound value, never part of the SQL text, so the same query for two tenants has the
    /// same SQL (one prepared statement serves every tenant, and no cache holds a tenant).
    pub fn build(&self) -> sea_orm::Statement {
        let backend = self.exec.backend();
        backend.build(&sea_orm::QueryTrait::as_query(&self.query).clone())
    }

    /// All matching rows.
    pub async fn all(self) -> Result<Vec<E::Model>> {
        let (query, exec, tenant, span) = self.into_read("find", trace::table_of::<E>())?;
        read!(exec, tenant, span, |conn| query.all(&conn).await)
    }

    /// The first matching row, if any.
    pub async fn one(self) -> Result<Option<E::Model>> {
        let (query, exec, tenant, span) = self.into_read("find_one", trace::table_of::<E>())?;
        read!(one: exec, tenant, span, |conn| query.one(&conn).await)
    }

    /// Crate-private: the one row of a query already restricted to a whole primary key (the
    /// handles' `get`), as the operation `get`.
    ///
    /// Unlike [`Scoped::one`] it sends no `LIMIT`: the key matches at most one row anyway, and
    /// sqlx-sqlite 0.9 runs a statement with a bound `LIMIT ?` markedly slower than one without
    /// (docs/benchmarks.md).
    pub(crate) async fn by_key(self) -> Result<Option<E::Model>> {
        let (query, exec, tenant, span) = self.into_read("get", trace::table_of::<E>())?;
        read!(one: exec, tenant, span, |conn| query
            .all(&conn)
            .await
            .map(|rows| rows.into_iter().next()))
    }
}

impl<'a, E, S> Scoped<'a, Select<E>, S>
where
    E: EntityTrait,
    E::Model: Sync,
{
    /// The number of matching rows (honouring `limit` and `offset`).
    pub async fn count(self) -> Result<u64> {
        let (query, exec, tenant, span) = self.into_read("count", trace::table_of::<E>())?;
        read!(one: exec, tenant, span, |conn| PaginatorTrait::count(
            query, &conn
        )
        .await)
    }

    /// Pages of `page_size` rows (SeaORM's paginator, over the scoped query).
    pub fn paginate(self, page_size: u64) -> ScopedPaginator<'a, E> {
        ScopedPaginator {
            query: self.query,
            exec: self.exec,
            tenant: self.tenant,
            ctx: self.ctx,
            page_size,
            refused: self.refused,
        }
    }
}

fn tenant_col_name<R: TenantScoped>() -> &'static str {
    sea_orm::IdenStatic::as_str(&R::tenant_column())
}

impl<E, R, S> Scoped<'_, SelectTwo<E, R>, S>
where
    E: EntityTrait,
    R: EntityTrait,
{
    /// All matching rows, each with its related row or `None`.
    pub async fn all(self) -> Result<Vec<(E::Model, Option<R::Model>)>> {
        let (query, exec, tenant, span) = self.into_read("find", trace::table_of::<E>())?;
        read!(exec, tenant, span, |conn| query.all(&conn).await)
    }

    /// The first matching row with its related row, if any.
    pub async fn one(self) -> Result<Option<(E::Model, Option<R::Model>)>> {
        let (query, exec, tenant, span) = self.into_read("find_one", trace::table_of::<E>())?;
        read!(one: exec, tenant, span, |conn| query.one(&conn).await)
    }
}

impl<E, R, S> Scoped<'_, SelectTwoMany<E, R>, S>
where
    E: EntityTrait,
    R: EntityTrait,
{
    /// All matching rows, each with its related rows.
    pub async fn all(self) -> Result<Vec<(E::Model, Vec<R::Model>)>> {
        let (query, exec, tenant, span) = self.into_read("find", trace::table_of::<E>())?;
        read!(exec, tenant, span, |conn| query.all(&conn).await)
    }
}

/// Pages over a [`Scoped`] query; made by [`Scoped::paginate`].
#[derive(Debug)]
pub struct ScopedPaginator<'a, E: EntityTrait> {
    query: Select<E>,
    exec: Exec<'a>,
    tenant: Option<TenantId>,
    ctx: Option<&'a TenantContext>,
    page_size: u64,
    refused: bool,
}

impl<E> ScopedPaginator<'_, E>
where
    E: EntityTrait,
    E::Model: Sync,
{
    fn check(&self) -> Result<()> {
        ensure_not_refused(self.refused)
    }

    /// A page holds at least one row (SeaORM divides by the page size).
    fn check_page_size(&self) -> Result<()> {
        if self.page_size == 0 {
            Err(Error::Invalid("the page size must be at least 1".into()))
        } else {
            Ok(())
        }
    }

    /// The rows of page `page` (zero-based). A page beyond the last one is empty, however large
    /// the number.
    pub async fn fetch_page(&self, page: u64) -> Result<Vec<E::Model>> {
        self.check()?;
        self.check_page_size()?;
        if page
            .checked_mul(self.page_size)
            .is_none_or(|offset| offset > MAX_ROWS)
        {
            return Ok(Vec::new());
        }
        let span = trace::op_span("fetch_page", trace::table_of::<E>(), self.ctx);
        let (query, page_size) = (self.query.clone(), self.page_size);
        read!(self.exec, self.tenant, span, |conn| query
            .paginate(&conn, page_size)
            .fetch_page(page)
            .await)
    }

    /// The number of matching rows and of pages.
    pub async fn num_items_and_pages(&self) -> Result<ItemsAndPagesNumber> {
        self.check()?;
        self.check_page_size()?;
        let span = trace::op_span("count_pages", trace::table_of::<E>(), self.ctx);
        let (query, page_size) = (self.query.clone(), self.page_size);
        read!(one: self.exec, self.tenant, span, |conn| query
            .paginate(&conn, page_size)
            .num_items_and_pages()
            .await)
    }
}
