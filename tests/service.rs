//! The reference service (examples/service) over HTTP, in process (`tower::ServiceExt::oneshot`, no
//! sockets), on every backend; on PostgreSQL as the unprivileged application role.
//!
//! - every route works: create, list with pagination, get, update, delete of projects, tasks and
//!   comments;
//! - the RBAC matrix: a viewer reads (200) and may not write (403) rows of its own tenant; another
//!   tenant's row is 404 for admin and viewer alike, with the body of an id that never existed
//!   (modulo the request id);
//! - every write through the service writes its audit event, with the actor and the request id;
//! - bad input is a clear 4xx and writes nothing (row counts read as the owner before and after).

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use entity::audit_events;
use sea_orm::{ColumnTrait, ConnectionTrait, Statement};
use serde_json::{Value, json};
use tenant_scope::ApiKeyVerifier;
use test_support::TestDb;
use tower::ServiceExt;
use uuid::Uuid;

/// A response: status, `X-Request-Id`, and the body as JSON (`Null` when empty).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    request_id: Option<String>,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    /// The error body without its request id: what must be identical between two answers.
    fn error_without_request_id(&self) -> Value {
        let mut body = self.body.clone();
        if let Some(error) = body.get_mut("error").and_then(Value::as_object_mut) {
            error.remove("request_id");
        }
        body
    }

    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    fn id(&self) -> Uuid {
        let id = self.body["id"].as_str().expect("a row with an id");
        Uuid::parse_str(id).expect("a uuid")
    }
}

/// One request.
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    uri: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

fn call(method: Method, uri: impl Into<String>) -> Call {
    Call {
        method,
        uri: uri.into(),
        headers: Vec::new(),
        body: None,
    }
}

impl Call {
    fn key(self, key: &str) -> Self {
        self.header("authorization", &format!("Bearer {key}"))
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn json(self, body: Value) -> Self {
        self.raw_body("application/json", body.to_string().into_bytes())
    }

    fn raw_body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        if !content_type.is_empty() {
            self = self.header("content-type", content_type);
        }
        self.body = Some(body);
        self
    }

    async fn send(&self, router: &Router) -> Reply {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(&self.uri);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let body = self.body.clone().map_or_else(Body::empty, Body::from);
        let request = request.body(body).expect("a request");
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status.is_client_error() || status.is_server_error() {
            let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
            assert_eq!(
                content_type.as_ref().and_then(|v| v.to_str().ok()),
                Some("application/json"),
                "{} {}: every error is JSON",
                self.method,
                self.uri
            );
        }
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            request_id,
            headers,
            body,
        }
    }
}

/// Sends `c` and checks its status, naming the call on failure.
async fn expect(router: &Router, c: Call, status: u16) -> Reply {
    let reply = c.send(router).await;
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{} {} -> {}",
        c.method,
        c.uri,
        reply.body
    );
    reply
}

/// The number of rows of every table the service writes, read as the owner.
async fn counts(t: &TestDb) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for table in [
        "projects",
        "tasks",
        "comments",
        "users",
        "api_keys",
        "audit_events",
    ] {
        let row = t
            .raw()
            .query_one_raw(Statement::from_string(
                t.db_backend(),
                format!("SELECT COUNT(*) FROM {table}"),
            ))
            .await
            .expect("count")
            .expect("a row");
        counts.push((table, row.try_get_by_index::<i64>(0).expect("a count")));
    }
    counts
}

/// The rows the tests act on: each tenant's seeded project, a task in it, a comment on the task.
struct Rows {
    project: Uuid,
    task: Uuid,
    comment: Uuid,
}

impl Rows {
    fn project_uri(&self) -> String {
        format!("/projects/{}", self.project)
    }
    fn task_uri(&self) -> String {
        format!("/projects/{}/tasks/{}", self.project, self.task)
    }
    fn comment_uri(&self) -> String {
        format!(
            "/projects/{}/tasks/{}/comments/{}",
            self.project, self.task, self.comment
        )
    }
}

