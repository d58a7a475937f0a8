//! ARM type schemas of Bicep type expressions: the `definitions` of a
//! languageVersion 2.0 template and the types of its parameters and outputs.
//!
//! The rules follow the official compiler: a union of literals becomes
//! `allowedValues` sorted by the literals' Bicep spelling; an array of such a union
//! carries the `allowedValues` itself; `@discriminator` unions become a
//! `discriminator` mapping (nested discriminated unions flattened into it); access
//! into a user type (`T.prop`, `T.*`, `T[*]`, `T[0]`) becomes a JSON pointer `$ref`.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::ast::*;
use crate::diag::{Diagnostic, Span};
use crate::resource_derived;
use crate::types::library_spelling;

type R<T> = Result<T, Diagnostic>;

const BUILTIN_TYPES: &[&str] = &["string", "int", "bool", "object", "array"];

/// Schemas of the type expressions of one file.
pub(crate) struct TypeSchemas<'a> {
    /// User-defined types by name (local and imported).
    declared: HashMap<String, &'a Decl>,
    /// Decorator arguments as JSON values.
    value: &'a dyn Fn(&Expr) -> R<Value>,
}

fn unsupported<T>(what: &str, span: Span) -> R<T> {
    Err(Diagnostic::unsupported(what, span))
}

fn plain_string(e: &Expr) -> Option<&str> {
    match &e.kind {
        ExprKind::Str { pieces, holes } if holes.is_empty() => Some(&pieces[0]),
        _ => None,
    }
}

/// The JSON value of a literal type's expression (`'a'`, `-1`, `!true`, `null`).
fn literal_expr(e: &Expr) -> Option<Value> {
    match &e.kind {
        ExprKind::Str { .. } => plain_string(e).map(|s| json!(s)),
        ExprKind::Int(n) => n.parse::<i64>().ok().map(Value::from),
        ExprKind::Bool(b) => Some(json!(b)),
        ExprKind::Null => Some(Value::Null),
        ExprKind::Paren(x) => literal_expr(x),
        ExprKind::Unary { op, operand } => match (op, literal_expr(operand)?) {
            (UnaryOp::Minus, Value::Number(n)) => n.as_i64().map(|n| json!(-n)),
            (UnaryOp::Not, Value::Bool(b)) => Some(json!(!b)),
            _ => None,
        },
        _ => None,
    }
}

/// How the official compiler names a literal type (`StringLiteralType`,
/// `ObjectTypeNameBuilder`, `TupleTypeNameBuilder`); union members sort by it, ordinally.
fn display(v: &Value) -> String {
    match v {
        Value::String(s) => escaped_string(s),
        Value::Array(items) if items.is_empty() => "<empty array>".into(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(display).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => {
            let members: Vec<String> = m
                .iter()
                .map(|(k, v)| format!(" {}: {}", property_name(k), display(v)))
                .collect();
            format!("{{{} }}", members.join(","))
        }
        other => other.to_string(),
    }
}

/// A string as Bicep source spells it (`StringUtils.EscapeBicepString`).
fn escaped_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A property name as Bicep source spells it: quoted unless it is an identifier
/// other than `true`, `false` and `null` (`StringUtils.EscapeBicepPropertyName`).
fn property_name(name: &str) -> String {
    let mut chars = name.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if identifier && !matches!(name, "true" | "false" | "null") {
        name.to_string()
    } else {
        escaped_string(name)
    }
}

fn json_type(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::String(_) => "string",
        Value::Number(_) => "int",
        Value::Bool(_) => "bool",
        Value::Object(_) => "object",
        Value::Array(_) => "array",
        Value::Null => return None,
    })
}

fn sorted_unique(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(display);
    values.dedup();
    values
}

fn merge(schema: &mut Value, key: &str, v: Value) {
    if let Value::Object(m) = schema {
        m.insert(key.to_string(), v);
    }
}

