//! `tenant-scope generate`: SeaORM entities from the live schema, with tenant scoping built in.
//!
//! [`generate`] reads the database's catalog (`tenant_scope_catalog::Catalog::read_with_types`: the model
//! `tenant-scope check` and the adopt steps read, with each column's type read through sea-schema), in the one
//! scope every tool reads (PostgreSQL `current_schema()`, the MySQL / MariaDB database of the URL, or the SQLite
//! file), gives its tables to sea-orm-codegen (compact format, serde, `DateTimeUtc` timestamps, a `lib.rs` and a
//! `prelude.rs`; or a `mod.rs` with [`Layout::Module`]) and then adapts its output to tenant-scope:
//!
//! - a table with a `tenant_id` column is **tenant-owned**: its `tenant_id` is typed [`TenantId`](tenant_scope::TenantId)
//!   and the entity implements [`TenantScoped`](tenant_scope::TenantScoped); the table that `tenant_id` references (the
//!   tenants table, found from the foreign keys) gets `id: TenantId`;
//! - `tenants`, and a table named in [`GenerateOptions::global`], implements [`Global`](tenant_scope::Global);
//! - the library's audit log of system access, `system_audit_events`
//!   ([`SYSTEM_AUDIT_TABLE`](tenant_scope::contract::SYSTEM_AUDIT_TABLE)), implements neither unless declared global:
//!   only `db.system(..)` can query it;
//! - any other table (except `seaql_migrations`, always ignored) is an error that names it, and nothing is
//!   generated ([`GenerateError::NotTenantScoped`]);
//! - many-to-many relations (`Related` with `via`) are emitted only for real link tables: a table whose every
//!   column belongs to its primary key or to a foreign key, with exactly two foreign keys besides the one to the
//!   tenants table. (sea-orm-codegen's own rule, "two relations and a two-column primary key", matches every
//!   `(tenant_id, id)` table with one child.)
//! - which table is which is the catalog's classification (`tenant_scope_catalog::Tenancy`), the same as
//!   `tenant-scope check`'s; the primary key is read in key order, so a table whose `tenant_id` column is not
//!   its first column generates like any other;
//! - the tables are normalised so that the three backends give byte-identical files (see below).
//!
//! # The same files from every backend
//! The reference schema (`migration/`) gives exactly `entity/src` on SQLite, PostgreSQL and MySQL / MariaDB
//! (tests/generate.rs), and a table of most column types gives exactly `tests/fixtures/widgets.rs` on all three
//! (tests/types.rs). The catalog's `normalize` (`tenant_scope_catalog::normalize`, where the table is) makes the
//! backends' spellings of one type the same before codegen sees the tables:
//! - MySQL: `binary(16)` is a `Uuid` and `tinyint(1)` a `bool`, which is how sea-query writes those types there.
//!   (A `binary(16)` column that is not a UUID would be typed `Uuid` too.) MariaDB's `JSON` (a `LONGTEXT` with a
//!   `json_valid` check) is `Json`, not an ignored `String`.
//! - Every backend: a timestamp with time zone (PostgreSQL `timestamptz`, SQLite `timestamp_with_timezone_text`,
//!   MySQL `timestamp`) is `DateTimeUtc`; JSON and JSONB are `Json`; every binary type (`bytea`, `blob`,
//!   `binary(n)`, `varbinary(n)`) is `Vec<u8>` with `column_type = "VarBinary(StringLen::None)"`. SQLite's
//!   `timestamp_text` is a `DateTime`, as PostgreSQL's `timestamp`.
//! - SQLite: an inline `CONSTRAINT name UNIQUE (..)` is reported by SQLite as an unnamed automatic index; its name
//!   is read back from the table's SQL, since codegen names a composite `unique_key` after it.
//!
//! What the databases do not keep, so it cannot be made the same (tests/types.rs pins it): an `integer()` column is
//! SQLite's 64-bit `INTEGER` (`i64`) and a 32-bit integer elsewhere (`i32`); MySQL writes `timestamp()` like
//! `timestamp_with_time_zone()` (`DateTimeUtc`), PostgreSQL and SQLite do not (`DateTime`). Use `big_integer()`
//! and `timestamp_with_time_zone()` (or `date_time()`) for one entity on every backend. Left as the backends
//! report them, because they do not change the generated code: string lengths, index and foreign key names,
//! MySQL's extra foreign-key indexes. Not covered: enums (each backend has its own), decimals without a precision
//! (MySQL gives them `(10, 0)`).
//!
//! The files are formatted with `rustfmt` (edition 2024; the `RUSTFMT` environment variable overrides the
//! program), which must be installed, like for `sea-orm-cli generate entity`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tenant_scope_cli::codegen::{GenerateOptions, generate};
//!
//! let generated = generate(&GenerateOptions {
//!     database_url: "postgres://postgres@127.0.0.1:5432/app".into(),
//!     global: vec!["tenants".into(), "permissions".into()],
//!     ..GenerateOptions::default()
//! })
//! .await?;
//! generated.write_to(std::path::Path::new("entity/src"))?;
//! # Ok(()) }
//! ```

