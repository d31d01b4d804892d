//! PostgreSQL behind a pooler in transaction mode (PgBouncer `pool_mode = transaction`), when
//! `TENANT_SCOPE_TEST_PGBOUNCER_URL` names one (`.ci/run` starts one): the library works through it
//! with `TenantDbOptions::transaction_pooling(true)`, refuses to guess without it, and a tenant set
//! by one client never reaches another client through the pooler's shared server connections.
//!
//! Without the variable the tests say so on stderr and do nothing; `.ci/run` runs this file with it
//! and checks that the tests ran.

use std::time::Duration;

use chrono::Utc;
use entity::projects;
use sea_orm::ActiveValue::Set;
use sea_orm::sqlx::{self, Connection as _, PgConnection};
use tenant_scope::{Error, TenantDb};
use test_support::{APP_ROLE, Backend, TestDb, database_url, pooler_url, say, with_user};

/// The pooled URL of `t`'s database, as the application role.
fn pooled(t: &TestDb, pooler: &str) -> String {
    with_user(&database_url(pooler, t.name()), APP_ROLE)
}

fn pooler() -> Option<String> {
    let url = pooler_url();
    if url.is_none() {
        say(
            "tenant-scope tests: TENANT_SCOPE_TEST_PGBOUNCER_URL not set; the pooler tests are not run",
        );
    }
    url
}

/// What one raw client of the pooler sees as the tenant setting, outside any transaction of its
/// own. A simple query (one message): outside a transaction, even an unnamed prepared statement's
/// Parse and Bind may reach different server connections through the pooler.
async fn setting(conn: &mut PgConnection) -> Option<String> {
    let row = sqlx::raw_sql(sqlx::AssertSqlSafe(
        "SELECT current_setting('tenant_scope.tenant_id', true)",
    ))
    .fetch_one(&mut *conn)
    .await
    .expect("the setting");
    let value: Option<String> = sqlx::Row::try_get(&row, 0).expect("a text");
    value.filter(|s| !s.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_pgbouncer_the_library_works_and_no_tenant_leaks_to_another_client() {
    let Some(pooler) = pooler() else { return };
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        // The harness already connects the library through the pooler (transaction_pooling on).
        let db = t.tenant_db().await;
        let (acme, globex) = test_support::two_tenants(&db, &[]).await;
        let mut raw = PgConnection::connect(&pooled(&t, &pooler))
            .await
            .expect("a raw client of the pooler");
        let mut operations = 0;
        for round in 0..40 {
            for tenant in [&acme, &globex] {
                let scope = db.scope(&tenant.job);
                let project = scope
                    .insert(projects::ActiveModel {
                        name: Set(format!("{} {round}", tenant.name)),
                        created_at: Set(Utc::now()),
                        ..Default::default()
                    })
                    .await
                    .expect("insert through the pooler");
                scope
                    .get::<projects::Entity>(project.id)
                    .await
                    .expect("get through the pooler");
                let other = if tenant.id == acme.id { &globex } else { &acme };
                assert!(matches!(
                    db.scope(&other.job)
                        .get::<projects::Entity>(project.id)
                        .await,
                    Err(Error::NotFound)
                ));
                operations += 3;
                // Another client of the pooler, on whatever server connection it gets: no tenant.
                assert_eq!(setting(&mut raw).await, None, "round {round}");
            }
        }
        // Concurrent clients of both tenants, each checking it sees only its own rows.
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let db = db.clone();
                let (me, them) = if i % 2 == 0 {
                    (acme.clone(), globex.clone())
                } else {
                    (globex.clone(), acme.clone())
                };
                tokio::spawn(async move {
                    for _ in 0..10 {
                        let rows = db
                            .scope(&me.job)
                            .find::<projects::Entity>()
                            .all()
                            .await
                            .expect("list");
                        assert!(rows.iter().all(|p| p.tenant_id == me.id));
                        assert!(rows.iter().all(|p| p.tenant_id != them.id));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a client");
        }
        assert_eq!(setting(&mut raw).await, None);
        raw.close().await.expect("close");
        say(&format!(
            "pooler: {operations} operations through {pooler}, no tenant leaked"
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_pgbouncer_connect_asks_which_pooling_it_is() {
    let Some(pooler) = pooler() else { return };
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let url = pooled(&t, &pooler);
        let refused = TenantDb::options(url.as_str())
            .system(t.url())
            .connect()
            .await
            .expect_err("a pooler is in between");
        match refused {
            Error::Config(why) => assert!(why.contains("transaction_pooling(true)"), "{why}"),
            other => panic!("not a configuration error: {other:?}"),
        }
        // Chosen explicitly, it connects.
        let db = TenantDb::options(url.as_str())
            .system(t.url())
            .transaction_pooling(true)
            .connect()
            .await
            .expect("connect through the pooler");
        drop(db);
        // A server that does not answer is named as the cause (no tenant data is in play).
        let options = sea_orm::ConnectOptions::new("postgres://tenant_scope_app@127.0.0.1:1/x")
            .connect_timeout(Duration::from_secs(2))
            .to_owned();
        match TenantDb::options(options).connect().await {
            Err(Error::Config(why)) => {
                assert!(why.contains("connecting the application's"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}
