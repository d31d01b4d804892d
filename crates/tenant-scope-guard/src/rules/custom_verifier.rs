//! `custom-verifier` ([`crate::CUSTOM_VERIFIER`]): an `impl TenantVerifier for X` in the service.
//!
//! A verifier is a trust root: whatever tenant it returns, `db.verify(..)` turns into a
//! `TenantContext`, and every guarantee downstream takes that tenant as proven. The built-in
//! `ApiKeyVerifier` and `MembershipVerifier` check a hashed key or a membership row; a verifier
//! written in the service is a new root that review must see, so each one is reported until an
//! allow comment says what it checks. It is matched by the trait's last identifier, so
//! `tenant_scope::TenantVerifier` and an imported `TenantVerifier` are both found (a trait renamed
//! on import is not).

use proc_macro2::Span;
use syn::{ItemImpl, Type};

use super::Hit;
use crate::CUSTOM_VERIFIER;

/// An `impl TenantVerifier for X`: where to report it and what to say.
///
/// It is reported at the first line of the item that an allow comment can stand above: its first
/// attribute that is not a doc comment (`#[async_trait]`), else the `impl` keyword.
pub(super) fn item_impl(i: &ItemImpl) -> Option<(Span, Hit)> {
    let (negative, path, _) = i.trait_.as_ref()?;
    if negative.is_some() || path.segments.last()?.ident != "TenantVerifier" {
        return None;
    }
    let span = i
        .attrs
        .iter()
        .find(|a| !a.path().is_ident("doc"))
        .map_or(i.impl_token.span, |a| a.pound_token.span);
    let name = match &*i.self_ty {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .map_or_else(|| "this type".to_owned(), |s| format!("`{}`", s.ident)),
        _ => "this type".to_owned(),
    };
    Some((
        span,
        Hit {
            rule: CUSTOM_VERIFIER,
            message: format!(
                "{name} implements `TenantVerifier`: a new trust root that decides which tenant \
                 a caller belongs to. Use `ApiKeyVerifier` or `MembershipVerifier`; if this one is \
                 deliberate, allow it with what it checks"
            ),
        },
    ))
}
