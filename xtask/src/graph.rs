//! Module dependencies of one unit and their cycles.
//!
//! An edge `a -> b` means code in module `a` names an item that module `b` defines, through
//! `use` or a path (`crate::…`, `super::…`, `self::…`, a child module or an imported name).
//! Re-exports are followed to the module that defines the item, so `crate::Thing` re-exported
//! by `lib.rs` counts as a dependency on the defining module, not on the root; a `pub use`
//! itself is no dependency (it makes its module a facade).

use std::collections::{BTreeMap, HashMap, HashSet};

use syn::visit::Visit;
use syn::{Item, UseTree};

use crate::tree::{Unit, is_test_only, item_is_test_only};

/// What one module's names refer to.
#[derive(Default)]
struct Scope {
    defined: HashSet<String>,
    /// `use` imports: the name in scope and the path it stands for.
    imports: HashMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
}

/// One place a module names another, kept for the report.
#[derive(Clone)]
pub struct Reference {
    pub line: usize,
    /// The path as written, e.g. `super::Plan`.
    pub path: String,
}

pub struct Graph<'u> {
    unit: &'u Unit,
    scopes: Vec<Scope>,
    /// `(from, to)` with the first place `from` names `to`.
    pub edges: BTreeMap<(usize, usize), Reference>,
}

impl<'u> Graph<'u> {
    pub fn build(unit: &'u Unit) -> Self {
        let scopes = unit.modules.iter().map(|m| scope_of(&m.items)).collect();
        let mut graph = Graph {
            unit,
            scopes,
            edges: BTreeMap::new(),
        };
        for (index, module) in unit.modules.iter().enumerate() {
            let mut collector = PathCollector::default();
            for item in &module.items {
                collector.visit_item(item);
            }
            for (segments, line) in collector.paths {
                if let Some(target) = graph.resolve(index, &segments, 0)
                    && target != index
                {
                    graph
                        .edges
                        .entry((index, target))
                        .or_insert_with(|| Reference {
                            line,
                            path: segments.join("::"),
                        });
                }
            }
        }
        graph
    }

    /// The module that defines what `segments`, written in module `from`, names; `None` for
    /// names outside the unit (other crates, the prelude, local variables).
    fn resolve(&self, from: usize, segments: &[String], depth: usize) -> Option<usize> {
        if depth > 16 || segments.is_empty() {
            return None;
        }
        let modules = &self.unit.modules;
        let mut current = from;
        let mut rest = segments;
        match rest[0].as_str() {
            "crate" => {
                current = 0;
                rest = &rest[1..];
            }
            "self" => rest = &rest[1..],
            "Self" => return None,
            _ => {}
        }
        while rest.first().is_some_and(|s| s == "super") {
            current = modules[current].parent?;
            rest = &rest[1..];
        }
        let relative = current == from && rest.len() == segments.len();
        for (position, name) in rest.iter().enumerate() {
            if let Some(&child) = modules[current].children.get(name) {
                current = child;
                continue;
            }
            let scope = &self.scopes[current];
            if scope.defined.contains(name) {
                return Some(current);
            }
            if let Some(target) = scope.imports.get(name) {
                if target.len() == 1 && target[0] == *name {
                    return None;
                }
                let mut full = target.clone();
                full.extend(rest[position + 1..].iter().cloned());
                return self.resolve(current, &full, depth + 1);
            }
            if let Some(found) = self.resolve_through_globs(current, &rest[position..], depth) {
                return Some(found);
            }
            return if position == 0 && relative {
                None
            } else {
                Some(current)
            };
        }
        Some(current)
    }

    fn resolve_through_globs(&self, module: usize, rest: &[String], depth: usize) -> Option<usize> {
        let name = &rest[0];
        for glob in &self.scopes[module].globs {
            let Some(source) = self.resolve(module, glob, depth + 1) else {
                continue;
            };
            let scope = &self.scopes[source];
            let has_name = self.unit.modules[source].children.contains_key(name)
                || scope.defined.contains(name)
                || scope.imports.contains_key(name);
            if has_name && source != module {
                return self.resolve(source, rest, depth + 1);
            }
        }
        None
    }

    /// Groups of two or more modules that depend on each other (strongly connected
    /// components), each sorted by module path.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let count = self.unit.modules.len();
        let mut successors = vec![Vec::new(); count];
        for &(from, to) in self.edges.keys() {
            successors[from].push(to);
        }
        let mut components = strongly_connected(&successors);
        components.retain(|c| c.len() > 1);
        for component in &mut components {
            component.sort_by(|a, b| self.unit.modules[*a].path.cmp(&self.unit.modules[*b].path));
        }
        components.sort();
        components
    }
}

