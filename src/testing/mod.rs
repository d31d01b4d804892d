//! Property tests that prove cross-tenant access looks like absence, on *your* service (feature
//! `testing`; docs/testing.md is the guide).
//!
//! Three pieces:
//!
//! - a [`World`]: several tenants of your database with rows, seeded by your code, and what the kit
//!   reads back: which rows of which tenant-owned table are whose;
//! - [`check_entity`] (and [`check_entities!`](crate::check_entities) for all of them at once, so a
//!   new table cannot be forgotten): for one `TenantScoped` entity, random sequences of `get`,
//!   `update`, `delete`, `find().all()`, `count`, `paginate` and re-pointing a reference, as tenant
//!   A with ids of tenant B's rows, must give exactly what an id that never existed gives (the same
//!   [`Error`](crate::Error) variant, `Display` and `Debug`), return none of B's rows, and write
//!   nothing; [`check_related`] does the same for the related loads of a relation; on PostgreSQL,
//!   [`check_entity_differential`] runs each operation with both walls, with row level security
//!   alone and with the application's filter alone, and the answers must agree;
//! - [`HttpCheck`] (with the `axum` feature): the same over HTTP, for any axum `Router`: every
//!   route you describe is replayed as tenant A with B's ids and with ids that never existed; the
//!   answers must be indistinguishable, carry none of B's values, never be 403 for B's rows, and
//!   B's rows must not change.
//!
//! Both run under [proptest](https://docs.rs/proptest): `PROPTEST_CASES` sets the number of cases
//! (default [`DEFAULT_CASES`]), `PROPTEST_RNG_SEED` replays a run (every failure prints its seed),
//! and a failure is shrunk to a minimal sequence of operations before it is reported.
//!
//! No vacuous passes: a world with fewer than two tenants or with a tenant without rows, an entity
//! none of whose rows belongs to one tenant only (so no id can show a leak), or a run in which no
//! answer was "not found" fails with a [`Failure`] that says so.
//!
//! ```no_run
//! # async fn f(db: &tenant_scope::TenantDb, acme: tenant_scope::TenantId, globex: tenant_scope::TenantId)
//! # -> Result<(), tenant_scope::testing::Failure> {
//! use tenant_scope::testing::{World, check_entity};
//!
//! let world = World::of(db, &[acme, globex]).await?;
//! check_entity::<entity::projects::Entity>(&world).await?;
//! tenant_scope::check_entities!(&world, entity::projects::Entity, entity::tasks::Entity)
//!     .await
//!     .expect_err("comments, users, … are tenant-owned too: the check says which are missing");
//! # Ok(()) }
//! ```

mod differential;
mod entity;
#[cfg(feature = "axum")]
mod http;
mod related;
mod world;

use std::fmt;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngSeed, TestRunner};

pub use differential::check_entity_differential;
pub use entity::{Coverage, check_entity};
#[cfg(feature = "axum")]
pub use http::{HttpCheck, HttpCoverage, Ids, Route};
pub use related::check_related;
pub use world::World;

#[doc(hidden)]
pub use entity::check_entities_of as __check_entities_of;

/// The number of cases of a check when `PROPTEST_CASES` is not set.
pub const DEFAULT_CASES: u32 = 32;

