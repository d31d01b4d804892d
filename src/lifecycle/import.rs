//! [`import`]: an export written into another database, ids kept, in one transaction.

use std::collections::BTreeSet;
use std::io::BufRead;

use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, Query};
use sea_orm::{ConnectionTrait, DbErr, SqlErr};

use crate::contract::{ID_COLUMN, TENANT_COLUMN};
use crate::db::TenantDb;
use crate::error::{Error, Result};
use crate::exec::{Conn, Exec};
use crate::tenant::TenantId;

use super::codec::Encoded;
use super::export::backend_name;
use super::format::{
    Checksum, FORMAT, FORMAT_VERSION, Header, Line, Manifest, RowLine, TableSummary, Values,
    line_sha256,
};
use super::graph::{Plan, TableSpec, plan};
use super::{begin, pool, read_catalog, reason, tenant_record};

/// The most rows one `INSERT` writes.
const ROWS_PER_INSERT: usize = 200;

/// The most values one `INSERT` binds (SQLite allows 32766, PostgreSQL and MySQL 65535).
const VALUES_PER_INSERT: usize = 30_000;

/// Writes the tenant of an [`export`](super::export) into this database, keeping every id, and
/// returns the file's [`Manifest`].
///
/// Through audited system access (reason `import tenant <id>`, the id read from the file's first
/// line). The database must have the schema the export was made from (the same migrations) and be
/// of the same backend. The tenant's `tenants` row is created from the file, then the global rows
/// its rows reference (each is created unless this database has it already, with the same values),
/// then the tenant's rows, parents first, as the file orders them.
///
/// Everything is written in **one transaction**, committed only once the whole file has been read
/// and checked: its header, every line, every row's table and columns against this database's
/// catalog, every row's `tenant_id` (a row of another tenant is refused), and the manifest's counts
/// and SHA-256 checksums against the lines read. A file that fails any check, or that the database
/// refuses, changes nothing. Table and column names are looked up in this database's catalog and
/// the SQL is built from the catalog's names and types only, never from the file's text.
///
/// # Errors
///
/// - [`Error::Invalid`] for a file that is empty, truncated (no manifest), malformed (a line that
///   is not JSON of the format, a value of the wrong form), of another format version or backend,
///   or tampered with (a checksum, a count or the header that does not match the manifest, a table
///   this database does not have, a column set that differs, a row of another tenant, rows of a
///   table that are not together), or whose rows reference a row that is neither earlier in the
///   file nor in this database; nothing is written.
/// - [`Error::Conflict`] if the tenant's id is already in this database, or the file's rows collide
///   with its rows (the tenant's name, a global row with the same id and other values, a unique
///   key); nothing is written.
/// - The database's error; nothing is written.
pub async fn import(db: &TenantDb, input: impl BufRead) -> Result<Manifest> {
    let mut lines = Lines { input, number: 0 };
    let first = lines.next()?.ok_or_else(|| {
        Error::Invalid("the file is empty: an export starts with its header".into())
    })?;
    let Line::Header(header) = parse(&first, 1)? else {
        return Err(Error::Invalid(
            "line 1 is not the header of an export".into(),
        ));
    };
    if header.format != FORMAT || header.version != FORMAT_VERSION {
        return Err(Error::Invalid(format!(
            "the file is not a {FORMAT} file of version {FORMAT_VERSION}"
        )));
    }
    let backend = backend_name(db.backend());
    if header.backend != backend {
        return Err(Error::Invalid(format!(
            "the file was exported from {}, and this database is {backend}: values round-trip \
             exactly only on the same backend",
            header.backend
        )));
    }
    let tenant = header.tenant.id;
    let system = db.system(&reason("import", tenant)).await?;
    let pool = pool(&system)?;
    let catalog = read_catalog(&Conn::Pool(pool)).await?;
    let plan = plan(&catalog)?;
    if tenant_record(&Conn::Pool(pool), tenant).await?.is_some() {
        return Err(Error::Conflict);
    }
    let tx = begin(&system, false).await?;
    let header_sha256 = line_sha256(&first);
    let result = Import {
        conn: Exec::Tx(&tx).open(None).await?,
        plan: &plan,
        tenant,
        block: None,
        batch: Vec::new(),
        done: BTreeSet::new(),
        globals: Vec::new(),
        tables: Vec::new(),
    }
    .run(header, header_sha256, &mut lines)
    .await;
    match result {
        Ok(manifest) => tx.commit().await.map(|()| manifest),
        Err(e) => {
            // The step's error is the answer; a rollback that cannot run now happens when the
            // transaction is dropped.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// The lines of the input, numbered.
struct Lines<R> {
    input: R,
    number: u64,
}

impl<R: BufRead> Lines<R> {
    /// The next line without its line break; `None` at the end.
    fn next(&mut self) -> Result<Option<String>> {
        let mut line = String::new();
        let read = self
            .input
            .read_line(&mut line)
            .map_err(|e| Error::Invalid(format!("reading line {} failed: {e}", self.number + 1)))?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        if line.ends_with('\n') {
            line.pop();
        }
        Ok(Some(line))
    }
}

/// One line of the file, or what is wrong with it.
fn parse(line: &str, number: u64) -> Result<Line> {
    serde_json::from_str(line).map_err(|e| {
        Error::Invalid(format!(
            "line {number} is not a line of a {FORMAT} file ({})",
            e.classify_text()
        ))
    })
}

/// The kind of error of a JSON parse, without the text of the line.
trait ClassifyText {
    fn classify_text(&self) -> String;
}

impl ClassifyText for serde_json::Error {
    fn classify_text(&self) -> String {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable".into(),
            serde_json::error::Category::Syntax => {
                format!("malformed JSON at column {}", self.column())
            }
            serde_json::error::Category::Data => "not the shape of a line of the format".into(),
            serde_json::error::Category::Eof => "it ends early".into(),
        }
    }
}

/// Which rows the lines being read are of.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Block {
    /// Rows of a global table.
    Global(String),
    /// Rows of a tenant-owned table.
    Tenant(String),
}

/// The state of one import.
struct Import<'a> {
    conn: Conn<'a>,
    plan: &'a Plan,
    tenant: TenantId,
    /// The block being read, and the checksum of its lines so far.
    block: Option<(Block, Checksum)>,
    /// Rows of the current tenant block not written yet.
    batch: Vec<Vec<Expr>>,
    /// The blocks already read (rows of a table must be together).
    done: BTreeSet<String>,
    /// The summaries of the blocks read, in file order.
    globals: Vec<TableSummary>,
    tables: Vec<TableSummary>,
}

