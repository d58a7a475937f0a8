//! The template writer: parameters, types, variables, functions, outputs and
//! asserts assembled into the ARM JSON document.

use super::constants::RuntimeScan;
use super::*;

/// What the official compiler writes into templates that use experimental features.
pub(super) const EXPERIMENTAL_WARNING: &str = "This template uses ARM features that are experimental. Experimental features should be enabled for testing purposes only, as there are no guarantees about the quality or stability of these features. Do not enable these settings for any production usage, or your production environment may be subject to breaking.";

/// Decorators a type (of a `type`, a typed parameter or output) may carry.
pub(super) const TYPE_DECORATORS: &[&str] = &[
    "description",
    "metadata",
    "secure",
    "sealed",
    "discriminator",
    "export",
    "allowed",
    "minValue",
    "maxValue",
    "minLength",
    "maxLength",
];

/// A built-in type name (not shadowed by a user-defined type): the classic emission.
pub(super) fn is_primitive(ty: &TypeExpr, schemas: &TypeSchemas) -> bool {
    match &ty.kind {
        TypeKind::Name(n) => !n.contains('.') && !schemas.is_declared(n) || n.starts_with("sys."),
        _ => false,
    }
}

/// A literal value must match the declared primitive type (non-literals are
/// checked by ARM at deployment).
pub(super) fn check_literal_type(value: &Expr, arm_type: &str) -> R<()> {
    let actual = match &value.kind {
        ExprKind::Str { .. } => "string",
        ExprKind::Int(_) => "int",
        ExprKind::Unary {
            op: UnaryOp::Minus,
            operand,
        } if matches!(operand.kind, ExprKind::Int(_)) => "int",
        ExprKind::Bool(_) => "bool",
        ExprKind::Array(_) => "array",
        ExprKind::Object(_) => "object",
        _ => return Ok(()),
    };
    let expected = match arm_type {
        "securestring" => "string",
        "secureObject" => "object",
        other => other,
    };
    if actual == expected {
        return Ok(());
    }
    Err(Diagnostic::error(
        "BCP033",
        format!(
            "Expected a value of type \"{expected}\" but the provided value is of type \"{actual}\"."
        ),
        value.span,
    ))
}

/// The `$schema` of a template deployed at `target`.
fn schema_url(target: TargetScope) -> &'static str {
    match target {
        TargetScope::ResourceGroup => {
            "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
        }
        TargetScope::Subscription => {
            "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#"
        }
        TargetScope::ManagementGroup => {
            "https://schema.management.azure.com/schemas/2019-08-01/managementGroupDeploymentTemplate.json#"
        }
        TargetScope::Tenant => {
            "https://schema.management.azure.com/schemas/2019-08-01/tenantDeploymentTemplate.json#"
        }
    }
}

/// The exported variables' metadata entry, sorted by name.
fn exported_variables(mut exported: Vec<(String, Value)>) -> Value {
    exported.sort_by(|a, b| a.0.cmp(&b.0));
    let list = exported
        .into_iter()
        .map(|(name, ty)| json!({"name": name, "type": ty}))
        .collect();
    Value::Array(list)
}

