//! The axum integration (`tenant_scope::http`), in process (`tower::ServiceExt::oneshot`).
//!
//! - resolution, on every backend: a valid key is served as its tenant; every refusal (no, blank,
//!   malformed, non-Bearer, unknown, revoked, wrong key; two credentials; a named tenant that is not
//!   the key's, existing or not) is the same 401; the `X-Tenant-Id` header, subdomains (by tenant
//!   id and by slug) and the default tenant each agree, disagree (401) or are malformed (400); a key
//!   with another tenant's slug, an unknown slug or a malformed one is the same 401 and writes
//!   nothing; another tenant's row is the 404 of a row that never existed;
//! - request ids: taken, echoed, generated, replaced when invalid, the same in the context, the
//!   header and error bodies;
//! - the error shape: every `ApiError` and every axum rejection (415, 400, 422, 413, bad path and
//!   query, 404, 405) is `{"error": {"code", "message", "request_id"}}` as `application/json`; a
//!   500 never carries driver text, and its log has the request id but not the driver's text;
//! - bring your own identity, on every backend: a resolver with the `JwtVerifier` serves a member's
//!   token as its tenant (another tenant's row is the 404 of a row that never existed) and answers
//!   every bad token, a token with another tenant's header or host, and an API key, with the same
//!   401; a resolver with the `MembershipVerifier` behind a session layer does the same for
//!   sessions.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::routing::{get, post};
use chrono::Utc;
use entity::projects;
use sea_orm::ActiveValue::Set;
use sea_orm::DbErr;
use serde::Deserialize;
use serde_json::{Value, json};
use tenant_scope::http::{
    ApiError, REQUEST_ID_HEADER, RateLimit, RequestId, TENANT_HEADER, Tenant, TenantRateLimitLayer,
    TenantResolver, request_id_layer,
};
use tenant_scope::{ApiKeyVerifier, Error, TenantDb, TenantId, provision};
use test_support::TestDb;
use tower::ServiceExt;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Harness

/// One tenant: its id, its user, a valid key, a revoked key, a project.
struct Side {
    id: TenantId,
    user: Uuid,
    key: String,
    revoked: String,
    project: Uuid,
}

/// Two tenants, A and B, provisioned through the system handle; keys issued by `ApiKeyVerifier`.
struct Fixture {
    db: TenantDb,
    a: Side,
    b: Side,
}

async fn fixture(t: &TestDb) -> Fixture {
    let db = t.tenant_db().await;
    let (acme, globex) = test_support::two_tenants(&db, &[]).await;
    let mut sides = Vec::new();
    for tenant in [acme, globex] {
        // Issued and revoked by the provisioning job (its context passes the permission check).
        let job = db.scope(&tenant.job);
        let revoked = ApiKeyVerifier::issue(&job, tenant.user.id, "revoked")
            .await
            .expect("key");
        ApiKeyVerifier::revoke(&job, revoked.id)
            .await
            .expect("revoke");
        let project = job
            .insert(projects::ActiveModel {
                name: Set(format!("{} project", tenant.name)),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await
            .expect("project");
        sides.push(Side {
            id: tenant.id,
            user: tenant.user.id,
            key: tenant.key.key,
            revoked: revoked.key,
            project: project.id,
        });
    }
    let b = sides.pop().expect("B");
    let a = sides.pop().expect("A");
    Fixture { db, a, b }
}

/// A response, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The echoed `X-Request-Id`.
    fn request_id(&self) -> &str {
        self.header(REQUEST_ID_HEADER).expect("X-Request-Id")
    }

    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    /// The error body without its request id, to compare the bodies of two requests.
    fn error_without_request_id(&self) -> Value {
        let mut body = self.body.clone();
        if let Some(error) = body["error"].as_object_mut() {
            error.remove("request_id");
        }
        body
    }

    /// Asserts the one error shape: status, `application/json`, exactly `{"error": {"code",
    /// "message", "request_id"}}` with strings, the request id that of the header.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        let outer = self.body.as_object().expect("an object");
        assert_eq!(outer.len(), 1, "{self:?}");
        let error = self.body["error"].as_object().expect("error object");
        let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message", "request_id"], "{self:?}");
        assert!(error.values().all(Value::is_string), "{self:?}");
        assert_eq!(self.code(), code, "{self:?}");
        assert!(!self.message().is_empty(), "{self:?}");
        if let Some(id) = self.header(REQUEST_ID_HEADER) {
            assert_eq!(self.body["error"]["request_id"], id, "{self:?}");
        }
    }
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A GET of `uri` with `headers` (each appended, so a name may repeat).
fn get_with(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::get(uri).body(Body::empty()).expect("request");
    for (name, value) in headers {
        let name = header::HeaderName::from_bytes(name.as_bytes()).expect("name");
        let value = HeaderValue::from_str(value).expect("value");
        request.headers_mut().append(name, value);
    }
    request
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

// ---------------------------------------------------------------------------------------------
// The tenant routes

async fn whoami(Tenant(ctx): Tenant) -> Json<Value> {
    Json(json!({
        "tenant": ctx.tenant().to_string(),
        "actor": ctx.actor().to_string(),
        "request_id": ctx.request_id(),
    }))
}

async fn project(
    State(resolver): State<TenantResolver>,
    Tenant(ctx): Tenant,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let project = resolver
        .db()
        .scope(&ctx)
        .get::<projects::Entity>(id)
        .await?;
    Ok(Json(json!({ "id": project.id, "name": project.name })))
}

fn tenant_app(resolver: TenantResolver) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .route("/projects/{id}", get(project))
        .with_state(resolver)
        .layer(request_id_layer())
}

/// `/whoami` answered 200 for `tenant`.
fn assert_served_as(reply: &Reply, tenant: TenantId) {
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body["tenant"], tenant.to_string(), "{reply:?}");
}

