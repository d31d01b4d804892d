//! Step 4: enforce, with `ALTER TABLE` on PostgreSQL and MySQL (SQLite rebuilds: `sqlite.rs`).

use sea_orm::sea_query::{Alias, ColumnDef, Table};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};
use tenant_scope_catalog::{ForeignKey, Key};

use super::sqlite::{Direction, sqlite_rebuild};
use super::{AdoptError, AdoptPlan, AdoptTable, exec, inspect, list, on_delete_sql, q, validate};
use crate::{ID_COLUMN, TENANT_COLUMN, foreign_key_name, index_name, unique_name};

/// Step 4: makes the schema enforce tenancy. For every table of the plan: `tenant_id NOT NULL`,
/// the foreign key `fk_<table>_tenant_id` to `tenants (id)`, the primary key `(tenant_id, id)`,
/// each reference the composite `fk_<table>_<column>`
/// `(tenant_id, column) -> parent (tenant_id, id) ON DELETE <rule> ON UPDATE RESTRICT` (with a
/// tenant-led index `ix_<table>_<column>` unless a tenant-led key serves it), each legacy unique
/// key `uq_<table>_<columns>` on `(tenant_id, columns..)` and each legacy index
/// `ix_<table>_<columns>` on `(tenant_id, columns..)`. Data is not changed.
///
/// It runs [`validate`] first and refuses ([`AdoptError::NotClean`]) if there is any finding.
///
/// - **PostgreSQL**: `ALTER TABLE` statements in one transaction (DDL is transactional there):
///   all or nothing.
/// - **MySQL / MariaDB**: the same `ALTER TABLE`s (each commits on its own), in a safe order: the
///   legacy foreign keys are dropped first (MySQL refuses to change a key a foreign key depends
///   on), then keys are changed, then the composite foreign keys are added. Every action checks the
///   catalog first, so after an interruption running it again finishes the job.
/// - **SQLite**, which cannot alter constraints: each table is rebuilt (create the new shape,
///   copy the rows, drop the old table, rename) with foreign keys off, in one transaction, then
///   `PRAGMA foreign_key_check` must come back empty or everything is rolled back. A `CHECK`
///   constraint, a generated column or a unique key not in the plan makes it refuse
///   ([`AdoptError::Unsupported`]) instead of dropping it.
///
/// Idempotent: a table already in the final shape is left alone.
///
/// # Errors
///
/// [`AdoptError::NotClean`], [`AdoptError::Plan`], [`AdoptError::Unsupported`], or the
/// database's error.
pub async fn enforce(db: &DatabaseConnection, plan: &AdoptPlan) -> Result<(), AdoptError> {
    plan.check()?;
    let findings = validate(db, plan).await?;
    if !findings.is_empty() {
        return Err(AdoptError::NotClean(findings));
    }
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            alter_enforce(&txn, plan).await?;
            txn.commit().await?;
        }
        DbBackend::MySql => alter_enforce(db, plan).await?,
        _ => sqlite_rebuild(db, plan, Direction::Enforce).await?,
    }
    Ok(())
}

/// Undoes [`enforce`]: the primary key back to `(id)`, `tenant_id` nullable, no foreign key to
/// `tenants`, the references single-column `fk_<table>_<column>` `(column) -> parent (id)` with
/// their delete rule (`ON UPDATE NO ACTION`, the default), the unique keys and indexes back to
/// their legacy columns (named `uq_<table>_<columns>` and `ix_<table>_<columns>`). The data, and
/// the `tenant_id` values, are unchanged. Same per-backend mechanics as [`enforce`].
///
/// If the legacy constraints had other names, the restored ones have these deterministic names
/// (the shape is the same).
///
/// # Errors
///
/// [`AdoptError::Plan`], [`AdoptError::Unsupported`], or the database's error (for example: rows
/// of a second tenant now share an `email` that the restored global unique key refuses).
pub async fn rollback_enforce(db: &DatabaseConnection, plan: &AdoptPlan) -> Result<(), AdoptError> {
    plan.check()?;
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            alter_rollback(&txn, plan).await?;
            txn.commit().await?;
        }
        DbBackend::MySql => alter_rollback(db, plan).await?,
        _ => sqlite_rebuild(db, plan, Direction::Rollback).await?,
    }
    Ok(())
}

