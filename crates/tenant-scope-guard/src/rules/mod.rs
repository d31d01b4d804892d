//! The rules: a `syn` visitor over one parsed file.
//!
//! The guard reads syntax, not types, so each rule is a pattern chosen to be precise on code that
//! uses tenant-scope properly: a name that only a raw connection has (`DatabaseConnection`,
//! `execute_unprepared`), a query constructor called on an entity path (`projects::Entity::find()`,
//! an alias of `Entity`, a generic bounded by `EntityTrait`/`TenantScoped`), or an executor called
//! with a connection argument (`.all(&conn)`). tenant-scope's own handles never take a connection
//! argument (`scope.find::<E>().all()`), so they are not matched.
//!
//! Each allowable rule has its own file below, with the names it matches, its detection and its
//! messages: [`raw_connection`], [`connection_type`], [`connection_trait`], [`raw_query`],
//! [`raw_exec`], [`raw_sql`], [`system_in_handler`], [`custom_verifier`] and [`test_switch`]. What they share is
//! here and in [`names`]: this module holds the traversal ([`Checker`]: it skips test code, tracks
//! the function being visited, whether it is an axum handler, and asks the rules in a fixed order)
//! and the syntax helpers; [`names`] resolves the file's names (`use` aliases, entity preludes,
//! local types, generics bounded by an entity trait). `system_in_handler` also finds the handlers
//! before the traversal: those routed anywhere in the scan ([`Routed`]) and those of the file.

mod connection_trait;
mod connection_type;
mod custom_verifier;
mod names;
mod raw_connection;
mod raw_exec;
mod raw_query;
mod raw_sql;
mod system_in_handler;
mod test_switch;

use std::collections::HashSet;

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{
    Attribute, Block, Expr, ExprMethodCall, ExprPath, File, FnArg, ImplItem, Item, ItemUse, Macro,
    Meta, Path, QSelf, Signature, Token, TraitItem, Type,
};

use self::names::{Names, entity_generics, use_leaves};
pub(crate) use self::system_in_handler::Routed;
use self::system_in_handler::{FnKey, Handlers};
use crate::ScanOptions;

/// One finding before allow comments are applied.
#[derive(Debug)]
pub(super) struct Finding {
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) rule: &'static str,
    pub(super) message: String,
}

/// The findings of one file, and the line ranges that were not scanned (test code).
#[derive(Debug)]
pub(super) struct Scanned {
    pub(super) findings: Vec<Finding>,
    pub(super) skipped: Vec<(usize, usize)>,
}

/// What a rule reports about one syntax node: the rule id and the message.
#[derive(Debug)]
struct Hit {
    rule: &'static str,
    message: String,
}

/// Scans one parsed file; `routed` are the handlers routed anywhere in the scan.
pub(super) fn scan(file: &File, options: &ScanOptions, routed: &Routed) -> Scanned {
    let mut checker = Checker {
        options,
        names: Names::collect(file),
        handlers: Handlers::collect(file, routed, options.tests_included()),
        fns: Vec::new(),
        impl_generics: Vec::new(),
        findings: Vec::new(),
        skipped: Vec::new(),
    };
    if !options.tests_included() && is_test_code(&file.attrs) {
        // `#![cfg(test)]` at the top: the whole file is test code.
        checker.skipped.push((1, usize::MAX));
    } else {
        checker.visit_file(file);
    }
    Scanned {
        findings: checker.findings,
        skipped: checker.skipped,
    }
}

/// The context of the function (or routed closure) being visited.
#[derive(Clone, Debug, Default)]
struct FnCtx {
    /// The function takes a `SystemDb` or calls `.system(..)`: raw statements are for it.
    system: bool,
    /// Generic parameters bounded by an entity trait.
    entity_generics: HashSet<String>,
    /// Why it is an axum handler or called by one (see [`system_in_handler`]), if it is.
    handler: Option<String>,
    /// The parameters whose type names `TenantDb`.
    tenant_dbs: HashSet<String>,
}

/// A path expression (`Type::function`, called or not), taken apart for the rules.
#[derive(Debug)]
struct PathExpr<'a> {
    /// The `<T as Trait>` part, if any.
    qself: Option<&'a QSelf>,
    /// The identifiers of the path.
    segs: Vec<String>,
    /// The last identifier: the function.
    method: String,
    /// The path as written (see [`render`]), for messages.
    text: String,
    /// The type (or trait) the function belongs to; empty if it has no name (`<[T]>::f`).
    type_name: String,
    /// Whether that type denotes an entity.
    entity: bool,
    /// Whether a segment of the path is `sqlx`.
    under_sqlx: bool,
}

struct Checker<'o> {
    options: &'o ScanOptions,
    names: Names,
    handlers: Handlers,
    fns: Vec<FnCtx>,
    impl_generics: Vec<HashSet<String>>,
    findings: Vec<Finding>,
    skipped: Vec<(usize, usize)>,
}

