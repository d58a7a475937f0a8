//! Dependency tracking: references met while emitting a declaration become its
//! `dependsOn` entries (through variables, `nameof` and explicit lists).

use super::*;

impl<'a> Emitter<'a> {
    pub(super) fn record_dep(&self, tr: &mut Trace, sym: Sym, idx: Option<&str>) -> R<()> {
        self.record_dep_on(tr, sym, idx, false)
    }

    /// A reference that reads no state of the resource (its id, name, type or API
    /// version, a function on it, its use as parent or scope): an existing
    /// resource referred to so is no dependency even in a 2.0 template.
    pub(super) fn record_weak_dep(&self, tr: &mut Trace, sym: Sym, idx: Option<&str>) -> R<()> {
        self.record_dep_on(tr, sym, idx, true)
    }

    pub(super) fn record_dep_on(
        &self,
        tr: &mut Trace,
        sym: Sym,
        idx: Option<&str>,
        weak: bool,
    ) -> R<()> {
        if tr.suppress_deps > 0 {
            return Ok(());
        }
        match sym {
            Sym::Res(i) => {
                let r = &self.resources[i];
                if self.symbolic && !(r.existing && weak) {
                    let per_reference = r.looped.is_some() && names_one_element(idx);
                    let entry = self.symbolic_dep(sym, idx.filter(|_| per_reference));
                    tr.deps.push(Dep {
                        symbol: r.symbol.clone(),
                        entry,
                        per_reference,
                    });
                    return Ok(());
                }
                if r.existing {
                    // Existing resources are not deployed: depend on what their id uses.
                    let cx = self.res_cx(tr, r, idx)?;
                    self.ex(tr, r.name_expr, &cx)?;
                    if let Some(s) = r.scope_expr {
                        self.scope_ref(tr, Some(s), &cx)?;
                    }
                    if let Some(p) = r.parent {
                        self.record_weak_dep(tr, Sym::Res(p), None)?;
                    }
                    return Ok(());
                }
                let per_reference = r.looped.is_some() && names_one_element(idx);
                let entry = if r.looped.is_some() && !per_reference {
                    r.symbol.clone()
                } else {
                    format!("[{}]", self.resource_id(tr, i, idx)?)
                };
                tr.deps.push(Dep {
                    symbol: r.symbol.clone(),
                    entry,
                    per_reference,
                });
            }
            Sym::Mod(i) => {
                let m = &self.modules[i];
                let symbol = m.decl.name.clone().unwrap_or_default().0;
                let per_reference = m.looped.is_some() && names_one_element(idx);
                let entry = if self.symbolic {
                    self.symbolic_dep(sym, idx.filter(|_| per_reference))
                } else if m.looped.is_some() && !per_reference {
                    symbol.clone()
                } else {
                    format!("[{}]", self.module_id(tr, i, idx)?)
                };
                tr.deps.push(Dep {
                    symbol,
                    entry,
                    per_reference,
                });
            }
        }
        Ok(())
    }

    pub(super) fn with_deps_suppressed<T>(
        &self,
        tr: &mut Trace,
        f: impl FnOnce(&mut Trace) -> R<T>,
    ) -> R<T> {
        tr.suppress_deps += 1;
        let result = f(tr);
        tr.suppress_deps -= 1;
        result
    }

    /// Builds a declaration's JSON with `build` and adds the `dependsOn` that
    /// the references met while building call for.
    pub(super) fn with_depends_on(
        &self,
        tr: &mut Trace,
        symbol: &str,
        build: impl FnOnce(&mut Trace, &mut Map<String, Value>) -> R<()>,
    ) -> R<Value> {
        let mut out = Map::new();
        let deps = self.collect_deps(tr, |tr| build(tr, &mut out), symbol)?;
        if !deps.is_empty() {
            out.insert("dependsOn".into(), Value::Array(deps));
        }
        Ok(Value::Object(out))
    }

