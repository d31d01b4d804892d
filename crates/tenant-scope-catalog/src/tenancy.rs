//! What each table is to tenant-scope: one classification for `generate` and `check` alike.

use std::collections::{BTreeMap, BTreeSet};

use crate::contract::{MIGRATIONS_TABLE, SYSTEM_AUDIT_TABLE, TENANT_COLUMN, TENANTS_TABLE};
use crate::model::{Catalog, Table};

/// What a table is to tenant-scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tenancy {
    /// It has a `tenant_id` column: its rows belong to tenants, every convention applies.
    TenantOwned,
    /// Deliberately not tenant-owned: `tenants` always, and every table declared global.
    Global,
    /// The library's audit log of system access (`system_audit_events`), unless declared global:
    /// neither tenant-owned nor global; only system access reads or writes it.
    SystemOnly,
    /// sea-orm-migration's bookkeeping (`seaql_migrations`): not the service's data.
    Ignored,
    /// No `tenant_id` column and not declared global: nothing scopes its rows to a tenant.
    Undeclared,
}

/// Declarations of global tables that do not fit the catalog.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenancyError {
    /// Tables declared global that are not in the catalog (sorted): a typo must not pass silently.
    #[error("declared global but not in the schema: {}", quoted(.0))]
    UnknownGlobal(Vec<String>),
    /// Tables declared global that have a `tenant_id` column (sorted): a table with a tenant
    /// column is tenant-owned, whatever is declared.
    #[error("declared global but tenant-owned (has a `tenant_id` column): {}", quoted(.0))]
    GlobalWithTenantColumn(Vec<String>),
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every table of a catalog with its [`Tenancy`], given the tables declared global. Made by
/// [`Catalog::classify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    kinds: BTreeMap<String, Tenancy>,
}

impl Classification {
    /// The tenancy of `table`; [`Tenancy::Undeclared`] for a table the catalog does not have.
    pub fn of(&self, table: &str) -> Tenancy {
        self.kinds
            .get(table)
            .copied()
            .unwrap_or(Tenancy::Undeclared)
    }

    /// Whether `table` is tenant-owned.
    pub fn is_tenant_owned(&self, table: &str) -> bool {
        self.of(table) == Tenancy::TenantOwned
    }

    /// The tables of one tenancy, sorted.
    pub fn tables(&self, tenancy: Tenancy) -> impl Iterator<Item = &str> + '_ {
        self.kinds
            .iter()
            .filter(move |(_, t)| **t == tenancy)
            .map(|(name, _)| name.as_str())
    }
}

/// The tenancy of one table by the rules alone (`globals` are the declared global tables).
fn tenancy(table: &Table, globals: &BTreeSet<&str>) -> Tenancy {
    let name = table.name.as_str();
    if name == MIGRATIONS_TABLE {
        Tenancy::Ignored
    } else if table.has_column(TENANT_COLUMN) {
        Tenancy::TenantOwned
    } else if name == TENANTS_TABLE || globals.contains(name) {
        Tenancy::Global
    } else if name == SYSTEM_AUDIT_TABLE {
        Tenancy::SystemOnly
    } else {
        Tenancy::Undeclared
    }
}

impl Catalog {
    /// Every table's [`Tenancy`], with `declared_global` naming the global tables besides
    /// `tenants` (names are trimmed; empty ones ignored).
    ///
    /// # Errors
    ///
    /// [`TenancyError::GlobalWithTenantColumn`] if a declared global table has a `tenant_id`
    /// column, [`TenancyError::UnknownGlobal`] if one is not in the catalog.
    pub fn classify<S: AsRef<str>>(
        &self,
        declared_global: &[S],
    ) -> Result<Classification, TenancyError> {
        let declared: BTreeSet<&str> = declared_global
            .iter()
            .map(|g| g.as_ref().trim())
            .filter(|g| !g.is_empty())
            .collect();
        let mut with_tenant: Vec<String> = declared
            .iter()
            .filter(|g| self.table(g).is_some_and(|t| t.has_column(TENANT_COLUMN)))
            .map(|g| (*g).to_owned())
            .collect();
        with_tenant.sort();
        if !with_tenant.is_empty() {
            return Err(TenancyError::GlobalWithTenantColumn(with_tenant));
        }
        let unknown: Vec<String> = declared
            .iter()
            .filter(|g| self.table(g).is_none())
            .map(|g| (*g).to_owned())
            .collect();
        if !unknown.is_empty() {
            return Err(TenancyError::UnknownGlobal(unknown));
        }
        let kinds = self
            .tables
            .values()
            .map(|t| (t.name.clone(), tenancy(t, &declared)))
            .collect();
        Ok(Classification { kinds })
    }
}
