//! [`TenantResolver`], the [`Tenant`] extractor, and [`ClaimFromRequest`] for any verifier.

use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use uuid::Uuid;

use super::error::ApiError;
use super::request_id::RequestId;
use crate::contract::{ID_COLUMN, SLUG_COLUMN, TENANTS_TABLE};
use crate::db::TenantDb;
use crate::error::{Error, Result};
use crate::exec::read;
use crate::tenant::{TenantContext, TenantId, TenantSlug};
use crate::verify::{ApiKeyVerifier, MembershipVerifier, TenantVerifier};

/// The header that names the tenant of a request: `x-tenant-id`.
pub const TENANT_HEADER: &str = "x-tenant-id";

/// A [`TenantVerifier`] whose claim a request carries, so that a [`TenantResolver`] can verify
/// requests with it.
///
/// [`ApiKeyVerifier`] and (feature `jwt`) [`JwtVerifier`](crate::JwtVerifier) read
/// `Authorization: Bearer <credential>` ([`bearer_token`]). For another identity (a session
/// cookie, a header set by an authenticating proxy), implement it for your verifier: read what the
/// request carries, return `None` when it carries nothing (a 401, like every refusal), and leave
/// every check to the verifier.
///
/// ```
/// use axum::http::request::Parts;
/// use tenant_scope::http::bearer_token;
///
/// // What the built-in impl of the API-key verifier does:
/// fn claim(parts: &Parts) -> Option<String> {
///     bearer_token(&parts.headers)
/// }
/// # let _ = claim;
/// ```
pub trait ClaimFromRequest: TenantVerifier + 'static {
    /// The claim the request carries, or `None` if it carries none.
    fn claim(&self, parts: &Parts) -> Option<Self::Claim>;
}

impl ClaimFromRequest for ApiKeyVerifier {
    fn claim(&self, parts: &Parts) -> Option<String> {
        bearer_token(&parts.headers)
    }
}

#[cfg(feature = "jwt")]
impl ClaimFromRequest for crate::JwtVerifier {
    fn claim(&self, parts: &Parts) -> Option<String> {
        bearer_token(&parts.headers)
    }
}

/// A [`MembershipVerifier`] in a resolver: its claim `(tenant, user id)` is what an authenticating
/// layer in front put into the request's extensions (for example a session middleware that read
/// the session cookie). The layer authenticates; the verifier checks the membership in the database.
impl ClaimFromRequest for MembershipVerifier {
    fn claim(&self, parts: &Parts) -> Option<(TenantId, Uuid)> {
        parts
            .extensions
            .get::<AuthenticatedUser>()
            .map(|user| (user.tenant, user.user_id))
    }
}

/// A user a layer in front of the router authenticated (a session, an SSO login), put into the
/// request's extensions for [`MembershipVerifier`]'s [`ClaimFromRequest`]. It is a claim, not a
/// proof: the resolver still verifies that the user is a member of the tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The tenant the user signed in to.
    pub tenant: TenantId,
    /// The user's row id (`users.id`).
    pub user_id: Uuid,
}

/// The verifier of a resolver, its type erased so that [`Tenant`] is one extractor whatever the
/// verifier.
#[async_trait::async_trait]
trait RequestVerifier: Send + Sync {
    /// `Ok(None)` if the request carries no claim; [`Error::Denied`] if the verifier refuses it.
    async fn verify_request(&self, db: &TenantDb, parts: &Parts) -> Result<Option<TenantContext>>;
    fn name(&self) -> &'static str;
}

#[async_trait::async_trait]
impl<V: ClaimFromRequest> RequestVerifier for V {
    async fn verify_request(&self, db: &TenantDb, parts: &Parts) -> Result<Option<TenantContext>> {
        match self.claim(parts) {
            Some(claim) => db.verify(self, claim).await.map(Some),
            None => Ok(None),
        }
    }

    fn name(&self) -> &'static str {
        std::any::type_name::<V>()
    }
}

