//! Row level security at run time, on PostgreSQL, **connected as the application role** (`tenant_scope_app`:
//! `LOGIN NOSUPERUSER NOBYPASSRLS`, owns nothing), never as a superuser (superusers bypass every policy and
//! would prove nothing). The data is seeded as the owner; every check then runs over connections of the role
//! under test, in transactions that set the tenant exactly as the library does
//! (`SELECT set_config('tenant_scope.tenant_id', '<uuid>', true)`).
//!
//! What the suite proves about the policy of migration 000006 (`tenant_scope_schema::rls`), on every one of
//! the nine tenant-owned tables:
//! - without a tenant (the setting never set, or `''` as a finished transaction leaves it on the connection)
//!   the role sees no row and can insert none (`42501`, "new row violates row-level security policy");
//! - with tenant A set it sees exactly A's rows, cannot insert a row of B, cannot update or delete B's rows
//!   (nothing affected, B's rows unchanged as the owner sees them) and cannot move its own row to B;
//! - a malformed setting is an error (`22P02`), never a match;
//! - `FORCE` makes the policy bind a table owner that is not a superuser;
//! - the checks fail when the policy is gone or widened (the isolation helpers report the leak), and the
//!   library's own path works under the policy, so it does not rely on superuser rights.
//!
//! These tests are PostgreSQL-only: SQLite and MySQL/MariaDB have no row level security (tests/rls_schema.rs
//! checks that the helpers are no-ops there). The catalog side (policies, grants) is tests/rls_schema.rs; the
//! `tenant-scope check` findings are tests/check.rs.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use chrono::Utc;
use entity::projects;
use futures::FutureExt as _;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, ExecResult, RuntimeErr, Statement, TransactionTrait,
};
use tenant_scope::Error;
use test_support::{APP_ROLE, Backend, TestDb, TestRole};
use uuid::Uuid;

/// Every tenant-owned table of the reference schema, parents before children.
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

/// SQLSTATE `insufficient_privilege`, which row level security raises for a refused new row.
const RLS_SQLSTATE: &str = "42501";
/// The message of a refused new row (SQLSTATE 42501 alone would also match a missing GRANT).
const RLS_MESSAGE: &str = "new row violates row-level security policy";
/// SQLSTATE `invalid_text_representation`: `'not-a-uuid'::uuid`.
const BAD_UUID_SQLSTATE: &str = "22P02";
/// The message of a malformed tenant setting.
const BAD_UUID_MESSAGE: &str = "invalid input syntax for type uuid";

// ------------------------------------------------------------------ seed data (as the owner)

/// The rows a new row of a tenant-owned table refers to, all in the new row's tenant.
#[derive(Debug, Clone, Copy)]
struct Parents {
    user: Uuid,
    role: Uuid,
    permission: Uuid,
    project: Uuid,
    task: Uuid,
}

/// One seeded tenant: its id, the ids of its rows in every tenant table (in insertion order), and parents
/// that a new row of any table can refer to without breaking a unique key.
#[derive(Debug)]
struct SeedTenant {
    id: Uuid,
    rows: BTreeMap<&'static str, Vec<Uuid>>,
    new_row_parents: Parents,
}

impl SeedTenant {
    fn rows(&self, table: &str) -> &[Uuid] {
        self.rows
            .get(table)
            .unwrap_or_else(|| panic!("no seeded rows of {table}"))
    }

    fn count(&self, table: &str) -> i64 {
        i64::try_from(self.rows(table).len()).expect("a small count")
    }

    /// The row a "move to tenant B" attempt targets: the last one seeded. For `projects` and `roles` that is a
    /// spare row nothing refers to, so that without row level security the move would succeed.
    fn last(&self, table: &str) -> Uuid {
        *self.rows(table).last().expect("every table has rows")
    }
}

/// Three tenants with rows in every tenant table: A (the viewer of every check), B (the victim) and C.
#[derive(Debug)]
struct Seed {
    tenants: Vec<SeedTenant>,
    permissions: [Uuid; 2],
}

impl Seed {
    fn a(&self) -> &SeedTenant {
        &self.tenants[0]
    }

    fn b(&self) -> &SeedTenant {
        &self.tenants[1]
    }

    fn total(&self, table: &str) -> i64 {
        self.tenants.iter().map(|t| t.count(table)).sum()
    }
}

