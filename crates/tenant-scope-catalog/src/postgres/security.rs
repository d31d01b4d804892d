//! Reading [`Security`] from `pg_catalog`: the role, the tenant tables, their policies, the views over
//! them and what the role owns; one query each (and one for `current_user` with [`Role::Current`]).

use sea_orm::{ConnectionTrait, DbErr, Value};

use crate::CatalogError;
use crate::contract::TENANT_COLUMN;
use crate::sql::{get, query, split_list};

/// The role the rules judge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// No role: only the rules about tables and views (`tenant-scope check` without
    /// `--app-role`).
    #[default]
    None,
    /// The role the connection is logged in as (`current_user`): the self-check.
    Current,
    /// A role by name (`tenant-scope check --app-role NAME`).
    Named(String),
}

/// What row level security depends on, for one role: the role, every tenant-owned table, every view
/// over them. Read with [`Security::read`]; judged by [`Security::findings`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Security {
    /// The role judged; `None` for [`Role::None`].
    pub role: Option<RoleInfo>,
    /// Every table with a `tenant_id` column, in every schema but the system ones, by name.
    pub tables: Vec<TableSecurity>,
    /// Every view and materialized view that reads a tenant-owned table, directly or through
    /// other views, by name.
    pub views: Vec<ViewSecurity>,
    /// The tables, views and materialized views, in every schema but the system ones, that the
    /// role owns or is a member of the owner of (empty without a role, and for a superuser, who
    /// may act as every owner).
    pub owned: Vec<String>,
}

/// The role judged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoleInfo {
    /// Its name.
    pub name: String,
    /// `rolsuper`.
    pub superuser: bool,
    /// `rolbypassrls`.
    pub bypass_rls: bool,
    /// The superuser roles it is a member of, and may `SET ROLE` to.
    pub superuser_roles: Vec<String>,
    /// The `BYPASSRLS` roles it is a member of, and may `SET ROLE` to.
    pub bypass_rls_roles: Vec<String>,
}

/// A tenant-owned table, as row level security sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableSecurity {
    /// Its name (`regclass`: schema-qualified when not on the `search_path`).
    pub name: String,
    /// Its owner.
    pub owner: String,
    /// `ENABLE ROW LEVEL SECURITY`.
    pub rls_enabled: bool,
    /// `FORCE ROW LEVEL SECURITY`.
    pub rls_forced: bool,
    /// Its policies, by name.
    pub policies: Vec<Policy>,
    /// Whether the role is its owner or a member of the owner.
    pub role_owns: bool,
    /// Which of `TRUNCATE`, `REFERENCES` (also on some columns only) and `TRIGGER` the role holds.
    pub role_privileges: Vec<String>,
}

/// A row level security policy.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// Its name.
    pub name: String,
    /// The command it is for.
    pub command: PolicyCommand,
    /// Permissive (ORed with the others) rather than restrictive (ANDed).
    pub permissive: bool,
    /// Whether it is `TO PUBLIC`.
    pub public: bool,
    /// The roles it is `TO`, besides `PUBLIC`.
    pub roles: Vec<String>,
    /// Whether it applies to the role judged (`TO PUBLIC`, or to a role it is a member of).
    pub applies_to_role: bool,
    /// Its `USING` expression as PostgreSQL prints it (`pg_get_expr`). It can hold literals, so
    /// it is compared, never shown.
    pub using: Option<String>,
    /// Its `WITH CHECK` expression, likewise.
    pub with_check: Option<String>,
}

/// The command of a [`Policy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyCommand {
    /// `FOR ALL`.
    All,
    /// `FOR SELECT`.
    Select,
    /// `FOR INSERT`.
    Insert,
    /// `FOR UPDATE`.
    Update,
    /// `FOR DELETE`.
    Delete,
}

impl PolicyCommand {
    fn from_code(code: &str) -> Self {
        match code {
            "r" => PolicyCommand::Select,
            "a" => PolicyCommand::Insert,
            "w" => PolicyCommand::Update,
            "d" => PolicyCommand::Delete,
            _ => PolicyCommand::All,
        }
    }

    /// `ALL`, `SELECT`, ...
    pub fn sql(self) -> &'static str {
        match self {
            PolicyCommand::All => "ALL",
            PolicyCommand::Select => "SELECT",
            PolicyCommand::Insert => "INSERT",
            PolicyCommand::Update => "UPDATE",
            PolicyCommand::Delete => "DELETE",
        }
    }

    /// Whether it admits writes (`ALL`, `INSERT`, `UPDATE`), so that `WITH CHECK` applies.
    pub fn writes(self) -> bool {
        matches!(
            self,
            PolicyCommand::All | PolicyCommand::Insert | PolicyCommand::Update
        )
    }
}

