//! Module parameter values: `{"value": ...}`; a Key Vault reference for
//! `kv.getSecret(...)`; `{"copy": [...]}` for a loop; and, when a condition chooses
//! between secrets and values, one expression building either form, as the
//! official compiler emits them.

use serde_json::{Map, Value, json};

use super::{Cx, Emitter, R, Sym, Trace, expr_value, quote, value_to_expr};
use crate::ast::*;
use crate::diag::Diagnostic;

impl Emitter<'_> {
    /// A module parameter entry.
    pub(super) fn module_param(&self, tr: &mut Trace, value: &Expr, cx: &Cx) -> R<Value> {
        if let Some(reference) = self.key_vault_reference(tr, value, cx, "reference")? {
            return Ok(reference);
        }
        if let ExprKind::For {
            item,
            index,
            iterable,
            body,
        } = &value.kind
        {
            let lcx = self.loop_cx_in(tr, cx, item, index, iterable, "copyIndex('value')")?;
            return Ok(json!({"copy": [{
                "name": "value",
                "count": expr_value(format!("length({})", self.ex(tr, iterable, cx)?)),
                "input": self.val(tr, body, &lcx)?,
            }]}));
        }
        if chooses_secret(value) {
            return Ok(expr_value(self.chosen_param(tr, value, cx)?));
        }
        Ok(json!({ "value": self.val(tr, value, cx)? }))
    }

    /// `{"<key>": {"keyVault": {"id": ...}, "secretName": ...}}` for `kv.getSecret(...)`:
    /// `reference` in a module parameter, `keyVaultReference` in an extension config.
    pub(super) fn key_vault_reference(
        &self,
        tr: &mut Trace,
        value: &Expr,
        cx: &Cx,
        key: &str,
    ) -> R<Option<Value>> {
        let vault = match &value.kind {
            ExprKind::Call {
                namespace: Some(ns),
                name,
                args,
            } if name == "getSecret" && cx.get(ns).is_none() => match self.symbols.get(ns) {
                Some(Sym::Res(kv)) => Some((*kv, None, args)),
                _ => None,
            },
            ExprKind::MethodCall { base, name, args } if name == "getSecret" => {
                match self.symbol_ref(tr, base, cx)? {
                    Some((Sym::Res(kv), idx)) => Some((kv, idx, args)),
                    _ => None,
                }
            }
            _ => None,
        };
        let Some((kv, idx, args)) = vault else {
            return Ok(None);
        };
        self.record_weak_dep(tr, Sym::Res(kv), idx.as_deref())?;
        let mut reference = Map::new();
        reference.insert(
            "keyVault".into(),
            json!({ "id": expr_value(self.resource_id(tr, kv, idx.as_deref())?) }),
        );
        match args.as_slice() {
            [secret] => {
                reference.insert("secretName".into(), self.val(tr, secret, cx)?);
            }
            [secret, version] => {
                reference.insert("secretName".into(), self.val(tr, secret, cx)?);
                reference.insert("secretVersion".into(), self.val(tr, version, cx)?);
            }
            _ => {
                return Err(Diagnostic::error(
                    "BCP071",
                    "Expected 1 to 2 arguments, but got a different number.",
                    value.span,
                ));
            }
        }
        Ok(Some(json!({ key: reference })))
    }

    /// `if(cond, <entry>, <entry>)`, each branch a reference or `createObject('value', ...)`.
    fn chosen_param(&self, tr: &mut Trace, value: &Expr, cx: &Cx) -> R<String> {
        match &value.kind {
            ExprKind::Paren(x) => self.chosen_param(tr, x, cx),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => Ok(format!(
                "if({}, {}, {})",
                self.ex(tr, cond, cx)?,
                self.chosen_param(tr, then, cx)?,
                self.chosen_param(tr, otherwise, cx)?
            )),
            _ => match self.key_vault_reference(tr, value, cx, "reference")? {
                Some(reference) => Ok(value_to_expr(&reference)),
                None => Ok(format!(
                    "createObject({}, {})",
                    quote("value"),
                    self.ex(tr, value, cx)?
                )),
            },
        }
    }
}

/// True when a condition chooses a `getSecret(...)` call in one of its branches.
fn chooses_secret(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Ternary {
            then, otherwise, ..
        } => is_secret(then) || is_secret(otherwise),
        ExprKind::Paren(x) => chooses_secret(x),
        _ => false,
    }
}

fn is_secret(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Call { name, .. } | ExprKind::MethodCall { name, .. } => name == "getSecret",
        _ => chooses_secret(e),
    }
}
