//! PostgreSQL-only findings: row level security, policies, the application role and views. sea-schema does not
//! model any of these, so they come from the catalog (`pg_class`, `pg_policy`, `pg_roles`, `pg_rewrite`).

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::DatabaseConnection;

use super::discover::{Model, rows};
use super::rules::is_tenant_owned;
use super::{CheckError, CheckOptions, Finding, Severity, codes};

pub(super) async fn findings(
    db: &DatabaseConnection,
    model: &Model,
    options: &CheckOptions,
) -> Result<Vec<Finding>, CheckError> {
    let mut out = Vec::new();
    let tenant_tables: BTreeSet<&str> = model
        .tables
        .values()
        .filter(|t| is_tenant_owned(t, options))
        .map(|t| t.name.as_str())
        .collect();

    rls(db, &tenant_tables, &mut out).await?;
    views(db, &tenant_tables, &mut out).await?;
    if let Some(role) = &options.app_role {
        app_role(db, role, &tenant_tables, &mut out).await?;
    }
    Ok(out)
}

async fn rls(
    db: &DatabaseConnection,
    tenant_tables: &BTreeSet<&str>,
    out: &mut Vec<Finding>,
) -> Result<(), CheckError> {
    let tables = rows(
        db,
        "SELECT c.relname::text, c.relrowsecurity::text, c.relforcerowsecurity::text, \
           (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1",
        vec![],
        4,
    )
    .await?;
    for row in &tables {
        let Some(table) = row[0].as_deref().filter(|t| tenant_tables.contains(t)) else {
            continue;
        };
        let yes = |i: usize| row[i].as_deref() == Some("true");
        if !yes(1) {
            out.push(Finding::new(
                codes::RLS_NOT_ENABLED,
                Severity::Error,
                Some(table),
                vec![],
                format!("row level security is not enabled on `{table}`: the database does not restrict its rows to the session's tenant"),
                format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"),
            ));
        }
        if !yes(2) {
            out.push(Finding::new(
                codes::RLS_NOT_FORCED,
                Severity::Error,
                Some(table),
                vec![],
                format!(
                    "row level security is not forced on `{table}`: its owner bypasses the policies"
                ),
                format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY"),
            ));
        }
        if row[3].as_deref() == Some("0") {
            out.push(Finding::new(
                codes::RLS_NO_POLICY,
                Severity::Error,
                Some(table),
                vec![],
                format!("`{table}` has no row level security policy (with RLS enabled it is unreadable, without it it is unprotected)"),
                format!(
                    "CREATE POLICY tenant_isolation ON {table} USING (tenant_id = NULLIF(current_setting('tenant_scope.tenant_id', true), '')::uuid) WITH CHECK (<same>)"
                ),
            ));
        }
    }

    // Policies that admit writes (ALL, INSERT, UPDATE) and have no WITH CHECK.
    let policies = rows(
        db,
        "SELECT c.relname::text, p.polname::text \
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND p.polcmd IN ('*', 'a', 'w') AND p.polwithcheck IS NULL \
         ORDER BY 1, 2",
        vec![],
        2,
    )
    .await?;
    for row in &policies {
        let (Some(table), Some(policy)) = (row[0].as_deref(), row[1].as_deref()) else {
            continue;
        };
        if !tenant_tables.contains(table) {
            continue;
        }
        out.push(Finding::new(
            codes::POLICY_WITHOUT_WITH_CHECK,
            Severity::Error,
            Some(table),
            vec![],
            format!("policy `{policy}` on `{table}` admits writes but has no WITH CHECK: what a session may write is not stated"),
            format!("ALTER POLICY {policy} ON {table} WITH CHECK (tenant_id = NULLIF(current_setting('tenant_scope.tenant_id', true), '')::uuid)"),
        ));
    }
    Ok(())
}

