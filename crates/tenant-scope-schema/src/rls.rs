//! PostgreSQL row level security on tenant-owned tables, and the grants of the application role.
//!
//! Row level security is the second wall under the library's scoped queries: if a bug ever builds
//! a query that escapes them, PostgreSQL itself still refuses to show or change another tenant's
//! rows. Every tenant-owned table gets:
//!
//! - `ENABLE ROW LEVEL SECURITY`, so the policies apply;
//! - `FORCE ROW LEVEL SECURITY`, so they apply to the table's owner too (a service or a job
//!   connected as the owner is not silently unrestricted);
//! - one policy, [`POLICY_NAME`], for every command, with `USING` (which rows a statement sees)
//!   and `WITH CHECK` (which rows it may write) both [`POLICY_PREDICATE`]:
//!   `tenant_id = NULLIF(current_setting('tenant_scope.tenant_id', true), '')::uuid`.
//!
//! The setting is read with `missing_ok = true`: it is `NULL` on a connection that never set it and
//! `''` on one that set it in an earlier, finished transaction; the `NULLIF` turns both into
//! `NULL`, and `tenant_id = NULL` matches no row, so a connection without a tenant sees nothing and
//! writes nothing (fail closed). A malformed value raises `invalid input syntax for type uuid`: an
//! error, never a match. The library sets the value per transaction with
//! `SET LOCAL tenant_scope.tenant_id = ..` (the command form of
//! `set_config('tenant_scope.tenant_id', .., true)`), so it never outlives the transaction.
//!
//! Superusers and roles with `BYPASSRLS` are not subject to any policy. The service therefore
//! connects as an application role ([`DEFAULT_APP_ROLE`]) that owns nothing, is not a superuser and
//! has no `BYPASSRLS`; [`grant_app_role`] gives it exactly what it needs: `SELECT, INSERT, UPDATE,
//! DELETE` on the tenant-owned tables, `SELECT` on the global tables and `USAGE` on the schema. Never
//! `TRUNCATE` (row level security does not apply to it: it empties every tenant's rows),
//! `REFERENCES` or `TRIGGER` (both reach rows the policies hide). Migrations run as the owner.
//!
//! **Only PostgreSQL has row level security.** On SQLite and MySQL/MariaDB the async helpers here
//! ([`enable_rls`], [`drop_rls`], [`grant_app_role`], [`revoke_app_role`]) do nothing and return
//! `Ok(())`; there the composite keys of [`TenantTable`](crate::TenantTable) and the library's scoped
//! queries are the walls. The statement builders always return PostgreSQL SQL.
//!
//! # In a migration
//!
//! ```no_run
//! use sea_orm_migration::prelude::*;
//! use tenant_scope_schema::rls;
//!
//! const TENANT_TABLES: &[&str] = &["projects", "tasks"];
//!
//! # #[derive(DeriveMigrationName)]
//! # struct Migration;
//! #[async_trait::async_trait]
//! impl MigrationTrait for Migration {
//!     async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
//!         rls::enable_rls(manager, TENANT_TABLES).await?;
//!         rls::grant_app_role(manager, rls::DEFAULT_APP_ROLE, TENANT_TABLES, &["tenants"]).await
//!     }
//!
//!     async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
//!         rls::revoke_app_role(manager, rls::DEFAULT_APP_ROLE, TENANT_TABLES, &["tenants"]).await?;
//!         rls::drop_rls(manager, TENANT_TABLES).await
//!     }
//! }
//! ```

use sea_orm::{ConnectionTrait, DbBackend, DbErr};
use sea_orm_migration::SchemaManager;

/// The application role of the reference setup: `LOGIN`, not a superuser, no `BYPASSRLS`, owns
/// nothing (`.ci/postgres-setup.sql` creates it).
pub const DEFAULT_APP_ROLE: &str = "tenant_scope_app";

/// The policy's name, the setting it reads and its expression, as the runtime and the self-check
/// know them (`tenant_scope::contract`).
///
/// ```
/// assert_eq!(
///     tenant_scope_schema::rls::POLICY_PREDICATE,
///     "tenant_id = NULLIF(current_setting('tenant_scope.tenant_id', true), '')::uuid"
/// );
/// ```
pub use tenant_scope::contract::{POLICY_NAME, POLICY_PREDICATE, TENANT_SETTING};

