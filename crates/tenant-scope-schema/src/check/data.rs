//! The data integrity scan: counts, never row contents.
//!
//! - `null-tenant-rows`: rows whose `tenant_id` is NULL, on tenant-owned tables where it is nullable.
//! - `orphaned-rows`: child rows whose parent is missing, for every foreign key a tenant-owned table declares
//!   (SQLite with `foreign_keys` off, MySQL with `FOREIGN_KEY_CHECKS = 0` or a PostgreSQL replica session let
//!   them in) and for every *undeclared* reference (below).
//! - `cross-tenant-reference`: child rows whose parent exists only in another tenant, for every reference that
//!   does not include `tenant_id`: a declared single-column foreign key between tenant-owned tables, or an
//!   undeclared one.
//!
//! On PostgreSQL the scan runs in a transaction with `SET LOCAL row_security = off`: for a role that row level
//! security applies to, a query that a policy would filter then fails (the check cannot run, exit 2) instead of
//! silently counting only the rows the policies let it see.
//!
//! An undeclared reference is inferred by name, as legacy schemas name them: a column `<name>_id` of a
//! tenant-owned table that no declared foreign key covers, where a table `<name>s`, `<name>es`, `<nam>ies`
//! or `<name>` with an `id` column exists (`project_id` -> `projects.id`).

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tenant_scope_catalog::{Catalog, Classification, Table};

use super::{CheckError, Finding, Severity, codes};
use crate::{ID_COLUMN, TENANT_COLUMN};

/// A reference from a child table to a parent table, declared or inferred.
struct Reference<'a> {
    child: &'a Table,
    columns: Vec<String>,
    parent: &'a Table,
    ref_columns: Vec<String>,
    declared: bool,
}

pub(super) async fn findings<C: ConnectionTrait>(
    db: &C,
    catalog: &Catalog,
    tenancy: &Classification,
) -> Result<Vec<Finding>, CheckError> {
    let mut out = Vec::new();
    let backend = catalog.backend.db_backend();
    let q = |ident: &str| quote(backend, ident);
    for table in catalog
        .tables
        .values()
        .filter(|t| tenancy.is_tenant_owned(&t.name))
    {
        let name = &table.name;
        if table.column(TENANT_COLUMN).is_some_and(|c| c.nullable) {
            let n = count(
                db,
                &format!(
                    "SELECT COUNT(*) FROM {} WHERE {} IS NULL",
                    q(name),
                    q(TENANT_COLUMN)
                ),
            )
            .await?;
            if n > 0 {
                out.push(Finding::new(
                    codes::NULL_TENANT_ROWS,
                    Severity::Error,
                    Some(name),
                    vec![TENANT_COLUMN.into()],
                    format!("{n} row{} of `{name}` {} NULL {TENANT_COLUMN}: {} no tenant", plural(n), if n == 1 { "has" } else { "have" }, if n == 1 { "it belongs to" } else { "they belong to" }),
                    format!("assign them to their tenant (tenant_scope_schema::adopt backfill) or delete them, then make {TENANT_COLUMN} NOT NULL"),
                ));
            }
        }

        for reference in references(catalog, table) {
            scan_reference(db, backend, &reference, tenancy, &mut out).await?;
        }
    }
    Ok(out)
}

