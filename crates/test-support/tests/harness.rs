//! Tests of the test harness itself (the `test-support` crate): every test gets a fresh, fully migrated, empty database of
//! its own on every backend, the database is gone afterwards (also after a panic), and CI cannot skip a backend.

use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
};

use futures::FutureExt as _;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use sea_orm_migration::MigratorTrait;
use test_support::{Backend, Migrator, Strategy, TestDb};

/// The tables of the reference schema (DESIGN.md), plus sea-orm-migration's bookkeeping table.
const REFERENCE_TABLES: &[&str] = &[
    "api_keys",
    "audit_events",
    "comments",
    "permissions",
    "projects",
    "role_permissions",
    "roles",
    "seaql_migrations",
    "tasks",
    "tenants",
    "user_roles",
    "users",
];

/// The base tables of the database `conn` is connected to, sorted.
async fn table_names(conn: &DatabaseConnection) -> Vec<String> {
    let sql = match conn.get_database_backend() {
        DbBackend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             ORDER BY name"
        }
        DbBackend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
        }
        _ => {
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
        }
    };
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("listing tables");
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).expect("a table name"))
        .collect()
}

/// `SELECT COUNT(*)` of a table.
async fn count_rows(conn: &DatabaseConnection, table: &str) -> i64 {
    let quoted = match conn.get_database_backend() {
        DbBackend::MySql => format!("`{table}`"),
        _ => format!("\"{table}\""),
    };
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT COUNT(*) FROM {quoted}"),
        ))
        .await
        .expect("counting rows")
        .expect("COUNT(*) returns a row");
    row.try_get_by_index::<i64>(0).expect("a count")
}

test_support::backend_test!(fresh_database_is_fully_migrated, |t: TestDb| async move {
    let tables = table_names(t.raw()).await;
    for table in REFERENCE_TABLES {
        assert!(
            tables.iter().any(|t| t == table),
            "table {table} missing from a fresh {} database: {tables:?}",
            t.backend()
        );
    }
    let pending = Migrator::get_pending_migrations(t.raw())
        .await
        .expect("reading migration status");
    assert!(
        pending.is_empty(),
        "pending migrations: {:?}",
        pending
            .iter()
            .map(|m| m.name().to_owned())
            .collect::<Vec<_>>()
    );
    let applied = Migrator::get_applied_migrations(t.raw())
        .await
        .expect("reading migration status");
    assert_eq!(applied.len(), Migrator::migrations().len());
    assert_eq!(
        count_rows(t.raw(), "seaql_migrations").await,
        i64::try_from(Migrator::migrations().len()).expect("few migrations")
    );
});

test_support::backend_test!(fresh_database_has_no_tenant_rows, |t: TestDb| async move {
    // Global tables may be seeded by the migration (e.g. permissions); tenant-owned tables start empty.
    for table in REFERENCE_TABLES {
        if ["seaql_migrations", "permissions"].contains(table) {
            continue;
        }
        assert_eq!(count_rows(t.raw(), table).await, 0, "rows in {table}");
    }
});

test_support::backend_test!(
    url_and_raw_reach_the_same_database,
    |t: TestDb| async move {
        assert_eq!(t.raw().get_database_backend(), t.db_backend());
        assert!(
            t.name().starts_with(test_support::TEST_DB_PREFIX),
            "{}",
            t.name()
        );
        assert!(
            test_support::created_at(t.name()).is_some(),
            "name carries a UUIDv7: {}",
            t.name()
        );
        t.raw()
            .execute_unprepared("CREATE TABLE harness_marker (id INTEGER PRIMARY KEY)")
            .await
            .expect("creating a marker table");
        let other = t.connect().await;
        assert!(
            table_names(&other)
                .await
                .iter()
                .any(|n| n == "harness_marker"),
            "a pool opened on t.url() sees the marker table"
        );
        other.close().await.expect("closing");
    }
);

