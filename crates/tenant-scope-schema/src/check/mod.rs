//! `tenant-scope check`: a schema lint and a data integrity scan of a live database.
//!
//! [`check()`] connects to a database (SQLite, PostgreSQL or MySQL/MariaDB), reads its schema as the one
//! catalog of tenant-scope (`tenant_scope_catalog::Catalog`, the same model `generate`, the adopt steps and
//! the connect-time self-check read), and reports every place where the database does not keep its side of
//! the isolation bargain, as a [`Report`] of [`Finding`]s. On PostgreSQL its row level security findings are
//! those of the rule set the self-check applies (`tenant_scope_catalog::postgres`), judged for `--app-role`:
//! whatever `TenantDb::connect` would refuse as that role, this reports. Each finding has a stable code (see [`codes`] and docs/check.md), the table and columns it
//! is about, a message and a one-line fix. Messages never contain row data: a data finding says which table
//! and column and how many rows, nothing else.
//!
//! ```no_run
//! use tenant_scope_schema::check::{CheckOptions, check};
//!
//! # async fn run() -> Result<(), tenant_scope_schema::check::CheckError> {
//! let mut options = CheckOptions::new("postgres://owner@db/app");
//! options.global.push("permissions".into());
//! options.app_role = Some("app".into());
//! let report = check(&options).await?;
//! print!("{}", report.to_text());
//! std::process::exit(report.exit_code());
//! # }
//! ```
//!
//! # Tenant-owned, global, ignored
//! The catalog's classification (`tenant_scope_catalog::Tenancy`), shared with `generate`:
//! - a table with a `tenant_id` column is tenant-owned and linted (declaring it global is a [`CheckError`]);
//! - `tenants` is always global; [`CheckOptions::global`] names the other global tables (none by default; one
//!   that is not in the schema is a [`CheckError`]);
//! - the library's `system_audit_events` is neither, and is not linted;
//! - `seaql_migrations` (sea-orm-migration's bookkeeping) and SQLite's internal `sqlite_*` tables are ignored;
//! - any other table is the finding [`codes::TABLE_WITHOUT_TENANT_COLUMN`].
//!
//! # Exit codes (for the binary)
//! [`Report::exit_code`]: `0` when there is no finding of severity [`Severity::Error`] (warnings are printed
//! but do not fail a deploy), `1` when there is at least one error. A [`CheckError`] (could not connect, could
//! not read the catalog, unknown `--app-role`) is exit code `2`: [`EXIT_COULD_NOT_RUN`].
//!
//! The data scan reads every tenant-owned table: run it as the schema owner (or a role with `BYPASSRLS`), not as
//! the application role, or row level security hides the rows it is meant to count.
//!
//! ---
//!
#![doc = include_str!("../../../../docs/check.md")]

mod data;
mod rules;

use std::fmt::Write as _;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, TransactionTrait};
use tenant_scope_catalog::postgres::{self, Role};
use tenant_scope_catalog::{Backend, Catalog, CatalogError, TenancyError};

/// The version of the JSON format of [`Report::to_json`]. It changes only when a field is removed or changes
/// meaning; new fields may be added within a version.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// Exit code of `tenant-scope check` when it could not run (a [`CheckError`]).
pub const EXIT_COULD_NOT_RUN: i32 = 2;

/// The table that every `tenant_id` references; always global.
pub const TENANTS_TABLE: &str = crate::TENANTS_TABLE;

/// Tables that are neither tenant-owned nor global and are never linted: sea-orm-migration's bookkeeping.
pub const IGNORED_TABLES: &[&str] = &[tenant_scope::contract::MIGRATIONS_TABLE];

