//! [`JwtVerifier`] (feature `jwt`): a signed token of the service's identity provider.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sea_orm::sea_query::{ExprTrait, Query};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{MembershipVerifier, TenantVerifier, Verified, VerifierDb, col};
use crate::error::{Error, Result};
use crate::tenant::TenantId;

/// Verifies a JWT issued by the service's identity provider (OIDC, an auth gateway), then the
/// membership of its subject in the tenant it names, in the database.
///
/// The claim is the compact token (`Authorization: Bearer <token>` over HTTP). It is accepted
/// only if all of these hold, and every failure is the same [`Error::Denied`]:
///
/// - it is signed with one of the configured [`JwtKeys`] (RS256 or ES256; the algorithm is the
///   key's, never the token header's choice, so `none`, HMAC with a public key and other algorithm
///   confusions are refused);
/// - its `iss` is the configured issuer, its `aud` contains the configured audience, its `exp`
///   has not passed and its `nbf`, if any, has (60 seconds of clock leeway by default);
/// - the [tenant claim](JwtVerifier::tenant_claim) (default `tenant_id`) is a tenant id;
/// - the [user claim](JwtVerifier::user_claim) (default `sub`) names a user of *that* tenant:
///   a row of `users` with that `id` (or that `email`, with [`JwtVerifier::user_by_email`]). A
///   valid token of a user who is not a member of the tenant it names is refused like a forged one.
///
/// The context's actor is the user and its permissions are the user's roles in the tenant, as
/// for [`MembershipVerifier`]: the token carries identity, the database carries authorization.
///
/// ```no_run
/// # fn f(jwks_json: &str) -> Result<(), Box<dyn std::error::Error>> {
/// use tenant_scope::{JwtKeys, JwtVerifier};
///
/// // The provider's JWKS document, fetched by the service (and refreshed when keys rotate).
/// let keys = JwtKeys::from_jwks(jwks_json)?;
/// let verifier = JwtVerifier::new(keys, "https://login.example.com/", "invoicing-api")
///     .tenant_claim("org_id");
/// # let _ = verifier;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct JwtVerifier {
    keys: JwtKeys,
    issuer: String,
    audience: String,
    tenant_claim: String,
    user: UserClaim,
    leeway_seconds: u64,
}

/// How the token names its user.
#[derive(Clone, Debug)]
enum UserClaim {
    /// A claim holding the user's row id (`users.id`).
    Id(String),
    /// A claim holding the user's email (`users.email`, within the tenant).
    Email(String),
}

impl JwtVerifier {
    /// A verifier of tokens signed with `keys`, issued by `issuer` (`iss`) for `audience` (`aud`).
    /// The tenant is read from the `tenant_id` claim and the user's id from `sub`.
    pub fn new(keys: JwtKeys, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            tenant_claim: "tenant_id".to_owned(),
            user: UserClaim::Id("sub".to_owned()),
            leeway_seconds: 60,
        }
    }

    /// The claim that names the tenant (a tenant id, as a string); `tenant_id` by default.
    #[must_use]
    pub fn tenant_claim(mut self, claim: impl Into<String>) -> Self {
        self.tenant_claim = claim.into();
        self
    }

    /// The claim that holds the user's row id (`users.id`, a UUID); `sub` by default.
    #[must_use]
    pub fn user_claim(mut self, claim: impl Into<String>) -> Self {
        self.user = UserClaim::Id(claim.into());
        self
    }

    /// Finds the user by email instead: `claim` (for example `email`) must equal the `email` of a
    /// user of the token's tenant. For providers whose `sub` is not the service's user id. Use it
    /// only with a provider that verifies email addresses.
    #[must_use]
    pub fn user_by_email(mut self, claim: impl Into<String>) -> Self {
        self.user = UserClaim::Email(claim.into());
        self
    }

    /// The clock leeway for `exp` and `nbf`, in seconds (60 by default).
    #[must_use]
    pub fn leeway_seconds(mut self, seconds: u64) -> Self {
        self.leeway_seconds = seconds;
        self
    }

    /// The token's claims, if its signature, issuer, audience and times are valid.
    fn claims(&self, token: &str) -> Option<Map<String, Value>> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let key = self.keys.select(header.kid.as_deref(), header.alg)?;
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway_seconds;
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

#[async_trait::async_trait]
impl TenantVerifier for JwtVerifier {
    type Claim = String;

    async fn verify(&self, db: &VerifierDb<'_>, token: String) -> Result<Verified> {
        let claims = self.claims(&token).ok_or(Error::Denied)?;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let tenant: TenantId = text(&self.tenant_claim)
            .and_then(|t| t.parse().ok())
            .ok_or(Error::Denied)?;
        let user_id = match &self.user {
            UserClaim::Id(claim) => text(claim)
                .and_then(|u| Uuid::try_parse(u).ok())
                .ok_or(Error::Denied)?,
            UserClaim::Email(claim) => {
                let email = text(claim).ok_or(Error::Denied)?;
                user_by_email(db, tenant, email).await?
            }
        };
        MembershipVerifier.verify(db, (tenant, user_id)).await
    }
}

