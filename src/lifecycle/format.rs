//! The export file: JSON lines, a header first, the manifest last.
//!
//! ```text
//! {"header":{"format":"tenant-scope-export","version":1,"backend":"postgres","tenant":{..},"tenant_row":{..}}}
//! {"global":{"table":"permissions","values":{"id":"0193..","code":"tasks.write",..}}}
//! {"row":{"table":"users","values":{"tenant_id":"0193..","id":"0193..","email":"alice@example.com",..}}}
//! ...
//! {"manifest":{"format":"tenant-scope-export","version":1,..,"tables":[{"table":"users","rows":1,"sha256":".."},..]}}
//! ```
//!
//! docs/lifecycle.md describes every field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::tenant::TenantId;

/// The `format` of every export file and manifest.
pub const FORMAT: &str = "tenant-scope-export";

/// The version of the file format this library writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The values of one row: column name -> value in its JSON form (see docs/lifecycle.md, "Values").
pub(crate) type Values = serde_json::Map<String, serde_json::Value>;

/// One line of an export file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Line {
    /// The first line.
    Header(Header),
    /// A row of a global table that the tenant's rows reference.
    Global(RowLine),
    /// A row of a tenant-owned table.
    Row(RowLine),
    /// The last line.
    Manifest(Manifest),
}

/// The first line: what the file is, and the tenant's `tenants` row.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    pub(crate) format: String,
    pub(crate) version: u32,
    pub(crate) backend: String,
    pub(crate) tenant: TenantRecord,
    /// Every column of the `tenants` row, exactly as the other rows' values are written.
    pub(crate) tenant_row: Values,
}

/// A row line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RowLine {
    pub(crate) table: String,
    pub(crate) values: Values,
}

/// What an export holds: written as its last line by [`export`](super::export), checked and
/// returned by [`import`](super::import).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The version of the file format, [`FORMAT_VERSION`].
    pub version: u32,
    /// The backend the rows were read from (`postgres`, `mysql`, `sqlite`): values round-trip
    /// exactly on the same backend only, so an import refuses another one.
    pub backend: String,
    /// The tenant's `tenants` row.
    pub tenant: TenantRecord,
    /// The header line's SHA-256 (lowercase hex).
    pub header_sha256: String,
    /// The global rows the tenant's rows reference, per global table (in file order).
    pub globals: Vec<TableSummary>,
    /// Every tenant-owned table of the database, parents before children (the file's order),
    /// with the number of the tenant's rows and their checksum (tables without rows included).
    pub tables: Vec<TableSummary>,
}

impl Manifest {
    /// The total number of tenant rows in the file (global rows not counted).
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// The summary of the tenant-owned table `name`.
    pub fn table(&self, name: &str) -> Option<&TableSummary> {
        self.tables.iter().find(|t| t.table == name)
    }
}

/// A tenant's row of `tenants`, as the manifest describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TenantRecord {
    /// The tenant's id (kept by an import).
    pub id: TenantId,
    /// Its name.
    pub name: String,
    /// Its slug, if it has one.
    pub slug: Option<String>,
    /// Its status when it was exported (`active`, `suspended`, `deleted`).
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// The rows of one table in an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TableSummary {
    /// The table.
    pub table: String,
    /// How many rows the file holds of it.
    pub rows: u64,
    /// SHA-256 (lowercase hex) of its row lines, each with its newline, in file order.
    pub sha256: String,
}

/// The checksum of lines as they are written or read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Checksum {
    hash: Sha256,
    lines: u64,
}

impl Checksum {
    /// Adds one line (without its newline: the newline is hashed after it).
    pub(crate) fn line(&mut self, line: &str) {
        self.hash.update(line.as_bytes());
        self.hash.update(b"\n");
        self.lines += 1;
    }

    /// The summary of `table` with the lines added.
    pub(crate) fn summary(self, table: &str) -> TableSummary {
        TableSummary {
            table: table.to_owned(),
            rows: self.lines,
            sha256: hex::encode(self.hash.finalize()),
        }
    }
}

/// The SHA-256 of one line, with its newline (the header's).
pub(crate) fn line_sha256(line: &str) -> String {
    let mut sum = Checksum::default();
    sum.line(line);
    sum.summary("").sha256
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_back_and_refuse_unknown_fields() {
        let line = r#"{"row":{"table":"users","values":{"b":{"hex":"00ff"},"id":"x","n":1,"r":{"real":"0.5"},"z":null}}}"#;
        let parsed: Line = serde_json::from_str(line).expect("a row line");
        assert!(matches!(&parsed, Line::Row(r) if r.table == "users" && r.values.len() == 5));
        assert_eq!(serde_json::to_string(&parsed).expect("json"), line);
        for bad in [
            r#"{"row":{"table":"users","values":{},"extra":1}}"#,
            r#"{"rows":{"table":"users","values":{}}}"#,
            r#"{"row":{"table":"users"}}"#,
            r#"{"row":{"table":"users","values":{}},"global":{"table":"p","values":{}}}"#,
            r#"["row"]"#,
            r#"{"row":"#,
        ] {
            assert!(serde_json::from_str::<Line>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_checksum_covers_every_byte_and_the_line_breaks() {
        let mut one = Checksum::default();
        one.line("ab");
        one.line("c");
        let mut other = Checksum::default();
        other.line("a");
        other.line("bc");
        let (one, other) = (one.summary("t"), other.summary("t"));
        assert_eq!(one.rows, 2);
        assert_ne!(one.sha256, other.sha256);
        assert_eq!(
            Checksum::default().summary("t").sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "no line: the SHA-256 of nothing"
        );
    }
}
