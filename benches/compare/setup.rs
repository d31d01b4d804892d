//! The databases the benches run on: a scratch database per run for the operations, and loaded
//! databases for the scale benches, reused between runs while their marker says they are
//! complete.
//!
//! - **SQLite**: files in `$TMPDIR/tenant-scope-bench/`, in WAL mode. The scratch file is
//!   `ts_bench_scratch_<uuid>.db` (removed at the end); the loaded ones are
//!   `ts_bench_<hash>_t<tenants>.db`, complete when `PRAGMA user_version` is [`SQLITE_COMPLETE`].
//! - **PostgreSQL**: databases on the server of `TENANT_SCOPE_BENCH_POSTGRES_URL` (a superuser).
//!   The scratch database is `ts_bench_scratch_<uuidv7>` (dropped at the end; leftovers of killed
//!   runs older than an hour are dropped by the next run); the loaded ones are
//!   `ts_bench_<hash>_t<tenants>`, complete when their comment (`COMMENT ON DATABASE`) is the
//!   layout's marker. Loaded databases of another schema hash are dropped.
//!
//! `<hash>` is [`layout::schema_hash`]: a schema change gets new databases. The library connects
//! as the application role `tenant_scope_app` (row level security applies), with the superuser as
//! its system connection; the hand-written SeaORM and raw sqlx variants connect as the superuser,
//! which bypasses row level security: what a user without it would run.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use sea_orm::sqlx;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, TransactionTrait};
use sea_orm_migration::MigratorTrait;
use tenant_scope::TenantDb;
use uuid::Uuid;

use crate::layout::Layout;

/// `PRAGMA user_version` of a completely loaded SQLite bench file.
const SQLITE_COMPLETE: i64 = 0x7473_0001;
/// Prefix of every bench database (and file).
const PREFIX: &str = "ts_bench_";
/// Prefix of the per-run scratch databases (and files).
const SCRATCH: &str = "ts_bench_scratch_";
/// Scratch databases older than this are leftovers of killed runs.
const STALE_AFTER: Duration = Duration::from_secs(60 * 60);
/// The application role of the reference schema (`.ci/postgres-setup.sql`).
const APP_ROLE: &str = "tenant_scope_app";

/// Which database a bench runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The raw sqlx pool of the "floor" variant.
#[derive(Clone, Debug)]
pub(crate) enum SqlxPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// One database, connected three ways.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) backend: Backend,
    pub(crate) layout: Layout,
    /// The library (on PostgreSQL as the application role, with row level security).
    pub(crate) db: TenantDb,
    /// The library's application URL and the owner's, for the throughput benches' own pools.
    pub(crate) app_url: String,
    pub(crate) owner_url: String,
    /// Hand-written SeaORM (on PostgreSQL as the superuser: no row level security).
    pub(crate) raw: DatabaseConnection,
    /// Raw sqlx, as `raw`.
    pub(crate) sqlx: SqlxPool,
    /// The further variants of the operation benches (not built for the scale targets).
    pub(crate) extra: Option<Extra>,
    /// What to remove when done, if the database is not kept.
    scratch: Option<Scratch>,
}

/// Connections for the further variants of the operation benches: what separates the library's
/// own cost from its pool setting and from the server's cost of row level security, and a change
/// the library could make.
#[derive(Debug)]
pub(crate) struct Extra {
    /// Hand-written SeaORM (as `raw`) on a pool that does not ping before handing out a
    /// connection: the library's own pool setting on PostgreSQL and SQLite.
    pub(crate) raw_no_ping: DatabaseConnection,
    /// SQLite: the library on a pool of 10 connections, as many as raw sqlx's default pool
    /// (SeaORM, and so the library, default to one SQLite connection).
    pub(crate) db_pool10: Option<TenantDb>,
    /// PostgreSQL: hand-written SeaORM as the application role, so row level security applies: for
    /// the reads a user would write by hand with it (a transaction, `set_config`, the query,
    /// `COMMIT`).
    pub(crate) raw_app: Option<DatabaseConnection>,
    /// PostgreSQL: raw sqlx as the application role without the acquire ping, to replay the
    /// library's write protocol (`BEGIN; SELECT set_config(..)`, statements, `COMMIT`) with and
    /// without the audit event folded into the write.
    pub(crate) app_sqlx: Option<sqlx::PgPool>,
}

