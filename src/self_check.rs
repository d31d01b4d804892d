//! The PostgreSQL self-check that [`TenantDb`](crate::TenantDb) runs when it connects.
//!
//! Row level security is a wall only if nothing walks around it. Before serving, the library reads
//! what row level security depends on for the role it is connected as (the role and the roles it
//! may become, every table with a `tenant_id` column in every schema but the system ones, their
//! policies, the views over them), and refuses to serve ([`Error::Config`], naming each problem)
//! on every [`Risk`] the rules find. The rules are those of `tenant-scope check`
//! (`tenant_scope_catalog::postgres`), judged for this role: whatever is refused here, `check
//! --app-role ROLE` reports. A risk can be accepted explicitly with
//! [`TenantDbOptions::accept_risk`](crate::TenantDbOptions::accept_risk); accepted risks that are
//! present are logged at WARN.

use std::collections::BTreeSet;

use sea_orm::DatabaseConnection;
use tenant_scope_catalog::CatalogError;
use tenant_scope_catalog::postgres::{Role, RoleInfo, Security};

pub use tenant_scope_catalog::postgres::Risk;

use crate::error::{Error, Result};

/// A catalog that could not be read is the database's error (no tenant data is in play here).
fn catalog_error(err: CatalogError) -> Error {
    match err {
        CatalogError::Db(err) => Error::from_db(err),
        other => Error::Config(format!("the PostgreSQL self-check could not run: {other}")),
    }
}

/// Runs the self-check and refuses to serve if it found a risk that was not accepted; accepted
/// risks that are present are logged at WARN.
pub(crate) async fn refuse_unless_accepted<C: sea_orm::ConnectionTrait>(
    conn: &C,
    accepted: &BTreeSet<Risk>,
) -> Result<()> {
    let security = Security::read(conn, &Role::Current)
        .await
        .map_err(catalog_error)?;
    let (tolerated, refused): (Vec<_>, Vec<_>) = security
        .refusals()
        .into_iter()
        .partition(|(risk, _)| accepted.contains(risk));
    for (risk, message) in &tolerated {
        tracing::warn!(
            target: "tenant_scope::self_check",
            risk = %risk,
            "accepted risk: {message}"
        );
    }
    if refused.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "refusing to serve: the PostgreSQL self-check found {} risk(s) to tenant isolation:",
        refused.len()
    );
    for (risk, finding) in &refused {
        message.push_str(&format!(
            "\n  - [{risk}] {finding} ({}; or accept it with TenantDbOptions::accept_risk(Risk::{risk:?}))",
            risk.hint(),
        ));
    }
    Err(Error::Config(message))
}

/// The system connection's role must be able to cross tenants, or system access would silently
/// see and change nothing.
pub(crate) async fn system_role_crosses_tenants(conn: &DatabaseConnection) -> Result<()> {
    let role = RoleInfo::current(conn).await.map_err(catalog_error)?;
    if role.superuser || role.bypass_rls {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "the system connection's role \"{}\" is subject to row level security, so system \
             access would see no tenant's rows; connect it as a role with BYPASSRLS \
             (docs/postgres.md)",
            role.name
        )))
    }
}
