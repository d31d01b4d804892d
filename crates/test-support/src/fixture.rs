//! The fixtures every test file builds on: tenants, users, roles and API keys, provisioned the way a
//! service provisions them (through audited system access, then the tenant's own scope) and verified
//! the way a client is verified (an API key through `TenantDb::verify`). No test-only constructor of a
//! context is used anywhere: a context comes from `SystemDb::context_for` (a provisioning job) or from a
//! verifier.
//!
//! ```ignore
//! let db = t.tenant_db().await;
//! let (acme, globex) = test_support::two_tenants(&db, &["projects.write"]).await;
//! let scope = db.scope(&acme.ctx); // verified by Acme's API key
//! ```

use entity::{permissions, projects, role_permissions, roles, user_roles, users};
use sea_orm::ColumnTrait;
use tenant_scope::{
    ApiKeyVerifier, IssuedKey, SystemDb, TenantContext, TenantDb, TenantId, TenantScope, provision,
};
use uuid::Uuid;

/// A new tenant named `name`, created through system access as a provisioning job creates one
/// (`tenant_scope::provision::create_tenant`); returns the context a job acts inside it with (actor
/// `System`, carrying the access's reason).
pub async fn tenant(system: &SystemDb<'_>, name: &str) -> TenantContext {
    provision::create_tenant(system, name)
        .await
        .unwrap_or_else(|e| panic!("inserting the tenant {name}: {e:?}"))
}

/// [`tenant`] with a name of its own (`tenant <uuid>`), for tests that make many.
pub async fn new_tenant(system: &SystemDb<'_>) -> TenantContext {
    tenant(system, &format!("tenant {}", Uuid::now_v7())).await
}

/// A new user of `scope`'s tenant (`provision::create_user`), read back as its entity.
pub async fn user(scope: &TenantScope<'_>, email: &str, name: &str) -> users::Model {
    let id = provision::create_user(scope, email, name)
        .await
        .unwrap_or_else(|e| panic!("inserting the user {email}: {e:?}"));
    scope
        .get::<users::Entity>(id)
        .await
        .unwrap_or_else(|e| panic!("reading the user {email}: {e:?}"))
}

/// The permission rows with these codes (global), inserted through system access where missing
/// (`provision::permission`), in the order of `codes`.
pub async fn permissions(system: &SystemDb<'_>, codes: &[&str]) -> Vec<permissions::Model> {
    let mut rows = Vec::new();
    for code in codes {
        let permission = provision::permission(system, code, &format!("test permission {code}"))
            .await
            .unwrap_or_else(|e| panic!("inserting the permission {code}: {e:?}"));
        let row = system
            .find::<permissions::Entity>()
            .filter(permissions::Column::Id.eq(permission.id))
            .one()
            .await
            .unwrap_or_else(|e| panic!("reading the permission {code}: {e:?}"))
            .unwrap_or_else(|| panic!("the permission {code} was just provisioned"));
        rows.push(row);
    }
    rows
}

/// A role and the rows that grant it: what [`grant`] made.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The role.
    pub role: roles::Model,
    /// The role's permissions, one row each, in the order given.
    pub role_permissions: Vec<role_permissions::Model>,
    /// The user's membership of the role.
    pub user_role: user_roles::Model,
}

/// A role `name` of `scope`'s tenant holding `permissions`, granted to `user`
/// (`provision::create_role`, `provision::add_member`), read back as entities.
pub async fn grant(
    scope: &TenantScope<'_>,
    user: Uuid,
    name: &str,
    permissions: &[permissions::Model],
) -> Grant {
    let ids: Vec<Uuid> = permissions.iter().map(|p| p.id).collect();
    let role = provision::create_role(scope, name, &ids)
        .await
        .unwrap_or_else(|e| panic!("inserting the role {name}: {e:?}"));
    let membership = provision::add_member(scope, user, role.id)
        .await
        .unwrap_or_else(|e| panic!("granting the role {name}: {e:?}"));
    let read = "reading back what was just provisioned";
    let mut role_permissions = Vec::new();
    for id in &role.grants {
        role_permissions.push(
            scope
                .get::<role_permissions::Entity>(*id)
                .await
                .unwrap_or_else(|e| panic!("{read}: {e:?}")),
        );
    }
    Grant {
        role: scope
            .get::<roles::Entity>(role.id)
            .await
            .unwrap_or_else(|e| panic!("{read}: {e:?}")),
        role_permissions,
        user_role: scope
            .get::<user_roles::Entity>(membership)
            .await
            .unwrap_or_else(|e| panic!("{read}: {e:?}")),
    }
}

