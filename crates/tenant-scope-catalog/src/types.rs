//! Column types through sea-schema (feature `sea-schema`): the one part of the catalog that
//! sea-schema reads, because mapping each backend's types to SeaORM's is its job.
//!
//! The catalog queries read everything else; sea-schema's discovery of the same scope then gives
//! each column its [`ColumnType`], made the same on every backend where the backends spell the
//! same type differently ([`normalize`]).

use std::collections::BTreeMap;

use sea_orm::sea_query::{ColumnType, TableCreateStatement};
use sea_orm::{DatabaseConnection, DatabaseConnectionType};

use crate::read::Reader;
use crate::{Backend, Catalog, CatalogError};

impl Catalog {
    /// Reads the catalog like [`Reader::read`], and every column's SeaORM type
    /// ([`Column::ty`](crate::Column::ty)), as sea-schema maps the backend's type, made the same
    /// across backends (see [`normalize`]).
    ///
    /// It needs a pool (a SeaORM connection made with `Database::connect`), not a transaction:
    /// sea-schema runs its own queries on it.
    ///
    /// # Errors
    ///
    /// As [`Reader::read`]; [`CatalogError::Discovery`] if sea-schema fails.
    pub async fn read_with_types(
        conn: &DatabaseConnection,
        reader: &Reader,
    ) -> Result<Catalog, CatalogError> {
        let mut catalog = reader.read(conn).await?;
        let mut types: BTreeMap<(String, String), ColumnType> = BTreeMap::new();
        for statement in discover(conn, &catalog).await? {
            let Some(table) = statement
                .get_table_name()
                .map(|t| t.sea_orm_table().to_string())
            else {
                continue;
            };
            for column in statement.get_columns() {
                if let Some(ty) = column.get_column_type() {
                    types.insert((table.clone(), column.get_column_name()), ty.clone());
                }
            }
        }
        let backend = catalog.backend;
        for table in catalog.tables.values_mut() {
            for column in &mut table.columns {
                column.ty = types
                    .remove(&(table.name.clone(), column.name.clone()))
                    .map(|ty| normalize(backend, &column.native_type, ty));
            }
        }
        Ok(catalog)
    }
}

/// The column type sea-schema reads, as the same migration gives it on PostgreSQL, where the
/// backends spell one type differently:
///
/// | backend | native type | sea-schema reads | catalog type |
/// |---|---|---|---|
/// | MySQL | `binary(16)` (sea-query's UUID) | `Binary(16)` | `Uuid` |
/// | MySQL | `tinyint(1)` (sea-query's boolean) | `TinyInteger` | `Boolean` |
/// | MySQL | `timestamp` (always stored as UTC) | `Timestamp` | `TimestampWithTimeZone` |
///
/// Every other type is sea-schema's.
pub fn normalize(backend: Backend, native_type: &str, ty: ColumnType) -> ColumnType {
    if backend != Backend::MySql {
        return ty;
    }
    match (native_type.to_ascii_lowercase().as_str(), ty) {
        ("binary(16)", _) => ColumnType::Uuid,
        ("tinyint(1)", _) => ColumnType::Boolean,
        ("timestamp", ColumnType::Timestamp) => ColumnType::TimestampWithTimeZone,
        (_, ty) => ty,
    }
}

/// sea-schema's `CREATE TABLE` statements of the catalog's scope.
async fn discover(
    conn: &DatabaseConnection,
    catalog: &Catalog,
) -> Result<Vec<TableCreateStatement>, CatalogError> {
    let failed = |e: &dyn std::fmt::Display| CatalogError::Discovery(e.to_string());
    match (&conn.inner, catalog.backend) {
        (DatabaseConnectionType::SqlxPostgresPoolConnection(_), Backend::Postgres) => {
            let pool = conn.get_postgres_connection_pool().clone();
            let schema =
                sea_schema::postgres::discovery::SchemaDiscovery::new(pool, &catalog.scope)
                    .discover()
                    .await
                    .map_err(|e| failed(&e))?;
            Ok(schema.tables.into_iter().map(|t| t.write()).collect())
        }
        (DatabaseConnectionType::SqlxMySqlPoolConnection(_), Backend::MySql) => {
            let pool = conn.get_mysql_connection_pool().clone();
            let schema = sea_schema::mysql::discovery::SchemaDiscovery::new(pool, &catalog.scope)
                .discover()
                .await
                .map_err(|e| failed(&e))?;
            Ok(schema.tables.into_iter().map(|t| t.write()).collect())
        }
        (DatabaseConnectionType::SqlxSqlitePoolConnection(_), Backend::Sqlite) => {
            let pool = conn.get_sqlite_connection_pool().clone();
            let schema = sea_schema::sqlite::discovery::SchemaDiscovery::new(pool)
                .discover()
                .await
                .map_err(|e| CatalogError::Discovery(format!("{e:?}")))?;
            Ok(schema.tables.into_iter().map(|t| t.write()).collect())
        }
        _ => Err(CatalogError::Discovery(
            "column types are read on a sqlx pool of the database".into(),
        )),
    }
}