impl Checker<'_> {
    fn report(&mut self, span: Span, hit: Hit) {
        let start = span.start();
        self.findings.push(Finding {
            line: start.line,
            column: start.column + 1,
            rule: hit.rule,
            message: hit.message,
        });
    }

    /// Skips test code unless it is included; returns whether it was skipped.
    fn skip_test(&mut self, attrs: &[Attribute], node: &dyn Spanned) -> bool {
        if self.options.tests_included() || !is_test_code(attrs) {
            return false;
        }
        let span = node.span();
        self.skipped.push((span.start().line, span.end().line));
        true
    }

    fn in_system_context(&self) -> bool {
        self.fns.last().is_some_and(|f| f.system)
    }

    fn enter_fn(&mut self, sig: &Signature, body: Option<&Block>, key: Option<FnKey>) {
        let mut entity_generics = entity_generics(&sig.generics);
        for g in &self.impl_generics {
            entity_generics.extend(g.iter().cloned());
        }
        let takes_system = sig.inputs.iter().any(|arg| match arg {
            FnArg::Typed(t) => mentions(&t.ty, "SystemDb"),
            FnArg::Receiver(_) => false,
        });
        let calls_system = body.is_some_and(|b| {
            let mut finder = SystemCall(false);
            finder.visit_block(b);
            finder.0
        });
        self.fns.push(FnCtx {
            system: takes_system || calls_system,
            entity_generics,
            handler: key.and_then(|k| self.handlers.function(&k)),
            tenant_dbs: system_in_handler::tenant_db_params(sig),
        });
    }

    /// Whether a type path (without the method) denotes an entity.
    fn is_entity(&self, segments: &[String]) -> bool {
        self.names
            .is_entity(segments, self.fns.last().map(|f| &f.entity_generics))
    }

    fn type_is_entity(&self, ty: &Type) -> bool {
        match ty {
            Type::Path(p) => self.is_entity(&idents(&p.path)),
            Type::Paren(p) => self.type_is_entity(&p.elem),
            Type::Group(g) => self.type_is_entity(&g.elem),
            _ => false,
        }
    }

    /// Takes a path expression apart; `None` for a single identifier (no type to call it on).
    fn path_expr<'a>(&self, qself: Option<&'a QSelf>, path: &Path) -> Option<PathExpr<'a>> {
        let segs = idents(path);
        let method = segs.last()?.clone();
        let text = render(qself, path);
        let (type_name, entity) = match qself {
            Some(q) => {
                let as_trait = q.position.checked_sub(1).and_then(|i| segs.get(i));
                let entity = self.type_is_entity(&q.ty)
                    || as_trait.is_some_and(|t| t == "EntityTrait" || t == "Related");
                let name = as_trait.cloned().or_else(|| match &*q.ty {
                    Type::Path(p) => idents(&p.path).pop(),
                    _ => None,
                });
                (name.unwrap_or_default(), entity)
            }
            None if segs.len() >= 2 => {
                let ty = &segs[..segs.len() - 1];
                (ty[ty.len() - 1].clone(), self.is_entity(ty))
            }
            None => return None,
        };
        let under_sqlx = segs.iter().any(|s| s == "sqlx");
        Some(PathExpr {
            qself,
            segs,
            method,
            text,
            type_name,
            entity,
            under_sqlx,
        })
    }

    /// Classifies a path expression (`Type::function`), called or not.
    ///
    /// The rules are asked in a fixed order and the first that matches reports the path: some
    /// paths match two (`sqlx::MockDatabase::query` is sqlx raw SQL and a connector), and the
    /// order decides which one is reported.
    fn classify(&self, qself: Option<&QSelf>, path: &Path) -> Option<Hit> {
        let p = self.path_expr(qself, path)?;
        raw_sql::sqlx_path(&p)
            .or_else(|| raw_connection::path(&p, &self.names))
            .or_else(|| raw_sql::statement_path(&p, self.in_system_context()))
            .or_else(|| raw_query::path(&p))
    }

    /// Whether a method-call chain starts from something already reported, so that
    /// `projects::Entity::find().all(&conn)` is one finding, not two.
    fn chain_reported(&self, expr: &Expr) -> bool {
        match expr {
            Expr::MethodCall(m) => {
                raw_sql::method_call(m).is_some()
                    || raw_query::method_call(m).is_some()
                    || self.chain_reported(&m.receiver)
            }
            Expr::Await(a) => self.chain_reported(&a.base),
            Expr::Try(t) => self.chain_reported(&t.expr),
            Expr::Paren(p) => self.chain_reported(&p.expr),
            Expr::Call(c) => match &*c.func {
                Expr::Path(p) => self.classify(p.qself.as_ref(), &p.path).is_some(),
                _ => false,
            },
            _ => false,
        }
    }

    fn check_method_call(&mut self, m: &ExprMethodCall) {
        let span = m.method.span();
        if let Some(f) = self.fns.last()
            && let Some(handler) = &f.handler
            && let Some(hit) = system_in_handler::method_call(m, handler, &f.tenant_dbs)
        {
            self.report(span, hit);
            return;
        }
        if let Some(hit) = test_switch::method_call(m) {
            self.report(span, hit);
            return;
        }
        // Raw SQL is reported even at the end of a chain that is reported already.
        if let Some(hit) = raw_sql::method_call(m) {
            self.report(span, hit);
            return;
        }
        if self.chain_reported(&m.receiver) {
            return;
        }
        if let Some(hit) = raw_query::method_call(m).or_else(|| raw_exec::method_call(m)) {
            self.report(span, hit);
        }
    }

    /// Reports a name that is a raw connection type or trait; returns whether it did.
    fn check_name(&mut self, name: &str, span: Span, sqlx_context: bool) -> bool {
        let hit =
            connection_trait::name(name).or_else(|| connection_type::name(name, sqlx_context));
        match hit {
            Some(hit) => {
                self.report(span, hit);
                true
            }
            None => false,
        }
    }
}

