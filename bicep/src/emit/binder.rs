//! Binding: each declaration becomes a parameter, variable, resource, module or
//! function entry of the emitter's symbol tables, in emission order.

use super::*;

impl<'a> Emitter<'a> {
    pub(super) fn new(
        file_name: &'a str,
        model: &'a Model<'a>,
        resolver: &'a dyn ModuleResolver,
        session: &mut Session,
    ) -> Self {
        let features = session.features_for(file_name, resolver);
        let symbolic = features.experimental_language_version().is_some()
            || features.is_enabled("symbolicNameCodegen")
            || language_version::needs_symbolic_names(model.file);
        let mut em = Emitter {
            file_name,
            model,
            resolver,
            target: TargetScope::ResourceGroup,
            resources: Vec::new(),
            modules: Vec::new(),
            symbols: HashMap::new(),
            loaded: HashMap::new(),
            loaded_values: Vec::new(),
            whole_loaded: HashMap::new(),
            bind_errors: Vec::new(),
            broken: HashSet::new(),
            features,
            symbolic,
            imported_from: HashMap::new(),
            arm_variables: ArmVariables::default(),
        };
        for d in &model.file.decls {
            if let Err(e) = em.declare(d, session) {
                em.bind_errors.push(e);
                if let Some((n, _)) = &d.name {
                    em.broken.insert(n.clone());
                }
            }
        }
        if let Err(e) = em.hoist_loaded_files() {
            em.bind_errors.push(e);
        }
        em
    }

    /// Records one declaration: its kind of symbol, its resource or module.
    pub(super) fn declare(&mut self, d: &'a Decl, session: &mut Session) -> R<()> {
        let name = d.name.as_ref().map(|(n, _)| n.as_str()).unwrap_or("");
        match &d.kind {
            DeclKind::TargetScope(e) => {
                self.target = match plain_string(e) {
                    Some("resourceGroup") => TargetScope::ResourceGroup,
                    Some("subscription") => TargetScope::Subscription,
                    Some("managementGroup") => TargetScope::ManagementGroup,
                    Some("tenant") => TargetScope::Tenant,
                    _ => {
                        return Err(Diagnostic::error(
                            "BCP033",
                            "Expected a value of type \"'managementGroup' | 'resourceGroup' | 'subscription' | 'tenant'\".",
                            e.span,
                        ));
                    }
                };
            }
            // Bound in the model.
            DeclKind::Param { .. } | DeclKind::Var { .. } => {}
            DeclKind::Resource { .. } => self.add_resource(d, None, 0)?,
            DeclKind::Module { .. } => {
                let m = self.load_module(d, session)?;
                self.symbols
                    .insert(name.to_string(), Sym::Mod(self.modules.len()));
                self.modules.push(m);
            }
            DeclKind::Metadata(_) | DeclKind::Output { .. } => {}
            // Emitted under `definitions` (languageVersion 2.0) or rejected there.
            DeclKind::Type(_) => {}
            // Emitted under `functions`.
            DeclKind::Func { .. } => {}
            // Copied into this file before emission (imports, arm_imports).
            DeclKind::Import(Some(_)) => {}
            DeclKind::Import(None) => {
                return unsupported("An import declaration of this form", d.keyword_span);
            }
            // Emitted under `extensions` (see `extensions`).
            DeclKind::Extension(Some(_)) => {}
            DeclKind::Extension(None) => {
                return unsupported("A provider declaration", d.keyword_span);
            }
            DeclKind::Using(_) => {
                return unsupported("A using declaration", d.keyword_span);
            }
            // Test blocks are for `bicep test`; the build ignores them.
            DeclKind::Test => {}
            DeclKind::Assert(_) if self.features.is_enabled("assertions") => {}
            DeclKind::Assert(_) => {
                return unsupported(
                    "An assert declaration without the \"assertions\" experimental feature",
                    d.keyword_span,
                );
            }
        }
        Ok(())
    }

    /// Marks an imported type or function with the template it came from.
    pub(super) fn with_import_origin(&self, name: &str, mut schema: Value) -> Value {
        if let (Some(origin), Value::Object(m)) = (self.imported_from.get(name), &mut schema) {
            let meta = m.entry("metadata").or_insert_with(|| json!({}));
            if let Value::Object(meta) = meta {
                meta.insert(
                    "__bicep_imported_from!".into(),
                    json!({"sourceTemplate": origin.written}),
                );
            }
        }
        schema
    }

