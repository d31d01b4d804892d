//! The price of safety: tenant-scope measured against what a user would write by hand.
//!
//! Each operation (get by id; a page of 50 with a filter; insert; update; a task with its comments)
//! runs in one criterion group three ways: `tenant_scope` (the library), `seaorm` (hand-written
//! SeaORM with a manual `tenant_id` filter on a raw connection) and `sqlx` (raw sqlx, prepared
//! statement: the floor). Writes through the library also write an audit event, so writes have
//! `seaorm_audit` and `sqlx_audit` too: the hand-written write with its own audit event, in a
//! transaction. On PostgreSQL the library runs with row level security as the application role,
//! the hand-written variants as the superuser (app-filter only); `*_tx` variants run the operation
//! inside an open transaction (`db.begin` / SeaORM's `begin`), the transaction's own `BEGIN` and
//! end outside the timing, and `seaorm_rls*` run the hand-written reads as the application role with
//! the tenant set by hand (row level security without the library). `seaorm_no_ping` and
//! `tenant_scope_pool10` separate the library's cost from pool settings. The scale groups run the
//! library's get and list at 1, 100 and 10,000 tenants over 1,000,000 tasks on PostgreSQL and
//! 100,000 on SQLite. docs/benchmarks.md describes every variant.
//!
//! SQLite always runs (files in WAL mode); PostgreSQL runs when `TENANT_SCOPE_BENCH_POSTGRES_URL`
//! is a server URL as a superuser. At the end the run prints each ratio as `name ratio=X.XX` and
//! which targets are met. See docs/benchmarks.md for the command, the numbers and the databases
//! it keeps.

mod layout;
mod ops;
mod report;
mod setup;
mod throughput;

use std::future::Future;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use sea_orm::TransactionTrait;
use tokio::runtime::Runtime;

use layout::Layout;
use ops::{Fixture, Spread};
use report::Op;
use setup::{Backend, PgServer, Target};

/// The server the PostgreSQL benches run on (a superuser: the benches create databases).
const POSTGRES_URL_VAR: &str = "TENANT_SCOPE_BENCH_POSTGRES_URL";

/// The database of the operation benches: 10 tenants of 1,000 tasks, in projects of 100.
const OPS: Layout = Layout {
    tenants: 10,
    rows: 10_000,
    comments: true,
};

/// Tenant counts of the scale benches.
const SCALE_TENANTS: [u64; 3] = [1, 100, 10_000];

/// Lookups each scale bench cycles through.
const SPREAD: u64 = 512;

/// One criterion group, named so that the report can find it.
///
/// After criterion has measured each variant on its own, [`Group::finish`] measures them again
/// interleaved (see [`report::paired`]): on a shared machine whose load changes from one second to
/// the next, that is what the ratios are computed from.
struct Group<'c, 'r, 'a> {
    group: BenchmarkGroup<'c, WallTime>,
    name: String,
    rt: &'r Runtime,
    /// The variants that ran, for the interleaved rounds (none unless measuring).
    ops: Vec<(String, Op<'a>)>,
    measuring: bool,
}

impl<'c, 'r, 'a> Group<'c, 'r, 'a> {
    fn new(c: &'c mut Criterion, rt: &'r Runtime, measuring: bool, name: String) -> Self {
        Group {
            group: c.benchmark_group(name.clone()),
            name,
            rt,
            ops: Vec::new(),
            measuring,
        }
    }

    /// A bench of one operation per iteration.
    fn bench<F, Fut, T>(&mut self, function: &str, op: F)
    where
        F: Fn() -> Fut + 'a,
        Fut: Future<Output = T> + 'a,
    {
        let op = Rc::new(op);
        self.bench_custom(function, move |iters| {
            let op = op.clone();
            async move {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(op().await);
                }
                start.elapsed()
            }
        });
    }

    /// A bench that times `iters` operations itself (inside a transaction it opens and ends
    /// outside the timing).
    fn bench_custom<F, Fut>(&mut self, function: &str, op: F)
    where
        F: Fn(u64) -> Fut + 'a,
        Fut: Future<Output = Duration> + 'a,
    {
        let mut op: Op<'a> = Box::new(move |iters| Box::pin(op(iters)));
        let (name, rt) = (&self.name, self.rt);
        let mut ran = false;
        self.group.bench_function(function, |b| {
            ran = true;
            report::ran(name, function);
            b.to_async(rt).iter_custom(&mut op);
        });
        if ran && self.measuring {
            self.ops.push((function.to_owned(), op));
        }
    }

    fn finish(self) {
        self.group.finish();
        report::paired(self.rt, &self.name, self.ops);
    }
}