/// A task and a comment under the seeded project of the tenant of `admin_key`.
async fn rows(router: &Router, admin_key: &str, project: Uuid) -> Rows {
    let task = expect(
        router,
        call(Method::POST, format!("/projects/{project}/tasks"))
            .key(admin_key)
            .json(json!({"title": "Draft the plan"})),
        201,
    )
    .await
    .id();
    let comment = expect(
        router,
        call(
            Method::POST,
            format!("/projects/{project}/tasks/{task}/comments"),
        )
        .key(admin_key)
        .json(json!({"body": "First!"})),
        201,
    )
    .await
    .id();
    Rows {
        project,
        task,
        comment,
    }
}

test_support::backend_test!(every_route_works, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let seed = reference_service::seed_demo(&db).await.expect("seed");
    let router = reference_service::router(db.clone());
    let admin = seed.acme.admin_key.key.clone();
    let r = &router;

    // Projects: list, create, get, update, pagination.
    let list = expect(r, call(Method::GET, "/projects").key(&admin), 200).await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["items"][0]["name"], "Roadmap");
    let created = expect(
        r,
        call(Method::POST, "/projects")
            .key(&admin)
            .json(json!({"name": "Apollo"})),
        201,
    )
    .await;
    let project = created.id();
    assert_eq!(created.body["tenant_id"], seed.acme.id.to_string());
    for name in ["P1", "P2", "P3"] {
        expect(
            r,
            call(Method::POST, "/projects")
                .key(&admin)
                .json(json!({"name": name})),
            201,
        )
        .await;
    }
    let got = expect(
        r,
        call(Method::GET, format!("/projects/{project}")).key(&admin),
        200,
    )
    .await;
    assert_eq!(got.body["name"], "Apollo");
    let renamed = expect(
        r,
        call(Method::PATCH, format!("/projects/{project}"))
            .key(&admin)
            .json(json!({"name": "Apollo 2"})),
        200,
    )
    .await;
    assert_eq!(renamed.body["name"], "Apollo 2");
    let taken = expect(
        r,
        call(Method::POST, "/projects")
            .key(&admin)
            .json(json!({"name": "Apollo 2"})),
        409,
    )
    .await;
    assert_eq!(taken.code(), "conflict");

    let mut seen = Vec::new();
    for page in 0..3 {
        let reply = expect(
            r,
            call(Method::GET, format!("/projects?page={page}&per_page=2")).key(&admin),
            200,
        )
        .await;
        assert_eq!(
            (reply.body["total"].clone(), reply.body["per_page"].clone()),
            (json!(5), json!(2))
        );
        assert_eq!(reply.body["page"], page);
        let items = reply.body["items"].as_array().expect("items").clone();
        assert_eq!(items.len(), if page < 2 { 2 } else { 1 }, "page {page}");
        seen.extend(items.into_iter().map(|p| p["id"].to_string()));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "three pages of 2, 2, 1 distinct projects");
    let past_the_end = expect(
        r,
        call(Method::GET, "/projects?page=3&per_page=2").key(&admin),
        200,
    )
    .await;
    assert_eq!(past_the_end.body["items"], json!([]));
    let capped = expect(
        r,
        call(Method::GET, "/projects?per_page=1000").key(&admin),
        200,
    )
    .await;
    assert_eq!(capped.body["per_page"], reference_service::MAX_PER_PAGE);
    assert_eq!(capped.body["items"].as_array().map(Vec::len), Some(5));
    let default = expect(r, call(Method::GET, "/projects").key(&admin), 200).await;
    assert_eq!(
        default.body["per_page"],
        reference_service::DEFAULT_PER_PAGE
    );

    // Tasks under the project.
    let tasks = format!("/projects/{project}/tasks");
    let task = expect(
        r,
        call(Method::POST, &tasks)
            .key(&admin)
            .json(json!({"title": "Write the plan", "assignee_id": seed.acme.admin_user})),
        201,
    )
    .await;
    assert_eq!(task.body["assignee_id"], seed.acme.admin_user.to_string());
    assert_eq!(task.body["done"], false);
    let task = task.id();
    expect(
        r,
        call(Method::POST, &tasks)
            .key(&admin)
            .json(json!({"title": "Review it", "done": true})),
        201,
    )
    .await;
    let list = expect(
        r,
        call(Method::GET, format!("{tasks}?per_page=1")).key(&admin),
        200,
    )
    .await;
    assert_eq!(
        (
            list.body["total"].clone(),
            list.body["items"].as_array().map(Vec::len)
        ),
        (json!(2), Some(1))
    );
    let task_uri = format!("{tasks}/{task}");
    let got = expect(r, call(Method::GET, &task_uri).key(&admin), 200).await;
    assert_eq!(got.body["title"], "Write the plan");
    let changed = expect(
        r,
        call(Method::PATCH, &task_uri)
            .key(&admin)
            .json(json!({"done": true, "assignee_id": null, "title": "Write the plan, v2"})),
        200,
    )
    .await;
    assert_eq!(changed.body["done"], true);
    assert_eq!(changed.body["assignee_id"], Value::Null);
    assert_eq!(changed.body["title"], "Write the plan, v2");

    // Comments under the task.
    let comments = format!("{task_uri}/comments");
    let comment = expect(
        r,
        call(Method::POST, &comments)
            .key(&admin)
            .json(json!({"body": "Looks good"})),
        201,
    )
    .await;
    assert_eq!(comment.body["author_id"], seed.acme.admin_user.to_string());
    let comment_uri = format!("{comments}/{}", comment.id());
    let list = expect(r, call(Method::GET, &comments).key(&admin), 200).await;
    assert_eq!(list.body["total"], 1);
    expect(r, call(Method::GET, &comment_uri).key(&admin), 200).await;
    let edited = expect(
        r,
        call(Method::PATCH, &comment_uri)
            .key(&admin)
            .json(json!({"body": "Looks great"})),
        200,
    )
    .await;
    assert_eq!(edited.body["body"], "Looks great");
    expect(r, call(Method::DELETE, &comment_uri).key(&admin), 204).await;
    expect(r, call(Method::GET, &comment_uri).key(&admin), 404).await;

    // A task moves to another project of the tenant; its old address is then 404.
    let moved = expect(
        r,
        call(Method::PATCH, &task_uri)
            .key(&admin)
            .json(json!({"project_id": seed.acme.project_id})),
        200,
    )
    .await;
    assert_eq!(moved.body["project_id"], seed.acme.project_id.to_string());
    expect(r, call(Method::GET, &task_uri).key(&admin), 404).await;
    let new_uri = format!("/projects/{}/tasks/{task}", seed.acme.project_id);
    expect(r, call(Method::GET, &new_uri).key(&admin), 200).await;
    expect(r, call(Method::DELETE, &new_uri).key(&admin), 204).await;
    expect(r, call(Method::GET, &new_uri).key(&admin), 404).await;

    // Deleting a project deletes its tasks (ON DELETE CASCADE).
    expect(
        r,
        call(Method::DELETE, format!("/projects/{project}")).key(&admin),
        204,
    )
    .await;
    expect(
        r,
        call(Method::GET, format!("/projects/{project}")).key(&admin),
        404,
    )
    .await;
    expect(r, call(Method::GET, &tasks).key(&admin), 404).await;

    // Globex sees none of it.
    let globex = expect(
        r,
        call(Method::GET, "/projects").key(&seed.globex.admin_key.key),
        200,
    )
    .await;
    assert_eq!(globex.body["total"], 1);
    assert_eq!(
        globex.body["items"][0]["id"],
        seed.globex.project_id.to_string()
    );
});

