//! The reference schema of tenant-scope, as a `sea-orm-migration` migrator.
//!
//! Three global tables (`tenants`, `permissions`, and `system_audit_events`, the audit log of system
//! access) and the tenant-owned tables of a small service:
//! `users`, `roles`, `role_permissions`, `user_roles`, `projects`, `tasks`, `comments`, `api_keys`,
//! `audit_events` and `jobs` (the library's job queue). Every tenant-owned table is built with
//! [`tenant_scope_schema::TenantTable`], so it has the primary key `(tenant_id, id)`, composite
//! foreign keys to the other tenant-owned tables and only tenant-led unique keys and indexes.
//!
//! ```no_run
//! use migration::{Migrator, MigratorTrait};
//!
//! # async fn run(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), sea_orm_migration::DbErr> {
//! Migrator::up(db, None).await?;
//! # Ok(())
//! # }
//! ```

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_global_tables;
mod m20261123_000002_create_users_and_roles;
mod m20261123_000003_create_projects_tasks_comments;
mod m20261123_000004_create_api_keys;
mod m20261123_000005_create_audit_events;
mod m20261123_000006_row_level_security;
mod m20261123_000007_create_system_audit_events;
mod m20261123_000008_audit_events_append_only;
mod m20261206_000009_create_jobs;

/// The migrator of the reference schema; `migration/src/main.rs` runs it as a CLI.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_global_tables::Migration),
            Box::new(m20261123_000002_create_users_and_roles::Migration),
            Box::new(m20261123_000003_create_projects_tasks_comments::Migration),
            Box::new(m20261123_000004_create_api_keys::Migration),
            Box::new(m20261123_000005_create_audit_events::Migration),
            Box::new(m20261123_000006_row_level_security::Migration),
            Box::new(m20261123_000007_create_system_audit_events::Migration),
            Box::new(m20261123_000008_audit_events_append_only::Migration),
            Box::new(m20261206_000009_create_jobs::Migration),
        ]
    }
}
