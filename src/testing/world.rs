//! [`World`]: several tenants and their rows, with a record of which rows are whose.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{FromQueryResult, JsonValue, Statement};
use tenant_scope_catalog::{Catalog, quote_ident};

use crate::contract::{AUDIT_TABLE, ID_COLUMN, JOBS_TABLE, TENANT_COLUMN};
use crate::db::{SystemDb, TenantDb, TenantScope};
use crate::error::{Error, Result};
use crate::tenant::{TenantContext, TenantId};

use super::Failure;

/// The reason every system access of the kit gives (it is audited like any other).
pub(crate) const REASON: &str = "tenant_scope::testing: read the test world";

/// Several tenants of one database and their rows, read after seeding: which tenant-owned table
/// holds which rows of which tenant.
///
/// Build it from tenants you seeded yourself ([`World::of`]), or let the kit create the tenants and
/// call your seeding code for each ([`World::seed`]). It reads the schema (the catalog of the
/// database) for the tenant-owned tables, and each table's rows as the system connection, with an
/// audited [`TenantDb::system`] access.
///
/// A world must be worth testing: at least two tenants, and every tenant with rows. Anything less
/// is a [`Failure`] that says so, so that an empty world cannot pass.
#[derive(Clone, Debug)]
pub struct World {
    db: TenantDb,
    tenants: Vec<TenantContext>,
    tables: Vec<String>,
    references: BTreeMap<String, Vec<(String, String)>>,
    /// The library's own tenant-owned tables in the database (`audit_events`, and `jobs` if it
    /// has it): not checked as entities, but part of every snapshot.
    bookkeeping: Vec<&'static str>,
    rows: BTreeMap<String, Vec<JsonValue>>,
}

impl World {
    /// The world of `tenants` (already seeded, at least two) on `db`.
    ///
    /// Each tenant gets a context from system access ([`SystemDb::context_for`]): the kit acts as
    /// each tenant through `db.scope(&ctx)`, like a job does.
    ///
    /// # Errors
    ///
    /// A [`Failure`] if there are fewer than two distinct tenants, if the database has no
    /// tenant-owned table, if a tenant has no rows at all, or if the database fails.
    pub async fn of(db: &TenantDb, tenants: &[TenantId]) -> Result<World, Failure> {
        let distinct: BTreeSet<TenantId> = tenants.iter().copied().collect();
        if distinct.len() < 2 || distinct.len() != tenants.len() {
            return Err(Failure::vacuous(
                "a world needs at least two distinct tenants: with one, nothing is another tenant's",
            ));
        }
        let system = db.system(REASON).await.map_err(Failure::db)?;
        let contexts = tenants.iter().map(|t| system.context_for(*t)).collect();
        let (tables, references, bookkeeping) = tenant_tables(&system).await?;
        let mut world = World {
            db: db.clone(),
            tenants: contexts,
            tables,
            references,
            bookkeeping,
            rows: BTreeMap::new(),
        };
        world.rows = world.read_rows(&system).await?;
        drop(system);
        for ctx in &world.tenants {
            if world.rows_of(ctx.tenant()).next().is_none() {
                return Err(Failure::vacuous(format!(
                    "tenant {} of the world has no rows in any tenant-owned table: seed it",
                    ctx.tenant()
                )));
            }
        }
        Ok(world)
    }