impl Import<'_> {
    async fn run(
        mut self,
        header: Header,
        header_sha256: String,
        lines: &mut Lines<impl BufRead>,
    ) -> Result<Manifest> {
        self.insert_tenant(&header).await?;
        loop {
            let Some(text) = lines.next()? else {
                return Err(Error::Invalid(
                    "the file ends before its manifest: it is truncated".into(),
                ));
            };
            let number = lines.number;
            match parse(&text, number)? {
                Line::Header(_) => {
                    return Err(Error::Invalid(format!("line {number} is a second header")));
                }
                Line::Global(row) => {
                    if !self.tables.is_empty() || matches!(self.block, Some((Block::Tenant(_), _)))
                    {
                        return Err(Error::Invalid(format!(
                            "line {number}: a global row after the tenant's rows"
                        )));
                    }
                    self.enter(Block::Global(row.table.clone()), number).await?;
                    self.global(row, &text, number).await?;
                }
                Line::Row(row) => {
                    self.enter(Block::Tenant(row.table.clone()), number).await?;
                    self.row(row, &text, number).await?;
                }
                Line::Manifest(manifest) => {
                    self.finish_block().await?;
                    if lines.next()?.is_some() {
                        return Err(Error::Invalid(format!(
                            "line {}: there is more after the manifest",
                            lines.number
                        )));
                    }
                    self.check(&manifest, &header, &header_sha256)?;
                    return Ok(manifest);
                }
            }
        }
    }

    /// Creates the `tenants` row of the header, and checks that it is the header's tenant.
    async fn insert_tenant(&mut self, header: &Header) -> Result<()> {
        let spec = &self.plan.tenants;
        let exprs = exprs(spec, &header.tenant_row, 1)?;
        let mut insert = insert_into(spec);
        add_values(&mut insert, exprs)?;
        self.conn
            .execute(&insert)
            .await
            .map_err(write_error(&spec.name))?;
        let stored = tenant_record(&self.conn, self.tenant).await?;
        if stored.as_ref() != Some(&header.tenant) {
            return Err(Error::Invalid(
                "line 1: the header's tenant and its `tenants` row do not agree".into(),
            ));
        }
        Ok(())
    }

    /// Starts reading the rows of `block`, unless they are being read already.
    async fn enter(&mut self, block: Block, number: u64) -> Result<()> {
        if self.block.as_ref().is_some_and(|(b, _)| *b == block) {
            return Ok(());
        }
        self.finish_block().await?;
        let name = match &block {
            Block::Global(t) => format!("global {t}"),
            Block::Tenant(t) => t.clone(),
        };
        if !self.done.insert(name) {
            return Err(Error::Invalid(format!(
                "line {number}: the rows of a table are not together"
            )));
        }
        self.block = Some((block, Checksum::default()));
        Ok(())
    }

    /// Writes what is left of the current block and records its summary.
    async fn finish_block(&mut self) -> Result<()> {
        self.flush().await?;
        if let Some((block, sum)) = self.block.take() {
            match block {
                Block::Global(t) => self.globals.push(sum.summary(&t)),
                Block::Tenant(t) => self.tables.push(sum.summary(&t)),
            }
        }
        Ok(())
    }

    /// A global row: created unless the database has it with the same values.
    async fn global(&mut self, row: RowLine, text: &str, number: u64) -> Result<()> {
        let spec = &self
            .plan
            .global(&row.table)
            .ok_or_else(|| unknown_table(&row.table, number))?
            .table;
        let exprs = exprs(spec, &row.values, number)?;
        let id = spec
            .column(ID_COLUMN)
            .and_then(|c| {
                row.values
                    .get(ID_COLUMN)
                    .and_then(Encoded::from_json)
                    .map(|v| (c, v))
            })
            .ok_or_else(|| Error::Invalid(format!("line {number}: a global row without `id`")))?;
        let mut find = Query::select();
        spec.select(&mut find);
        find.from(spec.name.clone())
            .and_where(Expr::col(ID_COLUMN).eq(id.0.expr(&id.1)));
        let existing = self.conn.query_all(&find).await.map_err(Error::from_db)?;
        match existing.first() {
            Some(found) => {
                let found: Values = spec
                    .decode(found)?
                    .into_iter()
                    .map(|(name, value)| (name, value.to_json()))
                    .collect();
                if found != row.values {
                    tracing::warn!(
                        target: "tenant_scope::lifecycle",
                        table = %spec.name,
                        "import: the database has a global row with the same id and other values"
                    );
                    return Err(Error::Conflict);
                }
            }
            None => {
                let mut insert = insert_into(spec);
                add_values(&mut insert, exprs)?;
                self.conn
                    .execute(&insert)
                    .await
                    .map_err(write_error(&spec.name))?;
            }
        }
        self.sum(text);
        Ok(())
    }

    /// A row of the tenant: checked, then written with the next batch.
    async fn row(&mut self, row: RowLine, text: &str, number: u64) -> Result<()> {
        let spec = self
            .plan
            .table(&row.table)
            .ok_or_else(|| unknown_table(&row.table, number))?;
        let owner = row
            .values
            .get(TENANT_COLUMN)
            .and_then(Encoded::from_json)
            .and_then(|v| v.as_uuid());
        if owner != Some(self.tenant.into_uuid()) {
            return Err(Error::Invalid(format!(
                "line {number}: a row that is not of the file's tenant"
            )));
        }
        let exprs = exprs(spec, &row.values, number)?;
        self.batch.push(exprs);
        self.sum(text);
        let per_insert = (VALUES_PER_INSERT / spec.columns.len().max(1)).clamp(1, ROWS_PER_INSERT);
        if self.batch.len() >= per_insert {
            self.flush().await?;
        }
        Ok(())
    }

    fn sum(&mut self, text: &str) {
        if let Some((_, sum)) = &mut self.block {
            sum.line(text);
        }
    }

    /// Writes the rows of the batch (all of the current tenant block's table).
    async fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let Some((Block::Tenant(table), _)) = &self.block else {
            return Ok(());
        };
        let spec = self
            .plan
            .table(table)
            .ok_or_else(|| Error::Invalid(format!("unknown table `{table}`")))?;
        let mut insert = insert_into(spec);
        for exprs in std::mem::take(&mut self.batch) {
            add_values(&mut insert, exprs)?;
        }
        self.conn
            .execute(&insert)
            .await
            .map_err(write_error(&spec.name))?;
        Ok(())
    }

    /// Checks the manifest against the header and the lines read.
    fn check(&self, manifest: &Manifest, header: &Header, header_sha256: &str) -> Result<()> {
        if manifest.format != header.format
            || manifest.version != header.version
            || manifest.backend != header.backend
            || manifest.tenant != header.tenant
            || manifest.header_sha256 != header_sha256
        {
            return Err(Error::Invalid(
                "the manifest does not match the header (its checksum or its tenant)".into(),
            ));
        }
        for summary in &manifest.tables {
            if self.plan.table(&summary.table).is_none() {
                return Err(Error::Invalid(format!(
                    "the manifest lists the table `{}`, which this database does not have as a \
                     tenant-owned table",
                    summary.table
                )));
            }
        }
        for summary in &manifest.globals {
            if self.plan.global(&summary.table).is_none() {
                return Err(Error::Invalid(format!(
                    "the manifest lists the global table `{}`, which no tenant-owned table of \
                     this database references",
                    summary.table
                )));
            }
        }
        same("global rows", &manifest.globals, &self.globals)?;
        same("rows", &manifest.tables, &self.tables)
    }
}

