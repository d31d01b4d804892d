//! [`GlobalDb`]: read-only access to the global entities.

use sea_orm::{ColumnTrait, Value};

use crate::entity::Global;
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::scoped::{GlobalOnly, Scoped};

/// Read-only access to [`Global`] entities; made by [`TenantDb::global`](crate::TenantDb::global).
#[derive(Clone, Copy, Debug)]
pub struct GlobalDb<'a> {
    exec: Exec<'a>,
}

impl<'a> GlobalDb<'a> {
    /// The global handle on `exec`.
    pub(crate) fn new(exec: Exec<'a>) -> Self {
        Self { exec }
    }

    /// A query over a global entity. It cannot join: see [`GlobalOnly`].
    pub fn find<E: Global>(&self) -> Scoped<'a, sea_orm::Select<E>, GlobalOnly> {
        Scoped::unrestricted(self.exec)
    }

    /// The row of a global entity with this id; [`Error::NotFound`] if there is none.
    pub async fn get<E: Global>(&self, id: impl Into<Value>) -> Result<E::Model> {
        self.find::<E>()
            .filter(E::id_column().eq(id.into()))
            .by_key()
            .await?
            .ok_or(Error::NotFound)
    }
}