/// The statements that enable and force row level security on a tenant-owned table and create its
/// policy (PostgreSQL SQL; the table name is quoted).
///
/// ```
/// use tenant_scope_schema::rls::enable_rls_statements;
///
/// assert_eq!(
///     enable_rls_statements("tasks"),
///     [
///         r#"ALTER TABLE "tasks" ENABLE ROW LEVEL SECURITY"#,
///         r#"ALTER TABLE "tasks" FORCE ROW LEVEL SECURITY"#,
///         concat!(
///             r#"CREATE POLICY "tenant_isolation" ON "tasks" "#,
///             "USING (tenant_id = NULLIF(current_setting('tenant_scope.tenant_id', true), '')::uuid) ",
///             "WITH CHECK (tenant_id = NULLIF(current_setting('tenant_scope.tenant_id', true), '')::uuid)",
///         ),
///     ]
/// );
/// ```
pub fn enable_rls_statements(table: &str) -> Vec<String> {
    let table = quote_ident(table);
    vec![
        format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"),
        format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY"),
        format!(
            "CREATE POLICY {} ON {table} USING ({POLICY_PREDICATE}) WITH CHECK ({POLICY_PREDICATE})",
            quote_ident(POLICY_NAME)
        ),
    ]
}

/// The statements that undo [`enable_rls_statements`], for a migration's `down`: drop the policy,
/// then stop forcing and disable row level security.
///
/// ```
/// use tenant_scope_schema::rls::drop_rls_statements;
///
/// assert_eq!(
///     drop_rls_statements("tasks"),
///     [
///         r#"DROP POLICY IF EXISTS "tenant_isolation" ON "tasks""#,
///         r#"ALTER TABLE "tasks" NO FORCE ROW LEVEL SECURITY"#,
///         r#"ALTER TABLE "tasks" DISABLE ROW LEVEL SECURITY"#,
///     ]
/// );
/// ```
pub fn drop_rls_statements(table: &str) -> Vec<String> {
    let table = quote_ident(table);
    vec![
        format!(
            "DROP POLICY IF EXISTS {} ON {table}",
            quote_ident(POLICY_NAME)
        ),
        format!("ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"),
        format!("ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"),
    ]
}

/// Runs [`enable_rls_statements`] for each table on PostgreSQL; does nothing on SQLite and
/// MySQL/MariaDB, which have no row level security.
pub async fn enable_rls(manager: &SchemaManager<'_>, tables: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for table in tables {
        execute_all(manager, enable_rls_statements(table)).await?;
    }
    Ok(())
}

/// Runs [`drop_rls_statements`] for each table on PostgreSQL; does nothing on SQLite and
/// MySQL/MariaDB, which have no row level security.
pub async fn drop_rls(manager: &SchemaManager<'_>, tables: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for table in tables {
        execute_all(manager, drop_rls_statements(table)).await?;
    }
    Ok(())
}

/// One PostgreSQL statement that, **if the role exists**, grants it `USAGE` on the current schema,
/// `SELECT, INSERT, UPDATE, DELETE` on `tenant_tables` and `SELECT` on `global_tables`; nothing
/// else (no `TRUNCATE`, `REFERENCES` or `TRIGGER`). If the role does not exist it does nothing, so
/// the same migration runs on a database without it.
///
/// The role and table names must be plain identifiers (ASCII letters, digits and `_`, not starting
/// with a digit, at most 63 bytes); anything else is a [`DbErr::Migration`], so no name can break
/// out of the statement.
///
/// ```
/// use tenant_scope_schema::rls::{DEFAULT_APP_ROLE, grant_app_role_statement};
///
/// assert_eq!(
///     grant_app_role_statement(DEFAULT_APP_ROLE, &["projects", "tasks"], &["tenants"])?,
///     [
///         "DO $tenant_scope$ BEGIN",
///         "IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'tenant_scope_app') THEN",
///         r#"EXECUTE format('GRANT USAGE ON SCHEMA %I TO "tenant_scope_app"', current_schema());"#,
///         r#"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "projects", "tasks" TO "tenant_scope_app";"#,
///         r#"GRANT SELECT ON TABLE "tenants" TO "tenant_scope_app";"#,
///         "END IF; END $tenant_scope$",
///     ]
///     .join("\n")
/// );
/// assert!(grant_app_role_statement("app'; DROP TABLE tasks; --", &["tasks"], &[]).is_err());
/// # Ok::<(), sea_orm::DbErr>(())
/// ```
pub fn grant_app_role_statement(
    role: &str,
    tenant_tables: &[&str],
    global_tables: &[&str],
) -> Result<String, DbErr> {
    role_statement(role, tenant_tables, global_tables, Direction::Grant)
}

