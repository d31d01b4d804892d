//! Property test of the reference service (examples/service) over HTTP, in process
//! (`tower::ServiceExt::oneshot` on its `Router`, no sockets), on every backend; on PostgreSQL as
//! the unprivileged application role.
//!
//! Random sequences of 1 to 6 requests, each from one of three tenants (Acme and Globex of
//! `reference_service::seed_demo`, and Initech, provisioned here through the library), as one of its actors (the
//! admin key, the viewer key, the admin key naming its own tenant in `X-Tenant-Id`, and sometimes a
//! revoked key, a key with a wrong secret, a malformed key, no key, or the admin key naming another
//! tenant in `X-Tenant-Id`), doing one of the fifteen operations of the service (list with
//! pagination, get, create, update, delete of projects, tasks and comments). Every id a request
//! names (in its path or its body) is drawn from the caller's own rows, other tenants' rows, ids
//! that never existed, or the caller's deleted rows; a nested path names the row's real parents or
//! some other pick. Each request is run against an in-memory model of the service, and:
//!
//! 1. **Another tenant's id reads like an id that never existed.** Every request naming another
//!    tenant's id (in the path, the body or `X-Tenant-Id`) is sent again with each such id replaced
//!    by a fresh one (the *twin*). Both answers must be identical: status, headers (but
//!    `X-Request-Id` and `Content-Length`), and the body with its `request_id` removed.
//! 2. **No response carries another tenant's data.** Every response (headers and body) is scanned
//!    for every id of every other tenant (tenant ids, rows, users, roles, keys; hyphenated and
//!    simple forms), and for the other tenants' name markers: every name, title and comment the
//!    generator writes for tenant `acme` starts with `acme#` (and so on), except a few shared
//!    names (`shared#..`), which exist to check that a project name used by one tenant is free in
//!    another. Ids the request itself named are not counted (an echo tells the caller nothing).
//! 3. **403 only for the caller's own rows.** A 403 is answered only to the viewer (the only actor
//!    without every permission), only with the code `forbidden`, and only when every id of the
//!    path is a row of the caller's tenant.
//! 4. **The answers are the model's.** Status codes match exactly (200, 201, 204, 400, 401, 403,
//!    404, 409, 422), as do the bodies: the rows, the pages (`items`, `page`, `per_page`,
//!    `total`), the error bodies `{"error":{"code","message","request_id"}}` with the request's own
//!    id (also in `X-Request-Id`), and the created rows (with the ids and timestamps the service
//!    chose, which must be new).
//! 5. **The database is the model.** After each case, every tenant's projects, tasks and comments,
//!    read as the owner (`t.db().raw()`, not through the library), equal the model's, field for
//!    field.
//! 6. **Every successful write is audited once.** After each case, the `audit_events` rows carrying
//!    the case's request ids are exactly one per successful write that changed something (tenant,
//!    `api_key:<id>` actor, action, table, row id), none for reads, refusals and failures, and the
//!    table holds no other new row (but one per write of the bounds' upkeep below, actor `system`).
//!
//! One database per backend, and a persistent world: the three tenants, their actors and their rows
//! live across cases (the model too), so every case meets the rows the earlier cases left. Before a
//! case, each tenant is kept between 2 and 10 projects, 2 and 16 tasks, 2 and 16 comments (oldest
//! rows deleted, or rows added, through the library with a system context; audited like any other
//! write). After a case, whatever its verdict, the model takes the database's rows, so that the
//! next case (or the next shrinking step) starts from what the database really holds.
//!
//! 1,000 cases per backend by default; `PROPTEST_CASES` changes it (under `CI=true`, never below
//! 1,000), `PROPTEST_RNG_SEED` replays a run (the seed is printed on failure), and
//! `TENANT_SCOPE_PROPTEST_STATS=1` prints how often each operation got each status. A failure is
//! shrunk to a minimal request sequence (ids are picked by kind and position, so the sequence stays
//! meaningful in a later state) and reported with a trace of the requests and their answers, ids
//! replaced by names such as `acme.p3` or `missing7`.
//!
//! Run with: `cargo test --test proptest_http` (PostgreSQL and MySQL when
//! `TENANT_SCOPE_TEST_POSTGRES_URL` / `TENANT_SCOPE_TEST_MYSQL_URL` are set).

// The harness serves every test binary; this one uses the blocking entry points only.
#[allow(unused_macros, unused_imports)]
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, header};
use chrono::Utc;
use entity::{
    api_keys, audit_events, comments, permissions, projects, role_permissions, roles, tasks,
    user_roles, users,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tenant_scope::{ApiKeyVerifier, Error, SystemDb, TenantContext, TenantDb, TenantId};
use test_support::{BlockingTestDb, say};
use tower::ServiceExt;
use uuid::Uuid;

/// Cases per backend unless `PROPTEST_CASES` says otherwise; also the least under `CI=true`.
const DEFAULT_CASES: u32 = 1_000;
/// The tenants' names in the seed, and the markers of their generated texts.
const LABELS: [&str; 3] = ["acme", "globex", "initech"];
/// Bounds kept before each case, per tenant.
const MAX_PROJECTS: usize = 10;
const MAX_TASKS: usize = 16;
const MAX_COMMENTS: usize = 16;
const MIN_ROWS: usize = 2;
/// Deleted rows remembered per tenant and kind (candidates for `Pick::Deleted`).
const GONE_KEPT: usize = 12;
/// The service's limits on texts (examples/service/app.rs).
const MAX_NAME: usize = 200;
const MAX_BODY: usize = 10_000;

// ---------------------------------------------------------------------------------------------
// The generator: abstract steps, resolved against the model when they run.

/// Which row an id names, by kind and position (modulo the candidates when the step runs).
#[derive(Clone, Copy, Debug)]
enum Pick {
    /// A row of the caller's tenant.
    Own(usize),
    /// A row of another tenant.
    Other(usize),
    /// An id that never existed.
    Missing,
    /// A row of the caller's tenant that was deleted (an id that never existed if none was).
    Deleted(usize),
}

/// The parent a nested path names.
#[derive(Clone, Copy, Debug)]
enum Under {
    /// The row's real parent (for an id that never existed: the caller's first one).
    Real,
    /// Another pick, possibly not the parent.
    Other(Pick),
}

/// A user named in a body (a task's assignee).
#[derive(Clone, Copy, Debug)]
enum UserPick {
    Admin,
    Viewer,
    Other(usize),
    Missing,
}

/// A tenant named in a body (`tenant_id`, a field no request body has).
#[derive(Clone, Copy, Debug)]
enum TenantRef {
    Own,
    Other(usize),
}

/// A name, title or comment text.
#[derive(Clone, Copy, Debug)]
enum Text {
    /// `<tenant>#<kind><n>`: distinctive per tenant (scanned for in other tenants' answers).
    Distinct(u8),
    /// `shared#<kind><n>`: the same text in every tenant.
    Shared(u8),
    /// A distinct text with blanks around it (stored trimmed).
    Padded(u8),
    /// Only blanks: 400.
    Blank,
    /// Longer than the limit: 400.
    TooLong,
}

/// `?page=&per_page=`, each present or not.
#[derive(Clone, Copy, Debug)]
struct PageQ {
    page: Option<u64>,
    per_page: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct TaskAt {
    task: Pick,
    project: Under,
}

#[derive(Clone, Copy, Debug)]
struct CommentAt {
    comment: Pick,
    task: Under,
    project: Under,
}

#[derive(Clone, Debug)]
enum Op {
    ListProjects(PageQ),
    CreateProject {
        name: Text,
        tenant_field: Option<TenantRef>,
    },
    GetProject(Pick),
    UpdateProject(Pick, Option<Text>),
    DeleteProject(Pick),
    ListTasks(Pick, PageQ),
    CreateTask {
        project: Pick,
        title: Text,
        done: Option<bool>,
        assignee: Option<UserPick>,
    },
    GetTask(TaskAt),
    UpdateTask {
        at: TaskAt,
        title: Option<Text>,
        done: Option<bool>,
        assignee: Option<Option<UserPick>>,
        move_to: Option<Pick>,
        tenant_field: Option<TenantRef>,
    },
    DeleteTask(TaskAt),
    ListComments(TaskAt, PageQ),
    CreateComment(TaskAt, Text),
    GetComment(CommentAt),
    UpdateComment(CommentAt, Option<Text>),
    DeleteComment(CommentAt),
}

/// Who sends a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    Viewer,
    /// The admin key with `X-Tenant-Id` of its own tenant.
    AdminNamingOwnTenant,
    Revoked,
    WrongSecret,
    Malformed,
    NoKey,
    /// The admin key with `X-Tenant-Id` of another tenant: 401.
    AdminNamingOtherTenant(usize),
}

impl Who {
    fn authenticated(self) -> bool {
        matches!(self, Who::Admin | Who::Viewer | Who::AdminNamingOwnTenant)
    }

    /// The admin holds every permission, the viewer the `*.read` ones.
    fn may(self, permission: &str) -> bool {
        match self {
            Who::Viewer => permission.ends_with(".read"),
            _ => true,
        }
    }
}

#[derive(Clone, Debug)]
struct Step {
    tenant: usize,
    who: Who,
    op: Op,
}

#[derive(Clone, Debug)]
struct Case {
    steps: Vec<Step>,
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        6 => (0..8usize).prop_map(Pick::Own),
        3 => (0..16usize).prop_map(Pick::Other),
        1 => Just(Pick::Missing),
        1 => (0..8usize).prop_map(Pick::Deleted),
    ]
}

fn under() -> impl Strategy<Value = Under> {
    prop_oneof![4 => Just(Under::Real), 1 => pick().prop_map(Under::Other)]
}

fn task_at() -> impl Strategy<Value = TaskAt> {
    (pick(), under()).prop_map(|(task, project)| TaskAt { task, project })
}

fn comment_at() -> impl Strategy<Value = CommentAt> {
    (pick(), under(), under()).prop_map(|(comment, task, project)| CommentAt {
        comment,
        task,
        project,
    })
}

