//! `cargo run -p invoicing`: the invoicing example, served on 127.0.0.1:3001.
//!
//! With no arguments it makes a new SQLite file in a temporary directory, creates the legacy schema
//! and its rows, adopts them (every legacy row to Acme), provisions Globex, and prints a token of
//! each tenant's clerk and curl commands to paste. `--database-url` (the schema owner) and
//! `--app-database-url` (on PostgreSQL the unprivileged application role) run it on an empty
//! database of a server instead. `--schema-only` stops after the adoption (what CI generates the
//! entities from).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use invoicing::{BoxError, idp};
use sea_orm::Database;
use tenant_scope::TenantId;

/// The invoicing example service.
#[derive(Debug, Parser)]
struct Args {
    /// The database, as its owner: an empty PostgreSQL or MySQL database, or a SQLite file. Default:
    /// a new SQLite file in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// The application's connection (PostgreSQL: the unprivileged role, e.g.
    /// postgres://tenant_scope_app@host/db). Default: the same as --database-url.
    #[arg(long)]
    app_database_url: Option<String>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:3001")]
    listen: String,
    /// Create and adopt the schema with the legacy rows, then exit.
    #[arg(long)]
    schema_only: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("invoicing: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let temp = tempfile::tempdir()?;
    let owner_url = match args.database_url {
        Some(url) => url,
        None => format!(
            "sqlite://{}?mode=rwc",
            temp.path().join("invoicing.db").display()
        ),
    };
    let app_url = args.app_database_url.unwrap_or_else(|| owner_url.clone());
    if args.schema_only {
        // tenant-scope: allow(raw-connection) --schema-only migrates and adopts as the schema owner, then exits without serving
        let owner = Database::connect(&owner_url).await?;
        invoicing::legacy_database(&owner).await?;
        invoicing::adopt(&owner, TenantId::new()).await?;
        owner.close().await?;
        println!("adopted; generate the entities from {owner_url}");
        return Ok(());
    }
    let (db, tenants) = invoicing::setup(&app_url, &owner_url).await?;
    let acme = idp::token(tenants.acme.tenant, tenants.acme.clerk)?;
    let globex = idp::token(tenants.globex.tenant, tenants.globex.clerk)?;
    let verifier = idp::verifier()?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("invoicing on {base} (tokens valid for an hour)");
    println!("ACME={acme}");
    println!("GLOBEX={globex}");
    let port = listener.local_addr()?.port();
    let (domain, acme_slug) = (invoicing::app::BASE_DOMAIN, invoicing::seed::ACME_SLUG);
    let curl = |token: &str, url: String| {
        println!("curl -s -w ' %{{http_code}}\\n' -H \"Authorization: Bearer ${token}\" {url}");
    };
    println!("# Acme's clerk asks for Acme's (legacy) invoice 1:");
    curl("ACME", format!("{base}/invoices/1"));
    println!("# ... for Globex's invoice, and for one that never existed: the same 404");
    curl(
        "ACME",
        format!("{base}/invoices/{}", tenants.globex_invoice),
    );
    curl("ACME", format!("{base}/invoices/999999999"));
    println!(
        "# A subdomain names a tenant by its slug; Globex's token on Acme's is the same 401 as a bad token:"
    );
    curl(
        "GLOBEX",
        format!("http://{acme_slug}.{domain}:{port}/customers"),
    );
    axum::serve(listener, invoicing::app::router(db, verifier))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