impl<'a> Emitter<'a> {
    /// Emits one parameter, variable, output or metadata declaration into `parts`.
    pub(super) fn emit_declaration(
        &self,
        tr: &mut Trace,
        d: &Decl,
        parts: &mut Parts,
        schemas: &TypeSchemas,
    ) -> R<()> {
        let name = d.name.as_ref().map(|(n, _)| n.clone()).unwrap_or_default();
        match &d.kind {
            DeclKind::Metadata(e) => {
                parts
                    .metadata
                    .insert(name, self.val(tr, e, &Cx::default())?);
            }
            DeclKind::Param { ty, default } => {
                let param = match ty {
                    Some(t) if !is_primitive(t, schemas) => {
                        self.typed_param(tr, d, t, default, schemas)?
                    }
                    _ => self.param(tr, d, ty.as_ref(), default.as_ref())?,
                };
                parts.params.insert(name, param);
            }
            DeclKind::Var { ty, value } => {
                if decorator(&d.decorators, "export").is_some() {
                    let Some(t) = ty else {
                        return unsupported(
                            "An exported variable without a declared type",
                            d.keyword_span,
                        );
                    };
                    parts.exported_vars.push((name.clone(), schemas.schema(t)?));
                }
                if self.is_runtime_var(tr, &name) {
                    // A runtime variable is inlined where used, never emitted.
                    if matches!(value.kind, ExprKind::For { .. }) {
                        return self.check_runtime_var_loop(tr, &name, value);
                    }
                    return Ok(());
                }
                self.check_decorators(&d.decorators, &["description", "export"])?;
                if let ExprKind::For {
                    item,
                    index,
                    iterable,
                    body,
                } = &value.kind
                {
                    let cx = self.loop_cx(
                        tr,
                        item,
                        index,
                        iterable,
                        &format!("copyIndex({})", quote(&name)),
                    )?;
                    parts.var_copies.push(json!({
                        "name": name,
                        "count": expr_value(format!("length({})", self.ex(tr, iterable, &Cx::default())?)),
                        "input": self.var_loop_input(tr, body, &cx)?,
                    }));
                } else {
                    let v = match self.whole_loaded.get(&value.span.start) {
                        Some(v) => v.clone(),
                        None => self.val(tr, value, &Cx::default())?,
                    };
                    parts.vars.insert(name, v);
                }
            }
            DeclKind::Output { ty, value } => {
                parts
                    .outputs
                    .insert(name, self.output(tr, d, ty, value, schemas)?);
            }
            _ => {}
        }
        Ok(())
    }

    /// A loop variable that needs runtime values is an error (BCP182) unless
    /// its body only computes keys naming deploy-time properties: the official
    /// compiler types computed keys, and such a body is valid (and, like every
    /// runtime variable, inlined where used).
    fn check_runtime_var_loop(&self, tr: &mut Trace, name: &str, value: &Expr) -> R<()> {
        let mut scan = RuntimeScan::resolving_computed_keys(&mut tr.runtime_vars);
        let runtime = self.is_runtime_expr(value, &mut scan);
        let span = self.first_runtime_span(value, &mut scan);
        if !runtime {
            return Ok(());
        }
        if scan.uncertain {
            return unsupported(
                "A variable loop whose body indexes a resource with a computed name",
                value.span,
            );
        }
        let span = span.unwrap_or(value.span);
        Err(Diagnostic::error(
            "BCP182",
            format!(
                "This expression is being used in the for-body of the variable \"{name}\", which requires values that can be calculated at the start of the deployment."
            ),
            span,
        ))
    }

    /// The metadata warning that experimental ARM features are in use.
    fn mark_experimental(&self, metadata: &mut Map<String, Value>) {
        metadata.insert("_EXPERIMENTAL_WARNING".into(), json!(EXPERIMENTAL_WARNING));
        metadata.insert(
            "_EXPERIMENTAL_FEATURES_ENABLED".into(),
            json!(self.features.experimental_engine_features()),
        );
    }

