//! Adopting an existing single-tenant database: expand, backfill, validate, enforce.
//!
//! A service that already has a schema without tenants reaches the conventions of this module's
//! parent (`tenant_id` in every tenant-owned table, primary key `(tenant_id, id)`, composite
//! foreign keys, tenant-led unique keys) in four steps. Each step is a function taking a
//! [`DatabaseConnection`] and an [`AdoptPlan`], each is idempotent (running it again does
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

use std::fmt;
use std::sync::Arc;

use sea_orm::sea_query::{Alias, ColumnDef, Table};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseConnectionType, DbBackend, DbErr, QueryResult,
    RuntimeErr, Statement, TransactionTrait, Value,
};

use crate::{
    ID_COLUMN, OnDelete, TENANT_COLUMN, TENANTS_TABLE, foreign_key_name, index_name, unique_name,
};
use tenant_scope::TenantId;

/// How a single-tenant table set becomes tenant-owned: the default tenant that owns every existing
/// row, and the tables with their references and keys.
///
/// List parents before children (the order is used for messages and reports; the steps themselves
/// handle any order). Every parent named in a reference must be a table of the plan.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AdoptPlan {
    /// The global tenants table (`tenants`). It needs the columns `id`, `name` and `created_at`,
    /// like the reference schema's.
    pub tenants_table: String,
    /// The tenant that owns every existing row.
    pub default_tenant: TenantId,
    /// The name of the default tenant's row, if [`expand`] has to create it.
    pub default_tenant_name: String,
    /// The tables to adopt.
    pub tables: Vec<AdoptTable>,
}

impl AdoptPlan {
    /// A plan with no tables yet, for `default_tenant` (created by [`expand`] as
    /// `default_tenant_name` if it does not exist) in the table `tenants`.
    pub fn new(default_tenant: TenantId, default_tenant_name: impl Into<String>) -> Self {
        Self {
            tenants_table: TENANTS_TABLE.to_owned(),
            default_tenant,
            default_tenant_name: default_tenant_name.into(),
            tables: Vec::new(),
        }
    }

    /// Adds a table.
    #[must_use]
    pub fn table(mut self, table: AdoptTable) -> Self {
        self.tables.push(table);
        self
    }

    /// Uses another tenants table than `tenants`.
    #[must_use]
    pub fn tenants_table(mut self, table: impl Into<String>) -> Self {
        self.tenants_table = table.into();
        self
    }

    fn find(&self, table: &str) -> Option<&AdoptTable> {
        self.tables.iter().find(|t| t.name == table)
    }

    /// Refuses identifiers that are not plain (`[A-Za-z0-9_]`, not starting with a digit), unknown
    /// parents and keys over `tenant_id` itself.
    fn check(&self) -> Result<(), AdoptError> {
        let plain = |name: &str| {
            !name.is_empty()
                && name.len() <= 63
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let bad = |what: String| Err(AdoptError::Plan(what));
        if !plain(&self.tenants_table) {
            return bad(format!(
                "`{}` is not a plain identifier",
                self.tenants_table
            ));
        }
        if self.tables.is_empty() {
            return bad("the plan has no tables".to_owned());
        }
        for table in &self.tables {
            let mut names = vec![table.name.as_str(), table.id_column.as_str()];
            for r in &table.references {
                names.push(&r.column);
                names.push(&r.parent);
            }
            names.extend(
                table
                    .uniques
                    .iter()
                    .chain(&table.indexes)
                    .flatten()
                    .map(String::as_str),
            );
            if let Some(name) = names.into_iter().find(|n| !plain(n)) {
                return bad(format!(
                    "table `{}`: `{name}` is not a plain identifier",
                    table.name
                ));
            }
            if table.name == self.tenants_table {
                return bad(format!("`{}` is the tenants table", table.name));
            }
            if self.tables.iter().filter(|t| t.name == table.name).count() > 1 {
                return bad(format!("table `{}` is listed twice", table.name));
            }
            if table.id_column == TENANT_COLUMN {
                return bad(format!(
                    "table `{}`: the id column cannot be `{TENANT_COLUMN}`",
                    table.name
                ));
            }
            for r in &table.references {
                if self.find(&r.parent).is_none() {
                    return bad(format!(
                        "table `{}`: `{}` references `{}`, which is not in the plan",
                        table.name, r.column, r.parent
                    ));
                }
                if r.column == TENANT_COLUMN || r.column == table.id_column {
                    return bad(format!(
                        "table `{}`: cannot adopt a reference on `{}`",
                        table.name, r.column
                    ));
                }
            }
            for key in table.uniques.iter().chain(&table.indexes) {
                if key.is_empty() || key.iter().any(|c| c == TENANT_COLUMN) {
                    return bad(format!(
                        "table `{}`: list the legacy key's columns, without `{TENANT_COLUMN}`",
                        table.name
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One single-tenant table to adopt: its id column, the references it holds to other tables of
/// the plan, and its legacy unique keys and indexes (which become tenant-led).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdoptTable {
    /// The table name.
    pub name: String,
    /// The single-column primary key of the legacy table (`id`); it becomes `(tenant_id, id)`.
    pub id_column: String,
    /// The legacy single-column foreign keys to other tables of the plan; each becomes
    /// `(tenant_id, column) -> parent (tenant_id, parent id)`.
    pub references: Vec<AdoptReference>,
    /// The legacy unique keys (their columns, without `tenant_id`); each becomes
    /// `uq_<table>_<columns>` on `(tenant_id, columns..)`.
    pub uniques: Vec<Vec<String>>,
    /// The legacy plain indexes; each becomes `ix_<table>_<columns>` on `(tenant_id, columns..)`.
    pub indexes: Vec<Vec<String>>,
}

impl AdoptTable {
    /// A table with the id column `id` and no references or keys yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            id_column: ID_COLUMN.to_owned(),
            references: Vec::new(),
            uniques: Vec::new(),
            indexes: Vec::new(),
        }
    }

    /// Sets the id column (the legacy single-column primary key), if it is not `id`.
    #[must_use]
    pub fn id_column(mut self, column: impl Into<String>) -> Self {
        self.id_column = column.into();
        self
    }

    /// Declares the legacy foreign key `column -> parent (id)`; [`enforce`] makes it
    /// `fk_<table>_<column>`: `(tenant_id, column) -> parent (tenant_id, id) ON DELETE <on_delete>
    /// ON UPDATE RESTRICT`.
    #[must_use]
    pub fn references(
        mut self,
        column: impl Into<String>,
        parent: impl Into<String>,
        on_delete: OnDelete,
    ) -> Self {
        self.references.push(AdoptReference {
            column: column.into(),
            parent: parent.into(),
            on_delete,
        });
        self
    }

    /// Declares a legacy unique key on `columns`; [`enforce`] makes it tenant-led.
    #[must_use]
    pub fn unique<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.uniques
            .push(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Declares a legacy plain index on `columns`; [`enforce`] makes it tenant-led.
    #[must_use]
    pub fn index<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.indexes
            .push(columns.into_iter().map(Into::into).collect());
        self
    }

    fn tenant_led(columns: &[String]) -> Vec<String> {
        std::iter::once(TENANT_COLUMN.to_owned())
            .chain(columns.iter().cloned())
            .collect()
    }

    /// The references whose composite key is not served by a tenant-led unique key or index
    /// starting with `(tenant_id, column)`: [`enforce`] gives each an index `ix_<table>_<column>`.
    fn references_needing_index(&self) -> impl Iterator<Item = &AdoptReference> {
        self.references.iter().filter(move |r| {
            !self
                .uniques
                .iter()
                .chain(&self.indexes)
                .any(|key| key.first() == Some(&r.column))
        })
    }
}

/// A legacy single-column foreign key of an [`AdoptTable`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdoptReference {
    /// The referencing column.
    pub column: String,
    /// The referenced table (a table of the plan); the key references its id column.
    pub parent: String,
    /// What deleting the parent does, before and after (`SET NULL` is not offered, see
    /// [`OnDelete`]).
    pub on_delete: OnDelete,
}

/// Why a step could not run. A step that fails leaves the database in a state the same step (or
/// its rollback) can continue from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdoptError {
    /// The plan is invalid (an identifier that is not plain, a parent outside the plan, ..).
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
    /// The database refused a statement.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// What [`expand`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpandReport {
    /// Whether the default tenant's row was created (`false`: it existed).
    pub tenant_created: bool,
    /// The tables that got a `tenant_id` column now (the others had it).
    pub columns_added: Vec<String>,
}

/// Options of [`backfill`] and [`rollback_backfill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackfillOptions {
    /// Rows per `UPDATE` (each batch is its own statement and commits on its own). Default 5,000.
    pub batch_size: u64,
    /// Stop after this many batches in total (`None`: run to the end). For spreading a large
    /// backfill over several runs; a later run continues where this one stopped.
    pub max_batches: Option<u64>,
}

impl Default for BackfillOptions {
    fn default() -> Self {
        Self {
            batch_size: 5_000,
            max_batches: None,
        }
    }
}

impl BackfillOptions {
    /// Options with `batch_size` rows per batch and no batch limit.
    pub fn batch_size(batch_size: u64) -> Self {
        Self {
            batch_size,
            max_batches: None,
        }
    }

    /// Stops after `max_batches` batches.
    #[must_use]
    pub fn max_batches(mut self, max_batches: u64) -> Self {
        self.max_batches = Some(max_batches);
        self
    }
}

/// What [`backfill`] (or [`rollback_backfill`]) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackfillReport {
    /// Rows updated per table, in plan order.
    pub updated: Vec<(String, u64)>,
    /// `UPDATE` statements run that changed at least one row.
    pub batches: u64,
    /// Whether every table is done (`false`: stopped by [`BackfillOptions::max_batches`]; run
    /// again to continue).
    pub complete: bool,
}

impl BackfillReport {
    /// Rows updated in all tables.
    pub fn total(&self) -> u64 {
        self.updated.iter().map(|(_, n)| n).sum()
    }
}

/// What [`validate`] found wrong with one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// The table has no `tenant_id` column: run [`expand`].
    MissingTenantColumn,
    /// Rows with `tenant_id IS NULL`: run [`backfill`].
    NullTenant,
    /// Rows whose `tenant_id` is not a row of the tenants table.
    UnknownTenant,
    /// Rows whose reference names no parent row (possible where the legacy schema had no foreign
    /// key, or on SQLite with foreign keys off).
    Orphan,
    /// Rows whose parent row belongs to another tenant.
    CrossTenant,
}

