//! Step 3: validate.

use std::fmt;

use sea_orm::ConnectionTrait;

use super::{AdoptError, AdoptPlan, count, find, preflight, q};
use crate::{ID_COLUMN, TENANT_COLUMN};

/// What [`validate`] found wrong with one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// The table has no `tenant_id` column: run [`expand`](fn@super::expand).
    MissingTenantColumn,
    /// Rows with `tenant_id IS NULL`: run [`backfill`](fn@super::backfill).
    NullTenant,
    /// Rows whose `tenant_id` is not a row of the tenants table.
    UnknownTenant,
    /// Rows whose reference names no parent row (possible where the legacy schema had no foreign
    /// key, or on SQLite with foreign keys off).
    Orphan,
    /// Rows whose parent row belongs to another tenant.
    CrossTenant,
}

/// One problem [`validate`] found: it must be fixed before [`enforce`](fn@super::enforce).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The kind of problem.
    pub kind: FindingKind,
    /// The table.
    pub table: String,
    /// The reference column, for [`FindingKind::Orphan`] and [`FindingKind::CrossTenant`].
    pub column: Option<String>,
    /// How many rows.
    pub rows: u64,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            FindingKind::MissingTenantColumn => "has no tenant_id column (run expand)",
            FindingKind::NullTenant => "row(s) with NULL tenant_id (run backfill)",
            FindingKind::UnknownTenant => "row(s) whose tenant_id is not a tenant",
            FindingKind::Orphan => "row(s) referencing no parent row",
            FindingKind::CrossTenant => "row(s) whose parent is in another tenant",
        };
        match (&self.column, self.kind) {
            (_, FindingKind::MissingTenantColumn) => write!(f, "{}: {what}", self.table),
            (Some(column), _) => write!(f, "{}.{column}: {} {what}", self.table, self.rows),
            (None, _) => write!(f, "{}: {} {what}", self.table, self.rows),
        }
    }
}

/// Step 3: the data checks that must come back empty before [`enforce`](fn@super::enforce): no table without
/// `tenant_id`, no `NULL` `tenant_id`, no `tenant_id` that is not a tenant, no child row whose
/// reference names no parent (orphan), no child row whose parent belongs to another tenant.
///
/// It reads only (one `COUNT(*)` per check), so it is safe to run at any time; `tenant-scope check`
/// runs the same data scan (and the schema checks) on the whole database.
///
/// # Errors
///
/// [`AdoptError::Plan`] for an invalid plan; the preconditions of [`expand`](fn@super::expand)
/// ([`AdoptError::NoTenantsTable`], [`AdoptError::UnsupportedId`], ..); [`AdoptError::Db`] if a
/// query fails.
pub async fn validate(
    db: &impl ConnectionTrait,
    plan: &AdoptPlan,
) -> Result<Vec<Finding>, AdoptError> {
    plan.check()?;
    preflight(db, plan).await?;
    let backend = db.get_database_backend();
    let tenant = q(backend, TENANT_COLUMN);
    let mut findings = Vec::new();
    let mut missing = Vec::new();
    for table in &plan.tables {
        if !find(db, &table.name)
            .await?
            .is_some_and(|t| t.has_column(TENANT_COLUMN))
        {
            missing.push(table.name.as_str());
            findings.push(Finding {
                kind: FindingKind::MissingTenantColumn,
                table: table.name.clone(),
                column: None,
                rows: 0,
            });
        }
    }
    for table in &plan.tables {
        if missing.contains(&table.name.as_str()) {
            continue;
        }
        let t = q(backend, &table.name);
        let mut push = |kind, column: Option<&str>, rows: u64| {
            if rows > 0 {
                findings.push(Finding {
                    kind,
                    table: table.name.clone(),
                    column: column.map(str::to_owned),
                    rows,
                });
            }
        };
        let nulls = count(
            db,
            &format!("SELECT COUNT(*) FROM {t} WHERE {tenant} IS NULL"),
            vec![],
        )
        .await?;
        push(FindingKind::NullTenant, None, nulls);
        let unknown = count(
            db,
            &format!(
                "SELECT COUNT(*) FROM {t} c LEFT JOIN {} p ON p.{} = c.{tenant} \
                 WHERE c.{tenant} IS NOT NULL AND p.{} IS NULL",
                q(backend, &plan.tenants_table),
                q(backend, ID_COLUMN),
                q(backend, ID_COLUMN),
            ),
            vec![],
        )
        .await?;
        push(FindingKind::UnknownTenant, None, unknown);
        for r in &table.references {
            let Some(parent) = plan.find(&r.parent) else {
                continue;
            };
            let p = q(backend, &parent.name);
            let pid = q(backend, &parent.id_column);
            let col = q(backend, &r.column);
            let orphans = count(
                db,
                &format!(
                    "SELECT COUNT(*) FROM {t} c WHERE c.{col} IS NOT NULL \
                     AND NOT EXISTS (SELECT 1 FROM {p} p WHERE p.{pid} = c.{col})"
                ),
                vec![],
            )
            .await?;
            push(FindingKind::Orphan, Some(&r.column), orphans);
            if !missing.contains(&parent.name.as_str()) {
                let cross = count(
                    db,
                    &format!(
                        // Ids are unique per tenant once enforced: a child is cross-tenant when
                        // its id matches a parent, but none in its own tenant.
                        "SELECT COUNT(*) FROM {t} c WHERE c.{col} IS NOT NULL \
                         AND c.{tenant} IS NOT NULL \
                         AND EXISTS (SELECT 1 FROM {p} p WHERE p.{pid} = c.{col}) \
                         AND NOT EXISTS (SELECT 1 FROM {p} p \
                           WHERE p.{pid} = c.{col} AND p.{tenant} = c.{tenant})"
                    ),
                    vec![],
                )
                .await?;
                push(FindingKind::CrossTenant, Some(&r.column), cross);
            }
        }
    }
    Ok(findings)
}
