//! The global tables: `tenants` and `permissions`.
//!
//! They are deliberately not tenant-owned, so they are plain sea-query tables with an `id`
//! primary key. Their unique keys are global on purpose: a tenant name and a permission code are
//! not tenant data. Both are library tables ([`tenant_scope_schema::tenants_table`],
//! [`tenant_scope_schema::permissions_table`]).

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{TENANTS_TABLE, drop_tables, permissions_table, tenants_table};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(tenants_table()).await?;
        manager.create_table(permissions_table()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in drop_tables([TENANTS_TABLE, "permissions"]) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}
