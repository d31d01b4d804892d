//! The PostgreSQL self-check of `TenantDb::connect` (src/self_check.rs): the library refuses to
//! serve, naming each risk and what it found it on, when the role it connects as or the schema
//! would let a query walk around row level security; a risk accepted with
//! `TenantDbOptions::accept_risk` is logged at WARN instead. And the system connection must be a
//! role that may cross tenants.
//!
//! Every refusal test has a positive twin: the same setup with that one risk accepted connects,
//! which shows that the refusal is for that risk and nothing else. Roles belong to the whole
//! server, so a test that needs a role with other attributes or memberships than
//! `tenant_scope_app` makes its own [`TestRole`]; what belongs to the test's database (table
//! ownership, grants, policies, views) is changed in place.

use std::io::Write;
use std::sync::{Arc, Mutex};

use sea_orm::ConnectionTrait;
use tenant_scope::{Error, Risk, TenantDb};
use test_support::{Backend, TestDb, TestRole};
use tracing::instrument::WithSubscriber;

/// Runs `sql` (one or more statements) as the database's owner.
async fn exec(t: &TestDb, sql: &str) {
    t.raw()
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The name of the database's owner, the role of `t.url()` (a superuser).
async fn owner_name(t: &TestDb) -> String {
    t.raw()
        .query_one_raw(sea_orm::Statement::from_string(
            t.db_backend(),
            "SELECT current_user::text",
        ))
        .await
        .expect("current_user")
        .expect("a row")
        .try_get_by_index(0)
        .expect("current_user")
}

/// Connects as `url` (nothing accepted) and returns the refusal's message; panics if it connects
/// or fails otherwise.
async fn refusal(url: &str) -> String {
    match TenantDb::connect(url).await {
        Err(Error::Config(message)) => message,
        Err(other) => panic!("expected a self-check refusal, got {other:?}"),
        Ok(_) => panic!("expected a self-check refusal, but it connected"),
    }
}

/// Connects as `url` accepting `risks`; panics, with the error, if it is refused.
async fn connects_accepting(url: &str, risks: &[Risk]) {
    let mut options = TenantDb::options(url);
    for risk in risks {
        options = options.accept_risk(*risk);
    }
    if let Err(e) = options.connect().await {
        panic!("connecting with {risks:?} accepted: {e}");
    }
}

/// The findings of a refusal message, one `(risk name, line)` per `  - [risk] ...` line.
fn findings(message: &str) -> Vec<(String, String)> {
    message
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("- [")?;
            let (risk, _) = rest.split_once(']')?;
            Some((risk.to_owned(), line.to_owned()))
        })
        .collect()
}

/// Asserts that `message` is a refusal whose findings are exactly the risk `risk` once per entry
/// of `objects`, each naming its object (`"table tasks"`, `"view v"`, `"\"role\""`).
fn assert_refused_for(message: &str, risk: Risk, objects: &[&str]) {
    assert!(
        message.starts_with("refusing to serve"),
        "not a self-check refusal: {message}"
    );
    let found = findings(message);
    assert_eq!(
        found.len(),
        objects.len(),
        "expected {} finding(s) of [{risk}]: {message}",
        objects.len()
    );
    for (name, line) in &found {
        assert_eq!(name, &risk.to_string(), "unexpected finding: {message}");
        assert!(
            line.contains(&format!("accept_risk(Risk::{risk:?})")),
            "the finding says how to accept it: {line}"
        );
    }
    for object in objects {
        assert!(
            found.iter().any(|(_, line)| line.contains(object)),
            "no [{risk}] finding names {object}: {message}"
        );
    }
}

/// Asserts that connecting as `url` is refused for `risk` on `objects` (see
/// [`assert_refused_for`]), that `tenant-scope check --app-role <the URL's role>` reports each of them
/// too (see [`check_reports`]), and that it connects once that risk is accepted. Returns the message.
async fn refused_unless_accepted(t: &TestDb, url: &str, risk: Risk, objects: &[&str]) -> String {
    let message = refusal(url).await;
    assert_refused_for(&message, risk, objects);
    check_reports(t, &user_of(url), risk, objects).await;
    connects_accepting(url, &[risk]).await;
    message
}