mod plan;
mod render;
mod statement;

use std::{
    collections::BTreeMap,
    fmt, io,
    path::{Path, PathBuf},
};

use sea_orm::{ConnectOptions, Database};
use sea_orm_codegen::{
    BannerVersion, BigIntegerType, DateTimeCrate, EntityFormat, EntityTransformer,
    EntityWriterContext, WithPrelude, WithSerde,
};
use tenant_scope_catalog::{Backend, Catalog, CatalogError};

/// What to generate from.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct GenerateOptions {
    /// The database to introspect: `postgres://..` (its `current_schema()`), `mysql://../DATABASE`, or
    /// `sqlite://PATH`.
    pub database_url: String,
    /// Tables declared deliberately not tenant-owned (they get [`Global`](tenant_scope::Global)), besides
    /// `tenants`, which always is (listing it is allowed).
    pub global: Vec<String>,
    /// Whether the files are a crate's sources (`lib.rs`) or a module of a service's crate (`mod.rs`).
    pub layout: Layout,
}

/// How the generated files are laid out: the entity files and `prelude.rs` are the same either way (they
/// refer to each other through `super::`); only the root file differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Layout {
    /// The sources of an entity crate of their own: the root is `lib.rs` (the reference service's `entity/`).
    #[default]
    Crate,
    /// A module of the service's own crate: the root is `mod.rs`, for `mod entities;` next to a
    /// `src/entities/` directory written by `generate --module --output src/entities`.
    Module,
}

impl Layout {
    /// The root file's name: `lib.rs` or `mod.rs`.
    pub fn root_file(self) -> &'static str {
        match self {
            Layout::Crate => "lib.rs",
            Layout::Module => "mod.rs",
        }
    }
}

impl fmt::Debug for GenerateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("GenerateOptions")
            .field("database_url", &"..")
            .field("global", &self.global)
            .field("layout", &self.layout)
            .finish()
    }
}

/// The generated entity crate sources: file path (relative to the output directory) -> contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// Every file, sorted by path: one per table, the root (`lib.rs` or `mod.rs`, see [`Layout`]) and
    /// `prelude.rs`.
    pub files: BTreeMap<PathBuf, String>,
}

impl Generated {
    /// Writes every file into `dir` (created if missing), overwriting files of the same name. Other files in
    /// `dir` are left alone.
    pub fn write_to(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for (path, contents) in &self.files {
            let path = dir.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, contents)?;
        }
        Ok(())
    }
}

