//! The schema as the checks see it, discovered with sea-schema on every backend.
//!
//! sea-schema gives columns (nullability), primary keys, foreign keys with their actions, and indexes and
//! unique keys on SQLite and MySQL. On PostgreSQL it gives columns, primary keys and foreign keys; indexes
//! come from `pg_index` instead (sea-schema reports only unique indexes on plain columns there, and an
//! expression unique index such as `UNIQUE (lower(email))` is exactly what this lint must not miss), and so
//! does the column list of `ON DELETE SET NULL (col)` (PostgreSQL 15), which sea-schema does not model.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use super::CheckError;

/// A referential action of a foreign key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefAction {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl RefAction {
    pub(super) fn sql(self) -> &'static str {
        match self {
            RefAction::NoAction => "NO ACTION",
            RefAction::Restrict => "RESTRICT",
            RefAction::Cascade => "CASCADE",
            RefAction::SetNull => "SET NULL",
            RefAction::SetDefault => "SET DEFAULT",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Column {
    pub(super) name: String,
    pub(super) nullable: bool,
}

#[derive(Debug, Clone)]
pub(super) struct ForeignKey {
    pub(super) name: String,
    pub(super) columns: Vec<String>,
    pub(super) ref_table: String,
    pub(super) ref_columns: Vec<String>,
    pub(super) on_delete: RefAction,
    pub(super) on_update: RefAction,
    /// PostgreSQL 15 `ON DELETE SET NULL (cols)` / `SET DEFAULT (cols)`: the columns it changes. Empty means
    /// every column of the key.
    pub(super) set_columns: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Index {
    pub(super) name: String,
    /// Column names; an expression appears as its SQL text.
    pub(super) columns: Vec<String>,
    pub(super) unique: bool,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Table {
    pub(super) name: String,
    pub(super) columns: Vec<Column>,
    pub(super) primary_key: Vec<String>,
    pub(super) foreign_keys: Vec<ForeignKey>,
    /// Indexes and unique keys, without the primary key's index.
    pub(super) indexes: Vec<Index>,
}

impl Table {
    pub(super) fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone)]
pub(super) struct Model {
    pub(super) backend: DbBackend,
    pub(super) tables: BTreeMap<String, Table>,
}

pub(super) async fn discover(
    db: &DatabaseConnection,
    backend: DbBackend,
) -> Result<Model, CheckError> {
    let tables = match backend {
        DbBackend::Sqlite => sqlite(db).await?,
        DbBackend::Postgres => postgres(db).await?,
        DbBackend::MySql => mysql(db).await?,
        _ => return Err(CheckError::UnsupportedBackend),
    };
    let tables = tables
        .into_iter()
        .filter(|t| !t.name.starts_with("sqlite_") && !super::IGNORED_TABLES.contains(&&*t.name))
        .map(|t| (t.name.clone(), t))
        .collect();
    Ok(Model { backend, tables })
}

fn discover_err(e: impl std::fmt::Display) -> CheckError {
    CheckError::Discover(e.to_string())
}

/// Runs `sql` and reads every column of every row as a string (NULL as `None`).
pub(super) async fn rows(
    db: &DatabaseConnection,
    sql: &str,
    values: Vec<sea_orm::Value>,
    width: usize,
) -> Result<Vec<Vec<Option<String>>>, CheckError> {
    let stmt = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    let rows = db.query_all_raw(stmt).await.map_err(discover_err)?;
    rows.iter()
        .map(|row| {
            (0..width)
                .map(|i| {
                    row.try_get_by_index::<Option<String>>(i)
                        .map_err(discover_err)
                })
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------- SQLite

async fn sqlite(db: &DatabaseConnection) -> Result<Vec<Table>, CheckError> {
    use sea_schema::sqlite::def::ForeignKeyAction as A;
    use sea_schema::sqlite::discovery::SchemaDiscovery;

    let pool = db.get_sqlite_connection_pool().clone();
    let schema = SchemaDiscovery::new(pool)
        .discover()
        .await
        .map_err(|e| CheckError::Discover(format!("{e:?}")))?;
    let mut tables = Vec::new();
    for def in &schema.tables {
        // sea-schema marks primary key columns with a flag and takes the first one for NOT NULL, but a SQLite
        // primary key column that is not a rowid alias accepts NULL unless declared NOT NULL (a legacy quirk
        // this check must see), and the key's order is in `pk`: read both from the pragma.
        let info = rows(
            db,
            "SELECT name, CAST(pk AS TEXT), CAST(\"notnull\" AS TEXT), upper(type) \
             FROM pragma_table_info(?) ORDER BY cid",
            vec![def.name.clone().into()],
            4,
        )
        .await?;
        let mut pk: Vec<(i64, String)> = info
            .iter()
            .filter_map(|r| {
                let order = r[1].as_deref()?.parse::<i64>().ok().filter(|o| *o > 0)?;
                Some((order, r[0].clone()?))
            })
            .collect();
        pk.sort();
        let rowid_alias = pk.len() == 1
            && info
                .iter()
                .any(|r| r[1].as_deref() == Some("1") && r[3].as_deref() == Some("INTEGER"));
        let nullable = |name: &str| {
            info.iter()
                .find(|r| r[0].as_deref() == Some(name))
                .is_some_and(|r| r[2].as_deref() == Some("0"))
                && !(rowid_alias && pk.first().is_some_and(|(_, c)| c == name))
        };
        let pk: Vec<String> = pk.iter().map(|(_, c)| c.clone()).collect();
        let action = |a: &A| match a {
            A::NoAction => RefAction::NoAction,
            A::Restrict => RefAction::Restrict,
            A::Cascade => RefAction::Cascade,
            A::SetNull => RefAction::SetNull,
            A::SetDefault => RefAction::SetDefault,
        };
        let foreign_keys = def
            .foreign_keys
            .iter()
            .map(|fk| ForeignKey {
                // SQLite foreign keys are unnamed: name them by their columns.
                name: format!("({})", fk.from.join(", ")),
                columns: fk.from.clone(),
                ref_table: fk.table.clone(),
                ref_columns: fk.to.clone(),
                on_delete: action(&fk.on_delete),
                on_update: action(&fk.on_update),
                set_columns: Vec::new(),
            })
            .collect();
        let indexes = def
            .constraints
            .iter()
            .chain(schema.indexes.iter().filter(|ix| ix.table_name == def.name))
            .map(|ix| Index {
                name: ix.index_name.clone(),
                columns: ix.columns.clone(),
                unique: ix.unique,
            })
            .collect();
        tables.push(Table {
            name: def.name.clone(),
            columns: def
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    nullable: nullable(&c.name),
                })
                .collect(),
            primary_key: pk,
            foreign_keys,
            indexes,
        });
    }
    Ok(tables)
}

// ---------------------------------------------------------------- MySQL / MariaDB

async fn mysql(db: &DatabaseConnection) -> Result<Vec<Table>, CheckError> {
    use sea_schema::mysql::def::ForeignKeyAction as A;
    use sea_schema::mysql::discovery::SchemaDiscovery;

    let current = rows(db, "SELECT CAST(DATABASE() AS CHAR)", vec![], 1)
        .await?
        .into_iter()
        .next()
        .and_then(|mut r| r.remove(0))
        .ok_or_else(|| CheckError::Discover("the MySQL URL names no database".into()))?;
    let pool = db.get_mysql_connection_pool().clone();
    let schema = SchemaDiscovery::new(pool, &current)
        .discover()
        .await
        .map_err(discover_err)?;
    let action = |a: &A| match a {
        A::NoAction => RefAction::NoAction,
        A::Restrict => RefAction::Restrict,
        A::Cascade => RefAction::Cascade,
        A::SetNull => RefAction::SetNull,
        A::SetDefault => RefAction::SetDefault,
    };
    let mut tables = Vec::new();
    for def in &schema.tables {
        let mut primary_key = Vec::new();
        let mut indexes = Vec::new();
        for ix in &def.indexes {
            let columns: Vec<String> = ix.parts.iter().map(|p| p.column.clone()).collect();
            if ix.name == "PRIMARY" {
                primary_key = columns;
            } else {
                indexes.push(Index {
                    name: ix.name.clone(),
                    columns,
                    unique: ix.unique,
                });
            }
        }
        tables.push(Table {
            name: def.info.name.clone(),
            columns: def
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    nullable: c.null,
                })
                .collect(),
            primary_key,
            foreign_keys: def
                .foreign_keys
                .iter()
                .map(|fk| ForeignKey {
                    name: fk.name.clone(),
                    columns: fk.columns.clone(),
                    ref_table: fk.referenced_table.clone(),
                    ref_columns: fk.referenced_columns.clone(),
                    on_delete: action(&fk.on_delete),
                    on_update: action(&fk.on_update),
                    set_columns: Vec::new(),
                })
                .collect(),
            indexes,
        });
    }
    Ok(tables)
}

// ---------------------------------------------------------------- PostgreSQL

async fn postgres(db: &DatabaseConnection) -> Result<Vec<Table>, CheckError> {
    use sea_schema::postgres::def::ForeignKeyAction as A;
    use sea_schema::postgres::discovery::SchemaDiscovery;

    let current = rows(db, "SELECT current_schema()::text", vec![], 1)
        .await?
        .into_iter()
        .next()
        .and_then(|mut r| r.remove(0))
        .ok_or_else(|| CheckError::Discover("no current schema (check search_path)".into()))?;
    let pool = db.get_postgres_connection_pool().clone();
    let schema = SchemaDiscovery::new(pool, &current)
        .discover()
        .await
        .map_err(discover_err)?;

    // Every index but the primary key's, with expression columns as SQL text (unit separator between).
    let index_rows = rows(
        db,
        "SELECT t.relname::text, i.relname::text, CASE WHEN ix.indisunique THEN 'u' ELSE '' END, \
           (SELECT string_agg(pg_get_indexdef(ix.indexrelid, k, true), chr(31) ORDER BY k) \
              FROM generate_series(1, ix.indnkeyatts) AS k) \
         FROM pg_index ix \
         JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND NOT ix.indisprimary AND t.relkind IN ('r', 'p') \
         ORDER BY 1, 2",
        vec![],
        4,
    )
    .await?;
    let version = rows(
        db,
        "SELECT current_setting('server_version_num')",
        vec![],
        1,
    )
    .await?
    .into_iter()
    .next()
    .and_then(|mut r| r.remove(0))
    .and_then(|v| v.parse::<u32>().ok())
    .unwrap_or(0);
    // (table, constraint, columns changed by SET NULL/SET DEFAULT) where a column list is given.
    let set_rows = if version >= 150_000 {
        rows(
            db,
            "SELECT c.relname::text, con.conname::text, \
               (SELECT string_agg(a.attname::text, chr(31) ORDER BY a.attnum) FROM pg_attribute a \
                 WHERE a.attrelid = con.conrelid AND a.attnum = ANY (con.confdelsetcols)) \
             FROM pg_constraint con \
             JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE con.contype = 'f' AND n.nspname = current_schema() \
               AND cardinality(con.confdelsetcols) > 0",
            vec![],
            3,
        )
        .await?
    } else {
        Vec::new()
    };

    let action = |a: &Option<A>| match a {
        None | Some(A::NoAction) => RefAction::NoAction,
        Some(A::Restrict) => RefAction::Restrict,
        Some(A::Cascade) => RefAction::Cascade,
        Some(A::SetNull) => RefAction::SetNull,
        Some(A::SetDefault) => RefAction::SetDefault,
    };
    let split = |s: &Option<String>| -> Vec<String> {
        s.as_deref()
            .map(|s| s.split('\u{1f}').map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let mut tables = Vec::new();
    for def in &schema.tables {
        let name = def.info.name.clone();
        let foreign_keys = def
            .reference_constraints
            .iter()
            .map(|fk| ForeignKey {
                name: fk.name.clone(),
                columns: fk.columns.clone(),
                ref_table: fk.table.clone(),
                ref_columns: fk.foreign_columns.clone(),
                on_delete: action(&fk.on_delete),
                on_update: action(&fk.on_update),
                set_columns: set_rows
                    .iter()
                    .find(|r| r[0].as_deref() == Some(&*name) && r[1].as_deref() == Some(&*fk.name))
                    .map(|r| split(&r[2]))
                    .unwrap_or_default(),
            })
            .collect();
        let indexes = index_rows
            .iter()
            .filter(|r| r[0].as_deref() == Some(&*name))
            .map(|r| Index {
                name: r[1].clone().unwrap_or_default(),
                columns: split(&r[3]),
                unique: r[2].as_deref() == Some("u"),
            })
            .collect();
        tables.push(Table {
            columns: def
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    nullable: c.not_null.is_none(),
                })
                .collect(),
            primary_key: def
                .primary_key_constraints
                .first()
                .map(|pk| pk.columns.clone())
                .unwrap_or_default(),
            foreign_keys,
            indexes,
            name,
        });
    }
    Ok(tables)
}
