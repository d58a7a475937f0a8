//! Emitter: a checked Bicep file → ARM JSON, classic or languageVersion 2.0.
//!
//! Expressions become ARM template-language strings; references to resources and
//! modules become `resourceId(...)`/`reference(...)` calls (`reference('symbol')` in
//! 2.0, see `symbolic`) and are recorded as dependencies of the declaration being
//! emitted. Constructs that are not implemented are reported as unsupported
//! instead of being approximated; a failing declaration does not stop the others.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::ModuleResolver;
use crate::arm_imports::ArmVariables;
use crate::ast::decorator_args as decorator;
use crate::ast::*;
use crate::config::Features;
use crate::diag::{Diagnostic, Span};
use crate::imports;
use crate::language_version;
use crate::model::Model;
use crate::module_name;

use crate::registry;
use crate::type_schema::TypeSchemas;
pub(crate) use driver::{Session, compile_module};

mod binder;
mod constants;
mod dependencies;
mod driver;
mod expressions;
mod extensions;
mod loaders;
mod module_params;
mod modules;
mod resources;
mod symbolic;
mod template;
mod user_functions;
use crate::types::library_spelling;

/// Most deploy-time variable inlinings in one template.
const MAX_INLININGS: usize = 100_000;
/// Longest expression produced by inlining deploy-time variables.
const MAX_EXPRESSION_LEN: usize = 1 << 20;

type R<T> = Result<T, Diagnostic>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetScope {
    ResourceGroup,
    Subscription,
    ManagementGroup,
    Tenant,
}

struct LoopSpec<'a> {
    item: Option<String>,
    index: Option<String>,
    iterable: &'a Expr,
}

struct Res<'a> {
    /// Symbolic name; `parent::child` for nested declarations.
    symbol: String,
    /// Name as declared.
    local: String,
    /// For `parent: coll[i]`, the element index expression (in this resource's scope).
    parent_index: Option<&'a Expr>,
    decl: &'a Decl,
    full_type: String,
    api_version: String,
    body: &'a [ObjectItem],
    cond: Option<&'a Expr>,
    looped: Option<LoopSpec<'a>>,
    parent: Option<usize>,
    depth: usize,
    existing: bool,
    name_expr: &'a Expr,
    scope_expr: Option<&'a Expr>,
}

struct Module<'a> {
    decl: &'a Decl,
    body: &'a [ObjectItem],
    cond: Option<&'a Expr>,
    looped: Option<LoopSpec<'a>>,
    /// As written, or generated from the symbol when the module has no `name`.
    name_expr: Expr,
    scope_expr: Option<&'a Expr>,
    template: Value,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Sym {
    Res(usize),
    Mod(usize),
}

/// What emitting an expression leaves besides its text, handed down the
/// expression walk: the dependencies met (the `dependsOn` of the declaration
/// being emitted), the inlining budget left, and what is known of variables.
struct Trace {
    deps: Vec<Dep>,
    /// Above zero while emitting a resource id: its name's references are not
    /// dependencies of the declaration that refers to the resource.
    suppress_deps: usize,
    /// How many more deploy-time variable inlinings are allowed.
    inline_budget: usize,
    /// Dependencies reached through each variable, computed once.
    var_deps: HashMap<String, Vec<Dep>>,
    /// Whether each variable needs a runtime value (see `RuntimeScan`).
    runtime_vars: HashMap<String, bool>,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            deps: Vec::new(),
            suppress_deps: 0,
            inline_budget: MAX_INLININGS,
            var_deps: HashMap::new(),
            runtime_vars: HashMap::new(),
        }
    }
}

/// A recorded dependency: which symbol and the `dependsOn` entry for it.
#[derive(Clone)]
struct Dep {
    symbol: String,
    entry: String,
    /// One element of a collection picked by the current loop's index; the
    /// official compiler keeps one such entry per reference.
    per_reference: bool,
}

