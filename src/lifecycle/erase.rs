//! [`erase`]: a deleted tenant's rows, children first, in batches that each commit on their own.

use sea_orm::DbBackend;
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use uuid::Uuid;

use crate::contract::{ID_COLUMN, TENANT_COLUMN};
use crate::db::{SystemDb, TenantDb};
use crate::error::{Error, Result};
use crate::provision::{self, TenantStatus};
use crate::tenant::TenantId;

use super::graph::plan;
use super::{TableCount, pool, read_catalog, reason};

/// What [`erase`] (or [`erase_limited`]) did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EraseReport {
    /// The tenant.
    pub tenant: TenantId,
    /// The id of the `system_audit_events` row of this call.
    pub event: Uuid,
    /// The rows deleted by this call, per tenant-owned table, in the order the tables were erased
    /// (children first); a table this call did not reach is not listed.
    pub deleted: Vec<TableCount>,
    /// The number of `DELETE` statements this call ran (each a batch committed on its own).
    pub batches: u64,
    /// Whether the tenant has no rows left in any tenant-owned table: `false` if the call stopped
    /// at its batch limit ([`erase_limited`]); call it again to go on.
    pub finished: bool,
}

impl EraseReport {
    /// The total number of rows this call deleted.
    pub fn rows(&self) -> u64 {
        self.deleted.iter().map(|t| t.rows).sum()
    }
}

/// Erases every row of `tenant` in every tenant-owned table, `batch_size` rows per statement;
/// [`erase_limited`] without a limit on the number of batches.
///
/// # Errors
///
/// As [`erase_limited`].
pub async fn erase(db: &TenantDb, tenant: TenantId, batch_size: u64) -> Result<EraseReport> {
    erase_limited(db, tenant, batch_size, u64::MAX).await
}

/// Erases the rows of `tenant` in every tenant-owned table, children before parents (the reverse
/// of the foreign keys' order in the catalog), `batch_size` rows per `DELETE`, and stops after
/// `max_batches` statements (a job that erases a little at a time, or a test of an interruption).
///
/// Through audited system access (reason `erase tenant <id>`). Only a tenant whose status is
/// [`TenantStatus::Deleted`] is erased (set it with [`provision::set_status`]): anything else is
/// refused before a row is touched. Each batch is one statement, committed on its own, so an
/// erase that is interrupted (a crash, a dropped future, the batch limit) keeps what it did, and
/// calling it again continues where it stopped and finishes. Every statement is restricted to
/// `tenant_id = <tenant>`, and a cascade can only follow the composite foreign keys inside the
/// tenant, so no other tenant's row is ever touched. The `tenants` row is kept, as a tombstone:
/// the tenant's id is never given again, and [`certify_erased`](super::certify_erased) can then
/// prove that nothing else is left.
///
/// # Errors
///
/// [`Error::Invalid`] for a batch size of 0, for a tenant that is not deleted (nothing is
/// deleted), for a schema whose foreign keys give no children-first order (see
/// [`export`](super::export)), or when a foreign key from outside the tenant-owned tables refuses
/// a delete; [`Error::NotFound`] if there is no such tenant; the database's error.
pub async fn erase_limited(
    db: &TenantDb,
    tenant: TenantId,
    batch_size: u64,
    max_batches: u64,
) -> Result<EraseReport> {
    if batch_size == 0 {
        return Err(Error::Invalid(
            "an erase needs a batch size of at least 1".into(),
        ));
    }
    let system = db.system(&reason("erase", tenant)).await?;
    match provision::tenant_status(&system, tenant).await? {
        None => return Err(Error::NotFound),
        Some(TenantStatus::Deleted) => {}
        Some(status) => {
            return Err(Error::Invalid(format!(
                "the tenant is {status}: only a deleted tenant is erased (set its status to \
                 deleted first, with provision::set_status)"
            )));
        }
    }
    let catalog = read_catalog(&crate::exec::Conn::Pool(pool(&system)?)).await?;
    let plan = plan(&catalog)?;
    let mut report = EraseReport {
        tenant,
        event: system.event_id(),
        deleted: Vec::new(),
        batches: 0,
        finished: false,
    };
    for table in plan.tables.iter().rev() {
        let mut deleted = 0;
        loop {
            if report.batches >= max_batches {
                report.deleted.push(TableCount::new(&table.name, deleted));
                return Ok(report);
            }
            report.batches += 1;
            let n = delete_batch(&system, db.backend(), &table.name, tenant, batch_size).await?;
            deleted += n;
            if n < batch_size {
                break;
            }
        }
        report.deleted.push(TableCount::new(&table.name, deleted));
    }
    report.finished = true;
    Ok(report)
}

/// Deletes up to `batch_size` rows of `tenant` in `table` (the first by `id`); returns how many.
async fn delete_batch(
    system: &SystemDb<'_>,
    backend: DbBackend,
    table: &str,
    tenant: TenantId,
    batch_size: u64,
) -> Result<u64> {
    let mut delete = Query::delete();
    delete
        .from_table(table.to_owned())
        .and_where(Expr::col(TENANT_COLUMN).eq(tenant));
    if backend == DbBackend::MySql {
        // MySQL has `DELETE .. ORDER BY .. LIMIT`, and no `LIMIT` in a subquery of `IN`.
        delete.order_by(ID_COLUMN, Order::Asc).limit(batch_size);
    } else {
        let mut batch = Query::select();
        batch
            .column(ID_COLUMN)
            .from(table.to_owned())
            .and_where(Expr::col(TENANT_COLUMN).eq(tenant))
            .order_by(ID_COLUMN, Order::Asc)
            .limit(batch_size);
        delete.and_where(Expr::col(ID_COLUMN).in_subquery(batch));
    }
    system
        .execute_statement(&delete)
        .await
        .map_err(|e| match e {
            // A foreign-key violation of a delete: a row outside the tenant-owned tables (or one
            // the catalog's order does not know of) still references this table's rows.
            Error::NotFound | Error::Conflict => Error::Invalid(format!(
                "deleting the tenant's rows of `{table}` was refused by a foreign key: rows \
                 outside the tenant-owned tables still reference them"
            )),
            other => other,
        })
}
