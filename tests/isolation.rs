//! Tenant isolation at run time, on every backend: cross-tenant access is indistinguishable from
//! absence, the database rejects cross-tenant references, and nothing a scoped handle does touches
//! another tenant's rows. Each test names the guarantee it covers (docs/guarantees.md).

use chrono::Utc;
use entity::{
    api_keys, audit_events, comments, permissions, projects, role_permissions, roles, tasks,
    tenants, user_roles, users,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectOptions, DbErr, IntoActiveModel, ModelTrait,
    SqlErr, Statement,
};
use tenant_scope::{ApiKeyVerifier, Error, TenantContext, TenantDb, TenantId, TenantScoped};
use test_support::{Backend, TestDb, project_names};
use uuid::Uuid;

/// One tenant of the fixture: its verified context and one row of every tenant-owned table.
struct Tenant {
    ctx: TenantContext,
    key: String,
    key_id: Uuid,
    user: users::Model,
    role: roles::Model,
    role_permission: role_permissions::Model,
    user_role: user_roles::Model,
    project: projects::Model,
    task: tasks::Model,
    comment: comments::Model,
    audit_event: audit_events::Model,
}

impl Tenant {
    fn id(&self) -> TenantId {
        self.ctx.tenant()
    }
}

/// Two tenants, A and B, provisioned through the system handle and verified by API key (the real
/// path: no test-only constructor), each with the same shape of data.
struct Fixture {
    db: TenantDb,
    a: Tenant,
    b: Tenant,
    permission: permissions::Model,
}

