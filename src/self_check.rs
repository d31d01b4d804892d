//! The PostgreSQL self-check that [`TenantDb`](crate::TenantDb) runs when it connects.
//!
//! Row level security is a wall only if nothing walks around it. Before serving, the library asks
//! the server about the role it is connected as and about every tenant-owned table (every table
//! with a `tenant_id` column, in every schema but the system ones), and refuses to serve
//! ([`Error::Config`], naming each problem) if it finds a [`Risk`]. A risk can be accepted
//! explicitly with [`TenantDbOptions::accept_risk`](crate::TenantDbOptions::accept_risk); accepted
//! risks that are present are logged at WARN.

use std::collections::BTreeSet;
use std::fmt;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement};

use crate::contract::{POLICY_NAME, TENANT_SETTING};
use crate::error::{Error, Result};

/// Something about the PostgreSQL role or schema that would let a query get past row level
/// security. [`TenantDb::connect`](crate::TenantDb::connect) refuses to serve when it finds one,
/// unless it was accepted with [`TenantDbOptions::accept_risk`](crate::TenantDbOptions::accept_risk).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Risk {
    /// The role is a superuser, or may `SET ROLE` to one: no policy applies to a superuser.
    ///
    /// It implies the role's other risks ([`BypassRls`](Risk::BypassRls),
    /// [`OwnsTenantTable`](Risk::OwnsTenantTable),
    /// [`DangerousPrivilege`](Risk::DangerousPrivilege)), which are then not reported
    /// separately: accepting it accepts them.
    Superuser,
    /// The role has `BYPASSRLS`, or may `SET ROLE` to a role that has it.
    BypassRls,
    /// The role owns a tenant-owned table, or is a member of the role that does: an owner can
    /// disable row level security or drop the policy.
    ///
    /// An owner holds every privilege on its table, so
    /// [`DangerousPrivilege`](Risk::DangerousPrivilege) is not reported separately for a table
    /// the role owns.
    OwnsTenantTable,
    /// A tenant-owned table does not have row level security enabled and forced with the
    /// `tenant_isolation` policy of `tenant_scope_schema::rls` ([`POLICY_PREDICATE`](crate::contract::POLICY_PREDICATE)), or has another permissive
    /// policy that applies to the role (permissive policies are ORed: one `USING (true)` opens
    /// every row).
    RlsNotEnforced,
    /// A view over tenant-owned tables runs with its owner's rights (no `security_invoker`), or a
    /// materialized view holds their rows: either reads every tenant's rows whatever the setting.
    ViewBypassesRls,
    /// The role holds `TRUNCATE`, `REFERENCES` (also on some columns only) or `TRIGGER` on a
    /// tenant-owned table. Row level
    /// security does not apply to `TRUNCATE` (it empties every tenant's rows); a foreign key or a
    /// trigger of the role's own can read rows the policy hides.
    DangerousPrivilege,
}

impl Risk {
    fn hint(self) -> &'static str {
        match self {
            Risk::Superuser | Risk::BypassRls | Risk::OwnsTenantTable => {
                "connect as the application role (docs/postgres.md), not as an owner or superuser"
            }
            Risk::RlsNotEnforced => "apply tenant_scope_schema::rls::enable_rls to the table",
            Risk::ViewBypassesRls => "recreate the view WITH (security_invoker = true)",
            Risk::DangerousPrivilege => "REVOKE the privilege from the application role",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Risk::Superuser => "superuser",
            Risk::BypassRls => "bypass-rls",
            Risk::OwnsTenantTable => "owns-tenant-table",
            Risk::RlsNotEnforced => "rls-not-enforced",
            Risk::ViewBypassesRls => "view-bypasses-rls",
            Risk::DangerousPrivilege => "dangerous-privilege",
        })
    }
}

/// One risk found, with what it was found on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) risk: Risk,
    pub(crate) message: String,
}