/// Where the row an action names is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// In the caller's tenant.
    Own,
    /// In the other tenant (addressed under its own parents, or under the caller's).
    Other,
    /// Nowhere.
    Missing,
}

test_support::backend_test!(rbac_matrix, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let seed = reference_service::seed_demo(&db).await.expect("seed");
    let router = reference_service::router(db.clone());
    let r = &router;
    let acme = rows(r, &seed.acme.admin_key.key, seed.acme.project_id).await;
    let globex = rows(r, &seed.globex.admin_key.key, seed.globex.project_id).await;
    let missing = Rows {
        project: Uuid::now_v7(),
        task: Uuid::now_v7(),
        comment: Uuid::now_v7(),
    };
    // Another tenant's child under one of our parents: still not ours.
    let mixed = Rows {
        project: acme.project,
        task: globex.task,
        comment: globex.comment,
    };
    let mixed_comment = Rows {
        project: acme.project,
        task: acme.task,
        comment: globex.comment,
    };

    // (action, call for a place's rows, status for the admin, status for the viewer) on own rows;
    // every other place is 404 for both. Writes on own rows come after the reads, deletes last,
    // children first.
    type Make = fn(&Rows) -> Call;
    let actions: Vec<(&str, Make, u16, u16)> = vec![
        (
            "GET project",
            |w| call(Method::GET, w.project_uri()),
            200,
            200,
        ),
        ("GET task", |w| call(Method::GET, w.task_uri()), 200, 200),
        (
            "GET comment",
            |w| call(Method::GET, w.comment_uri()),
            200,
            200,
        ),
        (
            "list tasks",
            |w| call(Method::GET, format!("{}/tasks", w.project_uri())),
            200,
            200,
        ),
        (
            "list comments",
            |w| call(Method::GET, format!("{}/comments", w.task_uri())),
            200,
            200,
        ),
        (
            "PATCH project",
            |w| call(Method::PATCH, w.project_uri()).json(json!({"name": "Roadmap"})),
            200,
            403,
        ),
        (
            "PATCH task",
            |w| call(Method::PATCH, w.task_uri()).json(json!({"done": true})),
            200,
            403,
        ),
        (
            "PATCH comment",
            |w| call(Method::PATCH, w.comment_uri()).json(json!({"body": "Edited"})),
            200,
            403,
        ),
        (
            "create task",
            |w| {
                call(Method::POST, format!("{}/tasks", w.project_uri()))
                    .json(json!({"title": "More"}))
            },
            201,
            403,
        ),
        (
            "create comment",
            |w| {
                call(Method::POST, format!("{}/comments", w.task_uri()))
                    .json(json!({"body": "More"}))
            },
            201,
            403,
        ),
        (
            "DELETE comment",
            |w| call(Method::DELETE, w.comment_uri()),
            204,
            403,
        ),
        (
            "DELETE task",
            |w| call(Method::DELETE, w.task_uri()),
            204,
            403,
        ),
        (
            "DELETE project",
            |w| call(Method::DELETE, w.project_uri()),
            204,
            403,
        ),
    ];

    let mut matrix = Vec::new();
    // The viewer first (it changes nothing), then the admin.
    for (role, key) in [
        ("viewer", &seed.acme.viewer_key.key),
        ("admin", &seed.acme.admin_key.key),
    ] {
        for (action, make, admin_status, viewer_status) in &actions {
            // Another tenant's row and a missing one: the same 404, the same body.
            let absent = expect(r, make(&missing).key(key), 404).await;
            assert_eq!(absent.code(), "not_found");
            for place in [&globex, &mixed, &mixed_comment] {
                let c = make(place).key(key);
                // `mixed_comment` differs from `acme` only below the task level.
                if c.uri == make(&acme).uri {
                    continue;
                }
                let other = expect(r, c.clone(), 404).await;
                assert_eq!(
                    other.error_without_request_id(),
                    absent.error_without_request_id(),
                    "{role} {action} {}: another tenant's row reads exactly like a missing one",
                    c.uri
                );
                assert_ne!(other.request_id, absent.request_id);
            }
            let own_status = if role == "admin" {
                *admin_status
            } else {
                *viewer_status
            };
            let own = expect(r, make(&acme).key(key), own_status).await;
            if own_status == 403 {
                assert_eq!(own.code(), "forbidden");
            }
            for (place, status) in [
                (Place::Own, own_status),
                (Place::Other, 404),
                (Place::Missing, 404),
            ] {
                matrix.push(format!("{role:6} {action:15} {place:?}: {status}"));
            }
        }
    }
    // Actions on no row: the permission alone.
    for (role, key, create) in [
        ("viewer", &seed.acme.viewer_key.key, 403),
        ("admin", &seed.acme.admin_key.key, 201),
    ] {
        let list = expect(r, call(Method::GET, "/projects").key(key), 200).await;
        assert!(list.body["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .all(|p| p["tenant_id"] == seed.acme.id.to_string())
        }));
        let new = call(Method::POST, "/projects")
            .key(key)
            .json(json!({"name": format!("By the {role}")}));
        expect(r, new, create).await;
        matrix.push(format!("{role:6} list projects   (no row): 200"));
        matrix.push(format!("{role:6} create project  (no row): {create}"));
    }
    // Globex's rows are untouched by all of it.
    for uri in [
        globex.project_uri(),
        globex.task_uri(),
        globex.comment_uri(),
    ] {
        expect(
            r,
            call(Method::GET, uri).key(&seed.globex.admin_key.key),
            200,
        )
        .await;
    }
    println!("{}", matrix.join("\n"));
});

