//! Which database a URL points at: the one parser of a URL's scheme.

use std::fmt;

use sea_orm::DbBackend;

/// A database backend tenant-scope supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// SQLite (`sqlite:`).
    Sqlite,
    /// PostgreSQL (`postgres:`, `postgresql:`).
    Postgres,
    /// MySQL or MariaDB (`mysql:`, `mariadb:`).
    MySql,
}

/// A URL whose scheme is not one of the supported backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported database URL: expected sqlite://, postgres:// or mysql://")]
pub struct UnsupportedUrl;

impl Backend {
    /// The backend of `url`, from its scheme (case-insensitive): `sqlite`, `postgres` /
    /// `postgresql`, `mysql` / `mariadb`.
    ///
    /// ```
    /// use tenant_scope_catalog::Backend;
    ///
    /// assert_eq!(Backend::from_url("postgres://app@db/app"), Ok(Backend::Postgres));
    /// assert_eq!(Backend::from_url("sqlite::memory:"), Ok(Backend::Sqlite));
    /// assert_eq!(Backend::from_url("MariaDB://root@db/app"), Ok(Backend::MySql));
    /// assert!(Backend::from_url("oracle://x").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, UnsupportedUrl> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(UnsupportedUrl),
        }
    }

    /// The backend of a SeaORM connection; `None` for a backend tenant-scope does not support.
    pub fn of(backend: DbBackend) -> Option<Self> {
        match backend {
            DbBackend::Sqlite => Some(Backend::Sqlite),
            DbBackend::Postgres => Some(Backend::Postgres),
            DbBackend::MySql => Some(Backend::MySql),
            _ => None,
        }
    }

    /// SeaORM's name for it.
    pub fn db_backend(self) -> DbBackend {
        match self {
            Backend::Sqlite => DbBackend::Sqlite,
            Backend::Postgres => DbBackend::Postgres,
            Backend::MySql => DbBackend::MySql,
        }
    }

    /// `"sqlite"`, `"postgres"` or `"mysql"` (MariaDB included), as in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
