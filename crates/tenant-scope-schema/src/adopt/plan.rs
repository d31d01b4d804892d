//! The plan: the default tenant and the tables to adopt, with their references and legacy keys.

use crate::{ID_COLUMN, OnDelete, TENANT_COLUMN, TENANTS_TABLE};
use tenant_scope::TenantId;

use super::AdoptError;

/// How a single-tenant table set becomes tenant-owned: the default tenant that owns every existing
/// row, and the tables with their references and keys.
///
/// List parents before children (the order is used for messages and reports; the steps themselves
/// handle any order). Every parent named in a reference must be a table of the plan.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AdoptPlan {
    /// The global tenants table (`tenants`). It needs the columns `id`, `name` and `created_at`,
    /// like the reference schema's.
    pub tenants_table: String,
    /// The tenant that owns every existing row.
    pub default_tenant: TenantId,
    /// The name of the default tenant's row, if [`expand`](fn@super::expand) has to create it.
    pub default_tenant_name: String,
    /// The tables to adopt.
    pub tables: Vec<AdoptTable>,
}

impl AdoptPlan {
    /// A plan with no tables yet, for `default_tenant` (created by [`expand`](fn@super::expand) as
    /// `default_tenant_name` if it does not exist) in the table `tenants`.
    pub fn new(default_tenant: TenantId, default_tenant_name: impl Into<String>) -> Self {
        Self {
            tenants_table: TENANTS_TABLE.to_owned(),
            default_tenant,
            default_tenant_name: default_tenant_name.into(),
            tables: Vec::new(),
        }
    }

    /// Adds a table.
    #[must_use]
    pub fn table(mut self, table: AdoptTable) -> Self {
        self.tables.push(table);
        self
    }

    /// Uses another tenants table than `tenants`.
    #[must_use]
    pub fn tenants_table(mut self, table: impl Into<String>) -> Self {
        self.tenants_table = table.into();
        self
    }

    pub(super) fn find(&self, table: &str) -> Option<&AdoptTable> {
        self.tables.iter().find(|t| t.name == table)
    }

