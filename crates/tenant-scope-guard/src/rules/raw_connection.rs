//! `raw-connection` ([`crate::RAW_CONNECTION`]): opening a database connection or pool outside
//! `TenantDb`: `Database::connect` (also through an alias of `sea_orm::Database`), `connect*` on
//! an sqlx pool, connection or options type, and SeaORM's connectors and `MockDatabase`.

use super::connection_type::{SQLX_CONNECTION_TYPES, SQLX_GENERIC_TYPES};
use super::{Hit, Names, PathExpr};
use crate::RAW_CONNECTION;

/// SeaORM's adapters from an existing pool (or a mock) to a `DatabaseConnection`.
const CONNECTORS: &[&str] = &[
    "SqlxPostgresConnector",
    "SqlxSqliteConnector",
    "SqlxMySqlConnector",
    "MockDatabaseConnector",
    "ProxyDatabaseConnector",
    "MockDatabase",
];

/// A path expression that opens a connection. A `Database` defined in the file is not SeaORM's
/// unless the path says `sea_orm`.
pub(super) fn path(p: &PathExpr<'_>, names: &Names) -> Option<Hit> {
    let text = &p.text;
    let method = p.method.as_str();
    let type_name = p.type_name.as_str();
    let database = (type_name == "Database"
        && (p.segs.iter().any(|s| s == "sea_orm") || !names.local_types.contains("Database")))
        || names.databases.contains(type_name);
    if database && matches!(method, "connect" | "connect_proxy") {
        return Some(hit(format!(
            "`{text}` opens a SeaORM connection that bypasses tenant scoping: connect \
             with `TenantDb::connect(url)` (or `TenantDb::connect_with(options)`)"
        )));
    }
    let sqlx_type = SQLX_CONNECTION_TYPES.contains(&type_name)
        || (p.under_sqlx && (SQLX_GENERIC_TYPES.contains(&type_name) || type_name == "Connection"));
    if sqlx_type && method.starts_with("connect") {
        return Some(hit(format!(
            "`{text}` opens an sqlx connection that bypasses tenant scoping: connect \
             with `TenantDb::connect(url)`"
        )));
    }
    if CONNECTORS.contains(&type_name) {
        return Some(hit(format!(
            "`{text}` makes a SeaORM connection outside `TenantDb`: connect with \
             `TenantDb::connect`; `MockDatabase` belongs in tests (tests/ or \
             `#[cfg(test)]`)"
        )));
    }
    None
}

fn hit(message: String) -> Hit {
    Hit {
        rule: RAW_CONNECTION,
        message,
    }
}