/// Checks that the blocks `read` are those the manifest `listed` (which also lists tables without
/// rows, with the checksum of no line), in the same order.
fn same(what: &str, listed: &[TableSummary], read: &[TableSummary]) -> Result<()> {
    let empty = Checksum::default().summary("").sha256;
    let mut with_rows = Vec::with_capacity(listed.len());
    for summary in listed {
        if summary.rows > 0 {
            with_rows.push(summary);
        } else if summary.sha256 != empty {
            return Err(mismatch(what, &summary.table));
        }
    }
    for (i, block) in read.iter().enumerate() {
        if with_rows.get(i) != Some(&block) {
            return Err(mismatch(what, &block.table));
        }
    }
    match with_rows.get(read.len()) {
        Some(missing) => Err(mismatch(what, &missing.table)),
        None => Ok(()),
    }
}

fn mismatch(what: &str, table: &str) -> Error {
    Error::Invalid(format!(
        "the file does not match its manifest: the {what} of `{table}` (their number, their \
         checksum or their place in the file)"
    ))
}

fn unknown_table(table: &str, number: u64) -> Error {
    Error::Invalid(format!(
        "line {number}: the table `{table}` is not one whose rows this database can take"
    ))
}

/// The `INSERT` of rows of `spec`, every column.
fn insert_into(spec: &TableSpec) -> InsertStatement {
    let mut insert = Query::insert();
    insert
        .into_table(spec.name.clone())
        .columns(spec.columns.iter().map(|c| c.name.clone()));
    insert
}

