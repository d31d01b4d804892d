// Guarantee: a SeaORM query cannot be executed on the `VerifierDb` a verifier reads through.
//
// A verifier may read only what its `VerifierDb` offers: queries restricted to the tenant the claim
// names. The right way is `db.find::<users::Entity>(claimed)` (tests/ui/pass/execute_on_verifier_db.rs).

use entity::users;
use sea_orm::EntityTrait;
use tenant_scope::VerifierDb;

async fn lookup_users(db: &VerifierDb<'_>) {
    let _rows = users::Entity::find().all(db).await;
}

fn main() {
    let _ = lookup_users;
}
