//! The audit log: one row per write of a tenant, written by the library in the write's transaction,
//! read per tenant in time order (`tenant_scope_schema::audit_events_table`).

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{AUDIT_TABLE, audit_events_table, drop_tables};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        audit_events_table().create(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in drop_tables([AUDIT_TABLE]) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}
