//! Runs a resolved [`Action`] through the library, as a tenant, and turns what comes back into an
//! [`Outcome`] comparable with the model's.

use chrono::Utc;
use entity::{projects, tasks};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::NotSet, ActiveValue::Set, ColumnTrait};
use tenant_scope::{TenantContext, TenantDb};

use crate::model::{Action, Answer, Outcome, ProjectRow, TaskRow};
use crate::ops::Via;

impl From<projects::Model> for ProjectRow {
    fn from(m: projects::Model) -> Self {
        ProjectRow {
            tenant: m.tenant_id,
            id: m.id,
            name: m.name,
        }
    }
}

impl From<tasks::Model> for TaskRow {
    fn from(m: tasks::Model) -> Self {
        TaskRow {
            tenant: m.tenant_id,
            id: m.id,
            project: m.project_id,
            assignee: m.assignee_id,
            title: m.title,
            done: m.done,
        }
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn tree(rows: Vec<(projects::Model, Vec<tasks::Model>)>) -> Answer {
    Answer::Tree(sorted(
        rows.into_iter()
            .map(|(p, ts)| (p.into(), sorted(ts.into_iter().map(Into::into).collect())))
            .collect(),
    ))
}

/// Runs `action` as the tenant of `ctx` (through `db.scope(ctx)`, or `db.transaction(ctx, ..)`).
pub(crate) async fn perform(db: &TenantDb, ctx: &TenantContext, action: &Action) -> Outcome {
    let scope = db.scope(ctx);
    let answer = match action {
        Action::InsertProject { id, name, tenant } => scope
            .insert(projects::ActiveModel {
                tenant_id: tenant.map_or(NotSet, Set),
                id: id.map_or(NotSet, Set),
                name: Set(name.clone()),
                created_at: Set(Utc::now()),
            })
            .await
            .map(|m| Answer::Project(m.into())),
        Action::GetProject { id } => scope
            .get::<projects::Entity>(*id)
            .await
            .map(|m| Answer::Project(m.into())),
        Action::RenameProject { id, name, tenant } => scope
            .update(projects::ActiveModel {
                tenant_id: tenant.map_or(NotSet, Set),
                id: Set(*id),
                name: name.clone().map_or(NotSet, Set),
                ..Default::default()
            })
            .await
            .map(|m| Answer::Project(m.into())),
        Action::DeleteProject { id } => scope
            .delete::<projects::Entity>(*id)
            .await
            .map(|()| Answer::Deleted),
        Action::ListProjects { prefix } => {
            let mut query = scope.find::<projects::Entity>();
            if let Some(c) = prefix {
                query = query.filter(projects::Column::Name.starts_with(c.to_string()));
            }
            query
                .all()
                .await
                .map(|rows| Answer::Projects(sorted(rows.into_iter().map(Into::into).collect())))
        }
        Action::CountProjects { prefix } => {
            let mut query = scope.find::<projects::Entity>();
            if let Some(c) = prefix {
                query = query.filter(projects::Column::Name.starts_with(c.to_string()));
            }
            query.count().await.map(Answer::Count)
        }
        Action::InsertTask {
            project,
            assignee,
            title,
        } => scope
            .insert(tasks::ActiveModel {
                project_id: Set(*project),
                assignee_id: Set(*assignee),
                title: Set(title.clone()),
                done: Set(false),
                created_at: Set(Utc::now()),
                ..Default::default()
            })
            .await
            .map(|m| Answer::Task(m.into())),
        Action::TasksOf { project } => scope
            .find::<projects::Entity>()
            .filter(projects::Column::Id.eq(*project))
            .find_with_related::<tasks::Entity>()
            .all()
            .await
            .map(tree),
        Action::ProjectsWithTasks {
            via: Via::WithRelated,
        } => scope
            .find::<projects::Entity>()
            .find_with_related::<tasks::Entity>()
            .all()
            .await
            .map(tree),
        Action::ProjectsWithTasks { via: Via::LoadMany } => {
            match scope.find::<projects::Entity>().all().await {
                Ok(projects) => scope
                    .load_many::<tasks::Entity, projects::Model>(&projects)
                    .await
                    .map(|tasks| tree(projects.into_iter().zip(tasks).collect())),
                Err(e) => Err(e),
            }
        }
        Action::TasksWithProject => scope
            .find::<tasks::Entity>()
            .find_also_related::<projects::Entity>()
            .all()
            .await
            .map(|rows| {
                Answer::TasksWithProject(sorted(
                    rows.into_iter()
                        .map(|(t, p)| (t.into(), p.map(Into::into)))
                        .collect(),
                ))
            }),
        Action::RenameWhere { prefix, name } => scope
            .update_many::<projects::Entity>()
            .col_expr(projects::Column::Name, Expr::value(name.clone()))
            .filter(projects::Column::Name.starts_with(prefix.to_string()))
            .exec()
            .await
            .map(Answer::Count),
        Action::CompleteWhere { prefix } => scope
            .update_many::<tasks::Entity>()
            .col_expr(tasks::Column::Done, Expr::value(true))
            .filter(tasks::Column::Title.starts_with(prefix.to_string()))
            .exec()
            .await
            .map(Answer::Count),
        Action::DeleteWhere { prefix } => scope
            .delete_many::<projects::Entity>()
            .filter(projects::Column::Name.starts_with(prefix.to_string()))
            .exec()
            .await
            .map(Answer::Count),
        Action::DeleteDoneTasks => scope
            .delete_many::<tasks::Entity>()
            .filter(tasks::Column::Done.eq(true))
            .exec()
            .await
            .map(Answer::Count),
        Action::MoveWhere { prefix, to } => scope
            .update_many::<projects::Entity>()
            .col_expr(projects::Column::TenantId, Expr::value(*to))
            .filter(projects::Column::Name.starts_with(prefix.to_string()))
            .exec()
            .await
            .map(Answer::Count),
        Action::Page { size, page } => {
            let pages = scope
                .find::<projects::Entity>()
                .order_by_asc(projects::Column::Id)
                .paginate(*size);
            match (
                pages.fetch_page(*page).await,
                pages.num_items_and_pages().await,
            ) {
                (Ok(rows), Ok(n)) => Ok(Answer::Page {
                    rows: rows.into_iter().map(Into::into).collect(),
                    items: n.number_of_items,
                    pages: n.number_of_pages,
                }),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        Action::InsertPairInTransaction { a, b } => {
            let new = |name: &str| projects::ActiveModel {
                name: Set(name.to_owned()),
                created_at: Set(Utc::now()),
                ..Default::default()
            };
            let (a, b) = (new(a), new(b));
            db.transaction(ctx, move |tx| {
                Box::pin(async move {
                    tx.insert(a).await?;
                    tx.insert(b).await?;
                    tx.find::<projects::Entity>().all().await
                })
            })
            .await
            .map(|rows| Answer::Projects(sorted(rows.into_iter().map(Into::into).collect())))
        }
    };
    answer.map_err(Into::into)
}
