//! Name resolution checks the official compiler enforces: duplicate symbols,
//! undefined names and functions, and reference cycles between declarations.

use std::collections::{HashMap, HashSet};

use crate::ast::*;
use crate::diag::{Diagnostic, Span};
use crate::functions::{arity, is_builtin};
use crate::model::Model;

/// Returns every error found; empty when the file resolves.
pub fn check(model: &Model) -> Vec<Diagnostic> {
    let mut errors = model.duplicates.clone();
    let mut resolver = Resolver {
        model,
        module_value: false,
        in_extension_configs: false,
        errors: &mut errors,
        locals: Vec::new(),
        refs: HashMap::new(),
        current: String::new(),
        nested: 0,
    };
    let mut graph: HashMap<String, (Span, HashMap<String, Span>)> = HashMap::new();
    for d in &model.file.decls {
        resolver.refs.clear();
        resolver.current = d.name.as_ref().map(|(n, _)| n.clone()).unwrap_or_default();
        resolver.decl(d);
        if let (Some((name, span)), true) = (
            &d.name,
            matches!(
                d.kind,
                DeclKind::Var { .. }
                    | DeclKind::Resource { .. }
                    | DeclKind::Module { .. }
                    | DeclKind::Param { .. }
            ),
        ) {
            graph.insert(name.clone(), (*span, std::mem::take(&mut resolver.refs)));
        }
    }
    cycles(&graph, &mut errors);
    errors
}

/// Linter findings the official compiler also reports: parameters and variables
/// that nothing refers to.
pub fn warnings(model: &Model) -> Vec<Diagnostic> {
    let file = model.file;
    let mut used: HashSet<&str> = HashSet::new();
    for d in &file.decls {
        d.visit(&mut |e| match &e.kind {
            ExprKind::Ident(n) => {
                used.insert(n.as_str());
            }
            ExprKind::Call {
                namespace: Some(ns),
                ..
            } => {
                used.insert(ns.as_str());
            }
            _ => {}
        });
    }
    file.decls
        .iter()
        .filter_map(|d| {
            let (name, span) = d.name.as_ref()?;
            if used.contains(name.as_str()) {
                return None;
            }
            match d.kind {
                DeclKind::Param { ty: Some(_), .. } => Some(Diagnostic::warning(
                    "no-unused-params",
                    format!("Parameter \"{name}\" is declared but never used."),
                    *span,
                )),
                DeclKind::Var { .. } => Some(Diagnostic::warning(
                    "no-unused-vars",
                    format!("Variable \"{name}\" is declared but never used."),
                    *span,
                )),
                _ => None,
            }
        })
        .collect()
}

struct Resolver<'a, 'b> {
    model: &'a Model<'a>,
    module_value: bool,
    in_extension_configs: bool,
    errors: &'b mut Vec<Diagnostic>,
    locals: Vec<String>,
    /// Declarations referred to, with the first reference's span.
    refs: HashMap<String, Span>,
    /// Name of the declaration being resolved.
    current: String,
    /// Depth inside nested resource bodies, which may refer to their ancestors.
    nested: usize,
}

impl Resolver<'_, '_> {
    fn name(&mut self, n: &str, span: Span) {
        if self.locals.iter().any(|l| l == n) {
            return;
        }
        if self.model.extensions.contains(n) && !self.in_extension_configs {
            self.errors.push(Diagnostic::error(
                "BCP418",
                "Extensions cannot be referenced here. Extensions can only be referenced by module extension configurations.",
                span,
            ));
            return;
        }
        if self.model.is_symbol(n) {
            if self.nested == 0 || n != self.current {
                self.refs.entry(n.to_string()).or_insert(span);
            }
            return;
        }
        if n == "az" || n == "sys" || self.model.has_imports {
            return;
        }
        self.errors.push(Diagnostic::error(
            "BCP057",
            format!("The name \"{n}\" does not exist in the current context."),
            span,
        ));
    }

