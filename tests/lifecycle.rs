//! `tenant_scope::lifecycle` on every backend: export -> erase -> import gives back the same rows (and a
//! byte-identical export), an erase never touches another tenant (property test), an interrupted erase
//! resumes while the certificate names what is left, a tenant-owned table added later is covered without a
//! change to the library, and the refusals (an active tenant, a tampered file, a tenant that exists) change
//! nothing. Every step writes its `system_audit_events` row.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use entity::{comments, projects, tasks};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use sea_orm::sea_query::{ColumnDef, Expr, ExprTrait, Order, Query};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, FromQueryResult, JsonValue};
use sea_orm_migration::SchemaManager;
use tenant_scope::lifecycle::{self, Certificate};
use tenant_scope::provision::{self, TenantStatus};
use tenant_scope::{ApiKeyVerifier, Error, TenantDb, TenantId};
use tenant_scope_catalog::Catalog;
use tenant_scope_schema::{OnDelete, TenantTable, rls};
use test_support::{BlockingTestDb, TestDb};
use uuid::Uuid;

const KEY: &[u8] = b"the auditors' key";

/// Every row of every table with `tenant_id`, read as the owner with `SELECT *` (not with the
/// library's codec), as JSON with UUIDs read as bytes made text; of `tenant` only if given.
async fn snapshot(
    conn: &DatabaseConnection,
    tenant: Option<TenantId>,
) -> BTreeMap<String, Vec<JsonValue>> {
    let catalog = Catalog::reader()
        .without_security()
        .read(conn)
        .await
        .expect("catalog");
    let mut rows = BTreeMap::new();
    for table in catalog
        .tables
        .values()
        .filter(|t| t.has_column("tenant_id"))
    {
        let mut select = Query::select();
        select
            .expr(Expr::cust("*"))
            .from(table.name.clone())
            .order_by("tenant_id", Order::Asc)
            .order_by("id", Order::Asc);
        if let Some(tenant) = tenant {
            select.and_where(Expr::col("tenant_id").eq(tenant));
        }
        let read = conn.query_all(&select).await.expect("rows");
        let json = read
            .iter()
            .map(|r| normalize(JsonValue::from_query_result(r, "").expect("json")))
            .collect();
        rows.insert(table.name.clone(), json);
    }
    rows
}

/// The `tenants` row and every `permissions` row, as JSON.
async fn globals(conn: &DatabaseConnection, tenant: TenantId) -> Vec<JsonValue> {
    let mut out = Vec::new();
    let mut tenants = Query::select();
    tenants
        .expr(Expr::cust("*"))
        .from("tenants")
        .and_where(Expr::col("id").eq(tenant));
    let mut permissions = Query::select();
    permissions
        .expr(Expr::cust("*"))
        .from("permissions")
        .order_by("id", Order::Asc);
    for select in [tenants, permissions] {
        for row in conn.query_all(&select).await.expect("rows") {
            out.push(normalize(
                JsonValue::from_query_result(&row, "").expect("json"),
            ));
        }
    }
    out
}

fn normalize(row: JsonValue) -> JsonValue {
    let JsonValue::Object(map) = row else {
        return row;
    };
    let uuid = |v: &JsonValue| {
        let bytes: Vec<u8> = v
            .as_array()?
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect::<Option<_>>()?;
        Some(JsonValue::String(
            Uuid::from_slice(&bytes).ok()?.to_string(),
        ))
    };
    JsonValue::Object(
        map.into_iter()
            .map(|(k, v)| (k, uuid(&v).unwrap_or(v)))
            .collect(),
    )
}

/// The rows of `snapshot` whose tenant is not `tenant`.
fn without(
    snapshot: &BTreeMap<String, Vec<JsonValue>>,
    tenant: TenantId,
) -> BTreeMap<String, Vec<JsonValue>> {
    let id = JsonValue::String(tenant.to_string());
    snapshot
        .iter()
        .map(|(t, rows)| {
            let rows = rows.iter().filter(|r| r.get("tenant_id") != Some(&id));
            (t.clone(), rows.cloned().collect())
        })
        .collect()
}