/// A library error with the driver's text, which the library keeps out of its messages (the bench
/// has no other tenant's data to hide, and a failed connect should say why: a missing role, ...).
fn why(e: &tenant_scope::Error) -> String {
    match e {
        tenant_scope::Error::Db(db) => format!("{e}: {}", db.inner()),
        _ => e.to_string(),
    }
}

/// Connect options without sqlx's ping before acquire.
fn no_ping(url: &str) -> ConnectOptions {
    let mut options = options(url);
    options.test_before_acquire(false);
    options
}

#[derive(Debug)]
enum Scratch {
    File(PathBuf),
    Database(String),
}

pub(crate) fn options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options.sqlx_logging(false);
    options
}

async fn connect(url: &str) -> DatabaseConnection {
    Database::connect(options(url))
        .await
        .unwrap_or_else(|e| panic!("bench: connecting to {url}: {e}"))
}

async fn exec(conn: &impl ConnectionTrait, sql: &str) {
    conn.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("bench: running `{}`: {e}", first_line(sql)));
}

fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or(sql)
}

async fn migrate(conn: &DatabaseConnection) {
    migration::Migrator::up(conn, None)
        .await
        .unwrap_or_else(|e| panic!("bench: migrating: {e}"));
}

/// When a `ts_bench_scratch_<uuidv7>` database or file was made, from its name.
fn scratch_age(name: &str) -> Option<Duration> {
    let id = Uuid::try_parse(name.strip_prefix(SCRATCH)?.get(..32)?).ok()?;
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
        .ok()
}

fn scratch_name() -> String {
    format!("{SCRATCH}{}", Uuid::now_v7().simple())
}

fn loaded_name(hash: &str, layout: &Layout) -> String {
    format!("{PREFIX}{hash}_t{}", layout.tenants)
}

impl Target {
    /// Closes the pools and removes the database unless it is a kept, loaded one.
    pub(crate) async fn finish(self, server: Option<&PgServer>) {
        let Target {
            db,
            raw,
            sqlx,
            extra,
            scratch,
            ..
        } = self;
        drop(db);
        let _ = raw.close().await;
        if let Some(extra) = extra {
            let _ = extra.raw_no_ping.close().await;
            drop(extra.db_pool10);
            if let Some(raw_app) = extra.raw_app {
                let _ = raw_app.close().await;
            }
            if let Some(pool) = extra.app_sqlx {
                pool.close().await;
            }
        }
        match sqlx {
            SqlxPool::Sqlite(pool) => pool.close().await,
            SqlxPool::Postgres(pool) => pool.close().await,
        }
        match scratch {
            Some(Scratch::File(path)) => remove_sqlite(&path),
            Some(Scratch::Database(name)) => {
                if let Some(server) = server {
                    server.drop_db(&name).await;
                }
            }
            None => {}
        }
    }
}

// -------------------------------------------------------------------------------------------
// SQLite
// -------------------------------------------------------------------------------------------

fn sqlite_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("tenant-scope-bench");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("bench: creating {dir:?}: {e}"));
    dir
}

fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(file));
    }
}

/// Removes SQLite bench files of other schema hashes and scratch files of killed runs.
pub(crate) fn sweep_sqlite(hash: &str) {
    let Ok(entries) = std::fs::read_dir(sqlite_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(db) = name.strip_suffix(".db") else {
            continue;
        };
        let stale = if db.starts_with(SCRATCH) {
            scratch_age(db).is_none_or(|age| age > STALE_AFTER)
        } else {
            db.starts_with(PREFIX) && !db.starts_with(&format!("{PREFIX}{hash}_"))
        };
        if stale {
            remove_sqlite(&entry.path());
        }
    }
}