/// Drops the foreign key `fk` of `table` (on MySQL also the index MySQL made for it, which has the
/// foreign key's name).
async fn drop_fk(
    db: &impl ConnectionTrait,
    table: &str,
    fk: &ForeignKey,
) -> Result<(), AdoptError> {
    let backend = db.get_database_backend();
    let t = q(backend, table);
    let Some(name) = fk.name.as_deref() else {
        return Err(AdoptError::Unsupported {
            table: table.to_owned(),
            reason: format!("the foreign key on ({}) has no name", fk.columns.join(", ")),
        });
    };
    if backend == DbBackend::MySql {
        exec(
            db,
            format!("ALTER TABLE {t} DROP FOREIGN KEY {}", q(backend, name)),
        )
        .await?;
        let shape = inspect(db, table).await?;
        if shape
            .indexes
            .iter()
            .any(|k| k.name == name && k.columns == fk.columns)
        {
            exec(db, format!("DROP INDEX {} ON {t}", q(backend, name))).await?;
        }
    } else {
        exec(
            db,
            format!("ALTER TABLE {t} DROP CONSTRAINT {}", q(backend, name)),
        )
        .await?;
    }
    Ok(())
}

/// Drops a unique key or index.
async fn drop_key(db: &impl ConnectionTrait, table: &str, key: &Key) -> Result<(), AdoptError> {
    let backend = db.get_database_backend();
    let t = q(backend, table);
    let name = q(backend, &key.name);
    match backend {
        DbBackend::MySql => exec(db, format!("DROP INDEX {name} ON {t}")).await?,
        _ if key.constraint => exec(db, format!("ALTER TABLE {t} DROP CONSTRAINT {name}")).await?,
        _ => exec(db, format!("DROP INDEX {name}")).await?,
    }
    Ok(())
}

/// Replaces the keys of `table` on `from` columns by keys on `to` columns named `name`.
async fn replace_key(
    db: &impl ConnectionTrait,
    table: &str,
    unique: bool,
    from: &[String],
    to: &[String],
    name: &str,
) -> Result<(), AdoptError> {
    let backend = db.get_database_backend();
    let shape = inspect(db, table).await?;
    let keys = if unique {
        &shape.uniques
    } else {
        &shape.indexes
    };
    for key in keys.iter().filter(|k| k.columns == from) {
        drop_key(db, table, key).await?;
    }
    if !keys.iter().any(|k| k.columns == to) {
        let t = q(backend, table);
        let sql = if unique {
            format!(
                "ALTER TABLE {t} ADD CONSTRAINT {} UNIQUE ({})",
                q(backend, name),
                list(backend, to)
            )
        } else {
            format!(
                "CREATE INDEX {} ON {t} ({})",
                q(backend, name),
                list(backend, to)
            )
        };
        exec(db, sql).await?;
    }
    Ok(())
}

/// Sets the primary key of `table` to `columns`.
async fn set_primary_key(
    db: &impl ConnectionTrait,
    table: &str,
    columns: &[String],
) -> Result<(), AdoptError> {
    let backend = db.get_database_backend();
    let shape = inspect(db, table).await?;
    if shape.primary_key == columns {
        return Ok(());
    }
    let t = q(backend, table);
    let drop = match (backend, &shape.primary_key_name) {
        (_, _) if shape.primary_key.is_empty() => String::new(),
        (DbBackend::MySql, _) => "DROP PRIMARY KEY, ".to_owned(),
        (_, Some(name)) => format!("DROP CONSTRAINT {}, ", q(backend, name)),
        (_, None) => {
            return Err(AdoptError::Unsupported {
                table: table.to_owned(),
                reason: "its primary key constraint has no name".to_owned(),
            });
        }
    };
    // InnoDB wants an AUTO_INCREMENT column to lead some index (error 1075); the new key is led by
    // `tenant_id`, so the counter gets an index of its own on `(id)`, in the same statement.
    let counter_index = match columns {
        [_, id] if backend == DbBackend::MySql => shape
            .column(id)
            .filter(|c| c.auto_increment)
            .filter(|_| {
                !shape
                    .uniques
                    .iter()
                    .chain(&shape.indexes)
                    .any(|k| k.columns.first() == Some(id))
            })
            .map(|_| {
                format!(
                    ", ADD INDEX {} ({})",
                    q(backend, &index_name(table, [id])),
                    q(backend, id)
                )
            }),
        _ => None,
    }
    .unwrap_or_default();
    exec(
        db,
        format!(
            "ALTER TABLE {t} {drop}ADD PRIMARY KEY ({}){counter_index}",
            list(backend, columns)
        ),
    )
    .await?;
    Ok(())
}

