//! `raw-sql` ([`crate::RAW_SQL`]): raw SQL: the methods only raw connections and raw selects have
//! (`execute_unprepared`, `*_raw`, `from_raw_sql`), `find_by_statement`, sqlx's query functions
//! and macros, and `Statement::from_string`/`from_sql_and_values` outside a `SystemDb` context
//! (a function that takes a `SystemDb` or calls `.system(..)`).

use syn::ExprMethodCall;

use super::{Hit, PathExpr};
use crate::RAW_SQL;

/// Method names that only raw connections and raw selects have.
const RAW_SQL_METHODS: &[&str] = &[
    "execute_unprepared",
    "execute_raw",
    "query_one_raw",
    "query_all_raw",
    "stream_raw",
    "from_raw_sql",
];

/// sqlx's query functions and macros.
const SQLX_QUERIES: &[&str] = &[
    "query",
    "query_as",
    "query_scalar",
    "query_with",
    "query_as_with",
    "query_scalar_with",
    "query_unchecked",
    "query_as_unchecked",
    "query_scalar_unchecked",
    "query_file",
    "query_file_as",
    "query_file_scalar",
    "raw_sql",
];

/// A path expression that is one of sqlx's query functions (`sqlx::query`, ...).
pub(super) fn sqlx_path(p: &PathExpr<'_>) -> Option<Hit> {
    if !(p.under_sqlx && SQLX_QUERIES.contains(&p.method.as_str())) {
        return None;
    }
    let text = &p.text;
    Some(hit(format!(
        "`{text}` runs raw SQL through sqlx, outside every tenant predicate: use a \
         `Scoped` query, or `db.system(\"reason\")` for audited maintenance"
    )))
}

/// A path expression that runs or builds a raw statement: `find_by_statement`, or
/// `Statement::from_string`/`from_sql_and_values` unless `system` (the enclosing function is a
/// `SystemDb` context).
pub(super) fn statement_path(p: &PathExpr<'_>, system: bool) -> Option<Hit> {
    let text = &p.text;
    let method = p.method.as_str();
    if method == "find_by_statement" {
        return Some(hit(format!(
            "`{text}` runs a raw SQL statement: use a `Scoped` query, or \
             `db.system(\"reason\")?.query_all(stmt)` for audited maintenance"
        )));
    }
    if p.type_name == "Statement"
        && matches!(method, "from_string" | "from_sql_and_values")
        && !system
    {
        return Some(hit(format!(
            "`{text}` builds raw SQL outside a `SystemDb` context: tenant data is read \
             through `Scoped` queries; raw SQL runs only through \
             `db.system(\"reason\")?.execute(stmt)` (or `query_all`)"
        )));
    }
    None
}

/// A method call that only a raw connection or a raw select has (`.execute_unprepared(..)`).
pub(super) fn method_call(m: &ExprMethodCall) -> Option<Hit> {
    let name = m.method.to_string();
    if !RAW_SQL_METHODS.contains(&name.as_str()) {
        return None;
    }
    Some(hit(format!(
        "`.{name}(..)` runs raw SQL on a raw connection, outside every tenant \
         predicate: use a `Scoped` query, or `db.system(\"reason\")?.execute(stmt)` \
         for audited maintenance"
    )))
}

/// A macro, given its path's identifiers, that is one of sqlx's query macros (`sqlx::query!`).
pub(super) fn sqlx_macro(segs: &[String]) -> Option<Hit> {
    let last = segs.last().map(String::as_str).unwrap_or_default();
    if !(segs.iter().any(|s| s == "sqlx") && SQLX_QUERIES.contains(&last)) {
        return None;
    }
    Some(hit(format!(
        "`{}!` runs raw SQL through sqlx, outside every tenant predicate: use a \
         `Scoped` query, or `db.system(\"reason\")` for audited maintenance",
        segs.join("::")
    )))
}

fn hit(message: String) -> Hit {
    Hit {
        rule: RAW_SQL,
        message,
    }
}
