//! The test kit (`tenant_scope::testing`) on the reference schema, on every backend: every
//! tenant-owned entity passes `check_entities!`; and the kit refuses to pass vacuously (one tenant,
//! a tenant without rows, an entity without rows, a table left out of the list). On PostgreSQL, the
//! differential mode: row level security alone and the filter alone answer what both answer, and a
//! table with row level security disabled is caught (the plain check cannot see it).

use entity::{api_keys, comments, projects, role_permissions, roles, tasks, user_roles, users};
use sea_orm::ConnectionTrait;
use tenant_scope::testing::{
    FailureKind, World, check_entity, check_entity_differential, check_related,
};
use tenant_scope::{Risk, TenantDb};
use test_support::{Backend, TestDb};

/// The demo's two tenants, each with a project (the demo's), a task and a comment.
async fn world(db: &TenantDb) -> World {
    let seed = reference_service::seed_demo(db).await.expect("seed");
    reference_service::seed_demo_tasks(db, &seed)
        .await
        .expect("tasks and comments");
    World::of(db, &[seed.acme.id, seed.globex.id])
        .await
        .expect("the world")
}

test_support::backend_test!(every_reference_entity_passes, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let world = world(&db).await;
    let coverage = tenant_scope::check_entities!(
        &world,
        projects::Entity,
        tasks::Entity,
        comments::Entity,
        users::Entity,
        roles::Entity,
        role_permissions::Entity,
        user_roles::Entity,
        api_keys::Entity,
    )
    .await
    .unwrap_or_else(|f| panic!("{}: {f}", t.backend()));
    for result in [
        check_related::<projects::Entity, tasks::Entity>(&world).await,
        check_related::<tasks::Entity, projects::Entity>(&world).await,
        check_related::<tasks::Entity, comments::Entity>(&world).await,
    ] {
        result.unwrap_or_else(|f| panic!("{}: {f}", t.backend()));
    }
    let tasks = coverage.iter().find(|c| c.table == "tasks").expect("tasks");
    assert!(tasks.foreign > 0 && tasks.not_found > 0, "{tasks:?}");
    assert!(
        tasks.references.contains("project_id"),
        "tasks.project_id was re-pointed: {tasks:?}"
    );
});

test_support::backend_test!(the_kit_never_passes_vacuously, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let world = world(&db).await;
    // A table left out of the list.
    let missing = tenant_scope::check_entities!(&world, projects::Entity)
        .await
        .expect_err("tables are missing");
    assert_eq!(missing.kind(), &FailureKind::Setup);
    assert!(missing.message().contains("tasks"), "{missing}");

    // One tenant: nothing is another tenant's.
    let acme = world.tenants()[0].tenant();
    let one = World::of(&db, &[acme]).await.expect_err("one tenant");
    assert_eq!(one.kind(), &FailureKind::Vacuous, "{one}");

    // A tenant without rows.
    let system = db
        .system("testing_kit: an empty tenant")
        .await
        .expect("system");
    let empty = tenant_scope::provision::create_tenant(&system, "Empty")
        .await
        .expect("tenant");
    drop(system);
    let err = World::of(&db, &[acme, empty.tenant()])
        .await
        .expect_err("a tenant without rows");
    assert_eq!(err.kind(), &FailureKind::Vacuous, "{err}");

    // An entity without rows: no id can show a leak.
    let (a, b) = (world.tenants()[0].clone(), world.tenants()[1].clone());
    for ctx in [&a, &b] {
        db.scope(ctx)
            .delete_many::<comments::Entity>()
            .exec()
            .await
            .expect("delete the comments");
    }
    let world = World::of(&db, &[a.tenant(), b.tenant()])
        .await
        .expect("world");
    let err = check_entity::<comments::Entity>(&world)
        .await
        .expect_err("no comments");
    assert_eq!(err.kind(), &FailureKind::Vacuous, "{err}");
});

/// The library connected as the owner of the tables, which row level security does not apply to:
/// the application's filter alone.
async fn filter_only(t: &TestDb) -> TenantDb {
    TenantDb::options(test_support::connect_options(t.url()))
        .accept_risk(Risk::Superuser)
        .accept_risk(Risk::BypassRls)
        .accept_risk(Risk::OwnsTenantTable)
        .connect()
        .await
        .expect("the library as the owner")
}

/// PostgreSQL: each wall alone answers what both answer, for every reference entity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential_the_two_walls_agree() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let db = t.tenant_db().await;
        let world = world(&db).await;
        let filter = filter_only(&t).await;
        for result in [
            check_entity_differential::<projects::Entity>(&world, &filter).await,
            check_entity_differential::<tasks::Entity>(&world, &filter).await,
            check_entity_differential::<comments::Entity>(&world, &filter).await,
            check_entity_differential::<users::Entity>(&world, &filter).await,
        ] {
            result.unwrap_or_else(|f| panic!("{f}"));
        }
    })
    .await;
}

/// PostgreSQL: a table without row level security passes the plain check (the filter hides the
/// gap) but not the differential one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential_catches_a_missing_policy() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let db = t.tenant_db().await;
        let world = world(&db).await;
        let filter = filter_only(&t).await;
        t.raw()
            .execute_unprepared("ALTER TABLE tasks DISABLE ROW LEVEL SECURITY")
            .await
            .expect("the planted gap");
        check_entity::<tasks::Entity>(&world)
            .await
            .unwrap_or_else(|f| panic!("the filter alone holds: {f}"));
        let failure = check_entity_differential::<tasks::Entity>(&world, &filter)
            .await
            .expect_err("row level security alone leaks");
        assert_eq!(failure.kind(), &FailureKind::Leak, "{failure}");
        assert!(
            failure.message().contains("row level security alone"),
            "{failure}"
        );
    })
    .await;
}
