//! The test kit over HTTP (`tenant_scope::testing::HttpCheck`), on every backend: the reference
//! service passes it on all its routes, and the kit catches each planted leak: a handler that
//! answers 403 for another tenant's row (found through `db.system`), and one whose error names
//! another tenant's row.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use entity::tasks;
use sea_orm::ColumnTrait;
use serde_json::{Value, json};
use tenant_scope::http::{ApiError, Tenant, TenantResolver, request_id_layer};
use tenant_scope::testing::{FailureKind, HttpCheck, Route, World};
use tenant_scope::{Error, TenantDb};
use test_support::TestDb;
use uuid::Uuid;

/// The demo's two tenants, each with a project, a task and a comment; and their admin keys.
async fn world(db: &TenantDb) -> (World, Vec<String>) {
    let seed = reference_service::seed_demo(db).await.expect("seed");
    reference_service::seed_demo_tasks(db, &seed)
        .await
        .expect("tasks and comments");
    let world = World::of(db, &[seed.acme.id, seed.globex.id])
        .await
        .expect("world");
    let keys = [&seed.acme, &seed.globex].map(|t| format!("Bearer {}", t.admin_key.key));
    (world, keys.to_vec())
}

/// `check` with each tenant's admin key.
fn with_keys<S>(mut check: HttpCheck<S>, world: &World, keys: &[String]) -> HttpCheck<S> {
    for (ctx, key) in world.tenants().iter().zip(keys) {
        check = check.credentials(ctx.tenant(), [("authorization", key.as_str())]);
    }
    check
}

test_support::backend_test!(the_reference_service_passes, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let (world, keys) = world(&db).await;
    let project = "/projects/{projects}";
    let task = "/projects/{projects}/tasks/{tasks}";
    let comment = "/projects/{projects}/tasks/{tasks}/comments/{comments}";
    let check = HttpCheck::new(&world, reference_service::router(db.clone()))
        .route(Route::get(project))
        .route(Route::patch(project).json(|_| json!({"name": "renamed"})))
        .route(Route::get(&format!("{project}/tasks")))
        .route(Route::post(&format!("{project}/tasks")).json_with(
            ["users"],
            |ids| json!({"title": "new task", "assignee_id": ids.get("users")}),
        ))
        .route(Route::get(task))
        .route(Route::patch(task).json(|_| json!({"done": true})))
        .route(Route::get(&format!("{task}/comments")))
        .route(Route::post(&format!("{task}/comments")).json(|_| json!({"body": "hi"})))
        .route(Route::get(comment))
        .route(Route::patch(comment).json(|_| json!({"body": "edited"})))
        .route(Route::delete(comment))
        .route(Route::delete(task))
        .route(Route::delete(project));
    let coverage = with_keys(check, &world, &keys)
        .run()
        .await
        .unwrap_or_else(|f| panic!("{}: {f}", t.backend()));
    assert_eq!(coverage.foreign.len(), 13, "{coverage:?}");
});

#[derive(Clone)]
struct Leaky {
    resolver: TenantResolver,
}

impl axum::extract::FromRef<Leaky> for TenantResolver {
    fn from_ref(state: &Leaky) -> Self {
        state.resolver.clone()
    }
}

/// The planted leak: a task another tenant has, looked up through system access.
async fn theirs(db: &TenantDb, id: Uuid) -> Result<Option<tasks::Model>, Error> {
    let system = db.system("a planted leak").await?;
    system
        .find::<tasks::Entity>()
        .filter(tasks::Column::Id.eq(id))
        .one()
        .await
}

/// 403 for another tenant's task, 404 for one that never existed.
async fn forbidden_if_theirs(
    State(app): State<Leaky>,
    Tenant(ctx): Tenant,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let db = app.resolver.db();
    match db.scope(&ctx).get::<tasks::Entity>(id).await {
        Err(Error::NotFound) if theirs(db, id).await?.is_some() => Err(Error::Forbidden.into()),
        other => Ok(Json(json!({"title": other?.title}))),
    }
}

/// An error that names another tenant's task.
async fn names_theirs(
    State(app): State<Leaky>,
    Tenant(ctx): Tenant,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let db = app.resolver.db();
    match db.scope(&ctx).get::<tasks::Entity>(id).await {
        Err(Error::NotFound) => match theirs(db, id).await? {
            Some(task) => Err(Error::Invalid(format!("{:?} is not yours", task.title)).into()),
            None => Err(Error::Invalid("no such task".into()).into()),
        },
        other => Ok(Json(json!({"title": other?.title}))),
    }
}

test_support::backend_test!(the_kit_catches_planted_leaks, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let (world, keys) = world(&db).await;
    let router = Router::new()
        .route("/forbidden/{id}", get(forbidden_if_theirs))
        .route("/named/{id}", get(names_theirs))
        .with_state(Leaky {
            resolver: TenantResolver::new(db.clone()),
        })
        .layer(request_id_layer());
    for (path, what) in [
        ("/forbidden/{tasks}", "403 Forbidden"),
        ("/named/{tasks}", "launch plan"),
    ] {
        let check = HttpCheck::new(&world, router.clone()).route(Route::get(path));
        let failure = with_keys(check, &world, &keys)
            .run()
            .await
            .expect_err("a planted leak");
        assert_eq!(failure.kind(), &FailureKind::Leak, "{path}: {failure}");
        assert!(failure.message().contains(what), "{path}: {failure}");
        // Shrunk to one request.
        assert_eq!(failure.message().matches("Req {").count(), 1, "{failure}");
    }
});
