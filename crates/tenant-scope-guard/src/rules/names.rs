//! Name resolution for one file, by syntax only: what its `use` items and definitions say about
//! names ([`Names`]: entity aliases and preludes, aliases of `sea_orm::Database`, local types),
//! the generics bounded by an entity trait, and so whether a type path denotes an entity.

use std::collections::HashSet;

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{
    File, GenericParam, Generics, ItemUse, Token, Type, TypeParamBound, UseTree, WherePredicate,
};

/// Bounds that make a generic parameter an entity.
const ENTITY_BOUNDS: &[&str] = &["EntityTrait", "TenantScoped", "Global"];

/// Names that are never entities, even under a glob import of an entity prelude.
const COMMON_TYPES: &[&str] = &[
    "Self", "Vec", "VecDeque", "HashMap", "HashSet", "BTreeMap", "BTreeSet", "String", "Option",
    "Result", "Box", "Rc", "Arc", "Cow",
];

/// What the file's `use` items and definitions say about names.
#[derive(Debug, Default)]
pub(super) struct Names {
    /// Single identifiers that denote an entity: `use projects::Entity as Project`,
    /// `use entity::prelude::Projects`.
    pub(super) entities: HashSet<String>,
    /// Aliases of `sea_orm::Database`.
    pub(super) databases: HashSet<String>,
    /// A glob import of an entity prelude (`use entity::prelude::*`).
    pub(super) entity_glob: bool,
    /// Types defined in this file (never taken for SeaORM's).
    pub(super) local_types: HashSet<String>,
}

impl Names {
    pub(super) fn collect(file: &File) -> Self {
        let mut names = Names::default();
        names.visit_file(file);
        names
    }

    /// Whether a type path (without the method) denotes an entity; `generics` are the entity
    /// generics of the function being visited, if any.
    pub(super) fn is_entity(
        &self,
        segments: &[String],
        generics: Option<&HashSet<String>>,
    ) -> bool {
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
        self.entities.contains(last)
            || generics.is_some_and(|g| g.contains(last))
            || (self.entity_glob
                && upper_camel(last)
                && !self.local_types.contains(last)
                && !COMMON_TYPES.contains(&last.as_str()))
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
pub(super) struct UseLeaf {
    /// The full path, ending with the imported name (empty last segment for a glob).
    pub(super) path: Vec<String>,
    pub(super) alias: Option<String>,
    pub(super) glob: bool,
    pub(super) span: Span,
}

/// Every name a `use` tree brings in.
pub(super) fn use_leaves(tree: &UseTree) -> Vec<UseLeaf> {
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

/// The generic parameters bounded by an entity trait ([`ENTITY_BOUNDS`]).
pub(super) fn entity_generics(generics: &Generics) -> HashSet<String> {
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

fn upper_camel(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase()) && !name.contains('_')
}
