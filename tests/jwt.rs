//! `JwtVerifier` (feature `jwt`), on every backend, through `TenantDb::verify`:
//!
//! - a token of the provider (RS256 or ES256, keys from its JWKS document or from PEM) of a member
//!   of the tenant it names verifies to that tenant, as that user, with the user's permissions;
//! - every broken token is the same `Error::Denied`: expired, not yet valid, another audience or
//!   issuer, no `exp`, forged (another key under the provider's `kid`), `alg: none`, HS256 keyed
//!   with the public key, an unknown `kid`, a missing or malformed tenant or user claim, a user who
//!   is not a member of the tenant the token names, garbage;
//! - with `user_by_email` the user is found by email within the token's tenant only;
//! - verifying writes nothing.
//!
//! Over HTTP (`TenantResolver::with_verifier`) the same tokens are tested in tests/http.rs.

use serde_json::{Value, json};
use tenant_scope::{Actor, Error, JwtKeys, JwtVerifier, TenantDb};
use test_support::TestDb;
use test_support::jwt::{self, AUDIENCE, ISSUER, Signer};

/// The number of audit events of every tenant, through audited system access.
async fn writes(db: &TenantDb) -> u64 {
    let system = db.system("test: count audit events").await.expect("system");
    let n = system
        .find::<entity::audit_events::Entity>()
        .count()
        .await
        .expect("count");
    let users = system
        .find::<entity::users::Entity>()
        .count()
        .await
        .expect("count");
    n + users
}

test_support::backend_test!(
    a_members_token_verifies_to_its_tenant,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (acme, globex) = test_support::two_tenants(&db, &["projects.write"]).await;
        let pem_rsa = JwtVerifier::new(
            JwtKeys::rsa_pem(jwt::RSA_PUBLIC_PEM).expect("RSA PEM"),
            ISSUER,
            AUDIENCE,
        );
        let pem_ec = JwtVerifier::new(
            JwtKeys::ec_pem(jwt::EC_PUBLIC_PEM).expect("EC PEM"),
            ISSUER,
            AUDIENCE,
        );
        for side in [&acme, &globex] {
            let claims = jwt::claims(side.id, side.user.id);
            for (verifier, signer) in [
                (&jwt::verifier(), Signer::Rsa),
                (&jwt::verifier(), Signer::Ec),
                (&pem_rsa, Signer::Rsa),
                (&pem_ec, Signer::Ec),
            ] {
                let ctx = db
                    .verify(verifier, jwt::sign(signer, &claims))
                    .await
                    .unwrap_or_else(|e| panic!("{signer:?}: {e:?}"));
                assert_eq!(ctx.tenant(), side.id);
                assert_eq!(ctx.actor(), &Actor::User(side.user.id));
                assert!(ctx.has_permission("projects.write"), "{signer:?}");
            }
        }
    }
);