/// An API key of `user`, issued in `scope`'s tenant, and the context it verifies to through
/// `db.verify` (the real path); panics unless that context is of the key's tenant.
pub async fn with_key(
    db: &TenantDb,
    scope: &TenantScope<'_>,
    user: Uuid,
) -> (IssuedKey, TenantContext) {
    let key = ApiKeyVerifier::issue(scope, user, "test")
        .await
        .unwrap_or_else(|e| panic!("issuing a key: {e:?}"));
    let ctx = db
        .verify(&ApiKeyVerifier, key.key.clone())
        .await
        .unwrap_or_else(|e| panic!("verifying the key just issued: {e:?}"));
    assert_eq!(
        ctx.tenant(),
        scope.tenant(),
        "a key verifies for its own tenant"
    );
    (key, ctx)
}

/// One tenant as a client reaches it: a user (`alice@example.com`, the same address in every tenant:
/// unique keys are per tenant) holding `permissions` through the role `member`, and an API key of that
/// user, verified.
#[derive(Clone, Debug)]
pub struct KeyedTenant {
    /// The tenant's id.
    pub id: TenantId,
    /// The tenant's name.
    pub name: String,
    /// The provisioning job's context in the tenant (`SystemDb::context_for`).
    pub job: TenantContext,
    /// The user.
    pub user: users::Model,
    /// The user's role and its permissions (none if no permission was asked for).
    pub grant: Option<Grant>,
    /// The user's API key.
    pub key: IssuedKey,
    /// The context the key verified to: what a request with this key acts as.
    pub ctx: TenantContext,
}

/// A [`KeyedTenant`] named `name` whose user holds `permissions` (inserted where missing).
pub async fn keyed_tenant(db: &TenantDb, name: &str, permissions_: &[&str]) -> KeyedTenant {
    let system = db
        .system("test fixture: provision a tenant")
        .await
        .unwrap_or_else(|e| panic!("system access: {e:?}"));
    let permissions_ = permissions(&system, permissions_).await;
    let job = tenant(&system, name).await;
    drop(system);
    let scope = db.scope(&job);
    let user = user(&scope, "alice@example.com", "Alice").await;
    let grant = if permissions_.is_empty() {
        None
    } else {
        Some(grant(&scope, user.id, "member", &permissions_).await)
    };
    let (key, ctx) = with_key(db, &scope, user.id).await;
    for permission in &permissions_ {
        assert!(ctx.has_permission(&permission.code), "{}", permission.code);
    }
    KeyedTenant {
        id: job.tenant(),
        name: name.to_owned(),
        job: job.clone(),
        user,
        grant,
        key,
        ctx,
    }
}

/// Two [`KeyedTenant`]s of the same shape, Acme and Globex, whose users hold `permissions`.
pub async fn two_tenants(db: &TenantDb, permissions: &[&str]) -> (KeyedTenant, KeyedTenant) {
    let acme = keyed_tenant(db, "Acme", permissions).await;
    let globex = keyed_tenant(db, "Globex", permissions).await;
    (acme, globex)
}

/// The names of the projects `ctx`'s tenant sees, sorted: what a test compares after writes.
pub async fn project_names(db: &TenantDb, ctx: &TenantContext) -> Vec<String> {
    let mut names: Vec<String> = db
        .scope(ctx)
        .find::<projects::Entity>()
        .all()
        .await
        .unwrap_or_else(|e| panic!("the projects: {e:?}"))
        .into_iter()
        .map(|p| p.name)
        .collect();
    names.sort();
    names
}