impl<'a> TypeSchemas<'a> {
    pub fn new(declared: HashMap<String, &'a Decl>, value: &'a dyn Fn(&Expr) -> R<Value>) -> Self {
        TypeSchemas { declared, value }
    }

    /// True when `name` (as written, without `sys.`) is a user-defined type.
    pub fn is_declared(&self, name: &str) -> bool {
        self.declared.contains_key(name)
    }

    fn declared_type(&self, name: &str) -> Option<&'a TypeExpr> {
        match &self.declared.get(name)?.kind {
            DeclKind::Type(t) => Some(t),
            _ => None,
        }
    }

    /// The schema of a `type` declaration, for `definitions`.
    pub fn definition(&self, d: &Decl, ty: &TypeExpr) -> R<Value> {
        let mut schema = self.decorated(ty, &d.decorators)?;
        if decorator_args(&d.decorators, "export").is_some() {
            let meta = schema
                .as_object_mut()
                .map(|m| m.entry("metadata").or_insert_with(|| json!({})));
            if let Some(Value::Object(meta)) = meta {
                meta.insert("__bicep_export!".into(), json!(true));
            }
        }
        Ok(schema)
    }

    /// The schema of `ty` with the modifiers its declaration's decorators add.
    pub fn decorated(&self, ty: &TypeExpr, decorators: &[Expr]) -> R<Value> {
        let base = match decorator_args(decorators, "discriminator") {
            // On a reference the decorator changes nothing: the referenced type says it.
            Some([prop]) if is_union(ty) => match plain_string(prop) {
                Some(p) => self.discriminated(ty, p)?,
                None => return unsupported("A computed discriminator", prop.span),
            },
            _ => self.schema(ty)?,
        };
        self.modifiers(base, decorators)
    }

    fn modifiers(&self, mut schema: Value, decorators: &[Expr]) -> R<Value> {
        if decorator_args(decorators, "secure").is_some() {
            let secure = match schema.get("type").and_then(Value::as_str) {
                Some("string") => Some("securestring"),
                Some("object") => Some("secureObject"),
                _ => None,
            };
            if let Some(t) = secure {
                merge(&mut schema, "type", json!(t));
            }
        }
        if decorator_args(decorators, "sealed").is_some() {
            merge(&mut schema, "additionalProperties", json!(false));
        }
        let mut meta = Map::new();
        if let Some([m]) = decorator_args(decorators, "metadata")
            && let Value::Object(m) = (self.value)(m)?
        {
            meta.extend(m);
        }
        for key in ["minLength", "maxLength", "minValue", "maxValue"] {
            if let Some([a]) = decorator_args(decorators, key) {
                merge(&mut schema, key, (self.value)(a)?);
            }
        }
        if let Some([d]) = decorator_args(decorators, "description") {
            meta.insert("description".into(), (self.value)(d)?);
        }
        if !meta.is_empty() {
            let existing = schema
                .as_object_mut()
                .map(|m| m.entry("metadata").or_insert_with(|| json!({})));
            if let Some(Value::Object(existing)) = existing {
                existing.extend(meta);
            }
        }
        Ok(schema)
    }

    /// The schema of a type expression.
    pub fn schema(&self, ty: &TypeExpr) -> R<Value> {
        match &ty.kind {
            TypeKind::Name(n) => self.named(n, ty.span),
            TypeKind::Literal(e) => match literal_expr(e) {
                Some(v) => Ok(match json_type(&v) {
                    Some(t) => json!({"type": t, "allowedValues": [v]}),
                    None => json!({"allowedValues": [v]}),
                }),
                None => unsupported("This literal type", e.span),
            },
            TypeKind::Array(inner) => match self.syntactic_literals(inner) {
                Some(values) => Ok(json!({"type": "array", "allowedValues": values})),
                None => Ok(json!({"type": "array", "items": self.schema(inner)?})),
            },
            TypeKind::Nullable(inner) => {
                let mut s = self.schema(inner)?;
                merge(&mut s, "nullable", json!(true));
                Ok(s)
            }
            TypeKind::NonNull(inner) => {
                let mut s = self.schema(inner)?;
                merge(&mut s, "nullable", json!(false));
                Ok(s)
            }
            TypeKind::Union(_) => self.union(ty),
            TypeKind::Object(props) => self.object(props),
            TypeKind::Tuple(items) => {
                let prefix = items
                    .iter()
                    .map(|i| self.decorated(&i.ty, &i.decorators))
                    .collect::<R<Vec<_>>>()?;
                Ok(json!({"type": "array", "prefixItems": prefix, "items": false}))
            }
            TypeKind::Access(..) => match resource_derived(ty)? {
                Some(schema) => Ok(schema),
                None => self.reference(ty),
            },
            TypeKind::Parameterized(name, _) if resource_derived_variant(name).is_some() => {
                Err(Diagnostic::error(
                    "BCP394",
                    "Resource-derived type expressions must dereference a property within the resource body. Using the entire resource body type is not permitted.",
                    ty.span,
                ))
            }
            TypeKind::Parameterized(name, _) => {
                unsupported(&format!("The type \"{name}<...>\""), ty.span)
            }
        }
    }

    fn named(&self, n: &str, span: Span) -> R<Value> {
        if let Some(builtin) = n.strip_prefix("sys.") {
            return builtin_schema(builtin, span);
        }
        // Imported types may have dotted names (`_1.buzz`): a declared name wins.
        if self.is_declared(n) {
            return Ok(json!({"$ref": format!("#/definitions/{n}")}));
        }
        if n.contains('.') {
            return self.reference(&TypeExpr {
                kind: TypeKind::Name(n.to_string()),
                span,
            });
        }
        builtin_schema(n, span)
    }

    /// An access into user-defined types: a `$ref` into `definitions`, unless it
    /// reaches into a resource-derived type.
    fn reference(&self, ty: &TypeExpr) -> R<Value> {
        if let Some(direct) = self.through_declared(ty)
            && let Some(schema) = resource_derived(&direct)?
        {
            return Ok(schema);
        }
        Ok(json!({"$ref": self.pointer(ty)?.0}))
    }

    /// An access that goes on into a resource-derived type through user-defined types
    /// (`type a = resourceInput<'T@v'>.properties`, then `a.tags`), rewritten as the
    /// same access on the resource-derived type: the official compiler extends the
    /// resource body pointer then (`TemplateWriter.TraceToObjectDeclaration`).
    fn through_declared(&self, ty: &TypeExpr) -> Option<TypeExpr> {
        let mut accesses = Vec::new();
        let mut root = ty;
        while let TypeKind::Access(base, access) = &root.kind {
            accesses.push(access.clone());
            root = base;
        }
        accesses.reverse();
        let TypeKind::Name(dotted) = &root.kind else {
            return None;
        };
        let name = dotted
            .match_indices('.')
            .map(|(i, _)| &dotted[..i])
            .chain(std::iter::once(dotted.as_str()))
            .rfind(|r| self.is_declared(r))?;
        let mut path: Vec<TypeAccess> = dotted[name.len()..]
            .split('.')
            .filter(|p| !p.is_empty())
            .map(|p| match p {
                "*" => TypeAccess::AdditionalProperties,
                p => TypeAccess::Property(p.to_string()),
            })
            .collect();
        path.extend(accesses);
        let mut current = self.declared_type(name)?;
        for (i, access) in path.iter().enumerate() {
            for _ in 0..64 {
                match &current.kind {
                    TypeKind::Name(n) if !n.contains('.') && self.is_declared(n) => {
                        current = self.declared_type(n)?;
                    }
                    _ => break,
                }
            }
            if is_resource_derived(current) {
                let direct = path[i..].iter().fold(current.clone(), |base, a| TypeExpr {
                    span: ty.span,
                    kind: TypeKind::Access(Box::new(base), a.clone()),
                });
                return Some(direct);
            }
            current = member(current, access)?.1;
        }
        None
    }

    fn object(&self, props: &[ObjectTypeProperty]) -> R<Value> {
        let mut properties = Map::new();
        let mut out = Map::new();
        out.insert("type".into(), json!("object"));
        for p in props {
            let schema = self.decorated(&p.ty, &p.decorators)?;
            match &p.name {
                Some(name) => {
                    properties.insert(name.clone(), schema);
                }
                None => {
                    out.insert("additionalProperties".into(), schema);
                }
            }
        }
        out.insert("properties".into(), Value::Object(properties));
        Ok(Value::Object(out))
    }

    /// A union of literals: the members' type and their sorted values; `null`
    /// among them makes the type nullable.
    fn union(&self, ty: &TypeExpr) -> R<Value> {
        let Some(values) = self.literals(ty) else {
            return unsupported("A union of types that are not literals", ty.span);
        };
        let nullable = values.iter().any(Value::is_null);
        let values: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
        let mut out = Map::new();
        if let Some(t) = values.first().and_then(json_type) {
            out.insert("type".into(), json!(t));
        }
        out.insert("allowedValues".into(), Value::Array(values));
        if nullable {
            out.insert("nullable".into(), json!(true));
        }
        Ok(Value::Object(out))
    }

    /// Allowed values of an array's item type written as literals or a union.
    fn syntactic_literals(&self, ty: &TypeExpr) -> Option<Vec<Value>> {
        match &ty.kind {
            TypeKind::Literal(_)
            | TypeKind::Union(_)
            | TypeKind::Object(_)
            | TypeKind::Tuple(_) => self.literals(ty),
            _ => None,
        }
    }

    /// Every value a literal type (or union of them, through aliases) allows.
    fn literals(&self, ty: &TypeExpr) -> Option<Vec<Value>> {
        let values = match &ty.kind {
            TypeKind::Literal(e) => vec![literal_expr(e)?],
            TypeKind::Union(members) => {
                let mut all = Vec::new();
                for m in members {
                    all.extend(self.literals(m)?);
                }
                all
            }
            TypeKind::Name(n) if !n.contains('.') => self.literals(self.declared_type(n)?)?,
            TypeKind::Object(props) => {
                let mut m = Map::new();
                for p in props {
                    let [v] = self.literals(&p.ty)?.try_into().ok()?;
                    if !p.decorators.is_empty() {
                        return None;
                    }
                    m.insert(p.name.clone()?, v);
                }
                vec![Value::Object(m)]
            }
            TypeKind::Tuple(items) => {
                let mut a = Vec::new();
                for i in items {
                    let [v] = self.literals(&i.ty)?.try_into().ok()?;
                    a.push(v);
                }
                vec![Value::Array(a)]
            }
            _ => return None,
        };
        Some(sorted_unique(values))
    }

    /// `@discriminator(prop)` on a union: each member object keyed by its literal
    /// `prop` value; members that are discriminated unions themselves are flattened.
    fn discriminated(&self, ty: &TypeExpr, prop: &str) -> R<Value> {
        let (inner, nullable) = match &ty.kind {
            TypeKind::Nullable(x) => (&**x, Some(true)),
            TypeKind::NonNull(x) => (&**x, Some(false)),
            _ => (ty, None),
        };
        let mut mapping = Map::new();
        self.mapping_entries(inner, prop, &mut mapping)?;
        let mut out = json!({
            "type": "object",
            "discriminator": {"propertyName": prop, "mapping": mapping},
        });
        if let Some(n) = nullable {
            merge(&mut out, "nullable", json!(n));
        }
        Ok(out)
    }

    fn mapping_entries(&self, ty: &TypeExpr, prop: &str, out: &mut Map<String, Value>) -> R<()> {
        match &ty.kind {
            TypeKind::Union(members) => {
                for m in members {
                    self.mapping_entries(m, prop, out)?;
                }
                Ok(())
            }
            TypeKind::Name(n) if self.is_declared(n) => {
                let decl = self.declared[n.as_str()];
                let DeclKind::Type(decl_ty) = &decl.kind else {
                    return unsupported("This discriminated union member", ty.span);
                };
                if decorator_args(&decl.decorators, "discriminator").is_some()
                    || matches!(decl_ty.kind, TypeKind::Union(_))
                {
                    return self.mapping_entries(decl_ty, prop, out);
                }
                let key = self.discriminator_value(decl_ty, prop, ty.span)?;
                out.insert(key, json!({"$ref": format!("#/definitions/{n}")}));
                Ok(())
            }
            TypeKind::Object(_) => {
                let key = self.discriminator_value(ty, prop, ty.span)?;
                out.insert(key, self.schema(ty)?);
                Ok(())
            }
            _ => unsupported("This discriminated union member", ty.span),
        }
    }

    fn discriminator_value(&self, ty: &TypeExpr, prop: &str, span: Span) -> R<String> {
        let found = match &ty.kind {
            TypeKind::Object(props) => props
                .iter()
                .find(|p| p.name.as_deref() == Some(prop))
                .and_then(|p| match &p.ty.kind {
                    TypeKind::Literal(e) => plain_string(e).map(str::to_string),
                    _ => None,
                }),
            TypeKind::Name(n) if self.is_declared(n) => {
                return self.discriminator_value(self.declared_type(n).unwrap_or(ty), prop, span);
            }
            _ => None,
        };
        found.ok_or_else(|| {
            Diagnostic::error(
                "BCP364",
                format!(
                    "The property \"{prop}\" must be a required string literal on all union member types."
                ),
                span,
            )
        })
    }

    /// The JSON pointer into `definitions` an access type names, and the type there.
    fn pointer(&self, ty: &'a TypeExpr) -> R<(String, &'a TypeExpr)> {
        match &ty.kind {
            TypeKind::Name(n) => self.name_pointer(n, ty.span),
            TypeKind::Access(base, access) => {
                let (ptr, target) = self.pointer(base)?;
                self.step(ptr, target, access, ty.span)
            }
            _ => unsupported("Accessing into this type", ty.span),
        }
    }

    fn name_pointer(&self, dotted: &str, span: Span) -> R<(String, &'a TypeExpr)> {
        // The longest declared prefix is the type; the rest are property names.
        let root = dotted
            .match_indices('.')
            .map(|(i, _)| &dotted[..i])
            .chain(std::iter::once(dotted))
            .rfind(|r| self.is_declared(r));
        let Some((root, mut target)) = root.and_then(|r| Some((r, self.declared_type(r)?))) else {
            return unsupported(&format!("The type \"{dotted}\""), span);
        };
        let rest = dotted[root.len()..].trim_start_matches('.');
        let parts = rest.split('.').filter(|p| !p.is_empty());
        let mut ptr = format!("#/definitions/{root}");
        for part in parts {
            let access = if part == "*" {
                TypeAccess::AdditionalProperties
            } else {
                TypeAccess::Property(part.to_string())
            };
            (ptr, target) = self.step(ptr, target, &access, span)?;
        }
        Ok((ptr, target))
    }

    /// One access step, following aliases to the type that holds the member.
    fn step(
        &self,
        mut ptr: String,
        mut target: &'a TypeExpr,
        access: &TypeAccess,
        span: Span,
    ) -> R<(String, &'a TypeExpr)> {
        for _ in 0..64 {
            let found = match &target.kind {
                TypeKind::Name(n) if !n.contains('.') && self.is_declared(n) => {
                    ptr = format!("#/definitions/{n}");
                    target = self.declared_type(n).unwrap_or(target);
                    continue;
                }
                _ => member(target, access).map(|(segment, ty)| (format!("{ptr}/{segment}"), ty)),
            };
            return found.ok_or_else(|| Diagnostic::unsupported("This type access", span));
        }
        unsupported("This type access", span)
    }
}