/// The role a URL logs in as.
fn user_of(url: &str) -> String {
    let (_, rest) = url.split_once("://").expect("a URL");
    let (user, _) = rest.split_once('@').expect("a URL with a user");
    user.split(':').next().unwrap_or(user).to_owned()
}

/// The finding codes of `tenant-scope check` for a risk of the self-check.
fn check_codes(risk: Risk) -> &'static [&'static str] {
    use tenant_scope_schema::check::codes;
    match risk {
        Risk::Superuser | Risk::BypassRls => &[codes::APP_ROLE_BYPASSES_RLS],
        Risk::OwnsTenantTable => &[codes::APP_ROLE_OWNS_TABLE],
        Risk::RlsNotEnforced => &[
            codes::RLS_NOT_ENABLED,
            codes::RLS_NOT_FORCED,
            codes::RLS_NO_POLICY,
            codes::RLS_PERMISSIVE_POLICY,
        ],
        Risk::ViewBypassesRls => &[
            codes::VIEW_WITHOUT_SECURITY_INVOKER,
            codes::MATERIALIZED_VIEW_OVER_TENANT_DATA,
        ],
        Risk::DangerousPrivilege => &[codes::APP_ROLE_DANGEROUS_PRIVILEGE],
        other => panic!("no check code for {other:?}"),
    }
}

/// Asserts that `tenant-scope check --app-role role`, run as the database's owner on the same
/// database, reports `risk` (one of its codes, an error) on every one of `objects`: whatever the
/// self-check refuses, the check a service runs in CI before it deploys reports (they apply one rule
/// set, with the role as a parameter).
async fn check_reports(t: &TestDb, role: &str, risk: Risk, objects: &[&str]) {
    use tenant_scope_schema::check::{CheckOptions, Severity, check};
    let mut options = CheckOptions::new(t.url());
    options.global = vec!["permissions".into()];
    options.app_role = Some(role.to_owned());
    let report = check(&options)
        .await
        .unwrap_or_else(|e| panic!("check --app-role {role}: {e}"));
    let codes = check_codes(risk);
    for object in objects {
        assert!(
            report.findings.iter().any(|f| codes.contains(&f.code)
                && f.severity == Severity::Error
                && f.message.contains(object)),
            "the self-check refuses [{risk}] on {object}, but check --app-role {role} does not report it:\n{}",
            report.to_text()
        );
    }
}

/// A `tracing` writer that keeps everything written to it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

// ------------------------------------------------------------------ the reference setup

// Guarantee: the reference schema, connected as the application role, passes the self-check:
// nothing has to be accepted (also with the owner as the system connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_schema_passes() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        if let Err(e) = TenantDb::connect(&t.app_url()).await {
            panic!("the reference schema as {}: {e}", test_support::APP_ROLE);
        }
        // Also through the options, with the owner as the system connection.
        if let Err(e) = TenantDb::options(t.app_url().as_str())
            .system(t.url())
            .connect()
            .await
        {
            panic!("the reference setup with a system connection: {e}");
        }
    })
    .await;
}

// ------------------------------------------------------------------ the role

// Guarantee: connecting as a superuser (the database's owner, which owns every table; the bootstrap
// superuser also has BYPASSRLS) is refused as [superuser], naming the role; accepting that one risk
// connects (it implies the others, which are not reported again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superuser_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let owner = owner_name(&t).await;
        refused_unless_accepted(&t, t.url(), Risk::Superuser, &[&format!("\"{owner}\"")]).await;
    })
    .await;
}

