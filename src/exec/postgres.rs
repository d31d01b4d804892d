//! A PostgreSQL transaction that carries a tenant: `BEGIN` and
//! `SET LOCAL tenant_scope.tenant_id = …` in one round trip, which also checks that the pooled
//! connection is alive.
//!
//! SeaORM's own transaction sends `BEGIN` alone, so setting the tenant through it costs a round
//! trip of its own. sqlx can open a transaction with a custom `BEGIN` text, sent as one simple-query
//! message; this type does that and then runs SeaORM's statements on the transaction by
//! implementing SeaORM's [`ConnectionTrait`] (statements are bound and prepared exactly as SeaORM
//! binds them, through `sea-query-sqlx`).
//!
//! The setting is transaction-local (`is_local = true`): `COMMIT` or `ROLLBACK` ends it. A
//! transaction dropped without either is rolled back by sqlx: the `ROLLBACK` is queued on the
//! connection, and the pool flushes it (with its release ping) before the connection is handed to
//! anyone else. So a pooled connection never carries a tenant to its next user.

use std::sync::Arc;

use futures::lock::Mutex;
use sea_orm::sqlx::{self, Postgres};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement,
    sea_query::Values,
};
use sea_query_sqlx::SqlxValues;

use super::complete::completes;
use super::inline::inline;
use crate::contract::TENANT_SETTING;
use crate::tenant::TenantId;

/// An open PostgreSQL transaction whose `tenant_scope.tenant_id` is set.
pub(crate) struct PgTx {
    /// `None` once committed or rolled back (only `commit`/`rollback`, which take `self`, empty it).
    tx: Mutex<Option<sqlx::Transaction<'static, Postgres>>>,
    /// Whether statements are sent unnamed (parsed for this one execution, never kept on the
    /// server connection): what a pooler in transaction mode needs, where the next transaction
    /// of this client may run on another server connection (see [`Statements`]).
    unnamed: bool,
}

/// How the statements of the application's pool are sent.
///
/// By default sqlx prepares each statement once per connection under a name (`sqlx_s_1`, ...)
/// and reuses it: the fastest way, and the right one on a direct connection or a pooler in
/// session mode. Behind a pooler in *transaction* mode (PgBouncer `pool_mode = transaction`)
/// a client's next transaction may run on another server connection, where that name is unknown
/// or taken by another client (`prepared statement "sqlx_s_2" already exists`). Unnamed
/// statements are parsed for one execution and kept nowhere, so they work there, at the cost of
/// parsing every statement again (sqlx waits for the description of a statement it parses before
/// binding it: one more round trip per statement). They are safe there only
/// inside an explicit transaction, which pins one server connection until it ends: outside one,
/// the pooler may send a statement's Parse and its Bind to different server connections. Every
/// statement of the application's pool runs inside the library's `BEGIN … COMMIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Statements {
    /// Named and cached per connection (sqlx's default).
    Named,
    /// Unnamed, parsed for each execution.
    Unnamed,
}

impl std::fmt::Debug for PgTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgTx")
    }
}

/// The `BEGIN` text of a transaction of `tenant`: one simple-query message with two statements,
/// `BEGIN; SET LOCAL tenant_scope.tenant_id = '<uuid>'` (just `BEGIN` without a tenant: the global
/// handle's reads, which see no tenant's rows).
///
/// `SET LOCAL` is `set_config(.., true)` as a command: the same transaction-local setting, which
/// `COMMIT` or `ROLLBACK` ends. As a command the server runs it without planning a query and
/// answers without a row, which makes the message measurably cheaper than
/// `SELECT set_config(..)` (docs/benchmarks.md).
///
/// The tenant is written into the text rather than bound, because the simple-query protocol (the
/// only one that takes two statements in one message) has no parameters, and `SET` takes none
/// anyway. It cannot inject anything: it is a [`uuid::Uuid`] in its canonical hyphenated form,
/// `[0-9a-f-]` only.
pub(crate) fn begin_sql(tenant: Option<TenantId>) -> String {
    match tenant {
        Some(tenant) => format!(
            "BEGIN; SET LOCAL {TENANT_SETTING} = '{}'",
            tenant.as_uuid().hyphenated()
        ),
        None => "BEGIN".to_owned(),
    }
}

