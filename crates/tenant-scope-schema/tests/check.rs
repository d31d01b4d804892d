//! `tenant-scope check` (`tenant_scope_schema::check`): the migrated reference schema is clean, and each defect,
//! planted alone in a small fixture beside it, is reported with exactly its finding code, on every backend.
//!
//! PostgreSQL fixtures first give every tenant-owned table row level security ([`secure_postgres`]), so that
//! the only finding is the planted one. A few defects cannot exist alone on some backend (the database itself
//! requires a second one); those tests allow the prerequisite explicitly, with `code:table`, and say why.

use sea_orm::{ConnectionTrait, DbBackend};
use tenant_scope_catalog::TenancyError;
use tenant_scope_schema::check::{CheckError, CheckOptions, Report, Severity, check, codes};
use test_support::{Backend, TestDb};

/// Options for the test database: the reference schema's global `permissions` (`tenants` always is).
fn options(t: &TestDb) -> CheckOptions {
    let mut options = CheckOptions::new(t.url());
    options.global = vec!["permissions".into()];
    options
}

async fn run(t: &TestDb, allow: &[&str]) -> Report {
    let mut options = options(t);
    options.allow = allow.iter().map(|s| (*s).to_owned()).collect();
    check(&options).await.expect("the check runs")
}

/// Runs a fixture statement. Fixtures are written once for every backend: `TENANT_ID` is the type of the
/// tenant column (`uuid` on PostgreSQL, where the library's policy compares it with a uuid; `BIGINT`
/// elsewhere) and `TENANT_<n>` the id of tenant n.
async fn exec(t: &TestDb, sql: &str) {
    let sql = fixture_sql(t.backend(), sql);
    t.raw()
        .execute_unprepared(&sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `sql` with the placeholders of [`exec`] filled in for `backend`.
fn fixture_sql(backend: Backend, sql: &str) -> String {
    let postgres = backend == Backend::Postgres;
    let mut out = sql.replace("TENANT_ID", if postgres { "UUID" } else { "BIGINT" });
    while let Some(at) = out.find("TENANT_") {
        let digits: String = out[at + 7..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let n: u32 = digits.parse().expect("TENANT_<n>");
        let id = if postgres {
            format!("'00000000-0000-7000-8000-{n:012}'")
        } else {
            n.to_string()
        };
        out.replace_range(at..at + 7 + digits.len(), &id);
    }
    out
}

/// Runs each statement.
async fn exec_all(t: &TestDb, statements: &[&str]) {
    for sql in statements {
        exec(t, sql).await;
    }
}

/// PostgreSQL: row level security as the library makes it (`tenant_scope_schema::rls::enable_rls_statements`: ENABLE,
/// FORCE and the policy `tenant_isolation`) on every table with a `tenant_id` column that has no policy yet (the
/// fixtures' tables; the reference schema has its own).
async fn secure_postgres(t: &TestDb) {
    if t.backend() != Backend::Postgres {
        return;
    }
    let rows = t
        .raw()
        .query_all_raw(sea_orm::Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
             WHERE n.nspname = current_schema() AND c.relkind = 'r'
               AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)",
        ))
        .await
        .expect("the tables without a policy");
    for row in rows {
        let table: String = row.try_get_by_index(0).expect("a table name");
        exec_all(
            t,
            &tenant_scope_schema::rls::enable_rls_statements(&table)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .await;
    }
}

/// Creates the fixture (`ddl`), secures PostgreSQL, and checks with `allow`.
async fn plant(t: &TestDb, ddl: &[&str], allow: &[&str]) -> Report {
    exec_all(t, ddl).await;
    secure_postgres(t).await;
    run(t, allow).await
}

#[track_caller]
fn assert_only(report: &Report, code: &str, table: &str) {
    assert_eq!(report.codes(), [code], "{}", report.to_text());
    assert_eq!(report.findings[0].table.as_deref(), Some(table));
}

/// A tenant-owned parent with the conventional key.
const PARENT: &str = "CREATE TABLE fx_parents (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, \
                      PRIMARY KEY (tenant_id, id))";

// ------------------------------------------------------------------ the reference schema

test_support::backend_test!(reference_schema_is_clean, |t: TestDb| async move {
    // Nothing allowed, on every backend: on PostgreSQL the reference schema carries the RLS policies
    // (migration 000006).
    let report = run(&t, &[]).await;
    assert!(report.is_clean(), "{}", report.to_text());
    assert_eq!(report.exit_code(), 0);
    assert!(report.to_text().starts_with("clean: no findings"));
});

test_support::backend_test!(reference_schema_with_rls_is_clean, |t: TestDb| async move {
    // PostgreSQL only: with policies on every tenant-owned table, nothing needs allowing.
    if t.backend() != Backend::Postgres {
        return;
    }
    secure_postgres(&t).await;
    let role = role_name();
    let report = check_with_role(
        &t,
        &role,
        &[
            format!("CREATE ROLE {role} NOLOGIN"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
            ),
        ],
    )
    .await
    .expect("the check runs");
    assert!(report.is_clean(), "{}", report.to_text());
});

test_support::backend_test!(
    undeclared_global_table_is_reported,
    |t: TestDb| async move {
        // Without --global permissions, `permissions` is a table without a tenant column.
        let report = check(&CheckOptions::new(t.url()))
            .await
            .expect("the check runs");
        let permissions: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.table.as_deref() == Some("permissions"))
            .map(|f| f.code)
            .collect();
        assert_eq!(permissions, [codes::TABLE_WITHOUT_TENANT_COLUMN]);
    }
);

test_support::backend_test!(global_declarations_are_checked, |t: TestDb| async move {
    // As in `generate` (the classification is the catalog's): a typo in --global, or a tenant-owned table
    // declared global, cannot run; the check does not quietly lint something else.
    let mut typo = options(&t);
    typo.global.push("permisions".into());
    match check(&typo).await {
        Err(CheckError::InvalidGlobal(TenancyError::UnknownGlobal(tables))) => {
            assert_eq!(tables, ["permisions"])
        }
        other => panic!("expected UnknownGlobal, got {other:?}"),
    }
    let mut owned = options(&t);
    owned.global.push("projects".into());
    match check(&owned).await {
        Err(CheckError::InvalidGlobal(TenancyError::GlobalWithTenantColumn(tables))) => {
            assert_eq!(tables, ["projects"])
        }
        other => panic!("expected GlobalWithTenantColumn, got {other:?}"),
    }
    // `tenants` is always global; naming it too is allowed.
    let mut tenants = options(&t);
    tenants.global.push("tenants".into());
    secure_postgres(&t).await;
    let report = check(&tenants).await.expect("the check runs");
    assert!(report.is_clean(), "{}", report.to_text());
});

// ------------------------------------------------------------------ schema findings

test_support::backend_test!(table_without_tenant_column, |t: TestDb| async move {
    let report = plant(
        &t,
        &["CREATE TABLE settings (id BIGINT NOT NULL PRIMARY KEY, value VARCHAR(100))"],
        &[],
    )
    .await;
    assert_only(&report, codes::TABLE_WITHOUT_TENANT_COLUMN, "settings");
    assert_eq!(report.exit_code(), 1);
});

/// A legacy table whose `tenant_id` is nullable. SQLite lets a primary key column hold NULL, so the key can
/// be tenant-led; PostgreSQL and MySQL make every primary key column NOT NULL, so there a nullable
/// `tenant_id` cannot be in the key (the key is `(id)`, which is `pk-not-tenant-led`, tested on its own below).
fn legacy_notes(backend: Backend) -> (&'static str, &'static [&'static str]) {
    match backend {
        Backend::Sqlite => (
            "CREATE TABLE legacy_notes (tenant_id TENANT_ID NULL, id BIGINT NOT NULL, body VARCHAR(100), \
             PRIMARY KEY (tenant_id, id))",
            &[],
        ),
        _ => (
            "CREATE TABLE legacy_notes (tenant_id TENANT_ID NULL, id BIGINT NOT NULL PRIMARY KEY, body VARCHAR(100))",
            &["pk-not-tenant-led:legacy_notes"],
        ),
    }
}

test_support::backend_test!(tenant_column_nullable, |t: TestDb| async move {
    let (ddl, allow) = legacy_notes(t.backend());
    let report = plant(&t, &[ddl], allow).await;
    assert_only(&report, codes::TENANT_COLUMN_NULLABLE, "legacy_notes");
    assert_eq!(report.findings[0].columns, ["tenant_id"]);
});

test_support::backend_test!(pk_not_tenant_led, |t: TestDb| async move {
    let report = plant(
        &t,
        &["CREATE TABLE fx_items (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, PRIMARY KEY (id, tenant_id))"],
        &[],
    )
    .await;
    assert_only(&report, codes::PK_NOT_TENANT_LED, "fx_items");
    assert_eq!(report.findings[0].columns, ["id", "tenant_id"]);
});

/// A legacy single-column foreign key between tenant-owned tables. PostgreSQL and SQLite require a unique key
/// on the referenced column, and a unique `(id)` is itself `unique-without-tenant` (tested on its own below):
/// that prerequisite is allowed on the parent only.
const LEGACY_FK: &[&str] = &[
    "CREATE TABLE fx_parents (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, \
     PRIMARY KEY (tenant_id, id), UNIQUE (id))",
    "CREATE TABLE fx_children (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, parent_id BIGINT NOT NULL, \
     PRIMARY KEY (tenant_id, id), FOREIGN KEY (parent_id) REFERENCES fx_parents (id))",
];
const LEGACY_FK_ALLOW: &str = "unique-without-tenant:fx_parents";

test_support::backend_test!(fk_not_tenant_composite, |t: TestDb| async move {
    let report = plant(&t, LEGACY_FK, &[LEGACY_FK_ALLOW]).await;
    // (On MySQL the index it creates for the key on (parent_id) is part of this finding, not a second one.)
    assert_only(&report, codes::FK_NOT_TENANT_COMPOSITE, "fx_children");
    assert_eq!(report.findings[0].columns, ["parent_id"]);
});

test_support::backend_test!(fk_set_null_over_tenant, |t: TestDb| async move {
    // MySQL and MariaDB refuse ON DELETE SET NULL over a NOT NULL column, so there the defect needs a nullable
    // tenant_id, which cannot be in the primary key: both prerequisites are allowed on MySQL only.
    let (child, allow): (&str, &[&str]) = match t.backend() {
        Backend::Mysql => (
            "CREATE TABLE fx_children (tenant_id TENANT_ID NULL, id BIGINT NOT NULL PRIMARY KEY, parent_id BIGINT NULL, \
             FOREIGN KEY (tenant_id, parent_id) REFERENCES fx_parents (tenant_id, id) ON DELETE SET NULL)",
            &[
                "tenant-column-nullable:fx_children",
                "pk-not-tenant-led:fx_children",
            ],
        ),
        _ => (
            "CREATE TABLE fx_children (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, parent_id BIGINT NULL, \
             PRIMARY KEY (tenant_id, id), \
             FOREIGN KEY (tenant_id, parent_id) REFERENCES fx_parents (tenant_id, id) ON DELETE SET NULL)",
            &[],
        ),
    };
    let report = plant(&t, &[PARENT, child], allow).await;
    assert_only(&report, codes::FK_SET_NULL_TENANT, "fx_children");
    assert_eq!(report.findings[0].columns, ["tenant_id", "parent_id"]);
});

test_support::backend_test!(fk_update_changes_tenant, |t: TestDb| async move {
    let report = plant(
        &t,
        &[
            PARENT,
            "CREATE TABLE fx_children (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, parent_id BIGINT NOT NULL, \
             PRIMARY KEY (tenant_id, id), FOREIGN KEY (tenant_id, parent_id) \
             REFERENCES fx_parents (tenant_id, id) ON DELETE CASCADE ON UPDATE CASCADE)",
            "CREATE INDEX ix_fx_children_parent_id ON fx_children (tenant_id, parent_id)",
        ],
        &[],
    )
    .await;
    assert_only(&report, codes::FK_UPDATE_CHANGES_TENANT, "fx_children");
    assert_eq!(report.findings[0].columns, ["tenant_id", "parent_id"]);
});

test_support::backend_test!(
    set_null_with_column_list_is_accepted,
    |t: TestDb| async move {
        // PostgreSQL 15 only: `SET NULL (parent_id)` leaves tenant_id alone.
        if t.backend() != Backend::Postgres {
            return;
        }
        let report = plant(
        &t,
        &[
            PARENT,
            "CREATE TABLE fx_children (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, parent_id BIGINT NULL, \
             PRIMARY KEY (tenant_id, id), FOREIGN KEY (tenant_id, parent_id) \
             REFERENCES fx_parents (tenant_id, id) ON DELETE SET NULL (parent_id))",
            "CREATE INDEX ix_fx_children_parent_id ON fx_children (tenant_id, parent_id)",
        ],
        &[],
    )
    .await;
        assert!(report.is_clean(), "{}", report.to_text());
    }
);

const USERS: &str = "CREATE TABLE fx_users (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, \
                     email VARCHAR(100) NOT NULL, PRIMARY KEY (tenant_id, id))";

test_support::backend_test!(unique_constraint_without_tenant, |t: TestDb| async move {
    let report = plant(
        &t,
        &["CREATE TABLE fx_users (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, email VARCHAR(100) NOT NULL, \
           PRIMARY KEY (tenant_id, id), CONSTRAINT uq_fx_users_email UNIQUE (email))"],
        &[],
    )
    .await;
    assert_only(&report, codes::UNIQUE_WITHOUT_TENANT, "fx_users");
    assert_eq!(report.findings[0].columns, ["email"]);
});

test_support::backend_test!(unique_index_without_tenant, |t: TestDb| async move {
    let report = plant(
        &t,
        &[
            USERS,
            "CREATE UNIQUE INDEX ux_fx_users_email ON fx_users (email)",
        ],
        &[],
    )
    .await;
    assert_only(&report, codes::UNIQUE_WITHOUT_TENANT, "fx_users");
});

test_support::backend_test!(
    unique_expression_index_without_tenant,
    |t: TestDb| async move {
        // PostgreSQL only (sea-schema does not report expression indexes there; the check reads pg_index).
        if t.backend() != Backend::Postgres {
            return;
        }
        let report = plant(
            &t,
            &[
                USERS,
                "CREATE UNIQUE INDEX ux_fx_users_email ON fx_users (lower(email))",
            ],
            &[],
        )
        .await;
        assert_only(&report, codes::UNIQUE_WITHOUT_TENANT, "fx_users");
        assert_eq!(report.findings[0].columns, ["lower(email::text)"]);
    }
);

test_support::backend_test!(index_not_tenant_led, |t: TestDb| async move {
    let report = plant(
        &t,
        &[USERS, "CREATE INDEX ix_fx_users_email ON fx_users (email)"],
        &[],
    )
    .await;
    assert_only(&report, codes::INDEX_NOT_TENANT_LED, "fx_users");
    assert_eq!(report.findings[0].severity, Severity::Warning);
    // Warnings are printed but do not fail the check.
    assert_eq!(report.exit_code(), 0);
    assert!(!report.is_clean());
});

// ------------------------------------------------------------------ PostgreSQL: RLS, role, views

/// A tenant-owned fixture table with row level security (PostgreSQL), before one property is broken.
async fn secured_fixture(t: &TestDb) {
    exec(t, USERS).await;
    secure_postgres(t).await;
}

test_support::backend_test!(rls_not_enabled, |t: TestDb| async move {
    // PostgreSQL only: row level security exists nowhere else.
    if t.backend() != Backend::Postgres {
        return;
    }
    secured_fixture(&t).await;
    exec(&t, "ALTER TABLE fx_users DISABLE ROW LEVEL SECURITY").await;
    assert_only(&run(&t, &[]).await, codes::RLS_NOT_ENABLED, "fx_users");
});

test_support::backend_test!(rls_not_forced, |t: TestDb| async move {
    // PostgreSQL only.
    if t.backend() != Backend::Postgres {
        return;
    }
    secured_fixture(&t).await;
    exec(&t, "ALTER TABLE fx_users NO FORCE ROW LEVEL SECURITY").await;
    assert_only(&run(&t, &[]).await, codes::RLS_NOT_FORCED, "fx_users");
});

test_support::backend_test!(rls_no_policy, |t: TestDb| async move {
    // PostgreSQL only.
    if t.backend() != Backend::Postgres {
        return;
    }
    secured_fixture(&t).await;
    exec(&t, "DROP POLICY tenant_isolation ON fx_users").await;
    assert_only(&run(&t, &[]).await, codes::RLS_NO_POLICY, "fx_users");
});

test_support::backend_test!(policy_without_with_check, |t: TestDb| async move {
    // PostgreSQL only.
    if t.backend() != Backend::Postgres {
        return;
    }
    secured_fixture(&t).await;
    exec_all(
        &t,
        &[
            // Restrictive policies, so that they narrow what `tenant_isolation` admits and widen nothing
            // (a permissive one would be `rls-permissive-policy`).
            "CREATE POLICY loose ON fx_users AS RESTRICTIVE USING \
             (tenant_id = NULLIF(current_setting('tenant_scope.tenant_id', true), '')::uuid)",
            // A read-only policy needs no WITH CHECK: not a finding.
            "CREATE POLICY reader ON fx_users AS RESTRICTIVE FOR SELECT USING (true)",
        ],
    )
    .await;
    let report = run(&t, &[]).await;
    assert_only(&report, codes::POLICY_WITHOUT_WITH_CHECK, "fx_users");
    assert!(report.findings[0].message.contains("`loose`"));
});

test_support::backend_test!(view_without_security_invoker, |t: TestDb| async move {
    // PostgreSQL only (security_invoker is PostgreSQL 15+).
    if t.backend() != Backend::Postgres {
        return;
    }
    secure_postgres(&t).await;
    exec_all(
        &t,
        &[
            "CREATE VIEW fx_open_tasks AS SELECT * FROM tasks WHERE NOT done",
            "CREATE VIEW fx_my_tasks WITH (security_invoker = true) AS SELECT * FROM tasks",
            // A view over a view: fine only if every level is security_invoker.
            "CREATE VIEW fx_my_open_tasks WITH (security_invoker = true) AS SELECT * FROM fx_my_tasks WHERE NOT done",
            "CREATE VIEW fx_tenant_names AS SELECT name FROM tenants",
            // Definer rights at the outer level leak through an invoker view below it.
            "CREATE VIEW fx_task_count AS SELECT count(*) AS n FROM fx_my_tasks",
        ],
    )
    .await;
    let report = run(&t, &[]).await;
    let flagged: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.code, f.table.as_deref()))
        .collect();
    assert_eq!(
        flagged,
        [
            (codes::VIEW_WITHOUT_SECURITY_INVOKER, Some("fx_open_tasks")),
            (codes::VIEW_WITHOUT_SECURITY_INVOKER, Some("fx_task_count")),
        ],
        "{}",
        report.to_text()
    );
});

