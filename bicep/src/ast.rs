//! Syntax tree of a Bicep file. Every node carries its source span.

use crate::diag::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `pieces.len() == holes.len() + 1`; a plain string has one piece.
    Str {
        pieces: Vec<String>,
        holes: Vec<Expr>,
    },
    Int(String),
    Bool(bool),
    Null,
    Ident(String),
    Array(Vec<ArrayItem>),
    Object(Vec<ObjectItem>),
    Call {
        namespace: Option<String>,
        name: String,
        args: Vec<Expr>,
    },
    /// `base.name(args)` on something other than a plain symbol, e.g. `kvs[i].getSecret(...)`.
    MethodCall {
        base: Box<Expr>,
        name: String,
        args: Vec<Expr>,
    },
    /// `base.name` (`base.?name` when `safe`).
    Member {
        base: Box<Expr>,
        name: String,
        safe: bool,
    },
    /// `base[index]` (`base[?index]` when `safe`).
    Index {
        base: Box<Expr>,
        index: Box<Expr>,
        safe: bool,
    },
    /// `parent::child`.
    ChildAccess {
        base: Box<Expr>,
        name: String,
    },
    /// `expr!`.
    NonNull(Box<Expr>),
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Paren(Box<Expr>),
    For {
        item: Option<String>,
        index: Option<String>,
        iterable: Box<Expr>,
        body: Box<Expr>,
    },
    /// `if (cond) body` as a resource or module value.
    If {
        cond: Box<Expr>,
        body: Box<Expr>,
    },
    Lambda {
        params: Vec<String>,
        body: Box<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Minus,
    /// `^n` as an index: counted from the end.
    FromEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Coalesce,
    Or,
    And,
    Eq,
    NotEq,
    EqInsensitive,
    NotEqInsensitive,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ArrayItem {
    Value(Expr),
    Spread(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ObjectItem {
    Property {
        decorators: Vec<Expr>,
        key: ObjectKey,
        value: Expr,
    },
    Spread(Expr),
    /// A resource declared inside another resource's body.
    NestedResource(Box<Decl>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectKey {
    /// The key after unescaping; `None` for an interpolated key.
    pub name: Option<String>,
    /// The key expression when it is an interpolated string.
    pub interpolated: Option<Box<Expr>>,
    pub span: Span,
}

/// A type expression, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TypeKind {
    /// `string`, `int`, a user type name, or a dotted name like `sys.string`.
    Name(String),
    Literal(Expr),
    Array(Box<TypeExpr>),
    Nullable(Box<TypeExpr>),
    Union(Vec<TypeExpr>),
    Object(Vec<ObjectTypeProperty>),
    /// Items with their decorators.
    Tuple(Vec<ObjectTypeProperty>),
    /// `resource<'type@version'>` and other parameterized types.
    Parameterized(String, Vec<Expr>),
    /// `T.prop`, `T.*`, `T[*]`, `T[0]` on something other than a plain name (dotted
    /// names stay one [`TypeKind::Name`]).
    Access(Box<TypeExpr>, TypeAccess),
    /// `T!`.
    NonNull(Box<TypeExpr>),
}

/// One step into a type.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeAccess {
    Property(String),
    /// `.*`: the additional properties.
    AdditionalProperties,
    /// `[*]`: the items of an array.
    Items,
    /// `[n]`: one item of a tuple.
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectTypeProperty {
    pub decorators: Vec<Expr>,
    /// `None` for the `*` additional-properties entry.
    pub name: Option<String>,
    pub ty: TypeExpr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decl {
    pub decorators: Vec<Expr>,
    pub kind: DeclKind,
    /// The declared symbol's name and its span, where the declaration has one.
    pub name: Option<(String, Span)>,
    pub span: Span,
    /// Span of the leading keyword.
    pub keyword_span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeclKind {
    TargetScope(Expr),
    Metadata(Expr),
    Param {
        ty: Option<TypeExpr>,
        default: Option<Expr>,
    },
    Var {
        ty: Option<TypeExpr>,
        value: Expr,
    },
    Resource {
        type_string: Expr,
        existing: bool,
        value: Expr,
    },
    Module {
        path: Expr,
        value: Expr,
    },
    Output {
        ty: TypeExpr,
        value: Expr,
    },
    Type(TypeExpr),
    /// `func name(arg type, ...) outputType => body`.
    Func {
        params: Vec<(String, TypeExpr)>,
        output: TypeExpr,
        body: Expr,
    },
    /// `import {a, b as c} from 'path'` or `import * as ns from 'path'`; `None` for
    /// forms this compiler only recognises.
    Import(Option<ImportSpec>),
    /// `extension ...`; `None` for the legacy `provider` forms this compiler only recognises.
    Extension(Option<ExtensionSpec>),
    /// `using 'path'` (`None` for forms this compiler only recognises).
    Using(Option<Expr>),
    Test,
    Assert(Expr),
}

impl DeclKind {
    /// The keyword that introduces the declaration.
    pub fn keyword(&self) -> &'static str {
        match self {
            DeclKind::TargetScope(_) => "targetScope",
            DeclKind::Metadata(_) => "metadata",
            DeclKind::Param { .. } => "param",
            DeclKind::Var { .. } => "var",
            DeclKind::Resource { .. } => "resource",
            DeclKind::Module { .. } => "module",
            DeclKind::Output { .. } => "output",
            DeclKind::Type(_) => "type",
            DeclKind::Func { .. } => "func",
            DeclKind::Import(_) => "import",
            DeclKind::Extension(_) => "extension",
            DeclKind::Using(_) => "using",
            DeclKind::Test => "test",
            DeclKind::Assert(_) => "assert",
        }
    }
}

/// `extension <name | 'reference'> [with {config}] [as alias]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionSpec {
    pub source: ExtensionSource,
    pub source_span: Span,
    /// The `with` object: default values of the extension's configuration.
    pub config: Option<Expr>,
    pub alias: Option<(String, Span)>,
}

/// Where an extension comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtensionSource {
    /// A built-in extension named by identifier (`az`, `kubernetes`).
    Builtin(String),
    /// A registry reference as written (`br:registry/repo:tag`).
    Reference(String),
}

/// What an `import` declaration brings from another file.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSpec {
    /// `(name in the source file, local alias)`.
    pub items: Vec<(String, Option<String>)>,
    /// `* as ns`.
    pub wildcard: Option<String>,
    /// The path as written.
    pub path: String,
}

/// The arguments of decorator `@name(...)` (or `@sys.name(...)`) among `decorators`.
pub fn decorator_args<'e>(decorators: &'e [Expr], name: &str) -> Option<&'e [Expr]> {
    decorators.iter().find_map(|d| match &d.kind {
        ExprKind::Call {
            namespace,
            name: n,
            args,
        } if n == name && namespace.as_deref().is_none_or(|ns| ns == "sys") => {
            Some(args.as_slice())
        }
        _ => None,
    })
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct File {
    pub decls: Vec<Decl>,
    /// Names of declarations that did not parse: declared, so not reported as undefined.
    pub unparsed_names: Vec<String>,
}

impl Expr {
    /// Calls `f` on this expression and every expression inside it, in source order.
    pub fn visit<'e>(&'e self, f: &mut impl FnMut(&'e Expr)) {
        f(self);
        match &self.kind {
            ExprKind::Str { holes, .. } => holes.iter().for_each(|h| h.visit(f)),
            ExprKind::Int(_) | ExprKind::Bool(_) | ExprKind::Null | ExprKind::Ident(_) => {}
            ExprKind::Array(items) => {
                for i in items {
                    match i {
                        ArrayItem::Value(x) | ArrayItem::Spread(x) => x.visit(f),
                    }
                }
            }
            ExprKind::Object(items) => {
                for i in items {
                    match i {
                        ObjectItem::Property {
                            decorators,
                            key,
                            value,
                        } => {
                            decorators.iter().for_each(|d| d.visit(f));
                            if let Some(k) = &key.interpolated {
                                k.visit(f);
                            }
                            value.visit(f);
                        }
                        ObjectItem::Spread(x) => x.visit(f),
                        ObjectItem::NestedResource(d) => d.visit(f),
                    }
                }
            }
            ExprKind::Call { args, .. } => args.iter().for_each(|a| a.visit(f)),
            ExprKind::MethodCall { base, args, .. } => {
                base.visit(f);
                args.iter().for_each(|a| a.visit(f));
            }
            ExprKind::Member { base, .. }
            | ExprKind::ChildAccess { base, .. }
            | ExprKind::NonNull(base)
            | ExprKind::Paren(base)
            | ExprKind::Unary { operand: base, .. } => base.visit(f),
            ExprKind::Index { base, index, .. } => {
                base.visit(f);
                index.visit(f);
            }
            ExprKind::Binary { left, right, .. } => {
                left.visit(f);
                right.visit(f);
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                cond.visit(f);
                then.visit(f);
                otherwise.visit(f);
            }
            ExprKind::For { iterable, body, .. } => {
                iterable.visit(f);
                body.visit(f);
            }
            ExprKind::If { cond, body } => {
                cond.visit(f);
                body.visit(f);
            }
            ExprKind::Lambda { body, .. } => body.visit(f),
        }
    }
}

impl Decl {
    /// Calls `f` on every expression of the declaration, decorators first, in source order.
    pub fn visit<'e>(&'e self, f: &mut impl FnMut(&'e Expr)) {
        self.decorators.iter().for_each(|d| d.visit(f));
        match &self.kind {
            DeclKind::TargetScope(e) | DeclKind::Metadata(e) | DeclKind::Assert(e) => e.visit(f),
            DeclKind::Param { default, .. } => default.iter().for_each(|e| e.visit(f)),
            DeclKind::Var { value, .. } | DeclKind::Output { value, .. } => value.visit(f),
            DeclKind::Resource { value, .. } | DeclKind::Module { value, .. } => value.visit(f),
            DeclKind::Type(_)
            | DeclKind::Func { .. }
            | DeclKind::Import(_)
            | DeclKind::Extension(None)
            | DeclKind::Using(_)
            | DeclKind::Test => {}
            DeclKind::Extension(Some(spec)) => spec.config.iter().for_each(|e| e.visit(f)),
        }
    }
}
