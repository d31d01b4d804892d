//! The source guard (`tenant_scope_guard`, `tenant-scope check --source`): the violating fixture
//! service yields exactly its planted violations, one test per rule; the clean fixture service (the
//! same service written with tenant-scope) yields none; allow comments, default exclusions and
//! parse errors behave as docs/guard.md says.
//!
//! The fixtures are source trees only (tests/fixtures/guard/{violating,clean}); they are never
//! built by this workspace.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tenant_scope_guard::{GuardError, RULES, ScanOptions, Violation};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/guard")
        .join(name)
}

/// `(file below the root, line, rule)` of each violation.
fn keys(root: &Path, violations: &[Violation]) -> Vec<(String, usize, &'static str)> {
    violations
        .iter()
        .map(|v| {
            let file = v.file.strip_prefix(root).expect("file below the root");
            (file.to_string_lossy().replace('\\', "/"), v.line, v.rule)
        })
        .collect()
}

fn scan(name: &str, options: &ScanOptions) -> Vec<(String, usize, &'static str)> {
    let root = fixture(name);
    let violations = tenant_scope_guard::scan_dir_with(&root, options).expect("scan");
    keys(&root, &violations)
}

const MAIN: &str = "src/main.rs";
const HANDLERS: &str = "src/handlers.rs";
const ADMIN: &str = "src/admin.rs";

/// Every violation of the violating fixture with the default options, in report order.
const VIOLATING: &[(&str, usize, &str)] = &[
    (ADMIN, 25, "system-in-handler"), // tdb.system(..) in a closure routed with post(..)
    (ADMIN, 33, "system-in-handler"), // admin.db.system(..) in list_tenants, routed with get(..)
    (ADMIN, 44, "system-in-handler"), // db.system(..) in count_all, called by the handler provision
    (ADMIN, 56, "allow-without-reason"), // // tenant-scope: allow(system-in-handler)
    (ADMIN, 57, "system-in-handler"), // ... so the line below (export takes `Tenant`) stays reported
    (ADMIN, 62, "system-in-handler"), // purge_all, routed with delete(..) in main.rs
    (ADMIN, 84, "custom-verifier"),   // #[async_trait] impl TenantVerifier for HeaderVerifier
    (HANDLERS, 6, "connection-trait"), // use sea_orm::{.., ConnectionTrait, ..}
    (HANDLERS, 6, "connection-type"), // use sea_orm::{.., DatabaseConnection, ..}
    (HANDLERS, 7, "connection-trait"), // use sea_orm::{.., TransactionTrait}
    (HANDLERS, 13, "connection-type"), // pub db: DatabaseConnection
    (HANDLERS, 17, "connection-type"), // conn: &DatabaseConnection
    (HANDLERS, 19, "raw-query"),      // projects::Entity::find().all(conn)
    (HANDLERS, 27, "raw-query"),      // projects::Entity::find_by_id((tenant, id))
    (HANDLERS, 43, "raw-exec"),       // project.insert(&state.db)
    (HANDLERS, 53, "raw-query"),      // Project::update(active) (alias of projects::Entity)
    (HANDLERS, 61, "raw-query"),      // project.find_related(tasks::Entity)
    (HANDLERS, 65, "raw-query"),      // let query = tasks::Entity::find();
    (HANDLERS, 68, "raw-exec"),       // query...all(&state.db)
    (HANDLERS, 72, "connection-trait"), // purge<C: ConnectionTrait>
    (HANDLERS, 73, "raw-query"),      // tasks::Entity::delete_many().exec(db)
    (HANDLERS, 79, "raw-exec"),       // project.delete(&txn)
    (HANDLERS, 86, "raw-sql"),        // .execute_unprepared("DELETE ...")
    (HANDLERS, 88, "raw-sql"),        // Statement::from_string outside a SystemDb context
    (HANDLERS, 89, "raw-sql"),        // state.db.execute_raw(stmt)
    (HANDLERS, 94, "allow-without-reason"), // // tenant-scope: allow(raw-sql)
    (HANDLERS, 95, "raw-sql"),        // ... so the line below stays reported
    (HANDLERS, 96, "invalid-allow"),  // allow(everything)
    (HANDLERS, 98, "unused-allow"),   // allow(raw-query) above a clean line
    (MAIN, 5, "connection-type"),     // use sea_orm::{.., DatabaseConnection, ..}
    (MAIN, 12, "connection-type"),    // let conn: DatabaseConnection
    (MAIN, 12, "raw-connection"),     // Database::connect(options)
    (MAIN, 23, "connection-type"),    // -> Result<sea_orm::sqlx::SqlitePool, ..>
    (MAIN, 24, "raw-connection"),     // sea_orm::sqlx::SqlitePool::connect(url)
    (MAIN, 28, "connection-type"),    // fn demo_connection() -> DatabaseConnection
    (MAIN, 29, "raw-connection"),     // MockDatabase::new(..) outside test code
    (MAIN, 54, "test-switch"),        // db.without_app_filter() outside test code
];

