//! How a value travels from a row into an export line and back, exactly, on each backend.
//!
//! A value is read in the form that loses nothing on its backend ([`ColumnCodec::select`]), kept as
//! an [`Encoded`] (what the file holds) and written back in a form the same backend turns into the
//! same stored value ([`ColumnCodec::expr`]):
//!
//! | backend | read as | written as |
//! |---|---|---|
//! | PostgreSQL | `CAST(c AS text)`: every type's own text form, which its input function reads back | `CAST($n AS <the column's type>)` |
//! | MySQL / MariaDB | `binary`, `varbinary`, `*blob`: the bytes; integers `CAST(c AS SIGNED/UNSIGNED)`, `bit` as `UNSIGNED`; `float`, `double` `CAST(c AS DOUBLE)`; anything else `CAST(c AS CHAR)` | the same value bound as it was read; the server converts it to the column's type |
//! | SQLite | `typeof(c)` and the value in its storage class (integer, real, text, blob) | the value bound in that storage class |
//!
//! The column's type always comes from the catalog of the database at hand, never from a file.

use sea_orm::sea_query::{Expr, Func, SelectStatement};
use sea_orm::{DbBackend, JsonValue, QueryResult, Value};
use tenant_scope_catalog::{Column, quote_ident};
use uuid::Uuid;

use crate::error::{Error, Result};

/// One value as an export holds it. Its JSON form ([`Encoded::to_json`]) is `null`, a string
/// (text), a number (an integer), `{"real": "<f64>"}` (a floating-point number, in Rust's shortest
/// form that reads back to the same bits, `NaN` and `inf` included) or `{"hex": "<bytes>"}`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Encoded {
    /// SQL `NULL`.
    Null,
    /// Text (on PostgreSQL, every non-null value).
    Text(String),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer above `i64::MAX` (MySQL `BIGINT UNSIGNED`, `bit(64)`).
    UInt(u64),
    /// A floating-point number.
    Real(f64),
    /// Bytes (MySQL binary strings, SQLite blobs: UUIDs as SeaORM stores them there).
    Bytes(Vec<u8>),
}

impl Encoded {
    /// The JSON form of the value.
    pub(crate) fn to_json(&self) -> JsonValue {
        match self {
            Encoded::Null => JsonValue::Null,
            Encoded::Text(s) => JsonValue::String(s.clone()),
            Encoded::Int(i) => JsonValue::from(*i),
            Encoded::UInt(u) => JsonValue::from(*u),
            Encoded::Real(f) => tagged("real", format!("{f:?}")),
            Encoded::Bytes(b) => tagged("hex", hex::encode(b)),
        }
    }

    /// The value of a JSON form made by [`Encoded::to_json`]; `None` for anything else.
    pub(crate) fn from_json(json: &JsonValue) -> Option<Encoded> {
        match json {
            JsonValue::Null => Some(Encoded::Null),
            JsonValue::String(s) => Some(Encoded::Text(s.clone())),
            JsonValue::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Some(Encoded::Int(i)),
                (None, Some(u)) => Some(Encoded::UInt(u)),
                // A bare fraction is not what an export writes (reals are tagged).
                _ => None,
            },
            JsonValue::Object(map) if map.len() == 1 => {
                let (tag, value) = map.iter().next()?;
                let text = value.as_str()?;
                match tag.as_str() {
                    "real" => text.parse::<f64>().ok().map(Encoded::Real),
                    "hex" => hex::decode(text).ok().map(Encoded::Bytes),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The value to bind for it.
    fn value(&self) -> Value {
        match self {
            Encoded::Null => Value::String(None),
            Encoded::Text(s) => Value::String(Some(s.clone())),
            Encoded::Int(i) => Value::BigInt(Some(*i)),
            Encoded::UInt(u) => Value::BigUnsigned(Some(*u)),
            Encoded::Real(f) => Value::Double(Some(*f)),
            Encoded::Bytes(b) => Value::Bytes(Some(b.clone())),
        }
    }

    /// The UUID this value holds, in any of the forms a UUID column is read in: text (PostgreSQL,
    /// SQLite text) or 16 bytes (MySQL `binary(16)`, SQLite blob).
    pub(crate) fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Encoded::Text(s) => Uuid::parse_str(s).ok(),
            Encoded::Bytes(b) => Uuid::from_slice(b).ok(),
            _ => None,
        }
    }
}

fn tagged(tag: &str, text: String) -> JsonValue {
    let mut map = serde_json::Map::new();
    map.insert(tag.to_owned(), JsonValue::String(text));
    JsonValue::Object(map)
}

/// How a column is read and written (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// PostgreSQL: its text form, cast back to the column's type.
    PgText,
    /// MySQL: a signed integer (`CAST(c AS SIGNED)`).
    MySigned,
    /// MySQL: an unsigned integer or a `bit` (`CAST(c AS UNSIGNED)`).
    MyUnsigned,
    /// MySQL: `float`, `double` (`CAST(c AS DOUBLE)`: a float widens exactly).
    MyReal,
    /// MySQL: a binary string, as its bytes.
    MyBytes,
    /// MySQL: anything else as text (`CAST(c AS CHAR)`): strings, decimals, dates, JSON.
    MyText,
    /// SQLite: the storage class (`typeof(c)`) and the value in it.
    Sqlite,
}

