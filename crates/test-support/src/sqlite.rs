//! SQLite test databases: a copy of a migrated template file.

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Instant;

use sea_orm_migration::MigratorTrait;

use crate::conn::{HarnessError, connect};
use crate::db::{Created, DropTarget, Strategy, timing_enabled};
use crate::env::say;
use crate::names::is_stale;
use crate::names::{new_database_name, template_name};
use crate::{Migrator, STALE_AFTER, TEMPLATE_PREFIX};

/// `sqlite://PATH?mode=rwc`.
fn sqlite_url(file: &Path) -> String {
    format!("sqlite://{}?mode=rwc", file.display())
}

/// SQLite: a fresh file in its own temp dir under `$TMPDIR/tenant-scope-tests`: a copy of the migrated template
/// file, or migrated in place.
pub(crate) async fn create_sqlite(strategy: Strategy) -> Result<Created, HarnessError> {
    let base = std::env::temp_dir().join("tenant-scope-tests");
    std::fs::create_dir_all(&base)
        .map_err(|e| HarnessError::new(format!("creating {}", base.display()), e))?;
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| sweep_sqlite(&base));
    let name = new_database_name();
    let dir = tempfile::Builder::new()
        .prefix(&format!("{name}."))
        .tempdir_in(&base)
        .map_err(|e| HarnessError::new(format!("creating a temp dir in {}", base.display()), e))?;
    let file = dir.path().join("test.db");
    let url = sqlite_url(&file);
    match strategy {
        Strategy::Template => {
            let template = sqlite_template(&base, false).await?;
            let copied = match std::fs::copy(&template, &file) {
                // Swept away between the check and the copy (by another checkout's run): build it again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::copy(sqlite_template(&base, true).await?, &file)
                }
                copied => copied,
            };
            copied.map_err(|e| {
                HarnessError::new(
                    format!("copying {} to {}", template.display(), file.display()),
                    e,
                )
            })?;
            let raw = connect(&url).await?;
            Ok(Created {
                name,
                url,
                target: DropTarget::Sqlite(dir),
                raw,
            })
        }
        Strategy::Migrate | Strategy::Empty => {
            let raw = connect(&url).await?;
            if strategy == Strategy::Migrate {
                Migrator::up(&raw, None)
                    .await
                    .map_err(|e| HarnessError::new("migrating the SQLite test database", e))?;
            }
            Ok(Created {
                name,
                url,
                target: DropTarget::Sqlite(dir),
                raw,
            })
        }
    }
}

/// The migrated SQLite template file for the current schema, `$TMPDIR/tenant-scope-tests/ts_tpl_<hash>.db`,
/// built if missing (or if `rebuild`). It is migrated under a name of its own and renamed into place, so
/// concurrent test processes see either no template or a complete one (two may both build it; the second
/// rename replaces an identical file).
async fn sqlite_template(base: &Path, rebuild: bool) -> Result<PathBuf, HarnessError> {
    let path = base.join(format!("{}.db", template_name()));
    if path.exists() && !rebuild {
        return Ok(path);
    }
    let started = Instant::now();
    // Named like a test database so that the sweep removes it if this process dies while building.
    let building = base.join(format!("{}.template-building.db", new_database_name()));
    let conn = connect(&sqlite_url(&building)).await?;
    let migrated = Migrator::up(&conn, None)
        .await
        .map_err(|e| HarnessError::new("migrating the SQLite template", e));
    // Closing the last connection leaves one self-contained file (no -wal or -journal beside it).
    let closed = conn
        .close()
        .await
        .map_err(|e| HarnessError::new("closing the SQLite template", e));
    let renamed = migrated.and(closed).and_then(|()| {
        std::fs::rename(&building, &path).map_err(|e| {
            HarnessError::new(
                format!("renaming {} to {}", building.display(), path.display()),
                e,
            )
        })
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&building);
    }
    renamed?;
    // Templates of other schemas: keep recent ones (a concurrent run of another checkout may use them).
    if let Ok(entries) = std::fs::read_dir(base) {
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > STALE_AFTER);
            if file_name.starts_with(TEMPLATE_PREFIX) && entry.path() != path && old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    if timing_enabled() {
        say(&format!(
            "tenant-scope tests: SQLite template {} built in {} ms",
            path.display(),
            started.elapsed().as_millis()
        ));
    }
    Ok(path)
}

/// Removes SQLite test dirs (and half-built templates) that killed runs left behind.
fn sweep_sqlite(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        if is_stale(&entry.file_name().to_string_lossy()) {
            let path = entry.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}
