//! [`ApiError`] and the one JSON shape of every error response.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::request_id::RequestId;
use crate::error::Error;

/// The message of every 5xx: nothing of what went wrong inside reaches the caller.
pub(super) const INTERNAL_MESSAGE: &str = "an internal error occurred";

/// An [`Error`] as an HTTP response; return it from a handler (`?` converts an [`Error`]).
///
/// - the status is [`Error::status`];
/// - the body is `{"error": {"code", "message", "request_id"}}` (see the
///   [module docs](super#the-error-shape)), with a stable snake_case code: `not_found`,
///   `forbidden`, `conflict`, `tenant_mismatch`, `unauthorized`, `invalid`, `too_many_requests`
///   or `internal`;
/// - the message is the error's own text ([`Error`]'s `Display` never carries driver text or
///   another tenant's data), except for a 5xx, which only says "an internal error occurred";
/// - a 401 has `WWW-Authenticate: Bearer`; a 429 ([`Error::Busy`]) has `Retry-After: 1`;
/// - an [`Error::Db`] or [`Error::Config`] is logged at ERROR (target `tenant_scope::http`) with
///   the request id; the [`DbError`](crate::DbError) is logged as its `Debug`, which leaves out the
///   driver's text.
///
/// The request id is that of [`request_id_layer`](super::request_id_layer); outside it, a new
/// one (still logged with the error, so the two can be matched).
///
/// ```
/// use axum::response::IntoResponse;
/// use tenant_scope::{Error, http::ApiError};
///
/// let response = ApiError::from(Error::NotFound).into_response();
/// assert_eq!(response.status(), 404);
/// ```
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

impl ApiError {
    /// The stable code of the error.
    fn code(&self) -> &'static str {
        match &self.0 {
            Error::NotFound => "not_found",
            Error::Forbidden => "forbidden",
            Error::Conflict => "conflict",
            Error::TenantMismatch => "tenant_mismatch",
            Error::Denied => "unauthorized",
            Error::Invalid(_) => "invalid",
            Error::Busy => "too_many_requests",
            Error::Config(_) | Error::Db(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let request_id = RequestId::current().unwrap_or_else(RequestId::generate);
        match &self.0 {
            Error::Db(err) => tracing::error!(
                target: "tenant_scope::http",
                request_id = %request_id,
                error = ?err,
                "database error"
            ),
            Error::Config(_) => tracing::error!(
                target: "tenant_scope::http",
                request_id = %request_id,
                error = %self.0,
                "configuration error"
            ),
            _ => {}
        }
        let message = if status.is_server_error() {
            INTERNAL_MESSAGE.to_owned()
        } else {
            self.0.to_string()
        };
        let report = ErrorReport {
            code: self.code(),
            message,
        };
        let mut response = report.render(status, &request_id);
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self.0, Error::Busy) {
            // One of the tenant's own operations ends within the wait, usually well before.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        // The layer renders the body again with the request's id (in case this response was made
        // outside its scope), from this report rather than from the body.
        response.extensions_mut().insert(report);
        response
    }
}

/// The code and message of an error response, before the request id is added.
#[derive(Clone, Debug)]
pub(super) struct ErrorReport {
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl ErrorReport {
    /// The response: `status`, the JSON body, `Content-Type: application/json`.
    pub(super) fn render(&self, status: StatusCode, request_id: &RequestId) -> Response {
        let mut response = Response::new(self.body(request_id));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }

    /// The JSON body.
    pub(super) fn body(&self, request_id: &RequestId) -> Body {
        let body = serde_json::json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "request_id": request_id.as_str(),
            }
        });
        Body::from(body.to_string())
    }

    /// The report for an error response that is not an [`ApiError`]: a code from its status, and
    /// for some 4xx statuses its short `text/plain` body as the message (see the module docs).
    pub(super) fn foreign(status: StatusCode, plain_text: Option<String>) -> Self {
        let (code, message): (&'static str, String) = match status.as_u16() {
            401 => ("unauthorized", Error::Denied.to_string()),
            403 => ("forbidden", Error::Forbidden.to_string()),
            404 => ("not_found", Error::NotFound.to_string()),
            409 => ("conflict", Error::Conflict.to_string()),
            400 => ("invalid", "the request is malformed".into()),
            405 => ("method_not_allowed", "method not allowed".into()),
            413 => ("payload_too_large", "the request body is too large".into()),
            415 => ("unsupported_media_type", "unsupported media type".into()),
            422 => ("invalid", "the request body is not valid".into()),
            _ if status.is_server_error() => ("internal", INTERNAL_MESSAGE.into()),
            _ => (
                reason_code(status),
                status
                    .canonical_reason()
                    .unwrap_or("the request was not accepted")
                    .to_ascii_lowercase(),
            ),
        };
        let keeps_text = matches!(status.as_u16(), 400 | 405 | 413 | 415 | 422);
        let message = match plain_text {
            Some(text) if keeps_text => text,
            _ => message,
        };
        Self { code, message }
    }
}

