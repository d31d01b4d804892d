//! The reference migrations go up, down and up again on every backend, and `down` removes
//! everything `up` made.

use migration::Migrator;
use sea_orm_migration::{MigratorTrait, SchemaManager};
use test_support::TestDb;

const TABLES: [&str; 11] = [
    "tenants",
    "permissions",
    "users",
    "roles",
    "role_permissions",
    "user_roles",
    "projects",
    "tasks",
    "comments",
    "api_keys",
    "audit_events",
];

async fn existing(t: &TestDb) -> Vec<&'static str> {
    let manager = SchemaManager::new(t.raw());
    let mut found = Vec::new();
    for table in TABLES {
        if manager.has_table(table).await.expect("has_table") {
            found.push(table);
        }
    }
    found
}

test_support::backend_test!(migrations_go_up_down_and_up_again, |t: TestDb| async move {
    // The harness hands out a migrated database.
    assert_eq!(existing(&t).await, TABLES);
    Migrator::down(t.raw(), None).await.expect("down");
    assert!(existing(&t).await.is_empty(), "down left tables behind");
    Migrator::up(t.raw(), None).await.expect("up again");
    assert_eq!(existing(&t).await, TABLES);
    assert!(
        Migrator::get_pending_migrations(t.raw())
            .await
            .expect("pending")
            .is_empty()
    );
});
