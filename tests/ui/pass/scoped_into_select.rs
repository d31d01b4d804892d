// The right way to shape a scoped query: refine it in place (filter, order, limit); it stays
// `Scoped` (twin of tests/ui/fail/scoped_into_select.rs).

use entity::projects;
use sea_orm::ColumnTrait;
use tenant_scope::{Scoped, TenantScope};

fn recent<'a>(scope: &TenantScope<'a>) -> Scoped<'a, sea_orm::Select<projects::Entity>> {
    scope
        .find::<projects::Entity>()
        .filter(projects::Column::Name.starts_with("A"))
        .order_by_desc(projects::Column::Id)
        .limit(10)
}

fn main() {
    let _ = recent;
}