/// The member of an object, array or tuple type one access names, with its JSON
/// pointer segment; property names compare case-insensitively, as in the official compiler.
fn member<'t>(target: &'t TypeExpr, access: &TypeAccess) -> Option<(String, &'t TypeExpr)> {
    match (&target.kind, access) {
        (TypeKind::Object(props), TypeAccess::Property(p)) => props
            .iter()
            .find(|x| x.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(p)))
            .map(|x| (format!("properties/{p}"), &x.ty)),
        (TypeKind::Object(props), TypeAccess::AdditionalProperties) => props
            .iter()
            .find(|x| x.name.is_none())
            .map(|x| ("additionalProperties".to_string(), &x.ty)),
        (TypeKind::Array(item), TypeAccess::Items) => Some(("items".to_string(), &**item)),
        (TypeKind::Tuple(items), TypeAccess::Index(i)) => {
            items.get(*i).map(|x| (format!("prefixItems/{i}"), &x.ty))
        }
        _ => None,
    }
}

/// True for an access into `resourceInput<...>` or `resourceOutput<...>`.
fn is_resource_derived(ty: &TypeExpr) -> bool {
    match &ty.kind {
        TypeKind::Access(base, _) => is_resource_derived(base),
        TypeKind::Parameterized(name, _) => resource_derived_variant(name).is_some(),
        _ => false,
    }
}

