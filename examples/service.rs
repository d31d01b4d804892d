//! Run with: cargo run --example service
//!
//! The reference REST service: projects, their tasks and the tasks' comments, over the reference
//! schema, with axum and `tenant_scope::http`. Every request is verified by API key
//! (`Authorization: Bearer tsk_…`) through the `Tenant` extractor and reaches the database only
//! through `db.scope(&ctx)`: another tenant's id is 404, with the same body as an id that never
//! existed; 403 only for a row of the caller's own tenant. docs/http.md describes the routes'
//! rules; the router and handlers are the `reference-service` crate (examples/reference-service).
//!
//! With no arguments it migrates a fresh SQLite file in a temporary directory, seeds two demo
//! tenants (Acme and Globex, each with an admin key, a viewer key and a project), prints the keys
//! and ready-to-paste curl commands, and listens on 127.0.0.1:3000 until Ctrl-C.
//!
//! Options: `--listen ADDR`, `--database-url URL` (an existing database, migrated with the
//! reference migrator as its owner, like examples/demo.rs), `--app-database-url URL` (on
//! PostgreSQL: the unprivileged application role), `--seed-demo[=true|false]` (default: on for the
//! temporary SQLite database, off otherwise).

use std::error::Error as StdError;
use std::io::IsTerminal;
use std::net::SocketAddr;

use clap::Parser;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database};
use tenant_scope::{Error, TenantDb};
use uuid::Uuid;

type BoxError = Box<dyn StdError>;

/// tenant-scope reference service: projects, tasks and comments, one tenant per API key.
#[derive(Debug, Parser)]
struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// URL of the database, as its owner (migrations run with it, and system access). Default: a
    /// fresh SQLite file in a temporary directory, removed at exit.
    #[arg(long)]
    database_url: Option<String>,
    /// URL of the same database as the application role (required on PostgreSQL, e.g.
    /// `postgres://tenant_scope_app@127.0.0.1/db`). Default: `--database-url`.
    #[arg(long)]
    app_database_url: Option<String>,
    /// Seed the demo tenants Acme and Globex and print their API keys. Default: on for the
    /// temporary SQLite database, off for `--database-url`.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    seed_demo: Option<bool>,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // On stderr: one INFO line per request (target `service`), the WARN line of every
    // `db.system(..)`, and database errors at ERROR (`tenant_scope::http`). `RUST_LOG` overrides.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,service=info,tenant_scope::http=info")
            }),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();

    let args = Args::parse();
    // Without a URL: a fresh SQLite file, removed when `_tmp` is dropped.
    let (url, _tmp) = match &args.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("tenant-scope-service-")
                .tempdir()?;
            let path = dir.path().join(format!("{}.db", Uuid::now_v7().simple()));
            (format!("sqlite://{}?mode=rwc", path.display()), Some(dir))
        }
    };
    let seed = args.seed_demo.unwrap_or(args.database_url.is_none());

    // Migrations run as the schema owner, on a plain SeaORM connection opened only for that.
    let mut owner = ConnectOptions::new(url.clone());
    owner.sqlx_logging(false);
    // tenant-scope: allow(raw-connection) migrations run as the schema owner, before the service starts
    let owner = Database::connect(owner).await?;
    Migrator::up(&owner, None).await?;
    owner.close().await?;

    // The service: the application's connection, and the owner's for system access (the seed).
    let app_url = args.app_database_url.clone().unwrap_or_else(|| url.clone());
    let db = TenantDb::options(app_url.as_str())
        .system(url.as_str())
        .connect()
        .await
        .map_err(|e| match e {
            Error::Config(why)
                if url.starts_with("postgres") && args.app_database_url.is_none() =>
            {
                format!(
                    "{why}\n(on PostgreSQL pass --app-database-url, the same database as the \
                     unprivileged application role, e.g. postgres://tenant_scope_app@host/db)"
                )
                .into()
            }
            other => BoxError::from(other),
        })?;

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    if seed {
        let seeded = reference_service::seed_demo(&db)
            .await
            .map_err(|e| match e {
                Error::Conflict => BoxError::from(
                    "the demo tenants already exist in this database: run without --seed-demo",
                ),
                other => BoxError::from(other),
            })?;
        print_seed(&seeded, &base);
    }

    println!("Listening on {base} (Ctrl-C to stop)");
    axum::serve(listener, reference_service::router(db))
        .with_graceful_shutdown(async {
            // If the handler cannot be installed, run until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    println!("Stopped.");
    Ok(())
}

/// The keys, project ids and curl commands of the demo tenants.
fn print_seed(seed: &reference_service::Seed, base: &str) {
    println!("Seeded two demo tenants (roles \"admin\": every permission, \"viewer\": read only):");
    for t in [&seed.acme, &seed.globex] {
        println!("  {} (tenant {})", t.name, t.id);
        println!("    admin key:  {}", t.admin_key.key);
        println!("    viewer key: {}", t.viewer_key.key);
        println!("    project:    {}", t.project_id);
    }
    let (acme, globex) = (&seed.acme, &seed.globex);
    println!();
    println!("Try it:");
    println!("  ACME={}", acme.admin_key.key);
    println!("  ACME_VIEWER={}", acme.viewer_key.key);
    println!("  ACME_PROJECT={}", acme.project_id);
    println!("  GLOBEX_PROJECT={}", globex.project_id);
    println!("  # Acme's projects");
    println!("  curl -s -H \"Authorization: Bearer $ACME\" {base}/projects");
    println!("  # a task in Acme's project");
    println!(
        "  curl -s -H \"Authorization: Bearer $ACME\" -H 'Content-Type: application/json' \\\n    \
         -d '{{\"title\":\"Draft the plan\"}}' {base}/projects/$ACME_PROJECT/tasks"
    );
    println!("  # the viewer may read but not write: 403");
    println!(
        "  curl -s -H \"Authorization: Bearer $ACME_VIEWER\" -X DELETE {base}/projects/$ACME_PROJECT"
    );
    println!("  # Globex's project as Acme, and an id that never existed: the same 404");
    println!(
        "  curl -s -w ' %{{http_code}}\\n' -H \"Authorization: Bearer $ACME\" {base}/projects/$GLOBEX_PROJECT"
    );
    println!(
        "  curl -s -w ' %{{http_code}}\\n' -H \"Authorization: Bearer $ACME\" {base}/projects/{}",
        Uuid::now_v7()
    );
    println!();
}
