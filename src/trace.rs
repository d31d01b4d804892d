//! One `tracing` span per operation: its name, table, tenant and request id. Never row data.
//!
//! Spans are at DEBUG level with target `tenant_scope` (enable them with, for example,
//! `RUST_LOG=tenant_scope=debug`); the span is named `tenant_scope.op` and carries the fields
//! `op` (`get`, `find`, `count`, `insert`, `update`, `delete`, `update_many`, `delete_many`, ...),
//! `table`, `tenant` and `request_id` (both empty for system and global reads). Values, filters and
//! rows are never recorded.

use sea_orm::EntityTrait;

use crate::tenant::TenantContext;

/// The span of one operation on `table`, for `ctx` if there is one.
pub(crate) fn op_span(op: &'static str, table: &str, ctx: Option<&TenantContext>) -> tracing::Span {
    let span = tracing::debug_span!(
        target: "tenant_scope",
        "tenant_scope.op",
        op,
        table,
        tenant = tracing::field::Empty,
        request_id = tracing::field::Empty,
    );
    if let Some(ctx) = ctx {
        span.record("tenant", tracing::field::display(ctx.tenant()));
        span.record("request_id", ctx.request_id());
    }
    span
}

/// The table name of an entity.
pub(crate) fn table_of<E: EntityTrait>() -> &'static str {
    E::default().table_name()
}