/// The id of the user of `tenant` with this email; [`Error::Denied`] if there is none.
async fn user_by_email(db: &VerifierDb<'_>, tenant: TenantId, email: &str) -> Result<Uuid> {
    let mut stmt = Query::select();
    stmt.column("id")
        .from("users")
        .and_where(col("tenant_id").eq(tenant))
        .and_where(col("email").eq(email));
    let rows = db.query_all(tenant, &stmt).await?;
    match rows.as_slice() {
        [row] => row.try_get_by_index::<Uuid>(0).map_err(Error::from_db),
        _ => Err(Error::Denied),
    }
}

/// The public keys a [`JwtVerifier`] accepts signatures of: from the identity provider's JWKS
/// document, or from one PEM public key.
///
/// Each key has its algorithm, fixed when it is loaded: RS256 for an RSA key, ES256 for a P-256
/// key. A token is checked only with a key of its header's `kid` (if the header names one) and of
/// its header's algorithm.
#[derive(Clone)]
pub struct JwtKeys {
    keys: Arc<Vec<Key>>,
}

struct Key {
    id: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.keys
                    .iter()
                    .map(|k| (k.id.as_deref().unwrap_or("-"), k.algorithm)),
            )
            .finish()
    }
}

/// Why a [`JwtKeys`] could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot load the token keys: {0}")]
pub struct JwtKeysError(String);

impl JwtKeys {
    /// The signing keys of a JWKS document (`{"keys": [..]}`, RFC 7517), as an identity provider
    /// publishes them at its `jwks_uri`: every RSA key and every P-256 key meant for signatures.
    /// Keys of other types, or marked for encryption, or for another algorithm, are skipped.
    ///
    /// # Errors
    ///
    /// [`JwtKeysError`] if the document does not parse or holds no usable key.
    pub fn from_jwks(json: &str) -> std::result::Result<Self, JwtKeysError> {
        let set: JwkSet = serde_json::from_str(json)
            .map_err(|e| JwtKeysError(format!("not a JWKS document: {e}")))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let algorithm = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                _ => continue,
            };
            let stated = jwk.common.key_algorithm;
            let matches = match stated {
                None => true,
                Some(KeyAlgorithm::RS256) => algorithm == Algorithm::RS256,
                Some(KeyAlgorithm::ES256) => algorithm == Algorithm::ES256,
                Some(_) => false,
            };
            let for_signing = !matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            );
            if !matches || !for_signing {
                continue;
            }
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|e| JwtKeysError(format!("a key of the document: {e}")))?;
            keys.push(Key {
                id: jwk.common.key_id.clone(),
                algorithm,
                key,
            });
        }
        Self::of(keys)
    }

    /// One RSA public key in PEM (`-----BEGIN PUBLIC KEY-----`), for RS256 tokens without `kid`
    /// or with any `kid`.
    ///
    /// # Errors
    ///
    /// [`JwtKeysError`] if it is not an RSA public key in PEM.
    pub fn rsa_pem(pem: &[u8]) -> std::result::Result<Self, JwtKeysError> {
        let key = DecodingKey::from_rsa_pem(pem)
            .map_err(|e| JwtKeysError(format!("not an RSA public key in PEM: {e}")))?;
        Self::of(vec![Key {
            id: None,
            algorithm: Algorithm::RS256,
            key,
        }])
    }

    /// One P-256 public key in PEM, for ES256 tokens.
    ///
    /// # Errors
    ///
    /// [`JwtKeysError`] if it is not an EC public key in PEM.
    pub fn ec_pem(pem: &[u8]) -> std::result::Result<Self, JwtKeysError> {
        let key = DecodingKey::from_ec_pem(pem)
            .map_err(|e| JwtKeysError(format!("not an EC public key in PEM: {e}")))?;
        Self::of(vec![Key {
            id: None,
            algorithm: Algorithm::ES256,
            key,
        }])
    }

    fn of(keys: Vec<Key>) -> std::result::Result<Self, JwtKeysError> {
        if keys.is_empty() {
            return Err(JwtKeysError(
                "no RS256 or ES256 signing key in the document".into(),
            ));
        }
        Ok(Self {
            keys: Arc::new(keys),
        })
    }

    /// The key a token with header `kid` and `alg` is checked with: of that algorithm, and of that
    /// id if the header names one (a key loaded from PEM has no id and matches any). `None` if no
    /// key or several keys qualify.
    fn select(&self, kid: Option<&str>, alg: Algorithm) -> Option<&Key> {
        let mut found = self.keys.iter().filter(|k| {
            k.algorithm == alg
                && match (kid, k.id.as_deref()) {
                    (Some(wanted), Some(id)) => wanted == id,
                    _ => true,
                }
        });
        let key = found.next()?;
        found.next().is_none().then_some(key)
    }
}
