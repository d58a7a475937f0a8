//! Resource declarations: scopes, names, ids, loop contexts, conditions and the
//! resource JSON itself.

use super::*;

impl<'a> Emitter<'a> {
    /// Locals for a loop body: the item is `iterable[idx]`, the index `idx`.
    pub(super) fn loop_cx(
        &self,
        tr: &mut Trace,
        item: &Option<String>,
        index: &Option<String>,
        iterable: &Expr,
        idx: &str,
    ) -> R<Cx> {
        self.loop_cx_in(tr, &Cx::default(), item, index, iterable, idx)
    }

    pub(super) fn loop_cx_in(
        &self,
        tr: &mut Trace,
        base: &Cx,
        item: &Option<String>,
        index: &Option<String>,
        iterable: &Expr,
        idx: &str,
    ) -> R<Cx> {
        let iter = self.ex(tr, iterable, base)?;
        Ok(base
            .with(item, format!("{iter}[{idx}]"))
            .with(index, idx.to_string()))
    }

    pub(super) fn res_cx(&self, tr: &mut Trace, r: &Res, idx: Option<&str>) -> R<Cx> {
        match (&r.looped, idx) {
            (Some(l), Some(i)) => self.loop_cx(tr, &l.item, &l.index, l.iterable, i),
            (Some(l), None) => self.loop_cx(tr, &l.item, &l.index, l.iterable, "copyIndex()"),
            _ => Ok(Cx::default()),
        }
    }

    /// Name segments of a resource, one per type segment after the provider.
    pub(super) fn name_segments(
        &self,
        tr: &mut Trace,
        i: usize,
        idx: Option<&str>,
    ) -> R<Vec<String>> {
        let r = &self.resources[i];
        let cx = self.res_cx(tr, r, idx)?;
        let own = self.ex(tr, r.name_expr, &cx)?;
        if let Some(p) = r.parent {
            let parent_idx = r.parent_index.map(|x| self.ex(tr, x, &cx)).transpose()?;
            let mut segs = self.name_segments(tr, p, parent_idx.as_deref())?;
            segs.push(own);
            return Ok(segs);
        }
        let n = r.full_type.split('/').count().saturating_sub(1);
        if n <= 1 {
            return Ok(vec![own]);
        }
        Ok((0..n).map(|k| format!("split({own}, '/')[{k}]")).collect())
    }

    pub(super) fn scope_ref(&self, tr: &mut Trace, scope: Option<&Expr>, cx: &Cx) -> R<ScopeRef> {
        let Some(e) = scope else {
            return Ok(ScopeRef::Default);
        };
        if let Some((sym, idx)) = self.symbol_ref(tr, e, cx)? {
            return match sym {
                Sym::Res(i) => {
                    self.record_weak_dep(tr, sym, idx.as_deref())?;
                    let r = &self.resources[i];
                    if r.full_type
                        .eq_ignore_ascii_case("Microsoft.Resources/resourceGroups")
                    {
                        let cx = self.res_cx(tr, r, idx.as_deref())?;
                        let rg = self.ex(tr, r.name_expr, &cx)?;
                        return Ok(ScopeRef::ResourceGroup { sub: None, rg });
                    }
                    Ok(ScopeRef::Resource(self.resource_id(
                        tr,
                        i,
                        idx.as_deref(),
                    )?))
                }
                Sym::Mod(_) => unsupported("A module used as a scope", e.span),
            };
        }
        if let ExprKind::Call {
            namespace,
            name,
            args,
        } = &e.kind
            && namespace.as_deref().is_none_or(|n| n == "az")
        {
            let a = args
                .iter()
                .map(|x| self.ex(tr, x, cx))
                .collect::<R<Vec<_>>>()?;
            return match (name.as_str(), a.len()) {
                ("resourceGroup", 1) => Ok(ScopeRef::ResourceGroup {
                    sub: None,
                    rg: a[0].clone(),
                }),
                ("resourceGroup", 2) => Ok(ScopeRef::ResourceGroup {
                    sub: Some(a[0].clone()),
                    rg: a[1].clone(),
                }),
                ("resourceGroup", 0) if self.target == TargetScope::ResourceGroup => {
                    Ok(ScopeRef::Default)
                }
                ("subscription", 0) if self.target == TargetScope::Subscription => {
                    Ok(ScopeRef::Default)
                }
                ("subscription", 0) => Ok(ScopeRef::Subscription(None)),
                ("subscription", 1) => Ok(ScopeRef::Subscription(Some(a[0].clone()))),
                ("tenant", 0) if self.target == TargetScope::Tenant => Ok(ScopeRef::Default),
                ("tenant", 0) => Ok(ScopeRef::Tenant),
                ("managementGroup", 0) if self.target == TargetScope::ManagementGroup => {
                    Ok(ScopeRef::Default)
                }
                ("managementGroup", 0) => Ok(ScopeRef::ManagementGroup(None)),
                ("managementGroup", 1) => Ok(ScopeRef::ManagementGroup(Some(a[0].clone()))),
                _ => unsupported(format!("The scope \"{name}(...)\""), e.span),
            };
        }
        unsupported("This scope expression", e.span)
    }

