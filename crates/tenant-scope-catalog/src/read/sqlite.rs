//! SQLite: the `pragma_*` table-valued functions and `sqlite_master`.
//!
//! SQLite keeps a constraint's name only in the table's `CREATE TABLE` text: an inline
//! `CONSTRAINT uq_x UNIQUE (..)` is reported by `pragma_index_list` as `sqlite_autoindex_<table>_<n>`.
//! Those names are read back from the text ([`named_uniques`]). Foreign keys have no name SQLite
//! reports at all.

use std::collections::BTreeSet;

use sea_orm::{ConnectionTrait, DbErr};

use crate::model::{Column, EXPRESSION, ForeignKey, Key, RefAction, Table};
use crate::sql::{get, query};

/// The tables of the `main` database (SQLite's internal `sqlite_*` tables excluded), or only those
/// named in `only`.
pub(crate) async fn read<C: ConnectionTrait>(
    conn: &C,
    only: Option<&BTreeSet<String>>,
) -> Result<Vec<Table>, DbErr> {
    let mut tables = Vec::new();
    for row in query(
        conn,
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         ORDER BY name",
        vec![],
    )
    .await?
    {
        let name: String = get(&row, 0)?;
        if only.is_some_and(|only| !only.contains(&name)) {
            continue;
        }
        let definition: Option<String> = get(&row, 1)?;
        tables.push(table(conn, name, definition).await?);
    }
    Ok(tables)
}

async fn table<C: ConnectionTrait>(
    conn: &C,
    name: String,
    definition: Option<String>,
) -> Result<Table, DbErr> {
    let sql = definition.clone().unwrap_or_default();
    let without_rowid = sql.to_ascii_uppercase().contains("WITHOUT ROWID");
    let mut columns = Vec::new();
    let mut pk: Vec<(i64, String)> = Vec::new();
    for row in query(
        conn,
        "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid",
        vec![name.clone().into()],
    )
    .await?
    {
        let column: String = get(&row, 0)?;
        let native_type: String = get(&row, 1)?;
        let not_null: i64 = get(&row, 2)?;
        let default: Option<String> = get(&row, 3)?;
        let key: i64 = get(&row, 4)?;
        let hidden: i64 = get(&row, 5)?;
        if key > 0 {
            pk.push((key, column.clone()));
        }
        columns.push(Column {
            name: column,
            nullable: not_null == 0,
            native_type,
            default,
            generated: hidden == 2 || hidden == 3,
            auto_increment: false,
            ty: None,
        });
    }
    pk.sort();
    let primary_key: Vec<String> = pk.into_iter().map(|(_, c)| c).collect();
    // `INTEGER PRIMARY KEY` alone is the rowid: never NULL, assigned by SQLite. Any other primary
    // key column accepts NULL unless declared NOT NULL (a legacy quirk), except in a table
    // WITHOUT ROWID.
    let rowid = match primary_key.as_slice() {
        [only] if !without_rowid => columns
            .iter()
            .find(|c| &c.name == only && c.native_type.eq_ignore_ascii_case("INTEGER"))
            .map(|c| c.name.clone()),
        _ => None,
    };
    for column in &mut columns {
        if rowid.as_deref() == Some(column.name.as_str()) {
            column.nullable = false;
            column.auto_increment = true;
        } else if without_rowid && primary_key.contains(&column.name) {
            column.nullable = false;
        }
    }

    let named = named_uniques(&sql);
    let mut uniques = Vec::new();
    let mut indexes = Vec::new();
    for row in query(
        conn,
        "SELECT il.name, il.\"unique\", il.origin, il.partial, m.sql FROM pragma_index_list(?) il \
         LEFT JOIN sqlite_master m ON m.type = 'index' AND m.name = il.name",
        vec![name.clone().into()],
    )
    .await?
    {
        let index: String = get(&row, 0)?;
        let unique: i64 = get(&row, 1)?;
        let origin: String = get(&row, 2)?;
        let partial: i64 = get(&row, 3)?;
        let index_sql: Option<String> = get(&row, 4)?;
        if origin == "pk" {
            continue;
        }
        let mut key_columns = Vec::new();
        for col in query(
            conn,
            "SELECT name FROM pragma_index_info(?) ORDER BY seqno",
            vec![index.clone().into()],
        )
        .await?
        {
            let column: Option<String> = get(&col, 0)?;
            key_columns.push(column.unwrap_or_else(|| EXPRESSION.to_owned()));
        }
        let constraint = origin == "u";
        let key_name = if constraint {
            named
                .iter()
                .find(|(cols, _)| *cols == key_columns)
                .map_or(index, |(_, n)| n.clone())
        } else {
            index
        };
        let key = Key {
            name: key_name,
            columns: key_columns,
            constraint,
            partial: partial != 0,
            definition: if origin == "c" { index_sql } else { None },
        };
        if unique != 0 {
            uniques.push(key);
        } else {
            indexes.push(key);
        }
    }

    let mut foreign_keys: Vec<(i64, ForeignKey)> = Vec::new();
    for row in query(
        conn,
        "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete \
         FROM pragma_foreign_key_list(?) ORDER BY id, seq",
        vec![name.clone().into()],
    )
    .await?
    {
        let id: i64 = get(&row, 0)?;
        let parent: String = get(&row, 1)?;
        let from: String = get(&row, 2)?;
        let to: Option<String> = get(&row, 3)?;
        let on_update: String = get(&row, 4)?;
        let on_delete: String = get(&row, 5)?;
        match foreign_keys.iter_mut().find(|(i, _)| *i == id) {
            Some((_, fk)) => {
                fk.columns.push(from);
                fk.ref_columns.extend(to);
            }
            None => foreign_keys.push((
                id,
                ForeignKey {
                    name: None,
                    columns: vec![from],
                    ref_table: parent,
                    ref_columns: to.into_iter().collect(),
                    on_delete: RefAction::parse(&on_delete),
                    on_update: RefAction::parse(&on_update),
                    set_columns: Vec::new(),
                },
            )),
        }
    }
    let mut fks = Vec::new();
    for (_, mut fk) in foreign_keys {
        // `REFERENCES parent` without columns references the parent's primary key.
        if fk.ref_columns.is_empty() {
            fk.ref_columns = parent_primary_key(conn, &fk.ref_table).await?;
        }
        fks.push(fk);
    }
    Ok(Table {
        name,
        columns,
        primary_key,
        primary_key_name: None,
        uniques,
        indexes,
        foreign_keys: fks,
        definition,
    })
}

