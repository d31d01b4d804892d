//! Round trips per operation on PostgreSQL, counted on the wire.
//!
//! The library connects through a tiny TCP proxy that forwards to the server and writes down every
//! chunk of traffic in order, naming the client's protocol messages (`Query(..)`, `Bind`, `Sync`, ..).
//! A **round trip** is a burst of client→server traffic (one or more messages, in one or more TCP
//! writes) followed by server→client traffic: each switch of direction from client→server to
//! server→client counts one. The proxy writes a chunk down *before* forwarding it, so the order in
//! its log is causal: an answer is always logged after the request that caused it.
//!
//! Each operation is measured in steady state: run once (which fills sqlx's per-connection cache of
//! prepared statements), wait until the wire is quiet, then run again between two marks:
//! - **foreground**: round trips that start between the call and its return (the caller waits
//!   for them);
//! - **release**: round trips that start after the call returned, until the wire is quiet: sqlx
//!   returns the connection to the pool in a task of its own, and pings it there (`Sync`), which
//!   also flushes a `ROLLBACK` that a dropped transaction queued. Nobody waits for it, but the
//!   connection cannot be reused until it is done.
//!
//! The test runs on tokio's current-thread runtime (plain `#[tokio::test]`), so sqlx's release task
//! cannot run between an operation's return and the mark the test sets right after it: a release
//! round trip is never counted as foreground. Every pool has exactly one connection, so all counts
//! are of one connection.
//!
//! The counts are asserted exactly: the test fails if a change adds (or saves) a round trip. It
//! prints the table on stderr (`cargo test --test round_trips -- --nocapture`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use entity::{projects, tenants};
use futures::channel::oneshot;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbBackend, EntityTrait, QueryFilter, Statement, TransactionTrait,
};
use tenant_scope::{Error, TenantContext, TenantDb};
use test_support::{Backend, TestDb};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// The counting proxy
// ---------------------------------------------------------------------------------------------

/// One entry of a proxy's log.
#[derive(Debug, Clone)]
enum Event {
    /// Bytes from the client; the names of the protocol messages they completed (possibly none).
    Client(Vec<String>),
    /// Bytes from the server.
    Server,
    /// A mark the test set (see [`Proxy::mark`]).
    Mark,
}

type Log = Arc<Mutex<Vec<Event>>>;

fn push(log: &Log, event: Event) -> usize {
    let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    log.push(event);
    log.len() - 1
}

fn log_len(log: &Log) -> usize {
    log.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .len()
}

/// A TCP proxy to a PostgreSQL server that logs the traffic of every connection it relays.
struct Proxy {
    addr: SocketAddr,
    log: Log,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and relays every connection to `upstream` (`host:port`).
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let log: Log = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = {
            let log = log.clone();
            let accepted = accepted.clone();
            tokio::spawn(async move {
                let mut relays = JoinSet::new();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        incoming = listener.accept() => match incoming {
                            Ok((client, _)) => {
                                accepted.fetch_add(1, Ordering::SeqCst);
                                relays.spawn(relay(client, upstream.clone(), log.clone()));
                            }
                            Err(e) => panic!("the proxy's accept failed: {e}"),
                        },
                    }
                }
                // Relays still running belong to pools the test did not close: cut them.
                relays.shutdown().await;
            })
        };
        Proxy {
            addr,
            log,
            accepted,
            stop: Some(stop),
            task,
        }
    }

    /// `url` with its host and port replaced by the proxy's.
    fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let user = authority
            .rsplit_once('@')
            .map_or(String::new(), |(user, _)| format!("{user}@"));
        format!("{scheme}://{user}{}{tail}", self.addr)
    }

    /// Sets a mark in the log; returns its position.
    fn mark(&self) -> usize {
        push(&self.log, Event::Mark)
    }

    fn events(&self, from: usize, to: usize) -> Vec<Event> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())[from..to].to_vec()
    }

    /// Waits until no traffic has passed for 50 ms (at most 5 s).
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = log_len(&self.log);
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = log_len(&self.log);
            if now == seen || Instant::now() > deadline {
                return;
            }
            seen = now;
        }
    }

    /// Stops accepting, cuts the relays that are left, and waits for all of it.
    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("the proxy task");
    }
}

