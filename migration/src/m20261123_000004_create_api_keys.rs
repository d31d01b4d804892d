//! API keys, stored hashed.
//!
//! A key string embeds its tenant and its row id, so a key is looked up by primary key
//! `(tenant_id, id)` and its hash compared in constant time; no index on the hash is needed (and a
//! global one would not be tenant-led). `key_hash` is the lowercase hex SHA-256 of the secret
//! (64 characters, portable to every backend); `prefix` is a short, non-secret part of the key for
//! display.

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{OnDelete, TenantTable, drop_tables};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        TenantTable::new("api_keys")
            .col(ColumnDef::new("user_id").uuid().not_null())
            .col(ColumnDef::new("name").string().not_null())
            .col(ColumnDef::new("key_hash").string_len(64).not_null())
            .col(ColumnDef::new("prefix").string().not_null())
            .col(
                ColumnDef::new("created_at")
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .col(
                ColumnDef::new("revoked_at")
                    .timestamp_with_time_zone()
                    .null(),
            )
            .references("user_id", "users", OnDelete::Cascade)
            .create(manager)
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in drop_tables(["api_keys"]) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}