/// `INSERT` of one row of `table` in `tenant`, referring to `parents`; `tag` makes its unique values (email,
/// names) unique within the tenant. Every NOT NULL column is filled, every composite FK points into `tenant`.
fn insert_sql(table: &str, tenant: Uuid, id: Uuid, parents: &Parents, tag: &str) -> String {
    let Parents {
        user,
        role,
        permission,
        project,
        task,
    } = parents;
    let columns_values = match table {
        "users" => format!(
            "(tenant_id, id, email, name, created_at) \
             VALUES ('{tenant}', '{id}', '{tag}@example.test', '{tag}', now())"
        ),
        "roles" => {
            format!("(tenant_id, id, name, created_at) VALUES ('{tenant}', '{id}', '{tag}', now())")
        }
        "role_permissions" => format!(
            "(tenant_id, id, role_id, permission_id) \
             VALUES ('{tenant}', '{id}', '{role}', '{permission}')"
        ),
        "user_roles" => format!(
            "(tenant_id, id, user_id, role_id) VALUES ('{tenant}', '{id}', '{user}', '{role}')"
        ),
        "projects" => {
            format!("(tenant_id, id, name, created_at) VALUES ('{tenant}', '{id}', '{tag}', now())")
        }
        "tasks" => format!(
            "(tenant_id, id, project_id, assignee_id, title, done, created_at) \
             VALUES ('{tenant}', '{id}', '{project}', '{user}', '{tag}', false, now())"
        ),
        "comments" => format!(
            "(tenant_id, id, task_id, author_id, body, created_at) \
             VALUES ('{tenant}', '{id}', '{task}', '{user}', '{tag}', now())"
        ),
        "api_keys" => format!(
            "(tenant_id, id, user_id, name, key_hash, prefix, created_at) \
             VALUES ('{tenant}', '{id}', '{user}', '{tag}', repeat('0', 64), 'tsk_', now())"
        ),
        "audit_events" => format!(
            "(tenant_id, id, actor, action, table_name, row_id, request_id, created_at) \
             VALUES ('{tenant}', '{id}', 'user:{user}', 'insert', 'projects', '{project}', '{tag}', now())"
        ),
        other => panic!("no row builder for {other}"),
    };
    format!("INSERT INTO {table} {columns_values}")
}

/// The `SET` clause of an update of one of `victim`'s rows of `table` that would succeed without row level
/// security (a real change, within the victim's tenant and its unique keys).
fn update_set(table: &str, victim: &SeedTenant, seed: &Seed) -> String {
    match table {
        "users" | "roles" | "projects" | "api_keys" => "name = 'hijacked'".to_owned(),
        "role_permissions" => format!("permission_id = '{}'", seed.permissions[1]),
        "user_roles" => format!("role_id = '{}'", victim.new_row_parents.role),
        "tasks" => "title = 'hijacked'".to_owned(),
        "comments" => "body = 'hijacked'".to_owned(),
        "audit_events" => "action = 'hijacked'".to_owned(),
        other => panic!("no update for {other}"),
    }
}

/// Seeds, as the owner: permissions, and tenants A, B and C with 2, 3 and 1 full chains of rows (user, role,
/// its permission, the user's role, project, task, comment, API key, audit event), plus a spare role and a
/// spare project each that nothing refers to. Checks as the owner that every tenant table holds rows of every
/// tenant.
async fn seed(t: &TestDb) -> Seed {
    let permissions = [Uuid::now_v7(), Uuid::now_v7()];
    let mut sql = format!(
        "INSERT INTO permissions (id, code, description) VALUES \
         ('{}', 'projects.write', 'write'), ('{}', 'projects.read', 'read');\n",
        permissions[0], permissions[1]
    );
    let mut tenants = Vec::new();
    for (label, chains) in [("a", 2), ("b", 3), ("c", 1)] {
        let tenant = Uuid::now_v7();
        sql.push_str(&format!(
            "INSERT INTO tenants (id, name, created_at) VALUES ('{tenant}', 'tenant {label}', now());\n"
        ));
        let mut rows: BTreeMap<&'static str, Vec<Uuid>> = BTreeMap::new();
        for chain in 0..chains {
            let parents = Parents {
                user: Uuid::now_v7(),
                role: Uuid::now_v7(),
                permission: permissions[0],
                project: Uuid::now_v7(),
                task: Uuid::now_v7(),
            };
            for table in TENANT_TABLES {
                let id = match table {
                    "users" => parents.user,
                    "roles" => parents.role,
                    "projects" => parents.project,
                    "tasks" => parents.task,
                    _ => Uuid::now_v7(),
                };
                let tag = format!("{label}{chain}");
                sql.push_str(&insert_sql(table, tenant, id, &parents, &tag));
                sql.push_str(";\n");
                rows.entry(table).or_default().push(id);
            }
        }
        // New rows (the attacks below) refer to the spare role, so that `user_roles (user, role)` and
        // `role_permissions (role, permission)` stay unique; the spare project is the row a move targets.
        let new_row_parents = Parents {
            user: rows["users"][0],
            role: Uuid::now_v7(),
            permission: permissions[1],
            project: rows["projects"][0],
            task: rows["tasks"][0],
        };
        for (table, id) in [
            ("roles", new_row_parents.role),
            ("projects", Uuid::now_v7()),
        ] {
            let tag = format!("{label}-spare");
            sql.push_str(&insert_sql(table, tenant, id, &new_row_parents, &tag));
            sql.push_str(";\n");
            rows.entry(table).or_default().push(id);
        }
        tenants.push(SeedTenant {
            id: tenant,
            rows,
            new_row_parents,
        });
    }
    exec(t.raw(), &sql).await;
    let seed = Seed {
        tenants,
        permissions,
    };
    // The premise of every check: each tenant table has rows of each tenant (seen as the owner).
    for table in TENANT_TABLES {
        for tenant in &seed.tenants {
            let n = owner_count(t, table, tenant.id).await;
            assert_eq!(
                n,
                tenant.count(table),
                "seeded {table} rows of {}",
                tenant.id
            );
            assert!(n > 0, "{table} has no rows of {}", tenant.id);
        }
    }
    seed
}

