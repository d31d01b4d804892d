//! The audit log of system access: one row per `db.system(reason)`.
//!
//! Global (system access is not one tenant's), and not granted to the application role: only the
//! system connection writes it (see `tenant_scope_schema::system_audit_table`).

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{SYSTEM_AUDIT_TABLE, drop_tables, system_audit_table};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(system_audit_table()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in drop_tables([SYSTEM_AUDIT_TABLE]) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}
