//! Tenant identity: [`TenantId`], [`TenantSlug`] and the verified [`TenantContext`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use sea_orm::DeriveValueType;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of a tenant.
///
/// A newtype over [`Uuid`] so that a tenant id and a row id can never be swapped: a function that takes
/// a `TenantId` does not accept a row's `Uuid`, and the other way round. It is a SeaORM value type, so
/// generated entities use it as the type of their `tenant_id` column.
///
/// A `TenantId` is only a name, not a proof: anyone may parse one. The proof that a caller belongs to a
/// tenant is a [`TenantContext`], which only a [`TenantVerifier`](crate::TenantVerifier) can make.
///
/// ```
/// use tenant_scope::TenantId;
///
/// let id: TenantId = "0192f3a0-7c1e-7cc3-8a5e-3f1d2b4c5d6e".parse()?;
/// assert_eq!(id.to_string(), "0192f3a0-7c1e-7cc3-8a5e-3f1d2b4c5d6e");
/// assert!("not-a-uuid".parse::<TenantId>().is_err());
/// # Ok::<(), tenant_scope::Error>(())
/// ```
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    DeriveValueType,
)]
#[serde(transparent)]
pub struct TenantId(Uuid);

impl TenantId {
    /// A new tenant id (UUIDv7, time-ordered so that inserts stay at the end of the index).
    // No `Default`: a "default" tenant id would be a fresh random one, which reads like a fixed one.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an existing UUID, for example one read from configuration.
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The underlying UUID, by value.
    pub const fn into_uuid(self) -> Uuid {
        self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for TenantId {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| crate::Error::Invalid("malformed tenant id".into()))
    }
}

impl sea_orm::TryFromU64 for TenantId {
    fn try_from_u64(_: u64) -> Result<Self, sea_orm::DbErr> {
        Err(sea_orm::DbErr::ConvertFromU64("TenantId"))
    }
}

/// The name of a tenant in a subdomain: `acme` in `acme.app.example.com`, kept in the `slug` column of
/// the `tenants` table.
///
/// A slug is a DNS label in lowercase: 1 to 63 characters of `a`-`z`, `0`-`9` and `-`, neither
/// starting nor ending with `-`. It may not read as a tenant id (32 hex digits), so that a subdomain
/// is always either a tenant id or a slug, never both. [`TenantSlug::parse`] lowercases first:
/// hosts are case-insensitive.
///
/// Like a [`TenantId`], a slug is only a name, not a proof: the resolver of the `axum` feature
/// serves a request whose host names a slug only if the slug is the verified credential's tenant's
/// (`tenant_scope::http::TenantResolver::subdomains`). Slugs are set by provisioning
/// ([`provision::create_tenant_with_slug`](crate::provision::create_tenant_with_slug),
/// [`provision::set_slug`](crate::provision::set_slug)).
///
/// ```
/// use tenant_scope::TenantSlug;
///
/// assert_eq!(TenantSlug::parse("Acme-Corp")?.as_str(), "acme-corp");
/// for bad in ["", "-acme", "acme-", "acme.corp", "acme_corp", "0192f3a07c1e7cc38a5e3f1d2b4c5d6e"] {
///     assert!(TenantSlug::parse(bad).is_err(), "{bad}");
/// }
/// # Ok::<(), tenant_scope::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// The longest slug: a DNS label's limit.
    pub const MAX_LEN: usize = 63;

    /// The slug `text` names, lowercased.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`](crate::Error::Invalid), saying which rule `text` breaks (the text itself is
    /// the caller's own input and is not repeated).
    pub fn parse(text: &str) -> Result<Self, crate::Error> {
        let invalid = |why: &str| crate::Error::Invalid(format!("malformed tenant slug: {why}"));
        if text.is_empty() || text.len() > Self::MAX_LEN {
            return Err(invalid("it must have 1 to 63 characters"));
        }
        let slug = text.to_ascii_lowercase();
        if !slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid("only letters a-z, digits and '-' are allowed"));
        }
        if slug.starts_with('-') || slug.ends_with('-') {
            return Err(invalid("it may not start or end with '-'"));
        }
        if Uuid::try_parse(&slug).is_ok() {
            return Err(invalid("it may not read as a tenant id"));
        }
        Ok(Self(slug))
    }

    /// The slug, in lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TenantSlug {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Proof that a caller was verified for exactly one tenant.
