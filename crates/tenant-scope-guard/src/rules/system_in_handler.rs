//! `system-in-handler` ([`crate::SYSTEM_IN_HANDLER`]): system access (`db.system("reason")`),
//! which crosses every tenant, reachable from an axum handler, which serves one caller.
//!
//! What counts as a handler, by syntax only:
//!
//! - **routed**: a function whose path is passed to an axum routing function anywhere in the
//!   scanned sources (all files of one scan, so a router in `main.rs` marks handlers in
//!   `handlers.rs`): `get(h)`, `post(..)`, `put(..)`, `patch(..)`, `delete(..)`, `head(..)`,
//!   `options(..)`, `trace(..)`, `connect(..)`, `any(..)`, `on(filter, h)` (bare or under
//!   `routing::`/`axum::`), the same methods chained on one of those (`get(a).post(b)`), and
//!   `.fallback(h)`. Paths are matched by their last identifier (`handlers::list` marks every
//!   free function `list`; `Self::list`/`Api::list` every method `list`). A closure passed to a
//!   routing function is a handler too;
//! - **by signature**: an `async fn` with a parameter whose type is an axum extractor that only a
//!   handler takes: this library's `Tenant`, `State<..>` or `Extension<..>` (also behind `&`);
//! - **called by a handler**: a function of the same file that a handler calls directly, as
//!   `f(..)`, `Self::f(..)` or `self.f(..)` (one level: what that function calls is not
//!   followed, nor calls into other files).
//!
//! A `.system(..)` call is system access when it has one argument and its receiver is the
//! database: named like a connection as the other rules recognise it (`db`, `state.db`,
//! `self.db`, `*_db`, `&*db`, ...; see `raw_exec`), a zero-argument method with such a name
//! (`state.db()`), or a parameter whose type names `TenantDb` (`State(tdb): State<TenantDb>`).
//! The builder's `TenantDb::options(url).system(owner_url)` is not matched.

use std::collections::{HashMap, HashSet};

use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{
    Attribute, Expr, ExprCall, ExprMethodCall, File, FnArg, ImplItem, Item, Pat, Path, Signature,
    Type,
};

use super::raw_exec::conn_like;
use super::{Hit, is_test_code, item_attrs, mentions};
use crate::SYSTEM_IN_HANDLER;

/// axum's routing functions (`axum::routing::*`) and the `MethodRouter` methods of the same names.
const ROUTING: &[&str] = &[
    "get", "post", "put", "patch", "delete", "head", "options", "trace", "connect", "any", "on",
];

/// Extractor types that only a handler takes.
const EXTRACTORS: &[&str] = &["Tenant", "State", "Extension"];

/// A function, as a call or a routing path names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FnKey {
    /// A free function (`list`, `handlers::list`).
    Free(String),
    /// A method of some type (`Self::list`, `Api::list`, `self.list()`).
    Method(String),
}

impl FnKey {
    fn name(&self) -> &str {
        match self {
            FnKey::Free(n) | FnKey::Method(n) => n,
        }
    }
}

/// The functions routed anywhere in the scanned sources, each with the routing call that does it.
#[derive(Debug, Default)]
pub(crate) struct Routed(HashMap<FnKey, String>);

impl Routed {
    /// Adds the handlers routed in `file` (its test code is skipped unless tests are scanned).
    pub(crate) fn collect(&mut self, file: &File, include_tests: bool) {
        let mut routes = Routes {
            include_tests,
            fns: &mut self.0,
            closures: HashMap::new(),
        };
        routes.visit_file(file);
    }
}

/// The handlers of one file: functions (with why each one is a handler) and routed closures
/// (by the position where they start).
#[derive(Debug, Default)]
pub(super) struct Handlers {
    fns: HashMap<FnKey, String>,
    closures: HashMap<(usize, usize), String>,
}

impl Handlers {
    /// Finds the handlers of `file`, given the functions routed anywhere in the scan.
    pub(super) fn collect(file: &File, routed: &Routed, include_tests: bool) -> Self {
        let mut own = HashMap::new();
        let mut routes = Routes {
            include_tests,
            fns: &mut own,
            closures: HashMap::new(),
        };
        routes.visit_file(file);
        let closures = routes.closures;
        let mut defined = Defined::default();
        defined.visit_file(file);
        let mut fns = HashMap::new();
        for (key, sig, _) in &defined.fns {
            if let Some(how) = routed.0.get(key).or_else(|| own.get(key)) {
                let why = format!(
                    "`{}` is an axum handler (routed with `{how}(..)`)",
                    key.name()
                );
                fns.insert(key.clone(), why);
            } else if let Some(ty) = extractor_param(sig) {
                let why = format!("`{}` is an axum handler (it takes `{ty}`)", key.name());
                fns.insert(key.clone(), why);
            }
        }
        let defined_keys: HashSet<&FnKey> = defined.fns.iter().map(|(k, _, _)| k).collect();
        let mut called = HashMap::new();
        for (key, _, body) in &defined.fns {
            if !fns.contains_key(key) {
                continue;
            }
            let mut calls = Calls::default();
            calls.visit_block(body);
            for callee in calls.0 {
                if defined_keys.contains(&callee) && !fns.contains_key(&callee) {
                    let why = format!(
                        "`{}` is called by the axum handler `{}`",
                        callee.name(),
                        key.name()
                    );
                    called.entry(callee).or_insert(why);
                }
            }
        }
        fns.extend(called);
        Self { fns, closures }
    }

