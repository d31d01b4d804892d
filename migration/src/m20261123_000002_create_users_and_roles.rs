//! Users, roles, the permissions of a role and the roles of a user: library tables
//! (`tenant_scope_schema::users_table` and its neighbours).

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{
    drop_tables, role_permissions_table, roles_table, user_roles_table, users_table,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        users_table().create(manager).await?;
        roles_table().create(manager).await?;
        // Which permissions a role grants; a permission is global, a role is tenant-owned.
        role_permissions_table().create(manager).await?;
        // Many-to-many users <-> roles, composite both ways.
        user_roles_table().create(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in drop_tables(["users", "roles", "role_permissions", "user_roles"]) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}
