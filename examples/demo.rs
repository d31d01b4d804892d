//! Run with: cargo run --example demo
//!
//! A walk through tenant-scope with two tenants, Acme and Globex. The demo migrates the reference
//! schema, provisions both tenants through the audited system handle, verifies each one by API key,
//! and then checks what each tenant can and cannot do:
//!
//! - it sees and changes only its own rows;
//! - another tenant's id gives "not found", the same error as an id that never existed;
//! - the database itself rejects a cross-tenant reference (composite foreign keys), even as raw SQL;
//! - unique keys are per tenant, and bad or revoked API keys all get one answer, `Denied`.
//!
//! With no arguments it runs on a fresh SQLite file in a temporary directory. With
//! `--database-url postgres://…` or `--database-url mysql://…` it runs on a server; the URL must
//! name an existing, empty database and connect as its owner (migrations and system access run as
//! the owner). On PostgreSQL the service's own connection is a second URL,
//! `--app-database-url postgres://tenant_scope_app@…`, as an unprivileged role that row level
//! security applies to; `TenantDb` refuses to serve as the owner or a superuser. Every line is a
//! check: the demo exits non-zero if any fails (CI runs it on all three backends).

use std::error::Error as StdError;
use std::fmt::Debug;
use std::io::IsTerminal;

use chrono::Utc;
use clap::Parser;
use entity::{projects, tasks, tenants, users};
use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectOptions, Database, DbBackend};
use tenant_scope::{ApiKeyVerifier, Error, IssuedKey, SystemDb, TenantDb, TenantId};
use uuid::Uuid;

type BoxError = Box<dyn StdError>;

/// tenant-scope demo: two tenants, and what each can and cannot do.
#[derive(Debug, Parser)]
struct Args {
    /// URL of an existing, empty PostgreSQL or MySQL/MariaDB database. Default: a fresh SQLite
    /// file in a temporary directory, removed at the end.
    #[arg(long)]
    database_url: Option<String>,
    /// URL of the same database as the application role (required on PostgreSQL, e.g.
    /// `postgres://tenant_scope_app@127.0.0.1/db`). Default: `--database-url`.
    #[arg(long)]
    app_database_url: Option<String>,
    /// PostgreSQL: the application's URL goes through a pooler in transaction mode (PgBouncer
    /// `pool_mode = transaction`); see `TenantDbOptions::transaction_pooling`.
    #[arg(long)]
    transaction_pooling: bool,
}

/// The checks so far; the demo fails if any of them did.
#[derive(Debug, Default)]
struct Report {
    passed: usize,
    failed: Vec<String>,
}

impl Report {
    /// Prints `✓ what`, or `✗ what` with what actually happened.
    fn check(&mut self, ok: bool, what: &str, actual: impl Debug) {
        if ok {
            self.passed += 1;
            println!("  ✓ {what}");
        } else {
            println!("  ✗ {what}\n      got: {actual:?}");
            self.failed.push(what.to_owned());
        }
    }
}

fn is_not_found<T>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::NotFound))
}

/// Two answers that a caller cannot tell apart: both `NotFound`, same status, same text.
fn same_not_found<T, U>(a: &Result<T, Error>, b: &Result<U, Error>) -> bool {
    match (a, b) {
        (Err(a @ Error::NotFound), Err(b @ Error::NotFound)) => {
            a.status() == b.status() && a.to_string() == b.to_string()
        }
        _ => false,
    }
}

