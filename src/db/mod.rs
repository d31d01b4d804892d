//! [`TenantDb`], the only way into the database, and the handles it gives out, one module each:
//!
//! | module | handle | reaches |
//! |---|---|---|
//! | `scope` | [`TenantScope`] | one verified tenant's rows |
//! | `bulk` | [`ScopedUpdate`], [`ScopedDelete`] | many rows of one tenant |
//! | `transaction` | [`TenantTransaction`] | one tenant, several statements, atomically |
//! | `global` | [`GlobalDb`] | the global entities, read-only |
//! | `system` | [`SystemDb`] | every tenant, audited |
//! | `options` | [`TenantDbOptions`] | how to connect, and what is checked before serving |
//!

//! Verifying a caller, the one way to a [`TenantContext`], is `crate::verify`'s.

mod bulk;
mod global;
mod insert;
mod options;
mod pooler;
mod scope;
mod system;
mod transaction;

pub use bulk::{ScopedDelete, ScopedUpdate};
pub use global::GlobalDb;
pub use options::{DEFAULT_TENANT_WAIT, TenantDbOptions};
pub use scope::TenantScope;
pub use system::SystemDb;
pub use transaction::{BoxFuture, TenantTransaction};

use crate::error::Result;
use crate::exec::{Exec, Pool};
use crate::tenant::TenantContext;
use options::foreign_keys_on;
use sea_orm::{ActiveModelTrait, ConnectOptions, DbBackend, EntityTrait};

/// The model of an active model's entity.
pub(crate) type ModelOf<A> = <<A as ActiveModelTrait>::Entity as EntityTrait>::Model;

/// The database, wrapped so that tenant-owned rows are reachable only through a verified
/// [`TenantContext`].
///
/// `TenantDb` does not implement SeaORM's `ConnectionTrait` and never hands one out, so
/// `Entity::find().all(&db)` does not compile. Every query starts from a handle:
///
/// - [`TenantDb::scope`]: one tenant, from a verified context — the everyday handle;
/// - [`TenantDb::transaction`] / [`TenantDb::begin`]: one tenant, several statements, atomically;
/// - [`TenantDb::global`]: read-only access to entities that are not tenant-owned ([`Global`](crate::Global));
/// - [`TenantDb::system`]: the explicit, logged and audited escape hatch for maintenance across
///   tenants.
///
/// On PostgreSQL every operation of a tenant runs in a transaction that first sets
/// `tenant_scope.tenant_id` (transaction-local), the setting the row level security policies of
/// `tenant_scope_schema::rls` read; see docs/postgres.md.
///
/// It is cheap to clone (the pools are shared).
#[derive(Clone, Debug)]
pub struct TenantDb {
    pub(super) app: Pool,
    /// The connection of [`TenantDb::system`]; on PostgreSQL it must be configured explicitly.
    pub(super) system: Option<Pool>,
}

impl TenantDb {
    /// Connects to `url` (`sqlite://…`, `postgres://…`, `mysql://…`) with the default options; see
    /// [`TenantDbOptions`] for a system connection and the self-check.
    ///
    /// On SQLite it verifies that foreign keys are enforced (`PRAGMA foreign_keys`), since the
    /// composite foreign keys are what reject a cross-tenant reference; it refuses to connect if they
    /// are off. On PostgreSQL it runs the [self-check](crate::Risk) and refuses to serve if the role or the
    /// schema would let row level security be bypassed.
    pub async fn connect(url: &str) -> Result<Self> {
        let mut options = ConnectOptions::new(url.to_owned());
        options.sqlx_logging(false);
        TenantDbOptions::new(options).connect().await
    }

    /// Connects with SeaORM connection options (pool size, timeouts, logging); otherwise like
    /// [`TenantDb::connect`].
    pub async fn connect_with(options: ConnectOptions) -> Result<Self> {
        TenantDbOptions::new(options).connect().await
    }

    /// Options for connecting: a separate system connection, and risks to accept.
    ///
    /// ```no_run
    /// # async fn f() -> tenant_scope::Result<()> {
    /// use tenant_scope::TenantDb;
    ///
    /// let db = TenantDb::options("postgres://tenant_scope_app@db/app")
    ///     // The connection `db.system(reason)` uses: a role that may cross tenants (BYPASSRLS).
    ///     .system("postgres://tenant_scope_system@db/app")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn options(app: impl Into<ConnectOptions>) -> TenantDbOptions {
        TenantDbOptions::new(app)
    }

    /// The database backend.
    pub fn backend(&self) -> DbBackend {
        self.app.conn().get_database_backend()
    }

    /// The most connections of the application's pool one tenant may hold at once
    /// ([`TenantDbOptions::per_tenant_connections`]); `None` without a cap.
    pub fn per_tenant_cap(&self) -> Option<usize> {
        self.app.tenant_cap()
    }

    /// Whether foreign keys are enforced on a connection of the pool (always true on PostgreSQL and
    /// MySQL/InnoDB; a per-connection setting on SQLite).
    pub async fn foreign_keys_enforced(&self) -> Result<bool> {
        foreign_keys_on(self.app.conn()).await
    }

    /// The handle for one verified tenant.
    pub fn scope<'a>(&'a self, ctx: &'a TenantContext) -> TenantScope<'a> {
        TenantScope {
            exec: Exec::Pool(&self.app),
            ctx,
        }
    }

    /// Read-only access to [`Global`](crate::Global) entities (tables that are deliberately not tenant-owned).
    pub fn global(&self) -> GlobalDb<'_> {
        GlobalDb::new(Exec::Pool(&self.app))
    }

    /// Where the application's operations run: for lookups of the HTTP resolver.
    #[cfg(feature = "axum")]
    pub(crate) fn app_exec(&self) -> Exec<'_> {
        Exec::Pool(&self.app)
    }

    /// The application's pool: for the verifiers' lookups (see [`TenantDb::verify`]).
    pub(crate) fn app_pool(&self) -> &Pool {
        &self.app
    }

    /// **Test only** (feature `testing`): the same database with the first wall down: the scoped
    /// operations of [`TenantScope`] (`find`, `get`, `update`, `delete`, outside a transaction)
    /// no longer add `tenant_id = <tenant>`, so row level security alone keeps tenants apart. The
    /// test kit's differential mode compares it with the library as it is, to show a gap in the
    /// policies (`tenant_scope::testing::check_entity_differential`). Logged at WARN.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) on SQLite and MySQL, where nothing else would stand
    /// between tenants.
    #[cfg(feature = "testing")]
    pub fn without_app_filter(&self) -> crate::Result<TenantDb> {
        if self.backend() != DbBackend::Postgres {
            return Err(crate::Error::Config(
                "without_app_filter is for PostgreSQL, where row level security is the other \
                 wall; on this backend nothing would keep tenants apart"
                    .into(),
            ));
        }
        tracing::warn!(
            target: "tenant_scope::testing",
            "a TenantDb without the application's tenant filter (test kit, differential mode)"
        );
        let mut app = self.app.clone();
        app.app_filter = false;
        Ok(TenantDb {
            app,
            system: self.system.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>() {}

    #[test]
    fn handles_are_send() {
        is_send::<TenantDb>();
        is_send::<TenantScope<'static>>();
    }
}
