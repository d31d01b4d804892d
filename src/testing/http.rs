//! [`HttpCheck`]: the cross-tenant properties over HTTP, for any axum `Router` (or tower
//! `Service` of the same shape).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use proptest::prelude::*;
use sea_orm::JsonValue;
use tower::{Service, ServiceExt};

use crate::contract::TENANT_COLUMN;
use crate::tenant::TenantId;

use super::world::{World, text};
use super::{Failure, run};

/// The ids one request is built with: one id per slot, by table name.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    ids: BTreeMap<String, JsonValue>,
}

impl Ids {
    /// The id for `table`: a JSON number for an integer id, a string for a UUID; `null` if the
    /// route did not declare the slot.
    pub fn get(&self, table: &str) -> JsonValue {
        self.ids.get(table).cloned().unwrap_or(JsonValue::Null)
    }

    fn text(&self, table: &str) -> String {
        text(&self.get(table)).unwrap_or_default()
    }
}

type BodyFn = Arc<dyn Fn(&Ids) -> JsonValue + Send + Sync>;

/// One route to replay: a method, a path whose `{table}` slots take an id of a row of that table
/// (`/invoices/{invoices}`), and optionally a JSON body built from ids of the tables it declares.
///
/// ```
/// use serde_json::json;
/// use tenant_scope::testing::Route;
///
/// let routes = [
///     Route::get("/invoices/{invoices}"),
///     Route::delete("/invoices/{invoices}"),
///     Route::post("/invoices").json_with(["customers", "products"], |ids| {
///         json!({
///             "customer_id": ids.get("customers"),
///             "lines": [{"product_id": ids.get("products"), "quantity": 1}],
///         })
///     }),
/// ];
/// # let _ = routes;
/// ```
#[derive(Clone)]
pub struct Route {
    method: Method,
    path: String,
    slots: Vec<String>,
    body: Option<BodyFn>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if self.body.is_some() {
            write!(f, " (a JSON body)")?;
        }
        Ok(())
    }
}

impl Route {
    /// A route with `method` and `path`.
    pub fn new(method: Method, path: &str) -> Self {
        let mut slots = Vec::new();
        let mut rest = path;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start..].find('}') else {
                break;
            };
            slots.push(rest[start + 1..start + len].to_owned());
            rest = &rest[start + len + 1..];
        }
        Self {
            method,
            path: path.to_owned(),
            slots,
            body: None,
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Self {
        Self::new(Method::POST, path)
    }

    /// `PUT path`.
    pub fn put(path: &str) -> Self {
        Self::new(Method::PUT, path)
    }

    /// `PATCH path`.
    pub fn patch(path: &str) -> Self {
        Self::new(Method::PATCH, path)
    }

    /// `DELETE path`.
    pub fn delete(path: &str) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// A JSON body built by `body` (from the ids of the path).
    pub fn json(self, body: impl Fn(&Ids) -> JsonValue + Send + Sync + 'static) -> Self {
        self.json_with::<[&str; 0], &str>([], body)
    }

    /// A JSON body built by `body` from ids of `tables` (besides those of the path).
    pub fn json_with<I, S>(
        mut self,
        tables: I,
        body: impl Fn(&Ids) -> JsonValue + Send + Sync + 'static,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for table in tables {
            let table = table.into();
            if !self.slots.contains(&table) {
                self.slots.push(table);
            }
        }
        self.body = Some(Arc::new(body));
        self
    }

    fn request(&self, ids: &Ids, credentials: &HeaderMap) -> Result<Request<Body>, Failure> {
        let mut path = self.path.clone();
        for slot in &self.slots {
            path = path.replace(&format!("{{{slot}}}"), &ids.text(slot));
        }
        let body = self.body.as_ref().map(|build| build(ids));
        let mut request = Request::builder().method(self.method.clone()).uri(path);
        if let Some(headers) = request.headers_mut() {
            headers.extend(credentials.clone());
            if body.is_some() {
                headers.insert(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
        }
        let body = body.map_or_else(Body::empty, |json| Body::from(json.to_string()));
        request
            .body(body)
            .map_err(|e| Failure::setup(format!("{self:?}: cannot build a request: {e}")))
    }
}

/// What one run of [`HttpCheck::run`] sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpCoverage {
    /// Requests sent with another tenant's ids (each with its twin of ids that never existed),
    /// by route.
    pub foreign: BTreeMap<String, u64>,
    /// The statuses those requests were answered with, and how often.
    pub statuses: BTreeMap<u16, u64>,
}

/// The normaliser of response bodies before they are compared.
type Normaliser = Arc<dyn Fn(&mut JsonValue) + Send + Sync>;