// Guarantee: a role that is not a superuser but may SET ROLE to one (through a NOINHERIT role, or
// directly to the database's owner, which also owns every table) is refused as [superuser] alone,
// naming both roles; accepting it connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_of_a_superuser_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let superuser = TestRole::create(&t, "SUPERUSER").await;
        let group = TestRole::create(&t, "NOSUPERUSER NOBYPASSRLS NOINHERIT").await;
        let app = TestRole::create(&t, "NOSUPERUSER NOBYPASSRLS").await;
        // Before the grant, the role is as harmless as the application role.
        TenantDb::connect(app.url())
            .await
            .expect("before the grant");
        exec(
            &t,
            &format!(
                r#"GRANT "{}" TO "{}"; GRANT "{}" TO "{}""#,
                superuser.name(),
                group.name(),
                group.name(),
                app.name()
            ),
        )
        .await;
        let message = refused_unless_accepted(
            &t,
            app.url(),
            Risk::Superuser,
            &[&format!("\"{}\"", app.name())],
        )
        .await;
        assert!(message.contains(superuser.name()), "{message}");

        let owner = owner_name(&t).await;
        let direct = TestRole::create(&t, "NOSUPERUSER NOBYPASSRLS").await;
        exec(&t, &format!(r#"GRANT "{owner}" TO "{}""#, direct.name())).await;
        let message = refused_unless_accepted(
            &t,
            direct.url(),
            Risk::Superuser,
            &[&format!("\"{}\"", direct.name())],
        )
        .await;
        assert!(message.contains(&owner), "{message}");
        direct.drop_role(&t).await;
        app.drop_role(&t).await;
        group.drop_role(&t).await;
        superuser.drop_role(&t).await;
    })
    .await;
}

// Guarantee: a role with BYPASSRLS is refused as [bypass-rls], naming the role; accepting it
// connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bypassrls_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let role = TestRole::create(&t, "NOSUPERUSER BYPASSRLS").await;
        refused_unless_accepted(
            &t,
            role.url(),
            Risk::BypassRls,
            &[&format!("\"{}\" has BYPASSRLS", role.name())],
        )
        .await;
        role.drop_role(&t).await;
    })
    .await;
}

// Guarantee: a role that may SET ROLE to a role with BYPASSRLS is refused as [bypass-rls], naming
// both; accepting it connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_of_a_bypassrls_role_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let bypass = TestRole::create(&t, "NOSUPERUSER BYPASSRLS").await;
        let app = TestRole::create(&t, "NOSUPERUSER NOBYPASSRLS").await;
        TenantDb::connect(app.url())
            .await
            .expect("before the grant");
        exec(
            &t,
            &format!(r#"GRANT "{}" TO "{}""#, bypass.name(), app.name()),
        )
        .await;
        let message = refused_unless_accepted(
            &t,
            app.url(),
            Risk::BypassRls,
            &[&format!("\"{}\"", app.name())],
        )
        .await;
        assert!(message.contains(bypass.name()), "{message}");
        app.drop_role(&t).await;
        bypass.drop_role(&t).await;
    })
    .await;
}

// ------------------------------------------------------------------ ownership

// Guarantee: the application role owning a tenant table is refused as [owns-tenant-table], naming
// the table (only that one, and no privilege finding for the privileges an owner holds anyway);
// accepting it connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owning_a_tenant_table_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        exec(
            &t,
            &format!("ALTER TABLE projects OWNER TO {}", test_support::APP_ROLE),
        )
        .await;
        let message =
            refused_unless_accepted(&t, &t.app_url(), Risk::OwnsTenantTable, &["table projects"])
                .await;
        assert!(message.contains(test_support::APP_ROLE), "{message}");
    })
    .await;
}

// Guarantee: a role that is a member of a tenant table's owner is refused as [owns-tenant-table],
// naming the table and the owner; accepting it connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_of_a_tenant_tables_owner_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let owner = TestRole::create(&t, "NOSUPERUSER NOBYPASSRLS").await;
        let app = TestRole::create(&t, "NOSUPERUSER NOBYPASSRLS").await;
        exec(
            &t,
            &format!(r#"ALTER TABLE projects OWNER TO "{}""#, owner.name()),
        )
        .await;
        // Not yet a member: the owner is somebody else.
        TenantDb::connect(app.url())
            .await
            .expect("before the grant");
        exec(
            &t,
            &format!(r#"GRANT "{}" TO "{}""#, owner.name(), app.name()),
        )
        .await;
        let message =
            refused_unless_accepted(&t, app.url(), Risk::OwnsTenantTable, &["table projects"])
                .await;
        assert!(message.contains(owner.name()), "{message}");
        exec(&t, "ALTER TABLE projects OWNER TO CURRENT_USER").await;
        app.drop_role(&t).await;
        owner.drop_role(&t).await;
    })
    .await;
}