fn text() -> impl Strategy<Value = Text> {
    prop_oneof![
        8 => (0..8u8).prop_map(Text::Distinct),
        2 => (0..3u8).prop_map(Text::Shared),
        1 => (0..8u8).prop_map(Text::Padded),
        1 => Just(Text::Blank),
        1 => Just(Text::TooLong),
    ]
}

fn user_pick() -> impl Strategy<Value = UserPick> {
    prop_oneof![
        3 => Just(UserPick::Admin),
        1 => Just(UserPick::Viewer),
        2 => (0..4usize).prop_map(UserPick::Other),
        1 => Just(UserPick::Missing),
    ]
}

fn tenant_field() -> impl Strategy<Value = Option<TenantRef>> {
    prop_oneof![
        12 => Just(None),
        1 => Just(Some(TenantRef::Own)),
        1 => (0..2usize).prop_map(|n| Some(TenantRef::Other(n))),
    ]
}

fn page_q() -> impl Strategy<Value = PageQ> {
    (
        proptest::option::weighted(0.5, 0..4u64),
        proptest::option::weighted(
            0.6,
            prop_oneof![Just(1u64), Just(2), Just(3), Just(0), Just(150)],
        ),
    )
        .prop_map(|(page, per_page)| PageQ { page, per_page })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => page_q().prop_map(Op::ListProjects).boxed(),
        3 => (text(), tenant_field())
            .prop_map(|(name, tenant_field)| Op::CreateProject { name, tenant_field })
            .boxed(),
        2 => pick().prop_map(Op::GetProject).boxed(),
        2 => (pick(), proptest::option::weighted(0.85, text()))
            .prop_map(|(p, name)| Op::UpdateProject(p, name))
            .boxed(),
        1 => pick().prop_map(Op::DeleteProject).boxed(),
        2 => (pick(), page_q()).prop_map(|(p, q)| Op::ListTasks(p, q)).boxed(),
        3 => (
            pick(),
            text(),
            proptest::option::of(any::<bool>()),
            proptest::option::weighted(0.4, user_pick()),
        )
            .prop_map(|(project, title, done, assignee)| Op::CreateTask {
                project,
                title,
                done,
                assignee,
            })
            .boxed(),
        2 => task_at().prop_map(Op::GetTask).boxed(),
        3 => (
            task_at(),
            proptest::option::weighted(0.4, text()),
            proptest::option::weighted(0.4, any::<bool>()),
            proptest::option::weighted(0.3, proptest::option::weighted(0.7, user_pick())),
            proptest::option::weighted(0.3, pick()),
            tenant_field(),
        )
            .prop_map(|(at, title, done, assignee, move_to, tenant_field)| {
                Op::UpdateTask {
                    at,
                    title,
                    done,
                    assignee,
                    move_to,
                    tenant_field,
                }
            })
            .boxed(),
        1 => task_at().prop_map(Op::DeleteTask).boxed(),
        2 => (task_at(), page_q()).prop_map(|(t, q)| Op::ListComments(t, q)).boxed(),
        3 => (task_at(), text()).prop_map(|(t, b)| Op::CreateComment(t, b)).boxed(),
        2 => comment_at().prop_map(Op::GetComment).boxed(),
        2 => (comment_at(), proptest::option::weighted(0.85, text()))
            .prop_map(|(c, b)| Op::UpdateComment(c, b))
            .boxed(),
        1 => comment_at().prop_map(Op::DeleteComment).boxed(),
    ]
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        8 => Just(Who::Admin),
        5 => Just(Who::Viewer),
        1 => Just(Who::AdminNamingOwnTenant),
        2 => prop_oneof![
            Just(Who::Revoked),
            Just(Who::WrongSecret),
            Just(Who::Malformed),
            Just(Who::NoKey),
            (0..2usize).prop_map(Who::AdminNamingOtherTenant),
        ],
    ]
}

fn case() -> impl Strategy<Value = Case> {
    proptest::collection::vec(
        (0..LABELS.len(), who(), op()).prop_map(|(tenant, who, op)| Step { tenant, who, op }),
        1..=6,
    )
    .prop_map(|steps| Case { steps })
}

// ---------------------------------------------------------------------------------------------
// Concrete actions: what a step resolves to, and its HTTP request.

#[derive(Clone, Debug)]
enum Action {
    ListProjects {
        q: PageQ,
    },
    CreateProject {
        name: String,
        tenant_field: Option<Uuid>,
    },
    GetProject {
        p: Uuid,
    },
    UpdateProject {
        p: Uuid,
        name: Option<String>,
    },
    DeleteProject {
        p: Uuid,
    },
    ListTasks {
        p: Uuid,
        q: PageQ,
    },
    CreateTask {
        p: Uuid,
        title: String,
        done: Option<bool>,
        assignee: Option<Uuid>,
    },
    GetTask {
        p: Uuid,
        t: Uuid,
    },
    UpdateTask {
        p: Uuid,
        t: Uuid,
        title: Option<String>,
        done: Option<bool>,
        assignee: Option<Option<Uuid>>,
        project: Option<Uuid>,
        tenant_field: Option<Uuid>,
    },
    DeleteTask {
        p: Uuid,
        t: Uuid,
    },
    ListComments {
        p: Uuid,
        t: Uuid,
        q: PageQ,
    },
    CreateComment {
        p: Uuid,
        t: Uuid,
        body: String,
    },
    GetComment {
        p: Uuid,
        t: Uuid,
        c: Uuid,
    },
    UpdateComment {
        p: Uuid,
        t: Uuid,
        c: Uuid,
        body: Option<String>,
    },
    DeleteComment {
        p: Uuid,
        t: Uuid,
        c: Uuid,
    },
}