    /// The template, and the errors of the declarations that failed (the
    /// others are still emitted).
    pub(super) fn emit(&self) -> (Value, Vec<Diagnostic>) {
        let mut errors = Vec::new();
        let mut trace = Trace::default();
        let tr = &mut trace;
        let mut parts = Parts::default();
        parts.metadata.insert(
            "_generator".into(),
            json!({"name": "bicepc", "version": env!("CARGO_PKG_VERSION")}),
        );
        let symbolic = self.symbolic;
        // Type decorator arguments are compile-time values outside every
        // `dependsOn`: each is emitted with a trace of its own.
        let value = |e: &Expr| self.val(&mut Trace::default(), e, &Cx::default());
        let schemas = TypeSchemas::new(self.model.types.clone(), &value);
        let definitions = if symbolic {
            self.type_definitions(&schemas, &mut errors)
        } else {
            Map::new()
        };
        for d in &self.model.file.decls {
            if let Err(e) = self.emit_declaration(tr, d, &mut parts, &schemas) {
                errors.push(self.in_origin(d, e));
            }
        }
        let Parts {
            mut metadata,
            params,
            vars,
            var_copies,
            outputs,
            exported_vars,
        } = parts;
        let vars = self.variables(vars, var_copies);
        let resources = self.resources_and_modules(tr, symbolic, &mut errors);
        if !exported_vars.is_empty() {
            metadata.insert(
                "__bicep_exported_variables!".into(),
                exported_variables(exported_vars),
            );
        }
        let mut out = self.template_header(metadata);
        if !definitions.is_empty() {
            out.insert("definitions".into(), Value::Object(definitions));
        }
        if let Some(functions) = self.user_functions(tr, &schemas, &mut errors) {
            out.insert("functions".into(), functions);
        }
        if !params.is_empty() {
            out.insert("parameters".into(), Value::Object(params));
        }
        if !vars.is_empty() {
            out.insert("variables".into(), Value::Object(vars));
        }
        if let Some((key, extensions)) = self.extensions_section(&mut errors) {
            out.insert(key.into(), extensions);
        }
        let resources = if symbolic {
            Value::Object(resources.into_iter().collect())
        } else {
            Value::Array(resources.into_iter().map(|(_, r)| r).collect())
        };
        out.insert("resources".into(), resources);
        if !outputs.is_empty() {
            out.insert("outputs".into(), Value::Object(outputs));
        }
        let asserts = self.asserts(tr, &mut errors);
        if !asserts.is_empty() {
            out.insert("asserts".into(), Value::Object(asserts));
        }
        (Value::Object(out), errors)
    }

    /// `$schema`, `languageVersion`, `contentVersion` and `metadata`, in the
    /// official order.
    fn template_header(&self, mut metadata: Map<String, Value>) -> Map<String, Value> {
        let experimental = self.features.experimental_language_version();
        let mut out = Map::new();
        out.insert("$schema".into(), json!(schema_url(self.target)));
        if self.symbolic {
            out.insert(
                "languageVersion".into(),
                json!(experimental.unwrap_or("2.0")),
            );
        }
        if experimental.is_some() {
            self.mark_experimental(&mut metadata);
        }
        out.insert("contentVersion".into(), json!("1.0.0.0"));
        out.insert("metadata".into(), Value::Object(metadata));
        out
    }

    /// The `definitions` of a 2.0 template: one schema per declared type.
    fn type_definitions(
        &self,
        schemas: &TypeSchemas,
        errors: &mut Vec<Diagnostic>,
    ) -> Map<String, Value> {
        let mut definitions = Map::new();
        for d in &self.model.file.decls {
            if let (DeclKind::Type(ty), Some((name, _))) = (&d.kind, &d.name) {
                let schema = self
                    .check_decorators(&d.decorators, TYPE_DECORATORS)
                    .and_then(|()| schemas.definition(d, ty));
                match schema {
                    Ok(schema) => {
                        definitions.insert(name.clone(), self.with_import_origin(name, schema));
                    }
                    Err(e) => errors.push(self.in_origin(d, e)),
                }
            }
        }
        definitions
    }

    /// The `variables` section: declared variables, hoisted loaded files and
    /// imported ARM variables, with variable loops under `copy` first.
    fn variables(
        &self,
        mut vars: Map<String, Value>,
        mut var_copies: Vec<Value>,
    ) -> Map<String, Value> {
        for (k, v) in self.loaded_values.iter().enumerate() {
            vars.insert(format!("$fxv#{k}"), v.clone());
        }
        vars.extend(self.arm_variables.values.iter().cloned());
        var_copies.extend(self.arm_variables.copies.iter().cloned());
        if var_copies.is_empty() {
            return vars;
        }
        let mut with_copy = Map::new();
        with_copy.insert("copy".into(), Value::Array(var_copies));
        with_copy.extend(vars);
        with_copy
    }

