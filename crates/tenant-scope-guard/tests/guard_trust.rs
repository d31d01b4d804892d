//! The two source-guard rules about trust (docs/guard.md): `system-in-handler` (system access,
//! which crosses every tenant, reachable from an axum handler) and `custom-verifier` (an
//! `impl TenantVerifier`, a new trust root). What each one reports and what it must not, their
//! allow comments (a reason is required), the clean fixture, and the reference service under
//! examples/, which must stay clean while its handlers are recognised as handlers.

use std::path::{Path, PathBuf};

use tenant_scope_guard::{ScanOptions, Violation};

fn scan(source: &str) -> Vec<Violation> {
    tenant_scope_guard::scan_source(Path::new("snippet.rs"), source, &ScanOptions::default())
        .unwrap_or_else(|e| panic!("{e}: {source}"))
}

/// `(source, expected rules in order)`.
fn check_snippets(cases: &[(&str, &[&str])]) {
    for (source, want) in cases {
        let found = scan(source);
        let rules: Vec<&str> = found.iter().map(|v| v.rule).collect();
        assert_eq!(&rules, want, "{source}\n{found:#?}");
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const SIH: &str = "system-in-handler";
const CV: &str = "custom-verifier";

#[test]
fn system_access_in_a_routed_handler_is_reported() {
    check_snippets(&[
        // Routed by the bare routing functions, under `routing::`, under `axum::routing::`.
        (
            "fn r() -> Router { Router::new().route(\"/\", get(h)) }\n\
             async fn h(admin: Admin) { admin.db.system(\"x\").await; }",
            &[SIH],
        ),
        (
            "fn r() { routing::post(h); }\nasync fn h() { DB.with(|db| db.system(\"x\")); }",
            &[SIH],
        ),
        (
            "fn r() { axum::routing::delete(handlers::h); }\nasync fn h(x: X) { x.state_db.system(\"x\"); }",
            &[SIH],
        ),
        // Chained methods of a MethodRouter, `on(filter, h)`, `.fallback(h)`.
        (
            "fn r() { get(a).put(b).patch(c); }\n\
             async fn a(s: S) {}\nasync fn b(s: S) {}\nasync fn c(s: S) { s.db.system(\"x\"); }",
            &[SIH],
        ),
        (
            "fn r() { on(MethodFilter::GET, h); }\nasync fn h(s: S) { s.db.system(\"x\"); }",
            &[SIH],
        ),
        (
            "fn r() { Router::new().fallback(h); }\nasync fn h(s: S) { s.db.system(\"x\"); }",
            &[SIH],
        ),
        // A method routed as `Self::h`, calling `self.db().system(..)`.
        (
            "impl Api { fn r() { get(Self::h); } async fn h(&self) { self.db().system(\"x\"); } }",
            &[SIH],
        ),
        // A routed closure, with the database bound from `State<TenantDb>` under any name.
        (
            "fn r() { get(|State(t): State<TenantDb>| async move { t.system(\"x\").await }); }",
            &[SIH],
        ),
    ]);
}

#[test]
fn system_access_in_a_handler_by_its_signature_is_reported() {
    check_snippets(&[
        (
            "async fn h(Tenant(ctx): Tenant, db: &TenantDb) { db.system(\"x\"); }",
            &[SIH],
        ),
        (
            "async fn h(State(app): State<App>) { app.db.system(\"x\"); }",
            &[SIH],
        ),
        (
            "async fn h(s: axum::extract::State<App>) { s.db.system(\"x\"); }",
            &[SIH],
        ),
        (
            "async fn h(Extension(db): Extension<TenantDb>) { db.system(\"x\"); }",
            &[SIH],
        ),
        // Any name, when the parameter's type names `TenantDb`.
        (
            "async fn h(State(tdb): State<TenantDb>) { tdb.system(\"x\"); }",
            &[SIH],
        ),
    ]);
}

#[test]
fn system_access_in_a_function_a_handler_calls_directly_is_reported() {
    check_snippets(&[
        (
            "async fn h(State(app): State<App>) { helper(&app.db).await; }\n\
             async fn helper(db: &TenantDb) { db.system(\"x\"); }",
            &[SIH],
        ),
        (
            "impl Api { async fn h(&self, s: State<App>) { self.helper().await; Self::other(); }\n\
             async fn helper(&self) { self.db.system(\"x\"); }\n\
             fn other(db: &TenantDb) { db.system(\"y\"); } }",
            &[SIH, SIH],
        ),
    ]);
    // The message names the handler that calls it.
    let found = scan(
        "async fn h(State(app): State<App>) { helper(&app.db).await; }\n\
         async fn helper(db: &TenantDb) { db.system(\"x\"); }",
    );
    assert!(
        found[0]
            .message
            .contains("`helper` is called by the axum handler `h`"),
        "{found:#?}"
    );
}

#[test]
fn what_system_in_handler_does_not_report() {
    check_snippets(&[
        // A job, a migration step, a CLI: not handlers.
        (
            "async fn nightly(db: &TenantDb) { db.system(\"vacuum\").await; }",
            &[],
        ),
        (
            "fn main() { let _ = TenantDb::options(url).system(owner_url); }",
            &[],
        ),
        // The builder is not the database, even in a handler.
        (
            "async fn h(s: State<App>) { TenantDb::options(u).system(o).connect().await; }",
            &[],
        ),
        // `.system(..)` on something that is not the database, or with another arity.
        (
            "async fn h(s: State<App>) { s.clock.system(1); sys.system(); }",
            &[],
        ),
        // Only direct callees: what a callee calls is not followed.
        (
            "async fn h(s: State<App>) { a(&s.db).await; }\n\
             async fn a(db: &TenantDb) { b(db).await; }\n\
             async fn b(db: &TenantDb) { db.system(\"x\"); }",
            &[],
        ),
        // A function that is neither routed nor async is not a handler, whatever it takes.
        ("fn h(s: State<App>) { s.db.system(\"x\"); }", &[]),
        // `get` on a map is not routing: `key` is not a handler.
        (
            "fn r(m: Map) { m.get(key); }\nasync fn key(db: &TenantDb) { db.system(\"x\"); }",
            &[],
        ),
        // A handler in test code is skipped with the rest of it.
        (
            "#[cfg(test)] mod t { fn r() { get(h); } async fn h(s: State<A>) { s.db.system(\"x\"); } }",
            &[],
        ),
    ]);
}

#[test]
fn system_in_handler_allow_needs_a_reason() {
    let body = "async fn h(s: State<App>) {\n{comment}    s.db.system(\"x\").await;\n}\n";
    let cases: &[(&str, &[&str])] = &[
        (
            "    // tenant-scope: allow(system-in-handler) operator-only route on the admin listener\n",
            &[],
        ),
        (
            "    // tenant-scope: allow(system-in-handler)\n",
            &["allow-without-reason", SIH],
        ),
        (
            "    // tenant-scope: allow(system-in-handler):  \n",
            &["allow-without-reason", SIH],
        ),
        (
            "    // tenant-scope: allow(raw-sql) not the rule that fires\n",
            &["unused-allow", SIH],
        ),
    ];
    for (comment, want) in cases {
        let source = body.replace("{comment}", comment);
        let rules: Vec<&str> = scan(&source).iter().map(|v| v.rule).collect();
        assert_eq!(&rules, want, "{source}");
    }
}

#[test]
fn a_custom_verifier_is_reported() {
    check_snippets(&[
        (
            "impl TenantVerifier for Header { type Claim = String; }",
            &[CV],
        ),
        ("impl tenant_scope::TenantVerifier for Header {}", &[CV]),
        (
            "impl<V: TenantVerifier> TenantVerifier for Logged<V> {}",
            &[CV],
        ),
        (
            "#[async_trait::async_trait]\nimpl TenantVerifier for Header {}",
            &[CV],
        ),
    ]);
    let found = scan("/// Docs.\n#[async_trait]\nimpl TenantVerifier for Header {}");
    // Reported at the first attribute that is not a doc comment: an allow comment goes above it.
    assert_eq!((found[0].line, found[0].column), (2, 1), "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("`Header` implements `TenantVerifier`")
    );
}

#[test]
fn what_custom_verifier_does_not_report() {
    check_snippets(&[
        // Using the built-in verifiers, naming the trait in a bound, other traits.
        (
            "async fn f(db: &TenantDb, k: String) { db.verify(&ApiKeyVerifier, k).await; }",
            &[],
        ),
        (
            "async fn f<V: TenantVerifier>(db: &TenantDb, v: &V) {}",
            &[],
        ),
        ("impl Verifier for Header {} impl Header {}", &[]),
        // A verifier in test code (a test double) is skipped with the rest of it.
        (
            "#[cfg(test)] mod t { impl TenantVerifier for Fake {} }",
            &[],
        ),
    ]);
}

#[test]
fn custom_verifier_allow_needs_a_reason() {
    let item = "{comment}#[async_trait]\nimpl TenantVerifier for Sso {}\n";
    let cases: &[(&str, &[&str])] = &[
        (
            "// tenant-scope: allow(custom-verifier) checks the IdP's signed token and its tenant claim\n",
            &[],
        ),
        // Doc comments between the allow and the item are fine: they are comments.
        (
            "// tenant-scope: allow(custom-verifier) checks the IdP's signature\n/// SSO.\n",
            &[],
        ),
        (
            "// tenant-scope: allow(custom-verifier)\n",
            &["allow-without-reason", CV],
        ),
        (
            "// tenant-scope: allow(custom-verifier) -\n",
            &["allow-without-reason", CV],
        ),
    ];
    for (comment, want) in cases {
        let source = item.replace("{comment}", comment);
        let rules: Vec<&str> = scan(&source).iter().map(|v| v.rule).collect();
        assert_eq!(&rules, want, "{source}");
    }
}

/// Every allow comment for the two rules in the clean fixture is what keeps it clean: blanked
/// out (line numbers kept), the line below it is reported.
#[test]
fn the_clean_fixture_allows_each_finding_with_a_reason() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/guard/clean/src/admin.rs");
    let source = std::fs::read_to_string(&file).expect("read");
    for rule in [SIH, CV] {
        let marker = format!("// tenant-scope: allow({rule}) ");
        let line = source
            .lines()
            .position(|l| l.trim_start().starts_with(&marker))
            .unwrap_or_else(|| panic!("an allow({rule}) in the clean fixture"))
            + 1;
        let without: String = source
            .lines()
            .enumerate()
            .map(|(i, l)| if i + 1 == line { "" } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        let found = tenant_scope_guard::scan_source(&file, &without, &ScanOptions::default())
            .expect("scan");
        let found: Vec<_> = found.iter().map(|v| (v.line, v.rule)).collect();
        assert_eq!(found, vec![(line + 1, rule)], "{rule}");
    }
}

#[test]
fn the_examples_are_clean() {
    // .ci/run runs `tenant-scope check --source examples` too.
    assert_eq!(
        tenant_scope_guard::scan_dir(&workspace().join("examples")).expect("scan"),
        Vec::new()
    );
}

/// The reference service is clean because its handlers do not take system access, not because
/// the rule does not see them: one `.system(..)` planted in a routed handler is reported.
#[test]
fn the_reference_service_handlers_are_recognised() {
    let file = workspace().join("examples/reference-service/src/lib.rs");
    let source = std::fs::read_to_string(&file).expect("read");
    let anchor = "    ctx.require(\"projects.read\")?;\n";
    assert_eq!(source.matches(anchor).count(), 1, "the anchor line moved");
    let planted = source.replace(
        anchor,
        "    ctx.require(\"projects.read\")?;\n    let _all = app.db().system(\"list every tenant\").await?;\n",
    );
    let found =
        tenant_scope_guard::scan_source(&file, &planted, &ScanOptions::default()).expect("scan");
    let rules: Vec<&str> = found.iter().map(|v| v.rule).collect();
    assert_eq!(rules, vec![SIH], "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("`list_projects` is an axum handler (routed with `get(..)`)"),
        "{found:#?}"
    );
}
