//! The generated input of one case: how many tenants, and the operations they run.
//!
//! Everything is plain data with small numbers (no `prop::sample::Index`), so a shrunk case prints
//! readably. Numbers that choose among existing rows are taken modulo the number of candidates
//! when the case runs, so every generated value is valid whatever the earlier operations did.

use proptest::collection::vec;
use proptest::prelude::*;

/// Names and titles come from this tiny alphabet, one or two letters, so that unique conflicts
/// (the same project name twice in one tenant) are frequent, and so is the same name in two
/// tenants (which must not conflict).
const NAME: &str = "[abc]{1,2}";

/// One case: `tenants` fresh tenants, and operations each run by one of them.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    /// How many tenants the case creates (2 to 4).
    pub(crate) tenants: usize,
    /// The operations, in order.
    pub(crate) ops: Vec<Op>,
}

/// One operation, run by tenant `by % tenants` of the case.
#[derive(Clone, Debug)]
pub(crate) struct Op {
    pub(crate) by: usize,
    pub(crate) kind: OpKind,
}

/// Which row an operation names.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pick {
    /// A row of the acting tenant (the `n`-th modulo their count; a never-existing id if the
    /// tenant has none yet).
    Own(usize),
    /// An id that never existed anywhere.
    Missing,
    /// A row of another tenant of this case.
    Other(usize),
    /// A row of a tenant of an earlier case, in the same database.
    Earlier(usize),
}

/// How the related rows are loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// `Scoped::find_with_related` (one query with a join).
    WithRelated,
    /// `TenantScope::load_many` (SeaORM's batch loader).
    LoadMany,
}

/// What an active model says about `tenant_id`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum TenantField {
    /// Not set: the library fills in the context's tenant.
    Unset,
    /// Set to the acting tenant (allowed).
    Own,
    /// Set to another tenant of the case: `Error::TenantMismatch`, whatever else.
    Other(usize),
}

/// What an operation does.
#[derive(Clone, Debug)]
pub(crate) enum OpKind {
    /// `scope.insert(project)`; with `id: Some(..)` the id is given explicitly (an id of another
    /// tenant must be free in this one: the primary key is `(tenant_id, id)`).
    InsertProject {
        name: String,
        id: Option<Pick>,
        tenant: TenantField,
    },
    /// `scope.get::<projects::Entity>(id)`.
    GetProject { target: Pick },
    /// `scope.update(project { id, name })`; without a name, an update that sets nothing.
    RenameProject {
        target: Pick,
        name: Option<String>,
        tenant: TenantField,
    },
    /// `scope.delete::<projects::Entity>(id)` (its tasks go with it: `ON DELETE CASCADE`).
    DeleteProject { target: Pick },
    /// `scope.find::<projects::Entity>()`, optionally filtered by a name prefix, `.all()`.
    ListProjects { prefix: Option<char> },
    /// The same, `.count()`.
    CountProjects { prefix: Option<char> },
    /// `scope.insert(task)` referencing a project and optionally a user (composite foreign keys).
    InsertTask {
        project: Pick,
        assignee: Option<Pick>,
        title: String,
    },
    /// One project with its tasks: `find::<projects>().filter(id).find_with_related::<tasks>()`.
    TasksOf { project: Pick },
    /// Every project with its tasks, through `find_with_related` or `load_many`.
    ProjectsWithTasks { via: Via },
    /// Every task with its project: `find::<tasks>().find_also_related::<projects>()`.
    TasksWithProject,
    /// `update_many::<projects>()` setting `name` where the name starts with `prefix`.
    RenameWhere { prefix: char, name: String },
    /// `update_many::<tasks>()` setting `done = true` where the title starts with `prefix`.
    CompleteWhere { prefix: char },
    /// `delete_many::<projects>()` where the name starts with `prefix`.
    DeleteWhere { prefix: char },
    /// `delete_many::<tasks>()` where `done`.
    DeleteDoneTasks,
    /// `update_many::<projects>()` setting `tenant_id` to another tenant: always
    /// `Error::TenantMismatch`, nothing moves.
    MoveWhere { prefix: char, to: usize },
    /// Page `page` of `size` of the projects ordered by id, and the number of items and pages.
    Page { size: u64, page: u64 },
    /// In one `db.transaction`: insert two projects, then list the projects inside the
    /// transaction. If either insert fails, neither stays.
    InsertPairInTransaction { a: String, b: String },
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        4 => (0..8usize).prop_map(Pick::Own),
        1 => Just(Pick::Missing),
        3 => (0..8usize).prop_map(Pick::Other),
        1 => (0..4096usize).prop_map(Pick::Earlier),
    ]
}

