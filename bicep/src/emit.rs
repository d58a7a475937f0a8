//! Emitter: a checked Bicep file → ARM JSON, classic or languageVersion 2.0.
//!
//! Expressions become ARM template-language strings; references to resources and
//! modules become `resourceId(...)`/`reference(...)` calls (`reference('symbol')` in
//! 2.0, see `symbolic`) and are recorded as dependencies of the declaration being
//! emitted. Constructs that are not implemented are reported as unsupported
//! instead of being approximated; a failing declaration does not stop the others.

use std::cell::{Cell, RefCell};
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
use crate::module_name;

use crate::registry;
use crate::type_schema::TypeSchemas;
pub(crate) use driver::{Session, compile_module};

mod driver;
mod module_params;
mod symbolic;
mod user_functions;
use crate::types::library_spelling;

const DEPLOYMENTS_TYPE: &str = "Microsoft.Resources/deployments";
const DEPLOYMENTS_API: &str = "2025-04-01";
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
    file: &'a File,
    resolver: &'a dyn ModuleResolver,
    target: TargetScope,
    params: HashMap<&'a str, &'a Decl>,
    vars: HashMap<&'a str, &'a Decl>,
    resources: Vec<Res<'a>>,
    modules: Vec<Module<'a>>,
    symbols: HashMap<String, Sym>,
    deps: RefCell<Vec<Dep>>,
    /// Hoisted `load*` calls: span start → index of their `$fxv#N` variable.
    loaded: HashMap<usize, usize>,
    loaded_values: Vec<Value>,
    /// Variables whose whole value is a loaded file: value span start → content.
    whole_loaded: HashMap<usize, Value>,
    /// Above zero while emitting a resource id: its name's references are not
    /// dependencies of the declaration that refers to the resource.
    suppress_deps: Cell<usize>,
    /// Set when a runtime decision rested on a computed resource property name.
    uncertain_runtime: Cell<bool>,
    /// While set, computed property names whose every possible constant value is a
    /// deploy-time property (`id`, `name`, …) do not count as runtime access.
    resolve_computed_keys: Cell<bool>,
    /// How many more deploy-time variable inlinings are allowed.
    inline_budget: Cell<usize>,
    /// Dependencies reached through each variable, computed once.
    var_deps: RefCell<HashMap<String, Vec<Dep>>>,
    runtime_vars: RefCell<HashMap<String, bool>>,
    /// Experimental features of the nearest `bicepconfig.json`.
    features: Features,
    /// Emitting languageVersion 2.0: resources are named by their symbols.
    symbolic: Cell<bool>,
    /// Declarations copied in by `import`, by name.
    imported_from: HashMap<String, imports::Origin>,
    /// Variables imported from ARM templates, emitted as they are.
    arm_variables: ArmVariables,
    /// Errors of declarations that failed; emission goes on with the others.
    errors: RefCell<Vec<Diagnostic>>,
    /// Resources and modules whose declaration failed.
    broken: HashSet<String>,
}

/// What the official compiler writes into templates that use experimental features.
const EXPERIMENTAL_WARNING: &str = "This template uses ARM features that are experimental. Experimental features should be enabled for testing purposes only, as there are no guarantees about the quality or stability of these features. Do not enable these settings for any production usage, or your production environment may be subject to breaking.";

/// Decorators a type (of a `type`, a typed parameter or output) may carry.
const TYPE_DECORATORS: &[&str] = &[
    "description",
    "metadata",
    "secure",
    "sealed",
    "discriminator",
    "export",
    "allowed",
    "minValue",
    "maxValue",
    "minLength",
    "maxLength",
];

/// A built-in type name (not shadowed by a user-defined type): the classic emission.
fn is_primitive(ty: &TypeExpr, schemas: &TypeSchemas) -> bool {
    match &ty.kind {
        TypeKind::Name(n) => !n.contains('.') && !schemas.is_declared(n) || n.starts_with("sys."),
        _ => false,
    }
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
    match s.split_once('@') {
        Some((t, v)) => Ok((t.to_string(), Some(v.to_string()))),
        None => Ok((s.to_string(), None)),
    }
}

impl<'a> Emitter<'a> {
    fn new(
        file_name: &'a str,
        file: &'a File,
        resolver: &'a dyn ModuleResolver,
        session: &mut Session,
    ) -> Self {
        let mut em = Emitter {
            file_name,
            file,
            resolver,
            target: TargetScope::ResourceGroup,
            params: HashMap::new(),
            vars: HashMap::new(),
            resources: Vec::new(),
            modules: Vec::new(),
            symbols: HashMap::new(),
            deps: RefCell::new(Vec::new()),
            loaded: HashMap::new(),
            loaded_values: Vec::new(),
            whole_loaded: HashMap::new(),
            suppress_deps: Cell::new(0),
            uncertain_runtime: Cell::new(false),
            resolve_computed_keys: Cell::new(false),
            inline_budget: Cell::new(MAX_INLININGS),
            var_deps: RefCell::new(HashMap::new()),
            runtime_vars: RefCell::new(HashMap::new()),
            errors: RefCell::new(Vec::new()),
            broken: HashSet::new(),
            features: session.features_for(file_name, resolver),
            symbolic: Cell::new(false),
            imported_from: HashMap::new(),
            arm_variables: ArmVariables::default(),
        };
        for d in &file.decls {
            if let Err(e) = em.declare(d, session) {
                em.fail(e);
                if let Some((n, _)) = &d.name {
                    em.broken.insert(n.clone());
                }
            }
        }
        if let Err(e) = em.hoist_loaded_files() {
            em.fail(e);
        }
        em
    }

    /// Records one declaration: its kind of symbol, its resource or module.
    fn declare(&mut self, d: &'a Decl, session: &mut Session) -> R<()> {
        let name = d.name.as_ref().map(|(n, _)| n.as_str()).unwrap_or("");
        match &d.kind {
            DeclKind::TargetScope(e) => {
                self.target = match plain_string(e) {
                    Some("resourceGroup") => TargetScope::ResourceGroup,
                    Some("subscription") => TargetScope::Subscription,
                    Some("managementGroup") => TargetScope::ManagementGroup,
                    Some("tenant") => TargetScope::Tenant,
                    _ => {
                        return Err(Diagnostic::error(
                            "BCP033",
                            "Expected a value of type \"'managementGroup' | 'resourceGroup' | 'subscription' | 'tenant'\".",
                            e.span,
                        ));
                    }
                };
            }
            DeclKind::Param { .. } => {
                self.params.insert(name, d);
            }
            DeclKind::Var { .. } => {
                self.vars.insert(name, d);
            }
            DeclKind::Resource { .. } => self.add_resource(d, None, 0)?,
            DeclKind::Module { .. } => {
                let m = self.load_module(d, session)?;
                self.symbols
                    .insert(name.to_string(), Sym::Mod(self.modules.len()));
                self.modules.push(m);
            }
            DeclKind::Metadata(_) | DeclKind::Output { .. } => {}
            // Emitted under `definitions` (languageVersion 2.0) or rejected there.
            DeclKind::Type(_) => {}
            // Emitted under `functions`.
            DeclKind::Func { .. } => {}
            // Copied into this file before emission (imports, arm_imports).
            DeclKind::Import(Some(_)) => {}
            DeclKind::Import(None) => {
                return unsupported("An import declaration of this form", d.keyword_span);
            }
            DeclKind::Extension => {
                return unsupported("An extension declaration", d.keyword_span);
            }
            DeclKind::Using(_) => {
                return unsupported("A using declaration", d.keyword_span);
            }
            // Test blocks are for `bicep test`; the build ignores them.
            DeclKind::Test => {}
            DeclKind::Assert(_) if self.features.is_enabled("assertions") => {}
            DeclKind::Assert(_) => {
                return unsupported(
                    "An assert declaration without the \"assertions\" experimental feature",
                    d.keyword_span,
                );
            }
        }
        Ok(())
    }

    /// Marks an imported type or function with the template it came from.
    fn with_import_origin(&self, name: &str, mut schema: Value) -> Value {
        if let (Some(origin), Value::Object(m)) = (self.imported_from.get(name), &mut schema) {
            let meta = m.entry("metadata").or_insert_with(|| json!({}));
            if let Value::Object(meta) = meta {
                meta.insert(
                    "__bicep_imported_from!".into(),
                    json!({"sourceTemplate": origin.written}),
                );
            }
        }
        schema
    }

    /// Records the error of declaration `d`, in the file it was imported from if it was.
    fn fail_in(&self, d: &Decl, e: Diagnostic) {
        let origin = d.name.as_ref().and_then(|(n, _)| self.imported_from.get(n));
        match origin {
            Some(o) => self.fail(e.in_file(&o.path)),
            None => self.fail(e),
        }
    }

    /// Records the error of one declaration; the others are still emitted.
    fn fail(&self, e: Diagnostic) {
        self.errors.borrow_mut().push(e);
    }

    fn add_resource(&mut self, d: &'a Decl, parent: Option<usize>, depth: usize) -> R<()> {
        let DeclKind::Resource {
            type_string,
            existing,
            value,
        } = &d.kind
        else {
            return Ok(());
        };
        let (symbol, sym_span) = d.name.clone().unwrap_or_default();
        let (mut ty, mut ver) = split_type(type_string)?;
        let (body_expr, cond, looped) = unwrap_body(value)?;
        let Some(body) = object_items(body_expr) else {
            return unsupported("A resource body that is not an object", body_expr.span);
        };
        let mut parent = parent;
        let mut parent_index = None;
        if let Some(p) = parent {
            let pr = &self.resources[p];
            if !ty.contains('/') {
                ty = format!("{}/{}", pr.full_type, ty);
            }
            if ver.is_none() {
                ver = Some(pr.api_version.clone());
            }
        } else if let Some(pexpr) = property(body, "parent") {
            match &pexpr.kind {
                ExprKind::Ident(pname) => match self.symbols.get(pname) {
                    Some(Sym::Res(i)) => parent = Some(*i),
                    _ => {
                        return Err(Diagnostic::error(
                            "BCP036",
                            format!(
                                "The \"parent\" property must reference a resource declared before it; \"{pname}\" is not one."
                            ),
                            pexpr.span,
                        ));
                    }
                },
                // `parent: coll[i]`: one element of a resource loop.
                ExprKind::Index {
                    base,
                    index,
                    safe: false,
                } if matches!(&base.kind, ExprKind::Ident(n)
                    if matches!(self.symbols.get(n), Some(Sym::Res(p)) if self.resources[*p].looped.is_some())) =>
                {
                    let ExprKind::Ident(n) = &base.kind else {
                        unreachable!()
                    };
                    if let Some(Sym::Res(p)) = self.symbols.get(n) {
                        parent = Some(*p);
                        parent_index = Some(&**index);
                    }
                }
                _ => {
                    return unsupported(
                        "A \"parent\" that is not a resource symbol or loop element",
                        pexpr.span,
                    );
                }
            }
        }
        let Some(ver) = ver else {
            return Err(Diagnostic::error(
                "BCP029",
                "The resource type is not valid. Specify a valid resource type of format \"<types>@<apiVersion>\".",
                type_string.span,
            ));
        };
        if let Some(p) = parent
            && self.resources[p].looped.is_some()
            && parent_index.is_none()
        {
            return unsupported("A child of a resource loop", d.keyword_span);
        }
        let Some(name_expr) = property(body, "name") else {
            return Err(Diagnostic::error(
                "BCP035",
                "The specified \"resource\" declaration is missing the following required properties: \"name\".",
                sym_span,
            ));
        };
        let (full_type, ver) = match library_spelling(&ty, &ver) {
            Some((t, v)) => (t.to_string(), v.to_string()),
            None => (ty, ver),
        };
        let idx = self.resources.len();
        // Nested resources are named by their path, e.g. `parent::child`.
        let qualified = match parent {
            Some(p) if depth > 0 => format!("{}::{symbol}", self.resources[p].symbol),
            _ => symbol.clone(),
        };
        self.resources.push(Res {
            symbol: qualified,
            local: symbol.clone(),
            decl: d,
            full_type,
            api_version: ver,
            body,
            cond,
            looped,
            parent,
            depth,
            existing: *existing,
            parent_index,
            name_expr,
            scope_expr: property(body, "scope"),
        });
        // Nested symbols are only visible inside their parent; the checker has
        // enforced that, so a global entry that never shadows is enough here.
        self.symbols.entry(symbol).or_insert(Sym::Res(idx));
        for item in body {
            if let ObjectItem::NestedResource(child) = item {
                if matches!(value.kind, ExprKind::For { .. }) {
                    return unsupported(
                        "A nested resource inside a resource loop",
                        child.keyword_span,
                    );
                }
                self.add_resource(child, Some(idx), depth + 1)?;
            }
        }
        Ok(())
    }

