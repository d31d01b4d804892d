//! A pooled connection that the server closed while it sat idle is replaced: the operation that
//! takes it succeeds, and the pool goes on working.
//!
//! On PostgreSQL the library's application pool does not ping a connection before handing it out
//! (`test_before_acquire` is off, saving a round trip per operation): the `BEGIN` that every
//! operation starts with is the check, and a `BEGIN` that finds its connection closed is sent
//! again on another one (src/exec/postgres.rs). Each test here fills the pool with idle
//! connections, closes all of them from the server side (`pg_terminate_backend`; `KILL` on MySQL),
//! and runs one kind of operation, which must succeed. A control shows that the connections really
//! were dead: a plain sqlx pool without the ping fails its next query the same way.
//!
//! MySQL keeps sqlx's ping before acquire (its reads run without `BEGIN`); the same tests run there.
//! SQLite has no server that could close a connection.

use std::time::{Duration, Instant};

use chrono::Utc;
use entity::{projects, tenants};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, QueryResult, Statement, sqlx,
};
use tenant_scope::{Error, TenantContext, TenantDb};
use test_support::{Backend, TestDb};
use uuid::Uuid;

/// The pool size of the library under test: every one of them is closed before each operation.
const POOL: u32 = 3;

/// One kind of operation, run on a pool whose every idle connection was just closed.
#[derive(Clone, Copy, Debug)]
enum Op {
    Get,
    List,
    Insert,
    Global,
    Transaction,
}

const OPS: [Op; 5] = [Op::Get, Op::List, Op::Insert, Op::Global, Op::Transaction];

async fn provision(db: &TenantDb) -> (TenantContext, Uuid) {
    let system = db.system("reconnect test fixture").await.expect("system");
    let ctx = test_support::new_tenant(&system).await;
    let project = system
        .insert(projects::ActiveModel {
            tenant_id: Set(ctx.tenant()),
            id: Set(Uuid::now_v7()),
            name: Set("fixture".into()),
            created_at: Set(Utc::now()),
        })
        .await
        .expect("project");
    (ctx, project.id)
}

