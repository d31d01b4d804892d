//! Where the handles run their statements, and how the tenant reaches the database.
//!
//! On SQLite and MySQL the tenant travels only inside the statements (`tenant_id = ?`, bound). On
//! PostgreSQL it also travels on the wire, for row level security: every operation of a tenant runs
//! in a transaction that first sets `tenant_scope.tenant_id` (transaction-local), so that the
//! policies of `tenant_scope_schema::rls` ([`POLICY_PREDICATE`](crate::contract::POLICY_PREDICATE)) let the statement see that tenant's rows and
//! nothing else. A single operation opens its own transaction ([`Exec::open`]); a
//! [`TenantTransaction`](crate::TenantTransaction) sets the tenant once for all its statements.
//!
//! Nothing here is public: no handle gives out a SeaORM connection.

mod complete;
mod inline;
mod limit;
mod postgres;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, Statement, TransactionTrait,
};

use complete::completes;
pub(crate) use limit::TenantLimiter;
pub(crate) use postgres::{PgRead, PgTx, Rows, Statements};

use tenant_scope_catalog::Backend;

use crate::error::{Error, Result};
use crate::tenant::TenantId;
use tokio::sync::OwnedSemaphorePermit;

/// A connection pool, and how operations run on it.
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    conn: DatabaseConnection,
    mode: Mode,
    /// How the statements of the library's PostgreSQL transactions are sent.
    statements: Statements,
    /// The cap on the connections one tenant holds at once (the application's pool only).
    limiter: Option<Arc<TenantLimiter>>,
    /// Whether the scoped operations add `tenant_id = <tenant>` (always, but in the test kit's
    /// differential mode, where row level security must be the only wall: see
    /// `TenantDb::without_app_filter`).
    #[cfg(feature = "testing")]
    pub(crate) app_filter: bool,
}

/// How operations reach the database through a [`Pool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// SQLite, MySQL, and the system pool on PostgreSQL: statements run on the pool as they are
    /// (writes of a tenant in a transaction of their own, for their audit event).
    Plain,
    /// The application's pool on PostgreSQL: every operation runs in a transaction it begins,
    /// with `tenant_scope.tenant_id` set if it has a tenant. That `BEGIN` is also the check that
    /// the pooled connection is alive, so the pool does not ping before handing one out
    /// ([`acquire_ping_redundant`]); a `BEGIN` on a connection the server closed is retried on
    /// another ([`PgTx::begin`]).
    PgApp,
}

/// Whether sqlx's ping before it hands out a pooled connection (`test_before_acquire`) is
/// redundant for the application's pool at `url`, so that
/// [`TenantDbOptions::connect`](crate::TenantDbOptions::connect) turns it off, saving one round
/// trip per operation:
///
/// - PostgreSQL: every operation of the application's pool begins with a `BEGIN` (see
///   [`Mode::PgApp`]), which fails, before anything ran, on a connection that is gone; the
///   library then takes another one.
/// - SQLite: a connection is a thread of this process, not a socket; nothing closes it behind
///   the pool's back.
///
/// MySQL keeps the ping: its reads run without `BEGIN`, and servers close idle connections
/// (`wait_timeout`).
pub(crate) fn acquire_ping_redundant(url: &str) -> bool {
    matches!(
        Backend::from_url(url),
        Ok(Backend::Postgres | Backend::Sqlite)
    )
}

impl Pool {
    /// The application's pool: on PostgreSQL every operation runs in a transaction that sets its
    /// tenant, for row level security.
    pub(crate) fn app(conn: DatabaseConnection, statements: Statements) -> Self {
        let mode = if conn.get_database_backend() == DbBackend::Postgres {
            Mode::PgApp
        } else {
            Mode::Plain
        };
        Self {
            conn,
            mode,
            statements,
            limiter: None,
            #[cfg(feature = "testing")]
            app_filter: true,
        }
    }

    /// The pool of system access: statements run as they are (on PostgreSQL as a role that may
    /// cross tenants, outside any transaction unless the caller opens one).
    pub(crate) fn system(conn: DatabaseConnection) -> Self {
        Self {
            conn,
            mode: Mode::Plain,
            statements: Statements::Named,
            limiter: None,
            #[cfg(feature = "testing")]
            app_filter: true,
        }
    }

    /// The pool with a cap on the connections one tenant holds at once.
    pub(crate) fn with_limiter(mut self, limiter: TenantLimiter) -> Self {
        self.limiter = Some(Arc::new(limiter));
        self
    }

