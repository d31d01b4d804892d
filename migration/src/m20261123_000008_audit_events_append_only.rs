//! The audit log is append-only for the application role: on PostgreSQL it keeps `SELECT` and
//! `INSERT` on `audit_events` and loses `UPDATE` and `DELETE` (the library only ever inserts events).
//! On SQLite and MySQL/MariaDB, which have no application role here, this migration does nothing.

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{AUDIT_TABLE, rls};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rls::append_only(manager, rls::DEFAULT_APP_ROLE, &[AUDIT_TABLE], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rls::append_only(manager, rls::DEFAULT_APP_ROLE, &[AUDIT_TABLE], true).await
    }
}
