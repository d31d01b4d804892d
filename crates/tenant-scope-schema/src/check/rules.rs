//! The schema findings every backend shares.

use tenant_scope_catalog::{Catalog, Classification, ForeignKey, Key, RefAction, Table, Tenancy};

use super::{Finding, Severity, codes};
use crate::{ID_COLUMN, TENANT_COLUMN};

/// Whether a foreign key maps the child's `tenant_id` to the parent's `tenant_id`.
pub(super) fn is_tenant_composite(fk: &ForeignKey) -> bool {
    fk.columns
        .iter()
        .zip(&fk.ref_columns)
        .any(|(c, p)| c == TENANT_COLUMN && p == TENANT_COLUMN)
}

/// The foreign keys of `table` (tenant-owned) to another tenant-owned table that are not composite on
/// `tenant_id`: a row may reference a parent of another tenant.
pub(super) fn leaky_foreign_keys<'a>(
    table: &'a Table,
    tenancy: &'a Classification,
) -> impl Iterator<Item = &'a ForeignKey> + 'a {
    table
        .foreign_keys
        .iter()
        .filter(move |fk| tenancy.is_tenant_owned(&fk.ref_table) && !is_tenant_composite(fk))
}

pub(super) fn schema_findings(catalog: &Catalog, tenancy: &Classification) -> Vec<Finding> {
    let mut out = Vec::new();
    for table in catalog.tables.values() {
        if matches!(
            tenancy.of(&table.name),
            Tenancy::Global | Tenancy::SystemOnly | Tenancy::Ignored
        ) {
            continue;
        }
        let Some(tenant) = table.column(TENANT_COLUMN) else {
            out.push(Finding::new(
                codes::TABLE_WITHOUT_TENANT_COLUMN,
                Severity::Error,
                Some(&table.name),
                vec![],
                format!(
                    "table `{}` has no {TENANT_COLUMN} column and is not declared global, so nothing scopes its rows to a tenant",
                    table.name
                ),
                format!(
                    "add `{TENANT_COLUMN} NOT NULL REFERENCES tenants (id)` leading the primary key, or declare it global (--global {})",
                    table.name
                ),
            ));
            continue;
        };
        table_findings(table, tenant.nullable, tenancy, &mut out);
    }
    out
}

