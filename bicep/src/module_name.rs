//! The deployment name the official compiler gives a module declared without
//! `name`: `'<symbol>-${uniqueString('<symbol>', deployment().name)}'`, with the
//! loop index in between for a module loop, the symbol cut so that the whole name
//! fits ARM's 64 characters.

use crate::ast::{Expr, ExprKind};
use crate::diag::Span;

/// ARM's longest deployment name.
const MAX_DEPLOYMENT_NAME: usize = 64;
/// Length of a `uniqueString()` result.
const UNIQUE_STRING_LENGTH: usize = 13;
/// Digits of the largest copy index ARM allows (`800`... written with room to spare).
const MAX_COPY_INDEX_LENGTH: usize = 5;

fn expr(kind: ExprKind, span: Span) -> Expr {
    Expr { kind, span }
}

fn string(s: &str, span: Span) -> Expr {
    expr(
        ExprKind::Str {
            pieces: vec![s.to_string()],
            holes: Vec::new(),
        },
        span,
    )
}

fn call(name: &str, args: Vec<Expr>, span: Span) -> Expr {
    expr(
        ExprKind::Call {
            namespace: None,
            name: name.to_string(),
            args,
        },
        span,
    )
}

/// The generated name of module `symbol` (in a loop when `looped`), as an expression
/// located at `span`.
pub fn generated(symbol: &str, looped: bool, span: Span) -> Expr {
    let deployment_name = expr(
        ExprKind::Member {
            base: Box::new(call("deployment", Vec::new(), span)),
            name: "name".into(),
            safe: false,
        },
        span,
    );
    let unique = call(
        "uniqueString",
        vec![string(symbol, span), deployment_name],
        span,
    );
    let mut args = Vec::new();
    let mut reserved = UNIQUE_STRING_LENGTH + 1;
    if looped {
        args.push(call("copyIndex", Vec::new(), span));
        reserved += MAX_COPY_INDEX_LENGTH + 1;
    }
    args.push(unique);
    let prefix: String = symbol
        .chars()
        .take(MAX_DEPLOYMENT_NAME - reserved)
        .collect();
    let format = if looped {
        format!("{prefix}-{{0}}-{{1}}")
    } else {
        format!("{prefix}-{{0}}")
    };
    args.insert(0, string(&format, span));
    call("format", args, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_string(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Call { args, .. } => match &args[0].kind {
                ExprKind::Str { pieces, .. } => pieces[0].clone(),
                _ => String::new(),
            },
            _ => String::new(),
        }
    }

    #[test]
    fn names_fit_a_deployment_name() {
        let s = Span::default();
        assert_eq!(
            format_string(&generated("storage", false, s)),
            "storage-{0}"
        );
        assert_eq!(format_string(&generated("each", true, s)), "each-{0}-{1}");
        let long = "x".repeat(80);
        assert_eq!(format_string(&generated(&long, false, s)).len(), 50 + 4);
        assert_eq!(format_string(&generated(&long, true, s)).len(), 44 + 8);
    }
}
