//! [`TestDb`]: one test's fresh, migrated database, and how it is dropped.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend};

use crate::conn::{HarnessError, connect, connect_admin, connect_options, exec, query_strings};
use crate::env::{
    Backend, database_url, loopback_without_tls, pooler_url, redact, say, server_url_from_env,
    with_user,
};
use crate::mysql::create_mysql;
use crate::postgres::create_postgres;
use crate::sqlite::create_sqlite;
use crate::{APP_ROLE, TIMING_VAR};

/// How a test database gets the reference schema. Both give the same schema (tests/harness.rs checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Copy a template migrated once per schema (the default, and much faster): SQLite copies the template
    /// file, PostgreSQL runs `CREATE DATABASE .. TEMPLATE`, MySQL replays the template's `SHOW CREATE TABLE`
    /// and copies its rows.
    Template,
    /// Run `Migrator::up` on an empty database.
    Migrate,
    /// An empty database, not migrated: for a test that builds a schema of its own (a service outside
    /// the reference schema, such as examples/invoicing).
    Empty,
}

/// The outcome of a test body: `()` or a `Result` whose error fails the test (so bodies may use `?`).
pub trait TestOutcome {
    /// `Err` with the error's `Debug` text when the test failed.
    fn into_outcome(self) -> Result<(), String>;
}

impl TestOutcome for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Debug> TestOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:?}"))
    }
}

/// One test's fresh, migrated database. Cheap to clone: clones share the pool and the database.
///
/// The database is dropped by [`TestDb::drop_db`] (which [`run`](crate::run) and the macros call for you, also after a
/// panic). If every clone is dropped without it, `Drop` still drops the database, blocking on a helper thread.
#[derive(Debug, Clone)]
pub struct TestDb {
    backend: Backend,
    name: String,
    url: String,
    server_url: Option<String>,
    raw: DatabaseConnection,
    setup_time: Duration,
    guard: Arc<DropGuard>,
}

impl TestDb {
    /// Creates a fresh migrated database on `backend`, reading its server URL from the environment.
    ///
    /// `None` when the backend is not configured outside CI (the harness has said so on stderr). Panics, naming
    /// the environment variable, when it is missing under CI or set but unreachable.
    pub async fn create(backend: Backend) -> Option<TestDb> {
        let server_url = server_url_from_env(backend)?;
        Some(Self::create_on(backend, &server_url).await)
    }

    /// Creates a fresh migrated database on the server at `server_url` (ignored for SQLite). Panics on failure.
    pub async fn create_on(backend: Backend, server_url: &str) -> TestDb {
        Self::create_with(backend, server_url, Strategy::Template).await
    }

    /// Like [`TestDb::create_on`], choosing how the schema gets there. Panics on failure.
    pub async fn create_with(backend: Backend, server_url: &str, strategy: Strategy) -> TestDb {
        match Self::try_create_with(backend, server_url, strategy).await {
            Ok(db) => db,
            Err(e) => match backend.env_var() {
                Some(var) => panic!(
                    "tenant-scope tests: {var}={} is set but a {backend} test database could not be created: {e}",
                    redact(server_url)
                ),
                None => {
                    panic!("tenant-scope tests: could not create a {backend} test database: {e}")
                }
            },
        }
    }

    /// Like [`TestDb::create_with`], returning the error instead of panicking.
    pub async fn try_create_with(
        backend: Backend,
        server_url: &str,
        strategy: Strategy,
    ) -> Result<TestDb, HarnessError> {
        let started = Instant::now();
        let server_url = &loopback_without_tls(backend, server_url);
        let Created {
            name,
            url,
            target,
            raw,
        } = match backend {
            Backend::Sqlite => create_sqlite(strategy).await?,
            Backend::Postgres => create_postgres(server_url, strategy).await?,
            Backend::Mysql => create_mysql(server_url, strategy).await?,
        };
        let setup_time = started.elapsed();
        if timing_enabled() {
            say(&format!(
                "tenant-scope tests: {backend} database {name} ready in {} ms",
                setup_time.as_millis()
            ));
        }
        Ok(TestDb {
            backend,
            name,
            url,
            server_url: (backend != Backend::Sqlite).then(|| server_url.to_owned()),
            raw,
            setup_time,
            guard: Arc::new(DropGuard::new(target)),
        })
    }