/// `iters` times `$op` with `$s` the scope of an open tenant transaction; returns the time of the
/// operations alone.
macro_rules! ts_tx {
    ($fx:expr, $iters:expr, |$s:ident| $op:expr) => {{
        let tx = $fx.target.db.begin(&$fx.ctx).await.expect("bench: begin");
        let $s = tx.scope();
        let start = Instant::now();
        for _ in 0..$iters {
            black_box($op);
        }
        let elapsed = start.elapsed();
        tx.rollback().await.expect("bench: rollback");
        elapsed
    }};
}

/// Like [`ts_tx!`], in a hand-written SeaORM transaction: as the superuser, or (`rls`) as the
/// application role with the tenant set first, as a user does by hand for row level security.
macro_rules! sea_tx {
    (@run $fx:expr, $conn:expr, $rls:expr, $iters:expr, |$t:ident| $op:expr) => {{
        let $t = $conn.begin().await.expect("bench: begin");
        if $rls {
            $fx.sea_set_tenant(&$t).await;
        }
        let start = Instant::now();
        for _ in 0..$iters {
            black_box($op);
        }
        let elapsed = start.elapsed();
        $t.rollback().await.expect("bench: rollback");
        elapsed
    }};
    ($fx:expr, $iters:expr, |$t:ident| $op:expr) => {
        sea_tx!(@run $fx, &$fx.target.raw, false, $iters, |$t| $op)
    };
    ($fx:expr, rls, $iters:expr, |$t:ident| $op:expr) => {
        sea_tx!(@run $fx, $fx.raw_app(), true, $iters, |$t| $op)
    };
}

/// One read by hand with row level security, as a user writes it on SeaORM as the application
/// role: a transaction, the tenant set, the read as `$t`, `COMMIT`.
macro_rules! sea_rls {
    ($fx:expr, |$t:ident| $op:expr) => {{
        let $t = $fx.raw_app().begin().await.expect("bench: begin");
        $fx.sea_set_tenant(&$t).await;
        let value = $op;
        $t.commit().await.expect("bench: commit");
        value
    }};
}