/// A view or materialized view over tenant-owned tables.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ViewSecurity {
    /// Its name (`regclass`).
    pub name: String,
    /// A materialized view (its rows are stored; `security_invoker` does not exist for it).
    pub materialized: bool,
    /// `WITH (security_invoker = true)`, however the value is spelled (`on`, `1`, `yes`, ...).
    pub security_invoker: bool,
    /// The tenant-owned tables it reads, directly or through other views, by name.
    pub reads: Vec<String>,
    /// Whether the role may use it (`SELECT`, `INSERT`, `UPDATE` on some column, or `DELETE`).
    pub role_can_use: bool,
}

/// The tables with a live `tenant_id` column outside the system schemas: a subquery of the others.
fn tenant_tables() -> String {
    format!(
        "SELECT c.oid FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg\\_%' \
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a \
                       WHERE a.attrelid = c.oid AND a.attname = '{TENANT_COLUMN}' \
                         AND a.attnum > 0 AND NOT a.attisdropped)"
    )
}

impl Security {
    /// Reads what row level security depends on, judged for `role`, on a PostgreSQL connection.
    ///
    /// # Errors
    ///
    /// [`CatalogError::UnknownRole`] for a [`Role::Named`] that does not exist; the database's
    /// error otherwise.
    pub async fn read<C: ConnectionTrait>(conn: &C, role: &Role) -> Result<Self, CatalogError> {
        let name = match role {
            Role::None => None,
            Role::Current => Some(current_user(conn).await?),
            Role::Named(name) => Some(name.clone()),
        };
        let role = match &name {
            Some(name) => Some(
                role_info(conn, name)
                    .await?
                    .ok_or_else(|| CatalogError::UnknownRole(name.clone()))?,
            ),
            None => None,
        };
        // Every query takes the role as $1; without one, its checks are false.
        let param: Vec<Value> = name.iter().map(|n| n.clone().into()).collect();
        let by_role = |check: &str| {
            if name.is_some() {
                check.replace("ROLE", "$1::name")
            } else {
                "false".to_owned()
            }
        };
        let tenant_tables = tenant_tables();

        let mut tables = Vec::new();
        let sql = format!(
            "SELECT c.oid::regclass::text, pg_get_userbyid(c.relowner)::text, \
               c.relrowsecurity, c.relforcerowsecurity, {owns}, {truncate}, {references}, {trigger} \
             FROM pg_catalog.pg_class c WHERE c.oid IN ({tenant_tables}) ORDER BY 1",
            owns = by_role("pg_has_role(ROLE, c.relowner, 'MEMBER')"),
            truncate = by_role("has_table_privilege(ROLE, c.oid, 'TRUNCATE')"),
            references = by_role("has_any_column_privilege(ROLE, c.oid, 'REFERENCES')"),
            trigger = by_role("has_table_privilege(ROLE, c.oid, 'TRIGGER')"),
        );
        for row in query(conn, &sql, param.clone()).await? {
            let mut privileges = Vec::new();
            for (index, privilege) in [(5, "TRUNCATE"), (6, "REFERENCES"), (7, "TRIGGER")] {
                if get::<bool>(&row, index)? {
                    privileges.push(privilege.to_owned());
                }
            }
            tables.push(TableSecurity {
                name: get(&row, 0)?,
                owner: get(&row, 1)?,
                rls_enabled: get(&row, 2)?,
                rls_forced: get(&row, 3)?,
                policies: Vec::new(),
                role_owns: get(&row, 4)?,
                role_privileges: privileges,
            });
        }

        let sql = format!(
            "SELECT p.polrelid::regclass::text, p.polname::text, p.polcmd::text, p.polpermissive, \
               0 = ANY (p.polroles), \
               (SELECT string_agg(pg_get_userbyid(r.oid)::text, chr(31) ORDER BY pg_get_userbyid(r.oid)::text) \
                  FROM unnest(p.polroles) AS r(oid) WHERE r.oid <> 0), \
               {applies}, \
               pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) \
             FROM pg_catalog.pg_policy p WHERE p.polrelid IN ({tenant_tables}) ORDER BY 1, 2",
            applies = by_role(
                "(0 = ANY (p.polroles) OR EXISTS (SELECT 1 FROM unnest(p.polroles) AS r(oid) \
                  WHERE r.oid <> 0 AND pg_has_role(ROLE, r.oid, 'MEMBER')))"
            ),
        );
        for row in query(conn, &sql, param.clone()).await? {
            let table: String = get(&row, 0)?;
            let command: String = get(&row, 2)?;
            let policy = Policy {
                name: get(&row, 1)?,
                command: PolicyCommand::from_code(&command),
                permissive: get(&row, 3)?,
                public: get(&row, 4)?,
                roles: split_list(get(&row, 5)?),
                applies_to_role: get(&row, 6)?,
                using: get(&row, 7)?,
                with_check: get(&row, 8)?,
            };
            if let Some(table) = tables.iter_mut().find(|t| t.name == table) {
                table.policies.push(policy);
            }
        }

        // Every relation whose rewrite rule (a view's query) reads a tenant table, or a view that
        // does, transitively, with the tenant tables at the bottom. PostgreSQL stores the
        // security_invoker option as written (`t`, `on`, `1`, `yes`, ...), so its value is read
        // with the boolean input function, which accepts all of them.
        let sql = format!(
            "WITH RECURSIVE over_tenant(oid, base) AS ( \
                 SELECT c.oid, c.oid FROM pg_catalog.pg_class c WHERE c.oid IN ({tenant_tables}) \
                 UNION \
                 SELECT r.ev_class, o.base \
                 FROM pg_catalog.pg_depend d \
                 JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid \
                 JOIN over_tenant o ON o.oid = d.refobjid \
                 WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass \
                   AND d.refclassid = 'pg_catalog.pg_class'::regclass \
                   AND r.ev_class <> d.refobjid \
             ) \
             SELECT v.oid::regclass::text, v.relkind = 'm', \
               EXISTS (SELECT 1 FROM unnest(v.reloptions) AS o(opt) \
                       WHERE CASE WHEN o.opt LIKE 'security\\_invoker=%' \
                                  THEN substr(o.opt, length('security_invoker=') + 1)::boolean \
                                  ELSE false END), \
               {usable}, \
               string_agg(DISTINCT o.base::regclass::text, chr(31)) \
             FROM pg_catalog.pg_class v JOIN over_tenant o ON o.oid = v.oid \
             WHERE v.relkind IN ('v', 'm') \
             GROUP BY v.oid, v.relkind, v.reloptions \
             ORDER BY 1",
            usable = by_role(
                "(has_any_column_privilege(ROLE, v.oid, 'SELECT, INSERT, UPDATE') \
                  OR has_table_privilege(ROLE, v.oid, 'DELETE'))"
            ),
        );
        let mut views = Vec::new();
        for row in query(conn, &sql, param.clone()).await? {
            let mut reads = split_list(get(&row, 4)?);
            reads.sort();
            views.push(ViewSecurity {
                name: get(&row, 0)?,
                materialized: get(&row, 1)?,
                security_invoker: get(&row, 2)?,
                role_can_use: get(&row, 3)?,
                reads,
            });
        }

        let mut owned = Vec::new();
        if role.as_ref().is_some_and(|r| !r.superuser) {
            for row in query(
                conn,
                "SELECT c.oid::regclass::text FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm') \
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg\\_%' \
                   AND pg_has_role($1::name, c.relowner, 'MEMBER') \
                 ORDER BY 1",
                param,
            )
            .await?
            {
                owned.push(get(&row, 0)?);
            }
        }
        Ok(Security {
            role,
            tables,
            views,
            owned,
        })
    }
}

