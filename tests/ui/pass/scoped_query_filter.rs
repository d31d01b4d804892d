// The right way to add conditions: `Scoped::filter`, which conjoins (`AND`) with the tenant
// predicate (twin of tests/ui/fail/scoped_query_filter.rs).

use entity::projects;
use sea_orm::{ColumnTrait, Condition};
use tenant_scope::TenantScope;

async fn named(scope: &TenantScope<'_>) -> tenant_scope::Result<Vec<projects::Model>> {
    scope
        .find::<projects::Entity>()
        .filter(
            Condition::any()
                .add(projects::Column::Name.eq("Apollo"))
                .add(projects::Column::Name.eq("Gemini")),
        )
        .all()
        .await
}

fn main() {
    let _ = named;
}
