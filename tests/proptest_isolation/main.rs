//! Property test of tenant isolation, on every backend: random tenants, rows and operations are run
//! through the library and against an in-memory model (`proptest_isolation/model.rs`), and
//!
//! - every answer equals the model's (same rows, or the same `Error` variant);
//! - no answer ever holds a row of another tenant than the caller's;
//! - an operation naming another tenant's row (of the same case, or of an earlier case in the same
//!   database) answers exactly what the same operation answers for an id that never existed;
//! - after each case the database holds exactly the model's rows for the case's tenants, and the
//!   rows of every other tenant in the database are unchanged.
//!
//! One database per backend test; every case makes its own 2 to 4 tenants through
//! `db.system(..)`, a user and an API key for each, and acts through the context that
//! `db.verify(&ApiKeyVerifier, key)` returns (the real verifier path). So the tenants of earlier
//! cases are in the database too, and isolation from them is checked as well.
//!
//! 256 cases per backend; `PROPTEST_CASES` changes it, `PROPTEST_RNG_SEED` replays a run (the seed
//! is printed on failure). A failure is shrunk to a minimal operation sequence and reported with a
//! trace of what each operation answered.
//!
//! Run with: `cargo test --test proptest_isolation` (PostgreSQL and MySQL when
//! `TENANT_SCOPE_TEST_POSTGRES_URL` / `TENANT_SCOPE_TEST_MYSQL_URL` are set).

// The harness serves every test binary; this one uses the blocking entry points only.
#[allow(unused_macros, unused_imports)]
mod exec;
mod model;
mod ops;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

use entity::{projects, tasks};
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use tenant_scope::{TenantDb, TenantId};
use test_support::{BlockingTestDb, say};
use uuid::Uuid;

use model::{Action, Answer, Model, Outcome, ProjectRow, TaskRow};
use ops::{Case, OpKind, Pick, TenantField};

/// Cases per backend unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 256;

/// The proptest configuration: `PROPTEST_CASES` or 256 cases; a fixed seed (from
/// `PROPTEST_RNG_SEED`, or drawn here) so that a failure can be replayed; no regression file (the
/// database state of a case is not reproducible from a file, the seed is).
fn config() -> (Config, u64) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(rand::random);
    let config = Config {
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::with_cases(cases)
    };
    (config, seed)
}

/// The rows of every tenant outside the running case, as the database held them after the last
/// case: they must not change while a case runs.
#[derive(Debug, Default)]
struct World {
    projects: BTreeMap<(TenantId, Uuid), ProjectRow>,
    tasks: BTreeMap<(TenantId, Uuid), TaskRow>,
    users: Vec<Uuid>,
    /// How often each kind of operation gave each kind of answer, over all cases.
    seen: BTreeMap<String, u64>,
}

test_support::blocking_backend_test!(scoped_operations_match_the_model, |t: &BlockingTestDb| {
    check_property(t)
});

fn check_property(t: &BlockingTestDb) {
    let backend = t.db().backend();
    let db = t.block_on(t.db().tenant_db());
    let (config, seed) = config();
    let cases = config.cases;
    let world = RefCell::new(World::default());
    let runs = RefCell::new(0u32);
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&ops::case(), |case| {
        *runs.borrow_mut() += 1;
        t.block_on(run_case(&db, &world, &case))
    });
    let elapsed = started.elapsed();
    match result {
        Ok(()) => {
            say(&format!(
                "proptest_isolation: {backend}: {cases} cases passed in {:.1} s",
                elapsed.as_secs_f64()
            ));
            if std::env::var("TENANT_SCOPE_PROPTEST_STATS").is_ok_and(|v| v == "1") {
                let world = world.borrow();
                let mut out = format!("proptest_isolation: {backend}: operation -> answer, count:");
                for (key, n) in &world.seen {
                    let _ = write!(out, "\n  {key:<50} {n}");
                }
                say(&out);
            }
        }
        Err(TestError::Fail(reason, case)) => panic!(
            "proptest_isolation on {backend}: a case failed (seed {seed}, {} case runs incl. shrinking, \
             {:.1} s; replay with PROPTEST_RNG_SEED={seed}).\nMinimal case: {case:#?}\n{reason}",
            runs.borrow(),
            elapsed.as_secs_f64()
        ),
        Err(TestError::Abort(reason)) => {
            panic!("proptest_isolation on {backend}: aborted (seed {seed}): {reason}")
        }
    }
}

