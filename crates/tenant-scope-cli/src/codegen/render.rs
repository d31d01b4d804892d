//! Adapts sea-orm-codegen's output to tenant-scope and formats it.
//!
//! sea-orm-codegen writes each file as blocks of tokens separated by blank lines (one block per item or group of
//! `use`s). The blocks are parsed with `syn` to read what codegen decided (table name, fields, relations), and
//! replaced or added as whole blocks: the `Related` impls are rebuilt from the [`Plan`]'s link tables, the tenant
//! column gets its type, and the `TenantScoped` / `Global` impl is appended. `rustfmt` then formats every file,
//! as sea-orm-cli does.

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
};

use sea_orm_codegen::OutputFile;

use super::{
    GenerateError, Layout,
    plan::{Kind, Plan},
};
use tenant_scope::contract::{ID_COLUMN, TENANT_COLUMN};

/// Put at the top of the generated root file (`lib.rs` or `mod.rs`): the workspace lints require docs,
/// generated code has none. An inner attribute, valid at the top of a crate root and of a module file alike.
fn root_lints(layout: Layout) -> String {
    let what = match layout {
        Layout::Crate => "crate",
        Layout::Module => "module",
    };
    format!(
        "// Generated code: entities carry no docs (they are regenerated from the migrated schema\n\
         // and never edited by hand), so the doc lint is off for this {what}.\n\
         #![allow(missing_docs)]"
    )
}

/// Appended to a tenant-owned entity whose `id` field has type `id` (`Uuid`, or an integer type).
fn tenant_scoped_impl(id: &str) -> String {
    format!(
        "impl tenant_scope::TenantScoped for Entity {{ type Id = {id}; \
         fn tenant_column() -> Column {{ Column::TenantId }} \
         fn id_column() -> Column {{ Column::Id }} }}"
    )
}

/// The row id types `TenantScoped::Id` accepts (`tenant_scope::RowId`).
const ROW_ID_TYPES: [&str; 5] = ["Uuid", "i32", "i64", "u32", "u64"];

/// Appended to a global entity.
const GLOBAL_IMPL: &str =
    "impl tenant_scope::Global for Entity { fn id_column() -> Column { Column::Id } }";

/// Blocks are separated by a blank line in codegen's entity files.
const BLOCK_SEPARATOR: &str = "\n\n";

/// One entity file of codegen's output, split into blocks.
#[derive(Debug)]
struct EntityFile {
    /// The file name (`<module>.rs`).
    name: String,
    /// The module name (file stem).
    module: String,
    /// The table.
    table: String,
    /// The blocks, in order.
    blocks: Vec<String>,
    /// The `Relation` variants, in order: (variant, target module; `None` for a self reference).
    relations: Vec<(String, Option<String>)>,
}

/// Adapts and formats codegen's `files`.
pub(crate) fn render(
    plan: &Plan,
    files: Vec<OutputFile>,
    layout: Layout,
) -> Result<BTreeMap<PathBuf, String>, GenerateError> {
    let mut entities = Vec::new();
    let mut others = Vec::new();
    for file in files {
        if matches!(
            file.name.as_str(),
            "lib.rs" | "mod.rs" | "prelude.rs" | "sea_orm_active_enums.rs"
        ) {
            others.push(file);
        } else {
            entities.push(EntityFile::parse(file)?);
        }
    }
    let module_of: BTreeMap<&str, &str> = entities
        .iter()
        .map(|e| (e.table.as_str(), e.module.as_str()))
        .collect();
    let by_table: BTreeMap<&str, &EntityFile> =
        entities.iter().map(|e| (e.table.as_str(), e)).collect();

    // The many-to-many impls of each table: (other table, impl block).
    let mut conjunct: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (link, [a, b]) in &plan.links {
        let (Some(link_file), Some(a_mod), Some(b_mod)) = (
            by_table.get(link.as_str()),
            module_of.get(a.as_str()),
            module_of.get(b.as_str()),
        ) else {
            continue;
        };
        let (Some(to_a), Some(to_b)) = (link_file.variant_to(a_mod), link_file.variant_to(b_mod))
        else {
            continue;
        };
        let via = &link_file.module;
        for (from, to, to_mod, to_variant, from_variant) in
            [(a, b, b_mod, to_b, to_a), (b, a, a_mod, to_a, to_b)]
        {
            conjunct.entry(from.clone()).or_default().push((
                to.clone(),
                format!(
                    "impl Related<super::{to_mod}::Entity> for Entity {{ \
                     fn to() -> RelationDef {{ super::{via}::Relation::{to_variant}.def() }} \
                     fn via() -> Option<RelationDef> {{ \
                     Some(super::{via}::Relation::{from_variant}.def().rev()) }} }}"
                ),
            ));
        }
    }
    for impls in conjunct.values_mut() {
        // As codegen does: two link tables to the same table would give two impls of one trait; emit neither.
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for (to, _) in impls.iter() {
            *count.entry(to.clone()).or_default() += 1;
        }
        impls.retain(|(to, _)| count.get(to) == Some(&1));
        impls.sort_by(|x, y| x.0.cmp(&y.0));
    }

    let mut out = BTreeMap::new();
    for entity in &entities {
        let kind = plan.kinds.get(&entity.table).copied().ok_or_else(|| {
            GenerateError::Codegen(format!("unexpected entity for table `{}`", entity.table))
        })?;
        let via = conjunct
            .get(&entity.table)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let text = entity.adapt(plan, kind, via, &module_of)?;
        out.insert(PathBuf::from(&entity.name), rustfmt(&text)?);
    }
    for file in others {
        let text = if file.name == layout.root_file() {
            add_root_lints(&file.content, layout)?
        } else {
            file.content
        };
        out.insert(PathBuf::from(&file.name), rustfmt(&text)?);
    }
    Ok(out)
}

