//! Per-tenant fairness, on every backend: one tenant holds at most its cap of the application
//! pool's connections (`TenantDbOptions::per_tenant_connections`, default half the pool); one
//! operation over the cap waits, then is `Error::Busy` (429 with `Retry-After`), while other
//! tenants go on; the permit comes back whatever way an operation ends (an error, a cancelled
//! future, a dropped transaction); a verifier's lookups are not charged to the tenant a claim
//! names, so bad credentials naming a tenant cannot take its share.

use std::time::Duration;

use axum::response::IntoResponse;
use chrono::Utc;
use entity::projects;
use sea_orm::ActiveValue::Set;
use tenant_scope::http::ApiError;
use tenant_scope::{ApiKeyVerifier, Error, TenantDb};
use test_support::{KeyedTenant, TestDb};
use uuid::Uuid;

const WAIT: Duration = Duration::from_millis(300);

/// The library with a pool of 4 and a cap of `cap` per tenant, and two tenants.
async fn capped(t: &TestDb, cap: u32) -> (TenantDb, KeyedTenant, KeyedTenant) {
    let db = t
        .tenant_db_options(|o| o.max_connections(4))
        .per_tenant_connections(cap)
        .per_tenant_wait(WAIT)
        .connect()
        .await
        .expect("the library");
    let (a, b) = test_support::two_tenants(&db, &[]).await;
    (db, a, b)
}

async fn project(db: &TenantDb, tenant: &KeyedTenant) -> Result<projects::Model, Error> {
    db.scope(&tenant.job)
        .insert(projects::ActiveModel {
            name: Set(format!("p {}", Uuid::now_v7())),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await
}

test_support::backend_test!(one_tenant_cannot_take_the_pool, |t: TestDb| async move {
    let (db, a, b) = capped(&t, 2).await;
    let mine = project(&db, &a).await.expect("a project");
    let first = db.begin(&a.job).await.expect("A's first");
    let second = db.begin(&a.job).await.expect("A's second");
    // A is at its cap: its next operation waits, then is Busy.
    let over = db.scope(&a.job).get::<projects::Entity>(mine.id).await;
    assert!(
        matches!(over, Err(Error::Busy)),
        "{}: {over:?}",
        t.backend()
    );
    assert!(matches!(db.begin(&a.job).await, Err(Error::Busy)));
    // B is not held up: it gets the rest of the pool.
    let b1 = db.begin(&b.job).await.expect("B's first");
    project(&db, &b).await.expect("B writes");
    drop(b1);
    // One of A's transactions ends: A goes on.
    drop(first);
    db.scope(&a.job)
        .get::<projects::Entity>(mine.id)
        .await
        .expect("A after one of its transactions ended");
    second.rollback().await.expect("rollback");
    // The answer over HTTP: 429, with when to retry; it names no other tenant.
    let response = ApiError::from(Error::Busy).into_response();
    assert_eq!(response.status(), 429);
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
});

test_support::backend_test!(
    the_cap_comes_back_after_errors_and_cancellations,
    |t: TestDb| async move {
        let (db, a, _b) = capped(&t, 1).await;
        let mine = project(&db, &a).await.expect("a project");
        let scope = db.scope(&a.job);
        // Failed operations give their permit back.
        for _ in 0..10 {
            let missing = scope.get::<projects::Entity>(Uuid::now_v7()).await;
            assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
            let duplicate = scope
                .insert(projects::ActiveModel {
                    id: Set(mine.id),
                    name: Set("again".into()),
                    created_at: Set(Utc::now()),
                    ..Default::default()
                })
                .await;
            assert!(duplicate.is_err(), "{duplicate:?}");
        }
        // Operations cancelled at any point give it back too.
        for micros in [0u64, 10, 50, 100, 500, 1_000, 5_000] {
            let _ = tokio::time::timeout(
                Duration::from_micros(micros),
                scope.get::<projects::Entity>(mine.id),
            )
            .await;
            let _ = tokio::time::timeout(Duration::from_micros(micros), project(&db, &a)).await;
        }
        // So does a wait cancelled while over the cap, and a transaction dropped unfinished.
        let held = db.begin(&a.job).await.expect("held");
        let waiting = tokio::time::timeout(
            Duration::from_millis(20),
            scope.get::<projects::Entity>(mine.id),
        )
        .await;
        assert!(waiting.is_err(), "still waiting when cancelled");
        drop(held);
        // With a cap of one and a short wait, any permit still out would make these Busy.
        for _ in 0..3 {
            scope
                .get::<projects::Entity>(mine.id)
                .await
                .expect("the permit came back");
            let tx = db.begin(&a.job).await.expect("a transaction");
            drop(tx);
        }
    }
);

test_support::backend_test!(
    verifying_a_claim_takes_no_share_of_the_tenant_it_names,
    |t: TestDb| async move {
        let (db, a, _b) = capped(&t, 1).await;
        // A bad key naming A: the same tenant and key id, another secret.
        let mut bad = a.key.key.clone();
        let last = if bad.ends_with('0') { '1' } else { '0' };
        bad.pop();
        bad.push(last);
        // A is at its cap. Were the verifier's lookups charged to the tenant a claim names, both
        // verifications would wait, then be Busy: a flood of bad keys naming A would hold A's
        // share, and a 429 would tell a bad key's sender that A is busy.
        let held = db.begin(&a.job).await.expect("A at its cap");
        let denied = db.verify(&ApiKeyVerifier, bad.clone()).await;
        assert!(
            matches!(denied, Err(Error::Denied)),
            "{}: {denied:?}",
            t.backend()
        );
        let accepted = db
            .verify(&ApiKeyVerifier, a.key.key.clone())
            .await
            .expect("A's own key is verified while A is at its cap");
        assert_eq!(accepted.tenant(), a.id);
        // The operation it then runs is A's, and over A's cap.
        let over = db
            .scope(&accepted)
            .get::<projects::Entity>(Uuid::now_v7())
            .await;
        assert!(matches!(over, Err(Error::Busy)), "{over:?}");
        drop(held);
        // Bad keys naming A, verified while A works, never make A's operations wait.
        let work = async {
            for _ in 0..20 {
                let missing = db
                    .scope(&a.job)
                    .get::<projects::Entity>(Uuid::now_v7())
                    .await;
                assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
            }
        };
        tokio::join!(bad_keys(&db, &bad), bad_keys(&db, &bad), work);
    }
);

/// Twenty verifications of a bad key, one after the other.
async fn bad_keys(db: &TenantDb, bad: &str) {
    for _ in 0..20 {
        let refused = db.verify(&ApiKeyVerifier, bad.to_owned()).await;
        assert!(matches!(refused, Err(Error::Denied)), "{refused:?}");
    }
}

test_support::backend_test!(the_default_cap_is_half_the_pool, |t: TestDb| async move {
    let db = t.tenant_db_with(|o| o.max_connections(8)).await;
    assert_eq!(db.per_tenant_cap(), Some(4));
    let small = t.tenant_db_with(|o| o.max_connections(1)).await;
    assert_eq!(small.per_tenant_cap(), Some(1), "at least one");
    let off = t
        .tenant_db_options(|o| o.max_connections(8))
        .without_per_tenant_cap()
        .connect()
        .await
        .expect("the library");
    assert_eq!(off.per_tenant_cap(), None);
});