/// What one case knows while it runs.
struct Run<'a> {
    db: &'a TenantDb,
    model: Model,
    contexts: Vec<tenant_scope::TenantContext>,
    /// Projects of earlier cases' tenants (candidates for `Pick::Earlier`).
    earlier_projects: Vec<Uuid>,
    earlier_users: Vec<Uuid>,
    /// Short names for ids, for the trace.
    labels: BTreeMap<Uuid, String>,
    trace: String,
    /// `operation -> answer` kinds of this case, for the coverage summary.
    seen: Vec<String>,
}

/// Which kind of row an id was resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Own,
    Missing,
    Other,
    Earlier,
}

fn fail(msg: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(msg.into())
}

async fn run_case(db: &TenantDb, world: &RefCell<World>, case: &Case) -> Result<(), TestCaseError> {
    let mut run = setup(db, world, case.tenants).await?;
    let ran = run.ops(case).await;
    // Always compare with (and then record) the database state, also after a failed operation,
    // so that the next case starts from what the database really holds.
    let checked = run.check_database(world).await;
    match (ran, checked) {
        (Err(e), _) | (Ok(()), Err(e)) => {
            Err(fail(run.labelled(&format!("{e}\ntrace:\n{}", run.trace))))
        }
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// Creates the case's tenants through the system handle, one user and one API key each, and
/// verifies each key: the contexts the operations run with come from the real verifier.
async fn setup<'a>(
    db: &'a TenantDb,
    world: &RefCell<World>,
    n: usize,
) -> Result<Run<'a>, TestCaseError> {
    let system = db
        .system("proptest: provisioning tenants")
        .await
        .map_err(|e| fail(format!("system handle: {e:?}")))?;
    let mut tenant_ids = Vec::new();
    let mut users_ = Vec::new();
    let mut contexts = Vec::new();
    let mut labels = BTreeMap::new();
    for i in 0..n {
        let boot = test_support::tenant(&system, &format!("proptest {}", Uuid::now_v7())).await;
        let tenant = boot.tenant();
        let scope = db.scope(&boot);
        let user = test_support::user(
            &scope,
            &format!("user{i}@example.test"),
            &format!("User {i}"),
        )
        .await;
        // The key verifies for its own tenant, or the fixture panics.
        let (_, ctx) = test_support::with_key(db, &scope, user.id).await;
        labels.insert(tenant.into_uuid(), format!("T{i}"));
        labels.insert(user.id, format!("T{i}.user"));
        tenant_ids.push(tenant);
        users_.push(user.id);
        contexts.push(ctx);
    }
    let world = world.borrow();
    let earlier_projects: Vec<Uuid> = world.projects.keys().map(|(_, id)| *id).collect();
    Ok(Run {
        db,
        model: Model::new(tenant_ids, users_),
        contexts,
        earlier_projects,
        earlier_users: world.users.clone(),
        labels,
        trace: String::new(),
        seen: Vec::new(),
    })
}

