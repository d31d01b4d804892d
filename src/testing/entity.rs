//! [`check_entity`]: the library-level properties of one tenant-owned entity.

use std::collections::BTreeSet;
use std::fmt;

use proptest::prelude::*;
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, IntoActiveModel, Iterable, ModelTrait, Value,
};

use crate::db::TenantScope;
use crate::entity::{RowId, TenantScoped};
use crate::error::{Error, Result};
use crate::tenant::TenantId;

use super::world::World;
use super::{Failure, run};

/// What one [`check_entity`] exercised: how many operations of each kind ran with another
/// tenant's id, and how many of them were answered "not found".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Coverage {
    /// The table of the entity.
    pub table: String,
    /// Operations run with another tenant's id (`get`, `update`, `delete`, re-pointing a
    /// reference), each compared with the same operation on an id that never existed.
    pub foreign: u64,
    /// Of those, the ones answered [`Error::NotFound`].
    pub not_found: u64,
    /// Reads of the whole table as one tenant (`find().all()`, `count`, `paginate`), each
    /// checked to return that tenant's rows only.
    pub listings: u64,
    /// The references (columns with a composite foreign key to another tenant-owned table)
    /// that were re-pointed at another tenant's row.
    pub references: BTreeSet<String>,
}

/// One operation of a case.
#[derive(Clone, Debug)]
pub(super) enum Op {
    Get,
    Update,
    Delete,
    /// Points one of the viewer's own rows at another tenant's parent row (reference `n`).
    Repoint(usize),
    List,
    Count,
    Page {
        size: u64,
        page: u64,
    },
}

/// One step: `viewer` acts with an id of `owner`'s (the `pick`-th that can show a leak).
#[derive(Clone, Debug)]
pub(super) struct Step {
    pub(super) viewer: usize,
    pub(super) owner: usize,
    pub(super) op: Op,
    pub(super) pick: usize,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Get),
        2 => Just(Op::Update),
        2 => Just(Op::Delete),
        2 => (0usize..8).prop_map(Op::Repoint),
        1 => Just(Op::List),
        1 => Just(Op::Count),
        1 => (1u64..5, 0u64..4).prop_map(|(size, page)| Op::Page { size, page }),
    ]
}

pub(super) fn steps(tenants: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = (0..tenants, 1..tenants, op(), any::<usize>()).prop_map(
        move |(viewer, offset, op, pick)| Step {
            viewer,
            owner: (viewer + offset) % tenants,
            op,
            pick,
        },
    );
    proptest::collection::vec(step, 1..=6)
}

/// The library-level properties of entity `E` on `world`, over random sequences of operations
/// ([`DEFAULT_CASES`](super::DEFAULT_CASES) cases, or `PROPTEST_CASES`):
///
/// 1. `get`, `update` and `delete` as tenant A with the id of a row of tenant B (one A has no row
///    with) give the same error as with an id that never existed: the same variant, the same
///    `Display`, the same `Debug`;
/// 2. re-pointing a reference of one of A's rows (a column with a composite foreign key
///    `(tenant_id, column)`) at B's parent row is refused exactly like re-pointing it at a parent
///    that never existed;
/// 3. `find().all()`, `count()` and `paginate()` as A return A's rows only, all of them;
/// 4. nothing of that writes anything: every tenant-owned table (and `audit_events`, `jobs`) is the same
///    before and after each case.
///
/// # Errors
///
/// A [`Failure`]: a leak (with the minimal sequence and the seed that replays it); vacuous if no
/// row of `E` belongs to one tenant only (then no id can show a leak) or if no answer was "not
/// found"; the database's error.
pub async fn check_entity<E>(world: &World) -> Result<Coverage, Failure>
where
    E: TenantScoped,
    E::Model: IntoActiveModel<E::ActiveModel> + Send + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send + Clone,
{
    let table = E::default().table_name().to_owned();
    let tenants: Vec<TenantId> = world.tenants().iter().map(|c| c.tenant()).collect();
    let any_foreign = tenants.iter().any(|owner| {
        tenants
            .iter()
            .any(|viewer| viewer != owner && !world.foreign_ids(&table, *owner, *viewer).is_empty())
    });
    if !any_foreign {
        return Err(Failure::vacuous(format!(
            "`{table}`: no tenant of the world has a row whose id another tenant does not have; \
             seed rows of `{table}` for at least two tenants"
        )));
    }
    let mut coverage = Coverage {
        table: table.clone(),
        ..Coverage::default()
    };
    let name = format!("check_entity::<{}>", std::any::type_name::<E>());
    run(&name, steps(tenants.len()), async |steps: &Vec<Step>| {
        let before = world.snapshot().await?;
        for step in steps {
            run_step::<E>(world, &table, step, &mut coverage).await?;
        }
        let after = world.snapshot().await?;
        if let Some(changed) = first_difference(&before, &after) {
            return Err(Failure::leak(format!(
                "`{table}`: the operations wrote to `{changed}` (they should all have been refused)"
            )));
        }
        Ok(())
    })
    .await?;
    if coverage.foreign == 0 {
        return Err(Failure::vacuous(format!(
            "`{table}`: no operation ran with another tenant's id (raise PROPTEST_CASES)"
        )));
    }
    if coverage.not_found == 0 {
        return Err(Failure::vacuous(format!(
            "`{table}`: {} operations with another tenant's ids, none answered \"not found\": \
             every answer was an error of another kind",
            coverage.foreign
        )));
    }
    Ok(coverage)
}