/// The `USING` and `WITH CHECK` expression of the policy as PostgreSQL prints it back
/// (`pg_get_expr`) for [`POLICY_PREDICATE`](crate::contract::POLICY_PREDICATE).
fn expected_policy_expr() -> String {
    format!(
        "(tenant_id = (NULLIF(current_setting('{TENANT_SETTING}'::text, true), ''::text))::uuid)"
    )
}

/// Tenant-owned tables: tables (plain or partitioned) with a live `tenant_id` column, outside the
/// system schemas. Used as a subquery of the others.
const TENANT_TABLES: &str = r"
    SELECT c.oid
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_%'
      AND EXISTS (
          SELECT 1 FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped
      )";

/// Runs every check on `conn` (connected as the application role) and returns what it found.
pub(crate) async fn run(conn: &DatabaseConnection) -> Result<Vec<Finding>> {
    let mut found = Vec::new();
    let superuser = role(conn, &mut found).await?;
    tables(conn, superuser, &mut found).await?;
    views(conn, &mut found).await?;
    Ok(found)
}

/// Runs the self-check and refuses to serve if it found a risk that was not accepted; accepted
/// risks that are present are logged at WARN.
pub(crate) async fn refuse_unless_accepted(
    conn: &DatabaseConnection,
    accepted: &BTreeSet<Risk>,
) -> Result<()> {
    let found = run(conn).await?;
    let (tolerated, refused): (Vec<_>, Vec<_>) =
        found.into_iter().partition(|f| accepted.contains(&f.risk));
    for finding in &tolerated {
        tracing::warn!(
            target: "tenant_scope::self_check",
            risk = %finding.risk,
            "accepted risk: {}",
            finding.message
        );
    }
    if refused.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "refusing to serve: the PostgreSQL self-check found {} risk(s) to tenant isolation:",
        refused.len()
    );
    for finding in &refused {
        message.push_str(&format!(
            "\n  - [{}] {} ({}; or accept it with TenantDbOptions::accept_risk(Risk::{:?}))",
            finding.risk,
            finding.message,
            finding.risk.hint(),
            finding.risk
        ));
    }
    Err(Error::Config(message))
}

/// The system connection's role must be able to cross tenants, or system access would silently
/// see and change nothing.
pub(crate) async fn system_role_crosses_tenants(conn: &DatabaseConnection) -> Result<()> {
    let row = query_one(
        conn,
        "SELECT current_user::text, rolsuper OR rolbypassrls \
         FROM pg_catalog.pg_roles WHERE rolname = current_user",
    )
    .await?;
    let (name, crosses): (String, bool) = (get(&row, 0)?, get(&row, 1)?);
    if crosses {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "the system connection's role \"{name}\" is subject to row level security, so system \
             access would see no tenant's rows; connect it as a role with BYPASSRLS \
             (docs/postgres.md)"
        )))
    }
}

/// Checks the role's attributes and memberships. Returns whether it is, or may become, a superuser:
/// then it is reported as [`Risk::Superuser`] only, since a superuser bypasses row level security,
/// ownership and privileges alike (and `pg_has_role`, `has_table_privilege` are true for it on
/// everything, which would report every table again).
async fn role(conn: &DatabaseConnection, found: &mut Vec<Finding>) -> Result<bool> {
    let row = query_one(
        conn,
        "SELECT r.rolname::text, r.rolsuper, r.rolbypassrls,
            (SELECT string_agg(o.rolname::text, ', ' ORDER BY o.rolname) FROM pg_catalog.pg_roles o
             WHERE o.rolsuper AND o.oid <> r.oid AND pg_has_role(r.oid, o.oid, 'MEMBER')),
            (SELECT string_agg(o.rolname::text, ', ' ORDER BY o.rolname) FROM pg_catalog.pg_roles o
             WHERE o.rolbypassrls AND o.oid <> r.oid AND pg_has_role(r.oid, o.oid, 'MEMBER'))
         FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
    )
    .await?;
    let name: String = get(&row, 0)?;
    let superuser: bool = get(&row, 1)?;
    let bypass: bool = get(&row, 2)?;
    let super_members: Option<String> = get(&row, 3)?;
    let bypass_members: Option<String> = get(&row, 4)?;
    if superuser {
        found.push(Finding {
            risk: Risk::Superuser,
            message: format!(
                "role \"{name}\" is a superuser: row level security, ownership and privileges \
                 do not apply to it"
            ),
        });
        return Ok(true);
    }
    if let Some(roles) = super_members {
        found.push(Finding {
            risk: Risk::Superuser,
            message: format!(
                "role \"{name}\" is a member of superuser role(s) {roles}, and may SET ROLE to them"
            ),
        });
        return Ok(true);
    }
    if bypass {
        found.push(Finding {
            risk: Risk::BypassRls,
            message: format!("role \"{name}\" has BYPASSRLS"),
        });
    } else if let Some(roles) = bypass_members {
        found.push(Finding {
            risk: Risk::BypassRls,
            message: format!(
                "role \"{name}\" is a member of BYPASSRLS role(s) {roles}, and may SET ROLE to them"
            ),
        });
    }
    Ok(false)
}

