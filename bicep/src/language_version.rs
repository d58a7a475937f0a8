//! When the official compiler emits `languageVersion: "2.0"` (symbolic names):
//! user-defined types and functions, typed variables, imports, extensions,
//! aggregate type syntax (object, array, tuple, union and nullable types), secure
//! outputs, modules without a name and resources with `@retryOn`.

use crate::ast::*;

/// True when the official compiler would emit `file` as a languageVersion 2.0 template.
pub fn needs_symbolic_names(file: &File) -> bool {
    file.decls.iter().any(needs_2_0)
}

fn needs_2_0(d: &Decl) -> bool {
    match &d.kind {
        DeclKind::Type(_)
        | DeclKind::Func { .. }
        | DeclKind::Import(_)
        | DeclKind::Extension(_) => true,
        DeclKind::Var { ty, .. } => ty.is_some(),
        DeclKind::Param { ty, .. } => ty.as_ref().is_some_and(has_type_syntax),
        DeclKind::Output { ty, .. } => has_type_syntax(ty) || has_decorator(d, "secure"),
        DeclKind::Module { value, .. } => body_lacks(value, "name"),
        DeclKind::Resource { .. } => has_decorator(d, "retryOn"),
        _ => false,
    }
}

/// Aggregate type syntax: anything but a type name or a literal.
fn has_type_syntax(ty: &TypeExpr) -> bool {
    match &ty.kind {
        TypeKind::Object(_)
        | TypeKind::Array(_)
        | TypeKind::Tuple(_)
        | TypeKind::Union(_)
        | TypeKind::Nullable(_) => true,
        TypeKind::NonNull(inner) | TypeKind::Access(inner, _) => has_type_syntax(inner),
        TypeKind::Name(_) | TypeKind::Literal(_) | TypeKind::Parameterized(..) => false,
    }
}

fn has_decorator(d: &Decl, name: &str) -> bool {
    decorator_args(&d.decorators, name).is_some()
}

/// True when a resource or module body (possibly in a loop or condition) has no `key`.
fn body_lacks(value: &Expr, key: &str) -> bool {
    match &value.kind {
        ExprKind::Object(items) => !items.iter().any(
            |i| matches!(i, ObjectItem::Property { key: k, .. } if k.name.as_deref() == Some(key)),
        ),
        ExprKind::If { body, .. } | ExprKind::For { body, .. } => body_lacks(body, key),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn symbolic(src: &str) -> bool {
        needs_symbolic_names(&parse(src).into_result().unwrap())
    }

    #[test]
    fn classic_templates_stay_classic() {
        assert!(!symbolic(
            "param p string\n@secure()\nparam s string\nvar v = p\noutput o string = v\nmodule m 'm.bicep' = {\n  name: 'm'\n}\n"
        ));
    }

    #[test]
    fn language_2_0_constructs_switch_to_symbolic_names() {
        for src in [
            "type t = string\n",
            "var v string = 'a'\n",
            "func f() string => 'a'\n",
            "import * as x from 'x.bicep'\n",
            "param p string[]\n",
            "param p {\n  a: string\n}\n",
            "param p string?\n",
            "param p 'a' | 'b'\n",
            "output o [string] = ['a']\n",
            "@secure()\noutput o string = 'a'\n",
            "module m 'm.bicep' = {}\n",
            "module m 'm.bicep' = [for i in range(0, 2): {}]\n",
        ] {
            assert!(symbolic(src), "{src}");
        }
    }
}
