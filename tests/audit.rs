//! Audit events, failed transactions and who passes permission checks.
//!
//! Every write through a scope writes one `audit_events` row (tenant, actor, action, table, row id, request id,
//! time) on the same connection, in the same transaction: a write that rolls back or fails leaves no event.
//! (The operation spans are tested in tests/spans.rs, a binary of their own: `tracing` caches per call site
//! whether anyone listens, and tests on other threads would race with the capture.)

use chrono::Utc;
use entity::{audit_events, projects, tasks};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait};
use tenant_scope::{Error, TenantContext, TenantDb, TenantId};
use test_support::TestDb;
use uuid::Uuid;

/// A tenant with a user, acting through an API key of that user (actor `api_key:<id>`), with the request
/// id `req-<name>`.
async fn tenant(db: &TenantDb, name: &str) -> (TenantContext, Uuid) {
    let tenant = test_support::keyed_tenant(db, name, &[]).await;
    (
        tenant.ctx.with_request_id(format!("req-{name}")),
        tenant.key.id,
    )
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
test_support::backend_test!(every_write_writes_one_event, |t: TestDb| async move {
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
test_support::backend_test!(rolled_back_writes_leave_no_event, |t: TestDb| async move {
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

// Guarantee: on PostgreSQL the audit log is append-only for the application role (migration 000008): with its
// own tenant set, it cannot UPDATE or DELETE an event, so neither a bug nor an injected statement can rewrite
// history; the library's inserts still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_log_is_append_only_for_the_app_role() {
    test_support::run(test_support::Backend::Postgres, |t: TestDb| async move {
        use sea_orm::{ConnectionTrait, TransactionTrait};
        let db = t.tenant_db().await;
        let (ctx, _) = tenant(&db, "acme").await;
        db.scope(&ctx)
            .insert(project("Apollo"))
            .await
            .expect("an audited write");
        assert!(!events(&db, &ctx).await.is_empty());
        let app = test_support::connect(&t.app_url())
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

// Guarantee: a transaction in which a statement failed is never committed, on every backend alike. PostgreSQL
// aborts such a transaction (and a COMMIT would silently roll it back); SQLite and MySQL would commit the
// statements around the failure, a write possibly without its audit event. The library refuses the commit,
// rolls back, and says so, even when the closure swallowed the error and returned Ok.
test_support::backend_test!(
    a_transaction_with_a_failed_statement_is_not_committed,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (ctx, _) = tenant(&db, "acme").await;
        let scope = db.scope(&ctx);
        scope.insert(project("Taken")).await.expect("a project");
        let events_before = events(&db, &ctx).await.len();
        let got: Result<(), Error> = db
            .transaction(&ctx, |tx| {
                Box::pin(async move {
                    tx.insert(project("Kept?")).await?;
                    // A unique violation, handled by the caller as "exists, fine".
                    let dup = tx.insert(project("Taken")).await;
                    assert!(matches!(dup, Err(Error::Conflict)), "{dup:?}");
                    Ok(())
                })
            })
            .await;
        assert!(matches!(got, Err(Error::Invalid(_))), "{got:?}");
        let names: Vec<String> = scope
            .find::<projects::Entity>()
            .all()
            .await
            .expect("projects")
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(
            names,
            ["Taken"],
            "nothing of the failed transaction was committed"
        );
        assert_eq!(events(&db, &ctx).await.len(), events_before, "and no event");
        // The same without a failure commits.
        db.transaction(&ctx, |tx| {
            Box::pin(async move { tx.insert(project("Kept")).await.map(drop) })
        })
        .await
        .expect("commit");
        assert_eq!(
            scope
                .find::<projects::Entity>()
                .count()
                .await
                .expect("count"),
            2
        );
    }
);

/// A verifier of a service's own that reports its callers as `Actor::System` (say, an identity provider's
/// service accounts). That is its right; it must not make them pass every permission check.
struct ServiceAccounts;

#[async_trait::async_trait]
impl tenant_scope::TenantVerifier for ServiceAccounts {
    type Claim = TenantId;

    async fn verify(
        &self,
        db: &tenant_scope::VerifierDb<'_>,
        tenant: TenantId,
    ) -> tenant_scope::Result<tenant_scope::Verified> {
        Ok(tenant_scope::Verified::custom(
            db,
            tenant,
            tenant_scope::Actor::System {
                reason: "service account".into(),
            },
            Vec::new(),
        ))
    }
}

// Guarantee: only a context made by audited system access (`system.context_for`) passes every permission
// check; a verifier that reports `Actor::System` gets the permissions it verified, nothing more.
test_support::backend_test!(
    only_system_access_passes_every_check,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (ctx, _) = tenant(&db, "acme").await;
        let claimed = db
            .verify(&ServiceAccounts, ctx.tenant())
            .await
            .expect("verified");
        assert!(matches!(
            claimed.actor(),
            tenant_scope::Actor::System { .. }
        ));
        assert!(matches!(
            claimed.require("projects.write"),
            Err(Error::Forbidden)
        ));
        let system = db.system("test: a job").await.expect("system");
        let job = system.context_for(ctx.tenant());
        job.require("projects.write").expect("system access passes");
    }
);