test_support::backend_test!(two_databases_are_distinct, |t: TestDb| async move {
    let other = TestDb::create(t.backend())
        .await
        .expect("the backend is configured, since this test runs");
    assert_ne!(t.name(), other.name());
    assert_ne!(t.url(), other.url());
    t.raw()
        .execute_unprepared("CREATE TABLE harness_marker (id INTEGER PRIMARY KEY)")
        .await
        .expect("creating a marker table");
    assert!(
        table_names(t.raw())
            .await
            .iter()
            .any(|n| n == "harness_marker")
    );
    assert!(
        !table_names(other.raw())
            .await
            .iter()
            .any(|n| n == "harness_marker"),
        "a table made in one test database shows up in another"
    );
    other.drop_db().await.expect("dropping the second database");
});

/// Rows of `sql`, each row's columns joined with a space, as strings.
async fn text_rows(conn: &DatabaseConnection, sql: &str) -> Vec<String> {
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("running `{sql}`: {e}"));
    rows.iter()
        .map(|row| {
            let mut columns = Vec::new();
            while let Ok(column) = row.try_get_by_index_nullable::<Option<String>>(columns.len()) {
                columns.push(column.unwrap_or_else(|| "NULL".to_owned()));
            }
            columns.join(" ")
        })
        .collect()
}

/// Everything about a database's schema that a test could notice, plus each table's row count and the applied
/// migrations (not when they were applied), one line per item.
async fn schema_fingerprint(conn: &DatabaseConnection) -> Vec<String> {
    let mut lines = match conn.get_database_backend() {
        DbBackend::Sqlite => {
            text_rows(
                conn,
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name",
            )
            .await
        }
        DbBackend::Postgres => {
            let mut lines = Vec::new();
            for sql in [
                "SELECT 'column', table_name::text, column_name::text, data_type::text, is_nullable::text, \
                 column_default::text FROM information_schema.columns WHERE table_schema = current_schema()",
                "SELECT 'constraint', conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) \
                 FROM pg_constraint WHERE connamespace = current_schema()::regnamespace",
                "SELECT 'index', indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema()",
                "SELECT 'rls', relname::text, relrowsecurity::text, relforcerowsecurity::text FROM pg_class \
                 WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'",
                "SELECT 'policy', tablename::text, policyname::text, cmd, qual, with_check FROM pg_policies \
                 WHERE schemaname = current_schema()",
                "SELECT 'grant', table_name::text, grantee::text, privilege_type::text \
                 FROM information_schema.role_table_grants WHERE table_schema = current_schema()",
                "SELECT 'trigger', event_object_table::text, trigger_name::text, action_statement::text \
                 FROM information_schema.triggers WHERE trigger_schema = current_schema()",
                "SELECT 'function', p.proname::text, pg_get_functiondef(p.oid) FROM pg_proc p \
                 WHERE p.pronamespace = current_schema()::regnamespace",
            ] {
                lines.extend(text_rows(conn, sql).await);
            }
            lines
        }
        _ => {
            let mut lines = Vec::new();
            for table in table_names(conn).await {
                lines.extend(text_rows(conn, &format!("SHOW CREATE TABLE `{table}`")).await);
            }
            for sql in [
                "SELECT 'view', CAST(TABLE_NAME AS CHAR) FROM information_schema.VIEWS \
                 WHERE TABLE_SCHEMA = DATABASE()",
                "SELECT 'trigger', CAST(TRIGGER_NAME AS CHAR) FROM information_schema.TRIGGERS \
                 WHERE TRIGGER_SCHEMA = DATABASE()",
                "SELECT 'routine', CAST(ROUTINE_NAME AS CHAR) FROM information_schema.ROUTINES \
                 WHERE ROUTINE_SCHEMA = DATABASE()",
                "SELECT 'event', CAST(EVENT_NAME AS CHAR) FROM information_schema.EVENTS \
                 WHERE EVENT_SCHEMA = DATABASE()",
            ] {
                lines.extend(text_rows(conn, sql).await);
            }
            lines
        }
    };
    for table in table_names(conn).await {
        lines.push(format!("rows {table} {}", count_rows(conn, &table).await));
    }
    lines.extend(
        text_rows(conn, "SELECT version FROM seaql_migrations")
            .await
            .into_iter()
            .map(|v| format!("applied {v}")),
    );
    lines.sort();
    lines
}

