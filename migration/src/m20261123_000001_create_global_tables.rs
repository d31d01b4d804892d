//! The global tables: `tenants` and `permissions`.
//!
//! They are deliberately not tenant-owned, so they are plain sea-query tables with an `id`
//! primary key. Their unique keys are global on purpose: a tenant name and a permission code are
//! not tenant data.

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{ID_COLUMN, TENANTS_TABLE, drop_tables, unique_name};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TENANTS_TABLE)
                    .col(ColumnDef::new(ID_COLUMN).uuid().not_null().primary_key())
                    .col(ColumnDef::new("name").string().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .index(
                        Index::create()
                            .name(unique_name(TENANTS_TABLE, ["name"]))
                            .unique()
                            .col("name"),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
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
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in drop_tables([TENANTS_TABLE, "permissions"]) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}