fn count(snapshot: &BTreeMap<String, Vec<JsonValue>>) -> usize {
    snapshot.values().map(Vec::len).sum()
}

/// The reasons of `system_audit_events`.
async fn audit_reasons(conn: &DatabaseConnection) -> Vec<(String, String)> {
    let mut select = Query::select();
    select.columns(["id", "reason"]).from("system_audit_events");
    let rows = conn.query_all(&select).await.expect("audit");
    rows.iter()
        .map(|r| {
            let id: Uuid = r.try_get("", "id").expect("id");
            (id.to_string(), r.try_get("", "reason").expect("reason"))
        })
        .collect()
}

async fn mark_deleted(db: &TenantDb, tenant: TenantId) {
    let system = db.system("test: delete a tenant").await.expect("system");
    provision::set_status(&system, tenant, TenantStatus::Deleted)
        .await
        .expect("deleted");
}

/// A job of `tenant`, written raw (the queue is not what is tested here).
async fn raw_job(conn: &DatabaseConnection, tenant: TenantId) {
    let now = Utc::now();
    let mut insert = Query::insert();
    insert
        .into_table("jobs")
        .columns([
            "tenant_id",
            "id",
            "kind",
            "payload",
            "context",
            "state",
            "attempts",
            "max_attempts",
            "run_at",
            "locked_until",
            "worker",
            "last_error",
            "created_at",
            "updated_at",
        ])
        .values_panic([
            Expr::val(tenant),
            Expr::val(Uuid::now_v7()),
            Expr::val("mail"),
            Expr::val(r#"{"to":"alice@example.com","n":1.5}"#),
            Expr::val("sealed"),
            Expr::val("queued"),
            Expr::val(0i64),
            Expr::val(5i64),
            Expr::val(now),
            Expr::val(Option::<chrono::DateTime<Utc>>::None),
            Expr::val(Option::<String>::None),
            Expr::val("line one\nline \"two\" ünïcode"),
            Expr::val(now),
            Expr::val(now),
        ]);
    conn.execute(&insert).await.expect("job");
}

/// `n` more projects of `tenant`, in one raw statement (more than a page of the export).
async fn raw_projects(conn: &DatabaseConnection, tenant: TenantId, n: usize) {
    let mut insert = Query::insert();
    insert
        .into_table("projects")
        .columns(["tenant_id", "id", "name", "created_at"]);
    for i in 0..n {
        insert.values_panic([
            Expr::val(tenant),
            Expr::val(Uuid::now_v7()),
            Expr::val(format!("bulk project {i}")),
            Expr::val(Utc::now()),
        ]);
    }
    conn.execute(&insert).await.expect("projects");
}

/// The reference demo (Acme, Globex: every reference table filled), a task assigned and done, a job
/// each, and 1100 more projects of Acme.
async fn demo(t: &TestDb, db: &TenantDb) -> reference_service::Seed {
    let seed = reference_service::seed_demo(db).await.expect("seed");
    reference_service::seed_demo_tasks(db, &seed)
        .await
        .expect("tasks");
    let system = db.system("test: more rows").await.expect("system");
    let ctx = system.context_for(seed.acme.id);
    let scope = db.scope(&ctx);
    scope
        .insert(tasks::ActiveModel {
            project_id: Set(seed.acme.project_id),
            assignee_id: Set(Some(seed.acme.viewer_user)),
            title: Set("it's \"done\"".into()),
            done: Set(true),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await
        .expect("task");
    for tenant in [seed.acme.id, seed.globex.id] {
        raw_job(t.raw(), tenant).await;
    }
    raw_projects(t.raw(), seed.acme.id, 1100).await;
    seed
}

test_support::backend_test!(
    export_erase_import_gives_back_the_same_rows,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let seed = demo(&t, &db).await;
        let (acme, globex) = (seed.acme.id, seed.globex.id);
        let before = snapshot(t.raw(), Some(acme)).await;
        let before_globals = globals(t.raw(), acme).await;
        let globex_before = snapshot(t.raw(), Some(globex)).await;
        for table in [
            "users",
            "roles",
            "role_permissions",
            "user_roles",
            "api_keys",
            "audit_events",
            "jobs",
            "projects",
            "tasks",
            "comments",
        ] {
            assert!(!before[table].is_empty(), "the demo has rows in {table}");
        }

        let mut file = Vec::new();
        let manifest = lifecycle::export(&db, acme, &mut file)
            .await
            .expect("export");
        assert_eq!(manifest.tenant.id, acme);
        for (table, rows) in &before {
            let listed = manifest
                .table(table)
                .expect("every tenant-owned table is listed");
            assert_eq!(listed.rows as usize, rows.len(), "{table}");
        }
        assert_eq!(manifest.rows() as usize, count(&before));
        assert!(manifest.table("projects").is_some_and(|p| p.rows > 1000));
        let order: Vec<&str> = manifest.tables.iter().map(|t| t.table.as_str()).collect();
        let at = |t: &str| order.iter().position(|x| *x == t).expect("listed");
        assert!(at("projects") < at("tasks") && at("tasks") < at("comments"));
        assert!(at("users") < at("api_keys") && at("roles") < at("role_permissions"));
        assert!(
            manifest
                .globals
                .iter()
                .any(|g| g.table == "permissions" && g.rows > 0),
            "the permissions its roles grant travel with it: {:?}",
            manifest.globals
        );

        mark_deleted(&db, acme).await;
        let report = lifecycle::erase(&db, acme, 100).await.expect("erase");
        assert!(report.finished);
        assert_eq!(report.rows() as usize, count(&before));
        let certificate = lifecycle::certify_erased(&db, acme, KEY)
            .await
            .expect("certify");
        assert!(certificate.passed(), "{certificate}");
        assert!(certificate.verify(KEY));
        assert_eq!(count(&snapshot(t.raw(), Some(acme)).await), 0);
        assert_eq!(snapshot(t.raw(), Some(globex)).await, globex_before);

        // Into a second fresh database of the same backend.
        let other = TestDb::create(t.backend())
            .await
            .expect("the backend is configured");
        let target = other.tenant_db().await;
        let imported = lifecycle::import(&target, file.as_slice())
            .await
            .expect("import");
        assert_eq!(imported, manifest);
        assert_eq!(snapshot(other.raw(), Some(acme)).await, before);
        assert_eq!(globals(other.raw(), acme).await, before_globals);

        // The rows are the tenant's, ids and hashes kept: its API key verifies there.
        let ctx = target
            .verify(&ApiKeyVerifier, seed.acme.admin_key.key.clone())
            .await
            .expect("the imported key verifies");
        assert_eq!(ctx.tenant(), acme);
        // Every value came back exactly: the export of the copy is the same file, byte for byte.
        let mut again = Vec::new();
        lifecycle::export(&target, acme, &mut again)
            .await
            .expect("export the copy");
        assert!(again == file, "the copy exports to the same bytes");

        // Each step wrote its audited system access.
        let here = audit_reasons(t.raw()).await;
        for step in ["export", "erase", "certify erased"] {
            let reason = format!("{step} tenant {acme}");
            assert!(here.iter().any(|(_, r)| *r == reason), "{reason}: {here:?}");
        }
        assert!(here.contains(&(report.event.to_string(), format!("erase tenant {acme}"))));
        assert!(here.contains(&(
            certificate.event.to_string(),
            format!("certify erased tenant {acme}")
        )));
        let there = audit_reasons(other.raw()).await;
        assert!(
            there
                .iter()
                .any(|(_, r)| *r == format!("import tenant {acme}"))
        );
        drop(target);
        other.drop_db().await.expect("drop the second database");
    }
);

test_support::backend_test!(
    an_interrupted_erase_resumes_and_the_certificate_names_what_is_left,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let seed = reference_service::seed_demo(&db).await.expect("seed");
        reference_service::seed_demo_tasks(&db, &seed)
            .await
            .expect("tasks");
        let (acme, globex) = (seed.acme.id, seed.globex.id);
        // Enough rows that an erase of one row per batch takes a while.
        raw_projects(t.raw(), acme, 300).await;
        let globex_before = snapshot(t.raw(), Some(globex)).await;
        let total = count(&snapshot(t.raw(), Some(acme)).await);
        mark_deleted(&db, acme).await;

        // Stopped by its batch limit: three statements of one row each.
        let part = lifecycle::erase_limited(&db, acme, 1, 3)
            .await
            .expect("erase");
        assert!(!part.finished);
        assert_eq!(part.batches, 3);
        let left_rows = count(&snapshot(t.raw(), Some(acme)).await);
        assert!(part.rows() >= 1, "{part:?}");
        assert_eq!(left_rows as u64, total as u64 - part.rows(), "{part:?}");
        let certificate = lifecycle::certify_erased(&db, acme, KEY)
            .await
            .expect("certify");
        assert!(!certificate.passed());
        assert!(certificate.verify(KEY));
        let left: Vec<&str> = certificate.remaining().map(|t| t.table.as_str()).collect();
        let text = certificate.to_string();
        assert!(text.contains("result: FAILED"), "{text}");
        for table in &left {
            assert!(text.contains(table), "the report names {table}: {text}");
        }
        assert!(
            left.contains(&"users") && left.contains(&"projects"),
            "{left:?}"
        );

        // Dropped midway: as soon as a batch of it has committed, the future is dropped.
        let before_drop = count(&snapshot(t.raw(), Some(acme)).await);
        {
            let erase = lifecycle::erase(&db, acme, 1);
            tokio::pin!(erase);
            let mut polls = 0;
            loop {
                tokio::select! {
                    done = &mut erase => { done.expect("erase"); break; }
                    () = tokio::time::sleep(Duration::from_millis(2)) => {
                        polls += 1;
                        let now = count(&snapshot(t.raw(), Some(acme)).await);
                        if now < before_drop || polls > 5000 { break; }
                    }
                }
            }
        }
        let after_drop = count(&snapshot(t.raw(), Some(acme)).await);
        assert!(
            0 < after_drop && after_drop < before_drop,
            "dropped midway: {before_drop} rows before, {after_drop} after"
        );

        // Called again, it finishes; nothing of Globex was touched at any point.
        let rest = lifecycle::erase(&db, acme, 2).await.expect("erase");
        assert!(rest.finished);
        let certificate = lifecycle::certify_erased(&db, acme, KEY)
            .await
            .expect("certify");
        assert!(certificate.passed(), "{certificate}");
        assert_eq!(count(&snapshot(t.raw(), Some(acme)).await), 0);
        assert_eq!(snapshot(t.raw(), Some(globex)).await, globex_before);
        // The tombstone stays.
        let system = db.system("test: read the status").await.expect("system");
        assert_eq!(
            provision::tenant_status(&system, acme)
                .await
                .expect("status"),
            Some(TenantStatus::Deleted)
        );
    }
);

/// Creates the tenant-owned table `notes` (-> projects, `ON DELETE RESTRICT`, so the erase must
/// take it first), with row level security and the grants on PostgreSQL, as a later migration would.
async fn create_notes(conn: &DatabaseConnection) {
    let manager = SchemaManager::new(conn);
    TenantTable::new("notes")
        .col(ColumnDef::new("project_id").uuid().not_null())
        .col(ColumnDef::new("body").text().not_null())
        .col(ColumnDef::new("weight").double().null())
        .col(ColumnDef::new("count").big_integer().not_null())
        .col(ColumnDef::new("flag").boolean().not_null())
        .col(ColumnDef::new("blob").var_binary(64).null())
        .col(ColumnDef::new("at").timestamp_with_time_zone().not_null())
        .references("project_id", "projects", OnDelete::Restrict)
        .create(&manager)
        .await
        .expect("create notes");
    rls::enable_rls(&manager, &["notes"]).await.expect("rls");
    rls::grant_app_role(&manager, rls::DEFAULT_APP_ROLE, &["notes"], &[])
        .await
        .expect("grants");
}

test_support::backend_test!(
    a_table_added_later_is_exported_erased_and_certified,
    |t: TestDb| async move {
        let db = t.tenant_db().await;
        let seed = reference_service::seed_demo(&db).await.expect("seed");
        create_notes(t.raw()).await;
        for (tenant, project) in [
            (seed.acme.id, seed.acme.project_id),
            (seed.globex.id, seed.globex.project_id),
        ] {
            for (i, weight) in [Some(0.1), Some(-1e-300), None].into_iter().enumerate() {
                let mut insert = Query::insert();
                insert
                    .into_table("notes")
                    .columns([
                        "tenant_id",
                        "id",
                        "project_id",
                        "body",
                        "weight",
                        "count",
                        "flag",
                        "blob",
                        "at",
                    ])
                    .values_panic([
                        Expr::val(tenant),
                        Expr::val(Uuid::now_v7()),
                        Expr::val(project),
                        Expr::val(format!("note {i}: \"quoted\", tab\t, ünïcode ✓")),
                        Expr::val(weight),
                        Expr::val(i64::MAX - i as i64),
                        Expr::val(i == 1),
                        Expr::val((i != 2).then(|| vec![0u8, 1, 0x7f, 0xff])),
                        Expr::val(Utc::now()),
                    ]);
                t.raw().execute(&insert).await.expect("note");
            }
        }
        let acme = seed.acme.id;
        let before = snapshot(t.raw(), Some(acme)).await;
        assert_eq!(before["notes"].len(), 3);
        let globex_before = snapshot(t.raw(), Some(seed.globex.id)).await;

        let mut file = Vec::new();
        let manifest = lifecycle::export(&db, acme, &mut file)
            .await
            .expect("export");
        assert_eq!(manifest.table("notes").map(|n| n.rows), Some(3));
        let order: Vec<&str> = manifest.tables.iter().map(|t| t.table.as_str()).collect();
        let at = |t: &str| order.iter().position(|x| *x == t).expect("listed");
        assert!(at("projects") < at("notes"), "{order:?}");

        mark_deleted(&db, acme).await;
        lifecycle::erase(&db, acme, 2).await.expect("erase");
        let certificate: Certificate = lifecycle::certify_erased(&db, acme, KEY)
            .await
            .expect("certify");
        assert!(certificate.passed(), "{certificate}");
        assert!(
            certificate
                .tables
                .iter()
                .any(|c| c.table == "notes" && c.rows == 0)
        );
        assert_eq!(snapshot(t.raw(), Some(seed.globex.id)).await, globex_before);

        // A database without `notes` refuses the file and is left as it was.
        let other = TestDb::create(t.backend()).await.expect("configured");
        let target = other.tenant_db().await;
        let empty = snapshot(other.raw(), None).await;
        let refused = lifecycle::import(&target, file.as_slice()).await;
        assert!(
            matches!(&refused, Err(Error::Invalid(m)) if m.contains("notes")),
            "{refused:?}"
        );
        assert_eq!(snapshot(other.raw(), None).await, empty);
        assert!(globals(other.raw(), acme).await.is_empty());
        // With it (the same schema), the rows come back, exactly.
        create_notes(other.raw()).await;
        lifecycle::import(&target, file.as_slice())
            .await
            .expect("import");
        assert_eq!(snapshot(other.raw(), Some(acme)).await, before);
        let mut again = Vec::new();
        lifecycle::export(&target, acme, &mut again)
            .await
            .expect("export");
        assert!(again == file, "the copy exports to the same bytes");
        drop(target);
        other.drop_db().await.expect("drop");
    }
);

/// `file` with line `index` (0-based) changed by `f`.
fn edit_line(file: &[u8], index: usize, f: impl FnOnce(&str) -> String) -> Vec<u8> {
    let text = std::str::from_utf8(file).expect("utf-8");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[index] = f(&lines[index]);
    (lines.join("\n") + "\n").into_bytes()
}

test_support::backend_test!(refusals_change_nothing, |t: TestDb| async move {
    let db = t.tenant_db().await;
    let seed = reference_service::seed_demo(&db).await.expect("seed");
    reference_service::seed_demo_tasks(&db, &seed)
        .await
        .expect("tasks");
    let (acme, globex) = (seed.acme.id, seed.globex.id);
    let all = snapshot(t.raw(), None).await;

    // Erase refuses an active tenant, and a tenant that does not exist.
    let active = lifecycle::erase(&db, acme, 10).await;
    assert!(
        matches!(&active, Err(Error::Invalid(m)) if m.contains("only a deleted tenant")),
        "{active:?}"
    );
    assert!(
        lifecycle::erase(&db, TenantId::new(), 10)
            .await
            .is_err_and(|e| e.is_not_found())
    );
    assert!(matches!(
        lifecycle::erase(&db, acme, 0).await,
        Err(Error::Invalid(_))
    ));
    assert_eq!(snapshot(t.raw(), None).await, all);
    assert!(
        audit_reasons(t.raw())
            .await
            .iter()
            .any(|(_, r)| *r == format!("erase tenant {acme}")),
        "the refused attempt is audited"
    );
    // An active tenant's certificate fails although it is audited and signed.
    let certificate = lifecycle::certify_erased(&db, acme, KEY)
        .await
        .expect("certify");
    assert!(!certificate.passed() && certificate.verify(KEY));
    assert!(matches!(
        lifecycle::certify_erased(&db, acme, b"").await,
        Err(Error::Invalid(_))
    ));

    let mut file = Vec::new();
    lifecycle::export(&db, acme, &mut file)
        .await
        .expect("export");
    // Importing a tenant that exists is a conflict: here, the same tenant.
    let same = lifecycle::import(&db, file.as_slice()).await;
    assert!(same.is_err_and(|e| e.is_conflict()));
    assert_eq!(snapshot(t.raw(), None).await, all);

    let other = TestDb::create(t.backend()).await.expect("configured");
    let target = other.tenant_db().await;
    let empty = snapshot(other.raw(), None).await;
    let text = String::from_utf8(file.clone()).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    let row = lines
        .iter()
        .position(|l| l.starts_with(r#"{"row":{"table":"projects""#))
        .expect("a project line");
    let manifest = lines.len() - 1;
    let globex_id = |line: &str| {
        // The row's `tenant_id` made Globex's, in the form the file holds it.
        let mut json: JsonValue = serde_json::from_str(line).expect("json");
        let value = &mut json["row"]["values"]["tenant_id"];
        *value = match value {
            JsonValue::String(_) => JsonValue::String(globex.to_string()),
            _ => serde_json::json!({ "hex": hex::encode(globex.into_uuid().as_bytes()) }),
        };
        json.to_string()
    };
    let tampered: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a changed value",
            edit_line(&file, row, |l| l.replace("Roadmap", "Roadmaq")),
            "does not match its manifest",
        ),
        (
            "an unknown table",
            edit_line(&file, row, |l| {
                l.replacen("\"projects\"", "\"projectz\"", 1)
            }),
            "projectz",
        ),
        (
            "a malformed line",
            edit_line(&file, row, |l| l[..l.len() / 2].to_owned()),
            "not a line of",
        ),
        (
            "a row of another tenant",
            edit_line(&file, row, globex_id),
            "not of the file's tenant",
        ),
        (
            "a changed manifest",
            edit_line(&file, manifest, |l| {
                l.replacen("\"rows\":1,", "\"rows\":2,", 1)
            }),
            "manifest",
        ),
        (
            "no manifest",
            lines[..manifest].join("\n").into_bytes(),
            "truncated",
        ),
        (
            "another backend",
            edit_line(&file, 0, |l| {
                let name = format!(
                    "\"backend\":\"{}\"",
                    match t.backend() {
                        test_support::Backend::Sqlite => "sqlite",
                        test_support::Backend::Postgres => "postgres",
                        test_support::Backend::Mysql => "mysql",
                    }
                );
                l.replacen(&name, "\"backend\":\"oracle\"", 1)
            }),
            "oracle",
        ),
        ("an empty file", Vec::new(), "empty"),
    ];
    for (what, bytes, says) in tampered {
        assert_ne!(bytes, file, "{what}: the file was changed");
        let result = lifecycle::import(&target, bytes.as_slice()).await;
        match &result {
            Err(Error::Invalid(message)) => assert!(message.contains(says), "{what}: {message}"),
            other => panic!("{what}: expected Error::Invalid, got {other:?}"),
        }
        assert_eq!(
            snapshot(other.raw(), None).await,
            empty,
            "{what}: nothing written"
        );
        assert!(
            globals(other.raw(), acme).await.is_empty(),
            "{what}: no tenant, no permission"
        );
    }
    // The untouched file imports; a second import of it is a conflict and changes nothing.
    lifecycle::import(&target, file.as_slice())
        .await
        .expect("import");
    let imported = snapshot(other.raw(), None).await;
    let again = lifecycle::import(&target, file.as_slice()).await;
    assert!(again.is_err_and(|e| e.is_conflict()));
    assert_eq!(snapshot(other.raw(), None).await, imported);
    drop(target);
    other.drop_db().await.expect("drop");
});

/// One tenant of a property-test case: how many rows of each kind it gets.
#[derive(Clone, Debug)]
struct Shape {
    users: usize,
    projects: Vec<Vec<usize>>,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        1usize..3,
        prop::collection::vec(prop::collection::vec(0usize..3, 0..3), 0..3),
    )
        .prop_map(|(users, projects)| Shape { users, projects })
}

