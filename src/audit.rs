//! Audit events: one row of [`AUDIT_TABLE`] per write of a tenant, in the write's transaction.
//!
//! Every write through a [`TenantScope`](crate::TenantScope) (`insert`, `update`, `delete`,
//! `update_many`, `delete_many`, and the API-key bookkeeping of [`ApiKeyVerifier`](crate::ApiKeyVerifier))
//! inserts an event with the tenant, the actor, the action, the table, the row's id (none for a
//! bulk statement), the request id and the time, on the same connection and in the same
//! transaction as the write: a write that rolls back leaves no event, and an event that cannot be
//! written fails the write. The events are tenant data like any other: read them with
//! `scope.find::<audit_events::Entity>()`. They are written by the library only: a scope refuses
//! to insert, update or delete rows of [`AUDIT_TABLE`] ([`Error::Invalid`]).
//!
//! System access is audited separately, in the global
//! [`SYSTEM_AUDIT_TABLE`](crate::contract::SYSTEM_AUDIT_TABLE), because it belongs to no one tenant.

use std::fmt;

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ConnectionTrait, Value};
use uuid::Uuid;

use crate::contract::{AUDIT_TABLE, JOBS_TABLE};
use crate::error::{Error, Result};
use crate::tenant::TenantContext;

/// The action of an audit event, stored as its [`as_str`](AuditAction::as_str) text in the
/// `action` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// A row was inserted (`"insert"`).
    Insert,
    /// A row was updated (`"update"`).
    Update,
    /// A row was deleted (`"delete"`).
    Delete,
    /// A scoped `UPDATE` of many rows ran (`"update_many"`; no row id).
    UpdateMany,
    /// A scoped `DELETE` of many rows ran (`"delete_many"`; no row id).
    DeleteMany,
    /// A job was enqueued (`"job.queued"`; the row id is the job's).
    JobQueued,
    /// A worker took a job and started it (`"job.started"`).
    JobStarted,
    /// A job's handler succeeded (`"job.succeeded"`).
    JobSucceeded,
    /// A job's handler failed; it runs again later (`"job.retry"`).
    JobRetry,
    /// A job failed for the last time, or cannot run at all: a dead letter (`"job.dead"`).
    JobDead,
    /// A job was not run because its tenant is suspended; it waits (`"job.held"`).
    JobHeld,
    /// A job was not run because its tenant is deleted; it never will be (`"job.cancelled"`).
    JobCancelled,
}

impl AuditAction {
    /// The text stored in `audit_events.action`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::Insert => "insert",
            AuditAction::Update => "update",
            AuditAction::Delete => "delete",
            AuditAction::UpdateMany => "update_many",
            AuditAction::DeleteMany => "delete_many",
            AuditAction::JobQueued => "job.queued",
            AuditAction::JobStarted => "job.started",
            AuditAction::JobSucceeded => "job.succeeded",
            AuditAction::JobRetry => "job.retry",
            AuditAction::JobDead => "job.dead",
            AuditAction::JobHeld => "job.held",
            AuditAction::JobCancelled => "job.cancelled",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes the audit event of a write of `ctx`'s tenant on `conn` (the write's own connection and
/// transaction).
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    ctx: &TenantContext,
    action: AuditAction,
    table: &str,
    row_id: Option<Value>,
) -> Result<()> {
    let (row_id, row_key) = row_columns(row_id);
    let mut insert = Query::insert();
    insert
        .into_table(AUDIT_TABLE)
        .columns([
            "tenant_id",
            "id",
            "actor",
            "action",
            "table_name",
            "row_id",
            "row_key",
            "request_id",
            "created_at",
        ])
        .values_panic([
            Expr::val(ctx.tenant()),
            Expr::val(Uuid::now_v7()),
            Expr::val(ctx.actor().to_string()),
            Expr::val(action.as_str()),
            Expr::val(table),
            Expr::val(row_id),
            Expr::val(row_key),
            Expr::val(ctx.request_id()),
            Expr::val(chrono::Utc::now()),
        ]);
    conn.execute(&insert)
        .await
        .map(drop)
        .map_err(Error::from_db)
}

/// The `row_id` and `row_key` of an event about the row `id` (both `NULL` for a bulk statement):
/// a UUID id is in both (`row_id` as a UUID, `row_key` as its hyphenated text), an integer id of an
/// adopted table only in `row_key` (its decimal text).
fn row_columns(id: Option<Value>) -> (Value, Value) {
    let key = |text: String| Value::String(Some(text));
    match id {
        Some(Value::Uuid(Some(uuid))) => {
            (Value::Uuid(Some(uuid)), key(uuid.hyphenated().to_string()))
        }
        Some(Value::Int(Some(i))) => (Value::Uuid(None), key(i.to_string())),
        Some(Value::BigInt(Some(i))) => (Value::Uuid(None), key(i.to_string())),
        Some(Value::Unsigned(Some(i))) => (Value::Uuid(None), key(i.to_string())),
        Some(Value::BigUnsigned(Some(i))) => (Value::Uuid(None), key(i.to_string())),
        _ => (Value::Uuid(None), Value::String(None)),
    }
}

/// Refuses a write through a scope of the tables the library keeps itself: the audit events and the
/// job queue.
pub(crate) fn ensure_scope_may_write(table: &str) -> Result<()> {
    if table == AUDIT_TABLE {
        Err(Error::Invalid(
            "audit events are written by the library only; they cannot be inserted, changed or \
             deleted through a scope"
                .into(),
        ))
    } else if table == JOBS_TABLE {
        Err(Error::Invalid(
            "jobs are written by the library only: enqueue one with tenant_scope::jobs::enqueue; \
             a scope may read them"
                .into(),
        ))
    } else {
        Ok(())
    }
}
