//! Compile-time analysis: whether an expression needs a runtime value, and the
//! constant strings and arrays it folds to.

use super::*;

/// One runtime analysis of an expression: the loop and lambda variables in
/// scope, how computed property names are judged, whether a judgement rested
/// on one, and what is known of variables already.
pub(super) struct RuntimeScan<'m> {
    locals: Vec<String>,
    /// Computed property names whose every possible constant value is a
    /// deploy-time property (`id`, `name`, …) do not count as runtime access.
    resolve_computed_keys: bool,
    /// Set when a runtime decision rested on a computed resource property name.
    pub uncertain: bool,
    /// Whether each variable needs a runtime value, computed once per template
    /// (an entry is set to `false` first, so a reference cycle ends).
    known_vars: &'m mut HashMap<String, bool>,
}

impl<'m> RuntimeScan<'m> {
    pub fn new(known_vars: &'m mut HashMap<String, bool>) -> Self {
        RuntimeScan {
            locals: Vec::new(),
            resolve_computed_keys: false,
            uncertain: false,
            known_vars,
        }
    }

    /// A scan that resolves computed property names to their constant values.
    pub fn resolving_computed_keys(known_vars: &'m mut HashMap<String, bool>) -> Self {
        RuntimeScan {
            resolve_computed_keys: true,
            ..RuntimeScan::new(known_vars)
        }
    }
}

impl<'a> Emitter<'a> {
    pub(super) fn is_runtime_var(&self, tr: &mut Trace, name: &str) -> bool {
        self.is_runtime_var_in(name, &mut RuntimeScan::new(&mut tr.runtime_vars))
    }

    /// Whether variable `name` needs a runtime value, judged as `scan` judges.
    fn is_runtime_var_in(&self, name: &str, scan: &mut RuntimeScan) -> bool {
        if let Some(v) = scan.known_vars.get(name) {
            return *v;
        }
        // Marked first, so a cycle through this variable ends here.
        scan.known_vars.insert(name.to_string(), false);
        let mut inner = RuntimeScan {
            resolve_computed_keys: scan.resolve_computed_keys,
            ..RuntimeScan::new(scan.known_vars)
        };
        let result = match self.model.vars.get(name).map(|d| &d.kind) {
            Some(DeclKind::Var { value, .. }) => self.is_runtime_expr(value, &mut inner),
            _ => false,
        };
        scan.uncertain |= inner.uncertain;
        scan.known_vars.insert(name.to_string(), result);
        result
    }

    /// True when the value can only be known during deployment (it reads resource
    /// state or module outputs), so ARM forbids it in `variables`.
    pub(super) fn is_runtime_expr(&self, e: &Expr, scan: &mut RuntimeScan) -> bool {
        let rt = |x: &Expr, l: &mut RuntimeScan| self.is_runtime_expr(x, l);
        match &e.kind {
            ExprKind::MethodCall { .. } => true,
            ExprKind::Member { base, name, .. } => {
                if let Some(sym) = self.sym_of(base, &scan.locals) {
                    return !is_deploy_time_property(sym, name);
                }
                rt(base, scan)
            }
            ExprKind::Ident(n) => {
                !scan.locals.contains(n)
                    && (self.symbols.contains_key(n.as_str())
                        || (self.model.vars.contains_key(n.as_str())
                            && self.is_runtime_var_in(n, scan)))
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
                    || args.iter().any(|a| rt(a, scan))
            }
            ExprKind::Str { holes, .. } => holes.iter().any(|h| rt(h, scan)),
            ExprKind::Array(items) => items.iter().any(|i| match i {
                ArrayItem::Value(x) | ArrayItem::Spread(x) => rt(x, scan),
            }),
            ExprKind::Object(items) => items.iter().any(|i| match i {
                ObjectItem::Property { value, .. } => rt(value, scan),
                ObjectItem::Spread(x) => rt(x, scan),
                ObjectItem::NestedResource(_) => false,
            }),
            ExprKind::Index { base, index, .. } => match self.sym_of(base, &scan.locals) {
                Some(sym) => self.is_runtime_symbol_index(sym, base, index, scan),
                None => rt(base, scan) || rt(index, scan),
            },
            ExprKind::ChildAccess { .. } => true,
            ExprKind::NonNull(x) | ExprKind::Paren(x) | ExprKind::Unary { operand: x, .. } => {
                rt(x, scan)
            }
            ExprKind::Binary { left, right, .. } => rt(left, scan) || rt(right, scan),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => rt(cond, scan) || rt(then, scan) || rt(otherwise, scan),
            ExprKind::For {
                item,
                index,
                iterable,
                body,
            } => {
                let n = scan.locals.len();
                scan.locals.extend(item.iter().cloned());
                scan.locals.extend(index.iter().cloned());
                let r = rt(iterable, scan) || rt(body, scan);
                scan.locals.truncate(n);
                r
            }
            ExprKind::If { cond, body } => rt(cond, scan) || rt(body, scan),
            ExprKind::Lambda { params, body } => {
                let n = scan.locals.len();
                scan.locals.extend(params.iter().cloned());
                let r = rt(body, scan);
                scan.locals.truncate(n);
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
        scan: &mut RuntimeScan,
    ) -> bool {
        let collection = match sym {
            Sym::Res(i) => self.resources[i].looped.is_some(),
            Sym::Mod(i) => self.modules[i].looped.is_some(),
        } && matches!(base.kind, ExprKind::Ident(_));
        match plain_string(index) {
            _ if collection => true,
            Some(key) => !is_deploy_time_property(sym, key),
            None => {
                if scan.resolve_computed_keys
                    && let Some(keys) = self.const_strings(index, &scan.locals, 0)
                {
                    return !keys.iter().all(|k| is_deploy_time_property(sym, k));
                }
                // Computed property names could be compile-time constants.
                scan.uncertain = true;
                true
            }
        }
    }

    /// The span of the innermost container item that needs a runtime value, where
    /// the official compiler reports it (the property value, not the whole loop).
    pub(super) fn first_runtime_span(&self, e: &Expr, scan: &mut RuntimeScan) -> Option<Span> {
        match &e.kind {
            ExprKind::For {
                item,
                index,
                iterable,
                body,
            } => {
                if self.is_runtime_expr(iterable, scan) {
                    return self.first_runtime_span(iterable, scan);
                }
                let n = scan.locals.len();
                scan.locals.extend(item.iter().cloned());
                scan.locals.extend(index.iter().cloned());
                let r = self.first_runtime_span(body, scan);
                scan.locals.truncate(n);
                r
            }
            ExprKind::Object(items) => items.iter().find_map(|i| match i {
                ObjectItem::Property { value: x, .. } | ObjectItem::Spread(x) => {
                    self.first_runtime_span(x, scan)
                }
                ObjectItem::NestedResource(_) => None,
            }),
            ExprKind::Array(items) => items.iter().find_map(|i| match i {
                ArrayItem::Value(x) | ArrayItem::Spread(x) => self.first_runtime_span(x, scan),
            }),
            _ => self.is_runtime_expr(e, scan).then_some(e.span),
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
            ExprKind::Ident(n) if !locals.contains(n) => {
                match &self.model.vars.get(n.as_str())?.kind {
                    DeclKind::Var { value, .. } => one(value),
                    _ => None,
                }
            }
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
            ExprKind::Ident(n) if !locals.contains(n) => {
                match &self.model.vars.get(n.as_str())?.kind {
                    DeclKind::Var { value, .. } => self.const_array(value, locals, depth + 1),
                    _ => None,
                }
            }
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
