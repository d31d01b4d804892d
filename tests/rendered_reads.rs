//! Reads in one message (PostgreSQL): a read whose values all have a fixed alphabet (ids, numbers,
//! booleans, timestamps) goes to the server as `SET LOCAL tenant_scope.tenant_id = ..; SELECT ..`
//! with those values written into the text as typed literals (src/exec/inline.rs); a read with any
//! other value (text above all) keeps its bound parameters.
//!
//! - Written-in values find exactly what the same values find bound: every row inserted with a
//!   bound timestamp (the first and the last representable second, before 1970, microsecond
//!   boundaries, spread over the range), id, limit and offset is found again by a read with those
//!   values written in, and only that row. A timestamp with sub-microsecond digits stays bound
//!   (sqlx truncates it towards 2000, the server would round a literal): found all the same.
//! - Text cannot reach the statement: names made to break out of a literal or a statement (`'`,
//!   `;`, `--`, `$1`, `\`, `"`, dollar quotes) are stored, found by an equality filter on exactly
//!   their own row, and the tables are intact afterwards, on every backend.
//! - Both kinds of read see only the tenant's rows (the other tenant has rows with the same names
//!   and timestamps).
//!
//! The round trips themselves are counted in tests/round_trips.rs, and cancellation of a read in
//! one message in tests/pool_safety.rs.

use chrono::{DateTime, TimeZone, Timelike, Utc};
use entity::projects;
use sea_orm::ActiveValue::Set;
use sea_orm::ColumnTrait;
use tenant_scope::{TenantContext, TenantDb};
use test_support::{Backend, TestDb};
use uuid::Uuid;

/// Inserts a project (bound values) and returns it as stored (`RETURNING`).
async fn insert(
    db: &TenantDb,
    ctx: &TenantContext,
    name: &str,
    at: DateTime<Utc>,
) -> projects::Model {
    db.scope(ctx)
        .insert(projects::ActiveModel {
            name: Set(name.to_owned()),
            created_at: Set(at),
            ..Default::default()
        })
        .await
        .expect("insert (bound)")
}

/// Timestamps whose spelling is easy to get wrong: nanoseconds to truncate (sqlx truncates a
/// bound timestamp to microseconds; PostgreSQL would round a literal with more digits), the ends
/// of the range, a microsecond boundary, before 1970.
fn awkward_times(seed: u64) -> Vec<DateTime<Utc>> {
    let mut times = vec![
        Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).single(),
        Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single(),
        Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).single(),
        DateTime::from_timestamp(1_700_000_000, 999_999_999),
        DateTime::from_timestamp(1_700_000_000, 999_999),
        DateTime::from_timestamp(1_700_000_000, 1_000),
        DateTime::from_timestamp(1_700_000_000, 999),
    ];
    // And some spread over the range (a small LCG: reproducible, no dependency).
    let mut x = seed | 1;
    for _ in 0..25 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let secs = -62_135_596_800i64 + i64::try_from(x >> 30).unwrap_or(0) % 315_537_897_599;
        let nanos = u32::try_from(x % 1_000_000_000).unwrap_or(0);
        times.push(DateTime::from_timestamp(secs, nanos));
    }
    // Each also to the microsecond (written in); with finer digits they stay bound.
    times
        .into_iter()
        .flatten()
        .flat_map(|t| {
            let micro = t - chrono::Duration::nanoseconds(i64::from(t.nanosecond() % 1_000));
            [t, micro]
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn postgres_values_written_in_find_what_the_same_values_bound_find() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (a, b) = test_support::two_tenants(&db, &[]).await;
        let times = awkward_times(0x5eed);
        let mut mine = Vec::new();
        for (i, at) in times.iter().enumerate() {
            let name = format!("p{i:02}");
            mine.push((insert(&db, &a.job, &name, *at).await, *at));
            // The other tenant has the same names and times.
            insert(&db, &b.job, &name, *at).await;
        }
        // On a direct connection a list keeps its bound parameters and single-row reads are
        // written in; behind a transaction pooler lists are written in too: both ways here.
        let pooled = t
            .tenant_db_options(|o| o)
            .transaction_pooling(true)
            .connect()
            .await
            .expect("the library as behind a transaction pooler");
        for db in [&db, &pooled] {
            check_written_in(db, &a, &b, &times, &mine).await;
        }
    })
    .await;
}

