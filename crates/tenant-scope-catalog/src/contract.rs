//! The names tenant-scope relies on: the tenant column, the library's own tables, the PostgreSQL
//! setting and policy. Defined once, here; the runtime (`tenant_scope::contract`), the schema
//! helpers, the checks and the generator all take them from this module.

/// The tenant column every tenant-owned table leads with. A table that has it is tenant-owned.
pub const TENANT_COLUMN: &str = "tenant_id";

/// The row id column, the second part of every tenant-owned primary key and the primary key of a
/// global table.
pub const ID_COLUMN: &str = "id";

/// The global table of tenants that every `tenant_id` references. Always global.
pub const TENANTS_TABLE: &str = "tenants";

/// The column of [`TENANTS_TABLE`] that holds a tenant's slug, its name in a subdomain (nullable,
/// globally unique).
pub const SLUG_COLUMN: &str = "slug";

/// The column of [`TENANTS_TABLE`] that holds a tenant's state in its lifecycle: one of
/// [`TENANT_ACTIVE`], [`TENANT_SUSPENDED`], [`TENANT_DELETED`] (not null, default active).
pub const STATUS_COLUMN: &str = "status";

/// [`STATUS_COLUMN`]: the tenant is served.
pub const TENANT_ACTIVE: &str = "active";

/// [`STATUS_COLUMN`]: the tenant is kept, but its jobs do not run until it is active again.
pub const TENANT_SUSPENDED: &str = "suspended";

/// [`STATUS_COLUMN`]: the tenant is deleted: its jobs never run; its rows are to be erased (the
/// `tenants` row stays, so its id is never given again).
pub const TENANT_DELETED: &str = "deleted";

/// The tenant-owned table of the library's job queue: each job of a tenant with the sealed context
/// it runs under (see `tenant_scope::jobs`).
pub const JOBS_TABLE: &str = "jobs";

/// The tenant-owned table where the library writes one audit event per write of a tenant
/// (`insert`, `update`, `delete`, `update_many`, `delete_many`), in the same transaction as the
/// write.
pub const AUDIT_TABLE: &str = "audit_events";

/// The global table where system access (`TenantDb::system`) writes one audit event per access:
/// `id` (UUIDv7), `reason`, `created_at`. Neither tenant-owned nor an entity any handle but system
/// access may query.
pub const SYSTEM_AUDIT_TABLE: &str = "system_audit_events";

/// sea-orm-migration's bookkeeping table: neither tenant-owned nor global, never checked or
/// generated.
pub const MIGRATIONS_TABLE: &str = "seaql_migrations";

/// PostgreSQL: the transaction-local setting that holds the current tenant's id.
pub const TENANT_SETTING: &str = "tenant_scope.tenant_id";

/// PostgreSQL: the name of the one row level security policy on every tenant-owned table.
pub const POLICY_NAME: &str = "tenant_isolation";

/// PostgreSQL: the `USING` and `WITH CHECK` expression of the policy. A missing or empty setting
/// matches no row (`current_setting(.., true)` is NULL on a fresh connection and `''` on one that
/// ever set it; `NULLIF` makes both NULL), a malformed one raises.
///
/// ```
/// assert_eq!(
///     tenant_scope_catalog::contract::POLICY_PREDICATE,
///     "tenant_id = NULLIF(current_setting('tenant_scope.tenant_id', true), '')::uuid"
/// );
/// ```
pub const POLICY_PREDICATE: &str =
    "tenant_id = NULLIF(current_setting('tenant_scope.tenant_id', true), '')::uuid";

/// PostgreSQL: [`POLICY_PREDICATE`] as the server prints it back (`pg_get_expr` of the policy's
/// `USING` and `WITH CHECK`): what the self-check and `tenant-scope check` compare a policy with.
pub const POLICY_PREDICATE_AS_STORED: &str =
    "(tenant_id = (NULLIF(current_setting('tenant_scope.tenant_id'::text, true), ''::text))::uuid)";