/// Relays one connection: two pumps, one per direction, until both sides are closed.
async fn relay(client: TcpStream, upstream: String, log: Log) {
    let server = match TcpStream::connect(&upstream).await {
        Ok(server) => server,
        Err(e) => panic!("the proxy could not reach the server at {upstream}: {e}"),
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = tokio::io::split(client);
    let (server_read, server_write) = tokio::io::split(server);
    tokio::join!(
        pump(client_read, server_write, log.clone(), true),
        pump(server_read, client_write, log, false),
    );
}

/// Copies `from` to `to`, logging each chunk before it is forwarded (so that the log is causal).
async fn pump<R, W>(mut from: R, mut to: W, log: Log, from_client: bool)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut parser = FrontendParser::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let event = if from_client {
            Event::Client(parser.feed(&buf[..n]))
        } else {
            Event::Server
        };
        push(&log, event);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Splits the client's byte stream into PostgreSQL frontend messages and names them.
#[derive(Debug, Default)]
struct FrontendParser {
    buf: Vec<u8>,
    /// Past the startup message (which, like `SSLRequest`, has no type byte).
    started: bool,
    /// The SQL of each prepared statement of the connection, by name (from `Parse`), so that a
    /// `Bind` can say which statement it runs.
    statements: std::collections::HashMap<Vec<u8>, String>,
}

impl FrontendParser {
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut names = Vec::new();
        loop {
            let header = if self.started { 5 } else { 8 };
            if self.buf.len() < header {
                break;
            }
            let at = usize::from(self.started);
            let len = u32::from_be_bytes([
                self.buf[at],
                self.buf[at + 1],
                self.buf[at + 2],
                self.buf[at + 3],
            ]) as usize
                + at;
            if len < header - 1 {
                // Not PostgreSQL framing (cannot happen with sslmode=disable): stop naming.
                names.push("?".to_owned());
                self.buf.clear();
                break;
            }
            if self.buf.len() < len {
                break;
            }
            let name = if self.started {
                let message = self.buf[..len].to_vec();
                self.message_name(message[0], &message[5..])
            } else {
                let code = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
                match code {
                    80_877_103 => "SSLRequest".to_owned(),
                    80_877_104 => "GSSENCRequest".to_owned(),
                    80_877_102 => "CancelRequest".to_owned(),
                    _ => {
                        self.started = true;
                        "Startup".to_owned()
                    }
                }
            };
            names.push(name);
            self.buf.drain(..len);
        }
        names
    }
}

impl FrontendParser {
    fn message_name(&mut self, kind: u8, body: &[u8]) -> String {
        let mut strings = body.split(|b| *b == 0);
        match kind {
            b'Q' => format!("Query({})", sql_head(body)),
            b'P' => {
                let name = strings.next().unwrap_or_default().to_vec();
                let sql = sql_head(strings.next().unwrap_or_default());
                self.statements.insert(name, sql.clone());
                format!("Parse({sql})")
            }
            b'B' => {
                let _portal = strings.next();
                let statement = strings.next().unwrap_or_default();
                match self.statements.get(statement) {
                    Some(sql) => format!("Bind({sql})"),
                    None => "Bind".to_owned(),
                }
            }
            other => message_name(other),
        }
    }
}

/// The first words of a statement, for the table.
fn sql_head(sql: &[u8]) -> String {
    let sql = String::from_utf8_lossy(sql);
    let sql = sql.trim_end_matches('\0').trim();
    let head: String = sql.chars().take(28).collect();
    if head.len() < sql.len() {
        format!("{head}…")
    } else {
        head
    }
}

