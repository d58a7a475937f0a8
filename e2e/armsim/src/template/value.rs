//! Helpers for ARM's view of JSON values: type names, conversions, comparisons.

use serde_json::{Map, Value};

use super::model::TemplateError;

/// The type name ARM's error messages use for a value.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "Integer",
        Value::Number(_) => "Float",
        Value::String(_) => "String",
        Value::Array(_) => "Array",
        Value::Object(_) => "Object",
    }
}

/// A value as text the way ARM's `string()`, `format()` and `concat()` render it.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Case-insensitive property lookup, as ARM's expression engine does it.
pub fn get_ci<'v>(object: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

pub fn as_str<'v>(function: &str, value: &'v Value) -> Result<&'v str, TemplateError> {
    value
        .as_str()
        .ok_or_else(|| wrong_type(function, "String", value))
}

pub fn as_int(function: &str, value: &Value) -> Result<i64, TemplateError> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| wrong_type(function, "Integer", value)),
        _ => Err(wrong_type(function, "Integer", value)),
    }
}

pub fn as_bool(function: &str, value: &Value) -> Result<bool, TemplateError> {
    value
        .as_bool()
        .ok_or_else(|| wrong_type(function, "Boolean", value))
}

pub fn as_array<'v>(function: &str, value: &'v Value) -> Result<&'v Vec<Value>, TemplateError> {
    value
        .as_array()
        .ok_or_else(|| wrong_type(function, "Array", value))
}

pub fn as_object<'v>(
    function: &str,
    value: &'v Value,
) -> Result<&'v Map<String, Value>, TemplateError> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(function, "Object", value))
}

pub fn wrong_type(function: &str, expected: &str, got: &Value) -> TemplateError {
    TemplateError::invalid_template(format!(
        "The template function '{function}' expects a parameter of type '{expected}' but received a value of type '{}'.",
        type_name(got)
    ))
}

/// Orders two values for `less`/`greater`/`sort`: integers numerically, strings ordinally.
pub fn compare(function: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, TemplateError> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            Ok(x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal))
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err(TemplateError::invalid_template(format!(
            "The template function '{function}' expects two parameters of the same comparable type (Integer or String) but received '{}' and '{}'.",
            type_name(a),
            type_name(b)
        ))),
    }
}

/// `empty()`: null, "", [] and {} are empty.
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}