    /// Why the function `key` is a handler (or called by one), if it is.
    pub(super) fn function(&self, key: &FnKey) -> Option<String> {
        self.fns.get(key).cloned()
    }

    /// Why the closure starting at `at` is a handler, if it is.
    pub(super) fn closure(&self, at: (usize, usize)) -> Option<String> {
        self.closures
            .get(&at)
            .map(|how| format!("this closure is an axum handler (routed with `{how}(..)`)"))
    }
}

/// A `.system(reason)` call on the database, with `tenant_dbs` the parameters typed `TenantDb`.
pub(super) fn method_call(
    m: &ExprMethodCall,
    handler: &str,
    tenant_dbs: &HashSet<String>,
) -> Option<Hit> {
    if m.method != "system" || m.args.len() != 1 || !on_database(&m.receiver, tenant_dbs) {
        return None;
    }
    Some(Hit {
        rule: SYSTEM_IN_HANDLER,
        message: format!(
            "`.system(..)` crosses every tenant, and {handler}: serve a request with \
             `db.scope(&ctx)` and the caller's verified context; move maintenance to a job or an \
             admin binary, or allow this line with the reason it is safe"
        ),
    })
}

/// The bindings of the parameters whose type names `TenantDb`.
pub(super) fn tenant_db_params(sig: &Signature) -> HashSet<String> {
    let mut out = HashSet::new();
    for arg in &sig.inputs {
        if let FnArg::Typed(t) = arg
            && mentions(&t.ty, "TenantDb")
        {
            let mut b = Bindings(&mut out);
            b.visit_pat(&t.pat);
        }
    }
    out
}

/// The bindings of a closure's parameters whose type names `TenantDb`.
pub(super) fn closure_tenant_dbs(c: &syn::ExprClosure) -> HashSet<String> {
    let mut out = HashSet::new();
    for input in &c.inputs {
        if let Pat::Type(t) = input
            && mentions(&t.ty, "TenantDb")
        {
            let mut b = Bindings(&mut out);
            b.visit_pat(&t.pat);
        }
    }
    out
}

fn on_database(receiver: &Expr, tenant_dbs: &HashSet<String>) -> bool {
    match receiver {
        Expr::Paren(p) => on_database(&p.expr, tenant_dbs),
        Expr::Reference(r) => on_database(&r.expr, tenant_dbs),
        Expr::Path(p) => {
            p.path
                .get_ident()
                .is_some_and(|i| tenant_dbs.contains(&i.to_string()))
                || conn_like(receiver)
        }
        Expr::MethodCall(m) => {
            m.args.is_empty()
                && conn_like(&Expr::Path(syn::ExprPath {
                    attrs: Vec::new(),
                    qself: None,
                    path: Path::from(m.method.clone()),
                }))
        }
        _ => conn_like(receiver),
    }
}

/// The extractor a handler's parameter names (`State<..>`), if any, for an `async fn`.
fn extractor_param(sig: &Signature) -> Option<String> {
    sig.asyncness?;
    sig.inputs.iter().find_map(|arg| {
        let FnArg::Typed(t) = arg else { return None };
        let mut ty = &*t.ty;
        while let Type::Reference(r) = ty {
            ty = &r.elem;
        }
        let Type::Path(p) = ty else { return None };
        let last = p.path.segments.last()?;
        let name = last.ident.to_string();
        EXTRACTORS.contains(&name.as_str()).then(|| {
            if last.arguments.is_empty() {
                name
            } else {
                format!("{name}<..>")
            }
        })
    })
}

/// Where a closure starts: how a routed closure is recognised when the rules visit it.
pub(super) fn closure_at(c: &syn::ExprClosure) -> (usize, usize) {
    let start = c.span().start();
    (start.line, start.column)
}

fn key_of(path: &Path) -> Option<FnKey> {
    let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let name = segs.last()?.clone();
    let owner = segs.len().checked_sub(2).and_then(|i| segs.get(i));
    Some(match owner {
        Some(o) if o.starts_with(|c: char| c.is_ascii_uppercase()) => FnKey::Method(name),
        _ => FnKey::Free(name),
    })
}

/// Finds routing calls: routed function paths and routed closures.
struct Routes<'a> {
    include_tests: bool,
    fns: &'a mut HashMap<FnKey, String>,
    closures: HashMap<(usize, usize), String>,
}