fn query_string(q: &PageQ) -> String {
    let mut parts = Vec::new();
    if let Some(page) = q.page {
        parts.push(format!("page={page}"));
    }
    if let Some(per_page) = q.per_page {
        parts.push(format!("per_page={per_page}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::ListProjects { .. } => "list projects",
            Action::CreateProject { .. } => "create project",
            Action::GetProject { .. } => "get project",
            Action::UpdateProject { .. } => "update project",
            Action::DeleteProject { .. } => "delete project",
            Action::ListTasks { .. } => "list tasks",
            Action::CreateTask { .. } => "create task",
            Action::GetTask { .. } => "get task",
            Action::UpdateTask { .. } => "update task",
            Action::DeleteTask { .. } => "delete task",
            Action::ListComments { .. } => "list comments",
            Action::CreateComment { .. } => "create comment",
            Action::GetComment { .. } => "get comment",
            Action::UpdateComment { .. } => "update comment",
            Action::DeleteComment { .. } => "delete comment",
        }
    }

    /// The ids of the path, outermost first.
    fn path_ids(&self) -> Vec<Uuid> {
        match self {
            Action::ListProjects { .. } | Action::CreateProject { .. } => vec![],
            Action::GetProject { p }
            | Action::UpdateProject { p, .. }
            | Action::DeleteProject { p }
            | Action::ListTasks { p, .. }
            | Action::CreateTask { p, .. } => vec![*p],
            Action::GetTask { p, t }
            | Action::UpdateTask { p, t, .. }
            | Action::DeleteTask { p, t }
            | Action::ListComments { p, t, .. }
            | Action::CreateComment { p, t, .. } => vec![*p, *t],
            Action::GetComment { p, t, c }
            | Action::UpdateComment { p, t, c, .. }
            | Action::DeleteComment { p, t, c } => vec![*p, *t, *c],
        }
    }

    /// The ids of the body.
    fn body_ids(&self) -> Vec<Uuid> {
        match self {
            Action::CreateProject { tenant_field, .. } => tenant_field.iter().copied().collect(),
            Action::CreateTask { assignee, .. } => assignee.iter().copied().collect(),
            Action::UpdateTask {
                assignee,
                project,
                tenant_field,
                ..
            } => assignee
                .iter()
                .flatten()
                .chain(project.iter())
                .chain(tenant_field.iter())
                .copied()
                .collect(),
            _ => vec![],
        }
    }

    /// The same action with every id passed through `f`.
    fn map_ids(&self, f: impl Fn(Uuid) -> Uuid) -> Action {
        let mut a = self.clone();
        match &mut a {
            Action::ListProjects { .. } => {}
            Action::CreateProject { tenant_field, .. } => *tenant_field = tenant_field.map(&f),
            Action::GetProject { p }
            | Action::UpdateProject { p, .. }
            | Action::DeleteProject { p } => *p = f(*p),
            Action::ListTasks { p, .. } => *p = f(*p),
            Action::CreateTask { p, assignee, .. } => {
                *p = f(*p);
                *assignee = assignee.map(&f);
            }
            Action::GetTask { p, t }
            | Action::DeleteTask { p, t }
            | Action::ListComments { p, t, .. }
            | Action::CreateComment { p, t, .. } => {
                *p = f(*p);
                *t = f(*t);
            }
            Action::UpdateTask {
                p,
                t,
                assignee,
                project,
                tenant_field,
                ..
            } => {
                *p = f(*p);
                *t = f(*t);
                *assignee = assignee.map(|a| a.map(&f));
                *project = project.map(&f);
                *tenant_field = tenant_field.map(&f);
            }
            Action::GetComment { p, t, c }
            | Action::UpdateComment { p, t, c, .. }
            | Action::DeleteComment { p, t, c } => {
                *p = f(*p);
                *t = f(*t);
                *c = f(*c);
            }
        }
        a
    }

    /// Method, path and query, and the JSON body.
    fn http(&self) -> (Method, String, Option<Value>) {
        let project = |p: &Uuid| format!("/projects/{p}");
        let task = |p: &Uuid, t: &Uuid| format!("/projects/{p}/tasks/{t}");
        let comment =
            |p: &Uuid, t: &Uuid, c: &Uuid| format!("/projects/{p}/tasks/{t}/comments/{c}");
        match self {
            Action::ListProjects { q } => {
                (Method::GET, format!("/projects{}", query_string(q)), None)
            }
            Action::CreateProject { name, tenant_field } => {
                let mut body = json!({ "name": name });
                if let Some(t) = tenant_field {
                    body["tenant_id"] = json!(t);
                }
                (Method::POST, "/projects".into(), Some(body))
            }
            Action::GetProject { p } => (Method::GET, project(p), None),
            Action::UpdateProject { p, name } => {
                let mut body = json!({});
                if let Some(name) = name {
                    body["name"] = json!(name);
                }
                (Method::PATCH, project(p), Some(body))
            }
            Action::DeleteProject { p } => (Method::DELETE, project(p), None),
            Action::ListTasks { p, q } => (
                Method::GET,
                format!("{}/tasks{}", project(p), query_string(q)),
                None,
            ),
            Action::CreateTask {
                p,
                title,
                done,
                assignee,
            } => {
                let mut body = json!({ "title": title });
                if let Some(done) = done {
                    body["done"] = json!(done);
                }
                if let Some(a) = assignee {
                    body["assignee_id"] = json!(a);
                }
                (Method::POST, format!("{}/tasks", project(p)), Some(body))
            }
            Action::GetTask { p, t } => (Method::GET, task(p, t), None),
            Action::UpdateTask {
                p,
                t,
                title,
                done,
                assignee,
                project: to,
                tenant_field,
            } => {
                let mut body = json!({});
                if let Some(title) = title {
                    body["title"] = json!(title);
                }
                if let Some(done) = done {
                    body["done"] = json!(done);
                }
                if let Some(a) = assignee {
                    body["assignee_id"] = json!(a);
                }
                if let Some(to) = to {
                    body["project_id"] = json!(to);
                }
                if let Some(tenant) = tenant_field {
                    body["tenant_id"] = json!(tenant);
                }
                (Method::PATCH, task(p, t), Some(body))
            }
            Action::DeleteTask { p, t } => (Method::DELETE, task(p, t), None),
            Action::ListComments { p, t, q } => (
                Method::GET,
                format!("{}/comments{}", task(p, t), query_string(q)),
                None,
            ),
            Action::CreateComment { p, t, body } => (
                Method::POST,
                format!("{}/comments", task(p, t)),
                Some(json!({ "body": body })),
            ),
            Action::GetComment { p, t, c } => (Method::GET, comment(p, t, c), None),
            Action::UpdateComment { p, t, c, body } => {
                let mut json = json!({});
                if let Some(body) = body {
                    json["body"] = json!(body);
                }
                (Method::PATCH, comment(p, t, c), Some(json))
            }
            Action::DeleteComment { p, t, c } => (Method::DELETE, comment(p, t, c), None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The model

/// A row of the model.
#[derive(Clone, Debug)]
enum Row {
    Project(projects::Model),
    Task(tasks::Model),
    Comment(comments::Model),
}

/// What the model expects a request to answer.
#[derive(Clone, Debug)]
enum Expect {
    /// An error response; the message is checked unless `None` (422: serde's text).
    Error(u16, &'static str, Option<String>),
    /// 200 with exactly this body.
    Json(Value),
    /// 201 with a new row like this one (its id and `created_at` are the service's).
    Created(Row),
    /// 204, no body.
    NoContent,
}

/// How a successful request changes the model.
#[derive(Clone, Debug)]
enum Effect {
    Nothing,
    Put(Row),
    DropProject(Uuid),
    DropTask(Uuid),
    DropComment(Uuid),
}

#[derive(Clone, Debug)]
struct Prediction {
    expect: Expect,
    effect: Effect,
    /// The audit event of a successful write: action, table (the row id is the effect's).
    audit: Option<(&'static str, &'static str)>,
}

fn code_of(e: &Error) -> &'static str {
    match e {
        Error::NotFound => "not_found",
        Error::Forbidden => "forbidden",
        Error::Conflict => "conflict",
        Error::TenantMismatch => "tenant_mismatch",
        Error::Denied => "unauthorized",
        Error::Invalid(_) => "invalid",
        _ => "internal",
    }
}

impl From<Error> for Prediction {
    fn from(e: Error) -> Self {
        Prediction {
            expect: Expect::Error(e.status(), code_of(&e), Some(e.to_string())),
            effect: Effect::Nothing,
            audit: None,
        }
    }
}

/// The service's text rule: trimmed, 1 to `max` characters.
fn valid_text(field: &str, value: &str, max: usize) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(Error::Invalid(format!(
            "{field} must be 1 to {max} characters"
        )));
    }
    Ok(value.to_owned())
}

fn page_of<T: serde::Serialize>(q: &PageQ, rows: Vec<&T>) -> Result<Prediction, Error> {
    let per_page = q.per_page.unwrap_or(reference_service::DEFAULT_PER_PAGE);
    if per_page == 0 {
        return Err(Error::Invalid("per_page must be at least 1".into()));
    }
    let per_page = per_page.min(reference_service::MAX_PER_PAGE);
    let page = q.page.unwrap_or(0);
    let total = rows.len() as u64;
    let items: Vec<Value> = rows
        .into_iter()
        .skip((page * per_page) as usize)
        .take(per_page as usize)
        .map(to_json)
        .collect();
    Ok(Prediction {
        expect: Expect::Json(json!({
            "items": items, "page": page, "per_page": per_page, "total": total
        })),
        effect: Effect::Nothing,
        audit: None,
    })
}

/// An actor of a tenant: its user and API key.
#[derive(Clone, Debug)]
struct Actor {
    user: Uuid,
    key: String,
    key_id: Uuid,
}

/// One tenant of the world: its actors, and its rows as the model holds them.
#[derive(Debug)]
struct TenantState {
    id: TenantId,
    admin: Actor,
    viewer: Actor,
    revoked_key: String,
    /// The system context that keeps the tenant's rows within bounds.
    system: TenantContext,
    projects: BTreeMap<Uuid, projects::Model>,
    tasks: BTreeMap<Uuid, tasks::Model>,
    comments: BTreeMap<Uuid, comments::Model>,
    gone_projects: Vec<Uuid>,
    gone_tasks: Vec<Uuid>,
    gone_comments: Vec<Uuid>,
}

impl TenantState {
    fn users(&self) -> [Uuid; 2] {
        [self.admin.user, self.viewer.user]
    }

    fn project(&self, p: Uuid) -> Result<&projects::Model, Error> {
        self.projects.get(&p).ok_or(Error::NotFound)
    }

    /// The task at `/projects/{p}/tasks/{t}`: 404 unless it is here and under `p`.
    fn task_at(&self, p: Uuid, t: Uuid) -> Result<&tasks::Model, Error> {
        self.tasks
            .get(&t)
            .filter(|task| task.project_id == p)
            .ok_or(Error::NotFound)
    }

    /// The comment at `/projects/{p}/tasks/{t}/comments/{c}`: 404 unless it is here and under both.
    fn comment_at(&self, p: Uuid, t: Uuid, c: Uuid) -> Result<&comments::Model, Error> {
        self.task_at(p, t)?;
        self.comments
            .get(&c)
            .filter(|comment| comment.task_id == t)
            .ok_or(Error::NotFound)
    }

    fn forget(list: &mut Vec<Uuid>, id: Uuid) {
        list.push(id);
        if list.len() > GONE_KEPT {
            list.remove(0);
        }
    }

    fn drop_comment(&mut self, c: Uuid) {
        if self.comments.remove(&c).is_some() {
            Self::forget(&mut self.gone_comments, c);
        }
    }

    fn drop_task(&mut self, t: Uuid) {
        let children: Vec<Uuid> = (self.comments.values())
            .filter(|c| c.task_id == t)
            .map(|c| c.id)
            .collect();
        for c in children {
            self.drop_comment(c);
        }
        if self.tasks.remove(&t).is_some() {
            Self::forget(&mut self.gone_tasks, t);
        }
    }

    fn drop_project(&mut self, p: Uuid) {
        let children: Vec<Uuid> = (self.tasks.values())
            .filter(|t| t.project_id == p)
            .map(|t| t.id)
            .collect();
        for t in children {
            self.drop_task(t);
        }
        if self.projects.remove(&p).is_some() {
            Self::forget(&mut self.gone_projects, p);
        }
    }

    fn put(&mut self, row: Row) {
        match row {
            Row::Project(p) => {
                self.projects.insert(p.id, p);
            }
            Row::Task(t) => {
                self.tasks.insert(t.id, t);
            }
            Row::Comment(c) => {
                self.comments.insert(c.id, c);
            }
        }
    }

    fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::Nothing => {}
            Effect::Put(row) => self.put(row.clone()),
            Effect::DropProject(p) => self.drop_project(*p),
            Effect::DropTask(t) => self.drop_task(*t),
            Effect::DropComment(c) => self.drop_comment(*c),
        }
    }

    /// The service, as the model sees it: what `who` of this tenant gets for `action`.
    fn predict(&self, who: Who, action: &Action) -> Prediction {
        self.try_predict(who, action)
            .unwrap_or_else(Prediction::from)
    }

    fn try_predict(&self, who: Who, action: &Action) -> Result<Prediction, Error> {
        // The extractors: the caller (401), then the body's shape (422).
        if !who.authenticated() {
            return Err(Error::Denied);
        }
        if matches!(
            action,
            Action::CreateProject {
                tenant_field: Some(_),
                ..
            } | Action::UpdateTask {
                tenant_field: Some(_),
                ..
            }
        ) {
            return Ok(Prediction {
                expect: Expect::Error(422, "invalid", None),
                effect: Effect::Nothing,
                audit: None,
            });
        }
        let need = |permission: &str| {
            if who.may(permission) {
                Ok(())
            } else {
                Err(Error::Forbidden)
            }
        };
        let author = if who == Who::Viewer {
            self.viewer.user
        } else {
            self.admin.user
        };
        let ok = |expect: Expect, effect: Effect, audit: Option<(&'static str, &'static str)>| {
            Ok(Prediction {
                expect,
                effect,
                audit,
            })
        };
        match action {
            Action::ListProjects { q } => {
                need("projects.read")?;
                page_of(q, self.projects.values().collect())
            }
            Action::CreateProject { name, .. } => {
                need("projects.write")?;
                let name = valid_text("name", name, MAX_NAME)?;
                if self.projects.values().any(|p| p.name == name) {
                    return Err(Error::Conflict);
                }
                let row = Row::Project(projects::Model {
                    tenant_id: self.id,
                    id: Uuid::nil(),
                    name,
                    created_at: Utc::now(),
                });
                ok(
                    Expect::Created(row.clone()),
                    Effect::Put(row),
                    Some(("insert", "projects")),
                )
            }
            Action::GetProject { p } => {
                let row = self.project(*p)?;
                need("projects.read")?;
                ok(Expect::Json(to_json(row)), Effect::Nothing, None)
            }
            Action::UpdateProject { p, name } => {
                let mut row = self.project(*p)?.clone();
                need("projects.write")?;
                if let Some(name) = name {
                    let name = valid_text("name", name, MAX_NAME)?;
                    if (self.projects.values()).any(|q| q.id != *p && q.name == name) {
                        return Err(Error::Conflict);
                    }
                    row.name = name;
                }
                let audit = name.is_some().then_some(("update", "projects"));
                ok(
                    Expect::Json(to_json(&row)),
                    Effect::Put(Row::Project(row)),
                    audit,
                )
            }
            Action::DeleteProject { p } => {
                self.project(*p)?;
                need("projects.write")?;
                ok(
                    Expect::NoContent,
                    Effect::DropProject(*p),
                    Some(("delete", "projects")),
                )
            }
            Action::ListTasks { p, q } => {
                self.project(*p)?;
                need("tasks.read")?;
                page_of(
                    q,
                    (self.tasks.values())
                        .filter(|t| t.project_id == *p)
                        .collect(),
                )
            }
            Action::CreateTask {
                p,
                title,
                done,
                assignee,
            } => {
                self.project(*p)?;
                need("tasks.write")?;
                let title = valid_text("title", title, MAX_NAME)?;
                if assignee.is_some_and(|u| !self.users().contains(&u)) {
                    return Err(Error::NotFound);
                }
                let row = Row::Task(tasks::Model {
                    tenant_id: self.id,
                    id: Uuid::nil(),
                    project_id: *p,
                    assignee_id: *assignee,
                    title,
                    done: done.unwrap_or(false),
                    created_at: Utc::now(),
                });
                ok(
                    Expect::Created(row.clone()),
                    Effect::Put(row),
                    Some(("insert", "tasks")),
                )
            }
            Action::GetTask { p, t } => {
                let row = self.task_at(*p, *t)?;
                need("tasks.read")?;
                ok(Expect::Json(to_json(row)), Effect::Nothing, None)
            }
            Action::UpdateTask {
                p,
                t,
                title,
                done,
                assignee,
                project,
                ..
            } => {
                let mut row = self.task_at(*p, *t)?.clone();
                need("tasks.write")?;
                if let Some(title) = title {
                    row.title = valid_text("title", title, MAX_NAME)?;
                }
                if let Some(done) = done {
                    row.done = *done;
                }
                if let Some(assignee) = assignee {
                    if assignee.is_some_and(|u| !self.users().contains(&u)) {
                        return Err(Error::NotFound);
                    }
                    row.assignee_id = *assignee;
                }
                if let Some(project) = project {
                    self.project(*project)?;
                    row.project_id = *project;
                }
                let changed =
                    title.is_some() || done.is_some() || assignee.is_some() || project.is_some();
                ok(
                    Expect::Json(to_json(&row)),
                    Effect::Put(Row::Task(row)),
                    changed.then_some(("update", "tasks")),
                )
            }
            Action::DeleteTask { p, t } => {
                self.task_at(*p, *t)?;
                need("tasks.write")?;
                ok(
                    Expect::NoContent,
                    Effect::DropTask(*t),
                    Some(("delete", "tasks")),
                )
            }
            Action::ListComments { p, t, q } => {
                self.task_at(*p, *t)?;
                need("comments.read")?;
                page_of(
                    q,
                    (self.comments.values())
                        .filter(|c| c.task_id == *t)
                        .collect(),
                )
            }
            Action::CreateComment { p, t, body } => {
                self.task_at(*p, *t)?;
                need("comments.write")?;
                let body = valid_text("body", body, MAX_BODY)?;
                let row = Row::Comment(comments::Model {
                    tenant_id: self.id,
                    id: Uuid::nil(),
                    task_id: *t,
                    author_id: author,
                    body,
                    created_at: Utc::now(),
                });
                ok(
                    Expect::Created(row.clone()),
                    Effect::Put(row),
                    Some(("insert", "comments")),
                )
            }
            Action::GetComment { p, t, c } => {
                let row = self.comment_at(*p, *t, *c)?;
                need("comments.read")?;
                ok(Expect::Json(to_json(row)), Effect::Nothing, None)
            }
            Action::UpdateComment { p, t, c, body } => {
                let mut row = self.comment_at(*p, *t, *c)?.clone();
                need("comments.write")?;
                if let Some(body) = body {
                    row.body = valid_text("body", body, MAX_BODY)?;
                }
                let audit = body.is_some().then_some(("update", "comments"));
                ok(
                    Expect::Json(to_json(&row)),
                    Effect::Put(Row::Comment(row)),
                    audit,
                )
            }
            Action::DeleteComment { p, t, c } => {
                self.comment_at(*p, *t, *c)?;
                need("comments.write")?;
                ok(
                    Expect::NoContent,
                    Effect::DropComment(*c),
                    Some(("delete", "comments")),
                )
            }
        }
    }
}

/// A row as the service serializes it.
fn to_json<T: serde::Serialize>(row: &T) -> Value {
    serde_json::to_value(row).expect("a row as JSON")
}

// ---------------------------------------------------------------------------------------------
// The world: tenants, model, and bookkeeping across cases.

/// Where an id named by a request is, when the request is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A live row of the caller's tenant.
    Own,
    /// A row (live or deleted) of another tenant, or another tenant itself.
    Other,
    /// A deleted row of the caller's tenant.
    Deleted,
    /// Nothing, ever.
    Missing,
}