/// One column of a table, and how its values are read and written.
#[derive(Clone, Debug)]
pub(crate) struct ColumnCodec {
    /// The column's name.
    pub(crate) name: String,
    kind: Kind,
    /// The column's type as the database states it (PostgreSQL: what its values are cast back to).
    native: String,
    backend: DbBackend,
}

impl ColumnCodec {
    /// The codec of `column` on `backend`.
    pub(crate) fn new(backend: DbBackend, column: &Column) -> ColumnCodec {
        let native = column.native_type.clone();
        let kind = match backend {
            DbBackend::Postgres => Kind::PgText,
            DbBackend::MySql => mysql_kind(&native),
            _ => Kind::Sqlite,
        };
        ColumnCodec {
            name: column.name.clone(),
            kind,
            native,
            backend,
        }
    }

    /// The column, quoted.
    fn quoted(&self) -> String {
        quote_ident(self.backend, &self.name)
    }

    /// Adds what is read of this column to `select`: one expression, two on SQLite (see
    /// [`ColumnCodec::width`]).
    pub(crate) fn select(&self, select: &mut SelectStatement) {
        let c = self.quoted();
        match self.kind {
            Kind::PgText => select.expr(Expr::cust(format!("CAST({c} AS text)"))),
            Kind::MySigned => select.expr(Expr::cust(format!("CAST({c} AS SIGNED)"))),
            Kind::MyUnsigned => select.expr(Expr::cust(format!("CAST({c} AS UNSIGNED)"))),
            Kind::MyReal => select.expr(Expr::cust(format!("CAST({c} AS DOUBLE)"))),
            Kind::MyBytes => select.expr(Expr::cust(c)),
            Kind::MyText => select.expr(Expr::cust(format!("CAST({c} AS CHAR)"))),
            Kind::Sqlite => select
                .expr(Expr::cust(format!("typeof({c})")))
                .expr(Expr::cust(c)),
        };
    }

    /// How many expressions [`ColumnCodec::select`] adds.
    pub(crate) fn width(&self) -> usize {
        if self.kind == Kind::Sqlite { 2 } else { 1 }
    }

    /// The value of this column in `row`, whose expressions for it start at index `at`.
    pub(crate) fn decode(&self, row: &QueryResult, at: usize) -> Result<Encoded> {
        let db = Error::from_db;
        Ok(match self.kind {
            Kind::PgText | Kind::MyText => opt(
                row.try_get_by_index::<Option<String>>(at).map_err(db)?,
                Encoded::Text,
            ),
            Kind::MySigned => opt(
                row.try_get_by_index::<Option<i64>>(at).map_err(db)?,
                Encoded::Int,
            ),
            Kind::MyUnsigned => opt(
                row.try_get_by_index::<Option<u64>>(at).map_err(db)?,
                unsigned,
            ),
            Kind::MyReal => opt(
                row.try_get_by_index::<Option<f64>>(at).map_err(db)?,
                Encoded::Real,
            ),
            Kind::MyBytes => opt(
                row.try_get_by_index::<Option<Vec<u8>>>(at).map_err(db)?,
                Encoded::Bytes,
            ),
            Kind::Sqlite => {
                let class: String = row.try_get_by_index(at).map_err(db)?;
                let v = at + 1;
                match class.as_str() {
                    "null" => Encoded::Null,
                    "integer" => Encoded::Int(row.try_get_by_index(v).map_err(db)?),
                    "real" => Encoded::Real(row.try_get_by_index(v).map_err(db)?),
                    "text" => Encoded::Text(row.try_get_by_index(v).map_err(db)?),
                    "blob" => Encoded::Bytes(row.try_get_by_index(v).map_err(db)?),
                    other => {
                        return Err(Error::Invalid(format!(
                            "column `{}` holds a value of an unknown SQLite storage class {other:?}",
                            self.name
                        )));
                    }
                }
            }
        })
    }

    /// The expression that writes (or compares with) `value` in this column: on PostgreSQL the
    /// bound text cast to the column's type, elsewhere the bound value.
    pub(crate) fn expr(&self, value: &Encoded) -> Expr {
        let bound = Expr::val(value.value());
        match self.kind {
            Kind::PgText => Func::cast_as(bound, self.native.clone()).into(),
            _ => bound,
        }
    }

