//! The reference service: its router, its handlers and the demo seed.
//!
//! A library crate, so that `examples/service.rs` (`cargo run --example service`) serves it and the
//! tests (tests/service.rs, tests/proptest_http.rs) drive [`router`] in process.
//!
//! Every handler reaches the database the same way:
//!
//! 1. the [`Tenant`] extractor verifies the caller (API key) and yields its `TenantContext`;
//! 2. `db.scope(&ctx)` is the only handle the handler gets;
//! 3. an action on an existing row starts with `scope.authorize::<E>(id, "<table>.read|write")`:
//!    404 if the row is not in the caller's tenant (missing, or another tenant's), and only then 403
//!    without the permission. A list or create under a parent authorizes the parent with the
//!    child's permission (`authorize::<projects::Entity>(p, "tasks.write")`); one on no row (the
//!    projects) checks `ctx.require(..)`.
//!
//! A row addressed under a parent it does not belong to (`/projects/A/tasks/T` with `T` in project
//! `B`) is 404, like a missing row, once the permission is checked (docs/http.md has the matrix).

#![forbid(unsafe_code)]

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use entity::{
    comments, permissions, projects, role_permissions, roles, tasks, tenants, user_roles, users,
};
use sea_orm::{ActiveValue::Set, ColumnTrait, IntoActiveModel, Select};
use serde::{Deserialize, Deserializer, Serialize};
use tenant_scope::http::{
    ApiError, RateLimit, RequestId, Tenant, TenantRateLimitLayer, TenantResolver, request_id_layer,
};
use tenant_scope::{
    API_KEYS_WRITE, Actor, ApiKeyVerifier, Error, IssuedKey, Scoped, SystemDb, TenantContext,
    TenantDb, TenantId, TenantScope, TenantScoped,
};
use uuid::Uuid;

/// The largest request body accepted; a larger one is 413.
pub const BODY_LIMIT: usize = 64 * 1024;
/// `per_page` when the query string does not say.
pub const DEFAULT_PER_PAGE: u64 = 20;
/// The largest `per_page`: a larger one is capped to it.
pub const MAX_PER_PAGE: u64 = 100;
/// The longest name, title or comment body, in characters.
const MAX_NAME: usize = 200;
const MAX_BODY: usize = 10_000;

/// The permission codes the service checks, with their descriptions (seeded into `permissions`).
pub const PERMISSIONS: [(&str, &str); 7] = [
    ("projects.read", "list and read projects"),
    ("projects.write", "create, rename and delete projects"),
    ("tasks.read", "list and read tasks"),
    ("tasks.write", "create, change and delete tasks"),
    ("comments.read", "list and read comments"),
    ("comments.write", "write, edit and delete comments"),
    (API_KEYS_WRITE, "issue and revoke API keys"),
];

type ApiResult<T> = Result<T, ApiError>;

/// The router's state. `Tenant` finds its resolver through `FromRef`.
#[derive(Clone, Debug)]
pub struct AppState {
    resolver: TenantResolver,
}

impl FromRef<AppState> for TenantResolver {
    fn from_ref(state: &AppState) -> Self {
        state.resolver.clone()
    }
}

impl AppState {
    fn db(&self) -> &TenantDb {
        self.resolver.db()
    }
}

/// The service: every route, the body limit, and `request_id_layer` outermost (request ids, and
/// every error, the extractors' rejections included, as `{"error":{"code","message","request_id"}}`).
pub fn router(db: TenantDb) -> Router {
    router_with(db, LIST_LIMIT)
}

/// The per-tenant rate limit of the listing routes (the costly ones: a page of rows and a count):
/// generous for a person, a ceiling for a runaway script.
pub const LIST_LIMIT: RateLimit = RateLimit::per_second(100).burst(200);

/// [`router`] with `list_limit` on the listing routes.
pub fn router_with(db: TenantDb, list_limit: RateLimit) -> Router {
    let resolver = TenantResolver::new(db).tenant_header(true);
    let state = AppState {
        resolver: resolver.clone(),
    };
    let listings = Router::new()
        .route("/projects", get(list_projects))
        .route("/projects/{project_id}/tasks", get(list_tasks))
        .route(
            "/projects/{project_id}/tasks/{task_id}/comments",
            get(list_comments),
        )
        .route_layer(TenantRateLimitLayer::new(resolver, list_limit));
    Router::new()
        .merge(listings)
        .route("/projects", axum::routing::post(create_project))
        .route(
            "/projects/{project_id}",
            get(get_project)
                .patch(update_project)
                .delete(delete_project),
        )
        .route(
            "/projects/{project_id}/tasks",
            axum::routing::post(create_task),
        )
        .route(
            "/projects/{project_id}/tasks/{task_id}",
            get(get_task).patch(update_task).delete(delete_task),
        )
        .route(
            "/projects/{project_id}/tasks/{task_id}/comments",
            axum::routing::post(create_comment),
        )
        .route(
            "/projects/{project_id}/tasks/{task_id}/comments/{comment_id}",
            get(get_comment)
                .patch(update_comment)
                .delete(delete_comment),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(access_log))
        .with_state(state)
        .layer(request_id_layer())
}

