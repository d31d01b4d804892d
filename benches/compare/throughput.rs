//! Throughput under concurrency and the noisy neighbour (`TENANT_SCOPE_BENCH_THROUGHPUT=1`).
//!
//! - **Throughput**: 1, 4, 16 and 64 concurrent clients, each getting tasks by id for a fixed time,
//!   spread over the database's 10 tenants; the library, hand-written SeaORM and raw sqlx, each on
//!   a pool of 10 connections. Reported as operations per second and as the library's ratio to
//!   each alternative.
//! - **Noisy neighbour**: one client of a quiet tenant gets tasks one after another, alone and then
//!   while 10 clients of another tenant flood the same pool (10x its load); its p50 and p99, with
//!   the library's per-tenant cap at its default (half the pool), at 2 (about the server's cores
//!   here), and off.
//!
//! Ratios, not absolute numbers, are what compare across machines (docs/benchmarks.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use entity::tasks;
use sea_orm::DatabaseConnection;
use tenant_scope::{TenantContext, TenantDb};
use tokio::runtime::Runtime;
use uuid::Uuid;

use crate::layout::Layout;
use crate::ops::{context, sea_get, sqlx_get};
use crate::setup::{SqlxPool, Target, options};

const CLIENTS: [usize; 4] = [1, 4, 16, 64];
const POOL: u32 = 10;
const RUN: Duration = Duration::from_millis(1500);
const WARM: Duration = Duration::from_millis(300);

/// The tenants' contexts and one task id of each.
struct Tenants {
    contexts: Vec<TenantContext>,
    tasks: Vec<(tenant_scope::TenantId, Uuid)>,
}

/// What is being measured.
#[derive(Clone)]
enum Variant {
    Library(TenantDb),
    SeaOrm(DatabaseConnection),
    Sqlx(SqlxPool),
}

impl Variant {
    async fn get(&self, tenants: &Tenants, i: usize) {
        let n = i % tenants.tasks.len();
        let (tenant, task) = tenants.tasks[n];
        match self {
            Variant::Library(db) => {
                db.scope(&tenants.contexts[n])
                    .get::<tasks::Entity>(task)
                    .await
                    .expect("bench: library get");
            }
            Variant::SeaOrm(conn) => {
                sea_get(conn, tenant, task).await;
            }
            Variant::Sqlx(pool) => {
                sqlx_get(pool, tenant, task).await;
            }
        }
    }
}

/// Operations per second of `variant` with `clients` concurrent clients.
async fn throughput(variant: &Variant, tenants: &Arc<Tenants>, clients: usize) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (variant, tenants) = (variant.clone(), Arc::clone(tenants));
            let (count, stop, counting) = (count.clone(), stop.clone(), counting.clone());
            tokio::spawn(async move {
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    variant.get(&tenants, i).await;
                    if counting.load(Ordering::Relaxed) {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    i += clients;
                }
            })
        })
        .collect();
    tokio::time::sleep(WARM).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(RUN).await;
    let done = count.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("bench: a client");
    }
    done as f64 / elapsed.as_secs_f64()
}

/// The quiet tenant's latencies (p50, p99), with `flood` clients of another tenant running.
async fn neighbour(db: &TenantDb, tenants: &Arc<Tenants>, flood: usize) -> (Duration, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let flooding: Vec<_> = (0..flood)
        .map(|_| {
            let (db, tenants, stop) = (db.clone(), Arc::clone(tenants), stop.clone());
            tokio::spawn(async move {
                let variant = Variant::Library(db);
                while !stop.load(Ordering::Relaxed) {
                    // Tenant 0 is the noisy one.
                    variant.get(&tenants, 0).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(WARM).await;
    let quiet = Variant::Library(db.clone());
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < RUN * 2 {
        let t = Instant::now();
        quiet.get(tenants, 1).await;
        latencies.push(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    for task in flooding {
        task.await.expect("bench: a flooding client");
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    (at(0.50), at(0.99))
}

/// The per-tenant cap of a library pool.
#[derive(Clone, Copy)]
enum Cap {
    /// The default: half the pool.
    Default,
    /// At most this many connections per tenant.
    Of(u32),
    /// No cap.
    Off,
}

async fn library(target: &Target, cap: Cap, pooled: Option<&str>) -> TenantDb {
    let mut app = options(pooled.unwrap_or(&target.app_url));
    app.max_connections(POOL);
    let mut db = TenantDb::options(app).system(options(&target.owner_url));
    db = match cap {
        Cap::Default => db,
        Cap::Of(n) => db.per_tenant_connections(n),
        Cap::Off => db.without_per_tenant_cap(),
    };
    if pooled.is_some() {
        db = db.transaction_pooling(true);
    }
    db.connect().await.expect("bench: the library")
}

/// Runs both benches on `target` (`pooled`: the application URL through PgBouncer, if given) and
/// prints their lines.
pub(crate) fn run(rt: &Runtime, target: &Target, label: &str, pooled: Option<&str>) {
    let tenants = rt.block_on(async {
        let mut contexts = Vec::new();
        let mut tasks = Vec::new();
        for t in 0..target.layout.tenants {
            let tenant = Layout::tenant(t);
            contexts.push(context(target, tenant).await);
            tasks.push((tenant, target.layout.first_task(t)));
        }
        Arc::new(Tenants { contexts, tasks })
    });
    let db = rt.block_on(library(target, Cap::Default, pooled));
    let mut variants = vec![("tenant_scope", Variant::Library(db.clone()))];
    if pooled.is_none() {
        let raw = rt.block_on(async {
            let mut o = options(&target.owner_url);
            o.max_connections(POOL);
            sea_orm::Database::connect(o).await.expect("bench: seaorm")
        });
        variants.push(("seaorm", Variant::SeaOrm(raw)));
        variants.push(("sqlx", Variant::Sqlx(target.sqlx.clone())));
    }
    for clients in CLIENTS {
        let mut rates = Vec::new();
        for (name, variant) in &variants {
            let rate = rt.block_on(throughput(variant, &tenants, clients));
            println!("throughput {label} clients={clients} {name} ops_per_s={rate:.0}");
            rates.push(rate);
        }
        for (i, (name, _)) in variants.iter().enumerate().skip(1) {
            println!(
                "throughput {label} clients={clients} tenant_scope/{name} ratio={:.2}",
                rates[0] / rates[i]
            );
        }
    }
    let two = rt.block_on(library(target, Cap::Of(2), pooled));
    let off = rt.block_on(library(target, Cap::Off, pooled));
    for (name, db) in [("cap", &db), ("cap_2", &two), ("no_cap", &off)] {
        let (p50, p99) = rt.block_on(neighbour(db, &tenants, 0));
        let (f50, f99) = rt.block_on(neighbour(db, &tenants, 10));
        println!(
            "neighbour {label} {name} alone p50={p50:.2?} p99={p99:.2?} flood p50={f50:.2?} p99={f99:.2?} p99_ratio={:.2}",
            f99.as_secs_f64() / p99.as_secs_f64()
        );
    }
}