/// The stable finding codes. Each one is documented in docs/check.md with why it matters and its fix.
pub mod codes {
    /// A table that has no `tenant_id` column and is not declared global.
    pub const TABLE_WITHOUT_TENANT_COLUMN: &str = "table-without-tenant-column";
    /// `tenant_id` is nullable.
    pub const TENANT_COLUMN_NULLABLE: &str = "tenant-column-nullable";
    /// The primary key is missing or does not start with `tenant_id`.
    pub const PK_NOT_TENANT_LED: &str = "pk-not-tenant-led";
    /// A foreign key between tenant-owned tables that does not map `tenant_id` to the parent's `tenant_id`.
    pub const FK_NOT_TENANT_COMPOSITE: &str = "fk-not-tenant-composite";
    /// A foreign key over `tenant_id` with `ON DELETE SET NULL` / `SET DEFAULT` that would change `tenant_id`.
    pub const FK_SET_NULL_TENANT: &str = "fk-set-null-tenant";
    /// A foreign key over `tenant_id` whose `ON UPDATE` action would rewrite `tenant_id` (CASCADE, SET NULL, SET
    /// DEFAULT).
    pub const FK_UPDATE_CHANGES_TENANT: &str = "fk-update-changes-tenant";
    /// A UNIQUE constraint or unique index on a tenant-owned table that does not include `tenant_id`.
    pub const UNIQUE_WITHOUT_TENANT: &str = "unique-without-tenant";
    /// An index on a tenant-owned table that does not lead with `tenant_id` (warning).
    pub const INDEX_NOT_TENANT_LED: &str = "index-not-tenant-led";
    /// PostgreSQL: row level security is not enabled on a tenant-owned table.
    pub const RLS_NOT_ENABLED: &str = "rls-not-enabled";
    /// PostgreSQL: row level security is not forced (the owner bypasses it).
    pub const RLS_NOT_FORCED: &str = "rls-not-forced";
    /// PostgreSQL: a tenant-owned table has no policy.
    pub const RLS_NO_POLICY: &str = "rls-no-policy";
    /// PostgreSQL: a tenant-owned table has other permissive policies than `tenant_isolation` (they are
    /// ORed with it).
    pub const RLS_PERMISSIVE_POLICY: &str = "rls-permissive-policy";
    /// PostgreSQL: a policy that admits writes has no `WITH CHECK`.
    pub const POLICY_WITHOUT_WITH_CHECK: &str = "policy-without-with-check";
    /// PostgreSQL: the application role owns (or is a member of the owner of) a table.
    pub const APP_ROLE_OWNS_TABLE: &str = "app-role-owns-table";
    /// PostgreSQL: the application role has `TRUNCATE`, `REFERENCES` or `TRIGGER` on a tenant-owned table.
    pub const APP_ROLE_DANGEROUS_PRIVILEGE: &str = "app-role-dangerous-privilege";
    /// PostgreSQL: the application role is a superuser or has `BYPASSRLS`.
    pub const APP_ROLE_BYPASSES_RLS: &str = "app-role-bypasses-rls";
    /// PostgreSQL: a view over tenant-owned tables without `security_invoker`.
    pub const VIEW_WITHOUT_SECURITY_INVOKER: &str = "view-without-security-invoker";
    /// PostgreSQL: a materialized view over tenant-owned tables.
    pub const MATERIALIZED_VIEW_OVER_TENANT_DATA: &str = "materialized-view-over-tenant-data";
    /// Data: rows whose `tenant_id` is NULL.
    pub const NULL_TENANT_ROWS: &str = "null-tenant-rows";
    /// Data: child rows that reference a parent row of another tenant.
    pub const CROSS_TENANT_REFERENCE: &str = "cross-tenant-reference";
    /// Data: child rows whose parent row does not exist.
    pub const ORPHANED_ROWS: &str = "orphaned-rows";

