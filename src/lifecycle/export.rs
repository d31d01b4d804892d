//! [`export`]: one tenant's rows as JSON lines, parents first, page by page.

use std::io::Write;

use sea_orm::sea_query::{Cond, Condition, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbBackend};

use crate::contract::{ID_COLUMN, TENANT_COLUMN};
use crate::db::TenantDb;
use crate::error::{Error, Result};
use crate::exec::{Exec, Tx};
use crate::tenant::TenantId;

use super::codec::Encoded;
use super::format::{
    Checksum, FORMAT, FORMAT_VERSION, Header, Line, Manifest, RowLine, TableSummary, Values,
    line_sha256,
};
use super::graph::{Plan, TableSpec, plan};
use super::{begin, read_catalog, reason, tenant_record};

/// How many rows one page reads: an export holds at most one page of rows in memory.
pub(crate) const PAGE: u64 = 500;

/// Writes every row of `tenant` in every tenant-owned table to `out` as JSON lines, and returns
/// the [`Manifest`] it wrote as the last line.
///
/// Through audited system access (reason `export tenant <id>`). The file holds, in this order
/// (docs/lifecycle.md has the format):
///
/// 1. a header: the format and its version, the backend, and the tenant's `tenants` row;
/// 2. the rows of global tables that the tenant's rows reference through a foreign key to their
///    `id` (such as the `permissions` its roles grant), so that an import into another database
///    can create them;
/// 3. the tenant's rows of every tenant-owned table, parents before children (the order of the
///    foreign keys in the catalog), each table's rows in `id` order;
/// 4. the manifest: the tenant, and per table the number of rows and the SHA-256 of their lines.
///
/// Rows are read a page at a time (keyset pages by `id`), all in one read-only transaction that
/// sees one snapshot of the database, so the file is consistent even while the tenant is being
/// written to, and no more than one page is held in memory. Every statement reads `tenant_id =
/// <tenant>` only: another tenant's row is never read. Values are written in the form that
/// reads back to the same stored value on the same backend (see docs/lifecycle.md, "Values").
///
/// # Errors
///
/// [`Error::NotFound`] if there is no such tenant; [`Error::Invalid`] if the schema's foreign keys
/// give no parents-first order (a cycle, a table referencing itself), if a table with `tenant_id`
/// has no `id` or no key `(tenant_id, id)`, or if writing to `out` fails (what was written is then
/// incomplete: it has no manifest, and [`import`](super::import) refuses it); the database's error.
pub async fn export(db: &TenantDb, tenant: TenantId, mut out: impl Write) -> Result<Manifest> {
    let system = db.system(&reason("export", tenant)).await?;
    let tx = begin(&system, true).await?;
    let result = export_in(&tx, db.backend(), tenant, &mut out).await;
    // Read-only: a rollback that cannot run now happens when the transaction is dropped.
    let _ = tx.rollback().await;
    result
}

async fn export_in(
    tx: &Tx,
    backend: DbBackend,
    tenant: TenantId,
    out: &mut impl Write,
) -> Result<Manifest> {
    let conn = Exec::Tx(tx).open(None).await?;
    let catalog = read_catalog(&conn).await?;
    let plan = plan(&catalog)?;
    let record = tenant_record(&conn, tenant).await?.ok_or(Error::NotFound)?;
    let tenant_row = tenants_row(&conn, &plan, tenant).await?;
    let header = Line::Header(Header {
        format: FORMAT.to_owned(),
        version: FORMAT_VERSION,
        backend: backend_name(backend).to_owned(),
        tenant: record.clone(),
        tenant_row,
    });
    let header_sha256 = line_sha256(&write_line(out, &header)?);

    let mut globals = Vec::with_capacity(plan.globals.len());
    for global in &plan.globals {
        let mut filter = Cond::any();
        for (table, column) in &global.references {
            let mut referenced = Query::select();
            referenced
                .column(column.clone())
                .from(table.clone())
                .and_where(Expr::col(TENANT_COLUMN).eq(tenant));
            filter = filter.add(Expr::col(ID_COLUMN).in_subquery(referenced));
        }
        let summary = write_table(&conn, &global.table, filter, out, |table, values| {
            Line::Global(RowLine { table, values })
        })
        .await?;
        globals.push(summary);
    }

    let mut tables = Vec::with_capacity(plan.tables.len());
    for table in &plan.tables {
        let filter = Cond::all().add(Expr::col(TENANT_COLUMN).eq(tenant));
        let summary = write_table(&conn, table, filter, out, |table, values| {
            Line::Row(RowLine { table, values })
        })
        .await?;
        tables.push(summary);
    }

    let manifest = Manifest {
        format: FORMAT.to_owned(),
        version: FORMAT_VERSION,
        backend: backend_name(backend).to_owned(),
        tenant: record,
        header_sha256,
        globals,
        tables,
    };
    write_line(out, &Line::Manifest(manifest.clone()))?;
    out.flush().map_err(write_failed)?;
    Ok(manifest)
}

