//! `tenant_scope::provision` on every backend: a tenant, a permission, a user, a role, a membership and an API key,
//! on a schema of only the library's tables (`tenant_scope_schema::create_library_tables`, no reference entities
//! involved), each step audited; and its errors: another tenant's user or role is "not found", duplicates are
//! conflicts that write nothing, a request context without the permission is forbidden.

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use sea_orm_migration::{MigratorTrait, SchemaManager};
use tenant_scope::{ApiKeyVerifier, Error, TenantId, provision};
use tenant_scope_schema::{create_library_tables, grant_library_tables};
use test_support::{APP_ROLE, Migrator, TestDb};
use uuid::Uuid;

/// Rows of `table` (of `tenant`, if given), read by the owner.
async fn count(conn: &DatabaseConnection, table: &str, tenant: Option<TenantId>) -> i64 {
    let mut stmt = Query::select();
    stmt.expr_as(Expr::cust("COUNT(*)"), "n")
        .from(table.to_owned());
    if let Some(tenant) = tenant {
        stmt.and_where(Expr::col("tenant_id").eq(tenant));
    }
    conn.query_one(&stmt)
        .await
        .expect("count")
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("n")
}

test_support::backend_test!(
    provisions_a_tenant_on_a_schema_of_only_the_library_tables,
    |t: TestDb| async move {
        // Only the library's tables: no reference table, no reference entity.
        Migrator::reset(t.raw()).await.expect("reset");
        let manager = SchemaManager::new(t.raw());
        create_library_tables(&manager).await.expect("create");
        grant_library_tables(&manager, APP_ROLE)
            .await
            .expect("grant");

        let db = t.tenant_db().await;
        let system = db.system("provision Acme").await.expect("system access");
        let acme = provision::create_tenant(&system, "Acme")
            .await
            .expect("tenant");
        let write = provision::permission(&system, "invoices.write", "change invoices")
            .await
            .expect("permission");
        let again = provision::permission(&system, "invoices.write", "another description")
            .await
            .expect("found");
        assert_eq!(
            again, write,
            "an existing permission is found, not duplicated"
        );
        drop(system);

        let scope = db.scope(&acme);
        let alice = provision::create_user(&scope, "alice@acme.test", "Alice")
            .await
            .expect("user");
        let clerk = provision::create_role(&scope, "clerk", &[write.id, write.id])
            .await
            .expect("role");
        assert_eq!(
            clerk.grants.len(),
            1,
            "a repeated permission is granted once"
        );
        provision::add_member(&scope, alice, clerk.id)
            .await
            .expect("member");
        let key = ApiKeyVerifier::issue(&scope, alice, "laptop")
            .await
            .expect("key");

        // The key verifies to Acme, with the role's permission: the verifiers read what was provisioned.
        let ctx = db.verify(&ApiKeyVerifier, key.key).await.expect("verify");
        assert_eq!(ctx.tenant(), acme.tenant());
        assert!(ctx.has_permission("invoices.write"));

        // Audited: the system access left its row with the reason; each write in the tenant its event.
        let raw = t.raw();
        assert_eq!(count(raw, "tenants", None).await, 1);
        assert_eq!(count(raw, "permissions", None).await, 1);
        let mut reasons = Query::select();
        reasons
            .expr_as(Expr::cust("COUNT(*)"), "n")
            .from("system_audit_events")
            .and_where(Expr::col("reason").eq("provision Acme"));
        let n: i64 = raw
            .query_one(&reasons)
            .await
            .expect("query")
            .expect("row")
            .try_get("", "n")
            .expect("n");
        assert_eq!(n, 1);
        // users, roles, role_permissions, user_roles, api_keys: one event each.
        assert_eq!(count(raw, "audit_events", Some(acme.tenant())).await, 5);
    }
);

