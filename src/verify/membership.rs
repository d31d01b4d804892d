//! [`MembershipVerifier`]: a user the service authenticated, in the tenant they name.

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use uuid::Uuid;

use super::{TenantVerifier, Verified, VerifierDb, permissions_of};
use crate::contract::{ID_COLUMN, STATUS_COLUMN, TENANT_ACTIVE, TENANTS_TABLE};
use crate::error::{Error, Result};
use crate::tenant::{Actor, TenantId};

/// Verifies that a user, already authenticated by the service (a session, an SSO login), is a
/// member of the tenant they name: a row `(tenant_id, user_id)` in `users`.
///
/// The claim is `(tenant, user id)`; a user that is not in that tenant is [`Error::Denied`], the
/// same as a user that does not exist, and so is any user of a tenant that is not active
/// (suspended or deleted: `provision::set_status`). Authentication itself (passwords, tokens) is the service's.
#[derive(Clone, Copy, Debug, Default)]
pub struct MembershipVerifier;

#[async_trait::async_trait]
impl TenantVerifier for MembershipVerifier {
    type Claim = (TenantId, Uuid);

    async fn verify(
        &self,
        db: &VerifierDb<'_>,
        (tenant, user_id): (TenantId, Uuid),
    ) -> Result<Verified> {
        let mut stmt = Query::select();
        stmt.column((TENANTS_TABLE, STATUS_COLUMN))
            .from_as("users", "u")
            // The tenant's status in the same statement: a suspended or deleted tenant's users
            // verify no one, at no extra round trip.
            .inner_join(
                TENANTS_TABLE,
                Expr::col((TENANTS_TABLE, ID_COLUMN)).equals(("u", "tenant_id")),
            )
            .and_where(Expr::col(("u", "tenant_id")).eq(tenant))
            .and_where(Expr::col(("u", "id")).eq(user_id));
        let rows = db.query_row(tenant, &stmt).await?;
        let active = match rows.first() {
            Some(row) => {
                row.try_get_by_index::<String>(0).map_err(Error::from_db)? == TENANT_ACTIVE
            }
            None => false,
        };
        if !active {
            return Err(Error::Denied);
        }
        let permissions = permissions_of(db, tenant, user_id).await?;
        Ok(Verified::new(tenant, Actor::User(user_id), permissions))
    }
}