test_support::backend_test!(rls_permissive_policy, |t: TestDb| async move {
    // PostgreSQL only. Permissive policies are ORed with `tenant_isolation`: this one opens every row to SELECT.
    if t.backend() != Backend::Postgres {
        return;
    }
    secured_fixture(&t).await;
    exec(&t, "CREATE POLICY open ON fx_users FOR SELECT USING (true)").await;
    let report = run(&t, &[]).await;
    assert_only(&report, codes::RLS_PERMISSIVE_POLICY, "fx_users");
    assert!(
        report.findings[0].message.contains("(open)"),
        "{}",
        report.to_text()
    );
});

test_support::backend_test!(materialized_view_over_tenant_data, |t: TestDb| async move {
    // PostgreSQL only. A materialized view stores every tenant's rows; it cannot run as the invoker.
    if t.backend() != Backend::Postgres {
        return;
    }
    secure_postgres(&t).await;
    exec(
        &t,
        "CREATE MATERIALIZED VIEW fx_task_counts AS SELECT tenant_id, count(*) AS n FROM tasks GROUP BY tenant_id",
    )
    .await;
    let report = run(&t, &[]).await;
    assert_only(
        &report,
        codes::MATERIALIZED_VIEW_OVER_TENANT_DATA,
        "fx_task_counts",
    );
    assert!(
        !report.findings[0].message.contains("tenant_id"),
        "{}",
        report.to_text()
    );
});

