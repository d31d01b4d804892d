//! `tenant-scope generate` ([`tenant_scope_cli::codegen`]) on every backend:
//!
//! - from the migrated reference schema it reproduces `entity/src` byte for byte, on SQLite, PostgreSQL and
//!   MySQL alike (so the three backends give identical files);
//! - a table without `tenant_id` that is not declared global is refused, naming it, and nothing is written;
//!   declared global, it gets `impl tenant_scope::Global`;
//! - the output is deterministic;
//! - `--module` gives the same files with a `mod.rs` root instead of `lib.rs`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use sea_orm::{
    ConnectionTrait,
    sea_query::{ColumnDef, Table},
};
use tenant_scope_cli::codegen::{GenerateError, GenerateOptions, Generated, Layout, generate};
use test_support::TestDb;

/// The global tables of the reference schema.
const GLOBAL: [&str; 2] = ["tenants", "permissions"];

fn options(url: &str, global: &[&str]) -> GenerateOptions {
    GenerateOptions {
        database_url: url.to_owned(),
        global: global.iter().map(|g| (*g).to_owned()).collect(),
        ..GenerateOptions::default()
    }
}

/// What the CLI does: generate, then write only if that succeeded.
async fn generate_into(options: &GenerateOptions, dir: &Path) -> Result<Generated, GenerateError> {
    let generated = generate(options).await?;
    generated
        .write_to(dir)
        .expect("writing the generated files");
    Ok(generated)
}

/// Every file of `dir`, by path relative to it.
fn read_dir(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("reading the directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_file() {
            let name = path.strip_prefix(dir).expect("a path in dir").to_owned();
            let text = std::fs::read_to_string(&path).expect("reading a file");
            files.insert(name, text);
        }
    }
    files
}

/// The checked-in reference entities.
fn reference() -> BTreeMap<PathBuf, String> {
    read_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../entity/src"))
}

/// A line diff of `expected` and `actual` (longest common subsequence), `-` expected, `+` generated, with two
/// lines of context.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut lines = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            lines.push((' ', a[i], i + 1));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            lines.push(('-', a[i], i + 1));
            i += 1;
        } else {
            lines.push(('+', b[j], j + 1));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..lines.len()).filter(|&k| lines[k].0 != ' ').collect();
    let mut out = String::new();
    let mut last = None;
    for (k, (sign, line, number)) in lines.iter().enumerate() {
        if changed.iter().any(|&c| c.abs_diff(k) <= 2) {
            if last.is_some_and(|l: usize| l + 1 != k) {
                out.push_str("   ...\n");
            }
            let _ = writeln!(out, "{sign}{number:4} {line}");
            last = Some(k);
        }
    }
    if expected.ends_with('\n') != actual.ends_with('\n') {
        out.push_str("(the files differ in their final newline)\n");
    }
    out
}

/// Panics with a diff per file unless `generated` is exactly `expected`.
fn assert_files_eq(
    what: &str,
    expected: &BTreeMap<PathBuf, String>,
    generated: &BTreeMap<PathBuf, String>,
) {
    let mut report = String::new();
    for path in expected.keys().filter(|p| !generated.contains_key(*p)) {
        let _ = writeln!(report, "{}: expected, not generated", path.display());
    }
    for path in generated.keys().filter(|p| !expected.contains_key(*p)) {
        let _ = writeln!(report, "{}: generated, not expected", path.display());
    }
    for (path, want) in expected {
        if let Some(got) = generated.get(path)
            && got != want
        {
            let _ = writeln!(
                report,
                "--- {} (expected)\n+++ {} (generated)\n{}",
                path.display(),
                path.display(),
                diff(want, got)
            );
        }
    }
    assert!(report.is_empty(), "{what}:\n{report}");
}

/// Adds `legacy_notes`, a table without `tenant_id`, to the test database.
async fn add_untenanted_table(t: &TestDb) {
    let stmt = Table::create()
        .table("legacy_notes")
        .col(ColumnDef::new("id").uuid().not_null().primary_key())
        .col(ColumnDef::new("body").text().not_null())
        .to_owned();
    t.raw().execute(&stmt).await.expect("creating legacy_notes");
}

test_support::backend_test!(reproduces_the_reference_entities, |t: TestDb| async move {
    let dir = tempfile::tempdir().expect("a temp dir");
    let generated = generate_into(&options(t.url(), &GLOBAL), dir.path())
        .await
        .expect("generating from the reference schema");
    let what = format!(
        "{}: `tenant-scope generate` output differs from entity/src (regenerate entity/src, or fix the generator)",
        t.backend()
    );
    assert_files_eq(&what, &reference(), &generated.files);
    // What was written is what was generated.
    assert_files_eq(
        &format!("{}: written files", t.backend()),
        &generated.files,
        &read_dir(dir.path()),
    );
});

