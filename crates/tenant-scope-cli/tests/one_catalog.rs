//! The tools read one catalog (`tenant_scope_catalog`), so they cannot disagree about a schema, on every
//! backend:
//!
//! - what the adopt steps produce, `check` passes and `generate` accepts (an adopted table has its `tenant_id`
//!   as its last column: the primary key is read in key order, not in table order);
//! - a table written by hand with `tenant_id` last, and the key `(tenant_id, id)`, is clean and generates;
//! - every tool reads the same scope: a table inside it is seen by the catalog, `check`, `generate` and adopt
//!   alike, a table outside it (another PostgreSQL schema, another MySQL database) by none of them.
//!
//! (That `check --app-role` reports whatever the connect-time self-check refuses is proven next to the
//! self-check's own refusals, in tests/self_check.rs.)

use std::collections::BTreeSet;
use std::path::PathBuf;

use sea_orm::sea_query::{ColumnDef, Table};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tenant_scope::TenantId;
use tenant_scope_catalog::Catalog;
use tenant_scope_cli::codegen::{GenerateError, GenerateOptions, Generated, generate};
use tenant_scope_schema::adopt::{self, AdoptPlan, AdoptTable, BackfillOptions};
use tenant_scope_schema::check::{CheckOptions, Report, check};
use test_support::{Backend, TestDb};

/// The global tables of the reference schema.
const GLOBAL: [&str; 2] = ["tenants", "permissions"];