/// One problem [`validate`] found: it must be fixed before [`enforce`].
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

/// The keys and columns of one table, as the adopt steps see them (see [`inspect`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableShape {
    /// Columns in table order: name and whether it is nullable.
    pub columns: Vec<(String, bool)>,
    /// The primary key's columns (empty if none).
    pub primary_key: Vec<String>,
    /// Unique keys other than the primary key, sorted by name.
    pub uniques: Vec<Key>,
    /// Non-unique indexes, sorted by name.
    pub indexes: Vec<Key>,
    /// Foreign keys, sorted by name (by columns on SQLite, where they have no name).
    pub foreign_keys: Vec<ForeignKeyShape>,
}

/// A unique key or an index.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Key {
    /// Its name (`sqlite_autoindex_..` for an inline `UNIQUE` on SQLite).
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<String>,
    /// Whether it is a constraint (PostgreSQL: `UNIQUE` constraint rather than a unique index;
    /// SQLite: declared in `CREATE TABLE`). Always `false` on MySQL, where they are the same.
    pub constraint: bool,
}

/// A foreign key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForeignKeyShape {
    /// Its name (empty on SQLite, which does not keep it).
    pub name: String,
    /// The referencing columns.
    pub columns: Vec<String>,
    /// The referenced table.
    pub parent: String,
    /// The referenced columns.
    pub parent_columns: Vec<String>,
    /// The delete rule, upper case (`CASCADE`, `RESTRICT`, `NO ACTION`, ..).
    pub on_delete: String,
}

impl TableShape {
    fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|(c, _)| c == name)
    }

    fn fks_on(&self, columns: &[String]) -> impl Iterator<Item = &ForeignKeyShape> {
        self.foreign_keys
            .iter()
            .filter(move |fk| fk.columns == columns)
    }

    fn any_key_led_by(&self, columns: &[String]) -> bool {
        self.uniques
            .iter()
            .chain(&self.indexes)
            .map(|k| &k.columns)
            .chain(std::iter::once(&self.primary_key))
            .any(|k| k.starts_with(columns))
    }
}

// ------------------------------------------------------------------------------------------------
// Small SQL helpers.

