//! A context minted by a service's own verifier is visible: `Verified::custom` is the one public way
//! to build a `Verified`, and `TenantDb::verify` logs every context it becomes at INFO (target
//! `tenant_scope::verify`) with the verifier's type name, the tenant and the actor. The built-in
//! verifiers, and a wrapper that returns what a built-in one decided, are not logged as custom.
//! (That a `Verified` cannot be made outside a verifier is tests/ui/fail/verified_outside_a_verifier.rs.)

use std::io::Write;
use std::sync::{Arc, Mutex};

use tenant_scope::{
    Actor, ApiKeyVerifier, Error, TenantDb, TenantId, TenantVerifier, Verified, VerifierDb,
};
use test_support::TestDb;
use tracing::instrument::WithSubscriber;
use uuid::Uuid;

/// A `tracing` writer that keeps everything written to it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// The lines logged on the target `tenant_scope::verify`.
    fn verify_lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().expect("lock"))
            .lines()
            .filter(|l| l.contains("tenant_scope::verify"))
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Believes whatever tenant the caller names: the forged verifier of the bug report.
struct TrustsTheHeader;

#[async_trait::async_trait]
impl TenantVerifier for TrustsTheHeader {
    type Claim = TenantId;

    async fn verify(
        &self,
        db: &VerifierDb<'_>,
        tenant: TenantId,
    ) -> tenant_scope::Result<Verified> {
        Ok(Verified::custom(
            db,
            tenant,
            Actor::User(Uuid::nil()),
            Vec::new(),
        ))
    }
}

/// Counts calls and lets `ApiKeyVerifier` decide.
struct Delegates;

#[async_trait::async_trait]
impl TenantVerifier for Delegates {
    type Claim = String;

    async fn verify(&self, db: &VerifierDb<'_>, key: String) -> tenant_scope::Result<Verified> {
        ApiKeyVerifier.verify(db, key).await
    }
}

async fn verify_all(db: &TenantDb, tenant: TenantId, key: &str) {
    let forged = db.verify(&TrustsTheHeader, tenant).await.expect("custom");
    assert_eq!(forged.tenant(), tenant);
    let by_key = db
        .verify(&ApiKeyVerifier, key.to_owned())
        .await
        .expect("key");
    assert_eq!(by_key.tenant(), tenant);
    let delegated = db
        .verify(&Delegates, key.to_owned())
        .await
        .expect("wrapped");
    assert_eq!(delegated.tenant(), tenant);
    assert!(matches!(
        db.verify(&Delegates, "tsk_unknown".to_owned()).await,
        Err(Error::Denied)
    ));
}

// Guarantee: every context minted by a custom verifier is logged with the verifier's type name, the
// tenant and the actor; the built-in verifiers (and a wrapper returning their decision) log nothing there.
test_support::backend_test!(
    a_custom_verifier_is_logged_with_its_name,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let acme = test_support::keyed_tenant(&db, "acme", &[]).await;
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        async {
            // tracing-core caches a callsite's interest when it is first hit (see
            // tests/system_access.rs): hit it once, recompute with this subscriber, then capture.
            verify_all(&db, acme.id, &acme.key.key).await;
            tracing::callsite::rebuild_interest_cache();
            captured.0.lock().expect("lock").clear();
            verify_all(&db, acme.id, &acme.key.key).await;
        }
        .with_subscriber(subscriber)
        .await;
        let lines = captured.verify_lines();
        assert_eq!(
            lines.len(),
            1,
            "one line, for the custom verifier only: {lines:#?}"
        );
        let line = &lines[0];
        assert!(line.contains("INFO"), "{line}");
        assert!(
            line.contains("a custom verifier accepted a claim"),
            "{line}"
        );
        assert!(
            line.contains(&format!(
                "verifier=\"{}\"",
                std::any::type_name::<TrustsTheHeader>()
            )),
            "{line}"
        );
        assert!(line.contains(&format!("tenant={}", acme.id)), "{line}");
        assert!(
            line.contains(&format!("actor=user:{}", Uuid::nil())),
            "{line}"
        );
        assert!(
            !line.contains(&acme.key.key),
            "the claim is never logged: {line}"
        );
    }
);