/// The snake_case code of a 4xx status that has no code of its own (`too_many_requests`).
fn reason_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYMENT_REQUIRED => "payment_required",
        StatusCode::NOT_ACCEPTABLE => "not_acceptable",
        StatusCode::PROXY_AUTHENTICATION_REQUIRED => "proxy_authentication_required",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::GONE => "gone",
        StatusCode::LENGTH_REQUIRED => "length_required",
        StatusCode::PRECONDITION_FAILED => "precondition_failed",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::RANGE_NOT_SATISFIABLE => "range_not_satisfiable",
        StatusCode::EXPECTATION_FAILED => "expectation_failed",
        StatusCode::MISDIRECTED_REQUEST => "misdirected_request",
        StatusCode::LOCKED => "locked",
        StatusCode::FAILED_DEPENDENCY => "failed_dependency",
        StatusCode::UPGRADE_REQUIRED => "upgrade_required",
        StatusCode::PRECONDITION_REQUIRED => "precondition_required",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "request_header_fields_too_large",
        StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS => "unavailable_for_legal_reasons",
        _ => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_code_and_a_safe_message() {
        let db = Error::from(sea_orm::DbErr::Custom(
            "duplicate key (email)=(ceo@rival)".into(),
        ));
        for (err, status, code) in [
            (Error::NotFound, 404, "not_found"),
            (Error::Forbidden, 403, "forbidden"),
            (Error::Conflict, 409, "conflict"),
            (Error::TenantMismatch, 400, "tenant_mismatch"),
            (Error::Denied, 401, "unauthorized"),
            (Error::Invalid("x".into()), 400, "invalid"),
            (Error::Config("secret config".into()), 500, "internal"),
            (db, 500, "internal"),
        ] {
            let response = ApiError(err).into_response();
            assert_eq!(response.status().as_u16(), status);
            let report = response.extensions().get::<ErrorReport>().cloned();
            let report = report.expect("an ApiError response carries its report");
            assert_eq!(report.code, code);
            assert!(!report.message.contains("rival"));
            assert!(!report.message.contains("secret"));
        }
    }

    #[test]
    fn foreign_texts_are_kept_only_where_they_describe_the_input() {
        let text = || Some("unknown field `x`".to_owned());
        let kept = ErrorReport::foreign(StatusCode::UNPROCESSABLE_ENTITY, text());
        assert_eq!(
            (kept.code, kept.message.as_str()),
            ("invalid", "unknown field `x`")
        );
        for status in [401, 403, 404, 409, 500, 503] {
            let status = StatusCode::from_u16(status).expect("status");
            let report = ErrorReport::foreign(status, text());
            assert_ne!(report.message, "unknown field `x`", "{status}");
        }
        let report = ErrorReport::foreign(StatusCode::NOT_FOUND, None);
        assert_eq!(report.message, Error::NotFound.to_string());
        let report = ErrorReport::foreign(StatusCode::TOO_MANY_REQUESTS, None);
        assert_eq!(
            (report.code, report.message.as_str()),
            ("too_many_requests", "too many requests")
        );
    }
}
