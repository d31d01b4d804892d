//! Step 2: backfill.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

use super::{AdoptError, AdoptPlan, param, preflight, q};
use crate::TENANT_COLUMN;

/// Options of [`backfill`] and [`rollback_backfill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackfillOptions {
    /// Rows per `UPDATE` (each batch is its own statement and commits on its own). Default 5,000.
    pub batch_size: u64,
    /// Stop after this many batches in total (`None`: run to the end). For spreading a large
    /// backfill over several runs; a later run continues where this one stopped.
    pub max_batches: Option<u64>,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            batch_size: 5_000,
            max_batches: None,
        }
    }
}

impl BackfillOptions {
    /// Options with `batch_size` rows per batch and no batch limit.
    pub fn batch_size(batch_size: u64) -> Self {
        Self {
            batch_size,
            max_batches: None,
        }
    }

    /// Stops after `max_batches` batches.
    #[must_use]
    pub fn max_batches(mut self, max_batches: u64) -> Self {
        self.max_batches = Some(max_batches);
        self
    }
}

/// What [`backfill`] (or [`rollback_backfill`]) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackfillReport {
    /// Rows updated per table, in plan order.
    pub updated: Vec<(String, u64)>,
    /// `UPDATE` statements run that changed at least one row.
    pub batches: u64,
    /// Whether every table is done (`false`: stopped by [`BackfillOptions::max_batches`]; run
    /// again to continue).
    pub complete: bool,
}

impl BackfillReport {
    /// Rows updated in all tables.
    pub fn total(&self) -> u64 {
        self.updated.iter().map(|(_, n)| n).sum()
    }
}

/// Step 2: sets `tenant_id` to the default tenant on every row where it is `NULL`, table by table,
/// at most [`BackfillOptions::batch_size`] rows per `UPDATE`.
///
/// Every batch is one statement that commits on its own and only touches rows that are still
/// `NULL`, so the step is idempotent (a second run updates nothing) and resumable (after a crash,
/// or after stopping at [`BackfillOptions::max_batches`], the rows done so far stay done and the
/// next run continues with the rest). Rows the application inserts meanwhile without a tenant are
/// caught by the next run; run it once more right before [`validate`](fn@super::validate).
///
/// On PostgreSQL and SQLite a batch is
/// `UPDATE t SET tenant_id = ? WHERE tenant_id IS NULL AND id IN (SELECT id FROM t WHERE tenant_id IS NULL ORDER BY id LIMIT n)`,
/// on MySQL (which cannot select from the table it updates) `UPDATE t SET .. WHERE tenant_id IS NULL ORDER BY id LIMIT n`.
///
/// # Errors
///
/// [`AdoptError::Plan`] for an invalid plan or a batch size of 0; the preconditions of
/// [`expand`](fn@super::expand) ([`AdoptError::NoTenantsTable`], [`AdoptError::UnsupportedId`], ..);
/// [`AdoptError::Db`] if the database refuses (for example: no `tenant_id` column, run [`expand`](fn@super::expand) first).
pub async fn backfill(
    db: &DatabaseConnection,
    plan: &AdoptPlan,
    options: &BackfillOptions,
) -> Result<BackfillReport, AdoptError> {
    plan.check()?;
    preflight(db, plan).await?;
    let value = Value::from(plan.default_tenant);
    run_batches(db, plan, options, Some(value), None).await
}

/// Undoes [`backfill`]: sets `tenant_id` back to `NULL` where it is the default tenant, in batches
/// like [`backfill`] (and as resumable). Rows of other tenants are not touched. Run
/// [`rollback_enforce`](fn@super::rollback_enforce) first if [`enforce`](fn@super::enforce) ran (the column is `NOT NULL` then).
///
/// # Errors
///
/// As [`backfill`].
pub async fn rollback_backfill(
    db: &DatabaseConnection,
    plan: &AdoptPlan,
    options: &BackfillOptions,
) -> Result<BackfillReport, AdoptError> {
    let value = Value::from(plan.default_tenant);
    run_batches(db, plan, options, None, Some(value)).await
}

/// `SET tenant_id = set WHERE tenant_id IS NOT DISTINCT FROM from`, in batches. Exactly one of
/// `set` and `from` is `Some`.
async fn run_batches(
    db: &DatabaseConnection,
    plan: &AdoptPlan,
    options: &BackfillOptions,
    set: Option<Value>,
    from: Option<Value>,
) -> Result<BackfillReport, AdoptError> {
    plan.check()?;
    if options.batch_size == 0 {
        return Err(AdoptError::Plan("batch size 0".to_owned()));
    }
    let backend = db.get_database_backend();
    let tenant = q(backend, TENANT_COLUMN);
    let mut report = BackfillReport {
        complete: true,
        ..BackfillReport::default()
    };
    'tables: for table in &plan.tables {
        let t = q(backend, &table.name);
        let id = q(backend, &table.id_column);
        let mut values = Vec::new();
        let set_sql = match &set {
            Some(v) => {
                values.push(v.clone());
                param(backend, values.len())
            }
            None => "NULL".to_owned(),
        };
        let filter = match &from {
            Some(v) => {
                values.push(v.clone());
                format!("{tenant} = {}", param(backend, values.len()))
            }
            None => format!("{tenant} IS NULL"),
        };
        let n = options.batch_size;
        let sql = if backend == DbBackend::MySql {
            format!("UPDATE {t} SET {tenant} = {set_sql} WHERE {filter} ORDER BY {id} LIMIT {n}")
        } else {
            // The inner filter repeats the placeholder's value: bind it a second time.
            if from.is_some() {
                values.push(values[values.len() - 1].clone());
            }
            let inner = match &from {
                Some(_) => format!("{tenant} = {}", param(backend, values.len())),
                None => format!("{tenant} IS NULL"),
            };
            format!(
                "UPDATE {t} SET {tenant} = {set_sql} WHERE {filter} AND {id} IN \
                 (SELECT {id} FROM {t} WHERE {inner} ORDER BY {id} LIMIT {n})"
            )
        };
        let mut updated = 0;
        loop {
            if options.max_batches.is_some_and(|max| report.batches >= max) {
                report.complete = false;
                report.updated.push((table.name.clone(), updated));
                break 'tables;
            }
            let done = db
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    &sql,
                    values.clone(),
                ))
                .await?
                .rows_affected();
            if done == 0 {
                break;
            }
            report.batches += 1;
            updated += done;
            tracing::debug!(table = %table.name, rows = done, "adopt: batch");
        }
        report.updated.push((table.name.clone(), updated));
    }
    if !report.complete {
        // A table that was not reached: nothing updated in it yet.
        for table in &plan.tables {
            if !report.updated.iter().any(|(t, _)| t == &table.name) {
                report.updated.push((table.name.clone(), 0));
            }
        }
    }
    Ok(report)
}
