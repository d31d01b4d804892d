//! The library's own tables, for a user's migration.
//!
//! The runtime reads and writes nine tables of its own, whatever the service's schema is: the
//! global `tenants` and `permissions`, the tenant-owned `users`, `roles`, `role_permissions`,
//! `user_roles`, `api_keys` and `audit_events`, and the global `system_audit_events`.
//! [`create_library_tables`] creates all of them in one call (and on PostgreSQL puts row level
//! security on the tenant-owned ones); the functions below give each table's statement for a
//! migration that wants them one by one. They are exactly what the reference migration
//! (`migration/src`) creates: it is built from them, and
//! `crates/tenant-scope-schema/tests/library_tables.rs` compares the two schemas as the catalog
//! reads them, on every backend.
//!
//! What is not here: the grants of the application role, which depend on the role's name and on
//! the service's own tables (see [`grant_library_tables`], [`crate::rls`] and
//! `tenant-scope roles --print`).

use sea_orm::DbBackend;
use sea_orm::sea_query::{ColumnDef, Index, Table, TableCreateStatement};
use sea_orm_migration::{DbErr, SchemaManager};

use crate::{
    AUDIT_TABLE, ID_COLUMN, JOBS_TABLE, OnDelete, SLUG_COLUMN, STATUS_COLUMN, SYSTEM_AUDIT_TABLE,
    TENANT_ACTIVE, TENANTS_TABLE, TenantTable, drop_tables, rls, unique_name,
};

/// The library's global tables, which the application role may only read: `tenants` and
/// `permissions`. (`system_audit_events` is global too, but not granted to the application role at
/// all: see [`SYSTEM_AUDIT_TABLE`].)
pub const LIBRARY_GLOBAL_TABLES: &[&str] = &[TENANTS_TABLE, "permissions"];

/// The library's tenant-owned tables, in the order [`create_library_tables`] creates them (parents
/// first). Each has row level security on PostgreSQL.
pub const LIBRARY_TENANT_TABLES: &[&str] = &[
    "users",
    "roles",
    "role_permissions",
    "user_roles",
    "api_keys",
    AUDIT_TABLE,
    JOBS_TABLE,
];

/// The `CREATE TABLE` of [`TENANTS_TABLE`]: `id`, `name` (globally unique: a tenant's name is not
/// tenant data), `created_at`, `slug` (nullable, globally unique: the name of the tenant in a
/// subdomain, `acme.app.example.com`; the resolver of the `axum` feature reads it) and `status`
/// ([`TENANT_ACTIVE`] by default, [`TENANT_SUSPENDED`](crate::TENANT_SUSPENDED) or
/// [`TENANT_DELETED`](crate::TENANT_DELETED): only an active tenant verifies and runs jobs).
///
/// ```
/// use sea_orm::sea_query::PostgresQueryBuilder;
///
/// assert_eq!(
///     tenant_scope_schema::tenants_table().to_string(PostgresQueryBuilder),
///     concat!(
///         r#"CREATE TABLE "tenants" ( "id" uuid NOT NULL PRIMARY KEY, "name" varchar NOT NULL, "#,
///         r#""created_at" timestamp with time zone NOT NULL, "slug" varchar NULL, "#,
///         r#""status" varchar NOT NULL DEFAULT 'active', "#,
///         r#"CONSTRAINT "uq_tenants_name" UNIQUE ("name"), "#,
///         r#"CONSTRAINT "uq_tenants_slug" UNIQUE ("slug") )"#
///     )
/// );
/// ```
pub fn tenants_table() -> TableCreateStatement {
    Table::create()
        .table(TENANTS_TABLE)
        .col(ColumnDef::new(ID_COLUMN).uuid().not_null().primary_key())
        .col(ColumnDef::new("name").string().not_null())
        .col(
            ColumnDef::new("created_at")
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(SLUG_COLUMN).string().null())
        .col(
            ColumnDef::new(STATUS_COLUMN)
                .string()
                .not_null()
                .default(TENANT_ACTIVE),
        )
        .index(
            Index::create()
                .name(unique_name(TENANTS_TABLE, ["name"]))
                .unique()
                .col("name"),
        )
        .index(
            Index::create()
                .name(unique_name(TENANTS_TABLE, [SLUG_COLUMN]))
                .unique()
                .col(SLUG_COLUMN),
        )
        .to_owned()
}