#[derive(Debug)]
struct World {
    tenants: Vec<TenantState>,
    /// Every id ever seen (tenants, rows, users, roles, keys), and its tenant.
    owner: HashMap<Uuid, usize>,
    /// Short names for ids, for the trace.
    labels: HashMap<Uuid, String>,
    /// The parent of every task (its project) and comment (its task) ever seen, deleted ones too.
    parents: HashMap<Uuid, Uuid>,
    /// The newest `audit_events` id checked (UUIDv7: the events after it are the new ones).
    audit_mark: Uuid,
    /// The writes `maintain` made since the last check (each audited, with the actor `system`).
    maintained: u64,
    requests: u64,
    fills: u64,
    /// `operation who -> status`, over all cases.
    seen: BTreeMap<String, u64>,
    /// Requests sent, twins included.
    sent: u64,
}

/// What one case records while it runs.
#[derive(Default)]
struct CaseLog {
    trace: String,
    /// Every request id sent in this case.
    request_ids: Vec<String>,
    /// The audit events the case's successful writes must have written:
    /// (request id, tenant, actor, action, table, row id).
    events: Vec<AuditRow>,
}

type AuditRow = (String, TenantId, String, String, String, Option<Uuid>);

/// A response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
    json: Value,
}

/// The parts of a reply that must not differ between a request and its twin.
fn comparable(
    reply: &Reply,
    fresh_to_original: &HashMap<String, String>,
) -> (u16, Vec<(String, String)>, Value) {
    let mut headers: Vec<(String, String)> = (reply.headers.iter())
        .filter(|(name, _)| *name != "x-request-id" && *name != header::CONTENT_LENGTH)
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    headers.sort();
    // An id the request named may be echoed; put the original back before comparing.
    let mut text = reply.text.clone();
    for (fresh, original) in fresh_to_original {
        text = text.replace(fresh, original);
    }
    let mut body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if let Some(error) = body.get_mut("error").and_then(Value::as_object_mut) {
        error.remove("request_id");
    }
    (reply.status, headers, body)
}

impl World {
    fn label(&mut self, id: Uuid, make: impl FnOnce(usize) -> String) {
        let n = self.labels.len();
        self.labels.entry(id).or_insert_with(|| make(n));
    }

    fn learn(&mut self, tenant: usize, id: Uuid, kind: &str) {
        self.owner.insert(id, tenant);
        let label = LABELS[tenant];
        let n = self.labels.len();
        self.labels
            .entry(id)
            .or_insert_with(|| format!("{label}.{kind}{n}"));
    }

    fn learn_row(&mut self, tenant: usize, row: &Row) {
        match row {
            Row::Project(p) => self.learn(tenant, p.id, "p"),
            Row::Task(t) => {
                self.learn(tenant, t.id, "t");
                self.parents.insert(t.id, t.project_id);
            }
            Row::Comment(c) => {
                self.learn(tenant, c.id, "c");
                self.parents.insert(c.id, c.task_id);
            }
        }
    }

    /// A fresh id that never existed.
    fn missing(&mut self) -> Uuid {
        let id = Uuid::now_v7();
        self.label(id, |n| format!("missing{n}"));
        id
    }

    fn kind(&self, by: usize, id: Uuid) -> Kind {
        match self.owner.get(&id) {
            None => Kind::Missing,
            Some(&o) if o != by => Kind::Other,
            Some(_) => {
                let t = &self.tenants[by];
                let live = t.projects.contains_key(&id)
                    || t.tasks.contains_key(&id)
                    || t.comments.contains_key(&id)
                    || t.users().contains(&id)
                    || t.id.into_uuid() == id;
                if live { Kind::Own } else { Kind::Deleted }
            }
        }
    }

    fn choose(ids: Vec<Uuid>, n: usize) -> Option<Uuid> {
        (!ids.is_empty()).then(|| ids[n % ids.len()])
    }

    fn others(&self, by: usize) -> impl Iterator<Item = &TenantState> {
        (self.tenants.iter().enumerate())
            .filter(move |(i, _)| *i != by)
            .map(|(_, t)| t)
    }