test_support::backend_test!(writes_are_audited, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let seed = reference_service::seed_demo(&db).await.expect("seed");
    let router = reference_service::router(db.clone());
    let r = &router;
    let admin = &seed.acme.admin_key;
    let viewer = &seed.acme.viewer_key.key;
    let ctx = db
        .verify(&ApiKeyVerifier, admin.key.clone())
        .await
        .expect("verify");
    let scope = db.scope(&ctx);
    let events = || async {
        scope
            .find::<audit_events::Entity>()
            .order_by_asc(audit_events::Column::Id)
            .all()
            .await
            .expect("events")
    };
    let before = events().await.len();

    let created = expect(
        r,
        call(Method::POST, "/projects")
            .key(&admin.key)
            .header("x-request-id", "req-create")
            .json(json!({"name": "Audited"})),
        201,
    )
    .await;
    assert_eq!(created.request_id.as_deref(), Some("req-create"));
    let project = created.id();
    let uri = format!("/projects/{project}");
    // Neither reads nor refused writes write events.
    expect(r, call(Method::GET, &uri).key(&admin.key), 200).await;
    expect(
        r,
        call(Method::PATCH, &uri)
            .key(viewer)
            .json(json!({"name": "No"})),
        403,
    )
    .await;
    expect(r, call(Method::DELETE, &uri).key(viewer), 403).await;
    let globex_project = format!("/projects/{}", seed.globex.project_id);
    expect(
        r,
        call(Method::DELETE, &globex_project).key(&admin.key),
        404,
    )
    .await;
    expect(
        r,
        call(Method::PATCH, &uri)
            .key(&admin.key)
            .header("x-request-id", "req-update")
            .json(json!({"name": "Audited 2"})),
        200,
    )
    .await;
    let task = expect(
        r,
        call(Method::POST, format!("{uri}/tasks"))
            .key(&admin.key)
            .header("x-request-id", "req-task")
            .json(json!({"title": "A task"})),
        201,
    )
    .await
    .id();
    expect(
        r,
        call(Method::DELETE, &uri)
            .key(&admin.key)
            .header("x-request-id", "req-delete"),
        204,
    )
    .await;

    let all = events().await;
    let new: Vec<_> = all[before..]
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.table_name.as_str(),
                e.row_id,
                e.request_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        new,
        [
            ("insert", "projects", Some(project), "req-create"),
            ("update", "projects", Some(project), "req-update"),
            ("insert", "tasks", Some(task), "req-task"),
            ("delete", "projects", Some(project), "req-delete"),
        ]
    );
    let actor = format!("api_key:{}", admin.id);
    assert!(
        all[before..]
            .iter()
            .all(|e| e.actor == actor && e.tenant_id == seed.acme.id)
    );
    // Globex's log has nothing of Acme's requests.
    let gctx = db
        .verify(&ApiKeyVerifier, seed.globex.admin_key.key.clone())
        .await
        .expect("verify");
    let leaked = db
        .scope(&gctx)
        .find::<audit_events::Entity>()
        .filter(audit_events::Column::RequestId.starts_with("req-"))
        .count()
        .await
        .expect("count");
    assert_eq!(leaked, 0);
});

