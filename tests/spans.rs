//! Operation spans: every operation runs in one DEBUG span `tenant_scope.op` with its op, table, tenant and
//! request id, and no row data. A binary of its own, so that no other test hits the call sites while the
//! subscriber captures (`tracing` caches per call site whether anyone listens).

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use entity::projects;
use sea_orm::ActiveValue::Set;
use test_support::TestDb;
use tracing::instrument::WithSubscriber;

fn project(name: &str) -> projects::ActiveModel {
    projects::ActiveModel {
        name: Set(name.into()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
}

/// A tenant and a context of it, with a known request id.
async fn tenant(db: &tenant_scope::TenantDb) -> tenant_scope::TenantContext {
    let system = db.system("test: provision").await.expect("system");
    test_support::tenant(&system, "acme")
        .await
        .with_request_id("req-acme")
}

/// A `tracing` writer that keeps everything written to it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

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

// Guarantee: every operation runs in one `tenant_scope.op` span with op, table, tenant and request id; row data
// (here a project name) is never logged.
test_support::backend_test!(
    operations_have_spans_without_row_data,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let ctx = tenant(&db).await;
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .finish();
        async {
            let scope = db.scope(&ctx);
            // Register the callsites, recompute their interest with this subscriber, then capture (see
            // tests/system_access.rs).
            let _ = scope.find::<projects::Entity>().count().await;
            tracing::callsite::rebuild_interest_cache();
            captured.0.lock().expect("lock").clear();
            let p = scope
                .insert(project("Secret-Name-4711"))
                .await
                .expect("insert");
            scope.get::<projects::Entity>(p.id).await.expect("get");
        }
        .with_subscriber(subscriber)
        .await;
        // A span closes when its last handle is dropped. sqlx-sqlite hands a clone of the current span
        // to its connection thread with every command and drops it there a moment after it answered,
        // so on SQLite the close line may come just after the operation returned: wait for it.
        let ops = ["op=\"insert\"", "op=\"get\""];
        let closed = |log: &str, op: &str| {
            log.lines()
                .any(|l| l.contains("tenant_scope.op") && l.contains("close") && l.contains(op))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let log = loop {
            let log = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
            if ops.iter().all(|op| closed(&log, op)) || std::time::Instant::now() > deadline {
                break log;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        let spans: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("tenant_scope.op") && l.contains("close"))
            .collect();
        let tenant = ctx.tenant().to_string();
        for op in ops {
            let line = spans
                .iter()
                .find(|l| l.contains(op))
                .unwrap_or_else(|| panic!("no {op} span in:\n{log}"));
            assert!(line.contains("table=\"projects\""), "{line}");
            assert!(line.contains(&tenant), "{line}");
            assert!(line.contains("request_id=\"req-acme\""), "{line}");
        }
        assert!(
            !log.contains("Secret-Name-4711"),
            "row data was logged:\n{log}"
        );
    }
);