    /// A project id for `pick`.
    fn project(&mut self, by: usize, pick: Pick) -> Uuid {
        let found = match pick {
            Pick::Own(n) => Self::choose(self.tenants[by].projects.keys().copied().collect(), n),
            Pick::Other(n) => Self::choose(
                self.others(by)
                    .flat_map(|t| t.projects.keys().copied())
                    .collect(),
                n,
            ),
            Pick::Deleted(n) => Self::choose(self.tenants[by].gone_projects.clone(), n),
            Pick::Missing => None,
        };
        found.unwrap_or_else(|| self.missing())
    }

    /// A task id for `pick`, and its project if the model knows it.
    fn task(&mut self, by: usize, pick: Pick) -> (Uuid, Option<Uuid>) {
        let found = match pick {
            Pick::Own(n) => Self::choose(self.tenants[by].tasks.keys().copied().collect(), n),
            Pick::Other(n) => Self::choose(
                self.others(by)
                    .flat_map(|t| t.tasks.keys().copied())
                    .collect(),
                n,
            ),
            Pick::Deleted(n) => Self::choose(self.tenants[by].gone_tasks.clone(), n),
            Pick::Missing => None,
        };
        match found {
            Some(t) => (t, self.parents.get(&t).copied()),
            None => (self.missing(), None),
        }
    }
}

impl World {
    /// A comment id for `pick`, and its task if the model knows it.
    fn comment(&mut self, by: usize, pick: Pick) -> (Uuid, Option<Uuid>) {
        let found = match pick {
            Pick::Own(n) => Self::choose(self.tenants[by].comments.keys().copied().collect(), n),
            Pick::Other(n) => Self::choose(
                self.others(by)
                    .flat_map(|t| t.comments.keys().copied())
                    .collect(),
                n,
            ),
            Pick::Deleted(n) => Self::choose(self.tenants[by].gone_comments.clone(), n),
            Pick::Missing => None,
        };
        match found {
            Some(c) => (c, self.parents.get(&c).copied()),
            None => (self.missing(), None),
        }
    }

    fn user(&mut self, by: usize, pick: UserPick) -> Uuid {
        match pick {
            UserPick::Admin => self.tenants[by].admin.user,
            UserPick::Viewer => self.tenants[by].viewer.user,
            UserPick::Other(n) => {
                let all: Vec<Uuid> = self.others(by).flat_map(|t| t.users()).collect();
                all[n % all.len()]
            }
            UserPick::Missing => self.missing(),
        }
    }

    fn other_tenant(&self, by: usize, n: usize) -> TenantId {
        let others: Vec<TenantId> = self.others(by).map(|t| t.id).collect();
        others[n % others.len()]
    }

    fn tenant_ref(&self, by: usize, r: TenantRef) -> Uuid {
        match r {
            TenantRef::Own => self.tenants[by].id.into_uuid(),
            TenantRef::Other(n) => self.other_tenant(by, n).into_uuid(),
        }
    }

    fn text(by: usize, text: Text, kind: char) -> String {
        let label = LABELS[by];
        let max = if kind == 'c' { MAX_BODY } else { MAX_NAME };
        match text {
            Text::Distinct(n) => format!("{label}#{kind}{n}"),
            Text::Shared(n) => format!("shared#{kind}{n}"),
            Text::Padded(n) => format!("  {label}#{kind}{n}\t"),
            Text::Blank => " \t ".into(),
            Text::TooLong => format!("{label}#{}", "x".repeat(max)),
        }
    }

    fn under_project(&mut self, by: usize, under: Under, real: Option<Uuid>) -> Uuid {
        match (under, real) {
            (Under::Real, Some(p)) => p,
            (Under::Real, None) => self.project(by, Pick::Own(0)),
            (Under::Other(pick), _) => self.project(by, pick),
        }
    }

    fn task_path(&mut self, by: usize, at: TaskAt) -> (Uuid, Uuid) {
        let (t, real) = self.task(by, at.task);
        (self.under_project(by, at.project, real), t)
    }

    fn comment_path(&mut self, by: usize, at: CommentAt) -> (Uuid, Uuid, Uuid) {
        let (c, real_task) = self.comment(by, at.comment);
        let t = match (at.task, real_task) {
            (Under::Real, Some(t)) => t,
            (Under::Real, None) => self.task(by, Pick::Own(0)).0,
            (Under::Other(pick), _) => self.task(by, pick).0,
        };
        let real_project = self.parents.get(&t).copied();
        (self.under_project(by, at.project, real_project), t, c)
    }

    /// The concrete action of `op` for tenant `by`, in the current state.
    fn resolve(&mut self, by: usize, op: &Op) -> Action {
        match op {
            Op::ListProjects(q) => Action::ListProjects { q: *q },
            Op::CreateProject { name, tenant_field } => Action::CreateProject {
                name: Self::text(by, *name, 'p'),
                tenant_field: tenant_field.map(|r| self.tenant_ref(by, r)),
            },
            Op::GetProject(p) => Action::GetProject {
                p: self.project(by, *p),
            },
            Op::UpdateProject(p, name) => Action::UpdateProject {
                p: self.project(by, *p),
                name: name.map(|n| Self::text(by, n, 'p')),
            },
            Op::DeleteProject(p) => Action::DeleteProject {
                p: self.project(by, *p),
            },
            Op::ListTasks(p, q) => Action::ListTasks {
                p: self.project(by, *p),
                q: *q,
            },
            Op::CreateTask {
                project,
                title,
                done,
                assignee,
            } => Action::CreateTask {
                p: self.project(by, *project),
                title: Self::text(by, *title, 't'),
                done: *done,
                assignee: assignee.map(|u| self.user(by, u)),
            },
            Op::GetTask(at) => {
                let (p, t) = self.task_path(by, *at);
                Action::GetTask { p, t }
            }
            Op::UpdateTask {
                at,
                title,
                done,
                assignee,
                move_to,
                tenant_field,
            } => {
                let (p, t) = self.task_path(by, *at);
                Action::UpdateTask {
                    p,
                    t,
                    title: title.map(|x| Self::text(by, x, 't')),
                    done: *done,
                    assignee: assignee.map(|a| a.map(|u| self.user(by, u))),
                    project: move_to.map(|m| self.project(by, m)),
                    tenant_field: tenant_field.map(|r| self.tenant_ref(by, r)),
                }
            }
            Op::DeleteTask(at) => {
                let (p, t) = self.task_path(by, *at);
                Action::DeleteTask { p, t }
            }
            Op::ListComments(at, q) => {
                let (p, t) = self.task_path(by, *at);
                Action::ListComments { p, t, q: *q }
            }
            Op::CreateComment(at, body) => {
                let (p, t) = self.task_path(by, *at);
                Action::CreateComment {
                    p,
                    t,
                    body: Self::text(by, *body, 'c'),
                }
            }
            Op::GetComment(at) => {
                let (p, t, c) = self.comment_path(by, *at);
                Action::GetComment { p, t, c }
            }
            Op::UpdateComment(at, body) => {
                let (p, t, c) = self.comment_path(by, *at);
                Action::UpdateComment {
                    p,
                    t,
                    c,
                    body: body.map(|b| Self::text(by, b, 'c')),
                }
            }
            Op::DeleteComment(at) => {
                let (p, t, c) = self.comment_path(by, *at);
                Action::DeleteComment { p, t, c }
            }
        }
    }

    /// `Authorization` for `who` of tenant `by`.
    fn authorization(&self, by: usize, who: Who) -> Option<String> {
        let t = &self.tenants[by];
        let key = match who {
            Who::Admin | Who::AdminNamingOwnTenant | Who::AdminNamingOtherTenant(_) => {
                t.admin.key.clone()
            }
            Who::Viewer => t.viewer.key.clone(),
            Who::Revoked => t.revoked_key.clone(),
            Who::WrongSecret => {
                let (head, last) = t.admin.key.split_at(t.admin.key.len() - 1);
                format!("{head}{}", if last == "0" { '1' } else { '0' })
            }
            Who::Malformed => "tsk_nope".into(),
            Who::NoKey => return None,
        };
        Some(format!("Bearer {key}"))
    }

    /// `X-Tenant-Id` for `who` of tenant `by`.
    fn tenant_header(&self, by: usize, who: Who) -> Option<Uuid> {
        match who {
            Who::AdminNamingOwnTenant => Some(self.tenants[by].id.into_uuid()),
            Who::AdminNamingOtherTenant(n) => Some(self.other_tenant(by, n).into_uuid()),
            _ => None,
        }
    }

