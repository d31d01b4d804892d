//! Adopting an existing single-tenant database: expand, backfill, validate, enforce.
//!
//! A service that already has a schema without tenants reaches the conventions of this module's
//! parent (`tenant_id` in every tenant-owned table, primary key `(tenant_id, id)`, composite
//! foreign keys, tenant-led unique keys) in four steps. Each step is a function taking a
//! [`DatabaseConnection`](sea_orm::DatabaseConnection) and an [`AdoptPlan`], each is idempotent (running it again does
//! nothing) and each has a rollback that returns to the state before it:
//!
//! | step | what it does | rollback |
//! |---|---|---|
//! | [`expand`] | adds a nullable `tenant_id` to every table; creates the default tenant's row | [`rollback_expand`] drops the column (the tenant row stays) |
//! | [`backfill`] | sets `tenant_id` to the default tenant where it is `NULL`, in batches | [`rollback_backfill`] sets it back to `NULL`, in batches |
//! | [`validate`] | reports `NULL` tenants, unknown tenants, orphans and cross-tenant children | (reads only) |
//! | [`enforce`] | `NOT NULL`, FK to `tenants`, primary key `(tenant_id, id)`, composite FKs, tenant-led uniques and indexes | [`rollback_enforce`] restores the single-tenant keys |
//!
//! docs/adopting.md walks through the path, what can go wrong and the per-backend differences (on
//! SQLite, [`enforce`] rebuilds each table with the 12-step procedure of the SQLite documentation).
//!
//! Every step decides what is left to do from the catalog (`tenant_scope_catalog::Catalog`, the model
//! `tenant-scope check` and `generate` read too), read again after each change and, on PostgreSQL,
//! inside the step's own transaction; [`inspect`] shows a table as the steps see it.
//!
//! ```no_run
//! use tenant_scope::TenantId;
//! use tenant_scope_schema::OnDelete;
//! use tenant_scope_schema::adopt::{self, AdoptPlan, AdoptTable, BackfillOptions};
//!
//! # async fn run(db: &sea_orm::DatabaseConnection) -> Result<(), adopt::AdoptError> {
//! let plan = AdoptPlan::new(TenantId::new(), "Acme (pre-tenancy data)")
//!     .table(AdoptTable::new("customers").unique(["email"]))
//!     .table(AdoptTable::new("orders").references("customer_id", "customers", OnDelete::Cascade));
//!
//! adopt::expand(db, &plan).await?;
//! let counts = adopt::backfill(db, &plan, &BackfillOptions::default()).await?;
//! assert!(counts.complete);
//! let findings = adopt::validate(db, &plan).await?;
//! assert!(findings.is_empty(), "{findings:?}");
//! adopt::enforce(db, &plan).await?;
//! # Ok(()) }
//! ```

mod backfill;
mod enforce;
mod expand;
mod plan;
mod sqlite;
mod validate;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};
use tenant_scope_catalog::{Catalog, CatalogError, IdType, Table};

pub use backfill::{BackfillOptions, BackfillReport, backfill, rollback_backfill};
pub use enforce::{enforce, rollback_enforce};
pub use expand::{ExpandReport, expand, rollback_expand};
pub use plan::{AdoptPlan, AdoptReference, AdoptTable};
pub use validate::{Finding, FindingKind, validate};

use crate::{ID_COLUMN, OnDelete};

/// Why a step could not run. A step that fails leaves the database in a state the same step (or
/// its rollback) can continue from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdoptError {
    /// The plan is invalid (an identifier that is not plain, a parent outside the plan, a table
    /// that does not exist, ..).
    #[error("invalid adopt plan: {0}")]
    Plan(String),
    /// [`enforce`] refused to run: [`validate`] has findings. Fix the data (or backfill) first.
    #[error("the data is not ready to enforce: {} finding(s), first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    NotClean(Vec<Finding>),
    /// The table has something the step cannot carry over safely (SQLite rebuild: a `CHECK`
    /// constraint, a generated column, a unique key the plan does not list, ..).
    #[error("cannot adopt `{table}`: {reason}")]
    Unsupported {
        /// The table.
        table: String,
        /// Why.
        reason: String,
    },
    /// The plan's tenants table (`tenants` unless [`AdoptPlan::tenants_table`] names another) does
    /// not exist. Create the library's tables first (docs/adopting.md, step 0).
    #[error(
        "there is no tenants table `{0}`: create the library's tables in a migration before adopting \
         (docs/adopting.md), or name yours with AdoptPlan::tenants_table"
    )]
    NoTenantsTable(String),
    /// The tenants table does not have the shape the steps write to: a UUID `id`, a `name` and a
    /// `created_at` (the default tenant's row is inserted with these).
    #[error("the tenants table `{table}` cannot be used: {problem}")]
    TenantsTable {
        /// The tenants table.
        table: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A table's id column (the `id` of the target key `(tenant_id, id)`, see
    /// [`AdoptTable::id_column`]) is missing, or of a type tenant-scope does not support as a row
    /// id: a UUID or a 32/64-bit integer ([`IdType`]).
    #[error(
        "cannot adopt `{table}`: its id column `{column}` {found}; a row id must be a UUID or a 32/64-bit \
         integer (name another column with AdoptTable::id_column)"
    )]
    UnsupportedId {
        /// The table.
        table: String,
        /// The id column the plan names.
        column: String,
        /// What was found: "does not exist", or "is `<native type>`".
        found: String,
    },
    /// The schema could not be read (an unsupported backend, no current schema).
    #[error("could not read the schema: {0}")]
    Catalog(CatalogError),
    /// The database refused a statement.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