fn plural(n: i64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The declared foreign keys of `table`, then the references inferred by name.
fn references<'a>(catalog: &'a Catalog, table: &'a Table) -> Vec<Reference<'a>> {
    let mut out = Vec::new();
    for fk in &table.foreign_keys {
        if let Some(parent) = catalog.tables.get(&fk.ref_table) {
            out.push(Reference {
                child: table,
                columns: fk.columns.clone(),
                parent,
                ref_columns: fk.ref_columns.clone(),
                declared: true,
            });
        }
    }
    for column in &table.columns {
        let Some(base) = column.name.strip_suffix("_id") else {
            continue;
        };
        if base.is_empty()
            || column.name == TENANT_COLUMN
            || table
                .foreign_keys
                .iter()
                .any(|fk| fk.columns.contains(&column.name))
        {
            continue;
        }
        let mut candidates = vec![format!("{base}s"), format!("{base}es"), base.to_owned()];
        if let Some(stem) = base.strip_suffix('y') {
            candidates.insert(0, format!("{stem}ies"));
        }
        let parent = candidates
            .iter()
            .filter_map(|c| catalog.tables.get(c))
            .find(|p| p.column(ID_COLUMN).is_some());
        if let Some(parent) = parent {
            out.push(Reference {
                child: table,
                columns: vec![column.name.clone()],
                parent,
                ref_columns: vec![ID_COLUMN.into()],
                declared: false,
            });
        }
    }
    out
}

async fn scan_reference<C: ConnectionTrait>(
    db: &C,
    backend: DbBackend,
    r: &Reference<'_>,
    tenancy: &Classification,
    out: &mut Vec<Finding>,
) -> Result<(), CheckError> {
    let q = |ident: &str| quote(backend, ident);
    let child = &r.child.name;
    let parent = &r.parent.name;
    let not_null: Vec<String> = r
        .columns
        .iter()
        .map(|c| format!("c.{} IS NOT NULL", q(c)))
        .collect();
    let matches: Vec<String> = r
        .columns
        .iter()
        .zip(&r.ref_columns)
        .map(|(c, p)| format!("p.{} = c.{}", q(p), q(c)))
        .collect();
    let what = if r.declared {
        "foreign key"
    } else {
        "undeclared reference"
    };
    let cols = r.columns.join(", ");
    let refs = r.ref_columns.join(", ");

    let orphans = count(
        db,
        &format!(
            "SELECT COUNT(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
            q(child),
            not_null.join(" AND "),
            q(parent),
            matches.join(" AND ")
        ),
    )
    .await?;
    if orphans > 0 {
        out.push(Finding::new(
            codes::ORPHANED_ROWS,
            Severity::Error,
            Some(child),
            r.columns.clone(),
            format!(
                "{orphans} row{} of `{child}` reference{} a missing `{parent}` row through the {what} ({cols}) -> {parent} ({refs})",
                plural(orphans),
                if orphans == 1 { "s" } else { "" }
            ),
            "delete the orphans or restore their parents, then keep the foreign key enforced (SQLite: PRAGMA foreign_keys = ON on every connection)".to_owned(),
        ));
    }

    let crosses = r.child.column(TENANT_COLUMN).is_some()
        && tenancy.is_tenant_owned(&r.parent.name)
        && !r
            .columns
            .iter()
            .zip(&r.ref_columns)
            .any(|(c, p)| c == TENANT_COLUMN && p == TENANT_COLUMN);
    if !crosses {
        return Ok(());
    }
    let tenant = q(TENANT_COLUMN);
    let cross = count(
        db,
        &format!(
            "SELECT COUNT(*) FROM {} c WHERE c.{tenant} IS NOT NULL AND {} \
             AND EXISTS (SELECT 1 FROM {} p WHERE {}) \
             AND NOT EXISTS (SELECT 1 FROM {} p WHERE {} AND p.{tenant} = c.{tenant})",
            q(child),
            not_null.join(" AND "),
            q(parent),
            matches.join(" AND "),
            q(parent),
            matches.join(" AND ")
        ),
    )
    .await?;
    if cross > 0 {
        out.push(Finding::new(
            codes::CROSS_TENANT_REFERENCE,
            Severity::Error,
            Some(child),
            r.columns.clone(),
            format!(
                "{cross} row{} of `{child}` reference{} a `{parent}` row of another tenant through the {what} ({cols}) -> {parent} ({refs})",
                plural(cross),
                if cross == 1 { "s" } else { "" }
            ),
            format!(
                "repair or delete those rows, then replace the reference with FOREIGN KEY ({TENANT_COLUMN}, {cols}) REFERENCES {parent} ({TENANT_COLUMN}, {refs})"
            ),
        ));
    }
    Ok(())
}

async fn count<C: ConnectionTrait>(db: &C, sql: &str) -> Result<i64, CheckError> {
    let stmt = Statement::from_string(db.get_database_backend(), sql.to_owned());
    let row = db
        .query_one_raw(stmt)
        .await
        .map_err(|e| CheckError::Scan(e.to_string()))?;
    match row {
        Some(row) => row
            .try_get_by_index::<i64>(0)
            .map_err(|e| CheckError::Scan(e.to_string())),
        None => Ok(0),
    }
}

/// An identifier quoted for `backend`.
fn quote(backend: DbBackend, ident: &str) -> String {
    tenant_scope_catalog::quote_ident(backend, ident)
}
