//! Step 1: expand.

use sea_orm::sea_query::{Alias, ColumnDef, Table};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};

use super::{AdoptError, AdoptPlan, count, exec, find, param, preflight, q};
use crate::{ID_COLUMN, TENANT_COLUMN};

/// What [`expand`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpandReport {
    /// Whether the default tenant's row was created (`false`: it existed).
    pub tenant_created: bool,
    /// The tables that got a `tenant_id` column now (the others had it).
    pub columns_added: Vec<String>,
}

/// Step 1: adds a nullable `tenant_id` column (the type of `tenants.id`: `uuid`, `binary(16)` on
/// MySQL) to every table of the plan that does not have one, and inserts the default tenant's row
/// into the tenants table if it is missing. Existing rows are not touched; the application keeps
/// working unchanged (new rows get `NULL` until [`backfill`](fn@super::backfill) runs, which also catches them).
///
/// Idempotent: a second run finds the row and the columns and does nothing.
///
/// # Errors
///
/// [`AdoptError::Plan`] for an invalid plan; [`AdoptError::NoTenantsTable`] and
/// [`AdoptError::TenantsTable`] if the tenants table is missing or unusable;
/// [`AdoptError::UnsupportedId`] for a table whose id is not a UUID or an integer (checked before
/// anything is changed); [`AdoptError::Db`] if the database refuses (a tenant name that is already
/// taken by another id, ..).
pub async fn expand(db: &DatabaseConnection, plan: &AdoptPlan) -> Result<ExpandReport, AdoptError> {
    plan.check()?;
    preflight(db, plan).await?;
    let backend = db.get_database_backend();
    let mut report = ExpandReport::default();
    let tenant = Value::from(plan.default_tenant);
    let tenants = q(backend, &plan.tenants_table);
    let exists = count(
        db,
        &format!(
            "SELECT COUNT(*) FROM {tenants} WHERE {} = {}",
            q(backend, ID_COLUMN),
            param(backend, 1)
        ),
        vec![tenant.clone()],
    )
    .await?;
    if exists == 0 {
        let sql = format!(
            "INSERT INTO {tenants} ({}, {}, {}) VALUES ({}, {}, {})",
            q(backend, ID_COLUMN),
            q(backend, "name"),
            q(backend, "created_at"),
            param(backend, 1),
            param(backend, 2),
            param(backend, 3),
        );
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            vec![
                tenant,
                plan.default_tenant_name.clone().into(),
                chrono::Utc::now().into(),
            ],
        ))
        .await?;
        report.tenant_created = true;
    }
    for table in &plan.tables {
        let Some(shape) = find(db, &table.name).await? else {
            return Err(AdoptError::Plan(format!(
                "table `{}` does not exist",
                table.name
            )));
        };
        if shape.has_column(TENANT_COLUMN) {
            continue;
        }
        let alter = Table::alter()
            .table(Alias::new(table.name.as_str()))
            .add_column(ColumnDef::new(TENANT_COLUMN).uuid().null())
            .to_owned();
        db.execute(&alter).await?;
        report.columns_added.push(table.name.clone());
    }
    Ok(report)
}

/// Undoes [`expand`]: drops `tenant_id` from every table of the plan that has it (with whatever
/// [`backfill`](fn@super::backfill) wrote into it). Run [`rollback_enforce`](fn@super::rollback_enforce) first if [`enforce`](fn@super::enforce) ran.
///
/// The default tenant's row is left in place: other tables may reference it by now, and a later
/// [`expand`] reuses it. Delete it by hand if nothing refers to it.
///
/// # Errors
///
/// [`AdoptError::Plan`] for an invalid plan, [`AdoptError::Db`] if the database refuses (for
/// example because the column is still part of a key: roll back [`enforce`](fn@super::enforce) first).
pub async fn rollback_expand(db: &DatabaseConnection, plan: &AdoptPlan) -> Result<(), AdoptError> {
    plan.check()?;
    let backend = db.get_database_backend();
    for table in plan.tables.iter().rev() {
        let Some(shape) = find(db, &table.name).await? else {
            continue;
        };
        if !shape.has_column(TENANT_COLUMN) {
            continue;
        }
        if shape.primary_key.iter().any(|c| c == TENANT_COLUMN) {
            return Err(AdoptError::Unsupported {
                table: table.name.clone(),
                reason: "tenant_id is part of the primary key: run rollback_enforce first"
                    .to_owned(),
            });
        }
        exec(
            db,
            format!(
                "ALTER TABLE {} DROP COLUMN {}",
                q(backend, &table.name),
                q(backend, TENANT_COLUMN)
            ),
        )
        .await?;
    }
    Ok(())
}