async fn exec(conn: &DatabaseConnection, sql: &str) {
    conn.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// PostgreSQL: row level security on `table` as the library makes it (the other backends have none).
async fn secure(t: &TestDb, table: &str) {
    if t.backend() == Backend::Postgres {
        for sql in tenant_scope_schema::rls::enable_rls_statements(table) {
            exec(t.raw(), &sql).await;
        }
    }
}

async fn check_url(url: &str) -> Report {
    check_with(url, &GLOBAL).await
}

/// `check` on `url` with `global` declared global (`tenants` always is).
async fn check_with(url: &str, global: &[&str]) -> Report {
    let mut options = CheckOptions::new(url);
    options.global = global.iter().map(|g| (*g).to_owned()).collect();
    check(&options).await.expect("the check runs")
}

async fn generate_url(url: &str, global: &[&str]) -> Result<Generated, GenerateError> {
    generate(&GenerateOptions {
        database_url: url.to_owned(),
        global: global.iter().map(|g| (*g).to_owned()).collect(),
        ..GenerateOptions::default()
    })
    .await
}

/// The generated entity of `table`, which must be tenant-owned with its fields in `fields` order.
fn assert_tenant_entity(generated: &Generated, table: &str, fields: &[&str]) {
    let file = generated
        .files
        .get(&PathBuf::from(format!("{table}.rs")))
        .unwrap_or_else(|| panic!("no entity for {table}: {:?}", generated.files.keys()));
    assert!(
        file.contains("impl tenant_scope::TenantScoped for Entity"),
        "{table} is not tenant-scoped:\n{file}"
    );
    assert!(file.contains("pub tenant_id: TenantId,"), "{file}");
    let positions: Vec<usize> = fields
        .iter()
        .map(|f| {
            file.find(&format!("pub {f}: "))
                .unwrap_or_else(|| panic!("no field {f} in {table}:\n{file}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "fields of {table} not in table order {fields:?}:\n{file}"
    );
}

// Guarantee: a legacy table adopted with expand, backfill, validate and enforce (which adds `tenant_id` as its
// last column) passes `check` and is accepted by `generate` as a tenant-owned entity. (Before the one catalog,
// `generate` read the key in table order and refused it on SQLite.)
test_support::backend_test!(
    what_adopt_produces_generate_accepts,
    |t: TestDb| async move {
        let legacy = Table::create()
            .table("legacy_notes")
            .col(ColumnDef::new("id").uuid().not_null().primary_key())
            .col(ColumnDef::new("body").string().not_null())
            .to_owned();
        t.raw().execute(&legacy).await.expect("the legacy table");
        let plan = AdoptPlan::new(TenantId::new(), "pre-tenancy data")
            .table(AdoptTable::new("legacy_notes"));
        adopt::expand(t.raw(), &plan).await.expect("expand");
        adopt::backfill(t.raw(), &plan, &BackfillOptions::default())
            .await
            .expect("backfill");
        assert_eq!(adopt::validate(t.raw(), &plan).await.expect("validate"), []);
        adopt::enforce(t.raw(), &plan).await.expect("enforce");
        let adopted = adopt::inspect(t.raw(), "legacy_notes")
            .await
            .expect("inspect");
        let columns: Vec<&str> = adopted.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(columns, ["id", "body", "tenant_id"], "tenant_id comes last");
        assert_eq!(adopted.primary_key, ["tenant_id", "id"]);
        secure(&t, "legacy_notes").await;

        let report = check_url(t.url()).await;
        assert!(report.is_clean(), "{}", report.to_text());
        let generated = generate_url(t.url(), &GLOBAL)
            .await
            .expect("generate accepts what adopt produced");
        assert_tenant_entity(&generated, "legacy_notes", &["id", "body", "tenant_id"]);
    }
);

// Guarantee: a tenant-owned table written by hand with `tenant_id` as its last column and the primary key
// `(tenant_id, id)` is clean and generates, the key read in key order on every backend.
test_support::backend_test!(tenant_id_last_generates, |t: TestDb| async move {
    let uuid = match t.backend() {
        Backend::Postgres => "uuid",
        Backend::Mysql => "binary(16)",
        Backend::Sqlite => "uuid_text",
    };
    exec(
        t.raw(),
        &format!(
            "CREATE TABLE ledger_entries (id {uuid} NOT NULL, memo VARCHAR(100) NOT NULL, \
             tenant_id {uuid} NOT NULL, PRIMARY KEY (tenant_id, id), \
             CONSTRAINT fk_ledger_entries_tenant_id FOREIGN KEY (tenant_id) REFERENCES tenants (id) \
             ON DELETE RESTRICT ON UPDATE RESTRICT)"
        ),
    )
    .await;
    secure(&t, "ledger_entries").await;
    let report = check_url(t.url()).await;
    assert!(report.is_clean(), "{}", report.to_text());
    let generated = generate_url(t.url(), &GLOBAL).await.expect("generate");
    assert_tenant_entity(&generated, "ledger_entries", &["id", "memo", "tenant_id"]);
});

/// Which tools see `table` on `url` (with `global` declared global): the catalog, `check` (the table has
/// no tenant column, so it is a finding), `generate` (it refuses the table, naming it) and adopt (`inspect`).
async fn tools_that_see(url: &str, table: &str, global: &[&str]) -> BTreeSet<&'static str> {
    let mut seen = BTreeSet::new();
    let conn = Database::connect(url).await.expect("connect");
    if Catalog::read(&conn)
        .await
        .expect("the catalog")
        .tables
        .contains_key(table)
    {
        seen.insert("catalog");
    }
    if adopt::inspect(&conn, table).await.is_ok() {
        seen.insert("adopt");
    }
    let _ = conn.close().await;
    if check_with(url, global)
        .await
        .findings
        .iter()
        .any(|f| f.table.as_deref() == Some(table))
    {
        seen.insert("check");
    }
    match generate_url(url, global).await {
        Err(GenerateError::NotTenantScoped(tables)) if tables.iter().any(|t| t == table) => {
            seen.insert("generate");
        }
        Err(GenerateError::UnknownGlobal(_)) | Err(GenerateError::NotTenantScoped(_)) | Ok(_) => {}
        Err(other) => panic!("generate on {url}: {other}"),
    }
    seen
}

/// `url` with `search_path` set to `schema` (PostgreSQL's way of choosing the scope in a URL).
fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

const EVERY_TOOL: [&str; 4] = ["adopt", "catalog", "check", "generate"];

// Guarantee: one scope for every tool (PostgreSQL `current_schema()`, the MySQL database of the URL, SQLite's
// `main`): a table in it is seen by the catalog, check, generate and adopt alike; one outside it by none.
test_support::backend_test!(every_tool_reads_one_scope, |t: TestDb| async move {
    exec(t.raw(), "CREATE TABLE stray (id INT NOT NULL PRIMARY KEY)").await;
    assert_eq!(
        tools_that_see(t.url(), "stray", &GLOBAL).await,
        BTreeSet::from(EVERY_TOOL)
    );
    let scope = Catalog::read(t.raw()).await.expect("the catalog").scope;
    match t.backend() {
        Backend::Sqlite => assert_eq!(scope, "main"),
        Backend::Postgres => {
            assert_eq!(scope, "public");
            exec(
                t.raw(),
                "CREATE SCHEMA ts_elsewhere; CREATE TABLE ts_elsewhere.stray_elsewhere (id INT PRIMARY KEY)",
            )
            .await;
            assert_eq!(
                tools_that_see(t.url(), "stray_elsewhere", &GLOBAL).await,
                BTreeSet::new()
            );
            // The other way round: with the search_path on the other schema, only its table is seen.
            let elsewhere = with_search_path(t.url(), "ts_elsewhere");
            let conn = Database::connect(&elsewhere).await.expect("connect");
            assert_eq!(
                Catalog::read(&conn).await.expect("the catalog").scope,
                "ts_elsewhere"
            );
            let _ = conn.close().await;
            assert_eq!(
                tools_that_see(&elsewhere, "stray_elsewhere", &[]).await,
                BTreeSet::from(EVERY_TOOL)
            );
            assert_eq!(
                tools_that_see(&elsewhere, "stray", &[]).await,
                BTreeSet::new()
            );
        }
        Backend::Mysql => {
            assert_eq!(scope, t.name());
            let other = format!("{}_elsewhere", t.name());
            exec(t.raw(), &format!("CREATE DATABASE `{other}`")).await;
            exec(
                t.raw(),
                &format!("CREATE TABLE `{other}`.stray_elsewhere (id INT NOT NULL PRIMARY KEY)"),
            )
            .await;
            let seen = tools_that_see(t.url(), "stray_elsewhere", &GLOBAL).await;
            exec(t.raw(), &format!("DROP DATABASE `{other}`")).await;
            assert_eq!(seen, BTreeSet::new());
        }
    }
});
