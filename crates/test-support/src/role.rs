//! Per-test PostgreSQL roles.

use crate::TestDb;
use crate::conn::{connect_admin, exec};
use crate::env::{Backend, with_user};
use crate::names::new_database_name;

/// A PostgreSQL role made for one test, `ts_test_<uuidv7>`: roles belong to the whole server, so a test that
/// changes a role's attributes or memberships makes its own instead of touching [`APP_ROLE`](crate::APP_ROLE), which every other
/// test uses at the same time. [`TestRole::drop_role`] removes it (after `DROP OWNED` in the test database);
/// the harness's sweep drops leftovers of killed runs.
#[derive(Debug, Clone)]
pub struct TestRole {
    name: String,
    url: String,
}

impl TestRole {
    /// Creates a `LOGIN` role with `attributes` (e.g. `"NOSUPERUSER BYPASSRLS"`) in `t`'s server, and grants it
    /// what the reference migration grants [`APP_ROLE`](crate::APP_ROLE) in `t`'s database (by making it a member of no role:
    /// the privileges are granted directly, so `pg_has_role` tests stay about the role alone).
    pub async fn create(t: &TestDb, attributes: &str) -> TestRole {
        assert_eq!(
            t.backend(),
            Backend::Postgres,
            "roles are a PostgreSQL test tool"
        );
        let name = new_database_name();
        let sql = format!(
            r#"CREATE ROLE "{name}" LOGIN {attributes};
               GRANT USAGE ON SCHEMA public TO "{name}";
               GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{name}";"#
        );
        exec(t.raw(), &sql)
            .await
            .unwrap_or_else(|e| panic!("tenant-scope tests: creating role {name}: {e}"));
        let url = with_user(t.url(), &name);
        TestRole { name, url }
    }

    /// The role's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The test database's URL, as this role.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops what the role owns and is granted in `t`'s database, then the role. Pools connected as the role
    /// must be closed first, and tables the role owns should be handed back first if other tables reference
    /// them (`DROP OWNED` would fail on the dependency). Panics if the role cannot be dropped, so a test
    /// cannot leave roles behind unnoticed.
    pub async fn drop_role(self, t: &TestDb) {
        let name = &self.name;
        let owned = exec(t.raw(), &format!(r#"DROP OWNED BY "{name}""#)).await;
        let server = t.server_url().unwrap_or(t.url()).to_owned();
        let dropped = match connect_admin(&server).await {
            Ok(admin) => {
                let dropped = exec(&admin, &format!(r#"DROP ROLE IF EXISTS "{name}""#)).await;
                let _ = admin.close().await;
                dropped
            }
            Err(e) => Err(e),
        };
        if let Err(e) = owned.and(dropped) {
            panic!("tenant-scope tests: could not drop the test role {name}: {e}");
        }
    }
}