/// The `CREATE TABLE` of the global `permissions`: `id`, `code` (globally unique), `description`.
/// A role grants permissions through `role_permissions`; the membership verifier puts the codes of
/// a user's roles into the `TenantContext`.
pub fn permissions_table() -> TableCreateStatement {
    Table::create()
        .table("permissions")
        .col(ColumnDef::new(ID_COLUMN).uuid().not_null().primary_key())
        .col(ColumnDef::new("code").string().not_null())
        .col(ColumnDef::new("description").string().not_null())
        .index(
            Index::create()
                .name(unique_name("permissions", ["code"]))
                .unique()
                .col("code"),
        )
        .to_owned()
}

/// The tenant-owned `users`: `email` (unique per tenant), `name`, `created_at`.
pub fn users_table() -> TenantTable {
    TenantTable::new("users")
        .col(ColumnDef::new("email").string().not_null())
        .col(ColumnDef::new("name").string().not_null())
        .col(
            ColumnDef::new("created_at")
                .timestamp_with_time_zone()
                .not_null(),
        )
        .unique(["email"])
}

/// The tenant-owned `roles`: `name` (unique per tenant), `created_at`.
pub fn roles_table() -> TenantTable {
    TenantTable::new("roles")
        .col(ColumnDef::new("name").string().not_null())
        .col(
            ColumnDef::new("created_at")
                .timestamp_with_time_zone()
                .not_null(),
        )
        .unique(["name"])
}

/// The tenant-owned `role_permissions`: which global permission a role grants. `role_id` is a
/// composite foreign key to `roles` (`ON DELETE CASCADE`), `permission_id` a plain one to
/// `permissions` (`ON DELETE RESTRICT`); `(role_id, permission_id)` is unique per tenant.
pub fn role_permissions_table() -> TenantTable {
    TenantTable::new("role_permissions")
        .col(ColumnDef::new("role_id").uuid().not_null())
        .col(ColumnDef::new("permission_id").uuid().not_null())
        .references("role_id", "roles", OnDelete::Cascade)
        .references_global("permission_id", "permissions", OnDelete::Restrict)
        .unique(["role_id", "permission_id"])
}

/// The tenant-owned `user_roles`: a user's membership in a role, composite both ways
/// (`ON DELETE CASCADE`); `(user_id, role_id)` is unique per tenant.
pub fn user_roles_table() -> TenantTable {
    TenantTable::new("user_roles")
        .col(ColumnDef::new("user_id").uuid().not_null())
        .col(ColumnDef::new("role_id").uuid().not_null())
        .references("user_id", "users", OnDelete::Cascade)
        .references("role_id", "roles", OnDelete::Cascade)
        .unique(["user_id", "role_id"])
}

/// The tenant-owned `api_keys`, stored hashed: `user_id` (composite foreign key to `users`,
/// `ON DELETE CASCADE`), `name`, `key_hash` (the lowercase hex SHA-256 of the secret, 64
/// characters), `prefix` (a short, non-secret part of the key for display), `created_at`,
/// `revoked_at` (`NULL` while the key is valid).
///
/// A key string embeds its tenant and its row id, so the API-key verifier looks a key up by primary
/// key `(tenant_id, id)` and compares the hash in constant time: no index on the hash is needed
/// (and a global one would not be tenant-led).
pub fn api_keys_table() -> TenantTable {
    TenantTable::new("api_keys")
        .col(ColumnDef::new("user_id").uuid().not_null())
        .col(ColumnDef::new("name").string().not_null())
        .col(ColumnDef::new("key_hash").string_len(64).not_null())
        .col(ColumnDef::new("prefix").string().not_null())
        .col(
            ColumnDef::new("created_at")
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new("revoked_at")
                .timestamp_with_time_zone()
                .null(),
        )
        .references("user_id", "users", OnDelete::Cascade)
}

/// The tenant-owned table [`AUDIT_TABLE`], for a migration: `actor`, `action`, `table_name`,
/// `row_id` (the row's id if it is a UUID), `row_key` (the row's id as text, whatever its type;
/// both `NULL` for a bulk statement), `request_id`, `created_at`, and an index on
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
        .col(ColumnDef::new("row_key").string().null())
        .col(ColumnDef::new("request_id").string().not_null())
        .col(
            ColumnDef::new("created_at")
                .timestamp_with_time_zone()
                .not_null(),
        )
        .index(["created_at"])
}

