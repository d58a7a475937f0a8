//! Expression evaluation: parameters, variables, expressions and calls, outputs,
//! and the type checks ARM applies to parameter and output values.

use std::rc::Rc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::template::expr::{self, Expr, StringForm};
use crate::template::model::{TemplateError, TypedValue};
use crate::template::run::{
    Deployment, Frame, MAX_CALL_DEPTH, MAX_COPY, Result, Slot, UNBOUND_PARAMETER, VarDef,
    is_property_copy, member, section_error,
};
use crate::template::runtime;
use crate::template::value::{as_bool, as_int, type_name};

/// ARM's capitalised type name for a declared type.
pub(super) fn arm_type_name(declared: &str) -> Option<&'static str> {
    Some(match declared.to_lowercase().as_str() {
        "string" => "String",
        "securestring" => "SecureString",
        "int" => "Int",
        "bool" => "Bool",
        "object" => "Object",
        "secureobject" => "SecureObject",
        "array" => "Array",
        _ => return None,
    })
}

/// The declared type inferred from a value (for outputs typed by `$ref`).
pub(super) fn type_of_value(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "String",
        Value::Number(_) => "Int",
        Value::Bool(_) => "Bool",
        Value::Array(_) => "Array",
        _ => "Object",
    }
}

/// Checks (and where ARM converts, converts) `value` against a declared type.
pub(super) fn coerce(value: Value, arm_type: &str) -> std::result::Result<Value, Value> {
    match (arm_type, value) {
        ("String" | "SecureString", v @ Value::String(_)) => Ok(v),
        ("Int", v @ Value::Number(_)) if v.as_i64().is_some() => Ok(v),
        ("Int", Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| Value::String(s)),
        ("Bool", v @ Value::Bool(_)) => Ok(v),
        ("Bool", Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        ("Bool", Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
        ("Object" | "SecureObject", v @ Value::Object(_)) => Ok(v),
        ("Array", v @ Value::Array(_)) => Ok(v),
        (_, v) => Err(v),
    }
}

pub(super) fn check_constraints(
    name: &str,
    value: &Value,
    decl: &Value,
    typed: &Value,
) -> Result<()> {
    let get = |k: &str| decl.get(k).or_else(|| typed.get(k));
    let bad = |why: String| {
        Err(TemplateError::invalid_template(format!(
            "The provided value for the template parameter '{name}' is not valid. {why}"
        )))
    };
    if let Some(Value::Array(allowed)) = get("allowedValues") {
        let ok = match value {
            Value::Array(items) if !allowed.iter().any(Value::is_array) => {
                items.iter().all(|i| allowed.contains(i))
            }
            v => allowed.contains(v) || v.is_null(),
        };
        if !ok {
            return bad(format!(
                "The value must be one of {}.",
                Value::Array(allowed.clone())
            ));
        }
    }
    if let Value::Number(n) = value {
        let x = n.as_i64().unwrap_or(0);
        if let Some(min) = get("minValue").and_then(Value::as_i64)
            && x < min
        {
            return bad(format!(
                "The value {x} is less than the minimum value {min}."
            ));
        }
        if let Some(max) = get("maxValue").and_then(Value::as_i64)
            && x > max
        {
            return bad(format!(
                "The value {x} is greater than the maximum value {max}."
            ));
        }
    }
    let length = match value {
        Value::String(s) => Some(s.chars().count() as i64),
        Value::Array(a) => Some(a.len() as i64),
        _ => None,
    };
    if let Some(len) = length {
        if let Some(min) = get("minLength").and_then(Value::as_i64)
            && len < min
        {
            return bad(format!(
                "The length {len} is less than the minimum length {min}."
            ));
        }
        if let Some(max) = get("maxLength").and_then(Value::as_i64)
            && len > max
        {
            return bad(format!(
                "The length {len} is greater than the maximum length {max}."
            ));
        }
    }
    Ok(())
}

impl<'s, 'a> Deployment<'s, 'a> {
    /// Resolves a declaration's type through `$ref` into `definitions` (2.0 templates).
    pub(super) fn declared_type(&self, decl: &'a Value) -> Option<(&'static str, &'a Value)> {
        let mut current = decl;
        for _ in 0..32 {
            if let Some(t) = current.get("type").and_then(Value::as_str) {
                return arm_type_name(t).map(|n| (n, current));
            }
            let reference = current.get("$ref").and_then(Value::as_str)?;
            let name = reference.strip_prefix("#/definitions/")?;
            current = self.definitions.and_then(|d| d.get(name))?;
        }
        None
    }

    pub(super) fn bind_parameters(
        &self,
        tpl: &'a Map<String, Value>,
        values: &Map<String, Value>,
    ) -> Result<IndexMap<String, TypedValue>> {
        let decls = match tpl.get("parameters") {
            None => Map::new(),
            Some(Value::Object(p)) => p.clone(),
            Some(_) => return Err(section_error("parameters", "an object")),
        };
        for key in values.keys() {
            if !decls.keys().any(|d| d.eq_ignore_ascii_case(key)) {
                return Err(TemplateError::invalid_template(format!(
                    "The template parameters '{key}' in the parameters file are not valid; they are not present in the original template and can therefore not be provided at deployment time. The only supported parameters for this template are '{}'.",
                    decls.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let Some(Value::Object(decls)) = tpl.get("parameters") else {
            return Ok(IndexMap::new());
        };
        let mut reported = IndexMap::new();
        // Defaults may read parameters declared after them: bind in passes until
        // nothing more can be bound.
        let mut pending: Vec<(&String, &'a Value)> = decls.iter().collect();
        while !pending.is_empty() {
            let mut deferred = Vec::new();
            let mut last_error = None;
            for (name, decl) in pending.iter().copied() {
                match self.bind_parameter(name, decl, values) {
                    Ok(typed) => {
                        reported.insert(name.clone(), typed);
                    }
                    Err(e) if e.message.contains(UNBOUND_PARAMETER) => {
                        deferred.push((name, decl));
                        last_error = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            if deferred.len() == pending.len() {
                return Err(last_error.unwrap_or_else(|| {
                    TemplateError::invalid_template(
                        "Parameter defaults refer to each other in a cycle.",
                    )
                }));
            }
            pending = deferred;
        }
        let order: Vec<&String> = decls.keys().collect();
        reported.sort_by(|a, _, b, _| {
            let pos = |k: &String| order.iter().position(|o| *o == k);
            pos(a).cmp(&pos(b))
        });
        Ok(reported)
    }

    pub(super) fn bind_parameter(
        &self,
        name: &String,
        decl: &'a Value,
        values: &Map<String, Value>,
    ) -> Result<TypedValue> {
        // A declaration with neither `type` nor `$ref` accepts any value (Bicep's `any`).
        let untyped = decl.get("type").is_none() && decl.get("$ref").is_none();
        let declared = if untyped {
            None
        } else {
            Some(self.declared_type(decl).ok_or_else(|| {
                TemplateError::invalid_template(format!(
                    "The template parameter '{name}' has no valid type: expected one of 'string, securestring, int, bool, object, secureobject, array'."
                ))
            })?)
        };
        let provided = values
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v);
        let nullable = decl
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let value = match provided {
            Some(entry) => self.parameter_value(name, entry)?,
            None => match decl.get("defaultValue") {
                Some(default) => {
                    let frame = Frame {
                        in_parameter_default: true,
                        ..Frame::default()
                    };
                    self.eval_value(default, &frame).map_err(|e| {
                        e.within(
                            &format!("the default value of template parameter '{name}'"),
                            None,
                        )
                    })?
                }
                None if nullable => Value::Null,
                None => {
                    return Err(TemplateError::invalid_template(format!(
                        "Deployment template validation failed: 'The value for the template parameter '{name}' is not provided. Please see https://aka.ms/arm-create-parameter-file for usage details.'."
                    )));
                }
            },
        };
        let (arm_type, typed_decl) = declared.unwrap_or((type_of_value(&value), decl));
        let value = if (value.is_null() && nullable) || untyped {
            value
        } else {
            coerce(value, arm_type).map_err(|got| {
                TemplateError::invalid_template(format!(
                    "Template parameter '{name}' was provided an invalid value. Expected a value of type '{arm_type}', but received a value of type '{}'.",
                    type_name(&got)
                ))
            })?
        };
        check_constraints(name, &value, decl, typed_decl)?;
        let secure = arm_type.starts_with("Secure");
        let typed = TypedValue {
            type_name: arm_type.to_string(),
            value: if secure { Value::Null } else { value.clone() },
        };
        self.params
            .borrow_mut()
            .insert(name.to_lowercase(), (name.clone(), value));
        Ok(typed)
    }

    /// A parameter entry is `{"value": v}` or a Key Vault `{"reference": ...}`, whose
    /// secret the simulator synthesises from the vault id and secret name.
    pub(super) fn parameter_value(&self, name: &str, entry: &Value) -> Result<Value> {
        if let Some(v) = entry.get("value") {
            return Ok(v.clone());
        }
        if let Some(reference) = entry.get("reference") {
            let vault = reference
                .pointer("/keyVault/id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let secret = reference
                .get("secretName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if vault.is_empty() || secret.is_empty() {
                return Err(TemplateError::invalid_deployment(format!(
                    "The Key Vault reference for parameter '{name}' must name 'keyVault.id' and 'secretName'."
                )));
            }
            return Ok(Value::from(runtime::seeded_key(vault, secret, 24)));
        }
        Err(TemplateError::invalid_deployment(format!(
            "The value of deployment parameter '{name}' must be an object with a 'value' or 'reference' property."
        )))
    }

    pub(super) fn variable(&self, name: &str) -> Result<Value> {
        let key = name.to_lowercase();
        match self.var_slots.borrow().get(&key) {
            Some(Slot::Done(v)) => return Ok(v.clone()),
            Some(Slot::Busy) => {
                return Err(TemplateError::invalid_template(format!(
                    "The template variable '{name}' refers to itself through a cycle of variable references."
                )));
            }
            None => {}
        }
        let def = self.variables.get(&key).cloned().ok_or_else(|| {
            TemplateError::invalid_template(format!(
                "The template variable '{name}' is not found. Please see https://aka.ms/arm-syntax-variables for usage details."
            ))
        })?;
        self.var_slots.borrow_mut().insert(key.clone(), Slot::Busy);
        let result = match def {
            VarDef::Plain(raw) => self.eval_value(raw, &Frame::default()),
            VarDef::Copy(spec) => self.copy_array(spec, &Frame::default(), "variables"),
        };
        match result {
            Ok(v) => {
                self.var_slots
                    .borrow_mut()
                    .insert(key, Slot::Done(v.clone()));
                Ok(v)
            }
            Err(e) => {
                self.var_slots.borrow_mut().remove(&key);
                Err(e.within(&format!("template variable '{name}'"), None))
            }
        }
    }

    /// A `{name, count, input}` copy block as an array.
    pub(super) fn copy_array(&self, spec: &Value, frame: &Frame, what: &str) -> Result<Value> {
        let name = spec
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        let count = self.copy_count(spec, frame, what)?;
        let input = spec.get("input").ok_or_else(|| {
            TemplateError::invalid_template(format!(
                "The copy block '{name}' in {what} has no 'input'."
            ))
        })?;
        let mut out = Vec::with_capacity(count as usize);
        for i in 0..count {
            let mut inner = frame.clone();
            inner.loops.push((name.clone(), i));
            out.push(self.eval_value(input, &inner)?);
        }
        Ok(Value::Array(out))
    }

    pub(super) fn copy_count(&self, spec: &Value, frame: &Frame, what: &str) -> Result<i64> {
        let raw = spec.get("count").ok_or_else(|| {
            TemplateError::invalid_template(format!("A copy block in {what} has no 'count'."))
        })?;
        let count = as_int("copy", &self.eval_value(raw, frame)?).map_err(|_| {
            TemplateError::invalid_template(format!("The copy count in {what} must be an integer."))
        })?;
        if !(0..=MAX_COPY).contains(&count) {
            return Err(TemplateError::invalid_template(format!(
                "The copy count '{count}' in {what} must be between 0 and {MAX_COPY}."
            )));
        }
        Ok(count)
    }

    pub(super) fn eval_value(&self, v: &Value, frame: &Frame) -> Result<Value> {
        match v {
            Value::String(s) => self.eval_str(s, frame),
            Value::Array(items) => items
                .iter()
                .map(|i| self.eval_value(i, frame))
                .collect::<Result<Vec<_>>>()
                .map(Value::Array),
            Value::Object(o) => {
                let mut out = Map::with_capacity(o.len());
                for (k, item) in o {
                    if k == "copy" && is_property_copy(item) {
                        for spec in item.as_array().into_iter().flatten() {
                            let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
                            out.insert(
                                name.to_string(),
                                self.copy_array(spec, frame, "properties")?,
                            );
                        }
                        continue;
                    }
                    let key = match expr::classify(k) {
                        StringForm::Literal(l) => l.to_string(),
                        StringForm::Expression(_) => match self.eval_str(k, frame)? {
                            Value::String(s) => s,
                            other => {
                                return Err(TemplateError::invalid_template(format!(
                                    "The property name expression '{k}' must evaluate to a string, not '{}'.",
                                    type_name(&other)
                                )));
                            }
                        },
                    };
                    out.insert(key, self.eval_value(item, frame)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    pub(super) fn eval_str(&self, s: &str, frame: &Frame) -> Result<Value> {
        match expr::classify(s) {
            StringForm::Literal(l) => Ok(Value::String(l.to_string())),
            StringForm::Expression(text) => {
                let parsed = self.parsed(text)?;
                self.eval(&parsed, frame)
            }
        }
    }

    pub(super) fn parsed(&self, text: &str) -> Result<Rc<Expr>> {
        if let Some(e) = self.shared.parsed.borrow().get(text) {
            return Ok(e.clone());
        }
        let e = Rc::new(expr::parse(text)?);
        self.shared
            .parsed
            .borrow_mut()
            .insert(text.to_string(), e.clone());
        Ok(e)
    }

    pub(super) fn eval(&self, e: &Expr, frame: &Frame) -> Result<Value> {
        match e {
            Expr::Str(s) => Ok(Value::String(s.clone())),
            Expr::Int(i) => Ok(Value::from(*i)),
            Expr::Member(target, name) => {
                let v = self.eval(target, frame)?;
                member(&v, name)
            }
            Expr::Index(target, index) => {
                let v = self.eval(target, frame)?;
                let i = self.eval(index, frame)?;
                match (&v, &i) {
                    (Value::Array(items), Value::Number(n)) => {
                        let idx = n.as_i64().unwrap_or(-1);
                        usize::try_from(idx)
                            .ok()
                            .and_then(|u| items.get(u))
                            .cloned()
                            .ok_or_else(|| {
                                TemplateError::invalid_template(format!(
                                    "The language expression property array index '{idx}' is out of bounds."
                                ))
                            })
                    }
                    (Value::Object(_), Value::String(k)) => member(&v, k),
                    _ => Err(TemplateError::invalid_template(format!(
                        "The language expression cannot index a value of type '{}' with a value of type '{}'.",
                        type_name(&v),
                        type_name(&i)
                    ))),
                }
            }
            Expr::Call { name, args } => self.call(name, args, frame),
        }
    }

    pub(super) fn eval_args(&self, args: &[Expr], frame: &Frame) -> Result<Vec<Value>> {
        args.iter().map(|a| self.eval(a, frame)).collect()
    }

    pub(super) fn call(&self, name: &str, args: &[Expr], frame: &Frame) -> Result<Value> {
        let depth = self.shared.depth.get();
        if depth >= MAX_CALL_DEPTH {
            return Err(TemplateError::invalid_template(format!(
                "The call of template function '{name}' is nested more than {MAX_CALL_DEPTH} levels deep (through expressions, variables and user-defined functions)."
            )));
        }
        self.shared.depth.set(depth + 1);
        let result = self.call_inner(name, args, frame);
        self.shared.depth.set(depth);
        result
    }

    pub(super) fn outputs(
        &self,
        tpl: &'a Map<String, Value>,
    ) -> Result<IndexMap<String, TypedValue>> {
        let mut out = IndexMap::new();
        let Some(decls) = tpl.get("outputs") else {
            return Ok(out);
        };
        let decls = decls
            .as_object()
            .ok_or_else(|| section_error("outputs", "an object"))?;
        for (name, decl) in decls {
            let ctx = |e: TemplateError| e.within(&format!("template output '{name}'"), None);
            if let Some(c) = decl.get("condition")
                && !as_bool(
                    "condition",
                    &self.eval_value(c, &Frame::default()).map_err(ctx)?,
                )
                .map_err(ctx)?
            {
                continue;
            }
            let value = if let Some(copy) = decl.get("copy") {
                let count = self
                    .copy_count(copy, &Frame::default(), "outputs")
                    .map_err(ctx)?;
                let input = copy.get("input").ok_or_else(|| {
                    TemplateError::invalid_template(format!(
                        "The copy of output '{name}' has no 'input'."
                    ))
                })?;
                let mut items = Vec::new();
                for i in 0..count {
                    let frame = Frame {
                        default_index: Some(i),
                        ..Frame::default()
                    };
                    items.push(self.eval_value(input, &frame).map_err(ctx)?);
                }
                Value::Array(items)
            } else {
                let raw = decl.get("value").ok_or_else(|| {
                    TemplateError::invalid_template(format!(
                        "The template output '{name}' has no 'value'."
                    ))
                })?;
                self.eval_value(raw, &Frame::default()).map_err(ctx)?
            };
            let type_name = match self.declared_type(decl) {
                Some((t, _)) => t,
                None => type_of_value(&value),
            };
            let value = if value.is_null() {
                value
            } else {
                coerce(value, type_name).map_err(|got| {
                    TemplateError::invalid_template(format!(
                        "The template output '{name}' is not valid: the value of type '{}' does not match the declared type '{type_name}'.",
                        crate::template::value::type_name(&got)
                    ))
                })?
            };
            out.insert(
                name.clone(),
                TypedValue {
                    type_name: type_name.to_string(),
                    value,
                },
            );
        }
        Ok(out)
    }
}
