// Guarantee: a tenant-owned row cannot be looked up by its row id alone.
//
// The primary key of every tenant-owned entity is `(tenant_id, id)`, so SeaORM's
// `Entity::find_by_id` wants a `(TenantId, Uuid)`: a bare row id does not compile.
// The right way is `scope.get::<projects::Entity>(id)` (tests/ui/pass/find_by_id_bare_id.rs).

use entity::projects;
use sea_orm::EntityTrait;
use uuid::Uuid;

fn main() {
    let id: Uuid = Uuid::now_v7();
    let _query = projects::Entity::find_by_id(id);
}
