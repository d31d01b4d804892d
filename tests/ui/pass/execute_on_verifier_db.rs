// The right way for a verifier to read: `VerifierDb::find`, restricted to the tenant the claim
// names (twin of tests/ui/fail/execute_on_verifier_db.rs).

use entity::users;
use sea_orm::ColumnTrait;
use tenant_scope::{TenantId, VerifierDb};
use uuid::Uuid;

async fn lookup_user(
    db: &VerifierDb<'_>,
    claimed: TenantId,
    user_id: Uuid,
) -> tenant_scope::Result<Option<users::Model>> {
    db.find::<users::Entity>(claimed)
        .filter(users::Column::Id.eq(user_id))
        .one()
        .await
}

fn main() {
    let _ = lookup_user;
}
