//! [`TenantTable`], the builder of tenant-owned tables, and [`OnDelete`].

use sea_orm::DbErr;
use sea_orm::sea_query::{
    ColumnDef, ForeignKey, ForeignKeyAction, Index, IndexCreateStatement, IntoColumnDef, IntoIden,
    Table, TableCreateStatement,
};
use sea_orm_migration::SchemaManager;

use crate::index::{columns_after_tenant, tenant_led_index};
use crate::{ID_COLUMN, TENANT_COLUMN, TENANTS_TABLE, foreign_key_name, unique_name};

/// What happens to the rows of a tenant-owned table when the row they reference is deleted.
///
/// There is deliberately no `SetNull`: on a composite foreign key `(tenant_id, x_id)`, `SET NULL`
/// nulls every column of the key, `tenant_id` included, which would leave a row that belongs to no
/// tenant (or make the delete fail on `tenant_id NOT NULL`). PostgreSQL 15 can limit it to one
/// column (`ON DELETE SET NULL (x_id)`), SQLite and MySQL cannot. To detach children on delete,
/// make the column nullable and set it to `NULL` in the same transaction, before the delete.
///
/// Updates are always `ON UPDATE RESTRICT`: `tenant_id` and `id` never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnDelete {
    /// `ON DELETE RESTRICT`: deleting a row that is still referenced fails. The referencing rows
    /// are always in the same tenant, so the error reveals nothing about another tenant.
    Restrict,
    /// `ON DELETE CASCADE`: deleting a row deletes the rows that reference it. With composite keys
    /// those rows are always in the same tenant, so a cascade never crosses tenants.
    Cascade,
}

impl OnDelete {
    fn action(self) -> ForeignKeyAction {
        match self {
            OnDelete::Restrict => ForeignKeyAction::Restrict,
            OnDelete::Cascade => ForeignKeyAction::Cascade,
        }
    }
}

/// Whether a reference goes to another tenant-owned table or to a global one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// `(tenant_id, column) -> parent (tenant_id, id)`.
    Tenant,
    /// `(column) -> parent (id)`.
    Global,
}

/// One foreign key declared on a [`TenantTable`].
#[derive(Clone, Debug)]
struct Reference {
    column: String,
    parent: String,
    on_delete: OnDelete,
    target: Target,
}

