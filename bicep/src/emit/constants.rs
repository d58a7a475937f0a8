//! Compile-time analysis: whether an expression needs a runtime value, and the
//! constant strings and arrays it folds to.

use super::*;

impl<'a> Emitter<'a> {
    pub(super) fn is_runtime_var(&self, name: &str) -> bool {
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
    pub(super) fn is_runtime_expr(&self, e: &Expr, locals: &mut Vec<String>) -> bool {
        let rt = |x: &Expr, l: &mut Vec<String>| self.is_runtime_expr(x, l);
        match &e.kind {
            ExprKind::MethodCall { .. } => true,
            ExprKind::Member { base, name, .. } => {
                if let Some(sym) = self.sym_of(base, locals) {
                    return !is_deploy_time_property(sym, name);
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
            ExprKind::Index { base, index, .. } => match self.sym_of(base, locals) {
                Some(sym) => self.is_runtime_symbol_index(sym, base, index, locals),
                None => rt(base, locals) || rt(index, locals),
            },
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

    /// Whether `sym[index]` needs a runtime value: an element of a collection
    /// does (a reference, like the symbol itself); a property does unless it is
    /// known at the start of the deployment (`res['id']` reads like `res.id`).
    fn is_runtime_symbol_index(
        &self,
        sym: Sym,
        base: &Expr,
        index: &Expr,
        locals: &[String],
    ) -> bool {
        let collection = match sym {
            Sym::Res(i) => self.resources[i].looped.is_some(),
            Sym::Mod(i) => self.modules[i].looped.is_some(),
        } && matches!(base.kind, ExprKind::Ident(_));
        match plain_string(index) {
            _ if collection => true,
            Some(key) => !is_deploy_time_property(sym, key),
            None => {
                if self.resolve_computed_keys.get()
                    && let Some(keys) = self.const_strings(index, locals, 0)
                {
                    return !keys.iter().all(|k| is_deploy_time_property(sym, k));
                }
                // Computed property names could be compile-time constants.
                self.uncertain_runtime.set(true);
                true
            }
        }
    }

    /// The span of the innermost container item that needs a runtime value, where
    /// the official compiler reports it (the property value, not the whole loop).
    pub(super) fn first_runtime_span(&self, e: &Expr, locals: &mut Vec<String>) -> Option<Span> {
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
    pub(super) fn const_strings(
        &self,
        e: &Expr,
        locals: &[String],
        depth: usize,
    ) -> Option<Vec<String>> {
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
    pub(super) fn const_array<'e>(
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

    pub(super) fn sym_of(&self, e: &Expr, locals: &[String]) -> Option<Sym> {
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
}

/// A property of a resource or module whose value is known at the start of the
/// deployment.
fn is_deploy_time_property(sym: Sym, key: &str) -> bool {
    match sym {
        Sym::Res(_) => matches!(key, "id" | "name" | "type" | "apiVersion"),
        Sym::Mod(_) => key == "name",
    }
}