    /// Every code, in documentation order.
    pub const ALL: &[&str] = &[
        TABLE_WITHOUT_TENANT_COLUMN,
        TENANT_COLUMN_NULLABLE,
        PK_NOT_TENANT_LED,
        FK_NOT_TENANT_COMPOSITE,
        FK_SET_NULL_TENANT,
        FK_UPDATE_CHANGES_TENANT,
        UNIQUE_WITHOUT_TENANT,
        INDEX_NOT_TENANT_LED,
        RLS_NOT_ENABLED,
        RLS_NOT_FORCED,
        RLS_NO_POLICY,
        RLS_PERMISSIVE_POLICY,
        POLICY_WITHOUT_WITH_CHECK,
        APP_ROLE_OWNS_TABLE,
        APP_ROLE_DANGEROUS_PRIVILEGE,
        APP_ROLE_BYPASSES_RLS,
        VIEW_WITHOUT_SECURITY_INVOKER,
        MATERIALIZED_VIEW_OVER_TENANT_DATA,
        NULL_TENANT_ROWS,
        CROSS_TENANT_REFERENCE,
        ORPHANED_ROWS,
    ];

    /// The PostgreSQL row level security codes (what a schema without policies yet reports).
    pub const RLS: &[&str] = &[
        RLS_NOT_ENABLED,
        RLS_NOT_FORCED,
        RLS_NO_POLICY,
        RLS_PERMISSIVE_POLICY,
        POLICY_WITHOUT_WITH_CHECK,
    ];
}

/// What to check and how.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOptions {
    /// The database to check (`sqlite://..`, `postgres://..`, `mysql://..`). Connect as the schema owner.
    pub database_url: String,
    /// PostgreSQL: the role the service connects as (`--app-role`). When set, the row level security rules
    /// are judged for it, as the self-check judges the role `TenantDb::connect` connects as: being (or being
    /// able to `SET ROLE` to) a superuser or a `BYPASSRLS` role, owning a table, holding
    /// `TRUNCATE`/`REFERENCES`/`TRIGGER` on a tenant-owned table. A role that does not exist is a
    /// [`CheckError`]. Ignored on other backends.
    pub app_role: Option<String>,
    /// Findings to skip: a code (`rls-not-enabled`) skips it everywhere, `code:table` only on that table.
    pub allow: Vec<String>,
    /// Tables declared global (not tenant-owned), besides `tenants`, which always is. Default: none.
    pub global: Vec<String>,
}

impl CheckOptions {
    /// Options for `database_url` with no app role, nothing allowed and no global table but `tenants`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            app_role: None,
            allow: Vec::new(),
            global: Vec::new(),
        }
    }

    /// Whether `finding` is allowed (skipped).
    fn allows(&self, finding: &Finding) -> bool {
        self.allow.iter().any(|entry| match entry.split_once(':') {
            Some((code, table)) => code == finding.code && finding.table.as_deref() == Some(table),
            None => entry == finding.code,
        })
    }
}

/// Why `tenant-scope check` could not run (exit code 2). It says nothing about the findings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The database could not be reached.
    #[error("could not connect to the database: {0}")]
    Connect(String),
    /// The schema or the catalog could not be read.
    #[error("could not read the schema: {0}")]
    Discover(String),
    /// A data scan query failed.
    #[error("could not scan the data: {0}")]
    Scan(String),
    /// `--app-role` names a role that does not exist.
    #[error("the app role `{0}` does not exist")]
    UnknownAppRole(String),
    /// An `allow` entry names no finding code (a typo would otherwise allow nothing, silently).
    #[error("`{0}` in --allow is not a finding code (see docs/check.md)")]
    UnknownAllowCode(String),
    /// The URL's scheme is not a supported backend.
    #[error("unsupported database URL (expected sqlite://, postgres:// or mysql://)")]
    UnsupportedBackend,
    /// `--global` names a table that is not in the schema, or one that has a `tenant_id` column.
    #[error("invalid --global: {0}")]
    InvalidGlobal(#[from] TenancyError),
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Isolation is broken or unenforced: fails the check (exit code 1).
    Error,
    /// A performance or hygiene problem that does not break isolation: printed, exit code 0.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`, as in the text and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One thing the database gets wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The stable kebab-case code, one of [`codes::ALL`].
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// The table (or view) it is about; `None` for a database-wide finding such as the app role's attributes.
    pub table: Option<String>,
    /// The columns it is about (may be empty).
    pub columns: Vec<String>,
    /// What is wrong, in one sentence; never row data.
    pub message: String,
    /// How to fix it, in one line.
    pub fix: String,
}