test_support::backend_test!(
    template_copy_has_the_migrated_schema,
    |t: TestDb| async move {
        let migrated =
            TestDb::create_with(t.backend(), t.server_url().unwrap_or(""), Strategy::Migrate).await;
        let copied = schema_fingerprint(t.raw()).await;
        let expected = schema_fingerprint(migrated.raw()).await;
        migrated
            .drop_db()
            .await
            .expect("dropping the migrated database");
        assert!(copied.len() > REFERENCE_TABLES.len(), "{copied:#?}");
        for line in &expected {
            assert!(
                copied.contains(line),
                "missing from the template copy: {line}"
            );
        }
        for line in &copied {
            assert!(expected.contains(line), "not made by the migration: {line}");
        }
        assert_eq!(copied, expected);
    }
);

/// Where a test database lives, to check afterwards that it is gone.
#[derive(Debug, Clone)]
struct Location {
    backend: Backend,
    name: String,
    server_url: Option<String>,
    sqlite_file: Option<std::path::PathBuf>,
}

impl Location {
    fn of(t: &TestDb) -> Self {
        let sqlite_file = (t.backend() == Backend::Sqlite).then(|| {
            let path = t.url().trim_start_matches("sqlite://");
            std::path::PathBuf::from(path.split('?').next().expect("a path"))
        });
        Location {
            backend: t.backend(),
            name: t.name().to_owned(),
            server_url: t.server_url().map(str::to_owned),
            sqlite_file,
        }
    }

    async fn exists(&self) -> bool {
        match (&self.sqlite_file, &self.server_url) {
            (Some(file), _) => file.exists(),
            (None, Some(server)) => test_support::database_exists(self.backend, server, &self.name)
                .await
                .expect("asking the server"),
            (None, None) => unreachable!("a server database has a server URL"),
        }
    }
}

test_support::backend_test!(database_is_dropped_after_the_test, |t: TestDb| async move {
    let seen: Arc<Mutex<Option<Location>>> = Arc::default();
    let record = seen.clone();
    test_support::run(t.backend(), |inner: TestDb| async move {
        let location = Location::of(&inner);
        assert!(
            location.exists().await,
            "the database exists during the test"
        );
        *record.lock().expect("lock") = Some(location);
    })
    .await;
    let location = seen.lock().expect("lock").clone().expect("the body ran");
    assert!(
        !location.exists().await,
        "{} is still there after the test",
        location.name
    );
});

/// Panics; returns `()` as far as the type checker knows (an async block that only panics would have type `!`).
fn deliberate_panic() {
    panic!("deliberate panic in a test body (tests/harness.rs)");
}

test_support::backend_test!(database_is_dropped_after_a_panic, |t: TestDb| async move {
    let seen: Arc<Mutex<Option<Location>>> = Arc::default();
    let record = seen.clone();
    let outcome = AssertUnwindSafe(test_support::run(t.backend(), |inner: TestDb| async move {
        *record.lock().expect("lock") = Some(Location::of(&inner));
        deliberate_panic();
    }))
    .catch_unwind()
    .await;
    let panic = outcome.expect_err("the body's panic is resumed");
    assert_eq!(
        panic.downcast_ref::<&str>().copied(),
        Some("deliberate panic in a test body (tests/harness.rs)"),
        "the original panic payload is resumed"
    );
    let location = seen.lock().expect("lock").clone().expect("the body ran");
    assert!(
        !location.exists().await,
        "{} is still there after a panic",
        location.name
    );
});

test_support::backend_test!(
    database_is_dropped_when_the_body_fails,
    |t: TestDb| async move {
        let seen: Arc<Mutex<Option<Location>>> = Arc::default();
        let record = seen.clone();
        let outcome =
            AssertUnwindSafe(test_support::run(t.backend(), |inner: TestDb| async move {
                *record.lock().expect("lock") = Some(Location::of(&inner));
                Err::<(), _>("deliberate error")
            }))
            .catch_unwind()
            .await;
        let panic = outcome.expect_err("an Err body fails the test");
        let message = panic.downcast_ref::<String>().expect("a formatted message");
        assert!(message.contains("deliberate error"), "{message}");
        assert!(message.contains(t.backend().name()), "{message}");
        let location = seen.lock().expect("lock").clone().expect("the body ran");
        assert!(
            !location.exists().await,
            "{} is still there after a failure",
            location.name
        );
    }
);