/// How a request becomes a verified [`TenantContext`]: the rules of the
/// [module docs](super#how-a-request-names-its-tenant).
///
/// The credential is verified by the resolver's verifier: [`ApiKeyVerifier`] with
/// [`TenantResolver::new`], any [`ClaimFromRequest`] verifier with
/// [`TenantResolver::with_verifier`] (a JWT of your identity provider, a session). What may name the
/// tenant is configured here. Put it in the router's state (or make it reachable with [`FromRef`])
/// for the [`Tenant`] extractor.
///
/// ```no_run
/// # fn f(db: tenant_scope::TenantDb, tenant: tenant_scope::TenantId) {
/// use tenant_scope::http::TenantResolver;
///
/// // `<tenant id or slug>.api.example.com` names the tenant, and so does `X-Tenant-Id` (the default).
/// let resolver = TenantResolver::new(db.clone()).subdomains("api.example.com");
/// // A single-tenant install: the key's tenant must be this one unless the request names one.
/// let single = TenantResolver::new(db).tenant_header(false).default_tenant(tenant);
/// # }
/// ```
#[derive(Clone)]
pub struct TenantResolver {
    db: TenantDb,
    verifier: Arc<dyn RequestVerifier>,
    tenant_header: bool,
    base_domain: Option<String>,
    default_tenant: Option<TenantId>,
}

impl fmt::Debug for TenantResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantResolver")
            .field("db", &self.db)
            .field("verifier", &self.verifier.name())
            .field("tenant_header", &self.tenant_header)
            .field("base_domain", &self.base_domain)
            .field("default_tenant", &self.default_tenant)
            .finish()
    }
}

impl TenantResolver {
    /// A resolver over `db`: the credential is an API key (`Authorization: Bearer <key>`); the
    /// `X-Tenant-Id` header is honoured; no subdomains, no default tenant.
    pub fn new(db: TenantDb) -> Self {
        Self::with_verifier(db, ApiKeyVerifier)
    }

    /// A resolver over `db` whose credential is verified by `verifier`: a
    /// [`JwtVerifier`](crate::JwtVerifier) of your identity provider, a [`MembershipVerifier`]
    /// behind a session layer, or your own [`ClaimFromRequest`] verifier. The same rules apply as
    /// with an API key: the credential is always required, and whatever names a tenant must name
    /// the credential's.
    ///
    /// ```no_run
    /// # #[cfg(feature = "jwt")]
    /// # fn f(db: tenant_scope::TenantDb, jwks: &str) -> Result<(), tenant_scope::JwtKeysError> {
    /// use tenant_scope::http::TenantResolver;
    /// use tenant_scope::{JwtKeys, JwtVerifier};
    ///
    /// let verifier = JwtVerifier::new(JwtKeys::from_jwks(jwks)?, "https://login.example.com/", "api");
    /// let resolver = TenantResolver::with_verifier(db, verifier);
    /// # let _ = resolver;
    /// # Ok(()) }
    /// ```
    pub fn with_verifier<V: ClaimFromRequest>(db: TenantDb, verifier: V) -> Self {
        Self {
            db,
            verifier: Arc::new(verifier),
            tenant_header: true,
            base_domain: None,
            default_tenant: None,
        }
    }

    /// Whether the `X-Tenant-Id` header names the tenant (on by default). A tenant it names must
    /// be the credential's; a malformed one is a 400. Off, the header is ignored.
    #[must_use]
    pub fn tenant_header(mut self, enabled: bool) -> Self {
        self.tenant_header = enabled;
        self
    }

    /// Names the tenant by the host: `<label>.<base_domain>` (case-insensitive, port and trailing
    /// dot ignored) names the tenant whose id the label is (a UUID, hyphenated or simple), or else
    /// whose [slug](crate::TenantSlug) it is; that tenant must be the credential's. A label that is
    /// no tenant's slug is refused like another tenant's (the same 401). Any other host (the base
    /// domain itself, a deeper subdomain, another domain) names none. An empty base domain matches
    /// no host.
    #[must_use]
    pub fn subdomains(mut self, base_domain: impl Into<String>) -> Self {
        let base: String = base_domain.into();
        self.base_domain = Some(base.trim().trim_matches('.').to_ascii_lowercase());
        self
    }

    /// The tenant of requests that name none (neither header nor host), for single-tenant
    /// installs: the credential must then be this tenant's. Off by default: then a request that
    /// names no tenant is served as its credential's tenant.
    #[must_use]
    pub fn default_tenant(mut self, tenant: TenantId) -> Self {
        self.default_tenant = Some(tenant);
        self
    }