/// The statement that undoes [`grant_app_role_statement`], for a migration's `down`: if the role
/// exists, revokes exactly the privileges that statement grants.
///
/// ```
/// use tenant_scope_schema::rls::{DEFAULT_APP_ROLE, revoke_app_role_statement};
///
/// assert_eq!(
///     revoke_app_role_statement(DEFAULT_APP_ROLE, &["tasks"], &["tenants"])?,
///     [
///         "DO $tenant_scope$ BEGIN",
///         "IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'tenant_scope_app') THEN",
///         r#"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLE "tasks" FROM "tenant_scope_app";"#,
///         r#"REVOKE SELECT ON TABLE "tenants" FROM "tenant_scope_app";"#,
///         r#"EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM "tenant_scope_app"', current_schema());"#,
///         "END IF; END $tenant_scope$",
///     ]
///     .join("\n")
/// );
/// # Ok::<(), sea_orm::DbErr>(())
/// ```
pub fn revoke_app_role_statement(
    role: &str,
    tenant_tables: &[&str],
    global_tables: &[&str],
) -> Result<String, DbErr> {
    role_statement(role, tenant_tables, global_tables, Direction::Revoke)
}

/// Runs [`grant_app_role_statement`] on PostgreSQL (a no-op there if the role does not exist);
/// does nothing on SQLite and MySQL/MariaDB, which have no row level security.
pub async fn grant_app_role(
    manager: &SchemaManager<'_>,
    role: &str,
    tenant_tables: &[&str],
    global_tables: &[&str],
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let sql = grant_app_role_statement(role, tenant_tables, global_tables)?;
    execute_all(manager, [sql]).await
}

/// Runs [`revoke_app_role_statement`] on PostgreSQL (a no-op there if the role does not exist);
/// does nothing on SQLite and MySQL/MariaDB, which have no row level security.
pub async fn revoke_app_role(
    manager: &SchemaManager<'_>,
    role: &str,
    tenant_tables: &[&str],
    global_tables: &[&str],
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let sql = revoke_app_role_statement(role, tenant_tables, global_tables)?;
    execute_all(manager, [sql]).await
}

/// The statement that makes `tables` append-only for `role` on PostgreSQL: if the role exists,
/// `REVOKE UPDATE, DELETE` (it keeps `SELECT` and `INSERT`). For the audit log: the library only
/// inserts into it, so the application role has no business changing or deleting an event, and a
/// bug or an injected statement then cannot either. `undo` gives the `GRANT` back, for `down`.
///
/// ```
/// use tenant_scope_schema::rls::{DEFAULT_APP_ROLE, append_only_statement};
///
/// assert_eq!(
///     append_only_statement(DEFAULT_APP_ROLE, &["audit_events"], false)?,
///     [
///         "DO $tenant_scope$ BEGIN",
///         "IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'tenant_scope_app') THEN",
///         r#"REVOKE UPDATE, DELETE ON TABLE "audit_events" FROM "tenant_scope_app";"#,
///         "END IF; END $tenant_scope$",
///     ]
///     .join("\n")
/// );
/// # Ok::<(), sea_orm::DbErr>(())
/// ```
pub fn append_only_statement(role: &str, tables: &[&str], undo: bool) -> Result<String, DbErr> {
    check_identifier("role", role)?;
    for table in tables {
        check_identifier("table", table)?;
    }
    let list = tables
        .iter()
        .map(|t| quote_ident(t))
        .collect::<Vec<_>>()
        .join(", ");
    let quoted_role = quote_ident(role);
    let change = if undo {
        format!("GRANT UPDATE, DELETE ON TABLE {list} TO {quoted_role};")
    } else {
        format!("REVOKE UPDATE, DELETE ON TABLE {list} FROM {quoted_role};")
    };
    Ok([
        "DO $tenant_scope$ BEGIN".to_owned(),
        format!("IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN"),
        change,
        "END IF; END $tenant_scope$".to_owned(),
    ]
    .join("\n"))
}