    /// Creates `names.len()` tenants (at least two) through system access, seeds each by calling
    /// `seed` with its index and a scope of its own (inside one transaction per tenant), and reads
    /// the world.
    ///
    /// ```no_run
    /// # async fn f(db: &tenant_scope::TenantDb) -> Result<(), tenant_scope::testing::Failure> {
    /// use entity::projects;
    /// use sea_orm::ActiveValue::Set;
    /// use tenant_scope::testing::World;
    ///
    /// let world = World::seed(db, &["acme", "globex"], |i, scope| {
    ///     Box::pin(async move {
    ///         for n in 0..3 {
    ///             scope
    ///                 .insert(projects::ActiveModel {
    ///                     name: Set(format!("project {n} of tenant {i}")),
    ///                     created_at: Set(chrono::Utc::now()),
    ///                     ..Default::default()
    ///                 })
    ///                 .await?;
    ///         }
    ///         Ok(())
    ///     })
    /// })
    /// .await?;
    /// # let _ = world; Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`World::of`]; the seeding's own error, as a [`Failure`].
    pub async fn seed<F>(db: &TenantDb, names: &[&str], seed: F) -> Result<World, Failure>
    where
        F: for<'s> Fn(
            usize,
            &'s TenantScope<'s>,
        ) -> futures::future::BoxFuture<'s, Result<(), Error>>,
    {
        let mut tenants = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let system = db.system(REASON).await.map_err(Failure::db)?;
            let ctx = crate::provision::create_tenant(&system, name)
                .await
                .map_err(Failure::db)?;
            drop(system);
            db.transaction(&ctx, |scope| seed(i, scope))
                .await
                .map_err(|e| Failure::setup(format!("seeding tenant {i} ({name}): {e}")))?;
            tenants.push(ctx.tenant());
        }
        World::of(db, &tenants).await
    }

    /// The database.
    pub fn db(&self) -> &TenantDb {
        &self.db
    }

    /// The tenants, in the order given.
    pub fn tenants(&self) -> &[TenantContext] {
        &self.tenants
    }

    /// The tenant-owned tables of the database, sorted (the library's own `audit_events` and `jobs`
    /// are left out: they are the library's bookkeeping, checked as part of "nothing was
    /// written").
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// The references of `table` to other tenant-owned tables: `(column, parent table)` for each
    /// composite foreign key `(tenant_id, column) -> parent (tenant_id, id)`.
    pub fn references(&self, table: &str) -> &[(String, String)] {
        self.references.get(table).map_or(&[], Vec::as_slice)
    }

    /// The rows of `table` of `tenant`, as JSON objects, in key order.
    pub fn rows(&self, table: &str, tenant: TenantId) -> impl Iterator<Item = &JsonValue> + '_ {
        let tenant = tenant.to_string();
        self.rows
            .get(table)
            .into_iter()
            .flatten()
            .filter(move |row| tenant_of(row).is_some_and(|t| t == tenant))
    }

    /// The row of `table` of `tenant` whose id is `id` (as text).
    #[cfg(feature = "axum")]
    pub(crate) fn row(&self, table: &str, tenant: TenantId, id: &str) -> Option<&JsonValue> {
        self.rows(table, tenant)
            .find(|row| id_text(row).as_deref() == Some(id))
    }

    /// The ids of the rows of `table` of `tenant`, as text (a UUID hyphenated, an integer in
    /// decimal).
    pub fn ids(&self, table: &str, tenant: TenantId) -> BTreeSet<String> {
        self.rows(table, tenant).filter_map(id_text).collect()
    }

    /// The ids of `owner`'s rows of `table` that `viewer` has no row with: the ids that can show a
    /// leak (with integer ids, another tenant's id may be one of the viewer's own ids too).
    pub fn foreign_ids(&self, table: &str, owner: TenantId, viewer: TenantId) -> Vec<String> {
        let own = self.ids(table, viewer);
        self.ids(table, owner)
            .into_iter()
            .filter(|id| !own.contains(id))
            .collect()
    }

    /// Every row of every tenant-owned table of `tenant`, as JSON.
    pub(crate) fn rows_of(&self, tenant: TenantId) -> impl Iterator<Item = &JsonValue> + '_ {
        let tenant = tenant.to_string();
        self.rows
            .values()
            .flatten()
            .filter(move |row| tenant_of(row).is_some_and(|t| t == tenant))
    }

    /// The text values of `tenant`'s rows that no other tenant of the world has and that are
    /// distinctive enough to look for in a response (six characters or more, not a timestamp):
    /// names, emails, ids. Finding one in an answer to another tenant is a leak.
    pub fn markers(&self, tenant: TenantId) -> BTreeSet<String> {
        let mut others = BTreeSet::new();
        for ctx in &self.tenants {
            if ctx.tenant() != tenant {
                for row in self.rows_of(ctx.tenant()) {
                    strings(row, &mut others);
                }
            }
        }
        let mut mine = BTreeSet::new();
        for row in self.rows_of(tenant) {
            strings(row, &mut mine);
        }
        mine.insert(tenant.to_string());
        mine.retain(|s| {
            s.len() >= 6 && !others.contains(s) && chrono::DateTime::parse_from_rfc3339(s).is_err()
        });
        mine
    }

    /// Every row of every tenant-owned table, `audit_events` and `jobs` included, read as the system
    /// connection: compare two of them to prove that nothing was written in between.
    pub(crate) async fn snapshot(&self) -> Result<BTreeMap<String, Vec<JsonValue>>, Failure> {
        let system = self.db.system(REASON).await.map_err(Failure::db)?;
        self.read_rows(&system).await
    }

    async fn read_rows(
        &self,
        system: &SystemDb<'_>,
    ) -> Result<BTreeMap<String, Vec<JsonValue>>, Failure> {
        let backend = self.db.backend();
        let tenant = quote_ident(backend, TENANT_COLUMN);
        let id = quote_ident(backend, ID_COLUMN);
        let mut rows = BTreeMap::new();
        for table in self
            .tables
            .iter()
            .map(String::as_str)
            .chain(self.bookkeeping.iter().copied())
        {
            let sql = format!(
                "SELECT * FROM {} ORDER BY {tenant}, {id}",
                quote_ident(backend, table)
            );
            let result = system
                .query_all(Statement::from_string(backend, sql))
                .await
                .map_err(Failure::db)?;
            let json = result
                .iter()
                .map(|row| JsonValue::from_query_result(row, ""))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::db(Error::from_db(e)))?;
            rows.insert(table.to_owned(), json.into_iter().map(normalize).collect());
        }
        Ok(rows)
    }
}

