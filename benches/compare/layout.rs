//! The data the benches read: deterministic ids, and how rows spread over tenants and projects.
//!
//! Every id is a UUID built from a number and a kind, so that Rust code (the lookups, the SQLite
//! loader) and SQL (the PostgreSQL loader, `generate_series`) compute the same ids without reading
//! them back. A task `i` of `rows` belongs to tenant `i / (rows / tenants)`, in a project of (at
//! most) 100 tasks, half of them done: the list page ("the not-done tasks of a project, by id,
//! first 50") reads the same rows at every scale. A tenant's tasks are contiguous, so the heap
//! locality of a project's rows is the same at 1 and at 10,000 tenants and the scale benches
//! measure the index, which is what tenant scoping adds to.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};
use tenant_scope::TenantId;
use uuid::Uuid;

/// The kinds of ids (the low bits of the UUID).
const TENANT: u16 = 1;
const PROJECT: u16 = 2;
const TASK: u16 = 3;
const USER: u16 = 4;
const COMMENT: u16 = 5;

/// Comments on the first task of each tenant, when a layout has comments.
pub(crate) const COMMENTS_PER_TASK: u64 = 20;

/// Tasks per project (fewer when a tenant has fewer tasks).
const TASKS_PER_PROJECT: u64 = 100;

/// Bumped whenever the loaded data changes shape, so that reused bench databases are rebuilt.
const DATA_VERSION: &str = "tenant-scope bench data v1";

/// The time of task 0; task `i` is `i` seconds later.
const EPOCH: &str = "2026-01-01T00:00:00+00:00";

/// A UUID (version 7 in shape) from a number and a kind.
fn uid(n: u64, kind: u16) -> Uuid {
    Uuid::from_u128(
        (u128::from(n) << 80) | (0x7000_u128 << 64) | (0x8000_u128 << 48) | u128::from(kind),
    )
}

/// The SQL (PostgreSQL) of [`uid`], for a bigint expression `n`.
fn uid_sql(n: &str, kind: u16) -> String {
    format!(
        "(lpad(to_hex(({n})::bigint), 12, '0') || '70008000' || lpad(to_hex({kind}), 12, '0'))::uuid"
    )
}

/// How many tasks, over how many tenants, and whether the first task of each tenant has comments.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub(crate) tenants: u64,
    pub(crate) rows: u64,
    pub(crate) comments: bool,
}

impl Layout {
    /// Tasks of one tenant.
    pub(crate) fn per_tenant(&self) -> u64 {
        self.rows / self.tenants
    }

    /// Projects of one tenant.
    fn projects_per_tenant(&self) -> u64 {
        (self.per_tenant() / TASKS_PER_PROJECT).max(1)
    }

    /// Tasks of one project.
    fn tasks_per_project(&self) -> u64 {
        self.per_tenant() / self.projects_per_tenant()
    }

    /// Projects of all tenants.
    pub(crate) fn projects(&self) -> u64 {
        self.tenants * self.projects_per_tenant()
    }

    pub(crate) fn tenant(t: u64) -> TenantId {
        TenantId::from_uuid(uid(t, TENANT))
    }

    pub(crate) fn user(t: u64) -> Uuid {
        uid(t, USER)
    }

    /// Project `p` (global number) and its tenant.
    pub(crate) fn project(&self, p: u64) -> (u64, Uuid) {
        (p / self.projects_per_tenant(), uid(p, PROJECT))
    }

    /// Task `i` (global number) and its tenant.
    pub(crate) fn task(&self, i: u64) -> (u64, Uuid) {
        (i / self.per_tenant(), uid(i, TASK))
    }

    /// The first task of tenant `t` (the one with comments).
    pub(crate) fn first_task(&self, t: u64) -> Uuid {
        uid(t * self.per_tenant(), TASK)
    }

    /// The global number of the project of task `i`, and whether the task is done.
    fn task_project(&self, i: u64) -> (u64, bool) {
        let (t, j) = (i / self.per_tenant(), i % self.per_tenant());
        let local = (j / self.tasks_per_project()).min(self.projects_per_tenant() - 1);
        (t * self.projects_per_tenant() + local, j % 2 == 1)
    }

    /// What a loaded database's marker says when it is complete.
    pub(crate) fn marker(&self) -> String {
        format!(
            "{DATA_VERSION}: complete, tenants={} rows={} comments={}",
            self.tenants, self.rows, self.comments
        )
    }

