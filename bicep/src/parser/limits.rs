//! Nesting limits that keep hostile input from exhausting the stack.

use crate::ast::*;
use crate::diag::{Diagnostic, Span};

/// Longest operator chain accepted in one expression level.
pub(super) const MAX_CHAIN: usize = 100;

/// Deepest syntax tree accepted; later passes recurse over the tree.
pub(super) const MAX_TREE_DEPTH: usize = 128;

pub(super) fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::error("BCP-DEPTH", "The expression is nested too deeply.", span)
}

pub(super) fn check_depth(d: &Decl) -> Result<(), Diagnostic> {
    let mut exprs: Vec<&Expr> = d.decorators.iter().collect();
    match &d.kind {
        DeclKind::TargetScope(e) | DeclKind::Metadata(e) | DeclKind::Assert(e) => exprs.push(e),
        DeclKind::Param { default, .. } => exprs.extend(default.iter()),
        DeclKind::Var { value, .. } | DeclKind::Output { value, .. } => exprs.push(value),
        DeclKind::Resource { value, .. } | DeclKind::Module { value, .. } => exprs.push(value),
        _ => {}
    }
    for e in exprs {
        if expr_depth(e, MAX_TREE_DEPTH) > MAX_TREE_DEPTH {
            return Err(too_deep(e.span));
        }
    }
    Ok(())
}

/// Depth of `e`, computed no deeper than `limit` (so this recursion is bounded too).
pub(super) fn expr_depth(e: &Expr, limit: usize) -> usize {
    if limit == 0 {
        return 1;
    }
    let sub = |x: &Expr| expr_depth(x, limit - 1);
    let inner = match &e.kind {
        ExprKind::Str { holes, .. } => holes.iter().map(sub).max().unwrap_or(0),
        ExprKind::Int(_) | ExprKind::Bool(_) | ExprKind::Null | ExprKind::Ident(_) => 0,
        ExprKind::Array(items) => items
            .iter()
            .map(|i| match i {
                ArrayItem::Value(x) | ArrayItem::Spread(x) => sub(x),
            })
            .max()
            .unwrap_or(0),
        ExprKind::Object(items) => items
            .iter()
            .map(|i| match i {
                ObjectItem::Property { value, key, .. } => {
                    sub(value).max(key.interpolated.as_deref().map(sub).unwrap_or(0))
                }
                ObjectItem::Spread(x) => sub(x),
                ObjectItem::NestedResource(d) => match &d.kind {
                    DeclKind::Resource { value, .. } => sub(value),
                    _ => 0,
                },
            })
            .max()
            .unwrap_or(0),
        ExprKind::Call { args, .. } => args.iter().map(sub).max().unwrap_or(0),
        ExprKind::MethodCall { base, args, .. } => {
            args.iter().map(sub).max().unwrap_or(0).max(sub(base))
        }
        ExprKind::Member { base, .. }
        | ExprKind::ChildAccess { base, .. }
        | ExprKind::NonNull(base)
        | ExprKind::Paren(base)
        | ExprKind::Unary { operand: base, .. } => sub(base),
        ExprKind::Index { base, index, .. } => sub(base).max(sub(index)),
        ExprKind::Binary { left, right, .. } => sub(left).max(sub(right)),
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => sub(cond).max(sub(then)).max(sub(otherwise)),
        ExprKind::For { iterable, body, .. } => sub(iterable).max(sub(body)),
        ExprKind::If { cond, body } => sub(cond).max(sub(body)),
        ExprKind::Lambda { body, .. } => sub(body),
    };
    inner + 1
}
