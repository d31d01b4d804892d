//! [`TenantDbOptions`]: how to connect, and what is checked before serving.

use crate::error::{Error, Result};
use crate::exec::{Pool, Statements, TenantLimiter, acquire_ping_redundant};
use crate::self_check::{self, Risk};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use std::collections::BTreeSet;
use std::time::Duration;

use super::{TenantDb, pooler};

/// How to connect a [`TenantDb`]: the application's connection, the system connection, and the
/// risks of the PostgreSQL self-check you accept. Made by [`TenantDb::options`].
#[derive(Clone, Debug)]
#[must_use = "nothing is connected until `connect` is called"]
pub struct TenantDbOptions {
    app: ConnectOptions,
    system: Option<ConnectOptions>,
    accepted: BTreeSet<Risk>,
    transaction_pooling: Option<bool>,
    tenant_cap: TenantCap,
    tenant_wait: Duration,
}

/// How many of the application pool's connections one tenant may hold at once.
#[derive(Clone, Copy, Debug)]
enum TenantCap {
    /// Half the pool (at least one).
    FairShare,
    /// At most this many.
    Max(u32),
    /// No cap.
    Off,
}

/// How long an operation of a tenant over its cap waits for one of the tenant's own operations to
/// end before it is [`Error::Busy`].
pub const DEFAULT_TENANT_WAIT: Duration = Duration::from_secs(5);

/// sqlx's pool size when none is configured.
const SQLX_DEFAULT_POOL: u32 = 10;

impl TenantDbOptions {
    /// Options for the application's connection: a URL, or SeaORM [`ConnectOptions`] (pool size,
    /// timeouts, statement logging), used as given, with one exception: on PostgreSQL and SQLite
    /// the pool does not ping a connection before handing it out (`test_before_acquire` is
    /// turned off), because the library makes that round trip redundant. On PostgreSQL every
    /// operation begins with a `BEGIN`, which fails on a connection the server closed before
    /// anything ran; the library then takes another connection. A SQLite connection lives in this
    /// process and cannot be closed behind the pool's back. MySQL keeps the ping. (From a URL,
    /// SeaORM's defaults apply; they include sqlx's statement logging, and on SQLite a pool of one
    /// connection.)
    pub fn new(app: impl Into<ConnectOptions>) -> Self {
        Self {
            app: app.into(),
            system: None,
            accepted: BTreeSet::new(),
            transaction_pooling: None,
            tenant_cap: TenantCap::FairShare,
            tenant_wait: DEFAULT_TENANT_WAIT,
        }
    }

    /// The connection [`TenantDb::system`] uses. On PostgreSQL it is required for system access,
    /// and its role must be able to cross tenants (a superuser, or a role with `BYPASSRLS`):
    /// `connect` checks that. On SQLite and MySQL it is optional.
    pub fn system(mut self, system: impl Into<ConnectOptions>) -> Self {
        self.system = Some(system.into());
        self
    }

    /// Serves even though the self-check finds `risk`. Each accepted risk that is present is
    /// logged at WARN when connecting. For development and migrations in progress; a service in
    /// production should accept none.
    pub fn accept_risk(mut self, risk: Risk) -> Self {
        self.accepted.insert(risk);
        self
    }

    /// PostgreSQL: whether the application's connection goes through a pooler in transaction
    /// mode (PgBouncer `pool_mode = transaction`), where one client's transactions may run on
    /// different server connections.
    ///
    /// - `true`: every statement of the library's transactions is sent unnamed (parsed for one
    ///   execution, kept on no server connection), which that mode requires; it costs parsing
    ///   each statement again, one more round trip per statement. The tenant is set per
    ///   transaction (`SET LOCAL`) either way, so it never outlives one, pooler or not.
    /// - `false`: statements are prepared by name and cached per connection (sqlx's default): for
    ///   a direct connection, a pooler in session mode, or a proxy that keeps one server
    ///   connection per client.
    /// - not called (the default): `connect` compares the port the URL names with the port the
    ///   server reports; if they differ, something is in between, and `connect` refuses with an
    ///   [`Error::Config`] that says to choose.
    ///
    /// The system connection is SeaORM's, whose statements are always prepared by name: connect
    /// it to the server directly, or through a pooler in session mode (`connect` logs a WARN when
    /// it does not reach the server directly).
    pub fn transaction_pooling(mut self, enabled: bool) -> Self {
        self.transaction_pooling = Some(enabled);
        self
    }

    /// The most connections of the application's pool that one tenant may hold at once, so that
    /// no tenant can take the whole pool from the others (default: half the pool, at least one).
    ///
    /// Every operation of a tenant (a read, a write with its audit event, a transaction from
    /// [`TenantDb::begin`]) holds one until it ends, however it ends: an error or a cancelled
    /// future gives it back. One over the cap waits up to [`per_tenant_wait`](Self::per_tenant_wait)
    /// for one of the tenant's own operations to end, then is [`Error::Busy`] (HTTP 429 with
    /// `Retry-After`). Operations inside a transaction use the transaction's. Other tenants are
    /// not held up, and the answer says nothing about them. System access is not capped, and
    /// neither are a verifier's lookups ([`TenantDb::verify`]): a claim is not proven yet, so
    /// its lookups are not charged to the tenant it names (bad credentials naming a tenant
    /// cannot take that tenant's share; limit unauthenticated traffic by client address in
    /// front of the service).
    ///
    /// The cap bounds connections, not the server's CPU: to keep a flooding tenant from slowing the
    /// others' queries, size it to what one tenant may take of the *server* (about its cores)
    /// rather than of the pool (docs/benchmarks.md, "the noisy neighbour").
    ///
    /// An operation that needs a second connection of the same tenant while it holds one (a
    /// `db.scope(&ctx)` call inside `db.transaction(&ctx, ..)` instead of the transaction's own
    /// scope) counts twice.
    pub fn per_tenant_connections(mut self, max: u32) -> Self {
        self.tenant_cap = TenantCap::Max(max.max(1));
        self
    }