async fn fixture(t: &TestDb) -> Fixture {
    let db = t.tenant_db().await;
    let (acme, globex) = test_support::two_tenants(&db, &["projects.write"]).await;
    let mut permission = None;
    let mut made = Vec::new();
    for tenant in [acme, globex] {
        let test_support::KeyedTenant {
            user,
            grant,
            key: issued,
            ctx,
            ..
        } = tenant;
        let grant = grant.expect("the fixture's users hold projects.write");
        let role_permission = grant.role_permissions[0].clone();
        permission.get_or_insert(role_permission.permission_id);
        let (role, user_role) = (grant.role, grant.user_role);
        let scope = db.scope(&ctx);
        let project = scope
            .insert(projects::ActiveModel {
                name: Set("Apollo".into()),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await
            .expect("project");
        let task = scope
            .insert(tasks::ActiveModel {
                project_id: Set(project.id),
                assignee_id: Set(Some(user.id)),
                title: Set("Launch".into()),
                done: Set(false),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await
            .expect("task");
        let comment = scope
            .insert(comments::ActiveModel {
                task_id: Set(task.id),
                author_id: Set(user.id),
                body: Set("Go".into()),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await
            .expect("comment");
        // The library wrote this when the project was inserted.
        let audit_event = scope
            .find::<audit_events::Entity>()
            .filter(audit_events::Column::RowId.eq(project.id))
            .one()
            .await
            .expect("reading audit events")
            .expect("the project insert's audit event");
        made.push(Tenant {
            ctx,
            key: issued.key,
            key_id: issued.id,
            user,
            role,
            role_permission,
            user_role,
            project,
            task,
            comment,
            audit_event,
        });
    }
    let b = made.pop().expect("b");
    let a = made.pop().expect("a");
    let permission = db
        .global()
        .get::<permissions::Entity>(permission.expect("a permission"))
        .await
        .expect("the permission");
    Fixture {
        db,
        a,
        b,
        permission,
    }
}

/// Every way of reaching one row of `E` by id, from tenant A, answers for B's row exactly as for an
/// id that never existed, and changes nothing.
async fn assert_invisible<E>(f: &Fixture, b_id: Uuid)
where
    E: TenantScoped<Id = Uuid>,
    E::Model: ModelTrait + std::fmt::Debug + Sync,
{
    let scope = f.db.scope(&f.a.ctx);
    let never = Uuid::now_v7();
    let table = sea_orm::EntityName::table_name(&E::default());
    for id in [b_id, never] {
        let got = scope.get::<E>(id).await;
        assert!(matches!(got, Err(Error::NotFound)), "{table}: get {got:?}");
        let listed = scope
            .find::<E>()
            .filter(E::id_column().eq(id))
            .all()
            .await
            .expect("list");
        assert!(listed.is_empty(), "{table}: list by id");
        let counted = scope
            .find::<E>()
            .filter(E::id_column().eq(id))
            .count()
            .await
            .expect("count");
        assert_eq!(counted, 0, "{table}: count by id");
        let deleted = scope.delete::<E>(id).await;
        let bulk = scope
            .delete_many::<E>()
            .filter(E::id_column().eq(id))
            .exec()
            .await;
        if table == tenant_scope::contract::AUDIT_TABLE {
            // Audit events are never written through a scope: refused for any id, the caller's own
            // included, so the refusal says nothing about the id.
            assert!(
                matches!(deleted, Err(Error::Invalid(_))),
                "{table}: delete {deleted:?}"
            );
            assert!(
                matches!(bulk, Err(Error::Invalid(_))),
                "{table}: delete_many {bulk:?}"
            );
        } else {
            assert!(
                matches!(deleted, Err(Error::NotFound)),
                "{table}: delete {deleted:?}"
            );
            assert_eq!(bulk.expect("delete_many"), 0, "{table}: delete_many by id");
        }
    }
    // B still has its row.
    let b_scope = f.db.scope(&f.b.ctx);
    b_scope
        .get::<E>(b_id)
        .await
        .unwrap_or_else(|e| panic!("{table}: B's row is gone: {e:?}"));
}

// Guarantee: cross-tenant get / list / count / delete = an id that never existed, for every
// tenant-owned table of the reference schema.
test_support::backend_test!(
    cross_tenant_access_looks_like_absence,
    |t: TestDb| async move {
        let f = fixture(&t).await;
        assert_invisible::<users::Entity>(&f, f.b.user.id).await;
        assert_invisible::<roles::Entity>(&f, f.b.role.id).await;
        assert_invisible::<role_permissions::Entity>(&f, f.b.role_permission.id).await;
        assert_invisible::<user_roles::Entity>(&f, f.b.user_role.id).await;
        assert_invisible::<projects::Entity>(&f, f.b.project.id).await;
        assert_invisible::<tasks::Entity>(&f, f.b.task.id).await;
        assert_invisible::<comments::Entity>(&f, f.b.comment.id).await;
        assert_invisible::<api_keys::Entity>(&f, f.b.key_id).await;
        assert_invisible::<audit_events::Entity>(&f, f.b.audit_event.id).await;
    }
);

// Guarantee: a cross-tenant update is NotFound, exactly like a missing id, and changes nothing.
test_support::backend_test!(cross_tenant_update_is_not_found, |t: TestDb| async move {
    let f = fixture(&t).await;
    let scope = f.db.scope(&f.a.ctx);
    for id in [f.b.project.id, Uuid::now_v7()] {
        let got = scope
            .update(projects::ActiveModel {
                id: Set(id),
                name: Set("Hijacked".into()),
                ..Default::default()
            })
            .await;
        assert!(matches!(got, Err(Error::NotFound)), "{got:?}");
        let done = scope
            .update_many::<tasks::Entity>()
            .col_expr(tasks::Column::Done, Expr::value(true))
            .filter(tasks::Column::Id.eq(id))
            .exec()
            .await
            .expect("update_many");
        assert_eq!(done, 0);
    }
    // An active model read by B and handed to A: its tenant is B's, so A may not use it.
    let mut stolen = f.b.project.clone().into_active_model();
    stolen.name = Set("Hijacked".into());
    let got = scope.update(stolen).await;
    assert!(matches!(got, Err(Error::TenantMismatch)), "{got:?}");
    let b_project =
        f.db.scope(&f.b.ctx)
            .get::<projects::Entity>(f.b.project.id)
            .await
            .expect("B's project");
    assert_eq!(b_project, f.b.project, "B's project changed");
    let b_task =
        f.db.scope(&f.b.ctx)
            .get::<tasks::Entity>(f.b.task.id)
            .await
            .expect("B's task");
    assert!(!b_task.done);
});

// Guarantee: an own update works and returns the row as stored.
test_support::backend_test!(own_update_returns_the_row, |t: TestDb| async move {
    let f = fixture(&t).await;
    let scope = f.db.scope(&f.a.ctx);
    let mut am = f.a.project.clone().into_active_model();
    am.name = Set("Artemis".into());
    let updated = scope.update(am).await.expect("update");
    assert_eq!(updated.name, "Artemis");
    assert_eq!(updated.id, f.a.project.id);
    // Nothing set: the row is returned unchanged.
    let same = scope
        .update(f.a.task.clone().into_active_model())
        .await
        .expect("no-op update");
    assert_eq!(same, f.a.task);
    // An update without an id is invalid input.
    let got = scope
        .update(projects::ActiveModel {
            name: Set("x".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(got, Err(Error::Invalid(_))), "{got:?}");
});

// Guarantee: listing and counting see exactly the caller's rows.
test_support::backend_test!(list_and_count_see_only_own_rows, |t: TestDb| async move {
    let f = fixture(&t).await;
    for (me, other) in [(&f.a, &f.b), (&f.b, &f.a)] {
        let scope = f.db.scope(&me.ctx);
        let projects = scope.find::<projects::Entity>().all().await.expect("all");
        assert_eq!(projects, vec![me.project.clone()]);
        assert_eq!(
            scope.find::<tasks::Entity>().count().await.expect("count"),
            1
        );
        let users = scope.find::<users::Entity>().all().await.expect("users");
        assert!(users.iter().all(|u| u.tenant_id == me.id()));
        // Both tenants have a project named Apollo; a name filter still finds only one.
        let by_name = scope
            .find::<projects::Entity>()
            .filter(projects::Column::Name.eq("Apollo"))
            .all()
            .await
            .expect("by name");
        assert_eq!(by_name.len(), 1);
        assert_ne!(by_name[0].id, other.project.id);
        // Paginate: one page, one item.
        let pages = scope.find::<projects::Entity>().paginate(10);
        let n = pages.num_items_and_pages().await.expect("pages");
        assert_eq!((n.number_of_items, n.number_of_pages), (1, 1));
        assert_eq!(
            pages.fetch_page(0).await.expect("page"),
            vec![me.project.clone()]
        );
    }
});

// Guarantee: `filter` conjoins with the tenant predicate; `Condition::any` cannot widen a scope.
test_support::backend_test!(
    any_condition_cannot_widen_the_scope,
    |t: TestDb| async move {
        let f = fixture(&t).await;
        let scope = f.db.scope(&f.a.ctx);
        let rows = scope
            .find::<projects::Entity>()
            .filter(
                Condition::any()
                    .add(projects::Column::Id.eq(f.b.project.id))
                    .add(projects::Column::Name.eq("Apollo"))
                    .add(Expr::value(1).eq(1)),
            )
            .all()
            .await
            .expect("any");
        assert_eq!(rows, vec![f.a.project.clone()]);
        let negated = scope
            .find::<projects::Entity>()
            .filter(
                Condition::all()
                    .add(projects::Column::Id.eq(f.a.project.id))
                    .not(),
            )
            .all()
            .await
            .expect("not");
        assert!(negated.is_empty(), "{negated:?}");
    }
);

fn is_refused<T: std::fmt::Debug>(got: Result<T, Error>) -> bool {
    matches!(got, Err(Error::Invalid(_)))
}

// Guarantee: a refinement cannot carry a subquery, EXISTS, CASE or raw SQL into a scoped (or global)
// query: those are not restricted to the tenant (a subquery could count or copy another tenant's
// rows), so the query refuses to run and nothing changes.
test_support::backend_test!(subqueries_and_raw_sql_are_refused, |t: TestDb| async move {
    use sea_orm::sea_query::{Query, SubQueryStatement};
    let f = fixture(&t).await;
    let scope = f.db.scope(&f.a.ctx);
    // "Does any tenant have a user with this email?" -- would be true because of B.
    let any_users = || {
        Query::select()
            .expr(Expr::val(1))
            .from(users::Entity)
            .and_where(users::Column::Email.eq("alice@example.com"))
            .to_owned()
    };
    let exists = scope
        .find::<projects::Entity>()
        .filter(Expr::exists(any_users()))
        .count()
        .await;
    assert!(is_refused(exists), "exists");
    let in_sub = scope
        .find::<projects::Entity>()
        .filter(
            projects::Column::Id.in_subquery(
                Query::select()
                    .column(projects::Column::Id)
                    .from(projects::Entity)
                    .to_owned(),
            ),
        )
        .all()
        .await;
    assert!(is_refused(in_sub), "in subquery");
    let raw = scope
        .find::<projects::Entity>()
        .filter(Expr::cust("1 = 1 OR 1 = 1"))
        .all()
        .await;
    assert!(is_refused(raw), "raw");
    let ordered = scope
        .find::<projects::Entity>()
        .order_by_asc(Expr::exists(any_users()))
        .paginate(10);
    assert!(is_refused(ordered.fetch_page(0).await));
    assert!(is_refused(ordered.num_items_and_pages().await));
    let joined = scope
        .find::<tasks::Entity>()
        .find_also_related::<projects::Entity>()
        .filter(Expr::cust("TRUE"))
        .all()
        .await;
    assert!(is_refused(joined), "joined");
    // Copying a value out of another tenant's row with a scalar subquery.
    let copied = scope
        .update_many::<projects::Entity>()
        .col_expr(
            projects::Column::Name,
            Expr::SubQuery(
                None,
                Box::new(SubQueryStatement::SelectStatement(
                    Query::select()
                        .column(users::Column::Email)
                        .from(users::Entity)
                        .limit(1)
                        .to_owned(),
                )),
            ),
        )
        .exec()
        .await;
    assert!(is_refused(copied), "copied");
    let deleted = scope
        .delete_many::<projects::Entity>()
        .filter(Expr::exists(any_users()))
        .exec()
        .await;
    assert!(is_refused(deleted), "deleted");
    // The global handle has no tenant either: the same rule.
    let global =
        f.db.global()
            .find::<tenants::Entity>()
            .filter(Expr::exists(any_users()))
            .all()
            .await;
    assert!(is_refused(global), "global");
    // Nothing changed, and plain expressions (functions, operators) still work.
    assert_eq!(project_names(&f.db, &f.a.ctx).await, ["Apollo"]);
    let lowered = scope
        .find::<projects::Entity>()
        .filter(Expr::expr(Func::lower(Expr::col(projects::Column::Name))).eq("apollo"))
        .order_by_desc(Expr::col(projects::Column::CreatedAt))
        .all()
        .await
        .expect("plain expressions");
    assert_eq!(lowered, vec![f.a.project.clone()]);
    // System access crosses tenants on purpose, and may use a subquery.
    let system =
        f.db.system("test: subquery across tenants")
            .await
            .expect("system");
    let all = system
        .find::<projects::Entity>()
        .filter(Expr::exists(any_users()))
        .count()
        .await
        .expect("system subquery");
    assert_eq!(all, 2);
});

// Guarantee: related loading (joins, find_also/with_related, batch loaders) stays in the tenant.
test_support::backend_test!(related_loading_stays_in_tenant, |t: TestDb| async move {
    let f = fixture(&t).await;
    let scope = f.db.scope(&f.a.ctx);
    let with = scope
        .find::<projects::Entity>()
        .find_with_related::<tasks::Entity>()
        .all()
        .await
        .expect("with related");
    assert_eq!(with, vec![(f.a.project.clone(), vec![f.a.task.clone()])]);
    let also = scope
        .find::<tasks::Entity>()
        .find_also_related::<projects::Entity>()
        .all()
        .await
        .expect("also related");
    assert_eq!(also, vec![(f.a.task.clone(), Some(f.a.project.clone()))]);
    // Inner join + filter on the joined table: B's project name does not match A's tasks.
    let joined = scope
        .find::<tasks::Entity>()
        .inner_join::<projects::Entity>()
        .filter(projects::Column::Id.eq(f.b.project.id))
        .all()
        .await
        .expect("join");
    assert!(joined.is_empty());
    // Batch loaders.
    let projects = vec![f.a.project.clone()];
    let tasks = scope
        .load_many::<tasks::Entity, _>(&projects)
        .await
        .expect("load_many");
    assert_eq!(tasks, vec![vec![f.a.task.clone()]]);
    let owners = scope
        .load_one::<projects::Entity, _>(std::slice::from_ref(&f.a.task))
        .await
        .expect("load_one");
    assert_eq!(owners, vec![Some(f.a.project.clone())]);
    // A model of another tenant handed to A's loader is refused...
    let got = scope
        .load_many::<tasks::Entity, _>(std::slice::from_ref(&f.b.project))
        .await;
    assert!(matches!(got, Err(Error::TenantMismatch)), "{got:?}");
    // ...and a made-up model of A's tenant with B's project id loads nothing.
    let forged = projects::Model {
        tenant_id: f.a.id(),
        ..f.b.project.clone()
    };
    let loaded = scope
        .load_many::<tasks::Entity, _>(&[forged])
        .await
        .expect("forged");
    assert_eq!(loaded, vec![Vec::<tasks::Model>::new()]);
});

// Guarantee: many-to-many users <-> roles through user_roles stays in the tenant.
test_support::backend_test!(user_roles_join_stays_in_tenant, |t: TestDb| async move {
    let f = fixture(&t).await;
    let scope = f.db.scope(&f.a.ctx);
    let with_roles = scope
        .find::<users::Entity>()
        .find_with_related::<roles::Entity>()
        .all()
        .await
        .expect("users with roles");
    assert_eq!(with_roles, vec![(f.a.user.clone(), vec![f.a.role.clone()])]);
    let loaded = scope
        .load_many::<roles::Entity, _>(std::slice::from_ref(&f.a.user))
        .await
        .expect("load roles");
    assert_eq!(loaded, vec![vec![f.a.role.clone()]]);
    // Granting A's user B's role: rejected like a role that does not exist.
    for role_id in [f.b.role.id, Uuid::now_v7()] {
        let got = scope
            .insert(user_roles::ActiveModel {
                user_id: Set(f.a.user.id),
                role_id: Set(role_id),
                ..Default::default()
            })
            .await;
        assert!(matches!(got, Err(Error::NotFound)), "{got:?}");
    }
});

/// The `Error` of inserting a task of A that references `project_id`.
async fn insert_task(
    f: &Fixture,
    project_id: Uuid,
    assignee: Option<Uuid>,
) -> Result<tasks::Model, Error> {
    f.db.scope(&f.a.ctx)
        .insert(tasks::ActiveModel {
            project_id: Set(project_id),
            assignee_id: Set(assignee),
            title: Set("Sneaky".into()),
            done: Set(false),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await
}

// Guarantee: an insert or update that references another tenant's parent is rejected by the
// database (composite foreign key) and answered like a reference to a row that never existed.
test_support::backend_test!(cross_tenant_reference_is_rejected, |t: TestDb| async move {
    let f = fixture(&t).await;
    for project in [f.b.project.id, Uuid::now_v7()] {
        let got = insert_task(&f, project, None).await;
        assert!(matches!(got, Err(Error::NotFound)), "project {got:?}");
    }
    for assignee in [f.b.user.id, Uuid::now_v7()] {
        let got = insert_task(&f, f.a.project.id, Some(assignee)).await;
        assert!(matches!(got, Err(Error::NotFound)), "assignee {got:?}");
    }
    let scope = f.db.scope(&f.a.ctx);
    for task in [f.b.task.id, Uuid::now_v7()] {
        let got = scope
            .insert(comments::ActiveModel {
                task_id: Set(task),
                author_id: Set(f.a.user.id),
                body: Set("x".into()),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await;
        assert!(matches!(got, Err(Error::NotFound)), "comment {got:?}");
    }
    // Moving A's task under B's project by update.
    let got = scope
        .update(tasks::ActiveModel {
            id: Set(f.a.task.id),
            project_id: Set(f.b.project.id),
            ..Default::default()
        })
        .await;
    assert!(matches!(got, Err(Error::NotFound)), "update {got:?}");
    // Nothing was written.
    assert_eq!(
        scope.find::<tasks::Entity>().all().await.expect("tasks"),
        vec![f.a.task.clone()]
    );
    assert_eq!(
        scope
            .find::<comments::Entity>()
            .count()
            .await
            .expect("comments"),
        1
    );
});

/// A raw `INSERT` of a task of tenant A under `project` (any tenant), in the backend's dialect.
fn raw_task_insert(t: &TestDb, tenant: TenantId, project: Uuid) -> Statement {
    let mut stmt = sea_orm::sea_query::Query::insert();
    stmt.into_table("tasks")
        .columns([
            "tenant_id",
            "id",
            "project_id",
            "title",
            "done",
            "created_at",
        ])
        .values_panic([
            Expr::val(tenant),
            Expr::val(Uuid::now_v7()),
            Expr::val(project),
            Expr::val("raw"),
            Expr::val(false),
            Expr::val(Utc::now()),
        ]);
    t.db_backend().build(&stmt)
}

// Guarantee: the database itself rejects a cross-tenant reference, even from raw SQL issued
// through the system handle (and from a plain connection with no library in the way).
test_support::backend_test!(
    database_rejects_raw_cross_tenant_reference,
    |t: TestDb| async move {
        let f = fixture(&t).await;
        let system =
            f.db.system("test: raw cross-tenant insert")
                .await
                .expect("system");
        let got = system
            .execute(raw_task_insert(&t, f.a.id(), f.b.project.id))
            .await;
        assert!(matches!(got, Err(Error::NotFound)), "system raw {got:?}");
        // Straight to the database: the error is a foreign-key violation.
        let raw: Result<_, DbErr> = sea_orm::ConnectionTrait::execute_raw(
            t.raw(),
            raw_task_insert(&t, f.a.id(), f.b.project.id),
        )
        .await;
        let err = raw.expect_err("the database accepted a cross-tenant reference");
        assert!(
            matches!(
                err.sql_err(),
                Some(SqlErr::ForeignKeyConstraintViolation(_))
            ),
            "{err:?}"
        );
        // The same statement with A's own project is accepted: the rejection is about the tenant.
        system
            .execute(raw_task_insert(&t, f.a.id(), f.a.project.id))
            .await
            .expect("own reference");
    }
);

// Guarantee: uniques are per tenant: the same value in two tenants is fine, twice in one is a
// Conflict, and the error carries nothing of the other row.
test_support::backend_test!(unique_values_are_per_tenant, |t: TestDb| async move {
    let f = fixture(&t).await;
    // Both fixture tenants already hold a project "Apollo" and a user alice@example.com.
    let scope = f.db.scope(&f.a.ctx);
    let got = scope
        .insert(projects::ActiveModel {
            name: Set("Apollo".into()),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await;
    let err = got.expect_err("duplicate name accepted");
    assert!(matches!(err, Error::Conflict), "{err:?}");
    assert!(!err.to_string().contains("Apollo"), "{err}");
    let got = scope
        .insert(users::ActiveModel {
            email: Set("alice@example.com".into()),
            name: Set("Alice 2".into()),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await;
    assert!(matches!(got, Err(Error::Conflict)), "{got:?}");
    // A fresh name is fine in A, and then also in B.
    for ctx in [&f.a.ctx, &f.b.ctx] {
        f.db.scope(ctx)
            .insert(projects::ActiveModel {
                name: Set("Gemini".into()),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await
            .expect("same name in another tenant");
    }
});

// Guarantee: an active model naming another tenant is TenantMismatch; tenant_id never changes.
test_support::backend_test!(tenant_id_cannot_be_set_or_changed, |t: TestDb| async move {
    let f = fixture(&t).await;
    let scope = f.db.scope(&f.a.ctx);
    let got = scope
        .insert(projects::ActiveModel {
            tenant_id: Set(f.b.id()),
            name: Set("Trojan".into()),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await;
    assert!(matches!(got, Err(Error::TenantMismatch)), "{got:?}");
    let mut moved = f.a.project.clone().into_active_model();
    moved.tenant_id = Set(f.b.id());
    let got = scope.update(moved).await;
    assert!(matches!(got, Err(Error::TenantMismatch)), "{got:?}");
    let got = scope
        .update_many::<projects::Entity>()
        .col_expr(projects::Column::TenantId, Expr::value(f.b.id()))
        .exec()
        .await;
    assert!(matches!(got, Err(Error::TenantMismatch)), "{got:?}");
    // Setting our own tenant explicitly is fine.
    scope
        .insert(projects::ActiveModel {
            tenant_id: Set(f.a.id()),
            name: Set("Explicit".into()),
            created_at: Set(Utc::now()),
            ..Default::default()
        })
        .await
        .expect("own tenant");
    let b_projects =
        f.db.scope(&f.b.ctx)
            .find::<projects::Entity>()
            .all()
            .await
            .expect("B");
    assert_eq!(b_projects, vec![f.b.project.clone()]);
});

/// Three more projects per tenant: x-alpha, x-atlas, y-beta. (Prefixes rather than case, since
/// `LIKE` is case-insensitive on SQLite and MySQL.)
async fn more_projects(f: &Fixture) {
    for ctx in [&f.a.ctx, &f.b.ctx] {
        for name in ["x-alpha", "x-atlas", "y-beta"] {
            f.db.scope(ctx)
                .insert(projects::ActiveModel {
                    name: Set(name.into()),
                    created_at: Set(Utc::now()),
                    ..Default::default()
                })
                .await
                .expect("project");
        }
    }
}

// Guarantee: scoped update_many (with filters, and with a limit) never touches another tenant.
test_support::backend_test!(update_many_stays_in_tenant, |t: TestDb| async move {
    let f = fixture(&t).await;
    more_projects(&f).await;
    let scope = f.db.scope(&f.a.ctx);
    let changed = scope
        .update_many::<projects::Entity>()
        .col_expr(
            projects::Column::Name,
            Func::cust("CONCAT")
                .arg(Expr::col(projects::Column::Name))
                .arg("!"),
        )
        .filter(projects::Column::Name.starts_with("x-"))
        .exec()
        .await
        .expect("update_many");
    assert_eq!(changed, 2);
    assert_eq!(
        project_names(&f.db, &f.a.ctx).await,
        ["Apollo", "x-alpha!", "x-atlas!", "y-beta"]
    );
    assert_eq!(
        project_names(&f.db, &f.b.ctx).await,
        ["Apollo", "x-alpha", "x-atlas", "y-beta"]
    );
    // With a limit: exactly one of A's rows, none of B's.
    let changed = scope
        .update_many::<projects::Entity>()
        .set(projects::ActiveModel {
            name: Set("limited".into()),
            ..Default::default()
        })
        .filter(projects::Column::Name.eq("y-beta"))
        .limit(1)
        .exec()
        .await
        .expect("update_many limit");
    assert_eq!(changed, 1);
    assert_eq!(
        project_names(&f.db, &f.a.ctx).await,
        ["Apollo", "limited", "x-alpha!", "x-atlas!"]
    );
    assert_eq!(
        project_names(&f.db, &f.b.ctx).await,
        ["Apollo", "x-alpha", "x-atlas", "y-beta"]
    );
    let changed = scope
        .update_many::<tasks::Entity>()
        .col_expr(tasks::Column::Done, Expr::value(true))
        .limit(5)
        .exec()
        .await
        .expect("limit above count");
    assert_eq!(changed, 1);
    let b_task =
        f.db.scope(&f.b.ctx)
            .get::<tasks::Entity>(f.b.task.id)
            .await
            .expect("B task");
    assert!(!b_task.done);
});

// Guarantee: scoped delete_many (with filters, and with a limit) never touches another tenant.
test_support::backend_test!(delete_many_stays_in_tenant, |t: TestDb| async move {
    let f = fixture(&t).await;
    more_projects(&f).await;
    let scope = f.db.scope(&f.a.ctx);
    let deleted = scope
        .delete_many::<projects::Entity>()
        .filter(projects::Column::Name.starts_with("x-"))
        .limit(1)
        .exec()
        .await
        .expect("delete_many limit");
    assert_eq!(deleted, 1);
    assert_eq!(project_names(&f.db, &f.a.ctx).await.len(), 3);
    let deleted = scope
        .delete_many::<projects::Entity>()
        .filter(projects::Column::Name.ne("Apollo"))
        .exec()
        .await
        .expect("delete_many");
    assert_eq!(deleted, 2);
    assert_eq!(project_names(&f.db, &f.a.ctx).await, ["Apollo"]);
    assert_eq!(
        project_names(&f.db, &f.b.ctx).await,
        ["Apollo", "x-alpha", "x-atlas", "y-beta"]
    );
    // Unfiltered: everything of A's (tasks and comments cascade), nothing of B's.
    let deleted = scope
        .delete_many::<projects::Entity>()
        .exec()
        .await
        .expect("all");
    assert_eq!(deleted, 1);
    assert_eq!(
        scope
            .find::<comments::Entity>()
            .count()
            .await
            .expect("comments"),
        0
    );
    assert_eq!(project_names(&f.db, &f.b.ctx).await.len(), 4);
    let b = f.db.scope(&f.b.ctx);
    assert_eq!(b.find::<tasks::Entity>().count().await.expect("B tasks"), 1);
    assert_eq!(
        b.find::<comments::Entity>()
            .count()
            .await
            .expect("B comments"),
        1
    );
});

// Guarantee: deleting a row still referenced in one's own tenant is a Conflict (ON DELETE
// RESTRICT), not a NotFound, and deletes nothing.
test_support::backend_test!(
    delete_of_referenced_row_is_conflict,
    |t: TestDb| async move {
        let f = fixture(&t).await;
        let scope = f.db.scope(&f.a.ctx);
        // The user authored a comment and is assigned a task (both RESTRICT).
        let got = scope.delete::<users::Entity>(f.a.user.id).await;
        assert!(matches!(got, Err(Error::Conflict)), "{got:?}");
        scope
            .get::<users::Entity>(f.a.user.id)
            .await
            .expect("still there");
        // A project cascades to its tasks and their comments.
        scope
            .delete::<projects::Entity>(f.a.project.id)
            .await
            .expect("delete");
        assert_eq!(
            scope.find::<tasks::Entity>().count().await.expect("tasks"),
            0
        );
        assert_eq!(
            scope
                .find::<comments::Entity>()
                .count()
                .await
                .expect("comments"),
            0
        );
    }
);

// Guarantee: the tenant is always a bound parameter, never inlined: the same scoped query for two
// tenants has the same SQL text (so no statement or plan is cached per tenant).
test_support::backend_test!(tenant_is_a_bound_parameter, |t: TestDb| async move {
    let f = fixture(&t).await;
    let build = |ctx: &TenantContext| {
        f.db.scope(ctx)
            .find::<tasks::Entity>()
            .filter(tasks::Column::Done.eq(false))
            .inner_join::<projects::Entity>()
            .order_by_asc(tasks::Column::CreatedAt)
            .limit(10)
            .build()
    };
    let (a, b) = (build(&f.a.ctx), build(&f.b.ctx));
    assert_eq!(a.sql, b.sql);
    assert_ne!(a.values, b.values);
    for tenant in [f.a.id(), f.b.id()] {
        for form in [
            tenant.to_string(),
            tenant.as_uuid().simple().to_string(),
            tenant.as_uuid().simple().to_string().to_uppercase(),
        ] {
            assert!(!a.sql.contains(&form), "tenant inlined in {}", a.sql);
        }
    }
    // The tenant predicate of the table itself, and the one the join carries in its ON clause.
    let tenant_param = match t.backend() {
        Backend::Postgres => r#"WHERE "tasks"."tenant_id" = $"#,
        Backend::Mysql => "WHERE `tasks`.`tenant_id` = ?",
        Backend::Sqlite => r#"WHERE "tasks"."tenant_id" = ?"#,
    };
    assert!(a.sql.contains(tenant_param), "{}", a.sql);
});

// Guarantee: SQLite enforces foreign keys on every pooled connection, and TenantDb refuses a pool
// where they are off (verified, not assumed).
test_support::backend_test!(foreign_keys_are_verified, |t: TestDb| async move {
    let f = fixture(&t).await;
    assert!(f.db.foreign_keys_enforced().await.expect("pragma"));
    // Four transactions open at once hold four distinct connections of the pool (two of each
    // tenant: a tenant may hold half the pool); each one enforces the keys. (SeaORM gives SQLite
    // one connection unless told otherwise.)
    let db = t.tenant_db_with(|o| o.max_connections(4)).await;
    let mut txs = Vec::new();
    for (ctx, theirs) in [
        (&f.a.ctx, f.b.project.id),
        (&f.a.ctx, f.b.project.id),
        (&f.b.ctx, f.a.project.id),
        (&f.b.ctx, f.a.project.id),
    ] {
        txs.push((db.begin(ctx).await.expect("begin"), theirs));
    }
    for (tx, theirs) in txs {
        let got = tx
            .scope()
            .insert(tasks::ActiveModel {
                project_id: Set(theirs),
                title: Set("x".into()),
                done: Set(false),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await;
        assert!(matches!(got, Err(Error::NotFound)), "{got:?}");
        // Release the write lock (SQLite) before the next connection writes.
        tx.rollback().await.expect("rollback");
    }
    if t.backend() == Backend::Sqlite {
        let mut options = ConnectOptions::new(t.url().to_owned());
        options.map_sqlx_sqlite_opts(|o| o.foreign_keys(false));
        let got = TenantDb::connect_with(options).await;
        assert!(matches!(got, Err(Error::Config(_))), "{got:?}");
    }
});

// Guarantee: a transaction commits on Ok and rolls back on Err, in one tenant.
test_support::backend_test!(transactions_commit_or_roll_back, |t: TestDb| async move {
    let f = fixture(&t).await;
    let project = |name: &str| projects::ActiveModel {
        name: Set(name.into()),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    let (p1, p2) = (project("one"), project("two"));
    f.db.transaction(&f.a.ctx, |tx| {
        Box::pin(async move {
            tx.insert(p1).await?;
            tx.insert(p2).await?;
            Ok::<_, Error>(())
        })
    })
    .await
    .expect("commit");
    assert_eq!(
        project_names(&f.db, &f.a.ctx).await,
        ["Apollo", "one", "two"]
    );
    let (p3, dup) = (project("three"), project("one"));
    let got =
        f.db.transaction(&f.a.ctx, |tx| {
            Box::pin(async move {
                tx.insert(p3).await?;
                tx.insert(dup).await?;
                Ok::<_, Error>(())
            })
        })
        .await;
    assert!(matches!(got, Err(Error::Conflict)), "{got:?}");
    assert_eq!(
        project_names(&f.db, &f.a.ctx).await,
        ["Apollo", "one", "two"]
    );
    // Dropped without commit: rolled back.
    {
        let tx = f.db.begin(&f.a.ctx).await.expect("begin");
        tx.scope().insert(project("four")).await.expect("insert");
    }
    assert_eq!(
        project_names(&f.db, &f.a.ctx).await,
        ["Apollo", "one", "two"]
    );
});

// Guarantee: every rejected API key is the same Denied; a valid one proves exactly its tenant.
test_support::backend_test!(api_keys_verify_or_deny, |t: TestDb| async move {
    let f = fixture(&t).await;
    let ctx =
        f.db.verify(&ApiKeyVerifier, f.a.key.clone())
            .await
            .expect("A");
    assert_eq!(ctx.tenant(), f.a.id());
    assert_eq!(
        ctx.actor(),
        &tenant_scope::Actor::ApiKey {
            key_id: f.a.key_id,
            user_id: f.a.user.id
        }
    );
    let parts: Vec<&str> = f.a.key.split('_').collect();
    let b_tenant = f.b.id().as_uuid().simple().to_string();
    let wrong_secret = format!("{}_{}_{}_{}", parts[0], parts[1], parts[2], "00".repeat(32));
    let other_tenant = format!("{}_{}_{}_{}", parts[0], b_tenant, parts[2], parts[3]);
    let unknown_key = format!(
        "{}_{}_{}_{}",
        parts[0],
        parts[1],
        Uuid::now_v7().simple(),
        parts[3]
    );
    for bad in [
        String::new(),
        "Bearer nonsense".into(),
        f.a.key[..f.a.key.len() - 1].to_string(),
        wrong_secret,
        other_tenant,
        unknown_key,
    ] {
        let got = f.db.verify(&ApiKeyVerifier, bad.clone()).await;
        assert!(matches!(got, Err(Error::Denied)), "{bad}: {got:?}");
    }
    // Revoking needs api_keys.write, which A's key does not have: Forbidden, and the key still works.
    let got = ApiKeyVerifier::revoke(&f.db.scope(&f.a.ctx), f.a.key_id).await;
    assert!(matches!(got, Err(Error::Forbidden)), "{got:?}");
    f.db.verify(&ApiKeyVerifier, f.a.key.clone())
        .await
        .expect("A's key after a forbidden revoke");
    // Revoked (by a job of A's tenant): the same Denied.
    let system = f.db.system("test: revoke a key").await.expect("system");
    let job = system.context_for(f.a.id());
    ApiKeyVerifier::revoke(&f.db.scope(&job), f.a.key_id)
        .await
        .expect("revoke");
    let got = f.db.verify(&ApiKeyVerifier, f.a.key.clone()).await;
    assert!(matches!(got, Err(Error::Denied)), "{got:?}");
    // B cannot revoke A's key: NotFound, and B's own key still works.
    let got = ApiKeyVerifier::revoke(&f.db.scope(&f.b.ctx), f.a.key_id).await;
    assert!(matches!(got, Err(Error::NotFound)), "{got:?}");
    f.db.verify(&ApiKeyVerifier, f.b.key.clone())
        .await
        .expect("B");
    // The membership verifier: a user of the tenant, and nobody else.
    let m = tenant_scope::MembershipVerifier;
    let ctx =
        f.db.verify(&m, (f.a.id(), f.a.user.id))
            .await
            .expect("member");
    assert!(ctx.has_permission(&f.permission.code));
    let got = f.db.verify(&m, (f.a.id(), f.b.user.id)).await;
    assert!(matches!(got, Err(Error::Denied)), "{got:?}");
});

// Guarantee: system access needs a reason; global entities are readable through `global()`.
test_support::backend_test!(system_and_global_handles, |t: TestDb| async move {
    let f = fixture(&t).await;
    assert!(matches!(f.db.system("  ").await, Err(Error::Invalid(_))));
    let tenants =
        f.db.global()
            .find::<tenants::Entity>()
            .all()
            .await
            .expect("tenants");
    assert_eq!(tenants.len(), 2);
    let perm =
        f.db.global()
            .get::<permissions::Entity>(f.permission.id)
            .await
            .expect("permission");
    assert_eq!(perm, f.permission);
    // The system handle sees across tenants (that is what it is for).
    let system =
        f.db.system("test: count all projects")
            .await
            .expect("system");
    let all = system
        .find::<projects::Entity>()
        .count()
        .await
        .expect("count");
    assert_eq!(all, 2);
});

// Guarantee: error texts carry no row data and no driver detail.
test_support::backend_test!(error_texts_carry_no_data, |t: TestDb| async move {
    let f = fixture(&t).await;
    let scope = f.db.scope(&f.a.ctx);
    let errors = [
        insert_task(&f, f.b.project.id, None).await.expect_err("fk"),
        scope
            .insert(projects::ActiveModel {
                name: Set("Apollo".into()),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await
            .expect_err("unique"),
        scope
            .get::<projects::Entity>(f.b.project.id)
            .await
            .expect_err("get"),
    ];
    for err in errors {
        let text = err.to_string();
        for secret in [
            f.b.project.id.to_string(),
            f.b.id().to_string(),
            "Apollo".to_string(),
            "tasks".to_string(),
            "projects".to_string(),
        ] {
            assert!(!text.contains(&secret), "{text}");
        }
        assert!(err.status() == 404 || err.status() == 409, "{err:?}");
    }
});
