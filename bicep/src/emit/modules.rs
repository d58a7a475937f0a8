//! Module declarations: loading the referenced template (local file or registry),
//! checking names and parameters, and writing the nested deployment.

use super::*;

pub(super) const DEPLOYMENTS_TYPE: &str = "Microsoft.Resources/deployments";

pub(super) const DEPLOYMENTS_API: &str = "2025-04-01";

impl<'a> Emitter<'a> {
    /// The compiled template of a registry module, read from the module cache: this
    /// compiler never downloads one, so a module missing there is reported (as
    /// unsupported, since the official compiler could restore it).
    pub(super) fn registry_template(&self, reference: &str, span: Span) -> R<Value> {
        let not_cached = || {
            Diagnostic::error(
                crate::diag::UNSUPPORTED,
                format!(
                    "The registry module \"{reference}\" is not in the module cache: this compiler does not download modules. Restore it with the official \"bicep restore\" and pass its cache directory with --module-cache DIR."
                ),
                span,
            )
        };
        let Some(parsed) = registry::parse(reference) else {
            return Err(Diagnostic::error(
                crate::diag::UNSUPPORTED,
                format!(
                    "The module reference \"{reference}\" is not supported by this compiler: only \"br:<registry>/<repository>:<tag>\" and \"br/public:\" references are read from a module cache."
                ),
                span,
            ));
        };
        let (_, text) = self
            .resolver
            .resolve_registry(&parsed)
            .ok_or_else(not_cached)?;
        serde_json::from_str(&text).map_err(|e| {
            Diagnostic::error(
                "BCP188",
                format!("The referenced ARM template has errors: {e}"),
                span,
            )
        })
    }