    /// The database, for handlers (`resolver.db().scope(&ctx)`).
    pub fn db(&self) -> &TenantDb {
        &self.db
    }

    /// The verified context of a request, by the rules of the module docs.
    pub(super) async fn resolve(&self, parts: &mut Parts) -> Result<TenantContext, ApiError> {
        let request_id = RequestId::of(parts);
        // Syntax first, from the headers alone: the same answer whatever the credential.
        let by_header = if self.tenant_header {
            header_tenant(&parts.headers)?
        } else {
            None
        };
        let by_host = match &self.base_domain {
            Some(base) => host(parts)?.and_then(|host| tenant_of_host(&host, base)),
            None => None,
        };
        let (named, slug) = match (by_header, by_host) {
            (Some(header), Some(HostTenant::Id(host))) if header != host => {
                return Err(denied(
                    &request_id,
                    "the header and the host name different tenants",
                ));
            }
            (header, Some(HostTenant::Id(host))) => (Some(header.unwrap_or(host)), None),
            (header, Some(HostTenant::Slug(slug))) => (header, Some(slug)),
            (header, None) => (header.or(self.default_tenant), None),
        };
        let ctx = match self.verifier.verify_request(&self.db, parts).await {
            Ok(Some(ctx)) => ctx,
            Ok(None) => return Err(denied(&request_id, "no credential")),
            Err(Error::Denied) => {
                return Err(denied(&request_id, "the credential was not accepted"));
            }
            Err(err) => return Err(err.into()),
        };
        if named.is_some_and(|tenant| tenant != ctx.tenant()) {
            return Err(denied(
                &request_id,
                "the named tenant is not the credential's",
            ));
        }
        if let Some(slug) = slug
            && !has_slug(&self.db, ctx.tenant(), &slug).await?
        {
            return Err(denied(
                &request_id,
                "the host's slug is not the credential's tenant's",
            ));
        }
        Ok(ctx.with_request_id(request_id.as_str()))
    }
}

/// The 401 of every refusal; the reason goes to the log (DEBUG), never to the caller.
fn denied(request_id: &RequestId, reason: &'static str) -> ApiError {
    tracing::debug!(target: "tenant_scope::http", request_id = %request_id, reason, "request denied");
    ApiError(Error::Denied)
}

/// The tenant `X-Tenant-Id` names: none without the header, a 400 if it is malformed or repeated.
fn header_tenant(headers: &HeaderMap) -> Result<Option<TenantId>, ApiError> {
    let mut values = headers.get_all(TENANT_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::Invalid("more than one X-Tenant-Id header".into()).into());
    }
    std::str::from_utf8(value.as_bytes())
        .ok()
        .and_then(|v| parse_tenant(v.trim()))
        .map(Some)
        .ok_or_else(|| {
            Error::Invalid("malformed X-Tenant-Id header: expected a tenant id".into()).into()
        })
}

/// The request's host: its one `Host` header, else the URI's authority (HTTP/2); a 400 if there
/// are several `Host` headers.
fn host(parts: &Parts) -> Result<Option<String>, ApiError> {
    let mut values = parts.headers.get_all(header::HOST).iter();
    match (values.next(), values.next()) {
        (Some(_), Some(_)) => Err(Error::Invalid("more than one Host header".into()).into()),
        (Some(value), None) => Ok(std::str::from_utf8(value.as_bytes())
            .ok()
            .map(str::to_owned)),
        (None, _) => Ok(parts.uri.authority().map(|a| a.as_str().to_owned())),
    }
}

/// What the host of a request names, with [`TenantResolver::subdomains`].
#[derive(Debug, PartialEq, Eq)]
enum HostTenant {
    /// A tenant id.
    Id(TenantId),
    /// A slug, as the host has it (lowercased; not necessarily a well-formed [`TenantSlug`]: a
    /// malformed one names a tenant that cannot exist).
    Slug(String),
}

