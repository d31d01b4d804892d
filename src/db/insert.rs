//! The `INSERT` of [`TenantScope::insert`](super::TenantScope::insert) on one connection, and how a
//! row whose insert sets no id gets one (see [`RowId`]).

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr,
    EntityTrait, Iden, IntoActiveModel, QueryFilter, QueryTrait,
};

use crate::entity::{RowId, TenantScoped};
use crate::error::{Error, Result};
use crate::tenant::TenantId;

use super::ModelOf;

/// The id type of `A`'s entity.
type IdOf<A> = <<A as ActiveModelTrait>::Entity as TenantScoped>::Id;

/// Inserts `am` (its tenant already set to `tenant`) on `conn` and returns the row.
///
/// An id the insert does not set is made by the library for a UUID ([`RowId::generate`], before
/// the insert's transaction began), or assigned by the database for an integer: the column's
/// default with `RETURNING` on PostgreSQL, `AUTO_INCREMENT` with `LAST_INSERT_ID()` on MySQL, one
/// more than this tenant's largest id on SQLite.
pub(super) async fn insert_row<A, C>(conn: &C, mut am: A, tenant: TenantId) -> Result<ModelOf<A>>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    A::Entity: TenantScoped,
    ModelOf<A>: IntoActiveModel<A>,
    C: ConnectionTrait,
{
    let id_col = <A::Entity as TenantScoped>::id_column();
    if am.get(id_col).is_set() {
        return am.insert(conn).await.map_err(Error::from_db);
    }
    match conn.get_database_backend() {
        // RETURNING reads back the id the column's default gave the row.
        DbBackend::Postgres => am.insert(conn).await.map_err(Error::from_db),
        DbBackend::Sqlite => {
            let next = next_sqlite_id::<A, C>(conn, tenant).await?;
            am.try_set(id_col, next.into()).map_err(Error::from_db)?;
            am.insert(conn).await.map_err(Error::from_db)
        }
        // MySQL has no RETURNING; SeaORM reads a composite key's id back only if it was set.
        _ => {
            let am = am.before_save(conn, true).await.map_err(Error::from_db)?;
            let insert = A::Entity::insert(am).into_query();
            let result = conn.execute(&insert).await.map_err(Error::from_db)?;
            let id = IdOf::<A>::from_assigned(result.last_insert_id()).ok_or_else(|| {
                Error::Invalid(format!(
                    "`{}.{}` gave the row no id: give the column AUTO_INCREMENT, or set the id \
                     in the insert",
                    A::Entity::default().to_string(),
                    id_col.to_string()
                ))
            })?;
            let model = A::Entity::find()
                .filter(<A::Entity as TenantScoped>::tenant_column().eq(tenant))
                .filter(id_col.eq(id))
                .one(conn)
                .await
                .map_err(Error::from_db)?
                .ok_or_else(|| {
                    Error::from_db(DbErr::Custom(
                        "an inserted row could not be read back".into(),
                    ))
                })?;
            A::after_save(model, conn, true)
                .await
                .map_err(Error::from_db)
        }
    }
}

/// One more than the largest id of `tenant` in `A`'s table (1 for its first row): SQLite's
/// integer id of a composite primary key, which is no rowid alias and so has no counter of its
/// own. Read in the insert's transaction; per tenant, so no tenant learns another's row count.
async fn next_sqlite_id<A, C>(conn: &C, tenant: TenantId) -> Result<IdOf<A>>
where
    A: ActiveModelTrait,
    A::Entity: TenantScoped,
    C: ConnectionTrait,
{
    let entity = A::Entity::default();
    let id_col = <A::Entity as TenantScoped>::id_column();
    let tenant_col = <A::Entity as TenantScoped>::tenant_column();
    let mut select = Query::select();
    select
        .expr(Expr::col((entity, id_col)).max())
        .from(entity)
        .and_where(Expr::col((entity, tenant_col)).eq(tenant));
    let largest: Option<i64> = match conn.query_one(&select).await.map_err(Error::from_db)? {
        Some(row) => row.try_get_by_index(0).map_err(Error::from_db)?,
        None => None,
    };
    let next = Ord::max(largest.unwrap_or(0), 0).checked_add(1);
    next.and_then(|n| u64::try_from(n).ok())
        .and_then(IdOf::<A>::from_assigned)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "`{}.{}` has no id left for a new row of this tenant",
                entity.to_string(),
                id_col.to_string()
            ))
        })
}
