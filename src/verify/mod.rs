//! The verifier seam: [`TenantVerifier`], the only producer of a
//! [`TenantContext`](crate::TenantContext), what it reads through ([`VerifierDb`]), what it hands
//! back ([`Verified`]), [`TenantDb::verify`](crate::TenantDb::verify) that turns the one into the
//! other, and the built-in verifiers: [`ApiKeyVerifier`], [`MembershipVerifier`] and (feature
//! `jwt`) `JwtVerifier`.
//!
//! Everything that decides which tenant a caller belongs to is in this module; the handles

//! (`crate::db`) do not depend on it.

mod api_key;
#[cfg(feature = "jwt")]
mod jwt;
mod membership;

use std::collections::BTreeSet;

use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ConnectionTrait, QueryResult};
use uuid::Uuid;

pub use api_key::{API_KEYS_WRITE, ApiKeyVerifier, IssuedKey};
#[cfg(feature = "jwt")]
pub use jwt::{JwtKeys, JwtKeysError, JwtVerifier};
pub use membership::MembershipVerifier;

use crate::contract::{ID_COLUMN, STATUS_COLUMN, TENANT_ACTIVE, TENANTS_TABLE};
use crate::db::{GlobalDb, TenantDb};
use crate::entity::TenantScoped;
use crate::error::{Error, Result};
use crate::exec::{Exec, read};
use crate::scoped::Scoped;
use crate::tenant::{Actor, TenantContext, TenantId};

/// Decides which tenant a caller belongs to. Each implementation is a trust root.
///
/// [`TenantDb::verify`](crate::TenantDb::verify) calls it and turns the [`Verified`] it returns into
/// a [`TenantContext`](crate::TenantContext); nothing else makes contexts. A verifier reads through
/// [`VerifierDb`], restricted to the tenant the claim names.
///
/// Every rejection of a claim must be [`Error::Denied`], whatever the reason (unknown, revoked,
/// malformed, wrong tenant), so that a caller learns nothing from the answer.
#[async_trait::async_trait]
pub trait TenantVerifier: Send + Sync {
    /// What the caller presents: an API key, a user session, a signed token.
    type Claim: Send;

    /// Accepts the claim with the tenant, actor and permissions it proves, or denies it.
    async fn verify(&self, db: &VerifierDb<'_>, claim: Self::Claim) -> Result<Verified>;
}

/// What a [`TenantVerifier`] hands back when it accepts a claim.
///
/// [`TenantDb::verify`](crate::TenantDb::verify) turns it into a [`TenantContext`]. Whoever can
/// build a `Verified` decides which tenant a caller belongs to, so there is exactly one public way
/// to build one, with a loud name: [`Verified::custom`], which needs the [`VerifierDb`] that only
/// `TenantDb::verify` hands out, so it can only be called by a verifier while it verifies. Every
/// context minted that way is logged with the verifier's type name (below); the built-in
/// [`ApiKeyVerifier`] and [`MembershipVerifier`] build theirs inside this crate and are not.
///
/// A `Verified` carries how it was made: a custom verifier that returns what a built-in verifier
/// returned to it (a wrapper that delegates) is not logged as custom, since the built-in decided.
#[derive(Clone, Debug)]
pub struct Verified {
    pub(crate) tenant: TenantId,
    pub(crate) actor: Actor,
    pub(crate) permissions: BTreeSet<String>,
    origin: Origin,
}

/// Which kind of verifier built a [`Verified`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// [`ApiKeyVerifier`] or [`MembershipVerifier`].
    BuiltIn,
    /// A service's own verifier, through [`Verified::custom`].
    Custom,
}

impl Verified {
    /// A verified caller of `tenant`, for the built-in verifiers.
    pub(crate) fn new(
        tenant: TenantId,
        actor: Actor,
        permissions: impl IntoIterator<Item = String>,
    ) -> Self {
        Self::with_origin(tenant, actor, permissions, Origin::BuiltIn)
    }

