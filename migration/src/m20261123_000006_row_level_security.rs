//! Row level security on every tenant-owned table, and the grants of the application role.
//!
//! On PostgreSQL every tenant-owned table gets `ENABLE` and `FORCE ROW LEVEL SECURITY` and the one
//! policy `tenant_isolation` (see [`tenant_scope_schema::rls`]). If the role `tenant_scope_app`
//! exists, it gets `USAGE` on the schema, `SELECT, INSERT, UPDATE, DELETE` on the tenant-owned tables
//! and `SELECT` on the global tables; nothing else. On SQLite and MySQL/MariaDB, which have no row
//! level security, this migration does nothing.

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{TENANTS_TABLE, rls};

/// Every tenant-owned table of the reference schema.
const TENANT_TABLES: &[&str] = &[
    "users",
    "roles",
    "role_permissions",
    "user_roles",
    "projects",
    "tasks",
    "comments",
    "api_keys",
    "audit_events",
];

/// The global tables, which the application role may only read.
const GLOBAL_TABLES: &[&str] = &[TENANTS_TABLE, "permissions"];

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rls::enable_rls(manager, TENANT_TABLES).await?;
        rls::grant_app_role(manager, rls::DEFAULT_APP_ROLE, TENANT_TABLES, GLOBAL_TABLES).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rls::revoke_app_role(manager, rls::DEFAULT_APP_ROLE, TENANT_TABLES, GLOBAL_TABLES).await?;
        rls::drop_rls(manager, TENANT_TABLES).await
    }
}