/// The tenant-owned [`JOBS_TABLE`], the library's job queue (`tenant_scope::jobs`): `kind` (the
/// handler's name), `payload` (JSON text), `context` (the sealed context the job runs under),
/// `state` (`queued`, `running`, `succeeded`, `dead`, `cancelled`), `attempts`, `max_attempts`,
/// `run_at` (when it may run next), `locked_until` (a running job's lease: past it, another worker
/// may take the job), `worker`, `last_error`, `created_at`, `updated_at`, and an index on
/// `(tenant_id, state, run_at)` for a tenant's due and running jobs.
pub fn jobs_table() -> TenantTable {
    let at = |name: &'static str| ColumnDef::new(name).timestamp_with_time_zone().to_owned();
    TenantTable::new(JOBS_TABLE)
        .col(ColumnDef::new("kind").string().not_null())
        .col(ColumnDef::new("payload").text().not_null())
        .col(ColumnDef::new("context").text().not_null())
        .col(ColumnDef::new("state").string().not_null())
        .col(ColumnDef::new("attempts").big_integer().not_null())
        .col(ColumnDef::new("max_attempts").big_integer().not_null())
        .col(at("run_at").not_null().to_owned())
        .col(at("locked_until").null().to_owned())
        .col(ColumnDef::new("worker").string().null())
        .col(ColumnDef::new("last_error").text().null())
        .col(at("created_at").not_null().to_owned())
        .col(at("updated_at").not_null().to_owned())
        .index(["state", "run_at"])
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

/// The tenant-owned library tables of [`LIBRARY_TENANT_TABLES`], in that order.
fn library_tenant_tables() -> [TenantTable; 7] {
    [
        users_table(),
        roles_table(),
        role_permissions_table(),
        user_roles_table(),
        api_keys_table(),
        audit_events_table(),
        jobs_table(),
    ]
}

/// Creates every table of the library, in one call from a migration's `up`: [`tenants_table`],
/// [`permissions_table`], the tenant-owned tables of [`LIBRARY_TENANT_TABLES`] and
/// [`system_audit_table`]. On PostgreSQL it also enables and forces row level security with the
/// `tenant_isolation` policy on the tenant-owned ones ([`rls::enable_rls`]): `TenantDb::connect`
/// refuses a tenant-owned table without it, so the tables are not usable without it.
///
/// It grants nothing: the application role's name is the deployment's choice. Grant it with
/// [`grant_library_tables`] (or print the whole setup with `tenant-scope roles --print`).
///
/// ```no_run
/// use sea_orm_migration::prelude::*;
///
/// # #[derive(DeriveMigrationName)]
/// # struct Migration;
/// #[async_trait::async_trait]
/// impl MigrationTrait for Migration {
///     async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
///         tenant_scope_schema::create_library_tables(manager).await
///     }
///
///     async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
///         tenant_scope_schema::drop_library_tables(manager).await
///     }
/// }
/// ```
///
/// # Errors
///
/// The database's error; a table that already exists is one (nothing is created `IF NOT EXISTS`).
pub async fn create_library_tables(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager.create_table(tenants_table()).await?;
    manager.create_table(permissions_table()).await?;
    for table in library_tenant_tables() {
        table.create(manager).await?;
    }
    manager.create_table(system_audit_table()).await?;
    rls::enable_rls(manager, LIBRARY_TENANT_TABLES).await
}

/// Drops every table [`create_library_tables`] creates, children first (their policies go with
/// them), for a migration's `down`. The service's own tables that reference them must be dropped
/// before.
///
/// # Errors
///
/// The database's error, for example a table of the service that still references one.
pub async fn drop_library_tables(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let mut created = vec![TENANTS_TABLE, "permissions"];
    created.extend_from_slice(LIBRARY_TENANT_TABLES);
    created.push(SYSTEM_AUDIT_TABLE);
    for stmt in drop_tables(created) {
        manager.drop_table(stmt).await?;
    }
    Ok(())
}

/// On PostgreSQL, gives the application role `role` what the runtime needs on the library's tables,
/// if the role exists: `USAGE` on the schema, `SELECT, INSERT, UPDATE, DELETE` on
/// [`LIBRARY_TENANT_TABLES`] except `audit_events`, which stays append-only (`SELECT, INSERT`),
/// `SELECT` on [`LIBRARY_GLOBAL_TABLES`], and nothing on `system_audit_events`. Built from
/// [`rls::grant_app_role_statement`] and [`rls::append_only_statement`]. Does nothing on SQLite and
/// MySQL/MariaDB.
///
/// The service's own tables need their grants too: [`rls::grant_app_role`] with their names.
///
/// # Errors
///
/// [`DbErr::Migration`] for a role name that is not a plain identifier; the database's error.
pub async fn grant_library_tables(manager: &SchemaManager<'_>, role: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    rls::grant_app_role(manager, role, LIBRARY_TENANT_TABLES, LIBRARY_GLOBAL_TABLES).await?;
    rls::append_only(manager, role, &[AUDIT_TABLE], false).await
}