    /// Resources then modules, each with its symbolic name; named by symbol in a
    /// 2.0 template, where `existing` resources are emitted too.
    fn resources_and_modules(
        &self,
        tr: &mut Trace,
        symbolic: bool,
        errors: &mut Vec<Diagnostic>,
    ) -> Vec<(String, Value)> {
        let mut resources = Vec::new();
        for i in self.emission_order() {
            if self.resources[i].existing && !symbolic {
                continue;
            }
            match self.resource(tr, i) {
                Ok(r) => resources.push((self.symbol_name(Sym::Res(i)), r)),
                Err(e) => errors.push(e),
            }
        }
        if let Err(e) = self.check_module_names(tr) {
            errors.push(e);
        }
        for i in 0..self.modules.len() {
            match self.module(tr, i) {
                Ok(m) => resources.push((self.symbol_name(Sym::Mod(i)), m)),
                Err(e) => errors.push(e),
            }
        }
        resources
    }

    /// `assert` declarations (experimental): each a boolean expression ARM checks.
    pub(super) fn asserts(
        &self,
        tr: &mut Trace,
        errors: &mut Vec<Diagnostic>,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for d in &self.model.file.decls {
            if let (DeclKind::Assert(e), Some((name, _))) = (&d.kind, &d.name) {
                match self.val(tr, e, &Cx::default()) {
                    Ok(v) => {
                        out.insert(name.clone(), v);
                    }
                    Err(err) => errors.push(err),
                }
            }
        }
        out
    }

    pub(super) fn check_decorators(&self, decorators: &[Expr], allowed: &[&str]) -> R<()> {
        for d in decorators {
            if let ExprKind::Call { name, .. } = &d.kind
                && !allowed.contains(&name.as_str())
            {
                return unsupported(format!("The decorator \"@{name}\" here"), d.span);
            }
        }
        Ok(())
    }

    pub(super) fn description_metadata(
        &self,
        tr: &mut Trace,
        decorators: &[Expr],
        target: &mut Map<String, Value>,
    ) -> R<()> {
        let mut meta = Map::new();
        if let Some(args) = decorator(decorators, "metadata")
            && let Some(Value::Object(m)) = args
                .first()
                .map(|a| self.val(tr, a, &Cx::default()))
                .transpose()?
        {
            meta.extend(m);
        }
        if let Some(args) = decorator(decorators, "description")
            && let Some(a) = args.first()
        {
            meta.insert("description".into(), self.val(tr, a, &Cx::default())?);
        }
        if !meta.is_empty() {
            target.insert("metadata".into(), Value::Object(meta));
        }
        Ok(())
    }

