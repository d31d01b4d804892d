//! The model: tables, columns, keys, indexes and foreign keys, as the database reports them.

use std::collections::BTreeMap;
use std::fmt;

use sea_orm::sea_query::ColumnType;

use crate::Backend;
use crate::postgres::Security;

/// What tenant-scope knows about a live database: its tables in the [scope](crate#the-scope), and on
/// PostgreSQL what row level security depends on ([`Security`]).
///
/// Read it with [`Catalog::read`] (or [`Catalog::reader`] for the options). Every tool of
/// tenant-scope that looks at a schema reads this one model: `tenant-scope generate`, `tenant-scope
/// check`, the adopt steps and the connect-time self-check.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Catalog {
    /// The backend.
    pub backend: Backend,
    /// The scope the tables were read from: the PostgreSQL schema (`current_schema()`), the
    /// MySQL database (`DATABASE()`), or `main` on SQLite.
    pub scope: String,
    /// The tables of the scope, by name (sea-orm-migration's bookkeeping table and SQLite's
    /// internal tables included; see [`Tenancy`](crate::Tenancy) for what each is).
    pub tables: BTreeMap<String, Table>,
    /// PostgreSQL: row level security, policies, views and the role (see [`Security`]); `None` on
    /// SQLite and MySQL, which have no row level security.
    pub security: Option<Security>,
}

impl Catalog {
    /// The table `name`, if the scope has it.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }
}

/// A table.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Table {
    /// The table's name.
    pub name: String,
    /// The columns, in table order.
    pub columns: Vec<Column>,
    /// The primary key's columns **in key order** (which need not be table order); empty if
    /// there is none.
    pub primary_key: Vec<String>,
    /// The primary key constraint's name where the database has one (PostgreSQL `<table>_pkey`,
    /// MySQL `PRIMARY`); `None` on SQLite and for a table without a primary key.
    pub primary_key_name: Option<String>,
    /// The unique constraints and unique indexes other than the primary key, sorted by name.
    pub uniques: Vec<Key>,
    /// The other indexes, sorted by name.
    pub indexes: Vec<Key>,
    /// The foreign keys, sorted by name, then by columns.
    pub foreign_keys: Vec<ForeignKey>,
    /// SQLite: the table's `CREATE TABLE` statement as stored in `sqlite_master` (the only place
    /// SQLite keeps constraint names and `CHECK` constraints). `None` on the other backends.
    pub definition: Option<String>,
}

impl Table {
    /// The column `name`, if the table has it.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether the table has a column `name`.
    pub fn has_column(&self, name: &str) -> bool {
        self.column(name).is_some()
    }

    /// The foreign keys over exactly `columns`.
    pub fn foreign_keys_on<'a>(
        &'a self,
        columns: &'a [String],
    ) -> impl Iterator<Item = &'a ForeignKey> + 'a {
        self.foreign_keys
            .iter()
            .filter(move |fk| fk.columns == columns)
    }

    /// Whether the primary key, a unique key or an index starts with `columns`.
    pub fn has_key_led_by(&self, columns: &[String]) -> bool {
        self.uniques
            .iter()
            .chain(&self.indexes)
            .map(|k| &k.columns)
            .chain(std::iter::once(&self.primary_key))
            .any(|k| k.starts_with(columns))
    }
}

/// A column.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// Whether it accepts `NULL`. (On SQLite a primary key column that is not the rowid accepts
    /// `NULL` unless it is declared `NOT NULL`; that is what is reported.)
    pub nullable: bool,
    /// The type as the database states it: PostgreSQL `format_type()` (`uuid`, `integer`,
    /// `character varying(255)`), MySQL `COLUMN_TYPE` (`binary(16)`, `int(11)`), SQLite the
    /// declared type (`uuid_text`, `INTEGER`).
    pub native_type: String,
    /// The default expression as the database prints it, if any.
    pub default: Option<String>,
    /// Whether it is a generated (computed) column: it cannot be written.
    pub generated: bool,
    /// Whether the database assigns its value (PostgreSQL `serial`/identity, MySQL
    /// `AUTO_INCREMENT`, SQLite `INTEGER PRIMARY KEY`).
    pub auto_increment: bool,
    /// SeaORM's type for it: filled by `Catalog::read_with_types` (feature `sea-schema`), `None`
    /// otherwise.
    pub ty: Option<ColumnType>,
}

/// A unique key (constraint or unique index) or an index.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Key {
    /// Its name: the constraint's name where there is one (on SQLite read from the table's
    /// definition, since SQLite reports an inline `UNIQUE` as `sqlite_autoindex_<table>_<n>`),
    /// else the index's.
    pub name: String,
    /// Its columns, in key order; an expression appears as its SQL text (PostgreSQL, e.g.
    /// `lower(email::text)`), or as [`EXPRESSION`] where the backend does not print it.
    pub columns: Vec<String>,
    /// Whether it is declared as a constraint of the table (PostgreSQL `UNIQUE` constraint, SQLite
    /// `UNIQUE` in `CREATE TABLE`) rather than made by `CREATE [UNIQUE] INDEX`. Always `false` on
    /// MySQL, where the two are the same.
    pub constraint: bool,
    /// Whether it has a `WHERE` clause (a partial index).
    pub partial: bool,
    /// SQLite: the `CREATE INDEX` statement of an index made by `CREATE INDEX`; `None` otherwise.
    pub definition: Option<String>,
}

/// What [`Key::columns`] holds for an expression the backend does not print (SQLite, MySQL).
pub const EXPRESSION: &str = "<expression>";

/// A foreign key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForeignKey {
    /// Its name; `None` on SQLite, which keeps none.
    pub name: Option<String>,
    /// The referencing columns.
    pub columns: Vec<String>,
    /// The referenced table.
    pub ref_table: String,
    /// The referenced columns (on SQLite, a key declared without them references the parent's
    /// primary key, which is what is reported).
    pub ref_columns: Vec<String>,
    /// What deleting a referenced row does.
    pub on_delete: RefAction,
    /// What updating a referenced key does.
    pub on_update: RefAction,
    /// PostgreSQL 15+: the columns `ON DELETE SET NULL (..)` / `SET DEFAULT (..)` changes; empty
    /// means every referencing column.
    pub set_columns: Vec<String>,
}

impl ForeignKey {
    /// Its name, or `(<columns>)` where the database keeps none (for messages).
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("({})", self.columns.join(", ")),
        }
    }
}

/// A referential action of a foreign key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefAction {
    /// `NO ACTION` (the default).
    NoAction,
    /// `RESTRICT`.
    Restrict,
    /// `CASCADE`.
    Cascade,
    /// `SET NULL`.
    SetNull,
    /// `SET DEFAULT`.
    SetDefault,
}

impl RefAction {
    /// The SQL words.
    pub fn sql(self) -> &'static str {
        match self {
            RefAction::NoAction => "NO ACTION",
            RefAction::Restrict => "RESTRICT",
            RefAction::Cascade => "CASCADE",
            RefAction::SetNull => "SET NULL",
            RefAction::SetDefault => "SET DEFAULT",
        }
    }

    /// The action named by `sql` (`CASCADE`, `set null`, ...); `NO ACTION` for anything else.
    pub(crate) fn parse(sql: &str) -> Self {
        match sql.trim().to_ascii_uppercase().as_str() {
            "RESTRICT" => RefAction::Restrict,
            "CASCADE" => RefAction::Cascade,
            "SET NULL" => RefAction::SetNull,
            "SET DEFAULT" => RefAction::SetDefault,
            _ => RefAction::NoAction,
        }
    }
}

impl fmt::Display for RefAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql())
    }
}