/// Checks with `app_role` set to a role made by `create` (PostgreSQL), dropping the role before returning.
async fn check_with_role(t: &TestDb, role: &str, setup: &[String]) -> Result<Report, CheckError> {
    for sql in setup {
        exec(t, sql).await;
    }
    let mut options = options(t);
    options.app_role = Some(role.to_owned());
    let report = check(&options).await;
    // Roles are cluster-wide: drop it whatever the result.
    drop_role(t, role).await;
    report
}

/// Drops a test role and what it owns in this database (best effort: roles are cluster-wide).
async fn drop_role(t: &TestDb, role: &str) {
    let _ = t
        .raw()
        .execute_unprepared(&format!(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN \
             EXECUTE 'REASSIGN OWNED BY {role} TO CURRENT_USER'; EXECUTE 'DROP OWNED BY {role}'; \
             EXECUTE 'DROP ROLE {role}'; END IF; END $$"
        ))
        .await;
}

fn role_name() -> String {
    format!("ts_check_{}", uuid::Uuid::now_v7().simple())
}

test_support::backend_test!(app_role_owns_table, |t: TestDb| async move {
    // PostgreSQL only.
    if t.backend() != Backend::Postgres {
        return;
    }
    secured_fixture(&t).await;
    let role = role_name();
    let report = check_with_role(
        &t,
        &role,
        &[
            format!("CREATE ROLE {role} NOLOGIN"),
            format!("ALTER TABLE fx_users OWNER TO {role}"),
        ],
    )
    .await
    .expect("the check runs");
    assert_only(&report, codes::APP_ROLE_OWNS_TABLE, "fx_users");
});

