//! The library's job queue (`tenant_scope_schema::jobs_table`): a tenant-owned table like any
//! other, with row level security and the application role's grants on PostgreSQL.

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{JOBS_TABLE, drop_tables, jobs_table, rls};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        jobs_table().create(manager).await?;
        rls::enable_rls(manager, &[JOBS_TABLE]).await?;
        rls::grant_app_role(manager, rls::DEFAULT_APP_ROLE, &[JOBS_TABLE], &[]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rls::revoke_app_role(manager, rls::DEFAULT_APP_ROLE, &[JOBS_TABLE], &[]).await?;
        for stmt in drop_tables([JOBS_TABLE]) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}