/// One INFO line per request (target `service`): method, path, status, time, request id. Never a
/// header, a query string or a body (API keys, user data).
async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.as_str().to_owned())
        .unwrap_or_default();
    let response = next.run(request).await;
    tracing::info!(
        target: "service",
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        request_id,
        "request"
    );
    response
}

// ---------------------------------------------------------------------------------------------
// Pagination

/// `?page=0&per_page=20`: `page` is zero-based, `per_page` is capped at [`MAX_PER_PAGE`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    #[serde(default)]
    page: u64,
    #[serde(default = "default_per_page")]
    per_page: u64,
}

fn default_per_page() -> u64 {
    DEFAULT_PER_PAGE
}

/// One page of a list, and how many rows the whole list has.
#[derive(Debug, Serialize, Deserialize)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// The page's number, from 0.
    pub page: u64,
    /// Rows per page.
    pub per_page: u64,
    /// Rows in the whole list.
    pub total: u64,
}

/// A page of a scoped query, ordered by id (UUIDv7: creation order).
async fn page_of<E>(
    query: Scoped<'_, Select<E>>,
    params: PageParams,
) -> ApiResult<Json<Page<E::Model>>>
where
    E: TenantScoped,
    E::Model: Sync,
{
    if params.per_page == 0 {
        return Err(Error::Invalid("per_page must be at least 1".into()).into());
    }
    let per_page = params.per_page.min(MAX_PER_PAGE);
    let pages = query.order_by_asc(E::id_column()).paginate(per_page);
    let total = pages.num_items_and_pages().await?.number_of_items;
    let items = pages.fetch_page(params.page).await?;
    Ok(Json(Page {
        items,
        page: params.page,
        per_page,
        total,
    }))
}

// ---------------------------------------------------------------------------------------------
// Request bodies: unknown fields are refused (a typo is an error, not a silently ignored field).

/// `POST /projects`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    name: String,
}

/// `PATCH /projects/{id}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectChanges {
    name: Option<String>,
}

/// `POST /projects/{id}/tasks`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    title: String,
    #[serde(default)]
    done: bool,
    /// A user of the caller's tenant; any other id is 404.
    assignee_id: Option<Uuid>,
}

/// `PATCH /projects/{id}/tasks/{id}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskChanges {
    title: Option<String>,
    done: Option<bool>,
    /// Absent: unchanged; `null`: unassigned; an id: a user of the caller's tenant (else 404).
    #[serde(default, deserialize_with = "present")]
    assignee_id: Option<Option<Uuid>>,
    /// Moves the task to another project of the caller's tenant (else 404).
    project_id: Option<Uuid>,
}

/// `POST /projects/{id}/tasks/{id}/comments`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    body: String,
}

/// `PATCH /projects/{id}/tasks/{id}/comments/{id}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentChanges {
    body: Option<String>,
}

/// A field that is present, possibly `null` (`Some(None)`), as opposed to absent (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Uuid>>, D::Error> {
    Option::<Uuid>::deserialize(d).map(Some)
}