fn add_values(insert: &mut InsertStatement, exprs: Vec<Expr>) -> Result<()> {
    insert
        .values(exprs)
        .map(|_| ())
        .map_err(|e| Error::Invalid(format!("building an insert: {e}")))
}

/// The expressions that write `values` into the columns of `spec`, in column order.
///
/// # Errors
///
/// [`Error::Invalid`] unless `values` has exactly the columns of `spec` and each value has the form
/// its column is read in.
fn exprs(spec: &TableSpec, values: &Values, number: u64) -> Result<Vec<Expr>> {
    if values.len() != spec.columns.len()
        || spec.columns.iter().any(|c| !values.contains_key(&c.name))
    {
        return Err(Error::Invalid(format!(
            "line {number}: the columns of the `{}` row are not those of the table in this \
             database",
            spec.name
        )));
    }
    spec.columns
        .iter()
        .map(|column| {
            let value = values
                .get(&column.name)
                .and_then(Encoded::from_json)
                .filter(|v| column.accepts(v))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "line {number}: the value of `{}`.`{}` is not of the form an export writes \
                         for it",
                        spec.name, column.name
                    ))
                })?;
            Ok(column.expr(&value))
        })
        .collect()
}

/// The error of a write of the import into `table`: a reference to a row that is not there is the
/// file's fault ([`Error::Invalid`]); a unique key that collides is a [`Error::Conflict`].
fn write_error(table: &str) -> impl Fn(DbErr) -> Error + '_ {
    move |e| match e.sql_err() {
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => Error::Invalid(format!(
            "a row of `{table}` references a row that is neither earlier in the file nor in this \
             database"
        )),
        Some(SqlErr::UniqueConstraintViolation(_)) => Error::Conflict,
        _ => Error::from_db(e),
    }
}