fn expected(rule: &str) -> Vec<(String, usize, &'static str)> {
    VIOLATING
        .iter()
        .filter(|(_, _, r)| *r == rule)
        .map(|(f, l, _)| {
            let id = RULES.iter().find(|r| r.id == rule).expect("known rule").id;
            ((*f).to_owned(), *l, id)
        })
        .collect()
}

fn found(rule: &str) -> Vec<(String, usize, &'static str)> {
    scan("violating", &ScanOptions::default())
        .into_iter()
        .filter(|(_, _, r)| *r == rule)
        .collect()
}

#[test]
fn violating_fixture_yields_exactly_the_planted_violations() {
    let all: Vec<_> = VIOLATING
        .iter()
        .map(|(f, l, r)| ((*f).to_owned(), *l, *r))
        .collect();
    assert_eq!(scan("violating", &ScanOptions::default()), all);
}

#[test]
fn rule_raw_connection() {
    assert_eq!(found("raw-connection"), expected("raw-connection"));
}

#[test]
fn rule_connection_type() {
    assert_eq!(found("connection-type"), expected("connection-type"));
}

#[test]
fn rule_connection_trait() {
    assert_eq!(found("connection-trait"), expected("connection-trait"));
}

#[test]
fn rule_raw_query() {
    assert_eq!(found("raw-query"), expected("raw-query"));
}

#[test]
fn rule_raw_exec() {
    assert_eq!(found("raw-exec"), expected("raw-exec"));
}

#[test]
fn rule_raw_sql() {
    assert_eq!(found("raw-sql"), expected("raw-sql"));
}

#[test]
fn rule_allow_without_reason_is_a_violation_and_allows_nothing() {
    assert_eq!(
        found("allow-without-reason"),
        expected("allow-without-reason")
    );
    // The line under the reasonless allow comment is still reported.
    assert!(found("raw-sql").contains(&(HANDLERS.to_owned(), 95, "raw-sql")));
}

#[test]
fn rule_system_in_handler() {
    assert_eq!(found("system-in-handler"), expected("system-in-handler"));
    // `nightly` (line 78) is a job, not a handler: its system access is not reported.
    assert!(!found("system-in-handler").contains(&(ADMIN.to_owned(), 78, "system-in-handler")));
}

#[test]
fn rule_custom_verifier() {
    assert_eq!(found("custom-verifier"), expected("custom-verifier"));
}

#[test]
fn an_allow_without_reason_does_not_allow_system_access_in_a_handler() {
    let allow = (ADMIN.to_owned(), 56, "allow-without-reason");
    assert!(found("allow-without-reason").contains(&allow));
    assert!(found("system-in-handler").contains(&(ADMIN.to_owned(), 57, "system-in-handler")));
}