test_support::backend_test!(app_role_dangerous_privilege, |t: TestDb| async move {
    // PostgreSQL only. Plain DML is fine; TRUNCATE is not governed by row level security.
    if t.backend() != Backend::Postgres {
        return;
    }
    secured_fixture(&t).await;
    let role = role_name();
    let report = check_with_role(
        &t,
        &role,
        &[
            format!("CREATE ROLE {role} NOLOGIN"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
            ),
            format!("GRANT TRUNCATE ON fx_users TO {role}"),
        ],
    )
    .await
    .expect("the check runs");
    assert_only(&report, codes::APP_ROLE_DANGEROUS_PRIVILEGE, "fx_users");
    assert!(report.findings[0].message.contains("has TRUNCATE on"));
});

test_support::backend_test!(app_role_bypasses_rls, |t: TestDb| async move {
    // PostgreSQL only.
    if t.backend() != Backend::Postgres {
        return;
    }
    secure_postgres(&t).await;
    let role = role_name();
    let report = check_with_role(
        &t,
        &role,
        &[format!("CREATE ROLE {role} NOLOGIN BYPASSRLS")],
    )
    .await
    .expect("the check runs");
    assert_eq!(
        report.codes(),
        [codes::APP_ROLE_BYPASSES_RLS],
        "{}",
        report.to_text()
    );
    assert_eq!(report.findings[0].table, None);
    assert!(report.findings[0].message.contains("BYPASSRLS"));
});