/// Every identifier, from the plan or read from the catalog, is quoted with its quotes doubled.
fn q(backend: DbBackend, ident: &str) -> String {
    crate::quote_ident(backend, ident)
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

fn split(csv: &str) -> Vec<String> {
    csv.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
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

// ------------------------------------------------------------------------------------------------
// Introspection.

/// The columns, primary key, unique keys, indexes and foreign keys of `table`, read from the
/// database's catalog. The adopt steps decide from it what is left to do; it is also how a test or
/// an operator can confirm a step's effect.
///
/// # Errors
///
/// The database's error.
pub async fn inspect(db: &impl ConnectionTrait, table: &str) -> Result<TableShape, DbErr> {
    let mut shape = match db.get_database_backend() {
        DbBackend::Postgres => inspect_postgres(db, table).await?,
        DbBackend::MySql => inspect_mysql(db, table).await?,
        _ => inspect_sqlite(db, table).await?,
    };
    shape.uniques.sort_by(|a, b| a.name.cmp(&b.name));
    shape.indexes.sort_by(|a, b| a.name.cmp(&b.name));
    shape
        .foreign_keys
        .sort_by(|a, b| (&a.name, &a.columns).cmp(&(&b.name, &b.columns)));
    Ok(shape)
}

async fn inspect_postgres(db: &impl ConnectionTrait, table: &str) -> Result<TableShape, DbErr> {
    let mut shape = TableShape::default();
    for row in rows(
        db,
        "SELECT column_name::text, is_nullable::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        vec![table.into()],
    )
    .await?
    {
        let name: String = row.try_get_by_index(0)?;
        let nullable: String = row.try_get_by_index(1)?;
        shape.columns.push((name, nullable == "YES"));
    }
    for row in rows(
        db,
        "SELECT i.relname::text, x.indisunique, x.indisprimary, c.conname IS NOT NULL, \
           (SELECT string_agg(a.attname::text, ',' ORDER BY k.n) \
              FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
              JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum) \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
         LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid \
              AND c.contype IN ('p', 'u') \
         WHERE x.indrelid = to_regclass(quote_ident($1))",
        vec![table.into()],
    )
    .await?
    {
        let name: String = row.try_get_by_index(0)?;
        let unique: bool = row.try_get_by_index(1)?;
        let primary: bool = row.try_get_by_index(2)?;
        let constraint: bool = row.try_get_by_index(3)?;
        let columns: Option<String> = row.try_get_by_index(4)?;
        let columns = split(&columns.unwrap_or_default());
        if primary {
            shape.primary_key = columns;
        } else if unique {
            shape.uniques.push(Key {
                name,
                columns,
                constraint,
            });
        } else {
            shape.indexes.push(Key {
                name,
                columns,
                constraint,
            });
        }
    }
    for row in rows(
        db,
        "SELECT c.conname::text, p.relname::text, \
           (SELECT string_agg(a.attname::text, ',' ORDER BY k.n) \
              FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) \
              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum), \
           (SELECT string_agg(a.attname::text, ',' ORDER BY k.n) \
              FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, n) \
              JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum), \
           c.confdeltype::text \
         FROM pg_constraint c JOIN pg_class p ON p.oid = c.confrelid \
         WHERE c.contype = 'f' AND c.conrelid = to_regclass(quote_ident($1))",
        vec![table.into()],
    )
    .await?
    {
        let rule: String = row.try_get_by_index(4)?;
        let on_delete = match rule.as_str() {
            "r" => "RESTRICT",
            "c" => "CASCADE",
            "n" => "SET NULL",
            "d" => "SET DEFAULT",
            _ => "NO ACTION",
        };
        let columns: Option<String> = row.try_get_by_index(2)?;
        let parent_columns: Option<String> = row.try_get_by_index(3)?;
        shape.foreign_keys.push(ForeignKeyShape {
            name: row.try_get_by_index(0)?,
            parent: row.try_get_by_index(1)?,
            columns: split(&columns.unwrap_or_default()),
            parent_columns: split(&parent_columns.unwrap_or_default()),
            on_delete: on_delete.to_owned(),
        });
    }
    Ok(shape)
}

async fn inspect_mysql(db: &impl ConnectionTrait, table: &str) -> Result<TableShape, DbErr> {
    let mut shape = TableShape::default();
    for row in rows(
        db,
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(IS_NULLABLE AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        vec![table.into()],
    )
    .await?
    {
        let name: String = row.try_get_by_index(0)?;
        let nullable: String = row.try_get_by_index(1)?;
        shape.columns.push((name, nullable == "YES"));
    }
    for row in rows(
        db,
        "SELECT CAST(INDEX_NAME AS CHAR), CAST(MIN(NON_UNIQUE) AS SIGNED), \
           CAST(GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR ',') AS CHAR) \
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
         GROUP BY INDEX_NAME",
        vec![table.into()],
    )
    .await?
    {
        let name: String = row.try_get_by_index(0)?;
        let non_unique: i64 = row.try_get_by_index(1)?;
        let columns: String = row.try_get_by_index(2)?;
        let columns = split(&columns);
        if name == "PRIMARY" {
            shape.primary_key = columns;
        } else if non_unique == 0 {
            shape.uniques.push(Key {
                name,
                columns,
                constraint: false,
            });
        } else {
            shape.indexes.push(Key {
                name,
                columns,
                constraint: false,
            });
        }
    }
    for row in rows(
        db,
        "SELECT CAST(k.CONSTRAINT_NAME AS CHAR), CAST(k.REFERENCED_TABLE_NAME AS CHAR), \
           CAST(GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR ',') AS CHAR), \
           CAST(GROUP_CONCAT(k.REFERENCED_COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR ',') AS CHAR), \
           CAST(r.DELETE_RULE AS CHAR) \
         FROM information_schema.KEY_COLUMN_USAGE k \
         JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
           ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
          AND r.TABLE_NAME = k.TABLE_NAME \
         WHERE k.TABLE_SCHEMA = DATABASE() AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL \
         GROUP BY k.CONSTRAINT_NAME, k.REFERENCED_TABLE_NAME, r.DELETE_RULE",
        vec![table.into()],
    )
    .await?
    {
        let columns: String = row.try_get_by_index(2)?;
        let parent_columns: String = row.try_get_by_index(3)?;
        shape.foreign_keys.push(ForeignKeyShape {
            name: row.try_get_by_index(0)?,
            parent: row.try_get_by_index(1)?,
            columns: split(&columns),
            parent_columns: split(&parent_columns),
            on_delete: row.try_get_by_index(4)?,
        });
    }
    Ok(shape)
}

/// One column of a SQLite table as `PRAGMA table_info` reports it.
#[derive(Clone, Debug)]
struct SqliteColumn {
    name: String,
    decl_type: String,
    not_null: bool,
    default: Option<String>,
    pk: i64,
}

async fn sqlite_columns(
    db: &impl ConnectionTrait,
    table: &str,
) -> Result<Vec<SqliteColumn>, DbErr> {
    let mut columns = Vec::new();
    for row in rows(
        db,
        "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid",
        vec![table.into()],
    )
    .await?
    {
        let not_null: i64 = row.try_get_by_index(2)?;
        columns.push(SqliteColumn {
            name: row.try_get_by_index(0)?,
            decl_type: row.try_get_by_index(1)?,
            not_null: not_null != 0,
            default: row.try_get_by_index(3)?,
            pk: row.try_get_by_index(4)?,
        });
    }
    Ok(columns)
}

/// An index of a SQLite table: its key, its origin (`c` CREATE INDEX, `u` UNIQUE, `pk`) and
/// its `CREATE INDEX` text (`None` for the automatic ones).
#[derive(Clone, Debug)]
struct SqliteIndex {
    key: Key,
    unique: bool,
    origin: String,
    sql: Option<String>,
}

async fn sqlite_indexes(db: &impl ConnectionTrait, table: &str) -> Result<Vec<SqliteIndex>, DbErr> {
    let mut indexes = Vec::new();
    for row in rows(
        db,
        "SELECT il.name, il.\"unique\", il.origin, m.sql FROM pragma_index_list(?) il \
         LEFT JOIN sqlite_master m ON m.type = 'index' AND m.name = il.name",
        vec![table.into()],
    )
    .await?
    {
        let name: String = row.try_get_by_index(0)?;
        let unique: i64 = row.try_get_by_index(1)?;
        let origin: String = row.try_get_by_index(2)?;
        let sql: Option<String> = row.try_get_by_index(3)?;
        let mut columns = Vec::new();
        for col in rows(
            db,
            "SELECT name FROM pragma_index_info(?) ORDER BY seqno",
            vec![name.clone().into()],
        )
        .await?
        {
            let column: Option<String> = col.try_get_by_index(0)?;
            columns.push(column.unwrap_or_default());
        }
        indexes.push(SqliteIndex {
            key: Key {
                name,
                columns,
                constraint: origin == "u",
            },
            unique: unique != 0,
            origin,
            sql,
        });
    }
    Ok(indexes)
}

/// A SQLite foreign key with its update rule (kept when a table is rebuilt).
#[derive(Clone, Debug)]
struct SqliteForeignKey {
    shape: ForeignKeyShape,
    on_update: String,
}

async fn sqlite_foreign_keys(
    db: &impl ConnectionTrait,
    table: &str,
) -> Result<Vec<SqliteForeignKey>, DbErr> {
    let mut fks: Vec<(i64, SqliteForeignKey)> = Vec::new();
    for row in rows(
        db,
        "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete \
         FROM pragma_foreign_key_list(?) ORDER BY id, seq",
        vec![table.into()],
    )
    .await?
    {
        let id: i64 = row.try_get_by_index(0)?;
        let parent: String = row.try_get_by_index(1)?;
        let from: String = row.try_get_by_index(2)?;
        let to: Option<String> = row.try_get_by_index(3)?;
        let on_update: String = row.try_get_by_index(4)?;
        let on_delete: String = row.try_get_by_index(5)?;
        match fks.iter_mut().find(|(i, _)| *i == id) {
            Some((_, fk)) => {
                fk.shape.columns.push(from);
                fk.shape.parent_columns.push(to.unwrap_or_default());
            }
            None => fks.push((
                id,
                SqliteForeignKey {
                    shape: ForeignKeyShape {
                        name: String::new(),
                        columns: vec![from],
                        parent,
                        parent_columns: vec![to.unwrap_or_default()],
                        on_delete,
                    },
                    on_update,
                },
            )),
        }
    }
    Ok(fks.into_iter().map(|(_, fk)| fk).collect())
}

async fn inspect_sqlite(db: &impl ConnectionTrait, table: &str) -> Result<TableShape, DbErr> {
    let columns = sqlite_columns(db, table).await?;
    let mut pk: Vec<&SqliteColumn> = columns.iter().filter(|c| c.pk > 0).collect();
    pk.sort_by_key(|c| c.pk);
    let mut shape = TableShape {
        columns: columns
            .iter()
            .map(|c| (c.name.clone(), !c.not_null))
            .collect(),
        primary_key: pk.iter().map(|c| c.name.clone()).collect(),
        ..TableShape::default()
    };
    for index in sqlite_indexes(db, table).await? {
        if index.origin == "pk" {
            continue;
        }
        if index.unique {
            shape.uniques.push(index.key);
        } else {
            shape.indexes.push(index.key);
        }
    }
    shape.foreign_keys = sqlite_foreign_keys(db, table)
        .await?
        .into_iter()
        .map(|fk| fk.shape)
        .collect();
    Ok(shape)
}

// ------------------------------------------------------------------------------------------------
// Step 1: expand.

/// Step 1: adds a nullable `tenant_id` column (the type of `tenants.id`: `uuid`, `binary(16)` on
/// MySQL) to every table of the plan that does not have one, and inserts the default tenant's row
/// into the tenants table if it is missing. Existing rows are not touched; the application keeps
/// working unchanged (new rows get `NULL` until [`backfill`] runs, which also catches them).
///
/// Idempotent: a second run finds the row and the columns and does nothing.
///
/// # Errors
///
/// [`AdoptError::Plan`] for an invalid plan, [`AdoptError::Db`] if the database refuses (no
/// tenants table, a tenant name that is already taken by another id, ..).
pub async fn expand(db: &DatabaseConnection, plan: &AdoptPlan) -> Result<ExpandReport, AdoptError> {
    plan.check()?;
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
        let shape = inspect(db, &table.name).await?;
        if shape.columns.is_empty() {
            return Err(AdoptError::Plan(format!(
                "table `{}` does not exist",
                table.name
            )));
        }
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
/// [`backfill`] wrote into it). Run [`rollback_enforce`] first if [`enforce`] ran.
///
/// The default tenant's row is left in place: other tables may reference it by now, and a later
/// [`expand`] reuses it. Delete it by hand if nothing refers to it.
///
/// # Errors
///
/// [`AdoptError::Plan`] for an invalid plan, [`AdoptError::Db`] if the database refuses (for
/// example because the column is still part of a key: roll back [`enforce`] first).
pub async fn rollback_expand(db: &DatabaseConnection, plan: &AdoptPlan) -> Result<(), AdoptError> {
    plan.check()?;
    let backend = db.get_database_backend();
    for table in plan.tables.iter().rev() {
        let shape = inspect(db, &table.name).await?;
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

// ------------------------------------------------------------------------------------------------
// Step 2: backfill.

/// Step 2: sets `tenant_id` to the default tenant on every row where it is `NULL`, table by table,
/// at most [`BackfillOptions::batch_size`] rows per `UPDATE`.
///
/// Every batch is one statement that commits on its own and only touches rows that are still
/// `NULL`, so the step is idempotent (a second run updates nothing) and resumable (after a crash,
/// or after stopping at [`BackfillOptions::max_batches`], the rows done so far stay done and the
/// next run continues with the rest). Rows the application inserts meanwhile without a tenant are
/// caught by the next run; run it once more right before [`validate`].
///
/// On PostgreSQL and SQLite a batch is
/// `UPDATE t SET tenant_id = ? WHERE tenant_id IS NULL AND id IN (SELECT id FROM t WHERE tenant_id IS NULL ORDER BY id LIMIT n)`,
/// on MySQL (which cannot select from the table it updates) `UPDATE t SET .. WHERE tenant_id IS NULL ORDER BY id LIMIT n`.
///
/// # Errors
///
/// [`AdoptError::Plan`] for an invalid plan or a batch size of 0, [`AdoptError::Db`] if the
/// database refuses (for example: no `tenant_id` column, run [`expand`] first).
pub async fn backfill(
    db: &DatabaseConnection,
    plan: &AdoptPlan,
    options: &BackfillOptions,
) -> Result<BackfillReport, AdoptError> {
    let value = Value::from(plan.default_tenant);
    run_batches(db, plan, options, Some(value), None).await
}

/// Undoes [`backfill`]: sets `tenant_id` back to `NULL` where it is the default tenant, in batches
/// like [`backfill`] (and as resumable). Rows of other tenants are not touched. Run
/// [`rollback_enforce`] first if [`enforce`] ran (the column is `NOT NULL` then).
///
/// # Errors
///
/// As [`backfill`].
pub async fn rollback_backfill(
    db: &DatabaseConnection,
    plan: &AdoptPlan,
    options: &BackfillOptions,
) -> Result<BackfillReport, AdoptError> {
    let value = Value::from(plan.default_tenant);
    run_batches(db, plan, options, None, Some(value)).await
}

/// `SET tenant_id = set WHERE tenant_id IS NOT DISTINCT FROM from`, in batches. Exactly one of
/// `set` and `from` is `Some`.
async fn run_batches(
    db: &DatabaseConnection,
    plan: &AdoptPlan,
    options: &BackfillOptions,
    set: Option<Value>,
    from: Option<Value>,
) -> Result<BackfillReport, AdoptError> {
    plan.check()?;
    if options.batch_size == 0 {
        return Err(AdoptError::Plan("batch size 0".to_owned()));
    }
    let backend = db.get_database_backend();
    let tenant = q(backend, TENANT_COLUMN);
    let mut report = BackfillReport {
        complete: true,
        ..BackfillReport::default()
    };
    'tables: for table in &plan.tables {
        let t = q(backend, &table.name);
        let id = q(backend, &table.id_column);
        let mut values = Vec::new();
        let set_sql = match &set {
            Some(v) => {
                values.push(v.clone());
                param(backend, values.len())
            }
            None => "NULL".to_owned(),
        };
        let filter = match &from {
            Some(v) => {
                values.push(v.clone());
                format!("{tenant} = {}", param(backend, values.len()))
            }
            None => format!("{tenant} IS NULL"),
        };
        let n = options.batch_size;
        let sql = if backend == DbBackend::MySql {
            format!("UPDATE {t} SET {tenant} = {set_sql} WHERE {filter} ORDER BY {id} LIMIT {n}")
        } else {
            // The inner filter repeats the placeholder's value: bind it a second time.
            if from.is_some() {
                values.push(values[values.len() - 1].clone());
            }
            let inner = match &from {
                Some(_) => format!("{tenant} = {}", param(backend, values.len())),
                None => format!("{tenant} IS NULL"),
            };
            format!(
                "UPDATE {t} SET {tenant} = {set_sql} WHERE {filter} AND {id} IN \
                 (SELECT {id} FROM {t} WHERE {inner} ORDER BY {id} LIMIT {n})"
            )
        };
        let mut updated = 0;
        loop {
            if options.max_batches.is_some_and(|max| report.batches >= max) {
                report.complete = false;
                report.updated.push((table.name.clone(), updated));
                break 'tables;
            }
            let done = db
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    &sql,
                    values.clone(),
                ))
                .await?
                .rows_affected();
            if done == 0 {
                break;
            }
            report.batches += 1;
            updated += done;
            tracing::debug!(table = %table.name, rows = done, "adopt: batch");
        }
        report.updated.push((table.name.clone(), updated));
    }
    if !report.complete {
        // A table that was not reached: nothing updated in it yet.
        for table in &plan.tables {
            if !report.updated.iter().any(|(t, _)| t == &table.name) {
                report.updated.push((table.name.clone(), 0));
            }
        }
    }
    Ok(report)
}

// ------------------------------------------------------------------------------------------------
// Step 3: validate.

/// Step 3: the data checks that must come back empty before [`enforce`]: no table without
/// `tenant_id`, no `NULL` `tenant_id`, no `tenant_id` that is not a tenant, no child row whose
/// reference names no parent (orphan), no child row whose parent belongs to another tenant.
///
/// It reads only (one `COUNT(*)` per check), so it is safe to run at any time; `tenant-scope check`
/// runs the same data scan (and the schema checks) on the whole database.
///
/// # Errors
///
/// [`AdoptError::Plan`] for an invalid plan, [`AdoptError::Db`] if a query fails.
pub async fn validate(
    db: &impl ConnectionTrait,
    plan: &AdoptPlan,
) -> Result<Vec<Finding>, AdoptError> {
    plan.check()?;
    let backend = db.get_database_backend();
    let tenant = q(backend, TENANT_COLUMN);
    let mut findings = Vec::new();
    let mut missing = Vec::new();
    for table in &plan.tables {
        if !inspect(db, &table.name).await?.has_column(TENANT_COLUMN) {
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

// ------------------------------------------------------------------------------------------------
// Step 4: enforce.

/// Step 4: makes the schema enforce tenancy. For every table of the plan: `tenant_id NOT NULL`,
/// the foreign key `fk_<table>_tenant_id` to `tenants (id)`, the primary key `(tenant_id, id)`,
/// each reference the composite `fk_<table>_<column>`
/// `(tenant_id, column) -> parent (tenant_id, id) ON DELETE <rule> ON UPDATE RESTRICT` (with a
/// tenant-led index `ix_<table>_<column>` unless a tenant-led key serves it), each legacy unique
/// key `uq_<table>_<columns>` on `(tenant_id, columns..)` and each legacy index
/// `ix_<table>_<columns>` on `(tenant_id, columns..)`. Data is not changed.
///
/// It runs [`validate`] first and refuses ([`AdoptError::NotClean`]) if there is any finding.
///
/// - **PostgreSQL**: `ALTER TABLE` statements in one transaction (DDL is transactional there):
///   all or nothing.
/// - **MySQL / MariaDB**: the same `ALTER TABLE`s (each commits on its own), in a safe order: the
///   legacy foreign keys are dropped first (MySQL refuses to change a key a foreign key depends
///   on), then keys are changed, then the composite foreign keys are added. Every action checks the
///   catalog first, so after an interruption running it again finishes the job.
/// - **SQLite**, which cannot alter constraints: each table is rebuilt (create the new shape,
///   copy the rows, drop the old table, rename) with foreign keys off, in one transaction, then
///   `PRAGMA foreign_key_check` must come back empty or everything is rolled back. A `CHECK`
///   constraint, a generated column or a unique key not in the plan makes it refuse
///   ([`AdoptError::Unsupported`]) instead of dropping it.
///
/// Idempotent: a table already in the final shape is left alone.
///
/// # Errors
///
/// [`AdoptError::NotClean`], [`AdoptError::Plan`], [`AdoptError::Unsupported`], or the
/// database's error.
pub async fn enforce(db: &DatabaseConnection, plan: &AdoptPlan) -> Result<(), AdoptError> {
    plan.check()?;
    let findings = validate(db, plan).await?;
    if !findings.is_empty() {
        return Err(AdoptError::NotClean(findings));
    }
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            alter_enforce(&txn, plan).await?;
            txn.commit().await?;
        }
        DbBackend::MySql => alter_enforce(db, plan).await?,
        _ => sqlite_rebuild(db, plan, Direction::Enforce).await?,
    }
    Ok(())
}

/// Undoes [`enforce`]: the primary key back to `(id)`, `tenant_id` nullable, no foreign key to
/// `tenants`, the references single-column `fk_<table>_<column>` `(column) -> parent (id)` with
/// their delete rule (`ON UPDATE NO ACTION`, the default), the unique keys and indexes back to
/// their legacy columns (named `uq_<table>_<columns>` and `ix_<table>_<columns>`). The data, and
/// the `tenant_id` values, are unchanged. Same per-backend mechanics as [`enforce`].
///
/// If the legacy constraints had other names, the restored ones have these deterministic names
/// (the shape is the same).
///
/// # Errors
///
/// [`AdoptError::Plan`], [`AdoptError::Unsupported`], or the database's error (for example: rows
/// of a second tenant now share an `email` that the restored global unique key refuses).
pub async fn rollback_enforce(db: &DatabaseConnection, plan: &AdoptPlan) -> Result<(), AdoptError> {
    plan.check()?;
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            alter_rollback(&txn, plan).await?;
            txn.commit().await?;
        }
        DbBackend::MySql => alter_rollback(db, plan).await?,
        _ => sqlite_rebuild(db, plan, Direction::Rollback).await?,
    }
    Ok(())
}

/// Drops the foreign key `fk` of `table` (on MySQL also the index MySQL made for it, which has the
/// foreign key's name).
async fn drop_fk(
    db: &impl ConnectionTrait,
    table: &str,
    fk: &ForeignKeyShape,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let t = q(backend, table);
    if backend == DbBackend::MySql {
        exec(
            db,
            format!("ALTER TABLE {t} DROP FOREIGN KEY {}", q(backend, &fk.name)),
        )
        .await?;
        let shape = inspect(db, table).await?;
        if shape
            .indexes
            .iter()
            .any(|k| k.name == fk.name && k.columns == fk.columns)
        {
            exec(db, format!("DROP INDEX {} ON {t}", q(backend, &fk.name))).await?;
        }
    } else {
        exec(
            db,
            format!("ALTER TABLE {t} DROP CONSTRAINT {}", q(backend, &fk.name)),
        )
        .await?;
    }
    Ok(())
}

/// Drops a unique key or index.
async fn drop_key(db: &impl ConnectionTrait, table: &str, key: &Key) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let t = q(backend, table);
    let name = q(backend, &key.name);
    match backend {
        DbBackend::MySql => exec(db, format!("DROP INDEX {name} ON {t}")).await,
        _ if key.constraint => exec(db, format!("ALTER TABLE {t} DROP CONSTRAINT {name}")).await,
        _ => exec(db, format!("DROP INDEX {name}")).await,
    }
}

