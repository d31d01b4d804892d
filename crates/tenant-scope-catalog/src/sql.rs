//! Small helpers for the catalog queries.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, TryGetable, Value};

/// An identifier quoted for `backend`, with the quote character doubled inside it, so that a name
/// read from a catalog (a constraint name, a column name) cannot end the identifier and inject SQL.
///
/// ```
/// use sea_orm::DbBackend;
/// use tenant_scope_catalog::quote_ident;
///
/// assert_eq!(quote_ident(DbBackend::Postgres, r#"x"; DROP TABLE t; --"#), r#""x""; DROP TABLE t; --""#);
/// assert_eq!(quote_ident(DbBackend::MySql, "a`b"), "`a``b`");
/// assert_eq!(quote_ident(DbBackend::Sqlite, "plain"), r#""plain""#);
/// ```
pub fn quote_ident(backend: DbBackend, ident: &str) -> String {
    match backend {
        DbBackend::MySql => format!("`{}`", ident.replace('`', "``")),
        _ => format!("\"{}\"", ident.replace('"', "\"\"")),
    }
}

/// Runs a catalog query on `conn`.
pub(crate) async fn query<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    let backend = conn.get_database_backend();
    conn.query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
}

/// Column `index` of `row`.
pub(crate) fn get<T: TryGetable>(row: &QueryResult, index: usize) -> Result<T, DbErr> {
    row.try_get_by_index(index)
}

/// The parts of a list that a query joined with the unit separator (U+001F), which no identifier
/// or expression of ours contains.
pub(crate) fn split_list(joined: Option<String>) -> Vec<String> {
    joined
        .map(|s| {
            s.split('\u{1f}')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
