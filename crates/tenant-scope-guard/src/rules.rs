//! The rules: a `syn` visitor over one parsed file.
//!
//! The guard reads syntax, not types, so each rule is a pattern chosen to be precise on code that
//! uses tenant-scope properly: a name that only a raw connection has (`DatabaseConnection`,
//! `execute_unprepared`), a query constructor called on an entity path (`projects::Entity::find()`,
//! an alias of `Entity`, a generic bounded by `EntityTrait`/`TenantScoped`), or an executor called
//! with a connection argument (`.all(&conn)`). tenant-scope's own handles never take a connection
//! argument (`scope.find::<E>().all()`), so they are not matched.

use std::collections::HashSet;

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{
    Attribute, Block, Expr, ExprMethodCall, ExprPath, File, FnArg, GenericParam, Generics,
    ImplItem, Item, ItemUse, Macro, Meta, Path, QSelf, Signature, Token, TraitItem, Type,
    TypeParamBound, UseTree, WherePredicate,
};

use crate::{
    CONNECTION_TRAIT, CONNECTION_TYPE, RAW_CONNECTION, RAW_EXEC, RAW_QUERY, RAW_SQL, ScanOptions,
};

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

/// Traits that run statements on a raw connection.
const CONNECTION_TRAITS: &[&str] = &["ConnectionTrait", "TransactionTrait", "StreamTrait"];

/// SeaORM's raw connection types.
const SEAORM_CONNECTION_TYPES: &[&str] = &[
    "DatabaseConnection",
    "DbConn",
    "DatabaseTransaction",
    "DatabaseExecutor",
    "RestrictedConnection",
    "RestrictedTransaction",
    "SqlxPostgresPoolConnection",
    "SqlxSqlitePoolConnection",
    "SqlxMySqlPoolConnection",
];

/// sqlx's pools, connections and the options that open them.
const SQLX_CONNECTION_TYPES: &[&str] = &[
    "PgPool",
    "SqlitePool",
    "MySqlPool",
    "AnyPool",
    "PgConnection",
    "SqliteConnection",
    "MySqlConnection",
    "AnyConnection",
    "PgPoolOptions",
    "SqlitePoolOptions",
    "MySqlPoolOptions",
    "AnyPoolOptions",
    "PgConnectOptions",
    "SqliteConnectOptions",
    "MySqlConnectOptions",
    "AnyConnectOptions",
];

/// sqlx's generic pool names: flagged only under a `sqlx` path or with a database type argument.
const SQLX_GENERIC_TYPES: &[&str] = &["Pool", "PoolOptions", "PoolConnection"];
const SQLX_DATABASES: &[&str] = &["Postgres", "Sqlite", "MySql", "Any"];

/// SeaORM's adapters from an existing pool (or a mock) to a `DatabaseConnection`.
const CONNECTORS: &[&str] = &[
    "SqlxPostgresConnector",
    "SqlxSqliteConnector",
    "SqlxMySqlConnector",
    "MockDatabaseConnector",
    "ProxyDatabaseConnector",
    "MockDatabase",
];

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

/// Bounds that make a generic parameter an entity.
const ENTITY_BOUNDS: &[&str] = &["EntityTrait", "TenantScoped", "Global"];

/// Method names that only raw connections and raw selects have.
const RAW_SQL_METHODS: &[&str] = &[
    "execute_unprepared",
    "execute_raw",
    "query_one_raw",
    "query_all_raw",
    "stream_raw",
    "from_raw_sql",
];

/// `ModelTrait` methods that start an unscoped query from a model.
const MODEL_QUERY_METHODS: &[&str] = &["find_related", "find_linked", "find_linked_recursive"];

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

/// sqlx's query functions and macros.
const SQLX_QUERIES: &[&str] = &[
    "query",
    "query_as",
    "query_scalar",
    "query_with",
    "query_as_with",
    "query_scalar_with",
    "query_unchecked",
    "query_as_unchecked",
    "query_scalar_unchecked",
    "query_file",
    "query_file_as",
    "query_file_scalar",
    "raw_sql",
];

/// Names that are never entities, even under a glob import of an entity prelude.
const COMMON_TYPES: &[&str] = &[
    "Self", "Vec", "VecDeque", "HashMap", "HashSet", "BTreeMap", "BTreeSet", "String", "Option",
    "Result", "Box", "Rc", "Arc", "Cow",
];

