//! The per-backend test harness: write an integration test once, run it on every backend.
//!
//! Like `#[sqlx::test]` and Toasty's `#[driver_test]`: every test gets its own fresh, migrated database, and
//! the database is dropped afterwards, also when the test body panics.
//!
//! ```ignore
//! mod common;
//! use common::TestDb;
//!
//! common::backend_test!(cross_tenant_get_is_not_found, |t: TestDb| async move {
//!     // t.backend(), t.url(), t.raw() ...
//! });
//! ```
//!
//! expands to `mod cross_tenant_get_is_not_found { async fn sqlite(); async fn postgres(); async fn mysql() }`,
//! three `#[tokio::test]`s, so every backend counts the same tests and a failure names its backend.
//!
//! # Backends
//! Every backend copies a template migrated once per schema ([`Strategy::Template`]); templates are named
//! `ts_tpl_<hash>` after a hash of the migration names and of the migration sources (`migration/src`,
//! `src/schema`), so any schema change makes a new template, and the templates of other schemas are dropped.
//! tests/harness.rs checks that a template copy has exactly the schema of a fresh migration.
//! - **SQLite** always runs: a fresh file `$TMPDIR/tenant-scope-tests/ts_test_<uuid>.*/test.db` per test,
//!   copied from `$TMPDIR/tenant-scope-tests/ts_tpl_<hash>.db` and opened as `sqlite://PATH?mode=rwc` (never
//!   `:memory:`: each pooled connection would be its own database). sqlx turns `PRAGMA foreign_keys` on for
//!   every connection.
//! - **PostgreSQL** runs when `TENANT_SCOPE_TEST_POSTGRES_URL` is set to a server URL such as
//!   `postgres://postgres@127.0.0.1:5432/test` (a role that may `CREATE DATABASE`). Each test runs
//!   `CREATE DATABASE ts_test_<uuid> TEMPLATE ts_tpl_<hash>` and `DROP DATABASE .. WITH (FORCE)` afterwards.
//!   Building or dropping a template takes `pg_advisory_lock`; copying one takes the same lock in shared mode.
//! - **MySQL / MariaDB** runs when `TENANT_SCOPE_TEST_MYSQL_URL` is set (e.g. `mysql://root@127.0.0.1:3306/test`):
//!   `CREATE DATABASE ts_test_<uuid>`, then the template's tables as `SHOW CREATE TABLE` prints them and their
//!   rows, under the named lock `GET_LOCK('tenant_scope_test_template')`; `DROP DATABASE` afterwards. If the
//!   template ever holds views, triggers, routines or events, each test database is migrated instead.
//!
//! For a server on a loopback address whose URL does not set `sslmode`, the harness adds `sslmode=disable`
//! (`ssl-mode=disabled` on MySQL) to every URL it derives, `t.url()` included: sqlx prefers TLS, and a TLS
//! handshake costs ~90 ms per connection in a debug build.
//!
//! Under `CI=true` (or `CI=1`) an unset backend URL fails the test; outside CI the backend's tests return early
//! and the harness says so once per process on stderr. A URL that is set but unreachable always fails.
//!
//! # Leftovers
//! A test process that is killed (not one that panics) cannot drop its database. Test database names embed a
//! UUIDv7, so their creation time is known: the first test of each process drops `ts_test_*` databases (and
//! SQLite temp directories) older than [`STALE_AFTER`]. Set `TENANT_SCOPE_TEST_TIMING=1` to print each test
//! database's setup and drop time on stderr.

// This module is compiled into every test binary and each binary uses a different part of it.
#![allow(dead_code)]

use std::{
    fmt,
    future::Future,
    io::Write as _,
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, Once, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use futures::FutureExt as _;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use sea_orm_migration::MigratorTrait;
use sha2::{Digest as _, Sha256};

/// The migrator every test database is migrated with.
pub(crate) type Migrator = migration::Migrator;

/// The environment variable that enables the PostgreSQL tests.
pub(crate) const POSTGRES_URL_VAR: &str = "TENANT_SCOPE_TEST_POSTGRES_URL";
/// The environment variable that enables the MySQL / MariaDB tests.
pub(crate) const MYSQL_URL_VAR: &str = "TENANT_SCOPE_TEST_MYSQL_URL";
/// Set to `1` to print per-test database setup and drop times on stderr.
pub(crate) const TIMING_VAR: &str = "TENANT_SCOPE_TEST_TIMING";
/// Test databases (and SQLite temp dirs) older than this are leftovers of killed runs and are dropped.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(60 * 60);
/// The unprivileged application role the library connects as on PostgreSQL: `LOGIN`, not a superuser, no
/// `BYPASSRLS`, owns nothing (`.ci/postgres-setup.sql` creates it; the reference migration grants it what it
/// needs). Superusers bypass row level security, so tests of the library never connect as one.
pub(crate) const APP_ROLE: &str = "tenant_scope_app";
/// Prefix of every per-test database.
pub(crate) const TEST_DB_PREFIX: &str = "ts_test_";
/// Prefix of the template databases (and of the SQLite template files).
pub(crate) const TEMPLATE_PREFIX: &str = "ts_tpl_";
/// How long connecting to a configured server may take before the test fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `pg_advisory_lock` key that serializes template creation (ASCII "tsTEMPL" + 1).
const TEMPLATE_LOCK_KEY: i64 = 0x7473_5445_4d50_4c01;

/// A database backend the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Backend {
    /// SQLite, always available.
    Sqlite,
    /// PostgreSQL, when `TENANT_SCOPE_TEST_POSTGRES_URL` is set.
    Postgres,
    /// MySQL or MariaDB, when `TENANT_SCOPE_TEST_MYSQL_URL` is set.
    Mysql,
}