/// Makes (or reuses, if `keep` and complete) the SQLite file of `layout`; returns its path.
async fn sqlite_file(hash: &str, layout: &Layout, keep: bool) -> PathBuf {
    let name = if keep {
        loaded_name(hash, layout)
    } else {
        scratch_name()
    };
    let path = sqlite_dir().join(format!("{name}.db"));
    if keep && path.exists() {
        let conn = connect(&sqlite_url(&path)).await;
        let version = conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "PRAGMA user_version",
            ))
            .await
            .ok()
            .flatten()
            .and_then(|row| row.try_get_by_index::<i64>(0).ok());
        let _ = conn.close().await;
        if version == Some(SQLITE_COMPLETE) {
            return path;
        }
    }
    remove_sqlite(&path);
    let started = std::time::Instant::now();
    let conn = connect(&sqlite_url(&path)).await;
    exec(&conn, "PRAGMA journal_mode = WAL").await;
    migrate(&conn).await;
    let txn = conn.begin().await.expect("bench: BEGIN");
    for stmt in layout.sqlite_load(500) {
        exec(&txn, &stmt).await;
    }
    txn.commit().await.expect("bench: COMMIT");
    exec(&conn, "ANALYZE").await;
    exec(&conn, "PRAGMA wal_checkpoint(TRUNCATE)").await;
    exec(&conn, &format!("PRAGMA user_version = {SQLITE_COMPLETE}")).await;
    let _ = conn.close().await;
    if keep {
        eprintln!(
            "bench: loaded {} ({} rows, {} tenants) in {:.1?}",
            path.display(),
            layout.rows,
            layout.tenants,
            started.elapsed()
        );
    }
    path
}

/// A SQLite target of `layout`: a scratch file, or (`keep`) the reusable loaded file.
pub(crate) async fn sqlite(hash: &str, layout: Layout, keep: bool) -> Target {
    let path = sqlite_file(hash, &layout, keep).await;
    let url = sqlite_url(&path);
    let db = TenantDb::connect_with(options(&url))
        .await
        .unwrap_or_else(|e| panic!("bench: TenantDb on {url}: {}", why(&e)));
    let raw = connect(&url).await;
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("bench: sqlx on {url}: {e}"));
    let extra = if keep {
        None
    } else {
        Some(Extra {
            raw_no_ping: Database::connect(no_ping(&url))
                .await
                .unwrap_or_else(|e| panic!("bench: connecting to {url}: {e}")),
            db_pool10: Some(
                TenantDb::connect_with({
                    let mut options = options(&url);
                    options.max_connections(10);
                    options
                })
                .await
                .unwrap_or_else(|e| panic!("bench: TenantDb on {url}: {}", why(&e))),
            ),
            raw_app: None,
            app_sqlx: None,
        })
    };
    Target {
        backend: Backend::Sqlite,
        layout,
        db,
        app_url: url.clone(),
        owner_url: url.clone(),
        raw,
        sqlx: SqlxPool::Sqlite(pool),
        extra,
        scratch: (!keep).then_some(Scratch::File(path)),
    }
}

/// SQLite's version, for the report.
pub(crate) async fn sqlite_version(target: &Target) -> String {
    let row = target
        .raw
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT sqlite_version()",
        ))
        .await
        .ok()
        .flatten();
    row.and_then(|r| r.try_get_by_index::<String>(0).ok())
        .unwrap_or_else(|| "?".into())
}

// -------------------------------------------------------------------------------------------
// PostgreSQL
// -------------------------------------------------------------------------------------------

/// The PostgreSQL server of `TENANT_SCOPE_BENCH_POSTGRES_URL`, as a superuser.
#[derive(Debug)]
pub(crate) struct PgServer {
    url: String,
    admin: DatabaseConnection,
}

