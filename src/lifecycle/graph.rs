//! What the lifecycle walks, read from the catalog at run time: the tenant-owned tables in the
//! order of their foreign keys (parents first), their columns, and the global rows they reference.
//!
//! Nothing here names a table of the reference schema: a table a migration adds later is found the
//! same way, without a change to this code.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::SelectStatement;
use sea_orm::{DbBackend, QueryResult};
use tenant_scope_catalog::{Catalog, Table};

use crate::contract::{ID_COLUMN, TENANT_COLUMN, TENANTS_TABLE};
use crate::error::{Error, Result};

use super::codec::{ColumnCodec, Encoded};

/// A table's writable columns (generated columns are left out: the database computes them) and
/// how each is read and written.
#[derive(Clone, Debug)]
pub(crate) struct TableSpec {
    /// The table's name, as the catalog has it.
    pub(crate) name: String,
    /// Its columns, in table order.
    pub(crate) columns: Vec<ColumnCodec>,
}

impl TableSpec {
    fn new(backend: DbBackend, table: &Table) -> TableSpec {
        TableSpec {
            name: table.name.clone(),
            columns: table
                .columns
                .iter()
                .filter(|c| !c.generated)
                .map(|c| ColumnCodec::new(backend, c))
                .collect(),
        }
    }

    /// The column `name`.
    pub(crate) fn column(&self, name: &str) -> Option<&ColumnCodec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Adds every column to `select`, in order (see [`ColumnCodec::select`]).
    pub(crate) fn select(&self, select: &mut SelectStatement) {
        for column in &self.columns {
            column.select(select);
        }
    }

    /// The values of a row read with [`TableSpec::select`], by column, in order.
    pub(crate) fn decode(&self, row: &QueryResult) -> Result<Vec<(String, Encoded)>> {
        let mut at = 0;
        let mut values = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            values.push((column.name.clone(), column.decode(row, at)?));
            at += column.width();
        }
        Ok(values)
    }
}

/// A global table whose rows tenant-owned rows reference through a plain foreign key to its `id`
/// (such as `permissions`, referenced by `role_permissions.permission_id`).
#[derive(Clone, Debug)]
pub(crate) struct GlobalSpec {
    /// The table.
    pub(crate) table: TableSpec,
    /// The references to it: `(tenant-owned table, column)`.
    pub(crate) references: Vec<(String, String)>,
}

/// Everything the lifecycle steps walk, for one database.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The `tenants` table.
    pub(crate) tenants: TableSpec,
    /// The tenant-owned tables, parents before children.
    pub(crate) tables: Vec<TableSpec>,
    /// The global tables the tenant-owned ones reference, by name.
    pub(crate) globals: Vec<GlobalSpec>,
}

impl Plan {
    /// The tenant-owned table `name`.
    pub(crate) fn table(&self, name: &str) -> Option<&TableSpec> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The referenced global table `name`.
    pub(crate) fn global(&self, name: &str) -> Option<&GlobalSpec> {
        self.globals.iter().find(|g| g.table.name == name)
    }
}

/// Every table of the catalog with a `tenant_id` column, by name: what the integrity scan counts
/// (also a table the other steps refuse, such as one without `id`).
pub(crate) fn tables_with_tenant(catalog: &Catalog) -> Vec<&Table> {
    catalog
        .tables
        .values()
        .filter(|t| t.name != TENANTS_TABLE && t.has_column(TENANT_COLUMN))
        .collect()
}

