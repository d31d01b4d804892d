//! # tenant-scope-catalog
//!
//! What tenant-scope knows about a live database, read from it once per backend: one model of
//! tables, columns, keys (in key order), unique keys, indexes and foreign keys ([`Catalog`]), and on
//! PostgreSQL of what row level security depends on: policies, the role and its memberships, views
//! and materialized views ([`postgres::Security`]).
//!
//! Every tool that looks at a schema reads this model, so they cannot disagree about it:
//!
//! | reader | what it reads |
//! |---|---|
//! | `TenantDb::connect` (the self-check) | [`postgres::Security`] of the role it connects as |
//! | `tenant-scope check` | [`Catalog::read`], security judged for `--app-role` |
//! | `tenant-scope generate` | `Catalog::read_with_types` (feature `sea-schema`) |
//! | `tenant_scope_schema::adopt` | [`Catalog::reader`] for the plan's tables, also inside its own transactions |
//!
//! The same model carries the rules shared between them: which tables are tenant-owned
//! ([`Catalog::classify`]), and the PostgreSQL row level security rules ([`postgres`]). The
//! names they rely on (the tenant column, the library's own tables, the setting and the policy)
//! are in [`contract`].
//!
//! # The scope
//!
//! One rule, for every tool: **the tables of the connection's current schema**.
//!
//! | backend | scope | how to choose it |
//! |---|---|---|
//! | PostgreSQL | `current_schema()`: the first schema of the `search_path` that exists | the role's or database's `search_path`, or `?options=-c%20search_path%3Dapp` in the URL |
//! | MySQL / MariaDB | `DATABASE()`: the database the URL names | the URL's path |
//! | SQLite | `main`: the database file | the URL |
//!
//! Tables elsewhere are not generated, linted or adopted. On PostgreSQL, row level security is
//! the one exception: its rules ([`postgres`]) look at every table with a `tenant_id` column in
//! every schema but the system ones, because such a table is exposed to the role whether or not
//! it is in the scope.
//!
//! # What is read how
//!
//! Catalog queries (`pg_catalog`, `information_schema`, SQLite's `pragma_*` functions) read the
//! model, through SeaORM's `ConnectionTrait` (so on a pool or inside a transaction): they have what
//! sea-schema does not report (PostgreSQL expression and partial indexes, `ON DELETE SET NULL
//! (column)` lists, the order of a SQLite primary key, SQLite's constraint names, policies, roles,
//! views). sea-schema maps each backend's column types to SeaORM's (`Catalog::read_with_types`),
//! which is what it is made for; the runtime does not build it.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use tenant_scope_catalog::{Catalog, Tenancy};
//!
//! let conn = sea_orm::Database::connect("sqlite://app.db").await?;
//! let catalog = Catalog::read(&conn).await?;
//! let tenancy = catalog.classify(&["permissions"])?;
//! for table in tenancy.tables(Tenancy::TenantOwned) {
//!     let key = &catalog.tables[table].primary_key;
//!     println!("{table}: primary key ({})", key.join(", "));
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod backend;
pub mod contract;
mod id;
mod model;
pub mod postgres;
mod read;
mod sql;
mod tenancy;
#[cfg(feature = "sea-schema")]
mod types;

pub use backend::{Backend, UnsupportedUrl};
pub use id::IdType;
pub use model::{Catalog, Column, EXPRESSION, ForeignKey, Key, RefAction, Table};
pub use read::Reader;
pub use sql::quote_ident;
pub use tenancy::{Classification, Tenancy, TenancyError};
#[cfg(feature = "sea-schema")]
pub use types::normalize;

/// Why a catalog could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The connection is to a backend tenant-scope does not support.
    #[error("unsupported database backend (expected SQLite, PostgreSQL or MySQL/MariaDB)")]
    UnsupportedBackend,
    /// There is no scope to read: on PostgreSQL no schema of the `search_path` exists, or the
    /// MySQL URL names no database.
    #[error(
        "no schema to read: on PostgreSQL no schema of the search_path exists (check search_path), \
         on MySQL the URL names no database (mysql://USER@HOST/DATABASE)"
    )]
    NoScope,
    /// PostgreSQL: the role to judge does not exist.
    #[error("the role `{0}` does not exist")]
    UnknownRole(String),
    /// sea-schema could not read the column types.
    #[error("could not read the column types: {0}")]
    Discovery(String),
    /// A catalog query failed.
    #[error("could not read the catalog: {0}")]
    Db(sea_orm::DbErr),
}
