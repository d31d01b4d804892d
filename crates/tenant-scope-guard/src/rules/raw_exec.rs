//! `raw-exec` ([`crate::RAW_EXEC`]): running a SeaORM query or active-model write on a
//! connection: an executor (`.all(&conn)`, `.exec(db)`), `.paginate(&db, n)`, a loader
//! (`.load_many(E, &db)`) or `am.insert(&db)`/`.update(..)`/`.save(..)`/`.delete(..)` whose
//! argument is a shared reference or names a connection. tenant-scope's own handles never take a
//! connection argument, so they are not matched.

use syn::{Expr, ExprMethodCall};

use super::Hit;
use crate::RAW_EXEC;

/// SeaORM executors that take the connection as their only argument.
const EXECUTORS: &[&str] = &[
    "all",
    "one",
    "require_one",
    "count",
    "exec",
    "exec_with_returning",
    "exec_with_returning_many",
    "exec_with_returning_keys",
    "exec_without_returning",
    "stream",
    "stream_partial_model",
];

/// `LoaderTrait` methods: `models.load_many(Entity, &conn)`.
const LOADERS: &[&str] = &["load_one", "load_many", "load_many_to_many"];

/// A method call that runs a query or a write on a connection argument.
pub(super) fn method_call(m: &ExprMethodCall) -> Option<Hit> {
    let name = m.method.to_string();
    let name = name.as_str();
    let args: Vec<&Expr> = m.args.iter().collect();
    let on_connection = match (name, args.as_slice()) {
        (n, [arg]) if EXECUTORS.contains(&n) => is_shared_ref(arg) || conn_like(arg),
        ("paginate", [first, _]) => is_shared_ref(first) || conn_like(first),
        (n, [_, .., last]) if LOADERS.contains(&n) => is_shared_ref(last) || conn_like(last),
        ("insert", [arg]) => is_shared_ref(arg) && conn_like(arg),
        ("update" | "save" | "delete", [arg]) => conn_like(arg),
        _ => false,
    };
    if !on_connection {
        return None;
    }
    let instead = match name {
        "insert" => "`db.scope(&ctx).insert(active_model)`",
        "update" => "`db.scope(&ctx).update(active_model)`",
        "save" => "`db.scope(&ctx).insert(..)` or `update(..)`",
        "delete" => "`db.scope(&ctx).delete::<E>(id)`",
        "paginate" => "`db.scope(&ctx).find::<E>().paginate(page_size)`",
        n if LOADERS.contains(&n) => "`db.scope(&ctx).load_many::<R, _>(&models)` (or `load_one`)",
        _ => "a `Scoped` query: `db.scope(&ctx).find::<E>()...all()` (or `one()`, `count()`)",
    };
    Some(Hit {
        rule: RAW_EXEC,
        message: format!(
            "`.{name}(..)` runs a SeaORM operation on a raw connection, without the \
             tenant predicate: use {instead}"
        ),
    })
}

fn strip(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => strip(&p.expr),
        Expr::Group(g) => strip(&g.expr),
        _ => expr,
    }
}

fn is_shared_ref(expr: &Expr) -> bool {
    matches!(strip(expr), Expr::Reference(r) if r.mutability.is_none())
}

/// An argument that names a connection: `conn`, `&db`, `&self.db`, `&*txn`, `state.pool`.
pub(super) fn conn_like(expr: &Expr) -> bool {
    let name = match strip(expr) {
        Expr::Reference(r) => return conn_like(&r.expr),
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => return conn_like(&u.expr),
        Expr::Path(p) if p.qself.is_none() => match p.path.get_ident() {
            Some(i) => i.to_string(),
            None => return false,
        },
        Expr::Field(f) => match &f.member {
            syn::Member::Named(i) => i.to_string(),
            syn::Member::Unnamed(_) => return false,
        },
        _ => return false,
    };
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "conn" | "db" | "txn" | "tx" | "trx" | "pool" | "connection" | "database" | "transaction"
    ) || [
        "_conn",
        "_db",
        "_txn",
        "_tx",
        "_pool",
        "_connection",
        "_transaction",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}