    /// Ids of other tenants, and their texts, in a reply to tenant `by` (ids it named aside).
    fn leaks(&self, by: usize, reply: &Reply, named: &HashSet<Uuid>) -> Vec<String> {
        let mut text = reply.text.clone();
        for (name, value) in &reply.headers {
            let _ = write!(
                text,
                "\n{name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            );
        }
        let mut found = Vec::new();
        for id in uuids_in(&text) {
            if let Some(&o) = self.owner.get(&id)
                && o != by
                && !named.contains(&id)
            {
                found.push(format!("{id} (of {})", LABELS[o]));
            }
        }
        for (i, label) in LABELS.iter().enumerate() {
            if i != by && text.contains(&format!("{label}#")) {
                found.push(format!("a text of {label} (`{label}#..`)"));
            }
        }
        found
    }

    /// `text` with every known id replaced by its short name.
    fn labelled(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for id in uuids_in(text) {
            if let Some(label) = self.labels.get(&id) {
                out = out.replace(&id.to_string(), label);
                out = out.replace(&id.simple().to_string(), label);
            }
        }
        out
    }
}

/// Every UUID in `text`: hyphenated, or 32 hex digits in a row (every window of a longer run).
fn uuids_in(text: &str) -> Vec<Uuid> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    if b.len() >= 36 {
        for i in 0..=b.len() - 36 {
            let hyphens = [8, 13, 18, 23].iter().all(|k| b[i + k] == b'-');
            if hyphens && let Some(id) = (text.get(i..i + 36)).and_then(|s| Uuid::try_parse(s).ok())
            {
                out.push(id);
            }
        }
    }
    let mut start = None;
    for i in 0..=b.len() {
        let hex = i < b.len() && b[i].is_ascii_hexdigit();
        match (hex, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s >= 32 {
                    for w in s..=i - 32 {
                        if let Some(id) = text.get(w..w + 32).and_then(|s| Uuid::try_parse(s).ok())
                        {
                            out.push(id);
                        }
                    }
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// Everything a case run needs besides the world.
struct Env<'a> {
    router: Router,
    db: &'a TenantDb,
    /// The owner's pool: the database as it is, not through the library.
    raw: &'a DatabaseConnection,
}

/// Sends one request through the router, in process.
async fn send(
    router: &Router,
    (method, uri, body): &(Method, String, Option<Value>),
    authorization: Option<&str>,
    tenant_header: Option<Uuid>,
    request_id: &str,
) -> Reply {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header("x-request-id", request_id);
    if let Some(authorization) = authorization {
        request = request.header(header::AUTHORIZATION, authorization);
    }
    if let Some(tenant) = tenant_header {
        request = request.header("x-tenant-id", tenant.to_string());
    }
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let request = request.body(body).expect("a request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    Reply {
        status,
        headers,
        text,
        json,
    }
}

fn short(text: &str) -> String {
    const MAX: usize = 400;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}... ({} bytes)", text.len())
    }
}

fn header_str<'h>(reply: &'h Reply, name: &str) -> Option<&'h str> {
    reply.headers.get(name).and_then(|v| v.to_str().ok())
}

impl World {
    /// Sends `action` as `who` of tenant `by`, checks the answer (leaks, 403s, the model), and
    /// applies it to the model. Returns the reply and the ids the request named, with their kinds.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &mut self,
        env: &Env<'_>,
        log: &mut CaseLog,
        by: usize,
        who: Who,
        action: &Action,
        tenant_header: Option<Uuid>,
        what: &str,
    ) -> Result<(Reply, Vec<(Uuid, Kind)>), String> {
        self.requests += 1;
        self.sent += 1;
        let request_id = format!("ph-{}", self.requests);
        log.request_ids.push(request_id.clone());
        let path: Vec<(Uuid, Kind)> = (action.path_ids().into_iter())
            .map(|id| (id, self.kind(by, id)))
            .collect();
        let named: Vec<(Uuid, Kind)> = (action.path_ids().into_iter())
            .chain(action.body_ids())
            .chain(tenant_header)
            .map(|id| (id, self.kind(by, id)))
            .collect();
        let prediction = self.tenants[by].predict(who, action);
        let http = action.http();
        let authorization = self.authorization(by, who);
        let reply = send(
            &env.router,
            &http,
            authorization.as_deref(),
            tenant_header,
            &request_id,
        )
        .await;
        let (method, uri, body) = &http;
        let _ = writeln!(
            log.trace,
            "  {what} {} {who:?}{} {method} {uri}{}\n      -> {} {}",
            LABELS[by],
            tenant_header.map_or(String::new(), |t| format!(" (X-Tenant-Id {t})")),
            body.as_ref()
                .map_or(String::new(), |b| format!(" {}", short(&b.to_string()))),
            reply.status,
            short(&reply.text),
        );
        let who_kind = match who {
            Who::Admin | Who::AdminNamingOwnTenant => "admin",
            Who::Viewer => "viewer",
            _ => "bad key",
        };
        *self
            .seen
            .entry(format!(
                "{:<15} {:<7} {:<8} -> {}",
                action.name(),
                who_kind,
                if what.ends_with("twin") { "twin" } else { "" },
                reply.status
            ))
            .or_default() += 1;

        // The invariants are checked first, reported after the model has taken the answer (so
        // that the database comparison at the end of the case shows only real differences).
        let mut violations = Vec::new();
        // 2. Nothing of another tenant.
        let named_ids: HashSet<Uuid> = named.iter().map(|(id, _)| *id).collect();
        let leaks = self.leaks(by, &reply, &named_ids);
        if !leaks.is_empty() {
            violations.push(format!(
                "LEAK: {what}: the answer to {} carries another tenant's data: {}",
                LABELS[by],
                leaks.join(", ")
            ));
        }
        // 3. 403 only for the viewer, and only for rows of its own tenant.
        if reply.status == 403 {
            let mut wrong = Vec::new();
            if who != Who::Viewer {
                wrong.push(format!("the caller ({who:?}) holds every permission"));
            }
            for (id, kind) in &path {
                if *kind != Kind::Own {
                    wrong.push(format!(
                        "the path names {id}, which is {kind:?} for the caller"
                    ));
                }
            }
            if reply.json["error"]["code"] != "forbidden" {
                wrong.push("the code is not `forbidden`".into());
            }
            if !wrong.is_empty() {
                violations.push(format!(
                    "{what}: a 403 where none may be: {}",
                    wrong.join("; ")
                ));
            }
        }
        // Every answer carries the request's id.
        if header_str(&reply, "x-request-id") != Some(request_id.as_str()) {
            violations.push(format!(
                "{what}: X-Request-Id is {:?}, not the request's {request_id}",
                header_str(&reply, "x-request-id")
            ));
        }
        // 4. The model's answer.
        let effect = self
            .check(by, &prediction, &reply, &request_id)
            .map_err(|e| format!("{what}: {} {uri}: {e}", LABELS[by]))?;
        if let (Some((act, table)), true) = (prediction.audit, (200..300).contains(&reply.status)) {
            let row = match &effect {
                Effect::Put(Row::Project(p)) => p.id,
                Effect::Put(Row::Task(t)) => t.id,
                Effect::Put(Row::Comment(c)) => c.id,
                Effect::DropProject(id) | Effect::DropTask(id) | Effect::DropComment(id) => *id,
                Effect::Nothing => Uuid::nil(),
            };
            let key = if who == Who::Viewer {
                self.tenants[by].viewer.key_id
            } else {
                self.tenants[by].admin.key_id
            };
            log.events.push((
                request_id,
                self.tenants[by].id,
                format!("api_key:{key}"),
                act.to_owned(),
                table.to_owned(),
                Some(row),
            ));
        }
        if let Effect::Put(row) = &effect {
            self.learn_row(by, row);
        }
        self.tenants[by].apply(&effect);
        if !violations.is_empty() {
            return Err(violations.join("\n"));
        }
        Ok((reply, named))
    }

    /// Compares `reply` with `prediction`; the effect to apply (a created row as the service made it).
    fn check(
        &self,
        by: usize,
        prediction: &Prediction,
        reply: &Reply,
        request_id: &str,
    ) -> Result<Effect, String> {
        let content_type = header_str(reply, "content-type");
        let json_type = || {
            if content_type == Some("application/json") {
                Ok(())
            } else {
                Err(format!(
                    "Content-Type {content_type:?}, not application/json"
                ))
            }
        };
        let status = |want: u16| {
            if reply.status == want {
                Ok(())
            } else {
                Err(format!(
                    "status {}, the model expects {want} ({:?})\n      body: {}",
                    reply.status,
                    prediction.expect,
                    short(&reply.text)
                ))
            }
        };
        match &prediction.expect {
            Expect::Error(want, code, message) => {
                status(*want)?;
                json_type()?;
                let error = &reply.json["error"];
                let fine = error["code"] == *code
                    && error["request_id"] == request_id
                    && match message {
                        Some(m) => error["message"] == m.as_str(),
                        None => error["message"].as_str().is_some_and(|m| !m.is_empty()),
                    }
                    && reply.json.as_object().is_some_and(|o| o.len() == 1)
                    && error.as_object().is_some_and(|o| o.len() == 3);
                if !fine {
                    return Err(format!(
                        "error body {}, the model expects code {code:?}, message {message:?}, \
                         request_id {request_id:?}",
                        reply.text
                    ));
                }
                if *want == 401 && header_str(reply, "www-authenticate") != Some("Bearer") {
                    return Err("a 401 without `WWW-Authenticate: Bearer`".into());
                }
                Ok(Effect::Nothing)
            }
            Expect::Json(want) => {
                status(200)?;
                json_type()?;
                if reply.json != *want {
                    return Err(format!(
                        "body differs from the model\n      actual:   {}\n      expected: {}",
                        short(&reply.text),
                        short(&want.to_string())
                    ));
                }
                Ok(prediction.effect.clone())
            }
            Expect::NoContent => {
                status(204)?;
                if !reply.text.is_empty() {
                    return Err(format!("a 204 with a body: {}", short(&reply.text)));
                }
                Ok(prediction.effect.clone())
            }
            Expect::Created(want) => {
                status(201)?;
                json_type()?;
                let parse_err =
                    |e: serde_json::Error| format!("a 201 body that is not the row: {e}");
                let (actual, id) = match want {
                    Row::Project(w) => {
                        let a: projects::Model =
                            serde_json::from_value(reply.json.clone()).map_err(parse_err)?;
                        let same = projects::Model {
                            id: a.id,
                            created_at: a.created_at,
                            ..w.clone()
                        } == a;
                        (same.then(|| Row::Project(a.clone())), a.id)
                    }
                    Row::Task(w) => {
                        let a: tasks::Model =
                            serde_json::from_value(reply.json.clone()).map_err(parse_err)?;
                        let same = tasks::Model {
                            id: a.id,
                            created_at: a.created_at,
                            ..w.clone()
                        } == a;
                        (same.then(|| Row::Task(a.clone())), a.id)
                    }
                    Row::Comment(w) => {
                        let a: comments::Model =
                            serde_json::from_value(reply.json.clone()).map_err(parse_err)?;
                        let same = comments::Model {
                            id: a.id,
                            created_at: a.created_at,
                            ..w.clone()
                        } == a;
                        (same.then(|| Row::Comment(a.clone())), a.id)
                    }
                };
                let Some(actual) = actual else {
                    return Err(format!(
                        "created row differs from the model\n      actual:   {}\n      expected: {want:?}",
                        reply.text
                    ));
                };
                if self.owner.contains_key(&id) || id.is_nil() {
                    return Err(format!(
                        "the created row's id {id} is not new (it is {}'s)",
                        self.owner.get(&id).map_or("nobody", |o| LABELS[*o])
                    ));
                }
                let _ = by;
                Ok(Effect::Put(actual))
            }
        }
    }
}