/// `Some(true)` for `resourceOutput`, `Some(false)` for `resourceInput` (either may be
/// written `sys.`-qualified).
fn resource_derived_variant(name: &str) -> Option<bool> {
    match name.strip_prefix("sys.").unwrap_or(name) {
        "resourceInput" => Some(false),
        "resourceOutput" => Some(true),
        _ => None,
    }
}

/// The schema of an access into a resource-derived type (`resourceInput<'T@v'>.name`),
/// or `None` when `ty` is not one; see [`crate::resource_derived`].
fn resource_derived(ty: &TypeExpr) -> R<Option<Value>> {
    let mut path = Vec::new();
    let mut root = ty;
    while let TypeKind::Access(base, access) = &root.kind {
        path.push((access, root.span));
        root = base;
    }
    let TypeKind::Parameterized(name, args) = &root.kind else {
        return Ok(None);
    };
    let Some(output) = resource_derived_variant(name) else {
        return Ok(None);
    };
    let reference = match args.as_slice() {
        [arg] => plain_string(arg).ok_or_else(|| {
            Diagnostic::error(
                "BCP032",
                "The value must be a compile-time constant.",
                arg.span,
            )
        })?,
        _ => {
            return Err(Diagnostic::error(
                "BCP071",
                format!("Expected 1 argument, but got {}.", args.len()),
                root.span,
            ));
        }
    };
    // `az:` names the built-in extension the type comes from; it is not part of the type.
    let reference = reference.strip_prefix("az:").unwrap_or(reference);
    let Some((written_type, api_version)) = reference.split_once('@') else {
        return Err(Diagnostic::error(
            "BCP029",
            "The resource type is not valid. Specify a valid resource type of format \"<types>@<apiVersion>\".",
            root.span,
        ));
    };
    // The source names the type as the official compiler resolved it, like a resource's `type`.
    let (resolved_type, api_version) =
        library_spelling(written_type, api_version).unwrap_or((written_type, api_version));
    let mut shape = resource_derived::body(resolved_type, api_version);
    let mut segments = Vec::new();
    for (access, span) in path.into_iter().rev() {
        shape = resource_derived::step(shape, access, span)?;
        segments.extend(resource_derived::pointer_segments(access));
    }
    let mut source = json!({
        "source": format!("{resolved_type}@{api_version}#{}", segments.join("/"))
    });
    if output {
        merge(&mut source, "output", json!(true));
    }
    let mut schema = Map::new();
    if let Some(t) = shape.arm_type() {
        schema.insert("type".into(), json!(t));
    }
    schema.insert(
        "metadata".into(),
        json!({"__bicep_resource_derived_type!": source}),
    );
    Ok(Some(Value::Object(schema)))
}