/// The HTTP properties of a service on a [`World`]: every [`Route`] is replayed, in random
/// sequences, as tenant A with ids of tenant B's rows and again with ids that never existed,
/// with A's credentials, and
///
/// 1. the two answers are indistinguishable: status, headers (but `x-request-id`, `date` and
///    `content-length`, and those [`HttpCheck::ignore_header`] adds) and body (JSON, after the
///    normaliser: by default every `request_id` field is removed);
/// 2. no answer carries any of B's values ([`World::markers`]: B's ids, names, emails…);
/// 3. B's rows (and B's audit events) are the same before and after;
/// 4. at the end, every route answers each tenant with its own ids with something else than 401,
///    404 or 5xx, so that the credentials and the templates are known to work.
///
/// A 403 for B's row where a row that never existed is a 404 fails (1): 403 is for one's own rows.
///
/// ```no_run
/// # async fn f(world: &tenant_scope::testing::World, router: axum::Router, tokens: [String; 2])
/// # -> Result<(), tenant_scope::testing::Failure> {
/// use tenant_scope::testing::{HttpCheck, Route};
///
/// let mut check = HttpCheck::new(world, router)
///     .route(Route::get("/projects/{projects}"))
///     .route(Route::delete("/projects/{projects}"));
/// for (ctx, token) in world.tenants().iter().zip(tokens) {
///     check = check.credentials(ctx.tenant(), [("authorization", format!("Bearer {token}"))]);
/// }
/// check.run().await?;
/// # Ok(()) }
/// ```
pub struct HttpCheck<S> {
    world: World,
    service: S,
    routes: Vec<Route>,
    credentials: BTreeMap<TenantId, HeaderMap>,
    ignored: HashSet<HeaderName>,
    normalise: Normaliser,
}

impl<S> fmt::Debug for HttpCheck<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCheck")
            .field("routes", &self.routes)
            .field("tenants", &self.credentials.keys().collect::<Vec<_>>())
            .field("ignored", &self.ignored)
            .finish_non_exhaustive()
    }
}

/// One request of a case.
#[derive(Clone, Debug)]
struct Req {
    route: usize,
    viewer: usize,
    owner: usize,
    pick: usize,
}

/// An answer: what is compared (status, headers but the ignored ones, normalised body), and
/// the whole of it as text, to look for other tenants' values in.
#[derive(Clone, Debug)]
struct Answer {
    status: StatusCode,
    headers: BTreeMap<String, String>,
    body: JsonValue,
    text: String,
}

impl PartialEq for Answer {
    fn eq(&self, other: &Self) -> bool {
        (self.status, &self.headers, &self.body) == (other.status, &other.headers, &other.body)
    }
}

impl<S> HttpCheck<S> {
    /// The check of `service` (an axum `Router`, say) on `world`.
    pub fn new(world: &World, service: S) -> Self {
        let ignored = ["x-request-id", "date", "content-length"]
            .into_iter()
            .map(HeaderName::from_static)
            .collect();
        Self {
            world: world.clone(),
            service,
            routes: Vec::new(),
            credentials: BTreeMap::new(),
            ignored,
            normalise: Arc::new(|body| remove_key(body, "request_id")),
        }
    }

    /// Adds a route to replay.
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// The headers that authenticate a caller of `tenant` (a bearer token, a session cookie).
    /// Every tenant of the world needs some. Headers that are not valid are left out.
    pub fn credentials<I, N, V>(mut self, tenant: TenantId, headers: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let map = self.credentials.entry(tenant).or_default();
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_ref()),
                HeaderValue::try_from(value.as_ref()),
            ) {
                map.append(name, value);
            }
        }
        self
    }

    /// A response header that may differ between two answers (besides `x-request-id`, `date`,
    /// `content-length`).
    pub fn ignore_header(mut self, name: &'static str) -> Self {
        self.ignored.insert(HeaderName::from_static(name));
        self
    }

    /// How a JSON body is normalised before two are compared (default: every `request_id` field
    /// removed). Make it remove what differs between any two requests (timestamps, generated
    /// ids), never what depends on the row asked for.
    pub fn normalise(mut self, f: impl Fn(&mut JsonValue) + Send + Sync + 'static) -> Self {
        self.normalise = Arc::new(f);
        self
    }
}

