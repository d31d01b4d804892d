//! The in-memory model: what each tenant of a case owns, and what every operation must answer.
//!
//! The model knows nothing of other tenants' rows when it answers for one tenant: every answer is
//! computed from the acting tenant's rows only. That is the isolation property: an answer equal to
//! the model's cannot depend on, or hold, another tenant's data.

use std::collections::BTreeMap;

use tenant_scope::TenantId;
use uuid::Uuid;

use crate::ops::Via;

/// A project as the test compares it (`created_at` is the database's business).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ProjectRow {
    pub(crate) tenant: TenantId,
    pub(crate) id: Uuid,
    pub(crate) name: String,
}

/// A task as the test compares it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TaskRow {
    pub(crate) tenant: TenantId,
    pub(crate) id: Uuid,
    pub(crate) project: Uuid,
    pub(crate) assignee: Option<Uuid>,
    pub(crate) title: String,
    pub(crate) done: bool,
}

/// A successful answer. Lists are sorted by id (the library promises no order unless asked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Project(ProjectRow),
    Projects(Vec<ProjectRow>),
    Task(TaskRow),
    Count(u64),
    Deleted,
    /// A page of projects, with the paginator's item and page counts.
    Page {
        rows: Vec<ProjectRow>,
        items: u64,
        pages: u64,
    },
    /// Projects, each with its tasks.
    Tree(Vec<(ProjectRow, Vec<TaskRow>)>),
    /// Tasks, each with its project.
    TasksWithProject(Vec<(TaskRow, Option<ProjectRow>)>),
}

impl Answer {
    /// Every row the answer holds, as `(tenant, description)`, to check that none is another
    /// tenant's.
    pub(crate) fn tenants(&self) -> Vec<(TenantId, String)> {
        let p = |r: &ProjectRow| (r.tenant, format!("project {}", r.id));
        let t = |r: &TaskRow| (r.tenant, format!("task {}", r.id));
        match self {
            Answer::Project(r) => vec![p(r)],
            Answer::Projects(rs) | Answer::Page { rows: rs, .. } => rs.iter().map(p).collect(),
            Answer::Task(r) => vec![t(r)],
            Answer::Count(_) | Answer::Deleted => Vec::new(),
            Answer::Tree(tree) => tree
                .iter()
                .flat_map(|(r, ts)| std::iter::once(p(r)).chain(ts.iter().map(t)))
                .collect(),
            Answer::TasksWithProject(rows) => rows
                .iter()
                .flat_map(|(r, pr)| std::iter::once(t(r)).chain(pr.iter().map(p)))
                .collect(),
        }
    }
}

/// A failed answer: the variant of `tenant_scope::Error` (its text is the library's business, and
/// must not matter: two answers are the same if their variants are).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    NotFound,
    Forbidden,
    Conflict,
    TenantMismatch,
    Denied,
    Invalid,
    /// Anything else (a database error the library did not classify): never expected.
    Other(String),
}

impl From<tenant_scope::Error> for Fail {
    fn from(err: tenant_scope::Error) -> Self {
        use tenant_scope::Error as E;
        match err {
            E::NotFound => Fail::NotFound,
            E::Forbidden => Fail::Forbidden,
            E::Conflict => Fail::Conflict,
            E::TenantMismatch => Fail::TenantMismatch,
            E::Denied => Fail::Denied,
            E::Invalid(_) => Fail::Invalid,
            other => Fail::Other(format!("{other}: {other:?}")),
        }
    }
}

/// What an operation answers.
pub(crate) type Outcome = Result<Answer, Fail>;

/// An operation with its ids resolved (see `ops::Pick`), as the library sees it.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    InsertProject {
        id: Option<Uuid>,
        name: String,
        tenant: Option<TenantId>,
    },
    GetProject {
        id: Uuid,
    },
    /// `name: None` is an update that changes nothing (the library reads the row back).
    RenameProject {
        id: Uuid,
        name: Option<String>,
        tenant: Option<TenantId>,
    },
    DeleteProject {
        id: Uuid,
    },
    ListProjects {
        prefix: Option<char>,
    },
    CountProjects {
        prefix: Option<char>,
    },
    InsertTask {
        project: Uuid,
        assignee: Option<Uuid>,
        title: String,
    },
    TasksOf {
        project: Uuid,
    },
    ProjectsWithTasks {
        via: Via,
    },
    TasksWithProject,
    RenameWhere {
        prefix: char,
        name: String,
    },
    CompleteWhere {
        prefix: char,
    },
    DeleteWhere {
        prefix: char,
    },
    DeleteDoneTasks,
    MoveWhere {
        prefix: char,
        to: TenantId,
    },
    Page {
        size: u64,
        page: u64,
    },
    InsertPairInTransaction {
        a: String,
        b: String,
    },
}

