//! `tenant_scope_schema::adopt` on a legacy single-tenant fixture, on every backend: expand ->
//! backfill (interrupted and resumed) -> validate -> enforce keeps every row (counts and per-table
//! checksums), gives every row the default tenant, and leaves a schema that rejects a cross-tenant
//! reference; each step's rollback restores the shape and the data.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use sha2::{Digest as _, Sha256};
use tenant_scope::TenantId;
use tenant_scope_catalog::RefAction;
use tenant_scope_schema::OnDelete;
use tenant_scope_schema::adopt::{
    self, AdoptError, AdoptPlan, AdoptTable, BackfillOptions, FindingKind,
};
use test_support::TestDb;

const TABLES: [&str; 3] = ["legacy_customers", "legacy_orders", "legacy_order_items"];

fn plan(tenant: TenantId) -> AdoptPlan {
    AdoptPlan::new(tenant, "legacy (pre-tenancy data)")
        .table(AdoptTable::new("legacy_customers").unique(["email"]))
        .table(
            AdoptTable::new("legacy_orders")
                .references("customer_id", "legacy_customers", OnDelete::Cascade)
                .index(["number"]),
        )
        .table(AdoptTable::new("legacy_order_items").references(
            "order_id",
            "legacy_orders",
            OnDelete::Cascade,
        ))
}

/// The legacy schema: plain single-tenant tables with single-column keys.
async fn create_legacy(db: &DatabaseConnection) {
    for sql in [
        "CREATE TABLE legacy_customers (id BIGINT NOT NULL, email VARCHAR(255) NOT NULL, \
         name VARCHAR(255) NOT NULL, PRIMARY KEY (id), \
         CONSTRAINT uq_legacy_customers_email UNIQUE (email))",
        "CREATE TABLE legacy_orders (id BIGINT NOT NULL, customer_id BIGINT NOT NULL, \
         number VARCHAR(32) NOT NULL, total_cents BIGINT NOT NULL, PRIMARY KEY (id), \
         CONSTRAINT fk_legacy_orders_customer_id FOREIGN KEY (customer_id) \
         REFERENCES legacy_customers (id) ON DELETE CASCADE)",
        "CREATE INDEX ix_legacy_orders_number ON legacy_orders (number)",
        "CREATE TABLE legacy_order_items (id BIGINT NOT NULL, order_id BIGINT NOT NULL, \
         sku VARCHAR(64) NOT NULL, quantity INT NOT NULL, price_cents BIGINT NOT NULL, \
         note VARCHAR(255) NULL, PRIMARY KEY (id), \
         CONSTRAINT fk_legacy_order_items_order_id FOREIGN KEY (order_id) \
         REFERENCES legacy_orders (id) ON DELETE CASCADE)",
    ] {
        db.execute_unprepared(sql).await.expect(sql);
    }
}

/// Inserts `customers` customers, 4 orders each, 1.5 items per order, with multi-row INSERTs of
/// 500 rows in one transaction.
async fn fill_legacy(db: &DatabaseConnection, customers: i64) {
    let txn = db.begin().await.expect("begin");
    let mut rows: Vec<String> = (1..=customers)
        .map(|i| format!("({i}, 'user{i}@example.com', 'Customer {i}')"))
        .collect();
    insert(&txn, "legacy_customers (id, email, name)", &rows).await;
    rows = (1..=customers * 4)
        .map(|i| {
            format!(
                "({i}, {}, 'N-{i:06}', {})",
                (i - 1) % customers + 1,
                i * 37 % 10_000
            )
        })
        .collect();
    insert(
        &txn,
        "legacy_orders (id, customer_id, number, total_cents)",
        &rows,
    )
    .await;
    rows = (1..=customers * 6)
        .map(|i| {
            let note = if i % 3 == 0 {
                "NULL".to_owned()
            } else {
                format!("'note {i}'")
            };
            format!(
                "({i}, {}, 'SKU-{}', {}, {}, {note})",
                (i - 1) % (customers * 4) + 1,
                i % 97,
                i % 5 + 1,
                i * 13 % 5_000
            )
        })
        .collect();
    insert(
        &txn,
        "legacy_order_items (id, order_id, sku, quantity, price_cents, note)",
        &rows,
    )
    .await;
    txn.commit().await.expect("commit");
}

async fn insert(db: &impl ConnectionTrait, into: &str, rows: &[String]) {
    for chunk in rows.chunks(500) {
        let sql = format!("INSERT INTO {into} VALUES {}", chunk.join(", "));
        db.execute_unprepared(&sql)
            .await
            .expect("insert fixture rows");
    }
}

