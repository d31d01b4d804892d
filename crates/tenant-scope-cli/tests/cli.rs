//! The `tenant-scope` binary end to end, on every backend: what it writes, what it prints and the
//! exit codes a CI pipeline relies on (0 clean, 1 findings or a refused schema, 2 could not run).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sea_orm::ConnectionTrait;
use test_support::TestDb;

/// The workspace root, where the binary runs (as CI runs it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tenant_scope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenant-scope"))
        .args(args)
        .current_dir(root())
        .env_remove("DATABASE_URL")
        .output()
        .expect("run tenant-scope")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exit code")
}

fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The files of a directory, by name, with their contents.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&path).expect("read"))
        })
        .collect();
    out.sort();
    out
}

// `generate` reproduces entity/src from the migrated reference schema (`--module`: with a `mod.rs`
// root), and refuses an undeclared
// table without a tenant column (exit 1, nothing written).
test_support::backend_test!(
    generate_writes_entities_or_refuses,
    |t: TestDb| async move {
        let out = tempfile::tempdir().expect("tempdir");
        let dir = out.path().join("entities");
        let dir_s = dir.to_string_lossy().into_owned();
        let run = tenant_scope(&[
            "generate",
            "--database-url",
            t.url(),
            "--output",
            &dir_s,
            "--global",
            "tenants,permissions",
        ]);
        assert_eq!(code(&run), 0, "{}", text(&run));
        let entity_src = root().join("entity/src");
        assert_eq!(
            files(&dir),
            files(&entity_src),
            "generated entities differ from entity/src"
        );

        // `--module`: the same files, with `mod.rs` for `mod entities;` instead of `lib.rs`.
        let module = out.path().join("module");
        let module_s = module.to_string_lossy().into_owned();
        let run = tenant_scope(&[
            "generate",
            "--database-url",
            t.url(),
            "--output",
            &module_s,
            "--global",
            "tenants,permissions",
            "--module",
        ]);
        assert_eq!(code(&run), 0, "{}", text(&run));
        let names = |files: Vec<(String, String)>| -> Vec<String> {
            files.into_iter().map(|(name, _)| name).collect()
        };
        let expected: Vec<String> = names(files(&entity_src))
            .into_iter()
            .map(|n| {
                if n == "lib.rs" {
                    "mod.rs".to_owned()
                } else {
                    n
                }
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(names(files(&module)), expected, "generate --module");

        t.raw()
            .execute_unprepared("CREATE TABLE legacy_notes (id INTEGER PRIMARY KEY, body TEXT)")
            .await
            .expect("legacy table");
        let refused = out.path().join("refused");
        let refused_s = refused.to_string_lossy().into_owned();
        let run = tenant_scope(&[
            "generate",
            "--database-url",
            t.url(),
            "--output",
            &refused_s,
            "--global",
            "tenants,permissions",
        ]);
        assert_eq!(code(&run), 1, "{}", text(&run));
        assert!(text(&run).contains("legacy_notes"), "{}", text(&run));
        assert!(!refused.exists(), "something was written");
    }
);

// `check` exits 0 on the reference schema, 1 with a planted defect, and prints stable JSON.
test_support::backend_test!(check_exit_codes_and_json, |t: TestDb| async move {
    // Nothing allowed, on every backend: on PostgreSQL the reference schema carries the RLS policies.
    let mut args = vec![
        "check",
        "--database-url",
        t.url(),
        "--global",
        "permissions",
    ];
    let run = tenant_scope(&args);
    assert_eq!(code(&run), 0, "{}", text(&run));

    t.raw()
        .execute_unprepared("CREATE TABLE legacy_notes (id INTEGER PRIMARY KEY, body TEXT)")
        .await
        .expect("legacy table");
    args.extend(["--format", "json"]);
    let run = tenant_scope(&args);
    assert_eq!(code(&run), 1, "{}", text(&run));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    assert_eq!(json["version"], 1);
    assert_eq!(json["clean"], false);
    let findings = json["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{json}");
    assert_eq!(findings[0]["code"], "table-without-tenant-column");
    assert_eq!(findings[0]["table"], "legacy_notes");
});

// Could not run: exit 2 with a message, for an unreachable database and an unknown allow code.
#[test]
fn check_could_not_run_is_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = format!("sqlite://{}/missing.db?mode=ro", dir.path().display());
    let run = tenant_scope(&["check", "--database-url", &missing]);
    assert_eq!(code(&run), 2, "{}", text(&run));
    let run = tenant_scope(&[
        "generate",
        "--database-url",
        "redis://localhost",
        "--output",
        "x",
    ]);
    assert_eq!(code(&run), 2, "{}", text(&run));
    assert!(!root().join("x").exists());
}

// `check --source`: the violating fixture crate exits 1, the clean one (and this crate's examples,
// with their one explicit allow) exit 0.
#[test]
fn check_source_guards_service_crates() {
    let run = tenant_scope(&[
        "check",
        "--source",
        "crates/tenant-scope-guard/tests/fixtures/guard/violating",
    ]);
    assert_eq!(code(&run), 1, "{}", text(&run));
    assert!(text(&run).contains("raw-connection"), "{}", text(&run));
    let run = tenant_scope(&[
        "check",
        "--source",
        "crates/tenant-scope-guard/tests/fixtures/guard/violating",
        "--format",
        "json",
    ]);
    assert_eq!(code(&run), 1, "{}", text(&run));
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    assert!(!json.as_array().expect("array").is_empty());
    for clean in [
        "crates/tenant-scope-guard/tests/fixtures/guard/clean",
        "examples",
    ] {
        let run = tenant_scope(&["check", "--source", clean]);
        assert_eq!(code(&run), 0, "{clean}: {}", text(&run));
    }
}

// `tenant export | status | erase | certify | import`: one tenant offboarded and moved with the
// binary alone; refusals exit 1 and change nothing; the other tenant is untouched.
test_support::backend_test!(
    tenant_lifecycle_from_the_command_line,
    |t: TestDb| async move {
        use entity::projects;
        use sea_orm::ActiveValue::Set;

        let db = t.tenant_db().await;
        let (a, b) = test_support::two_tenants(&db, &[]).await;
        for tenant in [&a, &b] {
            db.scope(&tenant.job)
                .insert(projects::ActiveModel {
                    name: Set(format!("{}'s project", tenant.name)),
                    created_at: Set(chrono::Utc::now()),
                    ..Default::default()
                })
                .await
                .expect("a project");
        }
        let (app, system) = (t.app_url(), t.url().to_owned());
        let tenant_id = a.id.to_string();
        let run = |action: &str, extra: &[&str]| {
            let mut args = vec![
                "tenant",
                action,
                "--database-url",
                app.as_str(),
                "--system-url",
                system.as_str(),
            ];
            args.extend_from_slice(extra);
            tenant_scope(&args)
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("acme.jsonl");
        let file_arg = file.to_string_lossy().into_owned();
        let key = "ab".repeat(32);

        let export = run("export", &["--tenant", &tenant_id, "--output", &file_arg]);
        assert_eq!(code(&export), 0, "{}", text(&export));
        assert!(
            text(&export).contains("projects: 1 rows"),
            "{}",
            text(&export)
        );
        // Not deleted yet: erase refuses (1), the certificate fails (1).
        let refused = run("erase", &["--tenant", &tenant_id]);
        assert_eq!(code(&refused), 1, "{}", text(&refused));
        let early = run("certify", &["--tenant", &tenant_id, "--key-hex", &key]);
        assert_eq!(code(&early), 1, "{}", text(&early));
        let status = run("status", &["--tenant", &tenant_id, "--set", "deleted"]);
        assert_eq!(code(&status), 0, "{}", text(&status));
        assert_eq!(String::from_utf8_lossy(&status.stdout).trim(), "deleted");
        let erase = run("erase", &["--tenant", &tenant_id, "--batch", "2"]);
        assert_eq!(code(&erase), 0, "{}", text(&erase));
        let certified = run("certify", &["--tenant", &tenant_id, "--key-hex", &key]);
        assert_eq!(code(&certified), 0, "{}", text(&certified));
        let short_key = run("certify", &["--tenant", &tenant_id, "--key-hex", "abcd"]);
        assert_eq!(code(&short_key), 2, "{}", text(&short_key));
        // The other tenant is untouched.
        let theirs = db
            .scope(&b.job)
            .find::<projects::Entity>()
            .count()
            .await
            .expect("B's projects");
        assert_eq!(theirs, 1);

        // Into another database of the same schema, ids kept.
        let other = TestDb::create(t.backend()).await.expect("configured");
        let (other_app, other_system) = (other.app_url(), other.url().to_owned());
        let import = |input: &str| {
            tenant_scope(&[
                "tenant",
                "import",
                "--database-url",
                other_app.as_str(),
                "--system-url",
                other_system.as_str(),
                "--input",
                input,
            ])
        };
        let imported = import(&file_arg);
        assert_eq!(code(&imported), 0, "{}", text(&imported));
        assert!(text(&imported).contains(&tenant_id), "{}", text(&imported));
        let again = import(&file_arg);
        assert_eq!(code(&again), 1, "an existing tenant: {}", text(&again));
        let missing = import("/nonexistent/acme.jsonl");
        assert_eq!(code(&missing), 2, "{}", text(&missing));
        let moved = other.tenant_db().await;
        let system = moved
            .system("read the imported tenant")
            .await
            .expect("system");
        let ctx = system.context_for(a.id);
        drop(system);
        let projects = moved
            .scope(&ctx)
            .find::<projects::Entity>()
            .all()
            .await
            .expect("the imported projects");
        assert_eq!(projects.len(), 1);
        assert_eq!(projects[0].name, "Acme's project");
    }
);