test_support::backend_test!(
    bad_input_is_a_clear_4xx_and_writes_nothing,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let seed = reference_service::seed_demo(&db).await.expect("seed");
        let router = reference_service::router(db.clone());
        let r = &router;
        let admin = &seed.acme.admin_key.key;
        let acme = rows(r, admin, seed.acme.project_id).await;
        let globex = rows(r, &seed.globex.admin_key.key, seed.globex.project_id).await;
        let before = counts(&t).await;

        let project = acme.project_uri();
        let tasks = format!("{project}/tasks");
        let body = json!({"title": "Should not exist"});
        // (what, the call, status, code)
        let cases: Vec<(&str, Call, u16, &str)> = vec![
            (
                "malformed uuid in the path",
                call(Method::GET, "/projects/not-a-uuid").key(admin),
                400,
                "invalid",
            ),
            (
                "malformed uuid in a write's path",
                call(Method::PATCH, "/projects/123")
                    .key(admin)
                    .json(json!({"name": "x"})),
                400,
                "invalid",
            ),
            (
                "malformed nested uuid",
                call(Method::POST, format!("{tasks}/zzz/comments"))
                    .key(admin)
                    .json(json!({"body": "x"})),
                400,
                "invalid",
            ),
            (
                "malformed X-Tenant-Id",
                call(Method::POST, &tasks)
                    .key(admin)
                    .header("x-tenant-id", "acme")
                    .json(body.clone()),
                400,
                "invalid",
            ),
            (
                "X-Tenant-Id of another tenant",
                call(Method::POST, &tasks)
                    .key(admin)
                    .header("x-tenant-id", &seed.globex.id.to_string())
                    .json(body.clone()),
                401,
                "unauthorized",
            ),
            (
                "no Authorization",
                call(Method::POST, &tasks).json(body.clone()),
                401,
                "unauthorized",
            ),
            (
                "a malformed key",
                call(Method::POST, &tasks)
                    .key("tsk_nope")
                    .json(body.clone()),
                401,
                "unauthorized",
            ),
            (
                "another scheme",
                call(Method::POST, &tasks)
                    .header("authorization", &format!("Basic {admin}"))
                    .json(body.clone()),
                401,
                "unauthorized",
            ),
            (
                "an oversized body",
                call(Method::POST, &tasks)
                    .key(admin)
                    .json(json!({"title": "x".repeat(reference_service::BODY_LIMIT + 1)})),
                413,
                "payload_too_large",
            ),
            (
                "an unknown field",
                call(Method::POST, &tasks)
                    .key(admin)
                    .json(json!({"title": "x", "tenant_id": seed.globex.id})),
                422,
                "invalid",
            ),
            (
                "a field of the wrong type",
                call(Method::POST, &tasks)
                    .key(admin)
                    .json(json!({"title": 5})),
                422,
                "invalid",
            ),
            (
                "a missing field",
                call(Method::POST, &tasks).key(admin).json(json!({})),
                422,
                "invalid",
            ),
            (
                "an unknown field in a PATCH",
                call(Method::PATCH, acme.task_uri())
                    .key(admin)
                    .json(json!({"tenant_id": seed.globex.id})),
                422,
                "invalid",
            ),
            (
                "wrong content type",
                call(Method::POST, &tasks)
                    .key(admin)
                    .raw_body("text/plain", body.to_string().into_bytes()),
                415,
                "unsupported_media_type",
            ),
            (
                "no content type",
                call(Method::POST, &tasks)
                    .key(admin)
                    .raw_body("", body.to_string().into_bytes()),
                415,
                "unsupported_media_type",
            ),
            (
                "invalid JSON",
                call(Method::POST, &tasks)
                    .key(admin)
                    .raw_body("application/json", b"{\"title\":".to_vec()),
                400,
                "invalid",
            ),
            (
                "a blank title",
                call(Method::POST, &tasks)
                    .key(admin)
                    .json(json!({"title": "  "})),
                400,
                "invalid",
            ),
            (
                "per_page=0",
                call(Method::GET, format!("{tasks}?per_page=0")).key(admin),
                400,
                "invalid",
            ),
            (
                "a negative page",
                call(Method::GET, format!("{tasks}?page=-1")).key(admin),
                400,
                "invalid",
            ),
            (
                "an unknown query parameter",
                call(Method::GET, format!("{tasks}?tenant_id={}", seed.globex.id)).key(admin),
                400,
                "invalid",
            ),
            (
                "a task under another tenant's project",
                call(Method::POST, format!("{}/tasks", globex.project_uri()))
                    .key(admin)
                    .json(body.clone()),
                404,
                "not_found",
            ),
            (
                "a task assigned to another tenant's user",
                call(Method::POST, &tasks)
                    .key(admin)
                    .json(json!({"title": "x", "assignee_id": seed.globex.admin_user})),
                404,
                "not_found",
            ),
            (
                "a task moved to another tenant's project",
                call(Method::PATCH, acme.task_uri())
                    .key(admin)
                    .json(json!({"project_id": globex.project})),
                404,
                "not_found",
            ),
            (
                "a comment on another tenant's task",
                call(
                    Method::POST,
                    format!("{}/tasks/{}/comments", acme.project_uri(), globex.task),
                )
                .key(admin)
                .json(json!({"body": "x"})),
                404,
                "not_found",
            ),
            (
                "an unknown route",
                call(Method::GET, "/tenants").key(admin),
                404,
                "not_found",
            ),
            (
                "a method the route has not",
                call(Method::PUT, &project)
                    .key(admin)
                    .json(json!({"name": "x"})),
                405,
                "method_not_allowed",
            ),
        ];
        for (what, c, status, code) in &cases {
            let reply = c.send(r).await;
            assert_eq!(
                (reply.status.as_u16(), reply.code()),
                (*status, *code),
                "{what}: {} {} -> {}",
                c.method,
                c.uri,
                reply.body
            );
            let message = reply.body["error"]["message"].as_str().unwrap_or("");
            assert!(!message.is_empty(), "{what}: a message");
            assert!(
                reply.body["error"]["request_id"].is_string(),
                "{what}: a request id"
            );
            if *status == 405 {
                let allow = reply
                    .headers
                    .get(header::ALLOW)
                    .and_then(|v| v.to_str().ok());
                assert!(
                    allow.is_some_and(|a| a.contains("PATCH")),
                    "{what}: Allow {allow:?}"
                );
            }
            if *status == 401 {
                let challenge = reply.headers.get(header::WWW_AUTHENTICATE);
                assert_eq!(
                    challenge.map(|v| v.as_bytes()),
                    Some(&b"Bearer"[..]),
                    "{what}"
                );
            }
        }
        assert_eq!(counts(&t).await, before, "no bad request wrote anything");

        // A reference to another tenant's row reads exactly like one to a row that never existed.
        let ghost = Uuid::now_v7();
        for (theirs, never) in [
            (
                call(Method::POST, format!("{}/tasks", globex.project_uri()))
                    .key(admin)
                    .json(body.clone()),
                call(Method::POST, format!("/projects/{ghost}/tasks"))
                    .key(admin)
                    .json(body.clone()),
            ),
            (
                call(Method::POST, &tasks)
                    .key(admin)
                    .json(json!({"title": "x", "assignee_id": seed.globex.admin_user})),
                call(Method::POST, &tasks)
                    .key(admin)
                    .json(json!({"title": "x", "assignee_id": ghost})),
            ),
            (
                call(Method::PATCH, acme.task_uri())
                    .key(admin)
                    .json(json!({"project_id": globex.project})),
                call(Method::PATCH, acme.task_uri())
                    .key(admin)
                    .json(json!({"project_id": ghost})),
            ),
        ] {
            let (a, b) = (theirs.send(r).await, never.send(r).await);
            assert_eq!(
                (a.status, a.error_without_request_id()),
                (b.status, b.error_without_request_id()),
                "{}",
                theirs.uri
            );
        }
        // Every 401 is the same answer.
        let (head, last) = admin.split_at(admin.len() - 1);
        let wrong_secret = format!("{head}{}", if last == "0" { '1' } else { '0' });
        let mut denied = Vec::new();
        for c in [
            call(Method::GET, &project),
            call(Method::GET, &project).key("tsk_nope"),
            call(Method::GET, &project).key(&wrong_secret),
            call(Method::GET, &project)
                .key(admin)
                .header("x-tenant-id", &seed.globex.id.to_string()),
        ] {
            let reply = expect(r, c, 401).await;
            denied.push(reply.error_without_request_id());
        }
        assert!(denied.windows(2).all(|w| w[0] == w[1]), "{denied:?}");
        assert_eq!(counts(&t).await, before, "nothing written");
    }
);