/// Runs [`append_only_statement`] on PostgreSQL; does nothing on SQLite and MySQL/MariaDB.
pub async fn append_only(
    manager: &SchemaManager<'_>,
    role: &str,
    tables: &[&str],
    undo: bool,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let sql = append_only_statement(role, tables, undo)?;
    execute_all(manager, [sql]).await
}

/// What a PostgreSQL role made by [`create_role_statement`] is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoleKind {
    /// The application role `TenantDb` connects as:
    /// `LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION`, so every row level
    /// security policy applies to it.
    App,
    /// The system role of `db.system(reason)` (`TenantDbOptions::system`):
    /// `LOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION`, so it can cross tenants
    /// and nothing more.
    System,
}

impl RoleKind {
    /// The role's attributes, as `CREATE ROLE` takes them.
    pub fn attributes(self) -> &'static str {
        match self {
            RoleKind::App => "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION",
            RoleKind::System => "LOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION",
        }
    }

    /// The `pg_roles` condition under which an existing role of that name has the wrong attributes.
    fn wrong(self) -> &'static str {
        match self {
            RoleKind::App => {
                "rolsuper OR rolbypassrls OR rolcreatedb OR rolcreaterole OR rolreplication OR NOT rolcanlogin"
            }
            RoleKind::System => {
                "rolsuper OR NOT rolbypassrls OR rolcreatedb OR rolcreaterole OR rolreplication OR NOT rolcanlogin"
            }
        }
    }
}

/// One PostgreSQL statement that creates the role `role` with the attributes of `kind`
/// ([`RoleKind::attributes`]) **if it does not exist**, and raises an error (changing nothing) if a
/// role of that name exists with other attributes: an existing role is never quietly repaired, and
/// never accepted as it is when it could bypass row level security. Running it again is a no-op.
/// It sets no password: use your authentication of choice (`ALTER ROLE .. PASSWORD`, `pg_hba.conf`).
///
/// ```
/// use tenant_scope_schema::rls::{RoleKind, create_role_statement};
///
/// let sql = create_role_statement("tenant_scope_app", RoleKind::App)?;
/// assert!(sql.contains(
///     r#"CREATE ROLE "tenant_scope_app" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;"#
/// ));
/// assert!(create_role_statement("app; DROP ROLE postgres", RoleKind::App).is_err());
/// # Ok::<(), sea_orm::DbErr>(())
/// ```
pub fn create_role_statement(role: &str, kind: RoleKind) -> Result<String, DbErr> {
    check_identifier("role", role)?;
    let quoted = quote_ident(role);
    let attributes = kind.attributes();
    Ok([
        "DO $tenant_scope$ BEGIN".to_owned(),
        format!("IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN"),
        format!("BEGIN CREATE ROLE {quoted} {attributes};"),
        "EXCEPTION WHEN duplicate_object THEN NULL; END;".to_owned(),
        "END IF;".to_owned(),
        format!(
            "IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}' AND ({})) THEN",
            kind.wrong()
        ),
        format!(
            "RAISE EXCEPTION 'role {role} exists with the wrong attributes; it must be {attributes} \
             (fix it with ALTER ROLE, or drop it)';"
        ),
        "END IF; END $tenant_scope$".to_owned(),
    ]
    .join("\n"))
}