    /// The same pool without the per-tenant cap: for the verifiers' lookups, which run before a
    /// claim is accepted and so must not be charged to the tenant it *claims* (a flood of bad
    /// credentials naming a tenant would otherwise take that tenant's share of the pool).
    pub(crate) fn uncapped(&self) -> Self {
        Self {
            limiter: None,
            ..self.clone()
        }
    }

    /// The cap on one tenant's connections, if there is one.
    pub(crate) fn tenant_cap(&self) -> Option<usize> {
        self.limiter.as_ref().map(|l| l.cap())
    }

    /// A permit for one operation of `tenant` on this pool (see [`TenantLimiter`]); `None` if the
    /// pool has no cap.
    pub(crate) async fn admit(&self, tenant: TenantId) -> Result<Option<OwnedSemaphorePermit>> {
        match &self.limiter {
            Some(limiter) => limiter.admit(tenant).await.map(Some),
            None => Ok(None),
        }
    }

    /// The SeaORM connection, for the crate's own checks at connect time.
    pub(crate) fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Begins a transaction of `tenant` (on PostgreSQL with the tenant set, in the same round trip).
    pub(crate) async fn begin(&self, tenant: TenantId) -> Result<Tx> {
        let permit = self.admit(tenant).await?;
        let tx = if self.mode == Mode::PgApp {
            let pool = self.conn.get_postgres_connection_pool();
            PgTx::begin(pool, Some(tenant), self.statements)
                .await
                .map(|tx| Tx::new(TxKind::Pg(tx)))
                .map_err(Error::from_db)
        } else {
            self.begin_sea()
                .await
                .map(|tx| Tx::new(TxKind::Sea(Arc::new(tx))))
        };
        tx.map(|tx| tx.holding(permit))
    }

    /// SeaORM's transaction.
    ///
    /// Like [`PgTx::begin`], the `BEGIN` runs to completion ([`completes`]) so that a cancelled
    /// caller cannot leave a pooled connection inside a transaction sqlx does not know about.
    async fn begin_sea(&self) -> Result<DatabaseTransaction> {
        self.begin_sea_with(None, None).await
    }

    /// [`Pool::begin_sea`] at `isolation` and `access` (`None`: the backend's defaults).
    async fn begin_sea_with(
        &self,
        isolation: Option<IsolationLevel>,
        access: Option<AccessMode>,
    ) -> Result<DatabaseTransaction> {
        let conn = self.conn.clone();
        completes(async move { conn.begin_with_config(isolation, access).await })
            .await
            .map_err(Error::from_db)
    }

    /// A transaction of system access on this pool, with no tenant set (the job worker, the
    /// lifecycle steps), at `isolation` and `access` (`None`: the backend's defaults). Its `BEGIN`
    /// runs to completion like every other ([`completes`]); end it with [`Tx::commit`] or
    /// [`Tx::rollback`] (dropped, it rolls back).
    pub(crate) async fn begin_system(
        &self,
        isolation: Option<IsolationLevel>,
        access: Option<AccessMode>,
    ) -> Result<Tx> {
        self.begin_sea_with(isolation, access)
            .await
            .map(|tx| Tx::new(TxKind::Sea(Arc::new(tx))))
    }
}

/// An open transaction of one tenant.
///
/// It remembers whether one of its statements failed: on PostgreSQL such a transaction is aborted
/// (and a `COMMIT` would silently roll it back), and on every backend a write whose audit event
/// failed must not be committed without it. [`Tx::commit`] then refuses, and rolls back.
#[derive(Debug)]
pub(crate) struct Tx {
    kind: TxKind,
    failed: AtomicBool,
    /// The tenant's permit for its connection (see [`TenantLimiter`]), given back with the
    /// transaction.
    _permit: Option<OwnedSemaphorePermit>,
}

#[derive(Debug)]
enum TxKind {
    /// SQLite, MySQL: SeaORM's transaction (shared with the statement tasks on MySQL, see
    /// [`detached`]).
    Sea(Arc<DatabaseTransaction>),
    /// PostgreSQL: a transaction with `tenant_scope.tenant_id` set.
    Pg(PgTx),
}

impl Tx {
    fn new(kind: TxKind) -> Self {
        Self {
            kind,
            failed: AtomicBool::new(false),
            _permit: None,
        }
    }

    /// The transaction, holding the tenant's permit until it ends.
    fn holding(mut self, permit: Option<OwnedSemaphorePermit>) -> Self {
        self._permit = permit;
        self
    }