test_support::backend_test!(provisioning_errors, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let system = db.system("provision two tenants").await.expect("system");
    let a = provision::create_tenant(&system, "A").await.expect("A");
    let b = provision::create_tenant(&system, "B").await.expect("B");
    assert!(matches!(
        provision::create_tenant(&system, "A").await,
        Err(Error::Conflict)
    ));
    assert!(matches!(
        provision::create_tenant(&system, "  ").await,
        Err(Error::Invalid(_))
    ));
    let read = provision::permission(&system, "things.read", "read things")
        .await
        .expect("permission");
    drop(system);

    let (sa, sb) = (db.scope(&a), db.scope(&b));
    let user_a = provision::create_user(&sa, "x@example.test", "X")
        .await
        .expect("user");
    let role_a = provision::create_role(&sa, "reader", &[read.id])
        .await
        .expect("role");
    // The same email and role name in another tenant are no conflict: uniques are per tenant.
    let user_b = provision::create_user(&sb, "x@example.test", "X")
        .await
        .expect("user in B");
    let role_b = provision::create_role(&sb, "reader", &[])
        .await
        .expect("role in B");

    let users_before = count(t.raw(), "users", None).await;
    let roles_before = count(t.raw(), "roles", None).await;
    let members_before = count(t.raw(), "user_roles", None).await;

    // Another tenant's user or role is "not found", like one that never existed.
    for (user, role) in [
        (user_a, role_b.id),
        (user_b, role_a.id),
        (Uuid::now_v7(), role_b.id),
    ] {
        assert!(
            matches!(
                provision::add_member(&sb, user, role).await,
                Err(Error::NotFound)
            ),
            "{user} {role}"
        );
    }
    assert!(matches!(
        provision::create_role(&sb, "writer", &[Uuid::now_v7()]).await,
        Err(Error::NotFound)
    ));
    // Duplicates in the tenant are conflicts.
    assert!(matches!(
        provision::create_user(&sa, "x@example.test", "Y").await,
        Err(Error::Conflict)
    ));
    assert!(matches!(
        provision::create_role(&sa, "reader", &[]).await,
        Err(Error::Conflict)
    ));
    provision::add_member(&sa, user_a, role_a.id)
        .await
        .expect("member");
    assert!(matches!(
        provision::add_member(&sa, user_a, role_a.id).await,
        Err(Error::Conflict)
    ));
    assert!(matches!(
        provision::create_user(&sa, "", "Y").await,
        Err(Error::Invalid(_))
    ));

    // A request's context provisions nothing without the permission `provision::PROVISION`.
    let key = ApiKeyVerifier::issue(&sa, user_a, "k").await.expect("key");
    let request = db.verify(&ApiKeyVerifier, key.key).await.expect("verify");
    assert!(request.has_permission("things.read"));
    assert!(matches!(
        provision::create_user(&db.scope(&request), "z@example.test", "Z").await,
        Err(Error::Forbidden)
    ));

    // Every refused step wrote nothing (the one membership above is the only new row).
    assert_eq!(count(t.raw(), "users", None).await, users_before);
    assert_eq!(count(t.raw(), "roles", None).await, roles_before);
    assert_eq!(count(t.raw(), "user_roles", None).await, members_before + 1);
});

/// The slug of `tenant`, read by the owner.
async fn slug_of(conn: &DatabaseConnection, tenant: TenantId) -> Option<String> {
    let mut stmt = Query::select();
    stmt.column("slug")
        .from("tenants")
        .and_where(Expr::col("id").eq(tenant));
    conn.query_one(&stmt)
        .await
        .expect("slug")
        .expect("a tenant")
        .try_get::<Option<String>>("", "slug")
        .expect("slug")
}