/// Row count and SHA-256 of every row (original columns only), ordered by id, computed in Rust.
async fn checksum(db: &DatabaseConnection, table: &str) -> (usize, String) {
    let columns = match table {
        "legacy_customers" => "id, email, name",
        "legacy_orders" => "id, customer_id, number, total_cents",
        _ => "id, order_id, sku, quantity, price_cents, note",
    };
    let found = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT {columns} FROM {table} ORDER BY id"),
        ))
        .await
        .expect("select rows");
    let mut hash = Sha256::new();
    for row in &found {
        let line = match table {
            "legacy_customers" => format!(
                "{}|{}|{}",
                row.try_get_by_index::<i64>(0).expect("id"),
                row.try_get_by_index::<String>(1).expect("email"),
                row.try_get_by_index::<String>(2).expect("name"),
            ),
            "legacy_orders" => format!(
                "{}|{}|{}|{}",
                row.try_get_by_index::<i64>(0).expect("id"),
                row.try_get_by_index::<i64>(1).expect("customer_id"),
                row.try_get_by_index::<String>(2).expect("number"),
                row.try_get_by_index::<i64>(3).expect("total_cents"),
            ),
            _ => format!(
                "{}|{}|{}|{}|{}|{:?}",
                row.try_get_by_index::<i64>(0).expect("id"),
                row.try_get_by_index::<i64>(1).expect("order_id"),
                row.try_get_by_index::<String>(2).expect("sku"),
                row.try_get_by_index::<i32>(3).expect("quantity"),
                row.try_get_by_index::<i64>(4).expect("price_cents"),
                row.try_get_by_index::<Option<String>>(5).expect("note"),
            ),
        };
        hash.update(line.as_bytes());
        hash.update(b"\n");
    }
    (found.len(), hex::encode(hash.finalize()))
}

async fn checksums(db: &DatabaseConnection) -> Vec<(usize, String)> {
    let mut all = Vec::new();
    for table in TABLES {
        all.push(checksum(db, table).await);
    }
    all
}

/// What the adopt steps change about a table, as the catalog reads it: its columns and whether each is
/// nullable, its primary key, its unique keys and indexes (name, columns, constraint or index) and its foreign
/// keys (name, columns, parent, parent columns, delete rule).
type Shape = (
    Vec<(String, bool)>,
    Vec<String>,
    Vec<(String, Vec<String>, bool)>,
    Vec<(String, Vec<String>, bool)>,
    Vec<(Option<String>, Vec<String>, String, Vec<String>, RefAction)>,
);

async fn shapes(db: &DatabaseConnection) -> Vec<Shape> {
    let keys = |keys: &[tenant_scope_catalog::Key]| {
        keys.iter()
            .map(|k| (k.name.clone(), k.columns.clone(), k.constraint))
            .collect::<Vec<_>>()
    };
    let mut all = Vec::new();
    for table in TABLES {
        let t = adopt::inspect(db, table).await.expect("inspect");
        all.push((
            t.columns
                .iter()
                .map(|c| (c.name.clone(), c.nullable))
                .collect(),
            t.primary_key.clone(),
            keys(&t.uniques),
            keys(&t.indexes),
            t.foreign_keys
                .iter()
                .map(|fk| {
                    (
                        fk.name.clone(),
                        fk.columns.clone(),
                        fk.ref_table.clone(),
                        fk.ref_columns.clone(),
                        fk.on_delete,
                    )
                })
                .collect(),
        ));
    }
    all
}

async fn count(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> i64 {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            values,
        ))
        .await
        .expect(sql)
        .expect("a row");
    row.try_get_by_index::<i64>(0).expect("count")
}

fn p(backend: DbBackend, n: usize) -> String {
    if backend == DbBackend::Postgres {
        format!("${n}")
    } else {
        "?".to_owned()
    }
}

async fn exec(
    db: &DatabaseConnection,
    sql: &str,
    values: Vec<Value>,
) -> Result<(), sea_orm::DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .await
    .map(|_| ())
}

