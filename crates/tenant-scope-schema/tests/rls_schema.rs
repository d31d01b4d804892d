//! PostgreSQL row level security in the reference schema (`tenant_scope_schema::rls`, migration
//! 000006): every tenant-owned table has RLS enabled and forced and the `tenant_isolation` policy,
//! and the policy holds for a plain role that row level security applies to.
//!
//! The harness connects as a superuser, which bypasses row level security (that is why the rest of
//! the suite is unaffected), so the policy tests make a throwaway `LOGIN NOSUPERUSER NOBYPASSRLS`
//! role and `SET LOCAL ROLE` to it inside a transaction on the superuser connection. The library's
//! own runtime side (setting the tenant per transaction, connecting as the application role) is
//! tested elsewhere once it exists.
//!
//! On SQLite and MySQL/MariaDB, which have no row level security, the helpers are no-ops: the tests
//! check that they succeed and change nothing.

use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement, TransactionTrait,
};
use sea_orm_migration::SchemaManager;
use tenant_scope_schema::rls;
use test_support::{Backend, TestDb};
use uuid::Uuid;

/// Every tenant-owned table of the reference schema.
const TENANT_TABLES: [&str; 9] = [
    "users",
    "roles",
    "role_permissions",
    "user_roles",
    "projects",
    "tasks",
    "comments",
    "api_keys",
    "audit_events",
];

/// The global tables of the reference schema.
const GLOBAL_TABLES: [&str; 2] = ["tenants", "permissions"];

/// Runs a query that returns one `bigint` column `n`.
async fn count(conn: &impl ConnectionTrait, sql: &str) -> Result<i64, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .expect("one row");
    row.try_get("", "n")
}

async fn exec(conn: &impl ConnectionTrait, sql: &str) {
    conn.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

// ------------------------------------------------------------------ the schema

test_support::backend_test!(
    every_tenant_table_has_forced_rls_and_a_policy,
    |t: TestDb| async move {
        if t.backend() != Backend::Postgres {
            // No row level security on SQLite or MySQL: migration 000006 did nothing, and the tables
            // are as readable as before.
            for table in TENANT_TABLES.iter().chain(&GLOBAL_TABLES) {
                let n = count(t.raw(), &format!("SELECT COUNT(*) AS n FROM {table}"))
                    .await
                    .expect("count");
                assert_eq!(n, 0, "{table}");
            }
            return;
        }
        for table in TENANT_TABLES {
            let row = t
                .raw()
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT c.relrowsecurity, c.relforcerowsecurity FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = current_schema() AND c.relname = $1",
                    [table.into()],
                ))
                .await
                .expect("pg_class")
                .unwrap_or_else(|| panic!("no table {table}"));
            let enabled: bool = row.try_get("", "relrowsecurity").expect("bool");
            let forced: bool = row.try_get("", "relforcerowsecurity").expect("bool");
            assert!(enabled, "{table}: row level security is not enabled");
            assert!(forced, "{table}: row level security is not forced");

            let policies = t
                .raw()
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT policyname::text AS name, cmd, permissive, qual, with_check \
                     FROM pg_policies WHERE schemaname = current_schema() AND tablename = $1",
                    [table.into()],
                ))
                .await
                .expect("pg_policies");
            assert_eq!(policies.len(), 1, "{table}: exactly one policy");
            let policy = &policies[0];
            let get = |col: &str| -> Option<String> { policy.try_get("", col).expect(col) };
            assert_eq!(get("name").as_deref(), Some(rls::POLICY_NAME), "{table}");
            assert_eq!(get("cmd").as_deref(), Some("ALL"), "{table}");
            assert_eq!(get("permissive").as_deref(), Some("PERMISSIVE"), "{table}");
            for col in ["qual", "with_check"] {
                let expr = get(col).unwrap_or_else(|| panic!("{table}: no {col}"));
                assert!(
                    expr.contains("NULLIF(current_setting('tenant_scope.tenant_id'::text, true), ''::text))::uuid"),
                    "{table}: {col} is {expr}"
                );
            }
        }
        for table in GLOBAL_TABLES {
            let n = count(
                t.raw(),
                &format!(
                    "SELECT count(*) AS n FROM pg_policies \
                     WHERE schemaname = current_schema() AND tablename = '{table}'"
                ),
            )
            .await
            .expect("count");
            assert_eq!(n, 0, "global table {table} has a policy");
        }

        // If the application role exists on this server (`.ci/run` creates it), the migration granted it
        // plain DML on the tenant tables, read-only access to the global ones, and nothing dangerous.
        let role = rls::DEFAULT_APP_ROLE;
        let exists = count(
            t.raw(),
            &format!("SELECT count(*) AS n FROM pg_roles WHERE rolname = '{role}'"),
        )
        .await
        .expect("pg_roles");
        if exists == 1 {
            for table in TENANT_TABLES {
                // The audit log is append-only for the app role (migration 000008).
                let changeable = table != tenant_scope_schema::AUDIT_TABLE;
                for (privilege, expected) in [
                    ("SELECT", true),
                    ("INSERT", true),
                    ("UPDATE", changeable),
                    ("DELETE", changeable),
                    ("TRUNCATE", false),
                    ("REFERENCES", false),
                    ("TRIGGER", false),
                ] {
                    assert_eq!(
                        has_privilege(&t, role, table, privilege).await,
                        expected,
                        "{role} {privilege} on {table}"
                    );
                }
            }
            for table in GLOBAL_TABLES {
                assert!(has_privilege(&t, role, table, "SELECT").await, "{table}");
                for privilege in ["INSERT", "UPDATE", "DELETE", "TRUNCATE"] {
                    assert!(
                        !has_privilege(&t, role, table, privilege).await,
                        "{role} {privilege} on {table}"
                    );
                }
            }
        }
    }
);