/// The tenant a host names under `base` (normalized: lowercase, no outer dots): the one label
/// before `.base`, a tenant id or else a slug.
fn tenant_of_host(host: &str, base: &str) -> Option<HostTenant> {
    let host = host.trim().to_ascii_lowercase();
    let name = match host.split_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        // An IPv6 literal, or not a host at all.
        Some(_) => return None,
        None => &host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let label = name.strip_suffix(base)?.strip_suffix('.')?;
    if label.is_empty() || label.contains('.') {
        return None;
    }
    Some(match parse_tenant(label) {
        Some(id) => HostTenant::Id(id),
        None => HostTenant::Slug(label.to_owned()),
    })
}

/// Whether `slug` is the slug of `tenant`: the one lookup a slug gets, and only with the verified
/// credential's tenant, so its answer is the same whether another tenant has the slug or none has.
async fn has_slug(db: &TenantDb, tenant: TenantId, slug: &str) -> Result<bool, ApiError> {
    let Ok(slug) = TenantSlug::parse(slug) else {
        return Ok(false);
    };
    let mut stmt = Query::select();
    stmt.expr(Expr::val(1))
        .from(TENANTS_TABLE)
        .and_where(Expr::col(ID_COLUMN).eq(tenant))
        .and_where(Expr::col(SLUG_COLUMN).eq(slug.as_str()))
        .limit(1);
    let rows = read!(one: db.app_exec(), None, tracing::Span::none(), |conn| conn
        .query_all(&stmt)
        .await)?;
    Ok(!rows.is_empty())
}

/// A tenant id: a UUID, hyphenated (36 characters) or simple (32 hex digits), any case.
fn parse_tenant(text: &str) -> Option<TenantId> {
    if !matches!(text.len(), 32 | 36) {
        return None;
    }
    Uuid::try_parse(text).ok().map(TenantId::from_uuid)
}

/// The token of the one `Authorization: Bearer <token>` header (scheme case-insensitive, RFC
/// 6750's `b64token` syntax); `None` for anything else: no header, several, another scheme, a
/// blank or malformed token.
///
/// ```
/// use axum::http::{HeaderMap, HeaderValue, header};
/// use tenant_scope::http::bearer_token;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc.def.ghi"));
/// assert_eq!(bearer_token(&headers).as_deref(), Some("abc.def.ghi"));
/// headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic dXNlcjpwYXNz"));
/// assert_eq!(bearer_token(&headers), None);
/// ```
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = std::str::from_utf8(value.as_bytes()).ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let is_b64token = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    is_b64token.then(|| token.to_owned())
}

/// The verified context of the request (the [`RequestId`] of the request is its request id).
///
/// Extracting it runs the [`TenantResolver`] of the state: the credential is verified by the
/// resolver's verifier (an API key unless configured otherwise), and what the request names must
/// be the credential's tenant. A request that is not served is rejected with an
/// [`ApiError`]: 401 for anything about the credential or the tenant (always the same response),
/// 400 for a malformed `X-Tenant-Id`. See the [module docs](super#how-a-request-names-its-tenant).
///
/// ```no_run
/// use tenant_scope::http::Tenant;
///
/// async fn whoami(Tenant(ctx): Tenant) -> String {
///     ctx.tenant().to_string()
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Tenant(pub TenantContext);

impl<S> FromRequestParts<S> for Tenant
where
    S: Send + Sync,
    TenantResolver: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Verified already by a layer in front ([`TenantRateLimitLayer`](super::TenantRateLimitLayer)).
        if let Some(Resolved(ctx)) = parts.extensions.remove::<Resolved>() {
            return Ok(Tenant(ctx));
        }
        TenantResolver::from_ref(state)
            .resolve(parts)
            .await
            .map(Tenant)
    }
}