/// A trimmed, non-empty text of at most `max` characters.
fn text(field: &str, value: String, max: usize) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(Error::Invalid(format!(
            "{field} must be 1 to {max} characters"
        )));
    }
    Ok(value.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Projects

async fn list_projects(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<projects::Model>>> {
    ctx.require("projects.read")?;
    page_of(app.db().scope(&ctx).find::<projects::Entity>(), params).await
}

async fn create_project(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Json(body): Json<NewProject>,
) -> ApiResult<(StatusCode, Json<projects::Model>)> {
    ctx.require("projects.write")?;
    let project = app
        .db()
        .scope(&ctx)
        .insert(projects::ActiveModel {
            name: Set(text("name", body.name, MAX_NAME)?),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await?;
    Ok((StatusCode::CREATED, Json(project)))
}

async fn get_project(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<projects::Model>> {
    let scope = app.db().scope(&ctx);
    Ok(Json(
        scope
            .authorize::<projects::Entity>(id, "projects.read")
            .await?,
    ))
}

async fn update_project(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path(id): Path<Uuid>,
    Json(body): Json<ProjectChanges>,
) -> ApiResult<Json<projects::Model>> {
    let scope = app.db().scope(&ctx);
    let project = scope
        .authorize::<projects::Entity>(id, "projects.write")
        .await?;
    let mut am = project.into_active_model();
    if let Some(name) = body.name {
        am.name = Set(text("name", name, MAX_NAME)?);
    }
    Ok(Json(scope.update(am).await?))
}

/// Deletes the project with its tasks and their comments (`ON DELETE CASCADE`).
async fn delete_project(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    let scope = app.db().scope(&ctx);
    scope
        .authorize::<projects::Entity>(id, "projects.write")
        .await?;
    scope.delete::<projects::Entity>(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Tasks, under a project

/// The task `task_id` of project `project_id`: 404 unless it is in this tenant and in that
/// project, then 403 without `permission`.
async fn task_in(
    scope: &TenantScope<'_>,
    project_id: Uuid,
    task_id: Uuid,
    permission: &str,
) -> Result<tasks::Model, Error> {
    // The whole path is the lookup: 404 unless the task is here *and* under that project; only
    // then the permission (the order of `authorize`, with the parent in the lookup).
    let task = scope.get::<tasks::Entity>(task_id).await?;
    if task.project_id != project_id {
        return Err(Error::NotFound);
    }
    scope.context().require(permission)?;
    Ok(task)
}

async fn list_tasks(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path(project_id): Path<Uuid>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<tasks::Model>>> {
    let scope = app.db().scope(&ctx);
    scope
        .authorize::<projects::Entity>(project_id, "tasks.read")
        .await?;
    let query = scope
        .find::<tasks::Entity>()
        .filter(tasks::Column::ProjectId.eq(project_id));
    page_of(query, params).await
}

async fn create_task(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path(project_id): Path<Uuid>,
    Json(body): Json<NewTask>,
) -> ApiResult<(StatusCode, Json<tasks::Model>)> {
    let scope = app.db().scope(&ctx);
    // Another tenant's project is 404 here, before anything is written. (The composite foreign
    // key `(tenant_id, project_id)` would refuse the row anyway, and also answers 404.)
    scope
        .authorize::<projects::Entity>(project_id, "tasks.write")
        .await?;
    let task = scope
        .insert(tasks::ActiveModel {
            project_id: Set(project_id),
            title: Set(text("title", body.title, MAX_NAME)?),
            done: Set(body.done),
            // Another tenant's user: refused by the composite foreign key -> 404.
            assignee_id: Set(body.assignee_id),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await?;
    Ok((StatusCode::CREATED, Json(task)))
}

async fn get_task(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path((project_id, task_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<tasks::Model>> {
    let scope = app.db().scope(&ctx);
    Ok(Json(
        task_in(&scope, project_id, task_id, "tasks.read").await?,
    ))
}

async fn update_task(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path((project_id, task_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<TaskChanges>,
) -> ApiResult<Json<tasks::Model>> {
    let scope = app.db().scope(&ctx);
    let task = task_in(&scope, project_id, task_id, "tasks.write").await?;
    let mut am = task.into_active_model();
    if let Some(title) = body.title {
        am.title = Set(text("title", title, MAX_NAME)?);
    }
    if let Some(done) = body.done {
        am.done = Set(done);
    }
    // Both references are checked by the composite foreign keys: a project or a user that is not
    // in this tenant is 404, exactly like one that never existed, and nothing is written.
    if let Some(assignee) = body.assignee_id {
        am.assignee_id = Set(assignee);
    }
    if let Some(project) = body.project_id {
        am.project_id = Set(project);
    }
    Ok(Json(scope.update(am).await?))
}

async fn delete_task(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path((project_id, task_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let scope = app.db().scope(&ctx);
    task_in(&scope, project_id, task_id, "tasks.write").await?;
    scope.delete::<tasks::Entity>(task_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Comments, under a task

/// The comment `comment_id` of task `task_id` of project `project_id`: 404 unless it is in this
/// tenant and under both, then 403 without `permission`.
async fn comment_in(
    scope: &TenantScope<'_>,
    (project_id, task_id, comment_id): (Uuid, Uuid, Uuid),
    permission: &str,
) -> Result<comments::Model, Error> {
    // The whole path is the lookup (404), then the permission (403), as in `task_in`.
    let comment = scope.get::<comments::Entity>(comment_id).await?;
    if comment.task_id != task_id
        || scope.get::<tasks::Entity>(task_id).await?.project_id != project_id
    {
        return Err(Error::NotFound);
    }
    scope.context().require(permission)?;
    Ok(comment)
}

/// The user a comment is written by: the API key's user (or the signed-in user).
fn author(ctx: &TenantContext) -> Result<Uuid, Error> {
    match ctx.actor() {
        Actor::ApiKey { user_id, .. } => Ok(*user_id),
        Actor::User(user_id) => Ok(*user_id),
        _ => Err(Error::Invalid("comments are written by a user".into())),
    }
}

async fn list_comments(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path((project_id, task_id)): Path<(Uuid, Uuid)>,
    Query(params): Query<PageParams>,
) -> ApiResult<Json<Page<comments::Model>>> {
    let scope = app.db().scope(&ctx);
    task_in(&scope, project_id, task_id, "comments.read").await?;
    let query = scope
        .find::<comments::Entity>()
        .filter(comments::Column::TaskId.eq(task_id));
    page_of(query, params).await
}

async fn create_comment(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path((project_id, task_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<NewComment>,
) -> ApiResult<(StatusCode, Json<comments::Model>)> {
    let scope = app.db().scope(&ctx);
    task_in(&scope, project_id, task_id, "comments.write").await?;
    let comment = scope
        .insert(comments::ActiveModel {
            task_id: Set(task_id),
            author_id: Set(author(&ctx)?),
            body: Set(text("body", body.body, MAX_BODY)?),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await?;
    Ok((StatusCode::CREATED, Json(comment)))
}

async fn get_comment(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path(ids): Path<(Uuid, Uuid, Uuid)>,
) -> ApiResult<Json<comments::Model>> {
    let scope = app.db().scope(&ctx);
    Ok(Json(comment_in(&scope, ids, "comments.read").await?))
}

async fn update_comment(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path(ids): Path<(Uuid, Uuid, Uuid)>,
    Json(body): Json<CommentChanges>,
) -> ApiResult<Json<comments::Model>> {
    let scope = app.db().scope(&ctx);
    let comment = comment_in(&scope, ids, "comments.write").await?;
    let mut am = comment.into_active_model();
    if let Some(text_) = body.body {
        am.body = Set(text("body", text_, MAX_BODY)?);
    }
    Ok(Json(scope.update(am).await?))
}

async fn delete_comment(
    State(app): State<AppState>,
    Tenant(ctx): Tenant,
    Path(ids): Path<(Uuid, Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    let scope = app.db().scope(&ctx);
    let comment = comment_in(&scope, ids, "comments.write").await?;
    scope.delete::<comments::Entity>(comment.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// The demo seed

/// One seeded tenant: an admin and a viewer (a user, a role and an API key each) and a project.
#[derive(Debug)]
pub struct SeededTenant {
    /// The tenant's name (`Acme`, `Globex`).
    pub name: String,
    /// The tenant's id.
    pub id: TenantId,
    /// Holds the role "admin": every permission.
    pub admin_user: Uuid,
    /// Holds the role "viewer": the `*.read` permissions.
    pub viewer_user: Uuid,
    /// The admin user's key. `IssuedKey`'s `Debug` hides the secret; `.key` is the key.
    pub admin_key: IssuedKey,
    /// The viewer user's key.
    pub viewer_key: IssuedKey,
    /// The tenant's project.
    pub project_id: Uuid,
}

/// The two seeded tenants.
#[derive(Debug)]
pub struct Seed {
    /// The tenant Acme.
    pub acme: SeededTenant,
    /// The tenant Globex.
    pub globex: SeededTenant,
}

/// Seeds the permissions (those missing), and the tenants Acme and Globex, through one audited
/// system access. Fails with `Error::Conflict` if a tenant of that name already exists.
pub async fn seed_demo(db: &TenantDb) -> Result<Seed, Error> {
    let system = db
        .system("service: seed the demo tenants Acme and Globex")
        .await?;
    let permissions = ensure_permissions(&system).await?;
    let acme = seed_tenant(db, &system, &permissions, "Acme").await?;
    let globex = seed_tenant(db, &system, &permissions, "Globex").await?;
    Ok(Seed { acme, globex })
}

/// Gives each tenant of `seed` a task in its project (`"<name> launch plan"`) and a comment on it
/// by its admin, through one audited system access: the demo with a row in every table of the
/// work (for tests that need every tenant-owned table filled, such as the test kit's).
pub async fn seed_demo_tasks(db: &TenantDb, seed: &Seed) -> Result<(), Error> {
    let system = db
        .system("service: a task and a comment per demo tenant")
        .await?;
    for tenant in [&seed.acme, &seed.globex] {
        let ctx = system.context_for(tenant.id);
        let scope = db.scope(&ctx);
        let task = scope
            .insert(tasks::ActiveModel {
                project_id: Set(tenant.project_id),
                title: Set(format!("{} launch plan", tenant.name)),
                done: Set(false),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await?;
        scope
            .insert(comments::ActiveModel {
                task_id: Set(task.id),
                author_id: Set(tenant.admin_user),
                body: Set(format!("{} comment", tenant.name)),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await?;
    }
    Ok(())
}

/// The rows of [`PERMISSIONS`], inserting those that are missing.
async fn ensure_permissions(system: &SystemDb<'_>) -> Result<Vec<permissions::Model>, Error> {
    let codes = PERMISSIONS.map(|(code, _)| code);
    let existing = system
        .find::<permissions::Entity>()
        .filter(permissions::Column::Code.is_in(codes))
        .all()
        .await?;
    for (code, description) in PERMISSIONS {
        if !existing.iter().any(|p| p.code == code) {
            system
                .insert(permissions::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    code: Set(code.to_owned()),
                    description: Set(description.to_owned()),
                })
                .await?;
        }
    }
    system
        .find::<permissions::Entity>()
        .filter(permissions::Column::Code.is_in(codes))
        .all()
        .await
}

/// A tenant with its roles, users, keys and a project, in one transaction of that tenant.
async fn seed_tenant(
    db: &TenantDb,
    system: &SystemDb<'_>,
    permissions: &[permissions::Model],
    name: &str,
) -> Result<SeededTenant, Error> {
    let tenant = system
        .insert(tenants::ActiveModel {
            id: Set(TenantId::new()),
            name: Set(name.to_owned()),
            created_at: Set(Utc::now()),
            // No slug (the subdomain name): requests name tenants by their keys.
            ..Default::default()
        })
        .await?;
    // A context for this one tenant (actor: system, with the reason); it passes every `require`.
    let ctx = system.context_for(tenant.id);
    let tx = db.begin(&ctx).await?;
    let scope = tx.scope();
    let domain = format!("{}.test", name.to_lowercase());
    let admin = seed_member(&scope, "admin", permissions, &domain, |_| true).await?;
    let viewer = seed_member(&scope, "viewer", permissions, &domain, |code| {
        code.ends_with(".read")
    })
    .await?;
    let project = scope
        .insert(projects::ActiveModel {
            name: Set("Roadmap".into()),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await?;
    tx.commit().await?;
    Ok(SeededTenant {
        name: name.to_owned(),
        id: tenant.id,
        admin_user: admin.0,
        viewer_user: viewer.0,
        admin_key: admin.1,
        viewer_key: viewer.1,
        project_id: project.id,
    })
}

/// A role named `role` with the permissions `grant` picks, a user `<role>@<domain>` holding it, and
/// an API key of that user.
async fn seed_member(
    scope: &TenantScope<'_>,
    role: &str,
    permissions: &[permissions::Model],
    domain: &str,
    grant: impl Fn(&str) -> bool,
) -> Result<(Uuid, IssuedKey), Error> {
    let now = Utc::now();
    let role_row = scope
        .insert(roles::ActiveModel {
            name: Set(role.to_owned()),
            created_at: Set(now),
            ..Default::default()
        })
        .await?;
    for permission in permissions.iter().filter(|p| grant(&p.code)) {
        scope
            .insert(role_permissions::ActiveModel {
                role_id: Set(role_row.id),
                permission_id: Set(permission.id),
                ..Default::default()
            })
            .await?;
    }
    let user = scope
        .insert(users::ActiveModel {
            email: Set(format!("{role}@{domain}")),
            name: Set(format!("{role} of {domain}")),
            created_at: Set(now),
            ..Default::default()
        })
        .await?;
    scope
        .insert(user_roles::ActiveModel {
            user_id: Set(user.id),
            role_id: Set(role_row.id),
            ..Default::default()
        })
        .await?;
    let key = ApiKeyVerifier::issue(scope, user.id, &format!("demo {role} key")).await?;
    Ok((user.id, key))
}
