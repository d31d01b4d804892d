//! `connection-trait` ([`crate::CONNECTION_TRAIT`]): naming one of the traits that run statements
//! on a raw connection, in a `use`, a bound, a type or a path.

use super::Hit;
use crate::CONNECTION_TRAIT;

/// Traits that run statements on a raw connection.
const CONNECTION_TRAITS: &[&str] = &["ConnectionTrait", "TransactionTrait", "StreamTrait"];

/// A name (one path segment or `use` leaf) that is a raw connection trait.
pub(super) fn name(name: &str) -> Option<Hit> {
    if !CONNECTION_TRAITS.contains(&name) {
        return None;
    }
    Some(Hit {
        rule: CONNECTION_TRAIT,
        message: format!(
            "`{name}` runs statements on a raw connection: take a `TenantScope` (or \
             `&TenantDb`) and use its methods; tenant-scope never hands out a connection"
        ),
    })
}