/// True when a dependency can name one element of a collection: the index must be
/// evaluable where `dependsOn` is, so not one of a property loop's `copyIndex('x')`.
fn names_one_element(idx: Option<&str>) -> bool {
    idx.is_some_and(|i| !i.contains("copyIndex('"))
}

/// Loop and lambda variables in scope, mapped to their ARM expression text.
#[derive(Clone, Default)]
struct Cx {
    /// Inside a user-defined function: loaded files are inlined, not variables.
    in_function: bool,
    locals: Vec<(String, String)>,
}

impl Cx {
    fn with(&self, name: &Option<String>, text: String) -> Cx {
        let mut c = self.clone();
        if let Some(n) = name {
            c.locals.push((n.clone(), text));
        }
        c
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.locals
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    }
}

enum ScopeRef {
    Default,
    ResourceGroup {
        sub: Option<String>,
        rg: String,
    },
    Subscription(Option<String>),
    /// `managementGroup(name)`; `None` is the current management group.
    ManagementGroup(Option<String>),
    Tenant,
    Resource(String),
}

struct Emitter<'a> {
    file_name: &'a str,
    /// The file and its symbol table, shared with the checks.
    model: &'a Model<'a>,
    resolver: &'a dyn ModuleResolver,
    target: TargetScope,
    /// Resources (nested ones too) with their resolved types, parents and loops.
    resources: Vec<Res<'a>>,
    /// Modules with their loaded templates.
    modules: Vec<Module<'a>>,
    /// Where each resource or module symbol sits in `resources` or `modules`: an
    /// index, not a second name table (the checks resolved every name against
    /// the model before emission).
    symbols: HashMap<String, Sym>,
    /// Hoisted `load*` calls: span start → index of their `$fxv#N` variable.
    loaded: HashMap<usize, usize>,
    loaded_values: Vec<Value>,
    /// Variables whose whole value is a loaded file: value span start → content.
    whole_loaded: HashMap<usize, Value>,
    /// Experimental features of the nearest `bicepconfig.json`.
    features: Features,
    /// Emitting languageVersion 2.0: resources are named by their symbols.
    symbolic: bool,
    /// Declarations copied in by `import`, by name.
    imported_from: HashMap<String, imports::Origin>,
    /// Variables imported from ARM templates, emitted as they are.
    arm_variables: ArmVariables,
    /// Errors of declarations that failed to bind; the others are still emitted.
    bind_errors: Vec<Diagnostic>,
    /// Resources and modules whose declaration failed.
    broken: HashSet<String>,
}

/// The template sections filled declaration by declaration.
#[derive(Default)]
struct Parts {
    metadata: Map<String, Value>,
    params: Map<String, Value>,
    vars: Map<String, Value>,
    var_copies: Vec<Value>,
    outputs: Map<String, Value>,
    exported_vars: Vec<(String, Value)>,
}

fn unsupported<T>(what: impl std::fmt::Display, span: Span) -> R<T> {
    Err(Diagnostic::unsupported(what, span))
}

fn plain_string(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Str { pieces, holes } if holes.is_empty() => Some(&pieces[0]),
        _ => None,
    }
}

fn object_items(e: &Expr) -> Option<&[ObjectItem]> {
    match &e.kind {
        ExprKind::Object(items) => Some(items),
        _ => None,
    }
}

fn property<'e>(items: &'e [ObjectItem], key: &str) -> Option<&'e Expr> {
    items.iter().find_map(|i| match i {
        ObjectItem::Property { key: k, value, .. } if k.name.as_deref() == Some(key) => Some(value),
        _ => None,
    })
}

/// Quotes a string for the ARM expression language.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A literal JSON string value, escaping a leading `[` that ARM would evaluate.
fn literal_string(s: &str) -> Value {
    if s.starts_with('[') && s.ends_with(']') {
        Value::String(format!("[{s}"))
    } else {
        Value::String(s.to_string())
    }
}