/// A tenant seeded through the library: users with a role, projects, tasks (some assigned),
/// comments.
async fn seeded(db: &TenantDb, shape: &Shape) -> TenantId {
    let system = db.system("test: seed a tenant").await.expect("system");
    let permissions = test_support::permissions(&system, &["tasks.write"]).await;
    let ctx = test_support::new_tenant(&system).await;
    drop(system);
    let scope = db.scope(&ctx);
    let role = provision::create_role(&scope, "member", &[permissions[0].id])
        .await
        .expect("role");
    let mut users = Vec::new();
    for u in 0..shape.users {
        let user = provision::create_user(&scope, &format!("u{u}@example.com"), "User")
            .await
            .expect("user");
        provision::add_member(&scope, user, role.id)
            .await
            .expect("member");
        users.push(user);
    }
    for (p, tasks_) in shape.projects.iter().enumerate() {
        let project = scope
            .insert(projects::ActiveModel {
                name: Set(format!("project {p}")),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await
            .expect("project");
        for (k, comments_) in tasks_.iter().enumerate() {
            let task = scope
                .insert(tasks::ActiveModel {
                    project_id: Set(project.id),
                    assignee_id: Set((k % 2 == 0).then(|| users[k % users.len()])),
                    title: Set(format!("task {k}")),
                    done: Set(k % 3 == 0),
                    created_at: Set(Utc::now()),
                    ..Default::default()
                })
                .await
                .expect("task");
            for c in 0..*comments_ {
                scope
                    .insert(comments::ActiveModel {
                        task_id: Set(task.id),
                        author_id: Set(users[c % users.len()]),
                        body: Set(format!("comment {c}")),
                        created_at: Set(Utc::now()),
                        ..Default::default()
                    })
                    .await
                    .expect("comment");
            }
        }
    }
    ctx.tenant()
}

/// The exports of `tenants`, as bytes: every value of every tenant-owned table, exactly.
async fn exports(db: &TenantDb, tenants: &[TenantId]) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    for tenant in tenants {
        let mut file = Vec::new();
        lifecycle::export(db, *tenant, &mut file)
            .await
            .expect("export");
        files.push(file);
    }
    files
}

test_support::blocking_backend_test!(erase_never_touches_another_tenant, |t: &BlockingTestDb| {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let config = Config {
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::with_cases(10)
    };
    let db = t.block_on(t.db().tenant_db());
    let cases = (
        prop::collection::vec(shape(), 2..5),
        any::<prop::sample::Index>(),
        1u64..6,
    );
    let result = TestRunner::new(config).run(&cases, |(shapes, victim, batch)| {
        t.block_on(async {
            let mut tenants = Vec::new();
            for shape in &shapes {
                tenants.push(seeded(&db, shape).await);
            }
            let victim = tenants[victim.index(tenants.len())];
            // Every tenant of the database (those of earlier cases too), but the victim.
            let others = without(&snapshot(t.db().raw(), None).await, victim);
            let survivors: Vec<TenantId> =
                tenants.iter().copied().filter(|x| *x != victim).collect();
            let files = exports(&db, &survivors).await;

            mark_deleted(&db, victim).await;
            let report = lifecycle::erase(&db, victim, batch).await.expect("erase");
            assert!(report.finished);
            let certificate = lifecycle::certify_erased(&db, victim, KEY)
                .await
                .expect("certify");
            assert!(certificate.passed(), "{certificate}");

            let after = snapshot(t.db().raw(), None).await;
            assert_eq!(
                without(&after, victim),
                others,
                "no other tenant's row changed"
            );
            assert_eq!(
                count(&after),
                count(&others),
                "and the victim has none left"
            );
            assert!(
                exports(&db, &survivors).await == files,
                "the survivors export to the same bytes"
            );
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e} (replay with PROPTEST_RNG_SEED={seed})");
    }
});

/// PostgreSQL: every step works as the documented system role (`NOSUPERUSER BYPASSRLS` with the table
/// grants of `rls::grant_system_role_statement`), not only as a superuser: it may delete the tenant's
/// `audit_events`, which are append-only for the application role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_runs_as_the_documented_system_role() {
    test_support::run(test_support::Backend::Postgres, |t: TestDb| async move {
        let connect = |t: &TestDb, role: &test_support::TestRole| {
            TenantDb::options(t.app_url().as_str())
                .system(test_support::connect_options(role.url()))
                .connect()
        };
        let role = test_support::TestRole::create(&t, "NOSUPERUSER BYPASSRLS").await;
        let db = connect(&t, &role).await.expect("app role + system role");
        let seed = reference_service::seed_demo(&db).await.expect("seed");
        let acme = seed.acme.id;
        let before = snapshot(t.raw(), Some(acme)).await;
        assert!(!before["audit_events"].is_empty());
        let mut file = Vec::new();
        lifecycle::export(&db, acme, &mut file)
            .await
            .expect("export");
        mark_deleted(&db, acme).await;
        lifecycle::erase(&db, acme, 5).await.expect("erase");
        let certificate = lifecycle::certify_erased(&db, acme, KEY)
            .await
            .expect("certify");
        assert!(certificate.passed(), "{certificate}");

        let other = TestDb::create(t.backend()).await.expect("configured");
        let other_role = test_support::TestRole::create(&other, "NOSUPERUSER BYPASSRLS").await;
        let target = connect(&other, &other_role).await.expect("connect");
        lifecycle::import(&target, file.as_slice())
            .await
            .expect("import");
        assert_eq!(snapshot(other.raw(), Some(acme)).await, before);
        drop((db, target));
        role.drop_role(&t).await;
        other_role.drop_role(&other).await;
        other.drop_db().await.expect("drop");
    })
    .await;
}
