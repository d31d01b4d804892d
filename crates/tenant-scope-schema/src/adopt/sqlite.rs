//! Step 4 on SQLite, which cannot alter constraints: each table is rebuilt.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseConnectionType, DbBackend, DbErr, RuntimeErr};

use super::enforce::parent_id;
use super::{AdoptError, AdoptPlan, AdoptTable, find, list, on_delete_sql, q};
use crate::{ID_COLUMN, TENANT_COLUMN, foreign_key_name, index_name, unique_name};

/// Which way [`sqlite_rebuild`] goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    Enforce,
    Rollback,
}

/// The key column lists the plan owns for `table` (both shapes): indexes with these columns are
/// not carried over by a rebuild, the target shape makes its own.
fn owned_keys(table: &AdoptTable) -> Vec<Vec<String>> {
    let mut owned = Vec::new();
    for key in table.uniques.iter().chain(&table.indexes) {
        owned.push(key.clone());
        owned.push(AdoptTable::tenant_led(key));
    }
    for r in &table.references {
        owned.push(vec![r.column.clone()]);
        owned.push(AdoptTable::tenant_led(std::slice::from_ref(&r.column)));
    }
    owned
}

/// The statements that rebuild `table` into the `direction` shape: `CREATE TABLE` of a new table,
/// `INSERT .. SELECT`, `DROP TABLE`, `ALTER TABLE .. RENAME`, then the indexes. `None` if the table
/// already has that shape.
async fn sqlite_rebuild_statements(
    db: &DatabaseConnection,
    plan: &AdoptPlan,
    table: &AdoptTable,
    direction: Direction,
) -> Result<Option<Vec<String>>, AdoptError> {
    let b = DbBackend::Sqlite;
    let unsupported = |reason: String| AdoptError::Unsupported {
        table: table.name.clone(),
        reason,
    };
    let enforce = direction == Direction::Enforce;
    let Some(shape) = find(db, &table.name).await? else {
        return Err(AdoptError::Plan(format!(
            "table `{}` does not exist",
            table.name
        )));
    };
    let columns = &shape.columns;
    let pk = &shape.primary_key;
    let target_pk: Vec<String> = if enforce {
        vec![TENANT_COLUMN.to_owned(), table.id_column.clone()]
    } else {
        vec![table.id_column.clone()]
    };
    if *pk == target_pk {
        return Ok(None);
    }
    if !columns.iter().any(|c| c.name == TENANT_COLUMN) {
        return Err(unsupported(
            "no tenant_id column: run expand first".to_owned(),
        ));
    }
    let upper = shape
        .definition
        .as_deref()
        .unwrap_or_default()
        .to_ascii_uppercase();
    for word in [
        "CHECK",
        "GENERATED",
        "AUTOINCREMENT",
        "WITHOUT ROWID",
        "COLLATE",
    ] {
        if upper.contains(word) {
            return Err(unsupported(format!(
                "its CREATE TABLE has {word}, which the rebuild would not carry over; rebuild it by hand"
            )));
        }
    }
    let owned = owned_keys(table);
    let mut keep_indexes = Vec::new();
    for key in shape.uniques.iter().chain(&shape.indexes) {
        if owned.contains(&key.columns) {
            continue;
        }
        // An index made by CREATE INDEX is made again after the rebuild; a UNIQUE constraint of
        // the table that the plan does not list would be lost.
        match &key.definition {
            Some(sql) => keep_indexes.push(sql.clone()),
            None => {
                return Err(unsupported(format!(
                    "the unique key on ({}) is not in the plan: list it with AdoptTable::unique",
                    key.columns.join(", ")
                )));
            }
        }
    }
    let fks = &shape.foreign_keys;
    let managed_fk = |cols: &[String]| {
        cols == [TENANT_COLUMN]
            || table.references.iter().any(|r| {
                cols == [r.column.clone()]
                    || cols == AdoptTable::tenant_led(std::slice::from_ref(&r.column))
            })
    };

    let mut defs = Vec::new();
    for c in columns {
        let not_null = if c.name == TENANT_COLUMN {
            enforce
        } else {
            !c.nullable || target_pk.contains(&c.name)
        };
        let mut def = format!("{} {}", q(b, &c.name), c.native_type);
        if not_null {
            def.push_str(" NOT NULL");
        }
        if let Some(default) = &c.default {
            def.push_str(&format!(" DEFAULT {default}"));
        }
        defs.push(def);
    }
    defs.push(format!("PRIMARY KEY ({})", list(b, &target_pk)));
    for u in &table.uniques {
        let cols = if enforce {
            AdoptTable::tenant_led(u)
        } else {
            u.clone()
        };
        defs.push(format!(
            "CONSTRAINT {} UNIQUE ({})",
            q(b, &unique_name(&table.name, u)),
            list(b, &cols)
        ));
    }
    if enforce {
        defs.push(format!(
            "CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE RESTRICT ON UPDATE RESTRICT",
            q(b, &foreign_key_name(&table.name, TENANT_COLUMN)),
            q(b, TENANT_COLUMN),
            q(b, &plan.tenants_table),
            q(b, ID_COLUMN),
        ));
    }
    for r in &table.references {
        let pid = parent_id(plan, &r.parent);
        let (cols, parent_cols, on_update) = if enforce {
            (
                AdoptTable::tenant_led(std::slice::from_ref(&r.column)),
                vec![TENANT_COLUMN.to_owned(), pid],
                "RESTRICT",
            )
        } else {
            (vec![r.column.clone()], vec![pid], "NO ACTION")
        };
        defs.push(format!(
            "CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {} ON UPDATE {on_update}",
            q(b, &foreign_key_name(&table.name, &r.column)),
            list(b, &cols),
            q(b, &r.parent),
            list(b, &parent_cols),
            on_delete_sql(r.on_delete),
        ));
    }
    for fk in fks.iter().filter(|fk| !managed_fk(&fk.columns)) {
        // (No columns: the parent does not exist, and the key references its primary key.)
        let parent_cols = if fk.ref_columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", list(b, &fk.ref_columns))
        };
        defs.push(format!(
            "FOREIGN KEY ({}) REFERENCES {}{parent_cols} ON DELETE {} ON UPDATE {}",
            list(b, &fk.columns),
            q(b, &fk.ref_table),
            fk.on_delete.sql(),
            fk.on_update.sql(),
        ));
    }

    let new_name = format!("{}__adopt_new", table.name);
    let all: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let mut stmts = vec![
        format!("DROP TABLE IF EXISTS {}", q(b, &new_name)),
        format!("CREATE TABLE {} ({})", q(b, &new_name), defs.join(", ")),
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM {}",
            q(b, &new_name),
            list(b, &all),
            list(b, &all),
            q(b, &table.name)
        ),
        format!("DROP TABLE {}", q(b, &table.name)),
        format!(
            "ALTER TABLE {} RENAME TO {}",
            q(b, &new_name),
            q(b, &table.name)
        ),
    ];
    stmts.extend(keep_indexes);
    for i in &table.indexes {
        let cols = if enforce {
            AdoptTable::tenant_led(i)
        } else {
            i.clone()
        };
        stmts.push(format!(
            "CREATE INDEX {} ON {} ({})",
            q(b, &index_name(&table.name, i)),
            q(b, &table.name),
            list(b, &cols)
        ));
    }
    if enforce {
        for r in table.references_needing_index() {
            stmts.push(format!(
                "CREATE INDEX {} ON {} ({})",
                q(b, &index_name(&table.name, [&r.column])),
                q(b, &table.name),
                list(b, &AdoptTable::tenant_led(std::slice::from_ref(&r.column)))
            ));
        }
    }
    Ok(Some(stmts))
}

