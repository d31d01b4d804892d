//! The fixtures the tests share: tenants provisioned as a service provisions them.

/// A new tenant, inserted through system access as a provisioning job does; returns the context a job
/// acts inside it with (actor `System`, carrying the access's reason).
/// acts inside it with (actor `System`, carrying the access's reason).
pub async fn new_tenant(system: &tenant_scope::SystemDb<'_>) -> tenant_scope::TenantContext {
    use sea_orm::ActiveValue::Set;
    let tenant = system
        .insert(entity::tenants::ActiveModel {
            id: Set(tenant_scope::TenantId::new()),
            name: Set(format!("tenant {}", uuid::Uuid::now_v7())),
            created_at: Set(chrono::Utc::now()),
        })
        .await
        .expect("inserting a tenant");
    system.context_for(tenant.id)
}