impl Backend {
    /// Every backend, in the order the macros generate them.
    pub(crate) const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::Mysql];

    /// Human name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::Mysql => "MySQL",
        }
    }

    /// The environment variable that holds the server URL (`None` for SQLite, which needs none).
    pub(crate) fn env_var(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(POSTGRES_URL_VAR),
            Backend::Mysql => Some(MYSQL_URL_VAR),
        }
    }

    /// SeaORM's name for the backend.
    pub(crate) fn db_backend(self) -> DbBackend {
        match self {
            Backend::Sqlite => DbBackend::Sqlite,
            Backend::Postgres => DbBackend::Postgres,
            Backend::Mysql => DbBackend::MySql,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the `CI` variable's value means "running in CI" (`true`, any case, or `1`).
pub(crate) fn is_ci(ci: Option<&str>) -> bool {
    ci.map(str::trim)
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Decides from the environment values whether `backend`'s tests run, and against which server URL.
///
/// `url` is the value of the backend's URL variable and `ci` the value of `CI` (both `None` when unset; an
/// empty URL counts as unset). Returns `None` when the tests are not run. Panics, naming the variable, when the
/// URL is missing under CI. Takes the values as arguments so tests can check it without touching the process
/// environment; [`server_url_from_env`] is the wrapper that reads it.
pub(crate) fn resolve(backend: Backend, url: Option<&str>, ci: Option<&str>) -> Option<String> {
    let var = backend.env_var()?;
    match url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => Some(url.to_owned()),
        None if is_ci(ci) => panic!(
            "tenant-scope tests: {var} is not set but CI=true: the {backend} tests must run in CI. \
             Set {var} to a server URL, e.g. {}",
            example_url(backend)
        ),
        None => None,
    }
}

/// The message printed (once per process) when a backend's tests are not run.
pub(crate) fn skip_notice(backend: Backend) -> String {
    let var = backend.env_var().unwrap_or("(none)");
    format!(
        "tenant-scope tests: {var} not set; {backend} tests are not run (set it, or CI=true makes this an error)"
    )
}

fn example_url(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite://PATH?mode=rwc",
        Backend::Postgres => "postgres://postgres@127.0.0.1:5432/test",
        Backend::Mysql => "mysql://root@127.0.0.1:3306/test",
    }
}

/// Reads the backend's server URL from the environment (see [`resolve`]); says once per process on stderr when
/// the backend is skipped. `Some("")` for SQLite, which needs no server.
pub(crate) fn server_url_from_env(backend: Backend) -> Option<String> {
    let Some(var) = backend.env_var() else {
        return Some(String::new());
    };
    let url = std::env::var(var).ok();
    let ci = std::env::var("CI").ok();
    let resolved = resolve(backend, url.as_deref(), ci.as_deref());
    if resolved.is_none() {
        static POSTGRES: Once = Once::new();
        static MYSQL: Once = Once::new();
        let once = if backend == Backend::Postgres {
            &POSTGRES
        } else {
            &MYSQL
        };
        once.call_once(|| say(&skip_notice(backend)));
    }
    resolved
}

/// Writes a line straight to the process's stderr, past libtest's output capture.
pub(crate) fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Replaces the password of a URL with `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `server_url` with TLS turned off when the server is on this machine (loopback host) and the URL does not
/// choose (`sslmode` / `ssl-mode`). sqlx prefers TLS by default, and a TLS handshake costs ~90 ms in a debug
/// build: each test opens several connections, so this makes PostgreSQL tests several times faster. An explicit
/// `sslmode` in the URL is kept.
pub(crate) fn loopback_without_tls(backend: Backend, server_url: &str) -> String {
    let Some((_, rest)) = server_url.split_once("://") else {
        return server_url.to_owned();
    };
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        &host_port[..host_port.find(']').map_or(host_port.len(), |i| i + 1)]
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
    let query = server_url.split_once('?').map_or("", |(_, q)| q);
    let chosen = query
        .split('&')
        .any(|pair| matches!(pair.split('=').next(), Some("sslmode" | "ssl-mode")));
    let setting = match backend {
        Backend::Postgres => "sslmode=disable",
        Backend::Mysql => "ssl-mode=disabled",
        Backend::Sqlite => return server_url.to_owned(),
    };
    if !loopback || chosen {
        server_url.to_owned()
    } else if server_url.contains('?') {
        format!("{server_url}&{setting}")
    } else {
        format!("{server_url}?{setting}")
    }
}

/// A PostgreSQL role made for one test, `ts_test_<uuidv7>`: roles belong to the whole server, so a test that
/// changes a role's attributes or memberships makes its own instead of touching [`APP_ROLE`], which every other
/// test uses at the same time. [`TestRole::drop_role`] removes it (after `DROP OWNED` in the test database);
/// the harness's sweep drops leftovers of killed runs.
#[derive(Debug, Clone)]
pub(crate) struct TestRole {
    name: String,
    url: String,
}

impl TestRole {
    /// Creates a `LOGIN` role with `attributes` (e.g. `"NOSUPERUSER BYPASSRLS"`) in `t`'s server, and grants it
    /// what the reference migration grants [`APP_ROLE`] in `t`'s database (by making it a member of no role:
    /// the privileges are granted directly, so `pg_has_role` tests stay about the role alone).
    pub(crate) async fn create(t: &TestDb, attributes: &str) -> TestRole {
        assert_eq!(
            t.backend(),
            Backend::Postgres,
            "roles are a PostgreSQL test tool"
        );
        let name = new_database_name();
        let sql = format!(
            r#"CREATE ROLE "{name}" LOGIN {attributes};
               GRANT USAGE ON SCHEMA public TO "{name}";
               GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{name}";"#
        );
        exec(t.raw(), &sql)
            .await
            .unwrap_or_else(|e| panic!("tenant-scope tests: creating role {name}: {e}"));
        let url = with_user(t.url(), &name);
        TestRole { name, url }
    }

    /// The role's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The test database's URL, as this role.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Drops what the role owns and is granted in `t`'s database, then the role. Pools connected as the role
    /// must be closed first, and tables the role owns should be handed back first if other tables reference
    /// them (`DROP OWNED` would fail on the dependency). Panics if the role cannot be dropped, so a test
    /// cannot leave roles behind unnoticed.
    pub(crate) async fn drop_role(self, t: &TestDb) {
        let name = &self.name;
        let owned = exec(t.raw(), &format!(r#"DROP OWNED BY "{name}""#)).await;
        let server = t.server_url().unwrap_or(t.url()).to_owned();
        let dropped = match connect_admin(&server).await {
            Ok(admin) => {
                let dropped = exec(&admin, &format!(r#"DROP ROLE IF EXISTS "{name}""#)).await;
                let _ = admin.close().await;
                dropped
            }
            Err(e) => Err(e),
        };
        if let Err(e) = owned.and(dropped) {
            panic!("tenant-scope tests: could not drop the test role {name}: {e}");
        }
    }
}

/// `url` with its user replaced by `user` (and no password: the test servers trust local connections).
pub(crate) fn with_user(url: &str, user: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{user}@{host}{tail}")
}

/// The URL of database `name` on the server of `server_url`: the path is replaced, the query string is kept.
pub(crate) fn database_url(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Connect options used for every connection the harness opens: statement logging off.
pub(crate) fn connect_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false);
    options
}

/// Opens a pool on `url` (statement logging off).
pub(crate) async fn connect(url: &str) -> Result<DatabaseConnection, HarnessError> {
    Database::connect(connect_options(url))
        .await
        .map_err(|e| HarnessError::new(format!("connecting to {}", redact(url)), e))
}

/// A one-connection pool on the server's maintenance database (session-level locks stay on one connection).
async fn connect_admin(server_url: &str) -> Result<DatabaseConnection, HarnessError> {
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
pub(crate) struct HarnessError {
    /// What the harness was doing.
    pub(crate) context: String,
    /// What went wrong.
    pub(crate) error: String,
}

impl HarnessError {
    fn new(context: impl Into<String>, error: impl fmt::Display) -> Self {
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
async fn exec(conn: &DatabaseConnection, sql: &str) -> Result<(), HarnessError> {
    conn.execute_unprepared(sql)
        .await
        .map(drop)
        .map_err(|e| HarnessError::new(format!("running `{sql}`"), e))
}

/// Returns the first column of every row of `sql` as strings.
async fn query_strings(
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

/// A fresh per-test database name: `ts_test_` and a UUIDv7, whose timestamp says when it was made.
pub(crate) fn new_database_name() -> String {
    format!("{TEST_DB_PREFIX}{}", uuid::Uuid::now_v7().simple())
}

/// When a `ts_test_<uuidv7>` database (or temp dir) was created, from the name; `None` for other names.
pub(crate) fn created_at(name: &str) -> Option<SystemTime> {
    let id = uuid::Uuid::try_parse(name.strip_prefix(TEST_DB_PREFIX)?.get(..32)?).ok()?;
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

fn is_stale(name: &str) -> bool {
    created_at(name)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > STALE_AFTER)
}

/// The name of the template for the current schema, on every backend: `ts_tpl_` and a hash of the migration
/// names and of the sources they are built from (`migration/src`, `src/schema`), so any schema change gets a new
/// template.
pub(crate) fn template_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let mut hash = Sha256::new();
        hash.update(b"tenant-scope test template v1\n");
        for migration in Migrator::migrations() {
            hash.update(migration.name().as_bytes());
            hash.update(b"\n");
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["migration/src", "src/schema"] {
            collect_files(&root.join(dir), &mut files);
        }
        files.sort();
        for file in files {
            if let Ok(bytes) = std::fs::read(&file) {
                hash.update(
                    file.strip_prefix(root)
                        .unwrap_or(&file)
                        .to_string_lossy()
                        .as_bytes(),
                );
                hash.update(b"\0");
                hash.update(&bytes);
            }
        }
        let digest = hash.finalize();
        format!("{TEMPLATE_PREFIX}{}", hex::encode(&digest[..8]))
    })
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// How a test database gets the reference schema. Both give the same schema (tests/harness.rs checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Copy a template migrated once per schema (the default, and much faster): SQLite copies the template
    /// file, PostgreSQL runs `CREATE DATABASE .. TEMPLATE`, MySQL replays the template's `SHOW CREATE TABLE`
    /// and copies its rows.
    Template,
    /// Run `Migrator::up` on an empty database.
    Migrate,
}

/// The outcome of a test body: `()` or a `Result` whose error fails the test (so bodies may use `?`).
pub(crate) trait TestOutcome {
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
/// The database is dropped by [`TestDb::drop_db`] (which [`run`] and the macros call for you, also after a
/// panic). If every clone is dropped without it, `Drop` still drops the database, blocking on a helper thread.
#[derive(Debug, Clone)]
pub(crate) struct TestDb {
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
    pub(crate) async fn create(backend: Backend) -> Option<TestDb> {
        let server_url = server_url_from_env(backend)?;
        Some(Self::create_on(backend, &server_url).await)
    }

    /// Creates a fresh migrated database on the server at `server_url` (ignored for SQLite). Panics on failure.
    pub(crate) async fn create_on(backend: Backend, server_url: &str) -> TestDb {
        Self::create_with(backend, server_url, Strategy::Template).await
    }

    /// Like [`TestDb::create_on`], choosing how the schema gets there. Panics on failure.
    pub(crate) async fn create_with(
        backend: Backend,
        server_url: &str,
        strategy: Strategy,
    ) -> TestDb {
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
    pub(crate) async fn try_create_with(
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
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// SeaORM's backend of this database.
    pub(crate) fn db_backend(&self) -> DbBackend {
        self.backend.db_backend()
    }

    /// The database's name, `ts_test_<uuidv7>` (for SQLite, the prefix of its temp directory's name).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The per-test database URL, as its owner (a superuser on PostgreSQL): for setup, raw SQL and the
    /// library's system connection. The library's application connection is [`TestDb::app_url`].
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The per-test database URL as the application role: [`APP_ROLE`] on PostgreSQL (subject to row level
    /// security), the same as [`TestDb::url`] on SQLite and MySQL.
    pub(crate) fn app_url(&self) -> String {
        match self.backend {
            Backend::Postgres => with_user(&self.url, APP_ROLE),
            _ => self.url.clone(),
        }
    }

    /// The library on this database, as a service runs it: the application connection as [`APP_ROLE`] on
    /// PostgreSQL (so the self-check and row level security are real) and the owner as the system connection.
    pub(crate) async fn tenant_db(&self) -> tenant_scope::TenantDb {
        self.tenant_db_with(|options| options).await
    }

    /// [`TestDb::tenant_db`] with the application's connect options changed by `f` (pool size, ...).
    pub(crate) async fn tenant_db_with(
        &self,
        f: impl FnOnce(&mut ConnectOptions) -> &mut ConnectOptions,
    ) -> tenant_scope::TenantDb {
        let mut app = connect_options(&self.app_url());
        f(&mut app);
        tenant_scope::TenantDb::options(app)
            .system(connect_options(&self.url))
            .connect()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "connecting the library to the {} test database: {e}",
                    self.backend
                )
            })
    }

    /// The server URL the database was created from (`None` for SQLite).
    pub(crate) fn server_url(&self) -> Option<&str> {
        self.server_url.as_deref()
    }

    /// A pool on the database, already migrated, for raw SQL and setup (not the library's path).
    pub(crate) fn raw(&self) -> &DatabaseConnection {
        &self.raw
    }

    /// How long creating (and migrating) the database took.
    pub(crate) fn setup_time(&self) -> Duration {
        self.setup_time
    }

    /// Opens another pool on the database (statement logging off).
    pub(crate) async fn connect(&self) -> DatabaseConnection {
        connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("tenant-scope tests: {e}"))
    }

    /// Closes the pool and drops the database. Clones that are still around are left with a closed pool.
    pub(crate) async fn drop_db(self) -> Result<(), HarnessError> {
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

fn timing_enabled() -> bool {
    std::env::var(TIMING_VAR).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// What must be removed when a test is over.
#[derive(Debug)]
enum DropTarget {
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
struct DropGuard {
    target: Mutex<Option<DropTarget>>,
}

impl DropGuard {
    fn new(target: DropTarget) -> Self {
        Self {
            target: Mutex::new(Some(target)),
        }
    }

    fn take(&self) -> Option<DropTarget> {
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

/// Runs `body` with a fresh database on `backend`, then drops the database, also if `body` panics or fails.
///
/// Returns at once when the backend is not configured outside CI. This is what [`backend_test!`] calls.
pub(crate) async fn run<F, Fut, R>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = R>,
    R: TestOutcome,
{
    if let Some(db) = TestDb::create(backend).await {
        run_with(db, body).await;
    }
}

/// Runs `body` with `db`, then drops `db`, also if `body` panics (the panic is then resumed).
pub(crate) async fn run_with<F, Fut, R>(db: TestDb, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = R>,
    R: TestOutcome,
{
    let backend = db.backend();
    let handle = db.clone();
    let outcome = AssertUnwindSafe(async move { body(handle).await.into_outcome() })
        .catch_unwind()
        .await;
    let dropped = db.drop_db().await;
    match outcome {
        Err(panic) => {
            if let Err(e) = dropped {
                say(&format!(
                    "tenant-scope tests: could not drop the {backend} test database: {e}"
                ));
            }
            std::panic::resume_unwind(panic)
        }
        Ok(Err(error)) => panic!("test failed on {backend}: {error}"),
        Ok(Ok(())) => {
            if let Err(e) = dropped {
                panic!("tenant-scope tests: could not drop the {backend} test database: {e}");
            }
        }
    }
}

/// [`run`] for synchronous code: builds a multi-thread runtime (2 workers) and blocks on it.
pub(crate) fn block_on_run<F, Fut, R>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = R>,
    R: TestOutcome,
{
    new_runtime().block_on(run(backend, body));
}

/// The runtime the synchronous entry points use: multi-thread with 2 workers, like the macro's tests.
pub(crate) fn new_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

/// A runtime and a test database, for synchronous tests such as proptests: create it once per test and
/// `block_on` each case. Dropping it drops the database.
///
/// ```ignore
/// common::blocking_backend_test!(prop_roundtrip, |t: &BlockingTestDb| {
///     proptest::test_runner::TestRunner::default()
///         .run(&any::<u8>(), |x| { t.block_on(async { /* t.db().raw() ... */ }); Ok(()) })
///         .expect("property holds");
/// });
/// ```
#[derive(Debug)]
pub(crate) struct BlockingTestDb {
    db: Option<TestDb>,
    runtime: tokio::runtime::Runtime,
}

impl BlockingTestDb {
    /// A runtime and a fresh database on `backend`; `None` when the backend is not configured (outside CI).
    pub(crate) fn create(backend: Backend) -> Option<BlockingTestDb> {
        let runtime = new_runtime();
        let db = runtime.block_on(TestDb::create(backend))?;
        Some(BlockingTestDb {
            db: Some(db),
            runtime,
        })
    }

    /// The database.
    pub(crate) fn db(&self) -> &TestDb {
        self.db
            .as_ref()
            .expect("the test database is present until drop")
    }

    /// Runs a future to completion on the runtime.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

impl Drop for BlockingTestDb {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            let backend = db.backend();
            if let Err(e) = self.runtime.block_on(db.drop_db()) {
                say(&format!(
                    "tenant-scope tests: could not drop the {backend} test database: {e}"
                ));
            }
        }
    }
}

