//! Schema discovery: the live schema as sea-query `CREATE TABLE` statements, through sea-schema.

use std::{collections::BTreeMap, str::FromStr as _};

use sea_orm::{
    sea_query::{ColumnType, TableCreateStatement},
    sqlx,
};

use super::GenerateError;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// PostgreSQL (schema `public`).
    Postgres,
    /// MySQL / MariaDB (the URL's database).
    MySql,
    /// SQLite.
    Sqlite,
}

impl Backend {
    /// The backend of `url`, from its scheme.
    pub(crate) fn of(url: &str) -> Result<Self, GenerateError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            "sqlite" => Ok(Backend::Sqlite),
            _ => Err(GenerateError::UnsupportedUrl),
        }
    }
}

/// The PostgreSQL schema the generator reads.
const POSTGRES_SCHEMA: &str = "public";

/// A discovered table: sea-schema's `CREATE TABLE` statement and what it lost on the way.
#[derive(Debug)]
pub(crate) struct Discovered {
    /// The table as sea-schema writes it.
    pub(crate) statement: TableCreateStatement,
    /// Column types that the backend's native type stands for (MySQL: `binary(16)` is a UUID,
    /// `tinyint(1)` a boolean): column -> type.
    pub(crate) types: BTreeMap<String, ColumnType>,
    /// Names of the UNIQUE constraints, by columns (SQLite reports inline constraints unnamed).
    pub(crate) unique_names: Vec<(Vec<String>, String)>,
}

impl Discovered {
    fn plain(statement: TableCreateStatement) -> Self {
        Discovered {
            statement,
            types: BTreeMap::new(),
            unique_names: Vec::new(),
        }
    }
}

/// Discovers every table of the database at `url` (the migration bookkeeping table included; the caller filters).
pub(crate) async fn discover(
    backend: Backend,
    url: &str,
) -> Result<Vec<Discovered>, GenerateError> {
    let connect = |e: sqlx::Error| GenerateError::Connect(e.to_string());
    let discover = |e: sqlx::Error| GenerateError::Discover(e.to_string());
    match backend {
        Backend::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::Executor::execute(
                            conn,
                            sqlx::AssertSqlSafe(format!("SET search_path = '{POSTGRES_SCHEMA}'")),
                        )
                        .await
                        .map(drop)
                    })
                })
                .connect(url)
                .await
                .map_err(connect)?;
            let schema = sea_schema::postgres::discovery::SchemaDiscovery::new(
                pool.clone(),
                POSTGRES_SCHEMA,
            )
            .discover()
            .await
            .map_err(discover);
            pool.close().await;
            Ok(schema?
                .tables
                .into_iter()
                .map(|mut table| {
                    // As sea-orm-cli does: generated columns can't be written, partial unique indexes
                    // are not supported by codegen.
                    table.columns.retain(|col| col.generated.is_none());
                    table.unique_constraints.retain(|c| !c.is_partial);
                    Discovered::plain(table.write())
                })
                .collect())
        }
        Backend::MySql => {
            let options = sqlx::mysql::MySqlConnectOptions::from_str(url).map_err(connect)?;
            let database = options
                .get_database()
                .ok_or(GenerateError::NoDatabaseInUrl)?
                .to_owned();
            let pool = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(connect)?;
            let schema =
                sea_schema::mysql::discovery::SchemaDiscovery::new(pool.clone(), &database)
                    .discover()
                    .await
                    .map_err(discover);
            pool.close().await;
            Ok(schema?
                .tables
                .into_iter()
                .map(|mut table| {
                    table.columns.retain(|col| !col.extra.generated);
                    let types = table
                        .columns
                        .iter()
                        .filter_map(|col| Some((col.name.clone(), mysql_type(&col.col_type)?)))
                        .collect();
                    Discovered {
                        statement: table.write(),
                        types,
                        unique_names: Vec::new(),
                    }
                })
                .collect())
        }
        Backend::Sqlite => {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .map_err(connect)?;
            let schema = sea_schema::sqlite::discovery::SchemaDiscovery::new(pool.clone())
                .discover()
                .await
                .map_err(|e| GenerateError::Discover(e.to_string()));
            let sources: Result<Vec<(String, String)>, _> = sqlx::query_as(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL",
            )
            .fetch_all(&pool)
            .await;
            pool.close().await;
            let sources: BTreeMap<String, String> =
                sources.map_err(discover)?.into_iter().collect();
            Ok(schema?
                .merge_indexes_into_table()
                .tables
                .into_iter()
                .map(|mut table| {
                    use sea_schema::sqlite::def::ColumnVisibility;
                    table.columns.retain(|col| {
                        !matches!(
                            col.hidden,
                            ColumnVisibility::GeneratedVirtual | ColumnVisibility::GeneratedStored
                        )
                    });
                    let unique_names = sources
                        .get(&table.name)
                        .map(|sql| sqlite_unique_constraints(sql))
                        .unwrap_or_default();
                    Discovered {
                        statement: table.write(),
                        types: BTreeMap::new(),
                        unique_names,
                    }
                })
                .collect())
        }
    }
}

