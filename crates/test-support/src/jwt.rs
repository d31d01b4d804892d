//! Tokens for the `JwtVerifier` tests: an identity provider with the test-only keys of
//! `fixtures/jwt` (see its README), and tokens it signs, valid or broken one way at a time.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};
use tenant_scope::{JwtKeys, JwtVerifier, TenantId};
use uuid::Uuid;

/// The issuer (`iss`) of the test provider.
pub const ISSUER: &str = "https://login.test.invalid/";
/// The audience (`aud`) of the service under test.
pub const AUDIENCE: &str = "tenant-scope-tests";

/// The provider's JWKS document (`rsa-1` RS256, `ec-1` ES256).
pub const JWKS: &str = include_str!("../fixtures/jwt/jwks.json");
/// The RSA public key in PEM.
pub const RSA_PUBLIC_PEM: &[u8] = include_bytes!("../fixtures/jwt/rs256-public.pem");
/// The P-256 public key in PEM.
pub const EC_PUBLIC_PEM: &[u8] = include_bytes!("../fixtures/jwt/es256-public.pem");
const RSA_PRIVATE_PEM: &[u8] = include_bytes!("../fixtures/jwt/rs256-private.pem");
const EC_PRIVATE_PEM: &[u8] = include_bytes!("../fixtures/jwt/es256-private.pem");
const ATTACKER_PRIVATE_PEM: &[u8] = include_bytes!("../fixtures/jwt/attacker-private.pem");

/// A verifier of the test provider's tokens: its JWKS, [`ISSUER`], [`AUDIENCE`], the tenant in
/// `tenant_id` and the user's id in `sub` (the defaults).
pub fn verifier() -> JwtVerifier {
    let keys = JwtKeys::from_jwks(JWKS).unwrap_or_else(|e| panic!("the test JWKS: {e}"));
    JwtVerifier::new(keys, ISSUER, AUDIENCE)
}

/// Who signs a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    /// The provider's RSA key, header `kid: rsa-1`, RS256.
    Rsa,
    /// The provider's P-256 key, header `kid: ec-1`, ES256.
    Ec,
    /// Another RSA key, claiming the provider's `kid: rsa-1`: a forgery.
    Attacker,
    /// HS256 with the provider's RSA *public* key as the secret, `kid: rsa-1`: the algorithm
    /// confusion attack.
    HmacWithPublicKey,
}

/// The claims of a valid token of `user` in `tenant`: `iss`, `aud`, `sub`, `tenant_id`, `email`,
/// `iat`, and `exp` in an hour.
pub fn claims(tenant: TenantId, user: Uuid) -> Map<String, Value> {
    let now = chrono::Utc::now().timestamp();
    let value = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user.to_string(),
        "tenant_id": tenant.to_string(),
        "email": "alice@example.com",
        "iat": now,
        "exp": now + 3600,
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("an object literal"),
    }
}

/// `claims` signed by `signer`.
pub fn sign(signer: Signer, claims: &Map<String, Value>) -> String {
    let (alg, kid, key) = match signer {
        Signer::Rsa => (Algorithm::RS256, "rsa-1", rsa(RSA_PRIVATE_PEM)),
        Signer::Ec => (
            Algorithm::ES256,
            "ec-1",
            EncodingKey::from_ec_pem(EC_PRIVATE_PEM).unwrap_or_else(|e| panic!("EC key: {e}")),
        ),
        Signer::Attacker => (Algorithm::RS256, "rsa-1", rsa(ATTACKER_PRIVATE_PEM)),
        Signer::HmacWithPublicKey => (
            Algorithm::HS256,
            "rsa-1",
            EncodingKey::from_secret(RSA_PUBLIC_PEM),
        ),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap_or_else(|e| panic!("signing: {e}"))
}

/// A token with header `{"alg": "none"}` and no signature.
pub fn unsigned(claims: &Map<String, Value>) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(serde_json::to_vec(claims).unwrap_or_default())
    )
}

fn rsa(pem: &[u8]) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem).unwrap_or_else(|e| panic!("RSA key: {e}"))
}