/// A union, possibly nullable or non-null.
fn is_union(ty: &TypeExpr) -> bool {
    match &ty.kind {
        TypeKind::Union(_) => true,
        TypeKind::Nullable(inner) | TypeKind::NonNull(inner) => is_union(inner),
        _ => false,
    }
}

fn builtin_schema(n: &str, span: Span) -> R<Value> {
    match n {
        "any" => Ok(json!({})),
        n if BUILTIN_TYPES.contains(&n) => Ok(json!({"type": n})),
        _ => Err(Diagnostic::error(
            "BCP302",
            format!(
                "The name \"{n}\" is not a valid type. Please specify one of the following types: \"array\", \"bool\", \"int\", \"object\", \"string\"."
            ),
            span,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn definitions(src: &str) -> Value {
        let file = parse(src).into_result().unwrap();
        let declared = file
            .decls
            .iter()
            .filter(|d| matches!(d.kind, DeclKind::Type(_)))
            .filter_map(|d| d.name.as_ref().map(|(n, _)| (n.clone(), d)))
            .collect();
        let value = |e: &Expr| literal_expr(e).ok_or_else(|| Diagnostic::unsupported("x", e.span));
        let schemas = TypeSchemas::new(declared, &value);
        let mut out = Map::new();
        for d in &file.decls {
            if let (DeclKind::Type(t), Some((n, _))) = (&d.kind, &d.name) {
                out.insert(n.clone(), schemas.definition(d, t).unwrap());
            }
        }
        Value::Object(out)
    }

    #[test]
    fn unions_of_literals_sort_by_their_bicep_spelling() {
        let d = definitions(
            "type u = 'pop' | 'crackle'\ntype m = ('b' | 10 | -10 | true | null | 'a')[]\ntype n = 'x' | null\n",
        );
        assert_eq!(
            d["u"],
            json!({"type": "string", "allowedValues": ["crackle", "pop"]})
        );
        assert_eq!(
            d["m"],
            json!({"type": "array", "allowedValues": ["a", "b", -10, 10, null, true]})
        );
        assert_eq!(
            d["n"],
            json!({"type": "string", "allowedValues": ["x"], "nullable": true})
        );
    }

    #[test]
    fn literal_members_sort_by_their_escaped_spelling() {
        // Escaped, `a'b` is `'a\\'b'`, after `'a('`; unescaped it would come first.
        let d = definitions("type u = 'a\\'b' | 'a('\ntype o = ({ 'my-key': 1 } | { a: 2 })[]\n");
        assert_eq!(d["u"]["allowedValues"], json!(["a(", "a'b"]));
        // `{ 'my-key': 1 }` sorts before `{ a: 2 }` only because the key is quoted.
        assert_eq!(d["o"]["allowedValues"], json!([{"my-key": 1}, {"a": 2}]));
        assert_eq!(property_name("true"), "'true'");
        assert_eq!(escaped_string("x${y}\n"), "'x\\${y}\\n'");
    }

    #[test]
    fn access_types_point_into_definitions() {
        let d = definitions(
            "type o = {\n  p: {\n    q: int\n  }\n  *: string\n}\ntype a = o.p.q\ntype b = o.*\ntype t = [string, int]\ntype c = t[1]\ntype arr = int[]\ntype e = arr[*]\n",
        );
        assert_eq!(d["a"]["$ref"], "#/definitions/o/properties/p/properties/q");
        assert_eq!(d["b"]["$ref"], "#/definitions/o/additionalProperties");
        assert_eq!(d["c"]["$ref"], "#/definitions/t/prefixItems/1");
        assert_eq!(d["e"]["$ref"], "#/definitions/arr/items");
    }

    #[test]
    fn discriminated_unions_map_each_member_by_its_tag() {
        let d = definitions(
            "type a = {\n  kind: 'a'\n}\n@discriminator('kind')\ntype u = a | { kind: 'b' }\n@discriminator('kind')\ntype v = (u | { kind: 'c' })?\n",
        );
        let mapping = &d["v"]["discriminator"]["mapping"];
        assert_eq!(mapping["a"], json!({"$ref": "#/definitions/a"}));
        assert_eq!(
            mapping["b"]["properties"]["kind"]["allowedValues"],
            json!(["b"])
        );
        assert_eq!(mapping["c"]["type"], "object");
        assert_eq!(d["v"]["nullable"], true);
    }

    #[test]
    fn resource_derived_types_carry_their_pointer_and_known_type() {
        let d = definitions(
            "type a = resourceOutput<'Contoso.Widgets/gadgets@2024-01-01'>.sku.capacity?\ntype b = sys.resourceInput<'az:Microsoft.KeyVault/vaults@2022-07-01'>.properties.networkAcls.ipRules[*]\ntype c = resourceInput<'Contoso.Widgets/gadgets@2024-01-01'>.properties.size\ntype d = resourceInput<'microsoft.insights/ACTIONGROUPS@2019-06-01'>.name\n",
        );
        assert_eq!(
            d["a"],
            json!({
                "type": "int",
                "metadata": {"__bicep_resource_derived_type!": {
                    "source": "Contoso.Widgets/gadgets@2024-01-01#properties/sku/properties/capacity",
                    "output": true
                }},
                "nullable": true
            })
        );
        assert_eq!(d["b"]["type"], "object");
        assert_eq!(
            d["b"]["metadata"]["__bicep_resource_derived_type!"]["source"],
            "Microsoft.KeyVault/vaults@2022-07-01#properties/properties/properties/networkAcls/properties/ipRules/items"
        );
        // Not covered by the facts: no type, only the pointer.
        assert_eq!(d["c"].get("type"), None);
        assert!(d["c"]["metadata"].is_object());
        // The type is spelled as the official compiler resolves it, like a resource's `type`.
        assert_eq!(
            d["d"]["metadata"]["__bicep_resource_derived_type!"]["source"],
            "microsoft.insights/actionGroups@2019-06-01#properties/name"
        );
    }

    #[test]
    fn accesses_through_declared_types_extend_the_resource_pointer() {
        let d = definitions(
            "type props = resourceInput<'Microsoft.Resources/tags@2022-09-01'>.properties\ntype alias = props\ntype holder = {\n  p: alias\n}\ntype t = alias.tags.*\ntype h = holder.p.tags\ntype direct = holder.p\n",
        );
        let source = |n: &str| d[n]["metadata"]["__bicep_resource_derived_type!"]["source"].clone();
        assert_eq!(d["t"]["type"], "string");
        assert_eq!(
            source("t"),
            "Microsoft.Resources/tags@2022-09-01#properties/properties/properties/tags/additionalProperties"
        );
        assert_eq!(d["h"]["type"], "object");
        assert_eq!(
            source("h"),
            "Microsoft.Resources/tags@2022-09-01#properties/properties/properties/tags"
        );
        // Naming a member that is itself the resource-derived type stays a reference.
        assert_eq!(
            d["direct"],
            json!({"$ref": "#/definitions/holder/properties/p"})
        );
    }

    #[test]
    fn a_whole_resource_body_is_not_a_type() {
        let file = parse("type a = resourceInput<'Contoso.Widgets/gadgets@2024-01-01'>\n")
            .into_result()
            .unwrap();
        let DeclKind::Type(t) = &file.decls[0].kind else {
            panic!("a type declaration")
        };
        let value = |e: &Expr| literal_expr(e).ok_or_else(|| Diagnostic::unsupported("x", e.span));
        let schemas = TypeSchemas::new(HashMap::new(), &value);
        assert_eq!(schemas.schema(t).map_err(|d| d.code), Err("BCP394".into()));
    }
}