test_support::backend_test!(
    app_role_member_of_a_bypassrls_role,
    |t: TestDb| async move {
        // PostgreSQL only. A role that may SET ROLE to a BYPASSRLS role bypasses row level security too, as the
        // connect-time self-check refuses it: check reports it, naming both roles.
        if t.backend() != Backend::Postgres {
            return;
        }
        secure_postgres(&t).await;
        let bypass = role_name();
        let role = role_name();
        let report = check_with_role(
            &t,
            &role,
            &[
                format!("CREATE ROLE {bypass} NOLOGIN BYPASSRLS"),
                format!("CREATE ROLE {role} NOLOGIN IN ROLE {bypass}"),
            ],
        )
        .await;
        drop_role(&t, &bypass).await;
        let report = report.expect("the check runs");
        assert_eq!(
            report.codes(),
            [codes::APP_ROLE_BYPASSES_RLS],
            "{}",
            report.to_text()
        );
        assert_eq!(report.findings[0].table, None);
        assert!(
            report.findings[0].message.contains(&bypass),
            "{}",
            report.to_text()
        );
    }
);

test_support::backend_test!(unknown_app_role_cannot_run, |t: TestDb| async move {
    // PostgreSQL only: a misspelled --app-role must not pass silently.
    if t.backend() != Backend::Postgres {
        return;
    }
    let mut options = options(&t);
    options.app_role = Some("ts_check_no_such_role".into());
    options.allow = codes::RLS.iter().map(|c| (*c).to_owned()).collect();
    match check(&options).await {
        Err(CheckError::UnknownAppRole(role)) => assert_eq!(role, "ts_check_no_such_role"),
        other => panic!("expected UnknownAppRole, got {other:?}"),
    }
});

