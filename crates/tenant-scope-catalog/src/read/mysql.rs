//! MySQL / MariaDB: `information_schema` of the connection's database (`DATABASE()`).
//!
//! Every text column is `CAST(.. AS CHAR)`: MariaDB and MySQL report some of them as binary
//! strings, depending on version and collation.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, DbErr};

use super::empty_tables;
use crate::model::{Column, EXPRESSION, ForeignKey, Key, RefAction, Table};
use crate::sql::{get, query};

/// The name of the connection's database; `None` if the URL names none.
pub(crate) async fn scope<C: ConnectionTrait>(conn: &C) -> Result<Option<String>, DbErr> {
    let rows = query(conn, "SELECT CAST(DATABASE() AS CHAR)", vec![]).await?;
    match rows.first() {
        Some(row) => get(row, 0),
        None => Ok(None),
    }
}

/// The base tables of the connection's database, or only those named in `only`.
pub(crate) async fn read<C: ConnectionTrait>(
    conn: &C,
    only: Option<&BTreeSet<String>>,
) -> Result<Vec<Table>, DbErr> {
    let names = query(
        conn,
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
        vec![],
    )
    .await?;
    let mut tables = empty_tables(&names, only)?;

    for row in query(
        conn,
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), CAST(IS_NULLABLE AS CHAR), \
           CAST(COLUMN_TYPE AS CHAR), CAST(COLUMN_DEFAULT AS CHAR), CAST(EXTRA AS CHAR) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
         ORDER BY TABLE_NAME, ORDINAL_POSITION",
        vec![],
    )
    .await?
    {
        let table: String = get(&row, 0)?;
        let Some(table) = tables.get_mut(&table) else {
            continue;
        };
        let nullable: String = get(&row, 2)?;
        let extra: Option<String> = get(&row, 5)?;
        let extra = extra.unwrap_or_default().to_ascii_lowercase();
        table.columns.push(Column {
            name: get(&row, 1)?,
            nullable: nullable == "YES",
            native_type: get(&row, 3)?,
            default: get(&row, 4)?,
            generated: extra.contains("generated"),
            auto_increment: extra.contains("auto_increment"),
            ty: None,
        });
    }

    // One row per key part; an expression part (MySQL 8 functional index) has no column name.
    let mut keys: BTreeMap<(String, String), (bool, Vec<String>)> = BTreeMap::new();
    for row in query(
        conn,
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(INDEX_NAME AS CHAR), CAST(NON_UNIQUE AS SIGNED), \
           CAST(COLUMN_NAME AS CHAR) \
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
         ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        vec![],
    )
    .await?
    {
        let table: String = get(&row, 0)?;
        if !tables.contains_key(&table) {
            continue;
        }
        let index: String = get(&row, 1)?;
        let non_unique: i64 = get(&row, 2)?;
        let column: Option<String> = get(&row, 3)?;
        keys.entry((table, index))
            .or_insert_with(|| (non_unique == 0, Vec::new()))
            .1
            .push(column.unwrap_or_else(|| EXPRESSION.to_owned()));
    }
    for ((table, index), (unique, columns)) in keys {
        let Some(table) = tables.get_mut(&table) else {
            continue;
        };
        if index == "PRIMARY" {
            table.primary_key = columns;
            table.primary_key_name = Some(index);
            continue;
        }
        let key = Key {
            name: index,
            columns,
            constraint: false,
            partial: false,
            definition: None,
        };
        if unique {
            table.uniques.push(key);
        } else {
            table.indexes.push(key);
        }
    }

    let mut fks: BTreeMap<(String, String), ForeignKey> = BTreeMap::new();
    for row in query(
        conn,
        "SELECT CAST(k.TABLE_NAME AS CHAR), CAST(k.CONSTRAINT_NAME AS CHAR), \
           CAST(k.COLUMN_NAME AS CHAR), CAST(k.REFERENCED_TABLE_NAME AS CHAR), \
           CAST(k.REFERENCED_COLUMN_NAME AS CHAR), CAST(r.DELETE_RULE AS CHAR), CAST(r.UPDATE_RULE AS CHAR) \
         FROM information_schema.KEY_COLUMN_USAGE k \
         JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
           ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
          AND r.TABLE_NAME = k.TABLE_NAME \
         WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL \
         ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        vec![],
    )
    .await?
    {
        let table: String = get(&row, 0)?;
        if !tables.contains_key(&table) {
            continue;
        }
        let name: String = get(&row, 1)?;
        let column: String = get(&row, 2)?;
        let ref_column: String = get(&row, 4)?;
        let on_delete: String = get(&row, 5)?;
        let on_update: String = get(&row, 6)?;
        let ref_table: String = get(&row, 3)?;
        let fk = fks
            .entry((table, name.clone()))
            .or_insert_with(|| ForeignKey {
                name: Some(name),
                columns: Vec::new(),
                ref_table,
                ref_columns: Vec::new(),
                on_delete: RefAction::parse(&on_delete),
                on_update: RefAction::parse(&on_update),
                set_columns: Vec::new(),
            });
        fk.columns.push(column);
        fk.ref_columns.push(ref_column);
    }
    for ((table, _), fk) in fks {
        if let Some(table) = tables.get_mut(&table) {
            table.foreign_keys.push(fk);
        }
    }
    Ok(tables.into_values().collect())
}
