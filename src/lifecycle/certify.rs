//! [`certify_erased`]: the integrity scan after an erase, as a signed report.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sha2::Sha256;
use uuid::Uuid;

use crate::contract::TENANT_COLUMN;
use crate::db::TenantDb;
use crate::error::{Error, Result};
use crate::provision::{self, TenantStatus};
use crate::tenant::TenantId;

use super::export::backend_name;
use super::graph::tables_with_tenant;
use super::{TableCount, pool, read_catalog, reason};

type HmacSha256 = Hmac<Sha256>;

/// The first line of every certificate (and of the text it signs).
const TITLE: &str = "tenant-scope erasure certificate v1";

/// The signed result of [`certify_erased`]: how many rows of one tenant every table with
/// `tenant_id` holds, read in one scan, and whether that is none.
///
/// Its [`Display`](fmt::Display) prints the report: the lines of [`Certificate::signed_text`]
/// and a last line `signature: hmac-sha256:<hex>`, the HMAC-SHA256 of those lines under the key
/// given to [`certify_erased`]. Whoever holds the key can check a printed report by computing
/// the HMAC of everything above its last line ([`Certificate::verify`] does it for this value):
/// a changed count, table, tenant, time or result does not verify.
///
/// ```text
/// tenant-scope erasure certificate v1
/// tenant: 0193a1b2-...
/// status: deleted
/// database: postgres, scope public
/// checked at: 2026-12-06T22:16:02.123456Z
/// system audit event: 0193a1b3-...
/// tables scanned: 11
///   api_keys: 0
///   ...
/// result: PASSED: no row of the tenant is left in any of the 11 tables
/// signature: hmac-sha256:5b0f...
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Certificate {
    /// The tenant.
    pub tenant: TenantId,
    /// Its status when it was scanned (a pass needs [`TenantStatus::Deleted`]).
    pub status: TenantStatus,
    /// The backend (`postgres`, `mysql`, `sqlite`).
    pub backend: String,
    /// The scope the tables were read from (the PostgreSQL schema, the MySQL database, `main`).
    pub scope: String,
    /// When the scan ran.
    pub checked_at: DateTime<Utc>,
    /// The id of the `system_audit_events` row the scan's system access wrote.
    pub event: Uuid,
    /// Every table with `tenant_id` in the scope, by name, with the tenant's rows in it.
    pub tables: Vec<TableCount>,
    /// The HMAC-SHA256 of [`Certificate::signed_text`] (lowercase hex).
    pub signature: String,
}

impl Certificate {
    /// Whether the tenant is deleted and no table holds a row of it.
    pub fn passed(&self) -> bool {
        self.status == TenantStatus::Deleted && self.remaining().next().is_none()
    }

    /// The tables that still hold rows of the tenant.
    pub fn remaining(&self) -> impl Iterator<Item = &TableCount> + '_ {
        self.tables.iter().filter(|t| t.rows > 0)
    }

    /// The text the signature is over: every line of the report but the signature.
    pub fn signed_text(&self) -> String {
        let mut text = format!(
            "{TITLE}\ntenant: {}\nstatus: {}\ndatabase: {}, scope {}\nchecked at: {}\n\
             system audit event: {}\ntables scanned: {}\n",
            self.tenant,
            self.status,
            self.backend,
            self.scope,
            self.checked_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            self.event,
            self.tables.len(),
        );
        for table in &self.tables {
            text.push_str(&format!("  {}: {}\n", table.table, table.rows));
        }
        let remaining: Vec<String> = self
            .remaining()
            .map(|t| format!("{} ({})", t.table, t.rows))
            .collect();
        let result = if !remaining.is_empty() {
            format!(
                "FAILED: rows of the tenant are left in {}",
                remaining.join(", ")
            )
        } else if self.status != TenantStatus::Deleted {
            format!(
                "FAILED: the tenant is {}, not deleted (its tables are empty, but it may write \
                 again)",
                self.status
            )
        } else {
            format!(
                "PASSED: no row of the tenant is left in any of the {} tables",
                self.tables.len()
            )
        };
        text.push_str(&format!("result: {result}\n"));
        text
    }

    /// Whether the signature is the HMAC-SHA256 of [`Certificate::signed_text`] under `key`
    /// (compared in constant time).
    pub fn verify(&self, key: &[u8]) -> bool {
        let Ok(signature) = hex::decode(&self.signature) else {
            return false;
        };
        mac(key).is_some_and(|mut mac| {
            mac.update(self.signed_text().as_bytes());
            mac.verify_slice(&signature).is_ok()
        })
    }

    fn sign(&mut self, key: &[u8]) -> Result<()> {
        let mut mac = mac(key).ok_or_else(|| Error::Invalid("the signing key is empty".into()))?;
        mac.update(self.signed_text().as_bytes());
        self.signature = hex::encode(mac.finalize().into_bytes());
        Ok(())
    }
}