    /// Refuses identifiers that are not plain (`[A-Za-z0-9_]`, not starting with a digit), unknown
    /// parents and keys over `tenant_id` itself.
    pub(super) fn check(&self) -> Result<(), AdoptError> {
        let plain = |name: &str| {
            !name.is_empty()
                && name.len() <= 63
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let bad = |what: String| Err(AdoptError::Plan(what));
        if !plain(&self.tenants_table) {
            return bad(format!(
                "`{}` is not a plain identifier",
                self.tenants_table
            ));
        }
        if self.tables.is_empty() {
            return bad("the plan has no tables".to_owned());
        }
        for table in &self.tables {
            let mut names = vec![table.name.as_str(), table.id_column.as_str()];
            for r in &table.references {
                names.push(&r.column);
                names.push(&r.parent);
            }
            names.extend(
                table
                    .uniques
                    .iter()
                    .chain(&table.indexes)
                    .flatten()
                    .map(String::as_str),
            );
            if let Some(name) = names.into_iter().find(|n| !plain(n)) {
                return bad(format!(
                    "table `{}`: `{name}` is not a plain identifier",
                    table.name
                ));
            }
            if table.name == self.tenants_table {
                return bad(format!("`{}` is the tenants table", table.name));
            }
            if self.tables.iter().filter(|t| t.name == table.name).count() > 1 {
                return bad(format!("table `{}` is listed twice", table.name));
            }
            if table.id_column == TENANT_COLUMN {
                return bad(format!(
                    "table `{}`: the id column cannot be `{TENANT_COLUMN}`",
                    table.name
                ));
            }
            for r in &table.references {
                if self.find(&r.parent).is_none() {
                    return bad(format!(
                        "table `{}`: `{}` references `{}`, which is not in the plan",
                        table.name, r.column, r.parent
                    ));
                }
                if r.column == TENANT_COLUMN || r.column == table.id_column {
                    return bad(format!(
                        "table `{}`: cannot adopt a reference on `{}`",
                        table.name, r.column
                    ));
                }
            }
            for key in table.uniques.iter().chain(&table.indexes) {
                if key.is_empty() || key.iter().any(|c| c == TENANT_COLUMN) {
                    return bad(format!(
                        "table `{}`: list the legacy key's columns, without `{TENANT_COLUMN}`",
                        table.name
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One single-tenant table to adopt: its id column, the references it holds to other tables of
/// the plan, and its legacy unique keys and indexes (which become tenant-led).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdoptTable {
    /// The table name.
    pub name: String,
    /// The single-column primary key of the legacy table (`id`); it becomes `(tenant_id, id)`.
    pub id_column: String,
    /// The legacy single-column foreign keys to other tables of the plan; each becomes
    /// `(tenant_id, column) -> parent (tenant_id, parent id)`.
    pub references: Vec<AdoptReference>,
    /// The legacy unique keys (their columns, without `tenant_id`); each becomes
    /// `uq_<table>_<columns>` on `(tenant_id, columns..)`.
    pub uniques: Vec<Vec<String>>,
    /// The legacy plain indexes; each becomes `ix_<table>_<columns>` on `(tenant_id, columns..)`.
    pub indexes: Vec<Vec<String>>,
}

impl AdoptTable {
    /// A table with the id column `id` and no references or keys yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            id_column: ID_COLUMN.to_owned(),
            references: Vec::new(),
            uniques: Vec::new(),
            indexes: Vec::new(),
        }
    }

    /// Sets the id column (the legacy single-column primary key), if it is not `id`.
    #[must_use]
    pub fn id_column(mut self, column: impl Into<String>) -> Self {
        self.id_column = column.into();
        self
    }

    /// Declares the legacy foreign key `column -> parent (id)`; [`enforce`](fn@super::enforce) makes it
    /// `fk_<table>_<column>`: `(tenant_id, column) -> parent (tenant_id, id) ON DELETE <on_delete>
    /// ON UPDATE RESTRICT`.
    #[must_use]
    pub fn references(
        mut self,
        column: impl Into<String>,
        parent: impl Into<String>,
        on_delete: OnDelete,
    ) -> Self {
        self.references.push(AdoptReference {
            column: column.into(),
            parent: parent.into(),
            on_delete,
        });
        self
    }

    /// Declares a legacy unique key on `columns`; [`enforce`](fn@super::enforce) makes it tenant-led.
    #[must_use]
    pub fn unique<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.uniques
            .push(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Declares a legacy plain index on `columns`; [`enforce`](fn@super::enforce) makes it tenant-led.
    #[must_use]
    pub fn index<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.indexes
            .push(columns.into_iter().map(Into::into).collect());
        self
    }

    pub(super) fn tenant_led(columns: &[String]) -> Vec<String> {
        std::iter::once(TENANT_COLUMN.to_owned())
            .chain(columns.iter().cloned())
            .collect()
    }

    /// The references whose composite key is not served by a tenant-led unique key or index
    /// starting with `(tenant_id, column)`: [`enforce`] gives each an index `ix_<table>_<column>`.
    pub(super) fn references_needing_index(&self) -> impl Iterator<Item = &AdoptReference> {
        self.references.iter().filter(move |r| {
            !self
                .uniques
                .iter()
                .chain(&self.indexes)
                .any(|key| key.first() == Some(&r.column))
        })
    }
}

/// A legacy single-column foreign key of an [`AdoptTable`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdoptReference {
    /// The referencing column.
    pub column: String,
    /// The referenced table (a table of the plan); the key references its id column.
    pub parent: String,
    /// What deleting the parent does, before and after (`SET NULL` is not offered, see
    /// [`OnDelete`]).
    pub on_delete: OnDelete,
}