/// The five operations, each three ways (and with audit events, and in transactions on
/// PostgreSQL).
fn operations(c: &mut Criterion, rt: &Runtime, measuring: bool, fx: &Fixture) {
    rt.block_on(async {
        // Checks, then warms every pool and statement cache up before anything is timed.
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_secs(1) {
            fx.check().await;
        }
    });
    let b = fx.target.backend.name();
    let pg = fx.target.backend == Backend::Postgres;
    let single = fx.target.db.scope(&fx.ctx);
    let raw = &fx.target.raw;
    if pg {
        // Row level security by hand reads what the superuser reads.
        rt.block_on(async {
            assert_eq!(
                sea_rls!(fx, |t| fx.sea_get(&t).await),
                fx.sea_get(raw).await
            );
            assert_eq!(
                sea_rls!(fx, |t| fx.sea_list(&t).await),
                fx.sea_list(raw).await
            );
        });
    }

    let no_ping = fx.target.extra.as_ref().map(|extra| &extra.raw_no_ping);

    let mut g = Group::new(c, rt, measuring, format!("{b}_get"));
    g.bench("tenant_scope", || fx.ts_get(&single));
    g.bench("seaorm", || fx.sea_get(raw));
    g.bench("sqlx", || fx.sqlx_get());
    if let Some(no_ping) = no_ping {
        g.bench("seaorm_no_ping", || fx.sea_get(no_ping));
    }
    let pool10 = fx
        .target
        .extra
        .as_ref()
        .and_then(|extra| extra.db_pool10.as_ref());
    if let Some(pool10) = pool10 {
        let scope = pool10.scope(&fx.ctx);
        g.bench("tenant_scope_pool10", move || async move {
            fx.ts_get(&scope).await
        });
    }
    if pg {
        g.bench("seaorm_rls", || async {
            sea_rls!(fx, |t| fx.sea_get(&t).await)
        });
        g.bench("sim_bound", || fx.sim_get_bound());
        g.bench("sim_one_message", || fx.sim_get_one_message());
        g.bench_custom("tenant_scope_tx", |iters| async move {
            ts_tx!(fx, iters, |s| fx.ts_get(&s).await)
        });
        g.bench_custom("seaorm_tx", |iters| async move {
            sea_tx!(fx, iters, |t| fx.sea_get(&t).await)
        });
        g.bench_custom("seaorm_rls_tx", |iters| async move {
            sea_tx!(fx, rls, iters, |t| fx.sea_get(&t).await)
        });
    }
    g.finish();

    let mut g = Group::new(c, rt, measuring, format!("{b}_list"));
    g.bench("tenant_scope", || fx.ts_list(&single));
    g.bench("seaorm", || fx.sea_list(raw));
    g.bench("sqlx", || fx.sqlx_list());
    if pg {
        g.bench("seaorm_rls", || async {
            sea_rls!(fx, |t| fx.sea_list(&t).await)
        });
        g.bench_custom("tenant_scope_tx", |iters| async move {
            ts_tx!(fx, iters, |s| fx.ts_list(&s).await)
        });
        g.bench_custom("seaorm_tx", |iters| async move {
            sea_tx!(fx, iters, |t| fx.sea_list(&t).await)
        });
        g.bench_custom("seaorm_rls_tx", |iters| async move {
            sea_tx!(fx, rls, iters, |t| fx.sea_list(&t).await)
        });
    }
    g.finish();

    let mut g = Group::new(c, rt, measuring, format!("{b}_insert"));
    g.bench("tenant_scope", || fx.ts_insert(&single));
    g.bench("seaorm", || fx.sea_insert(raw));
    g.bench("seaorm_audit", || fx.sea_insert_audit(raw));
    g.bench("sqlx", || fx.sqlx_insert(false));
    g.bench("sqlx_audit", || fx.sqlx_insert(true));
    if pg {
        g.bench_custom("tenant_scope_tx", |iters| async move {
            ts_tx!(fx, iters, |s| fx.ts_insert(&s).await)
        });
        g.bench_custom("seaorm_audit_tx", |iters| async move {
            sea_tx!(fx, iters, |t| {
                let model = fx.sea_insert(&t).await;
                fx.sea_audit(&t, "insert", model.id).await;
                model
            })
        });
        g.bench("sim", || fx.sim_insert());
        g.bench("sim_cte", || fx.sim_insert_cte());
    }
    g.finish();

    let mut g = Group::new(c, rt, measuring, format!("{b}_update"));
    g.bench("tenant_scope", || fx.ts_update(&single));
    g.bench("seaorm", || fx.sea_update(raw));
    g.bench("seaorm_audit", || fx.sea_update_audit(raw));
    g.bench("sqlx", || fx.sqlx_update(false));
    g.bench("sqlx_audit", || fx.sqlx_update(true));
    if pg {
        g.bench_custom("tenant_scope_tx", |iters| async move {
            ts_tx!(fx, iters, |s| fx.ts_update(&s).await)
        });
        g.bench_custom("seaorm_audit_tx", |iters| async move {
            sea_tx!(fx, iters, |t| {
                let model = fx.sea_update(&t).await;
                fx.sea_audit(&t, "update", model.id).await;
                model
            })
        });
    }
    g.finish();

    let mut g = Group::new(c, rt, measuring, format!("{b}_load"));
    g.bench("tenant_scope", || fx.ts_load(&single));
    g.bench("seaorm", || fx.sea_load(raw));
    g.bench("sqlx", || fx.sqlx_load());
    if pg {
        g.bench("seaorm_rls", || async {
            sea_rls!(fx, |t| fx.sea_load(&t).await)
        });
        g.bench_custom("tenant_scope_tx", |iters| async move {
            ts_tx!(fx, iters, |s| fx.ts_load(&s).await)
        });
        g.bench_custom("seaorm_tx", |iters| async move {
            sea_tx!(fx, iters, |t| fx.sea_load(&t).await)
        });
        g.bench_custom("seaorm_rls_tx", |iters| async move {
            sea_tx!(fx, rls, iters, |t| fx.sea_load(&t).await)
        });
    }
    g.finish();
}

/// Get and list through the library at each tenant count.
fn scale(
    c: &mut Criterion,
    rt: &Runtime,
    measuring: bool,
    backend: Backend,
    spreads: &[(u64, Spread)],
) {
    let b = backend.name();
    let mut g = Group::new(c, rt, measuring, format!("{b}_scale_get"));
    for (tenants, spread) in spreads {
        g.bench(&format!("t{tenants}"), || spread.get());
    }
    g.finish();
    let mut g = Group::new(c, rt, measuring, format!("{b}_scale_list"));
    for (tenants, spread) in spreads {
        g.bench(&format!("t{tenants}"), || spread.list());
    }
    g.finish();
}

/// Whether criterion measures (`cargo bench`), rather than running each bench once
/// (`cargo test --benches`, `-- --test`) or listing them: only measuring runs load the
/// full-size scale databases (and keep them) and print the report.
fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    has("--bench") && !has("--test") && !has("--list")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("nproc={cores} cpu={cpu:?}")
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The scale targets of one backend (one per tenant count, `rows` tasks each), each with its
/// lookups.
fn spreads<F, Fut>(rt: &Runtime, rows: u64, make: F) -> Vec<(u64, Spread)>
where
    F: Fn(Layout) -> Fut,
    Fut: Future<Output = Target>,
{
    SCALE_TENANTS
        .iter()
        .map(|&tenants| {
            let layout = Layout {
                tenants,
                rows,
                comments: false,
            };
            let target = rt.block_on(make(layout));
            (tenants, rt.block_on(Spread::new(target, SPREAD)))
        })
        .collect()
}