test_support::backend_test!(
    database_is_dropped_when_the_handle_is_dropped,
    |t: TestDb| async move {
        let other = TestDb::create(t.backend()).await.expect("configured");
        let location = Location::of(&other);
        assert!(location.exists().await);
        drop(other);
        assert!(
            !location.exists().await,
            "{} survived its TestDb",
            location.name
        );
    }
);

test_support::backend_test!(
    sqlite_foreign_keys_are_on_for_every_connection,
    |t: TestDb| async move {
        if t.backend() != Backend::Sqlite {
            return;
        }
        // Several pools and several connections per pool: each transaction holds its own connection.
        let mut pool = sea_orm::ConnectOptions::new(t.url().to_owned());
        pool.sqlx_logging(false).max_connections(4);
        let pool = sea_orm::Database::connect(pool).await.expect("connecting");
        let mut transactions = Vec::new();
        for _ in 0..4 {
            transactions.push(pool.begin().await.expect("a connection"));
        }
        for conn in transactions.iter() {
            let row = conn
                .query_one_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    "PRAGMA foreign_keys",
                ))
                .await
                .expect("PRAGMA foreign_keys")
                .expect("a row");
            assert_eq!(row.try_get_by_index::<i32>(0).expect("an int"), 1);
        }
        for tx in transactions {
            tx.rollback().await.expect("rollback");
        }
        pool.close().await.expect("closing");
    }
);

test_support::blocking_backend_test!(
    blocking_entry_point_works,
    |t: &test_support::BlockingTestDb| {
        let tables = t.block_on(table_names(t.db().raw()));
        assert!(tables.iter().any(|n| n == "tenants"), "{tables:?}");
    }
);

/// Runs `f`, returning its panic message (`None` if it did not panic).
fn panic_message(f: impl FnOnce()) -> Option<String> {
    let payload = std::panic::catch_unwind(AssertUnwindSafe(f)).err()?;
    Some(
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default(),
    )
}

#[test]
fn ci_with_a_missing_url_panics_naming_the_variable() {
    for (backend, var) in [
        (Backend::Postgres, test_support::POSTGRES_URL_VAR),
        (Backend::Mysql, test_support::MYSQL_URL_VAR),
    ] {
        for ci in ["true", "TRUE", "1"] {
            for url in [None, Some(""), Some("  ")] {
                let message = panic_message(|| {
                    test_support::resolve(backend, url, Some(ci));
                })
                .unwrap_or_else(|| panic!("no panic for {backend} with CI={ci} and url={url:?}"));
                assert!(message.contains(var), "{message}");
                assert!(message.contains("CI"), "{message}");
            }
        }
    }
}

#[test]
fn outside_ci_a_missing_url_skips() {
    for backend in [Backend::Postgres, Backend::Mysql] {
        for ci in [None, Some(""), Some("false"), Some("0")] {
            assert_eq!(test_support::resolve(backend, None, ci), None);
        }
        let notice = test_support::skip_notice(backend);
        assert!(
            notice.contains(backend.env_var().expect("a server backend")),
            "{notice}"
        );
        assert!(notice.contains(backend.name()), "{notice}");
    }
}

