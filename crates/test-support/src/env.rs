//! Which backends run, against which server: the environment, and the URLs derived from it.

use std::fmt;
use std::io::Write as _;
use std::sync::Once;

use sea_orm::DbBackend;

use crate::{MYSQL_URL_VAR, POSTGRES_URL_VAR};

/// A database backend the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite, always available.
    Sqlite,
    /// PostgreSQL, when `TENANT_SCOPE_TEST_POSTGRES_URL` is set.
    Postgres,
    /// MySQL or MariaDB, when `TENANT_SCOPE_TEST_MYSQL_URL` is set.
    Mysql,
}

impl Backend {
    /// Every backend, in the order the macros generate them.
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::Mysql];

    /// Human name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
            Backend::Mysql => "MySQL",
        }
    }

    /// The environment variable that holds the server URL (`None` for SQLite, which needs none).
    pub fn env_var(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(POSTGRES_URL_VAR),
            Backend::Mysql => Some(MYSQL_URL_VAR),
        }
    }

    /// SeaORM's name for the backend.
    pub fn db_backend(self) -> DbBackend {
        match self {
            Backend::Sqlite => DbBackend::Sqlite,
            Backend::Postgres => DbBackend::Postgres,
            Backend::Mysql => DbBackend::MySql,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the `CI` variable's value means "running in CI" (`true`, any case, or `1`).
pub fn is_ci(ci: Option<&str>) -> bool {
    ci.map(str::trim)
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Decides from the environment values whether `backend`'s tests run, and against which server URL.
///
/// `url` is the value of the backend's URL variable and `ci` the value of `CI` (both `None` when unset; an
/// empty URL counts as unset). Returns `None` when the tests are not run. Panics, naming the variable, when the
/// URL is missing under CI. Takes the values as arguments so tests can check it without touching the process
/// environment; [`server_url_from_env`] is the wrapper that reads it.
pub fn resolve(backend: Backend, url: Option<&str>, ci: Option<&str>) -> Option<String> {
    let var = backend.env_var()?;
    match url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => Some(url.to_owned()),
        None if is_ci(ci) => panic!(
            "tenant-scope tests: {var} is not set but CI=true: the {backend} tests must run in CI. \
             Set {var} to a server URL, e.g. {}",
            example_url(backend)
        ),
        None => None,
    }
}

/// The message printed (once per process) when a backend's tests are not run.
pub fn skip_notice(backend: Backend) -> String {
    let var = backend.env_var().unwrap_or("(none)");
    format!(
        "tenant-scope tests: {var} not set; {backend} tests are not run (set it, or CI=true makes this an error)"
    )
}

fn example_url(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite://PATH?mode=rwc",
        Backend::Postgres => "postgres://postgres@127.0.0.1:5432/test",
        Backend::Mysql => "mysql://root@127.0.0.1:3306/test",
    }
}

/// Reads the backend's server URL from the environment (see [`resolve`]); says once per process on stderr when
/// the backend is skipped. `Some("")` for SQLite, which needs no server.
pub fn server_url_from_env(backend: Backend) -> Option<String> {
    let Some(var) = backend.env_var() else {
        return Some(String::new());
    };
    let url = std::env::var(var).ok();
    let ci = std::env::var("CI").ok();
    let resolved = resolve(backend, url.as_deref(), ci.as_deref());
    if resolved.is_none() {
        static POSTGRES: Once = Once::new();
        static MYSQL: Once = Once::new();
        let once = if backend == Backend::Postgres {
            &POSTGRES
        } else {
            &MYSQL
        };
        once.call_once(|| say(&skip_notice(backend)));
    }
    resolved
}

/// The pooler of [`PGBOUNCER_URL_VAR`](crate::PGBOUNCER_URL_VAR), if it is set (and not empty).
pub fn pooler_url() -> Option<String> {
    std::env::var(crate::PGBOUNCER_URL_VAR)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Writes a line straight to the process's stderr, past libtest's output capture.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Replaces the password of a URL with `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `server_url` with TLS turned off when the server is on this machine (loopback host) and the URL does not
/// choose (`sslmode` / `ssl-mode`). sqlx prefers TLS by default, and a TLS handshake costs ~90 ms in a debug
/// build: each test opens several connections, so this makes PostgreSQL tests several times faster. An explicit
/// `sslmode` in the URL is kept.
pub fn loopback_without_tls(backend: Backend, server_url: &str) -> String {
    let Some((_, rest)) = server_url.split_once("://") else {
        return server_url.to_owned();
    };
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        &host_port[..host_port.find(']').map_or(host_port.len(), |i| i + 1)]
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
    let query = server_url.split_once('?').map_or("", |(_, q)| q);
    let chosen = query
        .split('&')
        .any(|pair| matches!(pair.split('=').next(), Some("sslmode" | "ssl-mode")));
    let setting = match backend {
        Backend::Postgres => "sslmode=disable",
        Backend::Mysql => "ssl-mode=disabled",
        Backend::Sqlite => return server_url.to_owned(),
    };
    if !loopback || chosen {
        server_url.to_owned()
    } else if server_url.contains('?') {
        format!("{server_url}&{setting}")
    } else {
        format!("{server_url}?{setting}")
    }
}

/// `url` with its user replaced by `user` (and no password: the test servers trust local connections).
pub fn with_user(url: &str, user: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{user}@{host}{tail}")
}

/// The URL of database `name` on the server of `server_url`: the path is replaced, the query string is kept.
pub fn database_url(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}
