//! The audit log: one row per audited operation, read per tenant in time order.

use sea_orm_migration::prelude::*;
use tenant_scope::schema::{TenantTable, drop_tables};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        TenantTable::new("audit_events")
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
            .create(manager)
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in drop_tables(["audit_events"]) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}