async fn run(db: &TenantDb, ctx: &TenantContext, project: Uuid, op: Op) -> Result<(), Error> {
    let scope = db.scope(ctx);
    match op {
        Op::Get => scope.get::<projects::Entity>(project).await.map(drop),
        Op::List => {
            let rows = scope
                .find::<projects::Entity>()
                .filter(projects::Column::Id.eq(project))
                .all()
                .await?;
            assert_eq!(rows.len(), 1, "the project is listed");
            Ok(())
        }
        Op::Insert => scope
            .insert(projects::ActiveModel {
                name: Set(format!("inserted {}", Uuid::now_v7())),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await
            .map(drop),
        Op::Global => db
            .global()
            .get::<tenants::Entity>(ctx.tenant())
            .await
            .map(drop),
        Op::Transaction => {
            db.transaction(ctx, |tx| {
                Box::pin(async move {
                    tx.get::<projects::Entity>(project).await?;
                    tx.insert(projects::ActiveModel {
                        name: Set(format!("in a transaction {}", Uuid::now_v7())),
                        created_at: Set(Utc::now()),
                        ..Default::default()
                    })
                    .await?;
                    Ok::<_, Error>(())
                })
            })
            .await
        }
    }
}

/// Makes the library's pool hold `POOL` idle connections: that many transactions at once, each on
/// a connection of its own, then all rolled back.
async fn fill(db: &TenantDb, ctx: &TenantContext) {
    let mut open = Vec::new();
    for _ in 0..POOL {
        open.push(db.begin(ctx).await.expect("begin, to fill the pool"));
    }
    for tx in open {
        tx.rollback().await.expect("rollback");
    }
}

/// The server-side ids of the connections `user` holds to this test's database, except the one
/// asking.
async fn sessions(t: &TestDb, user: &str) -> Vec<i64> {
    let sql = match t.db_backend() {
        DbBackend::Postgres => format!(
            "SELECT pid::bigint FROM pg_stat_activity WHERE datname = current_database() \
             AND usename = '{user}' AND pid <> pg_backend_pid()"
        ),
        _ => format!(
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE db = DATABASE() \
             AND user = '{user}' AND id <> CONNECTION_ID()"
        ),
    };
    let rows: Vec<QueryResult> = t
        .raw()
        .query_all_raw(Statement::from_string(t.db_backend(), sql))
        .await
        .expect("listing sessions");
    rows.iter()
        .map(|r| r.try_get_by_index::<i64>(0).expect("a session id"))
        .collect()
}

/// Closes, from the server side, every connection that `user` holds to this test's database
/// (except the harness's own, which asks), and waits until the server has let go of them.
/// Returns how many it closed.
async fn close_all(t: &TestDb, user: &str) -> usize {
    let ids = sessions(t, user).await;
    for id in &ids {
        let sql = match t.db_backend() {
            DbBackend::Postgres => format!("SELECT pg_terminate_backend({id})"),
            _ => format!("KILL CONNECTION {id}"),
        };
        // MySQL: the harness's pool may hold more connections as the same user; killing one of
        // them only makes that pool reconnect.
        let _ = t
            .raw()
            .execute_raw(Statement::from_string(t.db_backend(), sql))
            .await;
    }
    wait_gone(t, user, &ids).await;
    ids.len()
}

/// Waits until none of `ids` is among `user`'s sessions any more: a kill is asynchronous on the
/// server (MariaDB's `KILL CONNECTION` returns before the thread has let go of its socket).
async fn wait_gone(t: &TestDb, user: &str, ids: &[i64]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = sessions(t, user).await;
        if !ids.iter().any(|id| left.contains(id)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not close the sessions"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The role the library's application pool connects as.
fn app_user(t: &TestDb) -> &'static str {
    match t.backend() {
        Backend::Postgres => test_support::APP_ROLE,
        _ => "root",
    }
}

async fn every_operation_survives_closed_connections(t: TestDb) {
    // One tenant fills the whole pool, so that closing its connections closes them all.
    let db = t
        .tenant_db_options(|o| o.max_connections(POOL).min_connections(0))
        .without_per_tenant_cap()
        .connect()
        .await
        .expect("the library");
    let (ctx, project) = provision(&db).await;
    for op in OPS {
        fill(&db, &ctx).await;
        let closed = close_all(&t, app_user(&t)).await;
        assert!(
            closed >= POOL as usize,
            "{op:?}: expected the pool's {POOL} idle connections to be closed, closed {closed}"
        );
        run(&db, &ctx, project, op)
            .await
            .unwrap_or_else(|e| panic!("{op:?} after its connections were closed: {e:?}"));
        // And the pool goes on working.
        for _ in 0..3 {
            run(&db, &ctx, project, op)
                .await
                .unwrap_or_else(|e| panic!("{op:?} on the refilled pool: {e:?}"));
        }
    }
}

/// Waits until the pool's one connection is back and idle. sqlx pings a connection when it comes
/// back, on a task of its own: a kill that landed before that ping would make it fail, and the
/// pool would replace the connection (seen on a loaded machine), so the control would meet a
/// fresh one.
async fn back_in<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.num_idle() < 1 {
        assert!(
            Instant::now() < deadline,
            "the connection did not come back"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The control: the same closing makes a plain pool without the ping fail its next query, so the
/// test above does meet dead connections.
async fn a_plain_pool_without_the_ping_fails(t: TestDb) {
    let url = t.app_url();
    let failed = match t.backend() {
        Backend::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect(&url)
                .await
                .expect("plain pool");
            sqlx::query("SELECT 1").execute(&pool).await.expect("warm");
            back_in(&pool).await;
            close_all(&t, app_user(&t)).await;
            sqlx::query("SELECT 1").execute(&pool).await.is_err()
        }
        _ => {
            let pool = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .connect(&url)
                .await
                .expect("plain pool");
            let mine: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
                .fetch_one(&pool)
                .await
                .expect("warm");
            back_in(&pool).await;
            t.raw()
                .execute_raw(Statement::from_string(
                    DbBackend::MySql,
                    format!("KILL CONNECTION {mine}"),
                ))
                .await
                .expect("kill");
            wait_gone(&t, app_user(&t), &[mine]).await;
            sqlx::query("SELECT 1").execute(&pool).await.is_err()
        }
    };
    assert!(failed, "a connection closed by the server answered a query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_operation_survives_closed_connections() {
    test_support::run(
        Backend::Postgres,
        every_operation_survives_closed_connections,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_plain_pool_without_the_ping_fails() {
    test_support::run(Backend::Postgres, a_plain_pool_without_the_ping_fails).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_every_operation_survives_closed_connections() {
    test_support::run(Backend::Mysql, every_operation_survives_closed_connections).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_plain_pool_without_the_ping_fails() {
    test_support::run(Backend::Mysql, a_plain_pool_without_the_ping_fails).await;
}
