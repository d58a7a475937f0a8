//! User-defined functions (`func`): emitted in the `__bicep` namespace of the
//! template's `functions`, their arguments read with `parameters()`, loaded files
//! inlined (a function cannot read template variables).

use serde_json::{Map, Value, json};

use super::{Cx, Emitter, R, Trace, decorator};
use crate::ast::*;
use crate::diag::Diagnostic;
use crate::type_schema::TypeSchemas;

/// The namespace the official compiler puts user-defined functions in.
pub(super) const NAMESPACE: &str = "__bicep";

impl Emitter<'_> {
    /// True when `name` is a function declared in this file.
    pub(super) fn is_user_function(&self, name: &str) -> bool {
        self.model.functions.contains(name)
    }

    /// The `functions` section, or `None` when the file declares none; the
    /// errors of functions that fail go to `errors`.
    pub(super) fn user_functions(
        &self,
        tr: &mut Trace,
        schemas: &TypeSchemas,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<Value> {
        let mut members = Map::new();
        for d in &self.model.file.decls {
            if let (
                DeclKind::Func {
                    params,
                    output,
                    body,
                },
                Some((name, _)),
            ) = (&d.kind, &d.name)
            {
                match self.user_function(tr, d, params, output, body, schemas) {
                    Ok(f) => {
                        members.insert(name.clone(), self.with_import_origin(name, f));
                    }
                    Err(e) => errors.push(self.in_origin(d, e)),
                }
            }
        }
        (!members.is_empty()).then(|| json!([{"namespace": NAMESPACE, "members": members}]))
    }

    fn user_function(
        &self,
        tr: &mut Trace,
        d: &Decl,
        params: &[(String, TypeExpr)],
        output: &TypeExpr,
        body: &Expr,
        schemas: &TypeSchemas,
    ) -> R<Value> {
        self.check_decorators(&d.decorators, &["description", "export", "metadata"])?;
        let mut cx = Cx {
            in_function: true,
            ..Cx::default()
        };
        let mut parameters = Vec::with_capacity(params.len());
        for (name, ty) in params {
            let mut p = schemas.schema(ty)?;
            if let Value::Object(m) = &mut p {
                m.insert("name".into(), json!(name));
            }
            parameters.push(p);
            cx.locals
                .push((name.clone(), format!("parameters({})", super::quote(name))));
        }
        let mut out = schemas.schema(output)?;
        if let Value::Object(m) = &mut out {
            m.insert("value".into(), self.val(tr, body, &cx)?);
        }
        let mut function = Map::new();
        function.insert("parameters".into(), Value::Array(parameters));
        function.insert("output".into(), out);
        let mut metadata = Map::new();
        if let Some([m]) = decorator(&d.decorators, "metadata")
            && let Value::Object(m) = self.val(tr, m, &Cx::default())?
        {
            metadata.extend(m);
        }
        if let Some([text]) = decorator(&d.decorators, "description") {
            metadata.insert("description".into(), self.val(tr, text, &Cx::default())?);
        }
        if decorator(&d.decorators, "export").is_some() {
            metadata.insert("__bicep_export!".into(), json!(true));
        }
        if !metadata.is_empty() {
            function.insert("metadata".into(), Value::Object(metadata));
        }
        Ok(Value::Object(function))
    }
}