async fn views(
    db: &DatabaseConnection,
    tenant_tables: &BTreeSet<&str>,
    out: &mut Vec<Finding>,
) -> Result<(), CheckError> {
    // Every (view, its options, a relation it reads).
    let deps = rows(
        db,
        "SELECT DISTINCT v.relname::text, COALESCE(array_to_string(v.reloptions, ','), ''), t.relname::text \
         FROM pg_class v \
         JOIN pg_namespace n ON n.oid = v.relnamespace \
         JOIN pg_rewrite r ON r.ev_class = v.oid \
         JOIN pg_depend d ON d.objid = r.oid AND d.classid = 'pg_rewrite'::regclass \
              AND d.refclassid = 'pg_class'::regclass \
         JOIN pg_class t ON t.oid = d.refobjid \
         WHERE v.relkind = 'v' AND n.nspname = current_schema() AND t.oid <> v.oid \
         ORDER BY 1, 3",
        vec![],
        3,
    )
    .await?;
    // A view reads tenant data if it reads a tenant-owned table or (transitively) such a view: a view over a
    // view runs the inner one with the outer one's owner rights too.
    let mut over: BTreeMap<&str, (&str, BTreeSet<&str>)> = BTreeMap::new();
    loop {
        let mut grew = false;
        for row in &deps {
            let (Some(view), Some(opts), Some(table)) =
                (row[0].as_deref(), row[1].as_deref(), row[2].as_deref())
            else {
                continue;
            };
            if tenant_tables.contains(table) || over.contains_key(table) {
                grew |= over
                    .entry(view)
                    .or_insert((opts, BTreeSet::new()))
                    .1
                    .insert(table);
            }
        }
        if !grew {
            break;
        }
    }
    for (view, (opts, tables)) in over {
        let invoker = opts.split(',').any(|o| {
            let o = o.to_ascii_lowercase();
            [
                "security_invoker=true",
                "security_invoker=on",
                "security_invoker=1",
                "security_invoker=yes",
            ]
            .contains(&o.as_str())
        });
        if !invoker {
            out.push(Finding::new(
                codes::VIEW_WITHOUT_SECURITY_INVOKER,
                Severity::Error,
                Some(view),
                vec![],
                format!(
                    "view `{view}` reads tenant-owned data ({}) with its owner's rights: row level security is checked for the owner, not the caller",
                    tables.into_iter().collect::<Vec<_>>().join(", ")
                ),
                format!("ALTER VIEW {view} SET (security_invoker = true) (PostgreSQL 15+)"),
            ));
        }
    }
    Ok(())
}

async fn app_role(
    db: &DatabaseConnection,
    role: &str,
    tenant_tables: &BTreeSet<&str>,
    out: &mut Vec<Finding>,
) -> Result<(), CheckError> {
    let attrs = rows(
        db,
        "SELECT rolsuper::text, rolbypassrls::text FROM pg_roles WHERE rolname = $1",
        vec![role.into()],
        2,
    )
    .await?;
    let Some(attrs) = attrs.first() else {
        return Err(CheckError::UnknownAppRole(role.to_owned()));
    };
    let superuser = attrs[0].as_deref() == Some("true");
    let bypass = attrs[1].as_deref() == Some("true");
    if superuser || bypass {
        let what = if superuser {
            "a superuser"
        } else {
            "BYPASSRLS"
        };
        out.push(Finding::new(
            codes::APP_ROLE_BYPASSES_RLS,
            Severity::Error,
            None,
            vec![],
            format!("the app role `{role}` is {what}: row level security does not apply to it"),
            format!("ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS"),
        ));
    }
    if superuser {
        // A superuser is a member of every role: the finding above says it all.
        return Ok(());
    }
    let owned = rows(
        db,
        "SELECT c.relname::text, pg_get_userbyid(c.relowner)::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm') \
           AND pg_has_role($1::name, c.relowner, 'MEMBER') \
         ORDER BY 1",
        vec![role.into()],
        2,
    )
    .await?;
    for row in &owned {
        let (Some(table), Some(owner)) = (row[0].as_deref(), row[1].as_deref()) else {
            continue;
        };
        let how = if owner == role {
            format!("owns `{table}`")
        } else {
            format!("is a member of `{owner}`, which owns `{table}`")
        };
        out.push(Finding::new(
            codes::APP_ROLE_OWNS_TABLE,
            Severity::Error,
            Some(table),
            vec![],
            format!("the app role `{role}` {how}: an owner can disable row level security and alter the table"),
            "make a separate owner role own the schema (ALTER TABLE .. OWNER TO owner) and grant the app role only DML".to_owned(),
        ));
    }
    // Privileges that row level security does not govern, on tenant-owned tables the role does not own.
    let privileges = rows(
        db,
        "SELECT c.relname::text, concat_ws(', ', \
           CASE WHEN has_table_privilege($1::name, c.oid, 'TRUNCATE') THEN 'TRUNCATE' END, \
           CASE WHEN has_table_privilege($1::name, c.oid, 'REFERENCES') THEN 'REFERENCES' END, \
           CASE WHEN has_table_privilege($1::name, c.oid, 'TRIGGER') THEN 'TRIGGER' END) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
           AND NOT pg_has_role($1::name, c.relowner, 'MEMBER') \
         ORDER BY 1",
        vec![role.into()],
        2,
    )
    .await?;
    for row in &privileges {
        let (Some(table), Some(granted)) = (row[0].as_deref(), row[1].as_deref()) else {
            continue;
        };
        if granted.is_empty() || !tenant_tables.contains(table) {
            continue;
        }
        out.push(Finding::new(
            codes::APP_ROLE_DANGEROUS_PRIVILEGE,
            Severity::Error,
            Some(table),
            vec![],
            format!("the app role `{role}` has {granted} on `{table}`: TRUNCATE empties every tenant's rows (RLS does not apply to it), REFERENCES and TRIGGER reach rows the policies hide"),
            format!("REVOKE TRUNCATE, REFERENCES, TRIGGER ON {table} FROM {role}"),
        ));
    }
    Ok(())
}