/// Replaces the keys of `table` on `from` columns by keys on `to` columns named `name`.
async fn replace_key(
    db: &impl ConnectionTrait,
    table: &str,
    unique: bool,
    from: &[String],
    to: &[String],
    name: &str,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let shape = inspect(db, table).await?;
    let keys = if unique {
        &shape.uniques
    } else {
        &shape.indexes
    };
    for key in keys.iter().filter(|k| k.columns == from) {
        drop_key(db, table, key).await?;
    }
    if !keys.iter().any(|k| k.columns == to) {
        let t = q(backend, table);
        let sql = if unique {
            format!(
                "ALTER TABLE {t} ADD CONSTRAINT {} UNIQUE ({})",
                q(backend, name),
                list(backend, to)
            )
        } else {
            format!(
                "CREATE INDEX {} ON {t} ({})",
                q(backend, name),
                list(backend, to)
            )
        };
        exec(db, sql).await?;
    }
    Ok(())
}

/// Sets the primary key of `table` to `columns`.
async fn set_primary_key(
    db: &impl ConnectionTrait,
    table: &str,
    columns: &[String],
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let shape = inspect(db, table).await?;
    if shape.primary_key == columns {
        return Ok(());
    }
    let t = q(backend, table);
    let drop = match (backend, shape.primary_key.is_empty()) {
        (_, true) => String::new(),
        (DbBackend::MySql, false) => "DROP PRIMARY KEY, ".to_owned(),
        (_, false) => {
            let name = shape_pk_name(db, table).await?;
            format!("DROP CONSTRAINT {}, ", q(backend, &name))
        }
    };
    exec(
        db,
        format!(
            "ALTER TABLE {t} {drop}ADD PRIMARY KEY ({})",
            list(backend, columns)
        ),
    )
    .await
}

