//! `raw-query` ([`crate::RAW_QUERY`]): building an unscoped SeaORM query: an entity constructor
//! (`find`, `find_by_*`, `insert`, `update`, `delete`, `*_many`, `delete_by_*`, `find_related`)
//! called on an entity path, and `ModelTrait`'s `find_related`/`find_linked` called on a model.
//! What counts as an entity is decided by the shared name resolution ([`super::names`]).

use syn::{ExprMethodCall, Type};

use super::{Hit, PathExpr, idents};
use crate::RAW_QUERY;

/// `EntityTrait` (and `Related`) associated functions that build an unscoped query.
const ENTITY_CONSTRUCTORS: &[&str] = &[
    "find",
    "find_by_id",
    "find_related",
    "find_linked",
    "insert",
    "insert_many",
    "update",
    "update_many",
    "delete",
    "delete_many",
    "delete_by_id",
];

/// `ModelTrait` methods that start an unscoped query from a model.
const MODEL_QUERY_METHODS: &[&str] = &["find_related", "find_linked", "find_linked_recursive"];

/// A path expression that calls an entity constructor on an entity (`projects::Entity::find`).
pub(super) fn path(p: &PathExpr<'_>) -> Option<Hit> {
    let method = p.method.as_str();
    let constructor = ENTITY_CONSTRUCTORS.contains(&method)
        || method.starts_with("find_by_")
        || method.starts_with("delete_by_");
    if !(constructor && p.entity) {
        return None;
    }
    let segs = &p.segs;
    let entity_text = match p.qself {
        Some(q) => match &*q.ty {
            Type::Path(tp) => idents(&tp.path).join("::"),
            _ => "E".to_owned(),
        },
        None => segs[..segs.len() - 1].join("::"),
    };
    let entity_text = if entity_text == "EntityTrait" {
        "E"
    } else {
        &entity_text
    };
    Some(Hit {
        rule: RAW_QUERY,
        message: format!(
            "`{}` builds a SeaORM query without the tenant predicate: use {}",
            p.text,
            scoped_alternative(method, entity_text)
        ),
    })
}

/// A method call that starts a query from a model (`model.find_related(tasks::Entity)`).
pub(super) fn method_call(m: &ExprMethodCall) -> Option<Hit> {
    let name = m.method.to_string();
    let model_query = MODEL_QUERY_METHODS.contains(&name.as_str()) && !m.args.is_empty();
    if !model_query {
        return None;
    }
    Some(Hit {
        rule: RAW_QUERY,
        message: format!(
            "`.{name}(..)` on a model builds a SeaORM query without the tenant \
             predicate: use `db.scope(&ctx).find::<E>().find_also_related::<R>()`, \
             `find_with_related::<R>()` or `load_many::<R, _>(&models)`"
        ),
    })
}

fn scoped_alternative(method: &str, entity: &str) -> String {
    match method {
        "find" => format!("`db.scope(&ctx).find::<{entity}>()`"),
        "find_by_id" => format!("`db.scope(&ctx).get::<{entity}>(id)`"),
        "insert" | "insert_many" => "`db.scope(&ctx).insert(active_model)`".to_owned(),
        "update" => "`db.scope(&ctx).update(active_model)`".to_owned(),
        "update_many" => format!("`db.scope(&ctx).update_many::<{entity}>()`"),
        "delete" | "delete_by_id" => format!("`db.scope(&ctx).delete::<{entity}>(id)`"),
        "delete_many" => format!("`db.scope(&ctx).delete_many::<{entity}>()`"),
        "find_related" | "find_linked" => format!(
            "`db.scope(&ctx).find::<{entity}>().find_also_related::<R>()` (or `find_with_related`)"
        ),
        _ => format!("`db.scope(&ctx).find::<{entity}>().filter(..)` (or `get`, `delete`)"),
    }
}
