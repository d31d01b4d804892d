//! Collecting the `*.rs` files of a scan, in a deterministic order.

use std::path::{Path, PathBuf};

use crate::{GuardError, ScanOptions};

/// Directory names skipped unless tests are included.
const TEST_DIRS: &[&str] = &["tests", "benches"];
/// Directory names skipped unless migrations are included.
const MIGRATION_DIRS: &[&str] = &["migration", "migrations"];

/// Every `*.rs` file under `root` (or `root` itself when it is a file), sorted by path.
pub(super) fn rust_files(root: &Path, options: &ScanOptions) -> Result<Vec<PathBuf>, GuardError> {
    let meta = std::fs::metadata(root).map_err(|source| GuardError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    if meta.is_file() {
        files.push(root.to_path_buf());
    } else {
        walk(root, options, &mut files)?;
    }
    files.sort();
    Ok(files)
}

fn walk(dir: &Path, options: &ScanOptions, files: &mut Vec<PathBuf>) -> Result<(), GuardError> {
    let io = |source| GuardError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        entries.push(entry.map_err(io)?);
    }
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type().map_err(|source| GuardError::Io {
            path: path.clone(),
            source,
        })?;
        if kind.is_dir() {
            // Symlinked directories are not followed (`is_dir` is false for them): no cycles.
            if skip_dir(&name, options) {
                continue;
            }
            walk(&path, options, files)?;
        } else if name.ends_with(".rs") && !name.starts_with('.') {
            if name == "build.rs" && !options.migrations_included() {
                continue;
            }
            // A symlink to a file is scanned; a dangling one is an error worth seeing.
            files.push(path);
        }
    }
    Ok(())
}

fn skip_dir(name: &str, options: &ScanOptions) -> bool {
    name.starts_with('.')
        || name == "target"
        || (!options.tests_included() && TEST_DIRS.contains(&name))
        || (!options.migrations_included() && MIGRATION_DIRS.contains(&name))
}
