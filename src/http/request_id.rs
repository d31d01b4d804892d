//! [`RequestId`] and [`request_id_layer`], the outermost middleware.

use std::convert::Infallible;
use std::fmt;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{FromFnLayer, Next};
use axum::response::Response;
use uuid::Uuid;

use super::error::ErrorReport;
use crate::BoxFuture;

/// The header a request id is taken from, and echoed in: `x-request-id`.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id taken from a request.
const MAX_LEN: usize = 128;

/// The largest error body whose text may become the message of a foreign error response.
const MAX_TEXT: usize = 1024;

tokio::task_local! {
    /// The id of the request being handled, inside [`request_id_layer`]; read by
    /// [`ApiError`](super::ApiError) to log an error with it.
    static CURRENT: RequestId;
}

/// The id of a request, for logs, audit events and error bodies.
///
/// Taken from the request's `X-Request-Id` if that is one header of 1 to 128 visible ASCII
/// characters (`!` to `~`), otherwise a new UUIDv7. [`request_id_layer`] inserts it as a request
/// extension and echoes it in the response; it is also an extractor (which, without the layer,
/// applies the same rule and keeps the result in the request's extensions, so every extractor of
/// one request sees the same id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A new id (UUIDv7).
    pub(super) fn generate() -> Self {
        Self(Uuid::now_v7().to_string())
    }

    /// The id a request's headers give: one valid `X-Request-Id`, or a new one.
    fn from_headers(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(REQUEST_ID_HEADER).iter();
        match (values.next(), values.next()) {
            (Some(value), None) if is_valid(value.as_bytes()) => {
                Self(String::from_utf8_lossy(value.as_bytes()).into_owned())
            }
            _ => Self::generate(),
        }
    }

    /// The id of the request being handled inside [`request_id_layer`], if any.
    pub(super) fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The id of a request: its extension, or (without the layer) one made by the same rule and
    /// then kept as its extension.
    pub(super) fn of(parts: &mut Parts) -> Self {
        if let Some(id) = parts.extensions.get::<RequestId>() {
            return id.clone();
        }
        let id = Self::from_headers(&parts.headers);
        parts.extensions.insert(id.clone());
        id
    }
}

/// 1 to 128 visible ASCII characters.
fn is_valid(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len()) && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self::of(parts))
    }
}

/// The type of [`request_id_layer`]: an axum [`from_fn`](axum::middleware::from_fn) layer over a
/// function pointer, so that it can be named (in a struct field, a function's return type).
pub type RequestIdLayer =
    FromFnLayer<fn(Request, Next) -> BoxFuture<'static, Response>, (), (Request,)>;

/// The middleware to put outermost (`.layer(request_id_layer())` last, after the routes and other
/// layers).
///
/// For each request it:
/// - sets the [`RequestId`] (a request extension, read by [`Tenant`](super::Tenant) and by the
///   [`RequestId`] extractor);
/// - echoes it in the response's `X-Request-Id`;
/// - renders every response with a 4xx or 5xx status as the one JSON error shape, with this
///   request id — [`ApiError`](super::ApiError)s and every other error response alike (axum's
///   rejections, the router's 404 and 405, other layers); see the
///   [module docs](super#the-error-shape).
pub fn request_id_layer() -> RequestIdLayer {
    axum::middleware::from_fn(request_id_middleware as fn(_, _) -> _)
}

fn request_id_middleware(mut request: Request, next: Next) -> BoxFuture<'static, Response> {
    Box::pin(async move {
        let id = RequestId::from_headers(request.headers());
        request.extensions_mut().insert(id.clone());
        let response = CURRENT.scope(id.clone(), next.run(request)).await;
        let mut response = render_error(response, &id).await;
        if let Ok(value) = HeaderValue::from_str(id.as_str()) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    })
}

/// An error response in the one JSON shape, with the request's id; any other response as it is.
async fn render_error(response: Response, id: &RequestId) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let report = match parts.extensions.remove::<ErrorReport>() {
        Some(report) => report,
        None => {
            let text = if is_plain_text(&parts.headers) {
                short_text(body).await
            } else {
                None
            };
            ErrorReport::foreign(status, text)
        }
    };
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::TRANSFER_ENCODING,
    ] {
        parts.headers.remove(name);
    }
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, report.body(id))
}

/// Whether the body is uncompressed `text/plain`.
fn is_plain_text(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_ENCODING).is_none()
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/plain"))
            })
}

/// The body as text if it is short UTF-8 (at most [`MAX_TEXT`] bytes) and not blank.
async fn short_text(body: Body) -> Option<String> {
    let bytes = axum::body::to_bytes(body, MAX_TEXT).await.ok()?;
    let text = std::str::from_utf8(&bytes).ok()?.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_visible_ascii_up_to_128() {
        assert!(is_valid(b"a"));
        assert!(is_valid(b"req-123_ABC.~!"));
        assert!(is_valid("x".repeat(128).as_bytes()));
        assert!(!is_valid(b""));
        assert!(!is_valid("x".repeat(129).as_bytes()));
        assert!(!is_valid(b"has space"));
        assert!(!is_valid(b"tab\there"));
        assert!(!is_valid("caf\u{e9}".as_bytes()));
        assert!(!is_valid(b"nul\0"));
    }

    #[test]
    fn one_valid_header_is_taken_else_a_new_id() {
        let mut headers = HeaderMap::new();
        assert!(Uuid::try_parse(RequestId::from_headers(&headers).as_str()).is_ok());
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc"));
        assert_eq!(RequestId::from_headers(&headers).as_str(), "abc");
        headers.append(REQUEST_ID_HEADER, HeaderValue::from_static("def"));
        let id = RequestId::from_headers(&headers);
        assert!(Uuid::try_parse(id.as_str()).is_ok(), "{id}");
    }
}
