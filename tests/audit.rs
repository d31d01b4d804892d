//! Audit events and operation spans.
//!
//! Every write through a scope writes one `audit_events` row (tenant, actor, action, table, row id, request id,
//! time) on the same connection, in the same transaction: a write that rolls back or fails leaves no event. Every
//! operation runs in one DEBUG span `tenant_scope.op` with its op, table, tenant and request id, and no row data.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::TestDb;
use entity::{audit_events, projects, tasks, tenants, users};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait};
use tenant_scope::{ApiKeyVerifier, Error, TenantContext, TenantDb, TenantId};
use tracing::instrument::WithSubscriber;
use uuid::Uuid;

/// A tenant with a user, acting through an API key of that user (actor `api_key:<id>`).
async fn tenant(db: &TenantDb, name: &str) -> (TenantContext, Uuid) {
    let system = db.system("test: provision").await.expect("system");
    let tenant = system
        .insert(tenants::ActiveModel {
            id: Set(TenantId::new()),
            name: Set(name.into()),
            created_at: Set(Utc::now()),
        })
        .await
        .expect("tenant");
    let job = system.context_for(tenant.id);
    let user = db
        .scope(&job)
        .insert(users::ActiveModel {
            email: Set(format!("{name}@example.test")),
            name: Set(name.into()),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await
        .expect("user");
    let key = ApiKeyVerifier::issue(&db.scope(&job), user.id, "test")
        .await
        .expect("key");
    let ctx = db
        .verify(&ApiKeyVerifier, key.key)
        .await
        .expect("verify")
        .with_request_id(format!("req-{name}"));
    (ctx, key.id)
}

fn project(name: &str) -> projects::ActiveModel {
    projects::ActiveModel {
        name: Set(name.into()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
}

/// This tenant's events, oldest first.
async fn events(db: &TenantDb, ctx: &TenantContext) -> Vec<audit_events::Model> {
    db.scope(ctx)
        .find::<audit_events::Entity>()
        .order_by_asc(audit_events::Column::Id)
        .all()
        .await
        .expect("events")
}

// Guarantee: each write writes exactly one event with the tenant, actor, action, table, row id and request id
// of the write; bulk statements write one event without a row id; a write that changes nothing writes none.
common::backend_test!(every_write_writes_one_event, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let (ctx, key_id) = tenant(&db, "acme").await;
    let scope = db.scope(&ctx);
    let before = events(&db, &ctx).await.len();
    let p = scope.insert(project("Apollo")).await.expect("insert");
    let mut change: projects::ActiveModel = p.clone().into();
    change.name = Set("Apollo 2".into());
    scope.update(change).await.expect("update");
    // No column changed: no write, no event.
    scope
        .update::<projects::ActiveModel>(p.clone().into())
        .await
        .expect("no-op update");
    let task = scope
        .insert(tasks::ActiveModel {
            project_id: Set(p.id),
            title: Set("t".into()),
            done: Set(false),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await
        .expect("task");
    let changed = scope
        .update_many::<tasks::Entity>()
        .col_expr(tasks::Column::Done, Expr::value(true))
        .exec()
        .await
        .expect("update_many");
    assert_eq!(changed, 1);
    // A bulk statement that matches nothing writes no event.
    let none = scope
        .delete_many::<tasks::Entity>()
        .filter(tasks::Column::Title.eq("no such task"))
        .exec()
        .await
        .expect("delete_many nothing");
    assert_eq!(none, 0);
    scope
        .delete_many::<tasks::Entity>()
        .filter(tasks::Column::Id.eq(task.id))
        .exec()
        .await
        .expect("delete_many");
    scope
        .delete::<projects::Entity>(p.id)
        .await
        .expect("delete");

    let got = events(&db, &ctx).await;
    let got = &got[before..];
    let summary: Vec<(&str, &str, Option<Uuid>)> = got
        .iter()
        .map(|e| (e.action.as_str(), e.table_name.as_str(), e.row_id))
        .collect();
    assert_eq!(
        summary,
        [
            ("insert", "projects", Some(p.id)),
            ("update", "projects", Some(p.id)),
            ("insert", "tasks", Some(task.id)),
            ("update_many", "tasks", None),
            ("delete_many", "tasks", None),
            ("delete", "projects", Some(p.id)),
        ]
    );
    for e in got {
        assert_eq!(e.tenant_id, ctx.tenant());
        assert_eq!(e.actor, format!("api_key:{key_id}"));
        assert_eq!(e.request_id, "req-acme");
    }
});

// Guarantee: a write that rolls back leaves no event: a transaction that returns Err, one dropped without
// commit, and a write the database rejects (a cross-tenant reference).
common::backend_test!(rolled_back_writes_leave_no_event, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let (ctx, _) = tenant(&db, "acme").await;
    let (other, _) = tenant(&db, "globex").await;
    let theirs = db
        .scope(&other)
        .insert(project("Theirs"))
        .await
        .expect("theirs");
    let before = events(&db, &ctx).await.len();

    let got: Result<(), Error> = db
        .transaction(&ctx, |tx| {
            Box::pin(async move {
                tx.insert(project("rolled back")).await?;
                Err(Error::Invalid("the caller changed its mind".into()))
            })
        })
        .await;
    assert!(matches!(got, Err(Error::Invalid(_))), "{got:?}");
    {
        let tx = db.begin(&ctx).await.expect("begin");
        tx.scope()
            .insert(project("dropped"))
            .await
            .expect("insert in tx");
        // dropped without commit
    }
    let rejected = db
        .scope(&ctx)
        .insert(tasks::ActiveModel {
            project_id: Set(theirs.id),
            title: Set("x".into()),
            done: Set(false),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await;
    assert!(matches!(rejected, Err(Error::NotFound)), "{rejected:?}");

    assert_eq!(
        events(&db, &ctx).await.len(),
        before,
        "no event for rolled-back writes"
    );
    assert_eq!(
        db.scope(&ctx)
            .find::<projects::Entity>()
            .count()
            .await
            .expect("count"),
        0,
        "and no rows"
    );
    // A committed transaction writes its events with it.
    db.transaction(&ctx, |tx| {
        Box::pin(async move {
            tx.insert(project("one")).await?;
            tx.insert(project("two")).await?;
            Ok::<_, Error>(())
        })
    })
    .await
    .expect("commit");
    assert_eq!(events(&db, &ctx).await.len(), before + 2);
});

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
common::backend_test!(
    operations_have_spans_without_row_data,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (ctx, _) = tenant(&db, "acme").await;
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
        let log = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
        let spans: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("tenant_scope.op") && l.contains("close"))
            .collect();
        let tenant = ctx.tenant().to_string();
        for op in ["op=\"insert\"", "op=\"find_one\""] {
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

// Guarantee: on PostgreSQL the audit log is append-only for the application role (migration 000008): with its
// own tenant set, it cannot UPDATE or DELETE an event, so neither a bug nor an injected statement can rewrite
// history; the library's inserts still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_is_append_only_for_the_app_role() {
    common::run(common::Backend::Postgres, |t: TestDb| async move {
        use sea_orm::{ConnectionTrait, TransactionTrait};
        let db = t.tenant_db().await;
        let (ctx, _) = tenant(&db, "acme").await;
        db.scope(&ctx)
            .insert(project("Apollo"))
            .await
            .expect("an audited write");
        assert!(!events(&db, &ctx).await.is_empty());
        let app = common::connect(&t.app_url())
            .await
            .expect("connect as the app role");
        for sql in [
            "UPDATE audit_events SET action = 'nothing happened'",
            "DELETE FROM audit_events",
        ] {
            let tx = app.begin().await.expect("begin");
            tx.execute_unprepared(&format!(
                "SELECT set_config('tenant_scope.tenant_id', '{}', true)",
                ctx.tenant()
            ))
            .await
            .expect("set tenant");
            let got = tx.execute_unprepared(sql).await;
            let message = format!("{got:?}");
            assert!(
                message.contains("permission denied"),
                "{sql} as the app role: {message}"
            );
            drop(tx);
        }
        let _ = app.close().await;
        assert!(
            events(&db, &ctx)
                .await
                .iter()
                .all(|e| e.action != "nothing happened"),
            "events unchanged"
        );
    })
    .await;
}
