//! Connections of the harness, and its error type.

use std::fmt;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::CONNECT_TIMEOUT;
use crate::env::{Backend, redact, say};
use crate::names::is_stale;

/// Connect options used for every connection the harness opens: statement logging off.
pub fn connect_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false);
    options
}

/// Opens a pool on `url` (statement logging off).
pub async fn connect(url: &str) -> Result<DatabaseConnection, HarnessError> {
    Database::connect(connect_options(url))
        .await
        .map_err(|e| HarnessError::new(format!("connecting to {}", redact(url)), e))
}

/// A one-connection pool on the server's maintenance database (session-level locks stay on one connection).
pub(crate) async fn connect_admin(server_url: &str) -> Result<DatabaseConnection, HarnessError> {
    let mut options = connect_options(server_url);
    options
        .max_connections(1)
        .min_connections(1)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT);
    Database::connect(options).await.map_err(|e| {
        HarnessError::new(
            format!(
                "connecting to {} (is the server up, and the URL right?)",
                redact(server_url)
            ),
            e,
        )
    })
}

/// An error while creating or dropping a test database, with what the harness was doing.
#[derive(Debug)]
pub struct HarnessError {
    /// What the harness was doing.
    pub context: String,
    /// What went wrong.
    pub error: String,
}

impl HarnessError {
    pub(crate) fn new(context: impl Into<String>, error: impl fmt::Display) -> Self {
        Self {
            context: context.into(),
            error: error.to_string(),
        }
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.error)
    }
}

/// Runs `sql` unprepared, with `context` on error.
pub(crate) async fn exec(conn: &DatabaseConnection, sql: &str) -> Result<(), HarnessError> {
    conn.execute_unprepared(sql)
        .await
        .map(drop)
        .map_err(|e| HarnessError::new(format!("running `{sql}`"), e))
}

/// Returns the first column of every row of `sql` as strings.
pub(crate) async fn query_strings(
    conn: &DatabaseConnection,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<String>, HarnessError> {
    let stmt = Statement::from_sql_and_values(conn.get_database_backend(), sql, values);
    let rows = conn
        .query_all_raw(stmt)
        .await
        .map_err(|e| HarnessError::new(format!("running `{sql}`"), e))?;
    rows.iter()
        .map(|row| {
            row.try_get_by_index::<String>(0)
                .map_err(|e| HarnessError::new(format!("reading `{sql}`"), e))
        })
        .collect()
}

/// Drops `ts_test_*` databases older than [`STALE_AFTER`] (leftovers of killed runs). Best effort.
pub(crate) async fn sweep_server(admin: &DatabaseConnection, backend: Backend) {
    let (list, drop_sql): (&str, fn(&str) -> String) = match backend {
        Backend::Postgres => (
            r"SELECT datname::text FROM pg_database WHERE datname LIKE 'ts\_test\_%'",
            |name| format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
        ),
        Backend::Mysql => (
            r"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'ts\_test\_%'",
            |name| format!("DROP DATABASE IF EXISTS `{name}`"),
        ),
        Backend::Sqlite => return,
    };
    let names = match query_strings(admin, list, Vec::new()).await {
        Ok(names) => names,
        Err(e) => {
            say(&format!(
                "tenant-scope tests: could not list old {backend} test databases: {e}"
            ));
            return;
        }
    };
    for name in names.iter().filter(|n| is_stale(n)) {
        if let Err(e) = exec(admin, &drop_sql(name)).await {
            say(&format!(
                "tenant-scope tests: could not drop old test database {name}: {e}"
            ));
        }
    }
    if backend == Backend::Postgres {
        // Roles of TestRole that a killed run left (their databases are gone by now, or just above).
        let roles = query_strings(
            admin,
            r"SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'ts\_test\_%'",
            Vec::new(),
        )
        .await
        .unwrap_or_default();
        for role in roles.iter().filter(|r| is_stale(r)) {
            let _ = exec(admin, &format!(r#"DROP ROLE IF EXISTS "{role}""#)).await;
        }
    }
}