// ------------------------------------------------------------------ row level security

// Guarantee: a tenant table with row level security disabled is refused as [rls-not-enforced],
// naming the table; accepting it connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rls_disabled_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        exec(&t, "ALTER TABLE tasks DISABLE ROW LEVEL SECURITY").await;
        let message =
            refused_unless_accepted(&t, &t.app_url(), Risk::RlsNotEnforced, &["table tasks"]).await;
        assert!(message.contains("ENABLE ROW LEVEL SECURITY"), "{message}");
    })
    .await;
}

// Guarantee: a tenant table with row level security enabled but not forced is refused as
// [rls-not-enforced], naming the table; accepting it connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rls_not_forced_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        exec(&t, "ALTER TABLE comments NO FORCE ROW LEVEL SECURITY").await;
        let message =
            refused_unless_accepted(&t, &t.app_url(), Risk::RlsNotEnforced, &["table comments"])
                .await;
        assert!(message.contains("FORCE ROW LEVEL SECURITY"), "{message}");
        assert!(!message.contains("ENABLE"), "{message}");
    })
    .await;
}

// Guarantee: a tenant table without the tenant_isolation policy is refused as [rls-not-enforced],
// naming the table and the policy; accepting it connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_dropped_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        exec(&t, "DROP POLICY tenant_isolation ON api_keys").await;
        let message =
            refused_unless_accepted(&t, &t.app_url(), Risk::RlsNotEnforced, &["table api_keys"])
                .await;
        assert!(message.contains("tenant_isolation"), "{message}");
    })
    .await;
}

// Guarantee: a tenant_isolation policy with another expression (`USING (true)`), or one that is
// restricted to some commands, is refused as [rls-not-enforced]; accepting it connects; the exact
// policy, recreated, passes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_with_another_expression_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let predicate = tenant_scope::contract::POLICY_PREDICATE;
        exec(
            &t,
            "DROP POLICY tenant_isolation ON tasks;
             CREATE POLICY tenant_isolation ON tasks USING (true) WITH CHECK (true)",
        )
        .await;
        refused_unless_accepted(&t, &t.app_url(), Risk::RlsNotEnforced, &["table tasks"]).await;
        // The right USING but no WITH CHECK.
        exec(
            &t,
            &format!(
                "DROP POLICY tenant_isolation ON tasks;
                 CREATE POLICY tenant_isolation ON tasks USING ({predicate})"
            ),
        )
        .await;
        refused_unless_accepted(&t, &t.app_url(), Risk::RlsNotEnforced, &["table tasks"]).await;
        // The right expressions, for SELECT only.
        exec(
            &t,
            &format!(
                "DROP POLICY tenant_isolation ON tasks;
                 CREATE POLICY tenant_isolation ON tasks FOR SELECT USING ({predicate})"
            ),
        )
        .await;
        refused_unless_accepted(&t, &t.app_url(), Risk::RlsNotEnforced, &["table tasks"]).await;
        // As the library creates it: passes.
        exec(&t, "DROP POLICY tenant_isolation ON tasks").await;
        exec(
            &t,
            &tenant_scope_schema::rls::enable_rls_statements("tasks").join(";\n"),
        )
        .await;
        TenantDb::connect(&t.app_url())
            .await
            .expect("the policy recreated as the library makes it");
    })
    .await;
}

