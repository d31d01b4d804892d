//! The one error type of tenant-scope.

use std::fmt;

use sea_orm::{DbErr, SqlErr};

/// Everything that can go wrong in tenant-scope.
///
/// The `Display` text of every variant is ours and fixed: it never carries a value read from a row, an
/// id of another tenant, or the database driver's message (which can quote the offending key). The
/// driver error of [`Error::Db`] is kept for [`std::error::Error::source`] and `Debug`, so a service can
/// log it on its side, but it is never part of the message.
///
/// Cross-tenant access is indistinguishable from absence: a lookup of another tenant's row, and a
/// reference to another tenant's row, give exactly the same [`Error::NotFound`] as an id that never
/// existed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The row does not exist in the caller's tenant (whether or not it exists in another one), or a
    /// row it references does not.
    #[error("not found")]
    NotFound,
    /// The row exists in the caller's own tenant, but the caller may not do this to it.
    #[error("forbidden")]
    Forbidden,
    /// A unique constraint of the caller's tenant already holds this value, or a row to delete is still
    /// referenced by other rows of the caller's tenant.
    #[error("conflict: the change collides with existing rows")]
    Conflict,
    /// A value names another tenant than the context's (for example an active model whose `tenant_id`
    /// is set to another tenant, or an update that would change `tenant_id`).
    #[error("tenant mismatch: the value does not belong to the current tenant")]
    TenantMismatch,
    /// Credentials were missing, malformed, unknown or revoked. All of these are the same answer, so
    /// that a caller cannot tell which one it was.
    #[error("denied: credentials were not accepted")]
    Denied,
    /// The input is malformed; the text says what was expected, never what another tenant holds.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The caller's tenant already runs as many operations at once as it may (its share of the
    /// connection pool, [`TenantDbOptions::per_tenant_connections`](crate::TenantDbOptions::per_tenant_connections)),
    /// and none ended in time: try again shortly. It says nothing about other tenants.
    #[error("busy: too many operations of this tenant at once; retry shortly")]
    Busy,
    /// The library is misconfigured (for example a missing system connection).
    #[error("configuration error: {0}")]
    Config(String),
    /// A database error that is none of the above.
    #[error("an internal database error occurred")]
    Db(#[source] DbError),
}

impl Error {
    /// The HTTP status that answers this error: 404, 403, 409, 400 (also for `TenantMismatch`), 401
    /// for `Denied`, 429 for `Busy`, 500 otherwise.
    ///
    /// ```
    /// assert_eq!(tenant_scope::Error::NotFound.status(), 404);
    /// assert_eq!(tenant_scope::Error::Forbidden.status(), 403);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound => 404,
            Error::Forbidden => 403,
            Error::Conflict => 409,
            Error::TenantMismatch | Error::Invalid(_) => 400,
            Error::Denied => 401,
            Error::Busy => 429,
            Error::Config(_) | Error::Db(_) => 500,
        }
    }

    /// Whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound)
    }

    /// Whether this is [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict)
    }

    /// Whether this is [`Error::Forbidden`].
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Error::Forbidden)
    }

    /// Whether this is [`Error::TenantMismatch`].
    pub fn is_tenant_mismatch(&self) -> bool {
        matches!(self, Error::TenantMismatch)
    }

    /// Whether this is [`Error::Denied`].
    pub fn is_denied(&self) -> bool {
        matches!(self, Error::Denied)
    }

    /// Classifies a database error.
    ///
    /// A foreign-key violation becomes [`Error::NotFound`]: the database refuses a reference to a row
    /// that is not in the caller's tenant exactly as it refuses one to a row that never existed (the
    /// composite key `(tenant_id, parent_id)` has no match either way), and the caller must not be able
    /// to tell the two apart. A unique violation becomes [`Error::Conflict`]; uniques are tenant-led,
    /// so the value that conflicts is always the caller's own. The classification uses SeaORM's
    /// [`DbErr::sql_err`], never the text of the message.
    pub(crate) fn from_db(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => Error::NotFound,
            Some(SqlErr::UniqueConstraintViolation(_)) => Error::Conflict,
            _ => match err {
                DbErr::RecordNotFound(_) | DbErr::RecordNotUpdated => Error::NotFound,
                other => Error::Db(DbError(other)),
            },
        }
    }

    /// Classifies a database error of a delete: there a foreign-key violation means the row is still
    /// referenced (`ON DELETE RESTRICT`) by rows that, with composite keys, can only be the caller's
    /// own, so it is a [`Error::Conflict`].
    pub(crate) fn from_delete(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => Error::Conflict,
            _ if sqlite_restrict_violation(&err) => Error::Conflict,
            _ => Error::from_db(err),
        }
    }
}

/// SQLite reports an `ON DELETE RESTRICT` action as `SQLITE_CONSTRAINT_TRIGGER` (extended code
/// 1811), not as `SQLITE_CONSTRAINT_FOREIGNKEY` (787), so [`DbErr::sql_err`] does not classify it.
/// Classified by the driver's error code, never by the message.
fn sqlite_restrict_violation(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            e.as_database_error().is_some_and(|d| {
                d.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                    .is_some()
                    && d.code().as_deref() == Some("1811")
            })
        }
        _ => false,
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        Error::from_db(err)
    }
}

/// A database error kept for logging on the service's side.
///
/// Neither its `Display` nor its `Debug` carries the driver's message (which can quote a key value of
/// another tenant's row), so `tracing::error!(?err)` and `{err:?}` are safe to log. The full error is
/// [`DbError::inner`]: read it deliberately, where another tenant's data is not a concern.
pub struct DbError(DbErr);

impl DbError {
    /// The SeaORM error, with the driver's message.
    pub fn inner(&self) -> &DbErr {
        &self.0
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("database error")
    }
}

impl fmt::Debug for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The variant says what failed (connection, query, …) without the driver's text.
        let kind = match &self.0 {
            DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => "connection",
            DbErr::Exec(_) => "execute",
            DbErr::Query(_) => "query",
            DbErr::Type(_) | DbErr::TryIntoErr { .. } | DbErr::ConvertFromU64(_) => {
                "type conversion"
            }
            _ => "other",
        };
        f.debug_struct("DbError")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for DbError {}

/// The result type of tenant-scope.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_text_is_in_neither_display_nor_debug() {
        let err = Error::from_db(DbErr::Custom(
            "duplicate key value (email)=(ceo@rival.example)".into(),
        ));
        for text in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
            assert!(!text.contains("rival"), "{text}");
        }
        let Error::Db(inner) = &err else {
            panic!("expected Error::Db, got {err:?}");
        };
        assert!(format!("{:?}", inner.inner()).contains("rival"));
    }
}