/// The string a single quoted ARM literal (`'it''s'`) denotes.
fn unquote(text: &str) -> Option<String> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\'' && chars.next() != Some('\'') {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn expr_value(text: String) -> Value {
    Value::String(format!("[{text}]"))
}

/// A scope argument as emitted in a module's `resourceGroup`/`subscriptionId`:
/// string literals stay literal.
fn expr_value_or_literal(expr: &str) -> Value {
    if expr.len() >= 2
        && expr.starts_with('\'')
        && expr.ends_with('\'')
        && !expr[1..expr.len() - 1].contains('\'')
    {
        literal_string(&expr[1..expr.len() - 1])
    } else {
        expr_value(expr.to_string())
    }
}

/// Unwraps `"[expr]"` back to `expr`; literal values become expression literals.
fn value_to_expr(v: &Value) -> String {
    match v {
        Value::String(s) if s.starts_with("[[") => quote(&s[1..]),
        Value::String(s) if s.starts_with('[') && s.ends_with(']') => s[1..s.len() - 1].to_string(),
        Value::String(s) => quote(s),
        Value::Bool(b) => format!("{b}()"),
        Value::Null => "null()".into(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "createArray({})",
            items
                .iter()
                .map(value_to_expr)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(m) => format!(
            "createObject({})",
            m.iter()
                .map(|(k, v)| format!("{}, {}", quote(k), value_to_expr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Orders symbol names (`parent::child` for nested resources) like .NET's
/// culture-aware comparison (ICU root collation) that sorts the official `dependsOn`
/// (`ExpressionBuilder.BuildDependencyExpressions`, `OrderBy` of the symbolic name):
/// case-insensitive first, lower case before upper case on ties.
fn culture_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |s: &str| {
        s.chars()
            .map(|c| match c {
                // Punctuation sorts before digits and letters, `_` before `:`.
                '_' => '\u{1}',
                ':' => '\u{2}',
                c => c.to_ascii_lowercase(),
            })
            .collect::<String>()
    };
    key(a).cmp(&key(b)).then_with(|| {
        let flip = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_lowercase() {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect::<String>()
        };
        flip(a).cmp(&flip(b))
    })
}

fn split_type(e: &Expr) -> R<(String, Option<String>)> {
    let Some(s) = plain_string(e) else {
        return unsupported("An interpolated resource type string", e.span);
    };
    // `az:` names the built-in extension the type comes from; it is not part of the type.
    let s = s.strip_prefix("az:").unwrap_or(s);
    if let Some((namespace, _)) = s.split_once(':')
        && !namespace.contains('/')
    {
        return unsupported(
            format!("A resource type of the extension \"{namespace}\""),
            e.span,
        );
    }
    match s.split_once('@') {
        Some((t, v)) => Ok((t.to_string(), Some(v.to_string()))),
        None => Ok((s.to_string(), None)),
    }
}

impl<'a> Emitter<'a> {
    /// The error of declaration `d`, in the file it was imported from if it was.
    fn in_origin(&self, d: &Decl, e: Diagnostic) -> Diagnostic {
        let origin = d.name.as_ref().and_then(|(n, _)| self.imported_from.get(n));
        match origin {
            Some(o) => e.in_file(&o.path),
            None => e,
        }
    }

    /// Recognises `sym`, `sym[i]` and `a::b` resource/module references.
    fn symbol_ref(&self, tr: &mut Trace, e: &Expr, cx: &Cx) -> R<Option<(Sym, Option<String>)>> {
        match &e.kind {
            ExprKind::NonNull(inner) => self.symbol_ref(tr, inner, cx),
            ExprKind::Ident(n) if cx.get(n).is_none() => {
                Ok(self.symbols.get(n).map(|s| (*s, None)))
            }
            ExprKind::Index { base, index, .. } => {
                if let ExprKind::Ident(n) = &base.kind
                    && cx.get(n).is_none()
                    && let Some(s) = self.symbols.get(n)
                {
                    let looped = match s {
                        Sym::Res(i) => self.resources[*i].looped.is_some(),
                        Sym::Mod(i) => self.modules[*i].looped.is_some(),
                    };
                    if !looped {
                        // `res['id']` is a property access, handled by the caller.
                        if plain_string(index).is_some() {
                            return Ok(None);
                        }
                        return unsupported(
                            "Indexing a resource with a computed property name",
                            e.span,
                        );
                    }
                    return Ok(Some((*s, Some(self.ex(tr, index, cx)?))));
                }
                // `parent::loopedChild[i]`.
                if matches!(base.kind, ExprKind::ChildAccess { .. })
                    && let Some((Sym::Res(c), None)) = self.symbol_ref(tr, base, cx)?
                    && self.resources[c].looped.is_some()
                {
                    return Ok(Some((Sym::Res(c), Some(self.ex(tr, index, cx)?))));
                }
                Ok(None)
            }
            ExprKind::ChildAccess { base, name } => {
                let Some((Sym::Res(p), None)) = self.symbol_ref(tr, base, cx)? else {
                    return unsupported("This \"::\" access", e.span);
                };
                let child = self
                    .resources
                    .iter()
                    .position(|r| r.parent == Some(p) && r.depth > 0 && r.local == *name);
                match child {
                    Some(c) => Ok(Some((Sym::Res(c), None))),
                    None => Err(Diagnostic::error(
                        "BCP158",
                        format!("Cannot access nested resources of type \"{name}\"."),
                        e.span,
                    )),
                }
            }
            _ => Ok(None),
        }
    }
}

fn nested_resource_misplaced(span: Span) -> Diagnostic {
    Diagnostic::error(
        "BCP156",
        "Nested resources can only be declared directly in the body of a resource.",
        span,
    )
}

fn getsecret_misplaced(span: Span) -> Diagnostic {
    Diagnostic::error(
        "BCP180",
        "Function \"getSecret\" is not valid at this location. It can only be used when directly assigning to a module parameter with a secure decorator.",
        span,
    )
}

fn int_value(s: &str, span: Span) -> R<Value> {
    s.parse::<i64>()
        .map(Value::from)
        .map_err(|_| Diagnostic::error("BCP010", "Expected a valid 64-bit signed integer.", span))
}

/// Splits a resource/module value into its body, condition and loop.
fn unwrap_body(value: &Expr) -> R<(&Expr, Option<&Expr>, Option<LoopSpec<'_>>)> {
    match &value.kind {
        ExprKind::Object(_) => Ok((value, None, None)),
        ExprKind::If { cond, body } => Ok((body, Some(cond), None)),
        ExprKind::For {
            item,
            index,
            iterable,
            body,
        } => {
            let spec = LoopSpec {
                item: item.clone(),
                index: index.clone(),
                iterable,
            };
            match &body.kind {
                ExprKind::Object(_) => Ok((body, None, Some(spec))),
                ExprKind::If { cond, body } => Ok((body, Some(cond), Some(spec))),
                _ => unsupported("This loop body", body.span),
            }
        }
        _ => unsupported("This declaration value", value.span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn culture_order_is_case_insensitive_with_lower_first() {
        let mut v = vec!["b", "A", "a", "B_x", "Bx"];
        v.sort_by(|a, b| culture_cmp(a, b));
        assert_eq!(v, vec!["a", "A", "b", "B_x", "Bx"]);
        // A nested resource's `::` sorts after `_` and before digits and letters.
        let mut v = vec!["a1", "ab", "a::c", "a_b"];
        v.sort_by(|a, b| culture_cmp(a, b));
        assert_eq!(v, vec!["a_b", "a::c", "a1", "ab"]);
    }

    #[test]
    fn leading_bracket_strings_are_escaped() {
        assert_eq!(literal_string("[x]"), json!("[[x]"));
        assert_eq!(literal_string("[x"), json!("[x"));
        assert_eq!(value_to_expr(&json!("[[x]")), "'[x]'");
    }
}
