//! One table, one entity, whichever backend generated it: `tenant-scope generate` on a table of most
//! column types gives byte for byte the checked-in `tests/fixtures/widgets.rs` on SQLite, PostgreSQL
//! and MySQL / MariaDB (the catalog's `normalize` makes the backends' spellings the same), and the
//! values read back through the field types it declares (`Json`, `Vec<u8>`, `DateTime`, ...). The two
//! differences the databases do not keep are pinned too, so the docs that describe them stay true.

use std::path::Path;

use sea_orm::sea_query::{ColumnDef, Expr, Query};
use sea_orm::{ConnectionTrait, DbBackend};
use tenant_scope::TenantId;
use tenant_scope_cli::codegen::{GenerateOptions, generate};
use tenant_scope_schema::TenantTable;
use test_support::TestDb;

const GLOBAL: [&str; 2] = ["tenants", "permissions"];

/// A tenant-owned table with one column of each type the normalisation covers.
fn widgets() -> TenantTable {
    TenantTable::new("widgets")
        .col(ColumnDef::new("label").string().not_null())
        .col(ColumnDef::new("body").text().not_null())
        .col(ColumnDef::new("count").big_integer().not_null())
        .col(ColumnDef::new("small").small_integer().not_null())
        .col(ColumnDef::new("flag").boolean().not_null())
        .col(ColumnDef::new("other").uuid().null())
        .col(ColumnDef::new("at").timestamp_with_time_zone().not_null())
        .col(ColumnDef::new("naive").date_time().null())
        .col(ColumnDef::new("day").date().null())
        .col(ColumnDef::new("doc").json().null())
        .col(ColumnDef::new("doc_b").json_binary().null())
        .col(ColumnDef::new("ratio").float().null())
        .col(ColumnDef::new("score").double().null())
        .col(ColumnDef::new("amount").decimal_len(12, 2).null())
        .col(ColumnDef::new("bytes").blob().null())
        .col(ColumnDef::new("short_bytes").var_binary(64).null())
}

async fn generated(t: &TestDb, file: &str) -> String {
    let generated = generate(&GenerateOptions {
        database_url: t.url().to_owned(),
        global: GLOBAL.iter().map(|g| (*g).to_owned()).collect(),
        ..GenerateOptions::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{}: {e}", t.backend()));
    generated
        .files
        .get(Path::new(file))
        .unwrap_or_else(|| panic!("{file} was not generated"))
        .clone()
}

test_support::backend_test!(
    one_table_gives_one_entity_on_every_backend,
    |t: TestDb| async move {
        let db = t.raw();
        let stmt = widgets().build().expect("widgets");
        db.execute(&stmt).await.expect("create widgets");
        let expected = include_str!("fixtures/widgets.rs");
        let got = generated(&t, "widgets.rs").await;
        assert!(
            got == expected,
            "{}: widgets.rs differs from tests/fixtures/widgets.rs:\n{got}",
            t.backend()
        );

        // The values read back as the types the entity declares.
        let tenant = tenant_row(&t).await;
        let doc = serde_json::json!({"a": [1, 2, {"b": null}]});
        let insert = Query::insert()
            .into_table("widgets")
            .columns([
                "tenant_id",
                "id",
                "label",
                "body",
                "count",
                "small",
                "flag",
                "at",
                "naive",
                "doc",
                "doc_b",
                "bytes",
                "short_bytes",
            ])
            .values_panic([
                tenant.into(),
                uuid::Uuid::now_v7().into(),
                "w".into(),
                "body".into(),
                (i64::MAX).into(),
                7i16.into(),
                true.into(),
                chrono::Utc::now().into(),
                chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
                    .and_then(|d| d.and_hms_opt(10, 0, 0))
                    .expect("a date")
                    .into(),
                doc.clone().into(),
                doc.clone().into(),
                vec![0u8, 1, 2, 255].into(),
                vec![9u8; 64].into(),
            ])
            .to_owned();
        db.execute(&insert).await.expect("insert a widget");
        let select = Query::select()
            .exprs([
                Expr::col("count"),
                Expr::col("doc"),
                Expr::col("doc_b"),
                Expr::col("bytes"),
                Expr::col("short_bytes"),
                Expr::col("naive"),
            ])
            .from("widgets")
            .to_owned();
        let row = db.query_one(&select).await.expect("select").expect("a row");
        assert_eq!(row.try_get::<i64>("", "count").expect("count"), i64::MAX);
        assert_eq!(
            row.try_get::<serde_json::Value>("", "doc").expect("doc"),
            doc
        );
        assert_eq!(
            row.try_get::<serde_json::Value>("", "doc_b")
                .expect("doc_b"),
            doc
        );
        assert_eq!(
            row.try_get::<Vec<u8>>("", "bytes").expect("bytes"),
            [0, 1, 2, 255]
        );
        assert_eq!(
            row.try_get::<Vec<u8>>("", "short_bytes").expect("short"),
            [9; 64]
        );
        let naive: chrono::NaiveDateTime = row.try_get("", "naive").expect("naive");
        assert_eq!(naive.to_string(), "2026-12-02 10:00:00");
    }
);

// What the databases do not keep, pinned: `integer()` is SQLite's 64-bit INTEGER, and MySQL writes
// `timestamp()` like `timestamp_with_time_zone()`. docs and the `normalize` docs say so.
test_support::backend_test!(
    the_differences_the_databases_do_not_keep,
    |t: TestDb| async move {
        let stmt = TenantTable::new("gauges")
            .col(ColumnDef::new("level").integer().not_null())
            .col(ColumnDef::new("seen").timestamp().not_null())
            .build()
            .expect("gauges");
        t.raw().execute(&stmt).await.expect("create gauges");
        let file = generated(&t, "gauges.rs").await;
        let (level, seen) = match t.db_backend() {
            DbBackend::Sqlite => ("pub level: i64,", "pub seen: DateTime,"),
            DbBackend::Postgres => ("pub level: i32,", "pub seen: DateTime,"),
            _ => ("pub level: i32,", "pub seen: DateTimeUtc,"),
        };
        assert!(
            file.contains(level) && file.contains(seen),
            "{}:\n{file}",
            t.backend()
        );
    }
);

/// A tenant row for the widget to belong to.
async fn tenant_row(t: &TestDb) -> TenantId {
    let id = TenantId::new();
    let insert = Query::insert()
        .into_table("tenants")
        .columns(["id", "name", "created_at"])
        .values_panic([
            id.into(),
            format!("t {id}").into(),
            chrono::Utc::now().into(),
        ])
        .to_owned();
    t.raw().execute(&insert).await.expect("a tenant");
    id
}
