//! A [`TenantContext`] outside the process: sealed into a signed, expiring token
//! ([`SealedContext`]) with a [`JobKey`], and back only through [`JobVerifier`].

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::tenant::{Actor, TenantContext, TenantId};
use crate::verify::{TenantVerifier, Verified, VerifierDb};

/// The token's prefix and format version.
const PREFIX: &str = "tsj1";

/// The shortest key [`JobKey::new`] accepts, in bytes (the output size of SHA-256).
pub const MIN_KEY_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The secret that seals job contexts (HMAC-SHA256). Every process that enqueues or runs jobs of a
/// deployment needs the same key; keep it with the deployment's other secrets.
///
/// Its `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct JobKey {
    key: Vec<u8>,
}

impl fmt::Debug for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JobKey(..)")
    }
}

impl JobKey {
    /// A key of at least [`MIN_KEY_LEN`] random bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a shorter key.
    pub fn new(key: impl Into<Vec<u8>>) -> Result<Self> {
        let key = key.into();
        if key.len() < MIN_KEY_LEN {
            return Err(Error::Config(format!(
                "a job key must have at least {MIN_KEY_LEN} bytes (it has {}): generate one with \
                 a CSPRNG, e.g. `openssl rand -hex 32`",
                key.len()
            )));
        }
        Ok(Self { key })
    }

    /// A key from its hexadecimal text (for example an environment variable).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the text is not hex or is too short.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| Error::Config("a job key in hex must be hexadecimal digits".into()))?;
        Self::new(bytes)
    }

    /// A fresh random key (for tests, or to print one once).
    pub fn generate() -> Self {
        use rand::RngCore as _;
        let mut key = vec![0u8; MIN_KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        Self { key }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length; `new` has checked the minimum.
        match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        }
    }

    /// Seals `ctx` for the job `job`: a token that names the tenant, the actor, the permissions,
    /// the request id and the job, signed with this key and valid for `ttl`.
    ///
    /// A context from system access ([`SystemDb::context_for`](crate::SystemDb::context_for))
    /// comes back as a context of its actor and its (empty) permissions, without the pass of every
    /// permission check that only audited system access grants: a job that needs system access
    /// asks for it itself (`db.system(reason)`), with its own reason and audit event.
    pub fn seal(&self, ctx: &TenantContext, job: Uuid, ttl: Duration) -> SealedContext {
        let issued = Utc::now();
        let expires = issued + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let claims = Claims {
            tenant: ctx.tenant().into_uuid(),
            actor: ActorClaim::from(ctx.actor()),
            permissions: ctx.permissions().iter().cloned().collect(),
            request_id: ctx.request_id().to_owned(),
            job,
            issued_at: issued.timestamp(),
            expires_at: expires.timestamp(),
        };
        // Serializing plain strings, UUIDs and integers cannot fail.
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let body = format!("{PREFIX}.{}", URL_SAFE_NO_PAD.encode(json));
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        SealedContext(format!("{body}.{tag}"))
    }

    /// The claims of `token` if this key signed it (checked in constant time); `None` otherwise,
    /// whatever is wrong with it. Expiry is not checked here.
    fn open(&self, token: &SealedContext) -> Option<Claims> {
        let (body, tag) = token.0.rsplit_once('.')?;
        let (prefix, payload) = body.split_once('.')?;
        if prefix != PREFIX {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&tag).ok()?;
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        serde_json::from_slice(&json).ok()
    }

    /// Why `token` cannot be opened for `job` now, or its claims: for the worker, which records
    /// the reason on the job (a caller of [`TenantDb::verify`](crate::TenantDb::verify) only ever
    /// learns [`Error::Denied`]).
    pub(crate) fn inspect(&self, token: &SealedContext, job: Uuid) -> Result<Claims, Unsealed> {
        let claims = self.open(token).ok_or(Unsealed::NotSigned)?;
        if claims.job != job {
            return Err(Unsealed::OtherJob);
        }
        if claims.expired(Utc::now()) {
            return Err(Unsealed::Expired);
        }
        Ok(claims)
    }
}

/// Why a sealed context does not open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unsealed {
    /// Not a token of this key (malformed, tampered with, or another key's).
    NotSigned,
    /// Signed for another job.
    OtherJob,
    /// Past its expiry.
    Expired,
}

impl Unsealed {
    /// What the job's record says.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Unsealed::NotSigned => "its context is not signed with this worker's job key",
            Unsealed::OtherJob => "its context was sealed for another job",
            Unsealed::Expired => "its context has expired",
        }
    }
}

/// A [`TenantContext`] sealed by [`JobKey::seal`]: the only form in which a context leaves the
/// process (a job's row, a message). It is not a context: nothing accepts it where a context is
/// needed, and only [`JobVerifier`] turns it back into one, after checking its signature, its
/// expiry, its job and that its tenant still exists and is active.
///
/// ```compile_fail
/// # async fn f(db: &tenant_scope::TenantDb, sealed: tenant_scope::jobs::SealedContext) {
/// // A sealed context cannot stand in for a verified one.
/// let scope = db.scope(&sealed);
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SealedContext(String);

impl SealedContext {
    /// The token as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A token read back from storage (nothing is checked until [`JobVerifier`] verifies it).
    pub fn from_stored(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for SealedContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a bearer credential for its job: never in logs.
        f.write_str("SealedContext(..)")
    }
}