    pub(super) fn load_module(&mut self, d: &'a Decl, session: &mut Session) -> R<Module<'a>> {
        let DeclKind::Module { path, value } = &d.kind else {
            unreachable!("load_module is only called for modules")
        };
        let Some(rel) = plain_string(path) else {
            return Err(Diagnostic::error(
                "BCP092",
                "String interpolation is not supported in file paths.",
                path.span,
            ));
        };
        let registry_template = if registry::is_external(rel) {
            Some(self.registry_template(rel, path.span)?)
        } else {
            None
        };
        let (body_expr, cond, looped) = unwrap_body(value)?;
        let Some(body) = object_items(body_expr) else {
            return unsupported("A module body that is not an object", body_expr.span);
        };
        let name_expr = match property(body, "name") {
            Some(n) => n.clone(),
            None => {
                let symbol = d.name.as_ref().map(|(n, _)| n.as_str()).unwrap_or("");
                module_name::generated(symbol, looped.is_some(), d.keyword_span)
            }
        };
        let template = match registry_template {
            Some(t) => t,
            None => self.local_module_template(rel, path.span, session)?,
        };
        Ok(Module {
            decl: d,
            body,
            cond,
            looped,
            name_expr,
            scope_expr: property(body, "scope"),
            template,
        })
    }

    /// The template of a module file: ARM JSON as it is, Bicep compiled (once per
    /// compilation). A module with several errors fails with the first; the others
    /// are kept with the errors of binding.
    pub(super) fn local_module_template(
        &mut self,
        rel: &str,
        span: Span,
        session: &mut Session,
    ) -> R<Value> {
        let (resolved, content) = self.resolver.resolve(self.file_name, rel).map_err(|e| {
            Diagnostic::error(
                "BCP091",
                format!("An error occurred reading file. {e}"),
                span,
            )
        })?;
        if session.stack.contains(&resolved) {
            return Err(Diagnostic::error(
                "BCP095",
                format!("The file is involved in a cycle (\"{resolved}\")."),
                span,
            ));
        }
        if resolved.to_ascii_lowercase().ends_with(".json") {
            return serde_json::from_str(&content).map_err(|e| {
                Diagnostic::error(
                    "BCP188",
                    format!("The referenced ARM template has errors: {e}"),
                    span,
                )
            });
        }
        if let Some(v) = session.compiled.get(&resolved) {
            return Ok(v.clone());
        }
        session.sources.insert(resolved.clone(), content.clone());
        match compile_module(&resolved, &content, self.resolver, session) {
            Ok(v) => {
                session.compiled.insert(resolved, v.clone());
                Ok(v)
            }
            Err(mut errs) => {
                let first = errs.remove(0);
                self.bind_errors.extend(errs);
                Err(first)
            }
        }
    }

    /// Two modules deploying under the same name to the same scope would overwrite
    /// each other's deployment.
    pub(super) fn check_module_names(&self, tr: &mut Trace) -> R<()> {
        let mut seen: HashMap<(String, String), &str> = HashMap::new();
        for m in &self.modules {
            if m.looped.is_some() {
                continue;
            }
            let (name, scope) = self.with_deps_suppressed(tr, |tr| {
                let name = self.ex(tr, &m.name_expr, &Cx::default())?;
                let scope = match self.scope_ref(tr, m.scope_expr, &Cx::default())? {
                    ScopeRef::Default => String::new(),
                    ScopeRef::ResourceGroup { sub, rg } => format!("rg:{sub:?}/{rg}"),
                    ScopeRef::Subscription(s) => format!("sub:{s:?}"),
                    ScopeRef::ManagementGroup(g) => format!("mg:{g:?}"),
                    ScopeRef::Tenant => "tenant".into(),
                    ScopeRef::Resource(id) => format!("res:{id}"),
                };
                Ok((name, scope))
            })?;
            let symbol = m.decl.name.as_ref().map(|(n, _)| n.as_str()).unwrap_or("");
            if let Some(other) = seen.insert((scope, name), symbol) {
                return Err(Diagnostic::error(
                    "BCP122",
                    format!(
                        "Modules: \"{other}\", \"{symbol}\" are defined with this same name and this same scope in a file. Rename them or split into different modules."
                    ),
                    m.name_expr.span,
                ));
            }
        }
        Ok(())
    }

    pub(super) fn module_id(&self, tr: &mut Trace, i: usize, idx: Option<&str>) -> R<String> {
        self.with_deps_suppressed(tr, |tr| self.module_id_inner(tr, i, idx))
    }

    pub(super) fn module_id_inner(&self, tr: &mut Trace, i: usize, idx: Option<&str>) -> R<String> {
        let m = &self.modules[i];
        let cx = match (&m.looped, idx) {
            (Some(l), Some(x)) => self.loop_cx(tr, &l.item, &l.index, l.iterable, x)?,
            (Some(l), None) => self.loop_cx(tr, &l.item, &l.index, l.iterable, "copyIndex()")?,
            _ => Cx::default(),
        };
        let name = self.ex(tr, &m.name_expr, &cx)?;
        let scope = self.scope_ref(tr, m.scope_expr, &cx)?;
        self.id_for(&scope, DEPLOYMENTS_TYPE, &[name])
    }

    /// The module's parameters must exist in its template, required ones must be
    /// given, and the module must be deployable at the scope it is given.
    pub(super) fn check_module_params(&self, tr: &mut Trace, m: &Module) -> R<()> {
        let declared = m.template["parameters"].as_object();
        let symbol = m
            .decl
            .name
            .as_ref()
            .map(|(n, s)| (n.as_str(), *s))
            .unwrap_or(("", m.decl.keyword_span));
        let mut given = HashSet::new();
        if let Some(items) = property(m.body, "params").and_then(object_items) {
            for item in items {
                if let ObjectItem::Property { key, .. } = item
                    && let Some(k) = &key.name
                {
                    if !declared.is_some_and(|d| d.contains_key(k)) {
                        return Err(Diagnostic::error(
                            "BCP037",
                            format!(
                                "The property \"{k}\" is not allowed on objects of type \"params\". No other properties are allowed."
                            ),
                            key.span,
                        ));
                    }
                    given.insert(k.as_str());
                }
            }
        }
        let missing: Vec<&str> = declared
            .into_iter()
            .flatten()
            .filter(|(k, v)| v.get("defaultValue").is_none() && !given.contains(k.as_str()))
            .map(|(k, _)| k.as_str())
            .collect();
        if !missing.is_empty() {
            let span = property(m.body, "params")
                .map(|p| p.span)
                .unwrap_or(symbol.1);
            return Err(Diagnostic::error(
                "BCP035",
                format!(
                    "The specified \"params\" object of module \"{}\" is missing the following required properties: {}.",
                    symbol.0,
                    missing
                        .iter()
                        .map(|k| format!("\"{k}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                span,
            ));
        }
        self.check_module_scope(tr, m, symbol.1)
    }

    /// A module deploys to a scope its template's `targetScope` permits (BCP134).
    fn check_module_scope(&self, tr: &mut Trace, m: &Module, symbol_span: Span) -> R<()> {
        let module_scope = match m.template["$schema"].as_str().unwrap_or("") {
            s if s.contains("subscriptionDeploymentTemplate") => TargetScope::Subscription,
            s if s.contains("managementGroupDeploymentTemplate") => TargetScope::ManagementGroup,
            s if s.contains("tenantDeploymentTemplate") => TargetScope::Tenant,
            _ => TargetScope::ResourceGroup,
        };
        let cx = match &m.looped {
            Some(l) => self.loop_cx(tr, &l.item, &l.index, l.iterable, "copyIndex()")?,
            None => Cx::default(),
        };
        let given_scope =
            match self.with_deps_suppressed(tr, |tr| self.scope_ref(tr, m.scope_expr, &cx))? {
                ScopeRef::Default => self.target,
                ScopeRef::ResourceGroup { .. } => TargetScope::ResourceGroup,
                ScopeRef::Subscription(_) => TargetScope::Subscription,
                ScopeRef::ManagementGroup(_) => TargetScope::ManagementGroup,
                ScopeRef::Tenant => TargetScope::Tenant,
                ScopeRef::Resource(_) => {
                    return unsupported("A module scoped to a resource", m.decl.keyword_span);
                }
            };
        if given_scope != module_scope {
            return Err(Diagnostic::error(
                "BCP134",
                format!(
                    "Scope {given_scope:?} is not valid for this module. Permitted scopes: {module_scope:?}. Set \"scope\" or change the module's targetScope."
                ),
                m.scope_expr.map(|s| s.span).unwrap_or(symbol_span),
            ));
        }
        Ok(())
    }

    pub(super) fn module(&self, tr: &mut Trace, i: usize) -> R<Value> {
        let m = &self.modules[i];
        self.check_decorators(&m.decl.decorators, &["description", "batchSize"])?;
        let symbol = m.decl.name.clone().unwrap_or_default().0;
        self.with_depends_on(tr, &symbol, |tr, out| {
            let cx = match &m.looped {
                Some(l) => self.loop_cx(tr, &l.item, &l.index, l.iterable, "copyIndex()")?,
                None => Cx::default(),
            };
            out.insert("type".into(), json!(DEPLOYMENTS_TYPE));
            out.insert("apiVersion".into(), json!(DEPLOYMENTS_API));
            out.insert("name".into(), self.val(tr, &m.name_expr, &cx)?);
            self.module_scope(tr, m, &cx, out)?;
            if let Some(c) = m.cond {
                out.insert("condition".into(), self.val(tr, c, &cx)?);
            }
            if let Some(l) = &m.looped {
                out.insert(
                    "copy".into(),
                    self.loop_copy(tr, &m.decl.decorators, l, &symbol)?,
                );
            }
            check_module_properties(m.body)?;
            self.check_module_params(tr, m)?;
            let params = self.module_parameters(tr, m, &cx)?;
            let mut props = Map::new();
            props.insert(
                "expressionEvaluationOptions".into(),
                json!({"scope": "inner"}),
            );
            props.insert("mode".into(), json!("Incremental"));
            if let Some(params) = params {
                props.insert("parameters".into(), Value::Object(params));
            }
            if let Some(configs) = self.module_extension_configs(tr, m, &cx)? {
                props.insert("extensionConfigs".into(), configs);
            }
            props.insert("template".into(), m.template.clone());
            out.insert("properties".into(), Value::Object(props));
            if let Some(d) = property(m.body, "dependsOn") {
                self.explicit_deps(tr, d, &cx)?;
            }
            self.description_metadata(tr, &m.decl.decorators, out)?;
            Ok(())
        })
    }

    /// Where the nested deployment goes: `scope`, `subscriptionId`,
    /// `resourceGroup` and `location` as the module's scope requires.
    fn module_scope(
        &self,
        tr: &mut Trace,
        m: &Module,
        cx: &Cx,
        out: &mut Map<String, Value>,
    ) -> R<()> {
        // Deployments above resource-group level need a location for their metadata.
        let location = if self.target == TargetScope::ResourceGroup {
            json!("[resourceGroup().location]")
        } else {
            json!("[deployment().location]")
        };
        match self.scope_ref(tr, m.scope_expr, cx)? {
            ScopeRef::Default => {
                if self.target != TargetScope::ResourceGroup {
                    out.insert("location".into(), location);
                }
            }
            ScopeRef::ManagementGroup(Some(name)) => {
                out.insert(
                    "scope".into(),
                    expr_value(format!(
                        "format('Microsoft.Management/managementGroups/{{0}}', {name})"
                    )),
                );
                out.insert("location".into(), location);
            }
            ScopeRef::ManagementGroup(None) => {
                return unsupported(
                    "A module scoped to the current management group from here",
                    m.decl.keyword_span,
                );
            }
            ScopeRef::ResourceGroup { sub, rg } => {
                if let Some(s) = sub {
                    out.insert("subscriptionId".into(), expr_value_or_literal(&s));
                }
                out.insert("resourceGroup".into(), expr_value_or_literal(&rg));
            }
            ScopeRef::Subscription(s) => {
                let s = s.unwrap_or_else(|| "subscription().subscriptionId".into());
                out.insert("subscriptionId".into(), expr_value_or_literal(&s));
                out.insert("location".into(), location);
            }
            ScopeRef::Tenant => {
                out.insert("scope".into(), json!("/"));
                out.insert("location".into(), location);
            }
            ScopeRef::Resource(_) => {
                return unsupported("A module scoped to a resource", m.decl.keyword_span);
            }
        }

        Ok(())
    }

    /// The module's `parameters`, `None` without a `params` property.
    fn module_parameters(
        &self,
        tr: &mut Trace,
        m: &Module,
        cx: &Cx,
    ) -> R<Option<Map<String, Value>>> {
        let mut params = None;
        if let Some(p) = property(m.body, "params") {
            let params = params.insert(Map::new());
            let Some(items) = object_items(p) else {
                return unsupported("Module \"params\" that are not an object literal", p.span);
            };
            for item in items {
                let ObjectItem::Property { key, value, .. } = item else {
                    return unsupported("This module parameter entry", p.span);
                };
                let Some(k) = &key.name else {
                    return unsupported("An interpolated module parameter name", key.span);
                };
                params.insert(k.clone(), self.module_param(tr, value, cx)?);
            }
        }

        Ok(params)
    }
}

/// A module body holds only `name`, `params`, `scope`, `dependsOn` and `extensionConfigs`.
fn check_module_properties(body: &[ObjectItem]) -> R<()> {
    for item in body {
        if let ObjectItem::NestedResource(d) = item {
            return Err(nested_resource_misplaced(d.keyword_span));
        }
        if let ObjectItem::Property { key, .. } = item {
            match key.name.as_deref() {
                Some("name" | "params" | "scope" | "dependsOn" | "extensionConfigs") => {}
                Some(other) => {
                    return unsupported(format!("The module property \"{other}\""), key.span);
                }
                None => {
                    return unsupported("An interpolated module property", key.span);
                }
            }
        }
    }

    Ok(())
}