test_support::backend_test!(
    legacy_fixture_adopts_without_losing_a_row,
    |t: TestDb| async move {
        let started = std::time::Instant::now();
        let db = t.raw();
        let backend = db.get_database_backend();
        create_legacy(db).await;
        fill_legacy(db, 1_000).await;
        let before = checksums(db).await;
        assert_eq!(
            before.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            [1_000, 4_000, 6_000]
        );
        let tenant = TenantId::new();
        let plan = plan(tenant);

        // 1. expand, twice (idempotent).
        let expanded = adopt::expand(db, &plan).await.expect("expand");
        assert!(expanded.tenant_created);
        assert_eq!(expanded.columns_added.len(), 3);
        let again = adopt::expand(db, &plan).await.expect("expand again");
        assert!(!again.tenant_created && again.columns_added.is_empty());

        // Not ready yet: validate names the NULL tenants, enforce refuses.
        let findings = adopt::validate(db, &plan).await.expect("validate");
        assert_eq!(findings.len(), 3, "{findings:?}");
        assert!(findings.iter().all(|f| f.kind == FindingKind::NullTenant));
        assert!(matches!(
            adopt::enforce(db, &plan).await,
            Err(AdoptError::NotClean(_))
        ));

        // 2. backfill in batches of 700, interrupted after 5 batches, then resumed.
        let options = BackfillOptions::batch_size(700);
        let partial = adopt::backfill(db, &plan, &options.max_batches(5))
            .await
            .expect("partial backfill");
        assert!(!partial.complete);
        assert_eq!(partial.batches, 5);
        // Customers take two batches (700 + 300), orders the other three.
        assert_eq!(
            partial.updated,
            [
                ("legacy_customers".to_owned(), 1_000),
                ("legacy_orders".to_owned(), 3 * 700),
                ("legacy_order_items".to_owned(), 0),
            ]
        );
        let rest = adopt::backfill(db, &plan, &options)
            .await
            .expect("resumed backfill");
        assert!(rest.complete);
        assert_eq!(partial.total() + rest.total(), 11_000);
        let nothing = adopt::backfill(db, &plan, &options)
            .await
            .expect("backfill again");
        assert_eq!(
            (nothing.total(), nothing.batches, nothing.complete),
            (0, 0, true)
        );

        // 3. validate: clean.
        let findings = adopt::validate(db, &plan).await.expect("validate");
        assert!(findings.is_empty(), "{findings:?}");

        // 4. enforce, twice (idempotent).
        adopt::enforce(db, &plan).await.expect("enforce");
        adopt::enforce(db, &plan).await.expect("enforce again");

        // No row lost or changed; every row belongs to the default tenant.
        assert_eq!(checksums(db).await, before);
        for table in TABLES {
            let n = count(
                db,
                &format!(
                    "SELECT COUNT(*) FROM {table} WHERE tenant_id = {}",
                    p(backend, 1)
                ),
                vec![tenant.into()],
            )
            .await;
            let all = count(db, &format!("SELECT COUNT(*) FROM {table}"), vec![]).await;
            assert_eq!(n, all, "{table}");
        }

        // The schema: composite keys, seen in the catalog ...
        let orders = adopt::inspect(db, "legacy_orders").await.expect("inspect");
        assert_eq!(orders.primary_key, ["tenant_id", "id"]);
        assert!(
            orders
                .foreign_keys
                .iter()
                .any(|fk| fk.columns == ["tenant_id", "customer_id"]
                    && fk.ref_table == "legacy_customers"
                    && fk.ref_columns == ["tenant_id", "id"])
        );
        assert!(
            orders
                .columns
                .iter()
                .any(|c| c.name == "tenant_id" && !c.nullable)
        );
        assert!(
            orders
                .indexes
                .iter()
                .any(|k| k.columns == ["tenant_id", "number"])
        );
        let customers = adopt::inspect(db, "legacy_customers")
            .await
            .expect("inspect");
        assert!(
            customers
                .uniques
                .iter()
                .any(|k| k.columns == ["tenant_id", "email"])
        );
        assert!(!customers.uniques.iter().any(|k| k.columns == ["email"]));

        // ... and by behaviour: a second tenant with a customer of its own.
        let other = TenantId::new();
        exec(
            db,
            &format!(
                "INSERT INTO tenants (id, name, created_at) VALUES ({}, {}, {})",
                p(backend, 1),
                p(backend, 2),
                p(backend, 3)
            ),
            vec![other.into(), "other".into(), chrono::Utc::now().into()],
        )
        .await
        .expect("second tenant");
        let customer = format!(
            "INSERT INTO legacy_customers (tenant_id, id, email, name) VALUES ({}, {}, {}, 'x')",
            p(backend, 1),
            p(backend, 2),
            p(backend, 3)
        );
        // uq_legacy_customers_email is tenant-led: the same email in another tenant is fine ...
        exec(
            db,
            &customer,
            vec![other.into(), 100_001i64.into(), "user1@example.com".into()],
        )
        .await
        .expect("same email, other tenant");
        // ... and still unique within a tenant.
        assert!(
            exec(
                db,
                &customer,
                vec![tenant.into(), 100_002i64.into(), "user1@example.com".into()]
            )
            .await
            .is_err()
        );
        // The same id in another tenant: the primary key is (tenant_id, id).
        exec(
            db,
            &customer,
            vec![other.into(), 1i64.into(), "someone@example.com".into()],
        )
        .await
        .expect("same id, other tenant");
        let order = format!(
            "INSERT INTO legacy_orders (tenant_id, id, customer_id, number, total_cents) VALUES ({}, {}, {}, 'X', 1)",
            p(backend, 1),
            p(backend, 2),
            p(backend, 3)
        );
        // fk_legacy_orders_customer_id: an order of tenant B naming tenant A's customer is rejected ...
        assert!(
            exec(
                db,
                &order,
                vec![other.into(), 900_001i64.into(), 2i64.into()]
            )
            .await
            .is_err(),
            "cross-tenant order accepted"
        );
        // ... and the other way round.
        assert!(
            exec(
                db,
                &order,
                vec![tenant.into(), 900_002i64.into(), 100_001i64.into()]
            )
            .await
            .is_err(),
            "cross-tenant order accepted"
        );
        // Same tenant is fine.
        exec(
            db,
            &order,
            vec![other.into(), 900_003i64.into(), 100_001i64.into()],
        )
        .await
        .expect("same-tenant order");
        // fk_legacy_order_items_order_id: likewise one level down.
        let item = format!(
            "INSERT INTO legacy_order_items (tenant_id, id, order_id, sku, quantity, price_cents) VALUES ({}, {}, {}, 'S', 1, 1)",
            p(backend, 1),
            p(backend, 2),
            p(backend, 3)
        );
        assert!(
            exec(
                db,
                &item,
                vec![tenant.into(), 900_001i64.into(), 900_003i64.into()]
            )
            .await
            .is_err()
        );
        exec(
            db,
            &item,
            vec![other.into(), 900_001i64.into(), 900_003i64.into()],
        )
        .await
        .expect("same-tenant item");
        // tenant_id NOT NULL and fk_legacy_orders_tenant_id.
        assert!(
            exec(
                db,
                &order,
                vec![
                    Value::from(None::<uuid::Uuid>),
                    900_004i64.into(),
                    1i64.into()
                ]
            )
            .await
            .is_err()
        );
        assert!(
            exec(
                db,
                &order,
                vec![TenantId::new().into(), 900_005i64.into(), 1i64.into()]
            )
            .await
            .is_err()
        );
        // The data checks still pass with two tenants.
        let findings = adopt::validate(db, &plan).await.expect("validate");
        assert!(findings.is_empty(), "{findings:?}");

        // The integrity scan of `tenant-scope check` has nothing to say about the adopted tables.
        let mut options = tenant_scope_schema::check::CheckOptions::new(t.url());
        options.global = vec!["permissions".to_owned()];
        // Row level security is a separate step after adopting (docs/adopting.md, "After enforce"):
        // adopt makes the schema tenant-owned, it does not write policies.
        options.allow = ["rls-not-enabled", "rls-not-forced", "rls-no-policy"]
            .map(str::to_owned)
            .to_vec();
        let report = tenant_scope_schema::check::check(&options)
            .await
            .expect("check runs");
        let legacy: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.table.as_deref().is_some_and(|t| t.starts_with("legacy_")))
            .collect();
        assert!(legacy.is_empty(), "{legacy:#?}");

        test_support::say(&format!(
            "adopt ({}): 11,000 rows adopted in {} ms",
            t.backend(),
            started.elapsed().as_millis()
        ));
    }
);