#[test]
fn a_set_url_runs_and_sqlite_always_runs() {
    let url = "postgres://postgres@127.0.0.1:5432/test";
    assert_eq!(
        test_support::resolve(Backend::Postgres, Some(url), None).as_deref(),
        Some(url)
    );
    assert_eq!(
        test_support::resolve(Backend::Postgres, Some(url), Some("true")).as_deref(),
        Some(url)
    );
    assert_eq!(
        test_support::resolve(Backend::Sqlite, None, Some("true")),
        None
    );
    assert_eq!(
        test_support::server_url_from_env(Backend::Sqlite).as_deref(),
        Some("")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_url_fails_naming_the_variable() {
    async fn check(backend: Backend, var: &str, url: &str) {
        let outcome = AssertUnwindSafe(TestDb::create_on(backend, url))
            .catch_unwind()
            .await;
        let payload = outcome.expect_err("an unreachable server fails the test");
        let message = payload
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(message.contains(var), "{message}");
        assert!(!message.contains("secret"), "the password leaks: {message}");
    }
    // Port 9 (discard) has no database server; both wait out the connect timeout, so run them together.
    futures::join!(
        check(
            Backend::Postgres,
            test_support::POSTGRES_URL_VAR,
            "postgres://postgres:secret@127.0.0.1:9/test"
        ),
        check(
            Backend::Mysql,
            test_support::MYSQL_URL_VAR,
            "mysql://root:secret@127.0.0.1:9/test"
        ),
    );
}

#[test]
fn database_urls_are_derived_from_server_urls() {
    assert_eq!(
        test_support::database_url("postgres://postgres@127.0.0.1:5432/test", "ts_test_1"),
        "postgres://postgres@127.0.0.1:5432/ts_test_1"
    );
    assert_eq!(
        test_support::database_url("postgres://u:p@h:5432/test?sslmode=disable", "x"),
        "postgres://u:p@h:5432/x?sslmode=disable"
    );
    assert_eq!(
        test_support::database_url("mysql://root@127.0.0.1:3306", "x"),
        "mysql://root@127.0.0.1:3306/x"
    );
    assert_eq!(
        test_support::database_url("mysql://root@h/?ssl-mode=disabled", "x"),
        "mysql://root@h/x?ssl-mode=disabled"
    );
    assert_eq!(
        test_support::redact("postgres://u:p@h:5432/test"),
        "postgres://u:***@h:5432/test"
    );
    assert_eq!(
        test_support::redact("postgres://u@h/test"),
        "postgres://u@h/test"
    );
}

#[test]
fn tls_is_turned_off_only_for_loopback_servers_that_do_not_choose() {
    use test_support::loopback_without_tls as f;
    let pg = Backend::Postgres;
    assert_eq!(
        f(pg, "postgres://postgres@127.0.0.1:5432/test"),
        "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
    );
    assert_eq!(
        f(pg, "postgres://u:p@localhost/test?x=1"),
        "postgres://u:p@localhost/test?x=1&sslmode=disable"
    );
    assert_eq!(
        f(pg, "postgres://u@[::1]:5432/test"),
        "postgres://u@[::1]:5432/test?sslmode=disable"
    );
    assert_eq!(
        f(pg, "postgres://u@127.0.0.1/test?sslmode=require"),
        "postgres://u@127.0.0.1/test?sslmode=require"
    );
    assert_eq!(
        f(pg, "postgres://u@db.example.com/test"),
        "postgres://u@db.example.com/test"
    );
    assert_eq!(
        f(Backend::Mysql, "mysql://root@127.0.0.1:3306/test"),
        "mysql://root@127.0.0.1:3306/test?ssl-mode=disabled"
    );
    assert_eq!(
        f(
            Backend::Mysql,
            "mysql://root@127.0.0.1:3306/test?ssl-mode=required"
        ),
        "mysql://root@127.0.0.1:3306/test?ssl-mode=required"
    );
}

#[test]
fn template_name_is_stable_and_valid() {
    let name = test_support::template_name();
    assert_eq!(name, test_support::template_name());
    assert!(name.starts_with(test_support::TEMPLATE_PREFIX), "{name}");
    assert!(
        name.len() <= 63,
        "PostgreSQL truncates identifiers at 63 bytes: {name}"
    );
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "{name}"
    );
}

#[test]
fn test_database_names_carry_their_creation_time() {
    let name = test_support::new_database_name();
    assert!(name.len() <= 63, "{name}");
    let created = test_support::created_at(&name).expect("a UUIDv7 timestamp");
    let age = std::time::SystemTime::now()
        .duration_since(created)
        .expect("in the past");
    assert!(age < std::time::Duration::from_secs(60), "{age:?}");
    assert_eq!(test_support::created_at("ts_test_notauuid"), None);
    assert_eq!(test_support::created_at("other"), None);
}
