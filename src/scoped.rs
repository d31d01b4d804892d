//! [`Scoped`]: a SeaORM query bound to one tenant and one connection.

use std::marker::PhantomData;

use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, IntoIden};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseExecutor, DatabaseTransaction,
    EntityTrait, ItemsAndPagesNumber, JoinType, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Related, RelationDef, Select, SelectTwo, SelectTwoMany,
};

use crate::entity::TenantScoped;
use crate::error::{Error, Result};
use crate::tenant::TenantId;

/// Where a handle runs its statements: the pool, or an open transaction. Never handed out.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Exec<'a> {
    Conn(&'a DatabaseConnection),
    Tx(&'a DatabaseTransaction),
}

impl<'a> Exec<'a> {
    /// The SeaORM executor for this handle. Crate-private: nothing outside the crate gets a
    /// `ConnectionTrait`.
    pub(crate) fn get(self) -> DatabaseExecutor<'a> {
        match self {
            Exec::Conn(c) => DatabaseExecutor::Connection(c),
            Exec::Tx(t) => DatabaseExecutor::Transaction(t),
        }
    }
}

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

/// Scopes whose queries may join related tables: [`OneTenant`] (the join is restricted to the
/// tenant) and [`AllTenants`] (system access crosses tenants on purpose).
pub trait Joinable: sealed::Sealed {}
impl Joinable for OneTenant {}
impl Joinable for AllTenants {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::OneTenant {}
    impl Sealed for super::AllTenants {}
}

impl<'a, E: EntityTrait> Scoped<'a, Select<E>, OneTenant> {
    /// A query over a tenant-owned entity, restricted to `tenant`.
    pub(crate) fn tenant(exec: Exec<'a>, tenant: TenantId) -> Self
    where
        E: TenantScoped,
    {
        Self {
            query: E::find().filter(E::tenant_column().eq(tenant)),
            exec,
            tenant: Some(tenant),
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
            scope: PhantomData,
        }
    }
}

impl<Q, S> Scoped<'_, Q, S>
where
    Q: QueryFilter,
{
    /// Adds a condition. It is conjoined (`AND`) with the tenant predicate and every earlier
    /// condition, so even `Condition::any()` can only narrow the result.
    ///
    /// A raw SQL fragment (`Expr::cust`) is passed to the database as written: it is an escape
    /// hatch, and on PostgreSQL Row Level Security is the wall behind it.
    pub fn filter<F: IntoCondition>(self, condition: F) -> Self {
        Self {
            query: self.query.filter(condition),
            ..self
        }
    }
}

impl<Q, S> Scoped<'_, Q, S>
where
    Q: QueryOrder,
{
    /// Orders by a column or expression, ascending.
    pub fn order_by_asc<C: sea_orm::IntoSimpleExpr>(self, col: C) -> Self {
        Self {
            query: self.query.order_by_asc(col),
            ..self
        }
    }

    /// Orders by a column or expression, descending.
    pub fn order_by_desc<C: sea_orm::IntoSimpleExpr>(self, col: C) -> Self {
        Self {
            query: self.query.order_by_desc(col),
            ..self
        }
    }

    /// Orders by a column or expression in the given order.
    pub fn order_by<C: sea_orm::IntoSimpleExpr>(self, col: C, order: Order) -> Self {
        Self {
            query: self.query.order_by(col, order),
            ..self
        }
    }
}

impl<Q, S> Scoped<'_, Q, S>
where
    Q: QuerySelect,
{
    /// At most `limit` rows.
    pub fn limit(self, limit: u64) -> Self {
        Self {
            query: QuerySelect::limit(self.query, limit),
            ..self
        }
    }

    /// Skips the first `offset` rows.
    pub fn offset(self, offset: u64) -> Self {
        Self {
            query: QuerySelect::offset(self.query, offset),
            ..self
        }
    }
}

/// A relation definition whose `ON` clause also requires the joined table's tenant column to equal
/// the scope's tenant. Generated relations are composite (`(tenant_id, x_id) = (tenant_id, id)`), so
/// this is a second fence, and it keeps a `LEFT JOIN` a left join (the tenant sits in `ON`, not in
/// `WHERE`).
fn fence(rel: RelationDef, tenant: Option<TenantId>, tenant_col: &'static str) -> RelationDef {
    match tenant {
        None => rel,
        Some(tenant) => rel.on_condition(move |_left, right| {
            Expr::col((right, tenant_col.into_iden()))
                .eq(tenant)
                .into_condition()
        }),
    }
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
            scope: PhantomData,
        }
    }
}