test_support::backend_test!(each_step_rolls_back, |t: TestDb| async move {
    let db = t.raw();
    create_legacy(db).await;
    fill_legacy(db, 50).await;
    let legacy_shape = shapes(db).await;
    let data = checksums(db).await;
    let tenant = TenantId::new();
    let plan = plan(tenant);
    let options = BackfillOptions::batch_size(40);

    // expand -> rollback: the legacy shape, the same data.
    adopt::expand(db, &plan).await.expect("expand");
    let expanded_shape = shapes(db).await;
    assert_ne!(expanded_shape, legacy_shape);
    adopt::rollback_expand(db, &plan)
        .await
        .expect("rollback expand");
    adopt::rollback_expand(db, &plan)
        .await
        .expect("rollback expand again");
    assert_eq!(shapes(db).await, legacy_shape);
    assert_eq!(checksums(db).await, data);

    // backfill -> rollback: NULL again, in batches.
    adopt::expand(db, &plan).await.expect("expand again");
    let filled = adopt::backfill(db, &plan, &options)
        .await
        .expect("backfill");
    assert_eq!(filled.total(), 550);
    let emptied = adopt::rollback_backfill(db, &plan, &options)
        .await
        .expect("rollback backfill");
    assert_eq!(emptied.total(), 550);
    for table in TABLES {
        let n = count(
            db,
            &format!("SELECT COUNT(*) FROM {table} WHERE tenant_id IS NOT NULL"),
            vec![],
        )
        .await;
        assert_eq!(n, 0, "{table}");
    }
    assert_eq!(shapes(db).await, expanded_shape);
    assert_eq!(checksums(db).await, data);

    // enforce -> rollback: the expanded shape, the same data and tenants; enforce again works.
    adopt::backfill(db, &plan, &options)
        .await
        .expect("backfill again");
    adopt::enforce(db, &plan).await.expect("enforce");
    assert_ne!(shapes(db).await, expanded_shape);
    adopt::rollback_enforce(db, &plan)
        .await
        .expect("rollback enforce");
    adopt::rollback_enforce(db, &plan)
        .await
        .expect("rollback enforce again");
    assert_eq!(shapes(db).await, expanded_shape);
    assert_eq!(checksums(db).await, data);
    adopt::enforce(db, &plan)
        .await
        .expect("enforce after rollback");
    assert_eq!(checksums(db).await, data);

    // All the way back: enforce, backfill and expand rolled back give the legacy shape.
    adopt::rollback_enforce(db, &plan)
        .await
        .expect("rollback enforce");
    adopt::rollback_backfill(db, &plan, &options)
        .await
        .expect("rollback backfill");
    adopt::rollback_expand(db, &plan)
        .await
        .expect("rollback expand");
    assert_eq!(shapes(db).await, legacy_shape);
    assert_eq!(checksums(db).await, data);
});