/// The 401 of every refusal: identical bodies (modulo the request id), `WWW-Authenticate: Bearer`.
fn assert_denied(reply: &Reply, reference: &Reply) {
    reply.assert_error(401, "unauthorized");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer"),
        "{reply:?}"
    );
    assert_eq!(
        reply.error_without_request_id(),
        reference.error_without_request_id(),
        "{reply:?}"
    );
    assert_eq!(
        reply.headers.len(),
        reference.headers.len(),
        "the same headers: {reply:?}"
    );
}

/// The 401 of a request without credentials, to compare other refusals with.
async fn reference_401(app: &Router) -> Reply {
    let reply = send(app, get_with("/whoami", &[])).await;
    reply.assert_error(401, "unauthorized");
    reply
}

// ---------------------------------------------------------------------------------------------
// Resolution, on every backend

test_support::backend_test!(
    a_valid_key_is_served_as_its_tenant,
    |t: TestDb| async move {
        let f = fixture(&t).await;
        let app = tenant_app(TenantResolver::new(f.db.clone()));
        for side in [&f.a, &f.b] {
            let reply = send(
                &app,
                get_with("/whoami", &[("authorization", &bearer(&side.key))]),
            )
            .await;
            assert_served_as(&reply, side.id);
            assert!(
                reply.body["actor"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("api_key:")
            );
            // The context carries the request's id, the one echoed in the response.
            assert_eq!(reply.body["request_id"], reply.request_id());
            assert!(Uuid::try_parse(reply.request_id()).is_ok());
        }
        // The scheme is case-insensitive (RFC 7235); a given request id reaches the context.
        let reply = send(
            &app,
            get_with(
                "/whoami",
                &[
                    ("authorization", &format!("bearer {}", f.a.key)),
                    (REQUEST_ID_HEADER, "req-42"),
                ],
            ),
        )
        .await;
        assert_served_as(&reply, f.a.id);
        assert_eq!(reply.body["request_id"], "req-42");
        assert_eq!(reply.request_id(), "req-42");

        // A handler on the context: the own row is found; another tenant's row is the 404 of a row
        // that never existed, and of a route that does not exist.
        let auth = bearer(&f.a.key);
        let own = send(
            &app,
            get_with(
                &format!("/projects/{}", f.a.project),
                &[("authorization", &auth)],
            ),
        )
        .await;
        assert_eq!(own.status, StatusCode::OK, "{own:?}");
        assert_eq!(own.body["name"], "Acme project");
        let theirs = send(
            &app,
            get_with(
                &format!("/projects/{}", f.b.project),
                &[("authorization", &auth)],
            ),
        )
        .await;
        theirs.assert_error(404, "not_found");
        let never = send(
            &app,
            get_with(
                &format!("/projects/{}", Uuid::now_v7()),
                &[("authorization", &auth)],
            ),
        )
        .await;
        never.assert_error(404, "not_found");
        let no_route = send(&app, get_with("/nowhere", &[("authorization", &auth)])).await;
        no_route.assert_error(404, "not_found");
        assert_eq!(
            theirs.error_without_request_id(),
            never.error_without_request_id()
        );
        assert_eq!(
            theirs.error_without_request_id(),
            no_route.error_without_request_id()
        );
        assert_eq!(theirs.headers.len(), never.headers.len());
    }
);

test_support::backend_test!(every_refusal_is_the_same_401, |t: TestDb| async move {
    let f = fixture(&t).await;
    let app = tenant_app(TenantResolver::new(f.db.clone()));
    let reference = reference_401(&app).await;
    assert_eq!(reference.message(), "denied: credentials were not accepted");

    let a_simple = f.a.id.as_uuid().simple().to_string();
    let secret = "ab".repeat(32);
    let unknown_key = format!("tsk_{a_simple}_{}_{secret}", Uuid::now_v7().simple());
    let unknown_tenant = format!(
        "tsk_{}_{}_{secret}",
        Uuid::now_v7().simple(),
        Uuid::now_v7().simple()
    );
    let mut wrong_secret = f.a.key.clone();
    let last = if wrong_secret.ends_with('0') {
        '1'
    } else {
        '0'
    };
    wrong_secret.pop();
    wrong_secret.push(last);
    let a_key = bearer(&f.a.key);
    let nobody = TenantId::new().to_string();
    let b_simple = f.b.id.as_uuid().simple().to_string();

    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "blank Authorization",
            vec![("authorization", String::new())],
        ),
        ("scheme only", vec![("authorization", "Bearer".into())]),
        (
            "scheme and space",
            vec![("authorization", "Bearer ".into())],
        ),
        (
            "Basic",
            vec![("authorization", "Basic dXNlcjpwYXNz".into())],
        ),
        (
            "another scheme with the key",
            vec![("authorization", format!("Token {}", f.a.key))],
        ),
        (
            "the key without a scheme",
            vec![("authorization", f.a.key.clone())],
        ),
        ("not a key", vec![("authorization", bearer("not-a-key"))]),
        ("not a b64token", vec![("authorization", bearer("tsk a"))]),
        (
            "unknown key id",
            vec![("authorization", bearer(&unknown_key))],
        ),
        (
            "unknown tenant",
            vec![("authorization", bearer(&unknown_tenant))],
        ),
        (
            "wrong secret",
            vec![("authorization", bearer(&wrong_secret))],
        ),
        ("revoked key", vec![("authorization", bearer(&f.a.revoked))]),
        (
            "two credentials",
            vec![
                ("authorization", a_key.clone()),
                ("authorization", a_key.clone()),
            ],
        ),
        (
            "header names another existing tenant",
            vec![
                ("authorization", a_key.clone()),
                (TENANT_HEADER, f.b.id.to_string()),
            ],
        ),
        (
            "header names another tenant, simple form",
            vec![("authorization", a_key.clone()), (TENANT_HEADER, b_simple)],
        ),
        (
            "header names a tenant that does not exist",
            vec![("authorization", a_key.clone()), (TENANT_HEADER, nobody)],
        ),
        (
            "header names the key's tenant, key revoked",
            vec![
                ("authorization", bearer(&f.a.revoked)),
                (TENANT_HEADER, f.a.id.to_string()),
            ],
        ),
    ];
    for (case, headers) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let reply = send(&app, get_with("/whoami", &headers)).await;
        assert_denied(&reply, &reference);
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{case}");
    }
});