// ------------------------------------------------------------------ connections and statements

async fn exec(conn: &impl ConnectionTrait, sql: &str) {
    conn.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A pool on the test database as the application role, `tenant_scope_app`.
async fn connect_app(t: &TestDb) -> DatabaseConnection {
    test_support::connect(&t.app_url())
        .await
        .expect("connect as the app role")
}

/// A pool of exactly one connection on `url`: every transaction runs on the same session, so what one leaves
/// on it is what the next one sees.
async fn connect_one(url: &str) -> DatabaseConnection {
    let mut options = test_support::connect_options(url);
    options.max_connections(1).min_connections(1);
    Database::connect(options)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", test_support::redact(url)))
}

/// Begins a transaction and, if `tenant` is given, sets the tenant exactly as the library does:
/// `set_config('tenant_scope.tenant_id', .., true)`, transaction-local.
async fn begin_as(conn: &DatabaseConnection, tenant: Option<&str>) -> DatabaseTransaction {
    let txn = conn.begin().await.expect("begin");
    if let Some(tenant) = tenant {
        txn.query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('tenant_scope.tenant_id', $1, true)",
            [tenant.into()],
        ))
        .await
        .expect("set_config");
    }
    txn
}

/// How a transaction of [`run_sql`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Commit if the statement succeeded (what an attacker's statement would do).
    Commit,
    Rollback,
}

/// Runs `sql` in a transaction of its own with the tenant `tenant` (none if `None`).
async fn run_sql(
    conn: &DatabaseConnection,
    tenant: Option<&str>,
    sql: &str,
    end: End,
) -> Result<ExecResult, DbErr> {
    let txn = begin_as(conn, tenant).await;
    let result = txn.execute_unprepared(sql).await;
    if end == End::Commit && result.is_ok() {
        txn.commit().await.expect("commit");
    } else {
        txn.rollback().await.expect("rollback");
    }
    result
}

/// How many rows of `table` are visible, and how many of those are not tenant `a`'s, in a transaction of its
/// own with the setting `tenant` (none if `None`).
async fn visible_counts(
    conn: &DatabaseConnection,
    tenant: Option<&str>,
    table: &str,
    a: Uuid,
) -> Result<(i64, i64), DbErr> {
    let txn = begin_as(conn, tenant).await;
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT count(*) AS n, count(*) FILTER (WHERE tenant_id <> $1) AS other FROM {table}"
            ),
            [a.into()],
        ))
        .await;
    txn.rollback().await.expect("rollback");
    let row = row?.expect("count returns a row");
    Ok((row.try_get("", "n")?, row.try_get("", "other")?))
}

/// How many rows of `tenant` `table` holds, as the owner (a superuser: row level security does not apply).
async fn owner_count(t: &TestDb, table: &str, tenant: Uuid) -> i64 {
    let row = t
        .raw()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT count(*) AS n FROM {table} WHERE tenant_id = $1"),
            [tenant.into()],
        ))
        .await
        .expect("owner count")
        .expect("a row");
    row.try_get("", "n").expect("n")
}

/// Every row of `tenant` in `table`, as JSON text in id order, read as the owner.
async fn owner_snapshot(t: &TestDb, table: &str, tenant: Uuid) -> Vec<String> {
    let rows = t
        .raw()
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT row_to_json(x)::text AS r FROM {table} x WHERE tenant_id = $1 ORDER BY id"
            ),
            [tenant.into()],
        ))
        .await
        .expect("owner snapshot");
    rows.iter()
        .map(|r| r.try_get("", "r").expect("r"))
        .collect()
}

/// The SQLSTATE of a database error.
fn sqlstate(e: &DbErr) -> Option<String> {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned()),
        _ => None,
    }
}