    /// A service's own verifier accepts a claim: the caller belongs to `tenant`, acts as `actor`
    /// and holds `permissions`.
    ///
    /// This is a trust root: the library believes the tenant returned here. The first argument is
    /// the [`VerifierDb`] the verifier was given; nothing else can produce one, so a `Verified` can
    /// only be made while [`TenantDb::verify`](crate::TenantDb::verify) runs a verifier. Each
    /// context it becomes is logged at INFO, target `tenant_scope::verify`, with the fields
    /// `verifier` (the verifier's [`std::any::type_name`]), `tenant` and `actor`. The source guard
    /// reports every `impl TenantVerifier` (`custom-verifier`, docs/guard.md). A tenant that is
    /// not active (suspended or deleted, `provision::set_status`) is denied after the verifier
    /// accepted: `TenantDb::verify` reads the tenant's status for a custom `Verified` (one more
    /// query; the built-in verifiers read it in their own).
    ///
    /// ```no_run
    /// use entity::users;
    /// use sea_orm::ColumnTrait;
    /// use tenant_scope::{Actor, Error, Result, TenantId, TenantVerifier, Verified, VerifierDb};
    ///
    /// /// A user session the service's login layer already checked: is the user in the tenant?
    /// struct SessionVerifier;
    ///
    /// #[async_trait::async_trait]
    /// impl TenantVerifier for SessionVerifier {
    ///     type Claim = (TenantId, uuid::Uuid);
    ///
    ///     async fn verify(&self, db: &VerifierDb<'_>, (tenant, user): Self::Claim) -> Result<Verified> {
    ///         let found = db
    ///             .find::<users::Entity>(tenant)
    ///             .filter(users::Column::Id.eq(user))
    ///             .one()
    ///             .await?;
    ///         match found {
    ///             Some(user) => Ok(Verified::custom(db, tenant, Actor::User(user.id), Vec::new())),
    ///             None => Err(Error::Denied),
    ///         }
    ///     }
    /// }
    /// ```
    pub fn custom(
        _: &VerifierDb<'_>,
        tenant: TenantId,
        actor: Actor,
        permissions: impl IntoIterator<Item = String>,
    ) -> Self {
        Self::with_origin(tenant, actor, permissions, Origin::Custom)
    }

    fn with_origin(
        tenant: TenantId,
        actor: Actor,
        permissions: impl IntoIterator<Item = String>,
        origin: Origin,
    ) -> Self {
        Self {
            tenant,
            actor,
            permissions: permissions.into_iter().collect(),
            origin,
        }
    }
}

impl TenantDb {
    /// Verifies a claim with `verifier` and returns the context that proves it.
    ///
    /// This is the only way to get a [`TenantContext`]. The verifier decides; a claim it does not
    /// accept is [`Error::Denied`], the same answer for every reason. A context accepted by a
    /// service's own verifier ([`Verified::custom`]) is logged at INFO (target
    /// `tenant_scope::verify`) with the verifier's type name, the tenant and the actor.
    pub async fn verify<V>(&self, verifier: &V, claim: V::Claim) -> Result<TenantContext>
    where
        V: TenantVerifier + ?Sized,
    {
        // The claim is not yet proven: its lookups take no permit of the tenant it names.
        let pool = self.app_pool().uncapped();
        let lookup = VerifierDb {
            exec: Exec::Pool(&pool),
        };
        let Verified {
            tenant,
            actor,
            permissions,
            origin,
        } = verifier.verify(&lookup, claim).await?;
        if origin == Origin::Custom {
            // The built-in verifiers read the tenant's status in their own statements; a
            // service's verifier may not know about it.
            if !tenant_is_active(&lookup, tenant).await? {
                return Err(Error::Denied);
            }
            tracing::info!(
                target: "tenant_scope::verify",
                verifier = std::any::type_name::<V>(),
                tenant = %tenant,
                actor = %actor,
                "a custom verifier accepted a claim"
            );
        }
        Ok(TenantContext::new(
            tenant,
            actor,
            permissions,
            Uuid::now_v7().to_string(),
        ))
    }
}