fn table_findings(
    table: &Table,
    tenant_nullable: bool,
    tenancy: &Classification,
    out: &mut Vec<Finding>,
) {
    let name = &table.name;
    if tenant_nullable {
        out.push(Finding::new(
            codes::TENANT_COLUMN_NULLABLE,
            Severity::Error,
            Some(name),
            vec![TENANT_COLUMN.into()],
            format!("`{name}.{TENANT_COLUMN}` is nullable: a row can belong to no tenant"),
            format!(
                "backfill the NULL rows, then `ALTER TABLE {name} ALTER COLUMN {TENANT_COLUMN} SET NOT NULL` (SQLite: rebuild the table)"
            ),
        ));
    }
    if table.primary_key.first().map(String::as_str) != Some(TENANT_COLUMN) {
        let message = if table.primary_key.is_empty() {
            format!("`{name}` has no primary key; it must be ({TENANT_COLUMN}, id)")
        } else {
            format!(
                "the primary key of `{name}` is ({}), which does not lead with {TENANT_COLUMN}: a lookup by id alone is not tenant-scoped",
                table.primary_key.join(", ")
            )
        };
        out.push(Finding::new(
            codes::PK_NOT_TENANT_LED,
            Severity::Error,
            Some(name),
            table.primary_key.clone(),
            message,
            format!("make the primary key ({TENANT_COLUMN}, id) (TenantTable does)"),
        ));
    }

    for fk in leaky_foreign_keys(table, tenancy) {
        out.push(Finding::new(
            codes::FK_NOT_TENANT_COMPOSITE,
            Severity::Error,
            Some(name),
            fk.columns.clone(),
            format!(
                "foreign key {} ({}) -> {} ({}) does not include {TENANT_COLUMN}: a row can reference a parent of another tenant",
                fk.label(),
                fk.columns.join(", "),
                fk.ref_table,
                fk.ref_columns.join(", ")
            ),
            format!(
                "replace it with FOREIGN KEY ({TENANT_COLUMN}, {}) REFERENCES {} ({TENANT_COLUMN}, {}) (TenantTable::references)",
                non_tenant(&fk.columns).join(", "),
                fk.ref_table,
                non_tenant(&fk.ref_columns).join(", ")
            ),
        ));
    }

    for fk in &table.foreign_keys {
        let changes_tenant = fk.columns.iter().any(|c| c == TENANT_COLUMN)
            && matches!(fk.on_delete, RefAction::SetNull | RefAction::SetDefault)
            && (fk.set_columns.is_empty() || fk.set_columns.iter().any(|c| c == TENANT_COLUMN));
        if changes_tenant {
            out.push(Finding::new(
                codes::FK_SET_NULL_TENANT,
                Severity::Error,
                Some(name),
                fk.columns.clone(),
                format!(
                    "foreign key {} is ON DELETE {} over ({}): deleting the parent would change {TENANT_COLUMN} of the child rows",
                    fk.label(),
                    fk.on_delete.sql(),
                    fk.columns.join(", ")
                ),
                format!(
                    "use ON DELETE RESTRICT or CASCADE (PostgreSQL 15+: ON DELETE SET NULL ({}))",
                    non_tenant(&fk.columns).join(", ")
                ),
            ));
        }
    }

    for fk in &table.foreign_keys {
        let over_tenant = fk.columns.iter().any(|c| c == TENANT_COLUMN);
        if over_tenant
            && matches!(
                fk.on_update,
                RefAction::Cascade | RefAction::SetNull | RefAction::SetDefault
            )
        {
            out.push(Finding::new(
                codes::FK_UPDATE_CHANGES_TENANT,
                Severity::Error,
                Some(name),
                fk.columns.clone(),
                format!(
                    "foreign key {} is ON UPDATE {} over ({}): one update of the parent rewrites {TENANT_COLUMN} of every child row",
                    fk.label(),
                    fk.on_update.sql(),
                    fk.columns.join(", ")
                ),
                "use ON UPDATE RESTRICT: tenant_id and id never change".to_owned(),
            ));
        }
    }

    let keys =
        (table.uniques.iter().map(|k| (k, true))).chain(table.indexes.iter().map(|k| (k, false)));
    for (ix, unique) in keys {
        let ix: &Key = ix;
        let has_tenant = ix.columns.iter().any(|c| c == TENANT_COLUMN);
        if unique && !has_tenant {
            out.push(Finding::new(
                codes::UNIQUE_WITHOUT_TENANT,
                Severity::Error,
                Some(name),
                ix.columns.clone(),
                format!(
                    "unique key {} on ({}) does not include {TENANT_COLUMN}: a duplicate in one tenant is refused because of another tenant's row, which tells the caller that it exists",
                    ix.name,
                    ix.columns.join(", ")
                ),
                format!(
                    "make it UNIQUE ({TENANT_COLUMN}, {}) (TenantTable::unique / tenant_unique_index)",
                    ix.columns.join(", ")
                ),
            ));
            continue;
        }
        if ix.columns.first().map(String::as_str) == Some(TENANT_COLUMN) {
            continue;
        }
        // An index that exactly serves a foreign key is judged with that key: one to a global table needs an
        // index led by its own column (MySQL creates it by itself), and one between tenant-owned tables that is
        // not composite is already a finding whose fix replaces the index too.
        let serves_fk = table.foreign_keys.iter().any(|fk| {
            fk.columns == ix.columns
                && (!tenancy.is_tenant_owned(&fk.ref_table) || !is_tenant_composite(fk))
        });
        if !unique && serves_fk {
            continue;
        }
        // InnoDB needs an AUTO_INCREMENT id to lead an index, and `(tenant_id, id)` does not: the
        // index on `(id)` that `adopt::enforce` adds for it is required, not a mistake.
        let counter_index =
            ix.columns == [ID_COLUMN] && table.column(ID_COLUMN).is_some_and(|c| c.auto_increment);
        if !unique && counter_index {
            continue;
        }
        out.push(Finding::new(
            codes::INDEX_NOT_TENANT_LED,
            Severity::Warning,
            Some(name),
            ix.columns.clone(),
            format!(
                "index {} on ({}) does not lead with {TENANT_COLUMN}: tenant-scoped queries cannot use it for their tenant predicate",
                ix.name,
                ix.columns.join(", ")
            ),
            format!(
                "recreate it on ({TENANT_COLUMN}, {}) (TenantTable::index / tenant_index)",
                non_tenant(&ix.columns).join(", ")
            ),
        ));
    }
}

fn non_tenant(columns: &[String]) -> Vec<&str> {
    columns
        .iter()
        .map(String::as_str)
        .filter(|c| *c != TENANT_COLUMN)
        .collect()
}