test_support::backend_test!(
    validate_finds_orphans_and_cross_tenant_children,
    |t: TestDb| async move {
        let db = t.raw();
        let backend = db.get_database_backend();
        // No foreign keys in this legacy schema: orphans are possible.
        for sql in [
            "CREATE TABLE legacy_customers (id BIGINT NOT NULL, email VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL, PRIMARY KEY (id))",
            "CREATE TABLE legacy_orders (id BIGINT NOT NULL, customer_id BIGINT NOT NULL, number VARCHAR(32) NOT NULL, total_cents BIGINT NOT NULL, PRIMARY KEY (id))",
            "INSERT INTO legacy_customers VALUES (1, 'a@example.com', 'a'), (2, 'b@example.com', 'b')",
            "INSERT INTO legacy_orders VALUES (1, 1, 'N1', 1), (2, 2, 'N2', 1), (3, 99, 'N3', 1)",
        ] {
            db.execute_unprepared(sql).await.expect(sql);
        }
        let tenant = TenantId::new();
        let plan = AdoptPlan::new(tenant, "legacy")
            .table(AdoptTable::new("legacy_customers"))
            .table(AdoptTable::new("legacy_orders").references(
                "customer_id",
                "legacy_customers",
                OnDelete::Restrict,
            ));
        let findings = adopt::validate(db, &plan).await.expect("validate");
        assert_eq!(findings.len(), 2);
        assert!(
            findings
                .iter()
                .all(|f| f.kind == FindingKind::MissingTenantColumn)
        );

        adopt::expand(db, &plan).await.expect("expand");
        adopt::backfill(db, &plan, &BackfillOptions::default())
            .await
            .expect("backfill");
        // Customer 2 moves to another tenant: order 2 is now a cross-tenant child.
        let other = TenantId::new();
        exec(
            db,
            &format!(
                "INSERT INTO tenants (id, name, created_at) VALUES ({}, 'other', {})",
                p(backend, 1),
                p(backend, 2)
            ),
            vec![other.into(), chrono::Utc::now().into()],
        )
        .await
        .expect("tenant");
        exec(
            db,
            &format!(
                "UPDATE legacy_customers SET tenant_id = {} WHERE id = 2",
                p(backend, 1)
            ),
            vec![other.into()],
        )
        .await
        .expect("move customer");
        let mut kinds: Vec<_> = adopt::validate(db, &plan)
            .await
            .expect("validate")
            .into_iter()
            .map(|f| (f.kind, f.table, f.column, f.rows))
            .collect();
        kinds.sort_by_key(|k| format!("{k:?}"));
        assert_eq!(
            kinds,
            [
                (
                    FindingKind::CrossTenant,
                    "legacy_orders".to_owned(),
                    Some("customer_id".to_owned()),
                    1
                ),
                (
                    FindingKind::Orphan,
                    "legacy_orders".to_owned(),
                    Some("customer_id".to_owned()),
                    1
                ),
            ]
        );
        assert!(
            matches!(adopt::enforce(db, &plan).await, Err(AdoptError::NotClean(f)) if f.len() == 2)
        );
    }
);