    /// The backend this database is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// SeaORM's backend of this database.
    pub fn db_backend(&self) -> DbBackend {
        self.backend.db_backend()
    }

    /// The database's name, `ts_test_<uuidv7>` (for SQLite, the prefix of its temp directory's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The per-test database URL, as its owner (a superuser on PostgreSQL): for setup, raw SQL and the
    /// library's system connection. The library's application connection is [`TestDb::app_url`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The per-test database URL as the application role: [`APP_ROLE`] on PostgreSQL (subject to row level
    /// security), the same as [`TestDb::url`] on SQLite and MySQL.
    pub fn app_url(&self) -> String {
        match self.backend {
            Backend::Postgres => with_user(&self.url, APP_ROLE),
            _ => self.url.clone(),
        }
    }

    /// The library on this database, as a service runs it: the application connection as [`APP_ROLE`] on
    /// PostgreSQL (so the self-check and row level security are real; through the pooler of
    /// [`PGBOUNCER_URL_VAR`](crate::PGBOUNCER_URL_VAR) if it is set) and the owner as the system connection.
    pub async fn tenant_db(&self) -> tenant_scope::TenantDb {
        self.tenant_db_with(|options| options).await
    }

    /// [`TestDb::tenant_db`] with the application's connect options changed by `f` (pool size, ...).
    pub async fn tenant_db_with(
        &self,
        f: impl FnOnce(&mut ConnectOptions) -> &mut ConnectOptions,
    ) -> tenant_scope::TenantDb {
        self.tenant_db_options(f)
            .connect()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "connecting the library to the {} test database: {e}",
                    self.backend
                )
            })
    }

    /// The options [`TestDb::tenant_db_with`] connects with, for a test that changes more of them
    /// (`.without_per_tenant_cap()`, `.per_tenant_connections(n)`, ...).
    pub fn tenant_db_options(
        &self,
        f: impl FnOnce(&mut ConnectOptions) -> &mut ConnectOptions,
    ) -> tenant_scope::TenantDbOptions {
        let pooler = match self.backend {
            Backend::Postgres => pooler_url(),
            _ => None,
        };
        let app_url = match &pooler {
            Some(pooler) => with_user(&database_url(pooler, &self.name), APP_ROLE),
            None => self.app_url(),
        };
        let mut app = connect_options(&app_url);
        f(&mut app);
        let options = tenant_scope::TenantDb::options(app).system(connect_options(&self.url));
        if pooler.is_some() {
            options.transaction_pooling(true)
        } else {
            options
        }
    }

    /// The server URL the database was created from (`None` for SQLite).
    pub fn server_url(&self) -> Option<&str> {
        self.server_url.as_deref()
    }

    /// A pool on the database, already migrated, for raw SQL and setup (not the library's path).
    pub fn raw(&self) -> &DatabaseConnection {
        &self.raw
    }

    /// How long creating (and migrating) the database took.
    pub fn setup_time(&self) -> Duration {
        self.setup_time
    }

    /// The number of rows of each of `tables`, read as the owner (so row level security hides
    /// nothing): compare a snapshot before and after a refused request to prove nothing was written.
    pub async fn row_counts(&self, tables: &[&str]) -> Vec<(String, i64)> {
        let mut counts = Vec::with_capacity(tables.len());
        for table in tables {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let row = self
                .raw
                .query_one_raw(sea_orm::Statement::from_string(self.db_backend(), sql))
                .await
                .unwrap_or_else(|e| panic!("counting the rows of {table}: {e}"))
                .unwrap_or_else(|| panic!("counting the rows of {table}: no row"));
            let count = row
                .try_get_by_index::<i64>(0)
                .unwrap_or_else(|e| panic!("counting the rows of {table}: {e}"));
            counts.push(((*table).to_owned(), count));
        }
        counts
    }

    /// Opens another pool on the database (statement logging off).
    pub async fn connect(&self) -> DatabaseConnection {
        connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("tenant-scope tests: {e}"))
    }

    /// Closes the pool and drops the database. Clones that are still around are left with a closed pool.
    pub async fn drop_db(self) -> Result<(), HarnessError> {
        let started = Instant::now();
        let _ = self.raw.close_by_ref().await;
        let target = self.guard.take();
        let result = match target {
            Some(target) => target.drop_database().await,
            None => Ok(()),
        };
        if timing_enabled() {
            say(&format!(
                "tenant-scope tests: {} database {} dropped in {} ms",
                self.backend,
                self.name,
                started.elapsed().as_millis()
            ));
        }
        result
    }
}