    /// PostgreSQL: the statements that load the data (run as a superuser, in one transaction;
    /// foreign keys are not checked while loading: the rows are consistent by construction).
    pub(crate) fn postgres_load(&self) -> String {
        let (per_tenant, ppt, tpp) = (
            self.per_tenant(),
            self.projects_per_tenant(),
            self.tasks_per_project(),
        );
        let mut sql = String::from("BEGIN;\nSET LOCAL session_replication_role = replica;\n");
        let _ = writeln!(
            sql,
            "INSERT INTO tenants (id, name, created_at) SELECT {}, 'tenant ' || t, timestamptz '{EPOCH}' \
             FROM generate_series(0, {}) AS t;",
            uid_sql("t", TENANT),
            self.tenants - 1
        );
        let _ = writeln!(
            sql,
            "INSERT INTO projects (tenant_id, id, name, created_at) SELECT {}, {}, 'project ' || p, \
             timestamptz '{EPOCH}' FROM generate_series(0, {}) AS p;",
            uid_sql(&format!("p / {ppt}"), TENANT),
            uid_sql("p", PROJECT),
            self.projects() - 1
        );
        let _ = writeln!(
            sql,
            "INSERT INTO tasks (tenant_id, id, project_id, assignee_id, title, done, created_at) \
             SELECT {}, {}, {}, NULL, 'task ' || i, (i % {per_tenant}) % 2 = 1, \
             timestamptz '{EPOCH}' + i * interval '1 second' FROM generate_series(0, {}) AS i;",
            uid_sql(&format!("i / {per_tenant}"), TENANT),
            uid_sql("i", TASK),
            uid_sql(
                &format!(
                    "(i / {per_tenant}) * {ppt} + least((i % {per_tenant}) / {tpp}, {})",
                    ppt - 1
                ),
                PROJECT
            ),
            self.rows - 1
        );
        if self.comments {
            let _ = writeln!(
                sql,
                "INSERT INTO users (tenant_id, id, email, name, created_at) SELECT {}, {}, \
                 'user' || t || '@bench.invalid', 'user ' || t, timestamptz '{EPOCH}' \
                 FROM generate_series(0, {}) AS t;",
                uid_sql("t", TENANT),
                uid_sql("t", USER),
                self.tenants - 1
            );
            let _ = writeln!(
                sql,
                "INSERT INTO comments (tenant_id, id, task_id, author_id, body, created_at) \
                 SELECT {}, {}, {}, {}, 'comment ' || c, timestamptz '{EPOCH}' + c * interval '1 second' \
                 FROM generate_series(0, {}) AS c;",
                uid_sql(&format!("c / {COMMENTS_PER_TASK}"), TENANT),
                uid_sql("c", COMMENT),
                uid_sql(&format!("(c / {COMMENTS_PER_TASK}) * {per_tenant}"), TASK),
                uid_sql(&format!("c / {COMMENTS_PER_TASK}"), USER),
                self.tenants * COMMENTS_PER_TASK - 1
            );
        }
        sql.push_str("COMMIT;\n");
        sql
    }

    /// SQLite: the statements that load the data, as multi-row `INSERT`s of at most `batch` rows
    /// (run them in one transaction).
    pub(crate) fn sqlite_load(&self, batch: u64) -> Vec<String> {
        let epoch = chrono::DateTime::parse_from_rfc3339(EPOCH)
            .expect("the epoch is RFC 3339")
            .to_utc();
        let time = |secs: u64| {
            (epoch + chrono::Duration::seconds(secs as i64))
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
        };
        let blob = |u: Uuid| format!("X'{}'", u.simple());
        let mut out = Vec::new();
        let mut push_rows = |head: &str, n: u64, row: &dyn Fn(u64) -> String| {
            let mut start = 0;
            while start < n {
                let end = (start + batch).min(n);
                let rows: Vec<String> = (start..end).map(row).collect();
                out.push(format!("{head} VALUES {}", rows.join(",")));
                start = end;
            }
        };
        let tenant = |t: u64| blob(*Self::tenant(t).as_uuid());
        push_rows(
            "INSERT INTO tenants (id, name, created_at)",
            self.tenants,
            &|t| format!("({}, 'tenant {t}', '{}')", tenant(t), time(0)),
        );
        push_rows(
            "INSERT INTO projects (tenant_id, id, name, created_at)",
            self.projects(),
            &|p| {
                let (t, id) = self.project(p);
                format!(
                    "({}, {}, 'project {p}', '{}')",
                    tenant(t),
                    blob(id),
                    time(0)
                )
            },
        );
        push_rows(
            "INSERT INTO tasks (tenant_id, id, project_id, assignee_id, title, done, created_at)",
            self.rows,
            &|i| {
                let (t, id) = self.task(i);
                let (p, done) = self.task_project(i);
                format!(
                    "({}, {}, {}, NULL, 'task {i}', {}, '{}')",
                    tenant(t),
                    blob(id),
                    blob(uid(p, PROJECT)),
                    u8::from(done),
                    time(i)
                )
            },
        );
        if self.comments {
            push_rows(
                "INSERT INTO users (tenant_id, id, email, name, created_at)",
                self.tenants,
                &|t| {
                    format!(
                        "({}, {}, 'user{t}@bench.invalid', 'user {t}', '{}')",
                        tenant(t),
                        blob(Self::user(t)),
                        time(0)
                    )
                },
            );
            push_rows(
                "INSERT INTO comments (tenant_id, id, task_id, author_id, body, created_at)",
                self.tenants * COMMENTS_PER_TASK,
                &|c| {
                    let t = c / COMMENTS_PER_TASK;
                    format!(
                        "({}, {}, {}, {}, 'comment {c}', '{}')",
                        tenant(t),
                        blob(uid(c, COMMENT)),
                        blob(self.first_task(t)),
                        blob(Self::user(t)),
                        time(c)
                    )
                },
            );
        }
        out
    }
}

/// A short hash of the schema the data is loaded into (the migration names and the sources they
/// are built from) and of the data's shape: reused bench databases are named after it, so a
/// schema change gets new ones.
pub(crate) fn schema_hash() -> String {
    let mut hash = Sha256::new();
    hash.update(DATA_VERSION.as_bytes());
    test_support::hash_schema_sources(&mut hash);
    hex::encode(&hash.finalize()[..6])
}