test_support::backend_test!(
    the_module_layout_is_the_crate_with_a_mod_rs,
    |t: TestDb| async move {
        let mut options = options(t.url(), &GLOBAL);
        options.layout = Layout::Module;
        let generated = generate(&options).await.expect("generating a module");
        // The same entity files and prelude; the root is `mod.rs` (for `mod entities;`), not `lib.rs`.
        let mut expected = reference();
        let lib = expected
            .remove(Path::new("lib.rs"))
            .expect("entity/src/lib.rs");
        assert!(lib.contains("for this crate."), "{lib}");
        expected.insert(
            PathBuf::from("mod.rs"),
            lib.replace("for this crate.", "for this module."),
        );
        assert_files_eq(
            &format!("{}: generate --module", t.backend()),
            &expected,
            &generated.files,
        );
    }
);

/// A tenant-owned table `name` with an `id` of column type `id` (foreign key to `tenants`).
async fn add_table_with_id(t: &TestDb, name: &'static str, id: ColumnDef) {
    let mut id = id;
    let stmt = Table::create()
        .table(name)
        .col(ColumnDef::new("tenant_id").uuid().not_null())
        .col(id.not_null())
        .primary_key(
            sea_orm::sea_query::Index::create()
                .col("tenant_id")
                .col("id"),
        )
        .foreign_key(
            sea_orm::sea_query::ForeignKey::create()
                .from(name, "tenant_id")
                .to("tenants", "id"),
        )
        .to_owned();
    t.raw().execute(&stmt).await.expect(name);
}

// Guarantee: an integer id generates `TenantScoped` with the id type of the table (the runtime
// assigns integer ids through the database), the same on every backend for a 64-bit id.
test_support::backend_test!(
    an_integer_id_generates_with_its_own_type,
    |t: TestDb| async move {
        add_table_with_id(
            &t,
            "legacy_counters",
            ColumnDef::new("id").big_integer().to_owned(),
        )
        .await;
        let generated = generate(&options(t.url(), &GLOBAL))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", t.backend()));
        let file = &generated.files[std::path::Path::new("legacy_counters.rs")];
        assert!(file.contains("pub id: i64,"), "{}: {file}", t.backend());
        assert!(
            file.contains("impl tenant_scope::TenantScoped for Entity {\n    type Id = i64;"),
            "{}: {file}",
            t.backend()
        );
        assert!(!file.contains("auto_increment = true"), "{file}");
    }
);

// Guarantee: an id the runtime cannot assign or look up (text) is refused with its own reason,
// and nothing is written.
test_support::backend_test!(
    a_text_id_is_refused_with_its_own_reason,
    |t: TestDb| async move {
        add_table_with_id(
            &t,
            "legacy_codes",
            ColumnDef::new("id").string_len(40).to_owned(),
        )
        .await;
        let dir = tempfile::tempdir().expect("a temp dir");
        match generate_into(&options(t.url(), &GLOBAL), dir.path()).await {
            Err(GenerateError::Shape { table, problem }) => {
                assert_eq!(table, "legacy_codes");
                assert!(problem.contains("UUID or a 32/64-bit"), "{problem}");
            }
            other => panic!("{}: {other:?}", t.backend()),
        }
        assert!(read_dir(dir.path()).is_empty(), "something was written");
    }
);

test_support::backend_test!(output_is_deterministic, |t: TestDb| async move {
    let options = options(t.url(), &GLOBAL);
    let first = generate(&options).await.expect("first run");
    let second = generate(&options).await.expect("second run");
    assert_files_eq(
        &format!("{}: two runs on one schema", t.backend()),
        &first.files,
        &second.files,
    );
});

test_support::backend_test!(
    an_undeclared_table_without_tenant_id_is_refused,
    |t: TestDb| async move {
        add_untenanted_table(&t).await;
        let dir = tempfile::tempdir().expect("a temp dir");
        let err = generate_into(&options(t.url(), &GLOBAL), dir.path())
            .await
            .expect_err("legacy_notes is neither tenant-owned nor global");
        assert!(
            matches!(&err, GenerateError::NotTenantScoped(tables) if tables == &["legacy_notes"]),
            "{}: unexpected error {err:?}",
            t.backend()
        );
        let message = err.to_string();
        assert!(
            message.contains("`legacy_notes`") && message.contains("--global legacy_notes"),
            "the message names the table and the fix: {message}"
        );
        assert!(
            read_dir(dir.path()).is_empty(),
            "{}: nothing may be written",
            t.backend()
        );
    }
);

test_support::backend_test!(
    a_table_declared_global_gets_the_global_impl,
    |t: TestDb| async move {
        add_untenanted_table(&t).await;
        let generated = generate(&options(
            t.url(),
            &["tenants", "legacy_notes", "permissions"],
        ))
        .await
        .expect("legacy_notes is declared global");
        let notes = generated
            .files
            .get(Path::new("legacy_notes.rs"))
            .expect("legacy_notes.rs is generated");
        assert!(
            notes.contains("impl tenant_scope::Global for Entity {")
                && !notes.contains("TenantScoped")
                && !notes.contains("TenantId"),
            "{}: legacy_notes.rs:\n{notes}",
            t.backend()
        );
        let lib = &generated.files[Path::new("lib.rs")];
        assert!(lib.contains("pub mod legacy_notes;"), "lib.rs:\n{lib}");
        // The other entities do not change.
        let mut expected = reference();
        expected.remove(Path::new("lib.rs"));
        expected.remove(Path::new("prelude.rs"));
        let mut rest = generated.files.clone();
        for file in ["lib.rs", "prelude.rs", "legacy_notes.rs"] {
            rest.remove(Path::new(file));
        }
        assert_files_eq(
            &format!(
                "{}: the reference entities next to a global table",
                t.backend()
            ),
            &expected,
            &rest,
        );
    }
);

