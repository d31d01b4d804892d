//! The invoicing database, from its single-tenant past to its tenant-owned present.
//!
//! 1. [`Migrator`] creates the schema as the service had it before tenancy ([`legacy`]: four tables
//!    with integer ids the database assigns, single-column keys, global unique keys) and then the
//!    library's own tables (`tenant_scope_schema::create_library_tables`).
//! 2. [`adopt()`] moves the legacy tables to the tenant-owned shape with the four steps of
//!    `tenant_scope_schema::adopt` (expand, backfill, validate, enforce): every legacy row goes to
//!    the default tenant, the keys become `(tenant_id, id)` and `(tenant_id, parent_id)`.
//! 3. [`secure`] turns on row level security for the adopted tables and grants the application
//!    role what it needs (PostgreSQL; nothing to do elsewhere).
//!
//! A real service runs step 1's first half never (its tables exist), the library tables as a
//! migration of its own, and steps 2 and 3 once, as the schema owner.

use sea_orm::sea_query::{
    ColumnDef, ForeignKey, ForeignKeyAction, ForeignKeyCreateStatement, Index,
    IndexCreateStatement, Table,
};
// tenant-scope: allow(connection-type) the schema owner's connection: migrations and adoption run before any tenant is served
use sea_orm::{DatabaseConnection, DbBackend};
use sea_orm_migration::prelude::*;
use tenant_scope::TenantId;
use tenant_scope_schema::adopt::{self, AdoptError, AdoptPlan, AdoptTable, BackfillOptions};
use tenant_scope_schema::{OnDelete, TENANTS_TABLE, rls};

/// The tables the service owns, parents first.
pub const TABLES: [&str; 4] = ["customers", "products", "invoices", "invoice_lines"];

/// The global tables `tenant-scope generate` and `check` are told about.
pub const GLOBAL: [&str; 2] = [TENANTS_TABLE, "permissions"];

/// The service's migrations: the legacy schema, then the library's tables.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(legacy::Migration), Box::new(LibraryTables)]
    }
}

/// The library's tables (`tenants`, `users`, `roles`, ..., `audit_events`), created and granted
/// with the helpers of `tenant_scope_schema`.
#[derive(Debug)]
struct LibraryTables;

impl MigrationName for LibraryTables {
    fn name(&self) -> &str {
        "m20261203_000002_library_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LibraryTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        tenant_scope_schema::create_library_tables(manager).await?;
        tenant_scope_schema::grant_library_tables(manager, rls::DEFAULT_APP_ROLE).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        tenant_scope_schema::drop_library_tables(manager).await
    }
}

/// The schema before tenancy, as the service's first version created it.
pub mod legacy {
    use super::*;

    /// Creates the four legacy tables.
    #[derive(Debug)]
    pub struct Migration;

    impl MigrationName for Migration {
        fn name(&self) -> &str {
            "m20190401_000001_legacy_schema"
        }
    }

    /// The integer id a legacy table got from its framework: `bigserial` on PostgreSQL, `BIGINT
    /// AUTO_INCREMENT` on MySQL, `INTEGER PRIMARY KEY` (the rowid) on SQLite.
    fn id(backend: DbBackend) -> ColumnDef {
        let mut id = ColumnDef::new("id");
        match backend {
            DbBackend::Sqlite => id.integer().not_null().primary_key(),
            _ => id.big_integer().not_null().auto_increment().primary_key(),
        };
        id
    }

    fn reference(
        table: &'static str,
        column: &'static str,
        parent: &'static str,
        on_delete: ForeignKeyAction,
    ) -> ForeignKeyCreateStatement {
        let mut fk = ForeignKey::create();
        fk.name(format!("fk_{table}_{column}"))
            .from(table, column)
            .to(parent, "id")
            .on_delete(on_delete);
        fk.to_owned()
    }

