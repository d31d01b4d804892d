//! Migration helpers that build tenant-owned tables the only way they may be built.
//!
//! Tenant isolation is not only a property of the Rust types: the schema itself makes a
//! cross-tenant reference impossible, on SQLite, PostgreSQL and MySQL/MariaDB alike. The helpers
//! here produce plain sea-query statements ([`TableCreateStatement`], [`IndexCreateStatement`],
//! [`TableDropStatement`]) for a `sea-orm-migration` migration, and every statement they produce
//! follows the conventions below. `tenant-scope check` verifies the same conventions on a migrated
//! database.
//!
//! # The conventions, and why
//!
//! - **Every tenant-owned table leads with `tenant_id`.** [`TenantTable`] adds `tenant_id` and `id`
//!   (both `uuid NOT NULL`; `binary(16)` on MySQL) as the first two columns, makes
//!   `PRIMARY KEY (tenant_id, id)`, and references `tenants (id)` with
//!   `ON DELETE RESTRICT ON UPDATE RESTRICT`. Ids are UUIDv7 made in Rust, so the key is
//!   time-ordered within a tenant and every lookup by key is a lookup on an index that leads with
//!   the tenant.
//! - **Every reference between tenant-owned tables is a composite foreign key**
//!   `(tenant_id, x_id) -> x (tenant_id, id)` ([`TenantTable::references`]). The child's
//!   `tenant_id` is part of the key, so a row can only reference a parent *of its own tenant*:
//!   a task of tenant B that names a project of tenant A has no matching `(B, project)` row and the
//!   database rejects it, exactly as it rejects an id that never existed. No application code has
//!   to remember to check.
//! - **`ON UPDATE RESTRICT` everywhere.** `tenant_id` and `id` never change. An `ON UPDATE CASCADE`
//!   on `tenant_id` would move a whole tree of rows to another tenant with one statement; with
//!   `RESTRICT` the database refuses, and the library also rejects an update that sets `tenant_id`.
//! - **No `ON DELETE SET NULL`.** [`OnDelete`] offers only [`OnDelete::Restrict`] and
//!   [`OnDelete::Cascade`]. On a composite key, `SET NULL` nulls *every* column of the key, so
//!   deleting a parent would set the child's `tenant_id` to `NULL` (or fail on `NOT NULL`): a row
//!   that belongs to no tenant. PostgreSQL 15 can restrict it to a column list
//!   (`SET NULL (assignee_id)`), SQLite and MySQL cannot, so it is not offered; make the column
//!   nullable and clear it in the same transaction as the delete instead.
//! - **Every `UNIQUE` constraint leads with `tenant_id`** ([`TenantTable::unique`],
//!   [`tenant_unique_index`]). A unique constraint over `email` alone would answer tenant A's insert
//!   with "duplicate key" when tenant B already has that email: one tenant would learn another
//!   tenant's data from an error. Per-tenant uniqueness is also what the application means. On MySQL
//!   `INSERT .. ON DUPLICATE KEY UPDATE` fires on *any* unique key, so a global unique key would let
//!   an upsert of one tenant update a row of another; with every unique key tenant-led it cannot.
//! - **Every index on a tenant-owned table leads with `tenant_id`** ([`TenantTable::index`],
//!   [`tenant_index`]). Every query the library runs is filtered by tenant first, so this is the
//!   index it can use; a composite foreign key also gets one automatically (PostgreSQL and SQLite do
//!   not index foreign keys on their own, and the cascade or restrict check on a parent delete
//!   needs it).
//! - **Deterministic names**: `fk_<table>_<column>`, `uq_<table>_<columns>`, `ix_<table>_<columns>`
//!   (see [`foreign_key_name`], [`unique_name`], [`index_name`]), so that tooling, error mapping and
//!   later migrations can refer to a constraint by name. The primary key keeps the backend's name
//!   (`<table>_pkey` on PostgreSQL, `PRIMARY` on MySQL). On SQLite foreign keys are unnamed and
//!   the index of a unique constraint is `sqlite_autoindex_<table>_<n>` (the constraint's name is
//!   kept only in the table's SQL in `sqlite_master`).
//!
//! Foreign keys, the primary key and the unique constraints are all part of the `CREATE TABLE`
//! statement, because SQLite cannot add a constraint to an existing table. Plain indexes cannot be
//! declared inside `CREATE TABLE` on PostgreSQL, so they are separate `CREATE INDEX` statements;
//! [`TenantTable::create`] runs both.
//!
//! # A tenant-owned table
//!
//! ```
//! use sea_orm::sea_query::{ColumnDef, PostgresQueryBuilder};
//! use tenant_scope_schema::{OnDelete, TenantTable};
//!
//! let tasks = TenantTable::new("tasks")
//!     .col(ColumnDef::new("project_id").uuid().not_null())
//!     .col(ColumnDef::new("title").string().not_null())
//!     .references("project_id", "projects", OnDelete::Cascade)
//!     .unique(["project_id", "title"]);
//!
//! assert_eq!(
//!     tasks.build()?.to_string(PostgresQueryBuilder),
//!     [
//!         r#"CREATE TABLE "tasks" ("#,
//!         r#""tenant_id" uuid NOT NULL,"#,
//!         r#""id" uuid NOT NULL,"#,
//!         r#""project_id" uuid NOT NULL,"#,
//!         r#""title" varchar NOT NULL,"#,
//!         r#"PRIMARY KEY ("tenant_id", "id"),"#,
//!         r#"CONSTRAINT "uq_tasks_project_id_title" UNIQUE ("tenant_id", "project_id", "title"),"#,
//!         r#"CONSTRAINT "fk_tasks_tenant_id" FOREIGN KEY ("tenant_id") REFERENCES "tenants" ("id")"#,
//!         r#"ON DELETE RESTRICT ON UPDATE RESTRICT,"#,
//!         r#"CONSTRAINT "fk_tasks_project_id" FOREIGN KEY ("tenant_id", "project_id")"#,
//!         r#"REFERENCES "projects" ("tenant_id", "id") ON DELETE CASCADE ON UPDATE RESTRICT"#,
//!         r#")"#,
//!     ]
//!     .join(" ")
//! );
//! // The unique key above also serves the foreign key: no extra index is needed.
//! assert!(tasks.index_statements().is_empty());
//! # Ok::<(), sea_orm::DbErr>(())
//! ```
//!
//! In a migration, [`TenantTable::create`] runs the `CREATE TABLE` and the `CREATE INDEX`
//! statements, and [`drop_tables`] undoes a migration in reverse order:
//!
//! ```no_run
//! use sea_orm_migration::prelude::*;
//! use tenant_scope_schema::{drop_tables, OnDelete, TenantTable};
//!
//! # #[derive(DeriveMigrationName)]
//! # struct Migration;
//! #[async_trait::async_trait]
//! impl MigrationTrait for Migration {
//!     async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
//!         TenantTable::new("projects")
//!             .col(ColumnDef::new("name").string().not_null())
//!             .unique(["name"])
//!             .create(manager)
//!             .await
//!     }
//!
//!     async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
//!         for stmt in drop_tables(["projects"]) {
//!             manager.drop_table(stmt).await?;
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! # A global table
//!
//! A table that is deliberately not tenant-owned (`tenants`, `permissions`) is plain sea-query:
//! `Table::create()` with an `id` primary key. A tenant-owned table refers to one with
//! [`TenantTable::references_global`], a single-column foreign key. The `tenants` table itself must
//! have an `id` column: [`TenantTable`] references `tenants (id)`.
//!
//! ```
//! use sea_orm::sea_query::{ColumnDef, Index, Table, TableCreateStatement};
//! use tenant_scope_schema::unique_name;
//!
//! let tenants: TableCreateStatement = Table::create()
//!     .table("tenants")
//!     .col(ColumnDef::new("id").uuid().not_null().primary_key())
//!     .col(ColumnDef::new("name").string().not_null())
//!     .col(ColumnDef::new("created_at").timestamp_with_time_zone().not_null())
//!     // A global unique key, on purpose: tenant names are not tenant data.
//!     .index(Index::create().name(unique_name("tenants", ["name"])).unique().col("name"))
//!     .to_owned();
//! ```
//!
//! [`TableCreateStatement`]: sea_orm::sea_query::TableCreateStatement
//! [`IndexCreateStatement`]: sea_orm::sea_query::IndexCreateStatement
//! [`TableDropStatement`]: sea_orm::sea_query::TableDropStatement