/// The name of the primary key constraint (PostgreSQL).
async fn shape_pk_name(db: &impl ConnectionTrait, table: &str) -> Result<String, DbErr> {
    let found = rows(
        db,
        "SELECT conname::text FROM pg_constraint WHERE contype = 'p' AND conrelid = to_regclass(quote_ident($1))",
        vec![table.into()],
    )
    .await?;
    match found.first() {
        Some(row) => row.try_get_by_index(0),
        None => Err(DbErr::Custom(format!("no primary key on {table}"))),
    }
}

/// Sets `tenant_id` of `table` to `NOT NULL` (or back to `NULL`).
async fn set_tenant_nullable(
    db: &impl ConnectionTrait,
    table: &str,
    nullable: bool,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let shape = inspect(db, table).await?;
    if shape
        .columns
        .iter()
        .any(|(c, n)| c == TENANT_COLUMN && *n == nullable)
    {
        return Ok(());
    }
    let t = q(backend, table);
    let c = q(backend, TENANT_COLUMN);
    if backend == DbBackend::MySql {
        let mut column = ColumnDef::new(TENANT_COLUMN);
        column.uuid();
        if nullable {
            column.null();
        } else {
            column.not_null();
        }
        let alter = Table::alter()
            .table(Alias::new(table))
            .modify_column(column)
            .to_owned();
        db.execute(&alter).await.map(|_| ())
    } else if nullable {
        exec(
            db,
            format!("ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL"),
        )
        .await
    } else {
        exec(db, format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL")).await
    }
}

/// A foreign key to add.
struct FkSpec<'a> {
    name: String,
    columns: &'a [String],
    parent: &'a str,
    parent_columns: &'a [String],
    on_delete: &'a str,
    on_update: &'a str,
}