/// The signed content of a [`SealedContext`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) tenant: Uuid,
    actor: ActorClaim,
    permissions: Vec<String>,
    pub(crate) request_id: String,
    pub(crate) job: Uuid,
    issued_at: i64,
    expires_at: i64,
}

impl Claims {
    fn expired(&self, now: DateTime<Utc>) -> bool {
        now.timestamp() >= self.expires_at
    }

    pub(crate) fn tenant(&self) -> TenantId {
        TenantId::from_uuid(self.tenant)
    }
}

/// An [`Actor`] in a token.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ActorClaim {
    User { id: Uuid },
    ApiKey { key_id: Uuid, user_id: Uuid },
    System { reason: String },
}

impl From<&Actor> for ActorClaim {
    fn from(actor: &Actor) -> Self {
        match actor {
            Actor::User(id) => ActorClaim::User { id: *id },
            Actor::ApiKey { key_id, user_id } => ActorClaim::ApiKey {
                key_id: *key_id,
                user_id: *user_id,
            },
            Actor::System { reason } => ActorClaim::System {
                reason: reason.clone(),
            },
        }
    }
}

impl From<ActorClaim> for Actor {
    fn from(actor: ActorClaim) -> Self {
        match actor {
            ActorClaim::User { id } => Actor::User(id),
            ActorClaim::ApiKey { key_id, user_id } => Actor::ApiKey { key_id, user_id },
            ActorClaim::System { reason } => Actor::System { reason },
        }
    }
}

/// The verifier of sealed contexts: accepts `(token, job id)` if the token was sealed with its key
/// for that job, has not expired, and its tenant exists and is active; every other claim is
/// [`Error::Denied`]. The context it gives has the sealed tenant, actor and permissions (its
/// request id is the sealed one when the job worker makes it).
#[derive(Clone, Debug)]
pub struct JobVerifier {
    key: JobKey,
}

impl JobVerifier {
    /// The verifier of contexts sealed with `key`.
    pub fn new(key: JobKey) -> Self {
        Self { key }
    }
}

#[async_trait::async_trait]
impl TenantVerifier for JobVerifier {
    type Claim = (SealedContext, Uuid);

    async fn verify(&self, db: &VerifierDb<'_>, (token, job): Self::Claim) -> Result<Verified> {
        let claims = self.key.inspect(&token, job).map_err(|_| Error::Denied)?;
        let tenant = claims.tenant();
        if !crate::verify::tenant_is_active(db, tenant).await? {
            return Err(Error::Denied);
        }
        Ok(Verified::new(
            tenant,
            Actor::from(claims.actor),
            claims.permissions.into_iter().collect::<BTreeSet<_>>(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TenantContext {
        TenantContext::new(
            TenantId::new(),
            Actor::User(Uuid::now_v7()),
            ["tasks.write".to_owned()].into(),
            "req-1".into(),
        )
    }

    #[test]
    fn a_sealed_context_opens_with_its_key_for_its_job_only() {
        let key = JobKey::generate();
        let ctx = ctx();
        let job = Uuid::now_v7();
        let sealed = key.seal(&ctx, job, Duration::from_secs(60));
        let claims = key.inspect(&sealed, job).expect("opens");
        assert_eq!(claims.tenant(), ctx.tenant());
        assert_eq!(claims.request_id, "req-1");
        assert_eq!(Actor::from(claims.actor.clone()), *ctx.actor());
        assert_eq!(
            key.inspect(&sealed, Uuid::now_v7()).err(),
            Some(Unsealed::OtherJob)
        );
        let other = JobKey::generate();
        assert_eq!(other.inspect(&sealed, job).err(), Some(Unsealed::NotSigned));
        let expired = key.seal(&ctx, job, Duration::ZERO);
        assert_eq!(key.inspect(&expired, job).err(), Some(Unsealed::Expired));
    }

    #[test]
    fn any_change_to_a_token_breaks_its_seal() {
        let key = JobKey::generate();
        let job = Uuid::now_v7();
        let token = key.seal(&ctx(), job, Duration::from_secs(60)).0;
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let Ok(changed) = String::from_utf8(bytes) else {
                continue;
            };
            if changed == token {
                continue;
            }
            let opened = key.inspect(&SealedContext(changed.clone()), job);
            assert!(opened.is_err(), "changed at {i}: {changed}");
        }
        // Another tenant written into the payload, re-encoded, keeps the old tag: refused.
        let (body, tag) = token.rsplit_once('.').expect("tag");
        let (_, payload) = body.split_once('.').expect("payload");
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        claims["tenant"] = serde_json::json!(Uuid::now_v7());
        let forged = format!(
            "{PREFIX}.{}.{tag}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"))
        );
        assert_eq!(
            key.inspect(&SealedContext(forged), job).err(),
            Some(Unsealed::NotSigned)
        );
    }

    #[test]
    fn keys_are_long_enough_and_never_shown() {
        assert!(matches!(JobKey::new(vec![0u8; 31]), Err(Error::Config(_))));
        assert!(JobKey::new(vec![7u8; 32]).is_ok());
        assert!(JobKey::from_hex("zz").is_err());
        let key = JobKey::from_hex(&"ab".repeat(32)).expect("hex");
        assert_eq!(format!("{key:?}"), "JobKey(..)");
        let sealed = key.seal(&ctx(), Uuid::now_v7(), Duration::from_secs(1));
        assert_eq!(format!("{sealed:?}"), "SealedContext(..)");
    }
}