#![forbid(unsafe_code)]

pub mod adopt;
pub mod check;
mod index;
mod library;
mod names;
pub mod rls;
mod table;

pub use index::{drop_table, drop_tables, drop_tenant_index, tenant_index, tenant_unique_index};
pub use library::{
    LIBRARY_GLOBAL_TABLES, LIBRARY_TENANT_TABLES, api_keys_table, audit_events_table,
    create_library_tables, drop_library_tables, grant_library_tables, jobs_table,
    permissions_table, role_permissions_table, roles_table, system_audit_table, tenants_table,
    user_roles_table, users_table,
};
pub use names::{foreign_key_name, index_name, unique_name};
pub use table::{OnDelete, TenantTable};
/// The names the schema conventions are about, as the runtime uses them (`tenant_scope::contract`).
pub use tenant_scope::contract::{
    AUDIT_TABLE, ID_COLUMN, JOBS_TABLE, SLUG_COLUMN, STATUS_COLUMN, SYSTEM_AUDIT_TABLE,
    TENANT_ACTIVE, TENANT_COLUMN, TENANT_DELETED, TENANT_SUSPENDED, TENANTS_TABLE,
};

/// The code blocks of docs/schema.md, docs/postgres.md and docs/adopting.md compile as doctests, so
/// they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/schema.md")]
#[doc = include_str!("../../../docs/postgres.md")]
#[doc = include_str!("../../../docs/adopting.md")]
struct DocsDoctests;