test_support::backend_test!(
    scan_under_rls_fails_instead_of_undercounting,
    |t: TestDb| async move {
        // PostgreSQL only: connected as a role that row level security applies to, the data scan would see only
        // the rows the policies admit. It must not pass as clean: it cannot run (exit 2).
        if t.backend() != Backend::Postgres {
            return;
        }
        secure_postgres(&t).await;
        let role = role_name();
        exec_all(
            &t,
            &[
                &format!("CREATE ROLE {role} LOGIN"),
                &format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"),
            ],
        )
        .await;
        let (_, rest) = t.url().split_once("://").expect("a URL");
        let (_, host) = rest.split_once('@').expect("a URL with a user");
        let mut options = options(&t);
        options.database_url = format!("postgres://{role}@{host}");
        let result = check(&options).await;
        drop_role(&t, &role).await;
        match result {
            Err(CheckError::Scan(message)) => {
                assert!(message.contains("row-level security"), "{message}")
            }
            other => panic!("expected a scan error, got {other:?}"),
        }
    }
);

// ------------------------------------------------------------------ data findings

test_support::backend_test!(null_tenant_rows, |t: TestDb| async move {
    let (ddl, allow) = legacy_notes(t.backend());
    let mut allow = allow.to_vec();
    // The nullable column is the schema finding; this test is about the rows.
    allow.push("tenant-column-nullable");
    exec(&t, ddl).await;
    exec(
        &t,
        "INSERT INTO legacy_notes (tenant_id, id, body) VALUES (NULL, 1, 'a'), (NULL, 2, 'b'), (TENANT_7, 3, 'secret')",
    )
    .await;
    secure_postgres(&t).await;
    let report = run(&t, &allow).await;
    assert_only(&report, codes::NULL_TENANT_ROWS, "legacy_notes");
    let message = &report.findings[0].message;
    assert!(message.starts_with("2 rows of `legacy_notes`"), "{message}");
    assert!(!message.contains("secret"));
});