impl<E: EntityTrait, S> Scoped<'_, Select<E>, S> {
    /// The statement this query runs: SQL with placeholders, and the bound values. The tenant is
    /// always a bound value, never part of the SQL text, so the same query for two tenants has the
    /// same SQL (one prepared statement serves every tenant, and no cache holds a tenant).
    pub fn build(&self) -> sea_orm::Statement {
        let backend = self.exec.get().get_database_backend();
        backend.build(&sea_orm::QueryTrait::as_query(&self.query).clone())
    }

    /// All matching rows.
    pub async fn all(self) -> Result<Vec<E::Model>> {
        let exec = self.exec.get();
        self.query.all(&exec).await.map_err(Error::from_db)
    }

    /// The first matching row, if any.
    pub async fn one(self) -> Result<Option<E::Model>> {
        let exec = self.exec.get();
        self.query.one(&exec).await.map_err(Error::from_db)
    }
}

impl<'a, E, S> Scoped<'a, Select<E>, S>
where
    E: EntityTrait,
    E::Model: Sync,
{
    /// The number of matching rows (honouring `limit` and `offset`).
    pub async fn count(self) -> Result<u64> {
        let exec = self.exec.get();
        PaginatorTrait::count(self.query, &exec)
            .await
            .map_err(Error::from_db)
    }

    /// Pages of `page_size` rows (SeaORM's paginator, over the scoped query).
    pub fn paginate(self, page_size: u64) -> ScopedPaginator<'a, E> {
        ScopedPaginator {
            query: self.query,
            exec: self.exec,
            page_size,
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
        let exec = self.exec.get();
        self.query.all(&exec).await.map_err(Error::from_db)
    }

    /// The first matching row with its related row, if any.
    pub async fn one(self) -> Result<Option<(E::Model, Option<R::Model>)>> {
        let exec = self.exec.get();
        self.query.one(&exec).await.map_err(Error::from_db)
    }
}

impl<E, R, S> Scoped<'_, SelectTwoMany<E, R>, S>
where
    E: EntityTrait,
    R: EntityTrait,
{
    /// All matching rows, each with its related rows.
    pub async fn all(self) -> Result<Vec<(E::Model, Vec<R::Model>)>> {
        let exec = self.exec.get();
        self.query.all(&exec).await.map_err(Error::from_db)
    }
}

/// Pages over a [`Scoped`] query; made by [`Scoped::paginate`].
#[derive(Debug)]
pub struct ScopedPaginator<'a, E: EntityTrait> {
    query: Select<E>,
    exec: Exec<'a>,
    page_size: u64,
}

impl<E> ScopedPaginator<'_, E>
where
    E: EntityTrait,
    E::Model: Sync,
{
    /// The rows of page `page` (zero-based).
    pub async fn fetch_page(&self, page: u64) -> Result<Vec<E::Model>> {
        let exec = self.exec.get();
        self.query
            .clone()
            .paginate(&exec, self.page_size)
            .fetch_page(page)
            .await
            .map_err(Error::from_db)
    }

    /// The number of matching rows and of pages.
    pub async fn num_items_and_pages(&self) -> Result<ItemsAndPagesNumber> {
        let exec = self.exec.get();
        self.query
            .clone()
            .paginate(&exec, self.page_size)
            .num_items_and_pages()
            .await
            .map_err(Error::from_db)
    }
}