// Guarantee: the whole path is the lookup. A task or comment of the caller's own tenant named under
// a parent it does not belong to is 404 for every caller, the viewer (who lacks the permission)
// included: the permission is checked only once the row is found where the path says.
test_support::backend_test!(
    a_row_under_the_wrong_parent_is_not_found,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let seed = reference_service::seed_demo(&db).await.expect("seed");
        let router = reference_service::router(db.clone());
        let r = &router;
        let admin = seed.acme.admin_key.key.clone();
        let viewer = seed.acme.viewer_key.key.clone();
        let rows = rows(r, &admin, seed.acme.project_id).await;
        let other = expect(
            r,
            call(Method::POST, "/projects")
                .key(&admin)
                .json(json!({"name": "Another project"})),
            201,
        )
        .await
        .id();
        let task_elsewhere = format!("/projects/{other}/tasks/{}", rows.task);
        let comment_elsewhere = format!(
            "/projects/{other}/tasks/{}/comments/{}",
            rows.task, rows.comment
        );
        let never = format!("/projects/{other}/tasks/{}", Uuid::now_v7());
        let missing = expect(r, call(Method::GET, &never).key(&viewer), 404).await;
        for key in [&admin, &viewer] {
            for (uri, change) in [
                (&task_elsewhere, json!({"title": "x"})),
                (&comment_elsewhere, json!({"body": "x"})),
            ] {
                let got = expect(r, call(Method::GET, uri.as_str()).key(key), 404).await;
                assert_eq!(
                    got.error_without_request_id(),
                    missing.error_without_request_id()
                );
                expect(
                    r,
                    call(Method::PATCH, uri.as_str()).key(key).json(change),
                    404,
                )
                .await;
                expect(r, call(Method::DELETE, uri.as_str()).key(key), 404).await;
            }
        }
        // Where the path is right, the viewer is refused its writes: 403.
        expect(r, call(Method::DELETE, rows.task_uri()).key(&viewer), 403).await;
    }
);

