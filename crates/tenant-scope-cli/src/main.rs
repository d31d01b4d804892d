//! The `tenant-scope` command line: entities from the live schema, and the checks a service runs in
//! CI and before every deploy.
//!
//! ```text
//! tenant-scope generate --database-url URL --output DIR [--global TABLE,...] [--module]
//! tenant-scope check    --database-url URL [--format text|json] [--app-role ROLE] [--allow CODE,...]
//!                       [--global TABLE,...]
//! tenant-scope check    --source DIR [--format text|json]
//! tenant-scope roles    --print [--app-role ROLE] [--system-role ROLE] [--schema SCHEMA]
//!                       [--tenant-table TABLE,...] [--global TABLE,...]
//! ```
//!
//! Exit codes: 0 clean (or generated), 1 findings (or a refused schema), 2 could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tenant_scope_cli::codegen::Layout;

mod roles;
mod tenant;

#[derive(Debug, Parser)]
#[command(
    name = "tenant-scope",
    version,
    about = "Tenant isolation for SeaORM: generate entities, check schemas and sources, and run a tenant's lifecycle"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write SeaORM entities for the live schema: tenant-owned tables get `TenantId`, their
    /// composite primary key and relations, and `TenantScoped`; `--global` tables get `Global`.
    Generate {
        /// The database to introspect (sqlite://…, postgres://…, mysql://…).
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
        /// The directory to write the entity files into.
        #[arg(long, short)]
        output: PathBuf,
        /// Tables that are deliberately not tenant-owned.
        #[arg(long, value_delimiter = ',')]
        global: Vec<String>,
        /// Write a module of the service's own crate (`mod.rs`, for `mod entities;`) instead of the
        /// sources of an entity crate (`lib.rs`).
        #[arg(long)]
        module: bool,
    },
    /// Lint the schema and scan the data (with `--database-url`), or scan Rust sources for raw
    /// database access (with `--source`).
    Check {
        /// The database to check.
        #[arg(
            long,
            env = "DATABASE_URL",
            required_unless_present = "source",
            conflicts_with = "source"
        )]
        database_url: Option<String>,
        /// A directory of Rust sources (a service crate) to scan for raw database access
        /// (see docs/guard.md).
        #[arg(long)]
        source: Option<PathBuf>,
        /// With `--source`: also scan test code (`tests/`, `benches/`, `#[cfg(test)]`).
        #[arg(long, requires = "source")]
        include_tests: bool,
        /// With `--source`: also scan migrations (`migration/`, `migrations/`, `build.rs`).
        #[arg(long, requires = "source")]
        include_migrations: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// PostgreSQL: the role the service connects as. The row level security rules are judged for
        /// it as the connect-time self-check judges its role: superuser or BYPASSRLS (also through
        /// a role it may SET ROLE to), ownership, TRUNCATE/REFERENCES/TRIGGER, policies that apply to
        /// it, views it may read.
        #[arg(long)]
        app_role: Option<String>,
        /// Findings to skip: `CODE` or `CODE:TABLE` (see docs/check.md).
        #[arg(long, value_delimiter = ',')]
        allow: Vec<String>,
        /// Tables that are deliberately not tenant-owned (`tenants` always is).
        #[arg(long, value_delimiter = ',')]
        global: Vec<String>,
    },
    /// One tenant's lifecycle through audited system access: export, erase, certify, import, status
    /// (docs/lifecycle.md).
    Tenant {
        #[command(subcommand)]
        command: tenant::TenantCommand,
    },
    /// PostgreSQL: print the SQL script that creates the application role and the system role and
    /// grants them what they need on the library's tables and the service's (docs/postgres.md).
    Roles {
        /// Print the script on stdout (the only mode: review it, then run it as a superuser).
        #[arg(long, required = true)]
        print: bool,
        /// The application role `TenantDb` connects as (LOGIN NOSUPERUSER NOBYPASSRLS).
        #[arg(long, default_value = "tenant_scope_app")]
        app_role: String,
        /// The system role of `db.system(reason)` (LOGIN BYPASSRLS).
        #[arg(long, default_value = "tenant_scope_system")]
        system_role: String,
        /// The schema of the tables (default: the connection's current schema).
        #[arg(long)]
        schema: Option<String>,
        /// The service's tenant-owned tables, besides the library's (which are always granted).
        #[arg(long, value_delimiter = ',')]
        tenant_table: Vec<String>,
        /// The service's global tables, besides `tenants` and `permissions`: the application role
        /// may only read them.
        #[arg(long, value_delimiter = ',')]
        global: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Generate {
            database_url,
            output,
            global,
            module,
        } => {
            let layout = if module {
                Layout::Module
            } else {
                Layout::Crate
            };
            generate(database_url, output, global, layout).await
        }
        Command::Check {
            database_url,
            source,
            include_tests,
            include_migrations,
            format,
            app_role,
            allow,
            global,
        } => match (database_url, source) {
            (_, Some(source)) => check_source(source, include_tests, include_migrations, format),
            (Some(database_url), None) => {
                check_database(database_url, format, app_role, allow, global).await
            }
            (None, None) => {
                eprintln!("error: check needs --database-url or --source");
                ExitCode::from(2)
            }
        },
        Command::Tenant { command } => tenant::run(command).await,
        Command::Roles {
            print: _,
            app_role,
            system_role,
            schema,
            tenant_table,
            global,
        } => print_roles(roles::RolesOptions {
            app_role,
            system_role,
            schema,
            tenant_tables: tenant_table,
            global_tables: global,
        }),
    }
}