impl Finding {
    pub(crate) fn new(
        code: &'static str,
        severity: Severity,
        table: Option<&str>,
        columns: Vec<String>,
        message: String,
        fix: String,
    ) -> Self {
        Self {
            code,
            severity,
            table: table.map(str::to_owned),
            columns,
            message,
            fix,
        }
    }

    fn sort_key(&self) -> (&Option<String>, &str, &[String], &str) {
        (&self.table, self.code, &self.columns, &self.message)
    }
}

/// The result of a check: every finding, sorted by table, code, columns and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The backend that was checked: `"sqlite"`, `"postgres"` or `"mysql"`.
    pub backend: &'static str,
    /// The findings, in a deterministic order.
    pub findings: Vec<Finding>,
}

impl Report {
    fn new(backend: &'static str, mut findings: Vec<Finding>) -> Self {
        findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        findings.dedup();
        Self { backend, findings }
    }

    /// No finding at all, not even a warning.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// How many findings have severity `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The codes of the findings, in report order (handy in tests).
    pub fn codes(&self) -> Vec<&'static str> {
        self.findings.iter().map(|f| f.code).collect()
    }

    /// `1` if any finding is an error, else `0` (warnings do not fail). A [`CheckError`] is
    /// [`EXIT_COULD_NOT_RUN`].
    pub fn exit_code(&self) -> i32 {
        i32::from(self.count(Severity::Error) > 0)
    }

    /// Human-readable output: one block per finding and a summary line.
    ///
    /// ```text
    /// error[unique-without-tenant] users (email): unique key `uq_email` does not include tenant_id ...
    ///   fix: ...
    /// 1 error, 0 warnings (postgres)
    /// ```
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = write!(out, "{}[{}]", f.severity.as_str(), f.code);
            if let Some(table) = &f.table {
                let _ = write!(out, " {table}");
            }
            if !f.columns.is_empty() {
                let _ = write!(out, " ({})", f.columns.join(", "));
            }
            let _ = writeln!(out, ": {}", f.message);
            let _ = writeln!(out, "  fix: {}", f.fix);
        }
        let errors = self.count(Severity::Error);
        let warnings = self.count(Severity::Warning);
        if self.is_clean() {
            let _ = writeln!(out, "clean: no findings ({})", self.backend);
        } else {
            let _ = writeln!(
                out,
                "{errors} error{}, {warnings} warning{} ({})",
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" },
                self.backend
            );
        }
        out
    }

    /// The stable JSON format, version [`JSON_FORMAT_VERSION`] (documented in docs/check.md):
    ///
    /// ```json
    /// {"version": 1, "backend": "sqlite", "clean": false,
    ///  "summary": {"errors": 1, "warnings": 0},
    ///  "findings": [{"code": "pk-not-tenant-led", "severity": "error", "table": "t",
    ///                "columns": ["id"], "message": "...", "fix": "..."}]}
    /// ```
    pub fn to_json(&self) -> serde_json::Value {
        let findings: Vec<serde_json::Value> = self
            .findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "code": f.code,
                    "severity": f.severity.as_str(),
                    "table": f.table,
                    "columns": f.columns,
                    "message": f.message,
                    "fix": f.fix,
                })
            })
            .collect();
        serde_json::json!({
            "version": JSON_FORMAT_VERSION,
            "backend": self.backend,
            "clean": self.is_clean(),
            "summary": {
                "errors": self.count(Severity::Error),
                "warnings": self.count(Severity::Warning),
            },
            "findings": findings,
        })
    }
}

