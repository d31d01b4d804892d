//! The library's own tables (`tenant_scope_schema::create_library_tables` and the statement per table) are
//! exactly what the reference migration creates, on every backend: the reference tests, the row level
//! security policies, `tenant-scope check`, the verifiers and the generated entities rely on those shapes.
//!
//! Each test reads the reference schema with the catalog (`tenant_scope_catalog`, the model every tool reads),
//! empties the database (`Migrator::reset`), builds the library's tables with the helper and reads the catalog
//! again: every library table must be the same (columns, types, defaults, keys, indexes, foreign keys, SQLite's
//! stored `CREATE TABLE`), and on PostgreSQL so must row level security and the application role's privileges.

use std::collections::BTreeMap;

use sea_orm::DatabaseConnection;
use sea_orm_migration::{MigratorTrait, SchemaManager};
use tenant_scope_catalog::postgres::{Role, TableSecurity};
use tenant_scope_catalog::{Catalog, Table};
use tenant_scope_schema::{
    LIBRARY_GLOBAL_TABLES, LIBRARY_TENANT_TABLES, SYSTEM_AUDIT_TABLE, create_library_tables,
    drop_library_tables, grant_library_tables, rls,
};
use test_support::{APP_ROLE, Backend, Migrator, TestDb};

/// Every table of the library: the global ones, the tenant-owned ones, the system audit log.
fn library_tables() -> Vec<&'static str> {
    let mut all = LIBRARY_GLOBAL_TABLES.to_vec();
    all.extend_from_slice(LIBRARY_TENANT_TABLES);
    all.push(SYSTEM_AUDIT_TABLE);
    all
}

/// The library's tables as the catalog reads them, and on PostgreSQL their row level security and the
/// privileges of the application role on them.
async fn library_catalog(
    conn: &DatabaseConnection,
) -> (BTreeMap<String, Table>, Vec<TableSecurity>) {
    let catalog: Catalog = Catalog::reader()
        .role(Role::Named(APP_ROLE.to_owned()))
        .read(conn)
        .await
        .expect("read the catalog");
    let names = library_tables();
    let tables = catalog
        .tables
        .into_iter()
        .filter(|(name, _)| names.contains(&name.as_str()))
        .collect();
    let security = catalog
        .security
        .map(|s| {
            s.tables
                .into_iter()
                .filter(|t| names.contains(&t.name.as_str()))
                .collect()
        })
        .unwrap_or_default();
    (tables, security)
}

/// The application role's privileges on `table` (PostgreSQL), sorted.
async fn app_privileges(conn: &DatabaseConnection, table: &str) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let sql = format!(
        "SELECT privilege_type::text AS p FROM information_schema.role_table_grants \
         WHERE table_schema = current_schema() AND table_name = '{table}' AND grantee = '{APP_ROLE}' \
         ORDER BY privilege_type"
    );
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .expect("grants");
    rows.iter()
        .map(|r| r.try_get::<String>("", "p").expect("text"))
        .collect()
}

test_support::backend_test!(
    create_library_tables_is_what_the_reference_migration_creates,
    |t: TestDb| async move {
        let conn = t.raw();
        let (reference, reference_security) = library_catalog(conn).await;
        assert_eq!(
            reference.len(),
            library_tables().len(),
            "the reference schema has every library table: {:?}",
            reference.keys().collect::<Vec<_>>()
        );
        let reference_grants = if t.backend() == Backend::Postgres {
            let mut all = Vec::new();
            for table in library_tables() {
                all.push((table, app_privileges(conn, table).await));
            }
            all
        } else {
            Vec::new()
        };

        Migrator::reset(conn).await.expect("reset");
        let manager = SchemaManager::new(conn);
        create_library_tables(&manager).await.expect("create");
        grant_library_tables(&manager, rls::DEFAULT_APP_ROLE)
            .await
            .expect("grant");
        let (built, built_security) = library_catalog(conn).await;

        for (name, table) in &reference {
            assert_eq!(
                built.get(name),
                Some(table),
                "{name}: the helper must build what the reference migration builds"
            );
        }
        assert_eq!(built.len(), reference.len());
        assert_eq!(built_security, reference_security);
        if t.backend() == Backend::Postgres {
            assert_eq!(
                built_security.len(),
                LIBRARY_TENANT_TABLES.len(),
                "row level security on every tenant-owned library table"
            );
            for table in library_tables() {
                let grants = app_privileges(conn, table).await;
                let expected = &reference_grants
                    .iter()
                    .find(|(t, _)| *t == table)
                    .expect("read above")
                    .1;
                assert_eq!(&grants, expected, "{APP_ROLE} on {table}");
            }
            assert_eq!(
                app_privileges(conn, "audit_events").await,
                ["INSERT", "SELECT"],
                "the audit log stays append-only"
            );
            assert!(app_privileges(conn, SYSTEM_AUDIT_TABLE).await.is_empty());
        }

        // A schema of only the library's tables is one the runtime serves: on PostgreSQL the connect-time
        // self-check (as the application role) accepts it, and system access writes its audit row.
        let db = t.tenant_db().await;
        let system = db.system("library_tables test").await.expect("system");
        drop(system);
        drop(db);
    }
);

test_support::backend_test!(
    drop_library_tables_undoes_create_and_create_runs_again,
    |t: TestDb| async move {
        let conn = t.raw();
        Migrator::reset(conn).await.expect("reset");
        let manager = SchemaManager::new(conn);
        create_library_tables(&manager).await.expect("create");
        let (first, first_security) = library_catalog(conn).await;
        assert_eq!(first.len(), library_tables().len());

        drop_library_tables(&manager).await.expect("drop");
        let (none, no_security) = library_catalog(conn).await;
        assert!(none.is_empty(), "left behind: {:?}", none.keys());
        assert!(no_security.is_empty());

        create_library_tables(&manager).await.expect("create again");
        let (again, again_security) = library_catalog(conn).await;
        assert_eq!(again, first);
        assert_eq!(again_security, first_security);
    }
);