/// The plan of `catalog`.
///
/// # Errors
///
/// [`Error::Invalid`], naming the tables, if the schema has no `tenants` table, a table with
/// `tenant_id` but no `id`, a tenant-owned table whose `(tenant_id, id)` is not a key (its rows
/// could not be paged through by `id`), or tenant-owned tables whose foreign keys form a cycle (a
/// table that references itself included): there is then no order with every parent before its
/// children. Nothing has been read or written of any tenant.
pub(crate) fn plan(catalog: &Catalog) -> Result<Plan> {
    let backend = catalog.backend.db_backend();
    let tenants = catalog
        .table(TENANTS_TABLE)
        .ok_or_else(|| Error::Invalid(format!("the schema has no `{TENANTS_TABLE}` table")))?;
    let owned = tables_with_tenant(catalog);
    let without_id: Vec<&str> = owned
        .iter()
        .filter(|t| !t.has_column(ID_COLUMN))
        .map(|t| t.name.as_str())
        .collect();
    if !without_id.is_empty() {
        return Err(Error::Invalid(format!(
            "the tables {} have `{TENANT_COLUMN}` but no `{ID_COLUMN}` column: the lifecycle \
             steps read, erase and write a tenant's rows by (`{TENANT_COLUMN}`, `{ID_COLUMN}`)",
            names(&without_id)
        )));
    }
    let unkeyed: Vec<&str> = owned
        .iter()
        .filter(|t| !keyed(t))
        .map(|t| t.name.as_str())
        .collect();
    if !unkeyed.is_empty() {
        return Err(Error::Invalid(format!(
            "in the tables {}, (`{TENANT_COLUMN}`, `{ID_COLUMN}`) is neither the primary key nor \
             unique: their rows cannot be paged through by `{ID_COLUMN}`",
            names(&unkeyed)
        )));
    }
    let names_owned: BTreeSet<&str> = owned.iter().map(|t| t.name.as_str()).collect();
    let mut parents: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut globals: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for table in &owned {
        let entry = parents.entry(table.name.as_str()).or_default();
        for fk in &table.foreign_keys {
            let target = fk.ref_table.as_str();
            if names_owned.contains(target) {
                entry.insert(target);
            } else if target != TENANTS_TABLE
                && fk.columns.len() == 1
                && fk.ref_columns == [ID_COLUMN]
                && catalog.table(target).is_some()
            {
                globals
                    .entry(target)
                    .or_default()
                    .push((table.name.clone(), fk.columns[0].clone()));
            }
        }
    }
    let order = order(&parents).map_err(|cycle| {
        let selfish: Vec<&str> = cycle
            .iter()
            .copied()
            .filter(|t| parents.get(t).is_some_and(|p| p.contains(t)))
            .collect();
        let also = if selfish.is_empty() {
            String::new()
        } else {
            format!(" ({} reference themselves)", names(&selfish))
        };
        Error::Invalid(format!(
            "the foreign keys of the tenant-owned tables {} form a cycle{also}: there is no order \
             with every parent before its children, which export, erase and import need; break the \
             cycle (or drop the self-reference) first",
            names(&cycle)
        ))
    })?;
    let tables = order
        .into_iter()
        .filter_map(|name| catalog.table(name))
        .map(|t| TableSpec::new(backend, t))
        .collect();
    let globals = globals
        .into_iter()
        .filter_map(|(name, references)| {
            catalog.table(name).map(|t| GlobalSpec {
                table: TableSpec::new(backend, t),
                references,
            })
        })
        .collect();
    Ok(Plan {
        tenants: TableSpec::new(backend, tenants),
        tables,
        globals,
    })
}

/// Whether `(tenant_id, id)` is the primary key or a unique key of `table`, in either order.
fn keyed(table: &Table) -> bool {
    let pair = |columns: &[String]| {
        columns.len() == 2
            && columns.iter().any(|c| c == TENANT_COLUMN)
            && columns.iter().any(|c| c == ID_COLUMN)
    };
    pair(&table.primary_key) || table.uniques.iter().any(|k| !k.partial && pair(&k.columns))
}

/// The tables in an order with every table after the tables it references (`parents`: table ->
/// the tables it references); among tables that are ready at the same time, by name. `Err` with the
/// tables that are left when none is ready: each is on a cycle or below one.
fn order<'a>(parents: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Result<Vec<&'a str>, Vec<&'a str>> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(parents.len());
    while order.len() < parents.len() {
        let ready: Vec<&str> = parents
            .iter()
            .filter(|(table, refs)| {
                !placed.contains(*table) && refs.iter().all(|r| placed.contains(r))
            })
            .map(|(table, _)| *table)
            .collect();
        if ready.is_empty() {
            return Err(parents
                .keys()
                .copied()
                .filter(|t| !placed.contains(t))
                .collect());
        }
        for table in ready {
            placed.insert(table);
            order.push(table);
        }
    }
    Ok(order)
}

/// `a`, `b` and `c`, for messages.
fn names(tables: &[&str]) -> String {
    let quoted: Vec<String> = tables.iter().map(|t| format!("`{t}`")).collect();
    quoted.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph<'a>(edges: &[(&'a str, &[&'a str])]) -> BTreeMap<&'a str, BTreeSet<&'a str>> {
        edges
            .iter()
            .map(|(t, refs)| (*t, refs.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn parents_come_first() {
        let g = graph(&[
            ("comments", &["tasks", "users"]),
            ("tasks", &["projects", "users"]),
            ("projects", &[]),
            ("users", &[]),
            ("user_roles", &["users", "roles"]),
            ("roles", &[]),
        ]);
        let order = order(&g).expect("no cycle");
        let at = |t: &str| order.iter().position(|x| *x == t).expect("placed");
        for (table, refs) in &g {
            for parent in refs {
                assert!(at(parent) < at(table), "{parent} before {table}: {order:?}");
            }
        }
        assert_eq!(order.len(), g.len());
    }

    #[test]
    fn cycles_and_self_references_are_found_not_looped_on() {
        let g = graph(&[("a", &["b"]), ("b", &["a"]), ("c", &[]), ("d", &["a"])]);
        assert_eq!(order(&g), Err(vec!["a", "b", "d"]));
        let g = graph(&[("tree", &["tree"]), ("leaf", &[])]);
        assert_eq!(order(&g), Err(vec!["tree"]));
    }
}