fn message_name(kind: u8) -> String {
    match kind {
        b'E' => "Execute".to_owned(),
        b'D' => "Describe".to_owned(),
        b'S' => "Sync".to_owned(),
        b'H' => "Flush".to_owned(),
        b'C' => "Close".to_owned(),
        b'X' => "Terminate".to_owned(),
        b'p' => "Password".to_owned(),
        other => format!("{:?}", char::from(other)),
    }
}

/// The round trips of a stretch of log: the requests (client messages) of each, in order.
fn round_trips(events: &[Event]) -> Vec<Vec<String>> {
    let mut trips = Vec::new();
    let mut request: Option<Vec<String>> = None;
    for event in events {
        match event {
            Event::Client(names) => request.get_or_insert_with(Vec::new).extend(names.clone()),
            Event::Server => {
                if let Some(request) = request.take() {
                    trips.push(request);
                }
            }
            Event::Mark => {}
        }
    }
    if let Some(request) = request {
        // A request that was never answered (e.g. `Terminate`): not a round trip.
        assert!(
            request.iter().all(|m| m == "Terminate"),
            "a request without an answer: {request:?}"
        );
    }
    trips
}

// ---------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------

/// The round trips of one operation in steady state.
#[derive(Debug)]
struct Measured {
    name: String,
    foreground: Vec<Vec<String>>,
    release: Vec<Vec<String>>,
}

/// Runs `op` once to warm up, then again between marks; see the module doc.
async fn measure(proxy: &Proxy, name: &str, op: impl AsyncFn()) -> Measured {
    let connections = proxy.accepted.load(Ordering::SeqCst);
    op().await;
    proxy.settle().await;
    let start = proxy.mark();
    op().await;
    // Set synchronously after the return: on the current-thread runtime nothing else ran since.
    let returned = proxy.mark();
    proxy.settle().await;
    let end = proxy.mark();
    assert_eq!(
        proxy.accepted.load(Ordering::SeqCst),
        connections,
        "{name}: the pool opened another connection while measuring"
    );
    let foreground = round_trips(&proxy.events(start, returned));
    // A request sent in the foreground is answered in the foreground (the caller waited for it).
    let release = round_trips(&proxy.events(returned, end));
    Measured {
        name: name.to_owned(),
        foreground,
        release,
    }
}

