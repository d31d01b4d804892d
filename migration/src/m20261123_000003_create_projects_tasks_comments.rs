//! Projects, their tasks (optionally assigned to a user) and the comments on a task.

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{OnDelete, TenantTable, drop_tables};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        TenantTable::new("projects")
            .col(ColumnDef::new("name").string().not_null())
            .col(
                ColumnDef::new("created_at")
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .unique(["name"])
            .create(manager)
            .await?;

        // The composite foreign keys get the indexes (tenant_id, project_id) and
        // (tenant_id, assignee_id) from `create`.
        TenantTable::new("tasks")
            .col(ColumnDef::new("project_id").uuid().not_null())
            .col(ColumnDef::new("assignee_id").uuid().null())
            .col(ColumnDef::new("title").string().not_null())
            .col(ColumnDef::new("done").boolean().not_null().default(false))
            .col(
                ColumnDef::new("created_at")
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .references("project_id", "projects", OnDelete::Cascade)
            .references("assignee_id", "users", OnDelete::Restrict)
            .create(manager)
            .await?;

        TenantTable::new("comments")
            .col(ColumnDef::new("task_id").uuid().not_null())
            .col(ColumnDef::new("author_id").uuid().not_null())
            .col(ColumnDef::new("body").text().not_null())
            .col(
                ColumnDef::new("created_at")
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .references("task_id", "tasks", OnDelete::Cascade)
            .references("author_id", "users", OnDelete::Restrict)
            .create(manager)
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in drop_tables(["projects", "tasks", "comments"]) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}