impl Action {
    /// The same action with every id that `replace` maps replaced (the ids the action reads or
    /// references, not the id an insert gives its new row).
    pub(crate) fn replacing(&self, replace: &BTreeMap<Uuid, Uuid>) -> Action {
        let r = |id: &Uuid| *replace.get(id).unwrap_or(id);
        match self {
            Action::GetProject { id } => Action::GetProject { id: r(id) },
            Action::RenameProject { id, name, tenant } => Action::RenameProject {
                id: r(id),
                name: name.clone(),
                tenant: *tenant,
            },
            Action::DeleteProject { id } => Action::DeleteProject { id: r(id) },
            Action::InsertTask {
                project,
                assignee,
                title,
            } => Action::InsertTask {
                project: r(project),
                assignee: assignee.as_ref().map(r),
                title: title.clone(),
            },
            Action::TasksOf { project } => Action::TasksOf {
                project: r(project),
            },
            other => other.clone(),
        }
    }

    /// The ids the library gave the rows this action inserted, read from its answer (the model
    /// cannot know them in advance), in the order the model inserts them.
    pub(crate) fn new_ids(&self, actual: &Outcome) -> Vec<Uuid> {
        match (self, actual) {
            (Action::InsertProject { id: None, .. }, Ok(Answer::Project(p))) => vec![p.id],
            (Action::InsertTask { .. }, Ok(Answer::Task(t))) => vec![t.id],
            (Action::InsertPairInTransaction { a, b }, Ok(Answer::Projects(rows))) => [a, b]
                .into_iter()
                .filter_map(|name| rows.iter().find(|p| p.name == *name).map(|p| p.id))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The rows of one tenant, in insertion order (so that "the n-th own row" is stable).
#[derive(Clone, Debug, Default)]
pub(crate) struct Owned {
    pub(crate) projects: Vec<ProjectRow>,
    pub(crate) tasks: Vec<TaskRow>,
}

/// The model of one case: the case's tenants, each with its user and rows.
#[derive(Clone, Debug)]
pub(crate) struct Model {
    pub(crate) tenants: Vec<TenantId>,
    pub(crate) users: Vec<Uuid>,
    pub(crate) owned: Vec<Owned>,
}

fn starts(s: &str, prefix: Option<char>) -> bool {
    prefix.is_none_or(|c| s.starts_with(c))
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

impl Model {
    pub(crate) fn new(tenants: Vec<TenantId>, users: Vec<Uuid>) -> Self {
        let owned = vec![Owned::default(); tenants.len()];
        Self {
            tenants,
            users,
            owned,
        }
    }

    /// What `action`, run by tenant number `by`, must answer; and its effect on the model.
    ///
    /// `new_ids` are the ids the library gave new rows ([`Action::new_ids`]); `fresh` makes a
    /// placeholder for each one missing (when the actual answer was an error).
    pub(crate) fn apply(
        &mut self,
        by: usize,
        action: &Action,
        new_ids: &[Uuid],
        mut fresh: impl FnMut() -> Uuid,
    ) -> Outcome {
        let tenant = self.tenants[by];
        let user = self.users[by];
        let mut given = new_ids.iter().copied();
        let mut new_id = move || given.next().unwrap_or_else(&mut fresh);
        let mismatch = |t: &Option<TenantId>| t.is_some_and(|t| t != tenant);
        let own = &mut self.owned[by];
        match action {
            Action::InsertProject {
                id,
                name,
                tenant: t,
            } => {
                if mismatch(t) {
                    return Err(Fail::TenantMismatch);
                }
                let id = id.unwrap_or_else(new_id);
                own.insert_project(tenant, id, name).map(Answer::Project)
            }
            Action::GetProject { id } => own
                .projects
                .iter()
                .find(|p| p.id == *id)
                .cloned()
                .map(Answer::Project)
                .ok_or(Fail::NotFound),
            Action::RenameProject {
                id,
                name,
                tenant: t,
            } => {
                if mismatch(t) {
                    return Err(Fail::TenantMismatch);
                }
                if !own.projects.iter().any(|p| p.id == *id) {
                    return Err(Fail::NotFound);
                }
                if let Some(name) = name
                    && own.projects.iter().any(|p| p.id != *id && p.name == *name)
                {
                    return Err(Fail::Conflict);
                }
                let row = own
                    .projects
                    .iter_mut()
                    .find(|p| p.id == *id)
                    .ok_or(Fail::NotFound)?;
                if let Some(name) = name {
                    row.name = name.clone();
                }
                Ok(Answer::Project(row.clone()))
            }
            Action::DeleteProject { id } => {
                if !own.projects.iter().any(|p| p.id == *id) {
                    return Err(Fail::NotFound);
                }
                own.projects.retain(|p| p.id != *id);
                // tasks.project_id -> projects: ON DELETE CASCADE.
                own.tasks.retain(|t| t.project != *id);
                Ok(Answer::Deleted)
            }
            Action::ListProjects { prefix } => Ok(Answer::Projects(sorted(
                own.projects
                    .iter()
                    .filter(|p| starts(&p.name, *prefix))
                    .cloned()
                    .collect(),
            ))),
            Action::CountProjects { prefix } => Ok(Answer::Count(
                own.projects
                    .iter()
                    .filter(|p| starts(&p.name, *prefix))
                    .count() as u64,
            )),
            Action::InsertTask {
                project,
                assignee,
                title,
            } => {
                // Composite foreign keys (tenant_id, project_id) and (tenant_id, assignee_id): a
                // reference outside this tenant is a reference to nothing.
                if !own.projects.iter().any(|p| p.id == *project) {
                    return Err(Fail::NotFound);
                }
                if assignee.is_some_and(|a| a != user) {
                    return Err(Fail::NotFound);
                }
                let id = new_id();
                if own.tasks.iter().any(|t| t.id == id) {
                    return Err(Fail::Conflict);
                }
                let row = TaskRow {
                    tenant,
                    id,
                    project: *project,
                    assignee: *assignee,
                    title: title.clone(),
                    done: false,
                };
                own.tasks.push(row.clone());
                Ok(Answer::Task(row))
            }
            Action::TasksOf { project } => Ok(Answer::Tree(
                own.projects
                    .iter()
                    .filter(|p| p.id == *project)
                    .map(|p| (p.clone(), own.tasks_of(p.id)))
                    .collect(),
            )),
            Action::ProjectsWithTasks { .. } => Ok(Answer::Tree(sorted(
                own.projects
                    .iter()
                    .map(|p| (p.clone(), own.tasks_of(p.id)))
                    .collect(),
            ))),
            Action::TasksWithProject => Ok(Answer::TasksWithProject(sorted(
                own.tasks
                    .iter()
                    .map(|t| {
                        let project = own.projects.iter().find(|p| p.id == t.project).cloned();
                        (t.clone(), project)
                    })
                    .collect(),
            ))),
            Action::RenameWhere { prefix, name } => {
                let hit = |p: &ProjectRow| p.name.starts_with(*prefix);
                let matched = own.projects.iter().filter(|p| hit(p)).count();
                // One statement: either every matched row gets the name, or (unique key) none.
                let collides = matched > 1
                    || (matched == 1 && own.projects.iter().any(|p| !hit(p) && p.name == *name));
                if collides {
                    return Err(Fail::Conflict);
                }
                for p in own.projects.iter_mut().filter(|p| hit(p)) {
                    p.name = name.clone();
                }
                Ok(Answer::Count(matched as u64))
            }
            Action::CompleteWhere { prefix } => {
                let mut n = 0;
                for t in own
                    .tasks
                    .iter_mut()
                    .filter(|t| t.title.starts_with(*prefix))
                {
                    t.done = true;
                    n += 1;
                }
                Ok(Answer::Count(n))
            }
            Action::DeleteWhere { prefix } => {
                let gone: Vec<Uuid> = own
                    .projects
                    .iter()
                    .filter(|p| p.name.starts_with(*prefix))
                    .map(|p| p.id)
                    .collect();
                own.projects.retain(|p| !gone.contains(&p.id));
                own.tasks.retain(|t| !gone.contains(&t.project));
                Ok(Answer::Count(gone.len() as u64))
            }
            Action::DeleteDoneTasks => {
                let before = own.tasks.len();
                own.tasks.retain(|t| !t.done);
                Ok(Answer::Count((before - own.tasks.len()) as u64))
            }
            // Rows never move between tenants; checked before anything runs.
            Action::MoveWhere { .. } => Err(Fail::TenantMismatch),
            Action::Page { size, page } => {
                let rows = sorted(own.projects.clone());
                let items = rows.len() as u64;
                Ok(Answer::Page {
                    rows: rows
                        .chunks(*size as usize)
                        .nth(*page as usize)
                        .map(<[ProjectRow]>::to_vec)
                        .unwrap_or_default(),
                    items,
                    pages: items.div_ceil(*size),
                })
            }
            Action::InsertPairInTransaction { a, b } => {
                let mut inside = own.clone();
                inside.insert_project(tenant, new_id(), a)?;
                inside.insert_project(tenant, new_id(), b)?;
                *own = inside;
                Ok(Answer::Projects(sorted(own.projects.clone())))
            }
        }
    }

    /// Every project and task of the case's tenants, sorted, as the database must hold them.
    pub(crate) fn rows(&self) -> (Vec<ProjectRow>, Vec<TaskRow>) {
        let projects = self
            .owned
            .iter()
            .flat_map(|o| o.projects.iter().cloned())
            .collect();
        let tasks = self
            .owned
            .iter()
            .flat_map(|o| o.tasks.iter().cloned())
            .collect();
        (sorted(projects), sorted(tasks))
    }
}

impl Owned {
    /// The primary key `(tenant_id, id)` and the unique key `(tenant_id, name)`: only this
    /// tenant's rows can conflict.
    fn insert_project(
        &mut self,
        tenant: TenantId,
        id: Uuid,
        name: &str,
    ) -> Result<ProjectRow, Fail> {
        if self.projects.iter().any(|p| p.id == id || p.name == name) {
            return Err(Fail::Conflict);
        }
        let row = ProjectRow {
            tenant,
            id,
            name: name.to_owned(),
        };
        self.projects.push(row.clone());
        Ok(row)
    }

    fn tasks_of(&self, project: Uuid) -> Vec<TaskRow> {
        sorted(
            self.tasks
                .iter()
                .filter(|t| t.project == project)
                .cloned()
                .collect(),
        )
    }
}