/// A context verified by a layer of this module for this request, handed to the [`Tenant`]
/// extractor. Private: nothing outside this module can put one into a request.
#[derive(Clone, Debug)]
pub(super) struct Resolved(pub(super) TenantContext);

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const ID: &str = "0192f3a0-7c1e-7cc3-8a5e-3f1d2b4c5d6e";
    const SIMPLE: &str = "0192f3a07c1e7cc38a5e3f1d2b4c5d6e";

    fn tenant() -> TenantId {
        ID.parse().expect("tenant id")
    }

    #[test]
    fn a_host_names_a_tenant_only_as_one_label_of_the_base_domain() {
        let base = "example.com";
        let id = Some(HostTenant::Id(tenant()));
        for host in [
            format!("{ID}.example.com"),
            format!("{SIMPLE}.example.com"),
            format!("{}.EXAMPLE.com", ID.to_uppercase()),
            format!("{ID}.example.com:8080"),
            format!("{ID}.example.com."),
        ] {
            assert_eq!(tenant_of_host(&host, base), id, "{host}");
        }
        // Any other label is a slug, well-formed or not (a malformed one matches no tenant).
        for (host, slug) in [
            ("acme.example.com", "acme"),
            ("ACME.Example.com:443", "acme"),
            ("www.example.com.", "www"),
            ("acme_corp.example.com", "acme_corp"),
            ("-acme.example.com", "-acme"),
        ] {
            let named = Some(HostTenant::Slug(slug.to_owned()));
            assert_eq!(tenant_of_host(host, base), named, "{host}");
        }
        assert_eq!(
            tenant_of_host(&format!("{{{ID}}}.example.com"), base),
            Some(HostTenant::Slug(format!("{{{ID}}}"))),
        );
        for host in [
            "example.com".to_owned(),
            ".example.com".to_owned(),
            format!("{ID}.other.com"),
            format!("x.{ID}.example.com"),
            format!("{ID}.x.example.com"),
            format!("{ID}example.com"),
            "acme.example.com.evil.test".to_owned(),
            format!("urn:uuid:{ID}.example.com"),
            format!("{ID}.example.com:port"),
            "[::1]:8080".to_owned(),
            String::new(),
        ] {
            assert_eq!(tenant_of_host(&host, base), None, "{host}");
        }
        assert_eq!(tenant_of_host(&format!("{ID}.example.com"), ""), None);
    }

    #[test]
    fn tenant_ids_are_hyphenated_or_simple() {
        assert_eq!(parse_tenant(ID), Some(tenant()));
        assert_eq!(parse_tenant(SIMPLE), Some(tenant()));
        assert_eq!(parse_tenant(&format!("{{{ID}}}")), None);
        assert_eq!(parse_tenant(&format!("urn:uuid:{ID}")), None);
        assert_eq!(parse_tenant("acme"), None);
    }

    #[test]
    fn only_one_bearer_b64token_is_a_credential() {
        let with = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::AUTHORIZATION, HeaderValue::from_static(v));
            }
            bearer_token(&headers)
        };
        assert_eq!(with(&["Bearer tsk_a_b_c"]).as_deref(), Some("tsk_a_b_c"));
        assert_eq!(with(&["bearer  tsk_a"]).as_deref(), Some("tsk_a"));
        assert_eq!(with(&["Bearer abc=="]).as_deref(), Some("abc=="));
        let bad: [&[&'static str]; 9] = [
            &[],
            &[""],
            &["Bearer"],
            &["Bearer "],
            &["Bearer =="],
            &["Basic dXNlcjpwYXNz"],
            &["Token tsk_a"],
            &["Bearer tsk a"],
            &["Bearer tsk_a", "Bearer tsk_a"],
        ];
        for bad in bad {
            assert_eq!(with(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_tenant_header_is_one_id_or_a_400() {
        let mut headers = HeaderMap::new();
        assert!(matches!(header_tenant(&headers), Ok(None)));
        headers.insert(TENANT_HEADER, HeaderValue::from_static(ID));
        assert_eq!(header_tenant(&headers).ok().flatten(), Some(tenant()));
        headers.insert(TENANT_HEADER, HeaderValue::from_static(SIMPLE));
        assert_eq!(header_tenant(&headers).ok().flatten(), Some(tenant()));
        for bad in ["", "acme", "0192f3a0"] {
            headers.insert(TENANT_HEADER, HeaderValue::from_static(bad));
            assert!(matches!(
                header_tenant(&headers),
                Err(ApiError(Error::Invalid(_)))
            ));
        }
        headers.insert(TENANT_HEADER, HeaderValue::from_static(ID));
        headers.append(TENANT_HEADER, HeaderValue::from_static(ID));
        assert!(matches!(
            header_tenant(&headers),
            Err(ApiError(Error::Invalid(_)))
        ));
    }
}
