//! The traits that generated entities implement: [`TenantScoped`] and [`Global`].

use sea_orm::{EntityTrait, Value};

/// A tenant-owned entity: its table carries a tenant column and its primary key is
/// `(tenant_id, id)`.
///
/// `tenant-scope generate` emits this impl for every table with a `tenant_id` column; it is never
/// hand-written in services. Every query on such an entity goes through
/// [`Scoped`](crate::Scoped), which adds `tenant_id = <the context's tenant>` before anything else.
///
/// ```
/// # use sea_orm::entity::prelude::*;
/// # mod project {
/// #     use sea_orm::entity::prelude::*;
/// #     #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
/// #     #[sea_orm(table_name = "projects")]
/// #     pub struct Model {
/// #         #[sea_orm(primary_key, auto_increment = false)]
/// #         pub tenant_id: tenant_scope::TenantId,
/// #         #[sea_orm(primary_key, auto_increment = false)]
/// #         pub id: Uuid,
/// #         pub name: String,
/// #     }
/// #     #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// #     pub enum Relation {}
/// #     impl ActiveModelBehavior for ActiveModel {}
/// impl tenant_scope::TenantScoped for Entity {
///     type Id = Uuid;
///     fn tenant_column() -> Column { Column::TenantId }
///     fn id_column() -> Column { Column::Id }
///     fn new_id() -> Uuid { Uuid::now_v7() }
/// }
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not tenant-scoped",
    label = "this entity has no `TenantScoped` impl",
    note = "tenant-owned entities get `TenantScoped` from `tenant-scope generate`; an entity that is deliberately not tenant-owned is `Global` and is read through `TenantDb::global()`"
)]
pub trait TenantScoped: EntityTrait {
    /// The type of the row id, the second part of the primary key (`Uuid` in generated entities).
    ///
    /// It is a different type from [`TenantId`](crate::TenantId), so the two cannot be swapped.
    type Id: Into<Value> + Clone + Send + Sync + 'static;

    /// The tenant column (`tenant_id`).
    fn tenant_column() -> Self::Column;

    /// The row id column (`id`).
    fn id_column() -> Self::Column;

    /// A fresh row id for an insert that did not set one (UUIDv7 in generated entities).
    fn new_id() -> Self::Id;
}

/// An entity that is deliberately not tenant-owned (for example `tenants`, `permissions`).
///
/// Global entities are read through [`TenantDb::global`](crate::TenantDb::global) and written only
/// through [`TenantDb::system`](crate::TenantDb::system). `tenant-scope generate --global TABLE` emits
/// this impl.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a global entity",
    label = "this entity is not marked `Global`",
    note = "tenant-owned entities are read through `db.scope(&ctx)`; only tables declared with `--global` are `Global`"
)]
pub trait Global: EntityTrait {
    /// The primary key column (`id`).
    fn id_column() -> Self::Column;
}
