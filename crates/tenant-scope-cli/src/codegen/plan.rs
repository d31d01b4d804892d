//! What each table becomes: tenant-owned or global, which table is the tenants table, which are link tables.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::{ColumnType, TableCreateStatement};

use super::{GenerateError, normalize::table_name};
use tenant_scope::contract::{ID_COLUMN, SYSTEM_AUDIT_TABLE, TENANT_COLUMN};

/// How a table is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Has a `tenant_id` column: `TenantScoped`.
    TenantOwned,
    /// Declared global: `Global`.
    Global,
    /// The library's own audit log of system access ([`SYSTEM_AUDIT_TABLE`]) when not declared global: an
    /// entity with neither impl, so only `db.system(..)` can query it.
    SystemOnly,
}

/// A foreign key, by table and column names.
#[derive(Debug, Clone)]
struct ForeignKey {
    columns: Vec<String>,
    ref_table: String,
    ref_columns: Vec<String>,
}

/// The tenancy of the schema, decided before any code is generated.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Every generated table.
    pub(crate) kinds: BTreeMap<String, Kind>,
    /// The table `tenant_id` references, whose `id` is a `TenantId`.
    pub(crate) tenants_table: Option<String>,
    /// Link tables of many-to-many relations: link -> the two tables it links.
    pub(crate) links: BTreeMap<String, [String; 2]>,
}