test_support::backend_test!(
    the_tenant_header_must_name_the_keys_tenant,
    |t: TestDb| async move {
        let f = fixture(&t).await;
        let app = tenant_app(TenantResolver::new(f.db.clone()));
        let reference = reference_401(&app).await;
        let a_key = bearer(&f.a.key);

        // Agreement, in every spelling of the id.
        for id in [
            f.a.id.to_string(),
            f.a.id.as_uuid().simple().to_string(),
            f.a.id.to_string().to_uppercase(),
        ] {
            let reply = send(
                &app,
                get_with(
                    "/whoami",
                    &[("authorization", &a_key), (TENANT_HEADER, &id)],
                ),
            )
            .await;
            assert_served_as(&reply, f.a.id);
        }
        // Disagreement: the 401 of no credentials at all.
        let reply = send(
            &app,
            get_with(
                "/whoami",
                &[
                    ("authorization", &a_key),
                    (TENANT_HEADER, &f.b.id.to_string()),
                ],
            ),
        )
        .await;
        assert_denied(&reply, &reference);

        // Malformed: 400 `invalid`, whatever the credential (decided from the header's syntax alone).
        let braced = format!("{{{}}}", f.a.id);
        let urn = format!("urn:uuid:{}", f.a.id);
        for bad in ["", "acme", "0192f3a0", braced.as_str(), urn.as_str()] {
            let mut first: Option<Value> = None;
            for auth in [Some(a_key.as_str()), Some("Bearer nope"), None] {
                let mut headers = vec![(TENANT_HEADER, bad)];
                headers.extend(auth.map(|a| ("authorization", a)));
                let reply = send(&app, get_with("/whoami", &headers)).await;
                reply.assert_error(400, "invalid");
                assert_eq!(
                    reply.message(),
                    "invalid input: malformed X-Tenant-Id header: expected a tenant id"
                );
                let body = reply.error_without_request_id();
                assert_eq!(first.get_or_insert_with(|| body.clone()), &body);
            }
        }
        // Two headers, even agreeing ones: 400.
        let a = f.a.id.to_string();
        let reply = send(
            &app,
            get_with(
                "/whoami",
                &[
                    ("authorization", &a_key),
                    (TENANT_HEADER, &a),
                    (TENANT_HEADER, &a),
                ],
            ),
        )
        .await;
        reply.assert_error(400, "invalid");
        assert_eq!(
            reply.message(),
            "invalid input: more than one X-Tenant-Id header"
        );

        // Turned off, the header is ignored: neither a disagreement nor a malformed value matters.
        let off = tenant_app(TenantResolver::new(f.db.clone()).tenant_header(false));
        for value in [f.b.id.to_string(), "acme".into()] {
            let reply = send(
                &off,
                get_with(
                    "/whoami",
                    &[("authorization", &a_key), (TENANT_HEADER, &value)],
                ),
            )
            .await;
            assert_served_as(&reply, f.a.id);
        }
    }
);

