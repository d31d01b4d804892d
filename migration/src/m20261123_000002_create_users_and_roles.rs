//! Users, roles, the permissions of a role and the roles of a user.

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{OnDelete, TenantTable, drop_tables};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        TenantTable::new("users")
            .col(ColumnDef::new("email").string().not_null())
            .col(ColumnDef::new("name").string().not_null())
            .col(
                ColumnDef::new("created_at")
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .unique(["email"])
            .create(manager)
            .await?;

        TenantTable::new("roles")
            .col(ColumnDef::new("name").string().not_null())
            .col(
                ColumnDef::new("created_at")
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .unique(["name"])
            .create(manager)
            .await?;

        // Which permissions a role grants; a permission is global, a role is tenant-owned.
        TenantTable::new("role_permissions")
            .col(ColumnDef::new("role_id").uuid().not_null())
            .col(ColumnDef::new("permission_id").uuid().not_null())
            .references("role_id", "roles", OnDelete::Cascade)
            .references_global("permission_id", "permissions", OnDelete::Restrict)
            .unique(["role_id", "permission_id"])
            .create(manager)
            .await?;

        // Many-to-many users <-> roles, composite both ways.
        TenantTable::new("user_roles")
            .col(ColumnDef::new("user_id").uuid().not_null())
            .col(ColumnDef::new("role_id").uuid().not_null())
            .references("user_id", "users", OnDelete::Cascade)
            .references("role_id", "roles", OnDelete::Cascade)
            .unique(["user_id", "role_id"])
            .create(manager)
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in drop_tables(["users", "roles", "role_permissions", "user_roles"]) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}