/// The tables `world` has that `tables` does not list: a `check_entities!` that does not cover
/// them fails.
#[doc(hidden)]
pub fn check_entities_of(world: &World, tables: &[&str]) -> Result<(), Failure> {
    let listed: BTreeSet<&str> = tables.iter().copied().collect();
    let missing: Vec<&str> = world
        .tables()
        .iter()
        .map(String::as_str)
        .filter(|t| !listed.contains(t))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Failure::setup(format!(
            "tenant-owned tables without their entity in the check: {}",
            missing.join(", ")
        )))
    }
}

async fn run_step<E>(
    world: &World,
    table: &str,
    step: &Step,
    coverage: &mut Coverage,
) -> Result<(), Failure>
where
    E: TenantScoped,
    E::Model: IntoActiveModel<E::ActiveModel> + Send + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send + Clone,
{
    let viewer = &world.tenants()[step.viewer];
    let db = world.db();
    let scope = db.scope(viewer);
    let who = format!("as tenant #{} with tenant #{}'s", step.viewer, step.owner);
    let expected = viewer.tenant();
    match &step.op {
        Op::List => {
            let rows = scope.find::<E>().all().await.map_err(Failure::db)?;
            only_own::<E>(
                &rows,
                expected,
                world.ids(table, expected).len(),
                table,
                "find().all()",
            )?;
            coverage.listings += 1;
        }
        Op::Count => {
            let count = scope.find::<E>().count().await.map_err(Failure::db)?;
            let own = world.ids(table, expected).len() as u64;
            if count != own {
                return Err(Failure::leak(format!(
                    "`{table}`: count() as tenant #{} is {count}, but the tenant has {own} rows",
                    step.viewer
                )));
            }
            coverage.listings += 1;
        }
        Op::Page { size, page } => {
            let pages = scope.find::<E>().paginate(*size);
            let rows = pages.fetch_page(*page).await.map_err(Failure::db)?;
            let own = world.ids(table, expected).len();
            let on_page = own
                .saturating_sub((size * page) as usize)
                .min(*size as usize);
            only_own::<E>(&rows, expected, on_page, table, "paginate()")?;
            let items = pages
                .num_items_and_pages()
                .await
                .map_err(Failure::db)?
                .number_of_items;
            if items != own as u64 {
                return Err(Failure::leak(format!(
                    "`{table}`: paginate() as tenant #{} counts {items} rows, the tenant has {own}",
                    step.viewer
                )));
            }
            coverage.listings += 1;
        }
        Op::Get | Op::Update | Op::Delete => {
            let Some((id, model)) = foreign_row::<E>(world, table, step).await? else {
                return Ok(());
            };
            let never = E::Id::unused(step.pick as u32 % 1000);
            let (theirs, none) = match step.op {
                Op::Get => (
                    scope.get::<E>(id).await.map(drop),
                    scope.get::<E>(never).await.map(drop),
                ),
                Op::Delete => (scope.delete::<E>(id).await, scope.delete::<E>(never).await),
                _ => {
                    let am = foreign_update::<E>(model);
                    let mut other = am.clone();
                    other
                        .try_set(E::id_column(), never.into())
                        .map_err(|e| Failure::setup(format!("`{table}`: {e}")))?;
                    (
                        scope.update(am).await.map(drop),
                        scope.update(other).await.map(drop),
                    )
                }
            };
            let what = format!("{:?} {who} row", step.op);
            compare(table, &what, &theirs, &none, coverage)?;
        }
        Op::Repoint(n) => repoint::<E>(world, table, step, *n, &scope, coverage).await?,
    }
    Ok(())
}

