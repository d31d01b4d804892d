//! PostgreSQL: `pg_catalog` for the tables of `current_schema()`.
//!
//! The catalog rather than `information_schema`: it has expression indexes (`UNIQUE (lower(email))`),
//! partial indexes, the difference between a `UNIQUE` constraint and a unique index, and the column
//! list of `ON DELETE SET NULL (column)` (PostgreSQL 15).

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DbErr};

use super::empty_tables;
use crate::model::{Column, ForeignKey, Key, RefAction, Table};
use crate::sql::{get, query, split_list};

/// The first schema of the connection's `search_path` that exists (`current_schema()`), and the
/// server's version number (`150004` for 15.4).
pub(crate) async fn scope<C: ConnectionTrait>(conn: &C) -> Result<(Option<String>, i32), DbErr> {
    let rows = query(
        conn,
        "SELECT current_schema()::text, current_setting('server_version_num')::int4",
        vec![],
    )
    .await?;
    match rows.first() {
        Some(row) => Ok((get(row, 0)?, get(row, 1)?)),
        None => Ok((None, 0)),
    }
}

/// The tables of `current_schema()` (plain and partitioned; partitions are part of their parent),
/// or only those named in `only`.
pub(crate) async fn read<C: ConnectionTrait>(
    conn: &C,
    version: i32,
    only: Option<&BTreeSet<String>>,
) -> Result<Vec<Table>, DbErr> {
    let names = query(
        conn,
        "SELECT c.relname::text FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
         ORDER BY 1",
        vec![],
    )
    .await?;
    let mut tables = empty_tables(&names, only)?;

    for row in query(
        conn,
        "SELECT c.relname::text, a.attname::text, NOT a.attnotnull, \
           format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid), \
           a.attgenerated::text <> '', \
           a.attidentity::text <> '' OR COALESCE(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%', false) \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
           AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY c.relname, a.attnum",
        vec![],
    )
    .await?
    {
        let table: String = get(&row, 0)?;
        let Some(table) = tables.get_mut(&table) else {
            continue;
        };
        let generated: bool = get(&row, 5)?;
        let default: Option<String> = get(&row, 4)?;
        table.columns.push(Column {
            name: get(&row, 1)?,
            nullable: get(&row, 2)?,
            native_type: get(&row, 3)?,
            // A generated column's "default" is its generation expression.
            default: if generated { None } else { default },
            generated,
            auto_increment: get(&row, 6)?,
            ty: None,
        });
    }

    // Every key part: a column's name, or an expression as PostgreSQL prints it.
    for row in query(
        conn,
        "SELECT t.relname::text, i.relname::text, ix.indisprimary, ix.indisunique, \
           ix.indpred IS NOT NULL, \
           EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con \
                   WHERE con.conindid = ix.indexrelid AND con.conrelid = ix.indrelid \
                     AND con.contype IN ('p', 'u')), \
           (SELECT string_agg(CASE WHEN ix.indkey[k - 1] = 0 \
                                   THEN pg_get_indexdef(ix.indexrelid, k, true) \
                                   ELSE (SELECT a.attname::text FROM pg_catalog.pg_attribute a \
                                         WHERE a.attrelid = ix.indrelid AND a.attnum = ix.indkey[k - 1]) \
                              END, chr(31) ORDER BY k) \
              FROM generate_series(1, ix.indnkeyatts) AS k) \
         FROM pg_catalog.pg_index ix \
         JOIN pg_catalog.pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_catalog.pg_class t ON t.oid = ix.indrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND t.relkind IN ('r', 'p') \
         ORDER BY 1, 2",
        vec![],
    )
    .await?
    {
        let table: String = get(&row, 0)?;
        let Some(table) = tables.get_mut(&table) else {
            continue;
        };
        let primary: bool = get(&row, 2)?;
        let unique: bool = get(&row, 3)?;
        let columns = split_list(get(&row, 6)?);
        if primary {
            table.primary_key = columns;
            table.primary_key_name = Some(get(&row, 1)?);
            continue;
        }
        let key = Key {
            name: get(&row, 1)?,
            columns,
            constraint: get(&row, 5)?,
            partial: get(&row, 4)?,
            definition: None,
        };
        if unique {
            table.uniques.push(key);
        } else {
            table.indexes.push(key);
        }
    }

    let set_columns = if version >= 150_000 {
        "(SELECT string_agg(a.attname::text, chr(31) ORDER BY a.attnum) FROM pg_catalog.pg_attribute a \
           WHERE a.attrelid = con.conrelid AND a.attnum = ANY (con.confdelsetcols))"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT c.relname::text, con.conname::text, p.relname::text, \
           (SELECT string_agg(a.attname::text, chr(31) ORDER BY k.n) \
              FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n) \
              JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum), \
           (SELECT string_agg(a.attname::text, chr(31) ORDER BY k.n) \
              FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, n) \
              JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum), \
           con.confdeltype::text, con.confupdtype::text, {set_columns} \
         FROM pg_catalog.pg_constraint con \
         JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_class p ON p.oid = con.confrelid \
         WHERE con.contype = 'f' AND n.nspname = current_schema() \
         ORDER BY 1, 2"
    );
    for row in query(conn, &sql, vec![]).await? {
        let table: String = get(&row, 0)?;
        let Some(table) = tables.get_mut(&table) else {
            continue;
        };
        let on_delete: String = get(&row, 5)?;
        let on_update: String = get(&row, 6)?;
        table.foreign_keys.push(ForeignKey {
            name: Some(get(&row, 1)?),
            columns: split_list(get(&row, 3)?),
            ref_table: get(&row, 2)?,
            ref_columns: split_list(get(&row, 4)?),
            on_delete: action(&on_delete),
            on_update: action(&on_update),
            set_columns: split_list(get(&row, 7)?),
        });
    }
    Ok(tables.into_values().collect())
}

/// A referential action as `pg_constraint` stores it (`confdeltype`, `confupdtype`).
fn action(code: &str) -> RefAction {
    match code {
        "r" => RefAction::Restrict,
        "c" => RefAction::Cascade,
        "n" => RefAction::SetNull,
        "d" => RefAction::SetDefault,
        _ => RefAction::NoAction,
    }
}