impl World {
    /// Runs the case's steps; for each request naming another tenant's id, its twin too.
    async fn steps(&mut self, env: &Env<'_>, log: &mut CaseLog, case: &Case) -> Result<(), String> {
        for (i, step) in case.steps.iter().enumerate() {
            let (by, who) = (step.tenant, step.who);
            let action = self.resolve(by, &step.op);
            let header = self.tenant_header(by, who);
            let what = format!("#{i}");
            let (reply, named) = self
                .exchange(env, log, by, who, &action, header, &what)
                .await?;
            // 1. Naming another tenant's id answers exactly what naming a fresh id answers.
            let foreign: Vec<Uuid> = (named.iter())
                .filter(|(_, kind)| *kind == Kind::Other)
                .map(|(id, _)| *id)
                .collect();
            if foreign.is_empty() {
                continue;
            }
            let fresh: HashMap<Uuid, Uuid> =
                foreign.iter().map(|id| (*id, self.missing())).collect();
            let swap = |id: Uuid| fresh.get(&id).copied().unwrap_or(id);
            let twin = action.map_ids(swap);
            let twin_header = header.map(swap);
            let (twin_reply, _) = self
                .exchange(
                    env,
                    log,
                    by,
                    who,
                    &twin,
                    twin_header,
                    &format!("{what} twin"),
                )
                .await?;
            let back: HashMap<String, String> = (fresh.iter())
                .map(|(original, fresh)| (fresh.to_string(), original.to_string()))
                .collect();
            let (a, b) = (
                comparable(&reply, &HashMap::new()),
                comparable(&twin_reply, &back),
            );
            if a != b {
                return Err(format!(
                    "{what}: {} {who:?} {} naming another tenant's id answered\n      {a:?}\n    \
                     but naming a fresh id instead answered\n      {b:?}",
                    LABELS[by],
                    action.name()
                ));
            }
        }
        Ok(())
    }

    /// Keeps every tenant between the bounds, through the library with a system context.
    async fn maintain(&mut self, env: &Env<'_>) -> Result<(), String> {
        let e =
            |what: &'static str| move |err: Error| format!("keeping the bounds: {what}: {err:?}");
        for (i, label) in LABELS.iter().enumerate() {
            let ctx = self.tenants[i].system.clone();
            let scope = env.db.scope(&ctx);
            while self.tenants[i].projects.len() > MAX_PROJECTS {
                let p = *self.tenants[i].projects.keys().next().expect("a project");
                scope
                    .delete::<projects::Entity>(p)
                    .await
                    .map_err(e("project"))?;
                self.tenants[i].drop_project(p);
                self.maintained += 1;
            }
            while self.tenants[i].tasks.len() > MAX_TASKS {
                let t = *self.tenants[i].tasks.keys().next().expect("a task");
                scope.delete::<tasks::Entity>(t).await.map_err(e("task"))?;
                self.tenants[i].drop_task(t);
                self.maintained += 1;
            }
            while self.tenants[i].comments.len() > MAX_COMMENTS {
                let c = *self.tenants[i].comments.keys().next().expect("a comment");
                scope
                    .delete::<comments::Entity>(c)
                    .await
                    .map_err(e("comment"))?;
                self.tenants[i].drop_comment(c);
                self.maintained += 1;
            }
            while self.tenants[i].projects.len() < MIN_ROWS {
                self.fills += 1;
                let row = scope
                    .insert(projects::ActiveModel {
                        name: Set(format!("{label}#fill{}", self.fills)),
                        created_at: Set(Utc::now()),
                        ..Default::default()
                    })
                    .await
                    .map_err(e("new project"))?;
                self.put_new(i, Row::Project(row));
            }
            while self.tenants[i].tasks.len() < MIN_ROWS {
                self.fills += 1;
                let project = *self.tenants[i].projects.keys().next().expect("a project");
                let row = scope
                    .insert(tasks::ActiveModel {
                        project_id: Set(project),
                        title: Set(format!("{label}#fill{}", self.fills)),
                        done: Set(false),
                        assignee_id: Set(None),
                        created_at: Set(Utc::now()),
                        ..Default::default()
                    })
                    .await
                    .map_err(e("new task"))?;
                self.put_new(i, Row::Task(row));
            }
            while self.tenants[i].comments.len() < MIN_ROWS {
                self.fills += 1;
                let task = *self.tenants[i].tasks.keys().next().expect("a task");
                let row = scope
                    .insert(comments::ActiveModel {
                        task_id: Set(task),
                        author_id: Set(self.tenants[i].admin.user),
                        body: Set(format!("{label}#fill{}", self.fills)),
                        created_at: Set(Utc::now()),
                        ..Default::default()
                    })
                    .await
                    .map_err(e("new comment"))?;
                self.put_new(i, Row::Comment(row));
            }
        }
        Ok(())
    }

    fn put_new(&mut self, tenant: usize, row: Row) {
        self.learn_row(tenant, &row);
        self.tenants[tenant].put(row);
        self.maintained += 1;
    }

    fn tenant_index(&self, id: TenantId) -> Option<usize> {
        self.tenants.iter().position(|t| t.id == id)
    }

    /// Reads every project, task and comment as the owner and compares them with the model, and
    /// the audit events of the case's requests with those its successful writes must have written.
    /// Then the model takes the database's rows, whatever the verdict.
    /// With `adopt`, no comparison: the model just takes the database's rows (at setup).
    async fn check_database(
        &mut self,
        env: &Env<'_>,
        log: &CaseLog,
        adopt: bool,
    ) -> Result<(), String> {
        let raw = env.raw;
        let e = |what: &'static str| move |err: sea_orm::DbErr| format!("reading {what}: {err}");
        let all_projects = projects::Entity::find()
            .all(raw)
            .await
            .map_err(e("projects"))?;
        let all_tasks = tasks::Entity::find().all(raw).await.map_err(e("tasks"))?;
        let all_comments = comments::Entity::find()
            .all(raw)
            .await
            .map_err(e("comments"))?;
        let n = self.tenants.len();
        let mut db_projects = vec![BTreeMap::new(); n];
        let mut db_tasks = vec![BTreeMap::new(); n];
        let mut db_comments = vec![BTreeMap::new(); n];
        let mut problems = Vec::new();
        let mut stray = 0;
        for p in all_projects {
            match self.tenant_index(p.tenant_id) {
                Some(i) => drop(db_projects[i].insert(p.id, p)),
                None => stray += 1,
            }
        }
        for t in all_tasks {
            match self.tenant_index(t.tenant_id) {
                Some(i) => drop(db_tasks[i].insert(t.id, t)),
                None => stray += 1,
            }
        }
        for c in all_comments {
            match self.tenant_index(c.tenant_id) {
                Some(i) => drop(db_comments[i].insert(c.id, c)),
                None => stray += 1,
            }
        }
        if stray > 0 && !adopt {
            problems.push(format!("{stray} rows of no tenant of the world"));
        }
        for i in (0..n).filter(|_| !adopt) {
            let t = &self.tenants[i];
            let label = LABELS[i];
            diff(
                &mut problems,
                &format!("{label}: projects"),
                &t.projects,
                &db_projects[i],
            );
            diff(
                &mut problems,
                &format!("{label}: tasks"),
                &t.tasks,
                &db_tasks[i],
            );
            diff(
                &mut problems,
                &format!("{label}: comments"),
                &t.comments,
                &db_comments[i],
            );
        }

        // 6. The audit trail: one event per successful write, nothing else. The events since the
        // last check, through the primary key `(tenant_id, id)` (ids are UUIDv7, made in order).
        let tenant_ids: Vec<TenantId> = self.tenants.iter().map(|t| t.id).collect();
        let events = audit_events::Entity::find()
            .filter(audit_events::Column::TenantId.is_in(tenant_ids))
            .filter(audit_events::Column::Id.gt(self.audit_mark))
            .all(raw)
            .await
            .map_err(e("audit events"))?;
        if let Some(newest) = events.iter().map(|e| e.id).max() {
            self.audit_mark = newest;
        }
        let ours: HashSet<&str> = log.request_ids.iter().map(String::as_str).collect();
        let (mine, rest): (Vec<_>, Vec<_>) =
            (events.into_iter()).partition(|e| ours.contains(e.request_id.as_str()));
        let mut actual: Vec<AuditRow> = (mine.into_iter())
            .map(|e| {
                (
                    e.request_id,
                    e.tenant_id,
                    e.actor,
                    e.action,
                    e.table_name,
                    e.row_id,
                )
            })
            .collect();
        let mut expected = log.events.clone();
        actual.sort();
        expected.sort();
        if !adopt && actual != expected {
            problems.push(format!(
                "the audit events of the case's requests differ from one per successful write\n  \
                 database: {actual:?}\n  model:    {expected:?}"
            ));
        }
        let maintained = std::mem::take(&mut self.maintained);
        if !adopt && (rest.len() as u64 != maintained || rest.iter().any(|e| e.actor != "system")) {
            problems.push(format!(
                "{} new audit events without the case's request ids, the model expects {maintained} \
                 (of the bounds' upkeep, actor `system`): {:?}",
                rest.len(),
                rest.iter()
                    .map(|e| (&e.request_id, &e.actor, &e.action, &e.table_name))
                    .collect::<Vec<_>>()
            ));
        }

        // Take the database's state.
        for (i, ((projects_, tasks_), comments_)) in
            (db_projects.into_iter().zip(db_tasks).zip(db_comments)).enumerate()
        {
            for p in projects_.values() {
                self.learn_row(i, &Row::Project(p.clone()));
            }
            for t in tasks_.values() {
                self.learn_row(i, &Row::Task(t.clone()));
            }
            for c in comments_.values() {
                self.learn_row(i, &Row::Comment(c.clone()));
            }
            let tenant = &mut self.tenants[i];
            tenant.projects = projects_;
            tenant.tasks = tasks_;
            tenant.comments = comments_;
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the database differs from the model:\n{}",
                problems.join("\n")
            ))
        }
    }
}

