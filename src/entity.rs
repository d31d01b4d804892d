//! The traits that generated entities implement: [`TenantScoped`] and [`Global`], and the row id
//! types a tenant-owned table may have ([`RowId`]).

use std::fmt;

use sea_orm::{EntityTrait, Value};
use uuid::Uuid;

/// A type a tenant-owned table's row id (the `id` of `(tenant_id, id)`) may have: [`Uuid`], `i32`,
/// `i64`, `u32` or `u64`. Sealed: these are the types the library knows how to assign.
///
/// How [`TenantScope::insert`](crate::TenantScope::insert) gives a new row its id when the
/// insert does not set one:
///
/// | id | PostgreSQL | MySQL / MariaDB | SQLite |
/// |---|---|---|---|
/// | `Uuid` (new tables) | a fresh UUIDv7, made by the library | the same | the same |
/// | an integer (adopted legacy tables) | the column's default (`serial`, `bigserial`, an identity column), read back with `RETURNING` | the column's `AUTO_INCREMENT`, read back with `LAST_INSERT_ID()` | one more than the largest id *of this tenant* (a composite primary key has no rowid alias), in the insert's transaction |
///
/// An insert that sets the id keeps it, on every backend.
///
/// An integer id from a sequence or an `AUTO_INCREMENT` counter is shared by every tenant of the
/// table: the gap between two of a tenant's own ids tells it how many rows other tenants inserted
/// in between. The rows themselves stay out of reach (every lookup is by `(tenant_id, id)`), but
/// the rate of other tenants' writes is visible. UUIDv7 ids do not have this side channel, which
/// is why new tables use them; keep integer ids for tables adopted with their legacy data, and see
/// docs/adopting.md for how to move them to UUIDs.
pub trait RowId: Into<Value> + Clone + fmt::Debug + Send + Sync + 'static + sealed::Sealed {
    /// A fresh id made by the library, or `None` if the database assigns it (integers).
    fn generate() -> Option<Self>;

    /// The id the database reported for an inserted row (`LAST_INSERT_ID()`), or the one after the
    /// largest (SQLite); `None` if it does not fit the type.
    #[doc(hidden)]
    fn from_assigned(value: u64) -> Option<Self>;

    /// The id as the text stored in `audit_events.row_key`.
    #[doc(hidden)]
    fn key_text(&self) -> String;

    /// The id a value of its column holds (`None` for another type or NULL).
    #[doc(hidden)]
    fn from_value(value: Value) -> Option<Self>;

    /// The `k`-th id no row is expected to have (a fresh UUIDv7; for an integer, counting down
    /// from the largest 32-bit one), for "an id that never existed" in the `testing` kit.
    #[doc(hidden)]
    fn unused(k: u32) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for uuid::Uuid {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

impl RowId for Uuid {
    fn generate() -> Option<Self> {
        Some(Uuid::now_v7())
    }
    fn from_assigned(_: u64) -> Option<Self> {
        None
    }
    fn key_text(&self) -> String {
        self.hyphenated().to_string()
    }
    fn from_value(value: Value) -> Option<Self> {
        <Uuid as sea_orm::sea_query::ValueType>::try_from(value).ok()
    }
    fn unused(_: u32) -> Self {
        Uuid::now_v7()
    }
}

macro_rules! integer_row_id {
    ($($ty:ty),*) => {$(
        impl RowId for $ty {
            fn generate() -> Option<Self> {
                None
            }
            fn from_assigned(value: u64) -> Option<Self> {
                <$ty>::try_from(value).ok()
            }
            fn key_text(&self) -> String {
                self.to_string()
            }
            fn from_value(value: Value) -> Option<Self> {
                <$ty as sea_orm::sea_query::ValueType>::try_from(value).ok()
            }
            fn unused(k: u32) -> Self {
                // i32::MAX - k fits every integer id type.
                (i32::MAX.unsigned_abs() - k.min(1 << 30)) as $ty
            }
        }
    )*};
}
integer_row_id!(i32, i64, u32, u64);

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
///     type Id = Uuid; // or i32, i64, u32, u64: the type of the table's `id`
///     fn tenant_column() -> Column { Column::TenantId }
///     fn id_column() -> Column { Column::Id }
/// }
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not tenant-scoped",
    label = "this entity has no `TenantScoped` impl",
    note = "tenant-owned entities get `TenantScoped` from `tenant-scope generate`; an entity that is deliberately not tenant-owned is `Global` and is read through `TenantDb::global()`"
)]
pub trait TenantScoped: EntityTrait {
    /// The type of the row id, the second part of the primary key: `Uuid` for new tables, an
    /// integer for adopted legacy ones ([`RowId`] says how each gets its value).
    ///
    /// It is a different type from [`TenantId`](crate::TenantId), so the two cannot be swapped.
    type Id: RowId;

    /// The tenant column (`tenant_id`).
    fn tenant_column() -> Self::Column;

    /// The row id column (`id`).
    fn id_column() -> Self::Column;
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
