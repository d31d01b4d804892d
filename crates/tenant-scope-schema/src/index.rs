//! Tenant-led indexes on existing tables, and the drop statements for `down()`.

use sea_orm::sea_query::{
    Index, IndexCreateStatement, IndexDropStatement, IntoIden, Table, TableDropStatement,
};

use crate::{TENANT_COLUMN, index_name, unique_name};

/// `CREATE INDEX ix_<table>_<columns> ON table (tenant_id, columns..)`, for a tenant-owned table
/// that already exists.
///
/// `tenant_id` is prepended (listing it is allowed and ignored). For a table built with
/// [`TenantTable`](crate::TenantTable), prefer [`TenantTable::index`](crate::TenantTable::index).
///
/// ```
/// use sea_orm::sea_query::PostgresQueryBuilder;
/// use tenant_scope_schema::tenant_index;
///
/// assert_eq!(
///     tenant_index("audit_events", ["created_at"]).to_string(PostgresQueryBuilder),
///     r#"CREATE INDEX "ix_audit_events_created_at" ON "audit_events" ("tenant_id", "created_at")"#
/// );
/// ```
pub fn tenant_index<T, I>(table: T, columns: I) -> IndexCreateStatement
where
    T: IntoIden,
    I: IntoIterator,
    I::Item: IntoIden,
{
    tenant_led_index(
        &table.into_iden().to_string(),
        &columns_after_tenant(columns),
        false,
    )
}

/// `CREATE UNIQUE INDEX uq_<table>_<columns> ON table (tenant_id, columns..)`, for a
/// tenant-owned table that already exists.
///
/// This is how a unique key is added later on SQLite, which cannot add a constraint to an
/// existing table. For a table built with [`TenantTable`](crate::TenantTable), prefer
/// [`TenantTable::unique`](crate::TenantTable::unique), which puts the constraint in
/// `CREATE TABLE`.
///
/// ```
/// use sea_orm::sea_query::MysqlQueryBuilder;
/// use tenant_scope_schema::tenant_unique_index;
///
/// assert_eq!(
///     tenant_unique_index("projects", ["name"]).to_string(MysqlQueryBuilder),
///     "CREATE UNIQUE INDEX `uq_projects_name` ON `projects` (`tenant_id`, `name`)"
/// );
/// ```
pub fn tenant_unique_index<T, I>(table: T, columns: I) -> IndexCreateStatement
where
    T: IntoIden,
    I: IntoIterator,
    I::Item: IntoIden,
{
    tenant_led_index(
        &table.into_iden().to_string(),
        &columns_after_tenant(columns),
        true,
    )
}

/// `DROP INDEX` for an index made by [`tenant_index`], [`TenantTable::index`] or the automatic
/// index of a composite foreign key (`unique = false`: `ix_..`), or by [`tenant_unique_index`]
/// (`unique = true`: `uq_..`).
///
/// A unique key declared with [`TenantTable::unique`](crate::TenantTable::unique) is a constraint
/// of the table (PostgreSQL refuses `DROP INDEX` on it); it goes away with the table.
///
/// ```
/// use sea_orm::sea_query::{MysqlQueryBuilder, PostgresQueryBuilder};
/// use tenant_scope_schema::drop_tenant_index;
///
/// let drop = drop_tenant_index("audit_events", ["created_at"], false);
/// assert_eq!(drop.to_string(PostgresQueryBuilder), r#"DROP INDEX "ix_audit_events_created_at""#);
/// assert_eq!(
///     drop.to_string(MysqlQueryBuilder),
///     "DROP INDEX `ix_audit_events_created_at` ON `audit_events`"
/// );
/// ```
///
/// [`TenantTable::index`]: crate::TenantTable::index
pub fn drop_tenant_index<T, I>(table: T, columns: I, unique: bool) -> IndexDropStatement
where
    T: IntoIden,
    I: IntoIterator,
    I::Item: IntoIden,
{
    let table = table.into_iden().to_string();
    let columns = columns_after_tenant(columns);
    let name = if unique {
        unique_name(&table, &columns)
    } else {
        index_name(&table, &columns)
    };
    Index::drop().name(name).table(table).to_owned()
}

/// `DROP TABLE table`, for `down()`.
///
/// Dropping a table drops its indexes and its constraints with it on every backend.
///
/// ```
/// use sea_orm::sea_query::PostgresQueryBuilder;
///
/// let drop = tenant_scope_schema::drop_table("tasks");
/// assert_eq!(drop.to_string(PostgresQueryBuilder), r#"DROP TABLE "tasks""#);
/// ```
pub fn drop_table(table: impl IntoIden) -> TableDropStatement {
    Table::drop().table(table.into_iden()).to_owned()
}

/// The `DROP TABLE` statements that undo a migration, given the tables **in the order it created
/// them**: the statements come in reverse order, so a table is dropped before the tables it
/// references (PostgreSQL and MySQL refuse to drop a table that is still referenced).
///
/// ```
/// use sea_orm::sea_query::SqliteQueryBuilder;
/// use tenant_scope_schema::drop_tables;
///
/// let sql: Vec<String> = drop_tables(["projects", "tasks"])
///     .iter()
///     .map(|stmt| stmt.to_string(SqliteQueryBuilder))
///     .collect();
/// assert_eq!(sql, [r#"DROP TABLE "tasks""#, r#"DROP TABLE "projects""#]);
/// ```
///
/// In a migration:
///
/// ```no_run
/// # use sea_orm_migration::prelude::*;
/// # async fn down(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
/// for stmt in tenant_scope_schema::drop_tables(["projects", "tasks"]) {
///     manager.drop_table(stmt).await?;
/// }
/// # Ok(())
/// # }
/// ```
pub fn drop_tables<I>(created_in_order: I) -> Vec<TableDropStatement>
where
    I: IntoIterator,
    I::Item: IntoIden,
{
    let mut stmts: Vec<TableDropStatement> = created_in_order.into_iter().map(drop_table).collect();
    stmts.reverse();
    stmts
}

/// The column names of a key without `tenant_id`, which every tenant-led key starts with anyway.
pub(super) fn columns_after_tenant<I>(columns: I) -> Vec<String>
where
    I: IntoIterator,
    I::Item: IntoIden,
{
    columns
        .into_iter()
        .map(|column| column.into_iden().to_string())
        .filter(|column| column != TENANT_COLUMN)
        .collect()
}

/// `CREATE [UNIQUE] INDEX` on `(tenant_id, columns..)`, named by [`index_name`] or [`unique_name`].
pub(super) fn tenant_led_index(
    table: &str,
    columns: &[String],
    unique: bool,
) -> IndexCreateStatement {
    let mut index = Index::create();
    if unique {
        index.name(unique_name(table, columns)).unique();
    } else {
        index.name(index_name(table, columns));
    }
    index.table(table.to_owned()).col(TENANT_COLUMN);
    for column in columns {
        index.col(column.clone());
    }
    index
}
