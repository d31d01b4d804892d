//! API keys, stored hashed: a library table (`tenant_scope_schema::api_keys_table`).
//!
//! A key string embeds its tenant and its row id, so a key is looked up by primary key
//! `(tenant_id, id)` and its hash compared in constant time; no index on the hash is needed (and a
//! global one would not be tenant-led). `key_hash` is the lowercase hex SHA-256 of the secret
//! (64 characters, portable to every backend); `prefix` is a short, non-secret part of the key for
//! display.

use sea_orm_migration::prelude::*;
use tenant_scope_schema::{api_keys_table, drop_tables};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        api_keys_table().create(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for stmt in drop_tables(["api_keys"]) {
            manager.drop_table(stmt).await?;
        }
        Ok(())
    }
}