test_support::backend_test!(
    a_subdomain_must_name_the_keys_tenant,
    |t: TestDb| async move {
        let f = fixture(&t).await;
        let resolver = TenantResolver::new(f.db.clone()).subdomains("example.com");
        let app = tenant_app(resolver);
        let reference = reference_401(&app).await;
        let a_key = bearer(&f.a.key);
        let whoami = |host: &str| get_with("/whoami", &[("authorization", &a_key), ("host", host)]);

        // Agreement: hyphenated or simple, any case, with a port or a trailing dot.
        for host in [
            format!("{}.example.com", f.a.id),
            format!("{}.example.com:8443", f.a.id.as_uuid().simple()),
            format!("{}.EXAMPLE.COM", f.a.id.to_string().to_uppercase()),
            format!("{}.example.com.", f.a.id),
        ] {
            assert_served_as(&send(&app, whoami(&host)).await, f.a.id);
        }
        // Disagreement, with an existing tenant or one that does not exist: the same 401.
        for host in [
            format!("{}.example.com", f.b.id),
            format!("{}.example.com", TenantId::new()),
        ] {
            assert_denied(&send(&app, whoami(&host)).await, &reference);
        }
        // Other hosts name no tenant: served as the key's tenant. (A label that is no tenant id is
        // a slug: `a_slug_names_its_tenant_and_any_other_label_is_the_same_401`.)
        for host in [
            "example.com".to_owned(),
            "localhost:3000".to_owned(),
            format!("{}.other.com", f.b.id),
            format!("x.{}.example.com", f.b.id),
            format!("{}.x.example.com", f.b.id),
        ] {
            assert_served_as(&send(&app, whoami(&host)).await, f.a.id);
        }
        // The header and the host together: both must agree with each other and with the key.
        let host_a = format!("{}.example.com", f.a.id);
        let host_b = format!("{}.example.com", f.b.id);
        let (a, b) = (f.a.id.to_string(), f.b.id.to_string());
        let both = |host: &str, tenant: &str| {
            get_with(
                "/whoami",
                &[
                    ("authorization", &a_key),
                    ("host", host),
                    (TENANT_HEADER, tenant),
                ],
            )
        };
        assert_served_as(&send(&app, both(&host_a, &a)).await, f.a.id);
        assert_denied(&send(&app, both(&host_a, &b)).await, &reference);
        assert_denied(&send(&app, both(&host_b, &a)).await, &reference);
        assert_denied(&send(&app, both(&host_b, &b)).await, &reference);

        // HTTP/2 carries the host in the URI's authority, not in a Host header.
        let h2 = |host: &str| {
            get_with(
                &format!("http://{host}/whoami"),
                &[("authorization", &a_key)],
            )
        };
        assert_served_as(&send(&app, h2(&host_a)).await, f.a.id);
        assert_denied(&send(&app, h2(&host_b)).await, &reference);

        // Two Host headers: 400.
        let reply = send(
            &app,
            get_with(
                "/whoami",
                &[
                    ("authorization", &a_key),
                    ("host", &host_a),
                    ("host", &host_a),
                ],
            ),
        )
        .await;
        reply.assert_error(400, "invalid");

        // Without `subdomains`, the host names nothing.
        let plain = tenant_app(TenantResolver::new(f.db.clone()));
        assert_served_as(&send(&plain, whoami(&host_b)).await, f.a.id);
    }
);

test_support::backend_test!(
    a_tenant_over_its_rate_limit_gets_429_and_others_do_not,
    |t: TestDb| async move {
        let f = fixture(&t).await;
        let resolver = TenantResolver::new(f.db.clone());
        let app = Router::new()
            .route("/whoami", get(whoami))
            .route_layer(TenantRateLimitLayer::new(
                resolver.clone(),
                RateLimit::per_second(1).burst(3),
            ))
            .with_state(resolver)
            .layer(request_id_layer());
        let (a_key, b_key) = (bearer(&f.a.key), bearer(&f.b.key));
        let whoami = |key: &str| get_with("/whoami", &[("authorization", key)]);
        for _ in 0..3 {
            assert_served_as(&send(&app, whoami(&a_key)).await, f.a.id);
        }
        let over = send(&app, whoami(&a_key)).await;
        over.assert_error(429, "too_many_requests");
        assert_eq!(over.header("retry-after"), Some("1"), "{over:?}");
        assert!(!over.message().contains(&f.b.id.to_string()));
        // B has a bucket of its own; a refused credential spends nobody's.
        for _ in 0..3 {
            assert_served_as(&send(&app, whoami(&b_key)).await, f.b.id);
        }
        let reference = reference_401(&app).await;
        for _ in 0..5 {
            assert_denied(&send(&app, whoami(&bearer(&f.a.revoked))).await, &reference);
        }
        // A's next token comes at the rate.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert_served_as(&send(&app, whoami(&a_key)).await, f.a.id);
        let again = send(&app, whoami(&a_key)).await;
        again.assert_error(429, "too_many_requests");
    }
);

/// The tables a request could write to, for "nothing written".
const WRITTEN: &[&str] = &[
    "tenants",
    "users",
    "api_keys",
    "projects",
    "audit_events",
    "system_audit_events",
];