    /// Whether `value` has the form this column is read in (a malformed file could hold anything).
    pub(crate) fn accepts(&self, value: &Encoded) -> bool {
        match (self.kind, value) {
            (_, Encoded::Null) => true,
            (Kind::PgText | Kind::MyText, Encoded::Text(_)) => true,
            (Kind::MySigned, Encoded::Int(_)) => true,
            (Kind::MyUnsigned, Encoded::Int(i)) => *i >= 0,
            (Kind::MyUnsigned, Encoded::UInt(_)) => true,
            (Kind::MyReal, Encoded::Real(_)) => true,
            (Kind::MyBytes, Encoded::Bytes(_)) => true,
            (Kind::Sqlite, Encoded::UInt(_)) => false,
            (Kind::Sqlite, _) => true,
            _ => false,
        }
    }
}

fn opt<T>(value: Option<T>, f: impl FnOnce(T) -> Encoded) -> Encoded {
    value.map_or(Encoded::Null, f)
}

/// An unsigned integer, as [`Encoded::Int`] where it fits (so that a file holds one form per
/// number, whichever way it was read).
fn unsigned(u: u64) -> Encoded {
    i64::try_from(u).map_or(Encoded::UInt(u), Encoded::Int)
}

/// How a MySQL column of the type `native` (`COLUMN_TYPE`: `binary(16)`, `int(11) unsigned`,
/// `varchar(255)`) is read and written.
fn mysql_kind(native: &str) -> Kind {
    let ty = native.trim().to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| ty.starts_with(p));
    if starts(&[
        "binary",
        "varbinary",
        "tinyblob",
        "blob",
        "mediumblob",
        "longblob",
    ]) {
        Kind::MyBytes
    } else if starts(&["bit"]) {
        Kind::MyUnsigned
    } else if starts(&["tinyint", "smallint", "mediumint", "int", "bigint"]) {
        if ty.contains("unsigned") {
            Kind::MyUnsigned
        } else {
            Kind::MySigned
        }
    } else if starts(&["float", "double", "real"]) {
        Kind::MyReal
    } else {
        Kind::MyText
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_from_its_json() {
        let values = [
            Encoded::Null,
            Encoded::Text("héllo \"quoted\"\n".into()),
            Encoded::Text(String::new()),
            Encoded::Int(i64::MIN),
            Encoded::Int(0),
            Encoded::UInt(u64::MAX),
            Encoded::Real(0.1),
            Encoded::Real(-0.0),
            Encoded::Real(1e300),
            Encoded::Real(f64::MIN_POSITIVE / 3.0),
            Encoded::Real(f64::INFINITY),
            Encoded::Real(f64::NEG_INFINITY),
            Encoded::Bytes(vec![0, 1, 0xfe, 0xff]),
            Encoded::Bytes(Vec::new()),
        ];
        for value in values {
            let json = value.to_json();
            let text = serde_json::to_string(&json).expect("json");
            let parsed: JsonValue = serde_json::from_str(&text).expect("parse");
            let back = Encoded::from_json(&parsed).expect("an encoded value");
            match (&value, &back) {
                (Encoded::Real(a), Encoded::Real(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                _ => assert_eq!(value, back),
            }
        }
        let nan = Encoded::from_json(&Encoded::Real(f64::NAN).to_json()).expect("NaN");
        assert!(matches!(nan, Encoded::Real(f) if f.is_nan()));
    }

    #[test]
    fn anything_else_is_not_a_value() {
        for json in [
            r#"1.5"#,
            r#"true"#,
            r#"[1, 2]"#,
            r#"{"hex": "zz"}"#,
            r#"{"real": "many"}"#,
            r#"{"real": 1.5}"#,
            r#"{"other": "1"}"#,
            r#"{"hex": "00", "real": "1"}"#,
        ] {
            let parsed: JsonValue = serde_json::from_str(json).expect("parse");
            assert_eq!(Encoded::from_json(&parsed), None, "{json}");
        }
    }

    #[test]
    fn uuids_read_from_text_or_bytes() {
        let id = Uuid::now_v7();
        assert_eq!(Encoded::Text(id.to_string()).as_uuid(), Some(id));
        assert_eq!(Encoded::Bytes(id.as_bytes().to_vec()).as_uuid(), Some(id));
        assert_eq!(Encoded::Bytes(vec![1, 2]).as_uuid(), None);
        assert_eq!(Encoded::Int(1).as_uuid(), None);
    }

    #[test]
    fn mysql_types_get_their_kind() {
        for (ty, kind) in [
            ("binary(16)", Kind::MyBytes),
            ("varbinary(64)", Kind::MyBytes),
            ("longblob", Kind::MyBytes),
            ("bit(3)", Kind::MyUnsigned),
            ("tinyint(1)", Kind::MySigned),
            ("int(11)", Kind::MySigned),
            ("bigint(20) unsigned", Kind::MyUnsigned),
            ("double", Kind::MyReal),
            ("float", Kind::MyReal),
            ("decimal(10,2)", Kind::MyText),
            ("varchar(255)", Kind::MyText),
            ("timestamp", Kind::MyText),
            ("longtext", Kind::MyText),
            ("json", Kind::MyText),
        ] {
            assert_eq!(mysql_kind(ty), kind, "{ty}");
        }
    }
}