/// What a [`TenantVerifier`] may read while it decides: lookups restricted to the tenant the caller
/// *claims*. It cannot write.
#[derive(Debug)]
pub struct VerifierDb<'a> {
    exec: Exec<'a>,
}

impl<'a> VerifierDb<'a> {
    /// A read query over `E` restricted to the claimed tenant.
    pub fn find<E: TenantScoped>(&self, claimed: TenantId) -> Scoped<'a, sea_orm::Select<E>> {
        Scoped::tenant(self.exec, claimed, None)
    }

    /// Read access to global entities.
    pub fn global(&self) -> GlobalDb<'a> {
        GlobalDb::new(self.exec)
    }

    /// A raw read for the built-in verifiers, which cannot name generated entities. The statement
    /// itself must restrict to `claimed` (the built-in ones do); on PostgreSQL it also runs with
    /// `claimed` set for row level security.
    pub(crate) async fn query_all(
        &self,
        claimed: TenantId,
        stmt: &SelectStatement,
    ) -> Result<Vec<QueryResult>> {
        read!(self.exec, Some(claimed), tracing::Span::none(), |conn| conn
            .query_all(stmt)
            .await)
    }

    /// [`query_all`](Self::query_all) for a statement that reads at most one row (a lookup by
    /// key): on PostgreSQL it goes with the tenant in one message where it can.
    pub(crate) async fn query_row(
        &self,
        claimed: TenantId,
        stmt: &SelectStatement,
    ) -> Result<Vec<QueryResult>> {
        read!(one: self.exec, Some(claimed), tracing::Span::none(), |conn| conn
            .query_all(stmt)
            .await)
    }
}

/// Whether `tenant` exists and is active (`tenants.status`): a suspended or deleted tenant verifies
/// no one.
pub(crate) async fn tenant_is_active(db: &VerifierDb<'_>, tenant: TenantId) -> Result<bool> {
    let mut stmt = Query::select();
    stmt.column(STATUS_COLUMN)
        .from(TENANTS_TABLE)
        .and_where(Expr::col(ID_COLUMN).eq(tenant));
    let rows = db.query_row(tenant, &stmt).await?;
    match rows.first() {
        Some(row) => {
            Ok(row.try_get_by_index::<String>(0).map_err(Error::from_db)? == TENANT_ACTIVE)
        }
        None => Ok(false),
    }
}

/// A column of the library's own tables, by name (the built-in verifiers cannot name generated
/// entities).
fn col(name: &'static str) -> Expr {
    Expr::col(name)
}

/// The permission codes of a user: `user_roles` → `role_permissions` → `permissions`, every join
/// within the tenant.
async fn permissions_of(
    db: &VerifierDb<'_>,
    tenant: TenantId,
    user_id: Uuid,
) -> Result<BTreeSet<String>> {
    let mut stmt: SelectStatement = Query::select();
    stmt.distinct()
        .expr(Expr::col(("p", "code")))
        .from_as("user_roles", "ur")
        .join_as(
            sea_orm::JoinType::InnerJoin,
            "role_permissions",
            "rp",
            Expr::col(("rp", "tenant_id"))
                .equals(("ur", "tenant_id"))
                .and(Expr::col(("rp", "role_id")).equals(("ur", "role_id"))),
        )
        .join_as(
            sea_orm::JoinType::InnerJoin,
            "permissions",
            "p",
            Expr::col(("p", "id")).equals(("rp", "permission_id")),
        )
        .and_where(Expr::col(("ur", "tenant_id")).eq(tenant))
        .and_where(Expr::col(("ur", "user_id")).eq(user_id));
    let rows = db.query_all(tenant, &stmt).await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).map_err(Error::from_db))
        .collect()
}