async fn has_privilege(t: &TestDb, role: &str, table: &str, privilege: &str) -> bool {
    let n = count(
        t.raw(),
        &format!("SELECT has_table_privilege('{role}', '{table}', '{privilege}')::int::int8 AS n"),
    )
    .await
    .expect("has_table_privilege");
    n == 1
}

test_support::backend_test!(helpers_are_no_ops_without_rls, |t: TestDb| async move {
    if t.backend() == Backend::Postgres {
        // Covered above and below: on PostgreSQL the helpers do act.
        return;
    }
    // SQLite and MySQL have no row level security: the helpers succeed and change nothing.
    let manager = SchemaManager::new(t.raw());
    rls::drop_rls(&manager, &TENANT_TABLES).await.expect("drop");
    rls::enable_rls(&manager, &TENANT_TABLES)
        .await
        .expect("enable");
    rls::grant_app_role(&manager, "ts_rls_nobody", &TENANT_TABLES, &GLOBAL_TABLES)
        .await
        .expect("grant");
    rls::revoke_app_role(&manager, "ts_rls_nobody", &TENANT_TABLES, &GLOBAL_TABLES)
        .await
        .expect("revoke");
    for table in TENANT_TABLES {
        let n = count(t.raw(), &format!("SELECT COUNT(*) AS n FROM {table}"))
            .await
            .expect("count");
        assert_eq!(n, 0, "{table}");
    }
});

// ------------------------------------------------------------------ the policy, as a plain role

/// Begins a transaction on the superuser connection that runs as `role` (`SET LOCAL ROLE`, undone
/// when the transaction ends) with the tenant setting `tenant` (`set_config(.., true)`), if any.
async fn as_role(t: &TestDb, role: &str, tenant: Option<&str>) -> DatabaseTransaction {
    let txn = t.raw().begin().await.expect("begin");
    exec(&txn, &format!("SET LOCAL ROLE {role}")).await;
    if let Some(tenant) = tenant {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('tenant_scope.tenant_id', $1, true)",
            [tenant.into()],
        ))
        .await
        .expect("set_config");
    }
    txn
}

async fn projects_of(txn: &DatabaseTransaction) -> Result<Vec<Uuid>, DbErr> {
    let rows = txn
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id FROM projects ORDER BY id",
        ))
        .await?;
    rows.iter().map(|r| r.try_get("", "id")).collect()
}

#[track_caller]
fn assert_error_contains(result: Result<impl std::fmt::Debug, DbErr>, needle: &str) {
    match result {
        Err(e) => assert!(e.to_string().contains(needle), "{needle:?} not in {e}"),
        Ok(v) => panic!("expected an error containing {needle:?}, got {v:?}"),
    }
}