impl Plan {
    /// Classifies `tables` (already without the migration table), checking that every table is either
    /// tenant-owned or declared `global`.
    pub(crate) fn new(
        tables: &[TableCreateStatement],
        global: &[String],
    ) -> Result<Self, GenerateError> {
        let mut names = BTreeSet::new();
        let mut kinds = BTreeMap::new();
        let mut undeclared = Vec::new();
        let mut global_but_owned = Vec::new();
        let declared: BTreeSet<&str> = global
            .iter()
            .map(|g| g.trim())
            .filter(|g| !g.is_empty())
            .collect();
        for table in tables {
            let name = table_name(table)
                .ok_or_else(|| GenerateError::Codegen("a discovered table has no name".into()))?;
            let owned = has_column(table, TENANT_COLUMN);
            let is_global = declared.contains(name.as_str());
            match (owned, is_global) {
                (true, true) => global_but_owned.push(name.clone()),
                (true, false) => {
                    kinds.insert(name.clone(), Kind::TenantOwned);
                }
                (false, true) => {
                    kinds.insert(name.clone(), Kind::Global);
                }
                (false, false) if name == SYSTEM_AUDIT_TABLE => {
                    kinds.insert(name.clone(), Kind::SystemOnly);
                }
                (false, false) => undeclared.push(name.clone()),
            }
            names.insert(name);
        }
        undeclared.sort();
        global_but_owned.sort();
        if !undeclared.is_empty() {
            return Err(GenerateError::NotTenantScoped(undeclared));
        }
        if !global_but_owned.is_empty() {
            return Err(GenerateError::GlobalWithTenantColumn(global_but_owned));
        }
        let unknown: Vec<String> = declared
            .iter()
            .filter(|g| !names.contains(**g))
            .map(|g| (*g).to_owned())
            .collect();
        if !unknown.is_empty() {
            return Err(GenerateError::UnknownGlobal(unknown));
        }

        // Shapes the generated impls rely on.
        let mut tenants = BTreeSet::new();
        for table in tables {
            let name = table_name(table).unwrap_or_default();
            let shape = |problem: &str| GenerateError::Shape {
                table: name.clone(),
                problem: problem.to_owned(),
            };
            match kinds.get(&name) {
                Some(Kind::TenantOwned) => {
                    if !is_uuid(table, TENANT_COLUMN) {
                        return Err(shape("the `tenant_id` column must be a UUID"));
                    }
                    if !is_uuid(table, ID_COLUMN) {
                        return Err(shape(
                            "a tenant-owned table needs an `id` UUID column (primary key `(tenant_id, id)`)",
                        ));
                    }
                    // Without this key `TenantScoped` would be emitted over a primary key `find_by_id`
                    // accepts a bare id for: the compile-time guarantee would be silently lost.
                    if primary_key(table) != [TENANT_COLUMN, ID_COLUMN] {
                        return Err(shape(
                            "the primary key must be `(tenant_id, id)` (see `tenant-scope check`, \
                             and `schema::adopt` to migrate a legacy table)",
                        ));
                    }
                    for fk in foreign_keys(table) {
                        if fk.columns == [TENANT_COLUMN] && fk.ref_columns == [ID_COLUMN] {
                            tenants.insert(fk.ref_table.clone());
                        }
                        let to_tenant_table =
                            matches!(kinds.get(&fk.ref_table), Some(Kind::TenantOwned));
                        if to_tenant_table
                            && fk.columns.first().map(String::as_str) != Some(TENANT_COLUMN)
                        {
                            return Err(shape(&format!(
                                "the foreign key ({}) -> {} is not composite on `tenant_id`: it must be \
                                 `(tenant_id, {}) -> {} (tenant_id, id)`",
                                fk.columns.join(", "),
                                fk.ref_table,
                                fk.columns.join(", "),
                                fk.ref_table
                            )));
                        }
                    }
                }
                Some(Kind::Global) if !has_column(table, ID_COLUMN) => {
                    return Err(shape("a global table needs an `id` column"));
                }
                _ => {}
            }
        }
        if tenants.len() > 1 {
            return Err(GenerateError::TenantsTable(format!(
                "`tenant_id` references the `id` of several tables: {}",
                tenants.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let tenants_table = tenants.into_iter().next();
        if let Some(tenants) = &tenants_table {
            let table = tables
                .iter()
                .find(|t| table_name(t).as_deref() == Some(tenants.as_str()));
            if !table.is_some_and(|t| is_uuid(t, ID_COLUMN)) {
                return Err(GenerateError::TenantsTable(format!(
                    "`{tenants}.id` (referenced by `tenant_id`) must be a UUID"
                )));
            }
        }

        let mut links = BTreeMap::new();
        for table in tables {
            let name = table_name(table).unwrap_or_default();
            if let Some(pair) = link_of(table, &name, tenants_table.as_deref()) {
                links.insert(name, pair);
            }
        }
        Ok(Plan {
            kinds,
            tenants_table,
            links,
        })
    }
}

/// Whether `table` has a column `name`.
fn has_column(table: &TableCreateStatement, name: &str) -> bool {
    table
        .get_columns()
        .iter()
        .any(|c| c.get_column_name() == name)
}

/// Whether `table` has a column `name` of type UUID.
fn is_uuid(table: &TableCreateStatement, name: &str) -> bool {
    table
        .get_columns()
        .iter()
        .any(|c| c.get_column_name() == name && c.get_column_type() == Some(&ColumnType::Uuid))
}

fn foreign_keys(table: &TableCreateStatement) -> Vec<ForeignKey> {
    table
        .get_foreign_key_create_stmts()
        .iter()
        .map(|fk| fk.get_foreign_key())
        .filter_map(|fk| {
            Some(ForeignKey {
                columns: fk.get_columns(),
                ref_table: fk.get_ref_table()?.sea_orm_table().to_string(),
                ref_columns: fk.get_ref_columns(),
            })
        })
        .collect()
}

/// The two tables `table` links, if it is a pure link table: two foreign keys (besides the one to the tenants
/// table) to two other, distinct tables, and no column outside its primary key and its foreign keys.
fn link_of(
    table: &TableCreateStatement,
    name: &str,
    tenants_table: Option<&str>,
) -> Option<[String; 2]> {
    let fks = foreign_keys(table);
    let (tenant_fks, others): (Vec<_>, Vec<_>) = fks.into_iter().partition(|fk| {
        fk.columns == [TENANT_COLUMN] && Some(fk.ref_table.as_str()) == tenants_table
    });
    let [a, b] = <[ForeignKey; 2]>::try_from(others).ok()?;
    if a.ref_table == b.ref_table || a.ref_table == name || b.ref_table == name {
        return None;
    }
    let mut covered: BTreeSet<String> = primary_key(table).into_iter().collect();
    for fk in tenant_fks.iter().chain([&a, &b]) {
        covered.extend(fk.columns.iter().cloned());
    }
    let pure = table
        .get_columns()
        .iter()
        .all(|c| covered.contains(&c.get_column_name()));
    pure.then_some([a.ref_table, b.ref_table])
}

/// The primary key columns of `table` (column-level or table-level).
fn primary_key(table: &TableCreateStatement) -> Vec<String> {
    let mut pk: Vec<String> = table
        .get_columns()
        .iter()
        .filter(|c| c.get_column_spec().primary_key)
        .map(|c| c.get_column_name())
        .collect();
    for index in table.get_indexes().iter().filter(|i| i.is_primary_key()) {
        pk.extend(index.get_index_spec().get_column_names());
    }
    pk
}
