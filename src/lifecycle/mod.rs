//! The tenant lifecycle: export one tenant's rows, erase them, certify that none is left, and
//! import an export into another database.
//!
//! Every step is maintenance across tenants, so each one opens its own audited system access
//! ([`TenantDb::system`](crate::TenantDb::system)) with the reason `"<step> tenant <id>"`
//! (`export`, `erase`, `certify erased`, `import`), which writes its row of `system_audit_events`
//! and logs at WARN before anything else happens. A step that refuses (a tenant that is not
//! deleted, a tampered file) has still written that row: the attempt is audited, nothing else is
//! written.
//!
//! The steps are driven by the schema as the catalog reads it at run time
//! ([`tenant_scope_catalog::Catalog`]), not by a list of tables: a **tenant-owned table** is every
//! table of the connection's scope with the columns `tenant_id` and `id` (the library's own
//! `users`, `roles`, `role_permissions`, `user_roles`, `api_keys`, `audit_events`, `jobs`, and the
//! service's), ordered by their foreign keys, parents first. A table a migration adds later is
//! covered without a change here.
//!
//! | step | what it does |
//! |---|---|
//! | [`export`] | writes the tenant's rows of every tenant-owned table as JSON lines, parents first, read page by page (by `id`) in one read-only snapshot, with the global rows they reference and a [`Manifest`] of counts and SHA-256 checksums last |
//! | [`erase`] | deletes a **deleted** tenant's rows, children first, in batches that each commit on their own, so that an interrupted erase is finished by calling it again ([`erase_limited`] stops after a number of batches); the `tenants` row stays as a tombstone |
//! | [`certify_erased`] | counts the tenant's rows in every table with `tenant_id` and returns a [`Certificate`] signed with HMAC-SHA256 under the caller's key; it passes only if every count is 0 and the tenant is deleted |
//! | [`import`] | writes an export into another database of the same schema and backend, keeping every id, in one transaction: a corrupted or tampered file, or a tenant that is already there, changes nothing |
//!
//! ```no_run
//! use tenant_scope::lifecycle;
//! use tenant_scope::provision::{self, TenantStatus};
//! use tenant_scope::{TenantDb, TenantId};
//!
//! # async fn run(db: &TenantDb, target: &TenantDb, tenant: TenantId, key: &[u8])
//! # -> tenant_scope::Result<()> {
//! // Keep a copy, move it elsewhere...
//! let mut file = Vec::new();
//! let manifest = lifecycle::export(db, tenant, &mut file).await?;
//! lifecycle::import(target, file.as_slice()).await?;
//!
//! // ...then delete it here and prove that nothing is left.
//! let system = db.system("offboard a tenant").await?;
//! provision::set_status(&system, tenant, TenantStatus::Deleted).await?;
//! drop(system);
//! lifecycle::erase(db, tenant, 500).await?;
//! let certificate = lifecycle::certify_erased(db, tenant, key).await?;
//! assert!(certificate.passed());
//! println!("{certificate}");
//! # let _ = manifest; Ok(()) }
//! ```
//!
//! docs/lifecycle.md describes the file format, the guarantees and their tests, and what is not
//! covered.

mod certify;
mod codec;
mod erase;
mod export;
mod format;
mod graph;
mod import;

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{AccessMode, ConnectionTrait, DatabaseConnection, DbBackend, IsolationLevel};
use tenant_scope_catalog::Catalog;

use crate::contract::{ID_COLUMN, SLUG_COLUMN, STATUS_COLUMN, TENANTS_TABLE};
use crate::db::SystemDb;
use crate::error::{Error, Result};
use crate::exec::{Pool, Tx};
use crate::tenant::TenantId;

pub use certify::{Certificate, certify_erased};
pub use erase::{EraseReport, erase, erase_limited};
pub use export::export;
pub use format::{FORMAT, FORMAT_VERSION, Manifest, TableSummary, TenantRecord};
pub use import::import;

/// The number of rows of one table: what [`erase`] deleted, or what [`certify_erased`] counted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableCount {
    /// The table.
    pub table: String,
    /// The number of rows.
    pub rows: u64,
}

impl TableCount {
    fn new(table: &str, rows: u64) -> TableCount {
        TableCount {
            table: table.to_owned(),
            rows,
        }
    }
}

/// The reason of a step's system access: `"<step> tenant <id>"`.
fn reason(step: &str, tenant: TenantId) -> String {
    format!("{step} tenant {tenant}")
}

/// The pool of a system access made by [`crate::TenantDb::system`] (always a pool, never inside a
/// transaction).
fn pool<'s>(system: &'s SystemDb<'_>) -> Result<&'s DatabaseConnection> {
    system.connection().ok_or_else(no_pool)
}

fn no_pool() -> Error {
    Error::Config("the lifecycle steps need system access on a pool, not in a transaction".into())
}

/// The catalog of the connection's scope, without the PostgreSQL security model (not needed here).
async fn read_catalog<C: ConnectionTrait>(conn: &C) -> Result<Catalog> {
    Catalog::reader()
        .without_security()
        .read(conn)
        .await
        .map_err(|e| Error::Config(format!("reading the schema: {e}")))
}

/// The `tenants` row of `tenant` as a [`TenantRecord`], `None` if there is none.
async fn tenant_record<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> Result<Option<TenantRecord>> {
    let mut stmt = Query::select();
    stmt.columns([ID_COLUMN, "name", SLUG_COLUMN, STATUS_COLUMN, "created_at"])
        .from(TENANTS_TABLE)
        .and_where(Expr::col(ID_COLUMN).eq(tenant));
    let rows = conn.query_all(&stmt).await.map_err(Error::from_db)?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let get = Error::from_db;
    Ok(Some(TenantRecord {
        id: row.try_get("", ID_COLUMN).map_err(get)?,
        name: row.try_get("", "name").map_err(get)?,
        slug: row.try_get("", SLUG_COLUMN).map_err(get)?,
        status: row.try_get("", STATUS_COLUMN).map_err(get)?,
        created_at: row.try_get("", "created_at").map_err(get)?,
    }))
}

/// A transaction of a lifecycle step on its system access's pool ([`Pool::begin_system`]): with
/// `snapshot`, a read-only one that sees one snapshot of the database (PostgreSQL `REPEATABLE
/// READ, READ ONLY`; MySQL's default `REPEATABLE READ`; SQLite's transactions always do). Its
/// statements run through [`Exec::Tx`], so that on MySQL each one completes even if the step is
/// dropped midway (see `crate::exec`); a statement that failed makes [`Tx::commit`] roll back and
/// say so; dropped, it rolls back.
async fn begin(system: &SystemDb<'_>, snapshot: bool) -> Result<Tx> {
    let pool: &Pool = system.pool().ok_or_else(no_pool)?;
    let (isolation, access) = match pool.conn().get_database_backend() {
        DbBackend::Postgres | DbBackend::MySql if snapshot => (
            Some(IsolationLevel::RepeatableRead),
            Some(AccessMode::ReadOnly),
        ),
        _ => (None, None),
    };
    pool.begin_system(isolation, access).await
}