/// The owner's `pick`-th row of `E` whose id the viewer has no row with, and its id.
pub(super) async fn foreign_row<E>(
    world: &World,
    table: &str,
    step: &Step,
) -> Result<Option<(E::Id, E::Model)>, Failure>
where
    E: TenantScoped,
{
    let (viewer, owner) = (&world.tenants()[step.viewer], &world.tenants()[step.owner]);
    let own = world.ids(table, viewer.tenant());
    let rows = world
        .db()
        .scope(owner)
        .find::<E>()
        .all()
        .await
        .map_err(Failure::db)?;
    let mut foreign: Vec<(E::Id, E::Model)> = rows
        .into_iter()
        .filter_map(|m| E::Id::from_value(m.get(E::id_column())).map(|id| (id, m)))
        .filter(|(id, _)| !own.contains(&id.key_text().to_lowercase()))
        .collect();
    if foreign.is_empty() {
        return Ok(None);
    }
    let n = step.pick % foreign.len();
    Ok(Some(foreign.swap_remove(n)))
}

/// An update of another tenant's row as it would come from a caller: every column set from the
/// row, the tenant left to the scope.
pub(super) fn foreign_update<E>(model: E::Model) -> E::ActiveModel
where
    E: TenantScoped,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E>,
{
    let mut am = model.into_active_model().reset_all();
    am.not_set(E::tenant_column());
    am
}

/// Re-points reference `n` of one of the viewer's rows at the owner's parent, and at a parent
/// that never existed: the two must be refused alike.
async fn repoint<E>(
    world: &World,
    table: &str,
    step: &Step,
    n: usize,
    scope: &TenantScope<'_>,
    coverage: &mut Coverage,
) -> Result<(), Failure>
where
    E: TenantScoped,
    E::Model: IntoActiveModel<E::ActiveModel> + Send + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send + Clone,
{
    let references = world.references(table);
    if references.is_empty() {
        return Ok(());
    }
    let (column, parent) = &references[n % references.len()];
    let (viewer, owner) = (&world.tenants()[step.viewer], &world.tenants()[step.owner]);
    let Some(col) = E::Column::iter().find(|c| sea_orm::IdenStatic::as_str(c) == column) else {
        return Err(Failure::setup(format!(
            "`{table}`: the entity has no column `{column}`, which the schema has"
        )));
    };
    let Some(mine) = scope.find::<E>().one().await.map_err(Failure::db)? else {
        return Ok(());
    };
    let parents = world.foreign_ids(parent, owner.tenant(), viewer.tenant());
    if parents.is_empty() {
        return Ok(());
    }
    let template = mine.get(col);
    let theirs_id = &parents[step.pick % parents.len()];
    let (Some(theirs), Some(none)) = (
        value_like(&template, theirs_id),
        unused_like(&template, step.pick as u32 % 1000),
    ) else {
        return Err(Failure::setup(format!(
            "`{table}.{column}`: a reference of a type the kit does not know ({template:?})"
        )));
    };
    let attempt = |value: Value| {
        let mut am = mine.clone().into_active_model();
        am.try_set(col, value).map(|()| am)
    };
    let (Ok(to_theirs), Ok(to_none)) = (attempt(theirs), attempt(none)) else {
        return Err(Failure::setup(format!("`{table}.{column}`: cannot set it")));
    };
    let (a, b) = (
        scope.update(to_theirs).await.map(drop),
        scope.update(to_none).await.map(drop),
    );
    coverage.references.insert(column.clone());
    let what = format!(
        "re-pointing `{column}` of one of tenant #{}'s rows at tenant #{}'s `{parent}` row",
        step.viewer, step.owner
    );
    compare(table, &what, &a, &b, coverage)
}