test_support::backend_test!(tenant_slugs, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let system = db
        .system("provision tenants with slugs")
        .await
        .expect("system");
    let acme = provision::create_tenant_with_slug(&system, "Acme", "Acme")
        .await
        .expect("Acme");
    let globex = provision::create_tenant(&system, "Globex")
        .await
        .expect("Globex");
    // Slugs are stored in lowercase.
    assert_eq!(
        slug_of(t.raw(), acme.tenant()).await.as_deref(),
        Some("acme")
    );
    assert_eq!(slug_of(t.raw(), globex.tenant()).await, None);

    let tenants_before = count(t.raw(), "tenants", None).await;
    for bad in [
        "",
        "-globex",
        "globex-",
        "glo.bex",
        "glo_bex",
        &"g".repeat(64),
    ] {
        assert!(
            matches!(
                provision::create_tenant_with_slug(&system, "Initech", bad).await,
                Err(Error::Invalid(_))
            ),
            "{bad:?}"
        );
        assert!(
            matches!(
                provision::set_slug(&system, globex.tenant(), Some(bad)).await,
                Err(Error::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    // A slug that reads as a tenant id would make a subdomain mean two things.
    let id_like = globex.tenant().as_uuid().simple().to_string();
    assert!(matches!(
        provision::set_slug(&system, globex.tenant(), Some(&id_like)).await,
        Err(Error::Invalid(_))
    ));
    // Slugs are globally unique, in any case.
    assert!(matches!(
        provision::create_tenant_with_slug(&system, "Initech", "ACME").await,
        Err(Error::Conflict)
    ));
    assert!(matches!(
        provision::set_slug(&system, globex.tenant(), Some("acme")).await,
        Err(Error::Conflict)
    ));
    assert!(matches!(
        provision::set_slug(&system, TenantId::new(), Some("nobody")).await,
        Err(Error::NotFound)
    ));
    assert_eq!(count(t.raw(), "tenants", None).await, tenants_before);
    assert_eq!(
        slug_of(t.raw(), globex.tenant()).await,
        None,
        "nothing written"
    );

    // Set, set again (the same value is no error), change, remove.
    for slug in [Some("globex"), Some("globex"), Some("globex-corp"), None] {
        provision::set_slug(&system, globex.tenant(), slug)
            .await
            .expect("set");
        assert_eq!(slug_of(t.raw(), globex.tenant()).await.as_deref(), slug);
    }
    // A removed slug is free again; several tenants may have none.
    provision::set_slug(&system, acme.tenant(), None)
        .await
        .expect("remove");
    provision::set_slug(&system, globex.tenant(), Some("acme"))
        .await
        .expect("reuse");
});

test_support::backend_test!(tenant_status, |t: TestDb| async move {
    use provision::TenantStatus::{Active, Deleted, Suspended};
    let db = t.tenant_db().await;
    let system = db.system("tenant lifecycle states").await.expect("system");
    let acme = provision::create_tenant(&system, "Acme")
        .await
        .expect("Acme");
    let status = async |tenant| {
        provision::tenant_status(&system, tenant)
            .await
            .expect("status")
    };
    assert_eq!(
        status(acme.tenant()).await,
        Some(Active),
        "a new tenant is active"
    );
    for next in [Suspended, Active, Suspended, Deleted] {
        provision::set_status(&system, acme.tenant(), next)
            .await
            .expect("set");
        assert_eq!(status(acme.tenant()).await, Some(next));
    }
    // Deleted stays deleted.
    for back in [Active, Suspended] {
        let refused = provision::set_status(&system, acme.tenant(), back).await;
        assert!(matches!(refused, Err(Error::Invalid(_))), "{refused:?}");
    }
    assert_eq!(status(acme.tenant()).await, Some(Deleted));
    let nobody = TenantId::new();
    assert_eq!(status(nobody).await, None);
    let missing = provision::set_status(&system, nobody, Suspended).await;
    assert!(matches!(missing, Err(Error::NotFound)), "{missing:?}");
    for text in ["active", "suspended", "deleted"] {
        let parsed = provision::TenantStatus::parse(text).expect("known");
        assert_eq!(parsed.as_str(), text);
    }
    assert_eq!(provision::TenantStatus::parse("Active"), None);
});

test_support::backend_test!(
    a_tenant_that_is_not_active_verifies_no_one,
    |t: TestDb| async move {
        use provision::TenantStatus::{Active, Deleted, Suspended};
        use tenant_scope::{Actor, MembershipVerifier, TenantVerifier, Verified, VerifierDb};

        /// A service's own verifier that accepts any claimed tenant and user.
        struct Trusting;
        #[async_trait::async_trait]
        impl TenantVerifier for Trusting {
            type Claim = (TenantId, Uuid);
            async fn verify(
                &self,
                db: &VerifierDb<'_>,
                (tenant, user): Self::Claim,
            ) -> tenant_scope::Result<Verified> {
                Ok(Verified::custom(db, tenant, Actor::User(user), Vec::new()))
            }
        }

        let db = t.tenant_db().await;
        let (a, b) = test_support::two_tenants(&db, &[]).await;
        let system = db.system("suspend a tenant").await.expect("system");
        let all_verify = async |expected: bool| {
            let key = db.verify(&ApiKeyVerifier, a.key.key.clone()).await;
            let member = db.verify(&MembershipVerifier, (a.id, a.user.id)).await;
            let custom = db.verify(&Trusting, (a.id, a.user.id)).await;
            for (name, result) in [("api key", key), ("membership", member), ("custom", custom)] {
                match (expected, result) {
                    (true, Ok(ctx)) => assert_eq!(ctx.tenant(), a.id, "{name}"),
                    (false, Err(Error::Denied)) => {}
                    (expected, other) => panic!("{name}: expected {expected}, got {other:?}"),
                }
            }
            // The other tenant is not affected.
            db.verify(&ApiKeyVerifier, b.key.key.clone())
                .await
                .expect("B verifies");
        };
        all_verify(true).await;
        provision::set_status(&system, a.id, Suspended)
            .await
            .expect("suspend");
        all_verify(false).await;
        provision::set_status(&system, a.id, Active)
            .await
            .expect("resume");
        all_verify(true).await;
        provision::set_status(&system, a.id, Deleted)
            .await
            .expect("delete");
        all_verify(false).await;
    }
);