async fn parent_primary_key<C: ConnectionTrait>(
    conn: &C,
    table: &str,
) -> Result<Vec<String>, DbErr> {
    let mut pk: Vec<(i64, String)> = Vec::new();
    for row in query(
        conn,
        "SELECT name, pk FROM pragma_table_info(?) WHERE pk > 0",
        vec![table.into()],
    )
    .await?
    {
        pk.push((get(&row, 1)?, get(&row, 0)?));
    }
    pk.sort();
    Ok(pk.into_iter().map(|(_, c)| c).collect())
}

/// The named UNIQUE constraints of a SQLite `CREATE TABLE` statement, `CONSTRAINT name UNIQUE (a, b)`,
/// as (columns, name).
pub(crate) fn named_uniques(sql: &str) -> Vec<(Vec<String>, String)> {
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

/// A token of SQL, as much as [`named_uniques`] needs.
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
    fn unique_constraint_names_are_read_from_the_table_sql() {
        let sql = r#"CREATE TABLE "user_roles" ( "tenant_id" uuid_text NOT NULL, "user_id" uuid_text,
            CONSTRAINT "pk" PRIMARY KEY ("tenant_id", "id"),
            CONSTRAINT "uq_user_roles_user_id_role_id" UNIQUE ("tenant_id", "user_id", [role_id] COLLATE nocase),
            CONSTRAINT `x'y` CHECK (name <> 'CONSTRAINT "no" UNIQUE (a)'),
            constraint uq2 unique (a DESC) )"#;
        assert_eq!(
            named_uniques(sql),
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
