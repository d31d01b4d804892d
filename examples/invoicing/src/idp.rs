//! A stand-in identity provider, so the example runs with no setup: it signs ES256 tokens with the
//! test-only key of `fixtures/` and publishes its JWKS document ([`JWKS`]).
//!
//! In a real deployment the provider is yours (Auth0, Keycloak, Entra ID, ...): configure
//! [`verifier`] with its JWKS document, issuer and audience, and delete this module.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use tenant_scope::{JwtKeys, JwtKeysError, JwtVerifier, TenantId};
use uuid::Uuid;

/// The provider's issuer (`iss`).
pub const ISSUER: &str = "https://idp.invoicing.test/";
/// The service's audience (`aud`).
pub const AUDIENCE: &str = "invoicing-api";
/// The provider's JWKS document (one P-256 key, kid `invoicing-dev-1`).
pub const JWKS: &str = include_str!("../fixtures/jwks.json");
const KID: &str = "invoicing-dev-1";
const PRIVATE_PEM: &[u8] = include_bytes!("../fixtures/es256-private.pem");
const ATTACKER_PEM: &[u8] = include_bytes!("../fixtures/attacker-private.pem");

/// The service's verifier of the provider's tokens: signature by a key of [`JWKS`], [`ISSUER`],
/// [`AUDIENCE`], `exp`; the tenant in the claim `tenant_id`, the user's id in `sub`, and the user a
/// member of that tenant in the database.
///
/// # Errors
///
/// A JWKS document that cannot be read.
pub fn verifier() -> Result<JwtVerifier, JwtKeysError> {
    Ok(JwtVerifier::new(
        JwtKeys::from_jwks(JWKS)?,
        ISSUER,
        AUDIENCE,
    ))
}

/// The claims of a token.
#[derive(Clone, Debug, Serialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user's id.
    pub sub: String,
    /// The tenant the token is for.
    pub tenant_id: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

impl Claims {
    /// The claims of a token of `user` in `tenant`, valid for an hour.
    pub fn new(tenant: TenantId, user: Uuid) -> Self {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user.to_string(),
            tenant_id: tenant.to_string(),
            iat: now,
            exp: now + 3600,
        }
    }
}

/// Who signs a token: the provider, or someone with another key claiming the provider's kid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    /// The provider's key.
    Provider,
    /// A forger's key under the provider's kid.
    Forger,
}

/// `claims` signed with ES256 by `signer`.
///
/// # Errors
///
/// A key or claims that cannot be encoded.
pub fn sign(signer: Signer, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    let pem = match signer {
        Signer::Provider => PRIVATE_PEM,
        Signer::Forger => ATTACKER_PEM,
    };
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(KID.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_pem(pem)?)
}

/// A valid token of `user` in `tenant`, signed by the provider.
///
/// # Errors
///
/// As [`sign`].
pub fn token(tenant: TenantId, user: Uuid) -> Result<String, jsonwebtoken::errors::Error> {
    sign(Signer::Provider, &Claims::new(tenant, user))
}