impl<'ast> Visit<'ast> for Checker<'_> {
    fn visit_item(&mut self, i: &'ast Item) {
        if self.skip_test(item_attrs(i), i) {
            return;
        }
        visit::visit_item(self, i);
    }

    fn visit_impl_item(&mut self, i: &'ast ImplItem) {
        let attrs: &[Attribute] = match i {
            ImplItem::Fn(f) => &f.attrs,
            ImplItem::Const(c) => &c.attrs,
            ImplItem::Type(t) => &t.attrs,
            ImplItem::Macro(m) => &m.attrs,
            _ => &[],
        };
        if self.skip_test(attrs, i) {
            return;
        }
        visit::visit_impl_item(self, i);
    }

    fn visit_trait_item(&mut self, i: &'ast TraitItem) {
        let attrs: &[Attribute] = match i {
            TraitItem::Fn(f) => &f.attrs,
            TraitItem::Const(c) => &c.attrs,
            TraitItem::Type(t) => &t.attrs,
            TraitItem::Macro(m) => &m.attrs,
            _ => &[],
        };
        if self.skip_test(attrs, i) {
            return;
        }
        visit::visit_trait_item(self, i);
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if let Some((span, hit)) = custom_verifier::item_impl(i) {
            self.report(span, hit);
        }
        self.impl_generics.push(entity_generics(&i.generics));
        visit::visit_item_impl(self, i);
        self.impl_generics.pop();
    }

    fn visit_item_fn(&mut self, i: &'ast syn::ItemFn) {
        let key = FnKey::Free(i.sig.ident.to_string());
        self.enter_fn(&i.sig, Some(&i.block), Some(key));
        visit::visit_item_fn(self, i);
        self.fns.pop();
    }

    fn visit_impl_item_fn(&mut self, i: &'ast syn::ImplItemFn) {
        let key = FnKey::Method(i.sig.ident.to_string());
        self.enter_fn(&i.sig, Some(&i.block), Some(key));
        visit::visit_impl_item_fn(self, i);
        self.fns.pop();
    }

    fn visit_trait_item_fn(&mut self, i: &'ast syn::TraitItemFn) {
        self.enter_fn(&i.sig, i.default.as_ref(), None);
        visit::visit_trait_item_fn(self, i);
        self.fns.pop();
    }

    fn visit_item_use(&mut self, i: &'ast ItemUse) {
        for leaf in use_leaves(&i.tree) {
            if leaf.glob {
                continue;
            }
            if let Some(name) = leaf.path.last() {
                let sqlx = leaf.path.iter().any(|s| s == "sqlx");
                self.check_name(name, leaf.span, sqlx);
            }
        }
    }

    fn visit_path(&mut self, path: &'ast Path) {
        let sqlx = path.segments.iter().any(|s| s.ident == "sqlx");
        for segment in &path.segments {
            let name = segment.ident.to_string();
            let db_arg = connection_type::has_sqlx_database_arg(&segment.arguments);
            if self.check_name(&name, segment.ident.span(), sqlx || db_arg) {
                break;
            }
        }
        visit::visit_path(self, path);
    }

    fn visit_expr_path(&mut self, e: &'ast ExprPath) {
        if let Some(hit) = self.classify(e.qself.as_ref(), &e.path) {
            // Reported as a whole: the names inside it are not reported again.
            self.report(e.span(), hit);
            return;
        }
        visit::visit_expr_path(self, e);
    }

    fn visit_expr_method_call(&mut self, m: &'ast ExprMethodCall) {
        self.check_method_call(m);
        visit::visit_expr_method_call(self, m);
    }

    fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
        let Some(handler) = self.handlers.closure(system_in_handler::closure_at(c)) else {
            visit::visit_expr_closure(self, c);
            return;
        };
        let mut ctx = self.fns.last().cloned().unwrap_or_default();
        ctx.handler = Some(handler);
        ctx.tenant_dbs
            .extend(system_in_handler::closure_tenant_dbs(c));
        self.fns.push(ctx);
        visit::visit_expr_closure(self, c);
        self.fns.pop();
    }

    fn visit_item_macro(&mut self, i: &'ast syn::ItemMacro) {
        if i.ident.is_some() {
            // A `macro_rules!` definition: its body is a pattern, not code to check.
            return;
        }
        visit::visit_item_macro(self, i);
    }

    fn visit_macro(&mut self, m: &'ast Macro) {
        if let Some(hit) = raw_sql::sqlx_macro(&idents(&m.path)) {
            self.report(m.path.span(), hit);
        } else if let Ok(args) = m.parse_body_with(Punctuated::<Expr, Token![,]>::parse_terminated)
        {
            // Expression-like macros (`println!`, `assert!`, `vec!`, ...): check their arguments.
            for arg in &args {
                self.visit_expr(arg);
            }
        }
        visit::visit_macro(self, m);
    }
}