/// A tenant-owned table under construction: the only way the schema conventions (see the
/// [module documentation](super)) let one be created.
///
/// `TenantTable::new("tasks")` starts with the columns `tenant_id` and `id` (`uuid NOT NULL`), the
/// primary key `(tenant_id, id)` and the foreign key `fk_tasks_tenant_id` to `tenants (id)`
/// (`ON DELETE RESTRICT ON UPDATE RESTRICT`). Add the other columns with [`col`](Self::col),
/// references with [`references`](Self::references) and
/// [`references_global`](Self::references_global), keys with [`unique`](Self::unique) and
/// [`index`](Self::index); every one of them is made tenant-led. Then either run everything with
/// [`create`](Self::create) in a migration, or take the statements with [`build`](Self::build)
/// (the `CREATE TABLE`, with the primary key, the foreign keys and the unique constraints) and
/// [`index_statements`](Self::index_statements) (the `CREATE INDEX` statements, which PostgreSQL
/// does not accept inside `CREATE TABLE`).
///
/// ```
/// use sea_orm::sea_query::{ColumnDef, MysqlQueryBuilder, SqliteQueryBuilder};
/// use tenant_scope_schema::{OnDelete, TenantTable};
///
/// let tasks = TenantTable::new("tasks")
///     .col(ColumnDef::new("project_id").uuid().not_null())
///     .col(ColumnDef::new("assignee_id").uuid().null())
///     .col(ColumnDef::new("title").string().not_null())
///     .references("project_id", "projects", OnDelete::Cascade)
///     .references("assignee_id", "users", OnDelete::Restrict);
///
/// assert_eq!(
///     tasks.build()?.to_string(SqliteQueryBuilder),
///     [
///         r#"CREATE TABLE "tasks" ("#,
///         r#""tenant_id" uuid_text NOT NULL,"#,
///         r#""id" uuid_text NOT NULL,"#,
///         r#""project_id" uuid_text NOT NULL,"#,
///         r#""assignee_id" uuid_text NULL,"#,
///         r#""title" varchar NOT NULL,"#,
///         r#"PRIMARY KEY ("tenant_id", "id"),"#,
///         r#"FOREIGN KEY ("tenant_id") REFERENCES "tenants" ("id")"#,
///         r#"ON DELETE RESTRICT ON UPDATE RESTRICT,"#,
///         r#"FOREIGN KEY ("tenant_id", "project_id") REFERENCES "projects" ("tenant_id", "id")"#,
///         r#"ON DELETE CASCADE ON UPDATE RESTRICT,"#,
///         r#"FOREIGN KEY ("tenant_id", "assignee_id") REFERENCES "users" ("tenant_id", "id")"#,
///         r#"ON DELETE RESTRICT ON UPDATE RESTRICT"#,
///         r#")"#,
///     ]
///     .join(" ")
/// );
///
/// // Each composite foreign key gets a tenant-led index (no unique key covers them here).
/// let indexes: Vec<String> = tasks
///     .index_statements()
///     .iter()
///     .map(|ix| ix.to_string(MysqlQueryBuilder))
///     .collect();
/// assert_eq!(
///     indexes,
///     [
///         "CREATE INDEX `ix_tasks_project_id` ON `tasks` (`tenant_id`, `project_id`)",
///         "CREATE INDEX `ix_tasks_assignee_id` ON `tasks` (`tenant_id`, `assignee_id`)",
///     ]
/// );
/// # Ok::<(), sea_orm::DbErr>(())
/// ```
///
/// [`build`](Self::build) refuses what would break the conventions: declaring `tenant_id` or `id`
/// yourself, a column-level `UNIQUE` or `PRIMARY KEY` (not tenant-led), a reference or key on a
/// column that was not declared.
///
/// ```
/// use sea_orm::sea_query::ColumnDef;
/// use tenant_scope_schema::TenantTable;
///
/// let users = TenantTable::new("users").col(ColumnDef::new("email").string().not_null().unique_key());
/// assert!(users.build().is_err()); // write `.unique(["email"])` instead
/// ```
#[derive(Clone, Debug)]
#[must_use = "a TenantTable does nothing until it is built or created"]
pub struct TenantTable {
    table: String,
    columns: Vec<ColumnDef>,
    references: Vec<Reference>,
    uniques: Vec<Vec<String>>,
    indexes: Vec<Vec<String>>,
}

impl TenantTable {
    /// A tenant-owned table named `table`, with `tenant_id`, `id`, the primary key
    /// `(tenant_id, id)` and the foreign key to `tenants`.
    pub fn new(table: impl IntoIden) -> Self {
        Self {
            table: table.into_iden().to_string(),
            columns: Vec::new(),
            references: Vec::new(),
            uniques: Vec::new(),
            indexes: Vec::new(),
        }
    }

    /// The table name.
    pub fn name(&self) -> &str {
        &self.table
    }

    /// Adds a column after `tenant_id` and `id`.
    ///
    /// Use `uuid()` for ids (`binary(16)` on MySQL) and `timestamp_with_time_zone()` for
    /// timestamps. Do not declare `tenant_id` or `id`, and do not mark a column `unique_key()` or
    /// `primary_key()`: [`build`](Self::build) refuses it. Use [`unique`](Self::unique) instead.
    pub fn col(mut self, column: impl IntoColumnDef) -> Self {
        self.columns.push(column.into_column_def());
        self
    }

    /// Adds the composite foreign key `fk_<table>_<column>`:
    /// `(tenant_id, column) REFERENCES parent (tenant_id, id) ON DELETE <on_delete> ON UPDATE RESTRICT`.
    ///
    /// `parent` must be a tenant-owned table. Because the child's `tenant_id` is part of the key,
    /// the database rejects a reference to a row of another tenant exactly as it rejects a
    /// reference to a row that does not exist. If `column` is nullable, a `NULL` references nothing
    /// (`MATCH SIMPLE`, the default on every backend).
    ///
    /// Unless a unique key or an index of this table already starts with `(tenant_id, column)`,
    /// [`index_statements`](Self::index_statements) adds the index `ix_<table>_<column>`.
    pub fn references(
        mut self,
        column: impl IntoIden,
        parent: impl IntoIden,
        on_delete: OnDelete,
    ) -> Self {
        self.references.push(Reference {
            column: column.into_iden().to_string(),
            parent: parent.into_iden().to_string(),
            on_delete,
            target: Target::Tenant,
        });
        self
    }