/// Runs the schema lint and the data scan on `options.database_url`.
///
/// # Errors
///
/// [`CheckError`] when the check could not run (exit code 2): the database is unreachable, the catalog
/// cannot be read, a scan query fails, `app_role` does not exist, or an `allow` entry is not a finding code.
pub async fn check(options: &CheckOptions) -> Result<Report, CheckError> {
    for entry in &options.allow {
        let code = entry
            .split_once(':')
            .map_or(entry.as_str(), |(code, _)| code);
        if !codes::ALL.contains(&code) {
            return Err(CheckError::UnknownAllowCode(entry.clone()));
        }
    }
    Backend::from_url(&options.database_url).map_err(|_| CheckError::UnsupportedBackend)?;
    let mut connect = ConnectOptions::new(options.database_url.clone());
    connect.sqlx_logging(false).max_connections(2);
    let db = Database::connect(connect)
        .await
        .map_err(|e| CheckError::Connect(e.to_string()))?;
    let result = run(&db, options).await;
    let _ = db.close().await;
    result
}

async fn run(
    db: &sea_orm::DatabaseConnection,
    options: &CheckOptions,
) -> Result<Report, CheckError> {
    let role = match &options.app_role {
        Some(role) => Role::Named(role.clone()),
        None => Role::None,
    };
    let catalog = Catalog::reader()
        .role(role)
        .read(db)
        .await
        .map_err(|e| match e {
            CatalogError::UnknownRole(role) => CheckError::UnknownAppRole(role),
            other => CheckError::Discover(other.to_string()),
        })?;
    let tenancy = catalog.classify(&options.global)?;
    let mut findings = rules::schema_findings(&catalog, &tenancy);
    if let Some(security) = &catalog.security {
        findings.extend(security.findings().into_iter().map(Finding::of_security));
    }
    if catalog.backend == Backend::Postgres {
        // Fail loudly rather than count only what row level security lets this role see (see data.rs).
        let scan_err = |e: sea_orm::DbErr| CheckError::Scan(e.to_string());
        let txn = db.begin().await.map_err(scan_err)?;
        txn.execute_unprepared("SET LOCAL row_security = off")
            .await
            .map_err(scan_err)?;
        let scanned = data::findings(&txn, &catalog, &tenancy).await;
        let _ = txn.rollback().await;
        findings.extend(scanned?);
    } else {
        findings.extend(data::findings(db, &catalog, &tenancy).await?);
    }
    findings.retain(|f| !options.allows(f));
    Ok(Report::new(catalog.backend.as_str(), findings))
}

impl Finding {
    /// A finding of the PostgreSQL row level security rules (shared with the self-check).
    fn of_security(finding: postgres::Finding) -> Self {
        Finding::new(
            finding.rule.code(),
            Severity::Error,
            finding.object.as_deref(),
            vec![],
            finding.message,
            finding.fix,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: &'static str, table: Option<&str>) -> Finding {
        Finding::new(code, Severity::Error, table, vec![], "m".into(), "f".into())
    }

    #[test]
    fn allow_by_code_and_by_table() {
        let mut options = CheckOptions::new("sqlite::memory:");
        options.allow = vec!["rls-not-enabled".into(), "pk-not-tenant-led:a".into()];
        assert!(options.allows(&finding(codes::RLS_NOT_ENABLED, Some("x"))));
        assert!(options.allows(&finding(codes::PK_NOT_TENANT_LED, Some("a"))));
        assert!(!options.allows(&finding(codes::PK_NOT_TENANT_LED, Some("b"))));
    }

    #[test]
    fn report_is_sorted_and_exit_code_counts_errors() {
        let mut warning = finding(codes::INDEX_NOT_TENANT_LED, Some("a"));
        warning.severity = Severity::Warning;
        let report = Report::new(
            "sqlite",
            vec![finding(codes::ORPHANED_ROWS, Some("b")), warning],
        );
        assert_eq!(
            report.codes(),
            [codes::INDEX_NOT_TENANT_LED, codes::ORPHANED_ROWS]
        );
        assert_eq!(report.exit_code(), 1);
        let only_warning = Report::new("sqlite", vec![report.findings[0].clone()]);
        assert_eq!(only_warning.exit_code(), 0);
        assert!(!only_warning.is_clean());
    }

    #[test]
    fn every_code_of_the_shared_postgres_rules_is_a_check_code() {
        for code in postgres::Rule::CODES {
            assert!(codes::ALL.contains(code), "{code}");
        }
    }
}