#[test]
fn a_handler_routed_in_another_file_is_found_by_the_directory_scan_only() {
    // `purge_all` is routed in main.rs: scanning admin.rs alone cannot know it is a handler.
    let file = fixture("violating").join(ADMIN);
    let source = std::fs::read_to_string(&file).expect("read");
    let alone =
        tenant_scope_guard::scan_source(&file, &source, &ScanOptions::default()).expect("scan");
    assert!(!alone.iter().any(|v| v.line == 62), "{alone:#?}");
    assert!(found("system-in-handler").contains(&(ADMIN.to_owned(), 62, "system-in-handler")));
}

#[test]
fn rule_invalid_allow() {
    assert_eq!(found("invalid-allow"), expected("invalid-allow"));
}

#[test]
fn rule_test_switch() {
    assert_eq!(found("test-switch"), expected("test-switch"));
}

#[test]
fn rule_unused_allow() {
    assert_eq!(found("unused-allow"), expected("unused-allow"));
}

#[test]
fn every_rule_is_planted_in_the_violating_fixture() {
    let planted: BTreeSet<&str> = VIOLATING.iter().map(|(_, _, r)| *r).collect();
    let rules: BTreeSet<&str> = RULES.iter().map(|r| r.id).collect();
    assert_eq!(planted, rules);
}

#[test]
fn violations_carry_file_position_and_a_fix() {
    let root = fixture("violating");
    let violations = tenant_scope_guard::scan_dir(&root).expect("scan");
    let connect = violations
        .iter()
        .find(|v| v.rule == "raw-connection" && v.line == 12)
        .expect("Database::connect is reported");
    assert_eq!(connect.file, root.join(MAIN));
    assert_eq!(connect.column, 36);
    assert!(connect.message.contains("TenantDb::connect"), "{connect}");
    let find = violations
        .iter()
        .find(|v| v.rule == "raw-query" && v.line == 19)
        .expect("Entity::find is reported");
    assert_eq!(find.column, 5);
    assert!(
        find.message
            .contains("db.scope(&ctx).find::<projects::Entity>()"),
        "{find}"
    );
    assert_eq!(
        find.to_string(),
        format!(
            "{}:19:5: raw-query: {}",
            root.join(HANDLERS).display(),
            find.message
        )
    );
}

#[test]
fn reports_are_sorted_and_deterministic() {
    let root = fixture("violating");
    let first = tenant_scope_guard::scan_dir(&root).expect("scan");
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(first, sorted);
    assert_eq!(
        first,
        tenant_scope_guard::scan_dir(&root).expect("scan again")
    );
}

#[test]
fn clean_fixture_yields_nothing() {
    assert_eq!(scan("clean", &ScanOptions::default()), Vec::new());
}