test_support::backend_test!(
    a_slug_names_its_tenant_and_any_other_label_is_the_same_401,
    |t: TestDb| async move {
        let f = fixture(&t).await;
        let system = f.db.system("test: tenant slugs").await.expect("system");
        provision::set_slug(&system, f.a.id, Some("acme"))
            .await
            .expect("A's slug");
        provision::set_slug(&system, f.b.id, Some("globex"))
            .await
            .expect("B's slug");
        drop(system);
        let app = tenant_app(TenantResolver::new(f.db.clone()).subdomains("example.com"));
        let reference = reference_401(&app).await;
        let (a_key, b_key) = (bearer(&f.a.key), bearer(&f.b.key));
        let at = |host: &str, key: &str, path: &str| {
            get_with(path, &[("authorization", key), ("host", host)])
        };

        // A slug names its tenant, in any case, with a port or a trailing dot.
        for host in [
            "acme.example.com",
            "ACME.Example.com:8443",
            "acme.example.com.",
        ] {
            assert_served_as(&send(&app, at(host, &a_key, "/whoami")).await, f.a.id);
        }
        assert_served_as(
            &send(&app, at("globex.example.com", &b_key, "/whoami")).await,
            f.b.id,
        );
        let own = send(
            &app,
            at(
                "acme.example.com",
                &a_key,
                &format!("/projects/{}", f.a.project),
            ),
        )
        .await;
        assert_eq!(own.status, StatusCode::OK, "{own:?}");

        // A's key with B's slug, with a slug no tenant has, with labels that are no slug: the same
        // 401, on every route, and nothing written.
        let before = t.row_counts(WRITTEN).await;
        let long = format!("{}.example.com", "a".repeat(64));
        let a_header = f.a.id.to_string();
        let b_header = f.b.id.to_string();
        let revoked = bearer(&f.a.revoked);
        let mut refused: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
        for host in [
            "globex.example.com",
            "initech.example.com",
            "www.example.com",
            "acme_corp.example.com",
            "-acme.example.com",
            long.as_str(),
        ] {
            refused.push((host, vec![("authorization", &a_key), ("host", host)]));
        }
        // The header cannot lend a slug its tenant, nor the slug the header: both must be the key's.
        refused.push((
            "B's slug, A's header",
            vec![
                ("authorization", &a_key),
                ("host", "globex.example.com"),
                (TENANT_HEADER, &a_header),
            ],
        ));
        refused.push((
            "A's slug, B's header",
            vec![
                ("authorization", &a_key),
                ("host", "acme.example.com"),
                (TENANT_HEADER, &b_header),
            ],
        ));
        // A bad credential with the right slug.
        refused.push((
            "A's slug, A's revoked key",
            vec![("authorization", &revoked), ("host", "acme.example.com")],
        ));
        for (what, headers) in &refused {
            let reply = send(&app, get_with("/whoami", headers)).await;
            assert_denied(&reply, &reference);
            for project in [f.a.project, f.b.project] {
                let reply = send(&app, get_with(&format!("/projects/{project}"), headers)).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}: {reply:?}");
            }
        }
        assert_eq!(t.row_counts(WRITTEN).await, before, "nothing was written");

        // A renamed tenant: the new slug names it, the old one no longer does.
        let system = f.db.system("test: rename a slug").await.expect("system");
        provision::set_slug(&system, f.a.id, Some("acme-corp"))
            .await
            .expect("rename");
        drop(system);
        assert_served_as(
            &send(&app, at("acme-corp.example.com", &a_key, "/whoami")).await,
            f.a.id,
        );
        assert_denied(
            &send(&app, at("acme.example.com", &a_key, "/whoami")).await,
            &reference,
        );
    }
);

test_support::backend_test!(
    the_default_tenant_applies_when_nothing_names_one,
    |t: TestDb| async move {
        let f = fixture(&t).await;
        let (a_key, b_key) = (bearer(&f.a.key), bearer(&f.b.key));
        let plain = tenant_app(TenantResolver::new(f.db.clone()));
        let single = tenant_app(TenantResolver::new(f.db.clone()).default_tenant(f.a.id));
        let reference = reference_401(&single).await;

        // Off (the default): a request that names nothing is served as its key's tenant.
        assert_served_as(
            &send(&plain, get_with("/whoami", &[("authorization", &b_key)])).await,
            f.b.id,
        );
        // On: the key must be the default tenant's...
        assert_served_as(
            &send(&single, get_with("/whoami", &[("authorization", &a_key)])).await,
            f.a.id,
        );
        assert_denied(
            &send(&single, get_with("/whoami", &[("authorization", &b_key)])).await,
            &reference,
        );
        // ... unless the request names a tenant: the default is only for requests that name none.
        let b = f.b.id.to_string();
        let reply = send(
            &single,
            get_with("/whoami", &[("authorization", &b_key), (TENANT_HEADER, &b)]),
        )
        .await;
        assert_served_as(&reply, f.b.id);
        let a = f.a.id.to_string();
        let reply = send(
            &single,
            get_with("/whoami", &[("authorization", &b_key), (TENANT_HEADER, &a)]),
        )
        .await;
        assert_denied(&reply, &reference);

        // With subdomains: a tenant host names its tenant; a host that names none falls back to the
        // default.
        let hosts = tenant_app(
            TenantResolver::new(f.db.clone())
                .subdomains("example.com")
                .default_tenant(f.a.id),
        );
        let host_b = format!("{}.example.com", f.b.id);
        let reply = send(
            &hosts,
            get_with("/whoami", &[("authorization", &b_key), ("host", &host_b)]),
        )
        .await;
        assert_served_as(&reply, f.b.id);
        let reply = send(
            &hosts,
            get_with(
                "/whoami",
                &[("authorization", &b_key), ("host", "example.com")],
            ),
        )
        .await;
        assert_denied(&reply, &reference);
    }
);

// ---------------------------------------------------------------------------------------------
// Bring your own identity, on every backend