/// Runs [`check_entity`] for every entity listed, and fails unless they cover every tenant-owned
/// table of the world's database (but `audit_events` and `jobs`): a table added later without its entity in
/// the list fails the test instead of going unchecked. Evaluates to
/// `Result<Vec<Coverage>, Failure>`.
///
/// ```no_run
/// # async fn f(world: &tenant_scope::testing::World) -> Result<(), tenant_scope::testing::Failure> {
/// use entity::{api_keys, comments, projects, role_permissions, roles, tasks, user_roles, users};
///
/// tenant_scope::check_entities!(
///     world,
///     projects::Entity, tasks::Entity, comments::Entity, users::Entity, roles::Entity,
///     role_permissions::Entity, user_roles::Entity, api_keys::Entity,
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[macro_export]
macro_rules! check_entities {
    ($world:expr, $($entity:ty),+ $(,)?) => {
        async {
            let world: &$crate::testing::World = $world;
            let tables = [$(<$entity as ::sea_orm::EntityName>::table_name(&<$entity as ::core::default::Default>::default())),+];
            $crate::testing::__check_entities_of(world, &tables)?;
            let mut coverage = ::std::vec::Vec::new();
            $(coverage.push($crate::testing::check_entity::<$entity>(world).await?);)+
            ::core::result::Result::Ok::<_, $crate::testing::Failure>(coverage)
        }
    };
}

/// Why a check failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// Tenant A could tell another tenant's row from one that never existed, saw its data, or
    /// changed it.
    Leak,
    /// The check could not prove anything: no tenants, no rows, no id of one tenant only, no
    /// answer of the expected kind.
    Vacuous,
    /// The world or a route is not set up the way the check needs (a table not covered, a route
    /// that never answers 2xx to its own tenant, a seeding error).
    Setup,
    /// The database failed.
    Database,
}

/// A failed check: what kind, what was seen, and (for a leak) the minimal sequence of operations
/// that shows it and the seed that replays the run.
#[derive(Clone, Debug)]
pub struct Failure {
    kind: FailureKind,
    message: String,
}

impl Failure {
    /// What kind of failure it is.
    pub fn kind(&self) -> &FailureKind {
        &self.kind
    }

    /// The report.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn leak(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Leak,
            message: message.into(),
        }
    }

    pub(crate) fn vacuous(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Vacuous,
            message: format!("vacuous: {}", message.into()),
        }
    }

    pub(crate) fn setup(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Setup,
            message: message.into(),
        }
    }

    pub(crate) fn db(err: crate::Error) -> Self {
        Self {
            kind: FailureKind::Database,
            message: format!("the database failed: {err:?}"),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The cases to run: `PROPTEST_CASES`, else [`DEFAULT_CASES`].
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// The seed of a run: `PROPTEST_RNG_SEED`, else a random one (printed with any failure).
fn seed() -> u64 {
    std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(rand::random)
}

/// Runs `check` on [`cases`] values of `strategy`; on a [`FailureKind::Leak`], shrinks to the
/// simplest value that still fails and reports it with the seed. Any other failure ends the run
/// as it is.
async fn run<S, F>(name: &str, strategy: S, mut check: F) -> Result<(), Failure>
where
    S: Strategy,
    S::Value: fmt::Debug,
    F: AsyncFnMut(&S::Value) -> Result<(), Failure>,
{
    let seed = seed();
    let cases = cases();
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    let max_shrink = config.max_shrink_iters;
    let mut runner = TestRunner::new(config);
    for _ in 0..cases {
        let mut tree = strategy
            .new_tree(&mut runner)
            .map_err(|e| Failure::setup(format!("{name}: no case could be generated: {e}")))?;
        let failure = match check(&tree.current()).await {
            Ok(()) => continue,
            Err(failure) if failure.kind == FailureKind::Leak => failure,
            Err(other) => return Err(other),
        };
        let (mut minimal, mut report) = (tree.current(), failure);
        let mut steps = 0;
        if tree.simplify() {
            while steps < max_shrink {
                steps += 1;
                match check(&tree.current()).await {
                    Err(failure) if failure.kind == FailureKind::Leak => {
                        (minimal, report) = (tree.current(), failure);
                        if !tree.simplify() {
                            break;
                        }
                    }
                    _ => {
                        if !tree.complicate() {
                            break;
                        }
                    }
                }
            }
        }
        return Err(Failure::leak(format!(
            "{name}: {}\n  minimal case: {minimal:?}\n  replay with PROPTEST_RNG_SEED={seed}",
            report.message
        )));
    }
    Ok(())
}