/// Whether `error`, from taking a pooled connection and sending it `BEGIN`, means that the
/// connection was already gone: closed by the server (a restart, `pg_terminate_backend`,
/// `idle_session_timeout`), a proxy or the network while it sat in the pool. Nothing ran on it,
/// so the `BEGIN` may be tried on another connection.
///
/// That is an I/O error, or a server error of class 08 (connection exception) or 57P (operator
/// intervention: `57P01` admin shutdown, `57P05` idle session timeout, ...). Anything else (a
/// timeout waiting for the pool, a refused login, a syntax error) is the answer.
pub(crate) fn connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Runs `step` (which takes a connection of `pool` and sends it its first message) until it does
/// not fail on a connection that was already gone ([`connection_lost`]): up to once per connection
/// the pool may hold, plus a new one. Only for a step that ran nothing if it failed that way, or
/// that may run twice (a read).
async fn on_a_live_connection<T, F, Fut>(pool: sqlx::PgPool, mut step: F) -> Result<T, sqlx::Error>
where
    F: FnMut(sqlx::PgPool) -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let attempts = pool.options().get_max_connections().saturating_add(1);
    let mut attempt = 1;
    loop {
        match step(pool.clone()).await {
            Err(error) if attempt < attempts && connection_lost(&error) => {
                tracing::debug!(
                    target: "tenant_scope",
                    %error,
                    attempt,
                    "a pooled connection was closed while idle; trying another"
                );
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// The text of a read of `tenant` sent as one simple-query message: `SET LOCAL
/// tenant_scope.tenant_id = '<uuid>'; <statement>` (the statement alone without a tenant).
///
/// The server runs the statements of one such message as one implicit transaction, so the
/// `SET LOCAL` holds for the statement and ends with the message, committed or not, whatever the
/// client does next: nothing of it can reach the next user of the connection, and behind a pooler
/// in transaction mode the message is one transaction, on one server connection. The statement
/// comes from [`inline`](super::inline::inline): its values are typed literals of a fixed
/// alphabet.
pub(crate) fn read_sql(tenant: Option<TenantId>, statement: &str) -> String {
    match tenant {
        Some(tenant) => format!(
            "SET LOCAL {TENANT_SETTING} = '{}'; {statement}",
            tenant.as_uuid().hyphenated()
        ),
        None => statement.to_owned(),
    }
}

/// A read of the application's pool on PostgreSQL: a statement whose values can be written into
/// its text ([`inline`](super::inline::inline)) goes with the tenant in **one** simple-query
/// message ([`read_sql`]), one round trip, if the read is of one row ([`Rows::One`]: a get, `one`,
/// a count), or of any number of rows behind a transaction pooler ([`Statements::Unnamed`]); any
/// other statement (one with a text value; rows in the plural on a direct connection, where the
/// cached plan and binary rows of the extended protocol cost less than the round trip saved:
/// docs/benchmarks.md) keeps its bound parameters and runs in a transaction of its own
/// ([`PgTx::begin`], the statement, ended without waiting). Nothing a read runs is ever committed
/// by it: a statement that writes is rolled back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PgRead<'a> {
    pub(crate) pool: &'a sqlx::PgPool,
    pub(crate) tenant: Option<TenantId>,
    pub(crate) statements: Statements,
    pub(crate) rows: Rows,
}

/// How many rows a read reads: what decides, on a direct connection, whether it goes in one
/// message (see [`PgRead`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rows {
    /// At most one (a get by key, `one`, a count).
    One,
    /// Any number.
    Many,
}

impl PgRead<'_> {
    /// The rows of `sql` (from [`read_sql`]): one message on a pooled connection, run to
    /// completion even if the caller is dropped ([`completes`]), and sent again on another
    /// connection if the first one was gone (a read may run twice).
    async fn one_message(&self, sql: String) -> Result<Vec<QueryResult>, DbErr> {
        let rows = completes(on_a_live_connection(self.pool.clone(), move |pool| {
            let sql = sql.clone();
            async move {
                let mut conn = pool.acquire().await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut *conn)
                    .await
            }
        }))
        .await
        .map_err(query_err)?;
        Ok(rows.into_iter().map(QueryResult::from).collect())
    }

    /// The statement with its values written in, if it goes in one message: always behind a
    /// transaction pooler; on a direct connection only for a read of one row.
    fn one_message_sql(&self, stmt: &Statement) -> Option<String> {
        if self.rows == Rows::Many && self.statements == Statements::Named {
            return None;
        }
        inline(stmt).map(|sql| read_sql(self.tenant, &sql))
    }

    /// A transaction of the read's tenant, for a statement that keeps its bound parameters.
    async fn begin(&self) -> Result<PgTx, DbErr> {
        PgTx::begin(self.pool, self.tenant, self.statements).await
    }
}

/// Runs `$call` (a call on `$tx`) on a transaction of `$read`'s tenant of its own, the statement's
/// values bound ([`PgRead::begin`]), and ends the transaction without waiting.
macro_rules! bound {
    ($read:expr, |$tx:ident| $call:expr) => {{
        let $tx = $read.begin().await?;
        let result = $call.await;
        $tx.abandon();
        result
    }};
}

#[async_trait::async_trait]
impl ConnectionTrait for PgRead<'_> {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        bound!(self, |tx| tx.execute_raw(stmt))
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        bound!(self, |tx| tx.execute_unprepared(sql))
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match self.one_message_sql(&stmt) {
            Some(sql) => Ok(self.one_message(sql).await?.into_iter().next()),
            None => bound!(self, |tx| tx.query_one_raw(stmt)),
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match self.one_message_sql(&stmt) {
            Some(sql) => self.one_message(sql).await,
            None => bound!(self, |tx| tx.query_all_raw(stmt)),
        }
    }
}

