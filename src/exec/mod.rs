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

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseExecutor, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, QueryResult, Statement, TransactionTrait,
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
                .map(Tx::Pg)
                .map_err(Error::from_db)
        } else {
            self.begin_sea().await.map(Tx::Sea)
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
#[derive(Debug)]
pub(crate) enum Tx {
    /// SQLite, MySQL: SeaORM's transaction.
    Sea(DatabaseTransaction),
    /// PostgreSQL: a transaction with `tenant_scope.tenant_id` set.
    Pg(PgTx),
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sea(tx) => tx.commit().await,
            Tx::Pg(tx) => tx.commit().await,
        }
        .map_err(Error::from_db)
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            Tx::Sea(tx) => tx.rollback().await,
            Tx::Pg(tx) => tx.rollback().await,
        }
        .map_err(Error::from_db)
    }
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
            Exec::Tx(Tx::Sea(tx)) => tx.get_database_backend(),
            Exec::Tx(Tx::Pg(_)) => DbBackend::Postgres,
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
            (Exec::Pool(pool), _) => Ok(Conn::Sea(DatabaseExecutor::Connection(&pool.conn))),
            (Exec::Tx(Tx::Sea(tx)), _) => Ok(Conn::Sea(DatabaseExecutor::Transaction(tx))),
            (Exec::Tx(Tx::Pg(tx)), _) => Ok(Conn::Pg(tx)),
        }
    }

    /// A connection for one write of `tenant` and its audit event: always a transaction, so that
    /// the two commit or roll back together. Outside a [`Tx`] it begins one (on PostgreSQL with the
    /// tenant set); end it with [`Conn::finish`].
    pub(crate) async fn open_write(self, tenant: TenantId) -> Result<Conn<'a>> {
        match self {
            Exec::Pool(pool) if pool.tenant_on_wire => self.open(Some(tenant)).await,
            Exec::Pool(pool) => pool.begin_sea().await.map(Conn::OwnSea),
            Exec::Tx(_) => self.open(Some(tenant)).await,
        }
    }
}

/// The connection of one operation; see [`Exec::open`].
#[derive(Debug)]
pub(crate) enum Conn<'a> {
    /// The pool or SeaORM's transaction, as they are.
    Sea(DatabaseExecutor<'a>),
    /// A PostgreSQL transaction of the caller's (a [`Tx`]).
    Pg(&'a PgTx),
    /// A PostgreSQL transaction opened for this operation alone.
    OwnPg(PgTx),
    /// SeaORM's transaction opened for this write alone (SQLite, MySQL).
    OwnSea(DatabaseTransaction),
}

impl Conn<'_> {
    /// Ends an operation that may have written: a transaction opened for it is committed if
    /// `result` is `Ok` and rolled back if not. A failed commit is the operation's error.
    pub(crate) async fn finish<T>(self, result: Result<T>) -> Result<T> {
        let tx = match self {
            Conn::OwnPg(tx) => Tx::Pg(tx),
            Conn::OwnSea(tx) => Tx::Sea(tx),
            Conn::Sea(_) | Conn::Pg(_) => return result,
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
            Conn::Sea(_) | Conn::Pg(_) => {}
        }
        result
    }
}

/// Runs the same call on whichever connection `$conn` holds.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $call:expr) => {
        match $conn {
            Conn::Sea($c) => $call,
            Conn::Pg($c) => $call,
            Conn::OwnPg($c) => $call,
            Conn::OwnSea($c) => $call,
        }
    };
}

#[async_trait::async_trait]
impl ConnectionTrait for Conn<'_> {
    fn get_database_backend(&self) -> DbBackend {
        on_conn!(self, c => c.get_database_backend())
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        on_conn!(self, c => c.execute_raw(stmt).await)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        on_conn!(self, c => c.execute_unprepared(sql).await)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        on_conn!(self, c => c.query_one_raw(stmt).await)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        on_conn!(self, c => c.query_all_raw(stmt).await)
    }
}