async fn check_written_in(
    db: &TenantDb,
    a: &test_support::KeyedTenant,
    b: &test_support::KeyedTenant,
    times: &[DateTime<Utc>],
    mine: &[(projects::Model, DateTime<Utc>)],
) {
    let scope = db.scope(&a.job);
    for (row, at) in mine {
        // A single-row read with only a timestamp and the tenant: written in (bound with
        // sub-microsecond digits).
        let first = scope
            .find::<projects::Entity>()
            .filter(projects::Column::CreatedAt.eq(*at))
            .order_by_asc(projects::Column::Id)
            .one()
            .await
            .expect("one by time");
        assert_eq!(first.as_ref().map(|p| p.created_at), Some(row.created_at));
        // Only a timestamp and the tenant (written in, or bound with sub-microsecond digits):
        // the rows stored with the same time, and only those.
        let found = scope
            .find::<projects::Entity>()
            .filter(projects::Column::CreatedAt.eq(*at))
            .order_by_asc(projects::Column::Id)
            .all()
            .await
            .expect("by time");
        let stored = row.created_at;
        let expected: Vec<Uuid> = mine
            .iter()
            .filter(|(other, _)| other.created_at == stored)
            .map(|(other, _)| other.id)
            .collect();
        assert_eq!(
            found.iter().map(|p| p.id).collect::<Vec<_>>(),
            expected,
            "created_at = {at:?}"
        );
        let got = scope.get::<projects::Entity>(row.id).await.expect("by id");
        assert_eq!(&got, row);
    }
    // Ids, a limit and an offset: written in; ordered by id, the pages are the tenant's rows.
    let ids: Vec<Uuid> = mine.iter().map(|(row, _)| row.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    let page = scope
        .find::<projects::Entity>()
        .filter(projects::Column::Id.is_in(ids.clone()))
        .order_by_asc(projects::Column::Id)
        .offset(3)
        .limit(5)
        .all()
        .await
        .expect("a page");
    assert_eq!(
        page.iter().map(|p| p.id).collect::<Vec<_>>(),
        sorted[3..8].to_vec()
    );
    let count = scope
        .find::<projects::Entity>()
        .filter(projects::Column::CreatedAt.lt(Utc::now()))
        .count()
        .await
        .expect("count");
    let past = times.iter().filter(|at| **at < Utc::now()).count();
    assert_eq!(usize::try_from(count).ok(), Some(past));
    // The other tenant's ids, written in, find nothing.
    let theirs = db
        .scope(&b.job)
        .find::<projects::Entity>()
        .all()
        .await
        .expect("B's rows");
    let crossed = scope
        .find::<projects::Entity>()
        .filter(projects::Column::Id.is_in(theirs.iter().map(|p| p.id)))
        .all()
        .await
        .expect("B's ids as A");
    assert!(crossed.is_empty(), "{crossed:?}");
}

test_support::backend_test!(
    text_values_cannot_reach_the_statement,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let (a, b) = test_support::two_tenants(&db, &[]).await;
        let names = [
            "' OR '1'='1",
            "x'; DROP TABLE projects; --",
            "x\"; DROP TABLE projects; --",
            "$1",
            "$1'::uuid OR true --",
            "$$ OR true $$",
            "\\'; SELECT 1; --",
            "'' ; SET LOCAL tenant_scope.tenant_id = 'x'",
            "/* */ --",
            "naïve ünïcode ✓",
        ];
        let at = Utc::now();
        let mut mine = Vec::new();
        for name in names {
            mine.push(insert(&db, &a.job, name, at).await.id);
            insert(&db, &b.job, name, at).await;
        }
        let scope = db.scope(&a.job);
        for (name, id) in names.iter().zip(&mine) {
            let found = scope
                .find::<projects::Entity>()
                .filter(projects::Column::Name.eq(*name))
                .all()
                .await
                .expect("by name");
            assert_eq!(
                found
                    .iter()
                    .map(|p| (p.id, p.name.as_str()))
                    .collect::<Vec<_>>(),
                vec![(*id, *name)],
                "{}: name = {name:?}",
                t.backend()
            );
            // A text value beside written-in ones (an id, a limit): the whole statement stays bound.
            let one = scope
                .find::<projects::Entity>()
                .filter(projects::Column::Name.eq(*name))
                .filter(projects::Column::Id.eq(*id))
                .limit(1)
                .all()
                .await
                .expect("by name and id");
            assert_eq!(one.len(), 1);
        }
        // Everything is still there, for both tenants.
        let all = scope
            .find::<projects::Entity>()
            .count()
            .await
            .expect("count");
        assert_eq!(all, names.len() as u64);
        let theirs = db
            .scope(&b.job)
            .find::<projects::Entity>()
            .count()
            .await
            .expect("B's count");
        assert_eq!(theirs, names.len() as u64);
    }
);
