//! What each table becomes: tenant-owned or global (the catalog's classification, shared with
//! `tenant-scope check`), which table is the tenants table, which are link tables. Decided before
//! any code is generated, from the catalog: the primary key in key order, the foreign keys as
//! declared.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::ColumnType;
use tenant_scope::contract::{ID_COLUMN, TENANT_COLUMN};
use tenant_scope_catalog::{Catalog, ForeignKey, Table, Tenancy, TenancyError};

use super::GenerateError;

/// How a table is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Has a `tenant_id` column: `TenantScoped`.
    TenantOwned,
    /// Declared global: `Global`.
    Global,
    /// The library's own audit log of system access when not declared global: an entity with
    /// neither impl, so only `db.system(..)` can query it.
    SystemOnly,
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
    /// Classifies the catalog's tables, checking that every table is either tenant-owned or
    /// declared `global`, and that each has the shape the generated impls rely on.
    pub(crate) fn new(catalog: &Catalog, global: &[String]) -> Result<Self, GenerateError> {
        let tenancy = catalog.classify(global).map_err(|e| match e {
            TenancyError::UnknownGlobal(tables) => GenerateError::UnknownGlobal(tables),
            TenancyError::GlobalWithTenantColumn(tables) => {
                GenerateError::GlobalWithTenantColumn(tables)
            }
            other => GenerateError::Codegen(other.to_string()),
        })?;
        let undeclared: Vec<String> = tenancy
            .tables(Tenancy::Undeclared)
            .map(str::to_owned)
            .collect();
        if !undeclared.is_empty() {
            return Err(GenerateError::NotTenantScoped(undeclared));
        }
        let kinds: BTreeMap<String, Kind> = catalog
            .tables
            .keys()
            .filter_map(|name| {
                let kind = match tenancy.of(name) {
                    Tenancy::TenantOwned => Kind::TenantOwned,
                    Tenancy::Global => Kind::Global,
                    Tenancy::SystemOnly => Kind::SystemOnly,
                    _ => return None,
                };
                Some((name.clone(), kind))
            })
            .collect();

        // Shapes the generated impls rely on.
        let mut tenants = BTreeSet::new();
        for (name, kind) in &kinds {
            let table = &catalog.tables[name];
            let shape = |problem: &str| GenerateError::Shape {
                table: name.clone(),
                problem: problem.to_owned(),
            };
            match kind {
                Kind::TenantOwned => {
                    if !is_uuid(table, TENANT_COLUMN) {
                        return Err(shape("the `tenant_id` column must be a UUID"));
                    }
                    if table
                        .column(ID_COLUMN)
                        .and_then(|c| c.id_type(catalog.backend))
                        .is_none()
                    {
                        return Err(shape(
                            "a tenant-owned table needs an `id` column that is a UUID or a 32/64-bit \
                             integer (primary key `(tenant_id, id)`)",
                        ));
                    }
                    // Without this key `TenantScoped` would be emitted over a primary key `find_by_id`
                    // accepts a bare id for: the compile-time guarantee would be silently lost. The
                    // key's own order is what counts, not the order of the columns in the table.
                    if table.primary_key != [TENANT_COLUMN, ID_COLUMN] {
                        return Err(shape(
                            "the primary key must be `(tenant_id, id)` (see `tenant-scope check`, \
                             and `schema::adopt` to migrate a legacy table)",
                        ));
                    }
                    for fk in &table.foreign_keys {
                        if fk.columns == [TENANT_COLUMN] && fk.ref_columns == [ID_COLUMN] {
                            tenants.insert(fk.ref_table.clone());
                        }
                        let to_tenant_table = tenancy.is_tenant_owned(&fk.ref_table);
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
                Kind::Global if !table.has_column(ID_COLUMN) => {
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
        if let Some(tenants) = &tenants_table
            && !catalog
                .table(tenants)
                .is_some_and(|t| is_uuid(t, ID_COLUMN))
        {
            return Err(GenerateError::TenantsTable(format!(
                "`{tenants}.id` (referenced by `tenant_id`) must be a UUID"
            )));
        }

        let links = kinds
            .keys()
            .filter_map(|name| {
                let table = &catalog.tables[name];
                link_of(table, tenants_table.as_deref()).map(|pair| (name.clone(), pair))
            })
            .collect();
        Ok(Plan {
            kinds,
            tenants_table,
            links,
        })
    }
}

/// Whether `table` has a column `name` of type UUID.
fn is_uuid(table: &Table, name: &str) -> bool {
    table
        .column(name)
        .is_some_and(|c| c.ty == Some(ColumnType::Uuid))
}

/// The two tables `table` links, if it is a pure link table: two foreign keys (besides the one to
/// the tenants table) to two other, distinct tables, and no column outside its primary key and
/// its foreign keys.
fn link_of(table: &Table, tenants_table: Option<&str>) -> Option<[String; 2]> {
    let (tenant_fks, others): (Vec<&ForeignKey>, Vec<&ForeignKey>) =
        table.foreign_keys.iter().partition(|fk| {
            fk.columns == [TENANT_COLUMN] && Some(fk.ref_table.as_str()) == tenants_table
        });
    let [a, b] = <[&ForeignKey; 2]>::try_from(others).ok()?;
    if a.ref_table == b.ref_table || a.ref_table == table.name || b.ref_table == table.name {
        return None;
    }
    let mut covered: BTreeSet<&String> = table.primary_key.iter().collect();
    for fk in tenant_fks.iter().chain([&a, &b]) {
        covered.extend(fk.columns.iter());
    }
    let pure = table
        .columns
        .iter()
        .filter(|c| !c.generated)
        .all(|c| covered.contains(&c.name));
    pure.then(|| [a.ref_table.clone(), b.ref_table.clone()])
}