/// Finds a `.system(reason)` call.
struct SystemCall(bool);

impl<'ast> Visit<'ast> for SystemCall {
    fn visit_expr_method_call(&mut self, m: &'ast ExprMethodCall) {
        if m.method == "system" && m.args.len() == 1 {
            self.0 = true;
        }
        visit::visit_expr_method_call(self, m);
    }
}

/// Finds an identifier anywhere in a syntax node.
struct Mentions<'a> {
    name: &'a str,
    found: bool,
}

impl<'ast> Visit<'ast> for Mentions<'_> {
    fn visit_ident(&mut self, i: &'ast proc_macro2::Ident) {
        if i == self.name {
            self.found = true;
        }
    }
}

pub(super) fn mentions(ty: &Type, name: &str) -> bool {
    let mut m = Mentions { name, found: false };
    m.visit_type(ty);
    m.found
}

pub(super) fn item_attrs(i: &Item) -> &[Attribute] {
    match i {
        Item::Const(x) => &x.attrs,
        Item::Enum(x) => &x.attrs,
        Item::ExternCrate(x) => &x.attrs,
        Item::Fn(x) => &x.attrs,
        Item::ForeignMod(x) => &x.attrs,
        Item::Impl(x) => &x.attrs,
        Item::Macro(x) => &x.attrs,
        Item::Mod(x) => &x.attrs,
        Item::Static(x) => &x.attrs,
        Item::Struct(x) => &x.attrs,
        Item::Trait(x) => &x.attrs,
        Item::TraitAlias(x) => &x.attrs,
        Item::Type(x) => &x.attrs,
        Item::Union(x) => &x.attrs,
        Item::Use(x) => &x.attrs,
        _ => &[],
    }
}

/// `#[cfg(test)]` (also inside `all(..)`), or a test attribute: `#[test]`, `#[tokio::test]`,
/// `#[sqlx::test]`, `#[bench]`, `#[rstest]`, `#[test_case(..)]`.
pub(super) fn is_test_code(attrs: &[Attribute]) -> bool {
    fn cfg_is_test(meta: &Meta) -> bool {
        match meta {
            Meta::Path(p) => p.is_ident("test"),
            Meta::List(l) if l.path.is_ident("all") => l
                .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
                .is_ok_and(|metas| metas.iter().any(cfg_is_test)),
            _ => false,
        }
    }
    attrs.iter().any(|a| {
        let path = a.path();
        let last = path.segments.last().map(|s| s.ident.to_string());
        match last.as_deref() {
            Some("test" | "bench" | "rstest" | "test_case") => true,
            Some("cfg") if path.segments.len() == 1 => {
                a.parse_args::<Meta>().is_ok_and(|meta| cfg_is_test(&meta))
            }
            _ => false,
        }
    })
}

fn idents(path: &Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

fn render(qself: Option<&QSelf>, path: &Path) -> String {
    let segs = idents(path);
    match qself {
        None => segs.join("::"),
        Some(q) => {
            let ty = match &*q.ty {
                Type::Path(p) => idents(&p.path).join("::"),
                _ => "_".to_owned(),
            };
            let (as_trait, rest) = segs.split_at(q.position.min(segs.len()));
            if as_trait.is_empty() {
                format!("<{ty}>::{}", rest.join("::"))
            } else {
                format!("<{ty} as {}>::{}", as_trait.join("::"), rest.join("::"))
            }
        }
    }
}
