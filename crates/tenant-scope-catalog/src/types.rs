//! Column types through sea-schema (feature `sea-schema`): the one part of the catalog that
//! sea-schema reads, because mapping each backend's types to SeaORM's is its job.
//!
//! The catalog queries read everything else; sea-schema's discovery of the same scope then gives
//! each column its [`ColumnType`], made the same on every backend where the backends spell the
//! same type differently ([`normalize`]).

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::{ColumnType, StringLen, TableCreateStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseConnectionType, DbBackend, Statement};

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
        let json = mariadb_json_columns(conn, &catalog).await?;
        for table in catalog.tables.values_mut() {
            for column in &mut table.columns {
                let key = (table.name.clone(), column.name.clone());
                let is_json = json.contains(&key);
                column.ty = types.remove(&key).map(|ty| {
                    if is_json {
                        ColumnType::Json
                    } else {
                        normalize(backend, &column.native_type, ty)
                    }
                });
            }
        }
        Ok(catalog)
    }
}

/// The column type sea-schema reads, made the same for one migration on every backend, where the
/// backends spell one type differently or sea-schema reads it differently:
///
/// | backend | native type | sea-schema reads | catalog type |
/// |---|---|---|---|
/// | MySQL | `binary(16)` (sea-query's UUID) | `Binary(16)` | `Uuid` |
/// | MySQL | `tinyint(1)` (sea-query's boolean) | `TinyInteger` | `Boolean` |
/// | MySQL | `timestamp` (always stored as UTC) | `Timestamp` | `TimestampWithTimeZone` |
/// | MariaDB | `longtext` with `CHECK (json_valid(..))` (MariaDB's `JSON`) | `custom("LONGTEXT")` | `Json` (by [`Catalog::read_with_types`], which reads the check) |
/// | SQLite | `timestamp_text` (sea-query's timestamp without time zone) | `Timestamp` | `DateTime` (as PostgreSQL's `timestamp`) |
/// | every backend | `jsonb`, `jsonb_text` | `JsonBinary` | `Json` (the same `Json` field: sqlx binds JSON as `jsonb` on PostgreSQL either way) |
/// | every backend | `bytea`, `blob`, `binary(n)`, `varbinary(n)`, `varbinary_blob(n)` | `VarBinary(..)`, `Binary(n)`, `Blob` | `VarBinary(None)` (the same `Vec<u8>` field) |
///
/// Every other type is sea-schema's. What cannot be made the same, because the database does not
/// keep the difference: an `integer()` column is a 64-bit `INTEGER` on SQLite (`i64`) and a 32-bit
/// one elsewhere (`i32`); MySQL writes `timestamp()` and `timestamp_with_time_zone()` alike
/// (`DateTimeUtc`), PostgreSQL does not (`DateTime`). Use `big_integer()` and
/// `timestamp_with_time_zone()` (or `date_time()`) for one entity on every backend.
pub fn normalize(backend: Backend, native_type: &str, ty: ColumnType) -> ColumnType {
    let native = native_type.to_ascii_lowercase();
    let ty = match (backend, native.as_str(), ty) {
        (Backend::MySql, "binary(16)", _) => return ColumnType::Uuid,
        (Backend::MySql, "tinyint(1)", _) => ColumnType::Boolean,
        (Backend::MySql, "timestamp", ColumnType::Timestamp) => ColumnType::TimestampWithTimeZone,
        (Backend::Sqlite, _, ColumnType::Timestamp) => ColumnType::DateTime,
        (_, _, ty) => ty,
    };
    match ty {
        ColumnType::JsonBinary => ColumnType::Json,
        ColumnType::Binary(_) | ColumnType::VarBinary(_) | ColumnType::Blob => {
            ColumnType::VarBinary(StringLen::None)
        }
        ty => ty,
    }
}

/// MariaDB's `JSON` columns of the catalog's scope, by (table, column): MariaDB stores `JSON` as
/// `LONGTEXT` with a `CHECK (json_valid(column))` named after the column. Empty on other backends
/// and on MySQL, whose `JSON` is a type of its own.
async fn mariadb_json_columns(
    conn: &DatabaseConnection,
    catalog: &Catalog,
) -> Result<BTreeSet<(String, String)>, CatalogError> {
    let mut found = BTreeSet::new();
    if catalog.backend != Backend::MySql {
        return Ok(found);
    }
    let version = conn
        .query_one_raw(Statement::from_string(DbBackend::MySql, "SELECT VERSION()"))
        .await?
        .map(|row| row.try_get_by_index::<String>(0))
        .transpose()?
        .unwrap_or_default();
    if !version.to_ascii_lowercase().contains("mariadb") {
        return Ok(found);
    }
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::MySql,
            "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = ?",
            [catalog.scope.clone().into()],
        ))
        .await?;
    for row in rows {
        let table: String = row.try_get_by_index(0)?;
        let name: String = row.try_get_by_index(1)?;
        let clause: String = row.try_get_by_index(2)?;
        let clause: String = clause.split_whitespace().collect();
        let is_json_check = clause.eq_ignore_ascii_case(&format!("json_valid(`{name}`)"));
        let is_longtext = catalog
            .table(&table)
            .and_then(|t| t.column(&name))
            .is_some_and(|c| c.native_type.eq_ignore_ascii_case("longtext"));
        if is_json_check && is_longtext {
            found.insert((table, name));
        }
    }
    Ok(found)
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