// Every precondition is a named `AdoptError`, checked before anything is written: no tenants table,
// a tenants table whose `id` is not a UUID, a table without its id column or with an id of an
// unsupported type. After each refusal no table has gained `tenant_id` and no tenant row was
// inserted, including for the tables listed before the one that is refused.
test_support::backend_test!(
    preconditions_are_adopt_errors_and_change_nothing,
    |t: TestDb| async move {
        let db = t.raw();
        create_legacy(db).await;
        db.execute_unprepared(
            "CREATE TABLE legacy_notes (id VARCHAR(36) NOT NULL, body VARCHAR(255) NOT NULL, \
             PRIMARY KEY (id))",
        )
        .await
        .expect("legacy_notes");
        db.execute_unprepared(
            "CREATE TABLE legacy_orgs (id BIGINT NOT NULL, name VARCHAR(255) NOT NULL, \
             created_at VARCHAR(64) NOT NULL, PRIMARY KEY (id))",
        )
        .await
        .expect("legacy_orgs");
        let before = shapes(db).await;
        let tenants_before = count(db, "SELECT COUNT(*) FROM tenants", vec![]).await;
        let tenant = TenantId::new();

        // Every forward step checks the preconditions.
        async fn each_step(db: &DatabaseConnection, plan: &AdoptPlan) -> Vec<AdoptError> {
            vec![
                adopt::expand(db, plan).await.expect_err("expand"),
                adopt::backfill(db, plan, &BackfillOptions::default())
                    .await
                    .expect_err("backfill"),
                adopt::validate(db, plan).await.expect_err("validate"),
                adopt::enforce(db, plan).await.expect_err("enforce"),
            ]
        }

        let no_tenants = plan(tenant).tenants_table("accounts");
        for err in each_step(db, &no_tenants).await {
            assert!(
                matches!(&err, AdoptError::NoTenantsTable(t) if t == "accounts"),
                "{err:?}"
            );
            assert!(
                err.to_string().contains("no tenants table `accounts`"),
                "{err}"
            );
        }

        let integer_tenants = plan(tenant).tenants_table("legacy_orgs");
        for err in each_step(db, &integer_tenants).await {
            assert!(
                matches!(&err, AdoptError::TenantsTable { table, problem }
                    if table == "legacy_orgs" && problem.contains("not a UUID")),
                "{err:?}"
            );
        }

        // The bad table comes last: the ones before it must not have been expanded.
        let text_id = plan(tenant).table(AdoptTable::new("legacy_notes"));
        for err in each_step(db, &text_id).await {
            assert!(
                matches!(&err, AdoptError::UnsupportedId { table, column, found }
                    if table == "legacy_notes" && column == "id" && found.starts_with("is `")),
                "{err:?}"
            );
            assert!(err.to_string().contains("a UUID or a 32/64-bit"), "{err}");
        }

        let no_id = plan(tenant).table(AdoptTable::new("legacy_notes").id_column("note_no"));
        for err in each_step(db, &no_id).await {
            assert!(
                matches!(&err, AdoptError::UnsupportedId { column, found, .. }
                    if column == "note_no" && found == "does not exist"),
                "{err:?}"
            );
        }

        assert_eq!(shapes(db).await, before, "a refused step changed a table");
        assert_eq!(
            count(db, "SELECT COUNT(*) FROM tenants", vec![]).await,
            tenants_before,
            "a refused step inserted a tenant"
        );
        // The same plan without the bad table runs.
        adopt::expand(db, &plan(tenant)).await.expect("expand");
    }
);
