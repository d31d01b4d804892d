//! The names tenant-scope relies on: the tenant column, the library's own tables, the PostgreSQL
//! setting and policy.
//!
//! They are defined once, in `tenant_scope_catalog::contract`, and re-exported here: the runtime
//! takes every one of them from this module, and the schema helpers, the checks and the generator
//! take the same ones.

pub use tenant_scope_catalog::contract::{
    AUDIT_TABLE, ID_COLUMN, JOBS_TABLE, MIGRATIONS_TABLE, POLICY_NAME, POLICY_PREDICATE,
    POLICY_PREDICATE_AS_STORED, SLUG_COLUMN, STATUS_COLUMN, SYSTEM_AUDIT_TABLE, TENANT_ACTIVE,
    TENANT_COLUMN, TENANT_DELETED, TENANT_SETTING, TENANT_SUSPENDED, TENANTS_TABLE,
};
