//! `db.system(reason)` is explicit, logged and audited: it needs a reason, every handle it makes logs that
//! reason at WARN (target `tenant_scope::system`) and writes an event to `system_audit_events`; on
//! PostgreSQL it needs its own, explicitly configured connection.

use std::io::Write;
use std::sync::{Arc, Mutex};

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, Order, Query};
use tenant_scope::{Error, TenantDb};
use tenant_scope_schema::SYSTEM_AUDIT_TABLE;
use test_support::{Backend, TestDb};
use tracing::instrument::WithSubscriber;
use uuid::Uuid;

/// A `tracing` writer that keeps everything written to it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
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

// Guarantee: system access is logged at WARN with its reason, and refused without one.
test_support::backend_test!(
    system_access_is_logged_with_its_reason,
    |t: TestDb| async move {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        let db = t.tenant_db().await;
        async {
            // tracing-core caches a callsite's interest when it is first hit; a first hit on another
            // test's thread (no subscriber there) would cache "never" and drop our line. Hit it once,
            // recompute every callsite's interest with this subscriber in scope, then capture.
            db.system("warm-up").await.expect("system");
            tracing::callsite::rebuild_interest_cache();
            captured.0.lock().expect("lock").clear();
            let system = db.system("nightly usage report").await.expect("system");
            assert_eq!(system.reason(), "nightly usage report");
            assert!(matches!(db.system("").await, Err(Error::Invalid(_))));
            assert!(matches!(db.system(" \t").await, Err(Error::Invalid(_))));
        }
        .with_subscriber(subscriber)
        .await;
        let log = captured.text();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "exactly one WARN line for one handle: {log}"
        );
        assert!(lines[0].contains("WARN"), "{log}");
        assert!(lines[0].contains("tenant_scope::system"), "{log}");
        assert!(lines[0].contains("nightly usage report"), "{log}");
    }
);

// Guarantee: every system access writes an audit event (id, reason, time) before it is given, and a
// refused one (no reason) writes none.
test_support::backend_test!(
    system_access_writes_an_audit_event,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let before = chrono::Utc::now() - chrono::Duration::seconds(5);
        let first = db.system("reindex search").await.expect("system");
        let second = db.system("  monthly invoices ").await.expect("system");
        assert!(db.system("").await.is_err());
        assert_ne!(first.event_id(), second.event_id());
        let stmt = Query::select()
            .columns(["id", "reason", "created_at"])
            .from(SYSTEM_AUDIT_TABLE)
            .order_by("id", Order::Asc)
            .to_owned();
        let rows = t
            .raw()
            .query_all(&stmt)
            .await
            .expect("reading the system audit table");
        let events: Vec<(Uuid, String, chrono::DateTime<chrono::Utc>)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get_by_index(0).expect("id"),
                    r.try_get_by_index(1).expect("reason"),
                    r.try_get_by_index(2).expect("created_at"),
                )
            })
            .collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].0, first.event_id());
        assert_eq!(events[0].1, "reindex search");
        assert_eq!(events[1].0, second.event_id());
        assert_eq!(
            events[1].1, "monthly invoices",
            "the reason is stored trimmed"
        );
        assert!(events.iter().all(|e| e.2 >= before), "{events:?}");
    }
);

// Guarantee: on PostgreSQL, system access needs its own, explicitly configured connection: without
// one it is refused (it never falls back to the application role), and a system connection whose
// role is subject to row level security is refused when connecting. Elsewhere (no row level
// security) system access uses the application's pool.
test_support::backend_test!(
    system_access_needs_its_own_connection_on_postgres,
    |t: TestDb| async move {
        let db = TenantDb::connect(&t.app_url()).await.expect("connect");
        let got = db.system("a job").await.map(|s| s.event_id());
        if t.backend() == Backend::Postgres {
            match got {
                Err(Error::Config(why)) => {
                    assert!(why.contains("system access is not configured"), "{why}")
                }
                other => panic!("system access without a system connection: {other:?}"),
            }
            // Nothing was written: the refusal comes before the audit event.
            let count = t
                .raw()
                .query_one(
                    &Query::select()
                        .expr(Expr::cust("count(*)"))
                        .from(SYSTEM_AUDIT_TABLE)
                        .to_owned(),
                )
                .await
                .expect("count")
                .expect("row")
                .try_get_by_index::<i64>(0)
                .expect("count");
            assert_eq!(count, 0);
            // The application role as the system connection: it could not cross tenants.
            let got = TenantDb::options(t.app_url().as_str())
                .system(t.app_url().as_str())
                .connect()
                .await;
            match got {
                Err(Error::Config(why)) => {
                    assert!(why.contains("subject to row level security"), "{why}")
                }
                other => panic!("a system connection as the application role: {other:?}"),
            }
        } else {
            got.expect("without row level security, system access uses the application's pool");
        }
    }
);

// Guarantee: the system role of docs/postgres.md (LOGIN NOSUPERUSER BYPASSRLS, with table grants and no
// ownership) works as the system connection: it provisions tenants and reads across them, while the
// application role, on the same database, sees only the tenant it sets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_system_role_crosses_tenants() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let system_role = test_support::TestRole::create(&t, "NOSUPERUSER BYPASSRLS").await;
        let db = TenantDb::options(t.app_url().as_str())
            .system(test_support::connect_options(system_role.url()))
            .connect()
            .await
            .expect("app role + BYPASSRLS system role");
        {
            let system = db
                .system("test: provision two tenants")
                .await
                .expect("system");
            let mut contexts = Vec::new();
            for name in ["Acme", "Globex"] {
                contexts.push(test_support::tenant(&system, name).await);
            }
            for ctx in &contexts {
                db.scope(ctx)
                    .insert(entity::projects::ActiveModel {
                        name: sea_orm::ActiveValue::Set("Roadmap".into()),
                        created_at: sea_orm::ActiveValue::Set(chrono::Utc::now()),
                        ..Default::default()
                    })
                    .await
                    .expect("project");
                assert_eq!(
                    db.scope(ctx)
                        .find::<entity::projects::Entity>()
                        .count()
                        .await
                        .expect("count"),
                    1,
                    "the application role sees its tenant's project only"
                );
            }
            let all = system
                .find::<entity::projects::Entity>()
                .count()
                .await
                .expect("count across tenants");
            assert_eq!(all, 2, "the system role reads across tenants");
        }
        drop(db);
        system_role.drop_role(&t).await;
    })
    .await;
}
