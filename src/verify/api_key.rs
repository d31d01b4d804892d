//! [`ApiKeyVerifier`]: API keys, stored hashed, verified in constant time.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{TenantVerifier, Verified, VerifierDb, col, permissions_of};
use crate::audit::AuditAction;
use crate::contract::{ID_COLUMN, STATUS_COLUMN, TENANT_ACTIVE, TENANTS_TABLE};
use crate::db::TenantScope;
use crate::error::{Error, Result};
use crate::tenant::{Actor, TenantId};

/// The API key prefix; keys look like `tsk_<tenant>_<key id>_<secret>` (hex).
const KEY_PREFIX: &str = "tsk";

/// An API key as shown once to its owner, at issue. Its `Debug` hides the secret.
#[derive(Clone)]
pub struct IssuedKey {
    /// The key's row id in `api_keys`.
    pub id: Uuid,
    /// The full key, to hand to the client. It is not stored: only its SHA-256 is.
    pub key: String,
    /// A short, non-secret prefix of the key for display (`tsk_…`).
    pub prefix: String,
}

impl fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKey")
            .field("id", &self.id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Verifies API keys against the `api_keys` table.
///
/// A key is `tsk_<tenant id>_<key id>_<secret>`, each part lowercase hex. The table stores the
/// SHA-256 of the secret, never the secret; the digest is compared in constant time. Verification
/// reads one row by primary key `(tenant_id, id)` — restricted to the tenant the key names — and
/// then the key's user's permissions (`user_roles` → `role_permissions` → `permissions`).
///
/// A malformed key, an unknown tenant or key, a wrong secret and a revoked key are all the same
/// [`Error::Denied`]; a missing row costs the same digest comparison as a present one.
///
/// The tables are those of the reference schema (see `migration/` and docs/schema.md): `api_keys
/// (tenant_id, id, user_id, name, key_hash, prefix, created_at, revoked_at)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiKeyVerifier;

struct ParsedKey {
    tenant: TenantId,
    key_id: Uuid,
    digest: [u8; 32],
}

fn parse_key(key: &str) -> Option<ParsedKey> {
    let mut parts = key.split('_');
    let (prefix, tenant, key_id, secret) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if prefix != KEY_PREFIX || parts.next().is_some() {
        return None;
    }
    if tenant.len() != 32 || key_id.len() != 32 || secret.len() != 64 {
        return None;
    }
    let tenant = Uuid::try_parse(tenant).ok()?;
    let key_id = Uuid::try_parse(key_id).ok()?;
    let secret = hex::decode(secret).ok()?;
    Some(ParsedKey {
        tenant: TenantId::from_uuid(tenant),
        key_id,
        digest: Sha256::digest(&secret).into(),
    })
}

impl ApiKeyVerifier {
    /// Issues a key for `user_id` of the handle's tenant. The returned [`IssuedKey::key`] is the only
    /// copy of the secret.
    ///
    /// Needs the permission [`API_KEYS_WRITE`] ([`Error::Forbidden`] without it); a user that is
    /// not in the handle's tenant is [`Error::NotFound`] (composite foreign key).
    pub async fn issue(scope: &TenantScope<'_>, user_id: Uuid, name: &str) -> Result<IssuedKey> {
        scope.context().require(API_KEYS_WRITE)?;
        let tenant = scope.tenant();
        let id = Uuid::now_v7();
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let key = format!(
            "{KEY_PREFIX}_{}_{}_{}",
            tenant.as_uuid().simple(),
            id.simple(),
            hex::encode(secret)
        );
        let prefix: String = key.chars().take(12).collect();
        let digest = hex::encode(Sha256::digest(secret));
        let mut stmt = Query::insert();
        stmt.into_table("api_keys")
            .columns([
                "tenant_id",
                "id",
                "user_id",
                "name",
                "key_hash",
                "prefix",
                "created_at",
            ])
            .values_panic([
                Expr::val(tenant),
                Expr::val(id),
                Expr::val(user_id),
                Expr::val(name),
                Expr::val(digest),
                Expr::val(prefix.clone()),
                Expr::val(Utc::now()),
            ]);
        scope
            .execute(&stmt, AuditAction::Insert, "api_keys", id)
            .await?;
        Ok(IssuedKey { id, key, prefix })
    }

    /// Revokes a key of the handle's tenant. [`Error::NotFound`] if the tenant has no such key;
    /// [`Error::Forbidden`] without the permission [`API_KEYS_WRITE`] (checked after the key is
    /// found, so another tenant's key id is "not found" whatever the caller may do).
    pub async fn revoke(scope: &TenantScope<'_>, key_id: Uuid) -> Result<()> {
        let mut exists = Query::select();
        exists
            .expr(Expr::val(1))
            .from("api_keys")
            .and_where(col("tenant_id").eq(scope.tenant()))
            .and_where(col("id").eq(key_id));
        if scope.query_all(&exists).await?.is_empty() {
            return Err(Error::NotFound);
        }
        scope.context().require(API_KEYS_WRITE)?;
        let mut stmt = Query::update();
        stmt.table("api_keys")
            .value("revoked_at", Utc::now())
            .and_where(col("tenant_id").eq(scope.tenant()))
            .and_where(col("id").eq(key_id));
        if scope
            .execute(&stmt, AuditAction::Update, "api_keys", key_id)
            .await?
            == 0
        {
            Err(Error::NotFound)
        } else {
            Ok(())
        }
    }
}

/// The permission [`ApiKeyVerifier::issue`] and [`ApiKeyVerifier::revoke`] need.
pub const API_KEYS_WRITE: &str = "api_keys.write";

/// The digest compared when the key's row is missing, so that a miss costs what a hit costs.
const DUMMY_DIGEST: [u8; 32] = [0u8; 32];

#[async_trait::async_trait]
impl TenantVerifier for ApiKeyVerifier {
    type Claim = String;

    async fn verify(&self, db: &VerifierDb<'_>, claim: String) -> Result<Verified> {
        let Some(key) = parse_key(claim.trim()) else {
            return Err(Error::Denied);
        };
        let mut stmt = Query::select();
        stmt.columns([("k", "user_id"), ("k", "key_hash"), ("k", "revoked_at")])
            .column((TENANTS_TABLE, STATUS_COLUMN))
            .from_as("api_keys", "k")
            // The tenant's status in the same statement: a suspended or deleted tenant's keys verify
            // no one, at no extra round trip.
            .inner_join(
                TENANTS_TABLE,
                Expr::col((TENANTS_TABLE, ID_COLUMN)).equals(("k", "tenant_id")),
            )
            .and_where(Expr::col(("k", "tenant_id")).eq(key.tenant))
            .and_where(Expr::col(("k", "id")).eq(key.key_id));
        let rows = db.query_row(key.tenant, &stmt).await?;
        let row = rows.first();
        let stored: [u8; 32] = match row {
            Some(row) => {
                let hex_hash: String = row.try_get("", "key_hash").map_err(Error::from_db)?;
                let mut out = [0u8; 32];
                hex::decode_to_slice(hex_hash.as_bytes(), &mut out).map_err(|_| Error::Denied)?;
                out
            }
            None => DUMMY_DIGEST,
        };
        let matches: bool = stored.ct_eq(&key.digest).into();
        let Some(row) = row.filter(|_| matches) else {
            return Err(Error::Denied);
        };
        let revoked: Option<DateTime<Utc>> =
            row.try_get("", "revoked_at").map_err(Error::from_db)?;
        let status: String = row.try_get("", STATUS_COLUMN).map_err(Error::from_db)?;
        if revoked.is_some() || status != TENANT_ACTIVE {
            return Err(Error::Denied);
        }
        let user_id: Uuid = row.try_get("", "user_id").map_err(Error::from_db)?;
        let permissions = permissions_of(db, key.tenant, user_id).await?;
        Ok(Verified::new(
            key.tenant,
            Actor::ApiKey {
                key_id: key.key_id,
                user_id,
            },
            permissions,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_keys_do_not_parse() {
        let t = Uuid::now_v7().simple().to_string();
        let k = Uuid::now_v7().simple().to_string();
        let s = "ab".repeat(32);
        assert!(parse_key(&format!("tsk_{t}_{k}_{s}")).is_some());
        for bad in [
            String::new(),
            "tsk".into(),
            format!("tsx_{t}_{k}_{s}"),
            format!("tsk_{t}_{k}"),
            format!("tsk_{t}_{k}_{s}_extra"),
            format!("tsk_{t}_{k}_{}", &s[1..]),
            format!("tsk_{t}_{k}_{}zz", &s[2..]),
            format!("tsk_{}_{k}_{s}", &t[1..]),
        ] {
            assert!(parse_key(&bad).is_none(), "{bad}");
        }
    }
}
