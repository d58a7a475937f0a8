//! `.bicepparam` files → ARM deployment parameters JSON.
//!
//! Values must be literals (strings, numbers, booleans, null, arrays, objects);
//! expressions are reported as unsupported.

use serde_json::{Map, Value, json};

use crate::ModuleResolver;
use crate::ast::{ArrayItem, DeclKind, Expr, ExprKind, File, ObjectItem, UnaryOp};
use crate::diag::{Diagnostic, Span};
use crate::emit::{Session, compile_module};
use crate::parser::{Parsed, parse};

const PARAMETERS_SCHEMA: &str =
    "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#";

pub(crate) fn compile_params(
    name: &str,
    source: &str,
    resolver: &dyn ModuleResolver,
    session: &mut Session,
) -> Result<Value, Vec<Diagnostic>> {
    let Parsed { file, errors } = parse(source);
    if !errors.is_empty() {
        return Err(errors.into_iter().map(|d| d.in_file(name)).collect());
    }
    // Every error of the file, in source order, each in this file.
    let here = |mut errors: Vec<Diagnostic>| {
        errors.sort_by_key(|d| d.span.start);
        errors.into_iter().map(|d| d.in_file(name)).collect()
    };
    let (using, assigned, mut errors) = assignments(&file);
    let Some(using) = using else {
        errors.push(Diagnostic::error(
            "BCP261",
            "A using declaration must be present in this parameters file.",
            Span::default(),
        ));
        return Err(here(errors));
    };
    let template = referenced_template(name, using, resolver, session)?;
    let declared = template["parameters"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let parameters = parameter_values(&declared, &assigned, using.span, &mut errors);
    if !errors.is_empty() {
        return Err(here(errors));
    }
    Ok(json!({
        "$schema": PARAMETERS_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": parameters,
    }))
}

/// A parsed parameter assignment: name, name span and value.
type Assignment<'f> = (&'f str, Span, &'f Expr);

/// The `using` path and the parameter assignments of a parameters file, with
/// the errors of the declarations that are not one.
fn assignments(file: &File) -> (Option<&Expr>, Vec<Assignment<'_>>, Vec<Diagnostic>) {
    let mut using: Option<&Expr> = None;
    let mut assigned: Vec<Assignment<'_>> = Vec::new();
    let mut errors = Vec::new();
    for d in &file.decls {
        match &d.kind {
            DeclKind::Using(Some(path)) => {
                if using.is_some() {
                    errors.push(Diagnostic::error(
                        "BCP263",
                        "A parameters file may contain only one using declaration.",
                        d.keyword_span,
                    ));
                    continue;
                }
                using = Some(path);
            }
            DeclKind::Param {
                ty: None,
                default: Some(value),
            } => {
                let (pname, span) = d
                    .name
                    .as_ref()
                    .map(|(n, s)| (n.as_str(), *s))
                    .unwrap_or_default();
                if assigned.iter().any(|(n, _, _)| *n == pname) {
                    errors.push(Diagnostic::error(
                        "BCP028",
                        format!(
                            "Identifier \"{pname}\" is declared multiple times. Remove or rename the duplicates."
                        ),
                        span,
                    ));
                    continue;
                }
                assigned.push((pname, span, value));
            }
            DeclKind::Param { .. } => {
                errors.push(Diagnostic::error(
                    "BCP257",
                    "A parameter assignment in a parameters file has the form \"param <name> = <value>\".",
                    d.keyword_span,
                ));
            }
            other => {
                errors.push(Diagnostic::unsupported(
                    format!("A \"{}\" declaration in a parameters file", other.keyword()),
                    d.keyword_span,
                ));
            }
        }
    }
    (using, assigned, errors)
}

/// The `parameters` object: every assignment a declared parameter, every
/// parameter without a default assigned; what breaks that goes to `errors`.
fn parameter_values(
    declared: &Map<String, Value>,
    assigned: &[Assignment<'_>],
    using_span: Span,
    errors: &mut Vec<Diagnostic>,
) -> Map<String, Value> {
    let mut parameters = Map::new();
    for (pname, span, value) in assigned {
        if !declared.contains_key(*pname) {
            errors.push(Diagnostic::error(
                "BCP259",
                format!(
                    "The parameter \"{pname}\" is assigned in the params file without being declared in the Bicep file."
                ),
                *span,
            ));
            continue;
        }
        match literal(value) {
            Ok(v) => {
                parameters.insert(pname.to_string(), json!({ "value": v }));
            }
            Err(e) => errors.push(e),
        }
    }
    let missing: Vec<String> = declared
        .iter()
        .filter(|(k, v)| v.get("defaultValue").is_none() && !assigned.iter().any(|(n, ..)| n == k))
        .map(|(k, _)| format!("\"{k}\""))
        .collect();
    if !missing.is_empty() {
        errors.push(Diagnostic::error(
            "BCP258",
            format!(
                "The following parameters are declared in the Bicep file but are missing an assignment in the params file: {}.",
                missing.join(", ")
            ),
            using_span,
        ));
    }
    parameters
}

/// Compiles (or reads) the template named by `using`.
fn referenced_template(
    name: &str,
    using: &Expr,
    resolver: &dyn ModuleResolver,
    session: &mut Session,
) -> Result<Value, Vec<Diagnostic>> {
    let here = |d: Diagnostic| vec![d.in_file(name)];
    let rel = match &using.kind {
        ExprKind::Str { pieces, holes } if holes.is_empty() => pieces[0].as_str(),
        _ => {
            return Err(here(Diagnostic::error(
                "BCP092",
                "String interpolation is not supported in file paths.",
                using.span,
            )));
        }
    };
    if rel.starts_with("br:")
        || rel.starts_with("br/")
        || rel.starts_with("ts:")
        || rel.starts_with("ts/")
    {
        return Err(here(Diagnostic::unsupported(
            format!("A registry template reference \"{rel}\""),
            using.span,
        )));
    }
    let (resolved, content) = resolver.resolve(name, rel).map_err(|e| {
        here(Diagnostic::error(
            "BCP091",
            format!("An error occurred reading file. {e}"),
            using.span,
        ))
    })?;
    if resolved.to_ascii_lowercase().ends_with(".json") {
        return serde_json::from_str(&content).map_err(|e| {
            here(Diagnostic::error(
                "BCP188",
                format!("The referenced ARM template has errors: {e}"),
                using.span,
            ))
        });
    }
    session.sources.insert(resolved.clone(), content.clone());
    compile_module(&resolved, &content, resolver, session)
}

/// A parameter value: only literals are accepted.
fn literal(e: &Expr) -> Result<Value, Diagnostic> {
    Ok(match &e.kind {
        ExprKind::Str { pieces, holes } if holes.is_empty() => Value::String(pieces[0].clone()),
        ExprKind::Int(s) => int(s, e.span)?,
        ExprKind::Unary {
            op: UnaryOp::Minus,
            operand,
        } => match &operand.kind {
            ExprKind::Int(s) => int(&format!("-{s}"), e.span)?,
            _ => {
                return Err(Diagnostic::unsupported(
                    "An expression in a parameter value",
                    e.span,
                ));
            }
        },
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::Null => Value::Null,
        ExprKind::Paren(inner) => literal(inner)?,
        ExprKind::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| match i {
                    ArrayItem::Value(x) => literal(x),
                    ArrayItem::Spread(x) => Err(Diagnostic::unsupported(
                        "The spread operator in a parameter value",
                        x.span,
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        ExprKind::Object(items) => {
            let mut m = Map::new();
            for i in items {
                match i {
                    ObjectItem::Property { key, value, .. } => {
                        let Some(k) = &key.name else {
                            return Err(Diagnostic::unsupported(
                                "An interpolated key in a parameter value",
                                key.span,
                            ));
                        };
                        m.insert(k.clone(), literal(value)?);
                    }
                    ObjectItem::Spread(x) => {
                        return Err(Diagnostic::unsupported(
                            "The spread operator in a parameter value",
                            x.span,
                        ));
                    }
                    ObjectItem::NestedResource(d) => {
                        return Err(Diagnostic::error(
                            "BCP007",
                            "A resource cannot be declared in a parameter value.",
                            d.span,
                        ));
                    }
                }
            }
            Value::Object(m)
        }
        _ => {
            return Err(Diagnostic::unsupported(
                "An expression in a parameter value",
                e.span,
            ));
        }
    })
}

fn int(s: &str, span: Span) -> Result<Value, Diagnostic> {
    s.parse::<i64>()
        .map(Value::from)
        .map_err(|_| Diagnostic::error("BCP010", "Expected a valid 64-bit signed integer.", span))
}