test_support::backend_test!(global_declarations_are_checked, |t: TestDb| async move {
    let err = generate(&options(
        t.url(),
        &["tenants", "permissions", "no_such_table"],
    ))
    .await
    .expect_err("an unknown table declared global");
    assert!(
        matches!(&err, GenerateError::UnknownGlobal(t) if t == &["no_such_table"]),
        "{err:?}"
    );
    let err = generate(&options(t.url(), &["tenants", "permissions", "projects"]))
        .await
        .expect_err("a tenant-owned table declared global");
    assert!(
        matches!(&err, GenerateError::GlobalWithTenantColumn(t) if t == &["projects"]),
        "{err:?}"
    );
    let err = generate(&options(t.url(), &["tenants"]))
        .await
        .expect_err("permissions is not declared");
    assert!(
        matches!(&err, GenerateError::NotTenantScoped(t) if t == &["permissions"]),
        "{err:?}"
    );
});

#[tokio::test]
async fn an_empty_database_is_an_error() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("empty.db").display()
    );
    let err = generate(&options(&url, &GLOBAL))
        .await
        .expect_err("no tables");
    assert!(matches!(err, GenerateError::NoTables), "{err:?}");
}

#[tokio::test]
async fn an_unsupported_url_is_an_error() {
    let err = generate(&options("mssql://localhost/db", &GLOBAL))
        .await
        .expect_err("unsupported scheme");
    assert!(matches!(err, GenerateError::UnsupportedUrl), "{err:?}");
}

#[test]
fn the_diff_shows_changed_lines() {
    let d = diff("a\nb\nc\n", "a\nB\nc\n");
    assert!(d.contains("-   2 b") && d.contains("+   2 B"), "{d}");
}

/// The UUID column type as the reference migrations create it on each backend.
fn uuid_type(t: &TestDb) -> &'static str {
    match t.backend() {
        test_support::Backend::Postgres => "uuid",
        test_support::Backend::Mysql => "binary(16)",
        test_support::Backend::Sqlite => "uuid_text",
    }
}

// A half-adopted table (tenant_id present, but the primary key is `id` alone, or a reference is not
// composite) must not get `TenantScoped`: its `find_by_id(id)` would compile, and the compile-time
// guarantee would be silently lost. The generator refuses it, and writes nothing.
test_support::backend_test!(
    a_tenant_table_without_the_composite_key_is_refused,
    |t: TestDb| async move {
        let uuid = uuid_type(&t);
        t.raw()
            .execute_unprepared(&format!(
                "CREATE TABLE half_adopted (tenant_id {uuid} NOT NULL, id {uuid} NOT NULL PRIMARY KEY, \
                 FOREIGN KEY (tenant_id) REFERENCES tenants (id))"
            ))
            .await
            .expect("half-adopted table");
        let dir = tempfile::tempdir().expect("a temp dir");
        let err = generate_into(&options(t.url(), &GLOBAL), dir.path())
            .await
            .expect_err("a tenant table keyed by id alone");
        assert!(
            matches!(&err, GenerateError::Shape { table, problem }
                if table == "half_adopted" && problem.contains("(tenant_id, id)")),
            "{}: unexpected error {err:?}",
            t.backend()
        );
        assert!(read_dir(dir.path()).is_empty(), "nothing may be written");
    }
);

test_support::backend_test!(
    a_single_column_reference_between_tenant_tables_is_refused,
    |t: TestDb| async move {
        let uuid = uuid_type(&t);
        t.raw()
            .execute_unprepared(&format!(
                "CREATE TABLE legacy_links (tenant_id {uuid} NOT NULL, id {uuid} NOT NULL, \
                 project_id {uuid} NOT NULL, PRIMARY KEY (tenant_id, id), \
                 FOREIGN KEY (tenant_id) REFERENCES tenants (id), \
                 FOREIGN KEY (project_id) REFERENCES projects (id))"
            ))
            .await
            .map(|_| ())
            .or_else(|e| {
                // PostgreSQL and MySQL refuse a foreign key to a non-unique column: the defect cannot
                // exist there, only on SQLite (which checks the parent key lazily).
                if t.backend() == test_support::Backend::Sqlite {
                    Err(e)
                } else {
                    Ok(())
                }
            })
            .expect("legacy table");
        if t.backend() != test_support::Backend::Sqlite {
            return;
        }
        let err = generate(&options(t.url(), &GLOBAL))
            .await
            .expect_err("a single-column reference between tenant tables");
        assert!(
            matches!(&err, GenerateError::Shape { table, problem }
                if table == "legacy_links" && problem.contains("not composite")),
            "unexpected error {err:?}"
        );
    }
);
