//! Compile-time imports (`import {a, b as c} from 'x.bicep'`, `import * as ns from
//! 'x.bicep'`) of exported types, variables and functions of local Bicep files.
//!
//! As the official compiler does, the imported declarations are copied into the
//! importing template: a symbol imported by name keeps its local name; a wildcard
//! member (`ns.x`) and anything an imported symbol needs but that was not imported
//! itself are named `_<n>.<name>`, `n` numbering the imported files in path order.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use crate::ModuleResolver;
use crate::ast::*;
use crate::diag::{Diagnostic, Span};
use crate::parser::{Parsed, parse};

/// The number of every file `file` imports from (ARM templates too), by resolved
/// path: 1, 2, ... in path order, as the `_<n>.` prefixes use them.
pub fn file_numbers(
    file: &File,
    name: &str,
    resolver: &dyn ModuleResolver,
) -> HashMap<String, usize> {
    let paths: BTreeSet<String> = file
        .decls
        .iter()
        .filter_map(|d| match &d.kind {
            DeclKind::Import(Some(s)) => resolver.resolve(name, &s.path).ok().map(|(p, _)| p),
            _ => None,
        })
        .collect();
    paths.into_iter().zip(1..).collect()
}

/// A file imported from, its declarations by name.
struct Source {
    /// The path as the import wrote it (the `sourceTemplate` of the copies).
    written: String,
    /// `_<n>`.
    prefix: String,
    decls: HashMap<String, Decl>,
}

/// Where an imported declaration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The path as the import wrote it (the `sourceTemplate` of the copy).
    pub written: String,
    /// The resolved file name, which its diagnostics name.
    pub path: String,
}