test_support::backend_test!(
    every_broken_token_is_the_same_denied,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (acme, globex) = test_support::two_tenants(&db, &[]).await;
        let verifier = jwt::verifier();
        let valid = jwt::claims(acme.id, acme.user.id);
        let with = |changes: Value| {
            let mut claims = valid.clone();
            if let Value::Object(changes) = changes {
                for (name, value) in changes {
                    if value.is_null() {
                        claims.remove(&name);
                    } else {
                        claims.insert(name, value);
                    }
                }
            }
            claims
        };
        let now = chrono::Utc::now().timestamp();
        let signed = |claims| jwt::sign(Signer::Rsa, &claims);
        let cases: Vec<(&str, String)> = vec![
            ("expired", signed(with(json!({"exp": now - 3600})))),
            ("not yet valid", signed(with(json!({"nbf": now + 3600})))),
            (
                "another audience",
                signed(with(json!({"aud": "other-api"}))),
            ),
            (
                "another issuer",
                signed(with(json!({"iss": "https://evil.invalid/"}))),
            ),
            ("no exp", signed(with(json!({"exp": null})))),
            ("no iss", signed(with(json!({"iss": null})))),
            ("no aud", signed(with(json!({"aud": null})))),
            ("forged", jwt::sign(Signer::Attacker, &valid)),
            ("alg none", jwt::unsigned(&valid)),
            (
                "HS256 with the public key",
                jwt::sign(Signer::HmacWithPublicKey, &valid),
            ),
            ("no tenant", signed(with(json!({"tenant_id": null})))),
            (
                "malformed tenant",
                signed(with(json!({"tenant_id": "acme"}))),
            ),
            ("numeric tenant", signed(with(json!({"tenant_id": 42})))),
            ("no subject", signed(with(json!({"sub": null})))),
            ("malformed subject", signed(with(json!({"sub": "alice"})))),
            (
                "a member of another tenant",
                signed(with(json!({"tenant_id": globex.id.to_string()}))),
            ),
            (
                "an unknown tenant",
                signed(with(
                    json!({"tenant_id": tenant_scope::TenantId::new().to_string()}),
                )),
            ),
            (
                "an unknown user",
                signed(with(json!({"sub": uuid::Uuid::now_v7().to_string()}))),
            ),
            ("garbage", "not.a.token".to_owned()),
            ("empty", String::new()),
        ];
        let before = writes(&db).await;
        for (what, token) in cases {
            match db.verify(&verifier, token).await {
                Err(Error::Denied) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
        // A token whose kid the provider does not have.
        let unknown_kid = {
            let keys =
                JwtKeys::from_jwks(&jwt::JWKS.replace("\"rsa-1\"", "\"rsa-2\"")).expect("JWKS");
            JwtVerifier::new(keys, ISSUER, AUDIENCE)
        };
        assert!(matches!(
            db.verify(&unknown_kid, jwt::sign(Signer::Rsa, &valid))
                .await,
            Err(Error::Denied)
        ));
        assert_eq!(writes(&db).await, before, "verifying wrote something");
    }
);

test_support::backend_test!(
    by_email_the_user_is_found_in_the_tokens_tenant_only,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        // Both users are alice@example.com, each in their own tenant.
        let (acme, globex) = test_support::two_tenants(&db, &[]).await;
        let verifier = jwt::verifier().user_by_email("email");
        for side in [&acme, &globex] {
            // `sub` is the provider's own id, not a user id: it is not read.
            let mut claims = jwt::claims(side.id, side.user.id);
            claims.insert("sub".into(), json!("auth0|provider-id"));
            let ctx = db
                .verify(&verifier, jwt::sign(Signer::Ec, &claims))
                .await
                .expect("by email");
            assert_eq!(ctx.tenant(), side.id);
            assert_eq!(ctx.actor(), &Actor::User(side.user.id));
        }
        let mut claims = jwt::claims(acme.id, acme.user.id);
        claims.insert("email".into(), json!("mallory@example.com"));
        assert!(matches!(
            db.verify(&verifier, jwt::sign(Signer::Rsa, &claims)).await,
            Err(Error::Denied)
        ));
    }
);

#[test]
fn key_documents_without_a_usable_key_are_errors() {
    assert!(JwtKeys::from_jwks("not json").is_err());
    assert!(JwtKeys::from_jwks(r#"{"keys": []}"#).is_err());
    // An HMAC key is never a provider's public key.
    assert!(JwtKeys::from_jwks(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).is_err());
    assert!(
        JwtKeys::rsa_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err()
    );
    assert!(JwtKeys::ec_pem(jwt::RSA_PUBLIC_PEM).is_err());
    let keys = JwtKeys::from_jwks(jwt::JWKS).expect("the test JWKS");
    // Debug shows the key ids and algorithms, not the keys.
    assert_eq!(
        format!("{keys:?}"),
        r#"[("rsa-1", RS256), ("ec-1", ES256)]"#
    );
}