/// `None` if `result` is row level security refusing a new row (SQLSTATE 42501 with its message); otherwise
/// what happened instead.
fn not_refused(result: &Result<ExecResult, DbErr>) -> Option<String> {
    match result {
        Err(e)
            if sqlstate(e).as_deref() == Some(RLS_SQLSTATE)
                && e.to_string().contains(RLS_MESSAGE) =>
        {
            None
        }
        Err(e) => Some(format!(
            "failed otherwise ({}): {e}",
            sqlstate(e).unwrap_or_default()
        )),
        Ok(r) => Some(format!("succeeded, rows affected: {}", r.rows_affected())),
    }
}

/// Whether `e` is the privilege refusal of the append-only audit log: the app role has no `UPDATE` or
/// `DELETE` on `audit_events` at all (migration 000008; tests/audit.rs), which refuses before any policy.
fn append_only_refusal(table: &str, e: &DbErr) -> bool {
    table == tenant_scope_schema::AUDIT_TABLE
        && sqlstate(e).as_deref() == Some(RLS_SQLSTATE)
        && e.to_string()
            .contains("permission denied for table audit_events")
}

#[track_caller]
fn assert_bad_uuid<T: std::fmt::Debug>(result: Result<T, DbErr>, what: &str) {
    match result {
        Err(e) => {
            assert_eq!(
                sqlstate(&e).as_deref(),
                Some(BAD_UUID_SQLSTATE),
                "{what}: {e}"
            );
            assert!(e.to_string().contains(BAD_UUID_MESSAGE), "{what}: {e}");
        }
        Ok(v) => panic!("{what}: a malformed tenant setting matched instead of failing: {v:?}"),
    }
}

// ------------------------------------------------------------------ the isolation checks

/// The checks without a tenant, on `tables`, connected as `url`'s role over one fresh connection; returns the
/// violations found (empty when row level security holds):
/// 1. on the fresh connection the setting is missing (`current_setting(.., true)` is NULL): every table shows
///    no row, and an insert of a row of A is refused (42501);
/// 2. after a committed transaction that set the tenant the connection's setting is `''`: the same again.
///
/// Panics if a premise does not hold (the role is a superuser or has BYPASSRLS, or the setting is not what
/// the phase needs): that would be a broken test, not a finding.
async fn check_no_tenant(url: &str, seed: &Seed, tables: &[&str]) -> Vec<String> {
    let conn = connect_one(url).await;
    assert_subject_to_rls(&conn).await;
    let mut found = Vec::new();
    assert_eq!(
        setting(&conn).await,
        None,
        "a fresh connection has no setting"
    );
    no_tenant_phase(&conn, seed, tables, "no tenant set", &mut found).await;

    // A finished transaction that set the tenant leaves '' (not NULL) on the connection.
    let txn = begin_as(&conn, Some(&seed.a().id.to_string())).await;
    txn.commit().await.expect("commit");
    assert_eq!(
        setting(&conn).await.as_deref(),
        Some(""),
        "after a finished transaction that set it, the setting is ''"
    );
    no_tenant_phase(&conn, seed, tables, "tenant set to ''", &mut found).await;
    conn.close().await.expect("close");
    found
}

async fn no_tenant_phase(
    conn: &DatabaseConnection,
    seed: &Seed,
    tables: &[&str],
    label: &str,
    found: &mut Vec<String>,
) {
    let a = seed.a();
    for table in tables {
        match visible_counts(conn, None, table, a.id).await {
            Ok((0, _)) => {}
            Ok((n, _)) => found.push(format!("{table}: {label}: sees {n} rows")),
            Err(e) => found.push(format!("{table}: {label}: SELECT failed: {e}")),
        }
        let insert = insert_sql(table, a.id, Uuid::now_v7(), &a.new_row_parents, "intruder");
        if let Some(outcome) = not_refused(&run_sql(conn, None, &insert, End::Rollback).await) {
            found.push(format!(
                "{table}: {label}: INSERT of a row of tenant A was not refused by row level security: {outcome}"
            ));
        }
    }
}

