//! Provisioning on the library's own tables: a tenant, its permissions, users, roles, memberships and
//! API keys, the way a job or a test sets them up.
//!
//! It works on any schema whose library tables were made by `tenant_scope_schema::create_library_tables`
//! (or the statements per table): it reads and writes them with sea-query statements, not with
//! generated entities, so a service's own entities need not include them.
//!
//! Everything starts from audited system access, [`TenantDb::system`](crate::TenantDb::system), which
//! writes its row of `system_audit_events` with the reason and logs it at WARN:
//!
//! - global rows (a tenant, a permission) are written through the [`SystemDb`];
//! - rows inside a tenant (a user, a role, a membership, an API key) are written through
//!   `db.scope(&ctx)` with the context [`SystemDb::context_for`] gives (or [`create_tenant`]
//!   returns). They carry that tenant, run as any tenant write does (on PostgreSQL under the row
//!   level security policies, as the application role) and each leaves its `audit_events` row with
//!   the actor `System { reason }`. A verified request context may provision in its own tenant only
//!   if it holds the permission [`PROVISION`]; a context from system access always may.
//!
//! Errors are the library's: a user, role or permission that is not in the tenant (another tenant's
//! included) is [`Error::NotFound`], exactly like one that never existed; a duplicate (a tenant name,
//! a user's email or a role's name in the tenant, a membership that exists) is [`Error::Conflict`]
//! and writes nothing; an empty name or a malformed [`TenantSlug`] is [`Error::Invalid`].
//!
//! API keys are issued by [`ApiKeyVerifier::issue`](crate::ApiKeyVerifier::issue), on the same scope.
//!
//! ```no_run
//! use tenant_scope::{ApiKeyVerifier, TenantDb, provision};
//!
//! # async fn run(db: &TenantDb) -> tenant_scope::Result<()> {
//! let system = db.system("provision tenant Acme").await?;
//! let job = provision::create_tenant(&system, "Acme").await?;
//! let write = provision::permission(&system, "invoices.write", "create and change invoices").await?;
//! drop(system);
//!
//! let scope = db.scope(&job);
//! let alice = provision::create_user(&scope, "alice@acme.test", "Alice").await?;
//! let clerk = provision::create_role(&scope, "clerk", &[write.id]).await?;
//! provision::add_member(&scope, alice, clerk.id).await?;
//! let key = ApiKeyVerifier::issue(&scope, alice, "Alice's laptop").await?;
//! // Hand `key.key` to Alice once: only its hash is stored.
//! # let _ = key; Ok(()) }
//! ```

use std::collections::BTreeSet;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use uuid::Uuid;

use crate::audit::AuditAction;
use crate::contract::{
    ID_COLUMN, SLUG_COLUMN, STATUS_COLUMN, TENANT_ACTIVE, TENANT_DELETED, TENANT_SUSPENDED,
    TENANTS_TABLE,
};
use crate::db::{SystemDb, TenantScope};
use crate::error::{Error, Result};
use crate::tenant::{TenantContext, TenantId, TenantSlug};

/// The permission a verified (non-system) context needs to provision inside its own tenant. A
/// context from [`SystemDb::context_for`] always may.
pub const PROVISION: &str = "tenant_scope.provision";

/// A row of the global `permissions` table.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Permission {
    /// The row id.
    pub id: Uuid,
    /// The code, as a `TenantContext` carries it (`ctx.has_permission(code)`).
    pub code: String,
}

/// A role made by [`create_role`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Role {
    /// The row id in `roles`.
    pub id: Uuid,
    /// The row ids in `role_permissions`, one per permission, in the order given.
    pub grants: Vec<Uuid>,
}

/// Creates the tenant `name` (through system access: `tenants` is global) and returns the context a
/// job acts inside it with ([`SystemDb::context_for`]).
///
/// # Errors
///
/// [`Error::Invalid`] for an empty name; [`Error::Conflict`] if a tenant of that name exists (tenant
/// names are globally unique: they are not tenant data).
pub async fn create_tenant(system: &SystemDb<'_>, name: &str) -> Result<TenantContext> {
    insert_tenant(system, name, None).await
}

/// Creates the tenant `name` with the subdomain name `slug` (see [`TenantSlug`]), like
/// [`create_tenant`].
///
/// # Errors
///
/// As [`create_tenant`]; [`Error::Invalid`] for a malformed slug (nothing is written);
/// [`Error::Conflict`] if another tenant has the slug.
pub async fn create_tenant_with_slug(
    system: &SystemDb<'_>,
    name: &str,
    slug: &str,
) -> Result<TenantContext> {
    let slug = TenantSlug::parse(slug)?;
    insert_tenant(system, name, Some(slug)).await
}