/// The tenant-owned tables and their references, from the catalog, read on the system connection,
/// and the library's own tenant-owned tables the database has.
type Tables = (
    Vec<String>,
    BTreeMap<String, Vec<(String, String)>>,
    Vec<&'static str>,
);

async fn tenant_tables(system: &SystemDb<'_>) -> Result<Tables, Failure> {
    let catalog = match system.connection() {
        Some(conn) => Catalog::reader()
            .without_security()
            .read(conn)
            .await
            .map_err(|e| Failure::setup(format!("reading the schema: {e}")))?,
        None => return Err(Failure::setup("no connection to read the schema on")),
    };
    let owned = |t: &tenant_scope_catalog::Table| {
        t.has_column(TENANT_COLUMN)
            && t.has_column(ID_COLUMN)
            && t.name != AUDIT_TABLE
            && t.name != JOBS_TABLE
    };
    let tables: Vec<String> = catalog
        .tables
        .values()
        .filter(|t| owned(t))
        .map(|t| t.name.clone())
        .collect();
    if tables.is_empty() {
        return Err(Failure::vacuous(
            "the database has no tenant-owned table (with `tenant_id` and `id`)",
        ));
    }
    let mut references = BTreeMap::new();
    for table in catalog.tables.values().filter(|t| owned(t)) {
        let refs: Vec<(String, String)> = table
            .foreign_keys
            .iter()
            .filter(|fk| {
                fk.columns.len() == 2
                    && fk.columns[0] == TENANT_COLUMN
                    && fk.ref_columns == [TENANT_COLUMN, ID_COLUMN]
                    && tables.contains(&fk.ref_table)
            })
            .map(|fk| (fk.columns[1].clone(), fk.ref_table.clone()))
            .collect();
        references.insert(table.name.clone(), refs);
    }
    let bookkeeping = [AUDIT_TABLE, JOBS_TABLE]
        .into_iter()
        .filter(|t| *t == AUDIT_TABLE || catalog.table(t).is_some())
        .collect();
    Ok((tables, references, bookkeeping))
}

/// A row read as JSON, made the same on every backend: a UUID read as 16 bytes (MySQL's
/// `binary(16)`) becomes its hyphenated text.
fn normalize(row: JsonValue) -> JsonValue {
    match row {
        JsonValue::Object(map) => JsonValue::Object(
            map.into_iter()
                .map(|(k, v)| (k, uuid_bytes(&v).unwrap_or(v)))
                .collect(),
        ),
        other => other,
    }
}

fn uuid_bytes(value: &JsonValue) -> Option<JsonValue> {
    let bytes: Vec<u8> = value
        .as_array()?
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect::<Option<_>>()?;
    let id = uuid::Uuid::from_slice(&bytes).ok()?;
    Some(JsonValue::String(id.hyphenated().to_string()))
}

fn tenant_of(row: &JsonValue) -> Option<String> {
    row.get(TENANT_COLUMN).and_then(text)
}

/// The id of a row, as text.
pub(crate) fn id_text(row: &JsonValue) -> Option<String> {
    row.get(ID_COLUMN).and_then(text)
}

/// A JSON scalar as the text of a key: strings as they are, numbers in decimal.
pub(crate) fn text(value: &JsonValue) -> Option<String> {
    match value {
        JsonValue::String(s) => Some(s.to_lowercase()),
        JsonValue::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strings(row: &JsonValue, into: &mut BTreeSet<String>) {
    if let JsonValue::Object(map) = row {
        for (column, value) in map {
            if column == TENANT_COLUMN {
                continue;
            }
            if let JsonValue::String(s) = value {
                into.insert(s.clone());
            }
        }
    }
}