/// `roles --print`: 0 printed, 2 invalid names (nothing printed).
fn print_roles(options: roles::RolesOptions) -> ExitCode {
    match roles::script(&options) {
        Ok(sql) => {
            print!("{sql}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `generate`: 0 written, 1 the schema was refused (nothing written), 2 could not run.
async fn generate(
    database_url: String,
    output: PathBuf,
    global: Vec<String>,
    layout: Layout,
) -> ExitCode {
    use tenant_scope_cli::codegen::{GenerateError, GenerateOptions};
    let options = GenerateOptions {
        database_url,
        global,
        layout,
    };
    match tenant_scope_cli::codegen::generate(&options).await {
        Ok(generated) => match generated.write_to(&output) {
            Ok(()) => {
                eprintln!(
                    "wrote {} files to {}",
                    generated.files.len(),
                    output.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: writing {}: {e}", output.display());
                ExitCode::from(2)
            }
        },
        Err(
            e @ (GenerateError::NotTenantScoped(_)
            | GenerateError::UnknownGlobal(_)
            | GenerateError::GlobalWithTenantColumn(_)
            | GenerateError::Shape { .. }
            | GenerateError::TenantsTable(_)),
        ) => {
            eprintln!("error: {e}");
            eprintln!("nothing was written");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `check --source`: 0 clean, 1 violations, 2 could not run.
fn check_source(
    source: PathBuf,
    include_tests: bool,
    include_migrations: bool,
    format: Format,
) -> ExitCode {
    let options = tenant_scope_guard::ScanOptions::new()
        .include_tests(include_tests)
        .include_migrations(include_migrations);
    match tenant_scope_guard::scan_dir_with(&source, &options) {
        Ok(violations) => {
            match format {
                Format::Text => {
                    for v in &violations {
                        println!("{v}");
                    }
                    if violations.is_empty() {
                        println!("{}: no raw database access found", source.display());
                    } else {
                        println!("{} violation(s); see docs/guard.md", violations.len());
                    }
                }
                Format::Json => match serde_json::to_string_pretty(&violations) {
                    Ok(json) => println!("{json}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
                },
            }
            if violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `check --database-url`: 0 no error findings, 1 error findings, 2 could not run.
async fn check_database(
    database_url: String,
    format: Format,
    app_role: Option<String>,
    allow: Vec<String>,
    global: Vec<String>,
) -> ExitCode {
    use tenant_scope_schema::check::{CheckOptions, EXIT_COULD_NOT_RUN};
    let mut options = CheckOptions::new(database_url);
    options.app_role = app_role;
    options.allow = allow;
    options.global = global;
    match tenant_scope_schema::check::check(&options).await {
        Ok(report) => {
            match format {
                Format::Text => print!("{}", report.to_text()),
                Format::Json => println!("{}", report.to_json()),
            }
            exit(report.exit_code())
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit(EXIT_COULD_NOT_RUN)
        }
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
