//! Running a test body on a fresh database, and the macros that write one test per backend.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;

use crate::env::{Backend, say};
use crate::{TestDb, TestOutcome};

/// Runs `body` with a fresh database on `backend`, then drops the database, also if `body` panics or fails.
///
/// Returns at once when the backend is not configured outside CI. This is what [`backend_test!`](crate::backend_test) calls.
pub async fn run<F, Fut, R>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = R>,
    R: TestOutcome,
{
    // Boxed: every test's future would otherwise contain the whole setup future inline, and the
    // layout of that nesting, computed in each test crate, passes rustc's default query depth.
    if let Some(db) = Box::pin(TestDb::create(backend)).await {
        run_with(db, body).await;
    }
}

/// Runs `body` with a fresh *empty* database ([`Strategy::Empty`](crate::Strategy::Empty)) on
/// `backend`, if the backend is configured (as [`run`]).
pub async fn run_empty<F, Fut, R>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = R>,
    R: TestOutcome,
{
    let Some(server_url) = crate::server_url_from_env(backend) else {
        return;
    };
    let db = Box::pin(TestDb::create_with(
        backend,
        &server_url,
        crate::Strategy::Empty,
    ))
    .await;
    run_with(db, body).await;
}

/// Runs `body` with `db`, then drops `db`, also if `body` panics (the panic is then resumed).
pub async fn run_with<F, Fut, R>(db: TestDb, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = R>,
    R: TestOutcome,
{
    let backend = db.backend();
    let handle = db.clone();
    let outcome = AssertUnwindSafe(async move { body(handle).await.into_outcome() })
        .catch_unwind()
        .await;
    let dropped = Box::pin(db.drop_db()).await;
    match outcome {
        Err(panic) => {
            if let Err(e) = dropped {
                say(&format!(
                    "tenant-scope tests: could not drop the {backend} test database: {e}"
                ));
            }
            std::panic::resume_unwind(panic)
        }
        Ok(Err(error)) => panic!("test failed on {backend}: {error}"),
        Ok(Ok(())) => {
            if let Err(e) = dropped {
                panic!("tenant-scope tests: could not drop the {backend} test database: {e}");
            }
        }
    }
}

/// [`run`] for synchronous code: builds a multi-thread runtime (2 workers) and blocks on it.
pub fn block_on_run<F, Fut, R>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = R>,
    R: TestOutcome,
{
    new_runtime().block_on(run(backend, body));
}

/// The runtime the synchronous entry points use: multi-thread with 2 workers, like the macro's tests.
pub fn new_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

/// A runtime and a test database, for synchronous tests such as proptests: create it once per test and
/// `block_on` each case. Dropping it drops the database.
///
/// ```ignore
/// test_support::blocking_backend_test!(prop_roundtrip, |t: &BlockingTestDb| {
///     proptest::test_runner::TestRunner::default()
///         .run(&any::<u8>(), |x| { t.block_on(async { /* t.db().raw() ... */ }); Ok(()) })
///         .expect("property holds");
/// });
/// ```
#[derive(Debug)]
pub struct BlockingTestDb {
    db: Option<TestDb>,
    runtime: tokio::runtime::Runtime,
}

impl BlockingTestDb {
    /// A runtime and a fresh database on `backend`; `None` when the backend is not configured (outside CI).
    pub fn create(backend: Backend) -> Option<BlockingTestDb> {
        let runtime = new_runtime();
        let db = runtime.block_on(TestDb::create(backend))?;
        Some(BlockingTestDb {
            db: Some(db),
            runtime,
        })
    }

    /// The database.
    pub fn db(&self) -> &TestDb {
        self.db
            .as_ref()
            .expect("the test database is present until drop")
    }

    /// Runs a future to completion on the runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

impl Drop for BlockingTestDb {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            let backend = db.backend();
            if let Err(e) = self.runtime.block_on(db.drop_db()) {
                say(&format!(
                    "tenant-scope tests: could not drop the {backend} test database: {e}"
                ));
            }
        }
    }
}

/// Writes one `#[tokio::test]` per backend: `mod NAME { async fn sqlite(); async fn postgres(); async fn mysql() }`.
///
/// The body is a closure taking a [`TestDb`] and returning a future of `()` or of a `Result<(), E: Debug>`;
/// it is written once and instantiated for every backend. Attributes before the name (e.g. `#[ignore]`) are put
/// on each of the three tests. The module imports `super::*`, so the body sees the test file's items.
///
/// ```ignore
/// test_support::backend_test!(cross_tenant_get_is_not_found, |t: TestDb| async move { /* ... */ });
/// ```
#[macro_export]
macro_rules! backend_test {
    ($(#[$meta:meta])* $name:ident, $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::run($crate::Backend::Sqlite, $body).await;
            }

            $(#[$meta])*
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::run($crate::Backend::Postgres, $body).await;
            }

            $(#[$meta])*
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                $crate::run($crate::Backend::Mysql, $body).await;
            }
        }
    };
}

/// [`backend_test!`] on a fresh *empty* database per backend ([`Strategy::Empty`](crate::Strategy::Empty)):
/// for a test that builds its own schema, such as a service outside the reference schema.
#[macro_export]
macro_rules! empty_backend_test {
    ($(#[$meta:meta])* $name:ident, $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::run_empty($crate::Backend::Sqlite, $body).await;
            }

            $(#[$meta])*
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::run_empty($crate::Backend::Postgres, $body).await;
            }

            $(#[$meta])*
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                $crate::run_empty($crate::Backend::Mysql, $body).await;
            }
        }
    };
}

/// Writes one synchronous `#[test]` per backend, for proptests: the body is a closure taking a
/// `&BlockingTestDb` (a runtime plus a fresh database, dropped afterwards, also on panic).
///
/// ```ignore
/// test_support::blocking_backend_test!(ids_roundtrip, |t: &BlockingTestDb| {
///     t.block_on(async { /* t.db().raw() ... */ });
/// });
/// ```
#[macro_export]
macro_rules! blocking_backend_test {
    ($(#[$meta:meta])* $name:ident, $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[test]
            fn sqlite() {
                $crate::run_blocking($crate::Backend::Sqlite, $body);
            }

            $(#[$meta])*
            #[test]
            fn postgres() {
                $crate::run_blocking($crate::Backend::Postgres, $body);
            }

            $(#[$meta])*
            #[test]
            fn mysql() {
                $crate::run_blocking($crate::Backend::Mysql, $body);
            }
        }
    };
}

/// Runs a synchronous `body` with a [`BlockingTestDb`] on `backend`, dropping the database afterwards (also on
/// panic). Returns at once when the backend is not configured outside CI.
pub fn run_blocking<F, R>(backend: Backend, body: F)
where
    F: FnOnce(&BlockingTestDb) -> R,
    R: TestOutcome,
{
    let Some(db) = BlockingTestDb::create(backend) else {
        return;
    };
    // `db` is dropped (and with it the database) while a panic unwinds, too.
    if let Err(error) = body(&db).into_outcome() {
        drop(db);
        panic!("test failed on {backend}: {error}");
    }
}
