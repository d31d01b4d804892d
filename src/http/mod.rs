//! The axum integration (feature `axum`): a request becomes a verified
//! [`TenantContext`](crate::TenantContext), and every error becomes one JSON shape.
//!
//! - [`Tenant`] — the extractor of the request's verified context; it needs a [`TenantResolver`]
//!   in the router's state (directly, or through [`FromRef`](axum::extract::FromRef));
//! - [`request_id_layer`] — the middleware to put outermost: it gives each request a
//!   [`RequestId`], echoes it in the response's `X-Request-Id`, and renders every error response
//!   (ours and axum's own rejections) as [the one error shape](#the-error-shape);
//! - [`ApiError`] — an [`Error`](crate::Error) as a response, for handlers to return;
//! - [`TenantRateLimitLayer`] — a token bucket per verified tenant ([`RateLimit`]), 429 with
//!   `Retry-After` over it.
//!
//! ```no_run
//! use axum::extract::{Path, State};
//! use axum::{Json, Router, routing::get};
//! use entity::projects;
//! use tenant_scope::TenantDb;
//! use tenant_scope::http::{ApiError, Tenant, TenantResolver, request_id_layer};
//! use uuid::Uuid;
//!
//! async fn get_project(
//!     State(resolver): State<TenantResolver>,
//!     Tenant(ctx): Tenant,
//!     Path(id): Path<Uuid>,
//! ) -> Result<Json<projects::Model>, ApiError> {
//!     // Another tenant's project is "not found", exactly like one that never existed.
//!     let project = resolver.db().scope(&ctx).get::<projects::Entity>(id).await?;
//!     Ok(Json(project))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let db = TenantDb::connect("sqlite://app.db?mode=rwc").await?;
//! let app = Router::new()
//!     .route("/projects/{id}", get(get_project))
//!     .with_state(TenantResolver::new(db))
//!     .layer(request_id_layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # How a request names its tenant
//!
//! The credential is always required, and it decides the tenant. It is verified with
//! [`TenantDb::verify`](crate::TenantDb::verify) and the resolver's verifier: by default the
//! [`ApiKeyVerifier`](crate::ApiKeyVerifier) (`Authorization: Bearer <api key>`); with
//! [`TenantResolver::with_verifier`], any [`ClaimFromRequest`] verifier — the
//! [`JwtVerifier`](crate::JwtVerifier) of your identity provider (feature `jwt`,
//! `Authorization: Bearer <token>`), the [`MembershipVerifier`](crate::MembershipVerifier) behind a
//! session layer that put an [`AuthenticatedUser`] into the request, or your own. The credential
//! belongs to exactly one tenant, and the request is served as that tenant — or refused. The
//! request may also *name* a tenant, and what it names must be the credential's tenant (the
//! precedence: a header and a host that name different tenants are refused; otherwise the header,
//! else the host, else the default tenant is what is named, and it is compared with the
//! credential's tenant; nothing named means the credential's tenant):
//!
//! - the `X-Tenant-Id` header ([`TENANT_HEADER`]; on by default, [`TenantResolver::tenant_header`]);
//! - the host, with [`TenantResolver::subdomains`]: `<label>.<base domain>` (the `Host` header, or
//!   the URI's authority on HTTP/2; case-insensitive, the port and a trailing dot are ignored) names
//!   a tenant by its id if the label is a tenant id, else by its [slug](crate::TenantSlug)
//!   (`acme.app.example.com`, the `slug` column of `tenants`). Every such label names a tenant: one
//!   that is no tenant's slug, or not a well-formed slug at all (`www`, `acme_corp`), names a
//!   tenant that does not exist, and the request is refused. Any other host names no tenant: the
//!   base domain itself, a deeper subdomain, another domain. `X-Forwarded-Host` is not read: a
//!   proxy in front must pass the original `Host` on;
//! - when neither names one, the [default tenant](TenantResolver::default_tenant), if configured
//!   (single-tenant installs).
//!
//! A tenant id is a UUID, hyphenated (`0192f3a0-7c1e-7cc3-8a5e-3f1d2b4c5d6e`) or simple (32 hex
//! digits), in any case. A slug never reads as one ([`TenantSlug::parse`](crate::TenantSlug::parse)
//! refuses it), so a label is always one or the other.
//!
//! | the request | answer |
//! |---|---|
//! | a valid credential; everything that names a tenant names the credential's tenant (or nothing names one and there is no default) | the handler runs, as the credential's tenant |
//! | no credential: no `Authorization`; more than one; a blank one; another scheme than `Bearer`; a token that is not a `b64token` | 401 `unauthorized` |
//! | a malformed, unknown, revoked or wrong key; a token that is expired, not yet valid, forged, for another audience or issuer, of a user who is not a member of the tenant it names | 401 `unauthorized` |
//! | the header and the host name different tenants | 401 `unauthorized` |
//! | what is named (header, host or default) is not the credential's tenant — whether or not that tenant exists | 401 `unauthorized` |
//! | the host's slug is not the credential's tenant's: another tenant's slug, a slug no tenant has, a malformed one | 401 `unauthorized` |
//! | `X-Tenant-Id` is not a tenant id, or appears twice | 400 `invalid` |
//! | more than one `Host` header (subdomains on) | 400 `invalid` |
//! | the database fails while verifying | 500 `internal` |
//!
//! Every 401 is the same response, whatever its reason (the body differs only in its
//! `request_id`), with `WWW-Authenticate: Bearer`. It never says whether a tenant or a key exists:
//! a named tenant is only ever compared with the credential's tenant, never looked up. A slug is
//! looked up once, after the credential is verified and only together with the credential's
//! tenant (`WHERE id = <credential's tenant> AND slug = <label>`), so the answer and the work are
//! the same whether another tenant has that slug or none has. A named tenant
//! that is not the credential's is a 401, not a 403 or a 404: the caller is not authenticated for that
//! tenant at all.
//!
//! A malformed `X-Tenant-Id` is a 400, not a 401: it is a client bug, and "the header is
//! malformed" is all the answer says. It is decided from the header's syntax alone, before the
//! credential is looked at and without touching the database, so it says nothing about tenants
//! or keys (a syntactically valid id of a tenant that does not exist is a 401, like any other
//! tenant that is not the credential's). With [`TenantResolver::tenant_header`] off, the header is
//! ignored altogether.
//!
//! # The error shape
//!
//! Behind [`request_id_layer`], every response with a 4xx or 5xx status has the body
//!
//! ```json
//! {"error": {"code": "not_found", "message": "not found", "request_id": "0192f3a0-…"}}
//! ```
//!
//! with `Content-Type: application/json`, whoever produced it:
//!
//! - an [`ApiError`]: the code of its [`Error`](crate::Error) (`not_found`, `forbidden`,
//!   `conflict`, `tenant_mismatch`, `unauthorized`, `invalid`, `internal`) and its message, which
//!   is the error's own text, never a driver's; every 5xx says only "an internal error occurred";
//! - anything else (axum's rejections from `Json`, `Path`, `Query`, body limits; the router's 404
//!   and 405; another layer): a code from the status (`invalid` for 400 and 422,
//!   `method_not_allowed`, `payload_too_large`, `unsupported_media_type`, the same codes as above
//!   for 401/403/404/409, `internal` for every 5xx, otherwise the status's reason in snake case).
//!   For 400, 405, 413, 415 and 422 a short `text/plain` body (axum's rejections describe the
//!   caller's own input: "unknown field `x`") is kept as the message; for 401, 403, 404 and 409 the
//!   message is the fixed text of the matching [`Error`](crate::Error), so an unknown route, a row
//!   that never existed and another tenant's row read the same; a 5xx never carries its body.
//!
//! Other headers of the response are kept (`WWW-Authenticate`, `Allow`, …).

mod error;
mod rate_limit;
mod request_id;
mod resolver;

pub use error::ApiError;
pub use rate_limit::{RateLimit, TenantRateLimit, TenantRateLimitLayer};
pub use request_id::{REQUEST_ID_HEADER, RequestId, RequestIdLayer, request_id_layer};
pub use resolver::{
    AuthenticatedUser, ClaimFromRequest, TENANT_HEADER, Tenant, TenantResolver, bearer_token,
};