fn sqlx_err(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
}

/// The SQLite 12-step procedure for every table of the plan that is not in the `direction` shape
/// yet: on one connection of the pool, `PRAGMA foreign_keys = OFF`, `BEGIN`, the rebuilds,
/// `PRAGMA foreign_key_check` (any row: `ROLLBACK`), `COMMIT`, `PRAGMA foreign_keys = ON`.
pub(super) async fn sqlite_rebuild(
    db: &DatabaseConnection,
    plan: &AdoptPlan,
    direction: Direction,
) -> Result<(), AdoptError> {
    use sea_orm::sqlx::{self, Row as _};

    let mut scripts = Vec::new();
    for table in &plan.tables {
        if let Some(stmts) = sqlite_rebuild_statements(db, plan, table, direction).await? {
            scripts.push(stmts);
        }
    }
    if scripts.is_empty() {
        return Ok(());
    }
    if !matches!(
        db.inner,
        DatabaseConnectionType::SqlxSqlitePoolConnection(_)
    ) {
        return Err(AdoptError::Unsupported {
            table: plan
                .tables
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            reason: "the SQLite rebuild needs a sqlx SQLite pool connection".to_owned(),
        });
    }
    let pool = db.get_sqlite_connection_pool();
    let mut conn = pool.acquire().await.map_err(sqlx_err)?;
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await
        .map_err(sqlx_err)?;
    let result: Result<(), AdoptError> = async {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await.map_err(sqlx_err)?;
        let body: Result<(), AdoptError> = async {
            for stmt in scripts.iter().flatten() {
                sqlx::query(sqlx::AssertSqlSafe(stmt.as_str())).execute(&mut *conn).await.map_err(sqlx_err)?;
            }
            let violations = sqlx::query("PRAGMA foreign_key_check")
                .fetch_all(&mut *conn)
                .await
                .map_err(sqlx_err)?;
            if let Some(first) = violations.first() {
                let table: String = first.try_get(0).unwrap_or_default();
                return Err(AdoptError::Unsupported {
                    table,
                    reason: format!(
                        "PRAGMA foreign_key_check found {} violation(s) after the rebuild; nothing was changed",
                        violations.len()
                    ),
                });
            }
            Ok(())
        }
        .await;
        match body {
            Ok(()) => {
                sqlx::query("COMMIT").execute(&mut *conn).await.map_err(sqlx_err)?;
                Ok(())
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                Err(e)
            }
        }
    }
    .await;
    // Never hand a connection with foreign keys off back to the pool.
    let restored = sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await;
    let on: Result<i64, _> = sqlx::query("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .and_then(|row| row.try_get(0));
    if restored.is_err() || !matches!(on, Ok(1)) {
        // Closing it makes the pool open a fresh one (sqlx turns foreign keys on for each).
        let _ = conn.close().await;
    }
    result
}