pub(crate) fn timing_enabled() -> bool {
    std::env::var(TIMING_VAR).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// What must be removed when a test is over.
#[derive(Debug)]
pub(crate) enum DropTarget {
    /// A SQLite file in its own temp dir.
    Sqlite(tempfile::TempDir),
    /// A database on a server.
    Server {
        backend: Backend,
        server_url: String,
        name: String,
    },
}

impl DropTarget {
    async fn drop_database(self) -> Result<(), HarnessError> {
        match self {
            DropTarget::Sqlite(dir) => {
                let path = dir.path().display().to_string();
                dir.close()
                    .map_err(|e| HarnessError::new(format!("removing {path}"), e))
            }
            DropTarget::Server {
                backend,
                server_url,
                name,
            } => {
                let admin = connect_admin(&server_url).await?;
                let sql = match backend {
                    Backend::Postgres => {
                        wait_for_sessions_to_leave(&admin, &name).await;
                        format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#)
                    }
                    _ => format!("DROP DATABASE IF EXISTS `{name}`"),
                };
                let result = exec(&admin, &sql).await;
                let _ = admin.close().await;
                result
            }
        }
    }
}

/// Waits (up to ~250 ms, polling every 5 ms) until no session is connected to PostgreSQL database `name`: the
/// backends of a pool that was just closed take a moment to exit, and `DROP DATABASE .. WITH (FORCE)` would
/// signal them and wait in 100 ms steps. Sessions still there after that (a pool the test leaked) are left to
/// `FORCE`.
async fn wait_for_sessions_to_leave(admin: &DatabaseConnection, name: &str) {
    for _ in 0..50 {
        let sessions = query_strings(
            admin,
            "SELECT pid::text FROM pg_stat_activity WHERE datname = $1",
            vec![name.into()],
        )
        .await;
        if sessions.is_ok_and(|pids| pids.is_empty()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Drops the database when the last clone of a [`TestDb`] goes away without [`TestDb::drop_db`].
#[derive(Debug)]
pub(crate) struct DropGuard {
    target: Mutex<Option<DropTarget>>,
}

impl DropGuard {
    pub(crate) fn new(target: DropTarget) -> Self {
        Self {
            target: Mutex::new(Some(target)),
        }
    }

    pub(crate) fn take(&self) -> Option<DropTarget> {
        self.target
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        let Some(target) = self.take() else {
            return;
        };
        // We may be inside a runtime (where block_on panics) or outside any: use a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| HarnessError::new("building a runtime to drop a test database", e))?;
            runtime.block_on(target.drop_database())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => say(&format!(
                "tenant-scope tests: could not drop a test database: {e}"
            )),
            Err(_) => say("tenant-scope tests: dropping a test database panicked"),
        }
    }
}

/// Whether a database named `name` exists on the server at `server_url`.
pub async fn database_exists(
    backend: Backend,
    server_url: &str,
    name: &str,
) -> Result<bool, HarnessError> {
    let admin = connect_admin(server_url).await?;
    let sql = match backend {
        Backend::Postgres => "SELECT datname::text FROM pg_database WHERE datname = $1",
        Backend::Mysql => {
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?"
        }
        Backend::Sqlite => return Ok(Path::new(name).exists()),
    };
    let found = query_strings(&admin, sql, vec![name.into()]).await;
    let _ = admin.close().await;
    Ok(!found?.is_empty())
}

/// A test database just made: name, URL, what to drop, and a pool on it.
pub(crate) struct Created {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) target: DropTarget,
    pub(crate) raw: DatabaseConnection,
}