// Guarantee: another permissive policy that applies to the role (to PUBLIC or to the role), here
// `CREATE POLICY open ON tasks FOR SELECT USING (true)`, is refused as [rls-not-enforced], naming
// the table and the policy; accepting it connects. A restrictive policy, or a permissive one for a
// role the application role is not a member of, does not widen what it sees and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_permissive_policy_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let other = TestRole::create(&t, "NOSUPERUSER NOBYPASSRLS").await;
        exec(
            &t,
            &format!(
                r#"CREATE POLICY narrow ON tasks AS RESTRICTIVE FOR SELECT USING (NOT done);
                   CREATE POLICY others ON tasks FOR SELECT TO "{}" USING (true)"#,
                other.name()
            ),
        )
        .await;
        TenantDb::connect(&t.app_url())
            .await
            .expect("a restrictive policy and a policy for another role");
        exec(&t, "CREATE POLICY open ON tasks FOR SELECT USING (true)").await;
        let message =
            refused_unless_accepted(&t, &t.app_url(), Risk::RlsNotEnforced, &["table tasks"]).await;
        assert!(message.contains("(open)"), "names the policy: {message}");
        exec(
            &t,
            &format!(
                "DROP POLICY open ON tasks;
                 CREATE POLICY mine ON tasks FOR UPDATE TO {} USING (true)",
                test_support::APP_ROLE
            ),
        )
        .await;
        let message =
            refused_unless_accepted(&t, &t.app_url(), Risk::RlsNotEnforced, &["table tasks"]).await;
        assert!(message.contains("(mine)"), "names the policy: {message}");
        other.drop_role(&t).await;
    })
    .await;
}

// ------------------------------------------------------------------ views

// Guarantee: a view over a tenant table that the role may read and that runs with its owner's
// rights (no security_invoker) is refused as [view-bypasses-rls], naming the view; accepting it
// connects. The same view WITH (security_invoker = true), however the value is spelled, passes,
// and so do such views over global tables or ones the role may not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_without_security_invoker_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let app = test_support::APP_ROLE;
        exec(
            &t,
            &format!(
                "CREATE VIEW tenant_names AS SELECT id, name FROM tenants;
                 GRANT SELECT ON tenant_names TO {app};
                 CREATE VIEW hidden_tasks AS SELECT * FROM tasks;
                 CREATE VIEW open_tasks AS SELECT id, title FROM tasks WHERE NOT done;"
            ),
        )
        .await;
        TenantDb::connect(&t.app_url())
            .await
            .expect("views the role may not read, or over global tables");
        exec(&t, &format!("GRANT SELECT ON open_tasks TO {app}")).await;
        refused_unless_accepted(&t, &t.app_url(), Risk::ViewBypassesRls, &["view open_tasks"]).await;
        // A column privilege is enough to read it.
        exec(
            &t,
            &format!(
                "REVOKE SELECT ON open_tasks FROM {app}; GRANT SELECT (title) ON open_tasks TO {app}"
            ),
        )
        .await;
        refused_unless_accepted(&t, &t.app_url(), Risk::ViewBypassesRls, &["view open_tasks"]).await;
        for value in ["true", "on", "t", "1", "yes"] {
            exec(
                &t,
                &format!("ALTER VIEW open_tasks SET (security_invoker = '{value}')"),
            )
            .await;
            if let Err(e) = TenantDb::connect(&t.app_url()).await {
                panic!("security_invoker = '{value}': {e}");
            }
        }
        exec(&t, "ALTER VIEW open_tasks SET (security_invoker = off)").await;
        refused_unless_accepted(&t, &t.app_url(), Risk::ViewBypassesRls, &["view open_tasks"]).await;
    })
    .await;
}

// Guarantee: a view without security_invoker over a view over a tenant table is refused as
// [view-bypasses-rls], naming the outer view; the inner one, with security_invoker, is not named;
// accepting it connects; with security_invoker on both it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_over_a_view_over_a_tenant_table_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let app = test_support::APP_ROLE;
        exec(
            &t,
            &format!(
                "CREATE VIEW task_titles WITH (security_invoker = true) AS SELECT id, title FROM tasks;
                 CREATE VIEW short_titles AS SELECT title FROM task_titles WHERE length(title) < 10;
                 GRANT SELECT ON task_titles, short_titles TO {app};"
            ),
        )
        .await;
        let message =
            refused_unless_accepted(&t, &t.app_url(), Risk::ViewBypassesRls, &["view short_titles"])
                .await;
        assert!(!message.contains("task_titles"), "{message}");
        exec(
            &t,
            "ALTER VIEW short_titles SET (security_invoker = true)",
        )
        .await;
        TenantDb::connect(&t.app_url())
            .await
            .expect("security_invoker on both views");
    })
    .await;
}

