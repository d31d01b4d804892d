//! # tenant-scope
//!
//! Tenant isolation for [SeaORM](https://www.sea-ql.org/SeaORM/) services, enforced three times:
//!
//! 1. **by the compiler** — tenant-owned rows are reachable only through [`Scoped`], made only from a
//!    verified [`TenantContext`], which only a [`TenantVerifier`] produces. [`TenantDb`] is not a
//!    SeaORM connection, so `Entity::find().all(&db)` does not compile, and an id-only
//!    `find_by_id(id)` does not compile either: the primary key is `(TenantId, Id)`;
//! 2. **by the schema** — every reference between tenant-owned tables is a composite foreign key
//!    `(tenant_id, parent_id) -> parent (tenant_id, id)`, so the database itself rejects a
//!    cross-tenant reference (`tenant_scope_schema` builds such tables);
//! 3. **by PostgreSQL Row Level Security** — a second wall under the first two: every operation of a
//!    tenant runs in a transaction that sets `tenant_scope.tenant_id`, the policies of
//!    `tenant_scope_schema::rls` admit only that tenant's rows, and [`TenantDb`] refuses to serve as a role
//!    that could walk around them ([`Risk`]).
//!
//! Cross-tenant access is indistinguishable from absence: another tenant's row is
//! [`Error::NotFound`], exactly like a row that never existed.
//!
//! ```no_run
//! use entity::projects;
//! use sea_orm::{ActiveValue::Set, ColumnTrait};
//! use tenant_scope::{ApiKeyVerifier, TenantDb};
//!
//! # async fn run(api_key: String) -> tenant_scope::Result<()> {
//! let db = TenantDb::connect("sqlite://app.db?mode=rwc").await?;
//! // The only way to a context: a verifier accepts the caller's claim.
//! let ctx = db.verify(&ApiKeyVerifier, api_key).await?;
//! let scope = db.scope(&ctx);
//!
//! // Inserts get the context's tenant; reads are restricted to it.
//! let project = scope
//!     .insert(projects::ActiveModel {
//!         name: Set("Apollo".into()),
//!         created_at: Set(chrono::Utc::now()),
//!         ..Default::default()
//!     })
//!     .await?;
//! let same = scope.get::<projects::Entity>(project.id).await?;
//! let named = scope
//!     .find::<projects::Entity>()
//!     .filter(projects::Column::Name.starts_with("A"))
//!     .all()
//!     .await?;
//! # let _ = (same, named);
//! # Ok(()) }
//! ```
//!
//! See docs/guarantees.md for each guarantee and the test that proves it.
#![forbid(unsafe_code)]

mod audit;
pub mod contract;
mod db;
mod entity;
mod error;
mod exec;
pub mod jobs;
// The axum integration: documented in src/http/mod.rs.
#[cfg(feature = "axum")]
pub mod http;
pub mod lifecycle;
// The test kit: documented in src/testing/mod.rs.
pub mod provision;
mod scoped;
mod self_check;
mod tenant;
#[cfg(feature = "testing")]
pub mod testing;
mod trace;
mod verify;

pub use audit::AuditAction;
pub use db::{
    BoxFuture, DEFAULT_TENANT_WAIT, GlobalDb, ScopedDelete, ScopedUpdate, SystemDb, TenantDb,
    TenantDbOptions, TenantScope, TenantTransaction,
};
pub use entity::{Global, RowId, TenantScoped};
pub use error::{DbError, Error, Result};
pub use scoped::{AllTenants, GlobalOnly, Joinable, OneTenant, ScopeKind, Scoped, ScopedPaginator};
pub use self_check::Risk;
pub use tenant::{Actor, TenantContext, TenantId, TenantSlug};
pub use verify::{
    API_KEYS_WRITE, ApiKeyVerifier, IssuedKey, MembershipVerifier, TenantVerifier, Verified,
    VerifierDb,
};
#[cfg(feature = "jwt")]
pub use verify::{JwtKeys, JwtKeysError, JwtVerifier};

#[doc = include_str!("../docs/guide.md")]
pub mod guide {}

/// The code blocks of the README, docs/http.md and docs/testing.md compile as doctests, so they cannot rot (those of
/// docs/schema.md, docs/postgres.md and docs/adopting.md are doctests of `tenant-scope-schema`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
#[cfg_attr(feature = "axum", doc = include_str!("../docs/http.md"))]
#[cfg_attr(
    all(feature = "testing", feature = "axum"),
    doc = include_str!("../docs/testing.md")
)]
struct ReadmeDoctests;

/// The names a service usually needs, without generically named items.
pub mod prelude {
    pub use crate::{
        ApiKeyVerifier, Error as TenantError, Global, Scoped, TenantContext, TenantDb, TenantId,
        TenantScope, TenantScoped, TenantVerifier,
    };
}