impl Routes<'_> {
    fn handler_arg(&mut self, arg: &Expr, how: &str) {
        match arg {
            Expr::Paren(p) => self.handler_arg(&p.expr, how),
            Expr::Path(p) if p.qself.is_none() => {
                if let Some(key) = key_of(&p.path) {
                    self.fns.entry(key).or_insert_with(|| how.to_owned());
                }
            }
            Expr::Closure(c) => {
                self.closures
                    .entry(closure_at(c))
                    .or_insert_with(|| how.to_owned());
            }
            _ => {}
        }
    }

    fn skip(&self, attrs: &[Attribute]) -> bool {
        !self.include_tests && is_test_code(attrs)
    }
}

/// `get(..)`, `routing::get(..)`, `axum::routing::on(..)`: the routing function it calls.
fn routing_fn(c: &ExprCall) -> Option<String> {
    let Expr::Path(p) = &*c.func else { return None };
    let segs: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let last = segs.last()?;
    let under_axum = segs.len() == 1 || segs.iter().any(|s| s == "routing" || s == "axum");
    (ROUTING.contains(&last.as_str()) && under_axum).then(|| last.clone())
}

/// Whether `e` builds a `MethodRouter`: a routing call, or a routing method chained on one.
fn is_method_router(e: &Expr) -> bool {
    match e {
        Expr::Call(c) => routing_fn(c).is_some(),
        Expr::MethodCall(m) => {
            ROUTING.contains(&m.method.to_string().as_str()) && is_method_router(&m.receiver)
        }
        Expr::Paren(p) => is_method_router(&p.expr),
        _ => false,
    }
}

impl<'ast> Visit<'ast> for Routes<'_> {
    fn visit_item(&mut self, i: &'ast Item) {
        if !self.skip(item_attrs(i)) {
            visit::visit_item(self, i);
        }
    }

    fn visit_impl_item(&mut self, i: &'ast ImplItem) {
        if let ImplItem::Fn(f) = i
            && self.skip(&f.attrs)
        {
            return;
        }
        visit::visit_impl_item(self, i);
    }

    fn visit_expr_call(&mut self, c: &'ast ExprCall) {
        if let Some(how) = routing_fn(c) {
            // `on(MethodFilter::GET, handler)`: the handler is the last argument.
            if let Some(arg) = c.args.last() {
                self.handler_arg(arg, &how);
            }
        }
        visit::visit_expr_call(self, c);
    }

    fn visit_expr_method_call(&mut self, m: &'ast ExprMethodCall) {
        let name = m.method.to_string();
        let routed = (ROUTING.contains(&name.as_str()) && is_method_router(&m.receiver))
            || name == "fallback";
        if routed && let Some(arg) = m.args.last() {
            self.handler_arg(arg, &name);
        }
        visit::visit_expr_method_call(self, m);
    }
}

/// Every function of a file with a body: free functions and methods (not trait defaults).
#[derive(Default)]
struct Defined<'ast> {
    fns: Vec<(FnKey, &'ast Signature, &'ast syn::Block)>,
}

impl<'ast> Visit<'ast> for Defined<'ast> {
    fn visit_item_fn(&mut self, i: &'ast syn::ItemFn) {
        self.fns
            .push((FnKey::Free(i.sig.ident.to_string()), &i.sig, &i.block));
        visit::visit_item_fn(self, i);
    }

    fn visit_impl_item_fn(&mut self, i: &'ast syn::ImplItemFn) {
        self.fns
            .push((FnKey::Method(i.sig.ident.to_string()), &i.sig, &i.block));
        visit::visit_impl_item_fn(self, i);
    }
}

/// The functions a body calls directly: `f(..)`, `Self::f(..)`, `self.f(..)`.
#[derive(Default)]
struct Calls(Vec<FnKey>);

impl<'ast> Visit<'ast> for Calls {
    fn visit_expr_call(&mut self, c: &'ast ExprCall) {
        if let Expr::Path(p) = &*c.func
            && p.qself.is_none()
        {
            let segs: Vec<String> = p
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            match segs.as_slice() {
                [f] => self.0.push(FnKey::Free(f.clone())),
                [s, f] if s == "Self" => self.0.push(FnKey::Method(f.clone())),
                _ => {}
            }
        }
        visit::visit_expr_call(self, c);
    }

    fn visit_expr_method_call(&mut self, m: &'ast ExprMethodCall) {
        if let Expr::Path(p) = &*m.receiver
            && p.path.is_ident("self")
        {
            self.0.push(FnKey::Method(m.method.to_string()));
        }
        visit::visit_expr_method_call(self, m);
    }

    fn visit_item(&mut self, _: &'ast Item) {
        // A function defined inside the body is not a call.
    }
}

/// The identifiers a pattern binds.
struct Bindings<'a>(&'a mut HashSet<String>);

impl<'ast> Visit<'ast> for Bindings<'_> {
    fn visit_pat(&mut self, p: &'ast Pat) {
        if let Pat::Ident(i) = p {
            self.0.insert(i.ident.to_string());
        }
        visit::visit_pat(self, p);
    }
}