/// The checks with tenant A set, on `tables`, connected as `url`'s role; returns the violations found (empty
/// when row level security holds). Per table, each statement in a transaction of its own:
/// - it sees exactly A's rows (as many as A has, none of another tenant);
/// - an insert of a row of B (referring to B's rows, so that only the policy can refuse it) is refused;
/// - moving its own row to B (`UPDATE .. SET tenant_id = B`) is refused by WITH CHECK;
/// - an update of a row of B by id alone affects nothing, and B's rows are unchanged as the owner sees them
///   (committed, as an attacker would);
/// - a delete of B's rows affects nothing, and B's rows are unchanged as the owner sees them (committed).
async fn check_tenant_a(t: &TestDb, url: &str, seed: &Seed, tables: &[&str]) -> Vec<String> {
    let conn = connect_one(url).await;
    assert_subject_to_rls(&conn).await;
    let (a, b) = (seed.a(), seed.b());
    let tenant_a = a.id.to_string();
    let tenant = Some(tenant_a.as_str());
    let mut found = Vec::new();
    for table in tables {
        let expected = a.count(table);
        match visible_counts(&conn, tenant, table, a.id).await {
            Ok((n, other)) => {
                if n != expected {
                    found.push(format!(
                        "{table}: tenant A: sees {n} rows, expected A's {expected}"
                    ));
                }
                if other != 0 {
                    found.push(format!(
                        "{table}: tenant A: sees {other} rows of other tenants"
                    ));
                }
            }
            Err(e) => found.push(format!("{table}: tenant A: SELECT failed: {e}")),
        }

        let insert = insert_sql(table, b.id, Uuid::now_v7(), &b.new_row_parents, "intruder");
        if let Some(outcome) = not_refused(&run_sql(&conn, tenant, &insert, End::Rollback).await) {
            found.push(format!(
                "{table}: tenant A: INSERT of a row of tenant B was not refused by row level security: {outcome}"
            ));
        }

        let own = a.last(table);
        let move_sql = format!(
            "UPDATE {table} SET tenant_id = '{}' WHERE id = '{own}'",
            b.id
        );
        let moved = run_sql(&conn, tenant, &move_sql, End::Rollback).await;
        let refused_outright = matches!(&moved, Err(e) if append_only_refusal(table, e));
        if let Some(outcome) = not_refused(&moved).filter(|_| !refused_outright) {
            found.push(format!(
                "{table}: tenant A: UPDATE moving its own row to tenant B was not refused by row level security: {outcome}"
            ));
        }

        let before = owner_snapshot(t, table, b.id).await;
        let update = format!(
            "UPDATE {table} SET {} WHERE id = '{}'",
            update_set(table, b, seed),
            b.rows(table)[0]
        );
        match run_sql(&conn, tenant, &update, End::Commit).await {
            Ok(r) if r.rows_affected() == 0 => {}
            Ok(r) => found.push(format!(
                "{table}: tenant A: UPDATE of a row of tenant B affected {} rows",
                r.rows_affected()
            )),
            Err(e) if append_only_refusal(table, &e) => {}
            Err(e) => found.push(format!(
                "{table}: tenant A: UPDATE of a row of tenant B failed instead of matching nothing: {e}"
            )),
        }
        if owner_snapshot(t, table, b.id).await != before {
            found.push(format!(
                "{table}: tenant A: tenant B's rows changed (seen as the owner) by its UPDATE"
            ));
        }

        let before = owner_snapshot(t, table, b.id).await;
        let delete = format!("DELETE FROM {table} WHERE tenant_id = '{}'", b.id);
        match run_sql(&conn, tenant, &delete, End::Commit).await {
            Ok(r) if r.rows_affected() == 0 => {}
            Ok(r) => found.push(format!(
                "{table}: tenant A: DELETE of tenant B's rows affected {} rows",
                r.rows_affected()
            )),
            Err(e) if append_only_refusal(table, &e) => {}
            Err(e) => found.push(format!(
                "{table}: tenant A: DELETE of tenant B's rows failed instead of matching nothing: {e}"
            )),
        }
        if owner_snapshot(t, table, b.id).await != before {
            found.push(format!(
                "{table}: tenant A: tenant B's rows changed (seen as the owner) by its DELETE"
            ));
        }
    }
    conn.close().await.expect("close");
    found
}

/// Every check, without a tenant and with tenant A, as `url`'s role: the violations found.
async fn check_isolation(t: &TestDb, url: &str, seed: &Seed, tables: &[&str]) -> Vec<String> {
    let mut found = check_no_tenant(url, seed, tables).await;
    found.extend(check_tenant_a(t, url, seed, tables).await);
    found
}