test_support::backend_test!(
    a_jwt_is_served_as_its_tenant_and_every_bad_one_is_the_same_401,
    |t: TestDb| async move {
        use test_support::jwt::{self, Signer};
        let f = fixture(&t).await;
        let resolver =
            TenantResolver::with_verifier(f.db.clone(), jwt::verifier()).subdomains("example.com");
        let app = tenant_app(resolver);
        let reference = reference_401(&app).await;
        let token_a = jwt::sign(Signer::Rsa, &jwt::claims(f.a.id, f.a.user));
        let auth_a = bearer(&token_a);

        let reply = send(&app, get_with("/whoami", &[("authorization", &auth_a)])).await;
        assert_served_as(&reply, f.a.id);
        let own = send(
            &app,
            get_with(
                &format!("/projects/{}", f.a.project),
                &[("authorization", &auth_a)],
            ),
        )
        .await;
        assert_eq!(own.status, StatusCode::OK, "{own:?}");
        // Another tenant's project reads exactly like one that never existed.
        let theirs = send(
            &app,
            get_with(
                &format!("/projects/{}", f.b.project),
                &[("authorization", &auth_a)],
            ),
        )
        .await;
        let never = send(
            &app,
            get_with(
                &format!("/projects/{}", Uuid::now_v7()),
                &[("authorization", &auth_a)],
            ),
        )
        .await;
        theirs.assert_error(404, "not_found");
        assert_eq!(
            theirs.error_without_request_id(),
            never.error_without_request_id()
        );

        let now = Utc::now().timestamp();
        let mut expired = jwt::claims(f.a.id, f.a.user);
        expired.insert("exp".into(), json!(now - 3600));
        let mut audience = jwt::claims(f.a.id, f.a.user);
        audience.insert("aud".into(), json!("another-api"));
        let not_a_member = jwt::claims(f.b.id, f.a.user);
        let host_b = format!("{}.example.com", f.b.id);
        let b = f.b.id.to_string();
        let refused: Vec<(&str, Vec<(&str, String)>)> = vec![
            (
                "expired",
                vec![("authorization", bearer(&jwt::sign(Signer::Rsa, &expired)))],
            ),
            (
                "another audience",
                vec![("authorization", bearer(&jwt::sign(Signer::Ec, &audience)))],
            ),
            (
                "forged",
                vec![(
                    "authorization",
                    bearer(&jwt::sign(Signer::Attacker, &jwt::claims(f.a.id, f.a.user))),
                )],
            ),
            (
                "alg none",
                vec![(
                    "authorization",
                    bearer(&jwt::unsigned(&jwt::claims(f.a.id, f.a.user))),
                )],
            ),
            (
                "a user of A in a token naming B",
                vec![(
                    "authorization",
                    bearer(&jwt::sign(Signer::Rsa, &not_a_member)),
                )],
            ),
            (
                "A's token, B's header",
                vec![("authorization", auth_a.clone()), (TENANT_HEADER, b)],
            ),
            (
                "A's token, B's host",
                vec![("authorization", auth_a.clone()), ("host", host_b)],
            ),
            ("an API key", vec![("authorization", bearer(&f.a.key))]),
        ];
        for (what, headers) in &refused {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let reply = send(&app, get_with("/whoami", &headers)).await;
            assert_denied(&reply, &reference);
            let project = send(
                &app,
                get_with(&format!("/projects/{}", f.a.project), &headers),
            )
            .await;
            assert_eq!(
                project.status,
                StatusCode::UNAUTHORIZED,
                "{what}: {project:?}"
            );
        }
    }
);

test_support::backend_test!(
    a_session_layer_with_the_membership_verifier,
    |t: TestDb| async move {
        use std::collections::HashMap;

        use axum::extract::Request as AxumRequest;
        use axum::middleware::{self, Next};
        use tenant_scope::MembershipVerifier;
        use tenant_scope::http::AuthenticatedUser;

        let f = fixture(&t).await;
        // The service's session store: session id -> who signed in to which tenant. The last one
        // is stale: A's user, recorded as signed in to B.
        let sessions: Arc<HashMap<String, AuthenticatedUser>> = Arc::new(HashMap::from([
            (
                "s-a".to_owned(),
                AuthenticatedUser {
                    tenant: f.a.id,
                    user_id: f.a.user,
                },
            ),
            (
                "s-b".to_owned(),
                AuthenticatedUser {
                    tenant: f.b.id,
                    user_id: f.b.user,
                },
            ),
            (
                "s-stale".to_owned(),
                AuthenticatedUser {
                    tenant: f.b.id,
                    user_id: f.a.user,
                },
            ),
        ]));
        // The session layer: the cookie's session, if any, becomes the request's claim.
        let session_layer = middleware::from_fn(move |mut request: AxumRequest, next: Next| {
            let sessions = Arc::clone(&sessions);
            async move {
                let session = request
                    .headers()
                    .get(header::COOKIE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|c| c.strip_prefix("session="))
                    .and_then(|id| sessions.get(id).copied());
                if let Some(user) = session {
                    request.extensions_mut().insert(user);
                }
                next.run(request).await
            }
        });
        let app = Router::new()
            .route("/whoami", get(whoami))
            .with_state(TenantResolver::with_verifier(
                f.db.clone(),
                MembershipVerifier,
            ))
            .layer(session_layer)
            .layer(request_id_layer());
        let reference = reference_401(&app).await;
        for (session, tenant) in [("s-a", f.a.id), ("s-b", f.b.id)] {
            let cookie = format!("session={session}");
            let reply = send(&app, get_with("/whoami", &[("cookie", &cookie)])).await;
            assert_served_as(&reply, tenant);
        }
        for refused in ["session=s-stale", "session=unknown", "other=s-a"] {
            let reply = send(&app, get_with("/whoami", &[("cookie", refused)])).await;
            assert_denied(&reply, &reference);
        }
        // A session does not make an API key valid, nor the other way round.
        let reply = send(
            &app,
            get_with("/whoami", &[("authorization", &bearer(&f.a.key))]),
        )
        .await;
        assert_denied(&reply, &reference);
    }
);

// ---------------------------------------------------------------------------------------------
// Request ids and the error shape (no database needed)

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by serde
struct NewProject {
    name: String,
}

