//! A PostgreSQL transaction that carries a tenant: `BEGIN` and
//! `set_config('tenant_scope.tenant_id', …, true)` in one round trip.
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

use crate::schema::rls::TENANT_SETTING;
use crate::tenant::TenantId;

/// An open PostgreSQL transaction whose `tenant_scope.tenant_id` is set.
pub(crate) struct PgTx {
    /// `None` once committed or rolled back (only `commit`/`rollback`, which take `self`, empty it).
    tx: Mutex<Option<sqlx::Transaction<'static, Postgres>>>,
}

impl std::fmt::Debug for PgTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgTx")
    }
}

/// The `BEGIN` text of a transaction of `tenant`: one simple-query message with two statements.
///
/// The tenant is written into the text rather than bound, because the simple-query protocol (the
/// only one that takes two statements in one message) has no parameters. It cannot inject
/// anything: it is a [`uuid::Uuid`] in its canonical hyphenated form, `[0-9a-f-]` only.
pub(crate) fn begin_sql(tenant: TenantId) -> String {
    format!(
        "BEGIN; SELECT set_config('{TENANT_SETTING}', '{}', true)",
        tenant.as_uuid().hyphenated()
    )
}

impl PgTx {
    /// Takes a connection from `pool` and begins a transaction with the tenant set: one round trip.
    ///
    /// The `BEGIN` runs on a task of its own, so that it completes even if the caller's future is
    /// dropped (a timeout, a client that went away): sqlx marks a connection as in a transaction
    /// only once the server has answered the `BEGIN`, so a `begin` cancelled while waiting for that
    /// answer would return the connection to the pool inside an open transaction with the tenant
    /// set, and nothing would roll it back. Run to completion, an abandoned transaction is dropped
    /// on that task and rolled back like any other (tests/pool_safety.rs cancels operations to
    /// check this).
    pub(crate) async fn begin(pool: &sqlx::PgPool, tenant: TenantId) -> Result<Self, DbErr> {
        let pool = pool.clone();
        let begin = tokio::spawn(async move {
            pool.begin_with(sqlx::AssertSqlSafe(begin_sql(tenant)))
                .await
        });
        let tx = begin
            .await
            .map_err(|e| {
                DbErr::Conn(RuntimeErr::Internal(format!(
                    "beginning a transaction: {e}"
                )))
            })?
            .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e))))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
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

/// The sqlx query of a SeaORM statement, bound as SeaORM binds it.
fn query(stmt: &Statement) -> sqlx::query::Query<'_, Postgres, SqlxValues> {
    let values = stmt.values.clone().unwrap_or(Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
}

#[async_trait::async_trait]
impl ConnectionTrait for PgTx {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let mut guard = self.tx.lock().await;
        let tx = guard.as_mut().ok_or_else(closed)?;
        query(&stmt)
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
        query(&stmt)
            .fetch_optional(&mut **tx)
            .await
            .map(|row| row.map(QueryResult::from))
            .map_err(query_err)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut guard = self.tx.lock().await;
        let tx = guard.as_mut().ok_or_else(closed)?;
        query(&stmt)
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
            begin_sql(tenant),
            "BEGIN; SELECT set_config('tenant_scope.tenant_id', \
             '01920000-0000-7000-8000-0000000000ab', true)"
        );
    }
}
