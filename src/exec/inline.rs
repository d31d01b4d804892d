//! A PostgreSQL statement with its values written into the text, so that a read and the tenant it
//! runs for can travel in **one** simple-query message (`SET LOCAL ..; <statement>`), one round
//! trip, where the extended protocol needs a message (and an answer) for each.
//!
//! Only values whose text has a fixed alphabet are written in: booleans, integers, UUIDs, dates and
//! timestamps to the microsecond (digits, `-`, `:`, `.`, `+`, space, hex digits), always quoted
//! and cast to the type sqlx would have bound them as (`'42'::int8`, `'…'::uuid`). Nothing a user
//! types as free text can be one of them: a statement with any other value (a string, bytes, JSON,
//! a float, an enum, ...) is not written out at all ([`inline`] returns `None`) and goes to the
//! server with bound parameters, as before. The statement's own text must be what sea-query writes: keywords,
//! `"quoted"` identifiers (a `"` inside doubled) and `$n` placeholders; anything else in it (a `'`
//! literal, a comment, a dollar quote, `;`) also means `None`.

use std::fmt::Write as _;

use sea_orm::Statement;
use sea_orm::sea_query::Value;

/// `stmt` with each `$n` replaced by its value as a typed literal, or `None` if a value or the text
/// is not one this module writes (see the module's documentation).
pub(crate) fn inline(stmt: &Statement) -> Option<String> {
    let values: Vec<String> = match &stmt.values {
        Some(values) => values.0.iter().map(literal).collect::<Option<_>>()?,
        None => Vec::new(),
    };
    let sql = stmt.sql.as_str();
    let mut out = String::with_capacity(sql.len() + 40 * values.len());
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '"' => {
                // A quoted identifier, to its closing quote (`""` inside is a quote).
                out.push('"');
                loop {
                    let (_, c) = chars.next()?;
                    out.push(c);
                    if c == '"' {
                        if chars.peek().is_some_and(|&(_, next)| next == '"') {
                            chars.next();
                            out.push('"');
                        } else {
                            break;
                        }
                    }
                }
            }
            '$' => {
                let digits: String = std::iter::from_fn(|| {
                    chars.next_if(|(_, c)| c.is_ascii_digit()).map(|(_, c)| c)
                })
                .collect();
                // `$` without a number would start a dollar-quoted string: not sea-query's.
                let n: usize = digits.parse().ok()?;
                out.push_str(values.get(n.checked_sub(1)?)?);
            }
            // A literal, a comment, a second statement: not what sea-query writes with its values
            // bound.
            '\'' | ';' | '\\' => return None,
            '-' if chars.peek().is_some_and(|&(_, next)| next == '-') => return None,
            '/' if chars.peek().is_some_and(|&(_, next)| next == '*') => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The literal of one value, typed as sqlx binds it on PostgreSQL (sea-query-sqlx), or `None` for a
/// value this module does not write.
fn literal(value: &Value) -> Option<String> {
    let typed = |text: Option<String>, ty: &str| match text {
        Some(text) => format!("'{text}'::{ty}"),
        None => format!("NULL::{ty}"),
    };
    Some(match value {
        Value::Bool(b) => typed(b.map(|b| b.to_string()), "boolean"),
        Value::SmallInt(i) => typed(i.map(|i| i.to_string()), "int2"),
        Value::Int(i) => typed(i.map(|i| i.to_string()), "int4"),
        Value::BigInt(i) => typed(i.map(|i| i.to_string()), "int8"),
        Value::TinyUnsigned(i) => typed(i.map(|i| i.to_string()), "int2"),
        Value::SmallUnsigned(i) => typed(i.map(|i| i.to_string()), "int4"),
        Value::Unsigned(i) => typed(i.map(|i| i.to_string()), "int8"),
        Value::BigUnsigned(i) => match i {
            // sqlx has no unsigned 64-bit type: it binds one that fits as int8.
            Some(i) => typed(Some(i64::try_from(*i).ok()?.to_string()), "int8"),
            None => typed(None, "int8"),
        },
        Value::Uuid(u) => typed(u.map(|u| u.hyphenated().to_string()), "uuid"),
        Value::ChronoDateTimeUtc(t) => match t {
            Some(t) => typed(Some(timestamp(&t.naive_utc())? + "+00"), "timestamptz"),
            None => typed(None, "timestamptz"),
        },
        Value::ChronoDateTime(t) => match t {
            Some(t) => typed(Some(timestamp(t)?), "timestamp"),
            None => typed(None, "timestamp"),
        },
        Value::ChronoDate(d) => match d {
            Some(d) => typed(Some(date(d)?), "date"),
            None => typed(None, "date"),
        },
        // Everything else (text, bytes, JSON, floats, enums, `i8`, which sqlx binds as `"char"`,
        // and the types of other features) stays a bound parameter.
        _ => return None,
    })
}

/// `YYYY-MM-DD` for a year in 1..=9999 (the range with one spelling in both chrono and PostgreSQL).
fn date(d: &chrono::NaiveDate) -> Option<String> {
    use chrono::Datelike as _;
    (1..=9999)
        .contains(&d.year())
        .then(|| d.format("%Y-%m-%d").to_string())
}

/// `YYYY-MM-DD HH:MM:SS.ffffff`, for a time with at most microseconds (PostgreSQL's precision).
///
/// A time with more digits is `None` (it stays bound): sqlx truncates it towards 2000-01-01, so the
/// microsecond it stores depends on the side of 2000 the time is on, and a literal would be
/// *rounded* by the server. Bound, it means exactly what it means in every other statement.
fn timestamp(t: &chrono::NaiveDateTime) -> Option<String> {
    use chrono::Timelike as _;
    let mut text = date(&t.date())?;
    // (A leap second, nanoseconds past 1e9, has no PostgreSQL spelling either.)
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 || !nanos.is_multiple_of(1_000) {
        return None;
    }
    write!(
        text,
        " {:02}:{:02}:{:02}.{:06}",
        t.hour(),
        t.minute(),
        t.second(),
        nanos / 1_000
    )
    .ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};
    use sea_orm::sea_query::{Expr, ExprTrait, PostgresQueryBuilder, Query, Values};
    use uuid::Uuid;

    fn stmt(sql: &str, values: Vec<Value>) -> Statement {
        Statement::from_sql_and_values(sea_orm::DbBackend::Postgres, sql, values)
    }

    #[test]
    fn a_sea_query_select_is_written_with_typed_literals() {
        let tenant = Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_00ab);
        let (sql, values) = Query::select()
            .column("id")
            .from("tasks")
            .and_where(Expr::col("tenant_id").eq(tenant))
            .and_where(Expr::col("done").eq(false))
            .and_where(Expr::col("n").gt(-7i64))
            .limit(50)
            .build(PostgresQueryBuilder);
        let out = inline(&stmt(&sql, values.0)).expect("only safe values");
        assert_eq!(
            out,
            "SELECT \"id\" FROM \"tasks\" WHERE \"tenant_id\" = \
             '01920000-0000-7000-8000-0000000000ab'::uuid AND \"done\" = 'false'::boolean \
             AND \"n\" > '-7'::int8 LIMIT '50'::int8"
        );
    }

    #[test]
    fn text_and_other_free_values_stay_bound() {
        for value in [
            Value::String(Some("x".into())),
            Value::String(None),
            Value::Bytes(Some(vec![1])),
            Value::Char(Some('a')),
            Value::Double(Some(1.5)),
            Value::Float(Some(1.5)),
            Value::TinyInt(Some(1)),
            Value::Json(Some(Box::new(serde_json::json!({"a": 1})))),
            Value::BigUnsigned(Some(u64::MAX)),
        ] {
            let s = stmt("SELECT 1 WHERE a = $1", vec![value.clone()]);
            assert_eq!(inline(&s), None, "{value:?}");
        }
        // One such value among safe ones: the whole statement stays bound.
        let s = stmt(
            "SELECT 1 WHERE a = $1 AND b = $2",
            vec![
                Value::Int(Some(1)),
                Value::String(Some("' OR 1=1 --".into())),
            ],
        );
        assert_eq!(inline(&s), None);
    }

    #[test]
    fn placeholders_inside_identifiers_are_not_values() {
        let s = stmt(
            r#"SELECT "a$1", "say ""$2""" FROM "t" WHERE "x" = $1"#,
            vec![Value::Int(Some(5))],
        );
        assert_eq!(
            inline(&s).as_deref(),
            Some(r#"SELECT "a$1", "say ""$2""" FROM "t" WHERE "x" = '5'::int4"#)
        );
    }

    #[test]
    fn text_sea_query_does_not_write_is_refused() {
        for sql in [
            "SELECT 'literal' WHERE a = $1",
            "SELECT 1 WHERE a = $1; DROP TABLE t",
            "SELECT 1 -- comment $1",
            "SELECT 1 /* $1 */",
            "SELECT $$dollar$$ WHERE a = $1",
            "SELECT $tag$x$tag$",
            "SELECT 1 WHERE a = $2",
            "SELECT 1 WHERE a = $0",
            "SELECT 1 WHERE a = $99999999999999999999999",
            r#"SELECT "unterminated $1"#,
            "SELECT E\\'x",
        ] {
            assert_eq!(inline(&stmt(sql, vec![Value::Int(Some(1))])), None, "{sql}");
        }
    }

    #[test]
    fn nulls_are_typed() {
        let s = stmt(
            "SELECT $1, $2, $3",
            vec![Value::Uuid(None), Value::BigInt(None), Value::Bool(None)],
        );
        assert_eq!(
            inline(&s).as_deref(),
            Some("SELECT NULL::uuid, NULL::int8, NULL::boolean")
        );
    }

    #[test]
    fn timestamps_are_written_to_the_microsecond_and_finer_ones_stay_bound() {
        let t = Utc
            .with_ymd_and_hms(2026, 12, 6, 23, 5, 9)
            .single()
            .expect("a time")
            + chrono::Duration::microseconds(123_456);
        let s = stmt("SELECT $1", vec![Value::ChronoDateTimeUtc(Some(t))]);
        assert_eq!(
            inline(&s).as_deref(),
            Some("SELECT '2026-12-06 23:05:09.123456+00'::timestamptz")
        );
        let finer = t + chrono::Duration::nanoseconds(789);
        let s = stmt("SELECT $1", vec![Value::ChronoDateTimeUtc(Some(finer))]);
        assert_eq!(inline(&s), None);
        let far = NaiveDate::from_ymd_opt(12_000, 1, 1).expect("a date");
        assert_eq!(
            inline(&stmt("SELECT $1", vec![Value::ChronoDate(Some(far))])),
            None
        );
        let bc = NaiveDate::from_ymd_opt(-5, 1, 1).expect("a date");
        assert_eq!(
            inline(&stmt("SELECT $1", vec![Value::ChronoDate(Some(bc))])),
            None
        );
    }

    #[test]
    fn no_values_no_change() {
        let s = Statement {
            sql: "SELECT \"a\" FROM \"t\"".into(),
            values: Some(Values(Vec::new())),
            db_backend: sea_orm::DbBackend::Postgres,
        };
        assert_eq!(inline(&s).as_deref(), Some("SELECT \"a\" FROM \"t\""));
    }

    proptest::proptest! {
        /// Whatever the values, the written text is the statement's text with each placeholder
        /// replaced by `'<text>'::<type>`, where `<text>` uses only the characters of its type: no
        /// value can end the literal or add anything after it.
        #[test]
        fn a_literal_never_leaves_its_quotes(
            a in proptest::num::i64::ANY,
            b in proptest::num::i32::ANY,
            u in proptest::num::u128::ANY,
            secs in -62_135_596_800i64..253_402_300_799i64,
            micros in 0u32..1_000_000,
        ) {
            let t = chrono::DateTime::from_timestamp(secs, micros * 1_000).expect("in range");
            let s = stmt(
                "SELECT $1 $2 $3 $4",
                vec![
                    Value::BigInt(Some(a)),
                    Value::Int(Some(b)),
                    Value::Uuid(Some(Uuid::from_u128(u))),
                    Value::ChronoDateTimeUtc(Some(t)),
                ],
            );
            let out = inline(&s).expect("safe values");
            let mut literals = Vec::new();
            let mut rest = out.trim_start_matches("SELECT ");
            while let Some(start) = rest.find('\'') {
                let end = rest[start + 1..].find('\'').expect("closed") + start + 1;
                literals.push(&rest[start + 1..end]);
                rest = &rest[end + 1..];
            }
            proptest::prop_assert_eq!(literals.len(), 4, "{}", out);
            for text in literals {
                proptest::prop_assert!(
                    text.chars().all(|c| c.is_ascii_hexdigit() || "-:. +".contains(c)),
                    "{}", text
                );
            }
            proptest::prop_assert_eq!(out.matches('\'').count(), 8);
        }
    }
}
