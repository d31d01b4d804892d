//! [`TenantTransaction`]: several statements of one tenant, atomically.

use crate::error::{Error, Result};
use crate::exec::{Exec, Tx};
use crate::tenant::TenantContext;
use std::future::Future;
use std::pin::Pin;

use super::{TenantDb, TenantScope};

/// A boxed future, as returned by the closure of [`TenantDb::transaction`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl TenantDb {
    /// Runs `f` with a tenant handle inside one transaction: committed if `f` returns `Ok`, rolled
    /// back if it returns `Err` (or panics). On PostgreSQL the tenant is set once, when the
    /// transaction begins.
    ///
    /// ```no_run
    /// # async fn f(db: &tenant_scope::TenantDb, ctx: &tenant_scope::TenantContext,
    /// #            a: entity::projects::ActiveModel, b: entity::projects::ActiveModel)
    /// #            -> tenant_scope::Result<()> {
    /// db.transaction(ctx, |tx| {
    ///     Box::pin(async move {
    ///         tx.insert(a).await?;
    ///         tx.insert(b).await?;
    ///         Ok::<_, tenant_scope::Error>(())
    ///     })
    /// })
    /// .await?;
    /// # Ok(()) }
    /// ```
    pub async fn transaction<F, T, E>(&self, ctx: &TenantContext, f: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c TenantScope<'c>) -> BoxFuture<'c, Result<T, E>>,
        E: From<Error>,
    {
        let tx = self.begin(ctx).await?;
        let result = f(&tx.scope()).await;
        match result {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(err) => {
                // The closure's error is the answer; a failed rollback must not replace it (the
                // connection, still in a transaction, is then closed rather than reused).
                let _ = tx.rollback().await;
                Err(err)
            }
        }
    }

    /// Starts a transaction for one tenant; dropped without [`TenantTransaction::commit`], it rolls
    /// back.
    pub async fn begin<'a>(&'a self, ctx: &'a TenantContext) -> Result<TenantTransaction<'a>> {
        let tx = self.app.begin(ctx.tenant()).await?;
        Ok(TenantTransaction { tx, ctx })
    }
}

/// A transaction of one tenant; made by [`TenantDb::begin`].
///
/// Dropped without [`commit`](TenantTransaction::commit), it rolls back.
#[derive(Debug)]
pub struct TenantTransaction<'a> {
    tx: Tx,
    ctx: &'a TenantContext,
}

impl TenantTransaction<'_> {
    /// The tenant handle inside this transaction.
    pub fn scope(&self) -> TenantScope<'_> {
        TenantScope {
            exec: Exec::Tx(&self.tx),
            ctx: self.ctx,
        }
    }

    /// Commits; unless a statement of the transaction failed (a constraint, an error of the
    /// database): then it rolls back and returns [`Error::Invalid`], on every backend alike
    /// (PostgreSQL aborts such a transaction; SQLite and MySQL would otherwise commit the
    /// statements around the failure).
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await
    }
}