/// A value of the type of `template` holding the id `text`.
pub(super) fn value_like(template: &Value, text: &str) -> Option<Value> {
    Some(match template {
        Value::Uuid(_) => Value::Uuid(Some(uuid::Uuid::parse_str(text).ok()?)),
        Value::BigInt(_) => Value::BigInt(Some(text.parse().ok()?)),
        Value::Int(_) => Value::Int(Some(text.parse().ok()?)),
        Value::BigUnsigned(_) => Value::BigUnsigned(Some(text.parse().ok()?)),
        Value::Unsigned(_) => Value::Unsigned(Some(text.parse().ok()?)),
        _ => return None,
    })
}

/// A value of the type of `template` that no row is expected to have as its id.
fn unused_like(template: &Value, k: u32) -> Option<Value> {
    Some(match template {
        Value::Uuid(_) => Value::Uuid(Some(uuid::Uuid::unused(k))),
        Value::BigInt(_) => Value::BigInt(Some(i64::unused(k))),
        Value::Int(_) => Value::Int(Some(i32::unused(k))),
        Value::BigUnsigned(_) => Value::BigUnsigned(Some(u64::unused(k))),
        Value::Unsigned(_) => Value::Unsigned(Some(u32::unused(k))),
        _ => return None,
    })
}

/// `rows` are `tenant`'s, and there are `expected` of them.
fn only_own<E: TenantScoped>(
    rows: &[E::Model],
    tenant: TenantId,
    expected: usize,
    table: &str,
    what: &str,
) -> Result<(), Failure> {
    let tenant_value: Value = tenant.into();
    if let Some(other) = rows
        .iter()
        .find(|m| m.get(E::tenant_column()) != tenant_value)
    {
        return Err(Failure::leak(format!(
            "`{table}`: {what} returned a row of another tenant: {:?}",
            other.get(E::tenant_column())
        )));
    }
    if rows.len() != expected {
        return Err(Failure::leak(format!(
            "`{table}`: {what} returned {} rows, expected {expected} of the tenant's own",
            rows.len()
        )));
    }
    Ok(())
}

/// The answer for another tenant's id (`theirs`) must be an error, the same as for an id that
/// never existed (`none`).
fn compare(
    table: &str,
    what: &str,
    theirs: &Result<()>,
    none: &Result<()>,
    coverage: &mut Coverage,
) -> Result<(), Failure> {
    coverage.foreign += 1;
    match (theirs, none) {
        (Ok(()), _) => Err(Failure::leak(format!(
            "`{table}`: {what} succeeded; it must be refused like an id that never existed ({})",
            describe(none)
        ))),
        (Err(_), Ok(())) => Err(Failure::setup(format!(
            "`{table}`: {what}: the id that should never have existed was found"
        ))),
        (Err(a), Err(b)) => {
            let same = std::mem::discriminant(a) == std::mem::discriminant(b)
                && a.to_string() == b.to_string()
                && format!("{a:?}") == format!("{b:?}");
            if !same {
                return Err(Failure::leak(format!(
                    "`{table}`: {what} answered {a:?} (\"{a}\"), an id that never existed {b:?} \
                     (\"{b}\"): the two can be told apart"
                )));
            }
            if matches!(a, Error::NotFound) {
                coverage.not_found += 1;
            }
            Ok(())
        }
    }
}

fn describe(result: &Result<()>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

pub(super) fn first_difference<K: fmt::Display + Ord, V: PartialEq>(
    a: &std::collections::BTreeMap<K, V>,
    b: &std::collections::BTreeMap<K, V>,
) -> Option<String> {
    a.iter()
        .find(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.to_string())
        .or_else(|| {
            b.keys()
                .find(|k| !a.contains_key(*k))
                .map(|k| k.to_string())
        })
}