fn scope_of(items: &[Item]) -> Scope {
    let mut scope = Scope::default();
    for item in items {
        let name = match item {
            Item::Const(i) => Some(&i.ident),
            Item::Enum(i) => Some(&i.ident),
            Item::Fn(i) => Some(&i.sig.ident),
            Item::Static(i) => Some(&i.ident),
            Item::Struct(i) => Some(&i.ident),
            Item::Trait(i) => Some(&i.ident),
            Item::Type(i) => Some(&i.ident),
            Item::Union(i) => Some(&i.ident),
            Item::Macro(i) => i.ident.as_ref(),
            Item::Use(i) => {
                flatten_use(&i.tree, &mut Vec::new(), &mut scope);
                None
            }
            _ => None,
        };
        if let Some(name) = name {
            scope.defined.insert(name.to_string());
        }
    }
    scope
}

fn flatten_use(tree: &UseTree, prefix: &mut Vec<String>, scope: &mut Scope) {
    match tree {
        UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, scope);
            prefix.pop();
        }
        UseTree::Name(n) if n.ident == "self" => {
            if let Some(last) = prefix.last() {
                scope.imports.insert(last.clone(), prefix.clone());
            }
        }
        UseTree::Name(n) => {
            let mut full = prefix.clone();
            full.push(n.ident.to_string());
            scope.imports.insert(n.ident.to_string(), full);
        }
        UseTree::Rename(r) => {
            let mut full = prefix.clone();
            if r.ident != "self" {
                full.push(r.ident.to_string());
            }
            scope.imports.insert(r.rename.to_string(), full);
        }
        UseTree::Glob(_) => scope.globs.push(prefix.clone()),
        UseTree::Group(g) => {
            for item in &g.items {
                flatten_use(item, prefix, scope);
            }
        }
    }
}

/// Every path named by non-test code, with its line; `use` trees count as paths.
#[derive(Default)]
struct PathCollector {
    paths: Vec<(Vec<String>, usize)>,
}

impl PathCollector {
    fn collect_use(&mut self, tree: &UseTree, prefix: &mut Vec<String>) {
        match tree {
            UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.collect_use(&p.tree, prefix);
                prefix.pop();
            }
            UseTree::Name(n) => self.push_use(prefix, &n.ident, n.ident.span()),
            UseTree::Rename(r) => self.push_use(prefix, &r.ident, r.ident.span()),
            UseTree::Glob(g) => {
                let line = g.star_token.spans[0].start().line;
                self.paths.push((prefix.clone(), line));
            }
            UseTree::Group(g) => {
                for item in &g.items {
                    self.collect_use(item, prefix);
                }
            }
        }
    }

    fn push_use(&mut self, prefix: &[String], ident: &syn::Ident, span: proc_macro2::Span) {
        let mut full = prefix.to_vec();
        if ident != "self" {
            full.push(ident.to_string());
        }
        self.paths.push((full, span.start().line));
    }
}

impl<'ast> Visit<'ast> for PathCollector {
    fn visit_item(&mut self, item: &'ast Item) {
        if !item_is_test_only(item) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_test_only(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {}

    /// Re-exports (`pub use`) make a module a facade of what it exports, not a user of it.
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if matches!(item.vis, syn::Visibility::Inherited) {
            self.collect_use(&item.tree, &mut Vec::new());
        }
    }

    /// Macros live in a namespace of their own: `format!` is no use of a module `format`.
    fn visit_macro(&mut self, _: &'ast syn::Macro) {}

    /// `pub(crate)`/`pub(super)` name no item.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() {
            let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
            let line = path
                .segments
                .first()
                .map_or(0, |s| s.ident.span().start().line);
            self.paths.push((segments, line));
        }
        syn::visit::visit_path(self, path);
    }
}

/// Tarjan's algorithm, iterative so deep module chains cannot overflow the stack.
fn strongly_connected(successors: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let count = successors.len();
    let mut index_of = vec![usize::MAX; count];
    let mut low = vec![0; count];
    let mut on_stack = vec![false; count];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    let mut next_index = 0;
    for start in 0..count {
        if index_of[start] != usize::MAX {
            continue;
        }
        let mut work = vec![(start, 0)];
        while let Some((node, child)) = work.pop() {
            if child == 0 {
                index_of[node] = next_index;
                low[node] = next_index;
                next_index += 1;
                stack.push(node);
                on_stack[node] = true;
            }
            if let Some(&next) = successors[node].get(child) {
                work.push((node, child + 1));
                if index_of[next] == usize::MAX {
                    work.push((next, 0));
                } else if on_stack[next] {
                    low[node] = low[node].min(index_of[next]);
                }
                continue;
            }
            if low[node] == index_of[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                components.push(component);
            }
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[node]);
            }
        }
    }
    components
}