fn describe(trips: &[Vec<String>]) -> String {
    trips
        .iter()
        .map(|messages| messages.join("+"))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn print_table(title: &str, rows: &[Measured]) {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    eprintln!("\n{title}");
    eprintln!(
        "{:width$}  {:>10}  {:>7}  requests (foreground || release)",
        "operation", "foreground", "release"
    );
    for row in rows {
        eprintln!(
            "{:width$}  {:>10}  {:>7}  {} || {}",
            row.name,
            row.foreground.len(),
            row.release.len(),
            describe(&row.foreground),
            describe(&row.release),
        );
    }
}

/// Asserts the counts of every row: `(name, foreground, release)`.
fn assert_counts(rows: &[Measured], expected: &[(&str, usize, usize)]) {
    assert_eq!(rows.len(), expected.len());
    let mut wrong = Vec::new();
    for (row, &(name, foreground, release)) in rows.iter().zip(expected) {
        assert_eq!(row.name, name);
        if (row.foreground.len(), row.release.len()) != (foreground, release) {
            wrong.push(format!(
                "{name}: expected {foreground} foreground + {release} release round trips, \
                 measured {} + {} ({} || {})",
                row.foreground.len(),
                row.release.len(),
                describe(&row.foreground),
                describe(&row.release)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "round trips changed:\n{}",
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

/// `host:port` of a `postgres://` URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

/// Options for a pool of exactly one connection, through `proxy`.
fn one_connection(url: &str) -> ConnectOptions {
    let mut options = test_support::connect_options(url);
    options.max_connections(1).min_connections(1);
    options
}

/// The library as the application role with one pooled connection through `proxy` (the system
/// connection goes to the server directly, so only the application's traffic is counted).
async fn library(
    t: &TestDb,
    proxy: &Proxy,
    pooling: bool,
    tune: impl FnOnce(&mut ConnectOptions),
) -> TenantDb {
    let mut app = one_connection(&proxy.url(&t.app_url()));
    tune(&mut app);
    TenantDb::options(app)
        .system(test_support::connect_options(t.url()))
        // The counting proxy keeps one server connection per client: not a transaction pooler,
        // but the library sends what it sends behind one if told so (`pooling`).
        .transaction_pooling(pooling)
        .connect()
        .await
        .expect("connecting the library through the proxy")
}

/// A tenant with `rows` projects, provisioned as the owner.
async fn provision(db: &TenantDb, rows: usize) -> (TenantContext, Vec<Uuid>) {
    let system = db.system("round trip test fixture").await.expect("system");
    let ctx = test_support::new_tenant(&system).await;
    let mut ids = Vec::new();
    for i in 0..rows {
        let project = system
            .insert(projects::ActiveModel {
                tenant_id: Set(ctx.tenant()),
                id: Set(Uuid::now_v7()),
                name: Set(format!("fixture {i}")),
                created_at: Set(Utc::now()),
            })
            .await
            .expect("project");
        ids.push(project.id);
    }
    (ctx, ids)
}

fn new_project(name: String) -> projects::ActiveModel {
    projects::ActiveModel {
        name: Set(name),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
}

/// Measures every operation of the library on `db` (whose pool goes through `proxy`).
async fn measure_library(db: &TenantDb, proxy: &Proxy) -> Vec<Measured> {
    let (ctx, ids) = provision(db, 8).await;
    let anchor = ids[0];
    let deletable = Mutex::new(ids[1..].to_vec());
    let counter = AtomicUsize::new(0);
    let next = || counter.fetch_add(1, Ordering::SeqCst);
    let scope = db.scope(&ctx);
    let mut rows = Vec::new();

    rows.push(
        measure(proxy, "get", async || {
            let row = scope.get::<projects::Entity>(anchor).await.expect("get");
            assert_eq!(row.id, anchor);
        })
        .await,
    );
    rows.push(
        measure(proxy, "global get", async || {
            let row = db
                .global()
                .get::<tenants::Entity>(ctx.tenant())
                .await
                .expect("global get");
            assert_eq!(row.id, ctx.tenant());
        })
        .await,
    );
    rows.push(
        measure(proxy, "list, no text value (ids, limit)", async || {
            let rows = scope
                .find::<projects::Entity>()
                .filter(projects::Column::Id.is_in(ids[..4].to_vec()))
                .limit(3)
                .all()
                .await
                .expect("list");
            assert_eq!(rows.len(), 3);
        })
        .await,
    );
    rows.push(
        measure(proxy, "list, a text value (find+filter+all)", async || {
            let rows = scope
                .find::<projects::Entity>()
                .filter(projects::Column::Name.ne("no such name"))
                .all()
                .await
                .expect("list");
            assert!(!rows.is_empty());
        })
        .await,
    );
    rows.push(
        measure(proxy, "count", async || {
            let n = scope
                .find::<projects::Entity>()
                .count()
                .await
                .expect("count");
            assert!(n > 0);
        })
        .await,
    );
    rows.push(
        measure(proxy, "insert", async || {
            scope
                .insert(new_project(format!("inserted {}", next())))
                .await
                .expect("insert");
        })
        .await,
    );
    rows.push(
        measure(proxy, "update", async || {
            scope
                .update(projects::ActiveModel {
                    id: Set(anchor),
                    name: Set(format!("renamed {}", next())),
                    ..Default::default()
                })
                .await
                .expect("update");
        })
        .await,
    );
    rows.push(
        measure(proxy, "delete", async || {
            let id = deletable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .expect("a row to delete");
            scope.delete::<projects::Entity>(id).await.expect("delete");
        })
        .await,
    );
    rows.push(
        measure(proxy, "update_many", async || {
            let n = scope
                .update_many::<projects::Entity>()
                .col_expr(
                    projects::Column::Name,
                    Expr::value(format!("bulk {}", next())),
                )
                .filter(projects::Column::Id.eq(anchor))
                .exec()
                .await
                .expect("update_many");
            assert_eq!(n, 1);
        })
        .await,
    );
    rows.push(
        measure(
            proxy,
            "transaction of 3 (insert, get, update)",
            async || {
                let insert = new_project(format!("in tx {}", next()));
                let rename = projects::ActiveModel {
                    id: Set(anchor),
                    name: Set(format!("renamed in tx {}", next())),
                    ..Default::default()
                };
                db.transaction(&ctx, |tx| {
                    Box::pin(async move {
                        tx.insert(insert).await?;
                        tx.get::<projects::Entity>(anchor).await?;
                        tx.update(rename).await?;
                        Ok::<_, Error>(())
                    })
                })
                .await
                .expect("transaction");
            },
        )
        .await,
    );
    rows
}

/// Measures the same `get` written by hand on plain SeaORM pools through proxies.
async fn measure_plain(t: &TestDb) -> Vec<Measured> {
    let db = t.tenant_db().await;
    let (ctx, ids) = provision(&db, 1).await;
    let (tenant, id) = (ctx.tenant(), ids[0]);
    let mut rows = Vec::new();

    // As the owner (no row level security), filtering on the tenant by hand.
    let proxy = Proxy::start(host_port(t.url())).await;
    let owner: DatabaseConnection = Database::connect(one_connection(&proxy.url(t.url())))
        .await
        .expect("plain pool");
    rows.push(
        measure(
            &proxy,
            "plain SeaORM get, manual tenant filter",
            async || {
                let row = projects::Entity::find()
                    .filter(projects::Column::TenantId.eq(tenant))
                    .filter(projects::Column::Id.eq(id))
                    .one(&owner)
                    .await
                    .expect("plain get");
                assert!(row.is_some());
            },
        )
        .await,
    );
    owner.close().await.expect("closing the plain pool");
    proxy.shutdown().await;

    // As the application role, with row level security set up by hand in SeaORM's transaction.
    let proxy = Proxy::start(host_port(t.url())).await;
    let app: DatabaseConnection = Database::connect(one_connection(&proxy.url(&t.app_url())))
        .await
        .expect("plain pool as the app role");
    rows.push(
        measure(&proxy, "plain SeaORM get, RLS by hand (txn)", async || {
            let tx = app.begin().await.expect("begin");
            tx.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT set_config('tenant_scope.tenant_id', $1, true)",
                [tenant.as_uuid().to_string().into()],
            ))
            .await
            .expect("set_config");
            let row = projects::Entity::find()
                .filter(projects::Column::TenantId.eq(tenant))
                .filter(projects::Column::Id.eq(id))
                .one(&tx)
                .await
                .expect("get");
            assert!(row.is_some());
            tx.commit().await.expect("commit");
        })
        .await,
    );
    app.close().await.expect("closing the plain pool");
    proxy.shutdown().await;
    rows
}

async fn with_library<F>(
    t: &TestDb,
    pooling: bool,
    tune: impl FnOnce(&mut ConnectOptions),
    f: F,
) -> Vec<Measured>
where
    F: AsyncFnOnce(&TenantDb, &Proxy) -> Vec<Measured>,
{
    let proxy = Proxy::start(host_port(t.url())).await;
    let db = library(t, &proxy, pooling, tune).await;
    let rows = f(&db, &proxy).await;
    drop(db);
    proxy.settle().await;
    proxy.shutdown().await;
    rows
}

#[tokio::test]
async fn round_trips_per_operation() {
    test_support::run(Backend::Postgres, |t: TestDb| async move {
        // The library as it comes (SeaORM's default pool options).
        let defaults = with_library(&t, false, |_| {}, measure_library).await;
        print_table(
            "Round trips per operation, PostgreSQL, library defaults",
            &defaults,
        );
        // With sqlx's ping before each acquire asked for explicitly: the library turns it off all
        // the same (TenantDbOptions::new), since its BEGIN is the check.
        let ping_asked = with_library(
            &t,
            false,
            |o| {
                o.test_before_acquire(true);
            },
            measure_library,
        )
        .await;
        let plain = measure_plain(&t).await;
        print_table(
            "The same get by hand, plain SeaORM (default pool options)",
            &plain,
        );

        // Foreground, reads: a single-row read (get, one, count) whose values all have a fixed
        // alphabet (ids, numbers, booleans, timestamps) goes with the tenant in one simple query,
        // `SET LOCAL tenant_scope.tenant_id = ..; SELECT .. '<id>'::uuid ..` (the statement alone
        // for the global handle): one round trip, its implicit transaction ends with the message.
        // A list, on a direct connection, and any statement with a text value keep their bound
        // parameters: `BEGIN; SET LOCAL ..` (one simple query), the statement, and its `ROLLBACK`
        // goes out with sqlx's release ping.
        // Writes: `BEGIN; SET LOCAL ..`, each statement, every write followed by the insert of its
        // audit event (src/audit.rs), a round trip of its own, and `COMMIT`. No acquire ping: the
        // library's pool does not ping before handing out a connection, its first message is the
        // check (tests/reconnect.rs). So, with `W` writes and `S` statements: foreground =
        // 1 + S + W + (1 if W > 0), release = 1; a read with its values written in: 1 + 1.
        let one_message = 1;
        let bound = |statements: usize| 1 + statements;
        let write = |statements: usize, writes: usize| 1 + statements + writes + 1;
        let expected = vec![
            ("get", one_message, 1),
            ("global get", one_message, 1),
            ("list, no text value (ids, limit)", bound(1), 1),
            ("list, a text value (find+filter+all)", bound(1), 1),
            ("count", one_message, 1),
            ("insert", write(1, 1), 1),
            ("update", write(1, 1), 1),
            ("delete", write(1, 1), 1),
            ("update_many", write(1, 1), 1),
            ("transaction of 3 (insert, get, update)", write(3, 2), 1),
        ];
        // The numbers, spelled out: get 1 + 1 (the hand-written get below: 2 + 1), insert
        // 4 + 1, a transaction of 3 7 + 1.
        assert_eq!(expected[0], ("get", 1, 1));
        assert_eq!(expected[5], ("insert", 4, 1));
        assert_eq!(
            expected[9],
            ("transaction of 3 (insert, get, update)", 7, 1)
        );
        assert_counts(&defaults, &expected);
        assert_counts(&ping_asked, &expected);

        // Behind a transaction pooler (`transaction_pooling(true)`): every bound statement is
        // unnamed, so sqlx parses it (and waits for its description) before it binds it: two round
        // trips per statement. Reads whose values can be written in, lists included, go in one
        // message (nothing to parse ahead, nothing cached to lose).
        let pooled = with_library(&t, true, |_| {}, measure_library).await;
        print_table(
            "Round trips per operation, PostgreSQL, transaction_pooling(true)",
            &pooled,
        );
        let unnamed = |statements: usize| 1 + 2 * statements;
        let unnamed_write = |statements: usize, writes: usize| 1 + 2 * (statements + writes) + 1;
        assert_counts(
            &pooled,
            &[
                ("get", one_message, 1),
                ("global get", one_message, 1),
                ("list, no text value (ids, limit)", one_message, 1),
                ("list, a text value (find+filter+all)", unnamed(1), 1),
                ("count", one_message, 1),
                ("insert", unnamed_write(1, 1), 1),
                ("update", unnamed_write(1, 1), 1),
                ("delete", unnamed_write(1, 1), 1),
                ("update_many", unnamed_write(1, 1), 1),
                (
                    "transaction of 3 (insert, get, update)",
                    unnamed_write(3, 2),
                    1,
                ),
            ],
        );
        assert_counts(
            &plain,
            &[
                ("plain SeaORM get, manual tenant filter", 2, 1),
                ("plain SeaORM get, RLS by hand (txn)", 5, 1),
            ],
        );
    })
    .await;
}