///
/// It carries the tenant, the actor (who is acting: a user, an API key), the permissions resolved at
/// verification and a request id for logs and audit events.
///
/// A `TenantContext` has no public constructor, no `Default`, no `Deserialize` and no `From<TenantId>`:
/// the only way to get one is [`TenantDb::verify`](crate::TenantDb::verify) with a
/// [`TenantVerifier`](crate::TenantVerifier). Every query on tenant-owned data needs one, so every query
/// is tied to a verified caller.
///
/// ```compile_fail
/// // A context cannot be made up from a tenant id.
/// let ctx: tenant_scope::TenantContext = tenant_scope::TenantId::new().into();
/// ```
#[derive(Clone, Debug)]
pub struct TenantContext {
    tenant: TenantId,
    actor: Actor,
    permissions: BTreeSet<String>,
    request_id: String,
    /// Made by [`SystemDb::context_for`](crate::SystemDb::context_for) (audited system access),
    /// and only there: passes every permission check. Not derived from the actor, which any
    /// verifier may set.
    from_system_access: bool,
}

impl TenantContext {
    /// Only verifiers (through [`Verified`]) and this crate make contexts.
    pub(crate) fn new(
        tenant: TenantId,
        actor: Actor,
        permissions: BTreeSet<String>,
        request_id: String,
    ) -> Self {
        Self {
            tenant,
            actor,
            permissions,
            request_id,
            from_system_access: false,
        }
    }

    /// Marks a context made by audited system access ([`SystemDb::context_for`](crate::SystemDb::context_for)).
    pub(crate) fn granted_by_system_access(mut self) -> Self {
        self.from_system_access = true;
        self
    }

    /// The tenant this context was verified for.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Who is acting.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The permission codes resolved at verification (for example `"tasks.write"`).
    pub fn permissions(&self) -> &BTreeSet<String> {
        &self.permissions
    }

    /// Whether the context holds a permission.
    pub fn has_permission(&self, code: &str) -> bool {
        self.permissions.contains(code)
    }

    /// [`Error::Forbidden`](crate::Error::Forbidden) unless the context holds `permission`.
    ///
    /// For actions that name no existing row (list, create). For an action on a row use
    /// [`TenantScope::authorize`](crate::TenantScope::authorize), which looks the row up first so
    /// that another tenant's row is "not found", never "forbidden". A context made by
    /// [`SystemDb::context_for`](crate::SystemDb::context_for) passes every check: it comes from
    /// audited system access, which could make the change directly. (A verifier that reports an
    /// [`Actor::System`] gets no such pass: only `context_for` grants it.)
    pub fn require(&self, permission: &str) -> crate::Result<()> {
        if self.from_system_access || self.has_permission(permission) {
            Ok(())
        } else {
            Err(crate::Error::Forbidden)
        }
    }

    /// The request id, for logs and audit events.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The same verified caller with another request id (for example one taken from `X-Request-Id`).
    ///
    /// Only the request id changes; the tenant, the actor and the permissions are kept.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }
}

/// Who acts under a [`TenantContext`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Actor {
    /// A user of the tenant, by row id.
    User(Uuid),
    /// An API key of the tenant, by row id, and the user it acts for.
    ApiKey {
        /// The key's row id in `api_keys`.
        key_id: Uuid,
        /// The user the key belongs to.
        user_id: Uuid,
    },
    /// A maintenance job acting through [`TenantDb::system`](crate::TenantDb::system), with the
    /// reason it gave.
    System {
        /// The reason given to `system`.
        reason: String,
    },
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => write!(f, "user:{id}"),
            Actor::ApiKey { key_id, .. } => write!(f, "api_key:{key_id}"),
            Actor::System { .. } => f.write_str("system"),
        }
    }
}