/// Appends to `problems` how `db` differs from `model`.
fn diff<V: PartialEq + std::fmt::Debug>(
    problems: &mut Vec<String>,
    what: &str,
    model: &BTreeMap<Uuid, V>,
    db: &BTreeMap<Uuid, V>,
) {
    const SHOWN: usize = 5;
    let mut lines = Vec::new();
    for (id, m) in model {
        match db.get(id) {
            None => lines.push(format!("missing from the database: {m:?}")),
            Some(d) if d != m => lines.push(format!("differs: model {m:?}\n      database {d:?}")),
            Some(_) => {}
        }
    }
    for (id, d) in db {
        if !model.contains_key(id) {
            lines.push(format!("not in the model: {d:?}"));
        }
    }
    if !lines.is_empty() {
        let mut out = format!("{what}: {} rows differ", lines.len());
        for line in lines.iter().take(SHOWN) {
            let _ = write!(out, "\n    {line}");
        }
        problems.push(out);
    }
}

// ---------------------------------------------------------------------------------------------
// Setup: the demo seed, a third tenant, the revoked keys, the model.

/// A role with the permissions `grant` picks, a user holding it, and an API key of the user.
async fn member(
    scope: &tenant_scope::TenantScope<'_>,
    role: &str,
    permissions_: &[permissions::Model],
    domain: &str,
    grant: impl Fn(&str) -> bool,
) -> Actor {
    let user = test_support::user(
        scope,
        &format!("{role}@{domain}"),
        &format!("{role} of {domain}"),
    )
    .await;
    let granted: Vec<permissions::Model> = permissions_
        .iter()
        .filter(|p| grant(&p.code))
        .cloned()
        .collect();
    test_support::grant(scope, user.id, role, &granted).await;
    let key = ApiKeyVerifier::issue(scope, user.id, &format!("proptest_http {role}"))
        .await
        .expect("a key");
    Actor {
        user: user.id,
        key: key.key,
        key_id: key.id,
    }
}

/// A tenant like the seed's: an admin (every permission) and a viewer (`*.read`).
async fn provision(
    db: &TenantDb,
    system: &SystemDb<'_>,
    permissions_: &[permissions::Model],
    name: &str,
) -> (TenantId, Actor, Actor) {
    let ctx = test_support::tenant(system, name).await;
    let scope = db.scope(&ctx);
    let domain = format!("{}.test", name.to_lowercase());
    let admin = member(&scope, "admin", permissions_, &domain, |_| true).await;
    let viewer = member(&scope, "viewer", permissions_, &domain, |code| {
        code.ends_with(".read")
    })
    .await;
    (ctx.tenant(), admin, viewer)
}

async fn setup(env: &Env<'_>) -> World {
    let db = env.db;
    let seed = reference_service::seed_demo(db)
        .await
        .expect("seeding Acme and Globex");
    let system = db
        .system("proptest_http: provision Initech and revoked keys")
        .await
        .expect("system access");
    let permissions_ = system
        .find::<permissions::Entity>()
        .all()
        .await
        .expect("the permissions");
    let seeded = |s: &reference_service::SeededTenant| {
        (
            s.id,
            Actor {
                user: s.admin_user,
                key: s.admin_key.key.clone(),
                key_id: s.admin_key.id,
            },
            Actor {
                user: s.viewer_user,
                key: s.viewer_key.key.clone(),
                key_id: s.viewer_key.id,
            },
        )
    };
    let members = vec![
        seeded(&seed.acme),
        seeded(&seed.globex),
        provision(db, &system, &permissions_, "Initech").await,
    ];
    let mut world = World {
        tenants: Vec::new(),
        owner: HashMap::new(),
        labels: HashMap::new(),
        parents: HashMap::new(),
        audit_mark: Uuid::nil(),
        maintained: 0,
        requests: 0,
        fills: 0,
        seen: BTreeMap::new(),
        sent: 0,
    };
    for (i, (id, admin, viewer)) in members.into_iter().enumerate() {
        let ctx = system.context_for(id);
        let scope = db.scope(&ctx);
        let revoked = ApiKeyVerifier::issue(&scope, admin.user, "proptest_http revoked")
            .await
            .expect("a key to revoke");
        ApiKeyVerifier::revoke(&scope, revoked.id)
            .await
            .expect("revoking it");
        let label = LABELS[i];
        world.labels.insert(id.into_uuid(), label.to_owned());
        world.labels.insert(admin.user, format!("{label}.admin"));
        world.labels.insert(viewer.user, format!("{label}.viewer"));
        world
            .labels
            .insert(admin.key_id, format!("{label}.admin_key"));
        world
            .labels
            .insert(viewer.key_id, format!("{label}.viewer_key"));
        world
            .labels
            .insert(revoked.id, format!("{label}.revoked_key"));
        world.owner.insert(id.into_uuid(), i);
        world.tenants.push(TenantState {
            id,
            admin,
            viewer,
            revoked_key: revoked.key,
            system: ctx,
            projects: BTreeMap::new(),
            tasks: BTreeMap::new(),
            comments: BTreeMap::new(),
            gone_projects: Vec::new(),
            gone_tasks: Vec::new(),
            gone_comments: Vec::new(),
        });
    }
    // Every id of every tenant-owned table the service does not write: scanned for in answers.
    let raw = env.raw;
    let mut ids: Vec<(TenantId, Uuid, &str)> = Vec::new();
    for u in users::Entity::find().all(raw).await.expect("users") {
        ids.push((u.tenant_id, u.id, "user"));
    }
    for r in roles::Entity::find().all(raw).await.expect("roles") {
        ids.push((r.tenant_id, r.id, "role"));
    }
    for r in (role_permissions::Entity::find().all(raw).await).expect("role permissions") {
        ids.push((r.tenant_id, r.id, "role_permission"));
    }
    for r in user_roles::Entity::find()
        .all(raw)
        .await
        .expect("user roles")
    {
        ids.push((r.tenant_id, r.id, "user_role"));
    }
    for k in api_keys::Entity::find().all(raw).await.expect("api keys") {
        ids.push((k.tenant_id, k.id, "key"));
    }
    for (tenant, id, kind) in ids {
        let i = world
            .tenant_index(tenant)
            .expect("a row of a tenant of the world");
        world.learn(i, id, kind);
    }
    world
        .check_database(env, &CaseLog::default(), true)
        .await
        .expect("reading the seeded rows");
    world
}

// ---------------------------------------------------------------------------------------------
// The property

/// The proptest configuration: `PROPTEST_CASES` or 1,000 cases (at least 1,000 under `CI=true`);
/// a fixed seed (from `PROPTEST_RNG_SEED`, or drawn here) so that a failure can be replayed; no
/// regression file (the state of the database is not in it, the seed is).
fn config() -> (Config, u64) {
    let asked: Option<u32> = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok());
    let ci = test_support::is_ci(std::env::var("CI").ok().as_deref());
    let cases = match asked {
        Some(n) if ci => n.max(DEFAULT_CASES),
        Some(n) => n,
        None => DEFAULT_CASES,
    };
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(rand::random);
    let config = Config {
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::with_cases(cases)
    };
    (config, seed)
}

test_support::blocking_backend_test!(service_matches_the_model_over_http, |t: &BlockingTestDb| {
    check_property(t)
});

fn check_property(t: &BlockingTestDb) {
    let backend = t.db().backend();
    let db = t.block_on(t.db().tenant_db());
    let env = Env {
        router: reference_service::router(db.clone()),
        db: &db,
        raw: t.db().raw(),
    };
    let started = Instant::now();
    let world = RefCell::new(t.block_on(setup(&env)));
    let setup_time = started.elapsed();
    let (config, seed) = config();
    let cases = config.cases;
    let runs = RefCell::new(0u32);
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |case| {
        *runs.borrow_mut() += 1;
        t.block_on(run_case(&env, &mut world.borrow_mut(), &case))
    });
    let elapsed = started.elapsed();
    let world = world.into_inner();
    match result {
        Ok(()) => {
            say(&format!(
                "proptest_http: {backend}: {cases} cases, {} requests, passed in {:.1} s (setup {:.1} s)",
                world.sent,
                elapsed.as_secs_f64(),
                setup_time.as_secs_f64()
            ));
            if std::env::var("TENANT_SCOPE_PROPTEST_STATS").is_ok_and(|v| v == "1") {
                let mut out =
                    format!("proptest_http: {backend}: operation, caller -> status: count");
                for (key, n) in &world.seen {
                    let _ = write!(out, "\n  {key:<48} {n}");
                }
                say(&out);
            }
        }
        Err(TestError::Fail(reason, case)) => panic!(
            "proptest_http on {backend}: a case failed (seed {seed}, {} case runs incl. shrinking, \
             {:.1} s; replay with PROPTEST_RNG_SEED={seed}).\nMinimal case: {case:#?}\n{reason}",
            runs.borrow(),
            elapsed.as_secs_f64()
        ),
        Err(TestError::Abort(reason)) => {
            panic!("proptest_http on {backend}: aborted (seed {seed}): {reason}")
        }
    }
}

async fn run_case(env: &Env<'_>, world: &mut World, case: &Case) -> Result<(), TestCaseError> {
    if let Err(e) = world.maintain(env).await {
        return Err(TestCaseError::fail(e));
    }
    let mut log = CaseLog::default();
    let ran = world.steps(env, &mut log, case).await;
    // Always compare with (and then take) the database's state, also after a failed step, so
    // that the next case starts from what the database really holds.
    let checked = world.check_database(env, &log, false).await;
    let problems: Vec<String> = [ran.err(), checked.err()].into_iter().flatten().collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(TestCaseError::fail(world.labelled(&format!(
        "{}\ntrace:\n{}",
        problems.join("\n"),
        log.trace
    ))))
}