    /// Resolves the names in a declaration's decorators and value.
    fn decl(&mut self, d: &Decl) {
        for dec in &d.decorators {
            self.expr(dec);
        }
        match &d.kind {
            DeclKind::TargetScope(e) | DeclKind::Metadata(e) | DeclKind::Assert(e) => self.expr(e),
            DeclKind::Param { default, .. } => {
                if let Some(e) = default {
                    self.expr(e);
                }
            }
            DeclKind::Var { value, .. } | DeclKind::Output { value, .. } => self.expr(value),
            DeclKind::Resource { value, .. } => self.expr(value),
            DeclKind::Module { value, .. } => {
                self.module_value = true;
                self.expr(value);
                self.module_value = false;
            }
            DeclKind::Type(_)
            | DeclKind::Func { .. }
            | DeclKind::Import(_)
            | DeclKind::Extension(None)
            | DeclKind::Using(_)
            | DeclKind::Test => {}
            DeclKind::Extension(Some(spec)) => spec.config.iter().for_each(|e| self.expr(e)),
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Str { holes, .. } => holes.iter().for_each(|h| self.expr(h)),
            ExprKind::Int(_) | ExprKind::Bool(_) | ExprKind::Null => {}
            ExprKind::Ident(n) => self.name(n, e.span),
            ExprKind::Array(items) => {
                for i in items {
                    match i {
                        ArrayItem::Value(x) | ArrayItem::Spread(x) => self.expr(x),
                    }
                }
            }
            ExprKind::Object(items) => self.object(items),
            ExprKind::Call {
                namespace,
                name,
                args,
            } => self.call(namespace.as_deref(), name, args, e.span),
            ExprKind::Member { base, .. } | ExprKind::ChildAccess { base, .. } => self.expr(base),
            ExprKind::MethodCall { base, args, .. } => {
                self.expr(base);
                args.iter().for_each(|a| self.expr(a));
            }
            ExprKind::Index { base, index, .. } => {
                self.expr(base);
                self.expr(index);
            }
            ExprKind::NonNull(x) | ExprKind::Paren(x) | ExprKind::Unary { operand: x, .. } => {
                self.expr(x)
            }
            ExprKind::Binary { left, right, .. } => {
                self.expr(left);
                self.expr(right);
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                self.expr(then);
                self.expr(otherwise);
            }
            ExprKind::For {
                item,
                index,
                iterable,
                body,
            } => {
                self.expr(iterable);
                let n = self.locals.len();
                self.locals.extend(item.iter().cloned());
                self.locals.extend(index.iter().cloned());
                self.expr(body);
                self.locals.truncate(n);
            }
            ExprKind::If { cond, body } => {
                self.expr(cond);
                self.expr(body);
            }
            ExprKind::Lambda { params, body } => {
                let n = self.locals.len();
                self.locals.extend(params.iter().cloned());
                self.expr(body);
                self.locals.truncate(n);
            }
        }
    }

    fn object(&mut self, items: &[ObjectItem]) {
        // Nested resources are visible throughout their parent's body.
        let n = self.locals.len();
        for i in items {
            if let ObjectItem::NestedResource(d) = i
                && let Some((name, _)) = &d.name
            {
                self.locals.push(name.clone());
            }
        }
        for i in items {
            match i {
                ObjectItem::Property {
                    value,
                    decorators,
                    key,
                } => {
                    decorators.iter().for_each(|d| self.expr(d));
                    if let Some(k) = &key.interpolated {
                        self.expr(k);
                    }
                    // Extension aliases may appear in a module's `extensionConfigs`.
                    let configs =
                        self.module_value && key.name.as_deref() == Some("extensionConfigs");
                    let saved = self.in_extension_configs;
                    self.in_extension_configs |= configs;
                    self.expr(value);
                    self.in_extension_configs = saved;
                }
                ObjectItem::Spread(x) => self.expr(x),
                ObjectItem::NestedResource(d) => {
                    if let DeclKind::Resource { value, .. } = &d.kind {
                        self.nested += 1;
                        self.expr(value);
                        self.nested -= 1;
                    }
                }
            }
        }
        self.locals.truncate(n);
    }

