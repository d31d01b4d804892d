//! The source guard: finds raw database access in a service's Rust sources.
//!
//! The compile-time guarantees of tenant-scope (`TenantDb` is not a SeaORM connection,
//! tenant-owned rows are reachable only through `Scoped`) hold only
//! while the service cannot reach the database any other way. A careless line such as
//! `Database::connect(url)` or `projects::Entity::find().all(&conn)` compiles fine in a crate that
//! also depends on `sea-orm`, and bypasses every tenant predicate. This module parses a service's
//! sources with `syn` and reports such lines, so CI can refuse them:
//!
//! ```no_run
//! use std::path::Path;
//!
//! let violations = tenant_scope_guard::scan_dir(Path::new("src"))?;
//! for v in &violations {
//!     eprintln!("{v}"); // src/handlers.rs:12:5: raw-query: ...
//! }
//! std::process::exit(if violations.is_empty() { 0 } else { 1 });
//! # Ok::<(), tenant_scope_guard::GuardError>(())
//! ```
//!
//! The rules are listed in [`RULES`]; docs/guard.md explains each one, the
//! `// tenant-scope: allow(rule) reason` comment that accepts a single line, what is excluded by
//! default ([`ScanOptions`]), and an equivalent clippy configuration.

#![forbid(unsafe_code)]

mod allow;
mod rules;
mod walk;

use std::fmt;
use std::path::{Path, PathBuf};

/// One rule of the guard: its stable id (used in reports and in allow comments) and a summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The stable id, e.g. `raw-query`.
    pub id: &'static str,
    /// What the rule finds, in one line.
    pub summary: &'static str,
}

/// Opening a database connection or pool outside `TenantDb`.
pub const RAW_CONNECTION: &str = "raw-connection";
/// Naming a raw connection type (`DatabaseConnection`, `DatabaseTransaction`, sqlx pools, ...).
pub const CONNECTION_TYPE: &str = "connection-type";
/// Naming `ConnectionTrait`, `TransactionTrait` or `StreamTrait`.
pub const CONNECTION_TRAIT: &str = "connection-trait";
/// Building an unscoped SeaORM query from an entity (`Entity::find()`, `find_by_id`, ...).
pub const RAW_QUERY: &str = "raw-query";
/// Running a SeaORM query or active-model write on a connection (`.all(&conn)`, `am.insert(&db)`).
pub const RAW_EXEC: &str = "raw-exec";
/// Raw SQL outside a `SystemDb` context (`execute_unprepared`, `Statement::from_string`, ...).
pub const RAW_SQL: &str = "raw-sql";
/// System access (`db.system(..)`) in an axum handler or in a function a handler calls directly.
pub const SYSTEM_IN_HANDLER: &str = "system-in-handler";
/// An `impl TenantVerifier for X` in the service: a new trust root.
pub const CUSTOM_VERIFIER: &str = "custom-verifier";
/// The test kit's switch that turns the tenant filter off (`without_app_filter()`) outside tests.
pub const TEST_SWITCH: &str = "test-switch";
/// An allow comment that cannot be parsed or names an unknown rule.
pub const INVALID_ALLOW: &str = "invalid-allow";
/// An allow comment without a reason.
pub const ALLOW_WITHOUT_REASON: &str = "allow-without-reason";
/// An allow comment that suppresses nothing on the line below it.
pub const UNUSED_ALLOW: &str = "unused-allow";

/// Every rule the guard reports, in a stable order. The first nine can be named in an allow
/// comment; the last three are about allow comments themselves and cannot be allowed.
pub const RULES: &[Rule] = &[
    Rule {
        id: RAW_CONNECTION,
        summary: "opens a database connection or pool outside TenantDb \
                  (Database::connect, sqlx Pool/Connection ::connect, MockDatabase, Sqlx*Connector)",
    },
    Rule {
        id: CONNECTION_TYPE,
        summary: "names a raw connection type (DatabaseConnection, DbConn, DatabaseTransaction, \
                  DatabaseExecutor, sqlx pools, connections and their options)",
    },
    Rule {
        id: CONNECTION_TRAIT,
        summary: "names ConnectionTrait, TransactionTrait or StreamTrait",
    },
    Rule {
        id: RAW_QUERY,
        summary: "builds an unscoped SeaORM query from an entity (Entity::find, find_by_*, insert, \
                  update, delete, *_many, delete_by_*, model.find_related)",
    },
    Rule {
        id: RAW_EXEC,
        summary: "runs a SeaORM query or active-model write on a connection \
                  (.all(&conn), .exec(&db), .paginate(&db, n), am.insert(&db), .save(&db))",
    },
    Rule {
        id: RAW_SQL,
        summary: "raw SQL: execute_unprepared, *_raw, from_raw_sql, find_by_statement, sqlx::query*, \
                  Statement::from_string/from_sql_and_values outside a SystemDb context",
    },
    Rule {
        id: SYSTEM_IN_HANDLER,
        summary: "system access (db.system(..)) in an axum handler (routed with get/post/../on/\
                  fallback, or an async fn taking Tenant, State or Extension) or in a function \
                  of the same file that a handler calls directly",
    },
    Rule {
        id: CUSTOM_VERIFIER,
        summary: "implements TenantVerifier: a new trust root that decides which tenant a caller \
                  belongs to",
    },
    Rule {
        id: TEST_SWITCH,
        summary: "calls without_app_filter(), the test kit's switch that turns the library's \
                  tenant filter off, outside test code",
    },
    Rule {
        id: INVALID_ALLOW,
        summary: "a `// tenant-scope:` comment that is not `allow(rule, ...) reason` with known rules",
    },
    Rule {
        id: ALLOW_WITHOUT_REASON,
        summary: "an allow comment without a reason (it allows nothing)",
    },
    Rule {
        id: UNUSED_ALLOW,
        summary: "an allow comment that suppresses nothing on the line below it",
    },
];