#[derive(Deserialize)]
#[allow(dead_code)] // read by serde
struct Search {
    limit: u32,
}

const DRIVER_TEXT: &str =
    "duplicate key value violates unique constraint (email)=(ceo@rival.example)";

async fn fail(Path(kind): Path<String>) -> ApiError {
    ApiError(match kind.as_str() {
        "not_found" => Error::NotFound,
        "forbidden" => Error::Forbidden,
        "conflict" => Error::Conflict,
        "tenant_mismatch" => Error::TenantMismatch,
        "denied" => Error::Denied,
        "invalid" => Error::Invalid("the name is empty".into()),
        "config" => Error::Config("no system connection".into()),
        _ => Error::from(DbErr::Custom(DRIVER_TEXT.into())),
    })
}

fn plain_routes() -> Router {
    Router::new()
        .route(
            "/projects",
            post(|Json(_): Json<NewProject>| async { Json(json!({"ok": true})) }),
        )
        .route(
            "/items/{id}",
            get(|Path(id): Path<Uuid>| async move { id.to_string() }),
        )
        .route(
            "/search",
            get(|Query(q): Query<Search>| async move { q.limit.to_string() }),
        )
        .route("/fail/{kind}", get(fail))
        .route(
            "/text500",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, DRIVER_TEXT) }),
        )
        .route(
            "/json409",
            get(|| async { (StatusCode::CONFLICT, Json(json!({"detail": DRIVER_TEXT}))) }),
        )
        .route(
            "/request-id",
            get(|id: RequestId| async move { id.as_str().to_owned() }),
        )
        .layer(DefaultBodyLimit::max(64))
}

fn plain_app() -> Router {
    plain_routes().layer(request_id_layer())
}

fn post_json(uri: &str, content_type: Option<&str>, body: &str) -> Request<Body> {
    let mut builder = Request::post(uri);
    if let Some(content_type) = content_type {
        builder = builder.header(header::CONTENT_TYPE, content_type);
    }
    builder.body(Body::from(body.to_owned())).expect("request")
}

#[tokio::test]
async fn request_ids_are_taken_echoed_or_generated() {
    let app = plain_app();
    let id_of = |reply: &Reply| reply.body.as_str().unwrap_or_default().to_owned();

    // None given: a new UUIDv7, the same in the extractor and the response header.
    let reply = send(&app, get_with("/request-id", &[])).await;
    let generated = Uuid::try_parse(reply.request_id()).expect("a UUID");
    assert_eq!(generated.get_version_num(), 7);
    assert_eq!(id_of(&reply), reply.request_id());

    // A valid one is kept, up to 128 visible ASCII characters.
    let long = "r".repeat(128);
    for given in ["req-42", "a", "!~#{}", long.as_str()] {
        let reply = send(&app, get_with("/request-id", &[(REQUEST_ID_HEADER, given)])).await;
        assert_eq!(reply.request_id(), given);
        assert_eq!(id_of(&reply), given);
    }
    // An invalid one is replaced by a new one.
    let too_long = "r".repeat(129);
    for given in ["", "has space", "tab\there", too_long.as_str()] {
        let reply = send(&app, get_with("/request-id", &[(REQUEST_ID_HEADER, given)])).await;
        assert!(
            Uuid::try_parse(reply.request_id()).is_ok(),
            "{given:?}: {reply:?}"
        );
        assert_eq!(id_of(&reply), reply.request_id());
    }
    let mut request = get_with("/request-id", &[]);
    request.headers_mut().insert(
        REQUEST_ID_HEADER,
        HeaderValue::from_bytes("caf\u{e9}".as_bytes()).expect("obs-text"),
    );
    let reply = send(&app, request).await;
    assert!(Uuid::try_parse(reply.request_id()).is_ok(), "{reply:?}");
    // Two headers: neither is taken.
    let reply = send(
        &app,
        get_with(
            "/request-id",
            &[(REQUEST_ID_HEADER, "a"), (REQUEST_ID_HEADER, "b")],
        ),
    )
    .await;
    assert!(Uuid::try_parse(reply.request_id()).is_ok(), "{reply:?}");

    // Error responses carry it too, in the header and the body.
    let reply = send(
        &app,
        get_with("/nowhere", &[(REQUEST_ID_HEADER, "req-404")]),
    )
    .await;
    reply.assert_error(404, "not_found");
    assert_eq!(reply.request_id(), "req-404");
    assert_eq!(reply.body["error"]["request_id"], "req-404");
    let reply = send(
        &app,
        get_with("/fail/db", &[(REQUEST_ID_HEADER, "req-500")]),
    )
    .await;
    reply.assert_error(500, "internal");
    assert_eq!(reply.body["error"]["request_id"], "req-500");
}