/// What [`check_isolation`] finds when nothing restricts `projects` (no row level security, or a policy that
/// lets everything through): every check fails. (The move succeeds because the row it targets, A's spare
/// project, is referred to by nothing; on a child table the composite foreign key would still refuse it.)
fn projects_leak(seed: &Seed) -> Vec<String> {
    let table = "projects";
    let (total, a, b) = (
        seed.total(table),
        seed.a().count(table),
        seed.b().count(table),
    );
    let ok = "succeeded, rows affected: 1";
    let mut expected = Vec::new();
    for label in ["no tenant set", "tenant set to ''"] {
        expected.push(format!("{table}: {label}: sees {total} rows"));
        expected.push(format!(
            "{table}: {label}: INSERT of a row of tenant A was not refused by row level security: {ok}"
        ));
    }
    expected.extend([
        format!("{table}: tenant A: sees {total} rows, expected A's {a}"),
        format!("{table}: tenant A: sees {} rows of other tenants", total - a),
        format!(
            "{table}: tenant A: INSERT of a row of tenant B was not refused by row level security: {ok}"
        ),
        format!(
            "{table}: tenant A: UPDATE moving its own row to tenant B was not refused by row level security: {ok}"
        ),
        format!("{table}: tenant A: UPDATE of a row of tenant B affected 1 rows"),
        format!("{table}: tenant A: tenant B's rows changed (seen as the owner) by its UPDATE"),
        format!("{table}: tenant A: DELETE of tenant B's rows affected {b} rows"),
        format!("{table}: tenant A: tenant B's rows changed (seen as the owner) by its DELETE"),
    ]);
    expected
}

/// The connection's role is one row level security applies to: not a superuser, no BYPASSRLS.
async fn assert_subject_to_rls(conn: &DatabaseConnection) {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_user::text AS name, rolsuper, rolbypassrls \
             FROM pg_roles WHERE rolname = current_user",
        ))
        .await
        .expect("pg_roles")
        .expect("the current role");
    let name: String = row.try_get("", "name").expect("name");
    let superuser: bool = row.try_get("", "rolsuper").expect("rolsuper");
    let bypass: bool = row.try_get("", "rolbypassrls").expect("rolbypassrls");
    assert!(
        !superuser && !bypass,
        "premise: {name} must be subject to row level security (superuser {superuser}, bypassrls {bypass})"
    );
}

/// The connection's `tenant_scope.tenant_id` outside a transaction (`None` if it was never set).
async fn setting(conn: &DatabaseConnection) -> Option<String> {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_setting('tenant_scope.tenant_id', true) AS s",
        ))
        .await
        .expect("current_setting")
        .expect("a row");
    row.try_get("", "s").expect("s")
}

/// Seeds, runs `ddl` as the owner, and returns what [`check_isolation`] finds as the app role.
async fn isolation_after(t: &TestDb, ddl: &str) -> (Seed, Vec<String>) {
    let seed = seed(t).await;
    exec(t.raw(), ddl).await;
    let found = check_isolation(t, &t.app_url(), &seed, &TENANT_TABLES).await;
    (seed, found)
}

// ------------------------------------------------------------------ 1. no tenant

// Guarantee: without a tenant (the setting missing on a fresh connection, or '' as a finished transaction
// leaves it), the application role sees no row of any tenant table and can insert into none (42501).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_tenant_the_app_role_sees_and_writes_nothing() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let seed = seed(&t).await;
        let found = check_no_tenant(&t.app_url(), &seed, &TENANT_TABLES).await;
        assert_eq!(found, Vec::<String>::new());
    })
    .await;
}

// ------------------------------------------------------------------ 2. tenant A

// Guarantee: with tenant A set, the application role sees exactly A's rows of every tenant table, cannot
// insert a row of B, cannot update or delete B's rows (nothing affected, nothing changed) and cannot move its
// own row to B (WITH CHECK).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_tenant_the_app_role_reaches_only_its_rows() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let seed = seed(&t).await;
        let found = check_tenant_a(&t, &t.app_url(), &seed, &TENANT_TABLES).await;
        assert_eq!(found, Vec::<String>::new());
        // The checks had something to see: A's own rows are visible, and a move of one is refused with the
        // WITH CHECK message (not because the row was invisible).
        let conn = connect_app(&t).await;
        let tenant_a = seed.a().id.to_string();
        for table in TENANT_TABLES {
            let (n, _) = visible_counts(&conn, Some(&tenant_a), table, seed.a().id)
                .await
                .expect("count");
            assert!(n > 0, "{table}: A sees none of its rows");
        }
        let moved = run_sql(
            &conn,
            Some(&tenant_a),
            &format!(
                "UPDATE projects SET tenant_id = '{}' WHERE id = '{}'",
                seed.b().id,
                seed.a().last("projects")
            ),
            End::Rollback,
        )
        .await;
        assert_eq!(not_refused(&moved), None);
        conn.close().await.expect("close");
    })
    .await;
}

// ------------------------------------------------------------------ 3. malformed setting