/// The importing file with every imported declaration (and what those need)
/// appended under its new name, and where each copy came from (by new name).
/// Imports of other kinds are left for the emitter to report.
pub fn merge(
    mut file: File,
    name: &str,
    resolver: &dyn ModuleResolver,
    sources_text: &mut HashMap<String, String>,
) -> Result<(File, HashMap<String, Origin>), Vec<Diagnostic>> {
    let specs = import_specs(&file);
    if specs.is_empty() {
        return Ok((file, HashMap::new()));
    }
    let mut errors = Vec::new();
    let resolved = resolve_imports(&specs, name, resolver, &mut errors);
    let number = file_numbers(&file, name, resolver);
    let sources = load_sources(&resolved, &number, sources_text, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let Imported {
        mut names,
        wildcards,
        work,
    } = imported_names(&file, &specs, &resolved, &sources, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let copies = needed_declarations(&sources, &mut names, work);
    let imported_from = copy_declarations(&mut file, &sources, &names, copies);
    let local = |ns: &str, member: &str| {
        let path = wildcards.get(ns)?;
        names.get(&(path.clone(), member.to_string())).cloned()
    };
    for d in &mut file.decls {
        rewrite_wildcard_uses(d, &local);
    }
    Ok((file, imported_from))
}

/// An import read from disk: resolved path, text, path as written, import span.
type Resolved = (String, String, String, Span);

/// (file, symbol) → name in the importing template.
type Names = HashMap<(String, String), String>;

/// What a file imports by name or uses through a wildcard namespace.
struct Imported {
    names: Names,
    /// Wildcard namespace → resolved path.
    wildcards: HashMap<String, String>,
    /// (file, symbol) pairs to copy, before what they need.
    work: Vec<(String, String)>,
}

/// The `import` declarations of Bicep files (ARM JSON imports are handled apart).
fn import_specs(file: &File) -> Vec<(ImportSpec, Span)> {
    file.decls
        .iter()
        .filter_map(|d| match &d.kind {
            DeclKind::Import(Some(s)) if !s.path.to_ascii_lowercase().ends_with(".json") => {
                Some((s.clone(), d.keyword_span))
            }
            _ => None,
        })
        .collect()
}

fn resolve_imports(
    specs: &[(ImportSpec, Span)],
    name: &str,
    resolver: &dyn ModuleResolver,
    errors: &mut Vec<Diagnostic>,
) -> Vec<Resolved> {
    let mut resolved = Vec::new();
    for (s, span) in specs {
        match resolver.resolve(name, &s.path) {
            Ok((path, text)) => resolved.push((path, text, s.path.clone(), *span)),
            Err(e) => errors.push(Diagnostic::error(
                "BCP091",
                format!("An error occurred reading file. {e}"),
                *span,
            )),
        }
    }
    resolved
}

/// Parses and checks each imported file once; files that import themselves are
/// not supported.
fn load_sources(
    resolved: &[Resolved],
    number: &HashMap<String, usize>,
    sources_text: &mut HashMap<String, String>,
    errors: &mut Vec<Diagnostic>,
) -> HashMap<String, Source> {
    let mut sources: HashMap<String, Source> = HashMap::new();
    for (path, text, written, _) in resolved {
        if sources.contains_key(path) {
            continue;
        }
        sources_text.insert(path.clone(), text.clone());
        let Parsed {
            file,
            errors: syntax,
        } = parse(text);
        let parsed = if syntax.is_empty() {
            Ok(file)
        } else {
            Err(syntax)
        };
        match parsed {
            Ok(f)
                if f.decls
                    .iter()
                    .any(|d| matches!(d.kind, DeclKind::Import(_))) =>
            {
                errors.push(Diagnostic::unsupported(
                    format!("Importing from \"{written}\", which imports from other files itself,"),
                    resolved_span(resolved, path),
                ));
            }
            Ok(f) => {
                errors.extend(
                    crate::check::check(&crate::model::Model::bind(&f))
                        .into_iter()
                        .map(|e| e.in_file(path)),
                );
                let decls = f
                    .decls
                    .into_iter()
                    .filter_map(|d| Some((d.name.clone()?.0, d)))
                    .collect();
                sources.insert(
                    path.clone(),
                    Source {
                        written: written.clone(),
                        prefix: format!("_{}", number.get(path).copied().unwrap_or(0)),
                        decls,
                    },
                );
            }
            Err(syntax) => errors.extend(syntax.into_iter().map(|e| e.in_file(path))),
        }
    }
    sources
}

/// The local names of imported symbols and of the wildcard members `file` uses.
fn imported_names(
    file: &File,
    specs: &[(ImportSpec, Span)],
    resolved: &[Resolved],
    sources: &HashMap<String, Source>,
    errors: &mut Vec<Diagnostic>,
) -> Imported {
    let mut names: Names = HashMap::new();
    let mut wildcards: HashMap<String, String> = HashMap::new();
    let mut work: Vec<(String, String)> = Vec::new();
    for ((spec, span), (path, ..)) in specs.iter().zip(resolved) {
        let source = &sources[path];
        for (symbol, alias) in &spec.items {
            if !source.decls.contains_key(symbol) {
                errors.push(Diagnostic::error(
                    "BCP360",
                    format!("The \"{symbol}\" symbol was not found in (or was not exported by) the imported template."),
                    *span,
                ));
                continue;
            }
            let local = alias.clone().unwrap_or_else(|| symbol.clone());
            names.insert((path.clone(), symbol.clone()), local);
            work.push((path.clone(), symbol.clone()));
        }
        if let Some(ns) = &spec.wildcard {
            wildcards.insert(ns.clone(), path.clone());
        }
    }
    // Wildcard members the importing file uses.
    for d in &file.decls {
        let mut used = Vec::new();
        collect_wildcard_uses(d, &wildcards, &mut used);
        for (path, symbol) in used {
            if let Some(source) = sources.get(&path)
                && source.decls.contains_key(&symbol)
            {
                names
                    .entry((path.clone(), symbol.clone()))
                    .or_insert_with(|| format!("{}.{symbol}", source.prefix));
                work.push((path, symbol));
            }
        }
    }
    Imported {
        names,
        wildcards,
        work,
    }
}

/// What the imported declarations need, in their own files, named with their
/// file's prefix.
fn needed_declarations(
    sources: &HashMap<String, Source>,
    names: &mut Names,
    mut work: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut done = BTreeSet::new();
    let mut copies = Vec::new();
    while let Some((path, symbol)) = work.pop() {
        if !done.insert((path.clone(), symbol.clone())) {
            continue;
        }
        let source = &sources[&path];
        let decl = &source.decls[&symbol];
        for needed in references(decl, &source.decls) {
            names
                .entry((path.clone(), needed.clone()))
                .or_insert_with(|| format!("{}.{needed}", source.prefix));
            work.push((path.clone(), needed));
        }
        copies.push((path, symbol));
    }
    copies
}

/// Appends the renamed copies to `file`; returns where each came from.
fn copy_declarations(
    file: &mut File,
    sources: &HashMap<String, Source>,
    names: &Names,
    copies: Vec<(String, String)>,
) -> HashMap<String, Origin> {
    let mut imported_from = HashMap::new();
    for (path, symbol) in copies {
        let source = &sources[&path];
        let mut decl = source.decls[&symbol].clone();
        let rename = |n: &str| names.get(&(path.clone(), n.to_string())).cloned();
        rename_decl(&mut decl, &rename);
        decl.decorators.retain(|e| !is_call(e, "export"));
        let new_name = names[&(path.clone(), symbol.clone())].clone();
        if let Some((n, _)) = &mut decl.name {
            *n = new_name.clone();
        }
        imported_from.insert(
            new_name,
            Origin {
                written: source.written.clone(),
                path: path.clone(),
            },
        );
        file.decls.push(decl);
    }
    imported_from
}

/// Where the import of the file at `path` is written.
fn resolved_span(resolved: &[(String, String, String, Span)], path: &str) -> Span {
    resolved
        .iter()
        .find(|(p, ..)| p == path)
        .map(|(.., span)| *span)
        .unwrap_or_default()
}

fn is_call(e: &Expr, name: &str) -> bool {
    matches!(&e.kind, ExprKind::Call { name: n, .. } if n == name)
}

/// Names declared in the same file that `decl` refers to.
fn references(decl: &Decl, decls: &HashMap<String, Decl>) -> Vec<String> {
    let found: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let mut probe = decl.clone();
    rename_decl(&mut probe, &|n| {
        let mut found = found.borrow_mut();
        if decls.contains_key(n) && !found.iter().any(|f| f == n) {
            found.push(n.to_string());
        }
        None
    });
    found.into_inner()
}

fn rename_decl(d: &mut Decl, rename: &dyn Fn(&str) -> Option<String>) {
    for e in &mut d.decorators {
        rename_expr(e, rename, &[]);
    }
    match &mut d.kind {
        DeclKind::Var { ty, value } => {
            if let Some(t) = ty {
                rename_type(t, rename);
            }
            rename_expr(value, rename, &[]);
        }
        DeclKind::Type(t) => rename_type(t, rename),
        DeclKind::Func {
            params,
            output,
            body,
        } => {
            let locals: Vec<String> = params.iter().map(|(n, _)| n.clone()).collect();
            for (_, t) in params.iter_mut() {
                rename_type(t, rename);
            }
            rename_type(output, rename);
            rename_expr(body, rename, &locals);
        }
        _ => {}
    }
}

fn rename_type(t: &mut TypeExpr, rename: &dyn Fn(&str) -> Option<String>) {
    match &mut t.kind {
        TypeKind::Name(n) => {
            let (root, rest) = n.split_once('.').map_or((n.as_str(), ""), |(r, x)| (r, x));
            if let Some(new) = rename(root) {
                *n = if rest.is_empty() {
                    new
                } else {
                    format!("{new}.{rest}")
                };
            }
        }
        TypeKind::Array(x) | TypeKind::Nullable(x) | TypeKind::NonNull(x) => rename_type(x, rename),
        TypeKind::Access(x, _) => rename_type(x, rename),
        TypeKind::Union(items) => items.iter_mut().for_each(|x| rename_type(x, rename)),
        TypeKind::Object(props) | TypeKind::Tuple(props) => {
            for p in props {
                p.decorators
                    .iter_mut()
                    .for_each(|e| rename_expr(e, rename, &[]));
                rename_type(&mut p.ty, rename);
            }
        }
        TypeKind::Literal(_) | TypeKind::Parameterized(..) => {}
    }
}

/// Renames references to declarations (not to loop, lambda or function locals).
fn rename_expr(e: &mut Expr, rename: &dyn Fn(&str) -> Option<String>, locals: &[String]) {
    let is_local = |n: &str, locals: &[String]| locals.iter().any(|l| l == n);
    match &mut e.kind {
        ExprKind::Ident(n) => {
            if !is_local(n, locals)
                && let Some(new) = rename(n)
            {
                *n = new;
            }
        }
        ExprKind::Call {
            namespace: None,
            name,
            args,
        } => {
            if !is_local(name, locals)
                && let Some(new) = rename(name)
            {
                *name = new;
            }
            args.iter_mut().for_each(|a| rename_expr(a, rename, locals));
        }
        ExprKind::Lambda { params, body } => {
            let mut inner = locals.to_vec();
            inner.extend(params.iter().cloned());
            rename_expr(body, rename, &inner);
        }
        ExprKind::For {
            item,
            index,
            iterable,
            body,
        } => {
            rename_expr(iterable, rename, locals);
            let mut inner = locals.to_vec();
            inner.extend(item.iter().cloned());
            inner.extend(index.iter().cloned());
            rename_expr(body, rename, &inner);
        }
        _ => for_each_child(e, &mut |x| rename_expr(x, rename, locals)),
    }
}

/// Calls `f` on each direct sub-expression of `e`.
fn for_each_child(e: &mut Expr, f: &mut dyn FnMut(&mut Expr)) {
    match &mut e.kind {
        ExprKind::Str { holes, .. } => holes.iter_mut().for_each(f),
        ExprKind::Array(items) => {
            for i in items {
                match i {
                    ArrayItem::Value(x) | ArrayItem::Spread(x) => f(x),
                }
            }
        }
        ExprKind::Object(items) => {
            for i in items {
                match i {
                    ObjectItem::Property { value, key, .. } => {
                        if let Some(k) = &mut key.interpolated {
                            f(k);
                        }
                        f(value);
                    }
                    ObjectItem::Spread(x) => f(x),
                    ObjectItem::NestedResource(_) => {}
                }
            }
        }
        ExprKind::Call { args, .. } => args.iter_mut().for_each(f),
        ExprKind::MethodCall { base, args, .. } => {
            f(base);
            args.iter_mut().for_each(f);
        }
        ExprKind::Member { base, .. }
        | ExprKind::ChildAccess { base, .. }
        | ExprKind::NonNull(base)
        | ExprKind::Paren(base)
        | ExprKind::Unary { operand: base, .. } => f(base),
        ExprKind::Index { base, index, .. } => {
            f(base);
            f(index);
        }
        ExprKind::Binary { left, right, .. } => {
            f(left);
            f(right);
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            f(cond);
            f(then);
            f(otherwise);
        }
        ExprKind::For { iterable, body, .. } => {
            f(iterable);
            f(body);
        }
        ExprKind::If { cond, body } => {
            f(cond);
            f(body);
        }
        ExprKind::Lambda { body, .. } => f(body),
        ExprKind::Int(_) | ExprKind::Bool(_) | ExprKind::Null | ExprKind::Ident(_) => {}
    }
}

/// `ns.member` uses (values, calls and types) of wildcard namespaces in `d`.
fn collect_wildcard_uses(
    d: &Decl,
    wildcards: &HashMap<String, String>,
    out: &mut Vec<(String, String)>,
) {
    let found = RefCell::new(Vec::new());
    let mut probe = d.clone();
    rewrite_wildcard_uses(&mut probe, &|ns, member| {
        if let Some(path) = wildcards.get(ns) {
            found.borrow_mut().push((path.clone(), member.to_string()));
        }
        None
    });
    for use_ in found.into_inner() {
        if !out.contains(&use_) {
            out.push(use_);
        }
    }
}

/// Replaces `ns.member` by the member's local name wherever `local` knows it.
fn rewrite_wildcard_uses(d: &mut Decl, local: &dyn Fn(&str, &str) -> Option<String>) {
    d.decorators
        .iter_mut()
        .for_each(|e| rewrite_wildcard_expr(e, local));
    match &mut d.kind {
        DeclKind::Param { ty: t, default } => {
            if let Some(t) = t {
                rewrite_wildcard_type(t, local);
            }
            if let Some(v) = default {
                rewrite_wildcard_expr(v, local);
            }
        }
        DeclKind::Var { ty: t, value } => {
            if let Some(t) = t {
                rewrite_wildcard_type(t, local);
            }
            rewrite_wildcard_expr(value, local);
        }
        DeclKind::Output { ty: t, value } => {
            rewrite_wildcard_type(t, local);
            rewrite_wildcard_expr(value, local);
        }
        DeclKind::Type(t) => rewrite_wildcard_type(t, local),
        DeclKind::Resource { value, .. } | DeclKind::Module { value, .. } => {
            rewrite_wildcard_expr(value, local)
        }
        DeclKind::Func {
            params,
            output,
            body,
        } => {
            params
                .iter_mut()
                .for_each(|(_, t)| rewrite_wildcard_type(t, local));
            rewrite_wildcard_type(output, local);
            rewrite_wildcard_expr(body, local);
        }
        _ => {}
    }
}

/// `ns.member` and `ns.fn(...)` of a wildcard import, renamed to the local copy.
fn rewrite_wildcard_expr(e: &mut Expr, local: &dyn Fn(&str, &str) -> Option<String>) {
    let replacement = match &e.kind {
        ExprKind::Member {
            base,
            name,
            safe: false,
        } => match &base.kind {
            ExprKind::Ident(ns) => local(ns, name).map(ExprKind::Ident),
            _ => None,
        },
        ExprKind::Call {
            namespace: Some(ns),
            name,
            args,
        } => local(ns, name).map(|n| ExprKind::Call {
            namespace: None,
            name: n,
            args: args.clone(),
        }),
        _ => None,
    };
    if let Some(k) = replacement {
        e.kind = k;
    }
    for_each_child(e, &mut |x| rewrite_wildcard_expr(x, local));
}

/// `ns.Type` (and `ns.Type.prop`) of a wildcard import, renamed to the local copy.
fn rewrite_wildcard_type(t: &mut TypeExpr, local: &dyn Fn(&str, &str) -> Option<String>) {
    if let TypeKind::Name(n) = &mut t.kind {
        let mut parts = n.splitn(3, '.');
        if let (Some(ns), Some(member)) = (parts.next(), parts.next())
            && let Some(new) = local(ns, member)
        {
            *n = match parts.next() {
                Some(rest) => format!("{new}.{rest}"),
                None => new,
            };
        }
        return;
    }
    match &mut t.kind {
        TypeKind::Array(x) | TypeKind::Nullable(x) | TypeKind::NonNull(x) => {
            rewrite_wildcard_type(x, local)
        }
        TypeKind::Access(x, _) => rewrite_wildcard_type(x, local),
        TypeKind::Union(items) => items
            .iter_mut()
            .for_each(|x| rewrite_wildcard_type(x, local)),
        TypeKind::Object(props) | TypeKind::Tuple(props) => props
            .iter_mut()
            .for_each(|p| rewrite_wildcard_type(&mut p.ty, local)),
        _ => {}
    }
}