impl From<CatalogError> for AdoptError {
    fn from(err: CatalogError) -> Self {
        match err {
            CatalogError::Db(err) => AdoptError::Db(err),
            other => AdoptError::Catalog(other),
        }
    }
}

/// The table `table` as the adopt steps see it: the catalog's model of it (columns in table order,
/// the primary key in key order, unique keys, indexes, foreign keys), read on `db` (a pool, or a
/// transaction that changed it). It is also how a test or an operator can confirm a step's effect.
///
/// # Errors
///
/// [`AdoptError::Plan`] if the table does not exist; the database's error otherwise.
pub async fn inspect(db: &impl ConnectionTrait, table: &str) -> Result<Table, AdoptError> {
    find(db, table)
        .await?
        .ok_or_else(|| AdoptError::Plan(format!("table `{table}` does not exist")))
}

/// The preconditions every forward step checks before it changes anything, so that a schema the
/// steps cannot work on is a named [`AdoptError`] and not a driver error half way: the tenants table
/// exists, with a UUID `id`, a `name` and a `created_at`; every table of the plan exists, with an id
/// column of a supported type.
async fn preflight(db: &impl ConnectionTrait, plan: &AdoptPlan) -> Result<(), AdoptError> {
    let names = std::iter::once(plan.tenants_table.as_str())
        .chain(plan.tables.iter().map(|t| t.name.as_str()));
    let catalog = Catalog::reader()
        .tables(names)
        .without_security()
        .read(db)
        .await?;
    let backend = catalog.backend;
    let tenants_name = &plan.tenants_table;
    let tenants = catalog
        .table(tenants_name)
        .ok_or_else(|| AdoptError::NoTenantsTable(tenants_name.clone()))?;
    let unusable = |problem: String| AdoptError::TenantsTable {
        table: tenants_name.clone(),
        problem,
    };
    match tenants.column(ID_COLUMN) {
        None => return Err(unusable(format!("it has no `{ID_COLUMN}` column"))),
        Some(column) if column.id_type(backend) != Some(IdType::Uuid) => {
            return Err(unusable(format!(
                "its `{ID_COLUMN}` is `{}`, not a UUID (tenant ids are UUIDs)",
                column.native_type
            )));
        }
        Some(_) => {}
    }
    for column in ["name", "created_at"] {
        if !tenants.has_column(column) {
            return Err(unusable(format!(
                "it has no `{column}` column (expand inserts the default tenant with its name and \
                 creation time)"
            )));
        }
    }
    for table in &plan.tables {
        let shape = catalog
            .table(&table.name)
            .ok_or_else(|| AdoptError::Plan(format!("table `{}` does not exist", table.name)))?;
        let unsupported = |found: String| AdoptError::UnsupportedId {
            table: table.name.clone(),
            column: table.id_column.clone(),
            found,
        };
        match shape.column(&table.id_column) {
            None => return Err(unsupported("does not exist".to_owned())),
            Some(column) if column.id_type(backend).is_none() => {
                return Err(unsupported(format!("is `{}`", column.native_type)));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The table `table`, or `None` if the scope has no such table.
async fn find(db: &impl ConnectionTrait, table: &str) -> Result<Option<Table>, AdoptError> {
    let mut catalog = Catalog::reader()
        .tables([table])
        .without_security()
        .read(db)
        .await?;
    Ok(catalog.tables.remove(table))
}

// ------------------------------------------------------------------------------------------------
// Small SQL helpers.

/// Every identifier, from the plan or read from the catalog, is quoted with its quotes doubled.
fn q(backend: DbBackend, ident: &str) -> String {
    tenant_scope_catalog::quote_ident(backend, ident)
}

fn list(backend: DbBackend, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| q(backend, c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn param(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

async fn exec(db: &impl ConnectionTrait, sql: String) -> Result<(), DbErr> {
    db.execute_unprepared(&sql).await.map(|_| ())
}

async fn rows(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    let backend = db.get_database_backend();
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
}

async fn count(db: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    let found = rows(db, sql, values).await?;
    let n: i64 = match found.first() {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

fn on_delete_sql(on_delete: OnDelete) -> &'static str {
    match on_delete {
        OnDelete::Restrict => "RESTRICT",
        OnDelete::Cascade => "CASCADE",
    }
}