/// Checks every tenant-owned table: ownership, row level security and its policies, privileges.
/// For a `superuser` (see [`role`]) ownership and privileges are not reported again.
async fn tables(
    conn: &DatabaseConnection,
    superuser: bool,
    found: &mut Vec<Finding>,
) -> Result<()> {
    let sql = format!(
        "SELECT c.oid::regclass::text,
            pg_get_userbyid(c.relowner)::text,
            pg_has_role(current_user, c.relowner, 'MEMBER'),
            c.relrowsecurity,
            c.relforcerowsecurity,
            concat_ws(', ',
                CASE WHEN has_table_privilege(c.oid, 'TRUNCATE') THEN 'TRUNCATE' END,
                CASE WHEN has_any_column_privilege(c.oid, 'REFERENCES') THEN 'REFERENCES' END,
                CASE WHEN has_table_privilege(c.oid, 'TRIGGER') THEN 'TRIGGER' END),
            EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                    WHERE p.polrelid = c.oid AND p.polname = $1 AND p.polcmd = '*'
                      AND p.polpermissive AND p.polroles = '{{0}}'
                      AND pg_get_expr(p.polqual, p.polrelid) = $2
                      AND pg_get_expr(p.polwithcheck, p.polrelid) = $2),
            (SELECT string_agg(p.polname::text, ', ' ORDER BY p.polname) FROM pg_catalog.pg_policy p
             WHERE p.polrelid = c.oid AND p.polpermissive AND p.polname <> $1
               AND (p.polroles = '{{0}}' OR EXISTS (
                   SELECT 1 FROM unnest(p.polroles) AS r(oid)
                   WHERE pg_has_role(current_user, r.oid, 'MEMBER'))))
         FROM pg_catalog.pg_class c
         WHERE c.oid IN ({TENANT_TABLES})
         ORDER BY 1"
    );
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [POLICY_NAME.into(), expected_policy_expr().into()],
    );
    let rows = conn.query_all_raw(stmt).await.map_err(Error::from_db)?;
    for row in &rows {
        let table: String = get(row, 0)?;
        let owner: String = get(row, 1)?;
        let owns: bool = get(row, 2)?;
        let enabled: bool = get(row, 3)?;
        let forced: bool = get(row, 4)?;
        let privileges: String = get(row, 5)?;
        let policy: bool = get(row, 6)?;
        let extra: Option<String> = get(row, 7)?;
        let owns = owns && !superuser;
        if owns {
            found.push(Finding {
                risk: Risk::OwnsTenantTable,
                message: format!(
                    "tenant table {table} is owned by \"{owner}\", which is the role or one of \
                     its roles"
                ),
            });
        }
        let mut missing = Vec::new();
        if !enabled {
            missing.push("ENABLE ROW LEVEL SECURITY".to_owned());
        }
        if !forced {
            missing.push("FORCE ROW LEVEL SECURITY".to_owned());
        }
        if !policy {
            missing.push(format!("the policy \"{POLICY_NAME}\" (FOR ALL, TO PUBLIC, USING and WITH CHECK on {TENANT_SETTING})"));
        }
        if !missing.is_empty() {
            found.push(Finding {
                risk: Risk::RlsNotEnforced,
                message: format!("tenant table {table} lacks {}", missing.join(", ")),
            });
        }
        if let Some(extra) = extra {
            found.push(Finding {
                risk: Risk::RlsNotEnforced,
                message: format!(
                    "tenant table {table} has other permissive policies that apply to the role \
                     ({extra}); they are ORed with \"{POLICY_NAME}\""
                ),
            });
        }
        // An owner holds every privilege (reported as ownership); a superuser every privilege.
        if !privileges.is_empty() && !owns && !superuser {
            found.push(Finding {
                risk: Risk::DangerousPrivilege,
                message: format!("the role holds {privileges} on tenant table {table}"),
            });
        }
    }
    Ok(())
}

