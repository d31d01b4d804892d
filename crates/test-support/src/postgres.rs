//! PostgreSQL test databases: `CREATE DATABASE .. TEMPLATE`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;

use crate::conn::{HarnessError, connect, connect_admin, exec, query_strings, sweep_server};
use crate::db::{Created, DropGuard, DropTarget, Strategy, timing_enabled};
use crate::env::{Backend, database_url, say};
use crate::names::{new_database_name, template_name};
use crate::{APP_ROLE, Migrator, TEMPLATE_LOCK_KEY};

/// PostgreSQL: `CREATE DATABASE .. TEMPLATE` from the migrated template (creating the template if needed), or
/// `CREATE DATABASE` and a migration.
pub(crate) async fn create_postgres(
    server_url: &str,
    strategy: Strategy,
) -> Result<Created, HarnessError> {
    let admin = connect_admin(server_url).await?;
    static ROLE_CHECKED: AtomicBool = AtomicBool::new(false);
    if !ROLE_CHECKED.load(Ordering::Relaxed) {
        if let Err(e) = check_app_role(&admin).await {
            let _ = admin.close().await;
            return Err(e);
        }
        ROLE_CHECKED.store(true, Ordering::Relaxed);
    }
    let name = new_database_name();
    let created = match strategy {
        Strategy::Template => create_from_template(&admin, server_url, &name).await,
        Strategy::Migrate | Strategy::Empty => {
            exec(&admin, &format!(r#"CREATE DATABASE "{name}""#)).await
        }
    };
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if created.is_ok() && !SWEPT.swap(true, Ordering::Relaxed) {
        sweep_server(&admin, Backend::Postgres).await;
    }
    let _ = admin.close().await;
    created?;
    // From here on the guard drops the database if anything fails.
    let guard = DropGuard::new(DropTarget::Server {
        backend: Backend::Postgres,
        server_url: server_url.to_owned(),
        name: name.clone(),
    });
    let url = database_url(server_url, &name);
    let raw = connect(&url).await?;
    if strategy == Strategy::Migrate {
        Migrator::up(&raw, None).await.map_err(|e| {
            HarnessError::new(format!("migrating the PostgreSQL test database {name}"), e)
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

/// The application role must exist, unprivileged, before a template is migrated: the reference migration
/// grants it its privileges only if it exists, and the tests connect as it.
async fn check_app_role(admin: &DatabaseConnection) -> Result<(), HarnessError> {
    let found = query_strings(
        admin,
        "SELECT (rolcanlogin AND NOT rolsuper AND NOT rolbypassrls)::text FROM pg_roles WHERE rolname = $1",
        vec![APP_ROLE.into()],
    )
    .await?;
    match found.as_slice() {
        [ok] if ok == "true" => Ok(()),
        [_] => Err(HarnessError::new(
            format!("checking the role {APP_ROLE}"),
            "it exists but is not LOGIN NOSUPERUSER NOBYPASSRLS; fix it (see .ci/postgres-setup.sql)",
        )),
        _ => Err(HarnessError::new(
            format!("checking the role {APP_ROLE}"),
            "it does not exist; create it as a superuser with `psql -f .ci/postgres-setup.sql` \
             (the library's tests connect as this unprivileged role, never as a superuser)",
        )),
    }
}

async fn create_from_template(
    admin: &DatabaseConnection,
    server_url: &str,
    name: &str,
) -> Result<(), HarnessError> {
    let template = template_name();
    let create = format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#);
    // Fast path: the template exists. The shared lock keeps a template rebuild from dropping it under us.
    exec(
        admin,
        &format!("SELECT pg_advisory_lock_shared({TEMPLATE_LOCK_KEY})"),
    )
    .await?;
    let result = async {
        if pg_template_ready(admin, template).await? {
            exec(admin, &create).await.map(|()| true)
        } else {
            Ok(false)
        }
    }
    .await;
    exec(
        admin,
        &format!("SELECT pg_advisory_unlock_shared({TEMPLATE_LOCK_KEY})"),
    )
    .await?;
    if result? {
        return Ok(());
    }
    // Slow path: build the template under the exclusive lock (another process may have done it meanwhile).
    exec(
        admin,
        &format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"),
    )
    .await?;
    let result = async {
        if !pg_template_ready(admin, template).await? {
            build_pg_template(admin, server_url, template).await?;
        }
        exec(admin, &create).await
    }
    .await;
    exec(
        admin,
        &format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"),
    )
    .await?;
    result
}

async fn pg_template_ready(
    admin: &DatabaseConnection,
    template: &str,
) -> Result<bool, HarnessError> {
    let ready = query_strings(
        admin,
        "SELECT datname::text FROM pg_database WHERE datname = $1 AND datistemplate",
        vec![template.into()],
    )
    .await?;
    Ok(!ready.is_empty())
}

/// Creates and migrates the template, marks it a template nobody can connect to, and drops the templates of
/// other schemas. Called with the exclusive advisory lock held, so nobody is copying those.
async fn build_pg_template(
    admin: &DatabaseConnection,
    server_url: &str,
    template: &str,
) -> Result<(), HarnessError> {
    let started = Instant::now();
    // A half-built template of a run that died is not marked as a template: start over.
    exec(
        admin,
        &format!(r#"DROP DATABASE IF EXISTS "{template}" WITH (FORCE)"#),
    )
    .await?;
    exec(admin, &format!(r#"CREATE DATABASE "{template}""#)).await?;
    let conn = connect(&database_url(server_url, template)).await?;
    let migrated = Migrator::up(&conn, None)
        .await
        .map_err(|e| HarnessError::new(format!("migrating the PostgreSQL template {template}"), e));
    let _ = conn.close().await;
    migrated?;
    exec(
        admin,
        &format!(r#"ALTER DATABASE "{template}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"#),
    )
    .await?;
    let others = query_strings(
        admin,
        r"SELECT datname::text FROM pg_database WHERE datname LIKE 'ts\_tpl\_%' AND datname <> $1",
        vec![template.into()],
    )
    .await?;
    for other in others {
        exec(
            admin,
            &format!(r#"ALTER DATABASE "{other}" WITH IS_TEMPLATE false"#),
        )
        .await?;
        exec(
            admin,
            &format!(r#"DROP DATABASE IF EXISTS "{other}" WITH (FORCE)"#),
        )
        .await?;
    }
    if timing_enabled() {
        say(&format!(
            "tenant-scope tests: PostgreSQL template {template} built in {} ms",
            started.elapsed().as_millis()
        ));
    }
    Ok(())
}
