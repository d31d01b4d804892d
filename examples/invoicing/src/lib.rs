//! A second example service, on a schema that is not the reference schema: invoicing (customers,
//! products, invoices, invoice lines) as a single-tenant application had it, with integer ids the
//! database assigns, made multi-tenant with tenant-scope.
//!
//! The path an adopter follows, each step a module (docs/bring-your-own-schema.md walks through it):
//!
//! 1. [`schema`]: the legacy schema and the library's tables as migrations, then the four adopt
//!    steps (every legacy row to the default tenant; keys `(tenant_id, id)`), then row level security
//!    on PostgreSQL;
//! 2. [`entities`]: generated from the adopted database by `tenant-scope generate --module --output
//!    examples/invoicing/src/entities --global tenants,permissions`, byte for byte the same from
//!    SQLite, PostgreSQL and MySQL (the tests regenerate them on every backend and compare);
//! 3. [`idp`]: the identity provider (here a stand-in with a test-only key) whose JWTs the service
//!    verifies with the built-in `JwtVerifier`;
//! 4. [`app`]: the axum service; [`seed`]: the example's data.
//!
//! `cargo run -p invoicing` serves it over a new SQLite file with no setup.

#![forbid(unsafe_code)]

pub mod app;
pub mod entities;
pub mod idp;
pub mod schema;
pub mod seed;

/// docs/bring-your-own-schema.md, compiled: its Rust blocks are doctests of this crate.
#[doc = include_str!("../../../docs/bring-your-own-schema.md")]
pub mod walkthrough {}

// tenant-scope: allow(connection-type) setup as the schema owner (migrate, adopt); the service itself gets only the TenantDb
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use tenant_scope::{TenantDb, TenantId};

/// The name of the adoption's default tenant, which receives every legacy row.
pub const DEFAULT_TENANT_NAME: &str = "Acme (pre-tenancy data)";

/// Any error of the example's setup (migrating, adopting, connecting, provisioning).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The legacy database: the legacy schema and its rows, and the library's tables (as the schema
/// owner, on `owner`).
///
/// # Errors
///
/// The database's error.
// tenant-scope: allow(connection-type) setup as the schema owner (migrate, adopt); the service itself gets only the TenantDb
pub async fn legacy_database(owner: &DatabaseConnection) -> Result<(), BoxError> {
    schema::Migrator::up(owner, None).await?;
    seed::legacy(owner).await?;
    Ok(())
}

/// Adopts the legacy tables for `default_tenant` and secures them ([`schema::adopt`],
/// [`schema::secure`]).
///
/// # Errors
///
/// The adopt step's error, or the database's.
// tenant-scope: allow(connection-type) setup as the schema owner (migrate, adopt); the service itself gets only the TenantDb
pub async fn adopt(owner: &DatabaseConnection, default_tenant: TenantId) -> Result<(), BoxError> {
    schema::adopt(owner, &schema::plan(default_tenant, DEFAULT_TENANT_NAME)).await?;
    schema::secure(owner).await?;
    Ok(())
}

/// The library on the adopted database as the service runs it: the application connection on
/// `app_url` (on PostgreSQL the unprivileged application role, which row level security applies
/// to) and the owner's on `owner_url` for system access (provisioning).
///
/// # Errors
///
/// The library's connect error (the self-check's refusal included).
pub async fn connect(app_url: &str, owner_url: &str) -> Result<TenantDb, BoxError> {
    let mut app = ConnectOptions::new(app_url.to_owned());
    app.sqlx_logging(false);
    let mut owner = ConnectOptions::new(owner_url.to_owned());
    owner.sqlx_logging(false);
    Ok(TenantDb::options(app).system(owner).connect().await?)
}

/// Everything at once, on an empty database: [`legacy_database`], [`adopt`], [`connect`] and
/// [`seed::provision`]. Returns the library and the two tenants.
///
/// # Errors
///
/// As the steps.
pub async fn setup(app_url: &str, owner_url: &str) -> Result<(TenantDb, seed::Tenants), BoxError> {
    // tenant-scope: allow(raw-connection) setup as the schema owner (migrate, adopt); the service itself gets only the TenantDb
    let owner = Database::connect(owner_url).await?;
    legacy_database(&owner).await?;
    let acme = TenantId::new();
    adopt(&owner, acme).await?;
    owner.close().await?;
    let db = connect(app_url, owner_url).await?;
    let tenants = seed::provision(&db, acme).await?;
    Ok((db, tenants))
}