#[tokio::test]
async fn api_errors_render_one_shape() {
    let app = plain_app();
    for (kind, status, code, message) in [
        ("not_found", 404, "not_found", "not found"),
        ("forbidden", 403, "forbidden", "forbidden"),
        (
            "conflict",
            409,
            "conflict",
            "conflict: the change collides with existing rows",
        ),
        (
            "tenant_mismatch",
            400,
            "tenant_mismatch",
            "tenant mismatch: the value does not belong to the current tenant",
        ),
        (
            "denied",
            401,
            "unauthorized",
            "denied: credentials were not accepted",
        ),
        (
            "invalid",
            400,
            "invalid",
            "invalid input: the name is empty",
        ),
        ("config", 500, "internal", "an internal error occurred"),
        ("db", 500, "internal", "an internal error occurred"),
    ] {
        let reply = send(&app, get_with(&format!("/fail/{kind}"), &[])).await;
        reply.assert_error(status, code);
        assert_eq!(reply.message(), message, "{kind}");
        let www = reply.header("www-authenticate");
        assert_eq!(www, (status == 401).then_some("Bearer"), "{kind}");
    }
    // A router's 404 and an ApiError's 404 read the same.
    let unknown = send(&app, get_with("/nowhere", &[])).await;
    let not_found = send(&app, get_with("/fail/not_found", &[])).await;
    assert_eq!(
        unknown.error_without_request_id(),
        not_found.error_without_request_id()
    );
}

#[tokio::test]
async fn axum_rejections_render_one_shape() {
    let app = plain_app();

    let ok = send(
        &app,
        post_json("/projects", Some("application/json"), r#"{"name":"x"}"#),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    assert_eq!(ok.body, json!({"ok": true}));

    // Not JSON: 415.
    for content_type in [None, Some("text/plain")] {
        let reply = send(
            &app,
            post_json("/projects", content_type, r#"{"name":"x"}"#),
        )
        .await;
        reply.assert_error(415, "unsupported_media_type");
        assert!(reply.message().contains("Content-Type"), "{reply:?}");
    }
    // Malformed JSON: 400, with axum's description of the input.
    let reply = send(
        &app,
        post_json("/projects", Some("application/json"), r#"{"name":"#),
    )
    .await;
    reply.assert_error(400, "invalid");
    assert!(reply.message().contains("JSON"), "{reply:?}");
    // An unknown field (`deny_unknown_fields`), and a missing one: 422.
    let reply = send(
        &app,
        post_json(
            "/projects",
            Some("application/json"),
            r#"{"name":"x","tenant_id":"y"}"#,
        ),
    )
    .await;
    reply.assert_error(422, "invalid");
    assert!(
        reply.message().contains("unknown field `tenant_id`"),
        "{reply:?}"
    );
    let reply = send(&app, post_json("/projects", Some("application/json"), "{}")).await;
    reply.assert_error(422, "invalid");
    // Over the `DefaultBodyLimit`: 413.
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(100));
    let reply = send(&app, post_json("/projects", Some("application/json"), &big)).await;
    reply.assert_error(413, "payload_too_large");
    // A path segment that is not a UUID, a query that does not parse: 400.
    let reply = send(&app, get_with("/items/not-a-uuid", &[])).await;
    reply.assert_error(400, "invalid");
    let reply = send(&app, get_with("/search?limit=many", &[])).await;
    reply.assert_error(400, "invalid");
    // No such route: 404; no such method: 405, with its `Allow` header kept.
    let reply = send(&app, get_with("/nowhere", &[])).await;
    reply.assert_error(404, "not_found");
    assert_eq!(reply.message(), "not found");
    let delete = Request::delete(format!("/items/{}", Uuid::now_v7()))
        .body(Body::empty())
        .expect("request");
    let reply = send(&app, delete).await;
    reply.assert_error(405, "method_not_allowed");
    assert!(
        reply
            .header("allow")
            .is_some_and(|allow| allow.contains("GET")),
        "{reply:?}"
    );
    // A handler's own 409 body is replaced by the fixed text of a conflict.
    let reply = send(&app, get_with("/json409", &[])).await;
    reply.assert_error(409, "conflict");
    assert_eq!(reply.message(), Error::Conflict.to_string());
    assert!(!reply.body.to_string().contains("rival"));
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

#[tokio::test]
async fn a_500_never_carries_driver_text() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = plain_app();
    let reply = send(
        &app,
        get_with("/fail/db", &[(REQUEST_ID_HEADER, "req-db-1")]),
    )
    .await;
    reply.assert_error(500, "internal");
    assert_eq!(reply.message(), "an internal error occurred");
    // Neither the body nor any header says anything of the driver's error.
    let everything = format!("{:?} {}", reply.headers, reply.body);
    for leak in ["rival", "duplicate", "constraint"] {
        assert!(!everything.contains(leak), "{everything}");
    }
    // The log has the error at ERROR with the request id, without the driver's text.
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains("database error"))
        .unwrap_or_else(|| panic!("no database error logged: {text}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("req-db-1"), "{line}");
    assert!(!text.contains("rival"), "{text}");

    // A handler's own 500 with driver text: the text never reaches the caller.
    let reply = send(&app, get_with("/text500", &[])).await;
    reply.assert_error(500, "internal");
    assert_eq!(reply.message(), "an internal error occurred");
    assert!(!reply.body.to_string().contains("rival"));
}

#[tokio::test]
async fn without_the_layer_an_api_error_is_still_the_one_shape() {
    let app = plain_routes();
    let reply = send(&app, get_with("/fail/not_found", &[])).await;
    reply.assert_error(404, "not_found");
    assert_eq!(reply.header(REQUEST_ID_HEADER), None);
    let id = reply.body["error"]["request_id"]
        .as_str()
        .unwrap_or_default();
    assert!(Uuid::try_parse(id).is_ok(), "{reply:?}");
    // The extractor applies the layer's rule on its own.
    let reply = send(
        &app,
        get_with("/request-id", &[(REQUEST_ID_HEADER, "req-1")]),
    )
    .await;
    assert_eq!(reply.body, "req-1");
}