// Guarantee: a page number far past the end (whose offset would overflow) is an empty page, not a panic.
test_support::backend_test!(
    a_huge_page_number_is_an_empty_page,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let seed = reference_service::seed_demo(&db).await.expect("seed");
        let router = reference_service::router(db.clone());
        let admin = seed.acme.admin_key.key.clone();
        for page in ["100000000000000000", "18446744073709551615"] {
            let got = expect(
                &router,
                call(Method::GET, format!("/projects?page={page}&per_page=100")).key(&admin),
                200,
            )
            .await;
            assert_eq!(got.body["items"], json!([]), "page {page}: {}", got.body);
        }
    }
);

test_support::backend_test!(
    the_listings_are_rate_limited_per_tenant,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let seed = reference_service::seed_demo(&db).await.expect("seed");
        let limit = tenant_scope::http::RateLimit::per_minute(2);
        let router = reference_service::router_with(db.clone(), limit);
        let (acme, globex) = (&seed.acme.admin_key.key, &seed.globex.admin_key.key);
        let project = format!("/projects/{}", seed.acme.project_id);
        let tasks = format!("{project}/tasks");
        expect(&router, call(Method::GET, "/projects").key(acme), 200).await;
        expect(&router, call(Method::GET, tasks.as_str()).key(acme), 200).await;
        // Acme has spent its two listings: 429, with when to retry.
        let over = expect(&router, call(Method::GET, "/projects").key(acme), 429).await;
        assert_eq!(over.body["error"]["code"], "too_many_requests");
        let retry: u64 = over
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&retry), "{retry}");
        // The other routes are not limited, and Globex has its own listings.
        expect(&router, call(Method::GET, project.as_str()).key(acme), 200).await;
        expect(&router, call(Method::GET, "/projects").key(globex), 200).await;
        // The default limit is generous.
        assert_eq!(
            reference_service::LIST_LIMIT,
            tenant_scope::http::RateLimit::per_second(100).burst(200)
        );
    }
);