impl RoleInfo {
    /// The role the connection is logged in as (`current_user`).
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn current<C: ConnectionTrait>(conn: &C) -> Result<Self, CatalogError> {
        let name = current_user(conn).await?;
        role_info(conn, &name)
            .await?
            .ok_or(CatalogError::UnknownRole(name))
    }
}

async fn current_user<C: ConnectionTrait>(conn: &C) -> Result<String, CatalogError> {
    let rows = query(conn, "SELECT current_user::text", vec![]).await?;
    let row = rows
        .first()
        .ok_or_else(|| CatalogError::Db(DbErr::Custom("current_user returned no row".into())))?;
    Ok(get(row, 0)?)
}

/// The role `name`'s attributes and the superuser and `BYPASSRLS` roles it may `SET ROLE` to;
/// `None` if there is no such role.
async fn role_info<C: ConnectionTrait>(conn: &C, name: &str) -> Result<Option<RoleInfo>, DbErr> {
    let rows = query(
        conn,
        "SELECT r.rolname::text, r.rolsuper, r.rolbypassrls, \
           (SELECT string_agg(o.rolname::text, chr(31) ORDER BY o.rolname) FROM pg_catalog.pg_roles o \
            WHERE o.rolsuper AND o.oid <> r.oid AND pg_has_role(r.oid, o.oid, 'MEMBER')), \
           (SELECT string_agg(o.rolname::text, chr(31) ORDER BY o.rolname) FROM pg_catalog.pg_roles o \
            WHERE o.rolbypassrls AND o.oid <> r.oid AND pg_has_role(r.oid, o.oid, 'MEMBER')) \
         FROM pg_catalog.pg_roles r WHERE r.rolname = $1",
        vec![name.into()],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(RoleInfo {
        name: get(row, 0)?,
        superuser: get(row, 1)?,
        bypass_rls: get(row, 2)?,
        superuser_roles: split_list(get(row, 3)?),
        bypass_rls_roles: split_list(get(row, 4)?),
    }))
}