fn project(name: &str) -> projects::ActiveModel {
    projects::ActiveModel {
        name: Set(name.to_owned()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
}

fn task(project_id: Uuid, title: &str) -> tasks::ActiveModel {
    tasks::ActiveModel {
        project_id: Set(project_id),
        title: Set(title.to_owned()),
        done: Set(false),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
}

/// The `WHERE …` of a statement, for display.
fn where_clause(sql: &str) -> &str {
    sql.find(" WHERE ").map_or(sql, |at| &sql[at + 1..])
}

/// Creates a tenant, its first user and an API key for that user, through the system handle.
async fn provision(
    db: &TenantDb,
    system: &SystemDb<'_>,
    name: &str,
    email: &str,
) -> Result<(TenantId, IssuedKey), BoxError> {
    let tenant = system
        .insert(tenants::ActiveModel {
            id: Set(TenantId::new()),
            name: Set(name.to_owned()),
            created_at: Set(Utc::now()),
            // No slug (the subdomain name): requests name tenants by their keys.
            ..Default::default()
        })
        .await
        .map_err(|e| match e {
            Error::Conflict => format!(
                "tenant {name:?} already exists: --database-url must name an empty database"
            )
            .into(),
            other => BoxError::from(other),
        })?;
    let tenant = tenant.id;
    // A context for this one tenant, made by the system handle (actor: system, with the reason).
    let ctx = system.context_for(tenant);
    let scope = db.scope(&ctx);
    let user = scope
        .insert(users::ActiveModel {
            email: Set(email.to_owned()),
            name: Set(format!("{name} admin")),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await?;
    let key = ApiKeyVerifier::issue(&scope, user.id, "demo").await?;
    Ok((tenant, key))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // Shows the WARN line that every `db.system(..)` writes (on stderr).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .without_time()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();

    let args = Args::parse();
    // Without a URL: a fresh SQLite file, removed when `_tmp` is dropped (also on an error).
    let (url, _tmp) = match args.database_url {
        Some(url) => (url, None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("tenant-scope-demo-")
                .tempdir()?;
            let path = dir.path().join(format!("{}.db", Uuid::now_v7().simple()));
            (format!("sqlite://{}?mode=rwc", path.display()), Some(dir))
        }
    };

    // Migrations run as the schema owner, on a plain SeaORM connection opened only for that.
    // The service itself never gets a SeaORM connection: it goes through `TenantDb`.
    let mut owner = ConnectOptions::new(url.clone());
    owner.sqlx_logging(false);
    // tenant-scope: allow(raw-connection) migrations run as the schema owner, before the service starts
    let owner = Database::connect(owner).await?;
    Migrator::up(&owner, None).await?;
    owner.close().await?;

    // The service: the application's connection, and the owner's for system access.
    let app_url = args.app_database_url.clone().unwrap_or_else(|| url.clone());
    let mut options = TenantDb::options(app_url.as_str()).system(url.as_str());
    if args.transaction_pooling {
        options = options.transaction_pooling(true);
    }
    let db = options.connect().await.map_err(|e| match e {
        Error::Config(why) if url.starts_with("postgres") && args.app_database_url.is_none() => {
            format!(
                "{why}\n(on PostgreSQL pass --app-database-url, the same database as the \
                     unprivileged application role, e.g. postgres://tenant_scope_app@host/db)"
            )
            .into()
        }
        other => BoxError::from(other),
    })?;
    let backend = match db.backend() {
        DbBackend::Postgres => "PostgreSQL",
        DbBackend::MySql => "MySQL/MariaDB",
        DbBackend::Sqlite => "SQLite (a fresh file in a temporary directory)",
        _ => "an unknown backend",
    };
    println!("tenant-scope demo on {backend}");
    println!("Setup:");
    let mut r = Report::default();
    r.check(
        db.foreign_keys_enforced().await?,
        "migrated the reference schema as its owner; foreign keys are enforced",
        false,
    );

    // --- Provisioning: the only cross-tenant work, through the explicit system handle.
    let system = db.system("demo: provision tenants").await?;
    let (acme_id, acme_key) = provision(&db, &system, "Acme", "ada@acme.test").await?;
    let (globex_id, globex_key) = provision(&db, &system, "Globex", "hank@globex.test").await?;
    let tenant_count = db.global().find::<tenants::Entity>().count().await?;
    r.check(
        tenant_count == 2,
        "db.system(\"demo: provision tenants\") made tenants Acme and Globex, a user and an API key each",
        tenant_count,
    );

    // --- From here on, every caller is verified by API key.
    let acme = db.verify(&ApiKeyVerifier, acme_key.key.clone()).await?;
    let globex = db.verify(&ApiKeyVerifier, globex_key.key.clone()).await?;
    r.check(
        acme.tenant() == acme_id && globex.tenant() == globex_id,
        "each API key verifies to a context of its own tenant",
        (acme.tenant(), globex.tenant()),
    );
    let a = db.scope(&acme);
    let g = db.scope(&globex);

    println!("Each tenant, on its own data:");
    let a_project = a.insert(project("Roadmap")).await?;
    let a_task = a.insert(task(a_project.id, "Draft the plan")).await?;
    let g_project = g.insert(project("Roadmap")).await?;
    let g_task = g.insert(task(g_project.id, "Hire a team")).await?;
    r.check(
        a_project.tenant_id == acme_id
            && a_task.tenant_id == acme_id
            && g_project.tenant_id == globex_id
            && g_task.tenant_id == globex_id,
        "each creates project \"Roadmap\" and a task in it (tenant_id comes from the context)",
        (&a_project, &g_project),
    );

    let a_tree = a
        .find::<projects::Entity>()
        .find_with_related::<tasks::Entity>()
        .all()
        .await?;
    let g_tree = g
        .find::<projects::Entity>()
        .find_with_related::<tasks::Entity>()
        .all()
        .await?;
    r.check(
        a_tree == [(a_project.clone(), vec![a_task.clone()])]
            && g_tree == [(g_project.clone(), vec![g_task.clone()])],
        "each lists its projects with their tasks and sees only its own",
        (&a_tree, &g_tree),
    );

    let a_sql = a.find::<projects::Entity>().build();
    let g_sql = g.find::<projects::Entity>().build();
    r.check(
        a_sql.sql == g_sql.sql && a_sql.values != g_sql.values,
        &format!(
            "same SQL for both tenants, the tenant a bound value: {}",
            where_clause(&a_sql.sql)
        ),
        (&a_sql.sql, &g_sql.sql),
    );

    println!("Acme tries to reach Globex's data:");
    let cross = a.get::<projects::Entity>(g_project.id).await;
    let never = a.get::<projects::Entity>(Uuid::now_v7()).await;
    r.check(
        same_not_found(&cross, &never),
        "get Globex's project by id -> not found (404), the same error as an id that never existed",
        (&cross, &never),
    );

    let update = a
        .update(projects::ActiveModel {
            id: Set(g_project.id),
            name: Set("Pwned".to_owned()),
            ..Default::default()
        })
        .await;
    let delete = a.delete::<projects::Entity>(g_project.id).await;
    let bulk = a
        .update_many::<tasks::Entity>()
        .col_expr(tasks::Column::Done, Expr::value(true))
        .exec()
        .await?;
    let g_after = g.get::<projects::Entity>(g_project.id).await;
    let g_task_after = g.get::<tasks::Entity>(g_task.id).await;
    r.check(
        is_not_found(&update)
            && is_not_found(&delete)
            && g_after.as_ref().is_ok_and(|p| *p == g_project)
            && g_task_after.as_ref().is_ok_and(|t| *t == g_task),
        "update / delete Globex's project -> not found; Globex re-reads it unchanged",
        (&update, &delete, &g_after),
    );
    r.check(
        bulk == 1 && g_task_after.as_ref().is_ok_and(|t| !t.done),
        "update_many marks all tasks done -> 1 row (Acme's); Globex's task is untouched",
        (bulk, &g_task_after),
    );

    let sneak = a.insert(task(g_project.id, "Sneak in")).await;
    let ghost = a.insert(task(Uuid::now_v7(), "Ghost")).await;
    let a_tasks = a.find::<tasks::Entity>().count().await?;
    r.check(
        same_not_found(&sneak, &ghost) && a_tasks == 1,
        "a task under Globex's project -> rejected by the composite FK; not found, like a missing project",
        (&sneak, &ghost, a_tasks),
    );

    // The same insert as raw SQL through the system handle: no library check is in the way here,
    // the database itself refuses it. (`execute` maps only a foreign-key violation to `NotFound`.)
    let system = db.system("demo: raw insert across tenants").await?;
    let mut raw = Query::insert();
    raw.into_table(tasks::Entity)
        .columns([
            tasks::Column::TenantId,
            tasks::Column::Id,
            tasks::Column::ProjectId,
            tasks::Column::Title,
            tasks::Column::Done,
            tasks::Column::CreatedAt,
        ])
        .values([
            Expr::val(acme_id),
            Expr::val(Uuid::now_v7()),
            Expr::val(g_project.id),
            Expr::val("Sneak in (raw SQL)"),
            Expr::val(false),
            Expr::val(Utc::now()),
        ])?;
    let raw = system.execute(db.backend().build(&raw)).await;
    let leaked = system
        .find::<tasks::Entity>()
        .filter(tasks::Column::TenantId.eq(acme_id))
        .filter(tasks::Column::ProjectId.eq(g_project.id))
        .count()
        .await?;
    r.check(
        is_not_found(&raw) && leaked == 0,
        "the same insert as raw SQL via db.system(..).execute -> rejected by the database itself",
        (&raw, leaked),
    );

    println!("Unique keys and API keys:");
    let again = a.insert(project("Roadmap")).await;
    r.check(
        matches!(again, Err(Error::Conflict)),
        "\"Roadmap\" exists in both tenants; a second one in Acme -> conflict (409)",
        &again,
    );

    let (head, last) = acme_key.key.split_at(acme_key.key.len() - 1);
    let wrong_secret = format!("{head}{}", if last == "0" { '1' } else { '0' });
    let parts: Vec<&str> = acme_key.key.split('_').collect();
    let other_tenant = match parts.as_slice() {
        [prefix, _tenant, key_id, secret] => {
            format!(
                "{prefix}_{}_{key_id}_{secret}",
                globex_id.as_uuid().simple()
            )
        }
        _ => return Err("an issued key does not look like tsk_<tenant>_<key id>_<secret>".into()),
    };
    // Revoking needs `api_keys.write`, which Globex's API key does not hold (its user has no role):
    // an administrator's job revokes it, through audited system access.
    let system = db.system("demo: revoke a key").await?;
    let admin_job = system.context_for(globex_id);
    ApiKeyVerifier::revoke(&db.scope(&admin_job), globex_key.id).await?;
    let mut denied = Vec::new();
    for claim in [
        "tsk_not-a-key".to_owned(),
        wrong_secret,
        other_tenant,
        globex_key.key.clone(),
    ] {
        denied.push(db.verify(&ApiKeyVerifier, claim).await.err());
    }
    r.check(
        denied
            .iter()
            .all(|e| matches!(e, Some(e @ Error::Denied) if e.status() == 401)),
        "a malformed key, a wrong secret, Acme's key sent as Globex's, a revoked key -> denied (401)",
        &denied,
    );

    if r.failed.is_empty() {
        println!("All {} checks passed.", r.passed);
        Ok(())
    } else {
        Err(format!("{} check(s) failed: {:?}", r.failed.len(), r.failed).into())
    }
}