    pub(super) fn simple_type(&self, ty: &TypeExpr, secure: bool) -> R<&'static str> {
        let TypeKind::Name(n) = &ty.kind else {
            return unsupported(
                "Type syntax beyond a primitive type name (needs languageVersion 2.0)",
                ty.span,
            );
        };
        let n = n.strip_prefix("sys.").unwrap_or(n);
        Ok(match (n, secure) {
            ("string", false) => "string",
            ("string", true) => "securestring",
            ("int", false) => "int",
            ("bool", false) => "bool",
            ("object", false) => "object",
            ("object", true) => "secureObject",
            ("array", false) => "array",
            ("int" | "bool" | "array", true) => {
                return Err(Diagnostic::error(
                    "BCP124",
                    "The decorator \"secure\" can only be attached to targets of type \"object | string\".",
                    ty.span,
                ));
            }
            _ => {
                return unsupported(
                    format!("The type \"{n}\" (needs languageVersion 2.0)"),
                    ty.span,
                );
            }
        })
    }

    pub(super) fn param(
        &self,
        tr: &mut Trace,
        d: &Decl,
        ty: Option<&TypeExpr>,
        default: Option<&Expr>,
    ) -> R<Value> {
        self.check_decorators(
            &d.decorators,
            &[
                "description",
                "metadata",
                "secure",
                "allowed",
                "minValue",
                "maxValue",
                "minLength",
                "maxLength",
            ],
        )?;
        let secure = decorator(&d.decorators, "secure").is_some();
        let Some(ty) = ty else {
            return Err(Diagnostic::error(
                "BCP279",
                "Expected a type at this location. Please specify a valid type expression or one of the following types: \"array\", \"bool\", \"int\", \"object\", \"string\".",
                d.keyword_span,
            ));
        };
        let mut p = Map::new();
        // `any` parameters carry no ARM type.
        let is_any = matches!(&ty.kind, TypeKind::Name(n) if n == "any" || n == "sys.any")
            && d.decorators.is_empty();
        let arm_type = if is_any {
            None
        } else {
            Some(self.simple_type(ty, secure)?)
        };
        if let Some(t) = arm_type {
            p.insert("type".into(), json!(t));
        }
        if let Some(v) = default {
            if let Some(t) = arm_type {
                check_literal_type(v, t)?;
            }
            p.insert("defaultValue".into(), self.val(tr, v, &Cx::default())?);
        }
        if let Some(args) = decorator(&d.decorators, "allowed")
            && let Some(a) = args.first()
        {
            p.insert("allowedValues".into(), self.val(tr, a, &Cx::default())?);
        }
        for key in ["minValue", "maxValue", "minLength", "maxLength"] {
            if let Some(args) = decorator(&d.decorators, key)
                && let Some(a) = args.first()
            {
                p.insert(key.into(), self.val(tr, a, &Cx::default())?);
            }
        }
        self.description_metadata(tr, &d.decorators, &mut p)?;
        Ok(Value::Object(p))
    }

    /// A parameter of a user-defined type or aggregate type syntax (languageVersion 2.0).
    pub(super) fn typed_param(
        &self,
        tr: &mut Trace,
        d: &Decl,
        ty: &TypeExpr,
        default: &Option<Expr>,
        schemas: &TypeSchemas,
    ) -> R<Value> {
        self.check_decorators(&d.decorators, TYPE_DECORATORS)?;
        let mut p = schemas.decorated(ty, &d.decorators)?;
        if let (Some(v), Value::Object(m)) = (default, &mut p) {
            m.insert("defaultValue".into(), self.val(tr, v, &Cx::default())?);
        }
        if let (Some([a]), Value::Object(m)) = (decorator(&d.decorators, "allowed"), &mut p) {
            m.insert("allowedValues".into(), self.val(tr, a, &Cx::default())?);
        }
        Ok(p)
    }

    pub(super) fn output(
        &self,
        tr: &mut Trace,
        d: &Decl,
        ty: &TypeExpr,
        value: &Expr,
        schemas: &TypeSchemas,
    ) -> R<Value> {
        // Secure outputs exist only in languageVersion 2.0, typed like parameters.
        let secure = decorator(&d.decorators, "secure").is_some();
        let mut o = if is_primitive(ty, schemas) && !secure {
            self.check_decorators(&d.decorators, &["description", "metadata"])?;
            let mut o = Map::new();
            let arm_type = self.simple_type(ty, false)?;
            o.insert("type".into(), json!(arm_type));
            check_literal_type(value, arm_type)?;
            self.description_metadata(tr, &d.decorators, &mut o)?;
            o
        } else {
            self.check_decorators(&d.decorators, TYPE_DECORATORS)?;
            match schemas.decorated(ty, &d.decorators)? {
                Value::Object(o) => o,
                _ => Map::new(),
            }
        };
        if let ExprKind::For {
            item,
            index,
            iterable,
            body,
        } = &value.kind
        {
            let cx = self.loop_cx(tr, item, index, iterable, "copyIndex()")?;
            o.insert(
                "copy".into(),
                json!({
                    "count": expr_value(format!("length({})", self.ex(tr, iterable, &Cx::default())?)),
                    "input": self.val(tr, body, &cx)?,
                }),
            );
        } else {
            o.insert("value".into(), self.val(tr, value, &Cx::default())?);
        }
        Ok(Value::Object(o))
    }
}