/// The name of `backend` in a file.
pub(crate) fn backend_name(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "postgres",
        DbBackend::MySql => "mysql",
        _ => "sqlite",
    }
}

/// Every column of the tenant's `tenants` row, as values.
async fn tenants_row<C: ConnectionTrait>(
    conn: &C,
    plan: &Plan,
    tenant: TenantId,
) -> Result<Values> {
    let mut select = Query::select();
    plan.tenants.select(&mut select);
    select
        .from(plan.tenants.name.clone())
        .and_where(Expr::col(ID_COLUMN).eq(tenant));
    let rows = conn.query_all(&select).await.map_err(Error::from_db)?;
    let row = rows.first().ok_or(Error::NotFound)?;
    Ok(values(plan.tenants.decode(row)?))
}

/// Writes the rows of `table` that match `filter`, page by page in `id` order, as lines made by
/// `line`; returns their summary.
async fn write_table<C: ConnectionTrait>(
    conn: &C,
    table: &TableSpec,
    filter: Condition,
    out: &mut impl Write,
    line: impl Fn(String, Values) -> Line,
) -> Result<TableSummary> {
    let id = table.column(ID_COLUMN).ok_or_else(|| {
        Error::Invalid(format!(
            "the table `{}` has no `{ID_COLUMN}` column",
            table.name
        ))
    })?;
    let mut sum = Checksum::default();
    let mut after: Option<Encoded> = None;
    loop {
        let mut select = Query::select();
        table.select(&mut select);
        select
            .from(table.name.clone())
            .cond_where(filter.clone())
            .order_by(ID_COLUMN, Order::Asc)
            .limit(PAGE);
        if let Some(last) = &after {
            select.and_where(Expr::col(ID_COLUMN).gt(id.expr(last)));
        }
        let rows = conn.query_all(&select).await.map_err(Error::from_db)?;
        let full = rows.len() as u64 == PAGE;
        for row in &rows {
            let decoded = table.decode(row)?;
            after = decoded
                .iter()
                .find(|(name, _)| name == ID_COLUMN)
                .map(|(_, value)| value.clone());
            sum.line(&write_line(
                out,
                &line(table.name.clone(), values(decoded)),
            )?);
        }
        if !full || after.is_none() {
            break;
        }
    }
    Ok(sum.summary(&table.name))
}

/// A row's values as a file holds them.
fn values(decoded: Vec<(String, Encoded)>) -> Values {
    decoded
        .into_iter()
        .map(|(name, value)| (name, value.to_json()))
        .collect()
}

/// Writes `line` and a newline; returns the line as written (without the newline).
fn write_line(out: &mut impl Write, line: &Line) -> Result<String> {
    let text = serde_json::to_string(line)
        .map_err(|e| Error::Invalid(format!("a value could not be written as JSON: {e}")))?;
    out.write_all(text.as_bytes()).map_err(write_failed)?;
    out.write_all(b"\n").map_err(write_failed)?;
    Ok(text)
}

fn write_failed(e: std::io::Error) -> Error {
    Error::Invalid(format!("writing the export failed: {e}"))
}