// Guarantee: a materialized view over a tenant table that the role may read is refused as
// [view-bypasses-rls], naming it (security_invoker does not exist for it: its rows are stored);
// accepting it connects; without the grant it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readable_materialized_view_is_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        exec(
            &t,
            "CREATE MATERIALIZED VIEW task_counts AS
                 SELECT tenant_id, count(*) AS n FROM tasks GROUP BY tenant_id",
        )
        .await;
        TenantDb::connect(&t.app_url())
            .await
            .expect("a materialized view the role may not read");
        exec(
            &t,
            &format!("GRANT SELECT ON task_counts TO {}", test_support::APP_ROLE),
        )
        .await;
        let message = refused_unless_accepted(
            &t,
            &t.app_url(),
            Risk::ViewBypassesRls,
            &["materialized view task_counts"],
        )
        .await;
        assert!(!message.contains("tenant_id"), "{message}");
    })
    .await;
}

// ------------------------------------------------------------------ privileges

// Guarantee: TRUNCATE, REFERENCES (also on one column only) or TRIGGER on a tenant table is refused
// as [dangerous-privilege], naming the privilege and the table; accepting it connects; revoked, it
// passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangerous_privileges_are_refused() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let app = test_support::APP_ROLE;
        for (grant, table, named) in [
            ("TRUNCATE", "tasks", "TRUNCATE"),
            ("REFERENCES", "projects", "REFERENCES"),
            ("REFERENCES (id)", "users", "REFERENCES"),
            ("TRIGGER", "comments", "TRIGGER"),
        ] {
            exec(&t, &format!("GRANT {grant} ON {table} TO {app}")).await;
            let message = refused_unless_accepted(
                &t,
                &t.app_url(),
                Risk::DangerousPrivilege,
                &[&format!("{named} on tenant table {table}")],
            )
            .await;
            assert!(!message.contains("SELECT"), "{message}");
            exec(&t, &format!("REVOKE {grant} ON {table} FROM {app}")).await;
            if let Err(e) = TenantDb::connect(&t.app_url()).await {
                panic!("{grant} on {table} revoked: {e}");
            }
        }
        // Several on one table are one finding.
        exec(
            &t,
            &format!("GRANT TRUNCATE, REFERENCES, TRIGGER ON audit_events TO {app}"),
        )
        .await;
        refused_unless_accepted(
            &t,
            &t.app_url(),
            Risk::DangerousPrivilege,
            &["TRUNCATE, REFERENCES, TRIGGER on tenant table audit_events"],
        )
        .await;
    })
    .await;
}

// ------------------------------------------------------------------ messages and logs

// Guarantee: a refusal names risks, tables, views, policies and roles, never row data: a tenant's
// id and a row's values do not appear in it, whichever findings it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_names_objects_never_rows() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let tenant = uuid::Uuid::now_v7();
        let project = uuid::Uuid::now_v7();
        let secret = "row-secret-7f3a";
        exec(
            &t,
            &format!(
                "INSERT INTO tenants (id, name, created_at) VALUES ('{tenant}', '{secret}-tenant', now());
                 INSERT INTO projects (tenant_id, id, name, created_at)
                     VALUES ('{tenant}', '{project}', '{secret}-project', now());
                 CREATE POLICY open ON projects FOR SELECT USING (name LIKE '{secret}%');
                 CREATE VIEW all_projects AS SELECT * FROM projects;
                 CREATE MATERIALIZED VIEW project_names AS SELECT tenant_id, name FROM projects;
                 GRANT SELECT ON all_projects, project_names TO {app};
                 GRANT TRUNCATE ON projects TO {app};
                 ALTER TABLE projects NO FORCE ROW LEVEL SECURITY;",
                app = test_support::APP_ROLE
            ),
        )
        .await;
        let message = refusal(&t.app_url()).await;
        let risks: Vec<String> = findings(&message).into_iter().map(|f| f.0).collect();
        assert_eq!(
            risks,
            [
                "rls-not-enforced",
                "rls-not-enforced",
                "dangerous-privilege",
                "view-bypasses-rls",
                "view-bypasses-rls"
            ],
            "{message}"
        );
        for row_data in [secret, &tenant.to_string(), &project.to_string()] {
            assert!(
                !message.contains(row_data),
                "the refusal shows row data {row_data}: {message}"
            );
        }
        let error = Error::Config(message);
        assert!(!error.to_string().contains(secret), "{error}");
        assert!(!format!("{error:?}").contains(secret), "{error:?}");
    })
    .await;
}