/// Set: run the throughput and noisy-neighbour benches (benches/compare/throughput.rs) instead.
const THROUGHPUT_VAR: &str = "TENANT_SCOPE_BENCH_THROUGHPUT";

/// PgBouncer in transaction mode in front of the PostgreSQL server (`host:port`), for the
/// throughput benches through it.
const PGBOUNCER_VAR: &str = "TENANT_SCOPE_BENCH_PGBOUNCER";

/// The throughput benches on SQLite, PostgreSQL, and PostgreSQL through PgBouncer.
fn throughputs(rt: &Runtime, hash: &str) {
    setup::sweep_sqlite(hash);
    let target = rt.block_on(setup::sqlite(hash, OPS, false));
    throughput::run(rt, &target, "sqlite", None);
    rt.block_on(target.finish(None));
    let Some(url) = std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        println!("bench: {POSTGRES_URL_VAR} not set; the PostgreSQL benches do not run");
        return;
    };
    let server = rt.block_on(PgServer::connect(&url));
    println!("bench: PostgreSQL {}", rt.block_on(server.version()));
    rt.block_on(server.sweep(hash));
    let target = rt.block_on(server.target(hash, OPS, false));
    throughput::run(rt, &target, "postgres", None);
    match std::env::var(PGBOUNCER_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(bouncer) => {
            // The same database, its application URL through the pooler.
            let pooled = match target.app_url.split_once('@') {
                Some((user, rest)) => {
                    let path = rest.find('/').map_or("", |i| &rest[i..]);
                    format!("{user}@{}{path}", bouncer.trim())
                }
                None => target.app_url.clone(),
            };
            throughput::run(rt, &target, "pgbouncer", Some(&pooled));
        }
        None => println!("bench: {PGBOUNCER_VAR} not set; the PgBouncer benches do not run"),
    }
    rt.block_on(target.finish(Some(&server)));
}

fn main() {
    let started = SystemTime::now();
    let dir = report::criterion_dir();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10)
        .nresamples(20_000)
        .output_directory(&dir)
        .configure_from_args();
    let measuring = measuring();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("bench: tokio runtime");
    let hash = layout::schema_hash();
    // Full size (kept between runs) when measuring; small scratch data when testing.
    let (pg_rows, sqlite_rows) = if measuring {
        (1_000_000, 100_000)
    } else {
        (20_000, 20_000)
    };
    println!("bench: machine {} load {}", machine(), load());
    if std::env::var(THROUGHPUT_VAR).is_ok_and(|v| !v.trim().is_empty()) {
        throughputs(&rt, &hash);
        println!("bench: load at the end {}", load());
        return;
    }

    // SQLite.
    setup::sweep_sqlite(&hash);
    let fx = rt.block_on(async { Fixture::new(setup::sqlite(&hash, OPS, false).await).await });
    println!(
        "bench: SQLite {}",
        rt.block_on(setup::sqlite_version(&fx.target))
    );
    operations(&mut c, &rt, measuring, &fx);
    rt.block_on(fx.target.finish(None));
    let hash_ref = &hash;
    let sqlite = spreads(&rt, sqlite_rows, |layout| {
        setup::sqlite(hash_ref, layout, measuring)
    });
    scale(&mut c, &rt, measuring, Backend::Sqlite, &sqlite);
    for (_, spread) in sqlite {
        rt.block_on(spread.target.finish(None));
    }

    // PostgreSQL.
    match std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        Some(url) => {
            let server = rt.block_on(PgServer::connect(&url));
            println!("bench: PostgreSQL {}", rt.block_on(server.version()));
            rt.block_on(server.sweep(&hash));
            let fx =
                rt.block_on(async { Fixture::new(server.target(&hash, OPS, false).await).await });
            operations(&mut c, &rt, measuring, &fx);
            rt.block_on(fx.target.finish(Some(&server)));
            let server_ref = &server;
            let pg = spreads(&rt, pg_rows, |layout| {
                server_ref.target(hash_ref, layout, measuring)
            });
            scale(&mut c, &rt, measuring, Backend::Postgres, &pg);
            for (_, spread) in pg {
                rt.block_on(spread.target.finish(Some(&server)));
            }
        }
        None => println!("bench: {POSTGRES_URL_VAR} not set; the PostgreSQL benches do not run"),
    }

    c.final_summary();
    println!("bench: load at the end {}", load());
    if measuring {
        report::print(&dir, started);
    }
}
