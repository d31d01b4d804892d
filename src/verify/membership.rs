//! [`MembershipVerifier`]: a user the service authenticated, in the tenant they name.

use sea_orm::sea_query::{ExprTrait, Query};
use uuid::Uuid;

use super::{TenantVerifier, Verified, VerifierDb, col, permissions_of};
use crate::error::{Error, Result};
use crate::tenant::{Actor, TenantId};

/// Verifies that a user, already authenticated by the service (a session, an SSO login), is a
/// member of the tenant they name: a row `(tenant_id, user_id)` in `users`.
///
/// The claim is `(tenant, user id)`; a user that is not in that tenant is [`Error::Denied`], the
/// same as a user that does not exist. Authentication itself (passwords, tokens) is the service's.
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
        stmt.column("id")
            .from("users")
            .and_where(col("tenant_id").eq(tenant))
            .and_where(col("id").eq(user_id));
        if db.query_all(tenant, &stmt).await?.is_empty() {
            return Err(Error::Denied);
        }
        let permissions = permissions_of(db, tenant, user_id).await?;
        Ok(Verified::new(tenant, Actor::User(user_id), permissions))
    }
}