    /// No cap on one tenant's connections: a tenant may take the whole pool.
    pub fn without_per_tenant_cap(mut self) -> Self {
        self.tenant_cap = TenantCap::Off;
        self
    }

    /// How long an operation over its tenant's cap waits (default [`DEFAULT_TENANT_WAIT`]).
    pub fn per_tenant_wait(mut self, wait: Duration) -> Self {
        self.tenant_wait = wait;
        self
    }

    /// Connects, and checks what can be checked before serving:
    ///
    /// - SQLite: foreign keys are enforced on the connection ([`Error::Config`] if not);
    /// - PostgreSQL: the self-check of the application's role and schema ([`Risk`]), whether a
    ///   pooler is in between ([`TenantDbOptions::transaction_pooling`]), and that the system
    ///   connection's role (if configured) may cross tenants.
    ///
    /// A connection that cannot be made is an [`Error::Config`] with the driver's reason (no
    /// tenant's data is in play yet).
    pub async fn connect(self) -> Result<TenantDb> {
        let mut app = self.app;
        if acquire_ping_redundant(app.get_url()) {
            app.test_before_acquire(false);
        }
        let app_url = app.get_url().to_owned();
        let pool_size = app.get_max_connections().unwrap_or(SQLX_DEFAULT_POOL);
        let app = Database::connect(guard_mysql_pool(app))
            .await
            .map_err(|e| pooler::connect_error("the application's", &e))?;
        check_foreign_keys(&app).await?;
        let statements = if app.get_database_backend() == DbBackend::Postgres {
            pooler::check_app(&app, &app_url, &self.accepted, self.transaction_pooling).await?
        } else {
            Statements::Named
        };
        let system = match self.system {
            Some(options) => {
                let system_url = options.get_url().to_owned();
                let system = Database::connect(guard_mysql_pool(options))
                    .await
                    .map_err(|e| pooler::connect_error("the system", &e))?;
                if system.get_database_backend() != app.get_database_backend() {
                    return Err(Error::Config(
                        "the system connection is to a different kind of database than the \
                         application's"
                            .into(),
                    ));
                }
                check_foreign_keys(&system).await?;
                if system.get_database_backend() == DbBackend::Postgres {
                    self_check::system_role_crosses_tenants(&system).await?;
                    pooler::check_system(&system, &system_url).await;
                }
                Some(Pool::system(system))
            }
            None => None,
        };
        let cap = match self.tenant_cap {
            TenantCap::FairShare => Some(pool_size / 2),
            TenantCap::Max(max) => Some(max),
            TenantCap::Off => None,
        };
        let mut app = Pool::app(app, statements);
        if let Some(cap) = cap {
            app = app.with_limiter(TenantLimiter::new(cap, self.tenant_wait));
        }
        Ok(TenantDb { app, system })
    }
}

/// How long a MySQL connection returned to the pool may take to answer a ping before it is closed.
const MYSQL_RELEASE_PING: std::time::Duration = std::time::Duration::from_secs(2);

/// On MySQL, a pool that closes a returned connection unless it answers a ping in time.
///
/// sqlx-mysql 0.9 is not cancel-safe while reading a packet: an operation dropped between a
/// packet's header and its body (a timeout, a client that went away) leaves the connection out of
/// step with the server. sqlx's own release ping then waits forever, so the pool loses the
/// connection for good, and a connection that did get back could read the rest of another query's
/// answer. This check runs before that ping: a connection that does not answer is closed, never
/// reused (tests/pool_safety.rs cancels operations mid-statement to check it). It is installed
/// with SeaORM's `map_sqlx_mysql_pool_opts`, replacing a function set there.
fn guard_mysql_pool(mut options: ConnectOptions) -> ConnectOptions {
    if tenant_scope_catalog::Backend::from_url(options.get_url())
        == Ok(tenant_scope_catalog::Backend::MySql)
    {
        options.map_sqlx_mysql_pool_opts(|pool| {
            pool.after_release(|conn, _| {
                Box::pin(async move {
                    match tokio::time::timeout(
                        MYSQL_RELEASE_PING,
                        sea_orm::sqlx::Connection::ping(conn),
                    )
                    .await
                    {
                        Ok(Ok(())) => Ok(true),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(sea_orm::sqlx::Error::Protocol(
                            "a returned connection did not answer a ping in time; closed".into(),
                        )),
                    }
                })
            })
        });
    }
    options
}

async fn check_foreign_keys(conn: &DatabaseConnection) -> Result<()> {
    if foreign_keys_on(conn).await? {
        Ok(())
    } else {
        Err(Error::Config(
            "SQLite foreign keys are off on this connection; composite foreign keys would not \
             reject cross-tenant references (enable `foreign_keys`, sqlx does by default)"
                .into(),
        ))
    }
}

pub(super) async fn foreign_keys_on<C: ConnectionTrait>(conn: &C) -> Result<bool> {
    if conn.get_database_backend() != DbBackend::Sqlite {
        return Ok(true);
    }
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA foreign_keys",
        ))
        .await
        .map_err(Error::from_db)?;
    let on: i64 = match row {
        Some(row) => row.try_get_by_index(0).map_err(Error::from_db)?,
        None => 0,
    };
    Ok(on == 1)
}
