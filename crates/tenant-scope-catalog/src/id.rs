//! [`IdType`]: the row id types tenant-scope supports, read from a column's native type.

use std::fmt;

use crate::{Backend, Column};

/// The type of a row id (the `id` of `(tenant_id, id)`) that tenant-scope supports: a UUID, or a
/// signed or unsigned integer of 32 or 64 bits.
///
/// Read from a column's [native type](Column::native_type) with [`Column::id_type`], so the adopt
/// steps, `tenant-scope check` and `tenant-scope generate` agree on which ids they accept.
///
/// ```
/// use tenant_scope_catalog::{Backend, IdType};
///
/// assert_eq!(IdType::from_native(Backend::Postgres, "bigint"), Some(IdType::I64));
/// assert_eq!(IdType::from_native(Backend::MySql, "bigint(20) unsigned"), Some(IdType::U64));
/// assert_eq!(IdType::from_native(Backend::Sqlite, "INTEGER"), Some(IdType::I64));
/// assert_eq!(IdType::from_native(Backend::Postgres, "character varying(36)"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdType {
    /// A UUID: PostgreSQL `uuid`, MySQL `binary(16)` (how sea-query writes a UUID there), SQLite
    /// `uuid_text` (likewise) or `uuid`.
    Uuid,
    /// A 32-bit integer: PostgreSQL `integer` (`serial`), MySQL `int`.
    I32,
    /// A 64-bit integer: PostgreSQL `bigint` (`bigserial`), MySQL `bigint`, and every SQLite integer
    /// (SQLite stores integers in up to 64 bits whatever the declared type says).
    I64,
    /// MySQL `int unsigned`.
    U32,
    /// MySQL `bigint unsigned` (for example a Laravel or Rails `id`).
    U64,
}

impl IdType {
    /// The id type of a column whose native type is `native_type` on `backend`, or `None` if
    /// tenant-scope does not support it as a row id (text, a `char(36)` UUID, decimals, ..).
    pub fn from_native(backend: Backend, native_type: &str) -> Option<IdType> {
        let ty = native_type.trim().to_ascii_lowercase();
        match backend {
            Backend::Postgres => match ty.as_str() {
                "uuid" => Some(IdType::Uuid),
                "integer" => Some(IdType::I32),
                "bigint" => Some(IdType::I64),
                _ => None,
            },
            Backend::MySql => {
                if ty == "binary(16)" {
                    return Some(IdType::Uuid);
                }
                let (base, unsigned) = match ty.strip_suffix(" unsigned") {
                    Some(base) => (base, true),
                    None => (ty.as_str(), false),
                };
                // `int(11)`: the display width says nothing about the range.
                let base = base.split('(').next().unwrap_or(base);
                match (base, unsigned) {
                    ("int", false) => Some(IdType::I32),
                    ("int", true) => Some(IdType::U32),
                    ("bigint", false) => Some(IdType::I64),
                    ("bigint", true) => Some(IdType::U64),
                    _ => None,
                }
            }
            Backend::Sqlite => match ty.as_str() {
                "uuid_text" | "uuid" => Some(IdType::Uuid),
                // SQLite's own rule for integer affinity.
                t if t.contains("int") => Some(IdType::I64),
                _ => None,
            },
        }
    }

    /// Whether the id is an integer (the database, not the library, assigns new ones).
    pub fn is_integer(self) -> bool {
        self != IdType::Uuid
    }

    /// The Rust type of the id in a generated entity: `Uuid`, `i32`, `i64`, `u32` or `u64`.
    pub fn rust_type(self) -> &'static str {
        match self {
            IdType::Uuid => "Uuid",
            IdType::I32 => "i32",
            IdType::I64 => "i64",
            IdType::U32 => "u32",
            IdType::U64 => "u64",
        }
    }
}

impl fmt::Display for IdType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdType::Uuid => "a UUID",
            IdType::I32 => "a 32-bit integer",
            IdType::I64 => "a 64-bit integer",
            IdType::U32 => "an unsigned 32-bit integer",
            IdType::U64 => "an unsigned 64-bit integer",
        })
    }
}

impl Column {
    /// The column's type as a row id, if tenant-scope supports it as one ([`IdType::from_native`]).
    pub fn id_type(&self, backend: Backend) -> Option<IdType> {
        IdType::from_native(backend, &self.native_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_types_per_backend() {
        let cases = [
            (Backend::Postgres, "uuid", Some(IdType::Uuid)),
            (Backend::Postgres, "integer", Some(IdType::I32)),
            (Backend::Postgres, "bigint", Some(IdType::I64)),
            (Backend::Postgres, "text", None),
            (Backend::Postgres, "numeric(20,0)", None),
            (Backend::MySql, "binary(16)", Some(IdType::Uuid)),
            (Backend::MySql, "int(11)", Some(IdType::I32)),
            (Backend::MySql, "int", Some(IdType::I32)),
            (Backend::MySql, "int(10) unsigned", Some(IdType::U32)),
            (Backend::MySql, "bigint(20)", Some(IdType::I64)),
            (Backend::MySql, "BIGINT UNSIGNED", Some(IdType::U64)),
            (Backend::MySql, "char(36)", None),
            (Backend::MySql, "tinyint(1)", None),
            (Backend::MySql, "binary(32)", None),
            (Backend::Sqlite, "uuid_text", Some(IdType::Uuid)),
            (Backend::Sqlite, "INTEGER", Some(IdType::I64)),
            (Backend::Sqlite, "bigint", Some(IdType::I64)),
            (Backend::Sqlite, "TEXT", None),
            (Backend::Sqlite, "", None),
        ];
        for (backend, native, want) in cases {
            assert_eq!(
                IdType::from_native(backend, native),
                want,
                "{backend:?} {native}"
            );
        }
    }
}
