//! The ratios the run prints at the end.
//!
//! Each bench that runs is noted ([`ran`]), and criterion measures it on its own; its median is
//! read from criterion's `estimates.json` (written by this run: older files are ignored). Then
//! each group's variants are measured again **interleaved** ([`paired`]): round after round, each
//! variant runs a block of about 20 ms, starting with a different variant each round. A ratio is the
//! median, over the rounds, of the ratio of the two variants' times in the same round: both were
//! measured within a few tens of milliseconds of each other, so a change in the machine's load (other
//! builds on the same two cores) affects both alike. Each ratio is printed as `name ratio=X.XX`,
//! then the targets.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tokio::runtime::Runtime;

static RAN: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

/// Per variant, the time per operation (ns) in each interleaved round.
static PAIRED: Mutex<BTreeMap<(String, String), Vec<f64>>> = Mutex::new(BTreeMap::new());

/// An operation timed `iters` times in a row; returns the time they took.
pub(crate) type Op<'a> = Box<dyn FnMut(u64) -> Pin<Box<dyn Future<Output = Duration> + 'a>> + 'a>;

/// How long one block of a variant runs in a round.
const BLOCK: Duration = Duration::from_millis(20);

/// How long the interleaved rounds run per variant: `TENANT_SCOPE_BENCH_PAIRED_MS`, by default
/// 1,500 ms.
fn paired_budget() -> Duration {
    let ms = std::env::var("TENANT_SCOPE_BENCH_PAIRED_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500);
    Duration::from_millis(ms)
}

/// Measures the variants of `group` interleaved (see the module docs).
pub(crate) fn paired(rt: &Runtime, group: &str, mut ops: Vec<(String, Op<'_>)>) {
    let n = ops.len();
    if n == 0 {
        return;
    }
    // Operations per block, from a short calibration of each.
    let per_block: Vec<u64> = ops
        .iter_mut()
        .map(|(_, op)| {
            rt.block_on(op(2));
            let took = rt.block_on(op(8)) / 8;
            (BLOCK.as_nanos() / took.as_nanos().max(1)).clamp(1, 10_000) as u64
        })
        .collect();
    let mut times = vec![Vec::new(); n];
    let total = paired_budget() * n as u32;
    let start = Instant::now();
    let mut round = 0;
    while start.elapsed() < total {
        for j in 0..n {
            let i = (round + j) % n;
            let took = rt.block_on((ops[i].1)(per_block[i]));
            times[i].push(took.as_nanos() as f64 / per_block[i] as f64);
        }
        round += 1;
    }
    let mut paired = PAIRED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for ((function, _), times) in ops.into_iter().zip(times) {
        paired.insert((group.to_owned(), function), times);
    }
}

fn median_of(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// Notes that `group/function` ran in this process.
pub(crate) fn ran(group: &str, function: &str) {
    RAN.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert((group.to_owned(), function.to_owned()));
}

/// One ratio: `group/numerator` over `group/denominator` (or over `den_group/denominator`).
struct Ratio {
    name: String,
    num: (String, String),
    den: (String, String),
    target: Option<f64>,
}

fn ratio(name: String, num: (&str, &str), den: (&str, &str), target: Option<f64>) -> Ratio {
    Ratio {
        name,
        num: (num.0.to_owned(), num.1.to_owned()),
        den: (den.0.to_owned(), den.1.to_owned()),
        target,
    }
}

/// Every ratio the benches can produce, with its target (see docs/benchmarks.md).
fn ratios() -> Vec<Ratio> {
    let mut out = Vec::new();
    for backend in ["sqlite", "postgres"] {
        let pg = backend == "postgres";
        for op in ["get", "list", "insert", "update", "load"] {
            let group = format!("{backend}_{op}");
            let g = group.as_str();
            let write = matches!(op, "insert" | "update");
            // SQLite: the app-filter targets; PostgreSQL: row level security against app-filter.
            let vs_seaorm = match (backend, op, pg) {
                ("sqlite", "get", _) => Some(1.05),
                // Issue 14: a read in one round trip.
                ("postgres", "get", _) => Some(1.1),
                (_, _, true) if !write => Some(1.5),
                _ => None,
            };
            out.push(ratio(
                format!("{g}_vs_seaorm"),
                (g, "tenant_scope"),
                (g, "seaorm"),
                vs_seaorm,
            ));
            let vs_sqlx = (backend == "sqlite" && op == "get").then_some(1.3);
            out.push(ratio(
                format!("{g}_vs_sqlx"),
                (g, "tenant_scope"),
                (g, "sqlx"),
                vs_sqlx,
            ));
            if write {
                out.push(ratio(
                    format!("{g}_vs_seaorm_audit"),
                    (g, "tenant_scope"),
                    (g, "seaorm_audit"),
                    pg.then_some(1.5),
                ));
                out.push(ratio(
                    format!("{g}_vs_sqlx_audit"),
                    (g, "tenant_scope"),
                    (g, "sqlx_audit"),
                    None,
                ));
            }
            if pg {
                let base = if write {
                    "seaorm_audit_tx"
                } else {
                    "seaorm_tx"
                };
                out.push(ratio(
                    format!("{g}_tx_vs_{base}"),
                    (g, "tenant_scope_tx"),
                    (g, base),
                    Some(1.1),
                ));
                out.push(ratio(
                    format!("{g}_tx_vs_single"),
                    (g, "tenant_scope_tx"),
                    (g, "tenant_scope"),
                    None,
                ));
                if !write {
                    // Against the same read with row level security by hand (a transaction,
                    // `set_config`, the read, `COMMIT`); inside a transaction with the tenant set
                    // by hand, the library's own cost; and what row level security costs the
                    // server (the same hand-written read as the application role with the tenant
                    // set, against the superuser's).
                    out.push(ratio(
                        format!("{g}_vs_seaorm_rls"),
                        (g, "tenant_scope"),
                        (g, "seaorm_rls"),
                        None,
                    ));
                    out.push(ratio(
                        format!("{g}_tx_vs_seaorm_rls_tx"),
                        (g, "tenant_scope_tx"),
                        (g, "seaorm_rls_tx"),
                        None,
                    ));
                    out.push(ratio(
                        format!("{g}_seaorm_rls_tx_vs_seaorm_tx"),
                        (g, "seaorm_rls_tx"),
                        (g, "seaorm_tx"),
                        None,
                    ));
                }
            }
        }
        // Against hand-written SeaORM on the library's own pool setting (no ping before acquire):
        // the library's cost apart from that setting.
        let g = format!("{backend}_get");
        let g = g.as_str();
        out.push(ratio(
            format!("{g}_vs_seaorm_no_ping"),
            (g, "tenant_scope"),
            (g, "seaorm_no_ping"),
            None,
        ));
        if !pg {
            // The library on as many SQLite connections as raw sqlx's default pool.
            out.push(ratio(
                format!("{g}_pool10_vs_sqlx"),
                (g, "tenant_scope_pool10"),
                (g, "sqlx"),
                None,
            ));
        }
        if pg {
            // A get in one message against the protocol before it (`BEGIN; SET LOCAL ..`, the
            // bound statement), both replayed with raw sqlx; and the library against the latter.
            out.push(ratio(
                "postgres_get_sim_one_message_vs_sim_bound".into(),
                ("postgres_get", "sim_one_message"),
                ("postgres_get", "sim_bound"),
                None,
            ));
            out.push(ratio(
                "postgres_get_vs_sim_bound".into(),
                ("postgres_get", "tenant_scope"),
                ("postgres_get", "sim_bound"),
                None,
            ));
            // What-if: the library's write protocol replayed with raw sqlx (its own cost), and the
            // audit event folded into the insert.
            out.push(ratio(
                "postgres_insert_vs_sim".into(),
                ("postgres_insert", "tenant_scope"),
                ("postgres_insert", "sim"),
                None,
            ));
            out.push(ratio(
                "postgres_insert_sim_cte_vs_sim".into(),
                ("postgres_insert", "sim_cte"),
                ("postgres_insert", "sim"),
                None,
            ));
        }
        for op in ["get", "list"] {
            let group = format!("{backend}_scale_{op}");
            let g = group.as_str();
            for n in ["t100", "t10000"] {
                out.push(ratio(
                    format!("{g}_{n}_vs_t1"),
                    (g, n),
                    (g, "t1"),
                    Some(1.2),
                ));
            }
        }
    }
    out
}

/// The median time per iteration (ns) of `group/function` in this run, from criterion's files.
fn median(dir: &Path, started: SystemTime, group: &str, function: &str) -> Option<f64> {
    let file = dir
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&file).ok()?.modified().ok()?;
    if modified < started {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn pretty(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

/// Prints the medians, the ratios (`name ratio=X.XX`) and the targets.
pub(crate) fn print(dir: &Path, started: SystemTime) {
    let ran = RAN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let mut medians = BTreeMap::new();
    for (group, function) in &ran {
        if let Some(ns) = median(dir, started, group, function) {
            medians.insert((group.clone(), function.clone()), ns);
        }
    }
    let paired = PAIRED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    if medians.is_empty() && paired.is_empty() {
        return;
    }
    println!("\n== medians (time per operation: criterion alone | interleaved rounds) ==");
    for key in medians.keys().chain(paired.keys()).collect::<BTreeSet<_>>() {
        let alone = medians.get(key).map_or("-".into(), |ns| pretty(*ns));
        let rounds = paired
            .get(key)
            .and_then(|t| median_of(t.clone()))
            .map_or("-".into(), pretty);
        println!("{}/{} median={alone} | {rounds}", key.0, key.1);
    }
    println!("\n== ratios (median over interleaved rounds) ==");
    let mut targets = Vec::new();
    for r in ratios() {
        let value = match (paired.get(&r.num), paired.get(&r.den)) {
            (Some(num), Some(den)) => median_of(num.iter().zip(den).map(|(a, b)| a / b).collect()),
            // Without interleaved rounds, criterion's medians.
            _ => medians
                .get(&r.num)
                .zip(medians.get(&r.den))
                .map(|(num, den)| num / den),
        };
        let Some(value) = value else {
            continue;
        };
        println!("{} ratio={value:.2}", r.name);
        if let Some(target) = r.target {
            targets.push((r.name, value, target));
        }
    }
    if !targets.is_empty() {
        println!("\n== targets ==");
        for (name, value, target) in targets {
            let verdict = if value <= target { "met" } else { "MISSED" };
            println!("target {name}: {value:.2} <= {target:.2} {verdict}");
        }
    }
}

/// Where criterion writes its files: `$CRITERION_HOME`, or `criterion/` in the target directory
/// this bench was built in (`target/release/deps/compare-<hash>` → `target/criterion`).
pub(crate) fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .nth(3)
                .map(|target| target.join("criterion"))
        })
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}