    fn call(&mut self, namespace: Option<&str>, name: &str, args: &[Expr], span: Span) {
        match namespace {
            Some(ns) if ns == "az" || ns == "sys" => {
                if !is_builtin(Some(ns), name) {
                    self.unknown_function(name, span);
                }
            }
            Some(ns) => self.name(ns, span),
            None => {
                if self.model.functions.contains(name) {
                } else if !self.model.is_symbol(name) && !is_builtin(None, name) {
                    if !self.model.has_imports {
                        self.unknown_function(name, span);
                    }
                } else if self.model.is_symbol(name) && !is_builtin(None, name) {
                    self.errors.push(Diagnostic::error(
                        "BCP059",
                        format!("The name \"{name}\" is not a function."),
                        span,
                    ));
                }
            }
        }
        if namespace.is_none_or(|ns| ns == "az" || ns == "sys")
            && is_builtin(namespace, name)
            && let Some((min, max)) = arity(name)
            && (args.len() < min || args.len() > max)
        {
            self.wrong_arity(args.len(), min, max, span);
        }
        args.iter().for_each(|a| self.expr(a));
    }

    /// BCP071: a built-in function called with too few or too many arguments.
    fn wrong_arity(&mut self, given: usize, min: usize, max: usize, span: Span) {
        let expected = match (min, max) {
            (a, b) if a == b => {
                format!("{a} argument{}", if a == 1 { "" } else { "s" })
            }
            (a, usize::MAX) => {
                format!("at least {a} argument{}", if a == 1 { "" } else { "s" })
            }
            (a, b) => format!("{a} to {b} arguments"),
        };
        self.errors.push(Diagnostic::error(
            "BCP071",
            format!("Expected {expected}, but got {}.", given),
            span,
        ));
    }

    fn unknown_function(&mut self, name: &str, span: Span) {
        self.errors.push(Diagnostic::error(
            "BCP057",
            format!("The name \"{name}\" does not exist in the current context."),
            span,
        ));
    }
}

/// Self-references (BCP079) and cycles (BCP080), each reported at the reference
/// that closes the loop, as the official compiler does.
fn cycles(graph: &HashMap<String, (Span, HashMap<String, Span>)>, errors: &mut Vec<Diagnostic>) {
    let mut names: Vec<&String> = graph.keys().collect();
    names.sort_by_key(|n| graph[*n].0.start);
    for start in names {
        let (_, direct) = &graph[start];
        if let Some(own) = direct.get(start) {
            errors.push(Diagnostic::error(
                "BCP079",
                "This expression is referencing its own declaration, which is not allowed.",
                *own,
            ));
            continue;
        }
        let mut refs: Vec<(&String, &Span)> = direct.iter().collect();
        refs.sort_by_key(|(_, s)| s.start);
        if let Some((_, span)) = refs.into_iter().find(|(r, _)| reaches(graph, r, start)) {
            errors.push(Diagnostic::error(
                "BCP080",
                format!("The expression is involved in a cycle (\"{start}\")."),
                *span,
            ));
        }
    }
}

/// True when declaration `target` is reachable from `from` through references.
fn reaches(
    graph: &HashMap<String, (Span, HashMap<String, Span>)>,
    from: &str,
    target: &str,
) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        if n == target {
            return true;
        }
        if seen.insert(n)
            && let Some((_, next)) = graph.get(n)
        {
            stack.extend(next.keys().map(String::as_str));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn codes(src: &str) -> Vec<String> {
        check(&Model::bind(&parse(src).into_result().unwrap()))
            .into_iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn warns_about_unused_parameters_and_variables() {
        let f = parse("param used string\nparam unused int\nvar v = used\noutput o string = 'x'\n")
            .into_result()
            .unwrap();
        let w: Vec<String> = warnings(&Model::bind(&f))
            .into_iter()
            .map(|d| d.message)
            .collect();
        assert_eq!(
            w,
            vec![
                "Parameter \"unused\" is declared but never used.",
                "Variable \"v\" is declared but never used."
            ]
        );
    }

    #[test]
    fn finds_undefined_duplicate_and_cycles() {
        assert_eq!(codes("var a = b\n"), vec!["BCP057"]);
        assert_eq!(codes("var a = 1\nparam a int\n"), vec!["BCP028"]);
        assert_eq!(codes("var a = a\n"), vec!["BCP079"]);
        assert_eq!(codes("var a = b\nvar b = a\n"), vec!["BCP080", "BCP080"]);
        assert_eq!(codes("var a = nope(1)\n"), vec!["BCP057"]);
        assert_eq!(codes("var a = base64('a', 'b')\n"), vec!["BCP071"]);
        assert_eq!(codes("var a = sys.concat()\n"), vec!["BCP071"]);
        assert!(codes("var a = [for (x, i) in range(0, 2): map([x], y => y + i)]\n").is_empty());
    }
}
