//! `tenant-scope roles --print` end to end on PostgreSQL: the printed script, run on a migrated scratch
//! database with fresh role names, makes an application role that the connect-time self-check and
//! `tenant-scope check --app-role` accept and that row level security applies to, and a system role that
//! `db.system(reason)` accepts; running it twice changes nothing; an existing role with the wrong attributes
//! makes it fail and change nothing.
//!
//! PostgreSQL only: the other backends have no roles of this kind (the script is PostgreSQL SQL).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, TransactionTrait};
use test_support::{Backend, TestDb, connect, connect_options, new_database_name, with_user};

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

fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The script for the reference schema's own tenant-owned tables and these role names.
fn script(app: &str, system: &str) -> String {
    let out = tenant_scope(&[
        "roles",
        "--print",
        "--app-role",
        app,
        "--system-role",
        system,
        "--tenant-table",
        "projects,tasks,comments",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

async fn count(conn: &impl ConnectionTrait, sql: &str) -> Result<i64, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .expect("one row");
    row.try_get("", "n")
}

/// Every privilege granted to `role` on a table, and its attributes: what running the script did.
async fn role_state(conn: &DatabaseConnection, role: &str) -> Vec<String> {
    let sql = format!(
        "SELECT table_name::text || ' ' || privilege_type::text AS v FROM information_schema.role_table_grants \
         WHERE grantee = '{role}' \
         UNION ALL SELECT 'usage ' || has_schema_privilege('{role}', 'public', 'USAGE')::text \
         UNION ALL SELECT concat_ws(' ', rolsuper, rolbypassrls, rolcanlogin, rolcreatedb, rolcreaterole) \
         FROM pg_roles WHERE rolname = '{role}' ORDER BY 1"
    );
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("role state")
        .iter()
        .map(|r| r.try_get::<String>("", "v").expect("text"))
        .collect()
}

async fn drop_roles(conn: &DatabaseConnection, roles: &[&str]) {
    for role in roles {
        conn.execute_unprepared(&format!(
            r#"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
               EXECUTE 'DROP OWNED BY "{role}"'; EXECUTE 'DROP ROLE "{role}"'; END IF; END $$"#
        ))
        .await
        .unwrap_or_else(|e| panic!("dropping the test role {role}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printed_roles_are_accepted_by_the_library_and_rls_applies() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let (app, system) = (new_database_name(), new_database_name());
        let sql = script(&app, &system);
        let owner = t.raw();

        owner
            .execute_unprepared(&sql)
            .await
            .expect("run the script");
        let app_state = role_state(owner, &app).await;
        let system_state = role_state(owner, &system).await;
        assert!(
            app_state.contains(&"audit_events INSERT".to_owned())
                && !app_state.contains(&"audit_events UPDATE".to_owned())
                && !app_state
                    .iter()
                    .any(|p| p.starts_with("system_audit_events"))
                && app_state.contains(&"tenants SELECT".to_owned())
                && !app_state.contains(&"tenants INSERT".to_owned())
                && app_state.contains(&"tasks DELETE".to_owned()),
            "{app_state:?}"
        );
        assert!(
            system_state.contains(&"system_audit_events INSERT".to_owned()),
            "{system_state:?}"
        );
        // Idempotent: the second run succeeds and changes nothing.
        owner.execute_unprepared(&sql).await.expect("run it again");
        assert_eq!(role_state(owner, &app).await, app_state);
        assert_eq!(role_state(owner, &system).await, system_state);

        // Two tenants with a user each, written by the owner.
        owner
            .execute_unprepared(
                "INSERT INTO tenants (id, name, created_at) VALUES \
                 ('00000000-0000-7000-8000-00000000000a', 'a', now()), \
                 ('00000000-0000-7000-8000-00000000000b', 'b', now()); \
                 INSERT INTO users (tenant_id, id, email, name, created_at) VALUES \
                 ('00000000-0000-7000-8000-00000000000a', gen_random_uuid(), 'x@a', 'x', now()), \
                 ('00000000-0000-7000-8000-00000000000b', gen_random_uuid(), 'x@b', 'x', now())",
            )
            .await
            .expect("seed");

        // The library connects as the two roles: the self-check accepts the application role, and the
        // system role passes the BYPASSRLS check and writes its audit row.
        let app_url = with_user(t.url(), &app);
        let system_url = with_user(t.url(), &system);
        let db = tenant_scope::TenantDb::options(connect_options(&app_url))
            .system(connect_options(&system_url))
            .connect()
            .await
            .expect("the self-check accepts the printed roles");
        drop(db.system("roles test").await.expect("system access"));
        drop(db);

        // Row level security applies to the application role: no tenant set, no rows; one tenant set, its rows.
        let as_app = connect(&app_url).await.expect("connect as the app role");
        assert_eq!(
            count(&as_app, "SELECT count(*) AS n FROM users")
                .await
                .expect("count"),
            0
        );
        let txn = as_app.begin().await.expect("begin");
        txn.execute_unprepared(
            "SET LOCAL tenant_scope.tenant_id = '00000000-0000-7000-8000-00000000000a'",
        )
        .await
        .expect("set tenant");
        assert_eq!(
            count(&txn, "SELECT count(*) AS n FROM users")
                .await
                .expect("count"),
            1
        );
        txn.rollback().await.expect("rollback");
        for denied in [
            "SELECT count(*) AS n FROM system_audit_events",
            "WITH d AS (DELETE FROM audit_events RETURNING 1) SELECT count(*) AS n FROM d",
        ] {
            let e = count(&as_app, denied).await.expect_err(denied);
            assert!(e.to_string().contains("permission denied"), "{denied}: {e}");
        }
        as_app
            .execute_unprepared("TRUNCATE users")
            .await
            .expect_err("no TRUNCATE");
        as_app.close().await.expect("close");

        // The system role sees every tenant and the audit row of the access above.
        let as_system = connect(&system_url)
            .await
            .expect("connect as the system role");
        assert_eq!(
            count(&as_system, "SELECT count(*) AS n FROM users")
                .await
                .expect("count"),
            2
        );
        assert_eq!(
            count(
                &as_system,
                "SELECT count(*) AS n FROM system_audit_events WHERE reason = 'roles test'"
            )
            .await
            .expect("count"),
            1
        );
        as_system.close().await.expect("close");

        // `tenant-scope check` judges the application role as the self-check does: no finding.
        let check = tenant_scope(&[
            "check",
            "--database-url",
            t.url(),
            "--app-role",
            &app,
            "--global",
            "permissions",
        ]);
        assert_eq!(check.status.code(), Some(0), "{}", text(&check));
        assert!(!text(&check).contains("app-role-"), "{}", text(&check));

        drop_roles(owner, &[&app, &system]).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_role_with_the_wrong_attributes_fails_the_script_and_changes_nothing() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let (app, system) = (new_database_name(), new_database_name());
        let owner = t.raw();
        owner
            .execute_unprepared(&format!(r#"CREATE ROLE "{app}" LOGIN BYPASSRLS"#))
            .await
            .expect("create a role that bypasses RLS");
        // On a connection of its own, as psql runs it: the failed transaction ends with the session.
        let session = connect(t.url()).await.expect("connect");
        let e = session
            .execute_unprepared(&script(&app, &system))
            .await
            .expect_err("an app role with BYPASSRLS is refused");
        assert!(e.to_string().contains("wrong attributes"), "{e}");
        session.close().await.expect("close");
        assert_eq!(
            count(
                owner,
                &format!("SELECT count(*) AS n FROM pg_roles WHERE rolname = '{system}'")
            )
            .await
            .expect("count"),
            0,
            "the system role was not created"
        );
        assert!(
            !role_state(owner, &app)
                .await
                .iter()
                .any(|p| p.contains("SELECT")),
            "nothing was granted"
        );
        drop_roles(owner, &[&app]).await;
    })
    .await;
}

#[test]
fn invalid_names_print_nothing_and_exit_2() {
    let out = tenant_scope(&["roles", "--print", "--app-role", "app\"; DROP ROLE x; --"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(
        text(&out).contains("not a plain identifier"),
        "{}",
        text(&out)
    );
    let out = tenant_scope(&["roles"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--print is required: {}",
        text(&out)
    );
}
