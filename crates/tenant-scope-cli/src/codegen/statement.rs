//! The catalog's tables as the `CREATE TABLE` statements sea-orm-codegen reads.
//!
//! The statements are built from the catalog (`tenant_scope_catalog`), the model `tenant-scope
//! check` and the adopt steps read too, not from a second reading of the schema: the primary key
//! in key order, the unique keys by their constraint names (SQLite's included), the foreign keys
//! with their actions. What codegen is given:
//!
//! - every column but generated ones (they cannot be written), in table order, with its type
//!   (read through sea-schema and made the same across backends by the catalog), nullability and
//!   `auto_increment` (not for a column of a composite primary key: see [`statement`]); a timestamp with time zone is given as `Timestamp`, which codegen types
//!   `DateTimeUtc`;
//! - the primary key, as a key (so in key order, whatever the table order);
//! - the unique keys over plain columns that are not partial (codegen supports no other), named;
//! - the foreign keys, with `ON DELETE` / `ON UPDATE` unless it is `NO ACTION` (the default, which
//!   the backends report differently).

use sea_orm::sea_query::{
    ColumnDef, ColumnType, ForeignKey, ForeignKeyAction, Index, Table as SeaTable,
    TableCreateStatement,
};
use tenant_scope_catalog::{RefAction, Table};

use super::GenerateError;

/// The statement of `table` for sea-orm-codegen.
pub(crate) fn statement(table: &Table) -> Result<TableCreateStatement, GenerateError> {
    let mut stmt = SeaTable::create();
    stmt.table(table.name.clone());
    for column in table.columns.iter().filter(|c| !c.generated) {
        let ty = column.ty.clone().ok_or_else(|| GenerateError::Shape {
            table: table.name.clone(),
            problem: format!("the type of column `{}` could not be read", column.name),
        })?;
        let ty = match ty {
            ColumnType::TimestampWithTimeZone => ColumnType::Timestamp,
            ty => ty,
        };
        let mut def = ColumnDef::new_with_type(column.name.clone(), ty);
        if column.nullable {
            def.null();
        } else {
            def.not_null();
        }
        // An integer id of `(tenant_id, id)` is a counter on PostgreSQL and MySQL and none on
        // SQLite (no rowid alias in a composite key); the runtime assigns it either way, so the
        // attribute is left out and the entity is the same on every backend.
        if column.auto_increment && table.primary_key.len() < 2 {
            def.auto_increment();
        }
        stmt.col(def);
    }
    if !table.primary_key.is_empty() {
        let mut key = Index::create();
        for column in &table.primary_key {
            key.col(column.clone());
        }
        stmt.primary_key(&mut key);
    }
    let plain = |columns: &[String]| columns.iter().all(|c| table.has_column(c));
    for unique in table
        .uniques
        .iter()
        .filter(|k| !k.partial && plain(&k.columns))
    {
        let mut key = Index::create();
        key.name(unique.name.clone()).unique();
        for column in &unique.columns {
            key.col(column.clone());
        }
        stmt.index(&mut key);
    }
    for fk in &table.foreign_keys {
        let mut key = ForeignKey::create();
        if let Some(name) = &fk.name {
            key.name(name.clone());
        }
        key.from_tbl(table.name.clone())
            .to_tbl(fk.ref_table.clone());
        for column in &fk.columns {
            key.from_col(column.clone());
        }
        for column in &fk.ref_columns {
            key.to_col(column.clone());
        }
        if let Some(action) = action(fk.on_delete) {
            key.on_delete(action);
        }
        if let Some(action) = action(fk.on_update) {
            key.on_update(action);
        }
        stmt.foreign_key(&mut key);
    }
    Ok(stmt.to_owned())
}

fn action(action: RefAction) -> Option<ForeignKeyAction> {
    match action {
        RefAction::NoAction => None,
        RefAction::Restrict => Some(ForeignKeyAction::Restrict),
        RefAction::Cascade => Some(ForeignKeyAction::Cascade),
        RefAction::SetNull => Some(ForeignKeyAction::SetNull),
        RefAction::SetDefault => Some(ForeignKeyAction::SetDefault),
    }
}