// Guarantee: an accepted risk that is present is logged at WARN (target tenant_scope::self_check),
// one line per finding naming the risk and the object, and the connection is made; a risk that is
// accepted but absent logs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_risk_is_logged_at_warn() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        exec(
            &t,
            "DROP POLICY tenant_isolation ON tasks; DROP POLICY tenant_isolation ON users",
        )
        .await;
        assert_refused_for(
            &refusal(&t.app_url()).await,
            Risk::RlsNotEnforced,
            &["table tasks", "table users"],
        );
        let connect = || async {
            let connected = TenantDb::options(t.app_url().as_str())
                .accept_risk(Risk::RlsNotEnforced)
                .accept_risk(Risk::DangerousPrivilege)
                .connect()
                .await;
            if let Err(e) = connected {
                panic!("connecting with the risk accepted: {e}");
            }
        };
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        async {
            // tracing-core caches each callsite's interest when the callsite is first hit, asking
            // the subscribers alive then; while a single scoped subscriber (this one) is alive it
            // asks only the hitting thread's default, so a first hit on another test's thread
            // caches "never". So: hit the callsite once (here or elsewhere, it is then
            // registered), recompute every registered callsite's interest with this subscriber
            // as this thread's default, and only then capture.
            connect().await;
            tracing::callsite::rebuild_interest_cache();
            captured.0.lock().expect("lock").clear();
            connect().await;
        }
        .with_subscriber(subscriber)
        .await;
        let log = captured.text();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "one WARN line per finding: {log}");
        for (line, table) in lines.iter().zip(["tasks", "users"]) {
            assert!(line.contains("WARN"), "{log}");
            assert!(line.contains("tenant_scope::self_check"), "{log}");
            assert!(line.contains("rls-not-enforced"), "{log}");
            assert!(line.contains(&format!("table {table}")), "{log}");
        }
        assert!(!log.contains("dangerous-privilege"), "{log}");
    })
    .await;
}

// ------------------------------------------------------------------ the system connection

// Guarantee: the system connection must be a role that may cross tenants: the application role is
// refused ("subject to row level security"), and so is a role that is only a member of a
// BYPASSRLS role (attributes are not inherited); the owner (a superuser) and a plain BYPASSRLS role
// are accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_connection_must_cross_tenants() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let app = t.app_url();
        let system_refusal = |system: String| {
            let app = app.clone();
            async move {
                match TenantDb::options(app.as_str())
                    .system(system)
                    .connect()
                    .await
                {
                    Err(Error::Config(why)) => why,
                    Err(other) => panic!("expected a Config error, got {other:?}"),
                    Ok(_) => panic!("a system connection subject to row level security connected"),
                }
            }
        };
        let why = system_refusal(app.clone()).await;
        assert!(why.contains("subject to row level security"), "{why}");
        assert!(why.contains(test_support::APP_ROLE), "{why}");

        let bypass = TestRole::create(&t, "NOSUPERUSER BYPASSRLS").await;
        let member = TestRole::create(&t, "NOSUPERUSER NOBYPASSRLS").await;
        exec(
            &t,
            &format!(r#"GRANT "{}" TO "{}""#, bypass.name(), member.name()),
        )
        .await;
        let why = system_refusal(member.url().to_owned()).await;
        assert!(why.contains("subject to row level security"), "{why}");

        for system in [t.url(), bypass.url()] {
            let db = match TenantDb::options(app.as_str())
                .system(system)
                .connect()
                .await
            {
                Ok(db) => db,
                Err(e) => panic!("a system connection that may cross tenants: {e}"),
            };
            db.system("self-check test").await.expect("system access");
        }
        member.drop_role(&t).await;
        bypass.drop_role(&t).await;
    })
    .await;
}