/// Sets `tenant_id` of `table` to `NOT NULL` (or back to `NULL`).
async fn set_tenant_nullable(
    db: &impl ConnectionTrait,
    table: &str,
    nullable: bool,
) -> Result<(), AdoptError> {
    let backend = db.get_database_backend();
    let shape = inspect(db, table).await?;
    if shape
        .column(TENANT_COLUMN)
        .is_some_and(|c| c.nullable == nullable)
    {
        return Ok(());
    }
    let t = q(backend, table);
    let c = q(backend, TENANT_COLUMN);
    if backend == DbBackend::MySql {
        let mut column = ColumnDef::new(TENANT_COLUMN);
        column.uuid();
        if nullable {
            column.null();
        } else {
            column.not_null();
        }
        let alter = Table::alter()
            .table(Alias::new(table))
            .modify_column(column)
            .to_owned();
        db.execute(&alter).await?;
    } else if nullable {
        exec(
            db,
            format!("ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL"),
        )
        .await?;
    } else {
        exec(db, format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL")).await?;
    }
    Ok(())
}

/// A foreign key to add.
struct FkSpec<'a> {
    name: String,
    columns: &'a [String],
    parent: &'a str,
    parent_columns: &'a [String],
    on_delete: &'a str,
    on_update: &'a str,
}

/// Adds a foreign key unless one on the same columns exists.
async fn add_fk(db: &impl ConnectionTrait, table: &str, fk: FkSpec<'_>) -> Result<(), AdoptError> {
    let FkSpec {
        name,
        columns,
        parent,
        parent_columns,
        on_delete,
        on_update,
    } = fk;
    let name = name.as_str();
    let backend = db.get_database_backend();
    if inspect(db, table)
        .await?
        .foreign_keys_on(columns)
        .next()
        .is_some()
    {
        return Ok(());
    }
    exec(
        db,
        format!(
            "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {on_delete} ON UPDATE {on_update}",
            q(backend, table),
            q(backend, name),
            list(backend, columns),
            q(backend, parent),
            list(backend, parent_columns),
        ),
    )
    .await?;
    Ok(())
}

pub(super) fn parent_id(plan: &AdoptPlan, parent: &str) -> String {
    plan.find(parent)
        .map_or_else(|| ID_COLUMN.to_owned(), |p| p.id_column.clone())
}

