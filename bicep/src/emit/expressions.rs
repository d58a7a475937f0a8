//! Expressions: Bicep expressions to JSON values and ARM template-language
//! strings (identifiers, members, function calls, list functions).

use super::loaders::{LOAD_FUNCTIONS, escape_loaded};
use super::modules::DEPLOYMENTS_API;
use super::*;

/// True when `e` ends in a safe access (`a.?b`, `a[?i]`, and accesses after one):
/// ARM's `tryGet` takes the whole remaining path.
pub(super) fn is_safe_chain(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Member { base, safe, .. } | ExprKind::Index { base, safe, .. } => {
            *safe || is_safe_chain(base)
        }
        _ => false,
    }
}

/// `tryGet(base, key)` for a safe access; a further access on a safe chain
/// extends the `tryGet` (or `tryIndexFromEnd`) that `base` already is.
pub(super) fn try_get(base: &str, key: &str, starts_chain: bool) -> String {
    let extends =
        !starts_chain && (base.starts_with("tryGet(") || base.starts_with("tryIndexFromEnd("));
    match base.strip_suffix(')') {
        Some(open) if extends => format!("{open}, {key})"),
        _ => format!("tryGet({base}, {key})"),
    }
}

/// `nameof(x)`: the last name in a symbol or property access, known at compile time.
pub(super) fn nameof(args: &[Expr], span: Span) -> R<String> {
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

impl<'a> Emitter<'a> {
    /// The body of a variable loop: ARM evaluates it as one expression, so
    /// scalars and arrays are written as expressions there.
    pub(super) fn var_loop_input(&self, tr: &mut Trace, body: &Expr, cx: &Cx) -> R<Value> {
        match &body.kind {
            ExprKind::Int(s) => Ok(expr_value(format!("int({})", int_value(s, body.span)?))),
            ExprKind::Bool(_) | ExprKind::Null | ExprKind::Array(_) => {
                Ok(expr_value(self.ex(tr, body, cx)?))
            }
            _ => self.val(tr, body, cx),
        }
    }

    /// Counts deploy-time variable inlinings so chains that double at each step
    /// fail fast instead of running for ever.
    pub(super) fn spend_inline_budget(&self, tr: &mut Trace, name: &str, span: Span) -> R<()> {
        let left = tr.inline_budget;
        if left == 0 {
            return Err(Diagnostic::error(
                "BCP-SIZE",
                format!("Inlining the variable \"{name}\" makes the template too large."),
                span,
            ));
        }
        tr.inline_budget = left - 1;
        Ok(())
    }

    /// Emits a declaration value as JSON: literals stay literal, everything else
    /// becomes an `"[expression]"` string.
    pub(super) fn val(&self, tr: &mut Trace, e: &Expr, cx: &Cx) -> R<Value> {
        match &e.kind {
            ExprKind::Str { pieces, holes } if holes.is_empty() => Ok(literal_string(&pieces[0])),
            ExprKind::Ident(n)
                if cx.get(n).is_none()
                    && self.model.vars.contains_key(n.as_str())
                    && self.is_runtime_var(tr, n) =>
            {
                self.inline_runtime_var(tr, e, n, cx)
            }
            ExprKind::Int(s) => int_value(s, e.span),
            ExprKind::Unary {
                op: UnaryOp::Minus,
                operand,
            } if matches!(operand.kind, ExprKind::Int(_)) => negative_int(operand, e.span),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Null => Ok(Value::Null),
            ExprKind::Array(items) if items.iter().all(|i| matches!(i, ArrayItem::Value(_))) => {
                self.array_val(tr, items, cx)
            }
            ExprKind::Object(items)
                if items.iter().all(|i| !matches!(i, ObjectItem::Spread(_))) =>
            {
                self.object_val(tr, items, cx, &[])
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
                self.record_nameof_dep(tr, args, cx)?;
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
                self.val(tr, &args[0], cx)
            }
            ExprKind::Member {
                base,
                name,
                safe: false,
            } if matches!(name.as_str(), "type" | "apiVersion")
                && matches!(self.symbol_ref(tr, base, cx)?, Some((Sym::Res(_), _))) =>
            {
                self.resource_type_or_api_version(tr, base, name, cx)
            }
            _ => self.folded_val(tr, e, cx),
        }
    }

    /// A resource's `type` or `apiVersion` property, known at compile time.
    fn resource_type_or_api_version(
        &self,
        tr: &mut Trace,
        base: &Expr,
        name: &str,
        cx: &Cx,
    ) -> R<Value> {
        let Some((Sym::Res(i), _)) = self.symbol_ref(tr, base, cx)? else {
            unreachable!()
        };
        let r = &self.resources[i];
        Ok(json!(if name == "type" {
            &r.full_type
        } else {
            &r.api_version
        }))
    }

    /// A general expression, emitted as a string literal when it reduced to one.
    fn folded_val(&self, tr: &mut Trace, e: &Expr, cx: &Cx) -> R<Value> {
        let text = self.ex(tr, e, cx)?;
        Ok(match unquote(&text) {
            Some(s) => literal_string(&s),
            None => expr_value(text),
        })
    }

    fn array_val(&self, tr: &mut Trace, items: &[ArrayItem], cx: &Cx) -> R<Value> {
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            if let ArrayItem::Value(x) = i {
                if matches!(x.kind, ExprKind::For { .. }) {
                    return unsupported("A loop nested directly in an array", x.span);
                }
                out.push(self.val(tr, x, cx)?);
            }
        }
        Ok(Value::Array(out))
    }

    /// A deploy-time variable's value, inlined with its structure intact.
    fn inline_runtime_var(&self, tr: &mut Trace, e: &Expr, n: &str, cx: &Cx) -> R<Value> {
        let DeclKind::Var { value, .. } = &self.model.vars[n].kind else {
            unreachable!()
        };
        if matches!(value.kind, ExprKind::For { .. }) {
            return Ok(expr_value(self.ex(tr, e, cx)?));
        }
        self.spend_inline_budget(tr, n, e.span)?;
        self.val(tr, value, &Cx::default())
    }

    /// Emits object items, skipping `skip` keys; property loops become `copy`.
    pub(super) fn object_val(
        &self,
        tr: &mut Trace,
        items: &[ObjectItem],
        cx: &Cx,
        skip: &[&str],
    ) -> R<Value> {
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
                        (None, Some(kx)) => format!("[{}]", self.ex(tr, kx, cx)?),
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
                            tr,
                            cx,
                            item,
                            index,
                            iterable,
                            &format!("copyIndex({})", quote(k)),
                        )?;
                        copies.push(json!({
                            "name": k,
                            "count": expr_value(format!("length({})", self.ex(tr, iterable, cx)?)),
                            "input": self.val(tr, body, &lcx)?,
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
                    out.insert(key, self.val(tr, value, cx)?);
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
    pub(super) fn ex(&self, tr: &mut Trace, e: &Expr, cx: &Cx) -> R<String> {
        match &e.kind {
            ExprKind::Str { pieces, holes } => self.ex_string(tr, pieces, holes, cx),
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
            ExprKind::Array(items) => self.ex_array(tr, items, cx),
            ExprKind::Object(items) => self.ex_object(tr, items, cx),
            ExprKind::Ident(n) => self.ident(tr, n, e.span, cx),
            ExprKind::Call {
                namespace,
                name,
                args,
            } => self.call(tr, namespace.as_deref(), name, args, e.span, cx),
            ExprKind::MethodCall { base, name, args } => match self.symbol_ref(tr, base, cx)? {
                Some((Sym::Res(i), idx)) if name.starts_with("list") => {
                    self.list_call(tr, i, idx.as_deref(), name, args, cx)
                }
                Some((Sym::Res(_), _)) if name == "getSecret" => Err(getsecret_misplaced(e.span)),
                _ => unsupported(format!("The function call \".{name}()\" here"), e.span),
            },
            ExprKind::Member { base, name, safe } => {
                self.ex_member(tr, base, name, *safe, e.span, cx)
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
                self.ex_index_from_end(tr, base, from_end, *safe, cx)
            }
            ExprKind::Index { base, index, safe } => self.ex_index(tr, e, base, index, *safe, cx),
            ExprKind::ChildAccess { .. } => match self.symbol_ref(tr, e, cx)? {
                Some((sym, idx)) => self.resource_value(tr, sym, idx.as_deref(), e.span),
                None => unsupported("This \"::\" access", e.span),
            },
            ExprKind::NonNull(x) => self.ex(tr, x, cx),
            ExprKind::Paren(x) => self.ex(tr, x, cx),
            ExprKind::Unary { op, operand } => match op {
                UnaryOp::Not => Ok(format!("not({})", self.ex(tr, operand, cx)?)),
                UnaryOp::FromEnd => unsupported("\"^\" outside an index", e.span),
                UnaryOp::Minus => match &operand.kind {
                    ExprKind::Int(s) => Ok(int_value(&format!("-{s}"), e.span)?.to_string()),
                    _ => unsupported("Unary minus on a non-literal", e.span),
                },
            },
            ExprKind::Binary { op, left, right } => Ok(binary_call(
                *op,
                &self.ex(tr, left, cx)?,
                &self.ex(tr, right, cx)?,
            )),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => Ok(format!(
                "if({}, {}, {})",
                self.ex(tr, cond, cx)?,
                self.ex(tr, then, cx)?,
                self.ex(tr, otherwise, cx)?
            )),
            ExprKind::Lambda { params, body } => self.ex_lambda(tr, params, body, cx),
            ExprKind::For { .. } => unsupported("A loop in this position", e.span),
            ExprKind::If { .. } => unsupported("A condition in this position", e.span),
        }
    }

    fn ex_index_from_end(
        &self,
        tr: &mut Trace,
        base: &Expr,
        from_end: &Expr,
        safe: bool,
        cx: &Cx,
    ) -> R<String> {
        let ExprKind::Unary { operand, .. } = &from_end.kind else {
            unreachable!()
        };
        let (b, n) = (self.ex(tr, base, cx)?, self.ex(tr, operand, cx)?);
        Ok(if safe {
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

    fn ex_lambda(&self, tr: &mut Trace, params: &[String], body: &Expr, cx: &Cx) -> R<String> {
        let mut lcx = cx.clone();
        for p in params {
            lcx.locals
                .push((p.clone(), format!("lambdaVariables({})", quote(p))));
        }
        let names = params.iter().map(|p| quote(p)).collect::<Vec<_>>();
        Ok(format!(
            "lambda({}, {})",
            names.join(", "),
            self.ex(tr, body, &lcx)?
        ))
    }

    fn ex_index(
        &self,
        tr: &mut Trace,
        e: &Expr,
        base: &Expr,
        index: &Expr,
        safe: bool,
        cx: &Cx,
    ) -> R<String> {
        if safe || is_safe_chain(base) {
            if self.symbol_ref(tr, base, cx)?.is_some() {
                return unsupported("The safe-dereference operator on a resource", e.span);
            }
            return Ok(try_get(
                &self.ex(tr, base, cx)?,
                &self.ex(tr, index, cx)?,
                safe,
            ));
        }
        if let Some(key) = plain_string(index)
            && self.symbol_ref(tr, base, cx)?.is_some()
        {
            return self.member(tr, base, key, e.span, cx);
        }
        if let Some((sym, idx)) = self.symbol_ref(tr, e, cx)? {
            return self.resource_value(tr, sym, idx.as_deref(), e.span);
        }
        match plain_string(index) {
            Some(key) if is_identifier(key) => Ok(format!("{}.{key}", self.ex(tr, base, cx)?)),
            _ => Ok(format!(
                "{}[{}]",
                self.ex(tr, base, cx)?,
                self.ex(tr, index, cx)?
            )),
        }
    }

    fn ex_member(
        &self,
        tr: &mut Trace,
        base: &Expr,
        name: &str,
        safe: bool,
        span: Span,
        cx: &Cx,
    ) -> R<String> {
        if safe || is_safe_chain(base) {
            if self.symbol_ref(tr, base, cx)?.is_some() {
                return unsupported("The safe-dereference operator on a resource", span);
            }
            let text = try_get(&self.ex(tr, base, cx)?, &quote(name), safe);
            // A module output is an object whose `value` is the output.
            return Ok(if safe && self.is_module_outputs(tr, base, cx)? {
                format!("tryGet({text}, 'value')")
            } else {
                text
            });
        }
        self.member(tr, base, name, span, cx)
    }

    fn ex_object(&self, tr: &mut Trace, items: &[ObjectItem], cx: &Cx) -> R<String> {
        // With spreads, runs of properties become objects merged left to right.
        let mut groups = Vec::new();
        let mut parts = Vec::new();
        let mut spread = false;
        for i in items {
            match i {
                ObjectItem::Property { key, value, .. } => {
                    let k = match (&key.name, &key.interpolated) {
                        (Some(k), _) => quote(k),
                        (None, Some(kx)) => self.ex(tr, kx, cx)?,
                        (None, None) => return unsupported("This object key", key.span),
                    };
                    if matches!(value.kind, ExprKind::For { .. }) {
                        return unsupported("A loop inside an object expression", value.span);
                    }
                    parts.push(format!("{k}, {}", self.ex(tr, value, cx)?));
                }
                ObjectItem::Spread(x) => {
                    spread = true;
                    if !parts.is_empty() {
                        groups.push(format!("createObject({})", parts.join(", ")));
                        parts.clear();
                    }
                    groups.push(self.ex(tr, x, cx)?);
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

    fn ex_array(&self, tr: &mut Trace, items: &[ArrayItem], cx: &Cx) -> R<String> {
        // With spreads, runs of plain items become arrays that are flattened together.
        let mut groups = Vec::new();
        let mut run = Vec::new();
        let mut spread = false;
        for i in items {
            match i {
                ArrayItem::Value(x) => run.push(self.ex(tr, x, cx)?),
                ArrayItem::Spread(x) => {
                    spread = true;
                    if !run.is_empty() {
                        groups.push(format!("createArray({})", run.join(", ")));
                        run.clear();
                    }
                    groups.push(self.ex(tr, x, cx)?);
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

    fn ex_string(&self, tr: &mut Trace, pieces: &[String], holes: &[Expr], cx: &Cx) -> R<String> {
        if holes.is_empty() {
            return Ok(quote(&pieces[0]));
        }
        let mut fmt = String::new();
        let mut args = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            fmt.push_str(&p.replace('{', "{{").replace('}', "}}"));
            if let Some(h) = holes.get(i) {
                fmt.push_str(&format!("{{{i}}}"));
                args.push(self.ex(tr, h, cx)?);
            }
        }
        Ok(format!("format({}, {})", quote(&fmt), args.join(", ")))
    }

    pub(super) fn ident(&self, tr: &mut Trace, n: &str, span: Span, cx: &Cx) -> R<String> {
        if let Some(t) = cx.get(n) {
            return Ok(t.to_string());
        }
        if self.model.params.contains_key(n) {
            return Ok(format!("parameters({})", quote(n)));
        }
        if self.arm_variables.declares(n) {
            return Ok(format!("variables({})", quote(n)));
        }
        if let Some(d) = self.model.vars.get(n) {
            let DeclKind::Var { value, .. } = &d.kind else {
                unreachable!()
            };
            if self.is_runtime_var(tr, n) {
                if matches!(value.kind, ExprKind::For { .. }) {
                    return unsupported("A loop variable that reads deployment-time values", span);
                }
                self.spend_inline_budget(tr, n, span)?;
                let text = self.ex(tr, value, &Cx::default())?;
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
            self.record_var_deps(tr, n, value)?;
            return Ok(format!("variables({})", quote(n)));
        }
        if let Some(sym) = self.symbols.get(n).copied() {
            return self.resource_value(tr, sym, None, span);
        }
        Err(Diagnostic::error(
            "BCP057",
            format!("The name \"{n}\" does not exist in the current context."),
            span,
        ))
    }

    /// A resource used as a whole value reads its full runtime state.
    pub(super) fn resource_value(
        &self,
        tr: &mut Trace,
        sym: Sym,
        idx: Option<&str>,
        span: Span,
    ) -> R<String> {
        let Sym::Res(i) = sym else {
            return unsupported("Using a module as a value", span);
        };
        if self.resources[i].looped.is_some() && idx.is_none() {
            return unsupported(
                "A resource collection used as a value (needs languageVersion 2.0)",
                span,
            );
        }
        self.record_dep(tr, sym, idx)?;
        if self.symbolic {
            return self.symbolic_full(i, idx);
        }
        Ok(format!(
            "reference({}, {}, 'full')",
            self.resource_id(tr, i, idx)?,
            quote(&self.resources[i].api_version)
        ))
    }

    pub(super) fn member(
        &self,
        tr: &mut Trace,
        base: &Expr,
        name: &str,
        span: Span,
        cx: &Cx,
    ) -> R<String> {
        if let Some(config) = self.extension_config_access(base, name, cx)? {
            return Ok(config);
        }
        if let Some((sym, idx)) = self.symbol_ref(tr, base, cx)? {
            if matches!(name, "id" | "name" | "type" | "apiVersion") {
                self.record_weak_dep(tr, sym, idx.as_deref())?;
            } else {
                self.record_dep(tr, sym, idx.as_deref())?;
            }
            return match sym {
                Sym::Res(i) => self.resource_member(tr, i, idx.as_deref(), name),
                Sym::Mod(i) => self.module_member(tr, i, idx.as_deref(), name, span),
            };
        }
        // `module.outputs.x` reads the output's value.
        if let ExprKind::Member {
            base: inner,
            name: outputs,
            ..
        } = &base.kind
            && outputs == "outputs"
            && let Some((Sym::Mod(m), _)) = self.symbol_ref(tr, inner, cx)?
        {
            let declared = &self.modules[m].template["outputs"];
            if declared.get(name).is_none() {
                return Err(Diagnostic::error(
                    "BCP053",
                    format!("The type \"outputs\" does not contain property \"{name}\"."),
                    span,
                ));
            }
            return Ok(format!("{}.{name}.value", self.ex(tr, base, cx)?));
        }
        Ok(format!("{}.{name}", self.ex(tr, base, cx)?))
    }

    /// Property `name` of resource `i` (element `idx` of a loop).
    fn resource_member(
        &self,
        tr: &mut Trace,
        i: usize,
        idx: Option<&str>,
        name: &str,
    ) -> R<String> {
        let r = &self.resources[i];
        let sym = Sym::Res(i);
        match name {
            "id" => self.resource_id(tr, i, idx),
            "name" => self.with_deps_suppressed(tr, |tr| {
                let cx = self.res_cx(tr, r, idx)?;
                self.ex(tr, r.name_expr, &cx)
            }),
            "type" => Ok(quote(&r.full_type)),
            "apiVersion" => Ok(quote(&r.api_version)),
            "properties" if self.symbolic => Ok(self.symbolic_properties(sym, idx)),
            other if self.symbolic => Ok(format!("{}.{other}", self.symbolic_full(i, idx)?)),
            "properties" => Ok(format!(
                "reference({}, {})",
                self.resource_id(tr, i, idx)?,
                quote(&r.api_version)
            )),
            other => Ok(format!(
                "reference({}, {}, 'full').{other}",
                self.resource_id(tr, i, idx)?,
                quote(&r.api_version)
            )),
        }
    }

    /// Property `name` of module `i` (element `idx` of a loop).
    fn module_member(
        &self,
        tr: &mut Trace,
        i: usize,
        idx: Option<&str>,
        name: &str,
        span: Span,
    ) -> R<String> {
        let sym = Sym::Mod(i);
        match name {
            "name" => {
                let m = &self.modules[i];
                let mcx = match (&m.looped, idx) {
                    (Some(l), Some(x)) => self.loop_cx(tr, &l.item, &l.index, l.iterable, x)?,
                    _ => Cx::default(),
                };
                self.with_deps_suppressed(tr, |tr| self.ex(tr, &m.name_expr, &mcx))
            }
            "outputs" if self.symbolic => {
                Ok(format!("{}.outputs", self.symbolic_properties(sym, idx)))
            }
            "outputs" => Ok(format!(
                "reference({}, {}).outputs",
                self.module_id(tr, i, idx)?,
                quote(DEPLOYMENTS_API)
            )),
            _ => unsupported(format!("The module property \"{name}\""), span),
        }
    }

    /// True when `e` is `module.outputs`.
    pub(super) fn is_module_outputs(&self, tr: &mut Trace, e: &Expr, cx: &Cx) -> R<bool> {
        Ok(match &e.kind {
            ExprKind::Member {
                base,
                name,
                safe: false,
            } if name == "outputs" => {
                matches!(self.symbol_ref(tr, base, cx)?, Some((Sym::Mod(_), _)))
            }
            _ => false,
        })
    }

    /// `res.listKeys(...)`: the `list*` action on the resource's id and API version.
    pub(super) fn list_call(
        &self,
        tr: &mut Trace,
        i: usize,
        idx: Option<&str>,
        name: &str,
        args: &[Expr],
        cx: &Cx,
    ) -> R<String> {
        self.record_weak_dep(tr, Sym::Res(i), idx)?;
        let r = &self.resources[i];
        let target = if self.symbolic {
            self.symbolic_ref(Sym::Res(i), idx)
        } else {
            self.resource_id(tr, i, idx)?
        };
        let mut parts = vec![target, quote(&r.api_version)];
        for a in args {
            parts.push(self.ex(tr, a, cx)?);
        }
        Ok(format!("{name}({})", parts.join(", ")))
    }

    pub(super) fn call(
        &self,
        tr: &mut Trace,
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
                return self.list_call(tr, i, None, name, args, cx);
            }
            if name == "getSecret" && matches!(self.symbols.get(ns), Some(Sym::Res(_))) {
                return Err(getsecret_misplaced(span));
            }
            return unsupported(format!("The function call \"{ns}.{name}()\""), span);
        }
        match name {
            "any" if args.len() == 1 => return self.ex(tr, &args[0], cx),
            "nameof" => {
                self.record_nameof_dep(tr, args, cx)?;
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
            parts.push(self.ex(tr, a, cx)?);
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
}

/// The ARM function applying a binary operator to two emitted operands.
fn binary_call(op: BinaryOp, l: &str, r: &str) -> String {
    match op {
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
    }
}

/// A negated integer literal.
fn negative_int(operand: &Expr, span: Span) -> R<Value> {
    let ExprKind::Int(s) = &operand.kind else {
        unreachable!()
    };
    int_value(&format!("-{s}"), span)
}