    /// Commits, unless a statement of the transaction failed: then it rolls back and says so.
    pub(crate) async fn commit(self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            self.rollback().await?;
            return Err(Error::Invalid(
                "a statement of this transaction failed, so it was rolled back instead of \
                 committed (PostgreSQL aborts such a transaction; the library does the same on \
                 every backend)"
                    .into(),
            ));
        }
        match self.kind {
            TxKind::Sea(tx) => unshare(tx)?.commit().await,
            TxKind::Pg(tx) => tx.commit().await,
        }
        .map_err(Error::from_db)
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self.kind {
            TxKind::Sea(tx) => unshare(tx)?.rollback().await,
            TxKind::Pg(tx) => tx.rollback().await,
        }
        .map_err(Error::from_db)
    }
}

/// The transaction back from the statement tasks that shared it. They have all finished when the
/// operation that ran them did; one still running means an operation was abandoned midway.
fn unshare(tx: Arc<DatabaseTransaction>) -> Result<DatabaseTransaction> {
    Arc::try_unwrap(tx).map_err(|_| {
        Error::Config(
            "a statement of this transaction is still running (an operation on it was \
             abandoned); it will roll back when that statement ends"
                .into(),
        )
    })
}

/// Where a handle runs its statements: a pool, or an open transaction. Never handed out.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Exec<'a> {
    Pool(&'a Pool),
    Tx(&'a Tx),
}

impl<'a> Exec<'a> {
    /// Whether the scoped operations add the tenant predicate: always, but on a pool of the test
    /// kit's differential mode (feature `testing`, `TenantDb::without_app_filter`); inside a
    /// transaction always.
    #[cfg(feature = "testing")]
    pub(crate) fn app_filter(self) -> bool {
        match self {
            Exec::Pool(pool) => pool.app_filter,
            Exec::Tx(_) => true,
        }
    }

    /// Whether the scoped operations add the tenant predicate: always.
    #[cfg(not(feature = "testing"))]
    pub(crate) const fn app_filter(self) -> bool {
        true
    }

    /// The database backend.
    pub(crate) fn backend(self) -> DbBackend {
        match self {
            Exec::Pool(pool) => pool.conn.get_database_backend(),
            Exec::Tx(tx) => match &tx.kind {
                TxKind::Sea(sea) => sea.get_database_backend(),
                TxKind::Pg(_) => DbBackend::Postgres,
            },
        }
    }

    /// The tenant's permit for one operation (see [`TenantLimiter`]): only on a pool with a cap
    /// and for an operation of a tenant; inside a [`Tx`] the transaction holds it already.
    pub(crate) async fn admit(
        self,
        tenant: Option<TenantId>,
    ) -> Result<Option<OwnedSemaphorePermit>> {
        match (self, tenant) {
            (Exec::Pool(pool), Some(tenant)) => pool.admit(tenant).await,
            _ => Ok(None),
        }
    }

    /// A connection for one operation.
    ///
    /// On the application's pool on PostgreSQL this begins a transaction (one round trip), which
    /// sets `tenant` if there is one (the global handle's reads have none: no tenant's rows are
    /// visible to them); end it with [`Conn::finish`] or [`Conn::finish_read`]. Inside a [`Tx`]
    /// the tenant is already set. On SQLite and MySQL, and on the system pool, the pool is used as
    /// it is.
    pub(crate) async fn open(self, tenant: Option<TenantId>) -> Result<Conn<'a>> {
        match self {
            Exec::Pool(pool) if pool.mode == Mode::PgApp => {
                let sqlx_pool = pool.conn.get_postgres_connection_pool();
                PgTx::begin(sqlx_pool, tenant, pool.statements)
                    .await
                    .map(Conn::OwnPg)
                    .map_err(Error::from_db)
            }
            Exec::Pool(pool) => Ok(Conn::Pool(&pool.conn)),
            Exec::Tx(tx) => Ok(match &tx.kind {
                TxKind::Sea(sea) => Conn::SeaTx(sea, &tx.failed),
                TxKind::Pg(pg) => Conn::Pg(pg, &tx.failed),
            }),
        }
    }

    /// A connection for one read-only operation that reads `rows`. On the application's pool on
    /// PostgreSQL nothing is sent yet: each statement then goes with `tenant` in one message where
    /// it can ([`PgRead`]: one round trip), else in a transaction of its own with its values bound.
    /// Anywhere else it is [`Exec::open`]. End it with [`Conn::finish_read`].
    pub(crate) async fn open_read(self, tenant: Option<TenantId>, rows: Rows) -> Result<Conn<'a>> {
        match self {
            Exec::Pool(pool) if pool.mode == Mode::PgApp => Ok(Conn::PgRead(PgRead {
                pool: pool.conn.get_postgres_connection_pool(),
                tenant,
                statements: pool.statements,
                rows,
            })),
            _ => self.open(tenant).await,
        }
    }

    /// A connection for one write of `tenant` and its audit event: always a transaction, so that
    /// the two commit or roll back together. Outside a [`Tx`] it begins one (on PostgreSQL with the
    /// tenant set); end it with [`Conn::finish`].
    pub(crate) async fn open_write(self, tenant: TenantId) -> Result<Conn<'a>> {
        match self {
            Exec::Pool(pool) if pool.mode == Mode::PgApp => self.open(Some(tenant)).await,
            Exec::Pool(pool) => pool.begin_sea().await.map(|tx| Conn::OwnSea(Arc::new(tx))),
            Exec::Tx(_) => self.open(Some(tenant)).await,
        }
    }
}

