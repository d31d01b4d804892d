//! PostgreSQL: what row level security depends on ([`Security`]), and the one rule set that judges
//! it ([`Security::findings`]), with the role as a parameter.
//!
//! Row level security is a wall only if nothing walks around it. The rules look at the role
//! tenant-scope serves as (a superuser or a `BYPASSRLS` role, directly or through a role it may
//! `SET ROLE` to, bypasses every policy; an owner can disable them; `TRUNCATE`, `REFERENCES` and
//! `TRIGGER` reach rows the policies hide), at every tenant-owned table (row level security enabled
//! and forced, the one policy `tenant_isolation` exactly as the library creates it, no other
//! permissive policy ORed with it) and at every view over tenant-owned tables (a view without
//! `security_invoker` runs with its owner's rights; a materialized view stores rows).
//!
//! Two tools apply the same rules, so they cannot disagree:
//!
//! - the connect-time self-check of `TenantDb` reads the [`Security`] of the role it is connected
//!   as ([`Role::Current`]) and refuses to serve on every finding that is a [`Risk`] to that role
//!   ([`Security::refusals`]);
//! - `tenant-scope check` reads it for its `--app-role` ([`Role::Named`], or [`Role::None`]) and
//!   reports every finding ([`Security::findings`]): the risks, and hygiene the self-check does not
//!   refuse on (a policy without `WITH CHECK`, a view no role tenant-scope serves as can read).
//!
//! So whatever the self-check refuses, `tenant-scope check --app-role ROLE` reports.
//!
//! # Which tables
//! Every table (plain, partitioned, or a partition) with a `tenant_id` column, in **every schema**
//! but the system ones (`pg_catalog`, `information_schema`, `pg_*`): a tenant table the role can
//! reach outside the [scope](crate#the-scope) is just as exposed. Objects are named as
//! PostgreSQL's `regclass` prints them: bare when on the `search_path`, schema-qualified otherwise.

mod rules;
mod security;

pub use rules::{Finding, Risk, Rule};
pub use security::{Policy, PolicyCommand, Role, RoleInfo, Security, TableSecurity, ViewSecurity};