    /// Runs `f` collecting the dependencies it records, in `dependsOn` order.
    pub(super) fn collect_deps(
        &self,
        tr: &mut Trace,
        f: impl FnOnce(&mut Trace) -> R<()>,
        exclude: &str,
    ) -> R<Vec<Value>> {
        let saved = std::mem::take(&mut tr.deps);
        let result = f(tr);
        let mut deps = std::mem::replace(&mut tr.deps, saved);
        result?;
        deps.retain(|d| d.symbol != exclude);
        deps.sort_by(|a, b| culture_cmp(&a.symbol, &b.symbol).then_with(|| a.entry.cmp(&b.entry)));
        // A dependency on a whole collection subsumes dependencies on its elements.
        let whole: HashSet<String> = deps
            .iter()
            .filter(|d| !d.per_reference && d.entry == d.symbol)
            .map(|d| d.symbol.clone())
            .collect();
        deps.retain(|d| !(d.per_reference && whole.contains(&d.symbol)));
        let mut seen = HashSet::new();
        Ok(deps
            .into_iter()
            .filter(|d| d.per_reference || seen.insert(d.entry.clone()))
            .map(|d| Value::String(d.entry))
            .collect())
    }

    pub(super) fn record_var_deps(&self, tr: &mut Trace, name: &str, value: &Expr) -> R<()> {
        if tr.suppress_deps > 0 {
            return Ok(());
        }
        if let Some(cached) = tr.var_deps.get(name) {
            tr.deps.extend(cached.iter().cloned());
            return Ok(());
        }
        let saved = std::mem::take(&mut tr.deps);
        let result = self.emit_var_for_deps(tr, value);
        let mut found = std::mem::replace(&mut tr.deps, saved);
        result?;
        let mut seen = HashSet::new();
        found.retain(|d| seen.insert(d.entry.clone()));
        tr.deps.extend(found.iter().cloned());
        tr.var_deps.insert(name.to_string(), found);
        Ok(())
    }

    pub(super) fn emit_var_for_deps(&self, tr: &mut Trace, value: &Expr) -> R<()> {
        if let ExprKind::For {
            item,
            index,
            iterable,
            body,
        } = &value.kind
        {
            let cx = self.loop_cx(tr, item, index, iterable, "copyIndex()")?;
            self.val(tr, body, &cx)?;
        } else {
            self.val(tr, value, &Cx::default())?;
        }
        Ok(())
    }

    /// `nameof(x)` refers to `x`: the official compiler makes a resource or module
    /// named there a dependency although only its name is read.
    pub(super) fn record_nameof_dep(&self, tr: &mut Trace, args: &[Expr], cx: &Cx) -> R<()> {
        let mut root = args.first();
        while let Some(e) = root {
            match &e.kind {
                ExprKind::Member { base, .. }
                | ExprKind::Index { base, .. }
                | ExprKind::ChildAccess { base, .. } => root = Some(base),
                ExprKind::Ident(_) => break,
                _ => return Ok(()),
            }
        }
        if let Some(e) = root
            && let Some((sym, idx)) = self.symbol_ref(tr, e, cx)?
        {
            self.record_dep(tr, sym, idx.as_deref())?;
        }
        Ok(())
    }

    pub(super) fn explicit_deps(&self, tr: &mut Trace, d: &Expr, cx: &Cx) -> R<()> {
        let ExprKind::Array(items) = &d.kind else {
            return unsupported("A \"dependsOn\" that is not an array literal", d.span);
        };
        for item in items {
            let ArrayItem::Value(x) = item else {
                return unsupported("The spread operator in \"dependsOn\"", d.span);
            };
            match self.symbol_ref(tr, x, cx)? {
                Some((sym, idx)) => self.record_dep(tr, sym, idx.as_deref())?,
                None => {
                    return Err(Diagnostic::error(
                        "BCP034",
                        "The enclosing array expected an item of type \"module[] | (resource | module) | resource[]\".",
                        x.span,
                    ));
                }
            }
        }
        Ok(())
    }
}