    /// Adds the single-column foreign key `fk_<table>_<column>`:
    /// `(column) REFERENCES parent (id) ON DELETE <on_delete> ON UPDATE RESTRICT`.
    ///
    /// Only for a `parent` that is global (not tenant-owned, like `permissions`): a reference to a
    /// tenant-owned table must be composite ([`references`](Self::references)). No index is added
    /// for it (it could not lead with `tenant_id` and still serve the foreign key); MySQL creates
    /// one on `(column)` by itself, named after the foreign key.
    pub fn references_global(
        mut self,
        column: impl IntoIden,
        parent: impl IntoIden,
        on_delete: OnDelete,
    ) -> Self {
        self.references.push(Reference {
            column: column.into_iden().to_string(),
            parent: parent.into_iden().to_string(),
            on_delete,
            target: Target::Global,
        });
        self
    }

    /// Adds the unique constraint `uq_<table>_<columns>` on `(tenant_id, columns..)`.
    ///
    /// `tenant_id` is prepended (listing it is allowed and ignored), so the values are unique per
    /// tenant and a violation can only be caused by a row of the same tenant. The constraint is part
    /// of `CREATE TABLE` on every backend.
    pub fn unique<I>(mut self, columns: I) -> Self
    where
        I: IntoIterator,
        I::Item: IntoIden,
    {
        let columns = columns_after_tenant(columns);
        if !self.uniques.contains(&columns) {
            self.uniques.push(columns);
        }
        self
    }

    /// Adds the index `ix_<table>_<columns>` on `(tenant_id, columns..)`.
    ///
    /// `tenant_id` is prepended (listing it is allowed and ignored). Indexes are separate
    /// `CREATE INDEX` statements, see [`index_statements`](Self::index_statements).
    pub fn index<I>(mut self, columns: I) -> Self
    where
        I: IntoIterator,
        I::Item: IntoIden,
    {
        let columns = columns_after_tenant(columns);
        if !self.indexes.contains(&columns) {
            self.indexes.push(columns);
        }
        self
    }

    /// The `CREATE TABLE` statement: the columns, the primary key `(tenant_id, id)`, the unique
    /// constraints and all foreign keys.
    ///
    /// # Errors
    ///
    /// [`DbErr::Migration`] if the table would break a convention: `tenant_id` or `id` declared
    /// with [`col`](Self::col), a column-level `UNIQUE` or `PRIMARY KEY`, a reference, unique key
    /// or index on an undeclared column, or two references on one column.
    pub fn build(&self) -> Result<TableCreateStatement, DbErr> {
        self.check()?;

        let mut stmt = Table::create();
        stmt.table(self.table.clone())
            .col(ColumnDef::new(TENANT_COLUMN).uuid().not_null())
            .col(ColumnDef::new(ID_COLUMN).uuid().not_null());
        for column in &self.columns {
            stmt.col(column.clone());
        }
        stmt.primary_key(Index::create().col(TENANT_COLUMN).col(ID_COLUMN));

        for columns in &self.uniques {
            let mut unique = Index::create();
            unique
                .name(unique_name(&self.table, columns))
                .unique()
                .col(TENANT_COLUMN);
            for column in columns {
                unique.col(column.clone());
            }
            stmt.index(&mut unique);
        }

        stmt.foreign_key(
            ForeignKey::create()
                .name(foreign_key_name(&self.table, TENANT_COLUMN))
                .from_tbl(self.table.clone())
                .from_col(TENANT_COLUMN)
                .to_tbl(TENANTS_TABLE)
                .to_col(ID_COLUMN)
                .on_delete(ForeignKeyAction::Restrict)
                .on_update(ForeignKeyAction::Restrict),
        );
        for reference in &self.references {
            let mut fk = ForeignKey::create();
            fk.name(foreign_key_name(&self.table, &reference.column))
                .from_tbl(self.table.clone())
                .to_tbl(reference.parent.clone());
            if reference.target == Target::Tenant {
                fk.from_col(TENANT_COLUMN).to_col(TENANT_COLUMN);
            }
            fk.from_col(reference.column.clone())
                .to_col(ID_COLUMN)
                .on_delete(reference.on_delete.action())
                .on_update(ForeignKeyAction::Restrict);
            stmt.foreign_key(&mut fk);
        }

        Ok(stmt.to_owned())
    }

