//! The module tree of one crate: which files and inline modules it has, read from `mod`
//! declarations starting at each crate root, with test-only items left out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use syn::{Attribute, Item};

/// One module of a crate: a file, or an inline `mod name { ... }` inside one.
pub struct Module {
    /// Segments from the crate root, e.g. `["mapping", "queue"]`; empty for the root.
    pub path: Vec<String>,
    pub file: PathBuf,
    /// The module's own items, test-only items and child modules' bodies excluded.
    pub items: Vec<Item>,
    pub parent: Option<usize>,
    pub children: HashMap<String, usize>,
}

/// One compilation unit: a library, binary or the like, with its modules in load order.
pub struct Unit {
    pub root_file: PathBuf,
    pub modules: Vec<Module>,
}

pub struct LoadError {
    pub file: PathBuf,
    pub message: String,
}

/// Whether an attribute list marks an item as test-only: `#[cfg(test)]` (also inside
/// `all(...)`/`any(...)`) or a test function attribute such as `#[test]`/`#[tokio::test]`.
pub fn is_test_only(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        if path.segments.last().is_some_and(|s| s.ident == "test") {
            return true;
        }
        path.is_ident("cfg")
            && attr
                .meta
                .require_list()
                .is_ok_and(|list| mentions_test(list.tokens.clone()))
    })
}

fn mentions_test(tokens: proc_macro2::TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        proc_macro2::TokenTree::Ident(ident) => ident == "test",
        proc_macro2::TokenTree::Group(group) => mentions_test(group.stream()),
        _ => false,
    })
}

pub fn parse_file(file: &Path) -> Result<syn::File, LoadError> {
    let error = |message: String| LoadError {
        file: file.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(file).map_err(|e| error(e.to_string()))?;
    syn::parse_file(&text).map_err(|e| error(e.to_string()))
}

/// Loads the unit whose root file is `root_file`, following `mod` declarations.
pub fn load_unit(root_file: &Path) -> Result<Unit, LoadError> {
    let mut unit = Unit {
        root_file: root_file.to_path_buf(),
        modules: Vec::new(),
    };
    let file = parse_file(root_file)?;
    let dir = root_file.parent().unwrap_or(Path::new(".")).to_path_buf();
    add_module(&mut unit, Vec::new(), root_file, &dir, file.items, None)?;
    Ok(unit)
}

/// Adds one module and, recursively, its non-test child modules; returns its index.
fn add_module(
    unit: &mut Unit,
    path: Vec<String>,
    file: &Path,
    child_dir: &Path,
    items: Vec<Item>,
    parent: Option<usize>,
) -> Result<usize, LoadError> {
    let index = unit.modules.len();
    unit.modules.push(Module {
        path: path.clone(),
        file: file.to_path_buf(),
        items: Vec::new(),
        parent,
        children: HashMap::new(),
    });
    let mut own_items = Vec::new();
    for item in items {
        let Item::Mod(module) = item else {
            if !item_is_test_only(&item) {
                own_items.push(item);
            }
            continue;
        };
        if is_test_only(&module.attrs) {
            continue;
        }
        let name = module.ident.to_string();
        let mut child_path = path.clone();
        child_path.push(name.clone());
        let child = match module.content {
            Some((_, inline_items)) => add_module(
                unit,
                child_path,
                file,
                &child_dir.join(&name),
                inline_items,
                Some(index),
            )?,
            None => {
                let child_file = child_module_file(child_dir, &name, file)?;
                let next_dir = child_dir_of(&child_file);
                let parsed = parse_file(&child_file)?;
                add_module(
                    unit,
                    child_path,
                    &child_file,
                    &next_dir,
                    parsed.items,
                    Some(index),
                )?
            }
        };
        unit.modules[index].children.insert(name, child);
    }
    unit.modules[index].items = own_items;
    Ok(index)
}

fn child_module_file(dir: &Path, name: &str, declared_in: &Path) -> Result<PathBuf, LoadError> {
    let flat = dir.join(format!("{name}.rs"));
    if flat.is_file() {
        return Ok(flat);
    }
    let nested = dir.join(name).join("mod.rs");
    if nested.is_file() {
        return Ok(nested);
    }
    Err(LoadError {
        file: declared_in.to_path_buf(),
        message: format!("module `{name}` has no file {}", flat.display()),
    })
}

/// Where the children of a file module live: beside `mod.rs`, or in `name/` for `name.rs`.
fn child_dir_of(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new(".")).to_path_buf();
    if file.file_name().is_some_and(|n| n == "mod.rs") {
        parent
    } else {
        parent.join(file.file_stem().unwrap_or_default())
    }
}

pub fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

pub fn item_is_test_only(item: &Item) -> bool {
    is_test_only(item_attrs(item))
}