/// Why nothing was generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The URL's scheme is not `postgres`, `postgresql`, `mysql`, `mariadb` or `sqlite`.
    #[error("unsupported database URL: expected postgres://, mysql:// or sqlite://")]
    UnsupportedUrl,
    /// A MySQL URL without a database name.
    #[error("the MySQL URL names no database (mysql://USER@HOST:PORT/DATABASE)")]
    NoDatabaseInUrl,
    /// The database could not be reached.
    #[error("could not connect to the database: {0}")]
    Connect(String),
    /// Schema discovery failed.
    #[error("could not read the database schema: {0}")]
    Discover(String),
    /// The database has no table (other than the migration table): is it migrated?
    #[error("the database has no tables (is it migrated?)")]
    NoTables,
    /// Tables without a `tenant_id` column that are not declared global (sorted). Nothing is generated.
    #[error(
        "{} no `tenant_id` column and {} not declared global: {}; give {} a `tenant_id` column, or declare {} \
         deliberately global (`--global {}`)",
        if .0.len() == 1 { "table has" } else { "tables have" },
        if .0.len() == 1 { "is" } else { "are" },
        quoted(.0),
        if .0.len() == 1 { "it" } else { "each" },
        if .0.len() == 1 { "it" } else { "them" },
        .0.join(",")
    )]
    NotTenantScoped(Vec<String>),
    /// Tables declared global that are not in the schema (sorted).
    #[error("declared global but not in the schema: {}", quoted(.0))]
    UnknownGlobal(Vec<String>),
    /// Tables declared global that have a `tenant_id` column (sorted).
    #[error("declared global but tenant-owned (has a `tenant_id` column): {}", quoted(.0))]
    GlobalWithTenantColumn(Vec<String>),
    /// A table the generated impls need an `id` column of (tenant-owned or global) has none, or a tenant-owned
    /// table's `id` or `tenant_id` is not a UUID.
    #[error("table `{table}`: {problem}")]
    Shape {
        /// The table.
        table: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The `tenant_id` columns do not reference exactly one table's `id`.
    #[error("cannot tell the tenants table: {0}")]
    TenantsTable(String),
    /// sea-orm-codegen failed, or its output was not what this generator understands.
    #[error("code generation failed: {0}")]
    Codegen(String),
    /// `rustfmt` could not be run or rejected the generated code.
    #[error("rustfmt failed: {0} (is rustfmt installed? `rustup component add rustfmt`)")]
    Rustfmt(String),
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Introspects the database at `options.database_url` and generates the entity crate sources.
///
/// Nothing is written: call [`Generated::write_to`] with the result. Fails, generating nothing, when a table
/// has no `tenant_id` column and is not in `options.global` (see [`GenerateError::NotTenantScoped`]).
pub async fn generate(options: &GenerateOptions) -> Result<Generated, GenerateError> {
    Backend::from_url(&options.database_url).map_err(|_| GenerateError::UnsupportedUrl)?;
    let mut connect = ConnectOptions::new(options.database_url.clone());
    connect.sqlx_logging(false).max_connections(2);
    let db = Database::connect(connect)
        .await
        .map_err(|e| GenerateError::Connect(e.to_string()))?;
    let read = Catalog::read_with_types(&db, &Catalog::reader().without_security()).await;
    let _ = db.close().await;
    let catalog = read.map_err(|e| match e {
        CatalogError::NoScope if Backend::from_url(&options.database_url) == Ok(Backend::MySql) => {
            GenerateError::NoDatabaseInUrl
        }
        other => GenerateError::Discover(other.to_string()),
    })?;
    generate_from_catalog(&catalog, &options.global, options.layout)
}

/// The part of [`generate`] after reading the catalog.
fn generate_from_catalog(
    catalog: &Catalog,
    global: &[String],
    layout: Layout,
) -> Result<Generated, GenerateError> {
    if catalog
        .tables
        .keys()
        .all(|t| t == tenant_scope::contract::MIGRATIONS_TABLE)
    {
        return Err(GenerateError::NoTables);
    }
    let plan = plan::Plan::new(catalog, global)?;
    let tables = plan
        .kinds
        .keys()
        .map(|name| statement::statement(&catalog.tables[name]))
        .collect::<Result<Vec<_>, _>>()?;
    let context = EntityWriterContext::new(
        EntityFormat::Compact,
        WithPrelude::All,
        WithSerde::Both,
        false,
        DateTimeCrate::Chrono,
        BigIntegerType::default(),
        None,
        layout == Layout::Crate,
        false,
        false,
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        false,
        true,
        BannerVersion::Patch,
    );
    let output = EntityTransformer::transform(tables)
        .map_err(|e| GenerateError::Codegen(e.to_string()))?
        .generate(&context);
    let files = render::render(&plan, output.files, layout)?;
    Ok(Generated { files })
}
