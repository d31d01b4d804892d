//! Reading a [`Catalog`]: one reader per backend, all through SeaORM's [`ConnectionTrait`], so a
//! catalog can be read on a pool or inside a transaction (the adopt steps read their own DDL).

mod mysql;
mod postgres;
mod sqlite;

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, DbErr, QueryResult};

use crate::model::{Catalog, Table};
use crate::postgres::{Role, Security};
use crate::sql::get;
use crate::{Backend, CatalogError};

/// How to read a [`Catalog`]; made by [`Catalog::reader`].
///
/// ```no_run
/// # async fn f(conn: &sea_orm::DatabaseConnection) -> Result<(), tenant_scope_catalog::CatalogError> {
/// use tenant_scope_catalog::{Catalog, postgres::Role};
///
/// // Everything, with PostgreSQL's row level security judged for the role `app`:
/// let catalog = Catalog::reader().role(Role::Named("app".into())).read(conn).await?;
/// // Two tables, nothing else:
/// let some = Catalog::reader().tables(["customers", "orders"]).without_security().read(conn).await?;
/// # let _ = (catalog, some); Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "nothing is read until `read` is called"]
pub struct Reader {
    only: Option<BTreeSet<String>>,
    security: bool,
    role: Role,
}

impl Default for Reader {
    fn default() -> Self {
        Self {
            only: None,
            security: true,
            role: Role::None,
        }
    }
}

impl Reader {
    /// Reads only these tables of the scope (names that are not there are left out).
    pub fn tables<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.only = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Does not read [`Security`] (PostgreSQL).
    pub fn without_security(mut self) -> Self {
        self.security = false;
        self
    }

    /// PostgreSQL: the role [`Security`] is judged for (default [`Role::None`]).
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Reads the catalog on `conn`.
    ///
    /// # Errors
    ///
    /// [`CatalogError::UnsupportedBackend`], [`CatalogError::NoScope`] (a PostgreSQL
    /// `search_path` none of whose schemas exists, a MySQL URL without a database),
    /// [`CatalogError::UnknownRole`], or the database's error.
    pub async fn read<C: ConnectionTrait>(&self, conn: &C) -> Result<Catalog, CatalogError> {
        let backend =
            Backend::of(conn.get_database_backend()).ok_or(CatalogError::UnsupportedBackend)?;
        let only = self.only.as_ref();
        let (scope, tables) = match backend {
            Backend::Sqlite => ("main".to_owned(), sqlite::read(conn, only).await?),
            Backend::MySql => {
                let scope = mysql::scope(conn).await?.ok_or(CatalogError::NoScope)?;
                (scope, mysql::read(conn, only).await?)
            }
            Backend::Postgres => {
                let (scope, version) = postgres::scope(conn).await?;
                let scope = scope.ok_or(CatalogError::NoScope)?;
                (scope, postgres::read(conn, version, only).await?)
            }
        };
        let security = if backend == Backend::Postgres && self.security {
            Some(Security::read(conn, &self.role).await?)
        } else {
            None
        };
        let tables = tables
            .into_iter()
            .map(|mut table| {
                table.uniques.sort_by(|a, b| a.name.cmp(&b.name));
                table.indexes.sort_by(|a, b| a.name.cmp(&b.name));
                table
                    .foreign_keys
                    .sort_by(|a, b| (&a.name, &a.columns).cmp(&(&b.name, &b.columns)));
                (table.name.clone(), table)
            })
            .collect();
        Ok(Catalog {
            backend,
            scope,
            tables,
            security,
        })
    }
}

impl Catalog {
    /// A [`Reader`] with the defaults: every table of the scope, and on PostgreSQL [`Security`]
    /// without a role.
    pub fn reader() -> Reader {
        Reader::default()
    }

    /// Reads the catalog on `conn` with the defaults of [`Catalog::reader`].
    ///
    /// # Errors
    ///
    /// As [`Reader::read`].
    pub async fn read<C: ConnectionTrait>(conn: &C) -> Result<Catalog, CatalogError> {
        Reader::default().read(conn).await
    }
}

/// The tables named in the first column of `rows` (those in `only`, if given), with nothing read yet but
/// their names.
fn empty_tables(
    rows: &[QueryResult],
    only: Option<&BTreeSet<String>>,
) -> Result<BTreeMap<String, Table>, DbErr> {
    let mut tables = BTreeMap::new();
    for row in rows {
        let name: String = get(row, 0)?;
        if only.is_none_or(|only| only.contains(&name)) {
            tables.insert(
                name.clone(),
                Table {
                    name,
                    ..Table::default()
                },
            );
        }
    }
    Ok(tables)
}

impl From<DbErr> for CatalogError {
    fn from(err: DbErr) -> Self {
        CatalogError::Db(err)
    }
}
