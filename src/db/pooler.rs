//! Connect-time work on PostgreSQL's application pool: the self-check, and whether a pooler in
//! transaction mode is in between ([`TenantDbOptions::transaction_pooling`]).

use std::collections::BTreeSet;
use std::str::FromStr;

use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::error::{Error, Result};
use crate::exec::{PgTx, Statements};
use crate::self_check::{self, Risk};

#[cfg(doc)]
use super::TenantDbOptions;

/// Runs the self-check on the application's pool `app` (reached at `url`) and decides how its
/// statements are sent: `pooling` is the caller's [`TenantDbOptions::transaction_pooling`].
///
/// Everything here runs in one transaction of unnamed statements, so that it works whatever is
/// in between.
pub(super) async fn check_app(
    app: &DatabaseConnection,
    url: &str,
    accepted: &BTreeSet<Risk>,
    pooling: Option<bool>,
) -> Result<Statements> {
    let pool = app.get_postgres_connection_pool();
    let tx = PgTx::begin(pool, None, Statements::Unnamed)
        .await
        .map_err(|e| connect_error("the application's", &e))?;
    let checked = check_on(&tx, url, accepted, pooling).await;
    tx.abandon();
    checked
}

async fn check_on(
    tx: &PgTx,
    url: &str,
    accepted: &BTreeSet<Risk>,
    pooling: Option<bool>,
) -> Result<Statements> {
    self_check::refuse_unless_accepted(tx, accepted).await?;
    match pooling {
        Some(true) => return Ok(Statements::Unnamed),
        Some(false) => return Ok(Statements::Named),
        None => {}
    }
    let (Some(named), Some(server)) = (url_port(url), server_port(tx).await?) else {
        return Ok(Statements::Named);
    };
    if named == server {
        return Ok(Statements::Named);
    }
    Err(Error::Config(format!(
        "the application's URL names port {named}, but the PostgreSQL server listens on port \
         {server}: a pooler or a proxy is in between. Behind a pooler in transaction mode \
         (PgBouncer `pool_mode = transaction`) call TenantDbOptions::transaction_pooling(true): \
         every statement is then sent unnamed, which that mode requires (the tenant is set per \
         transaction with SET LOCAL, so it never outlives one). Behind a pooler in session mode, \
         or a proxy that keeps one server connection per client, call \
         transaction_pooling(false)."
    )))
}

/// Logs at WARN when the system connection does not reach the server directly: SeaORM prepares
/// named statements on it, which a pooler in transaction mode breaks.
pub(super) async fn check_system(system: &DatabaseConnection, url: &str) {
    let server = server_port(system).await.ok().flatten();
    if let (Some(named), Some(server)) = (url_port(url), server)
        && named != server
    {
        tracing::warn!(
            target: "tenant_scope::connect",
            url_port = named,
            server_port = server,
            "the system connection goes through a pooler or proxy: it must keep sessions \
             (a direct connection or a pooler in session mode), because its statements are \
             prepared by name"
        );
    }
}

/// The port `url` names (5432 if it names none).
fn url_port(url: &str) -> Option<u16> {
    PgConnectOptions::from_str(url).ok().map(|o| o.get_port())
}

async fn server_port<C: ConnectionTrait>(conn: &C) -> Result<Option<u16>> {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_setting('port')",
        ))
        .await
        .map_err(Error::from_db)?;
    Ok(row
        .and_then(|row| row.try_get_by_index::<String>(0).ok())
        .and_then(|port| port.parse().ok()))
}

/// A connection that failed at connect time: its cause, for the operator (no tenant data is in
/// play yet, so the driver's text may be shown).
pub(super) fn connect_error(which: &str, err: &dyn std::fmt::Display) -> Error {
    Error::Config(format!("connecting {which} database failed: {err}"))
}

#[cfg(test)]
mod tests {
    use super::url_port;

    #[test]
    fn the_port_of_a_url() {
        assert_eq!(url_port("postgres://app@db:6432/x"), Some(6432));
        assert_eq!(url_port("postgres://app@db/x"), Some(5432));
        assert_eq!(url_port("not a url"), None);
    }
}