impl<S> HttpCheck<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    /// Runs the check: [`DEFAULT_CASES`](super::DEFAULT_CASES) random sequences of 1 to 6
    /// requests (or `PROPTEST_CASES`), shrunk to a minimal one on a failure.
    ///
    /// # Errors
    ///
    /// A [`Failure`]: a leak; vacuous if a route could never be sent with another tenant's ids
    /// or no answer was a 404; setup if a tenant has no credentials or a route does not answer
    /// its own tenant; the database's error.
    pub async fn run(self) -> Result<HttpCoverage, Failure> {
        let tenants: Vec<TenantId> = self.world.tenants().iter().map(|c| c.tenant()).collect();
        if self.routes.is_empty() {
            return Err(Failure::vacuous("no routes to check"));
        }
        if let Some(t) = tenants.iter().find(|t| !self.credentials.contains_key(t)) {
            return Err(Failure::setup(format!(
                "tenant {t} of the world has no credentials"
            )));
        }
        let mut coverage = HttpCoverage::default();
        // What each tenant's rows hold, read once: the world's rows are those read when it was made.
        let markers: Vec<BTreeSet<String>> =
            tenants.iter().map(|t| self.world.markers(*t)).collect();
        let strategy = proptest::collection::vec(
            (
                0..self.routes.len(),
                0..tenants.len(),
                1..tenants.len(),
                any::<usize>(),
            )
                .prop_map(move |(route, viewer, offset, pick)| Req {
                    route,
                    viewer,
                    owner: (viewer + offset) % tenants.len(),
                    pick,
                }),
            1..=6,
        );
        run("HttpCheck", strategy, async |case: &Vec<Req>| {
            self.case(case, &markers, &mut coverage).await
        })
        .await?;
        self.vacuity(&coverage)?;
        self.controls().await?;
        Ok(coverage)
    }

    /// One case; `markers` are each tenant's [`World::markers`], in the world's order.
    async fn case(
        &self,
        case: &[Req],
        markers: &[BTreeSet<String>],
        coverage: &mut HttpCoverage,
    ) -> Result<(), Failure> {
        let before = self.world.snapshot().await?;
        for req in case {
            let tenants = self.world.tenants();
            let (viewer, owner) = (tenants[req.viewer].tenant(), tenants[req.owner].tenant());
            let route = &self.routes[req.route];
            let Some((theirs, never)) = self.ids(route, owner, viewer, req.pick) else {
                continue;
            };
            let credentials = &self.credentials[&viewer];
            let a = self.send(route.request(&theirs, credentials)?).await;
            let b = self.send(route.request(&never, credentials)?).await;
            *coverage.foreign.entry(format!("{route:?}")).or_default() += 1;
            *coverage.statuses.entry(a.status.as_u16()).or_default() += 1;
            let who = format!(
                "{route:?} as tenant #{} with tenant #{}'s ids",
                req.viewer, req.owner
            );
            let echoed: BTreeSet<String> = theirs.ids.values().filter_map(text).collect();
            for (index, values) in markers.iter().enumerate() {
                if index == req.viewer {
                    continue;
                }
                for answer in [&a, &b] {
                    if let Some(marker) = values
                        .iter()
                        .find(|m| !echoed.contains(*m) && answer.text.contains(m.as_str()))
                    {
                        return Err(Failure::leak(format!(
                            "{who}: the answer carries tenant #{index}'s value {marker:?}: {}",
                            short(&answer.text)
                        )));
                    }
                }
            }
            if a != b {
                return Err(Failure::leak(format!(
                    "{who} answered {} {:?} {}; with ids that never existed {} {:?} {}",
                    a.status,
                    a.headers,
                    short(&a.body.to_string()),
                    b.status,
                    b.headers,
                    short(&b.body.to_string())
                )));
            }
        }
        let after = self.world.snapshot().await?;
        for (index, ctx) in self.world.tenants().iter().enumerate() {
            let tenant = ctx.tenant().to_string();
            for (table, rows) in &before {
                let of = |rows: &[JsonValue]| -> Vec<JsonValue> {
                    rows.iter()
                        .filter(|r| r.get(TENANT_COLUMN).and_then(text).as_deref() == Some(&tenant))
                        .cloned()
                        .collect()
                };
                let then = of(rows);
                let now = of(after.get(table).map_or(&[][..], Vec::as_slice));
                let touched_by_others = case.iter().any(|r| r.owner == index);
                if touched_by_others && then != now {
                    return Err(Failure::leak(format!(
                        "tenant #{index}'s rows of `{table}` changed when other tenants used its ids"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The ids of a request: each slot an id of `owner`'s that `viewer` has no row with (a slot
    /// whose table a chosen row references takes the referenced row, so that a nested path names
    /// a real parent), and the twin of ids that never existed; `None` if a slot has no such id.
    fn ids(
        &self,
        route: &Route,
        owner: TenantId,
        viewer: TenantId,
        pick: usize,
    ) -> Option<(Ids, Ids)> {
        let foreign = |table: &str| self.world.foreign_ids(table, owner, viewer);
        let theirs = self.fill(route, owner, pick, &foreign)?;
        let mut never = Ids::default();
        for (slot, k) in route.slots.iter().zip(0i64..) {
            let twin = match theirs.ids.get(slot) {
                Some(JsonValue::Number(_)) => {
                    JsonValue::from(i64::from(i32::MAX) - k - (pick % 1000) as i64)
                }
                _ => JsonValue::String(uuid::Uuid::now_v7().hyphenated().to_string()),
            };
            never.ids.insert(slot.clone(), twin);
        }
        Some((theirs, never))
    }

    /// One id per slot of `route` among `tenant`'s rows whose ids `allowed` lists, the last
    /// slot first; a slot that an already chosen row references gets that row's reference.
    fn fill(
        &self,
        route: &Route,
        tenant: TenantId,
        pick: usize,
        allowed: &dyn Fn(&str) -> Vec<String>,
    ) -> Option<Ids> {
        let mut ids = Ids::default();
        let mut chosen: Vec<(&str, &JsonValue)> = Vec::new();
        for (slot, k) in route.slots.iter().rev().zip(0usize..) {
            let candidates = allowed(slot);
            let referenced = chosen.iter().find_map(|(table, row)| {
                self.world
                    .references(table)
                    .iter()
                    .filter(|(_, parent)| parent == slot)
                    .find_map(|(column, _)| row.get(column).and_then(text))
                    .filter(|id| candidates.contains(id))
            });
            let id = match referenced {
                Some(id) => id,
                None if candidates.is_empty() => return None,
                None => candidates[pick.wrapping_add(k) % candidates.len()].clone(),
            };
            let row = self.world.row(slot, tenant, &id)?;
            ids.ids.insert(
                slot.clone(),
                row.get("id").cloned().unwrap_or(JsonValue::Null),
            );
            chosen.push((slot.as_str(), row));
        }
        Some(ids)
    }

    async fn send(&self, request: Request<Body>) -> Answer {
        let response = match self.service.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut json = serde_json::from_slice(&bytes).unwrap_or(JsonValue::String(text.clone()));
        (self.normalise)(&mut json);
        let headers = parts
            .headers
            .iter()
            .filter(|(name, _)| !self.ignored.contains(*name))
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut all = text;
        for (name, value) in &parts.headers {
            all.push_str(&format!(
                "\n{name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        Answer {
            status: parts.status,
            headers,
            body: json,
            text: all,
        }
    }

    fn vacuity(&self, coverage: &HttpCoverage) -> Result<(), Failure> {
        let never_sent: Vec<String> = self
            .routes
            .iter()
            .map(|r| format!("{r:?}"))
            .filter(|r| !coverage.foreign.contains_key(r))
            .collect();
        if !never_sent.is_empty() {
            return Err(Failure::vacuous(format!(
                "never sent with another tenant's ids (no row of one tenant only for a slot): {}",
                never_sent.join(", ")
            )));
        }
        if !coverage.statuses.contains_key(&404) {
            return Err(Failure::vacuous(format!(
                "no answer with another tenant's ids was a 404: every answer was of another kind \
                 ({:?})",
                coverage.statuses
            )));
        }
        Ok(())
    }

    /// Each route, as each tenant with its own ids: the credentials and templates work.
    async fn controls(&self) -> Result<(), Failure> {
        let tenants: Vec<TenantId> = self.world.tenants().iter().map(|c| c.tenant()).collect();
        for route in &self.routes {
            for (index, tenant) in tenants.iter().enumerate() {
                let mine = |table: &str| self.world.ids(table, *tenant).into_iter().collect();
                let Some(own) = self.fill(route, *tenant, usize::MAX, &mine) else {
                    continue;
                };
                let answer = self
                    .send(route.request(&own, &self.credentials[tenant])?)
                    .await;
                let status = answer.status;
                if status == StatusCode::UNAUTHORIZED
                    || status == StatusCode::NOT_FOUND
                    || status.is_server_error()
                {
                    return Err(Failure::setup(format!(
                        "{route:?} as tenant #{index} with its own ids answered {status}: check \
                         its credentials and the route's template ({})",
                        short(&answer.body.to_string())
                    )));
                }
            }
        }
        Ok(())
    }
}

fn remove_key(value: &mut JsonValue, key: &str) {
    match value {
        JsonValue::Object(map) => {
            map.remove(key);
            for v in map.values_mut() {
                remove_key(v, key);
            }
        }
        JsonValue::Array(items) => {
            for v in items {
                remove_key(v, key);
            }
        }
        _ => {}
    }
}

fn short(text: &str) -> String {
    let mut s: String = text.chars().take(300).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}
