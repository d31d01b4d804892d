//! The migration CLI of the reference schema.
//!
//! Run with: `cargo run -p migration -- -u DATABASE_URL up` (also `down`, `fresh`, `refresh`,
//! `reset`, `status`; the URL can come from `DATABASE_URL`). For SQLite use
//! `sqlite://PATH?mode=rwc`.

#[tokio::main]
async fn main() {
    sea_orm_migration::cli::run_cli(migration::Migrator).await;
}