/// One PostgreSQL statement that, **if the role exists**, grants the system role `role` `USAGE` on
/// the current schema and `SELECT, INSERT, UPDATE, DELETE` on every table in it that exists now
/// (`system_audit_events` included, which `db.system(reason)` inserts into before it hands out
/// access). Narrow it by hand if your jobs need less; tables created later need their grant too
/// (run it again, or `ALTER DEFAULT PRIVILEGES`).
///
/// ```
/// use tenant_scope_schema::rls::grant_system_role_statement;
///
/// assert_eq!(
///     grant_system_role_statement("tenant_scope_system")?,
///     [
///         "DO $tenant_scope$ BEGIN",
///         "IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'tenant_scope_system') THEN",
///         r#"EXECUTE format('GRANT USAGE ON SCHEMA %I TO "tenant_scope_system"', current_schema());"#,
///         concat!(
///             r#"EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I "#,
///             r#"TO "tenant_scope_system"', current_schema());"#
///         ),
///         "END IF; END $tenant_scope$",
///     ]
///     .join("\n")
/// );
/// # Ok::<(), sea_orm::DbErr>(())
/// ```
pub fn grant_system_role_statement(role: &str) -> Result<String, DbErr> {
    check_identifier("role", role)?;
    let quoted = quote_ident(role);
    Ok([
        "DO $tenant_scope$ BEGIN".to_owned(),
        format!("IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN"),
        format!("EXECUTE format('GRANT USAGE ON SCHEMA %I TO {quoted}', current_schema());"),
        format!(
            "EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I \
             TO {quoted}', current_schema());"
        ),
        "END IF; END $tenant_scope$".to_owned(),
    ]
    .join("\n"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Grant,
    Revoke,
}

fn role_statement(
    role: &str,
    tenant_tables: &[&str],
    global_tables: &[&str],
    direction: Direction,
) -> Result<String, DbErr> {
    check_identifier("role", role)?;
    for table in tenant_tables.iter().chain(global_tables) {
        check_identifier("table", table)?;
    }
    let quoted_role = quote_ident(role);
    let (verb, to) = match direction {
        Direction::Grant => ("GRANT", "TO"),
        Direction::Revoke => ("REVOKE", "FROM"),
    };
    let list = |tables: &[&str]| {
        tables
            .iter()
            .map(|t| quote_ident(t))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let schema = format!(
        "EXECUTE format('{verb} USAGE ON SCHEMA %I {to} {quoted_role}', current_schema());"
    );
    let mut tables = Vec::new();
    if !tenant_tables.is_empty() {
        tables.push(format!(
            "{verb} SELECT, INSERT, UPDATE, DELETE ON TABLE {} {to} {quoted_role};",
            list(tenant_tables)
        ));
    }
    if !global_tables.is_empty() {
        tables.push(format!(
            "{verb} SELECT ON TABLE {} {to} {quoted_role};",
            list(global_tables)
        ));
    }
    let mut lines = vec![
        "DO $tenant_scope$ BEGIN".to_owned(),
        format!("IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN"),
    ];
    // Grant the schema first and revoke it last, mirroring each other.
    if direction == Direction::Grant {
        lines.push(schema);
        lines.extend(tables);
    } else {
        lines.extend(tables);
        lines.push(schema);
    }
    lines.push("END IF; END $tenant_scope$".to_owned());
    Ok(lines.join("\n"))
}

/// A plain PostgreSQL identifier: ASCII letters, digits and `_`, not starting with a digit, at most
/// 63 bytes (longer names are truncated by PostgreSQL).
fn check_identifier(what: &str, name: &str) -> Result<(), DbErr> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(DbErr::Migration(format!(
            "{what} name {name:?} is not a plain identifier (ASCII letters, digits and `_`, not \
             starting with a digit, at most 63 bytes)"
        )))
    }
}

/// `"name"`, with embedded double quotes doubled.
fn quote_ident(name: &str) -> String {
    tenant_scope_catalog::quote_ident(DbBackend::Postgres, name)
}

async fn execute_all(
    manager: &SchemaManager<'_>,
    statements: impl IntoIterator<Item = String>,
) -> Result<(), DbErr> {
    let conn = manager.get_connection();
    for sql in statements {
        conn.execute_unprepared(&sql).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_validated() {
        for bad in [
            "",
            "1app",
            "app role",
            "app\"",
            "app'",
            "app$",
            &"a".repeat(64),
        ] {
            assert!(check_identifier("role", bad).is_err(), "{bad:?}");
            assert!(grant_app_role_statement(bad, &[], &[]).is_err(), "{bad:?}");
            assert!(
                grant_app_role_statement("app", &[bad], &[]).is_err(),
                "{bad:?}"
            );
            assert!(
                revoke_app_role_statement("app", &[], &[bad]).is_err(),
                "{bad:?}"
            );
        }
        for good in ["tenant_scope_app", "_x", "App1", &"a".repeat(63)] {
            assert!(check_identifier("role", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn table_names_are_quoted() {
        assert_eq!(
            enable_rls_statements(r#"we"ird"#)[0],
            r#"ALTER TABLE "we""ird" ENABLE ROW LEVEL SECURITY"#
        );
    }

    #[test]
    fn grant_gives_no_dangerous_privilege() {
        let sql = grant_app_role_statement(DEFAULT_APP_ROLE, &["a"], &["b"]).expect("valid");
        for word in ["TRUNCATE", "REFERENCES", "TRIGGER", "ALL"] {
            assert!(!sql.contains(word), "{word} in {sql}");
        }
    }
}