    pub(super) fn id_for(&self, scope: &ScopeRef, ty: &str, segs: &[String]) -> R<String> {
        let tail = std::iter::once(quote(ty))
            .chain(segs.iter().cloned())
            .collect::<Vec<_>>()
            .join(", ");
        Ok(match scope {
            ScopeRef::Default => match self.target {
                TargetScope::ResourceGroup => format!("resourceId({tail})"),
                TargetScope::Subscription => format!("subscriptionResourceId({tail})"),
                TargetScope::Tenant => format!("tenantResourceId({tail})"),
                TargetScope::ManagementGroup => {
                    format!("extensionResourceId(managementGroup().id, {tail})")
                }
            },
            ScopeRef::ManagementGroup(None) => {
                format!("extensionResourceId(managementGroup().id, {tail})")
            }
            ScopeRef::ManagementGroup(Some(name)) => format!(
                "extensionResourceId(tenantResourceId('Microsoft.Management/managementGroups', {name}), {tail})"
            ),
            ScopeRef::ResourceGroup { sub, rg } => format!(
                "extensionResourceId(format('/subscriptions/{{0}}/resourceGroups/{{1}}', {}, {rg}), {tail})",
                sub.as_deref().unwrap_or("subscription().subscriptionId")
            ),
            ScopeRef::Subscription(None) => format!("subscriptionResourceId({tail})"),
            ScopeRef::Subscription(Some(s)) => format!("subscriptionResourceId({s}, {tail})"),
            ScopeRef::Tenant => format!("tenantResourceId({tail})"),
            ScopeRef::Resource(id) => format!("extensionResourceId({id}, {tail})"),
        })
    }

    pub(super) fn resource_id(&self, tr: &mut Trace, i: usize, idx: Option<&str>) -> R<String> {
        self.with_deps_suppressed(tr, |tr| self.resource_id_inner(tr, i, idx))
    }

    pub(super) fn resource_id_inner(
        &self,
        tr: &mut Trace,
        i: usize,
        idx: Option<&str>,
    ) -> R<String> {
        let r = &self.resources[i];
        let segs = self.name_segments(tr, i, idx)?;
        let mut root = i;
        while let Some(p) = self.resources[root].parent {
            root = p;
        }
        let scope_expr = self.resources[root].scope_expr;
        let cx = self.res_cx(
            tr,
            &self.resources[root],
            if root == i { idx } else { None },
        )?;
        let scope = self.scope_ref(tr, scope_expr, &cx)?;
        self.id_for(&scope, &r.full_type, &segs)
    }

    pub(super) fn resource(&self, tr: &mut Trace, i: usize) -> R<Value> {
        let r = &self.resources[i];
        self.check_decorators(&r.decl.decorators, &["description", "batchSize"])?;
        let symbol = r.symbol.clone();
        let body = r.body;
        self.with_depends_on(tr, &symbol, |tr, out| {
            let cx = self.res_cx(tr, r, None)?;
            // Only a 2.0 template emits existing resources.
            if r.existing {
                out.insert("existing".into(), json!(true));
            }
            self.resource_extension(out);
            out.insert("type".into(), json!(r.full_type));
            out.insert("apiVersion".into(), json!(r.api_version));
            // The declaration depends on what its own name refers to.
            let own_name = self.val(tr, r.name_expr, &cx)?;
            let segs = self.with_deps_suppressed(tr, |tr| self.name_segments(tr, i, None))?;
            let name = if r.parent.is_some() {
                let holes = (0..segs.len())
                    .map(|k| format!("{{{k}}}"))
                    .collect::<Vec<_>>()
                    .join("/");
                expr_value(format!("format({}, {})", quote(&holes), segs.join(", ")))
            } else {
                own_name
            };
            out.insert("name".into(), name);
            self.resource_scope(tr, i, &cx, out)?;
            if let Some(c) = self.condition(tr, i, &cx)? {
                out.insert("condition".into(), c);
            }
            if let Some(l) = &r.looped {
                let copy = self.loop_copy(tr, &r.decl.decorators, l, &r.symbol)?;
                out.insert("copy".into(), copy);
            }
            let Value::Object(props) =
                self.object_val(tr, body, &cx, &["name", "parent", "scope", "dependsOn"])?
            else {
                unreachable!()
            };
            out.extend(props);
            if let Some(p) = r.parent {
                let parent_idx = r.parent_index.map(|x| self.ex(tr, x, &cx)).transpose()?;
                self.record_weak_dep(tr, Sym::Res(p), parent_idx.as_deref())?;
            }
            if let Some(d) = property(body, "dependsOn") {
                self.explicit_deps(tr, d, &cx)?;
            }
            self.description_metadata(tr, &r.decl.decorators, out)?;
            Ok(())
        })
    }