// Guarantee: a malformed tenant setting makes every statement on a tenant table fail (22P02, invalid input
// syntax for type uuid): never a match, never a silent empty answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_setting_is_an_error() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let seed = seed(&t).await;
        let (a, b) = (seed.a(), seed.b());
        let conn = connect_app(&t).await;
        for malformed in ["not-a-uuid", "' OR true --"] {
            for table in TENANT_TABLES {
                let statements = [
                    ("SELECT", format!("SELECT count(*) FROM {table}")),
                    (
                        "INSERT",
                        insert_sql(table, a.id, Uuid::now_v7(), &a.new_row_parents, "intruder"),
                    ),
                    (
                        "UPDATE",
                        format!(
                            "UPDATE {table} SET {} WHERE id = '{}'",
                            update_set(table, b, &seed),
                            b.rows(table)[0]
                        ),
                    ),
                    (
                        "DELETE",
                        format!("DELETE FROM {table} WHERE tenant_id = '{}'", b.id),
                    ),
                ];
                for (what, sql) in statements {
                    let result = run_sql(&conn, Some(malformed), &sql, End::Commit).await;
                    if matches!(&result, Err(e) if append_only_refusal(table, e)) {
                        continue; // refused by privileges before any policy runs
                    }
                    assert_bad_uuid(
                        result,
                        &format!("{what} on {table} with the setting {malformed:?}"),
                    );
                }
            }
        }
        // The error comes from the policy: without row level security the same query answers.
        exec(t.raw(), "ALTER TABLE projects DISABLE ROW LEVEL SECURITY").await;
        let counted = run_sql(
            &conn,
            Some("not-a-uuid"),
            "SELECT count(*) FROM projects",
            End::Rollback,
        )
        .await;
        assert!(counted.is_ok(), "{counted:?}");
        conn.close().await.expect("close");
    })
    .await;
}

// ------------------------------------------------------------------ 4. FORCE

// Guarantee: FORCE ROW LEVEL SECURITY binds a table owner that is not a superuser: it sees no row without a
// tenant and only A's with A set. Without FORCE the owner sees every tenant's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_binds_a_non_superuser_owner() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let seed = seed(&t).await;
        let role = TestRole::create(&t, "NOSUPERUSER NOBYPASSRLS").await;
        let outcome = AssertUnwindSafe(async {
            let (a, total) = (seed.a(), seed.total("projects"));
            let tenant_a = a.id.to_string();
            exec(
                t.raw(),
                &format!(r#"ALTER TABLE projects OWNER TO "{}""#, role.name()),
            )
            .await;
            let row = t
                .raw()
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT pg_get_userbyid(relowner)::text AS owner, relforcerowsecurity \
                     FROM pg_class WHERE oid = 'projects'::regclass",
                ))
                .await
                .expect("pg_class")
                .expect("projects");
            let owner: String = row.try_get("", "owner").expect("owner");
            assert_eq!(owner, role.name(), "premise: the test role owns projects");
            assert!(
                row.try_get::<bool>("", "relforcerowsecurity")
                    .expect("forced"),
                "premise: projects has FORCE ROW LEVEL SECURITY"
            );

            let conn = test_support::connect(role.url())
                .await
                .expect("connect as the owner");
            assert_subject_to_rls(&conn).await;
            let no_tenant = visible_counts(&conn, None, "projects", a.id)
                .await
                .expect("count");
            assert_eq!(no_tenant, (0, 0), "the owner without a tenant");
            let with_a = visible_counts(&conn, Some(&tenant_a), "projects", a.id)
                .await
                .expect("count");
            assert_eq!(with_a, (a.count("projects"), 0), "the owner with tenant A");
            conn.close().await.expect("close");
            // Every check of the suite holds for the owner, too.
            assert_eq!(
                check_isolation(&t, role.url(), &seed, &["projects"]).await,
                Vec::<String>::new()
            );

            // The contrast: without FORCE the owner is not subject to its table's policies.
            exec(t.raw(), "ALTER TABLE projects NO FORCE ROW LEVEL SECURITY").await;
            let conn = test_support::connect(role.url())
                .await
                .expect("connect as the owner");
            let no_tenant = visible_counts(&conn, None, "projects", a.id)
                .await
                .expect("count");
            assert_eq!(no_tenant, (total, total - a.count("projects")));
            let with_a = visible_counts(&conn, Some(&tenant_a), "projects", a.id)
                .await
                .expect("count");
            assert_eq!(with_a, (total, total - a.count("projects")));
            conn.close().await.expect("close");
            assert_eq!(
                check_isolation(&t, role.url(), &seed, &["projects"]).await,
                projects_leak(&seed)
            );
        })
        .catch_unwind()
        .await;
        // Hand the table back first: DROP OWNED BY (in drop_role) would otherwise try to drop it.
        exec(t.raw(), "ALTER TABLE projects OWNER TO CURRENT_USER").await;
        let name = role.name().to_owned();
        role.drop_role(&t).await;
        let left = t
            .raw()
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM pg_roles WHERE rolname = $1",
                [name.clone().into()],
            ))
            .await
            .expect("pg_roles");
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
        assert!(left.is_empty(), "the role {name} was not dropped");
    })
    .await;
}

