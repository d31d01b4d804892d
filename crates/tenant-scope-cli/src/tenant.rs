//! `tenant-scope tenant ...`: one tenant's lifecycle (`tenant_scope::lifecycle`), for an operator.
//!
//! Every action connects a `TenantDb` and runs through its audited system access (each one writes
//! its row of `system_audit_events`). Exit codes: 0 done, 1 refused (a certificate that does not
//! pass, a tenant that is not deleted, a tampered file), 2 could not run (a connection, a file).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use tenant_scope::provision::{self, TenantStatus};
use tenant_scope::{Error, TenantDb, TenantId, lifecycle};

/// The connections of a `tenant` action.
#[derive(Debug, Args)]
pub(crate) struct Connection {
    /// The application's database URL, as the service connects (on PostgreSQL: the application
    /// role, which the connect-time self-check accepts).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// The system connection (on PostgreSQL required: a role that may cross tenants).
    #[arg(long, env = "SYSTEM_DATABASE_URL")]
    system_url: Option<String>,
}

/// A tenant's lifecycle status, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Status {
    Active,
    Suspended,
    Deleted,
}

impl From<Status> for TenantStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Active => TenantStatus::Active,
            Status::Suspended => TenantStatus::Suspended,
            Status::Deleted => TenantStatus::Deleted,
        }
    }
}

/// What to do with the tenant.
#[derive(Debug, Subcommand)]
pub(crate) enum TenantCommand {
    /// Write one tenant's rows of every tenant-owned table as JSON lines (parents first, with a
    /// manifest of counts and checksums).
    Export {
        #[command(flatten)]
        connection: Connection,
        /// The tenant's id.
        #[arg(long)]
        tenant: TenantId,
        /// The file to write.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Erase a deleted tenant's rows, children first, in batches (run it again to finish an
    /// interrupted erase).
    Erase {
        #[command(flatten)]
        connection: Connection,
        /// The tenant's id (its status must be `deleted`).
        #[arg(long)]
        tenant: TenantId,
        /// Rows per batch; each batch commits on its own.
        #[arg(long, default_value_t = 500)]
        batch: u64,
    },
    /// Count the tenant's rows in every table with `tenant_id` and print the signed report; exit 1
    /// unless every count is 0 and the tenant is deleted.
    Certify {
        #[command(flatten)]
        connection: Connection,
        /// The tenant's id.
        #[arg(long)]
        tenant: TenantId,
        /// The signing key, as hex (at least 32 bytes).
        #[arg(long, env = "TENANT_SCOPE_CERTIFY_KEY", hide_env_values = true)]
        key_hex: String,
    },
    /// Write an export into this database, keeping its ids (one transaction: a tampered file or a
    /// tenant that is already there changes nothing).
    Import {
        #[command(flatten)]
        connection: Connection,
        /// The file `tenant export` wrote.
        #[arg(long, short)]
        input: PathBuf,
    },
    /// Print the tenant's status, or set it with `--set`.
    Status {
        #[command(flatten)]
        connection: Connection,
        /// The tenant's id.
        #[arg(long)]
        tenant: TenantId,
        /// The status to set (`deleted` cannot be undone).
        #[arg(long, value_enum)]
        set: Option<Status>,
    },
}

impl TenantCommand {
    fn connection(&self) -> &Connection {
        match self {
            TenantCommand::Export { connection, .. }
            | TenantCommand::Erase { connection, .. }
            | TenantCommand::Certify { connection, .. }
            | TenantCommand::Import { connection, .. }
            | TenantCommand::Status { connection, .. } => connection,
        }
    }
}

/// Runs `command`; prints what it did on stdout and why it failed on stderr.
pub(crate) async fn run(command: TenantCommand) -> ExitCode {
    let connection = command.connection();
    let mut options = TenantDb::options(connection.database_url.as_str());
    if let Some(system) = &connection.system_url {
        options = options.system(system.as_str());
    }
    let db = match options.connect().await {
        Ok(db) => db,
        Err(e) => return failed(&e),
    };
    match execute(&db, command).await {
        Ok(code) => code,
        Err(e) => failed(&e),
    }
}

async fn execute(db: &TenantDb, command: TenantCommand) -> Result<ExitCode, Error> {
    match command {
        TenantCommand::Export { tenant, output, .. } => {
            let file = File::create(&output).map_err(|e| io(&output, &e))?;
            let mut out = BufWriter::new(file);
            let manifest = lifecycle::export(db, tenant, &mut out).await?;
            out.flush().map_err(|e| io(&output, &e))?;
            println!("exported tenant {tenant} to {}", output.display());
            for table in &manifest.tables {
                println!("  {}: {} rows", table.table, table.rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        TenantCommand::Erase { tenant, batch, .. } => {
            let report = lifecycle::erase(db, tenant, batch).await?;
            println!(
                "erased tenant {tenant} in {} batches (system access event {})",
                report.batches, report.event
            );
            for table in &report.deleted {
                println!("  {}: {} rows", table.table, table.rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        TenantCommand::Certify {
            tenant, key_hex, ..
        } => {
            let key = hex_key(&key_hex)?;
            let certificate = lifecycle::certify_erased(db, tenant, &key).await?;
            println!("{certificate}");
            Ok(if certificate.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        TenantCommand::Import { input, .. } => {
            let file = File::open(&input).map_err(|e| io(&input, &e))?;
            let manifest = lifecycle::import(db, BufReader::new(file)).await?;
            println!(
                "imported tenant {} from {}",
                manifest.tenant.id,
                input.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        TenantCommand::Status { tenant, set, .. } => {
            let system = db.system(&format!("tenant status {tenant}")).await?;
            if let Some(status) = set {
                provision::set_status(&system, tenant, status.into()).await?;
            }
            match provision::tenant_status(&system, tenant).await? {
                Some(status) => {
                    println!("{status}");
                    Ok(ExitCode::SUCCESS)
                }
                None => Err(Error::NotFound),
            }
        }
    }
}

fn hex_key(text: &str) -> Result<Vec<u8>, Error> {
    match hex::decode(text) {
        Ok(bytes) if bytes.len() >= 32 => Ok(bytes),
        _ => Err(Error::Config(
            "the certificate key must be at least 32 bytes as hexadecimal digits".into(),
        )),
    }
}

fn io(path: &std::path::Path, e: &std::io::Error) -> Error {
    Error::Config(format!("{}: {e}", path.display()))
}

/// Exit 1 for a refusal, 2 when it could not run; the error on stderr.
fn failed(e: &Error) -> ExitCode {
    eprintln!("error: {e}");
    match e {
        Error::Invalid(_) | Error::Conflict | Error::NotFound | Error::Forbidden => {
            ExitCode::from(1)
        }
        _ => ExitCode::from(2),
    }
}
