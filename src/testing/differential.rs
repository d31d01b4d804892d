//! [`check_entity_differential`]: on PostgreSQL, each wall alone must give what both give.

use sea_orm::{ActiveModelBehavior, ActiveModelTrait, IntoActiveModel, Iterable, ModelTrait};

use crate::db::TenantDb;
use crate::entity::TenantScoped;

use super::entity::{Op, Step, foreign_row, foreign_update, steps, value_like};
use super::world::World;
use super::{Failure, run};

/// The differential mode of [`check_entity`](super::check_entity), on PostgreSQL: every
/// operation of a random sequence (as tenant A, with tenant B's ids, and A's listings) is run
/// three times, and the three answers must be the same:
///
/// - on `world.db()`, the library as it is: the application's filter and row level security;
/// - with row level security alone: the same database with the filter off
///   ([`TenantDb::without_app_filter`]);
/// - with the filter alone: `filter_only`, the library connected as a role that row level
///   security does not apply to (the table owner, with [`Risk::BypassRls`](crate::Risk) or
///   [`Risk::OwnsTenantTable`](crate::Risk) accepted).
///
/// A table whose policy is missing, disabled or wrong answers differently with row level
/// security alone; a gap in the filter answers differently with the filter alone.
///
/// ```no_run
/// # async fn f(world: &tenant_scope::testing::World, owner_url: &str) -> Result<(), Box<dyn std::error::Error>> {
/// use tenant_scope::{Risk, TenantDb};
/// use tenant_scope::testing::check_entity_differential;
///
/// let filter_only = TenantDb::options(owner_url)
///     .accept_risk(Risk::Superuser)
///     .accept_risk(Risk::OwnsTenantTable)
///     .connect()
///     .await?;
/// check_entity_differential::<entity::tasks::Entity>(world, &filter_only).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// A [`Failure`]: a leak, with the operation and the three answers; setup on another backend
/// than PostgreSQL.
pub async fn check_entity_differential<E>(
    world: &World,
    filter_only: &TenantDb,
) -> Result<(), Failure>
where
    E: TenantScoped,
    E::Model: IntoActiveModel<E::ActiveModel> + Send + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send + Clone,
{
    let rls_only = world
        .db()
        .without_app_filter()
        .map_err(|e| Failure::setup(format!("differential mode: {e}")))?;
    let table = sea_orm::EntityName::table_name(&E::default()).to_owned();
    let name = format!(
        "check_entity_differential::<{}>",
        std::any::type_name::<E>()
    );
    let tenants = world.tenants().len();
    run(&name, steps(tenants), async |steps: &Vec<Step>| {
        for step in steps {
            let both = answer::<E>(world, world.db(), &table, step).await?;
            let rls = answer::<E>(world, &rls_only, &table, step).await?;
            let filter = answer::<E>(world, filter_only, &table, step).await?;
            if both != rls || both != filter {
                return Err(Failure::leak(format!(
                    "`{table}`: {:?} as tenant #{} with tenant #{}'s ids: both walls {both}; \
                     row level security alone {rls}; the filter alone {filter}",
                    step.op, step.viewer, step.owner
                )));
            }
        }
        Ok(())
    })
    .await
}

/// The answer of one step on `db`, as comparable text.
async fn answer<E>(
    world: &World,
    db: &TenantDb,
    table: &str,
    step: &Step,
) -> Result<String, Failure>
where
    E: TenantScoped,
    E::Model: IntoActiveModel<E::ActiveModel> + Send + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send + Clone,
{
    let scope = db.scope(&world.tenants()[step.viewer]);
    let text = match &step.op {
        Op::List | Op::Page { .. } => {
            let rows = scope.find::<E>().all().await;
            match rows {
                Ok(rows) => {
                    let mut rows: Vec<String> = rows.iter().map(|m| format!("{m:?}")).collect();
                    rows.sort();
                    format!("Ok({rows:?})")
                }
                Err(e) => format!("{e:?}"),
            }
        }
        Op::Count => format!("{:?}", scope.find::<E>().count().await),
        Op::Get | Op::Update | Op::Delete | Op::Repoint(_) => {
            let Some((id, model)) = foreign_row::<E>(world, table, step).await? else {
                return Ok("no foreign row".into());
            };
            match &step.op {
                Op::Get => format!("{:?}", scope.get::<E>(id).await),
                Op::Delete => format!("{:?}", scope.delete::<E>(id).await),
                Op::Update => format!("{:?}", scope.update(foreign_update::<E>(model)).await),
                _ => match repointed::<E>(world, table, step).await? {
                    Some(am) => format!("{:?}", scope.update(am).await),
                    None => "no reference".into(),
                },
            }
        }
    };
    Ok(text)
}

/// The first of the viewer's rows with its first reference pointed at one of the owner's
/// parent rows.
async fn repointed<E>(
    world: &World,
    table: &str,
    step: &Step,
) -> Result<Option<E::ActiveModel>, Failure>
where
    E: TenantScoped,
    E::Model: IntoActiveModel<E::ActiveModel> + Send + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send + Clone,
{
    let Some((column, parent)) = world.references(table).first().cloned() else {
        return Ok(None);
    };
    let (viewer, owner) = (&world.tenants()[step.viewer], &world.tenants()[step.owner]);
    let Some(col) = E::Column::iter().find(|c| sea_orm::IdenStatic::as_str(c) == column) else {
        return Ok(None);
    };
    // The viewer's row, as the library with both walls reads it (the same in every mode).
    let Some(mine) = world
        .db()
        .scope(viewer)
        .find::<E>()
        .one()
        .await
        .map_err(Failure::db)?
    else {
        return Ok(None);
    };
    let parents = world.foreign_ids(&parent, owner.tenant(), viewer.tenant());
    let Some(theirs) = parents
        .get(step.pick % parents.len().max(1))
        .and_then(|id| value_like(&mine.get(col), id))
    else {
        return Ok(None);
    };
    let mut am = mine.into_active_model();
    am.try_set(col, theirs)
        .map_err(|e| Failure::setup(format!("`{table}.{column}`: {e}")))?;
    Ok(Some(am))
}