impl EntityFile {
    fn parse(file: OutputFile) -> Result<Self, GenerateError> {
        let module = file
            .name
            .strip_suffix(".rs")
            .ok_or_else(|| GenerateError::Codegen(format!("unexpected file {}", file.name)))?
            .to_owned();
        let blocks: Vec<String> = file
            .content
            .split(BLOCK_SEPARATOR)
            .map(str::to_owned)
            .collect();
        let model = blocks
            .iter()
            .find_map(|b| {
                syn::parse_str::<syn::ItemStruct>(b)
                    .ok()
                    .filter(|s| s.ident == "Model")
            })
            .ok_or_else(|| GenerateError::Codegen(format!("{}: no `Model`", file.name)))?;
        let table = sea_orm_attr(&model.attrs, "table_name")
            .ok_or_else(|| GenerateError::Codegen(format!("{}: no `table_name`", file.name)))?;
        let relations = blocks
            .iter()
            .find_map(|b| {
                syn::parse_str::<syn::ItemEnum>(b)
                    .ok()
                    .filter(|e| e.ident == "Relation")
            })
            .map(|e| {
                e.variants
                    .iter()
                    .map(|v| {
                        let target = ["belongs_to", "has_many", "has_one"]
                            .iter()
                            .find_map(|k| sea_orm_attr(&v.attrs, k))
                            .and_then(|path| {
                                path.strip_prefix("super::")
                                    .and_then(|p| p.strip_suffix("::Entity"))
                                    .map(str::to_owned)
                            });
                        (v.ident.to_string(), target)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(EntityFile {
            name: file.name,
            module,
            table,
            blocks,
            relations,
        })
    }

    /// The `Relation` variant of this entity that targets `module`, if exactly one does.
    fn variant_to(&self, module: &str) -> Option<&str> {
        let mut found = self
            .relations
            .iter()
            .filter(|(_, target)| target.as_deref() == Some(module));
        let (variant, _) = found.next()?;
        found.next().is_none().then_some(variant.as_str())
    }

    /// The file with tenant-scope's changes, unformatted.
    fn adapt(
        &self,
        plan: &Plan,
        kind: Kind,
        conjunct: &[(String, String)],
        module_of: &BTreeMap<&str, &str>,
    ) -> Result<String, GenerateError> {
        let tenant_id_field = match kind {
            Kind::TenantOwned => Some(TENANT_COLUMN),
            Kind::Global if plan.tenants_table.as_deref() == Some(self.table.as_str()) => {
                Some(ID_COLUMN)
            }
            Kind::Global | Kind::SystemOnly => None,
        };
        // Direct `Related` impls: one per relation to a table referenced once, unless a many-to-many impl
        // to the same table exists (codegen's rules, with the link tables of the plan).
        let conjunct_modules: Vec<&str> = conjunct
            .iter()
            .filter_map(|(to, _)| module_of.get(to.as_str()).copied())
            .collect();
        let mut related: Vec<String> = self
            .relations
            .iter()
            .filter_map(|(variant, target)| {
                let target = target.as_deref()?;
                let once = self.variant_to(target).is_some();
                (once && target != self.module && !conjunct_modules.contains(&target)).then(|| {
                    format!(
                        "impl Related<super::{target}::Entity> for Entity {{ \
                         fn to() -> RelationDef {{ Relation::{variant}.def() }} }}"
                    )
                })
            })
            .collect();
        related.extend(conjunct.iter().map(|(_, block)| block.clone()));

        let mut blocks = Vec::with_capacity(self.blocks.len() + related.len() + 1);
        let mut related = Some(related);
        let (mut imported, mut retyped) = (false, false);
        let mut id_type = None;
        for block in &self.blocks {
            if is_impl_of(block, "Related") {
                continue;
            }
            if is_impl_of(block, "ActiveModelBehavior") {
                blocks.extend(related.take().unwrap_or_default());
            }
            let mut block = block.clone();
            if kind == Kind::TenantOwned
                && let Ok(model) = syn::parse_str::<syn::ItemStruct>(&block)
                && model.ident == "Model"
            {
                id_type = id_field_type(&model);
            }
            if let Some(field) = tenant_id_field {
                if block.starts_with("use sea_orm :: entity :: prelude :: * ;") {
                    block.push_str(" use tenant_scope :: TenantId ;");
                    imported = true;
                } else if syn::parse_str::<syn::ItemStruct>(&block)
                    .is_ok_and(|s| s.ident == "Model")
                {
                    block = retype(&self.table, &block, field)?;
                    retyped = true;
                }
            }
            blocks.push(block);
        }
        if tenant_id_field.is_some() && !(imported && retyped) {
            return Err(GenerateError::Codegen(format!(
                "{}: unexpected sea-orm-codegen output (no prelude import or no `Model`)",
                self.name
            )));
        }
        blocks.extend(related.take().unwrap_or_default());
        match kind {
            Kind::TenantOwned => {
                let id = id_type
                    .filter(|ty| ROW_ID_TYPES.contains(&ty.as_str()))
                    .ok_or_else(|| GenerateError::Shape {
                        table: self.table.clone(),
                        problem: "the `id` field is not a UUID or a 32/64-bit integer".to_owned(),
                    })?;
                blocks.push(tenant_scoped_impl(&id));
            }
            Kind::Global => blocks.push(GLOBAL_IMPL.to_owned()),
            Kind::SystemOnly => {}
        }
        Ok(blocks.join(BLOCK_SEPARATOR))
    }
}

/// The type of the `id` field of `model`, as written (`Uuid`, `i64`, ..); `None` for an optional
/// or a missing `id`.
fn id_field_type(model: &syn::ItemStruct) -> Option<String> {
    let field = model
        .fields
        .iter()
        .find(|f| f.ident.as_ref().is_some_and(|i| i == ID_COLUMN))?;
    match &field.ty {
        syn::Type::Path(path) if path.qself.is_none() && path.path.segments.len() == 1 => {
            let segment = &path.path.segments[0];
            segment
                .arguments
                .is_none()
                .then(|| segment.ident.to_string())
        }
        _ => None,
    }
}

/// The `Model` block with field `field` (a non-null `Uuid`) typed `TenantId`.
fn retype(table: &str, block: &str, field: &str) -> Result<String, GenerateError> {
    let pattern = format!("pub {field} : Uuid ,");
    match block.matches(&pattern).count() {
        1 => Ok(block.replacen(&pattern, &format!("pub {field} : TenantId ,"), 1)),
        _ => Err(GenerateError::Shape {
            table: table.to_owned(),
            problem: format!("`{field}` must be a NOT NULL UUID column"),
        }),
    }
}

/// Whether `block` is an `impl TRAIT<..> for ..` block.
fn is_impl_of(block: &str, trait_name: &str) -> bool {
    syn::parse_str::<syn::ItemImpl>(block).is_ok_and(|item| {
        item.trait_
            .as_ref()
            .and_then(|(_, path, _)| path.segments.last())
            .is_some_and(|segment| segment.ident == trait_name)
    })
}

/// The string value of `key = ".."` in the `#[sea_orm(..)]` attributes.
fn sea_orm_attr(attrs: &[syn::Attribute], key: &str) -> Option<String> {
    let mut value = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("sea_orm")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident(key) {
                let lit: syn::LitStr = meta.value()?.parse()?;
                value = Some(lit.value());
            } else if meta.input.peek(syn::Token![=]) {
                // Skip the value of another key.
                let _: syn::Expr = meta.value()?.parse()?;
            }
            Ok(())
        });
    }
    value
}

/// The root file with the lint allowances after its header line.
fn add_root_lints(content: &str, layout: Layout) -> Result<String, GenerateError> {
    let (header, rest) = content
        .split_once('\n')
        .ok_or_else(|| GenerateError::Codegen(format!("{} has no header", layout.root_file())))?;
    Ok(format!("{header}\n\n{}\n{rest}", root_lints(layout)))
}

/// `source` formatted by `rustfmt --edition 2024` (the `RUSTFMT` environment variable names another program).
fn rustfmt(source: &str) -> Result<String, GenerateError> {
    let program = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
    let mut child = Command::new(&program)
        .args(["--edition", "2024", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            GenerateError::Rustfmt(format!("running {}: {e}", program.to_string_lossy()))
        })?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| GenerateError::Rustfmt("no stdin".into()))?;
    // Written from another thread, so a full stdout pipe cannot deadlock the write.
    let input = source.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| GenerateError::Rustfmt(e.to_string()))?;
    writer
        .join()
        .map_err(|_| GenerateError::Rustfmt("writing its input panicked".into()))?
        .map_err(|e| GenerateError::Rustfmt(e.to_string()))?;
    if !output.status.success() {
        return Err(GenerateError::Rustfmt(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| GenerateError::Rustfmt(e.to_string()))
}