/// Scans one parsed file.
pub(super) fn scan(file: &File, options: &ScanOptions) -> Scanned {
    let mut checker = Checker {
        options,
        names: Names::collect(file),
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

/// What the file's `use` items and definitions say about names.
#[derive(Debug, Default)]
struct Names {
    /// Single identifiers that denote an entity: `use projects::Entity as Project`,
    /// `use entity::prelude::Projects`.
    entities: HashSet<String>,
    /// Aliases of `sea_orm::Database`.
    databases: HashSet<String>,
    /// A glob import of an entity prelude (`use entity::prelude::*`).
    entity_glob: bool,
    /// Types defined in this file (never taken for SeaORM's).
    local_types: HashSet<String>,
}

impl Names {
    fn collect(file: &File) -> Self {
        let mut names = Names::default();
        names.visit_file(file);
        names
    }
}

impl<'ast> Visit<'ast> for Names {
    fn visit_item_use(&mut self, i: &'ast ItemUse) {
        for leaf in use_leaves(&i.tree) {
            let Some(last) = leaf.path.last() else {
                continue;
            };
            let first = leaf.path.first().map(String::as_str).unwrap_or_default();
            let in_prelude = leaf.path.iter().any(|s| s == "prelude");
            let entity_prelude = in_prelude
                && (matches!(first, "crate" | "super" | "self") || first.contains("entit"));
            if leaf.glob {
                self.entity_glob |= entity_prelude;
                continue;
            }
            let name = leaf.alias.clone().unwrap_or_else(|| last.clone());
            if (last == "Entity" && leaf.alias.is_some()) || (entity_prelude && upper_camel(last)) {
                self.entities.insert(name);
            } else if last == "Database" && leaf.path.iter().any(|s| s == "sea_orm") {
                self.databases.insert(name);
            }
        }
    }

    fn visit_item_struct(&mut self, i: &'ast syn::ItemStruct) {
        self.local_types.insert(i.ident.to_string());
        visit::visit_item_struct(self, i);
    }

    fn visit_item_enum(&mut self, i: &'ast syn::ItemEnum) {
        self.local_types.insert(i.ident.to_string());
        visit::visit_item_enum(self, i);
    }

    fn visit_item_type(&mut self, i: &'ast syn::ItemType) {
        self.local_types.insert(i.ident.to_string());
        visit::visit_item_type(self, i);
    }

    fn visit_item_trait(&mut self, i: &'ast syn::ItemTrait) {
        self.local_types.insert(i.ident.to_string());
        visit::visit_item_trait(self, i);
    }
}

/// One name brought in by a `use` item.
#[derive(Debug)]
struct UseLeaf {
    /// The full path, ending with the imported name (empty last segment for a glob).
    path: Vec<String>,
    alias: Option<String>,
    glob: bool,
    span: Span,
}

fn use_leaves(tree: &UseTree) -> Vec<UseLeaf> {
    fn walk(tree: &UseTree, prefix: &mut Vec<String>, out: &mut Vec<UseLeaf>) {
        match tree {
            UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                walk(&p.tree, prefix, out);
                prefix.pop();
            }
            UseTree::Name(n) => {
                let mut path = prefix.clone();
                path.push(n.ident.to_string());
                out.push(UseLeaf {
                    path,
                    alias: None,
                    glob: false,
                    span: n.ident.span(),
                });
            }
            UseTree::Rename(r) => {
                let mut path = prefix.clone();
                path.push(r.ident.to_string());
                out.push(UseLeaf {
                    path,
                    alias: Some(r.rename.to_string()),
                    glob: false,
                    span: r.ident.span(),
                });
            }
            UseTree::Glob(g) => out.push(UseLeaf {
                path: prefix.clone(),
                alias: None,
                glob: true,
                span: g.star_token.span,
            }),
            UseTree::Group(g) => {
                for t in &g.items {
                    walk(t, prefix, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

/// The context of the function being visited.
#[derive(Debug, Default)]
struct FnCtx {
    /// The function takes a `SystemDb` or calls `.system(..)`: raw statements are for it.
    system: bool,
    /// Generic parameters bounded by an entity trait.
    entity_generics: HashSet<String>,
}

struct Checker<'o> {
    options: &'o ScanOptions,
    names: Names,
    fns: Vec<FnCtx>,
    impl_generics: Vec<HashSet<String>>,
    findings: Vec<Finding>,
    skipped: Vec<(usize, usize)>,
}

impl Checker<'_> {
    fn report(&mut self, span: Span, rule: &'static str, message: String) {
        let start = span.start();
        self.findings.push(Finding {
            line: start.line,
            column: start.column + 1,
            rule,
            message,
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

    fn enter_fn(&mut self, sig: &Signature, body: Option<&Block>) {
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
        });
    }

    /// Whether a type path (without the method) denotes an entity.
    fn is_entity(&self, segments: &[String]) -> bool {
        let Some(last) = segments.last() else {
            return false;
        };
        if last == "Entity" || last == "EntityTrait" || (last.ends_with("Entity") && last.len() > 6)
        {
            return true;
        }
        if segments.len() != 1 {
            return false;
        }
        self.names.entities.contains(last)
            || self
                .fns
                .last()
                .is_some_and(|f| f.entity_generics.contains(last))
            || (self.names.entity_glob
                && upper_camel(last)
                && !self.names.local_types.contains(last)
                && !COMMON_TYPES.contains(&last.as_str()))
    }

    fn type_is_entity(&self, ty: &Type) -> bool {
        match ty {
            Type::Path(p) => self.is_entity(&idents(&p.path)),
            Type::Paren(p) => self.type_is_entity(&p.elem),
            Type::Group(g) => self.type_is_entity(&g.elem),
            _ => false,
        }
    }

    /// Classifies a path expression (`Type::function`), called or not.
    fn classify(&self, qself: Option<&QSelf>, path: &Path) -> Option<(&'static str, String)> {
        let segs = idents(path);
        let method = segs.last()?.as_str();
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
        let type_name = type_name.as_str();
        let under_sqlx = segs.iter().any(|s| s == "sqlx");

        if under_sqlx && SQLX_QUERIES.contains(&method) {
            return Some((
                RAW_SQL,
                format!(
                    "`{text}` runs raw SQL through sqlx, outside every tenant predicate: use a \
                     `Scoped` query, or `db.system(\"reason\")` for audited maintenance"
                ),
            ));
        }
        let database = (type_name == "Database"
            && (segs.iter().any(|s| s == "sea_orm")
                || !self.names.local_types.contains("Database")))
            || self.names.databases.contains(type_name);
        if database && matches!(method, "connect" | "connect_proxy") {
            return Some((
                RAW_CONNECTION,
                format!(
                    "`{text}` opens a SeaORM connection that bypasses tenant scoping: connect \
                     with `TenantDb::connect(url)` (or `TenantDb::connect_with(options)`)"
                ),
            ));
        }
        let sqlx_type = SQLX_CONNECTION_TYPES.contains(&type_name)
            || (under_sqlx
                && (SQLX_GENERIC_TYPES.contains(&type_name) || type_name == "Connection"));
        if sqlx_type && method.starts_with("connect") {
            return Some((
                RAW_CONNECTION,
                format!(
                    "`{text}` opens an sqlx connection that bypasses tenant scoping: connect \
                     with `TenantDb::connect(url)`"
                ),
            ));
        }
        if CONNECTORS.contains(&type_name) {
            return Some((
                RAW_CONNECTION,
                format!(
                    "`{text}` makes a SeaORM connection outside `TenantDb`: connect with \
                     `TenantDb::connect`; `MockDatabase` belongs in tests (tests/ or \
                     `#[cfg(test)]`)"
                ),
            ));
        }
        if method == "find_by_statement" {
            return Some((
                RAW_SQL,
                format!(
                    "`{text}` runs a raw SQL statement: use a `Scoped` query, or \
                     `db.system(\"reason\")?.query_all(stmt)` for audited maintenance"
                ),
            ));
        }
        if type_name == "Statement"
            && matches!(method, "from_string" | "from_sql_and_values")
            && !self.in_system_context()
        {
            return Some((
                RAW_SQL,
                format!(
                    "`{text}` builds raw SQL outside a `SystemDb` context: tenant data is read \
                     through `Scoped` queries; raw SQL runs only through \
                     `db.system(\"reason\")?.execute(stmt)` (or `query_all`)"
                ),
            ));
        }
        let constructor = ENTITY_CONSTRUCTORS.contains(&method)
            || method.starts_with("find_by_")
            || method.starts_with("delete_by_");
        if constructor && entity {
            let entity_text = match qself {
                Some(q) => match &*q.ty {
                    Type::Path(p) => idents(&p.path).join("::"),
                    _ => "E".to_owned(),
                },
                None => segs[..segs.len() - 1].join("::"),
            };
            let entity_text = if entity_text == "EntityTrait" {
                "E"
            } else {
                &entity_text
            };
            return Some((
                RAW_QUERY,
                format!(
                    "`{text}` builds a SeaORM query without the tenant predicate: use {}",
                    scoped_alternative(method, entity_text)
                ),
            ));
        }
        None
    }

    /// Whether a method-call chain starts from something already reported, so that
    /// `projects::Entity::find().all(&conn)` is one finding, not two.
    fn chain_reported(&self, expr: &Expr) -> bool {
        match expr {
            Expr::MethodCall(m) => {
                let name = m.method.to_string();
                RAW_SQL_METHODS.contains(&name.as_str())
                    || (MODEL_QUERY_METHODS.contains(&name.as_str()) && !m.args.is_empty())
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
        let name = m.method.to_string();
        let name = name.as_str();
        let args: Vec<&Expr> = m.args.iter().collect();
        let span = m.method.span();
        if RAW_SQL_METHODS.contains(&name) {
            self.report(
                span,
                RAW_SQL,
                format!(
                    "`.{name}(..)` runs raw SQL on a raw connection, outside every tenant \
                     predicate: use a `Scoped` query, or `db.system(\"reason\")?.execute(stmt)` \
                     for audited maintenance"
                ),
            );
            return;
        }
        if self.chain_reported(&m.receiver) {
            return;
        }
        if MODEL_QUERY_METHODS.contains(&name) && !args.is_empty() {
            self.report(
                span,
                RAW_QUERY,
                format!(
                    "`.{name}(..)` on a model builds a SeaORM query without the tenant \
                     predicate: use `db.scope(&ctx).find::<E>().find_also_related::<R>()`, \
                     `find_with_related::<R>()` or `load_many::<R, _>(&models)`"
                ),
            );
            return;
        }
        let on_connection = match (name, args.as_slice()) {
            (n, [arg]) if EXECUTORS.contains(&n) => is_shared_ref(arg) || conn_like(arg),
            ("paginate", [first, _]) => is_shared_ref(first) || conn_like(first),
            (n, [_, .., last]) if LOADERS.contains(&n) => is_shared_ref(last) || conn_like(last),
            ("insert", [arg]) => is_shared_ref(arg) && conn_like(arg),
            ("update" | "save" | "delete", [arg]) => conn_like(arg),
            _ => false,
        };
        if on_connection {
            let instead = match name {
                "insert" => "`db.scope(&ctx).insert(active_model)`",
                "update" => "`db.scope(&ctx).update(active_model)`",
                "save" => "`db.scope(&ctx).insert(..)` or `update(..)`",
                "delete" => "`db.scope(&ctx).delete::<E>(id)`",
                "paginate" => "`db.scope(&ctx).find::<E>().paginate(page_size)`",
                n if LOADERS.contains(&n) => {
                    "`db.scope(&ctx).load_many::<R, _>(&models)` (or `load_one`)"
                }
                _ => {
                    "a `Scoped` query: `db.scope(&ctx).find::<E>()...all()` (or `one()`, `count()`)"
                }
            };
            self.report(
                span,
                RAW_EXEC,
                format!(
                    "`.{name}(..)` runs a SeaORM operation on a raw connection, without the \
                     tenant predicate: use {instead}"
                ),
            );
        }
    }

    /// Reports a name that is a raw connection type or trait; returns whether it did.
    fn check_name(&mut self, name: &str, span: Span, sqlx_context: bool) -> bool {
        if CONNECTION_TRAITS.contains(&name) {
            self.report(
                span,
                CONNECTION_TRAIT,
                format!(
                    "`{name}` runs statements on a raw connection: take a `TenantScope` (or \
                     `&TenantDb`) and use its methods; tenant-scope never hands out a connection"
                ),
            );
            return true;
        }
        if SEAORM_CONNECTION_TYPES.contains(&name)
            || SQLX_CONNECTION_TYPES.contains(&name)
            || (sqlx_context && SQLX_GENERIC_TYPES.contains(&name))
        {
            self.report(
                span,
                CONNECTION_TYPE,
                format!(
                    "`{name}` is a raw database connection that bypasses tenant scoping: hold a \
                     `TenantDb` (cheap to clone) and reach data through `db.scope(&ctx)`"
                ),
            );
            return true;
        }
        false
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
        self.impl_generics.push(entity_generics(&i.generics));
        visit::visit_item_impl(self, i);
        self.impl_generics.pop();
    }

    fn visit_item_fn(&mut self, i: &'ast syn::ItemFn) {
        self.enter_fn(&i.sig, Some(&i.block));
        visit::visit_item_fn(self, i);
        self.fns.pop();
    }

    fn visit_impl_item_fn(&mut self, i: &'ast syn::ImplItemFn) {
        self.enter_fn(&i.sig, Some(&i.block));
        visit::visit_impl_item_fn(self, i);
        self.fns.pop();
    }

    fn visit_trait_item_fn(&mut self, i: &'ast syn::TraitItemFn) {
        self.enter_fn(&i.sig, i.default.as_ref());
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
            let db_arg = match &segment.arguments {
                syn::PathArguments::AngleBracketed(a) => a.args.iter().any(|arg| {
                    matches!(arg, syn::GenericArgument::Type(Type::Path(p))
                    if p.path.segments.last().is_some_and(|s| {
                        SQLX_DATABASES.iter().any(|db| s.ident == db)
                    }))
                }),
                _ => false,
            };
            if self.check_name(&name, segment.ident.span(), sqlx || db_arg) {
                break;
            }
        }
        visit::visit_path(self, path);
    }

    fn visit_expr_path(&mut self, e: &'ast ExprPath) {
        if let Some((rule, message)) = self.classify(e.qself.as_ref(), &e.path) {
            // Reported as a whole: the names inside it are not reported again.
            self.report(e.span(), rule, message);
            return;
        }
        visit::visit_expr_path(self, e);
    }

    fn visit_expr_method_call(&mut self, m: &'ast ExprMethodCall) {
        self.check_method_call(m);
        visit::visit_expr_method_call(self, m);
    }

    fn visit_item_macro(&mut self, i: &'ast syn::ItemMacro) {
        if i.ident.is_some() {
            // A `macro_rules!` definition: its body is a pattern, not code to check.
            return;
        }
        visit::visit_item_macro(self, i);
    }

    fn visit_macro(&mut self, m: &'ast Macro) {
        let segs = idents(&m.path);
        let last = segs.last().map(String::as_str).unwrap_or_default();
        if segs.iter().any(|s| s == "sqlx") && SQLX_QUERIES.contains(&last) {
            self.report(
                m.path.span(),
                RAW_SQL,
                format!(
                    "`{}!` runs raw SQL through sqlx, outside every tenant predicate: use a \
                     `Scoped` query, or `db.system(\"reason\")` for audited maintenance",
                    segs.join("::")
                ),
            );
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

fn mentions(ty: &Type, name: &str) -> bool {
    let mut m = Mentions { name, found: false };
    m.visit_type(ty);
    m.found
}

fn entity_generics(generics: &Generics) -> HashSet<String> {
    let entity_bound = |bounds: &Punctuated<TypeParamBound, Token![+]>| {
        bounds.iter().any(|b| match b {
            TypeParamBound::Trait(t) => t
                .path
                .segments
                .last()
                .is_some_and(|s| ENTITY_BOUNDS.iter().any(|e| s.ident == e)),
            _ => false,
        })
    };
    let mut out = HashSet::new();
    for param in &generics.params {
        if let GenericParam::Type(t) = param
            && entity_bound(&t.bounds)
        {
            out.insert(t.ident.to_string());
        }
    }
    if let Some(w) = &generics.where_clause {
        for predicate in &w.predicates {
            if let WherePredicate::Type(p) = predicate
                && let Type::Path(tp) = &p.bounded_ty
                && let Some(ident) = tp.path.get_ident()
                && entity_bound(&p.bounds)
            {
                out.insert(ident.to_string());
            }
        }
    }
    out
}

fn item_attrs(i: &Item) -> &[Attribute] {
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
fn is_test_code(attrs: &[Attribute]) -> bool {
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

fn upper_camel(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase()) && !name.contains('_')
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
fn conn_like(expr: &Expr) -> bool {
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