/// The tenant row of [`create_tenant`] and [`create_tenant_with_slug`].
async fn insert_tenant(
    system: &SystemDb<'_>,
    name: &str,
    slug: Option<TenantSlug>,
) -> Result<TenantContext> {
    let name = non_empty("tenant name", name)?;
    let id = TenantId::new();
    let mut stmt = Query::insert();
    stmt.into_table(TENANTS_TABLE)
        .columns(["id", "name", "created_at", SLUG_COLUMN])
        .values_panic([
            Expr::val(id),
            Expr::val(name),
            Expr::val(Utc::now()),
            Expr::val(slug.map(|slug| slug.as_str().to_owned())),
        ]);
    system.execute_statement(&stmt).await?;
    Ok(system.context_for(id))
}

/// Sets the subdomain name of `tenant` to `slug` (see [`TenantSlug`]), or removes it with `None`;
/// from then on `<slug>.<base domain>` names the tenant, and the slug it had no longer does.
///
/// # Errors
///
/// [`Error::Invalid`] for a malformed slug; [`Error::NotFound`] if there is no such tenant;
/// [`Error::Conflict`] if another tenant has the slug. Nothing is written on an error.
pub async fn set_slug(system: &SystemDb<'_>, tenant: TenantId, slug: Option<&str>) -> Result<()> {
    let slug = slug.map(TenantSlug::parse).transpose()?;
    let mut stmt = Query::update();
    stmt.table(TENANTS_TABLE)
        .value(SLUG_COLUMN, slug.map(|slug| slug.as_str().to_owned()))
        .and_where(Expr::col("id").eq(tenant));
    match system.execute_statement(&stmt).await? {
        0 => Err(Error::NotFound),
        _ => Ok(()),
    }
}

/// Where a tenant is in its lifecycle (the `status` column of `tenants`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TenantStatus {
    /// Served; its jobs run.
    Active,
    /// Kept, but its jobs wait (they run again once it is active).
    Suspended,
    /// Deleted: its jobs never run, and its rows are to be erased. Its `tenants` row stays, so its
    /// id is never given to another tenant.
    Deleted,
}