    /// A resource's `scope` (or, for an existing resource of another group or
    /// subscription, `subscriptionId` and `resourceGroup`). Children of an
    /// extension resource share its scope.
    fn resource_scope(
        &self,
        tr: &mut Trace,
        i: usize,
        cx: &Cx,
        out: &mut Map<String, Value>,
    ) -> R<()> {
        let r = &self.resources[i];
        let mut root = i;
        while let Some(p) = self.resources[root].parent {
            root = p;
        }
        let (scope_expr, scope_cx) = if root == i {
            (r.scope_expr, cx.clone())
        } else {
            (self.resources[root].scope_expr, Cx::default())
        };
        if let Some(s) = scope_expr {
            let scope = if root == i {
                self.scope_ref(tr, Some(s), &scope_cx)?
            } else {
                self.with_deps_suppressed(tr, |tr| self.scope_ref(tr, Some(s), &scope_cx))?
            };
            match scope {
                ScopeRef::Resource(id) => {
                    out.insert("scope".into(), expr_value(id));
                }
                ScopeRef::Tenant => {
                    out.insert("scope".into(), json!("/"));
                }
                ScopeRef::Default => {}
                // An existing resource of another group or subscription.
                ScopeRef::ResourceGroup { sub, rg } if r.existing => {
                    if let Some(sub) = sub {
                        out.insert("subscriptionId".into(), expr_value_or_literal(&sub));
                    }
                    out.insert("resourceGroup".into(), expr_value_or_literal(&rg));
                }
                ScopeRef::Subscription(sub) if r.existing => {
                    let sub = sub.unwrap_or_else(|| "subscription().subscriptionId".into());
                    out.insert("subscriptionId".into(), expr_value_or_literal(&sub));
                }
                _ => return unsupported("Deploying a resource to another scope", s.span),
            }
        }
        Ok(())
    }

    /// The `copy` of a resource or module loop, serial when `@batchSize` is given.
    pub(super) fn loop_copy(
        &self,
        tr: &mut Trace,
        decorators: &[Expr],
        l: &LoopSpec,
        symbol: &str,
    ) -> R<Value> {
        let mut copy = Map::new();
        copy.insert("name".into(), json!(symbol));
        copy.insert(
            "count".into(),
            expr_value(format!(
                "length({})",
                self.ex(tr, l.iterable, &Cx::default())?
            )),
        );
        if let Some(args) = decorator(decorators, "batchSize") {
            copy.insert("mode".into(), json!("serial"));
            if let Some(a) = args.first() {
                copy.insert("batchSize".into(), self.val(tr, a, &Cx::default())?);
            }
        }
        Ok(Value::Object(copy))
    }

    /// The resource's own condition AND-ed with its ancestors' conditions.
    pub(super) fn condition(&self, tr: &mut Trace, i: usize, cx: &Cx) -> R<Option<Value>> {
        let mut conds = Vec::new();
        let mut cur = Some(i);
        while let Some(c) = cur {
            let r = &self.resources[c];
            if let Some(e) = r.cond {
                conds.push(if c == i {
                    self.val(tr, e, cx)?
                } else {
                    self.val(tr, e, &Cx::default())?
                });
            }
            // Only syntactically nested children inherit their parent's condition.
            cur = if r.depth > 0 { r.parent } else { None };
        }
        Ok(match conds.len() {
            0 => None,
            1 => conds.pop(),
            _ => {
                // Outermost ancestor first, each level AND-ed onto the one above.
                conds.reverse();
                let mut it = conds.iter().map(value_to_expr);
                let first = it.next().unwrap_or_default();
                Some(expr_value(
                    it.fold(first, |acc, c| format!("and({acc}, {c})")),
                ))
            }
        })
    }
}