impl PgTx {
    /// Takes a connection from `pool` and begins a transaction with the tenant set (if there is
    /// one): one round trip.
    ///
    /// The application's pool does not ping a connection before handing it out (see
    /// [`acquire_ping_redundant`](super::acquire_ping_redundant)): this `BEGIN` is the check. A
    /// connection that the server closed while it was idle fails it before anything ran on it
    /// ([`connection_lost`]); sqlx then closes that connection, and the `BEGIN` is sent on the
    /// next one, up to once per connection the pool may hold, plus a new one. After a server
    /// restart every idle connection is gone, and they are all replaced this way.
    ///
    /// The `BEGIN` runs to completion even if the caller's future is dropped (a timeout, a client
    /// that went away; see [`completes`]): sqlx marks a connection as in a transaction only once
    /// the server has answered the `BEGIN`, so a `begin` cancelled while waiting for that answer
    /// would return the connection to the pool inside an open transaction with the tenant set, and
    /// nothing would roll it back. Run to completion, an abandoned transaction is dropped and
    /// rolled back like any other (tests/pool_safety.rs cancels operations to check this).
    pub(crate) async fn begin(
        pool: &sqlx::PgPool,
        tenant: Option<TenantId>,
        statements: Statements,
    ) -> Result<Self, DbErr> {
        let sql = begin_sql(tenant);
        let begin = completes(on_a_live_connection(pool.clone(), move |pool| {
            let sql = sql.clone();
            async move { pool.begin_with(sqlx::AssertSqlSafe(sql)).await }
        }));
        let tx = begin
            .await
            .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            unnamed: statements == Statements::Unnamed,
        })
    }

    /// Commits (one round trip); the setting ends with the transaction.
    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        match self.tx.into_inner() {
            Some(tx) => tx.commit().await.map_err(exec_err),
            None => Ok(()),
        }
    }

    /// Rolls back (one round trip); the setting ends with the transaction.
    pub(crate) async fn rollback(self) -> Result<(), DbErr> {
        match self.tx.into_inner() {
            Some(tx) => tx.rollback().await.map_err(exec_err),
            None => Ok(()),
        }
    }

    /// Ends the transaction without waiting: sqlx queues a `ROLLBACK`, which the pool sends (and
    /// waits for) when the connection is released, before anyone else can take it. For read-only
    /// work, whose outcome does not depend on the end of the transaction.
    pub(crate) fn abandon(self) {
        drop(self);
    }
}

fn exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
}

fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

fn closed() -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(
        "the tenant transaction has already ended".into(),
    ))
}

impl PgTx {
    /// The sqlx query of a SeaORM statement, bound as SeaORM binds it; unnamed if this
    /// transaction's statements are.
    fn query<'q>(&self, stmt: &'q Statement) -> sqlx::query::Query<'q, Postgres, SqlxValues> {
        let values = stmt.values.clone().unwrap_or(Values(Vec::new()));
        sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
            .persistent(!self.unnamed)
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for PgTx {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let mut guard = self.tx.lock().await;
        let tx = guard.as_mut().ok_or_else(closed)?;
        self.query(&stmt)
            .execute(&mut **tx)
            .await
            .map(ExecResult::from)
            .map_err(exec_err)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut guard = self.tx.lock().await;
        let tx = guard.as_mut().ok_or_else(closed)?;
        sqlx::Executor::execute(
            &mut **tx,
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())),
        )
        .await
        .map(ExecResult::from)
        .map_err(exec_err)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut guard = self.tx.lock().await;
        let tx = guard.as_mut().ok_or_else(closed)?;
        self.query(&stmt)
            .fetch_optional(&mut **tx)
            .await
            .map(|row| row.map(QueryResult::from))
            .map_err(query_err)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut guard = self.tx.lock().await;
        let tx = guard.as_mut().ok_or_else(closed)?;
        self.query(&stmt)
            .fetch_all(&mut **tx)
            .await
            .map(|rows| rows.into_iter().map(QueryResult::from).collect())
            .map_err(query_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_sets_the_tenant_as_a_canonical_uuid() {
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(
            0x0192_0000_0000_7000_8000_0000_0000_00ab,
        ));
        assert_eq!(
            begin_sql(Some(tenant)),
            "BEGIN; SET LOCAL tenant_scope.tenant_id = '01920000-0000-7000-8000-0000000000ab'"
        );
        assert_eq!(begin_sql(None), "BEGIN");
    }

    #[test]
    fn only_a_gone_connection_is_retried() {
        let io = |kind| sqlx::Error::Io(std::io::Error::from(kind));
        assert!(connection_lost(&io(std::io::ErrorKind::BrokenPipe)));
        assert!(connection_lost(&io(std::io::ErrorKind::UnexpectedEof)));
        assert!(connection_lost(&io(std::io::ErrorKind::ConnectionReset)));
        assert!(!connection_lost(&sqlx::Error::PoolTimedOut));
        assert!(!connection_lost(&sqlx::Error::PoolClosed));
        assert!(!connection_lost(&sqlx::Error::Protocol(
            "unexpected message".into()
        )));
        assert!(!connection_lost(&sqlx::Error::RowNotFound));
    }
}
