//! Names of test databases and templates.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use sea_orm_migration::MigratorTrait;
use sha2::{Digest as _, Sha256};

use crate::{Migrator, STALE_AFTER, TEMPLATE_PREFIX, TEST_DB_PREFIX};

/// A fresh per-test database name: `ts_test_` and a UUIDv7, whose timestamp says when it was made.
pub fn new_database_name() -> String {
    format!("{TEST_DB_PREFIX}{}", uuid::Uuid::now_v7().simple())
}

/// When a `ts_test_<uuidv7>` database (or temp dir) was created, from the name; `None` for other names.
pub fn created_at(name: &str) -> Option<SystemTime> {
    let id = uuid::Uuid::try_parse(name.strip_prefix(TEST_DB_PREFIX)?.get(..32)?).ok()?;
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

pub(crate) fn is_stale(name: &str) -> bool {
    created_at(name)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > STALE_AFTER)
}

/// What the reference schema is built from, relative to the workspace root: the migrations, the schema
/// helpers they call and the names those use.
const TEMPLATE_SOURCES: &[&str] = &[
    "migration/src",
    "crates/tenant-scope-schema/src/lib.rs",
    "crates/tenant-scope-schema/src/index.rs",
    "crates/tenant-scope-schema/src/library.rs",
    "crates/tenant-scope-schema/src/names.rs",
    "crates/tenant-scope-schema/src/rls.rs",
    "crates/tenant-scope-schema/src/table.rs",
    "crates/tenant-scope-catalog/src/contract.rs",
];

/// The name of the template for the current schema, on every backend: `ts_tpl_` and a hash of what the schema is
/// built from ([`hash_schema_sources`]), so any schema change gets a new template.
pub fn template_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let mut hash = Sha256::new();
        hash.update(b"tenant-scope test template v1\n");
        hash_schema_sources(&mut hash);
        let digest = hash.finalize();
        format!("{TEMPLATE_PREFIX}{}", hex::encode(&digest[..8]))
    })
}

/// Feeds into `hash` what the reference schema is built from: the migrations' names, and the path and
/// contents of every file of the migrations, of the schema helpers they call and of the names those use.
/// Test templates and the benches' databases are named after it, so that a schema change gets new ones.
pub fn hash_schema_sources(hash: &mut Sha256) {
    for migration in Migrator::migrations() {
        hash.update(migration.name().as_bytes());
        hash.update(b"\n");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.as_path();
    let mut files = Vec::new();
    for dir in TEMPLATE_SOURCES {
        collect_files(&root.join(dir), &mut files);
    }
    files.sort();
    for file in files {
        if let Ok(bytes) = std::fs::read(&file) {
            hash.update(
                file.strip_prefix(root)
                    .unwrap_or(&file)
                    .to_string_lossy()
                    .as_bytes(),
            );
            hash.update(b"\0");
            hash.update(&bytes);
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}
