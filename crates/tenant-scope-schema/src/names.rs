//! Deterministic constraint and index names.

/// The longest identifier every backend keeps as written: PostgreSQL truncates at 63 bytes,
/// MySQL rejects more than 64.
const MAX_IDENTIFIER_LEN: usize = 63;

/// The name of the foreign key of `table` on `column`: `fk_<table>_<column>`.
///
/// [`TenantTable`](crate::TenantTable) names the foreign key to `tenants` `fk_<table>_tenant_id`.
/// Names longer than 63 bytes are shortened the same way as [`index_name`].
///
/// ```
/// assert_eq!(tenant_scope_schema::foreign_key_name("tasks", "project_id"), "fk_tasks_project_id");
/// ```
pub fn foreign_key_name(table: &str, column: &str) -> String {
    shorten(format!("fk_{table}_{column}"))
}

/// The name of the tenant-led unique constraint of `table` on `columns`: `uq_<table>_<columns>`.
///
/// `columns` are the columns after `tenant_id` (`tenant_id` itself is ignored);
/// `uq_<table>_tenant_id` if there are none.
///
/// ```
/// use tenant_scope_schema::unique_name;
///
/// assert_eq!(unique_name("projects", ["name"]), "uq_projects_name");
/// assert_eq!(unique_name("projects", ["tenant_id", "name"]), "uq_projects_name");
/// ```
pub fn unique_name<I, S>(table: &str, columns: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    name("uq", table, columns)
}

/// The name of the tenant-led index of `table` on `columns`: `ix_<table>_<columns>`.
///
/// `columns` are the columns after `tenant_id` (`tenant_id` itself is ignored). A name longer
/// than 63 bytes (the PostgreSQL limit; MySQL's is 64) keeps its first 54 bytes and gets `_` and
/// eight hex digits of a hash of the full name, so it stays unique and deterministic.
///
/// ```
/// use tenant_scope_schema::index_name;
///
/// assert_eq!(index_name("tasks", ["assignee_id"]), "ix_tasks_assignee_id");
/// assert_eq!(index_name("audit_events", ["created_at"]), "ix_audit_events_created_at");
/// let long = index_name("a_table_with_a_rather_long_name", ["and_a_long_column", "and_another"]);
/// assert_eq!(long.len(), 63);
/// assert!(long.starts_with("ix_a_table_with_a_rather_long_name_and_a_long_column_a_"));
/// ```
pub fn index_name<I, S>(table: &str, columns: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    name("ix", table, columns)
}

/// `<prefix>_<table>_<columns joined by _>`, shortened to [`MAX_IDENTIFIER_LEN`].
fn name<I, S>(prefix: &str, table: &str, columns: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut full = format!("{prefix}_{table}");
    let mut any = false;
    for column in columns {
        let column = column.as_ref();
        if column == crate::TENANT_COLUMN {
            // `tenant_id` leads every tenant-led key; naming it would only add noise.
            continue;
        }
        any = true;
        full.push('_');
        full.push_str(column);
    }
    if !any {
        full.push('_');
        full.push_str(crate::TENANT_COLUMN);
    }
    shorten(full)
}

/// Keeps names within [`MAX_IDENTIFIER_LEN`] bytes, deterministically.
fn shorten(full: String) -> String {
    if full.len() <= MAX_IDENTIFIER_LEN {
        return full;
    }
    let hash = fnv1a(full.as_bytes());
    let mut keep = MAX_IDENTIFIER_LEN - 9;
    while !full.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}_{hash:08x}", &full[..keep])
}

/// 32-bit FNV-1a: small, stable across Rust versions and platforms (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &byte in bytes {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(foreign_key_name("tasks", "tenant_id"), "fk_tasks_tenant_id");
        assert_eq!(unique_name("users", ["email"]), "uq_users_email");
        assert_eq!(
            unique_name("role_permissions", ["role_id", "permission_id"]),
            "uq_role_permissions_role_id_permission_id"
        );
        assert_eq!(
            unique_name("settings", Vec::<&str>::new()),
            "uq_settings_tenant_id"
        );
    }

    #[test]
    fn long_names_are_shortened_deterministically() {
        let cols = ["first_rather_long_column", "second_rather_long_column"];
        let a = index_name("some_table_name", cols);
        let b = index_name("some_table_name", cols);
        let c = index_name(
            "some_table_name",
            ["first_rather_long_column", "second_rather_long_colum2"],
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), MAX_IDENTIFIER_LEN);
        assert_eq!(c.len(), MAX_IDENTIFIER_LEN);
    }

    #[test]
    fn shortening_respects_char_boundaries() {
        let name = index_name(
            "täble_with_ümlauts_everywhere_äöü",
            ["çolumn_öne", "çolumn_twö"],
        );
        assert!(name.len() <= MAX_IDENTIFIER_LEN);
    }
}
