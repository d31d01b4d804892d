//! MySQL / MariaDB test databases: the template's tables and rows, replayed.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;

use crate::Migrator;
use crate::conn::{HarnessError, connect, connect_admin, exec, query_strings, sweep_server};
use crate::db::{Created, DropGuard, DropTarget, Strategy, timing_enabled};
use crate::env::{Backend, database_url, say};
use crate::names::{new_database_name, template_name};

/// MySQL / MariaDB: a copy of the migrated template database, or `CREATE DATABASE` and a migration.
pub(crate) async fn create_mysql(
    server_url: &str,
    strategy: Strategy,
) -> Result<Created, HarnessError> {
    let admin = connect_admin(server_url).await?;
    let name = new_database_name();
    // Set before anything is created: DROP DATABASE IF EXISTS is harmless if nothing was.
    let guard = DropGuard::new(DropTarget::Server {
        backend: Backend::Mysql,
        server_url: server_url.to_owned(),
        name: name.clone(),
    });
    let copied = match strategy {
        Strategy::Template => copy_mysql_template(&admin, server_url, &name).await,
        Strategy::Migrate | Strategy::Empty => exec(
            &admin,
            &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"),
        )
        .await
        .map(|()| false),
    };
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if copied.is_ok() && !SWEPT.swap(true, Ordering::Relaxed) {
        sweep_server(&admin, Backend::Mysql).await;
    }
    let _ = admin.close().await;
    let copied = copied?;
    let url = database_url(server_url, &name);
    let raw = connect(&url).await?;
    if !copied && strategy == Strategy::Migrate {
        Migrator::up(&raw, None).await.map_err(|e| {
            HarnessError::new(format!("migrating the MySQL test database {name}"), e)
        })?;
    }
    let target = guard.take().expect("the drop target was just set");
    Ok(Created {
        name,
        url,
        target,
        raw,
    })
}

/// MySQL named lock that serializes building, dropping and copying templates.
const MYSQL_TEMPLATE_LOCK: &str = "tenant_scope_test_template";

/// Creates database `name` as a copy of the migrated template (building the template if needed): the
/// template's tables as `SHOW CREATE TABLE` prints them (columns, keys, indexes, foreign keys, checks, table
/// options) and their rows (the migration bookkeeping, any seed data). Returns `false`, having created an empty
/// database, when the template has objects this copy does not handle (views, triggers, routines, events): the
/// caller then migrates it. Everything runs under a named lock, so no template is dropped while being copied.
async fn copy_mysql_template(
    admin: &DatabaseConnection,
    server_url: &str,
    name: &str,
) -> Result<bool, HarnessError> {
    let template = template_name();
    let locked = query_strings(
        admin,
        &format!("SELECT CAST(GET_LOCK('{MYSQL_TEMPLATE_LOCK}', 300) AS CHAR)"),
        Vec::new(),
    )
    .await?;
    if locked != ["1"] {
        return Err(HarnessError::new(
            "taking the MySQL template lock",
            "GET_LOCK timed out after 300 s",
        ));
    }
    let result = async {
        if !mysql_template_ready(admin, template).await? {
            build_mysql_template(admin, server_url, template).await?;
        }
        let others = query_strings(
            admin,
            "SELECT CAST(CONCAT( \
               (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?), ',', \
               (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?), ',', \
               (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?), ',', \
               (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)) AS CHAR)",
            vec![template.into(), template.into(), template.into(), template.into()],
        )
        .await?;
        exec(admin, &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4")).await?;
        if others != ["0,0,0,0"] {
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                say("tenant-scope tests: the MySQL template has views, triggers, routines or events; \
                     migrating every MySQL test database instead of copying it")
            });
            return Ok(false);
        }
        let tables = query_strings(
            admin,
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            vec![template.into()],
        )
        .await?;
        // One multi-statement round trip. Foreign key checks are off so tables can be made in any order.
        let mut script = format!("USE `{name}`;\nSET FOREIGN_KEY_CHECKS = 0;\n");
        for table in &tables {
            let stmt = Statement::from_string(
                DbBackend::MySql,
                format!("SHOW CREATE TABLE `{template}`.`{table}`"),
            );
            let row = admin
                .query_one_raw(stmt)
                .await
                .map_err(|e| HarnessError::new(format!("SHOW CREATE TABLE {template}.{table}"), e))?
                .ok_or_else(|| HarnessError::new(format!("SHOW CREATE TABLE {template}.{table}"), "no row"))?;
            let ddl: String = row
                .try_get_by_index(1)
                .map_err(|e| HarnessError::new(format!("reading SHOW CREATE TABLE {table}"), e))?;
            script.push_str(&ddl);
            script.push_str(";\n");
        }
        for table in &tables {
            script.push_str(&format!(
                "INSERT INTO `{name}`.`{table}` SELECT * FROM `{template}`.`{table}`;\n"
            ));
        }
        script.push_str("SET FOREIGN_KEY_CHECKS = 1;");
        exec(admin, &script).await?;
        Ok(true)
    }
    .await;
    exec(admin, &format!("DO RELEASE_LOCK('{MYSQL_TEMPLATE_LOCK}')")).await?;
    result
}

/// Whether the MySQL template exists with every migration applied.
async fn mysql_template_ready(
    admin: &DatabaseConnection,
    template: &str,
) -> Result<bool, HarnessError> {
    let table = Migrator::migration_table_name().to_string();
    let exists = query_strings(
        admin,
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        vec![template.into(), table.clone().into()],
    )
    .await?;
    if exists.is_empty() {
        return Ok(false);
    }
    let mut applied = query_strings(
        admin,
        &format!("SELECT CAST(version AS CHAR) FROM `{template}`.`{table}`"),
        Vec::new(),
    )
    .await?;
    let mut expected: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    applied.sort();
    expected.sort();
    Ok(applied == expected)
}

/// Creates and migrates the MySQL template and drops the templates of other schemas (called under the lock,
/// so nobody is copying those).
async fn build_mysql_template(
    admin: &DatabaseConnection,
    server_url: &str,
    template: &str,
) -> Result<(), HarnessError> {
    let started = Instant::now();
    exec(admin, &format!("DROP DATABASE IF EXISTS `{template}`")).await?;
    exec(
        admin,
        &format!("CREATE DATABASE `{template}` CHARACTER SET utf8mb4"),
    )
    .await?;
    let conn = connect(&database_url(server_url, template)).await?;
    let migrated = Migrator::up(&conn, None)
        .await
        .map_err(|e| HarnessError::new(format!("migrating the MySQL template {template}"), e));
    let _ = conn.close().await;
    migrated?;
    let others = query_strings(
        admin,
        r"SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA
          WHERE SCHEMA_NAME LIKE 'ts\_tpl\_%' AND SCHEMA_NAME <> ?",
        vec![template.into()],
    )
    .await?;
    for other in others {
        exec(admin, &format!("DROP DATABASE IF EXISTS `{other}`")).await?;
    }
    if timing_enabled() {
        say(&format!(
            "tenant-scope tests: MySQL template {template} built in {} ms",
            started.elapsed().as_millis()
        ));
    }
    Ok(())
}