    pub(super) fn add_resource(
        &mut self,
        d: &'a Decl,
        parent: Option<usize>,
        depth: usize,
    ) -> R<()> {
        let DeclKind::Resource {
            type_string,
            existing,
            value,
        } = &d.kind
        else {
            return Ok(());
        };
        let (symbol, sym_span) = d.name.clone().unwrap_or_default();
        let (mut ty, mut ver) = split_type(type_string)?;
        let (body_expr, cond, looped) = unwrap_body(value)?;
        let Some(body) = object_items(body_expr) else {
            return unsupported("A resource body that is not an object", body_expr.span);
        };
        let mut parent = parent;
        let mut parent_index = None;
        if let Some(p) = parent {
            let pr = &self.resources[p];
            if !ty.contains('/') {
                ty = format!("{}/{}", pr.full_type, ty);
            }
            if ver.is_none() {
                ver = Some(pr.api_version.clone());
            }
        } else if let Some(pexpr) = property(body, "parent") {
            let (p, index) = self.parent_property(pexpr)?;
            parent = Some(p);
            parent_index = index;
        }
        let Some(ver) = ver else {
            return Err(invalid_resource_type(type_string.span));
        };
        if let Some(p) = parent
            && self.resources[p].looped.is_some()
            && parent_index.is_none()
        {
            return unsupported("A child of a resource loop", d.keyword_span);
        }
        let Some(name_expr) = property(body, "name") else {
            return Err(missing_resource_name(sym_span));
        };
        let (full_type, ver) = match library_spelling(&ty, &ver) {
            Some((t, v)) => (t.to_string(), v.to_string()),
            None => (ty, ver),
        };
        let idx = self.resources.len();
        // Nested resources are named by their path, e.g. `parent::child`.
        let qualified = match parent {
            Some(p) if depth > 0 => format!("{}::{symbol}", self.resources[p].symbol),
            _ => symbol.clone(),
        };
        self.resources.push(Res {
            symbol: qualified,
            local: symbol.clone(),
            decl: d,
            full_type,
            api_version: ver,
            body,
            cond,
            looped,
            parent,
            depth,
            existing: *existing,
            parent_index,
            name_expr,
            scope_expr: property(body, "scope"),
        });
        // Nested symbols are only visible inside their parent; the checker has
        // enforced that, so a global entry that never shadows is enough here.
        self.symbols.entry(symbol).or_insert(Sym::Res(idx));
        let in_loop = matches!(value.kind, ExprKind::For { .. });
        self.add_nested_resources(body, in_loop, idx, depth + 1)
    }

    fn add_nested_resources(
        &mut self,
        body: &'a [ObjectItem],
        in_loop: bool,
        parent: usize,
        depth: usize,
    ) -> R<()> {
        for item in body {
            if let ObjectItem::NestedResource(child) = item {
                if in_loop {
                    return unsupported(
                        "A nested resource inside a resource loop",
                        child.keyword_span,
                    );
                }
                self.add_resource(child, Some(parent), depth)?;
            }
        }
        Ok(())
    }

    /// The resource a `parent:` property names, with the element index when it
    /// is `coll[i]`, one element of a resource loop.
    fn parent_property(&self, pexpr: &'a Expr) -> R<(usize, Option<&'a Expr>)> {
        match &pexpr.kind {
            ExprKind::Ident(pname) => match self.symbols.get(pname) {
                Some(Sym::Res(i)) => Ok((*i, None)),
                _ => Err(Diagnostic::error(
                    "BCP036",
                    format!(
                        "The \"parent\" property must reference a resource declared before it; \"{pname}\" is not one."
                    ),
                    pexpr.span,
                )),
            },
            ExprKind::Index {
                base,
                index,
                safe: false,
            } if matches!(&base.kind, ExprKind::Ident(n)
                if matches!(self.symbols.get(n), Some(Sym::Res(p)) if self.resources[*p].looped.is_some())) =>
            {
                let ExprKind::Ident(n) = &base.kind else {
                    unreachable!()
                };
                let Some(Sym::Res(p)) = self.symbols.get(n) else {
                    unreachable!()
                };
                Ok((*p, Some(&**index)))
            }
            _ => unsupported(
                "A \"parent\" that is not a resource symbol or loop element",
                pexpr.span,
            ),
        }
    }

    /// The official order: for each top-level resource in source order, its nested
    /// descendants children-first; then the top-level resources themselves.
    pub(super) fn emission_order(&self) -> Vec<usize> {
        fn descendants(em: &Emitter, parent: usize, out: &mut Vec<usize>) {
            for (c, r) in em.resources.iter().enumerate() {
                if r.depth > 0 && r.parent == Some(parent) {
                    descendants(em, c, out);
                    out.push(c);
                }
            }
        }
        let top: Vec<usize> = (0..self.resources.len())
            .filter(|i| self.resources[*i].depth == 0)
            .collect();
        let mut order = Vec::with_capacity(self.resources.len());
        for &t in &top {
            descendants(self, t, &mut order);
        }
        order.extend(top);
        order
    }
}

/// BCP029: a resource type string without an api-version.
fn invalid_resource_type(span: Span) -> Diagnostic {
    Diagnostic::error(
        "BCP029",
        "The resource type is not valid. Specify a valid resource type of format \"<types>@<apiVersion>\".",
        span,
    )
}

/// BCP035: a resource body without `name`.
fn missing_resource_name(span: Span) -> Diagnostic {
    Diagnostic::error(
        "BCP035",
        "The specified \"resource\" declaration is missing the following required properties: \"name\".",
        span,
    )
}