/// [`enforce`] with `ALTER TABLE` (PostgreSQL, MySQL).
async fn alter_enforce(db: &impl ConnectionTrait, plan: &AdoptPlan) -> Result<(), AdoptError> {
    let tenant = vec![TENANT_COLUMN.to_owned()];
    // 1. The legacy single-column foreign keys go first: they depend on the parents' keys.
    for table in &plan.tables {
        let shape = inspect(db, &table.name).await?;
        for r in &table.references {
            for fk in shape.foreign_keys_on(std::slice::from_ref(&r.column)) {
                drop_fk(db, &table.name, fk).await?;
            }
        }
    }
    // 2. NOT NULL, the primary key, the unique keys and indexes.
    for table in &plan.tables {
        set_tenant_nullable(db, &table.name, false).await?;
        set_primary_key(
            db,
            &table.name,
            &[TENANT_COLUMN.to_owned(), table.id_column.clone()],
        )
        .await?;
        for u in &table.uniques {
            let to = AdoptTable::tenant_led(u);
            replace_key(db, &table.name, true, u, &to, &unique_name(&table.name, u)).await?;
        }
        for i in &table.indexes {
            let to = AdoptTable::tenant_led(i);
            replace_key(db, &table.name, false, i, &to, &index_name(&table.name, i)).await?;
        }
    }
    // 3. The foreign keys: to tenants, then the composite ones (every parent key exists now).
    for table in &plan.tables {
        add_fk(
            db,
            &table.name,
            FkSpec {
                name: foreign_key_name(&table.name, TENANT_COLUMN),
                columns: &tenant,
                parent: &plan.tenants_table,
                parent_columns: &[ID_COLUMN.to_owned()],
                on_delete: "RESTRICT",
                on_update: "RESTRICT",
            },
        )
        .await?;
        for r in table.references_needing_index() {
            let columns = AdoptTable::tenant_led(std::slice::from_ref(&r.column));
            if !inspect(db, &table.name).await?.has_key_led_by(&columns) {
                let backend = db.get_database_backend();
                exec(
                    db,
                    format!(
                        "CREATE INDEX {} ON {} ({})",
                        q(backend, &index_name(&table.name, [&r.column])),
                        q(backend, &table.name),
                        list(backend, &columns)
                    ),
                )
                .await?;
            }
        }
        for r in &table.references {
            add_fk(
                db,
                &table.name,
                FkSpec {
                    name: foreign_key_name(&table.name, &r.column),
                    columns: &AdoptTable::tenant_led(std::slice::from_ref(&r.column)),
                    parent: &r.parent,
                    parent_columns: &[TENANT_COLUMN.to_owned(), parent_id(plan, &r.parent)],
                    on_delete: on_delete_sql(r.on_delete),
                    on_update: "RESTRICT",
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// [`rollback_enforce`] with `ALTER TABLE` (PostgreSQL, MySQL).
async fn alter_rollback(db: &impl ConnectionTrait, plan: &AdoptPlan) -> Result<(), AdoptError> {
    let tenant = vec![TENANT_COLUMN.to_owned()];
    // 1. The composite foreign keys (and their indexes) and the foreign key to tenants.
    for table in &plan.tables {
        let shape = inspect(db, &table.name).await?;
        for r in &table.references {
            let columns = AdoptTable::tenant_led(std::slice::from_ref(&r.column));
            for fk in shape.foreign_keys_on(&columns) {
                drop_fk(db, &table.name, fk).await?;
            }
        }
        for fk in shape.foreign_keys_on(&tenant) {
            drop_fk(db, &table.name, fk).await?;
        }
        let shape = inspect(db, &table.name).await?;
        for r in table.references_needing_index() {
            let name = index_name(&table.name, [&r.column]);
            let columns = AdoptTable::tenant_led(std::slice::from_ref(&r.column));
            if let Some(key) = shape
                .indexes
                .iter()
                .find(|k| k.name == name && k.columns == columns)
            {
                drop_key(db, &table.name, key).await?;
            }
        }
    }
    // 2. Unique keys and indexes, the primary key, nullability.
    for table in &plan.tables {
        for u in &table.uniques {
            let from = AdoptTable::tenant_led(u);
            replace_key(
                db,
                &table.name,
                true,
                &from,
                u,
                &unique_name(&table.name, u),
            )
            .await?;
        }
        for i in &table.indexes {
            let from = AdoptTable::tenant_led(i);
            replace_key(
                db,
                &table.name,
                false,
                &from,
                i,
                &index_name(&table.name, i),
            )
            .await?;
        }
        set_primary_key(db, &table.name, std::slice::from_ref(&table.id_column)).await?;
        set_tenant_nullable(db, &table.name, true).await?;
    }
    // 3. The single-column foreign keys.
    for table in &plan.tables {
        for r in &table.references {
            add_fk(
                db,
                &table.name,
                FkSpec {
                    name: foreign_key_name(&table.name, &r.column),
                    columns: std::slice::from_ref(&r.column),
                    parent: &r.parent,
                    parent_columns: &[parent_id(plan, &r.parent)],
                    on_delete: on_delete_sql(r.on_delete),
                    on_update: "NO ACTION",
                },
            )
            .await?;
        }
    }
    Ok(())
}
