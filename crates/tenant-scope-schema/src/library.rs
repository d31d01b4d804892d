//! The library's own tables, for a user's migration: the audit log of tenant writes and the audit
//! log of system access.

use sea_orm::sea_query::{ColumnDef, Table, TableCreateStatement};

use crate::{AUDIT_TABLE, ID_COLUMN, SYSTEM_AUDIT_TABLE, TenantTable};

/// The tenant-owned table [`AUDIT_TABLE`], for a migration: `actor`, `action`, `table_name`,
/// `row_id` (`NULL` for a bulk statement), `request_id`, `created_at`, and an index on
/// `(tenant_id, created_at)` for reading a tenant's events in time order.
///
/// ```
/// let table = tenant_scope_schema::audit_events_table();
/// # let _ = table;
/// ```
pub fn audit_events_table() -> TenantTable {
    TenantTable::new(AUDIT_TABLE)
        .col(ColumnDef::new("actor").string().not_null())
        .col(ColumnDef::new("action").string().not_null())
        .col(ColumnDef::new("table_name").string().not_null())
        .col(ColumnDef::new("row_id").uuid().null())
        .col(ColumnDef::new("request_id").string().not_null())
        .col(
            ColumnDef::new("created_at")
                .timestamp_with_time_zone()
                .not_null(),
        )
        .index(["created_at"])
}

/// The `CREATE TABLE` of [`SYSTEM_AUDIT_TABLE`], for a migration.
///
/// It is global (system access is not one tenant's) and it is not granted to the application's
/// role: only the system connection writes it, and on PostgreSQL the application role cannot read
/// it either.
///
/// ```
/// use sea_orm::sea_query::PostgresQueryBuilder;
///
/// assert_eq!(
///     tenant_scope_schema::system_audit_table().to_string(PostgresQueryBuilder),
///     concat!(
///         r#"CREATE TABLE "system_audit_events" ( "id" uuid NOT NULL PRIMARY KEY, "#,
///         r#""reason" text NOT NULL, "created_at" timestamp with time zone NOT NULL )"#
///     )
/// );
/// ```
pub fn system_audit_table() -> TableCreateStatement {
    Table::create()
        .table(SYSTEM_AUDIT_TABLE)
        .col(ColumnDef::new(ID_COLUMN).uuid().not_null().primary_key())
        .col(ColumnDef::new("reason").text().not_null())
        .col(
            ColumnDef::new("created_at")
                .timestamp_with_time_zone()
                .not_null(),
        )
        .to_owned()
}
