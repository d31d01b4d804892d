//! `connection-type` ([`crate::CONNECTION_TYPE`]): naming a raw connection type, in a `use`, a
//! type or a path: SeaORM's connections and transactions, sqlx's pools, connections and the
//! options that open them. sqlx's generic names (`Pool`, `PoolOptions`, `PoolConnection`) count
//! only under a `sqlx` path or with a database type argument (`Pool<Postgres>`).

use syn::{GenericArgument, PathArguments, Type};

use super::Hit;
use crate::CONNECTION_TYPE;

/// SeaORM's raw connection types.
const SEAORM_CONNECTION_TYPES: &[&str] = &[
    "DatabaseConnection",
    "DbConn",
    "DatabaseTransaction",
    "DatabaseExecutor",
    "RestrictedConnection",
    "RestrictedTransaction",
    "SqlxPostgresPoolConnection",
    "SqlxSqlitePoolConnection",
    "SqlxMySqlPoolConnection",
];

/// sqlx's pools, connections and the options that open them.
pub(super) const SQLX_CONNECTION_TYPES: &[&str] = &[
    "PgPool",
    "SqlitePool",
    "MySqlPool",
    "AnyPool",
    "PgConnection",
    "SqliteConnection",
    "MySqlConnection",
    "AnyConnection",
    "PgPoolOptions",
    "SqlitePoolOptions",
    "MySqlPoolOptions",
    "AnyPoolOptions",
    "PgConnectOptions",
    "SqliteConnectOptions",
    "MySqlConnectOptions",
    "AnyConnectOptions",
];

/// sqlx's generic pool names: flagged only under a `sqlx` path or with a database type argument.
pub(super) const SQLX_GENERIC_TYPES: &[&str] = &["Pool", "PoolOptions", "PoolConnection"];
const SQLX_DATABASES: &[&str] = &["Postgres", "Sqlite", "MySql", "Any"];

/// Whether a path segment's generic arguments include an sqlx database type (`<Postgres>`), which
/// makes a generic pool name an sqlx one.
pub(super) fn has_sqlx_database_arg(arguments: &PathArguments) -> bool {
    match arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().any(|arg| {
            matches!(arg, GenericArgument::Type(Type::Path(p))
            if p.path.segments.last().is_some_and(|s| {
                SQLX_DATABASES.iter().any(|db| s.ident == db)
            }))
        }),
        _ => false,
    }
}

/// A name (one path segment or `use` leaf) that is a raw connection type; `sqlx_context` says
/// whether it is under a `sqlx` path or has a database type argument.
pub(super) fn name(name: &str, sqlx_context: bool) -> Option<Hit> {
    let raw = SEAORM_CONNECTION_TYPES.contains(&name)
        || SQLX_CONNECTION_TYPES.contains(&name)
        || (sqlx_context && SQLX_GENERIC_TYPES.contains(&name));
    if !raw {
        return None;
    }
    Some(Hit {
        rule: CONNECTION_TYPE,
        message: format!(
            "`{name}` is a raw database connection that bypasses tenant scoping: hold a \
             `TenantDb` (cheap to clone) and reach data through `db.scope(&ctx)`"
        ),
    })
}