impl TenantStatus {
    /// The value stored in `tenants.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => TENANT_ACTIVE,
            TenantStatus::Suspended => TENANT_SUSPENDED,
            TenantStatus::Deleted => TENANT_DELETED,
        }
    }

    /// The status stored as `text`; `None` for a value the library does not know.
    pub fn parse(text: &str) -> Option<TenantStatus> {
        [
            TenantStatus::Active,
            TenantStatus::Suspended,
            TenantStatus::Deleted,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

impl std::fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sets where `tenant` is in its lifecycle ([`TenantStatus`]): suspend it, make it active again,
/// or mark it deleted (which cannot be undone by this function: a deleted tenant stays deleted).
///
/// # Errors
///
/// [`Error::NotFound`] if there is no such tenant; [`Error::Invalid`] to change a deleted tenant.
pub async fn set_status(
    system: &SystemDb<'_>,
    tenant: TenantId,
    status: TenantStatus,
) -> Result<()> {
    match tenant_status(system, tenant).await? {
        None => return Err(Error::NotFound),
        Some(TenantStatus::Deleted) if status != TenantStatus::Deleted => {
            return Err(Error::Invalid(
                "a deleted tenant cannot become active or suspended again".into(),
            ));
        }
        Some(_) => {}
    }
    let mut stmt = Query::update();
    stmt.table(TENANTS_TABLE)
        .value(STATUS_COLUMN, status.as_str())
        .and_where(Expr::col(ID_COLUMN).eq(tenant));
    system.execute_statement(&stmt).await?;
    Ok(())
}

/// The status of `tenant`, `None` if there is no such tenant.
///
/// # Errors
///
/// [`Error::Invalid`] if the stored status is not one the library knows; the database's error.
pub async fn tenant_status(
    system: &SystemDb<'_>,
    tenant: TenantId,
) -> Result<Option<TenantStatus>> {
    let mut stmt = Query::select();
    stmt.column(STATUS_COLUMN)
        .from(TENANTS_TABLE)
        .and_where(Expr::col(ID_COLUMN).eq(tenant));
    let rows = system.query_statement(&stmt).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let text: String = row.try_get_by_index(0).map_err(Error::from_db)?;
    TenantStatus::parse(&text)
        .map(Some)
        .ok_or_else(|| Error::Invalid(format!("unknown tenant status {text:?}")))
}

/// The permission `code`, created with `description` if it does not exist yet (through system
/// access: `permissions` is global). An existing permission keeps its description.
///
/// # Errors
///
/// [`Error::Invalid`] for an empty code; [`Error::Conflict`] if another job created the same code
/// at the same moment (try again: it is then found).
pub async fn permission(
    system: &SystemDb<'_>,
    code: &str,
    description: &str,
) -> Result<Permission> {
    let code = non_empty("permission code", code)?;
    let mut find = Query::select();
    find.column("id")
        .from("permissions")
        .and_where(Expr::col("code").eq(code));
    if let Some(row) = system.query_statement(&find).await?.first() {
        let id: Uuid = row.try_get("", "id").map_err(Error::from_db)?;
        return Ok(Permission {
            id,
            code: code.to_owned(),
        });
    }
    let id = Uuid::now_v7();
    let mut insert = Query::insert();
    insert
        .into_table("permissions")
        .columns(["id", "code", "description"])
        .values_panic([Expr::val(id), Expr::val(code), Expr::val(description)]);
    system.execute_statement(&insert).await?;
    Ok(Permission {
        id,
        code: code.to_owned(),
    })
}

/// Creates a user of `scope`'s tenant and returns its id.
///
/// # Errors
///
/// [`Error::Forbidden`] without [`PROVISION`]; [`Error::Invalid`] for an empty email or name;
/// [`Error::Conflict`] if the tenant has a user with that email (emails are unique per tenant:
/// another tenant's user of the same email is no conflict).
pub async fn create_user(scope: &TenantScope<'_>, email: &str, name: &str) -> Result<Uuid> {
    scope.context().require(PROVISION)?;
    let email = non_empty("email", email)?;
    let name = non_empty("user name", name)?;
    let id = Uuid::now_v7();
    let mut stmt = Query::insert();
    stmt.into_table("users")
        .columns(["tenant_id", "id", "email", "name", "created_at"])
        .values_panic([
            Expr::val(scope.tenant()),
            Expr::val(id),
            Expr::val(email),
            Expr::val(name),
            Expr::val(Utc::now()),
        ]);
    scope
        .execute(&stmt, AuditAction::Insert, "users", id)
        .await?;
    Ok(id)
}

/// Creates the role `name` in `scope`'s tenant granting `permissions` (ids of [`Permission`]s;
/// a repeated id is granted once).
///
/// # Errors
///
/// [`Error::Forbidden`] without [`PROVISION`]; [`Error::Invalid`] for an empty name;
/// [`Error::NotFound`] if a permission does not exist (checked before anything is written);
/// [`Error::Conflict`] if the tenant has a role of that name.
pub async fn create_role(
    scope: &TenantScope<'_>,
    name: &str,
    permissions: &[Uuid],
) -> Result<Role> {
    scope.context().require(PROVISION)?;
    let name = non_empty("role name", name)?;
    let mut seen = BTreeSet::new();
    let permissions: Vec<Uuid> = permissions
        .iter()
        .copied()
        .filter(|id| seen.insert(*id))
        .collect();
    if !permissions.is_empty() {
        let mut exists = Query::select();
        exists
            .column("id")
            .from("permissions")
            .and_where(Expr::col("id").is_in(permissions.iter().copied()));
        if scope.query_all(&exists).await?.len() != permissions.len() {
            return Err(Error::NotFound);
        }
    }
    let id = Uuid::now_v7();
    let mut role = Query::insert();
    role.into_table("roles")
        .columns(["tenant_id", "id", "name", "created_at"])
        .values_panic([
            Expr::val(scope.tenant()),
            Expr::val(id),
            Expr::val(name),
            Expr::val(Utc::now()),
        ]);
    scope
        .execute(&role, AuditAction::Insert, "roles", id)
        .await?;
    let mut grants = Vec::with_capacity(permissions.len());
    for permission in permissions {
        let grant = Uuid::now_v7();
        let mut stmt = Query::insert();
        stmt.into_table("role_permissions")
            .columns(["tenant_id", "id", "role_id", "permission_id"])
            .values_panic([
                Expr::val(scope.tenant()),
                Expr::val(grant),
                Expr::val(id),
                Expr::val(permission),
            ]);
        scope
            .execute(&stmt, AuditAction::Insert, "role_permissions", grant)
            .await?;
        grants.push(grant);
    }
    Ok(Role { id, grants })
}

/// Makes `user` a member of `role`, both of `scope`'s tenant; returns the `user_roles` row id.
///
/// # Errors
///
/// [`Error::Forbidden`] without [`PROVISION`]; [`Error::NotFound`] if the user or the role is not
/// in the tenant (the composite foreign keys refuse another tenant's, exactly like a missing one);
/// [`Error::Conflict`] if the user already has the role.
pub async fn add_member(scope: &TenantScope<'_>, user: Uuid, role: Uuid) -> Result<Uuid> {
    scope.context().require(PROVISION)?;
    let id = Uuid::now_v7();
    let mut stmt = Query::insert();
    stmt.into_table("user_roles")
        .columns(["tenant_id", "id", "user_id", "role_id"])
        .values_panic([
            Expr::val(scope.tenant()),
            Expr::val(id),
            Expr::val(user),
            Expr::val(role),
        ]);
    scope
        .execute(&stmt, AuditAction::Insert, "user_roles", id)
        .await?;
    Ok(id)
}

fn non_empty<'a>(what: &str, value: &'a str) -> Result<&'a str> {
    let value = value.trim();
    if value.is_empty() {
        Err(Error::Invalid(format!("{what} must not be empty")))
    } else {
        Ok(value)
    }
}
