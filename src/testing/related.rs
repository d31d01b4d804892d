//! [`check_related`]: related loads stay in the caller's tenant.

use sea_orm::{ModelTrait, Related, Value};

use crate::entity::TenantScoped;
use crate::error::Error;

use super::Failure;
use super::world::World;

/// The related loads of `E` to `R` (a `Related<R>` relation of your entities), as every tenant
/// of `world`:
///
/// 1. `find().find_with_related::<R>()` and `find().find_also_related::<R>()` return only the
///    tenant's own rows of `E` and of `R`, and all of its rows of `E`;
/// 2. `load_many::<R>` / `load_one::<R>` of the tenant's own rows return only its rows of `R`;
/// 3. the same loads of another tenant's rows are refused ([`Error::TenantMismatch`]) and return
///    nothing.
///
/// # Errors
///
/// A [`Failure`]: a leak; vacuous if no tenant has a row of `E` with a related row of `R` (then
/// nothing was shown); the database's error.
pub async fn check_related<E, R>(world: &World) -> Result<(), Failure>
where
    E: TenantScoped + Related<R>,
    R: TenantScoped,
    E::Model: Send + Sync,
    R::Model: Send + Sync,
{
    let (from, to) = (
        sea_orm::EntityName::table_name(&E::default()).to_owned(),
        sea_orm::EntityName::table_name(&R::default()).to_owned(),
    );
    let what = format!("`{from}` -> `{to}`");
    let mut related_seen = 0usize;
    for viewer in world.tenants() {
        let scope = world.db().scope(viewer);
        let mine: Value = viewer.tenant().into();
        let own_e = world.ids(&from, viewer.tenant()).len();
        let with = scope
            .find::<E>()
            .find_with_related::<R>()
            .all()
            .await
            .map_err(Failure::db)?;
        let also = scope
            .find::<E>()
            .find_also_related::<R>()
            .all()
            .await
            .map_err(Failure::db)?;
        let foreign_e = with
            .iter()
            .map(|(e, _)| e)
            .chain(also.iter().map(|(e, _)| e))
            .any(|e| e.get(E::tenant_column()) != mine);
        let foreign_r = with
            .iter()
            .flat_map(|(_, rs)| rs.iter())
            .chain(also.iter().filter_map(|(_, r)| r.as_ref()))
            .any(|r| r.get(R::tenant_column()) != mine);
        if foreign_e || foreign_r {
            return Err(Failure::leak(format!(
                "{what}: a related load returned another tenant's rows"
            )));
        }
        if with.len() != own_e {
            return Err(Failure::leak(format!(
                "{what}: find_with_related returned {} rows of `{from}`, the tenant has {own_e}",
                with.len()
            )));
        }
        related_seen += with.iter().map(|(_, rs)| rs.len()).sum::<usize>();

        let models: Vec<E::Model> = with.into_iter().map(|(e, _)| e).collect();
        let many = scope
            .load_many::<R, _>(&models)
            .await
            .map_err(Failure::db)?;
        if many
            .iter()
            .flatten()
            .any(|r| r.get(R::tenant_column()) != mine)
        {
            return Err(Failure::leak(format!(
                "{what}: load_many of the tenant's own rows returned another tenant's rows"
            )));
        }
        for owner in world
            .tenants()
            .iter()
            .filter(|o| o.tenant() != viewer.tenant())
        {
            let theirs = world
                .db()
                .scope(owner)
                .find::<E>()
                .all()
                .await
                .map_err(Failure::db)?;
            if theirs.is_empty() {
                continue;
            }
            match scope.load_many::<R, _>(&theirs).await {
                Err(Error::TenantMismatch) => {}
                other => {
                    return Err(Failure::leak(format!(
                        "{what}: load_many of another tenant's rows answered {:?}, not a \
                         refusal",
                        other.map(|rows| rows.iter().map(Vec::len).sum::<usize>())
                    )));
                }
            }
        }
    }
    if related_seen == 0 {
        return Err(Failure::vacuous(format!(
            "{what}: no tenant has a row of `{from}` with a related row of `{to}`: seed some"
        )));
    }
    Ok(())
}