async fn views(conn: &DatabaseConnection, found: &mut Vec<Finding>) -> Result<()> {
    // Every relation whose rewrite rule (a view's query) reads a tenant table, or a view that does,
    // transitively; then the ones the role can use (also through a column privilege) that do not
    // run as the invoker. PostgreSQL stores the security_invoker option as written (`t`, `on`,
    // `1`, `yes`, ...), so its value is read with the boolean input function, which accepts all
    // of them.
    let sql = format!(
        "WITH RECURSIVE over_tenant(oid) AS (
             {TENANT_TABLES}
             UNION
             SELECT r.ev_class
             FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
             JOIN over_tenant t ON t.oid = d.refobjid
             WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass
               AND d.refclassid = 'pg_catalog.pg_class'::regclass
               AND r.ev_class <> d.refobjid
         )
         SELECT v.oid::regclass::text, v.relkind = 'm'
         FROM pg_catalog.pg_class v
         JOIN over_tenant t ON t.oid = v.oid
         WHERE v.relkind IN ('v', 'm')
           AND (has_any_column_privilege(v.oid, 'SELECT, INSERT, UPDATE')
                OR has_table_privilege(v.oid, 'DELETE'))
           AND (v.relkind = 'm' OR NOT EXISTS (
               SELECT 1 FROM unnest(v.reloptions) AS o(opt)
               WHERE CASE WHEN o.opt LIKE 'security\\_invoker=%'
                          THEN substr(o.opt, length('security_invoker=') + 1)::boolean
                          ELSE false END))
         ORDER BY 1"
    );
    let stmt = Statement::from_string(DbBackend::Postgres, sql);
    let rows = conn.query_all_raw(stmt).await.map_err(Error::from_db)?;
    for row in &rows {
        let view: String = get(row, 0)?;
        let materialized: bool = get(row, 1)?;
        let message = if materialized {
            format!(
                "materialized view {view} holds rows of tenant tables outside row level security"
            )
        } else {
            format!("view {view} reads tenant tables with its owner's rights (no security_invoker)")
        };
        found.push(Finding {
            risk: Risk::ViewBypassesRls,
            message,
        });
    }
    Ok(())
}

async fn query_one(conn: &DatabaseConnection, sql: &str) -> Result<QueryResult> {
    conn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .map_err(Error::from_db)?
        .ok_or_else(|| Error::Config("the PostgreSQL self-check read no row for the role".into()))
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, index: usize) -> Result<T> {
    row.try_get_by_index(index).map_err(Error::from_db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risks_have_stable_names() {
        let names: Vec<String> = [
            Risk::Superuser,
            Risk::BypassRls,
            Risk::OwnsTenantTable,
            Risk::RlsNotEnforced,
            Risk::ViewBypassesRls,
            Risk::DangerousPrivilege,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            names,
            [
                "superuser",
                "bypass-rls",
                "owns-tenant-table",
                "rls-not-enforced",
                "view-bypasses-rls",
                "dangerous-privilege"
            ]
        );
    }
}