/// The MAC under `key`; `None` for an empty key (a signature under it would prove nothing).
fn mac(key: &[u8]) -> Option<HmacSha256> {
    if key.is_empty() {
        return None;
    }
    HmacSha256::new_from_slice(key).ok()
}

impl fmt::Display for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}signature: hmac-sha256:{}",
            self.signed_text(),
            self.signature
        )
    }
}

/// Scans every table with `tenant_id` of the database for rows of `tenant` and returns the
/// [`Certificate`], signed with HMAC-SHA256 under `key`.
///
/// Through audited system access (reason `certify erased tenant <id>`); the certificate names
/// that access's `system_audit_events` row. The tables are read from the catalog at run time, so
/// a table added by a later migration is counted too, and so is a table with `tenant_id` that
/// the other steps refuse (one without `id`). The certificate passes only if every count is 0
/// and the tenant's status is deleted; otherwise it says which tables still hold rows. It is
/// returned either way: a failed certificate is a result, not an error.
///
/// # Errors
///
/// [`Error::Invalid`] for an empty key (before any access); [`Error::NotFound`] if there is no
/// such tenant (not even its tombstone); the database's error.
pub async fn certify_erased(db: &TenantDb, tenant: TenantId, key: &[u8]) -> Result<Certificate> {
    if key.is_empty() {
        return Err(Error::Invalid("the signing key is empty".into()));
    }
    let system = db.system(&reason("certify erased", tenant)).await?;
    let status = provision::tenant_status(&system, tenant)
        .await?
        .ok_or(Error::NotFound)?;
    let catalog = read_catalog(&crate::exec::Conn::Pool(pool(&system)?)).await?;
    let mut tables = Vec::new();
    for table in tables_with_tenant(&catalog) {
        let mut count = Query::select();
        count
            .expr(Expr::cust("COUNT(*)"))
            .from(table.name.clone())
            .and_where(Expr::col(TENANT_COLUMN).eq(tenant));
        let rows = system.query_statement(&count).await?;
        let n: i64 = rows
            .first()
            .ok_or_else(|| {
                Error::Invalid(format!("counting the rows of `{}` gave no row", table.name))
            })?
            .try_get_by_index(0)
            .map_err(Error::from_db)?;
        tables.push(TableCount::new(&table.name, u64::try_from(n).unwrap_or(0)));
    }
    let mut certificate = Certificate {
        tenant,
        status,
        backend: backend_name(db.backend()).to_owned(),
        scope: catalog.scope.clone(),
        checked_at: Utc::now(),
        event: system.event_id(),
        tables,
        signature: String::new(),
    };
    certificate.sign(key)?;
    Ok(certificate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(rows: &[(&str, u64)], status: TenantStatus) -> Certificate {
        let mut c = Certificate {
            tenant: TenantId::new(),
            status,
            backend: "sqlite".into(),
            scope: "main".into(),
            checked_at: Utc::now(),
            event: Uuid::now_v7(),
            tables: rows.iter().map(|(t, n)| TableCount::new(t, *n)).collect(),
            signature: String::new(),
        };
        c.sign(b"key").expect("signed");
        c
    }

    #[test]
    fn a_pass_needs_empty_tables_and_a_deleted_tenant() {
        let pass = certificate(&[("tasks", 0), ("users", 0)], TenantStatus::Deleted);
        assert!(pass.passed());
        assert!(pass.to_string().contains("result: PASSED"), "{pass}");

        let left = certificate(
            &[("tasks", 3), ("users", 0), ("notes", 1)],
            TenantStatus::Deleted,
        );
        assert!(!left.passed());
        let text = left.to_string();
        assert!(
            text.contains("FAILED: rows of the tenant are left in tasks (3), notes (1)"),
            "{text}"
        );

        let active = certificate(&[("tasks", 0)], TenantStatus::Active);
        assert!(!active.passed());
        assert!(
            active
                .to_string()
                .contains("the tenant is active, not deleted")
        );
    }

    #[test]
    fn the_signature_covers_the_report_and_needs_the_key() {
        let c = certificate(&[("tasks", 0), ("users", 0)], TenantStatus::Deleted);
        assert!(c.verify(b"key"));
        assert!(!c.verify(b"other key"));
        assert!(!c.verify(b""));

        let mut changed = c.clone();
        changed.tables[0].rows = 1;
        assert!(!changed.verify(b"key"), "a changed count");
        let mut changed = c.clone();
        changed.tenant = TenantId::new();
        assert!(!changed.verify(b"key"), "another tenant");
        let mut changed = c.clone();
        changed.signature = "zz".into();
        assert!(!changed.verify(b"key"), "not hex");

        // The printed report verifies by itself: the HMAC of everything above its last line.
        let printed = c.to_string();
        let (body, last) = printed.rsplit_once('\n').expect("lines");
        let mut mac = HmacSha256::new_from_slice(b"key").expect("key");
        mac.update(format!("{body}\n").as_bytes());
        assert_eq!(
            last,
            format!(
                "signature: hmac-sha256:{}",
                hex::encode(mac.finalize().into_bytes())
            )
        );
    }
}