/// `url` with TLS off when the server is on this machine and the URL does not choose.
fn loopback_without_tls(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let loopback =
        host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]");
    if !loopback || url.contains("sslmode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

/// The URL of database `name` on the server of `url`, as `user` (or the URL's own user).
fn database_url(url: &str, name: &str, user: Option<&str>) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let authority = match user {
        Some(user) => {
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

impl PgServer {
    pub(crate) async fn connect(url: &str) -> PgServer {
        let url = loopback_without_tls(url);
        let mut options = options(&url);
        options.max_connections(1).min_connections(1);
        let admin = Database::connect(options)
            .await
            .unwrap_or_else(|e| panic!("bench: connecting to {url}: {e}"));
        PgServer { url, admin }
    }

    pub(crate) async fn version(&self) -> String {
        self.strings("SHOW server_version")
            .await
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    async fn strings(&self, sql: &str) -> Vec<String> {
        let rows = self
            .admin
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql,
            ))
            .await
            .unwrap_or_else(|e| panic!("bench: running `{sql}`: {e}"));
        rows.iter()
            .map(|r| {
                r.try_get_by_index::<Option<String>>(0)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            })
            .collect()
    }

    async fn drop_db(&self, name: &str) {
        exec(
            &self.admin,
            &format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#),
        )
        .await;
    }

    /// Drops scratch databases of killed runs and loaded databases of other schema hashes.
    pub(crate) async fn sweep(&self, hash: &str) {
        let names = self
            .strings(&format!(
                "SELECT datname::text FROM pg_database WHERE datname LIKE '{}%'",
                PREFIX.replace('_', "\\_")
            ))
            .await;
        for name in names {
            let stale = if name.starts_with(SCRATCH) {
                scratch_age(&name).is_none_or(|age| age > STALE_AFTER)
            } else {
                !name.starts_with(&format!("{PREFIX}{hash}_"))
            };
            if stale {
                self.drop_db(&name).await;
            }
        }
    }

    /// Makes (or reuses, if `keep` and complete) the database of `layout`; returns its name.
    async fn database(&self, hash: &str, layout: &Layout, keep: bool) -> String {
        let name = if keep {
            loaded_name(hash, layout)
        } else {
            scratch_name()
        };
        if keep {
            let marker = self
                .strings(&format!(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database \
                     WHERE datname = '{name}'"
                ))
                .await;
            if marker.first() == Some(&layout.marker()) {
                return name;
            }
            self.drop_db(&name).await;
        }
        let started = std::time::Instant::now();
        exec(&self.admin, &format!(r#"CREATE DATABASE "{name}""#)).await;
        let owner = connect(&database_url(&self.url, &name, None)).await;
        migrate(&owner).await;
        exec(&owner, &layout.postgres_load()).await;
        exec(&owner, "VACUUM (ANALYZE)").await;
        let _ = owner.close().await;
        exec(
            &self.admin,
            &format!(r#"COMMENT ON DATABASE "{name}" IS '{}'"#, layout.marker()),
        )
        .await;
        if keep {
            eprintln!(
                "bench: loaded PostgreSQL database {name} ({} rows, {} tenants) in {:.1?}",
                layout.rows,
                layout.tenants,
                started.elapsed()
            );
        }
        name
    }

    /// A PostgreSQL target of `layout`: a scratch database, or (`keep`) the reusable loaded one.
    pub(crate) async fn target(&self, hash: &str, layout: Layout, keep: bool) -> Target {
        let name = self.database(hash, &layout, keep).await;
        let owner_url = database_url(&self.url, &name, None);
        let app_url = database_url(&self.url, &name, Some(APP_ROLE));
        let db = TenantDb::options(options(&app_url))
            .system(options(&owner_url))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("bench: TenantDb on {app_url}: {}", why(&e)));
        let raw = connect(&owner_url).await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect(&owner_url)
            .await
            .unwrap_or_else(|e| panic!("bench: sqlx on {owner_url}: {e}"));
        let extra = if keep {
            None
        } else {
            Some(Extra {
                raw_no_ping: Database::connect(no_ping(&owner_url))
                    .await
                    .unwrap_or_else(|e| panic!("bench: connecting to {owner_url}: {e}")),
                db_pool10: None,
                raw_app: Some(connect(&app_url).await),
                app_sqlx: Some(
                    sqlx::postgres::PgPoolOptions::new()
                        .test_before_acquire(false)
                        .connect(&app_url)
                        .await
                        .unwrap_or_else(|e| panic!("bench: sqlx on {app_url}: {e}")),
                ),
            })
        };
        Target {
            backend: Backend::Postgres,
            layout,
            db,
            app_url: app_url.clone(),
            owner_url: owner_url.clone(),
            raw,
            sqlx: SqlxPool::Postgres(pool),
            extra,
            scratch: (!keep).then_some(Scratch::Database(name)),
        }
    }
}