/// A reference from a new row to an existing one: mostly the tenant's own (so that rows get
/// children), often enough another tenant's or nothing.
fn reference() -> impl Strategy<Value = Pick> {
    prop_oneof![
        8 => (0..8usize).prop_map(Pick::Own),
        1 => Just(Pick::Missing),
        2 => (0..8usize).prop_map(Pick::Other),
        1 => (0..4096usize).prop_map(Pick::Earlier),
    ]
}

fn tenant_field() -> impl Strategy<Value = TenantField> {
    prop_oneof![
        10 => Just(TenantField::Unset),
        1 => Just(TenantField::Own),
        1 => (0..4usize).prop_map(TenantField::Other),
    ]
}

fn prefix() -> impl Strategy<Value = char> {
    prop_oneof![Just('a'), Just('b'), Just('c')]
}

fn op_kind() -> impl Strategy<Value = OpKind> {
    prop_oneof![
        6 => (NAME, proptest::option::weighted(0.2, pick()), tenant_field())
            .prop_map(|(name, id, tenant)| OpKind::InsertProject { name, id, tenant }),
        2 => pick().prop_map(|target| OpKind::GetProject { target }),
        2 => (pick(), proptest::option::weighted(0.9, NAME), tenant_field())
            .prop_map(|(target, name, tenant)| OpKind::RenameProject { target, name, tenant }),
        1 => pick().prop_map(|target| OpKind::DeleteProject { target }),
        1 => proptest::option::of(prefix()).prop_map(|prefix| OpKind::ListProjects { prefix }),
        1 => proptest::option::of(prefix()).prop_map(|prefix| OpKind::CountProjects { prefix }),
        7 => (reference(), proptest::option::weighted(0.4, reference()), NAME)
            .prop_map(|(project, assignee, title)| OpKind::InsertTask { project, assignee, title }),
        1 => pick().prop_map(|project| OpKind::TasksOf { project }),
        1 => prop_oneof![Just(Via::WithRelated), Just(Via::LoadMany)]
            .prop_map(|via| OpKind::ProjectsWithTasks { via }),
        1 => Just(OpKind::TasksWithProject),
        1 => (prefix(), NAME).prop_map(|(prefix, name)| OpKind::RenameWhere { prefix, name }),
        2 => prefix().prop_map(|prefix| OpKind::CompleteWhere { prefix }),
        1 => prefix().prop_map(|prefix| OpKind::DeleteWhere { prefix }),
        1 => Just(OpKind::DeleteDoneTasks),
        1 => (prefix(), 0..4usize).prop_map(|(prefix, to)| OpKind::MoveWhere { prefix, to }),
        1 => (1..4u64, 0..4u64).prop_map(|(size, page)| OpKind::Page { size, page }),
        1 => (NAME, NAME).prop_map(|(a, b)| OpKind::InsertPairInTransaction { a, b }),
    ]
}

/// 2 to 4 tenants and 1 to 30 operations. Shrinking removes operations, simplifies each one
/// (towards the first alternative of each choice) and lowers the number of tenants.
pub(crate) fn case() -> impl Strategy<Value = Case> {
    // Tenant 0 acts in about half of the operations, so that one tenant builds up enough rows
    // (projects with tasks, done tasks) for the bulk operations to have something to act on.
    let by = prop_oneof![1 => Just(0usize), 1 => 0..4usize];
    (2..=4usize, vec((by, op_kind()), 1..=30)).prop_map(|(tenants, ops)| Case {
        tenants,
        ops: ops
            .into_iter()
            .map(|(by, kind)| Op {
                by: by % tenants,
                kind,
            })
            .collect(),
    })
}