    /// The `CREATE INDEX` statements of this table: the indexes added with
    /// [`index`](Self::index), then one `ix_<table>_<column>` per composite foreign key that no
    /// unique key or index already serves (one that starts with `(tenant_id, column)`).
    ///
    /// PostgreSQL and SQLite do not index a foreign key by themselves, and the check that runs when
    /// a parent row is deleted (restrict or cascade) needs one. Run them after
    /// [`build`](Self::build)'s statement; [`create`](Self::create) does both.
    pub fn index_statements(&self) -> Vec<IndexCreateStatement> {
        let mut lists: Vec<&[String]> = self.indexes.iter().map(Vec::as_slice).collect();
        for reference in &self.references {
            if reference.target != Target::Tenant {
                continue;
            }
            let served = self
                .uniques
                .iter()
                .chain(&self.indexes)
                .any(|key| key.first() == Some(&reference.column));
            let already = lists
                .iter()
                .any(|list| list.len() == 1 && list[0] == reference.column);
            if !served && !already {
                lists.push(std::slice::from_ref(&reference.column));
            }
        }
        lists
            .into_iter()
            .map(|columns| tenant_led_index(&self.table, columns, false))
            .collect()
    }

    /// Creates the table and its indexes: [`build`](Self::build), then every statement of
    /// [`index_statements`](Self::index_statements).
    ///
    /// # Errors
    ///
    /// The error of [`build`](Self::build), or the database's.
    pub async fn create(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        manager.create_table(self.build()?).await?;
        for index in self.index_statements() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    /// Refuses a table that would break the conventions.
    fn check(&self) -> Result<(), DbErr> {
        let fail = |what: String| {
            Err(DbErr::Migration(format!(
                "tenant table `{}`: {what}",
                self.table
            )))
        };
        let mut declared: Vec<String> = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            let name = column.get_column_name();
            let spec = column.get_column_spec();
            if name == TENANT_COLUMN || name == ID_COLUMN {
                return fail(format!(
                    "`{name}` is added by TenantTable and must not be declared"
                ));
            }
            if spec.primary_key {
                return fail(format!(
                    "`{name}` cannot be a primary key column: the primary key is ({TENANT_COLUMN}, {ID_COLUMN})"
                ));
            }
            if spec.unique {
                return fail(format!(
                    "a column-level UNIQUE on `{name}` would not lead with {TENANT_COLUMN}; use .unique([\"{name}\"])"
                ));
            }
            declared.push(name);
        }

        let mut referenced: Vec<&str> = Vec::new();
        for reference in &self.references {
            if !declared.contains(&reference.column) {
                return fail(format!(
                    "references `{}`, which is not a declared column",
                    reference.column
                ));
            }
            if referenced.contains(&reference.column.as_str()) {
                return fail(format!("`{}` references twice", reference.column));
            }
            referenced.push(&reference.column);
        }

        for column in self.uniques.iter().chain(&self.indexes).flatten() {
            if column != ID_COLUMN && !declared.contains(column) {
                return fail(format!(
                    "a unique key or index names `{column}`, which is not a declared column"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{MysqlQueryBuilder, PostgresQueryBuilder, SqliteQueryBuilder};

    use super::*;

    fn user_roles() -> TenantTable {
        TenantTable::new("user_roles")
            .col(ColumnDef::new("user_id").uuid().not_null())
            .col(ColumnDef::new("role_id").uuid().not_null())
            .references("user_id", "users", OnDelete::Cascade)
            .references("role_id", "roles", OnDelete::Cascade)
            .unique(["user_id", "role_id"])
    }

    #[test]
    fn mysql_create_table() -> Result<(), DbErr> {
        assert_eq!(
            user_roles().build()?.to_string(MysqlQueryBuilder),
            [
                "CREATE TABLE `user_roles` (",
                "`tenant_id` binary(16) NOT NULL,",
                "`id` binary(16) NOT NULL,",
                "`user_id` binary(16) NOT NULL,",
                "`role_id` binary(16) NOT NULL,",
                "PRIMARY KEY (`tenant_id`, `id`),",
                "UNIQUE KEY `uq_user_roles_user_id_role_id` (`tenant_id`, `user_id`, `role_id`),",
                "CONSTRAINT `fk_user_roles_tenant_id` FOREIGN KEY (`tenant_id`) REFERENCES `tenants` (`id`)",
                "ON DELETE RESTRICT ON UPDATE RESTRICT,",
                "CONSTRAINT `fk_user_roles_user_id` FOREIGN KEY (`tenant_id`, `user_id`)",
                "REFERENCES `users` (`tenant_id`, `id`) ON DELETE CASCADE ON UPDATE RESTRICT,",
                "CONSTRAINT `fk_user_roles_role_id` FOREIGN KEY (`tenant_id`, `role_id`)",
                "REFERENCES `roles` (`tenant_id`, `id`) ON DELETE CASCADE ON UPDATE RESTRICT",
                ")",
            ]
            .join(" ")
        );
        Ok(())
    }

    #[test]
    fn only_uncovered_references_get_an_index() {
        let indexes: Vec<String> = user_roles()
            .index_statements()
            .iter()
            .map(|ix| ix.to_string(PostgresQueryBuilder))
            .collect();
        assert_eq!(
            indexes,
            [r#"CREATE INDEX "ix_user_roles_role_id" ON "user_roles" ("tenant_id", "role_id")"#]
        );
    }

    #[test]
    fn explicit_index_serves_a_reference() {
        let table = TenantTable::new("comments")
            .col(ColumnDef::new("task_id").uuid().not_null())
            .col(
                ColumnDef::new("created_at")
                    .timestamp_with_time_zone()
                    .not_null(),
            )
            .references("task_id", "tasks", OnDelete::Cascade)
            .index(["task_id", "created_at"])
            .index(["tenant_id", "task_id", "created_at"]);
        let indexes: Vec<String> = table
            .index_statements()
            .iter()
            .map(|ix| ix.to_string(SqliteQueryBuilder))
            .collect();
        assert_eq!(
            indexes,
            [
                r#"CREATE INDEX "ix_comments_task_id_created_at" ON "comments" ("tenant_id", "task_id", "created_at")"#
            ]
        );
    }

    #[test]
    fn global_reference_is_single_column() -> Result<(), DbErr> {
        let sql = TenantTable::new("role_permissions")
            .col(ColumnDef::new("permission_id").uuid().not_null())
            .references_global("permission_id", "permissions", OnDelete::Restrict)
            .build()?
            .to_string(PostgresQueryBuilder);
        assert!(sql.contains(
            r#"CONSTRAINT "fk_role_permissions_permission_id" FOREIGN KEY ("permission_id") REFERENCES "permissions" ("id") ON DELETE RESTRICT ON UPDATE RESTRICT"#
        ));
        Ok(())
    }

    #[test]
    fn conventions_are_enforced() {
        let declared_tenant = TenantTable::new("t").col(ColumnDef::new("tenant_id").uuid());
        assert!(declared_tenant.build().is_err());
        let declared_id = TenantTable::new("t").col(ColumnDef::new("id").uuid());
        assert!(declared_id.build().is_err());
        let column_pk = TenantTable::new("t").col(ColumnDef::new("x").uuid().primary_key());
        assert!(column_pk.build().is_err());
        let column_unique = TenantTable::new("t").col(ColumnDef::new("x").string().unique_key());
        assert!(column_unique.build().is_err());
        let undeclared_ref = TenantTable::new("t").references("x_id", "x", OnDelete::Restrict);
        assert!(undeclared_ref.build().is_err());
        let undeclared_unique = TenantTable::new("t").unique(["name"]);
        assert!(undeclared_unique.build().is_err());
        let twice = TenantTable::new("t")
            .col(ColumnDef::new("x_id").uuid())
            .references("x_id", "x", OnDelete::Restrict)
            .references("x_id", "y", OnDelete::Restrict);
        assert!(twice.build().is_err());
    }

    #[test]
    fn error_names_the_table_and_the_fix() {
        let err = TenantTable::new("users")
            .col(ColumnDef::new("email").string().unique_key())
            .build()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("tenant table `users`"), "{err}");
        assert!(err.contains(r#".unique(["email"])"#), "{err}");
    }
}
