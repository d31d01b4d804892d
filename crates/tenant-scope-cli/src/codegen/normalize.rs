//! Makes the tables discovered on every backend look alike, so the generated files are identical.
//!
//! - MySQL: `binary(16)` is a UUID and `tinyint(1)` a boolean (that is how sea-query writes them there), see
//!   [`Discovered::types`];
//! - SQLite: inline `CONSTRAINT name UNIQUE (..)` constraints get back their names, which sea-schema reports
//!   as unnamed automatic indexes (codegen names a composite unique key after its index);
//! - every backend: a timestamp with time zone (PostgreSQL `timestamptz`, SQLite's `timestamp_with_timezone_text`,
//!   MySQL `timestamp`, which sea-schema reads as a plain timestamp) is given to codegen as `Timestamp`, which it
//!   types `DateTimeUtc`.
//!
//! Differences that do not change the generated code are kept (MySQL's `varchar(255)` for an unsized string,
//! index and foreign key names).

use sea_orm::sea_query::{ColumnDef, ColumnType, StringLen, Table, TableCreateStatement};

use super::{GenerateError, discover::Discovered};

/// The table's name, as sea-orm-codegen reads it.
pub(crate) fn table_name(table: &TableCreateStatement) -> Option<String> {
    table
        .get_table_name()
        .map(|t| t.sea_orm_table().to_string())
}

/// The discovered table, normalised.
pub(crate) fn normalize(table: &Discovered) -> Result<TableCreateStatement, GenerateError> {
    let statement = &table.statement;
    let name = table_name(statement)
        .ok_or_else(|| GenerateError::Codegen("a discovered table has no name".into()))?;
    let mut out = Table::create();
    out.table(name.clone());
    for column in statement.get_columns() {
        let mut column = column.clone();
        let current = column.get_column_type().cloned();
        let wanted = table
            .types
            .get(&column.get_column_name())
            .cloned()
            .or_else(|| current.clone())
            .map(|ty| match ty {
                ColumnType::TimestampWithTimeZone => ColumnType::Timestamp,
                ty => ty,
            });
        if let Some(wanted) = wanted.filter(|w| Some(w) != current.as_ref()) {
            set_type(&mut column, &wanted).ok_or_else(|| GenerateError::Shape {
                table: name.clone(),
                problem: format!(
                    "cannot normalise the type of column `{}`",
                    column.get_column_name()
                ),
            })?;
        }
        out.col(column);
    }
    for index in statement.get_indexes() {
        let mut index = index.clone();
        if index.is_unique_key() && index.get_index_spec().get_name().is_none() {
            let columns = index.get_index_spec().get_column_names();
            if let Some((_, constraint)) = table.unique_names.iter().find(|(c, _)| *c == columns) {
                index.name(constraint.as_str());
            }
        }
        out.index(&mut index);
    }
    for fk in statement.get_foreign_key_create_stmts() {
        out.foreign_key(&mut fk.clone());
    }
    Ok(out)
}

/// Sets the type of `column` to `ty`, for the types [`normalize`] produces.
fn set_type(column: &mut ColumnDef, ty: &ColumnType) -> Option<()> {
    match ty {
        ColumnType::Uuid => column.uuid(),
        ColumnType::Timestamp => column.timestamp(),
        ColumnType::Boolean => column.boolean(),
        ColumnType::Text => column.text(),
        ColumnType::String(StringLen::None) => column.string(),
        ColumnType::String(StringLen::N(n)) => column.string_len(*n),
        _ => return None,
    };
    Some(())
}
