//! Where the handles run their statements, and how the tenant reaches the database.
//!
//! On SQLite and MySQL the tenant travels only inside the statements (`tenant_id = ?`, bound). On
//! PostgreSQL it also travels on the wire, for row level security: every operation of a tenant runs
//! in a transaction that first sets `tenant_scope.tenant_id` (transaction-local), so that the
//! policies of [`schema::rls`](crate::schema::rls) let the statement see that tenant's rows and
//! nothing else. A single operation opens its own transaction ([`Exec::open`]); a
//! [`TenantTransaction`](crate::TenantTransaction) sets the tenant once for all its statements.
//!
//! Nothing here is public: no handle gives out a SeaORM connection.

mod postgres;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionTrait,
};

pub(crate) use postgres::PgTx;

use crate::error::{Error, Result};
use crate::tenant::TenantId;

/// A connection pool, and whether it carries the tenant on the wire.
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    conn: DatabaseConnection,
    /// PostgreSQL: every tenant operation runs in a transaction that sets `tenant_scope.tenant_id`.
    tenant_on_wire: bool,
}

impl Pool {
    /// A pool of the application: on PostgreSQL it sets the tenant for row level security.
    pub(crate) fn new(conn: DatabaseConnection) -> Self {
        let tenant_on_wire = conn.get_database_backend() == DbBackend::Postgres;
        Self {
            conn,
            tenant_on_wire,
        }
    }

    /// The SeaORM connection, for the crate's own checks at connect time.
    pub(crate) fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Begins a transaction of `tenant` (on PostgreSQL with the tenant set, in the same round trip).
    pub(crate) async fn begin(&self, tenant: TenantId) -> Result<Tx> {
        if self.tenant_on_wire {
            let pool = self.conn.get_postgres_connection_pool();
            PgTx::begin(pool, tenant)
                .await
                .map(|tx| Tx::new(TxKind::Pg(tx)))
                .map_err(Error::from_db)
        } else {
            self.begin_sea()
                .await
                .map(|tx| Tx::new(TxKind::Sea(Arc::new(tx))))
        }
    }

    /// SeaORM's transaction.
    ///
    /// Like [`PgTx::begin`], the `BEGIN` runs on a task of its own so that a cancelled caller
    /// cannot leave a pooled connection inside a transaction sqlx does not know about.
    async fn begin_sea(&self) -> Result<DatabaseTransaction> {
        let conn = self.conn.clone();
        tokio::spawn(async move { conn.begin().await })
            .await
            .map_err(|e| {
                Error::from_db(DbErr::Conn(sea_orm::RuntimeErr::Internal(format!(
                    "beginning a transaction: {e}"
                ))))
            })?
            .map_err(Error::from_db)
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
        }
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

    /// A connection for one operation.
    ///
    /// With a `tenant`, on PostgreSQL outside a transaction, this begins a transaction that sets
    /// the tenant (one round trip); end it with [`Conn::finish`] or [`Conn::finish_read`]. Inside a
    /// [`Tx`] the tenant is already set. Without a tenant (the system and global handles), and on
    /// SQLite and MySQL, the pool is used as it is.
    pub(crate) async fn open(self, tenant: Option<TenantId>) -> Result<Conn<'a>> {
        match (self, tenant) {
            (Exec::Pool(pool), Some(tenant)) if pool.tenant_on_wire => {
                let pool = pool.conn.get_postgres_connection_pool();
                PgTx::begin(pool, tenant)
                    .await
                    .map(Conn::OwnPg)
                    .map_err(Error::from_db)
            }
            (Exec::Pool(pool), _) => Ok(Conn::Pool(&pool.conn)),
            (Exec::Tx(tx), _) => Ok(match &tx.kind {
                TxKind::Sea(sea) => Conn::SeaTx(sea, &tx.failed),
                TxKind::Pg(pg) => Conn::Pg(pg, &tx.failed),
            }),
        }
    }

    /// A connection for one write of `tenant` and its audit event: always a transaction, so that
    /// the two commit or roll back together. Outside a [`Tx`] it begins one (on PostgreSQL with the
    /// tenant set); end it with [`Conn::finish`].
    pub(crate) async fn open_write(self, tenant: TenantId) -> Result<Conn<'a>> {
        match self {
            Exec::Pool(pool) if pool.tenant_on_wire => self.open(Some(tenant)).await,
            Exec::Pool(pool) => pool.begin_sea().await.map(|tx| Conn::OwnSea(Arc::new(tx))),
            Exec::Tx(_) => self.open(Some(tenant)).await,
        }
    }
}

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
            Conn::Pool(_) | Conn::SeaTx(..) | Conn::Pg(..) => return result,
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
            Conn::Pool(_) | Conn::SeaTx(..) | Conn::Pg(..) => {}
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

/// Runs a statement on a task of its own, to completion even if the caller is dropped.
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
    tokio::spawn(statement).await.map_err(|e| {
        DbErr::Conn(sea_orm::RuntimeErr::Internal(format!(
            "a statement task ended abnormally: {e}"
        )))
    })?
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
            Conn::Pg(..) | Conn::OwnPg(_) => DbBackend::Postgres,
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