/// Adds a foreign key unless one on the same columns exists.
async fn add_fk(db: &impl ConnectionTrait, table: &str, fk: FkSpec<'_>) -> Result<(), DbErr> {
    let FkSpec {
        name,
        columns,
        parent,
        parent_columns,
        on_delete,
        on_update,
    } = fk;
    let name = name.as_str();
    let backend = db.get_database_backend();
    if inspect(db, table).await?.fks_on(columns).next().is_some() {
        return Ok(());
    }
    exec(
        db,
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {on_delete} ON UPDATE {on_update}",
            q(backend, table),
            q(backend, name),
            list(backend, columns),
            q(backend, parent),
            list(backend, parent_columns),
        ),
    )
    .await
}

fn parent_id(plan: &AdoptPlan, parent: &str) -> String {
    plan.find(parent)
        .map_or_else(|| ID_COLUMN.to_owned(), |p| p.id_column.clone())
}

/// [`enforce`] with `ALTER TABLE` (PostgreSQL, MySQL).
async fn alter_enforce(db: &impl ConnectionTrait, plan: &AdoptPlan) -> Result<(), DbErr> {
    let tenant = vec![TENANT_COLUMN.to_owned()];
    // 1. The legacy single-column foreign keys go first: they depend on the parents' keys.
    for table in &plan.tables {
        let shape = inspect(db, &table.name).await?;
        for r in &table.references {
            for fk in shape.fks_on(std::slice::from_ref(&r.column)) {
                drop_fk(db, &table.name, fk).await?;
            }
        }
    }
    // 2. NOT NULL, the primary key, the unique keys and indexes.
    for table in &plan.tables {
        set_tenant_nullable(db, &table.name, false).await?;
        set_primary_key(
            db,
            &table.name,
            &[TENANT_COLUMN.to_owned(), table.id_column.clone()],
        )
        .await?;
        for u in &table.uniques {
            let to = AdoptTable::tenant_led(u);
            replace_key(db, &table.name, true, u, &to, &unique_name(&table.name, u)).await?;
        }
        for i in &table.indexes {
            let to = AdoptTable::tenant_led(i);
            replace_key(db, &table.name, false, i, &to, &index_name(&table.name, i)).await?;
        }
    }
    // 3. The foreign keys: to tenants, then the composite ones (every parent key exists now).
    for table in &plan.tables {
        add_fk(
            db,
            &table.name,
            FkSpec {
                name: foreign_key_name(&table.name, TENANT_COLUMN),
                columns: &tenant,
                parent: &plan.tenants_table,
                parent_columns: &[ID_COLUMN.to_owned()],
                on_delete: "RESTRICT",
                on_update: "RESTRICT",
            },
        )
        .await?;
        for r in table.references_needing_index() {
            let columns = AdoptTable::tenant_led(std::slice::from_ref(&r.column));
            if !inspect(db, &table.name).await?.any_key_led_by(&columns) {
                let backend = db.get_database_backend();
                exec(
                    db,
                    format!(
                        "CREATE INDEX {} ON {} ({})",
                        q(backend, &index_name(&table.name, [&r.column])),
                        q(backend, &table.name),
                        list(backend, &columns)
                    ),
                )
                .await?;
            }
        }
        for r in &table.references {
            add_fk(
                db,
                &table.name,
                FkSpec {
                    name: foreign_key_name(&table.name, &r.column),
                    columns: &AdoptTable::tenant_led(std::slice::from_ref(&r.column)),
                    parent: &r.parent,
                    parent_columns: &[TENANT_COLUMN.to_owned(), parent_id(plan, &r.parent)],
                    on_delete: on_delete_sql(r.on_delete),
                    on_update: "RESTRICT",
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// [`rollback_enforce`] with `ALTER TABLE` (PostgreSQL, MySQL).
async fn alter_rollback(db: &impl ConnectionTrait, plan: &AdoptPlan) -> Result<(), DbErr> {
    let tenant = vec![TENANT_COLUMN.to_owned()];
    // 1. The composite foreign keys (and their indexes) and the foreign key to tenants.
    for table in &plan.tables {
        let shape = inspect(db, &table.name).await?;
        for r in &table.references {
            let columns = AdoptTable::tenant_led(std::slice::from_ref(&r.column));
            for fk in shape.fks_on(&columns) {
                drop_fk(db, &table.name, fk).await?;
            }
        }
        for fk in shape.fks_on(&tenant) {
            drop_fk(db, &table.name, fk).await?;
        }
        let shape = inspect(db, &table.name).await?;
        for r in table.references_needing_index() {
            let name = index_name(&table.name, [&r.column]);
            let columns = AdoptTable::tenant_led(std::slice::from_ref(&r.column));
            if let Some(key) = shape
                .indexes
                .iter()
                .find(|k| k.name == name && k.columns == columns)
            {
                drop_key(db, &table.name, key).await?;
            }
        }
    }
    // 2. Unique keys and indexes, the primary key, nullability.
    for table in &plan.tables {
        for u in &table.uniques {
            let from = AdoptTable::tenant_led(u);
            replace_key(
                db,
                &table.name,
                true,
                &from,
                u,
                &unique_name(&table.name, u),
            )
            .await?;
        }
        for i in &table.indexes {
            let from = AdoptTable::tenant_led(i);
            replace_key(
                db,
                &table.name,
                false,
                &from,
                i,
                &index_name(&table.name, i),
            )
            .await?;
        }
        set_primary_key(db, &table.name, std::slice::from_ref(&table.id_column)).await?;
        set_tenant_nullable(db, &table.name, true).await?;
    }
    // 3. The single-column foreign keys.
    for table in &plan.tables {
        for r in &table.references {
            add_fk(
                db,
                &table.name,
                FkSpec {
                    name: foreign_key_name(&table.name, &r.column),
                    columns: std::slice::from_ref(&r.column),
                    parent: &r.parent,
                    parent_columns: &[parent_id(plan, &r.parent)],
                    on_delete: on_delete_sql(r.on_delete),
                    on_update: "NO ACTION",
                },
            )
            .await?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// SQLite: rebuild.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Enforce,
    Rollback,
}

/// The key column lists the plan owns for `table` (both shapes): indexes with these columns are
/// not carried over by a rebuild, the target shape makes its own.
fn owned_keys(table: &AdoptTable) -> Vec<Vec<String>> {
    let mut owned = Vec::new();
    for key in table.uniques.iter().chain(&table.indexes) {
        owned.push(key.clone());
        owned.push(AdoptTable::tenant_led(key));
    }
    for r in &table.references {
        owned.push(vec![r.column.clone()]);
        owned.push(AdoptTable::tenant_led(std::slice::from_ref(&r.column)));
    }
    owned
}

/// The statements that rebuild `table` into the `direction` shape: `CREATE TABLE` of a new table,
/// `INSERT .. SELECT`, `DROP TABLE`, `ALTER TABLE .. RENAME`, then the indexes. `None` if the table
/// already has that shape.
async fn sqlite_rebuild_statements(
    db: &impl ConnectionTrait,
    plan: &AdoptPlan,
    table: &AdoptTable,
    direction: Direction,
) -> Result<Option<Vec<String>>, AdoptError> {
    let b = DbBackend::Sqlite;
    let unsupported = |reason: String| AdoptError::Unsupported {
        table: table.name.clone(),
        reason,
    };
    let enforce = direction == Direction::Enforce;
    let columns = sqlite_columns(db, &table.name).await?;
    if columns.is_empty() {
        return Err(AdoptError::Plan(format!(
            "table `{}` does not exist",
            table.name
        )));
    }
    let mut pk: Vec<&SqliteColumn> = columns.iter().filter(|c| c.pk > 0).collect();
    pk.sort_by_key(|c| c.pk);
    let pk: Vec<String> = pk.iter().map(|c| c.name.clone()).collect();
    let target_pk: Vec<String> = if enforce {
        vec![TENANT_COLUMN.to_owned(), table.id_column.clone()]
    } else {
        vec![table.id_column.clone()]
    };
    if pk == target_pk {
        return Ok(None);
    }
    if !columns.iter().any(|c| c.name == TENANT_COLUMN) {
        return Err(unsupported(
            "no tenant_id column: run expand first".to_owned(),
        ));
    }
    let found = rows(
        db,
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
        vec![table.name.clone().into()],
    )
    .await?;
    let table_sql: String = match found.first() {
        Some(row) => row
            .try_get_by_index::<Option<String>>(0)?
            .unwrap_or_default(),
        None => String::new(),
    };
    let upper = table_sql.to_ascii_uppercase();
    for word in [
        "CHECK",
        "GENERATED",
        "AUTOINCREMENT",
        "WITHOUT ROWID",
        "COLLATE",
    ] {
        if upper.contains(word) {
            return Err(unsupported(format!(
                "its CREATE TABLE has {word}, which the rebuild would not carry over; rebuild it by hand"
            )));
        }
    }
    let owned = owned_keys(table);
    let indexes = sqlite_indexes(db, &table.name).await?;
    let mut keep_indexes = Vec::new();
    for index in &indexes {
        if index.origin == "pk" || owned.contains(&index.key.columns) {
            continue;
        }
        match &index.sql {
            Some(sql) if index.origin == "c" => keep_indexes.push(sql.clone()),
            _ => {
                return Err(unsupported(format!(
                    "the unique key on ({}) is not in the plan: list it with AdoptTable::unique",
                    index.key.columns.join(", ")
                )));
            }
        }
    }
    let fks = sqlite_foreign_keys(db, &table.name).await?;
    let managed_fk = |cols: &[String]| {
        cols == [TENANT_COLUMN]
            || table.references.iter().any(|r| {
                cols == [r.column.clone()]
                    || cols == AdoptTable::tenant_led(std::slice::from_ref(&r.column))
            })
    };

    let mut defs = Vec::new();
    for c in &columns {
        let not_null = if c.name == TENANT_COLUMN {
            enforce
        } else {
            c.not_null || target_pk.contains(&c.name)
        };
        let mut def = format!("{} {}", q(b, &c.name), c.decl_type);
        if not_null {
            def.push_str(" NOT NULL");
        }
        if let Some(default) = &c.default {
            def.push_str(&format!(" DEFAULT {default}"));
        }
        defs.push(def);
    }
    defs.push(format!("PRIMARY KEY ({})", list(b, &target_pk)));
    for u in &table.uniques {
        let cols = if enforce {
            AdoptTable::tenant_led(u)
        } else {
            u.clone()
        };
        defs.push(format!(
            "CONSTRAINT {} UNIQUE ({})",
            q(b, &unique_name(&table.name, u)),
            list(b, &cols)
        ));
    }
    if enforce {
        defs.push(format!(
            "CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE RESTRICT ON UPDATE RESTRICT",
            q(b, &foreign_key_name(&table.name, TENANT_COLUMN)),
            q(b, TENANT_COLUMN),
            q(b, &plan.tenants_table),
            q(b, ID_COLUMN),
        ));
    }
    for r in &table.references {
        let pid = parent_id(plan, &r.parent);
        let (cols, parent_cols, on_update) = if enforce {
            (
                AdoptTable::tenant_led(std::slice::from_ref(&r.column)),
                vec![TENANT_COLUMN.to_owned(), pid],
                "RESTRICT",
            )
        } else {
            (vec![r.column.clone()], vec![pid], "NO ACTION")
        };
        defs.push(format!(
            "CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {} ON UPDATE {on_update}",
            q(b, &foreign_key_name(&table.name, &r.column)),
            list(b, &cols),
            q(b, &r.parent),
            list(b, &parent_cols),
            on_delete_sql(r.on_delete),
        ));
    }
    for fk in fks.iter().filter(|fk| !managed_fk(&fk.shape.columns)) {
        let parent_cols = if fk.shape.parent_columns.iter().any(String::is_empty) {
            String::new()
        } else {
            format!(" ({})", list(b, &fk.shape.parent_columns))
        };
        defs.push(format!(
            "FOREIGN KEY ({}) REFERENCES {}{parent_cols} ON DELETE {} ON UPDATE {}",
            list(b, &fk.shape.columns),
            q(b, &fk.shape.parent),
            fk.shape.on_delete,
            fk.on_update,
        ));
    }

    let new_name = format!("{}__adopt_new", table.name);
    let all: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let mut stmts = vec![
        format!("DROP TABLE IF EXISTS {}", q(b, &new_name)),
        format!("CREATE TABLE {} ({})", q(b, &new_name), defs.join(", ")),
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM {}",
            q(b, &new_name),
            list(b, &all),
            list(b, &all),
            q(b, &table.name)
        ),
        format!("DROP TABLE {}", q(b, &table.name)),
        format!(
            "ALTER TABLE {} RENAME TO {}",
            q(b, &new_name),
            q(b, &table.name)
        ),
    ];
    stmts.extend(keep_indexes);
    for i in &table.indexes {
        let cols = if enforce {
            AdoptTable::tenant_led(i)
        } else {
            i.clone()
        };
        stmts.push(format!(
            "CREATE INDEX {} ON {} ({})",
            q(b, &index_name(&table.name, i)),
            q(b, &table.name),
            list(b, &cols)
        ));
    }
    if enforce {
        for r in table.references_needing_index() {
            stmts.push(format!(
                "CREATE INDEX {} ON {} ({})",
                q(b, &index_name(&table.name, [&r.column])),
                q(b, &table.name),
                list(b, &AdoptTable::tenant_led(std::slice::from_ref(&r.column)))
            ));
        }
    }
    Ok(Some(stmts))
}

fn sqlx_err(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
}

/// The SQLite 12-step procedure for every table of the plan that is not in the `direction` shape
/// yet: on one connection of the pool, `PRAGMA foreign_keys = OFF`, `BEGIN`, the rebuilds,
/// `PRAGMA foreign_key_check` (any row: `ROLLBACK`), `COMMIT`, `PRAGMA foreign_keys = ON`.
async fn sqlite_rebuild(
    db: &DatabaseConnection,
    plan: &AdoptPlan,
    direction: Direction,
) -> Result<(), AdoptError> {
    use sea_orm::sqlx::{self, Row as _};

    let mut scripts = Vec::new();
    for table in &plan.tables {
        if let Some(stmts) = sqlite_rebuild_statements(db, plan, table, direction).await? {
            scripts.push(stmts);
        }
    }
    if scripts.is_empty() {
        return Ok(());
    }
    if !matches!(
        db.inner,
        DatabaseConnectionType::SqlxSqlitePoolConnection(_)
    ) {
        return Err(AdoptError::Unsupported {
            table: plan
                .tables
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            reason: "the SQLite rebuild needs a sqlx SQLite pool connection".to_owned(),
        });
    }
    let pool = db.get_sqlite_connection_pool();
    let mut conn = pool.acquire().await.map_err(sqlx_err)?;
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await
        .map_err(sqlx_err)?;
    let result: Result<(), AdoptError> = async {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await.map_err(sqlx_err)?;
        let body: Result<(), AdoptError> = async {
            for stmt in scripts.iter().flatten() {
                sqlx::query(sqlx::AssertSqlSafe(stmt.as_str())).execute(&mut *conn).await.map_err(sqlx_err)?;
            }
            let violations = sqlx::query("PRAGMA foreign_key_check")
                .fetch_all(&mut *conn)
                .await
                .map_err(sqlx_err)?;
            if let Some(first) = violations.first() {
                let table: String = first.try_get(0).unwrap_or_default();
                return Err(AdoptError::Unsupported {
                    table,
                    reason: format!(
                        "PRAGMA foreign_key_check found {} violation(s) after the rebuild; nothing was changed",
                        violations.len()
                    ),
                });
            }
            Ok(())
        }
        .await;
        match body {
            Ok(()) => {
                sqlx::query("COMMIT").execute(&mut *conn).await.map_err(sqlx_err)?;
                Ok(())
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                Err(e)
            }
        }
    }
    .await;
    // Never hand a connection with foreign keys off back to the pool.
    let restored = sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await;
    let on: Result<i64, _> = sqlx::query("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get(0));
    if restored.is_err() || !matches!(on, Ok(1)) {
        // Closing it makes the pool open a fresh one (sqlx turns foreign keys on for each).
        let _ = conn.close().await;
    }
    result
}