/// Runs one read-only operation: opens its connection on `$exec` ([`Exec::open_read`]: on
/// PostgreSQL each statement goes with `$tenant`, in one message where it can), evaluates `$body`
/// (a SeaORM call on `&$conn` returning `Result<_, DbErr>`), and ends the transaction without
/// waiting ([`Conn::finish_read`]), all inside `$span`. Every read of the handles goes through
/// here, so none can forget to end its transaction. `read!(one: ..)` is a read of at most one row
/// (a get, `one`, a count). (A macro rather than a function taking an async closure: such a
/// closure borrowing the connection trips rustc's higher-ranked `Send` checks in callers'
/// futures.)
macro_rules! read {
    (one: $exec:expr, $tenant:expr, $span:expr, |$conn:ident| $body:expr) => {
        $crate::exec::read!(@ $crate::exec::Rows::One, $exec, $tenant, $span, |$conn| $body)
    };
    ($exec:expr, $tenant:expr, $span:expr, |$conn:ident| $body:expr) => {
        $crate::exec::read!(@ $crate::exec::Rows::Many, $exec, $tenant, $span, |$conn| $body)
    };
    (@ $rows:expr, $exec:expr, $tenant:expr, $span:expr, |$conn:ident| $body:expr) => {{
        let (exec, tenant): ($crate::exec::Exec<'_>, Option<$crate::tenant::TenantId>) =
            ($exec, $tenant);
        ::tracing::Instrument::instrument(
            async move {
                let _permit = exec.admit(tenant).await?;
                let $conn = exec.open_read(tenant, $rows).await?;
                let result = $body.map_err($crate::error::Error::from_db);
                $conn.finish_read(result)
            },
            $span,
        )
        .await
    }};
}
pub(crate) use read;

/// Runs one write of `$tenant` with its audit event: opens its connection on `$exec`
/// ([`Exec::open_write`]: always a transaction, on PostgreSQL with the tenant set), evaluates
/// `$body` (statements on `&$conn`, `?` allowed, returning this crate's `Result`), and commits if
/// it is `Ok` or rolls back if not ([`Conn::finish`]), all inside `$span`. Every write of the
/// handles goes through here, so the write and its audit event always commit or roll back together.
macro_rules! audited_write {
    ($exec:expr, $tenant:expr, $span:expr, |$conn:ident| $body:expr) => {{
        let (exec, tenant): ($crate::exec::Exec<'_>, $crate::tenant::TenantId) = ($exec, $tenant);
        ::tracing::Instrument::instrument(
            async move {
                let _permit = exec.admit(Some(tenant)).await?;
                let $conn = exec.open_write(tenant).await?;
                let result: $crate::error::Result<_> = async { $body }.await;
                $conn.finish(result).await
            },
            $span,
        )
        .await
    }};
}
pub(crate) use audited_write;

/// The connection of one operation; see [`Exec::open`].
#[derive(Debug)]
pub(crate) enum Conn<'a> {
    /// The pool, as it is.
    Pool(&'a DatabaseConnection),
    /// SeaORM's transaction of the caller's (a [`Tx`]), and its failure flag.
    SeaTx(&'a Arc<DatabaseTransaction>, &'a AtomicBool),
    /// A PostgreSQL transaction of the caller's (a [`Tx`]), and its failure flag.
    Pg(&'a PgTx, &'a AtomicBool),
    /// A PostgreSQL transaction opened for this operation alone.
    OwnPg(PgTx),
    /// A read of the application's pool on PostgreSQL: each statement with the tenant, in one
    /// message where it can.
    PgRead(PgRead<'a>),
    /// SeaORM's transaction opened for this write alone (SQLite, MySQL).
    OwnSea(Arc<DatabaseTransaction>),
}

impl Conn<'_> {
    /// Ends an operation that may have written: a transaction opened for it is committed if
    /// `result` is `Ok` and rolled back if not. A failed commit is the operation's error.
    pub(crate) async fn finish<T>(self, result: Result<T>) -> Result<T> {
        let tx = match self {
            Conn::OwnPg(tx) => Tx::new(TxKind::Pg(tx)),
            Conn::OwnSea(tx) => Tx::new(TxKind::Sea(tx)),
            Conn::Pool(_) | Conn::SeaTx(..) | Conn::Pg(..) | Conn::PgRead(_) => return result,
        };
        match result {
            Ok(value) => tx.commit().await.map(|()| value),
            Err(err) => {
                // The operation's error is the answer; a failed rollback leaves the connection to
                // sqlx, which closes a connection that is still in a transaction.
                let _ = tx.rollback().await;
                Err(err)
            }
        }
    }

    /// Ends a read-only operation: a transaction opened for it is ended without waiting (sqlx
    /// rolls it back before the connection can be reused), saving the `COMMIT` round trip.
    pub(crate) fn finish_read<T>(self, result: Result<T>) -> Result<T> {
        match self {
            Conn::OwnPg(tx) => tx.abandon(),
            // Not opened for reads; dropping it rolls it back (SeaORM queues the rollback).
            Conn::OwnSea(tx) => drop(tx),
            Conn::Pool(_) | Conn::SeaTx(..) | Conn::Pg(..) | Conn::PgRead(_) => {}
        }
        result
    }

    /// The transaction's failure flag, for a statement run on a caller's transaction.
    fn failed_flag(&self) -> Option<&AtomicBool> {
        match self {
            Conn::SeaTx(_, failed) | Conn::Pg(_, failed) => Some(failed),
            _ => None,
        }
    }
}

/// Runs a statement to completion even if the caller is dropped ([`completes`]).
///
/// sqlx-mysql 0.9 is not cancel-safe while it reads a packet: a statement dropped between a
/// packet's header and its body leaves the rest of the answer on the connection, where the next
/// user of the connection could read it as its own (another tenant's rows). On MySQL every
/// statement therefore runs detached, on a clone of the pool handle or of the shared transaction,
/// and always reads its whole answer. (PostgreSQL and SQLite do not need it.)
async fn detached<T, F>(statement: F) -> Result<T, DbErr>
where
    F: Future<Output = Result<T, DbErr>> + Send + 'static,
    T: Send + 'static,
{
    completes(statement).await
}

/// Runs the same call on whichever connection `$conn` holds: detached on MySQL (see
/// [`detached`]), and marking the caller's transaction failed if the statement fails.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $call:expr) => {{
        let result = match $conn {
            Conn::Pool(pool) if pool.get_database_backend() == DbBackend::MySql => {
                let $c = (*pool).clone();
                detached(async move { $call }).await
            }
            Conn::SeaTx(tx, _) if tx.get_database_backend() == DbBackend::MySql => {
                let $c = Arc::clone(tx);
                detached(async move { $call }).await
            }
            Conn::OwnSea(tx) if tx.get_database_backend() == DbBackend::MySql => {
                let $c = Arc::clone(tx);
                detached(async move { $call }).await
            }
            Conn::Pool($c) => $call,
            Conn::SeaTx($c, _) => $call,
            Conn::OwnSea($c) => $call,
            Conn::Pg($c, _) => $call,
            Conn::OwnPg($c) => $call,
            Conn::PgRead($c) => $call,
        };
        if result.is_err() {
            if let Some(failed) = $conn.failed_flag() {
                failed.store(true, Ordering::Release);
            }
        }
        result
    }};
}

#[async_trait::async_trait]
impl ConnectionTrait for Conn<'_> {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Conn::Pool(c) => c.get_database_backend(),
            Conn::SeaTx(c, _) => c.get_database_backend(),
            Conn::OwnSea(c) => c.get_database_backend(),
            Conn::Pg(..) | Conn::OwnPg(_) | Conn::PgRead(_) => DbBackend::Postgres,
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        on_conn!(self, c => c.execute_raw(stmt).await)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let sql = sql.to_owned();
        on_conn!(self, c => c.execute_unprepared(&sql).await)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        on_conn!(self, c => c.query_one_raw(stmt).await)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        on_conn!(self, c => c.query_all_raw(stmt).await)
    }
}
