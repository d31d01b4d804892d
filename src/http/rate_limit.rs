//! [`TenantRateLimitLayer`]: a token bucket per verified tenant, as a tower layer.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use tower::{Layer, Service};

use super::error::ErrorReport;
use super::request_id::RequestId;
use super::resolver::{Resolved, TenantResolver};
use crate::tenant::{TenantContext, TenantId};

/// Past this many tenants, full buckets (tenants at rest) are dropped when a new tenant comes.
const PRUNE_ABOVE: usize = 4096;

/// How many requests one tenant may make: `burst` at once, refilled at a steady rate.
///
/// ```
/// use tenant_scope::http::RateLimit;
///
/// // 5 requests a second on average, up to 20 in a burst.
/// let limit = RateLimit::per_second(5).burst(20);
/// # let _ = limit;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    per_second: f64,
    burst: u32,
}

impl RateLimit {
    /// `n` requests a second (at least one), with a burst of `n`.
    pub const fn per_second(n: u32) -> Self {
        let n = if n == 0 { 1 } else { n };
        Self {
            per_second: n as f64,
            burst: n,
        }
    }

    /// `n` requests a minute (at least one), with a burst of `n`.
    pub const fn per_minute(n: u32) -> Self {
        let n = if n == 0 { 1 } else { n };
        Self {
            per_second: n as f64 / 60.0,
            burst: n,
        }
    }

    /// Up to `burst` requests at once (at least one).
    pub const fn burst(mut self, burst: u32) -> Self {
        self.burst = if burst == 0 { 1 } else { burst };
        self
    }
}

/// One tenant's bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of one layer, by tenant.
#[derive(Debug, Default)]
struct Buckets(Mutex<HashMap<TenantId, Bucket>>);

impl Buckets {
    /// Takes a token of `tenant`'s bucket, or says how long until there is one.
    fn take(&self, tenant: TenantId, limit: RateLimit) -> Result<(), Duration> {
        let now = Instant::now();
        let burst = f64::from(limit.burst);
        let mut buckets = match self.0.lock() {
            Ok(guard) => guard,
            // A panic while holding the lock left no bucket half-updated.
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() > PRUNE_ABOVE && !buckets.contains_key(&tenant) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * limit.per_second < burst
            });
        }
        let bucket = buckets.entry(tenant).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled =
            bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * limit.per_second;
        bucket.tokens = refilled.min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / limit.per_second,
            ))
        }
    }
}

/// A tower layer that verifies each request with a [`TenantResolver`] and admits it only while
/// its tenant is within a [`RateLimit`] (a token bucket per tenant); over it, the answer is 429
/// `too_many_requests` with `Retry-After` (whole seconds until the tenant's next token).
///
/// The request is verified here, once: the [`Tenant`](super::Tenant) extractor of the handler
/// takes the context this layer verified instead of verifying again. A request that is not
/// verified is answered as the extractor would (401, or 400 for a malformed `X-Tenant-Id`) and
/// takes no token: a caller cannot spend another tenant's budget. Each layer has its own
/// buckets, so a costly route can get a tighter limit of its own (`route_layer`).
///
/// ```no_run
/// # fn f(db: tenant_scope::TenantDb) {
/// use axum::{Router, routing::get};
/// use tenant_scope::http::{RateLimit, Tenant, TenantRateLimitLayer, TenantResolver};
///
/// async fn report(Tenant(ctx): Tenant) -> String {
///     ctx.tenant().to_string()
/// }
///
/// let resolver = TenantResolver::new(db);
/// let app: Router = Router::new()
///     .route("/reports", get(report))
///     .route_layer(TenantRateLimitLayer::new(resolver.clone(), RateLimit::per_second(2).burst(5)))
///     .with_state(resolver);
/// # let _ = app; }
/// ```
#[derive(Clone)]
pub struct TenantRateLimitLayer {
    resolver: TenantResolver,
    limit: RateLimit,
    buckets: Arc<Buckets>,
}

impl fmt::Debug for TenantRateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantRateLimitLayer")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl TenantRateLimitLayer {
    /// A layer that verifies requests with `resolver` and limits each tenant to `limit`.
    pub fn new(resolver: TenantResolver, limit: RateLimit) -> Self {
        Self {
            resolver,
            limit,
            buckets: Arc::default(),
        }
    }
}

impl<S> Layer<S> for TenantRateLimitLayer {
    type Service = TenantRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TenantRateLimit {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`TenantRateLimitLayer`].
#[derive(Clone, Debug)]
pub struct TenantRateLimit<S> {
    inner: S,
    layer: TenantRateLimitLayer,
}

impl<S> Service<Request<Body>> for TenantRateLimit<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let ctx: TenantContext = match layer.resolver.resolve(&mut parts).await {
                Ok(ctx) => ctx,
                Err(refused) => return Ok(refused.into_response()),
            };
            if let Err(wait) = layer.buckets.take(ctx.tenant(), layer.limit) {
                return Ok(too_many(&RequestId::of(&mut parts), wait));
            }
            parts.extensions.insert(Resolved(ctx));
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}

/// The 429 of a tenant over its rate limit.
fn too_many(request_id: &RequestId, wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0);
    let report = ErrorReport {
        code: "too_many_requests",
        message: "too many requests: this tenant is over its rate limit; retry later".into(),
    };
    let mut response = report.render(StatusCode::TOO_MANY_REQUESTS, request_id);
    if let Ok(value) = HeaderValue::from_str(&format!("{seconds:.0}")) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response.extensions_mut().insert(report);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_waits_for_the_rate() {
        let buckets = Buckets::default();
        let limit = RateLimit::per_second(2).burst(3);
        let (a, b) = (TenantId::new(), TenantId::new());
        for _ in 0..3 {
            buckets.take(a, limit).expect("within the burst");
        }
        let wait = buckets.take(a, limit).expect_err("over the burst");
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        buckets
            .take(b, limit)
            .expect("another tenant has its own bucket");
    }
}