// ------------------------------------------------------------------ 5. the checks fail without the policy

// Guarantee: the isolation checks detect a missing policy. With the policy dropped but row level security
// still enabled PostgreSQL denies by default: nothing leaks, but tenant A no longer sees its own rows (and
// so cannot move one), which the checks report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_policy_with_rls_enabled_denies_everything() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let (seed, found) = isolation_after(&t, "DROP POLICY tenant_isolation ON projects").await;
        let a = seed.a().count("projects");
        assert_eq!(
            found,
            [
                format!("projects: tenant A: sees 0 rows, expected A's {a}"),
                "projects: tenant A: UPDATE moving its own row to tenant B was not refused by row \
                 level security: succeeded, rows affected: 0"
                    .to_owned(),
            ]
        );
    })
    .await;
}

// Guarantee: the isolation checks detect a leak: with the policy dropped and row level security disabled, the
// app role sees and writes every tenant's projects (and nothing else leaks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_policy_and_disabled_rls_leak() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let (seed, found) = isolation_after(
            &t,
            "DROP POLICY tenant_isolation ON projects; \
             ALTER TABLE projects DISABLE ROW LEVEL SECURITY",
        )
        .await;
        assert_eq!(found, projects_leak(&seed));
    })
    .await;
}

// Guarantee: with row level security disabled the policy is ignored: a query without a tenant sees every
// tenant's rows, and every check reports the leak.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_rls_leaks_despite_the_policy() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let (seed, found) =
            isolation_after(&t, "ALTER TABLE projects DISABLE ROW LEVEL SECURITY").await;
        assert_eq!(found, projects_leak(&seed));
    })
    .await;
}

// Guarantee: permissive policies OR together: one extra `USING (true)` policy beside `tenant_isolation` opens
// the table to every tenant (reads and, its WITH CHECK defaulting to USING, writes), and the checks report it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_permissive_policy_leaks() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let (seed, found) =
            isolation_after(&t, "CREATE POLICY open ON projects USING (true)").await;
        assert_eq!(found, projects_leak(&seed));
    })
    .await;
}

// ------------------------------------------------------------------ 6. the library under the policy

// Guarantee: the library works as the application role under row level security: it sets the tenant on the
// wire, so a scoped insert passes WITH CHECK and a scoped read passes USING (without the setting both would
// fail, see above); it does not rely on superuser rights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_works_under_rls_as_the_app_role() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let db = t.tenant_db().await;
        let system = db
            .system("rls suite: provision two tenants")
            .await
            .expect("system");
        let mut made = Vec::new();
        for name in ["Acme", "Globex"] {
            let ctx = test_support::tenant(&system, name).await;
            let project = db
                .scope(&ctx)
                .insert(projects::ActiveModel {
                    name: Set(format!("{name} project")),
                    created_at: Set(Utc::now()),
                    ..Default::default()
                })
                .await
                .expect("a scoped insert as the app role, under the policy");
            assert_eq!(project.tenant_id, ctx.tenant());
            made.push((ctx, project));
        }
        let (ctx_a, project_a) = &made[0];
        let (_, project_b) = &made[1];
        let scope = db.scope(ctx_a);
        let listed = scope
            .find::<projects::Entity>()
            .all()
            .await
            .expect("a scoped read as the app role");
        assert_eq!(listed, std::slice::from_ref(project_a));
        assert_eq!(
            scope
                .get::<projects::Entity>(project_a.id)
                .await
                .expect("get"),
            *project_a
        );
        let other = scope.get::<projects::Entity>(project_b.id).await;
        assert!(matches!(other, Err(Error::NotFound)), "{other:?}");
        // Both rows are stored, each in its tenant (seen as the owner) ...
        for (ctx, project) in &made {
            assert_eq!(
                owner_count(&t, "projects", *ctx.tenant().as_uuid()).await,
                1
            );
            assert_eq!(project.tenant_id, ctx.tenant());
        }
        // ... and the library's application connections are the app role's.
        let users = t
            .raw()
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT DISTINCT usename::text AS u FROM pg_stat_activity \
                 WHERE datname = current_database()",
            ))
            .await
            .expect("pg_stat_activity");
        let users: Vec<String> = users
            .iter()
            .map(|r| r.try_get("", "u").expect("u"))
            .collect();
        assert!(users.iter().any(|u| u == APP_ROLE), "{users:?}");
        // The contrast: the library's reads are subject to the policy. Without it (RLS still on: deny all)
        // the same scoped read finds nothing, which a superuser connection would not notice.
        exec(t.raw(), "DROP POLICY tenant_isolation ON projects").await;
        let listed = scope.find::<projects::Entity>().all().await.expect("read");
        assert_eq!(listed, []);
    })
    .await;
}