#[test]
fn the_allow_comment_with_a_reason_is_what_keeps_the_clean_fixture_clean() {
    let file = fixture("clean").join(HANDLERS);
    let source = std::fs::read_to_string(&file).expect("read");
    let allow = "    // tenant-scope: allow(raw-query) ";
    assert!(source.contains(allow));
    let line = source
        .lines()
        .position(|l| l.starts_with(allow))
        .expect("allow line")
        + 1;
    // Blank out the comment, keeping line numbers: the line below it is reported.
    let without: String = source
        .lines()
        .map(|l| if l.starts_with(allow) { "" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let found =
        tenant_scope_guard::scan_source(&file, &without, &ScanOptions::default()).expect("scan");
    let found: Vec<_> = found.iter().map(|v| (v.line, v.rule)).collect();
    assert_eq!(found, vec![(line + 1, "raw-query")]);
}

#[test]
fn test_code_is_excluded_by_default_and_included_on_request() {
    let with_tests = ScanOptions::new().include_tests(true);
    // The clean service's only raw access is its #[cfg(test)] mock connection.
    let clean = scan("clean", &with_tests);
    assert_eq!(
        clean,
        vec![(MAIN.to_owned(), 32, "raw-connection")],
        "{clean:?}"
    );
    let violating = scan("violating", &with_tests);
    let extra: Vec<_> = violating
        .iter()
        .filter(|(f, l, _)| f != HANDLERS && f != ADMIN && !(f == MAIN && *l < 32))
        .cloned()
        .collect();
    assert_eq!(
        extra,
        vec![
            (MAIN.to_owned(), 38, "raw-connection"),
            (MAIN.to_owned(), 54, "test-switch"),
            ("tests/smoke.rs".to_owned(), 6, "raw-connection"),
            ("tests/smoke.rs".to_owned(), 14, "test-switch"),
        ]
    );
}

#[test]
fn migrations_are_excluded_by_default_and_included_on_request() {
    let found = scan("violating", &ScanOptions::new().include_migrations(true));
    let migration: Vec<_> = found
        .into_iter()
        .filter(|(f, _, _)| f.starts_with("migration/"))
        .collect();
    let file = "migration/src/lib.rs".to_owned();
    assert_eq!(
        migration,
        vec![
            (file.clone(), 4, "connection-type"),
            (file.clone(), 5, "connection-trait"),
            (file, 6, "raw-sql"),
        ]
    );
}

#[test]
fn build_scripts_hidden_dirs_and_target_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = "fn f() { let _ = sea_orm::Database::connect(\"sqlite::memory:\"); }\n";
    for file in [
        "build.rs",
        "target/debug/gen.rs",
        ".git/hook.rs",
        "src/lib.rs",
    ] {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, raw).expect("write");
    }
    let default = tenant_scope_guard::scan_dir(dir.path()).expect("scan");
    let files: Vec<_> = keys(dir.path(), &default)
        .into_iter()
        .map(|(f, _, _)| f)
        .collect();
    assert_eq!(files, vec!["src/lib.rs".to_owned()]);
    let all =
        tenant_scope_guard::scan_dir_with(dir.path(), &ScanOptions::new().include_migrations(true))
            .expect("scan");
    let files: Vec<_> = keys(dir.path(), &all)
        .into_iter()
        .map(|(f, _, _)| f)
        .collect();
    assert_eq!(files, vec!["build.rs".to_owned(), "src/lib.rs".to_owned()]);
}

#[test]
fn a_single_file_can_be_scanned() {
    let file = fixture("violating").join(MAIN);
    let violations = tenant_scope_guard::scan_dir(&file).expect("scan");
    assert!(!violations.is_empty());
    assert!(violations.iter().all(|v| v.file == file));
}

#[test]
fn parse_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
    std::fs::write(dir.path().join("src/ok.rs"), "fn ok() {}\n").expect("write");
    let broken = dir.path().join("src/broken.rs");
    std::fs::write(&broken, "fn ok() {}\n\nfn broken( {\n").expect("write");
    let err = tenant_scope_guard::scan_dir(dir.path()).expect_err("a parse error");
    match &err {
        GuardError::Parse { path, line, .. } => {
            assert_eq!(path, &broken);
            assert_eq!(*line, 3);
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("could not parse {}:3:", broken.display())),
        "{text}"
    );
}