impl Run<'_> {
    /// A fresh id that exists nowhere.
    fn missing(&mut self) -> Uuid {
        let id = Uuid::now_v7();
        let n = self.labels.len();
        self.labels.insert(id, format!("missing{n}"));
        id
    }

    fn resolve_project(&mut self, by: usize, pick: Pick) -> (Uuid, Kind) {
        let choose = |ids: &[Uuid], n: usize| (!ids.is_empty()).then(|| ids[n % ids.len()]);
        let found = match pick {
            Pick::Own(n) => choose(
                &self.model.owned[by]
                    .projects
                    .iter()
                    .map(|p| p.id)
                    .collect::<Vec<_>>(),
                n,
            )
            .map(|id| (id, Kind::Own)),
            Pick::Other(n) => choose(
                &self
                    .model
                    .owned
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != by)
                    .flat_map(|(_, o)| o.projects.iter().map(|p| p.id))
                    .collect::<Vec<_>>(),
                n,
            )
            .map(|id| (id, Kind::Other)),
            Pick::Earlier(n) => choose(&self.earlier_projects, n).map(|id| (id, Kind::Earlier)),
            Pick::Missing => None,
        };
        match found {
            // An insert with an explicit id may have given the acting tenant a row with the same
            // id as another tenant's (the key is `(tenant_id, id)`): then the id is its own too.
            Some((id, _)) if self.model.owned[by].projects.iter().any(|p| p.id == id) => {
                (id, Kind::Own)
            }
            Some(found) => found,
            None => (self.missing(), Kind::Missing),
        }
    }

    fn resolve_user(&mut self, by: usize, pick: Pick) -> (Uuid, Kind) {
        let users = &self.model.users;
        match pick {
            Pick::Own(_) => (users[by], Kind::Own),
            Pick::Other(n) => {
                let others: Vec<Uuid> = users
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != by)
                    .map(|(_, u)| *u)
                    .collect();
                (others[n % others.len()], Kind::Other)
            }
            Pick::Earlier(n) if !self.earlier_users.is_empty() => (
                self.earlier_users[n % self.earlier_users.len()],
                Kind::Earlier,
            ),
            Pick::Earlier(_) | Pick::Missing => (self.missing(), Kind::Missing),
        }
    }

    /// The `n`-th (modulo) tenant of the case other than `by`.
    fn other_tenant(&self, by: usize, n: usize) -> TenantId {
        let others: Vec<TenantId> = (0..self.model.tenants.len())
            .filter(|i| *i != by)
            .map(|i| self.model.tenants[i])
            .collect();
        others[n % others.len()]
    }

    fn resolve_tenant(&self, by: usize, field: TenantField) -> Option<TenantId> {
        match field {
            TenantField::Unset => None,
            TenantField::Own => Some(self.model.tenants[by]),
            TenantField::Other(n) => Some(self.other_tenant(by, n)),
        }
    }

    /// The action of `kind` for tenant `by`, and the ids it names that belong to other tenants.
    fn resolve(&mut self, by: usize, kind: &OpKind) -> (Action, Vec<Uuid>) {
        let mut foreign = Vec::new();
        let mut note = |(id, kind): (Uuid, Kind)| {
            if matches!(kind, Kind::Other | Kind::Earlier) {
                foreign.push(id);
            }
            id
        };
        let action = match kind {
            OpKind::InsertProject { name, id, tenant } => Action::InsertProject {
                id: id.map(|p| note(self.resolve_project(by, p))),
                name: name.clone(),
                tenant: self.resolve_tenant(by, *tenant),
            },
            OpKind::GetProject { target } => Action::GetProject {
                id: note(self.resolve_project(by, *target)),
            },
            OpKind::RenameProject {
                target,
                name,
                tenant,
            } => Action::RenameProject {
                id: note(self.resolve_project(by, *target)),
                name: name.clone(),
                tenant: self.resolve_tenant(by, *tenant),
            },
            OpKind::DeleteProject { target } => Action::DeleteProject {
                id: note(self.resolve_project(by, *target)),
            },
            OpKind::ListProjects { prefix } => Action::ListProjects { prefix: *prefix },
            OpKind::CountProjects { prefix } => Action::CountProjects { prefix: *prefix },
            OpKind::InsertTask {
                project,
                assignee,
                title,
            } => Action::InsertTask {
                project: note(self.resolve_project(by, *project)),
                assignee: assignee.map(|p| note(self.resolve_user(by, p))),
                title: title.clone(),
            },
            OpKind::TasksOf { project } => Action::TasksOf {
                project: note(self.resolve_project(by, *project)),
            },
            OpKind::ProjectsWithTasks { via } => Action::ProjectsWithTasks { via: *via },
            OpKind::TasksWithProject => Action::TasksWithProject,
            OpKind::RenameWhere { prefix, name } => Action::RenameWhere {
                prefix: *prefix,
                name: name.clone(),
            },
            OpKind::CompleteWhere { prefix } => Action::CompleteWhere { prefix: *prefix },
            OpKind::DeleteWhere { prefix } => Action::DeleteWhere { prefix: *prefix },
            OpKind::DeleteDoneTasks => Action::DeleteDoneTasks,
            OpKind::MoveWhere { prefix, to } => Action::MoveWhere {
                prefix: *prefix,
                to: self.other_tenant(by, *to),
            },
            OpKind::Page { size, page } => Action::Page {
                size: *size,
                page: *page,
            },
            OpKind::InsertPairInTransaction { a, b } => Action::InsertPairInTransaction {
                a: a.clone(),
                b: b.clone(),
            },
        };
        (action, foreign)
    }

    /// Runs `action` as tenant `by` through the library and through the model; checks that no row
    /// of another tenant comes back and that the answers are equal.
    async fn step(&mut self, by: usize, action: &Action, what: &str) -> Result<Outcome, String> {
        let actual = exec::perform(self.db, &self.contexts[by], action).await;
        let tenant = self.model.tenants[by];
        let new_ids = action.new_ids(&actual);
        for id in &new_ids {
            let n = self.labels.len();
            self.labels
                .entry(*id)
                .or_insert_with(|| format!("T{by}.row{n}"));
        }
        let expected = self.model.apply(by, action, &new_ids, Uuid::now_v7);
        let _ = writeln!(self.trace, "  {what} T{by} {action:?}\n      -> {actual:?}");
        self.seen.push(format!(
            "{}{} -> {}",
            action_name(action),
            if what.ends_with("twin") {
                " (twin)"
            } else {
                ""
            },
            outcome_kind(&actual)
        ));
        if let Ok(answer) = &actual {
            let leaked: Vec<String> = answer
                .tenants()
                .into_iter()
                .filter(|(t, _)| *t != tenant)
                .map(|(t, row)| format!("{row} of {t}"))
                .collect();
            if !leaked.is_empty() {
                return Err(format!(
                    "LEAK: T{by} got rows of another tenant: {}",
                    leaked.join(", ")
                ));
            }
        }
        if actual != expected {
            return Err(format!(
                "answer differs from the model for T{by} {action:?}\n  actual:   {actual:?}\n  expected: {expected:?}"
            ));
        }
        Ok(actual)
    }

    async fn ops(&mut self, case: &Case) -> Result<(), String> {
        for (i, op) in case.ops.iter().enumerate() {
            let (action, foreign) = self.resolve(op.by, &op.kind);
            let answer = self.step(op.by, &action, &format!("#{i}")).await?;
            // Naming another tenant's row must answer exactly what naming a row that never
            // existed answers. (An insert with an explicit id of another tenant is no such case:
            // that id is free in this tenant, and the model expects the insert to succeed.)
            if foreign.is_empty() || matches!(action, Action::InsertProject { .. }) {
                continue;
            }
            let replace: BTreeMap<Uuid, Uuid> =
                foreign.iter().map(|id| (*id, self.missing())).collect();
            let twin = action.replacing(&replace);
            let twin_answer = self.step(op.by, &twin, &format!("#{i} twin")).await?;
            if answer != twin_answer {
                return Err(format!(
                    "T{} {action:?} (naming another tenant's row) answered {answer:?}, but the \
                     same operation naming a never-existing id answered {twin_answer:?}",
                    op.by
                ));
            }
        }
        Ok(())
    }

    /// Reads every project and task through the system handle: the case's tenants must hold the
    /// model's rows, every other tenant what it held before the case. Then records the state.
    async fn check_database(&mut self, world: &RefCell<World>) -> Result<(), String> {
        let system = self
            .db
            .system("proptest: checking the database against the model")
            .await
            .map_err(|e| format!("system handle: {e:?}"))?;
        let all_projects: Vec<ProjectRow> = system
            .find::<projects::Entity>()
            .all()
            .await
            .map_err(|e| format!("reading projects: {e:?}"))?
            .into_iter()
            .map(Into::into)
            .collect();
        let all_tasks: Vec<TaskRow> = system
            .find::<tasks::Entity>()
            .all()
            .await
            .map_err(|e| format!("reading tasks: {e:?}"))?
            .into_iter()
            .map(Into::into)
            .collect();
        let mine: BTreeSet<TenantId> = self.model.tenants.iter().copied().collect();
        let (mut my_projects, their_projects): (Vec<_>, Vec<_>) = all_projects
            .into_iter()
            .partition(|p| mine.contains(&p.tenant));
        let (mut my_tasks, their_tasks): (Vec<_>, Vec<_>) = all_tasks
            .into_iter()
            .partition(|t| mine.contains(&t.tenant));
        my_projects.sort();
        my_tasks.sort();
        let their_projects: BTreeMap<_, _> = their_projects
            .into_iter()
            .map(|p| ((p.tenant, p.id), p))
            .collect();
        let their_tasks: BTreeMap<_, _> = their_tasks
            .into_iter()
            .map(|t| ((t.tenant, t.id), t))
            .collect();

        let mut problems = Vec::new();
        let (want_projects, want_tasks) = self.model.rows();
        if my_projects != want_projects {
            problems.push(format!(
                "projects of the case's tenants differ from the model\n  database: {my_projects:?}\n  model:    {want_projects:?}"
            ));
        }
        if my_tasks != want_tasks {
            problems.push(format!(
                "tasks of the case's tenants differ from the model\n  database: {my_tasks:?}\n  model:    {want_tasks:?}"
            ));
        }
        let mut world = world.borrow_mut();
        if their_projects != world.projects {
            problems.push(format!(
                "projects of earlier cases' tenants changed: {}",
                diff(&world.projects, &their_projects)
            ));
        }
        if their_tasks != world.tasks {
            problems.push(format!(
                "tasks of earlier cases' tenants changed: {}",
                diff(&world.tasks, &their_tasks)
            ));
        }
        // Record what the database holds now, whatever the verdict.
        world.projects = their_projects;
        world.tasks = their_tasks;
        world
            .projects
            .extend(my_projects.into_iter().map(|p| ((p.tenant, p.id), p)));
        world
            .tasks
            .extend(my_tasks.into_iter().map(|t| ((t.tenant, t.id), t)));
        world.users.extend(self.model.users.iter().copied());
        for key in self.seen.drain(..) {
            *world.seen.entry(key).or_default() += 1;
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// `text` with every known id replaced by its short name (for a failure message only).
    fn labelled(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let earlier = (self.earlier_projects.iter().enumerate())
            .map(|(k, id)| (*id, format!("earlier.p{k}")))
            .chain(
                (self.earlier_users.iter().enumerate())
                    .map(|(k, id)| (*id, format!("earlier.user{k}"))),
            );
        for (id, label) in self.labels.clone().into_iter().chain(earlier) {
            out = out.replace(&id.to_string(), &label);
        }
        out
    }
}

fn action_name(action: &Action) -> String {
    let debug = format!("{action:?}");
    let name = debug.split([' ', '{', '(']).next().unwrap_or_default();
    match action {
        Action::InsertProject { id: Some(_), .. } => format!("{name}(explicit id)"),
        Action::InsertProject {
            tenant: Some(_), ..
        }
        | Action::RenameProject {
            tenant: Some(_), ..
        } => {
            format!("{name}(tenant set)")
        }
        _ => name.to_owned(),
    }
}

fn outcome_kind(outcome: &Outcome) -> String {
    let rows = |n: usize| if n == 0 { "ok(empty)" } else { "ok(rows)" };
    match outcome {
        Ok(Answer::Projects(r)) | Ok(Answer::Page { rows: r, .. }) => rows(r.len()).into(),
        Ok(Answer::Tree(r)) => rows(r.len()).into(),
        Ok(Answer::TasksWithProject(r)) => rows(r.len()).into(),
        Ok(Answer::Count(n)) => rows(*n as usize)
            .replace("rows", "n>0")
            .replace("empty", "0"),
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

fn diff<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    before: &BTreeMap<K, V>,
    after: &BTreeMap<K, V>,
) -> String {
    const SHOWN: usize = 5;
    let mut lines = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => lines.push(format!("gone: {v:?}")),
            Some(w) if w != v => lines.push(format!("changed: {v:?}\n      -> {w:?}")),
            Some(_) => {}
        }
    }
    for (k, w) in after {
        if !before.contains_key(k) {
            lines.push(format!("appeared: {w:?}"));
        }
    }
    let mut out = format!("{} rows", lines.len());
    for line in lines.iter().take(SHOWN) {
        let _ = write!(out, "\n  {line}");
    }
    if lines.len() > SHOWN {
        let _ = write!(out, "\n  ...");
    }
    out
}
