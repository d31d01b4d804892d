//! [`TenantDb::system`] and [`SystemDb`]: audited access across tenants.

use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait,
    IntoActiveModel, QueryResult, Statement, StatementBuilder,
};
use uuid::Uuid;

use crate::contract::SYSTEM_AUDIT_TABLE;
use crate::error::{Error, Result};
use crate::exec::Exec;
use crate::scoped::{AllTenants, Scoped};
use crate::tenant::{Actor, TenantContext, TenantId};

use super::{ModelOf, TenantDb};

impl TenantDb {
    /// The explicit escape hatch for maintenance that crosses tenants (jobs, migrations, scans,
    /// provisioning a tenant). It needs a reason; each call writes an audit event with the reason
    /// (the global table [`SYSTEM_AUDIT_TABLE`]) and logs it at WARN, before any access is given.
    ///
    /// On PostgreSQL it runs on the separately configured system connection
    /// ([`TenantDbOptions::system`](crate::TenantDbOptions::system)), as a role that may cross tenants; without one it is
    /// [`Error::Config`]: it never falls back to the application's role. On SQLite and MySQL,
    /// which have no row level security, it uses the application's pool unless a system
    /// connection is configured.
    ///
    /// Everything done through it bypasses the tenant predicate; the composite foreign keys still
    /// hold, because the database enforces them.
    pub async fn system(&self, reason: &str) -> Result<SystemDb<'_>> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::Invalid("system access needs a reason".into()));
        }
        let pool = match (&self.system, self.backend()) {
            (Some(pool), _) => pool,
            (None, DbBackend::Postgres) => {
                return Err(Error::Config(
                    "system access is not configured: on PostgreSQL it needs its own connection, \
                     as a role that may cross tenants (TenantDb::options(url).system(url)); it \
                     never runs as the application's role"
                        .into(),
                ));
            }
            (None, _) => &self.app,
        };
        let event = Uuid::now_v7();
        let mut insert = Query::insert();
        insert
            .into_table(SYSTEM_AUDIT_TABLE)
            .columns(["id", "reason", "created_at"])
            .values_panic([
                Expr::val(event),
                Expr::val(reason),
                Expr::val(chrono::Utc::now()),
            ]);
        pool.conn().execute(&insert).await.map_err(|e| {
            Error::Config(format!(
                "system access is audited in the table `{SYSTEM_AUDIT_TABLE}`, and writing its \
                 event failed (does the table exist? see tenant_scope_schema::system_audit_table): {e}"
            ))
        })?;
        tracing::warn!(
            target: "tenant_scope::system",
            reason,
            event = %event,
            "system access across tenants"
        );
        Ok(SystemDb {
            exec: Exec::Pool(pool),
            reason: reason.to_owned(),
            event,
        })
    }
}

/// Cross-tenant access for maintenance; made by [`TenantDb::system`], which logs the reason.
#[derive(Debug)]
pub struct SystemDb<'a> {
    exec: Exec<'a>,
    reason: String,
    event: Uuid,
}

impl<'a> SystemDb<'a> {
    /// The reason given for this access.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The id of the audit event this access wrote (a row of [`SYSTEM_AUDIT_TABLE`]).
    pub fn event_id(&self) -> Uuid {
        self.event
    }

    /// A query over any entity, across all tenants.
    pub fn find<E: EntityTrait>(&self) -> Scoped<'a, sea_orm::Select<E>, AllTenants> {
        Scoped::unrestricted(self.exec)
    }

    /// Inserts a row of any entity (for example a new tenant) and returns it.
    pub async fn insert<A>(&self, am: A) -> Result<ModelOf<A>>
    where
        A: ActiveModelTrait + ActiveModelBehavior + Send,
        ModelOf<A>: IntoActiveModel<A>,
    {
        let conn = self.exec.open(None).await?;
        am.insert(&conn).await.map_err(Error::from_db)
    }

    /// Runs a raw SQL statement; returns the number of rows affected. The composite foreign keys
    /// still apply: the database rejects a cross-tenant reference here too.
    pub async fn execute(&self, stmt: Statement) -> Result<u64> {
        let conn = self.exec.open(None).await?;
        conn.execute_raw(stmt)
            .await
            .map(|r| r.rows_affected())
            .map_err(Error::from_db)
    }

    /// Runs a raw SQL query.
    pub async fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>> {
        let conn = self.exec.open(None).await?;
        conn.query_all_raw(stmt).await.map_err(Error::from_db)
    }

    /// Crate-private: the pool of this access, to read the catalog on and to begin the
    /// lifecycle's transactions on (`None` inside a transaction).
    pub(crate) fn connection(&self) -> Option<&sea_orm::DatabaseConnection> {
        match self.exec {
            Exec::Pool(pool) => Some(pool.conn()),
            Exec::Tx(_) => None,
        }
    }

    /// Crate-private: the pool of this access (`None` inside a transaction), for the job worker's
    /// transactions.
    pub(crate) fn pool(&self) -> Option<&'a crate::exec::Pool> {
        match self.exec {
            Exec::Pool(pool) => Some(pool),
            Exec::Tx(_) => None,
        }
    }

    /// Crate-private: runs a sea-query write on this access's connection (provisioning's global
    /// rows); returns the rows affected.
    pub(crate) async fn execute_statement<S: StatementBuilder>(&self, stmt: &S) -> Result<u64> {
        let conn = self.exec.open(None).await?;
        conn.execute(stmt)
            .await
            .map(|r| r.rows_affected())
            .map_err(Error::from_db)
    }

    /// Crate-private: runs a sea-query read on this access's connection.
    pub(crate) async fn query_statement(&self, stmt: &SelectStatement) -> Result<Vec<QueryResult>> {
        let conn = self.exec.open(None).await?;
        conn.query_all(stmt).await.map_err(Error::from_db)
    }

    /// A context for acting inside one tenant from a job (for example provisioning its first user).
    /// Its actor is [`Actor::System`], carrying the reason.
    pub fn context_for(&self, tenant: TenantId) -> TenantContext {
        TenantContext::new(
            tenant,
            Actor::System {
                reason: self.reason.clone(),
            },
            Default::default(),
            Uuid::now_v7().to_string(),
        )
        .granted_by_system_access()
    }
}
