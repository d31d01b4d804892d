// The right way to a `TenantContext`: a `TenantVerifier` accepts a claim and `TenantDb::verify`
// turns its `Verified` into a context. Writing a verifier is writing a trust root
// (twin of tests/ui/fail/context_struct_literal.rs).

use entity::users;
use sea_orm::ColumnTrait;
use tenant_scope::{
    Actor, Error, TenantContext, TenantDb, TenantId, TenantVerifier, Verified, VerifierDb,
};
use uuid::Uuid;

/// Accepts a user of the claimed tenant, with no permissions.
struct UserOfTenant;

#[async_trait::async_trait]
impl TenantVerifier for UserOfTenant {
    type Claim = (TenantId, Uuid);

    async fn verify(
        &self,
        db: &VerifierDb<'_>,
        (tenant, user_id): Self::Claim,
    ) -> tenant_scope::Result<Verified> {
        db.find::<users::Entity>(tenant)
            .filter(users::Column::Id.eq(user_id))
            .one()
            .await?
            .ok_or(Error::Denied)?;
        Ok(Verified::custom(db, tenant, Actor::User(user_id), Vec::new()))
    }
}

async fn context(
    db: &TenantDb,
    tenant: TenantId,
    user: Uuid,
) -> tenant_scope::Result<TenantContext> {
    db.verify(&UserOfTenant, (tenant, user)).await
}

fn main() {
    let _ = context;
}
