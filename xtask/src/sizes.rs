//! Function and file lengths of non-test code.

use std::collections::HashSet;
use std::path::PathBuf;

use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Item, Signature};

use crate::tree::{Unit, is_test_only, item_is_test_only, parse_file};

pub struct LongFunction {
    pub file: PathBuf,
    pub line: usize,
    pub name: String,
    pub lines: usize,
}

pub struct FileSize {
    pub file: PathBuf,
    /// Lines outside `#[cfg(test)]` items.
    pub code_lines: usize,
    pub total_lines: usize,
}

/// Functions of the unit's modules longer than `limit` lines, signature to closing brace.
pub fn long_functions(unit: &Unit, limit: usize) -> Vec<LongFunction> {
    let mut found = Vec::new();
    for module in &unit.modules {
        let mut finder = FunctionFinder {
            owner: Vec::new(),
            lengths: Vec::new(),
        };
        for item in &module.items {
            finder.visit_item(item);
        }
        for (name, line, lines) in finder.lengths {
            if lines > limit {
                found.push(LongFunction {
                    file: module.file.clone(),
                    line,
                    name,
                    lines,
                });
            }
        }
    }
    found
}

struct FunctionFinder {
    /// The `impl`/`trait` the visitor is inside, for names such as `Client::put`.
    owner: Vec<String>,
    lengths: Vec<(String, usize, usize)>,
}

impl FunctionFinder {
    fn record(&mut self, sig: &Signature, body: &syn::Block) {
        let start = sig.span().start().line;
        let end = body.brace_token.span.close().end().line;
        let name = match self.owner.last() {
            Some(owner) => format!("{owner}::{}", sig.ident),
            None => sig.ident.to_string(),
        };
        self.lengths.push((name, start, end + 1 - start));
    }
}

impl<'ast> Visit<'ast> for FunctionFinder {
    fn visit_item(&mut self, item: &'ast Item) {
        if !item_is_test_only(item) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {}

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        self.record(&f.sig, &f.block);
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let ty = &i.self_ty;
        let owner = quote_type(ty);
        self.owner.push(owner);
        syn::visit::visit_item_impl(self, i);
        self.owner.pop();
    }

    fn visit_item_trait(&mut self, t: &'ast syn::ItemTrait) {
        self.owner.push(t.ident.to_string());
        syn::visit::visit_item_trait(self, t);
        self.owner.pop();
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test_only(&f.attrs) {
            self.record(&f.sig, &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
        if let Some(body) = &f.default {
            self.record(&f.sig, body);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

fn quote_type(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .map_or_else(|| "impl".to_string(), |s| s.ident.to_string()),
        _ => "impl".to_string(),
    }
}

/// Line counts of each file of the unit, test-only items (such as `#[cfg(test)] mod tests`)
/// left out of `code_lines`.
pub fn file_sizes(unit: &Unit) -> Vec<FileSize> {
    let mut seen = HashSet::new();
    let mut sizes = Vec::new();
    for module in &unit.modules {
        if !seen.insert(module.file.clone()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&module.file) else {
            continue;
        };
        let total_lines = text.lines().count();
        let test_lines = parse_file(&module.file)
            .map(|file| test_only_lines(&file.items))
            .unwrap_or(0);
        sizes.push(FileSize {
            file: module.file.clone(),
            code_lines: total_lines - test_lines,
            total_lines,
        });
    }
    sizes
}

fn test_only_lines(items: &[Item]) -> usize {
    let mut lines = 0;
    for item in items {
        if item_is_test_only(item) {
            let span = item.span();
            lines += span.end().line + 1 - span.start().line;
        } else if let Item::Mod(m) = item
            && let Some((_, inner)) = &m.content
        {
            lines += test_only_lines(inner);
        }
    }
    lines
}