#[test]
fn a_missing_root_is_an_io_error() {
    let err = tenant_scope_guard::scan_dir(Path::new("/nonexistent/tenant-scope-guard"))
        .expect_err("missing");
    assert!(matches!(err, GuardError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/tenant-scope-guard"));
}

#[test]
fn the_generated_reference_entities_are_clean() {
    // Entities live in service crates too; generated code must not trip the guard.
    let entities = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../entity/src");
    assert_eq!(
        tenant_scope_guard::scan_dir(&entities).expect("scan"),
        Vec::new()
    );
}

/// Rules on small snippets: `(source, expected rules in order)`.
fn check_snippets(cases: &[(&str, &[&str])]) {
    for (source, want) in cases {
        let found = tenant_scope_guard::scan_source(
            Path::new("snippet.rs"),
            source,
            &ScanOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{e}: {source}"));
        let rules: Vec<&str> = found.iter().map(|v| v.rule).collect();
        assert_eq!(&rules, want, "{source}\n{found:#?}");
    }
}

#[test]
fn snippets_that_use_tenant_scope_properly_are_clean() {
    check_snippets(&[
        // Iterators, sets and maps share method names with SeaORM's executors.
        (
            "fn f(v: Vec<u8>) -> bool { v.iter().all(|b| *b > 0) && v.iter().count() > 1 }",
            &[],
        ),
        (
            "fn f(s: &mut std::collections::HashSet<&str>, n: &str) { s.insert(&n); }",
            &[],
        ),
        (
            "fn f(m: &mut std::collections::HashMap<u8, u8>) { m.insert(1, 2); }",
            &[],
        ),
        ("fn f(img: Image, path: &str) { img.save(&path); }", &[]),
        // tenant-scope's handles take no connection argument.
        (
            "async fn f(s: TenantScope<'_>) { s.find::<projects::Entity>().paginate(20).fetch_page(0).await; \
             s.find::<tasks::Entity>().one().await; s.delete::<tasks::Entity>(id).await; \
             s.update(am).await; s.insert(am).await; s.load_many::<tasks::Entity, _>(&ps).await; }",
            &[],
        ),
        // Column and relation helpers of entities are not queries.
        (
            "fn f() { let _ = projects::Column::Name.eq(1); let _ = projects::Relation::Tasks.def(); }",
            &[],
        ),
        (
            "fn f() -> sea_orm::DbBackend { sea_orm::DbBackend::Postgres }",
            &[],
        ),
        // ConnectOptions is accepted: only `TenantDb::connect_with` can use it without a violation.
        (
            "async fn f(o: sea_orm::ConnectOptions) { TenantDb::connect_with(o).await; }",
            &[],
        ),
        // A service's own `Database` type is not SeaORM's.
        (
            "struct Database; impl Database { fn connect() {} } fn f() { Database::connect() }",
            &[],
        ),
        // A service's own repository functions named like SeaORM's.
        (
            "async fn f(s: TenantScope<'_>) { ProjectRepo::find_by_id(s, id).await; }",
            &[],
        ),
        // Statements are for a `SystemDb`: in a function that takes one or calls `.system(..)`.
        (
            "async fn f(sys: &SystemDb<'_>) { sys.execute(Statement::from_string(b, \"VACUUM\")).await; }",
            &[],
        ),
        // Skipped test code, and `#[cfg(all(test, ...))]`.
        (
            "#[cfg(all(test, feature = \"x\"))] mod t { fn f() { Database::connect(u); } }",
            &[],
        ),
        (
            "#[tokio::test] async fn t() { Database::connect(u).await; }",
            &[],
        ),
        ("#![cfg(test)]\nfn t() { Database::connect(u); }", &[]),
        // Doc comments mentioning the marker are not directives.
        ("/// tenant-scope: allow(raw-sql)\nfn f() {}", &[]),
    ]);
}

#[test]
fn snippets_of_careless_code_are_reported() {
    check_snippets(&[
        // Aliases of `Entity` and of `Database`, entity preludes, generics bounded by an entity.
        (
            "use entity::projects::Entity as P; fn f() { P::find(); }",
            &["raw-query"],
        ),
        (
            "use entity::prelude::Projects; fn f() { Projects::delete_by_id(1); }",
            &["raw-query"],
        ),
        (
            "use entity::prelude::*; fn f() { Projects::find(); }",
            &["raw-query"],
        ),
        (
            "use sea_orm::Database as Db; fn f() { Db::connect(u); }",
            &["raw-connection"],
        ),
        ("fn f<E: TenantScoped>() { E::find(); }", &["raw-query"]),
        (
            "fn f<E>() where E: sea_orm::EntityTrait { E::update_many(); }",
            &["raw-query"],
        ),
        (
            "impl<E: EntityTrait> R<E> { fn f() { E::find_by_id(1); } }",
            &["raw-query"],
        ),
        (
            "fn f() { <projects::Entity as EntityTrait>::find(); }",
            &["raw-query"],
        ),
        (
            "fn f() { users::Entity::find_by_email(e); }",
            &["raw-query"],
        ),
        // Executors on a connection, with the query built elsewhere.
        (
            "async fn f(q: Select) { q.one(db).await; q.count(&self.conn).await; }",
            &["raw-exec", "raw-exec"],
        ),
        (
            "async fn f(q: Select) { q.paginate(&db, 10); ps.load_many(tasks::Entity, &db); }",
            &["raw-exec", "raw-exec"],
        ),
        (
            "async fn f(m: Model) { m.save(&state.pool).await; }",
            &["raw-exec"],
        ),
        // Raw SQL.
        (
            "async fn f() { Model::find_by_statement(s); }",
            &["raw-sql"],
        ),
        (
            "async fn f() { let _ = sqlx::query(\"DELETE FROM t\"); }",
            &["raw-sql"],
        ),
        (
            "async fn f() { sqlx::query!(\"DELETE FROM t\"); }",
            &["raw-sql"],
        ),
        ("fn f() { s.from_raw_sql(stmt); }", &["raw-sql"]),
        // Inside expression macros.
        (
            "fn f() { println!(\"{:?}\", projects::Entity::find()); }",
            &["raw-query"],
        ),
        // Connection types in every position.
        (
            "fn f(p: sqlx::Pool<sqlx::Postgres>) {}",
            &["connection-type"],
        ),
        ("fn f(p: Pool<Postgres>) {}", &["connection-type"]),
        (
            "struct S { t: sea_orm::DatabaseTransaction, c: DbConn }",
            &["connection-type", "connection-type"],
        ),
        (
            "fn f(c: &dyn sea_orm::StreamTrait) {}",
            &["connection-trait"],
        ),
        (
            "fn f() { let _ = sqlx::PgPool::connect_lazy(u); }",
            &["raw-connection"],
        ),
        (
            "fn f() { let _ = SqlxPostgresConnector::from_sqlx_postgres_pool(p); }",
            &["raw-connection"],
        ),
        // One finding per chain, not one per call in it.
        (
            "async fn f() { projects::Entity::find().filter(x).all(&conn).await; }",
            &["raw-query"],
        ),
    ]);
}

#[test]
fn allow_comments() {
    let connect = "    let c = sea_orm::Database::connect(u);\n";
    let cases: &[(&str, &[&str])] = &[
        (
            "    // tenant-scope: allow(raw-connection) the admin CLI runs as owner\n",
            &[],
        ),
        (
            "    // tenant-scope: allow(raw-connection): reason after a colon\n",
            &[],
        ),
        (
            "    // tenant-scope: allow(raw-connection, raw-sql) two rules, one unused\n",
            &["unused-allow"],
        ),
        (
            "    // tenant-scope: allow(raw-connection) stacked above another comment\n    // (an ordinary comment)\n",
            &[],
        ),
        (
            "    // tenant-scope: allow(raw-connection)\n",
            &["allow-without-reason", "raw-connection"],
        ),
        (
            "    // tenant-scope: allow(raw-connection) -- \n",
            &["allow-without-reason", "raw-connection"],
        ),
        (
            "    // tenant-scope: allow(raw-query) wrong rule\n",
            &["unused-allow", "raw-connection"],
        ),
        (
            "    // tenant-scope: allow raw-connection because\n",
            &["invalid-allow", "raw-connection"],
        ),
        (
            "    // tenant-scope: allow(raw-connection because\n",
            &["invalid-allow", "raw-connection"],
        ),
        (
            "    // tenant-scope: allow() because\n",
            &["invalid-allow", "raw-connection"],
        ),
        (
            "    // tenant-scope: allow(unused-allow) meta rules can't be allowed\n",
            &["invalid-allow", "raw-connection"],
        ),
        // Not directly above: a blank line in between breaks it.
        (
            "    // tenant-scope: allow(raw-connection) too far\n\n",
            &["unused-allow", "raw-connection"],
        ),
    ];
    for (comment, want) in cases {
        let source = format!("fn f() {{\n{comment}{connect}}}\n");
        let found =
            tenant_scope_guard::scan_source(Path::new("a.rs"), &source, &ScanOptions::default())
                .expect("scan");
        let rules: Vec<&str> = found.iter().map(|v| v.rule).collect();
        assert_eq!(&rules, want, "{source}");
    }
}