test_support::backend_test!(
    cross_tenant_reference_through_legacy_fk,
    |t: TestDb| async move {
        exec_all(&t, LEGACY_FK).await;
        exec_all(
        &t,
        &[
            "INSERT INTO fx_parents (tenant_id, id) VALUES (TENANT_1, 10), (TENANT_2, 20)",
            // Child 100 of tenant 2 points at tenant 1's parent; child 101 is fine.
            "INSERT INTO fx_children (tenant_id, id, parent_id) VALUES (TENANT_2, 100, 10), (TENANT_2, 101, 20)",
        ],
    )
    .await;
        secure_postgres(&t).await;
        let report = run(&t, &[LEGACY_FK_ALLOW, "fk-not-tenant-composite"]).await;
        assert_only(&report, codes::CROSS_TENANT_REFERENCE, "fx_children");
        let message = &report.findings[0].message;
        assert!(message.starts_with("1 row of `fx_children`"), "{message}");
        assert!(
            !message.contains("10") && !message.contains("100"),
            "{message}"
        );
    }
);

/// A legacy child with no foreign key at all: `fx_parent_id` refers to `fx_parents.id` by name only.
const UNDECLARED: &[&str] = &[
    PARENT,
    "CREATE TABLE fx_children (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, fx_parent_id BIGINT NULL, \
     PRIMARY KEY (tenant_id, id))",
    "CREATE INDEX ix_fx_children_fx_parent_id ON fx_children (tenant_id, fx_parent_id)",
];

test_support::backend_test!(cross_tenant_reference_undeclared, |t: TestDb| async move {
    exec_all(&t, UNDECLARED).await;
    exec_all(
        &t,
        &[
            "INSERT INTO fx_parents (tenant_id, id) VALUES (TENANT_1, 10), (TENANT_2, 20)",
            "INSERT INTO fx_children (tenant_id, id, fx_parent_id) VALUES (TENANT_2, 100, 10), (TENANT_2, 101, 20), (TENANT_2, 102, NULL)",
        ],
    )
    .await;
    secure_postgres(&t).await;
    let report = run(&t, &[]).await;
    assert_only(&report, codes::CROSS_TENANT_REFERENCE, "fx_children");
    assert_eq!(report.findings[0].columns, ["fx_parent_id"]);
});

test_support::backend_test!(orphaned_rows_undeclared, |t: TestDb| async move {
    exec_all(&t, UNDECLARED).await;
    exec_all(
        &t,
        &[
            "INSERT INTO fx_parents (tenant_id, id) VALUES (TENANT_1, 10)",
            "INSERT INTO fx_children (tenant_id, id, fx_parent_id) VALUES (TENANT_1, 100, 10), (TENANT_1, 101, 99), (TENANT_1, 102, 98)",
        ],
    )
    .await;
    secure_postgres(&t).await;
    let report = run(&t, &[]).await;
    assert_only(&report, codes::ORPHANED_ROWS, "fx_children");
    assert!(
        report.findings[0]
            .message
            .starts_with("2 rows of `fx_children`")
    );
});