async fn policy_scenarios(t: &TestDb, role: &str) {
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let (a1, a2, b1) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // Seeded as the superuser, which row level security does not apply to.
    exec(
        t.raw(),
        &format!(
            "INSERT INTO tenants (id, name, created_at) VALUES \
             ('{a}', 'A', now()), ('{b}', 'B', now()); \
             INSERT INTO projects (tenant_id, id, name, created_at) VALUES \
             ('{a}', '{a1}', 'a1', now()), ('{a}', '{a2}', 'a2', now()), ('{b}', '{b1}', 'b1', now())"
        ),
    )
    .await;
    let manager = SchemaManager::new(t.raw());
    rls::grant_app_role(&manager, role, &TENANT_TABLES, &GLOBAL_TABLES)
        .await
        .expect("grant");

    // No setting: zero rows of every tenant table, no error.
    let txn = as_role(t, role, None).await;
    for table in TENANT_TABLES {
        let n = count(&txn, &format!("SELECT count(*) AS n FROM {table}"))
            .await
            .expect("count");
        assert_eq!(n, 0, "{table} without a tenant setting");
    }
    // ... but the global tables are readable.
    assert_eq!(
        count(&txn, "SELECT count(*) AS n FROM tenants")
            .await
            .expect("tenants"),
        2
    );
    txn.rollback().await.expect("rollback");

    // An empty setting (what a connection that ever set it reads) matches nothing either.
    let txn = as_role(t, role, Some("")).await;
    assert!(projects_of(&txn).await.expect("select").is_empty());
    txn.rollback().await.expect("rollback");

    // No setting: cannot insert.
    let txn = as_role(t, role, None).await;
    assert_error_contains(
        txn.execute_unprepared(&format!(
            "INSERT INTO projects (tenant_id, id, name, created_at) \
             VALUES ('{a}', '{}', 'x', now())",
            Uuid::now_v7()
        ))
        .await,
        "row-level security",
    );
    txn.rollback().await.expect("rollback");

    // Tenant A: exactly A's rows; B's rows are invisible to UPDATE and DELETE too.
    let txn = as_role(t, role, Some(&a.to_string())).await;
    let mut expected = vec![a1, a2];
    expected.sort();
    assert_eq!(projects_of(&txn).await.expect("select"), expected);
    let hidden = txn
        .execute_unprepared(&format!("UPDATE projects SET name = 'x' WHERE id = '{b1}'"))
        .await
        .expect("update");
    assert_eq!(hidden.rows_affected(), 0);
    let hidden = txn
        .execute_unprepared(&format!("DELETE FROM projects WHERE tenant_id = '{b}'"))
        .await
        .expect("delete");
    assert_eq!(hidden.rows_affected(), 0);
    txn.rollback().await.expect("rollback");

    // Tenant A cannot insert a row of tenant B (WITH CHECK) ...
    let txn = as_role(t, role, Some(&a.to_string())).await;
    assert_error_contains(
        txn.execute_unprepared(&format!(
            "INSERT INTO projects (tenant_id, id, name, created_at) \
             VALUES ('{b}', '{}', 'x', now())",
            Uuid::now_v7()
        ))
        .await,
        "row-level security",
    );
    txn.rollback().await.expect("rollback");

    // ... nor move its own row to tenant B.
    let txn = as_role(t, role, Some(&a.to_string())).await;
    assert_error_contains(
        txn.execute_unprepared(&format!(
            "UPDATE projects SET tenant_id = '{b}' WHERE id = '{a1}'"
        ))
        .await,
        "row-level security",
    );
    txn.rollback().await.expect("rollback");

    // A malformed setting is an error, never a match.
    let txn = as_role(t, role, Some("not-a-uuid")).await;
    assert_error_contains(projects_of(&txn).await, "uuid");
    txn.rollback().await.expect("rollback");

    // The transaction-local role did not outlive its transactions.
    let user = t
        .raw()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_user::text AS u",
        ))
        .await
        .expect("current_user")
        .expect("row");
    assert_ne!(user.try_get::<String>("", "u").expect("u"), role);

    // The policy is what holds: with row level security off, the same role sees every tenant.
    exec(t.raw(), "ALTER TABLE projects DISABLE ROW LEVEL SECURITY").await;
    let txn = as_role(t, role, None).await;
    assert_eq!(projects_of(&txn).await.expect("select").len(), 3);
    txn.rollback().await.expect("rollback");
}

test_support::backend_test!(policy_isolates_a_plain_role, |t: TestDb| async move {
    if t.backend() != Backend::Postgres {
        // No row level security on SQLite or MySQL (see `helpers_are_no_ops_without_rls`).
        return;
    }
    let role = format!("ts_rls_{}", Uuid::now_v7().simple());
    exec(
        t.raw(),
        &format!("CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS"),
    )
    .await;
    let outcome = AssertUnwindSafe(policy_scenarios(&t, &role))
        .catch_unwind()
        .await;
    // DROP OWNED BY revokes the role's privileges in this database, its only one.
    exec(t.raw(), &format!("DROP OWNED BY {role}; DROP ROLE {role}")).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
});