/// Writes one `#[tokio::test]` per backend: `mod NAME { async fn sqlite(); async fn postgres(); async fn mysql() }`.
///
/// The body is a closure taking a [`TestDb`] and returning a future of `()` or of a `Result<(), E: Debug>`;
/// it is written once and instantiated for every backend. Attributes before the name (e.g. `#[ignore]`) are put
/// on each of the three tests. The module imports `super::*`, so the body sees the test file's items.
///
/// ```ignore
/// common::backend_test!(cross_tenant_get_is_not_found, |t: TestDb| async move { /* ... */ });
/// ```
#[allow(unused_macros)] // not every test binary uses both macros
macro_rules! backend_test {
    ($(#[$meta:meta])* $name:ident, $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                crate::common::run(crate::common::Backend::Sqlite, $body).await;
            }

            $(#[$meta])*
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::common::run(crate::common::Backend::Postgres, $body).await;
            }

            $(#[$meta])*
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                crate::common::run(crate::common::Backend::Mysql, $body).await;
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use backend_test;

/// Writes one synchronous `#[test]` per backend, for proptests: the body is a closure taking a
/// `&BlockingTestDb` (a runtime plus a fresh database, dropped afterwards, also on panic).
///
/// ```ignore
/// common::blocking_backend_test!(ids_roundtrip, |t: &BlockingTestDb| {
///     t.block_on(async { /* t.db().raw() ... */ });
/// });
/// ```
#[allow(unused_macros)] // not every test binary uses both macros
macro_rules! blocking_backend_test {
    ($(#[$meta:meta])* $name:ident, $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[test]
            fn sqlite() {
                crate::common::run_blocking(crate::common::Backend::Sqlite, $body);
            }

            $(#[$meta])*
            #[test]
            fn postgres() {
                crate::common::run_blocking(crate::common::Backend::Postgres, $body);
            }

            $(#[$meta])*
            #[test]
            fn mysql() {
                crate::common::run_blocking(crate::common::Backend::Mysql, $body);
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use blocking_backend_test;

/// Runs a synchronous `body` with a [`BlockingTestDb`] on `backend`, dropping the database afterwards (also on
/// panic). Returns at once when the backend is not configured outside CI.
pub(crate) fn run_blocking<F, R>(backend: Backend, body: F)
where
    F: FnOnce(&BlockingTestDb) -> R,
    R: TestOutcome,
{
    let Some(db) = BlockingTestDb::create(backend) else {
        return;
    };
    // `db` is dropped (and with it the database) while a panic unwinds, too.
    if let Err(error) = body(&db).into_outcome() {
        drop(db);
        panic!("test failed on {backend}: {error}");
    }
}

/// Whether a database named `name` exists on the server at `server_url`.
pub(crate) async fn database_exists(
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
struct Created {
    name: String,
    url: String,
    target: DropTarget,
    raw: DatabaseConnection,
}

/// `sqlite://PATH?mode=rwc`.
fn sqlite_url(file: &Path) -> String {
    format!("sqlite://{}?mode=rwc", file.display())
}

/// SQLite: a fresh file in its own temp dir under `$TMPDIR/tenant-scope-tests`: a copy of the migrated template
/// file, or migrated in place.
async fn create_sqlite(strategy: Strategy) -> Result<Created, HarnessError> {
    let base = std::env::temp_dir().join("tenant-scope-tests");
    std::fs::create_dir_all(&base)
        .map_err(|e| HarnessError::new(format!("creating {}", base.display()), e))?;
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| sweep_sqlite(&base));
    let name = new_database_name();
    let dir = tempfile::Builder::new()
        .prefix(&format!("{name}."))
        .tempdir_in(&base)
        .map_err(|e| HarnessError::new(format!("creating a temp dir in {}", base.display()), e))?;
    let file = dir.path().join("test.db");
    let url = sqlite_url(&file);
    match strategy {
        Strategy::Template => {
            let template = sqlite_template(&base, false).await?;
            let copied = match std::fs::copy(&template, &file) {
                // Swept away between the check and the copy (by another checkout's run): build it again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::copy(sqlite_template(&base, true).await?, &file)
                }
                copied => copied,
            };
            copied.map_err(|e| {
                HarnessError::new(
                    format!("copying {} to {}", template.display(), file.display()),
                    e,
                )
            })?;
            let raw = connect(&url).await?;
            Ok(Created {
                name,
                url,
                target: DropTarget::Sqlite(dir),
                raw,
            })
        }
        Strategy::Migrate => {
            let raw = connect(&url).await?;
            Migrator::up(&raw, None)
                .await
                .map_err(|e| HarnessError::new("migrating the SQLite test database", e))?;
            Ok(Created {
                name,
                url,
                target: DropTarget::Sqlite(dir),
                raw,
            })
        }
    }
}

/// The migrated SQLite template file for the current schema, `$TMPDIR/tenant-scope-tests/ts_tpl_<hash>.db`,
/// built if missing (or if `rebuild`). It is migrated under a name of its own and renamed into place, so
/// concurrent test processes see either no template or a complete one (two may both build it; the second
/// rename replaces an identical file).
async fn sqlite_template(base: &Path, rebuild: bool) -> Result<PathBuf, HarnessError> {
    let path = base.join(format!("{}.db", template_name()));
    if path.exists() && !rebuild {
        return Ok(path);
    }
    let started = Instant::now();
    // Named like a test database so that the sweep removes it if this process dies while building.
    let building = base.join(format!("{}.template-building.db", new_database_name()));
    let conn = connect(&sqlite_url(&building)).await?;
    let migrated = Migrator::up(&conn, None)
        .await
        .map_err(|e| HarnessError::new("migrating the SQLite template", e));
    // Closing the last connection leaves one self-contained file (no -wal or -journal beside it).
    let closed = conn
        .close()
        .await
        .map_err(|e| HarnessError::new("closing the SQLite template", e));
    let renamed = migrated.and(closed).and_then(|()| {
        std::fs::rename(&building, &path).map_err(|e| {
            HarnessError::new(
                format!("renaming {} to {}", building.display(), path.display()),
                e,
            )
        })
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&building);
    }
    renamed?;
    // Templates of other schemas: keep recent ones (a concurrent run of another checkout may use them).
    if let Ok(entries) = std::fs::read_dir(base) {
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > STALE_AFTER);
            if file_name.starts_with(TEMPLATE_PREFIX) && entry.path() != path && old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    if timing_enabled() {
        say(&format!(
            "tenant-scope tests: SQLite template {} built in {} ms",
            path.display(),
            started.elapsed().as_millis()
        ));
    }
    Ok(path)
}

/// Removes SQLite test dirs (and half-built templates) that killed runs left behind.
fn sweep_sqlite(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        if is_stale(&entry.file_name().to_string_lossy()) {
            let path = entry.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

/// PostgreSQL: `CREATE DATABASE .. TEMPLATE` from the migrated template (creating the template if needed), or
/// `CREATE DATABASE` and a migration.
async fn create_postgres(server_url: &str, strategy: Strategy) -> Result<Created, HarnessError> {
    let admin = connect_admin(server_url).await?;
    static ROLE_CHECKED: AtomicBool = AtomicBool::new(false);
    if !ROLE_CHECKED.load(Ordering::Relaxed) {
        if let Err(e) = check_app_role(&admin).await {
            let _ = admin.close().await;
            return Err(e);
        }
        ROLE_CHECKED.store(true, Ordering::Relaxed);
    }
    let name = new_database_name();
    let created = match strategy {
        Strategy::Template => create_from_template(&admin, server_url, &name).await,
        Strategy::Migrate => exec(&admin, &format!(r#"CREATE DATABASE "{name}""#)).await,
    };
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if created.is_ok() && !SWEPT.swap(true, Ordering::Relaxed) {
        sweep_server(&admin, Backend::Postgres).await;
    }
    let _ = admin.close().await;
    created?;
    // From here on the guard drops the database if anything fails.
    let guard = DropGuard::new(DropTarget::Server {
        backend: Backend::Postgres,
        server_url: server_url.to_owned(),
        name: name.clone(),
    });
    let url = database_url(server_url, &name);
    let raw = connect(&url).await?;
    if strategy == Strategy::Migrate {
        Migrator::up(&raw, None).await.map_err(|e| {
            HarnessError::new(format!("migrating the PostgreSQL test database {name}"), e)
        })?;
    }
    let target = guard.take().expect("the drop target was just set");
    Ok(Created {
        name,
        url,
        target,
        raw,
    })
}

/// The application role must exist, unprivileged, before a template is migrated: the reference migration
/// grants it its privileges only if it exists, and the tests connect as it.
async fn check_app_role(admin: &DatabaseConnection) -> Result<(), HarnessError> {
    let found = query_strings(
        admin,
        "SELECT (rolcanlogin AND NOT rolsuper AND NOT rolbypassrls)::text FROM pg_roles WHERE rolname = $1",
        vec![APP_ROLE.into()],
    )
    .await?;
    match found.as_slice() {
        [ok] if ok == "true" => Ok(()),
        [_] => Err(HarnessError::new(
            format!("checking the role {APP_ROLE}"),
            "it exists but is not LOGIN NOSUPERUSER NOBYPASSRLS; fix it (see .ci/postgres-setup.sql)",
        )),
        _ => Err(HarnessError::new(
            format!("checking the role {APP_ROLE}"),
            "it does not exist; create it as a superuser with `psql -f .ci/postgres-setup.sql` \
             (the library's tests connect as this unprivileged role, never as a superuser)",
        )),
    }
}

async fn create_from_template(
    admin: &DatabaseConnection,
    server_url: &str,
    name: &str,
) -> Result<(), HarnessError> {
    let template = template_name();
    let create = format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#);
    // Fast path: the template exists. The shared lock keeps a template rebuild from dropping it under us.
    exec(
        admin,
        &format!("SELECT pg_advisory_lock_shared({TEMPLATE_LOCK_KEY})"),
    )
    .await?;
    let result = async {
        if pg_template_ready(admin, template).await? {
            exec(admin, &create).await.map(|()| true)
        } else {
            Ok(false)
        }
    }
    .await;
    exec(
        admin,
        &format!("SELECT pg_advisory_unlock_shared({TEMPLATE_LOCK_KEY})"),
    )
    .await?;
    if result? {
        return Ok(());
    }
    // Slow path: build the template under the exclusive lock (another process may have done it meanwhile).
    exec(
        admin,
        &format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"),
    )
    .await?;
    let result = async {
        if !pg_template_ready(admin, template).await? {
            build_pg_template(admin, server_url, template).await?;
        }
        exec(admin, &create).await
    }
    .await;
    exec(
        admin,
        &format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"),
    )
    .await?;
    result
}

async fn pg_template_ready(
    admin: &DatabaseConnection,
    template: &str,
) -> Result<bool, HarnessError> {
    let ready = query_strings(
        admin,
        "SELECT datname::text FROM pg_database WHERE datname = $1 AND datistemplate",
        vec![template.into()],
    )
    .await?;
    Ok(!ready.is_empty())
}

/// Creates and migrates the template, marks it a template nobody can connect to, and drops the templates of
/// other schemas. Called with the exclusive advisory lock held, so nobody is copying those.
async fn build_pg_template(
    admin: &DatabaseConnection,
    server_url: &str,
    template: &str,
) -> Result<(), HarnessError> {
    let started = Instant::now();
    // A half-built template of a run that died is not marked as a template: start over.
    exec(
        admin,
        &format!(r#"DROP DATABASE IF EXISTS "{template}" WITH (FORCE)"#),
    )
    .await?;
    exec(admin, &format!(r#"CREATE DATABASE "{template}""#)).await?;
    let conn = connect(&database_url(server_url, template)).await?;
    let migrated = Migrator::up(&conn, None)
        .await
        .map_err(|e| HarnessError::new(format!("migrating the PostgreSQL template {template}"), e));
    let _ = conn.close().await;
    migrated?;
    exec(
        admin,
        &format!(r#"ALTER DATABASE "{template}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"#),
    )
    .await?;
    let others = query_strings(
        admin,
        r"SELECT datname::text FROM pg_database WHERE datname LIKE 'ts\_tpl\_%' AND datname <> $1",
        vec![template.into()],
    )
    .await?;
    for other in others {
        exec(
            admin,
            &format!(r#"ALTER DATABASE "{other}" WITH IS_TEMPLATE false"#),
        )
        .await?;
        exec(
            admin,
            &format!(r#"DROP DATABASE IF EXISTS "{other}" WITH (FORCE)"#),
        )
        .await?;
    }
    if timing_enabled() {
        say(&format!(
            "tenant-scope tests: PostgreSQL template {template} built in {} ms",
            started.elapsed().as_millis()
        ));
    }
    Ok(())
}

/// Drops `ts_test_*` databases older than [`STALE_AFTER`] (leftovers of killed runs). Best effort.
async fn sweep_server(admin: &DatabaseConnection, backend: Backend) {
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

/// MySQL / MariaDB: a copy of the migrated template database, or `CREATE DATABASE` and a migration.
async fn create_mysql(server_url: &str, strategy: Strategy) -> Result<Created, HarnessError> {
    let admin = connect_admin(server_url).await?;
    let name = new_database_name();
    // Set before anything is created: DROP DATABASE IF EXISTS is harmless if nothing was.
    let guard = DropGuard::new(DropTarget::Server {
        backend: Backend::Mysql,
        server_url: server_url.to_owned(),
        name: name.clone(),
    });
    let copied = match strategy {
        Strategy::Template => copy_mysql_template(&admin, server_url, &name).await,
        Strategy::Migrate => exec(
            &admin,
            &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"),
        )
        .await
        .map(|()| false),
    };
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if copied.is_ok() && !SWEPT.swap(true, Ordering::Relaxed) {
        sweep_server(&admin, Backend::Mysql).await;
    }
    let _ = admin.close().await;
    let copied = copied?;
    let url = database_url(server_url, &name);
    let raw = connect(&url).await?;
    if !copied {
        Migrator::up(&raw, None).await.map_err(|e| {
            HarnessError::new(format!("migrating the MySQL test database {name}"), e)
        })?;
    }
    let target = guard.take().expect("the drop target was just set");
    Ok(Created {
        name,
        url,
        target,
        raw,
    })
}

/// MySQL named lock that serializes building, dropping and copying templates.
const MYSQL_TEMPLATE_LOCK: &str = "tenant_scope_test_template";

/// Creates database `name` as a copy of the migrated template (building the template if needed): the
/// template's tables as `SHOW CREATE TABLE` prints them (columns, keys, indexes, foreign keys, checks, table
/// options) and their rows (the migration bookkeeping, any seed data). Returns `false`, having created an empty
/// database, when the template has objects this copy does not handle (views, triggers, routines, events): the
/// caller then migrates it. Everything runs under a named lock, so no template is dropped while being copied.
async fn copy_mysql_template(
    admin: &DatabaseConnection,
    server_url: &str,
    name: &str,
) -> Result<bool, HarnessError> {
    let template = template_name();
    let locked = query_strings(
        admin,
        &format!("SELECT CAST(GET_LOCK('{MYSQL_TEMPLATE_LOCK}', 300) AS CHAR)"),
        Vec::new(),
    )
    .await?;
    if locked != ["1"] {
        return Err(HarnessError::new(
            "taking the MySQL template lock",
            "GET_LOCK timed out after 300 s",
        ));
    }
    let result = async {
        if !mysql_template_ready(admin, template).await? {
            build_mysql_template(admin, server_url, template).await?;
        }
        let others = query_strings(
            admin,
            "SELECT CAST(CONCAT( \
               (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?), ',', \
               (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?), ',', \
               (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?), ',', \
               (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)) AS CHAR)",
            vec![template.into(), template.into(), template.into(), template.into()],
        )
        .await?;
        exec(admin, &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")).await?;
        if others != ["0,0,0,0"] {
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                say("tenant-scope tests: the MySQL template has views, triggers, routines or events; \
                     migrating every MySQL test database instead of copying it")
            });
            return Ok(false);
        }
        let tables = query_strings(
            admin,
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            vec![template.into()],
        )
        .await?;
        // One multi-statement round trip. Foreign key checks are off so tables can be made in any order.
        let mut script = format!("USE `{name}`;\nSET FOREIGN_KEY_CHECKS = 0;\n");
        for table in &tables {
            let stmt = Statement::from_string(
                DbBackend::MySql,
                format!("SHOW CREATE TABLE `{template}`.`{table}`"),
            );
            let row = admin
                .query_one_raw(stmt)
                .await
                .map_err(|e| HarnessError::new(format!("SHOW CREATE TABLE {template}.{table}"), e))?
                .ok_or_else(|| HarnessError::new(format!("SHOW CREATE TABLE {template}.{table}"), "no row"))?;
            let ddl: String = row
                .try_get_by_index(1)
                .map_err(|e| HarnessError::new(format!("reading SHOW CREATE TABLE {table}"), e))?;
            script.push_str(&ddl);
            script.push_str(";\n");
        }
        for table in &tables {
            script.push_str(&format!(
                "INSERT INTO `{name}`.`{table}` SELECT * FROM `{template}`.`{table}`;\n"
            ));
        }
        script.push_str("SET FOREIGN_KEY_CHECKS = 1;");
        exec(admin, &script).await?;
        Ok(true)
    }
    .await;
    exec(admin, &format!("DO RELEASE_LOCK('{MYSQL_TEMPLATE_LOCK}')")).await?;
    result
}

/// Whether the MySQL template exists with every migration applied.
async fn mysql_template_ready(
    admin: &DatabaseConnection,
    template: &str,
) -> Result<bool, HarnessError> {
    let table = Migrator::migration_table_name().to_string();
    let exists = query_strings(
        admin,
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        vec![template.into(), table.clone().into()],
    )
    .await?;
    if exists.is_empty() {
        return Ok(false);
    }
    let mut applied = query_strings(
        admin,
        &format!("SELECT CAST(version AS CHAR) FROM `{template}`.`{table}`"),
        Vec::new(),
    )
    .await?;
    let mut expected: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    applied.sort();
    expected.sort();
    Ok(applied == expected)
}

/// Creates and migrates the MySQL template and drops the templates of other schemas (called under the lock,
/// so nobody is copying those).
async fn build_mysql_template(
    admin: &DatabaseConnection,
    server_url: &str,
    template: &str,
) -> Result<(), HarnessError> {
    let started = Instant::now();
    exec(admin, &format!("DROP DATABASE IF EXISTS `{template}`")).await?;
    exec(
        admin,
        &format!("CREATE DATABASE `{template}` CHARACTER SET utf8mb4"),
    )
    .await?;
    let conn = connect(&database_url(server_url, template)).await?;
    let migrated = Migrator::up(&conn, None)
        .await
        .map_err(|e| HarnessError::new(format!("migrating the MySQL template {template}"), e));
    let _ = conn.close().await;
    migrated?;
    let others = query_strings(
        admin,
        r"SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA
          WHERE SCHEMA_NAME LIKE 'ts\_tpl\_%' AND SCHEMA_NAME <> ?",
        vec![template.into()],
    )
    .await?;
    for other in others {
        exec(admin, &format!("DROP DATABASE IF EXISTS `{other}`")).await?;
    }
    if timing_enabled() {
        say(&format!(
            "tenant-scope tests: MySQL template {template} built in {} ms",
            started.elapsed().as_millis()
        ));
    }
    Ok(())
}

/// A new tenant, inserted through system access as a provisioning job does; returns the context a job
/// acts inside it with (actor `System`, carrying the access's reason).
pub(crate) async fn new_tenant(system: &tenant_scope::SystemDb<'_>) -> tenant_scope::TenantContext {
    use sea_orm::ActiveValue::Set;
    let tenant = system
        .insert(entity::tenants::ActiveModel {
            id: Set(tenant_scope::TenantId::new()),
            name: Set(format!("tenant {}", uuid::Uuid::now_v7())),
            created_at: Set(chrono::Utc::now()),
        })
        .await
        .expect("inserting a tenant");
    system.context_for(tenant.id)
}