test_support::backend_test!(orphaned_rows_behind_a_declared_fk, |t: TestDb| async move {
    exec_all(
        &t,
        &[
            PARENT,
            "CREATE TABLE fx_children (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, parent_id BIGINT NOT NULL, \
             PRIMARY KEY (tenant_id, id), FOREIGN KEY (tenant_id, parent_id) \
             REFERENCES fx_parents (tenant_id, id) ON DELETE CASCADE)",
            "CREATE INDEX ix_fx_children_parent_id ON fx_children (tenant_id, parent_id)",
        ],
    )
    .await;
    // Each backend's way past its foreign key checks, in one session (one multi-statement call).
    let insert = "INSERT INTO fx_children (tenant_id, id, parent_id) VALUES (TENANT_1, 100, 10)";
    let bypass = match t.backend() {
        Backend::Sqlite => {
            format!("PRAGMA foreign_keys = OFF; {insert}; PRAGMA foreign_keys = ON;")
        }
        Backend::Mysql => {
            format!("SET FOREIGN_KEY_CHECKS = 0; {insert}; SET FOREIGN_KEY_CHECKS = 1;")
        }
        Backend::Postgres => format!(
            "SET session_replication_role = replica; {insert}; SET session_replication_role = DEFAULT;"
        ),
    };
    exec(&t, &bypass).await;
    secure_postgres(&t).await;
    let report = run(&t, &[]).await;
    assert_only(&report, codes::ORPHANED_ROWS, "fx_children");
    assert_eq!(report.findings[0].columns, ["tenant_id", "parent_id"]);
    assert!(
        report.findings[0]
            .message
            .starts_with("1 row of `fx_children`")
    );
});

// ------------------------------------------------------------------ output formats

test_support::backend_test!(json_format, |t: TestDb| async move {
    let report = plant(
        &t,
        &["CREATE TABLE fx_items (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, PRIMARY KEY (id, tenant_id))"],
        &[],
    )
    .await;
    let json = report.to_json();
    let backend = match t.db_backend() {
        DbBackend::Postgres => "postgres",
        DbBackend::MySql => "mysql",
        _ => "sqlite",
    };
    let finding = &report.findings[0];
    assert_eq!(
        json,
        serde_json::json!({
            "version": 1,
            "backend": backend,
            "clean": false,
            "summary": {"errors": 1, "warnings": 0},
            "findings": [{
                "code": "pk-not-tenant-led",
                "severity": "error",
                "table": "fx_items",
                "columns": ["id", "tenant_id"],
                "message": finding.message,
                "fix": finding.fix,
            }],
        })
    );
    let text = report.to_text();
    assert!(
        text.starts_with("error[pk-not-tenant-led] fx_items (id, tenant_id): "),
        "{text}"
    );
    assert!(text.contains("\n  fix: "), "{text}");
    assert!(
        text.ends_with(&format!("1 error, 0 warnings ({backend})\n")),
        "{text}"
    );
});

test_support::backend_test!(output_is_deterministic, |t: TestDb| async move {
    let ddl = [
        "CREATE TABLE settings (id BIGINT NOT NULL PRIMARY KEY)",
        "CREATE TABLE fx_items (tenant_id TENANT_ID NOT NULL, id BIGINT NOT NULL, PRIMARY KEY (id, tenant_id))",
        USERS,
        "CREATE INDEX ix_fx_users_email ON fx_users (email)",
    ];
    let first = plant(&t, &ddl, &[]).await;
    let second = run(&t, &[]).await;
    assert_eq!(first, second);
    assert_eq!(
        first.codes(),
        [
            codes::PK_NOT_TENANT_LED,
            codes::INDEX_NOT_TENANT_LED,
            codes::TABLE_WITHOUT_TENANT_COLUMN
        ]
    );
});

#[tokio::test]
async fn unreachable_database_cannot_run() {
    let options = CheckOptions::new("postgres://nobody@127.0.0.1:1/none");
    assert!(matches!(check(&options).await, Err(CheckError::Connect(_))));
    let mut options = CheckOptions::new("sqlite::memory:");
    options.allow = vec!["rls-not-enabeld".into()];
    assert!(matches!(
        check(&options).await,
        Err(CheckError::UnknownAllowCode(code)) if code == "rls-not-enabeld"
    ));
    let options = CheckOptions::new("oracle://x");
    assert!(matches!(
        check(&options).await,
        Err(CheckError::UnsupportedBackend)
    ));
}