/// The ids that an allow comment may name.
pub(crate) const ALLOWABLE: &[&str] = &[
    RAW_CONNECTION,
    CONNECTION_TYPE,
    CONNECTION_TRAIT,
    RAW_QUERY,
    RAW_EXEC,
    RAW_SQL,
    SYSTEM_IN_HANDLER,
    CUSTOM_VERIFIER,
    TEST_SWITCH,
];

/// One finding: where, which rule, and what to do instead.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Violation {
    /// The file, as the scanned root joined with the path below it (so it can be opened as is).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The stable rule id, one of [`RULES`].
    pub rule: &'static str,
    /// What was found and what to use instead.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.rule,
            self.message
        )
    }
}

/// Why a scan could not run. A scan that ran and found violations is `Ok`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// A directory or file could not be read.
    #[error("could not read {}: {source}", path.display())]
    Io {
        /// The path that could not be read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid Rust.
    #[error("could not parse {}:{line}:{column}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        message: String,
    },
}

/// What a scan includes besides the service's own code.
///
/// By default the guard skips test and bench code (`tests/` and `benches/` directories, items
/// under `#[cfg(test)]`, functions with a `#[test]`-like attribute such as `#[tokio::test]`) and
/// migration and build code (`migration/` and `migrations/` directories, `build.rs`): migrations
/// legitimately run as the schema owner on a plain SeaORM connection, and tests may use
/// `MockDatabase`. Hidden directories and `target/` are always skipped. Directory names are matched
/// below the scanned root only, so scanning `tests/fixtures/service` itself works.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanOptions {
    include_tests: bool,
    include_migrations: bool,
}

impl ScanOptions {
    /// The defaults: tests, benches, migrations and build scripts excluded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also scan `tests/`, `benches/`, `#[cfg(test)]` items and `#[test]` functions.
    pub fn include_tests(mut self, yes: bool) -> Self {
        self.include_tests = yes;
        self
    }

    /// Also scan `migration/`, `migrations/` and `build.rs`.
    pub fn include_migrations(mut self, yes: bool) -> Self {
        self.include_migrations = yes;
        self
    }

    /// Whether test and bench code is scanned.
    pub fn tests_included(&self) -> bool {
        self.include_tests
    }

    /// Whether migrations and build scripts are scanned.
    pub fn migrations_included(&self) -> bool {
        self.include_migrations
    }
}

/// Scans every `*.rs` file under `root` (or `root` itself if it is a file) with the default
/// [`ScanOptions`], and returns the violations sorted by file, line, column and rule.
///
/// # Errors
/// [`GuardError::Io`] if a directory or file can't be read, [`GuardError::Parse`] (naming the
/// file and position) for the first file, in path order, that is not valid Rust.
pub fn scan_dir(root: &Path) -> Result<Vec<Violation>, GuardError> {
    scan_dir_with(root, &ScanOptions::default())
}

/// [`scan_dir`] with explicit options.
///
/// # Errors
/// As [`scan_dir`].
///
/// Every file is parsed before any is checked: a handler routed in one file (`main.rs`) is a
/// handler in the file that defines it (`handlers.rs`) for the `system-in-handler` rule.
pub fn scan_dir_with(root: &Path, options: &ScanOptions) -> Result<Vec<Violation>, GuardError> {
    let files = walk::rust_files(root, options)?;
    let mut parsed = Vec::with_capacity(files.len());
    for file in files {
        let source = std::fs::read_to_string(&file).map_err(|source| GuardError::Io {
            path: file.clone(),
            source,
        })?;
        let ast = parse(&file, &source)?;
        parsed.push((file, source, ast));
    }
    let mut routed = rules::Routed::default();
    for (_, _, ast) in &parsed {
        routed.collect(ast, options.tests_included());
    }
    let mut out = Vec::new();
    for (file, source, ast) in &parsed {
        out.extend(check(file, source, ast, options, &routed));
    }
    out.sort();
    Ok(out)
}

/// Scans one file's source text; `file` is used for the report only. Only the handlers routed
/// in this file count as routed (see [`scan_dir_with`]).
///
/// # Errors
/// [`GuardError::Parse`] if `source` is not valid Rust.
pub fn scan_source(
    file: &Path,
    source: &str,
    options: &ScanOptions,
) -> Result<Vec<Violation>, GuardError> {
    let ast = parse(file, source)?;
    let mut routed = rules::Routed::default();
    routed.collect(&ast, options.tests_included());
    Ok(check(file, source, &ast, options, &routed))
}

fn parse(file: &Path, source: &str) -> Result<syn::File, GuardError> {
    syn::parse_file(source).map_err(|e| {
        let start = e.span().start();
        GuardError::Parse {
            path: file.to_path_buf(),
            line: start.line,
            column: start.column + 1,
            message: e.to_string(),
        }
    })
}

/// The violations of one parsed file, allow comments applied, sorted.
fn check(
    file: &Path,
    source: &str,
    ast: &syn::File,
    options: &ScanOptions,
    routed: &rules::Routed,
) -> Vec<Violation> {
    let scanned = rules::scan(ast, options, routed);
    let directives = allow::parse(source);
    let mut out: Vec<Violation> = allow::apply(scanned, directives)
        .into_iter()
        .map(|f| Violation {
            file: file.to_path_buf(),
            line: f.line,
            column: f.column,
            rule: f.rule,
            message: f.message,
        })
        .collect();
    out.sort();
    out
}
