//! The per-backend test harness: write an integration test once, run it on every backend.
//!
//! Like `#[sqlx::test]` and Toasty's `#[driver_test]`: every test gets its own fresh, migrated database, and
//! the database is dropped afterwards, also when the test body panics.
//!
//! ```ignore
//! use test_support::TestDb;
//!
//! test_support::backend_test!(cross_tenant_get_is_not_found, |t: TestDb| async move {
//!     // t.backend(), t.url(), t.raw() ...
//! });
//! ```
//!
//! expands to `mod cross_tenant_get_is_not_found { async fn sqlite(); async fn postgres(); async fn mysql() }`,
//! three `#[tokio::test]`s, so every backend counts the same tests and a failure names its backend.
//!
//! # Backends
//! Every backend copies a template migrated once per schema ([`Strategy::Template`]); templates are named
//! `ts_tpl_<hash>` after a hash of the migration names and of the sources of the schema ([`hash_schema_sources`]:
//! `migration/src`, the schema helpers of `tenant-scope-schema` and the contract's names), so any schema change
//! makes a new template, and the templates of other schemas are dropped. tests/harness.rs checks that a template
//! copy has exactly the schema of a fresh migration.
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
#![forbid(unsafe_code)]

mod conn;
mod db;
mod env;
mod fixture;
pub mod jwt;
mod mysql;
mod names;
mod postgres;
mod role;
mod run;
mod sqlite;

use std::time::Duration;

pub use conn::{HarnessError, connect, connect_options};
pub use db::{Strategy, TestDb, TestOutcome, database_exists};
pub use env::{
    Backend, database_url, is_ci, loopback_without_tls, pooler_url, redact, resolve, say,
    server_url_from_env, skip_notice, with_user,
};
pub use fixture::{
    Grant, KeyedTenant, grant, keyed_tenant, new_tenant, permissions, project_names, tenant,
    two_tenants, user, with_key,
};
pub use names::{created_at, hash_schema_sources, new_database_name, template_name};
pub use role::TestRole;
pub use run::{BlockingTestDb, block_on_run, new_runtime, run, run_blocking, run_empty, run_with};

/// The migrator every test database is migrated with.
pub type Migrator = migration::Migrator;

/// The environment variable that enables the PostgreSQL tests.
pub const POSTGRES_URL_VAR: &str = "TENANT_SCOPE_TEST_POSTGRES_URL";
/// The environment variable that enables the MySQL / MariaDB tests.
pub const MYSQL_URL_VAR: &str = "TENANT_SCOPE_TEST_MYSQL_URL";
/// The environment variable naming a PostgreSQL pooler in transaction mode in front of the server of
/// [`POSTGRES_URL_VAR`] (PgBouncer, e.g. `postgres://127.0.0.1:6432`): when set, the library's application
/// connection of every PostgreSQL test ([`TestDb::tenant_db`]) goes through it, with
/// `TenantDbOptions::transaction_pooling(true)`. Raw connections and the system connection stay direct.
pub const PGBOUNCER_URL_VAR: &str = "TENANT_SCOPE_TEST_PGBOUNCER_URL";
/// Set to `1` to print per-test database setup and drop times on stderr.
pub const TIMING_VAR: &str = "TENANT_SCOPE_TEST_TIMING";
/// Test databases (and SQLite temp dirs) older than this are leftovers of killed runs and are dropped.
pub const STALE_AFTER: Duration = Duration::from_secs(60 * 60);
/// The unprivileged application role the library connects as on PostgreSQL: `LOGIN`, not a superuser, no
/// `BYPASSRLS`, owns nothing (`.ci/postgres-setup.sql` creates it; the reference migration grants it what it
/// needs). Superusers bypass row level security, so tests of the library never connect as one.
pub const APP_ROLE: &str = "tenant_scope_app";
/// Prefix of every per-test database.
pub const TEST_DB_PREFIX: &str = "ts_test_";
/// Prefix of the template databases (and of the SQLite template files).
pub const TEMPLATE_PREFIX: &str = "ts_tpl_";
/// How long connecting to a configured server may take before the test fails.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// `pg_advisory_lock` key that serializes template creation (ASCII "tsTEMPL" + 1).
pub(crate) const TEMPLATE_LOCK_KEY: i64 = 0x7473_5445_4d50_4c01;