    /// The compiled template of a registry module, read from the module cache: this
    /// compiler never downloads one, so a module missing there is reported (as
    /// unsupported, since the official compiler could restore it).
    fn registry_template(&self, reference: &str, span: Span) -> R<Value> {
        let not_cached = || {
            Diagnostic::error(
                crate::diag::UNSUPPORTED,
                format!(
                    "The registry module \"{reference}\" is not in the module cache: this compiler does not download modules. Restore it with the official \"bicep restore\" and pass its cache directory with --module-cache DIR."
                ),
                span,
            )
        };
        let Some(parsed) = registry::parse(reference) else {
            return Err(Diagnostic::error(
                crate::diag::UNSUPPORTED,
                format!(
                    "The module reference \"{reference}\" is not supported by this compiler: only \"br:<registry>/<repository>:<tag>\" and \"br/public:\" references are read from a module cache."
                ),
                span,
            ));
        };
        let (_, text) = self
            .resolver
            .resolve_registry(&parsed)
            .ok_or_else(not_cached)?;
        serde_json::from_str(&text).map_err(|e| {
            Diagnostic::error(
                "BCP188",
                format!("The referenced ARM template has errors: {e}"),
                span,
            )
        })
    }

    fn load_module(&self, d: &'a Decl, session: &mut Session) -> R<Module<'a>> {
        let DeclKind::Module { path, value } = &d.kind else {
            unreachable!("load_module is only called for modules")
        };
        let Some(rel) = plain_string(path) else {
            return Err(Diagnostic::error(
                "BCP092",
                "String interpolation is not supported in file paths.",
                path.span,
            ));
        };
        let registry_template = if registry::is_external(rel) {
            Some(self.registry_template(rel, path.span)?)
        } else {
            None
        };
        let (body_expr, cond, looped) = unwrap_body(value)?;
        let Some(body) = object_items(body_expr) else {
            return unsupported("A module body that is not an object", body_expr.span);
        };
        let name_expr = match property(body, "name") {
            Some(n) => n.clone(),
            None => {
                let symbol = d.name.as_ref().map(|(n, _)| n.as_str()).unwrap_or("");
                module_name::generated(symbol, looped.is_some(), d.keyword_span)
            }
        };
        let template = match registry_template {
            Some(t) => t,
            None => self.local_module_template(rel, path.span, session)?,
        };
        Ok(Module {
            decl: d,
            body,
            cond,
            looped,
            name_expr,
            scope_expr: property(body, "scope"),
            template,
        })
    }

    /// The template of a module file: ARM JSON as it is, Bicep compiled (once per
    /// compilation).
    fn local_module_template(&self, rel: &str, span: Span, session: &mut Session) -> R<Value> {
        let (resolved, content) = self.resolver.resolve(self.file_name, rel).map_err(|e| {
            Diagnostic::error(
                "BCP091",
                format!("An error occurred reading file. {e}"),
                span,
            )
        })?;
        if session.stack.contains(&resolved) {
            return Err(Diagnostic::error(
                "BCP095",
                format!("The file is involved in a cycle (\"{resolved}\")."),
                span,
            ));
        }
        if resolved.to_ascii_lowercase().ends_with(".json") {
            return serde_json::from_str(&content).map_err(|e| {
                Diagnostic::error(
                    "BCP188",
                    format!("The referenced ARM template has errors: {e}"),
                    span,
                )
            });
        }
        if let Some(v) = session.compiled.get(&resolved) {
            return Ok(v.clone());
        }
        session.sources.insert(resolved.clone(), content.clone());
        match compile_module(&resolved, &content, self.resolver, session) {
            Ok(v) => {
                session.compiled.insert(resolved, v.clone());
                Ok(v)
            }
            Err(mut errs) => {
                let first = errs.remove(0);
                self.errors.borrow_mut().extend(errs);
                Err(first)
            }
        }
    }

    /// Emits one parameter, variable, output or metadata declaration into `parts`.
    fn emit_declaration(&self, d: &Decl, parts: &mut Parts, schemas: &TypeSchemas) -> R<()> {
        let name = d.name.as_ref().map(|(n, _)| n.clone()).unwrap_or_default();
        match &d.kind {
            DeclKind::Metadata(e) => {
                parts.metadata.insert(name, self.val(e, &Cx::default())?);
            }
            DeclKind::Param { ty, default } => {
                let param = match ty {
                    Some(t) if !is_primitive(t, schemas) => {
                        self.typed_param(d, t, default, schemas)?
                    }
                    _ => self.param(d, ty.as_ref(), default.as_ref())?,
                };
                parts.params.insert(name, param);
            }
            DeclKind::Var { ty, value } => {
                if decorator(&d.decorators, "export").is_some() {
                    let Some(t) = ty else {
                        return unsupported(
                            "An exported variable without a declared type",
                            d.keyword_span,
                        );
                    };
                    parts.exported_vars.push((name.clone(), schemas.schema(t)?));
                }
                if self.is_runtime_var(&name) {
                    if matches!(value.kind, ExprKind::For { .. }) {
                        // The official compiler types computed keys: a body whose
                        // keys can only name deploy-time properties is valid (and,
                        // like every runtime variable, inlined where used).
                        self.resolve_computed_keys.set(true);
                        self.uncertain_runtime.set(false);
                        let runtime = self.is_runtime_expr(value, &mut Vec::new());
                        let span = self.first_runtime_span(value, &mut Vec::new());
                        self.resolve_computed_keys.set(false);
                        if !runtime {
                            return Ok(());
                        }
                        if self.uncertain_runtime.get() {
                            return unsupported(
                                "A variable loop whose body indexes a resource with a computed name",
                                value.span,
                            );
                        }
                        let span = span.unwrap_or(value.span);
                        return Err(Diagnostic::error(
                            "BCP182",
                            format!(
                                "This expression is being used in the for-body of the variable \"{name}\", which requires values that can be calculated at the start of the deployment."
                            ),
                            span,
                        ));
                    }
                    return Ok(());
                }
                self.check_decorators(&d.decorators, &["description", "export"])?;
                if let ExprKind::For {
                    item,
                    index,
                    iterable,
                    body,
                } = &value.kind
                {
                    let cx = self.loop_cx(
                        item,
                        index,
                        iterable,
                        &format!("copyIndex({})", quote(&name)),
                    )?;
                    parts.var_copies.push(json!({
                        "name": name,
                        "count": expr_value(format!("length({})", self.ex(iterable, &Cx::default())?)),
                        "input": self.var_loop_input(body, &cx)?,
                    }));
                } else {
                    let v = match self.whole_loaded.get(&value.span.start) {
                        Some(v) => v.clone(),
                        None => self.val(value, &Cx::default())?,
                    };
                    parts.vars.insert(name, v);
                }
            }
            DeclKind::Output { ty, value } => {
                parts
                    .outputs
                    .insert(name, self.output(d, ty, value, schemas)?);
            }
            _ => {}
        }
        Ok(())
    }

    fn emit(&self) -> R<Value> {
        let schema = match self.target {
            TargetScope::ResourceGroup => {
                "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
            }
            TargetScope::Subscription => {
                "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#"
            }
            TargetScope::ManagementGroup => {
                "https://schema.management.azure.com/schemas/2019-08-01/managementGroupDeploymentTemplate.json#"
            }
            TargetScope::Tenant => {
                "https://schema.management.azure.com/schemas/2019-08-01/tenantDeploymentTemplate.json#"
            }
        };
        let mut parts = Parts::default();
        parts.metadata.insert(
            "_generator".into(),
            json!({"name": "bicepc", "version": env!("CARGO_PKG_VERSION")}),
        );
        let experimental = self.features.experimental_language_version();
        let symbolic = experimental.is_some()
            || self.features.is_enabled("symbolicNameCodegen")
            || language_version::needs_symbolic_names(self.file);
        let value = |e: &Expr| self.val(e, &Cx::default());
        let schemas = TypeSchemas::new(self.declared_types(), &value);
        let mut definitions = Map::new();
        self.symbolic.set(symbolic);
        if symbolic {
            for d in &self.file.decls {
                if let (DeclKind::Type(ty), Some((name, _))) = (&d.kind, &d.name) {
                    let schema = self
                        .check_decorators(&d.decorators, TYPE_DECORATORS)
                        .and_then(|()| schemas.definition(d, ty));
                    match schema {
                        Ok(schema) => {
                            definitions.insert(name.clone(), self.with_import_origin(name, schema));
                        }
                        Err(e) => self.fail_in(d, e),
                    }
                }
            }
        }
        for d in &self.file.decls {
            if let Err(e) = self.emit_declaration(d, &mut parts, &schemas) {
                self.fail_in(d, e);
            }
        }
        let Parts {
            mut metadata,
            params,
            mut vars,
            var_copies,
            outputs,
            mut exported_vars,
        } = parts;
        for (k, v) in self.loaded_values.iter().enumerate() {
            vars.insert(format!("$fxv#{k}"), v.clone());
        }
        vars.extend(self.arm_variables.values.iter().cloned());
        let mut var_copies = var_copies;
        var_copies.extend(self.arm_variables.copies.iter().cloned());
        if !var_copies.is_empty() {
            let mut with_copy = Map::new();
            with_copy.insert("copy".into(), Value::Array(var_copies));
            with_copy.extend(vars);
            vars = with_copy;
        }
        // Named by symbol in a 2.0 template, where `existing` resources are emitted too.
        let mut resources = Vec::new();
        for i in self.emission_order() {
            if self.resources[i].existing && !symbolic {
                continue;
            }
            match self.resource(i) {
                Ok(r) => resources.push((self.symbol_name(Sym::Res(i)), r)),
                Err(e) => self.fail(e),
            }
        }
        if let Err(e) = self.check_module_names() {
            self.fail(e);
        }
        for i in 0..self.modules.len() {
            match self.module(i) {
                Ok(m) => resources.push((self.symbol_name(Sym::Mod(i)), m)),
                Err(e) => self.fail(e),
            }
        }
        if !exported_vars.is_empty() {
            exported_vars.sort_by(|a, b| a.0.cmp(&b.0));
            let list = exported_vars
                .into_iter()
                .map(|(name, ty)| json!({"name": name, "type": ty}))
                .collect();
            metadata.insert("__bicep_exported_variables!".into(), Value::Array(list));
        }
        let mut out = Map::new();
        out.insert("$schema".into(), json!(schema));
        if symbolic {
            out.insert(
                "languageVersion".into(),
                json!(experimental.unwrap_or("2.0")),
            );
        }
        if experimental.is_some() {
            metadata.insert("_EXPERIMENTAL_WARNING".into(), json!(EXPERIMENTAL_WARNING));
            metadata.insert(
                "_EXPERIMENTAL_FEATURES_ENABLED".into(),
                json!(self.features.experimental_engine_features()),
            );
        }
        out.insert("contentVersion".into(), json!("1.0.0.0"));
        out.insert("metadata".into(), Value::Object(metadata));
        if !definitions.is_empty() {
            out.insert("definitions".into(), Value::Object(definitions));
        }
        if let Some(functions) = self.user_functions(&schemas) {
            out.insert("functions".into(), functions);
        }
        if !params.is_empty() {
            out.insert("parameters".into(), Value::Object(params));
        }
        if !vars.is_empty() {
            out.insert("variables".into(), Value::Object(vars));
        }
        if symbolic {
            out.insert(
                "resources".into(),
                Value::Object(resources.into_iter().collect()),
            );
        } else {
            let list = resources.into_iter().map(|(_, r)| r).collect();
            out.insert("resources".into(), Value::Array(list));
        }
        if !outputs.is_empty() {
            out.insert("outputs".into(), Value::Object(outputs));
        }
        let asserts = self.asserts();
        if !asserts.is_empty() {
            out.insert("asserts".into(), Value::Object(asserts));
        }
        Ok(Value::Object(out))
    }

    /// `assert` declarations (experimental): each a boolean expression ARM checks.
    fn asserts(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for d in &self.file.decls {
            if let (DeclKind::Assert(e), Some((name, _))) = (&d.kind, &d.name) {
                match self.val(e, &Cx::default()) {
                    Ok(v) => {
                        out.insert(name.clone(), v);
                    }
                    Err(err) => self.fail(err),
                }
            }
        }
        out
    }

    /// Two modules deploying under the same name to the same scope would overwrite
    /// each other's deployment.
    fn check_module_names(&self) -> R<()> {
        let mut seen: HashMap<(String, String), &str> = HashMap::new();
        for m in &self.modules {
            if m.looped.is_some() {
                continue;
            }
            let (name, scope) = self.with_deps_suppressed(|| {
                let name = self.ex(&m.name_expr, &Cx::default())?;
                let scope = match self.scope_ref(m.scope_expr, &Cx::default())? {
                    ScopeRef::Default => String::new(),
                    ScopeRef::ResourceGroup { sub, rg } => format!("rg:{sub:?}/{rg}"),
                    ScopeRef::Subscription(s) => format!("sub:{s:?}"),
                    ScopeRef::ManagementGroup(g) => format!("mg:{g:?}"),
                    ScopeRef::Tenant => "tenant".into(),
                    ScopeRef::Resource(id) => format!("res:{id}"),
                };
                Ok((name, scope))
            })?;
            let symbol = m.decl.name.as_ref().map(|(n, _)| n.as_str()).unwrap_or("");
            if let Some(other) = seen.insert((scope, name), symbol) {
                return Err(Diagnostic::error(
                    "BCP122",
                    format!(
                        "Modules: \"{other}\", \"{symbol}\" are defined with this same name and this same scope in a file. Rename them or split into different modules."
                    ),
                    m.name_expr.span,
                ));
            }
        }
        Ok(())
    }

    /// The body of a variable loop: ARM evaluates it as one expression, so
    /// scalars and arrays are written as expressions there.
    fn var_loop_input(&self, body: &Expr, cx: &Cx) -> R<Value> {
        match &body.kind {
            ExprKind::Int(s) => Ok(expr_value(format!("int({})", int_value(s, body.span)?))),
            ExprKind::Bool(_) | ExprKind::Null | ExprKind::Array(_) => {
                Ok(expr_value(self.ex(body, cx)?))
            }
            _ => self.val(body, cx),
        }
    }

    /// File contents loaded inside expressions become variables `$fxv#N`, numbered
    /// in source order, as the official compiler emits them.
    fn hoist_loaded_files(&mut self) -> R<()> {
        let mut calls = Vec::new();
        for d in &self.file.decls {
            let whole = match &d.kind {
                DeclKind::Var { value, .. } => {
                    whole_file_load(value).map(|(n, a)| (value.span, n, a))
                }
                _ => None,
            };
            if let Some((span, fname, args)) = whole {
                let v = escape_loaded(self.load_file(fname, args, span)?);
                self.whole_loaded.insert(span.start, v);
            }
            let whole = whole.map(|(span, _, _)| span.start);
            d.visit(&mut |e| {
                if let ExprKind::Call {
                    namespace,
                    name,
                    args,
                } = &e.kind
                    && LOAD_FUNCTIONS.contains(&name.as_str())
                    && namespace.as_deref().is_none_or(|n| n == "sys")
                    && Some(e.span.start) != whole
                {
                    calls.push((name.as_str(), args.as_slice(), e.span));
                }
            });
        }
        for (name, args, span) in calls {
            let v = escape_loaded(self.load_file(name, args, span)?);
            self.loaded.insert(span.start, self.loaded_values.len());
            self.loaded_values.push(v);
        }
        Ok(())
    }

    /// Evaluates `loadTextContent`, `loadFileAsBase64` or `loadJsonContent` at compile time.
    fn load_file(&self, name: &str, args: &[Expr], span: Span) -> R<Value> {
        let Some(path) = args.first().and_then(plain_string) else {
            return Err(Diagnostic::error(
                "BCP032",
                "The value must be a compile-time constant.",
                args.first().map(|a| a.span).unwrap_or(span),
            ));
        };
        let read_error = |e: String| {
            Diagnostic::error(
                "BCP091",
                format!("An error occurred reading file. {e}"),
                span,
            )
        };
        match (name, args.len()) {
            ("loadTextContent", 1) => {
                let (_, text) = self
                    .resolver
                    .resolve(self.file_name, path)
                    .map_err(read_error)?;
                Ok(Value::String(
                    text.trim_start_matches('\u{feff}').to_string(),
                ))
            }
            ("loadTextContent", 2) => {
                let Some(encoding) = plain_string(&args[1]) else {
                    return Err(Diagnostic::error(
                        "BCP032",
                        "The value must be a compile-time constant.",
                        args[1].span,
                    ));
                };
                let (_, bytes) = self
                    .resolver
                    .resolve_bytes(self.file_name, path)
                    .map_err(read_error)?;
                match decode_text(&bytes, encoding) {
                    Some(text) => Ok(Value::String(text)),
                    None => Err(Diagnostic::error(
                        "BCP070",
                        format!(
                            "Argument of type \"'{encoding}'\" is not assignable to parameter of type \"'iso-8859-1' | 'us-ascii' | 'utf-16' | 'utf-16BE' | 'utf-8'\"."
                        ),
                        args[1].span,
                    )),
                }
            }
            ("loadFileAsBase64", 1) => {
                use base64::Engine;
                let (_, bytes) = self
                    .resolver
                    .resolve_bytes(self.file_name, path)
                    .map_err(read_error)?;
                Ok(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                ))
            }
            ("loadJsonContent", 1) => {
                let (_, text) = self
                    .resolver
                    .resolve(self.file_name, path)
                    .map_err(read_error)?;
                serde_json::from_str(text.trim_start_matches('\u{feff}')).or_else(|_| {
                    unsupported("loadJsonContent of a file that is not strict JSON", span)
                })
            }
            ("loadYamlContent", 1) => {
                let (_, text) = self
                    .resolver
                    .resolve(self.file_name, path)
                    .map_err(read_error)?;
                serde_yaml::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| {
                    Diagnostic::error(
                        "BCP-YAML",
                        format!("The file \"{path}\" is not valid YAML: {e}"),
                        span,
                    )
                })
            }
            _ => unsupported(format!("This form of \"{name}\""), span),
        }
    }

    /// The official order: for each top-level resource in source order, its nested
    /// descendants children-first; then the top-level resources themselves.
    fn emission_order(&self) -> Vec<usize> {
        fn descendants(em: &Emitter, parent: usize, out: &mut Vec<usize>) {
            for (c, r) in em.resources.iter().enumerate() {
                if r.depth > 0 && r.parent == Some(parent) {
                    descendants(em, c, out);
                    out.push(c);
                }
            }
        }
        let top: Vec<usize> = (0..self.resources.len())
            .filter(|i| self.resources[*i].depth == 0)
            .collect();
        let mut order = Vec::with_capacity(self.resources.len());
        for &t in &top {
            descendants(self, t, &mut order);
        }
        order.extend(top);
        order
    }

    /// The user-defined types of this file, by name.
    fn declared_types(&self) -> HashMap<String, &'a Decl> {
        self.file
            .decls
            .iter()
            .filter(|d| matches!(d.kind, DeclKind::Type(_)))
            .filter_map(|d| d.name.as_ref().map(|(n, _)| (n.clone(), d)))
            .collect()
    }

    fn check_decorators(&self, decorators: &[Expr], allowed: &[&str]) -> R<()> {
        for d in decorators {
            if let ExprKind::Call { name, .. } = &d.kind
                && !allowed.contains(&name.as_str())
            {
                return unsupported(format!("The decorator \"@{name}\" here"), d.span);
            }
        }
        Ok(())
    }

    fn description_metadata(&self, decorators: &[Expr], target: &mut Map<String, Value>) -> R<()> {
        let mut meta = Map::new();
        if let Some(args) = decorator(decorators, "metadata")
            && let Some(Value::Object(m)) = args
                .first()
                .map(|a| self.val(a, &Cx::default()))
                .transpose()?
        {
            meta.extend(m);
        }
        if let Some(args) = decorator(decorators, "description")
            && let Some(a) = args.first()
        {
            meta.insert("description".into(), self.val(a, &Cx::default())?);
        }
        if !meta.is_empty() {
            target.insert("metadata".into(), Value::Object(meta));
        }
        Ok(())
    }

    fn simple_type(&self, ty: &TypeExpr, secure: bool) -> R<&'static str> {
        let TypeKind::Name(n) = &ty.kind else {
            return unsupported(
                "Type syntax beyond a primitive type name (needs languageVersion 2.0)",
                ty.span,
            );
        };
        let n = n.strip_prefix("sys.").unwrap_or(n);
        Ok(match (n, secure) {
            ("string", false) => "string",
            ("string", true) => "securestring",
            ("int", false) => "int",
            ("bool", false) => "bool",
            ("object", false) => "object",
            ("object", true) => "secureObject",
            ("array", false) => "array",
            ("int" | "bool" | "array", true) => {
                return Err(Diagnostic::error(
                    "BCP124",
                    "The decorator \"secure\" can only be attached to targets of type \"object | string\".",
                    ty.span,
                ));
            }
            _ => {
                return unsupported(
                    format!("The type \"{n}\" (needs languageVersion 2.0)"),
                    ty.span,
                );
            }
        })
    }

    fn param(&self, d: &Decl, ty: Option<&TypeExpr>, default: Option<&Expr>) -> R<Value> {
        self.check_decorators(
            &d.decorators,
            &[
                "description",
                "metadata",
                "secure",
                "allowed",
                "minValue",
                "maxValue",
                "minLength",
                "maxLength",
            ],
        )?;
        let secure = decorator(&d.decorators, "secure").is_some();
        let Some(ty) = ty else {
            return Err(Diagnostic::error(
                "BCP279",
                "Expected a type at this location. Please specify a valid type expression or one of the following types: \"array\", \"bool\", \"int\", \"object\", \"string\".",
                d.keyword_span,
            ));
        };
        let mut p = Map::new();
        // `any` parameters carry no ARM type.
        let is_any = matches!(&ty.kind, TypeKind::Name(n) if n == "any" || n == "sys.any")
            && d.decorators.is_empty();
        let arm_type = if is_any {
            None
        } else {
            Some(self.simple_type(ty, secure)?)
        };
        if let Some(t) = arm_type {
            p.insert("type".into(), json!(t));
        }
        if let Some(v) = default {
            if let Some(t) = arm_type {
                check_literal_type(v, t)?;
            }
            p.insert("defaultValue".into(), self.val(v, &Cx::default())?);
        }
        if let Some(args) = decorator(&d.decorators, "allowed")
            && let Some(a) = args.first()
        {
            p.insert("allowedValues".into(), self.val(a, &Cx::default())?);
        }
        for key in ["minValue", "maxValue", "minLength", "maxLength"] {
            if let Some(args) = decorator(&d.decorators, key)
                && let Some(a) = args.first()
            {
                p.insert(key.into(), self.val(a, &Cx::default())?);
            }
        }
        self.description_metadata(&d.decorators, &mut p)?;
        Ok(Value::Object(p))
    }

    /// A parameter of a user-defined type or aggregate type syntax (languageVersion 2.0).
    fn typed_param(
        &self,
        d: &Decl,
        ty: &TypeExpr,
        default: &Option<Expr>,
        schemas: &TypeSchemas,
    ) -> R<Value> {
        self.check_decorators(&d.decorators, TYPE_DECORATORS)?;
        let mut p = schemas.decorated(ty, &d.decorators)?;
        if let (Some(v), Value::Object(m)) = (default, &mut p) {
            m.insert("defaultValue".into(), self.val(v, &Cx::default())?);
        }
        if let (Some([a]), Value::Object(m)) = (decorator(&d.decorators, "allowed"), &mut p) {
            m.insert("allowedValues".into(), self.val(a, &Cx::default())?);
        }
        Ok(p)
    }

    fn output(&self, d: &Decl, ty: &TypeExpr, value: &Expr, schemas: &TypeSchemas) -> R<Value> {
        // Secure outputs exist only in languageVersion 2.0, typed like parameters.
        let secure = decorator(&d.decorators, "secure").is_some();
        let mut o = if is_primitive(ty, schemas) && !secure {
            self.check_decorators(&d.decorators, &["description", "metadata"])?;
            let mut o = Map::new();
            let arm_type = self.simple_type(ty, false)?;
            o.insert("type".into(), json!(arm_type));
            check_literal_type(value, arm_type)?;
            self.description_metadata(&d.decorators, &mut o)?;
            o
        } else {
            self.check_decorators(&d.decorators, TYPE_DECORATORS)?;
            match schemas.decorated(ty, &d.decorators)? {
                Value::Object(o) => o,
                _ => Map::new(),
            }
        };
        if let ExprKind::For {
            item,
            index,
            iterable,
            body,
        } = &value.kind
        {
            let cx = self.loop_cx(item, index, iterable, "copyIndex()")?;
            o.insert(
                "copy".into(),
                json!({
                    "count": expr_value(format!("length({})", self.ex(iterable, &Cx::default())?)),
                    "input": self.val(body, &cx)?,
                }),
            );
        } else {
            o.insert("value".into(), self.val(value, &Cx::default())?);
        }
        Ok(Value::Object(o))
    }

    /// Locals for a loop body: the item is `iterable[idx]`, the index `idx`.
    fn loop_cx(
        &self,
        item: &Option<String>,
        index: &Option<String>,
        iterable: &Expr,
        idx: &str,
    ) -> R<Cx> {
        self.loop_cx_in(&Cx::default(), item, index, iterable, idx)
    }

    fn loop_cx_in(
        &self,
        base: &Cx,
        item: &Option<String>,
        index: &Option<String>,
        iterable: &Expr,
        idx: &str,
    ) -> R<Cx> {
        let iter = self.ex(iterable, base)?;
        Ok(base
            .with(item, format!("{iter}[{idx}]"))
            .with(index, idx.to_string()))
    }

    fn res_cx(&self, r: &Res, idx: Option<&str>) -> R<Cx> {
        match (&r.looped, idx) {
            (Some(l), Some(i)) => self.loop_cx(&l.item, &l.index, l.iterable, i),
            (Some(l), None) => self.loop_cx(&l.item, &l.index, l.iterable, "copyIndex()"),
            _ => Ok(Cx::default()),
        }
    }

    /// Name segments of a resource, one per type segment after the provider.
    fn name_segments(&self, i: usize, idx: Option<&str>) -> R<Vec<String>> {
        let r = &self.resources[i];
        let cx = self.res_cx(r, idx)?;
        let own = self.ex(r.name_expr, &cx)?;
        if let Some(p) = r.parent {
            let parent_idx = r.parent_index.map(|x| self.ex(x, &cx)).transpose()?;
            let mut segs = self.name_segments(p, parent_idx.as_deref())?;
            segs.push(own);
            return Ok(segs);
        }
        let n = r.full_type.split('/').count().saturating_sub(1);
        if n <= 1 {
            return Ok(vec![own]);
        }
        Ok((0..n).map(|k| format!("split({own}, '/')[{k}]")).collect())
    }

    fn scope_ref(&self, scope: Option<&Expr>, cx: &Cx) -> R<ScopeRef> {
        let Some(e) = scope else {
            return Ok(ScopeRef::Default);
        };
        if let Some((sym, idx)) = self.symbol_ref(e, cx)? {
            return match sym {
                Sym::Res(i) => {
                    self.record_weak_dep(sym, idx.as_deref())?;
                    let r = &self.resources[i];
                    if r.full_type
                        .eq_ignore_ascii_case("Microsoft.Resources/resourceGroups")
                    {
                        let rg = self.ex(r.name_expr, &self.res_cx(r, idx.as_deref())?)?;
                        return Ok(ScopeRef::ResourceGroup { sub: None, rg });
                    }
                    Ok(ScopeRef::Resource(self.resource_id(i, idx.as_deref())?))
                }
                Sym::Mod(_) => unsupported("A module used as a scope", e.span),
            };
        }
        if let ExprKind::Call {
            namespace,
            name,
            args,
        } = &e.kind
            && namespace.as_deref().is_none_or(|n| n == "az")
        {
            let a = args.iter().map(|x| self.ex(x, cx)).collect::<R<Vec<_>>>()?;
            return match (name.as_str(), a.len()) {
                ("resourceGroup", 1) => Ok(ScopeRef::ResourceGroup {
                    sub: None,
                    rg: a[0].clone(),
                }),
                ("resourceGroup", 2) => Ok(ScopeRef::ResourceGroup {
                    sub: Some(a[0].clone()),
                    rg: a[1].clone(),
                }),
                ("resourceGroup", 0) if self.target == TargetScope::ResourceGroup => {
                    Ok(ScopeRef::Default)
                }
                ("subscription", 0) if self.target == TargetScope::Subscription => {
                    Ok(ScopeRef::Default)
                }
                ("subscription", 0) => Ok(ScopeRef::Subscription(None)),
                ("subscription", 1) => Ok(ScopeRef::Subscription(Some(a[0].clone()))),
                ("tenant", 0) if self.target == TargetScope::Tenant => Ok(ScopeRef::Default),
                ("tenant", 0) => Ok(ScopeRef::Tenant),
                ("managementGroup", 0) if self.target == TargetScope::ManagementGroup => {
                    Ok(ScopeRef::Default)
                }
                ("managementGroup", 0) => Ok(ScopeRef::ManagementGroup(None)),
                ("managementGroup", 1) => Ok(ScopeRef::ManagementGroup(Some(a[0].clone()))),
                _ => unsupported(format!("The scope \"{name}(...)\""), e.span),
            };
        }
        unsupported("This scope expression", e.span)
    }

    fn id_for(&self, scope: &ScopeRef, ty: &str, segs: &[String]) -> R<String> {
        let tail = std::iter::once(quote(ty))
            .chain(segs.iter().cloned())
            .collect::<Vec<_>>()
            .join(", ");
        Ok(match scope {
            ScopeRef::Default => match self.target {
                TargetScope::ResourceGroup => format!("resourceId({tail})"),
                TargetScope::Subscription => format!("subscriptionResourceId({tail})"),
                TargetScope::Tenant => format!("tenantResourceId({tail})"),
                TargetScope::ManagementGroup => {
                    format!("extensionResourceId(managementGroup().id, {tail})")
                }
            },
            ScopeRef::ManagementGroup(None) => {
                format!("extensionResourceId(managementGroup().id, {tail})")
            }
            ScopeRef::ManagementGroup(Some(name)) => format!(
                "extensionResourceId(tenantResourceId('Microsoft.Management/managementGroups', {name}), {tail})"
            ),
            ScopeRef::ResourceGroup { sub, rg } => format!(
                "extensionResourceId(format('/subscriptions/{{0}}/resourceGroups/{{1}}', {}, {rg}), {tail})",
                sub.as_deref().unwrap_or("subscription().subscriptionId")
            ),
            ScopeRef::Subscription(None) => format!("subscriptionResourceId({tail})"),
            ScopeRef::Subscription(Some(s)) => format!("subscriptionResourceId({s}, {tail})"),
            ScopeRef::Tenant => format!("tenantResourceId({tail})"),
            ScopeRef::Resource(id) => format!("extensionResourceId({id}, {tail})"),
        })
    }

    fn resource_id(&self, i: usize, idx: Option<&str>) -> R<String> {
        self.with_deps_suppressed(|| self.resource_id_inner(i, idx))
    }

    fn resource_id_inner(&self, i: usize, idx: Option<&str>) -> R<String> {
        let r = &self.resources[i];
        let segs = self.name_segments(i, idx)?;
        let mut root = i;
        while let Some(p) = self.resources[root].parent {
            root = p;
        }
        let scope_expr = self.resources[root].scope_expr;
        let cx = self.res_cx(&self.resources[root], if root == i { idx } else { None })?;
        let scope = self.scope_ref(scope_expr, &cx)?;
        self.id_for(&scope, &r.full_type, &segs)
    }

    fn module_id(&self, i: usize, idx: Option<&str>) -> R<String> {
        self.with_deps_suppressed(|| self.module_id_inner(i, idx))
    }

    fn module_id_inner(&self, i: usize, idx: Option<&str>) -> R<String> {
        let m = &self.modules[i];
        let cx = match (&m.looped, idx) {
            (Some(l), Some(x)) => self.loop_cx(&l.item, &l.index, l.iterable, x)?,
            (Some(l), None) => self.loop_cx(&l.item, &l.index, l.iterable, "copyIndex()")?,
            _ => Cx::default(),
        };
        let name = self.ex(&m.name_expr, &cx)?;
        let scope = self.scope_ref(m.scope_expr, &cx)?;
        self.id_for(&scope, DEPLOYMENTS_TYPE, &[name])
    }

    /// Recognises `sym`, `sym[i]` and `a::b` resource/module references.
    fn symbol_ref(&self, e: &Expr, cx: &Cx) -> R<Option<(Sym, Option<String>)>> {
        match &e.kind {
            ExprKind::NonNull(inner) => self.symbol_ref(inner, cx),
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
                    return Ok(Some((*s, Some(self.ex(index, cx)?))));
                }
                // `parent::loopedChild[i]`.
                if matches!(base.kind, ExprKind::ChildAccess { .. })
                    && let Some((Sym::Res(c), None)) = self.symbol_ref(base, cx)?
                    && self.resources[c].looped.is_some()
                {
                    return Ok(Some((Sym::Res(c), Some(self.ex(index, cx)?))));
                }
                Ok(None)
            }
            ExprKind::ChildAccess { base, name } => {
                let Some((Sym::Res(p), None)) = self.symbol_ref(base, cx)? else {
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

    fn record_dep(&self, sym: Sym, idx: Option<&str>) -> R<()> {
        self.record_dep_on(sym, idx, false)
    }

    /// A reference that reads no state of the resource (its id, name, type or API
    /// version, a function on it, its use as parent or scope): an existing
    /// resource referred to so is no dependency even in a 2.0 template.
    fn record_weak_dep(&self, sym: Sym, idx: Option<&str>) -> R<()> {
        self.record_dep_on(sym, idx, true)
    }

    fn record_dep_on(&self, sym: Sym, idx: Option<&str>, weak: bool) -> R<()> {
        if self.suppress_deps.get() > 0 {
            return Ok(());
        }
        match sym {
            Sym::Res(i) => {
                let r = &self.resources[i];
                if self.symbolic.get() && !(r.existing && weak) {
                    let per_reference = r.looped.is_some() && names_one_element(idx);
                    let entry = self.symbolic_dep(sym, idx.filter(|_| per_reference));
                    self.deps.borrow_mut().push(Dep {
                        symbol: r.symbol.clone(),
                        entry,
                        per_reference,
                    });
                    return Ok(());
                }
                if r.existing {
                    // Existing resources are not deployed: depend on what their id uses.
                    let cx = self.res_cx(r, idx)?;
                    self.ex(r.name_expr, &cx)?;
                    if let Some(s) = r.scope_expr {
                        self.scope_ref(Some(s), &cx)?;
                    }
                    if let Some(p) = r.parent {
                        self.record_weak_dep(Sym::Res(p), None)?;
                    }
                    return Ok(());
                }
                let per_reference = r.looped.is_some() && names_one_element(idx);
                let entry = if r.looped.is_some() && !per_reference {
                    r.symbol.clone()
                } else {
                    format!("[{}]", self.resource_id(i, idx)?)
                };
                self.deps.borrow_mut().push(Dep {
                    symbol: r.symbol.clone(),
                    entry,
                    per_reference,
                });
            }
            Sym::Mod(i) => {
                let m = &self.modules[i];
                let symbol = m.decl.name.clone().unwrap_or_default().0;
                let per_reference = m.looped.is_some() && names_one_element(idx);
                let entry = if self.symbolic.get() {
                    self.symbolic_dep(sym, idx.filter(|_| per_reference))
                } else if m.looped.is_some() && !per_reference {
                    symbol.clone()
                } else {
                    format!("[{}]", self.module_id(i, idx)?)
                };
                self.deps.borrow_mut().push(Dep {
                    symbol,
                    entry,
                    per_reference,
                });
            }
        }
        Ok(())
    }

    /// Counts deploy-time variable inlinings so chains that double at each step
    /// fail fast instead of running for ever.
    fn spend_inline_budget(&self, name: &str, span: Span) -> R<()> {
        let left = self.inline_budget.get();
        if left == 0 {
            return Err(Diagnostic::error(
                "BCP-SIZE",
                format!("Inlining the variable \"{name}\" makes the template too large."),
                span,
            ));
        }
        self.inline_budget.set(left - 1);
        Ok(())
    }

    fn with_deps_suppressed<T>(&self, f: impl FnOnce() -> R<T>) -> R<T> {
        self.suppress_deps.set(self.suppress_deps.get() + 1);
        let result = f();
        self.suppress_deps.set(self.suppress_deps.get() - 1);
        result
    }

    /// Runs `f` collecting the dependencies it records, in `dependsOn` order.
    fn collect_deps(&self, f: impl FnOnce() -> R<()>, exclude: &str) -> R<Vec<Value>> {
        let saved = std::mem::take(&mut *self.deps.borrow_mut());
        let result = f();
        let mut deps = std::mem::replace(&mut *self.deps.borrow_mut(), saved);
        result?;
        deps.retain(|d| d.symbol != exclude);
        deps.sort_by(|a, b| culture_cmp(&a.symbol, &b.symbol).then_with(|| a.entry.cmp(&b.entry)));
        // A dependency on a whole collection subsumes dependencies on its elements.
        let whole: HashSet<String> = deps
            .iter()
            .filter(|d| !d.per_reference && d.entry == d.symbol)
            .map(|d| d.symbol.clone())
            .collect();
        deps.retain(|d| !(d.per_reference && whole.contains(&d.symbol)));
        let mut seen = HashSet::new();
        Ok(deps
            .into_iter()
            .filter(|d| d.per_reference || seen.insert(d.entry.clone()))
            .map(|d| Value::String(d.entry))
            .collect())
    }

    fn is_runtime_var(&self, name: &str) -> bool {
        if let Some(v) = self.runtime_vars.borrow().get(name) {
            return *v;
        }
        self.runtime_vars
            .borrow_mut()
            .insert(name.to_string(), false);
        let result = match self.vars.get(name).map(|d| &d.kind) {
            Some(DeclKind::Var { value, .. }) => self.is_runtime_expr(value, &mut Vec::new()),
            _ => false,
        };
        self.runtime_vars
            .borrow_mut()
            .insert(name.to_string(), result);
        result
    }

    /// True when the value can only be known during deployment (it reads resource
    /// state or module outputs), so ARM forbids it in `variables`.
    fn is_runtime_expr(&self, e: &Expr, locals: &mut Vec<String>) -> bool {
        let rt = |x: &Expr, l: &mut Vec<String>| self.is_runtime_expr(x, l);
        match &e.kind {
            ExprKind::MethodCall { .. } => true,
            ExprKind::Member { base, name, .. } => {
                if let Some(sym) = self.sym_of(base, locals) {
                    return match sym {
                        Sym::Res(_) => {
                            !matches!(name.as_str(), "id" | "name" | "type" | "apiVersion")
                        }
                        Sym::Mod(_) => name != "name",
                    };
                }
                rt(base, locals)
            }
            ExprKind::Ident(n) => {
                !locals.contains(n)
                    && (self.symbols.contains_key(n.as_str())
                        || (self.vars.contains_key(n.as_str()) && self.is_runtime_var(n)))
            }
            ExprKind::Call {
                namespace,
                name,
                args,
            } => {
                let ns_is_sym = namespace
                    .as_ref()
                    .is_some_and(|ns| self.symbols.contains_key(ns));
                // `nameof(x)` is the name written, known at compile time.
                if name == "nameof" && !ns_is_sym {
                    return false;
                }
                ns_is_sym
                    || name == "reference"
                    || name.starts_with("list")
                    || args.iter().any(|a| rt(a, locals))
            }
            ExprKind::Str { holes, .. } => holes.iter().any(|h| rt(h, locals)),
            ExprKind::Array(items) => items.iter().any(|i| match i {
                ArrayItem::Value(x) | ArrayItem::Spread(x) => rt(x, locals),
            }),
            ExprKind::Object(items) => items.iter().any(|i| match i {
                ObjectItem::Property { value, .. } => rt(value, locals),
                ObjectItem::Spread(x) => rt(x, locals),
                ObjectItem::NestedResource(_) => false,
            }),
            ExprKind::Index { base, index, .. } => {
                if let Some(sym) = self.sym_of(base, locals) {
                    let collection = match sym {
                        Sym::Res(i) => self.resources[i].looped.is_some(),
                        Sym::Mod(i) => self.modules[i].looped.is_some(),
                    } && matches!(base.kind, ExprKind::Ident(_));
                    return match plain_string(index) {
                        // An element of a collection: a reference, like the symbol itself.
                        _ if collection => true,
                        // `res['id']` reads like `res.id`.
                        Some(key) => match sym {
                            Sym::Res(_) => !matches!(key, "id" | "name" | "type" | "apiVersion"),
                            Sym::Mod(_) => key != "name",
                        },
                        None => {
                            let deploy_time = |k: &String| match sym {
                                Sym::Res(_) => {
                                    matches!(k.as_str(), "id" | "name" | "type" | "apiVersion")
                                }
                                Sym::Mod(_) => k == "name",
                            };
                            if self.resolve_computed_keys.get()
                                && let Some(keys) = self.const_strings(index, locals, 0)
                            {
                                return !keys.iter().all(deploy_time);
                            }
                            // Computed property names could be compile-time constants.
                            self.uncertain_runtime.set(true);
                            true
                        }
                    };
                }
                rt(base, locals) || rt(index, locals)
            }
            ExprKind::ChildAccess { .. } => true,
            ExprKind::NonNull(x) | ExprKind::Paren(x) | ExprKind::Unary { operand: x, .. } => {
                rt(x, locals)
            }
            ExprKind::Binary { left, right, .. } => rt(left, locals) || rt(right, locals),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => rt(cond, locals) || rt(then, locals) || rt(otherwise, locals),
            ExprKind::For {
                item,
                index,
                iterable,
                body,
            } => {
                let n = locals.len();
                locals.extend(item.iter().cloned());
                locals.extend(index.iter().cloned());
                let r = rt(iterable, locals) || rt(body, locals);
                locals.truncate(n);
                r
            }
            ExprKind::If { cond, body } => rt(cond, locals) || rt(body, locals),
            ExprKind::Lambda { params, body } => {
                let n = locals.len();
                locals.extend(params.iter().cloned());
                let r = rt(body, locals);
                locals.truncate(n);
                r
            }
            ExprKind::Int(_) | ExprKind::Bool(_) | ExprKind::Null => false,
        }
    }

    /// The span of the innermost container item that needs a runtime value, where
    /// the official compiler reports it (the property value, not the whole loop).
    fn first_runtime_span(&self, e: &Expr, locals: &mut Vec<String>) -> Option<Span> {
        match &e.kind {
            ExprKind::For {
                item,
                index,
                iterable,
                body,
            } => {
                if self.is_runtime_expr(iterable, locals) {
                    return self.first_runtime_span(iterable, locals);
                }
                let n = locals.len();
                locals.extend(item.iter().cloned());
                locals.extend(index.iter().cloned());
                let r = self.first_runtime_span(body, locals);
                locals.truncate(n);
                r
            }
            ExprKind::Object(items) => items.iter().find_map(|i| match i {
                ObjectItem::Property { value: x, .. } | ObjectItem::Spread(x) => {
                    self.first_runtime_span(x, locals)
                }
                ObjectItem::NestedResource(_) => None,
            }),
            ExprKind::Array(items) => items.iter().find_map(|i| match i {
                ArrayItem::Value(x) | ArrayItem::Spread(x) => self.first_runtime_span(x, locals),
            }),
            _ => self.is_runtime_expr(e, locals).then_some(e.span),
        }
    }

    /// Every string `e` can evaluate to, when that is known at compile time
    /// (literals, constant variables, interpolation of constants, constant array
    /// items, `first`/`last`, both branches of a condition).
    fn const_strings(&self, e: &Expr, locals: &[String], depth: usize) -> Option<Vec<String>> {
        if depth > 32 {
            return None;
        }
        let one = |x: &Expr| self.const_strings(x, locals, depth + 1);
        match &e.kind {
            ExprKind::Str { pieces, holes } => {
                let mut acc = vec![pieces[0].clone()];
                for (hole, piece) in holes.iter().zip(&pieces[1..]) {
                    let vals = one(hole)?;
                    acc = acc
                        .iter()
                        .flat_map(|a| vals.iter().map(move |v| format!("{a}{v}{piece}")))
                        .collect();
                }
                Some(acc)
            }
            ExprKind::Ident(n) if !locals.contains(n) => match &self.vars.get(n.as_str())?.kind {
                DeclKind::Var { value, .. } => one(value),
                _ => None,
            },
            ExprKind::Paren(x) => one(x),
            ExprKind::Ternary {
                then, otherwise, ..
            } => {
                let mut v = one(then)?;
                v.extend(one(otherwise)?);
                Some(v)
            }
            ExprKind::Index { base, index, .. } => {
                let items = self.const_array(base, locals, depth + 1)?;
                let ExprKind::Int(i) = &index.kind else {
                    return None;
                };
                let i: usize = i.parse().ok()?;
                one(items.get(i)?)
            }
            ExprKind::Call {
                namespace: None,
                name,
                args,
            } if args.len() == 1 && (name == "first" || name == "last") => {
                let items = self.const_array(&args[0], locals, depth + 1)?;
                let item = if name == "first" {
                    items.first()
                } else {
                    items.last()
                };
                one(item?)
            }
            _ => None,
        }
    }

    /// The items of a constant array literal, directly or through variables.
    fn const_array<'e>(
        &'e self,
        e: &'e Expr,
        locals: &[String],
        depth: usize,
    ) -> Option<Vec<&'e Expr>> {
        if depth > 32 {
            return None;
        }
        match &e.kind {
            ExprKind::Array(items) => items
                .iter()
                .map(|i| match i {
                    ArrayItem::Value(x) => Some(x),
                    ArrayItem::Spread(_) => None,
                })
                .collect(),
            ExprKind::Ident(n) if !locals.contains(n) => match &self.vars.get(n.as_str())?.kind {
                DeclKind::Var { value, .. } => self.const_array(value, locals, depth + 1),
                _ => None,
            },
            ExprKind::Paren(x) => self.const_array(x, locals, depth + 1),
            _ => None,
        }
    }

    fn sym_of(&self, e: &Expr, locals: &[String]) -> Option<Sym> {
        match &e.kind {
            ExprKind::Ident(n) if !locals.contains(n) => self.symbols.get(n).copied(),
            ExprKind::Index { base, .. } => self.sym_of(base, locals),
            ExprKind::ChildAccess { base, name } => match self.sym_of(base, locals)? {
                Sym::Res(p) => self
                    .resources
                    .iter()
                    .position(|r| r.parent == Some(p) && r.depth > 0 && r.local == *name)
                    .map(Sym::Res),
                Sym::Mod(_) => None,
            },
            _ => None,
        }
    }

    /// Emits a declaration value as JSON: literals stay literal, everything else
    /// becomes an `"[expression]"` string.
    fn val(&self, e: &Expr, cx: &Cx) -> R<Value> {
        match &e.kind {
            ExprKind::Str { pieces, holes } if holes.is_empty() => Ok(literal_string(&pieces[0])),
            // A deploy-time variable is inlined with its structure intact.
            ExprKind::Ident(n)
                if cx.get(n).is_none()
                    && self.vars.contains_key(n.as_str())
                    && self.is_runtime_var(n) =>
            {
                let DeclKind::Var { value, .. } = &self.vars[n.as_str()].kind else {
                    unreachable!()
                };
                if matches!(value.kind, ExprKind::For { .. }) {
                    return Ok(expr_value(self.ex(e, cx)?));
                }
                self.spend_inline_budget(n, e.span)?;
                self.val(value, &Cx::default())
            }
            ExprKind::Int(s) => int_value(s, e.span),
            ExprKind::Unary {
                op: UnaryOp::Minus,
                operand,
            } if matches!(operand.kind, ExprKind::Int(_)) => {
                let ExprKind::Int(s) = &operand.kind else {
                    unreachable!()
                };
                int_value(&format!("-{s}"), e.span)
            }
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Null => Ok(Value::Null),
            ExprKind::Array(items) if items.iter().all(|i| matches!(i, ArrayItem::Value(_))) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    if let ArrayItem::Value(x) = i {
                        if matches!(x.kind, ExprKind::For { .. }) {
                            return unsupported("A loop nested directly in an array", x.span);
                        }
                        out.push(self.val(x, cx)?);
                    }
                }
                Ok(Value::Array(out))
            }
            ExprKind::Object(items)
                if items.iter().all(|i| !matches!(i, ObjectItem::Spread(_))) =>
            {
                self.object_val(items, cx, &[])
            }
            ExprKind::For { .. } => unsupported("A loop in this position", e.span),
            // Scopes of another subscription or group have no ARM value.
            ExprKind::Call {
                namespace,
                name,
                args,
            } if !args.is_empty()
                && matches!(
                    name.as_str(),
                    "subscription" | "resourceGroup" | "managementGroup"
                )
                && namespace.as_deref().is_none_or(|n| n == "az") =>
            {
                Ok(json!({}))
            }
            ExprKind::Call {
                namespace,
                name,
                args,
            } if cx.in_function
                && LOAD_FUNCTIONS.contains(&name.as_str())
                && namespace.as_deref().is_none_or(|n| n == "sys") =>
            {
                Ok(escape_loaded(self.load_file(name, args, e.span)?))
            }
            ExprKind::Call {
                namespace,
                name,
                args,
            } if name == "nameof" && namespace.as_deref().is_none_or(|n| n == "sys") => {
                self.record_nameof_dep(args, cx)?;
                Ok(literal_string(&nameof(args, e.span)?))
            }
            ExprKind::Call {
                namespace,
                name,
                args,
            } if name == "any"
                && args.len() == 1
                && namespace.as_deref().is_none_or(|n| n == "sys") =>
            {
                self.val(&args[0], cx)
            }
            ExprKind::Member {
                base,
                name,
                safe: false,
            } if matches!(name.as_str(), "type" | "apiVersion")
                && matches!(self.symbol_ref(base, cx)?, Some((Sym::Res(_), _))) =>
            {
                let Some((Sym::Res(i), _)) = self.symbol_ref(base, cx)? else {
                    unreachable!()
                };
                let r = &self.resources[i];
                Ok(json!(if name == "type" {
                    &r.full_type
                } else {
                    &r.api_version
                }))
            }
            _ => {
                let text = self.ex(e, cx)?;
                // An expression that reduced to one string literal is emitted as that literal.
                Ok(match unquote(&text) {
                    Some(s) => literal_string(&s),
                    None => expr_value(text),
                })
            }
        }
    }

    /// Emits object items, skipping `skip` keys; property loops become `copy`.
    fn object_val(&self, items: &[ObjectItem], cx: &Cx, skip: &[&str]) -> R<Value> {
        let mut out = Map::new();
        let mut copies = Vec::new();
        for i in items {
            match i {
                ObjectItem::Property {
                    key,
                    value,
                    decorators,
                } => {
                    if !decorators.is_empty() {
                        return unsupported(
                            "A decorator on an object property",
                            decorators[0].span,
                        );
                    }
                    let k = match (&key.name, &key.interpolated) {
                        (Some(k), _) => k.clone(),
                        (None, Some(kx)) => format!("[{}]", self.ex(kx, cx)?),
                        (None, None) => return unsupported("This object key", key.span),
                    };
                    let k = &k;
                    if skip.contains(&k.as_str()) {
                        continue;
                    }
                    if let ExprKind::For {
                        item,
                        index,
                        iterable,
                        body,
                    } = &value.kind
                    {
                        let lcx = self.loop_cx_in(
                            cx,
                            item,
                            index,
                            iterable,
                            &format!("copyIndex({})", quote(k)),
                        )?;
                        copies.push(json!({
                            "name": k,
                            "count": expr_value(format!("length({})", self.ex(iterable, cx)?)),
                            "input": self.val(body, &lcx)?,
                        }));
                        continue;
                    }
                    let key = if k == "copy" {
                        // A literal `copy` key would be read as an ARM copy loop.
                        "[string('copy')]".to_string()
                    } else if key.name.is_some() {
                        match literal_string(k) {
                            Value::String(s) => s,
                            _ => k.clone(),
                        }
                    } else {
                        k.clone()
                    };
                    out.insert(key, self.val(value, cx)?);
                }
                ObjectItem::Spread(x) => return unsupported("The spread operator", x.span),
                // Only a resource body (emitted with `skip` keys) may declare children.
                ObjectItem::NestedResource(_) if !skip.is_empty() => {}
                ObjectItem::NestedResource(d) => {
                    return Err(nested_resource_misplaced(d.keyword_span));
                }
            }
        }
        if !copies.is_empty() {
            out.insert("copy".into(), Value::Array(copies));
        }
        Ok(Value::Object(out))
    }

    /// Emits an expression in the ARM template language (without brackets).
    fn ex(&self, e: &Expr, cx: &Cx) -> R<String> {
        match &e.kind {
            ExprKind::Str { pieces, holes } => {
                if holes.is_empty() {
                    return Ok(quote(&pieces[0]));
                }
                let mut fmt = String::new();
                let mut args = Vec::new();
                for (i, p) in pieces.iter().enumerate() {
                    fmt.push_str(&p.replace('{', "{{").replace('}', "}}"));
                    if let Some(h) = holes.get(i) {
                        fmt.push_str(&format!("{{{i}}}"));
                        args.push(self.ex(h, cx)?);
                    }
                }
                Ok(format!("format({}, {})", quote(&fmt), args.join(", ")))
            }
            ExprKind::Int(s) => {
                let v = int_value(s, e.span)?;
                // ARM parses bare numbers as 32-bit; larger ones go through json().
                Ok(match v.as_i64() {
                    Some(n) if i32::try_from(n).is_err() => format!("json('{n}')"),
                    _ => v.to_string(),
                })
            }
            ExprKind::Bool(b) => Ok(format!("{b}()")),
            ExprKind::Null => Ok("null()".into()),
            ExprKind::Array(items) => {
                // With spreads, runs of plain items become arrays that are flattened together.
                let mut groups = Vec::new();
                let mut run = Vec::new();
                let mut spread = false;
                for i in items {
                    match i {
                        ArrayItem::Value(x) => run.push(self.ex(x, cx)?),
                        ArrayItem::Spread(x) => {
                            spread = true;
                            if !run.is_empty() {
                                groups.push(format!("createArray({})", run.join(", ")));
                                run.clear();
                            }
                            groups.push(self.ex(x, cx)?);
                        }
                    }
                }
                if !spread {
                    return Ok(format!("createArray({})", run.join(", ")));
                }
                if !run.is_empty() {
                    groups.push(format!("createArray({})", run.join(", ")));
                }
                Ok(format!("flatten(createArray({}))", groups.join(", ")))
            }
            ExprKind::Object(items) => {
                // With spreads, runs of properties become objects merged left to right.
                let mut groups = Vec::new();
                let mut parts = Vec::new();
                let mut spread = false;
                for i in items {
                    match i {
                        ObjectItem::Property { key, value, .. } => {
                            let k = match (&key.name, &key.interpolated) {
                                (Some(k), _) => quote(k),
                                (None, Some(kx)) => self.ex(kx, cx)?,
                                (None, None) => return unsupported("This object key", key.span),
                            };
                            if matches!(value.kind, ExprKind::For { .. }) {
                                return unsupported(
                                    "A loop inside an object expression",
                                    value.span,
                                );
                            }
                            parts.push(format!("{k}, {}", self.ex(value, cx)?));
                        }
                        ObjectItem::Spread(x) => {
                            spread = true;
                            if !parts.is_empty() {
                                groups.push(format!("createObject({})", parts.join(", ")));
                                parts.clear();
                            }
                            groups.push(self.ex(x, cx)?);
                        }
                        ObjectItem::NestedResource(d) => {
                            return unsupported("A nested resource in an expression", d.span);
                        }
                    }
                }
                if !spread {
                    return Ok(format!("createObject({})", parts.join(", ")));
                }
                if !parts.is_empty() {
                    groups.push(format!("createObject({})", parts.join(", ")));
                }
                Ok(format!("shallowMerge(createArray({}))", groups.join(", ")))
            }
            ExprKind::Ident(n) => self.ident(n, e.span, cx),
            ExprKind::Call {
                namespace,
                name,
                args,
            } => self.call(namespace.as_deref(), name, args, e.span, cx),
            ExprKind::MethodCall { base, name, args } => match self.symbol_ref(base, cx)? {
                Some((Sym::Res(i), idx)) if name.starts_with("list") => {
                    self.list_call(i, idx.as_deref(), name, args, cx)
                }
                Some((Sym::Res(_), _)) if name == "getSecret" => Err(getsecret_misplaced(e.span)),
                _ => unsupported(format!("The function call \".{name}()\" here"), e.span),
            },
            ExprKind::Member { base, name, safe } => {
                if *safe || is_safe_chain(base) {
                    if self.symbol_ref(base, cx)?.is_some() {
                        return unsupported("The safe-dereference operator on a resource", e.span);
                    }
                    let text = try_get(&self.ex(base, cx)?, &quote(name), *safe);
                    // A module output is an object whose `value` is the output.
                    return Ok(if *safe && self.is_module_outputs(base, cx)? {
                        format!("tryGet({text}, 'value')")
                    } else {
                        text
                    });
                }
                self.member(base, name, e.span, cx)
            }
            ExprKind::Index {
                base,
                index: from_end,
                safe,
            } if matches!(
                from_end.kind,
                ExprKind::Unary {
                    op: UnaryOp::FromEnd,
                    ..
                }
            ) =>
            {
                let ExprKind::Unary { operand, .. } = &from_end.kind else {
                    unreachable!()
                };
                let (b, n) = (self.ex(base, cx)?, self.ex(operand, cx)?);
                Ok(if *safe {
                    format!("tryIndexFromEnd({b}, {n})")
                } else if is_safe_chain(base) {
                    try_get(
                        &b,
                        &format!("createObject('value', {n}, 'fromEnd', true())"),
                        false,
                    )
                } else {
                    format!("indexFromEnd({b}, {n})")
                })
            }
            ExprKind::Index { base, index, safe } => {
                if *safe || is_safe_chain(base) {
                    if self.symbol_ref(base, cx)?.is_some() {
                        return unsupported("The safe-dereference operator on a resource", e.span);
                    }
                    return Ok(try_get(&self.ex(base, cx)?, &self.ex(index, cx)?, *safe));
                }
                if let Some(key) = plain_string(index)
                    && self.symbol_ref(base, cx)?.is_some()
                {
                    return self.member(base, key, e.span, cx);
                }
                if let Some((sym, idx)) = self.symbol_ref(e, cx)? {
                    return self.resource_value(sym, idx.as_deref(), e.span);
                }
                match plain_string(index) {
                    Some(key) if is_identifier(key) => Ok(format!("{}.{key}", self.ex(base, cx)?)),
                    _ => Ok(format!("{}[{}]", self.ex(base, cx)?, self.ex(index, cx)?)),
                }
            }
            ExprKind::ChildAccess { .. } => match self.symbol_ref(e, cx)? {
                Some((sym, idx)) => self.resource_value(sym, idx.as_deref(), e.span),
                None => unsupported("This \"::\" access", e.span),
            },
            ExprKind::NonNull(x) => self.ex(x, cx),
            ExprKind::Paren(x) => self.ex(x, cx),
            ExprKind::Unary { op, operand } => match op {
                UnaryOp::Not => Ok(format!("not({})", self.ex(operand, cx)?)),
                UnaryOp::FromEnd => unsupported("\"^\" outside an index", e.span),
                UnaryOp::Minus => match &operand.kind {
                    ExprKind::Int(s) => Ok(int_value(&format!("-{s}"), e.span)?.to_string()),
                    _ => unsupported("Unary minus on a non-literal", e.span),
                },
            },
            ExprKind::Binary { op, left, right } => {
                let l = self.ex(left, cx)?;
                let r = self.ex(right, cx)?;
                Ok(match op {
                    BinaryOp::Coalesce => format!("coalesce({l}, {r})"),
                    BinaryOp::Or => format!("or({l}, {r})"),
                    BinaryOp::And => format!("and({l}, {r})"),
                    BinaryOp::Eq => format!("equals({l}, {r})"),
                    BinaryOp::NotEq => format!("not(equals({l}, {r}))"),
                    BinaryOp::EqInsensitive => format!("equals(toLower({l}), toLower({r}))"),
                    BinaryOp::NotEqInsensitive => {
                        format!("not(equals(toLower({l}), toLower({r})))")
                    }
                    BinaryOp::Lt => format!("less({l}, {r})"),
                    BinaryOp::Le => format!("lessOrEquals({l}, {r})"),
                    BinaryOp::Gt => format!("greater({l}, {r})"),
                    BinaryOp::Ge => format!("greaterOrEquals({l}, {r})"),
                    BinaryOp::Add => format!("add({l}, {r})"),
                    BinaryOp::Sub => format!("sub({l}, {r})"),
                    BinaryOp::Mul => format!("mul({l}, {r})"),
                    BinaryOp::Div => format!("div({l}, {r})"),
                    BinaryOp::Mod => format!("mod({l}, {r})"),
                })
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => Ok(format!(
                "if({}, {}, {})",
                self.ex(cond, cx)?,
                self.ex(then, cx)?,
                self.ex(otherwise, cx)?
            )),
            ExprKind::Lambda { params, body } => {
                let mut lcx = cx.clone();
                for p in params {
                    lcx.locals
                        .push((p.clone(), format!("lambdaVariables({})", quote(p))));
                }
                let names = params.iter().map(|p| quote(p)).collect::<Vec<_>>();
                Ok(format!(
                    "lambda({}, {})",
                    names.join(", "),
                    self.ex(body, &lcx)?
                ))
            }
            ExprKind::For { .. } => unsupported("A loop in this position", e.span),
            ExprKind::If { .. } => unsupported("A condition in this position", e.span),
        }
    }

    fn ident(&self, n: &str, span: Span, cx: &Cx) -> R<String> {
        if let Some(t) = cx.get(n) {
            return Ok(t.to_string());
        }
        if self.params.contains_key(n) {
            return Ok(format!("parameters({})", quote(n)));
        }
        if self.arm_variables.declares(n) {
            return Ok(format!("variables({})", quote(n)));
        }
        if let Some(d) = self.vars.get(n) {
            let DeclKind::Var { value, .. } = &d.kind else {
                unreachable!()
            };
            if self.is_runtime_var(n) {
                if matches!(value.kind, ExprKind::For { .. }) {
                    return unsupported("A loop variable that reads deployment-time values", span);
                }
                self.spend_inline_budget(n, span)?;
                let text = self.ex(value, &Cx::default())?;
                if text.len() > MAX_EXPRESSION_LEN {
                    return Err(Diagnostic::error(
                        "BCP-SIZE",
                        format!("Inlining the variable \"{n}\" makes the expression too large."),
                        span,
                    ));
                }
                return Ok(text);
            }
            // Dependencies flow through variables.
            self.record_var_deps(n, value)?;
            return Ok(format!("variables({})", quote(n)));
        }
        if let Some(sym) = self.symbols.get(n).copied() {
            return self.resource_value(sym, None, span);
        }
        Err(Diagnostic::error(
            "BCP057",
            format!("The name \"{n}\" does not exist in the current context."),
            span,
        ))
    }

    /// A resource used as a whole value reads its full runtime state.
    fn resource_value(&self, sym: Sym, idx: Option<&str>, span: Span) -> R<String> {
        let Sym::Res(i) = sym else {
            return unsupported("Using a module as a value", span);
        };
        if self.resources[i].looped.is_some() && idx.is_none() {
            return unsupported(
                "A resource collection used as a value (needs languageVersion 2.0)",
                span,
            );
        }
        self.record_dep(sym, idx)?;
        if self.symbolic.get() {
            return self.symbolic_full(i, idx);
        }
        Ok(format!(
            "reference({}, {}, 'full')",
            self.resource_id(i, idx)?,
            quote(&self.resources[i].api_version)
        ))
    }

    fn record_var_deps(&self, name: &str, value: &Expr) -> R<()> {
        if self.suppress_deps.get() > 0 {
            return Ok(());
        }
        if let Some(cached) = self.var_deps.borrow().get(name) {
            self.deps.borrow_mut().extend(cached.iter().cloned());
            return Ok(());
        }
        let saved = std::mem::take(&mut *self.deps.borrow_mut());
        let result = self.emit_var_for_deps(value);
        let mut found = std::mem::replace(&mut *self.deps.borrow_mut(), saved);
        result?;
        let mut seen = HashSet::new();
        found.retain(|d| seen.insert(d.entry.clone()));
        self.deps.borrow_mut().extend(found.iter().cloned());
        self.var_deps.borrow_mut().insert(name.to_string(), found);
        Ok(())
    }

    fn emit_var_for_deps(&self, value: &Expr) -> R<()> {
        if let ExprKind::For {
            item,
            index,
            iterable,
            body,
        } = &value.kind
        {
            let cx = self.loop_cx(item, index, iterable, "copyIndex()")?;
            self.val(body, &cx)?;
        } else {
            self.val(value, &Cx::default())?;
        }
        Ok(())
    }

    fn member(&self, base: &Expr, name: &str, span: Span, cx: &Cx) -> R<String> {
        if let Some((sym, idx)) = self.symbol_ref(base, cx)? {
            if matches!(name, "id" | "name" | "type" | "apiVersion") {
                self.record_weak_dep(sym, idx.as_deref())?;
            } else {
                self.record_dep(sym, idx.as_deref())?;
            }
            return match sym {
                Sym::Res(i) => {
                    let r = &self.resources[i];
                    match name {
                        "id" => self.resource_id(i, idx.as_deref()),
                        "name" => self.with_deps_suppressed(|| {
                            self.ex(r.name_expr, &self.res_cx(r, idx.as_deref())?)
                        }),
                        "type" => Ok(quote(&r.full_type)),
                        "apiVersion" => Ok(quote(&r.api_version)),
                        "properties" if self.symbolic.get() => {
                            Ok(self.symbolic_properties(sym, idx.as_deref()))
                        }
                        other if self.symbolic.get() => Ok(format!(
                            "{}.{other}",
                            self.symbolic_full(i, idx.as_deref())?
                        )),
                        "properties" => Ok(format!(
                            "reference({}, {})",
                            self.resource_id(i, idx.as_deref())?,
                            quote(&r.api_version)
                        )),
                        other => Ok(format!(
                            "reference({}, {}, 'full').{other}",
                            self.resource_id(i, idx.as_deref())?,
                            quote(&r.api_version)
                        )),
                    }
                }
                Sym::Mod(i) => match name {
                    "name" => {
                        let m = &self.modules[i];
                        let mcx = match (&m.looped, idx.as_deref()) {
                            (Some(l), Some(x)) => self.loop_cx(&l.item, &l.index, l.iterable, x)?,
                            _ => Cx::default(),
                        };
                        self.with_deps_suppressed(|| self.ex(&m.name_expr, &mcx))
                    }
                    "outputs" if self.symbolic.get() => Ok(format!(
                        "{}.outputs",
                        self.symbolic_properties(sym, idx.as_deref())
                    )),
                    "outputs" => Ok(format!(
                        "reference({}, {}).outputs",
                        self.module_id(i, idx.as_deref())?,
                        quote(DEPLOYMENTS_API)
                    )),
                    _ => unsupported(format!("The module property \"{name}\""), span),
                },
            };
        }
        // `module.outputs.x` reads the output's value.
        if let ExprKind::Member {
            base: inner,
            name: outputs,
            ..
        } = &base.kind
            && outputs == "outputs"
            && let Some((Sym::Mod(m), _)) = self.symbol_ref(inner, cx)?
        {
            let declared = &self.modules[m].template["outputs"];
            if declared.get(name).is_none() {
                return Err(Diagnostic::error(
                    "BCP053",
                    format!("The type \"outputs\" does not contain property \"{name}\"."),
                    span,
                ));
            }
            return Ok(format!("{}.{name}.value", self.ex(base, cx)?));
        }
        Ok(format!("{}.{name}", self.ex(base, cx)?))
    }

    /// `nameof(x)` refers to `x`: the official compiler makes a resource or module
    /// named there a dependency although only its name is read.
    fn record_nameof_dep(&self, args: &[Expr], cx: &Cx) -> R<()> {
        let mut root = args.first();
        while let Some(e) = root {
            match &e.kind {
                ExprKind::Member { base, .. }
                | ExprKind::Index { base, .. }
                | ExprKind::ChildAccess { base, .. } => root = Some(base),
                ExprKind::Ident(_) => break,
                _ => return Ok(()),
            }
        }
        if let Some(e) = root
            && let Some((sym, idx)) = self.symbol_ref(e, cx)?
        {
            self.record_dep(sym, idx.as_deref())?;
        }
        Ok(())
    }

    /// True when `e` is `module.outputs`.
    fn is_module_outputs(&self, e: &Expr, cx: &Cx) -> R<bool> {
        Ok(match &e.kind {
            ExprKind::Member {
                base,
                name,
                safe: false,
            } if name == "outputs" => matches!(self.symbol_ref(base, cx)?, Some((Sym::Mod(_), _))),
            _ => false,
        })
    }

    /// `res.listKeys(...)`: the `list*` action on the resource's id and API version.
    fn list_call(
        &self,
        i: usize,
        idx: Option<&str>,
        name: &str,
        args: &[Expr],
        cx: &Cx,
    ) -> R<String> {
        self.record_weak_dep(Sym::Res(i), idx)?;
        let r = &self.resources[i];
        let target = if self.symbolic.get() {
            self.symbolic_ref(Sym::Res(i), idx)
        } else {
            self.resource_id(i, idx)?
        };
        let mut parts = vec![target, quote(&r.api_version)];
        for a in args {
            parts.push(self.ex(a, cx)?);
        }
        Ok(format!("{name}({})", parts.join(", ")))
    }

    fn call(
        &self,
        namespace: Option<&str>,
        name: &str,
        args: &[Expr],
        span: Span,
        cx: &Cx,
    ) -> R<String> {
        if let Some(ns) = namespace
            && ns != "az"
            && ns != "sys"
        {
            if let Some(Sym::Res(i)) = self.symbols.get(ns).copied()
                && cx.get(ns).is_none()
                && name.starts_with("list")
            {
                return self.list_call(i, None, name, args, cx);
            }
            if name == "getSecret" && matches!(self.symbols.get(ns), Some(Sym::Res(_))) {
                return Err(getsecret_misplaced(span));
            }
            return unsupported(format!("The function call \"{ns}.{name}()\""), span);
        }
        match name {
            "any" if args.len() == 1 => return self.ex(&args[0], cx),
            "nameof" => {
                self.record_nameof_dep(args, cx)?;
                return Ok(quote(&nameof(args, span)?));
            }
            n if LOAD_FUNCTIONS.contains(&n) => {
                return match self.loaded.get(&span.start) {
                    None if cx.in_function => Ok(value_to_expr(&escape_loaded(
                        self.load_file(name, args, span)?,
                    ))),
                    Some(k) => Ok(format!("variables('$fxv#{k}')")),
                    None if self.whole_loaded.contains_key(&span.start) => {
                        Ok(value_to_expr(&self.whole_loaded[&span.start]))
                    }
                    None => unsupported(format!("The function \"{name}\" here"), span),
                };
            }
            _ => {}
        }
        let mut parts = Vec::with_capacity(args.len());
        for a in args {
            parts.push(self.ex(a, cx)?);
        }
        if namespace.is_none() && self.is_user_function(name) {
            return Ok(format!(
                "{}.{name}({})",
                user_functions::NAMESPACE,
                parts.join(", ")
            ));
        }
        Ok(format!("{name}({})", parts.join(", ")))
    }

    fn resource(&self, i: usize) -> R<Value> {
        let r = &self.resources[i];
        self.check_decorators(&r.decl.decorators, &["description", "batchSize"])?;
        let mut out = Map::new();
        let symbol = r.symbol.clone();
        let body = r.body;
        let deps = self.collect_deps(
            || {
                let cx = self.res_cx(r, None)?;
                // Only a 2.0 template emits existing resources.
                if r.existing {
                    out.insert("existing".into(), json!(true));
                }
                out.insert("type".into(), json!(r.full_type));
                out.insert("apiVersion".into(), json!(r.api_version));
                // The declaration depends on what its own name refers to.
                let own_name = self.val(r.name_expr, &cx)?;
                let segs = self.with_deps_suppressed(|| self.name_segments(i, None))?;
                let name = if r.parent.is_some() {
                    let holes = (0..segs.len())
                        .map(|k| format!("{{{k}}}"))
                        .collect::<Vec<_>>()
                        .join("/");
                    expr_value(format!("format({}, {})", quote(&holes), segs.join(", ")))
                } else {
                    own_name
                };
                out.insert("name".into(), name);
                // Children of an extension resource share its scope.
                let mut root = i;
                while let Some(p) = self.resources[root].parent {
                    root = p;
                }
                let (scope_expr, scope_cx) = if root == i {
                    (r.scope_expr, cx.clone())
                } else {
                    (self.resources[root].scope_expr, Cx::default())
                };
                if let Some(s) = scope_expr {
                    let scope = if root == i {
                        self.scope_ref(Some(s), &scope_cx)?
                    } else {
                        self.with_deps_suppressed(|| self.scope_ref(Some(s), &scope_cx))?
                    };
                    match scope {
                        ScopeRef::Resource(id) => {
                            out.insert("scope".into(), expr_value(id));
                        }
                        ScopeRef::Tenant => {
                            out.insert("scope".into(), json!("/"));
                        }
                        ScopeRef::Default => {}
                        // An existing resource of another group or subscription.
                        ScopeRef::ResourceGroup { sub, rg } if r.existing => {
                            if let Some(sub) = sub {
                                out.insert("subscriptionId".into(), expr_value_or_literal(&sub));
                            }
                            out.insert("resourceGroup".into(), expr_value_or_literal(&rg));
                        }
                        ScopeRef::Subscription(sub) if r.existing => {
                            let sub = sub.unwrap_or_else(|| "subscription().subscriptionId".into());
                            out.insert("subscriptionId".into(), expr_value_or_literal(&sub));
                        }
                        _ => return unsupported("Deploying a resource to another scope", s.span),
                    }
                }
                if let Some(c) = self.condition(i, &cx)? {
                    out.insert("condition".into(), c);
                }
                if let Some(l) = &r.looped {
                    let mut copy = Map::new();
                    copy.insert("name".into(), json!(r.symbol));
                    copy.insert(
                        "count".into(),
                        expr_value(format!("length({})", self.ex(l.iterable, &Cx::default())?)),
                    );
                    if let Some(args) = decorator(&r.decl.decorators, "batchSize") {
                        copy.insert("mode".into(), json!("serial"));
                        if let Some(a) = args.first() {
                            copy.insert("batchSize".into(), self.val(a, &Cx::default())?);
                        }
                    }
                    out.insert("copy".into(), Value::Object(copy));
                }
                let Value::Object(props) =
                    self.object_val(body, &cx, &["name", "parent", "scope", "dependsOn"])?
                else {
                    unreachable!()
                };
                out.extend(props);
                if let Some(p) = r.parent {
                    let parent_idx = r.parent_index.map(|x| self.ex(x, &cx)).transpose()?;
                    self.record_weak_dep(Sym::Res(p), parent_idx.as_deref())?;
                }
                if let Some(d) = property(body, "dependsOn") {
                    self.explicit_deps(d, &cx)?;
                }
                self.description_metadata(&r.decl.decorators, &mut out)?;
                Ok(())
            },
            &symbol,
        )?;
        if !deps.is_empty() {
            out.insert("dependsOn".into(), Value::Array(deps));
        }
        Ok(Value::Object(out))
    }

    /// The resource's own condition AND-ed with its ancestors' conditions.
    fn condition(&self, i: usize, cx: &Cx) -> R<Option<Value>> {
        let mut conds = Vec::new();
        let mut cur = Some(i);
        while let Some(c) = cur {
            let r = &self.resources[c];
            if let Some(e) = r.cond {
                conds.push(if c == i {
                    self.val(e, cx)?
                } else {
                    self.val(e, &Cx::default())?
                });
            }
            // Only syntactically nested children inherit their parent's condition.
            cur = if r.depth > 0 { r.parent } else { None };
        }
        Ok(match conds.len() {
            0 => None,
            1 => conds.pop(),
            _ => {
                // Outermost ancestor first, each level AND-ed onto the one above.
                conds.reverse();
                let mut it = conds.iter().map(value_to_expr);
                let first = it.next().unwrap_or_default();
                Some(expr_value(
                    it.fold(first, |acc, c| format!("and({acc}, {c})")),
                ))
            }
        })
    }

    fn explicit_deps(&self, d: &Expr, cx: &Cx) -> R<()> {
        let ExprKind::Array(items) = &d.kind else {
            return unsupported("A \"dependsOn\" that is not an array literal", d.span);
        };
        for item in items {
            let ArrayItem::Value(x) = item else {
                return unsupported("The spread operator in \"dependsOn\"", d.span);
            };
            match self.symbol_ref(x, cx)? {
                Some((sym, idx)) => self.record_dep(sym, idx.as_deref())?,
                None => {
                    return Err(Diagnostic::error(
                        "BCP034",
                        "The enclosing array expected an item of type \"module[] | (resource | module) | resource[]\".",
                        x.span,
                    ));
                }
            }
        }
        Ok(())
    }

    /// The module's parameters must exist in its template, required ones must be
    /// given, and the module must be deployable at the scope it is given.
    fn check_module_params(&self, m: &Module) -> R<()> {
        let declared = m.template["parameters"].as_object();
        let symbol = m
            .decl
            .name
            .as_ref()
            .map(|(n, s)| (n.as_str(), *s))
            .unwrap_or(("", m.decl.keyword_span));
        let mut given = HashSet::new();
        if let Some(items) = property(m.body, "params").and_then(object_items) {
            for item in items {
                if let ObjectItem::Property { key, .. } = item
                    && let Some(k) = &key.name
                {
                    if !declared.is_some_and(|d| d.contains_key(k)) {
                        return Err(Diagnostic::error(
                            "BCP037",
                            format!(
                                "The property \"{k}\" is not allowed on objects of type \"params\". No other properties are allowed."
                            ),
                            key.span,
                        ));
                    }
                    given.insert(k.as_str());
                }
            }
        }
        let missing: Vec<&str> = declared
            .into_iter()
            .flatten()
            .filter(|(k, v)| v.get("defaultValue").is_none() && !given.contains(k.as_str()))
            .map(|(k, _)| k.as_str())
            .collect();
        if !missing.is_empty() {
            let span = property(m.body, "params")
                .map(|p| p.span)
                .unwrap_or(symbol.1);
            return Err(Diagnostic::error(
                "BCP035",
                format!(
                    "The specified \"params\" object of module \"{}\" is missing the following required properties: {}.",
                    symbol.0,
                    missing
                        .iter()
                        .map(|k| format!("\"{k}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                span,
            ));
        }
        let module_scope = match m.template["$schema"].as_str().unwrap_or("") {
            s if s.contains("subscriptionDeploymentTemplate") => TargetScope::Subscription,
            s if s.contains("managementGroupDeploymentTemplate") => TargetScope::ManagementGroup,
            s if s.contains("tenantDeploymentTemplate") => TargetScope::Tenant,
            _ => TargetScope::ResourceGroup,
        };
        let cx = match &m.looped {
            Some(l) => self.loop_cx(&l.item, &l.index, l.iterable, "copyIndex()")?,
            None => Cx::default(),
        };
        let given_scope = match self.with_deps_suppressed(|| self.scope_ref(m.scope_expr, &cx))? {
            ScopeRef::Default => self.target,
            ScopeRef::ResourceGroup { .. } => TargetScope::ResourceGroup,
            ScopeRef::Subscription(_) => TargetScope::Subscription,
            ScopeRef::ManagementGroup(_) => TargetScope::ManagementGroup,
            ScopeRef::Tenant => TargetScope::Tenant,
            ScopeRef::Resource(_) => {
                return unsupported("A module scoped to a resource", m.decl.keyword_span);
            }
        };
        if given_scope != module_scope {
            return Err(Diagnostic::error(
                "BCP134",
                format!(
                    "Scope {given_scope:?} is not valid for this module. Permitted scopes: {module_scope:?}. Set \"scope\" or change the module's targetScope."
                ),
                m.scope_expr.map(|s| s.span).unwrap_or(symbol.1),
            ));
        }
        Ok(())
    }

    fn module(&self, i: usize) -> R<Value> {
        let m = &self.modules[i];
        self.check_decorators(&m.decl.decorators, &["description", "batchSize"])?;
        let symbol = m.decl.name.clone().unwrap_or_default().0;
        let mut out = Map::new();
        let deps = self.collect_deps(
            || {
                let cx = match &m.looped {
                    Some(l) => self.loop_cx(&l.item, &l.index, l.iterable, "copyIndex()")?,
                    None => Cx::default(),
                };
                out.insert("type".into(), json!(DEPLOYMENTS_TYPE));
                out.insert("apiVersion".into(), json!(DEPLOYMENTS_API));
                out.insert("name".into(), self.val(&m.name_expr, &cx)?);
                // Deployments above resource-group level need a location for their metadata.
                let location = if self.target == TargetScope::ResourceGroup {
                    json!("[resourceGroup().location]")
                } else {
                    json!("[deployment().location]")
                };
                match self.scope_ref(m.scope_expr, &cx)? {
                    ScopeRef::Default => {
                        if self.target != TargetScope::ResourceGroup {
                            out.insert("location".into(), location);
                        }
                    }
                    ScopeRef::ManagementGroup(Some(name)) => {
                        out.insert(
                            "scope".into(),
                            expr_value(format!(
                                "format('Microsoft.Management/managementGroups/{{0}}', {name})"
                            )),
                        );
                        out.insert("location".into(), location);
                    }
                    ScopeRef::ManagementGroup(None) => {
                        return unsupported(
                            "A module scoped to the current management group from here",
                            m.decl.keyword_span,
                        );
                    }
                    ScopeRef::ResourceGroup { sub, rg } => {
                        if let Some(s) = sub {
                            out.insert("subscriptionId".into(), expr_value_or_literal(&s));
                        }
                        out.insert("resourceGroup".into(), expr_value_or_literal(&rg));
                    }
                    ScopeRef::Subscription(s) => {
                        let s = s.unwrap_or_else(|| "subscription().subscriptionId".into());
                        out.insert("subscriptionId".into(), expr_value_or_literal(&s));
                        out.insert("location".into(), location);
                    }
                    ScopeRef::Tenant => {
                        out.insert("scope".into(), json!("/"));
                        out.insert("location".into(), location);
                    }
                    ScopeRef::Resource(_) => {
                        return unsupported("A module scoped to a resource", m.decl.keyword_span);
                    }
                }
                if let Some(c) = m.cond {
                    out.insert("condition".into(), self.val(c, &cx)?);
                }
                if let Some(l) = &m.looped {
                    let mut copy = Map::new();
                    copy.insert("name".into(), json!(symbol));
                    copy.insert(
                        "count".into(),
                        expr_value(format!("length({})", self.ex(l.iterable, &Cx::default())?)),
                    );
                    if let Some(args) = decorator(&m.decl.decorators, "batchSize") {
                        copy.insert("mode".into(), json!("serial"));
                        if let Some(a) = args.first() {
                            copy.insert("batchSize".into(), self.val(a, &Cx::default())?);
                        }
                    }
                    out.insert("copy".into(), Value::Object(copy));
                }
                for item in m.body {
                    if let ObjectItem::NestedResource(d) = item {
                        return Err(nested_resource_misplaced(d.keyword_span));
                    }
                    if let ObjectItem::Property { key, .. } = item {
                        match key.name.as_deref() {
                            Some("name" | "params" | "scope" | "dependsOn") => {}
                            Some(other) => {
                                return unsupported(
                                    format!("The module property \"{other}\""),
                                    key.span,
                                );
                            }
                            None => {
                                return unsupported("An interpolated module property", key.span);
                            }
                        }
                    }
                }
                self.check_module_params(m)?;
                let mut params = None;
                if let Some(p) = property(m.body, "params") {
                    let params = params.insert(Map::new());
                    let Some(items) = object_items(p) else {
                        return unsupported(
                            "Module \"params\" that are not an object literal",
                            p.span,
                        );
                    };
                    for item in items {
                        let ObjectItem::Property { key, value, .. } = item else {
                            return unsupported("This module parameter entry", p.span);
                        };
                        let Some(k) = &key.name else {
                            return unsupported("An interpolated module parameter name", key.span);
                        };
                        params.insert(k.clone(), self.module_param(value, &cx)?);
                    }
                }
                let mut props = Map::new();
                props.insert(
                    "expressionEvaluationOptions".into(),
                    json!({"scope": "inner"}),
                );
                props.insert("mode".into(), json!("Incremental"));
                if let Some(params) = params {
                    props.insert("parameters".into(), Value::Object(params));
                }
                props.insert("template".into(), m.template.clone());
                out.insert("properties".into(), Value::Object(props));
                if let Some(d) = property(m.body, "dependsOn") {
                    self.explicit_deps(d, &cx)?;
                }
                self.description_metadata(&m.decl.decorators, &mut out)?;
                Ok(())
            },
            &symbol,
        )?;
        if !deps.is_empty() {
            out.insert("dependsOn".into(), Value::Array(deps));
        }
        Ok(Value::Object(out))
    }
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

/// True when `e` ends in a safe access (`a.?b`, `a[?i]`, and accesses after one):
/// ARM's `tryGet` takes the whole remaining path.
fn is_safe_chain(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Member { base, safe, .. } | ExprKind::Index { base, safe, .. } => {
            *safe || is_safe_chain(base)
        }
        _ => false,
    }
}

/// `tryGet(base, key)` for a safe access; a further access on a safe chain
/// extends the `tryGet` (or `tryIndexFromEnd`) that `base` already is.
fn try_get(base: &str, key: &str, starts_chain: bool) -> String {
    let extends =
        !starts_chain && (base.starts_with("tryGet(") || base.starts_with("tryIndexFromEnd("));
    match base.strip_suffix(')') {
        Some(open) if extends => format!("{open}, {key})"),
        _ => format!("tryGet({base}, {key})"),
    }
}

/// `nameof(x)`: the last name in a symbol or property access, known at compile time.
fn nameof(args: &[Expr], span: Span) -> R<String> {
    let [arg] = args else {
        return Err(Diagnostic::error(
            "BCP071",
            format!("Expected 1 argument, but got {}.", args.len()),
            span,
        ));
    };
    let name = match &arg.kind {
        ExprKind::Ident(n) => Some(n.clone()),
        ExprKind::Member { name, .. } | ExprKind::ChildAccess { name, .. } => Some(name.clone()),
        ExprKind::Index { index, .. } => plain_string(index).map(str::to_string),
        _ => None,
    };
    name.ok_or_else(|| {
        Diagnostic::error(
            "BCP377",
            "The argument of \"nameof\" must be a symbol or a property access.",
            arg.span,
        )
    })
}

/// A literal value must match the declared primitive type (non-literals are
/// checked by ARM at deployment).
fn check_literal_type(value: &Expr, arm_type: &str) -> R<()> {
    let actual = match &value.kind {
        ExprKind::Str { .. } => "string",
        ExprKind::Int(_) => "int",
        ExprKind::Unary {
            op: UnaryOp::Minus,
            operand,
        } if matches!(operand.kind, ExprKind::Int(_)) => "int",
        ExprKind::Bool(_) => "bool",
        ExprKind::Array(_) => "array",
        ExprKind::Object(_) => "object",
        _ => return Ok(()),
    };
    let expected = match arm_type {
        "securestring" => "string",
        "secureObject" => "object",
        other => other,
    };
    if actual == expected {
        return Ok(());
    }
    Err(Diagnostic::error(
        "BCP033",
        format!(
            "Expected a value of type \"{expected}\" but the provided value is of type \"{actual}\"."
        ),
        value.span,
    ))
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

/// Loaded text is data, never an ARM expression.
fn escape_loaded(v: Value) -> Value {
    match v {
        Value::String(s) => literal_string(&s),
        other => other,
    }
}

const LOAD_FUNCTIONS: &[&str] = &[
    "loadTextContent",
    "loadFileAsBase64",
    "loadJsonContent",
    "loadYamlContent",
    "loadDirectoryFileInfo",
];

/// A variable whose whole value is a text or base64 file load is emitted as the
/// literal content instead of a hoisted `$fxv#N` variable.
fn whole_file_load(value: &Expr) -> Option<(&str, &[Expr])> {
    match &value.kind {
        ExprKind::Call {
            namespace,
            name,
            args,
        } if matches!(name.as_str(), "loadTextContent" | "loadFileAsBase64")
            && namespace.as_deref().is_none_or(|n| n == "sys") =>
        {
            Some((name.as_str(), args.as_slice()))
        }
        _ => None,
    }
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

/// Decodes a loaded text file the way the official compiler does: a byte-order
/// mark wins over the requested encoding; without one, `encoding` decides
/// (`us-ascii` turns bytes above 127 into `?`). `None` for an unknown encoding.
fn decode_text(bytes: &[u8], encoding: &str) -> Option<String> {
    let utf16 = |b: &[u8], big: bool| {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| {
                if big {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    let known = ["utf-8", "utf-16", "utf-16be", "us-ascii", "iso-8859-1"];
    let encoding = encoding.to_ascii_lowercase();
    if !known.contains(&encoding.as_str()) {
        return None;
    }
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return Some(String::from_utf8_lossy(rest).into_owned());
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return Some(utf16(rest, false));
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return Some(utf16(rest, true));
    }
    Some(match encoding.as_str() {
        "utf-16" => utf16(bytes, false),
        "utf-16be" => utf16(bytes, true),
        "us-ascii" => bytes
            .iter()
            .map(|&b| if b < 0x80 { b as char } else { '?' })
            .collect(),
        "iso-8859-1" => bytes.iter().map(|&b| b as char).collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaded_text_honours_byte_order_marks_then_the_requested_encoding() {
        assert_eq!(
            decode_text(b"\xEF\xBB\xBFh\xC3\xA9", "us-ascii").unwrap(),
            "h\u{e9}"
        );
        assert_eq!(decode_text(b"\xFF\xFEh\x00", "utf-8").unwrap(), "h");
        assert_eq!(decode_text(b"\x00h", "utf-16BE").unwrap(), "h");
        assert_eq!(decode_text(b"h\xE9", "iso-8859-1").unwrap(), "h\u{e9}");
        assert_eq!(decode_text(b"h\xE9", "us-ascii").unwrap(), "h?");
        assert_eq!(decode_text(b"h", "windows-1250"), None);
    }

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