    fn unique(table: &'static str, column: &'static str) -> IndexCreateStatement {
        let mut index = Index::create();
        index
            .name(format!("uq_{table}_{column}"))
            .unique()
            .col(column);
        index.to_owned()
    }

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            let backend = manager.get_database_backend();
            let created_at = || {
                ColumnDef::new("created_at")
                    .timestamp_with_time_zone()
                    .not_null()
                    .to_owned()
            };
            manager
                .create_table(
                    Table::create()
                        .table("customers")
                        .col(id(backend))
                        .col(ColumnDef::new("name").string().not_null())
                        .col(ColumnDef::new("email").string().not_null())
                        .col(created_at())
                        .index(&mut unique("customers", "email"))
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table("products")
                        .col(id(backend))
                        .col(ColumnDef::new("sku").string().not_null())
                        .col(ColumnDef::new("name").string().not_null())
                        .col(ColumnDef::new("unit_price_cents").big_integer().not_null())
                        .index(&mut unique("products", "sku"))
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table("invoices")
                        .col(id(backend))
                        .col(ColumnDef::new("customer_id").big_integer().not_null())
                        .col(ColumnDef::new("number").string().not_null())
                        .col(ColumnDef::new("status").string().not_null())
                        .col(created_at())
                        .index(&mut unique("invoices", "number"))
                        .foreign_key(&mut reference(
                            "invoices",
                            "customer_id",
                            "customers",
                            ForeignKeyAction::Restrict,
                        ))
                        .to_owned(),
                )
                .await?;
            manager
                .create_table(
                    Table::create()
                        .table("invoice_lines")
                        .col(id(backend))
                        .col(ColumnDef::new("invoice_id").big_integer().not_null())
                        .col(ColumnDef::new("product_id").big_integer().not_null())
                        .col(ColumnDef::new("quantity").big_integer().not_null())
                        .foreign_key(&mut reference(
                            "invoice_lines",
                            "invoice_id",
                            "invoices",
                            ForeignKeyAction::Cascade,
                        ))
                        .foreign_key(&mut reference(
                            "invoice_lines",
                            "product_id",
                            "products",
                            ForeignKeyAction::Restrict,
                        ))
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            for table in super::TABLES.iter().rev() {
                manager
                    .drop_table(Table::drop().table(*table).to_owned())
                    .await?;
            }
            Ok(())
        }
    }
}

/// The adopt plan of the legacy tables: every legacy row goes to `default_tenant`, named
/// `default_name` (created by `expand` if it does not exist).
pub fn plan(default_tenant: TenantId, default_name: &str) -> AdoptPlan {
    AdoptPlan::new(default_tenant, default_name)
        .table(AdoptTable::new("customers").unique(["email"]))
        .table(AdoptTable::new("products").unique(["sku"]))
        .table(
            AdoptTable::new("invoices")
                .references("customer_id", "customers", OnDelete::Restrict)
                .unique(["number"]),
        )
        .table(
            AdoptTable::new("invoice_lines")
                .references("invoice_id", "invoices", OnDelete::Cascade)
                .references("product_id", "products", OnDelete::Restrict),
        )
}

/// Adopts the legacy tables (the four steps; each is idempotent, so a second run does nothing).
///
/// # Errors
///
/// The step's [`AdoptError`]: a precondition, or rows `validate` found (orphans, `NULL` tenants).
// tenant-scope: allow(connection-type) the schema owner's connection: migrations and adoption run before any tenant is served
pub async fn adopt(db: &DatabaseConnection, plan: &AdoptPlan) -> Result<(), AdoptError> {
    adopt::expand(db, plan).await?;
    adopt::backfill(db, plan, &BackfillOptions::batch_size(1_000)).await?;
    let findings = adopt::validate(db, plan).await?;
    if !findings.is_empty() {
        return Err(AdoptError::NotClean(findings));
    }
    adopt::enforce(db, plan).await
}

/// On PostgreSQL: row level security on the adopted tables (forced, the one `tenant_isolation`
/// policy) and the application role's grants on them. Nothing on SQLite and MySQL.
///
/// # Errors
///
/// The database's error.
// tenant-scope: allow(connection-type) the schema owner's connection: migrations and adoption run before any tenant is served
pub async fn secure(db: &DatabaseConnection) -> Result<(), DbErr> {
    let manager = SchemaManager::new(db);
    rls::enable_rls(&manager, &TABLES).await?;
    rls::grant_app_role(&manager, rls::DEFAULT_APP_ROLE, &TABLES, &[]).await
}