/// The type a MySQL column stands for when sea-schema's reading of it differs from what the same migration gives
/// on PostgreSQL: sea-query writes a UUID as `binary(16)` and a boolean as `tinyint(1)` (`bool`).
fn mysql_type(ty: &sea_schema::mysql::def::Type) -> Option<ColumnType> {
    use sea_schema::mysql::def::Type;
    match ty {
        Type::Binary(attr) if attr.length == Some(16) => Some(ColumnType::Uuid),
        Type::TinyInt(attr) if attr.maximum == Some(1) => Some(ColumnType::Boolean),
        _ => None,
    }
}

/// The named UNIQUE constraints of a SQLite `CREATE TABLE` statement: `CONSTRAINT name UNIQUE (a, b)`, as
/// (columns, name). SQLite keeps such a constraint as an unnamed automatic index, so its name is only in the
/// table's SQL.
pub(crate) fn sqlite_unique_constraints(sql: &str) -> Vec<(Vec<String>, String)> {
    let tokens = sql_tokens(sql);
    let mut found = Vec::new();
    let keyword = |i: usize, word: &str| matches!(tokens.get(i), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word));
    for i in 0..tokens.len() {
        if !(keyword(i, "CONSTRAINT") && keyword(i + 2, "UNIQUE")) {
            continue;
        }
        let (Some(Token::Word(name) | Token::Quoted(name)), Some(Token::Punct('('))) =
            (tokens.get(i + 1), tokens.get(i + 3))
        else {
            continue;
        };
        // The first identifier of each comma-separated item (`col COLLATE x DESC` names `col`).
        let mut columns = Vec::new();
        let mut expect_column = true;
        for token in &tokens[i + 4..] {
            match token {
                Token::Punct(')') => break,
                Token::Punct(',') => expect_column = true,
                Token::Word(w) | Token::Quoted(w) if expect_column => {
                    columns.push(w.clone());
                    expect_column = false;
                }
                _ => {}
            }
        }
        found.push((columns, name.clone()));
    }
    found
}

/// A token of SQL, as much as [`sqlite_unique_constraints`] needs.
#[derive(Debug, PartialEq)]
enum Token {
    /// A bare word (keyword or identifier).
    Word(String),
    /// A quoted identifier (`"x"`, `` `x` `` or `[x]`), unquoted.
    Quoted(String),
    /// A string literal (its contents are irrelevant).
    Literal,
    /// Any other character.
    Punct(char),
}

fn sql_tokens(sql: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '"' | '`' | '[' | '\'' => {
                let close = if c == '[' { ']' } else { c };
                let mut text = String::new();
                while let Some(d) = chars.next() {
                    if d == close {
                        // A doubled quote is an escaped quote.
                        if close != ']' && chars.peek() == Some(&close) {
                            chars.next();
                            text.push(d);
                            continue;
                        }
                        break;
                    }
                    text.push(d);
                }
                tokens.push(if c == '\'' {
                    Token::Literal
                } else {
                    Token::Quoted(text)
                });
            }
            c if c.is_alphanumeric() || c == '_' => {
                let mut word = String::from(c);
                while let Some(&d) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' || d == '$' {
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            c => tokens.push(Token::Punct(c)),
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_unique_constraint_names_are_read_from_the_table_sql() {
        let sql = r#"CREATE TABLE "user_roles" ( "tenant_id" uuid_text NOT NULL, "user_id" uuid_text,
            CONSTRAINT "pk" PRIMARY KEY ("tenant_id", "id"),
            CONSTRAINT "uq_user_roles_user_id_role_id" UNIQUE ("tenant_id", "user_id", [role_id] COLLATE nocase),
            CONSTRAINT `x'y` CHECK (name <> 'CONSTRAINT "no" UNIQUE (a)'),
            constraint uq2 unique (a DESC) )"#;
        assert_eq!(
            sqlite_unique_constraints(sql),
            vec![
                (
                    vec![
                        "tenant_id".to_owned(),
                        "user_id".to_owned(),
                        "role_id".to_owned()
                    ],
                    "uq_user_roles_user_id_role_id".to_owned()
                ),
                (vec!["a".to_owned()], "uq2".to_owned()),
            ]
        );
    }
}
