//! ARM template functions that depend only on their arguments.
//!
//! Functions that need the deployment (parameters, resources, scope) or lazy
//! arguments (`if`, lambdas) live beside it, in `context` and `lambda`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::template::expr::Expr;
use crate::template::format::dotnet_format;
use crate::template::hash;
use crate::template::model::TemplateError;
use crate::template::value::{
    as_array, as_bool, as_int, as_object, as_str, compare, get_ci, is_empty, to_text, type_name,
    wrong_type,
};

type Result<T> = std::result::Result<T, TemplateError>;

/// Evaluates a pure function by its lower-case name, or `None` if there is none by that name.
pub fn call_pure(name: &str, display: &str, args: &[Value]) -> Option<Result<Value>> {
    let f = display;
    number_or_logic(name, f, args)
        .or_else(|| array_function(name, f, args))
        .or_else(|| object_function(name, f, args))
        .or_else(|| string_function(name, f, args))
        .or_else(|| encoding_function(name, f, args))
}

/// Arithmetic, conversions, comparisons and logic.
fn number_or_logic(name: &str, f: &str, args: &[Value]) -> Option<Result<Value>> {
    Some(match name {
        "add" => arith(f, args, i64::checked_add),
        "sub" => arith(f, args, i64::checked_sub),
        "mul" => arith(f, args, i64::checked_mul),
        "div" => arith(f, args, |a, b| if b == 0 { None } else { a.checked_div(b) }),
        "mod" => arith(f, args, |a, b| if b == 0 { None } else { a.checked_rem(b) }),
        "min" | "max" => min_max(f, name == "max", args),
        "int" => arity(f, args, 1, 1).and_then(|_| to_int(f, &args[0])),
        "float" => arity(f, args, 1, 1).and_then(|_| to_float(f, &args[0])),
        "range" => arity(f, args, 2, 2).and_then(|_| {
            let start = as_int(f, &args[0])?;
            let count = as_int(f, &args[1])?;
            if !(0..=10_000).contains(&count) {
                return Err(invalid_arg(f, "the count must be between 0 and 10000"));
            }
            let end = start
                .checked_add(count)
                .ok_or_else(|| invalid_arg(f, "the range overflows"))?;
            Ok(Value::Array((start..end).map(Value::from).collect()))
        }),
        "true" => arity(f, args, 0, 0).map(|_| Value::Bool(true)),
        "false" => arity(f, args, 0, 0).map(|_| Value::Bool(false)),
        "null" => arity(f, args, 0, 0).map(|_| Value::Null),
        "not" => arity(f, args, 1, 1).and_then(|_| Ok(Value::Bool(!as_bool(f, &args[0])?))),
        "bool" => arity(f, args, 1, 1).and_then(|_| to_bool(f, &args[0])),
        "equals" => arity(f, args, 2, 2).map(|_| Value::Bool(args[0] == args[1])),
        "less" | "lessorequals" | "greater" | "greaterorequals" => {
            arity(f, args, 2, 2).and_then(|_| {
                let ord = compare(f, &args[0], &args[1])?;
                Ok(Value::Bool(match name {
                    "less" => ord.is_lt(),
                    "lessorequals" => ord.is_le(),
                    "greater" => ord.is_gt(),
                    _ => ord.is_ge(),
                }))
            })
        }
        "coalesce" => Ok(args
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null)),
        "empty" => arity(f, args, 1, 1).map(|_| Value::Bool(is_empty(&args[0]))),
        "length" => arity(f, args, 1, 1).and_then(|_| match &args[0] {
            Value::String(s) => Ok(Value::from(s.chars().count())),
            Value::Array(a) => Ok(Value::from(a.len())),
            Value::Object(o) => Ok(Value::from(o.len())),
            other => Err(wrong_type(f, "String, Array or Object", other)),
        }),
        _ => return None,
    })
}

/// Arrays and the functions shared by arrays and strings.
fn array_function(name: &str, f: &str, args: &[Value]) -> Option<Result<Value>> {
    Some(match name {
        "concat" => concat(f, args),
        "contains" => arity(f, args, 2, 2).and_then(|_| contains(f, &args[0], &args[1])),
        "createarray" => Ok(Value::Array(args.to_vec())),
        "array" => arity(f, args, 1, 1).map(|_| match &args[0] {
            Value::Array(a) => Value::Array(a.clone()),
            other => Value::Array(vec![other.clone()]),
        }),
        "createobject" => create_object(f, args),
        "first" | "last" => {
            arity(f, args, 1, 1).and_then(|_| first_last(f, name == "first", &args[0]))
        }
        "take" | "skip" => arity(f, args, 2, 2).and_then(|_| take_skip(f, name == "take", args)),
        "indexof" | "lastindexof" => {
            arity(f, args, 2, 2).and_then(|_| index_of(f, name == "lastindexof", args))
        }
        "union" => union(f, args),
        "intersection" => intersection(f, args),
        "flatten" => arity(f, args, 1, 1).and_then(|_| {
            let mut out = Vec::new();
            for item in as_array(f, &args[0])? {
                out.extend(as_array(f, item)?.iter().cloned());
            }
            Ok(Value::Array(out))
        }),
        "distinct" => arity(f, args, 1, 1).and_then(|_| {
            let mut out: Vec<Value> = Vec::new();
            for item in as_array(f, &args[0])? {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(Value::Array(out))
        }),
        _ => return None,
    })
}

/// Objects and element access.
fn object_function(name: &str, f: &str, args: &[Value]) -> Option<Result<Value>> {
    Some(match name {
        "items" => arity(f, args, 1, 1).and_then(|_| {
            let mut entries: Vec<(&String, &Value)> = as_object(f, &args[0])?.iter().collect();
            entries.sort_by_key(|(k, _)| k.to_lowercase());
            Ok(Value::Array(
                entries
                    .into_iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect(),
            ))
        }),
        "objectkeys" => arity(f, args, 1, 1).and_then(|_| {
            Ok(Value::Array(
                as_object(f, &args[0])?
                    .keys()
                    .map(|k| Value::from(k.as_str()))
                    .collect(),
            ))
        }),
        "shallowmerge" => arity(f, args, 1, 1).and_then(|_| {
            let mut out = Map::new();
            for item in as_array(f, &args[0])? {
                for (k, v) in as_object(f, item)? {
                    out.insert(k.clone(), v.clone());
                }
            }
            Ok(Value::Object(out))
        }),
        "tryget" => try_get(f, args),
        "tryindexfromend" | "indexfromend" => arity(f, args, 2, 2).and_then(|_| {
            let items = as_array(f, &args[0])?;
            let from_end = as_int(f, &args[1])?;
            let len = items.len() as i64;
            if from_end >= 1 && from_end <= len {
                Ok(items[(len - from_end) as usize].clone())
            } else if name == "tryindexfromend" {
                Ok(Value::Null)
            } else {
                Err(invalid_arg(f, "the index is out of range"))
            }
        }),
        _ => return None,
    })
}

/// Strings and JSON text.
fn string_function(name: &str, f: &str, args: &[Value]) -> Option<Result<Value>> {
    Some(match name {
        "json" => arity(f, args, 1, 1).and_then(|_| {
            let text = as_str(f, &args[0])?;
            serde_json::from_str(text)
                .map_err(|e| invalid_arg(f, &format!("the value is not valid JSON: {e}")))
        }),
        "string" => arity(f, args, 1, 1).map(|_| Value::String(to_text(&args[0]))),
        "tolower" => {
            arity(f, args, 1, 1).and_then(|_| Ok(Value::from(as_str(f, &args[0])?.to_lowercase())))
        }
        "toupper" => {
            arity(f, args, 1, 1).and_then(|_| Ok(Value::from(as_str(f, &args[0])?.to_uppercase())))
        }
        "trim" => arity(f, args, 1, 1).and_then(|_| Ok(Value::from(as_str(f, &args[0])?.trim()))),
        "startswith" | "endswith" => arity(f, args, 2, 2).and_then(|_| {
            let s = as_str(f, &args[0])?.to_lowercase();
            let t = as_str(f, &args[1])?.to_lowercase();
            Ok(Value::Bool(if name == "startswith" {
                s.starts_with(&t)
            } else {
                s.ends_with(&t)
            }))
        }),
        "replace" => arity(f, args, 3, 3).and_then(|_| {
            let s = as_str(f, &args[0])?;
            let old = as_str(f, &args[1])?;
            if old.is_empty() {
                return Err(invalid_arg(f, "the value to replace must not be empty"));
            }
            Ok(Value::from(s.replace(old, as_str(f, &args[2])?)))
        }),
        "split" => arity(f, args, 2, 2).and_then(|_| split(f, args)),
        "like" => arity(f, args, 2, 2).and_then(|_| {
            let text: Vec<char> = as_str(f, &args[0])?.to_lowercase().chars().collect();
            let pattern: Vec<char> = as_str(f, &args[1])?.to_lowercase().chars().collect();
            Ok(Value::Bool(wildcard_match(&text, &pattern)))
        }),
        "join" => arity(f, args, 2, 2).and_then(|_| {
            let sep = as_str(f, &args[1])?;
            let parts: Vec<String> = as_array(f, &args[0])?.iter().map(to_text).collect();
            Ok(Value::from(parts.join(sep)))
        }),
        "substring" => arity(f, args, 2, 3).and_then(|_| substring(f, args)),
        "padleft" => arity(f, args, 2, 3).and_then(|_| {
            let s = to_text(&args[0]);
            let width = as_int(f, &args[1])?.clamp(0, 16_000) as usize;
            let pad = match args.get(2) {
                Some(v) => as_str(f, v)?.chars().next().unwrap_or(' '),
                None => ' ',
            };
            let len = s.chars().count();
            let mut out: String = std::iter::repeat_n(pad, width.saturating_sub(len)).collect();
            out.push_str(&s);
            Ok(Value::from(out))
        }),
        _ => return None,
    })
}

/// Formatting, encodings, URIs and deterministic ids.
fn encoding_function(name: &str, f: &str, args: &[Value]) -> Option<Result<Value>> {
    Some(match name {
        "format" => {
            if args.is_empty() {
                Err(arity_error(f, 1, usize::MAX, 0))
            } else {
                as_str(f, &args[0]).and_then(|fmt| dotnet_format(fmt, &args[1..]).map(Value::from))
            }
        }
        "base64" => {
            arity(f, args, 1, 1).and_then(|_| Ok(Value::from(BASE64.encode(as_str(f, &args[0])?))))
        }
        "base64tostring" => arity(f, args, 1, 1)
            .and_then(|_| decode_base64(f, as_str(f, &args[0])?).map(Value::from)),
        "base64tojson" => arity(f, args, 1, 1).and_then(|_| {
            let text = decode_base64(f, as_str(f, &args[0])?)?;
            serde_json::from_str(&text)
                .map_err(|e| invalid_arg(f, &format!("the value is not valid JSON: {e}")))
        }),
        "datauri" => arity(f, args, 1, 1).map(|_| {
            Value::from(format!(
                "data:text/plain;charset=utf8;base64,{}",
                BASE64.encode(to_text(&args[0]))
            ))
        }),
        "datauritostring" => arity(f, args, 1, 1).and_then(|_| {
            let s = as_str(f, &args[0])?;
            let data = s
                .split_once(";base64,")
                .map(|(_, d)| d)
                .ok_or_else(|| invalid_arg(f, "the value is not a base64 data URI"))?;
            decode_base64(f, data).map(Value::from)
        }),
        "uricomponent" => arity(f, args, 1, 1)
            .and_then(|_| Ok(Value::from(escape_data_string(as_str(f, &args[0])?)))),
        "uricomponenttostring" => {
            arity(f, args, 1, 1).and_then(|_| unescape(f, as_str(f, &args[0])?).map(Value::from))
        }
        "uri" => arity(f, args, 2, 2).and_then(|_| {
            combine_uri(f, as_str(f, &args[0])?, as_str(f, &args[1])?).map(Value::from)
        }),
        "uniquestring" | "guid" => {
            if args.is_empty() {
                Err(arity_error(f, 1, usize::MAX, 0))
            } else {
                args.iter()
                    .map(|a| as_str(f, a))
                    .collect::<Result<Vec<&str>>>()
                    .map(|parts| {
                        Value::from(if name == "guid" {
                            hash::guid(&parts)
                        } else {
                            hash::unique_string(&parts)
                        })
                    })
            }
        }
        _ => return None,
    })
}

pub fn arity(function: &str, args: &[Value], min: usize, max: usize) -> Result<()> {
    if args.len() < min || args.len() > max {
        return Err(arity_error(function, min, max, args.len()));
    }
    Ok(())
}

pub fn arity_error(function: &str, min: usize, max: usize, got: usize) -> TemplateError {
    let expected = if min == max {
        format!("{min}")
    } else if max == usize::MAX {
        format!("at least {min}")
    } else {
        format!("between {min} and {max}")
    };
    TemplateError::invalid_template(format!(
        "Unable to evaluate template language function '{function}': function requires {expected} argument(s) while {got} were provided."
    ))
}

pub fn no_args(name: &str, args: &[Expr]) -> Result<()> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(arity_error(name, 0, 0, args.len()))
    }
}

pub fn invalid_arg(function: &str, why: &str) -> TemplateError {
    TemplateError::invalid_template(format!(
        "Unable to evaluate template language function '{function}': {why}."
    ))
}

fn arith(f: &str, args: &[Value], op: impl Fn(i64, i64) -> Option<i64>) -> Result<Value> {
    arity(f, args, 2, 2)?;
    let (a, b) = (as_int(f, &args[0])?, as_int(f, &args[1])?);
    op(a, b)
        .map(Value::from)
        .ok_or_else(|| invalid_arg(f, "the operation overflowed or divided by zero"))
}

fn min_max(f: &str, max: bool, args: &[Value]) -> Result<Value> {
    let values: Vec<i64> = match args {
        [Value::Array(items)] => items.iter().map(|v| as_int(f, v)).collect::<Result<_>>()?,
        _ => args.iter().map(|v| as_int(f, v)).collect::<Result<_>>()?,
    };
    let picked = if max {
        values.iter().max()
    } else {
        values.iter().min()
    };
    picked
        .map(|v| Value::from(*v))
        .ok_or_else(|| invalid_arg(f, "at least one value is required"))
}

fn to_int(f: &str, v: &Value) -> Result<Value> {
    match v {
        Value::Number(n) => Ok(Value::from(
            n.as_i64()
                .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        )),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| invalid_arg(f, "the string value cannot be converted to an integer")),
        Value::Bool(b) => Ok(Value::from(i64::from(*b))),
        other => Err(wrong_type(f, "Integer or String", other)),
    }
}

fn to_float(f: &str, v: &Value) -> Result<Value> {
    match v {
        Value::Number(n) => Ok(json!(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map(|x| json!(x))
            .map_err(|_| invalid_arg(f, "the string value cannot be converted to a float")),
        other => Err(wrong_type(f, "Integer or String", other)),
    }
}

fn to_bool(f: &str, v: &Value) -> Result<Value> {
    match v {
        Value::Bool(b) => Ok(Value::Bool(*b)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
        Value::Number(n) => Ok(Value::Bool(n.as_f64() != Some(0.0))),
        other => Err(invalid_arg(
            f,
            &format!(
                "a value of type '{}' cannot be converted to a boolean",
                type_name(other)
            ),
        )),
    }
}

fn concat(f: &str, args: &[Value]) -> Result<Value> {
    if args.first().is_some_and(Value::is_array) {
        let mut out = Vec::new();
        for a in args {
            match a {
                Value::Array(items) => out.extend(items.iter().cloned()),
                Value::Null => {}
                other => return Err(wrong_type(f, "Array", other)),
            }
        }
        return Ok(Value::Array(out));
    }
    let mut out = String::new();
    for a in args {
        match a {
            Value::Array(_) | Value::Object(_) => return Err(wrong_type(f, "String", a)),
            other => out.push_str(&to_text(other)),
        }
    }
    Ok(Value::String(out))
}

fn contains(f: &str, container: &Value, item: &Value) -> Result<Value> {
    Ok(Value::Bool(match container {
        Value::String(s) => s.contains(&to_text(item)),
        Value::Array(a) => a.contains(item),
        Value::Object(o) => get_ci(o, &to_text(item)).is_some(),
        other => return Err(wrong_type(f, "String, Array or Object", other)),
    }))
}

fn create_object(f: &str, args: &[Value]) -> Result<Value> {
    if !args.len().is_multiple_of(2) {
        return Err(invalid_arg(
            f,
            "the function requires an even number of arguments (key, value pairs)",
        ));
    }
    let mut out = Map::new();
    for pair in args.chunks(2) {
        out.insert(as_str(f, &pair[0])?.to_string(), pair[1].clone());
    }
    Ok(Value::Object(out))
}

fn first_last(f: &str, first: bool, v: &Value) -> Result<Value> {
    match v {
        Value::Array(a) => Ok((if first { a.first() } else { a.last() })
            .cloned()
            .unwrap_or(Value::Null)),
        Value::String(s) => {
            let c = if first {
                s.chars().next()
            } else {
                s.chars().last()
            };
            Ok(Value::from(c.map(String::from).unwrap_or_default()))
        }
        other => Err(wrong_type(f, "Array or String", other)),
    }
}

fn take_skip(f: &str, take: bool, args: &[Value]) -> Result<Value> {
    let n = as_int(f, &args[1])?.max(0) as usize;
    match &args[0] {
        Value::Array(a) => {
            let n = n.min(a.len());
            Ok(Value::Array(if take {
                a[..n].to_vec()
            } else {
                a[n..].to_vec()
            }))
        }
        Value::String(s) => Ok(Value::from(if take {
            s.chars().take(n).collect::<String>()
        } else {
            s.chars().skip(n).collect::<String>()
        })),
        other => Err(wrong_type(f, "Array or String", other)),
    }
}

fn index_of(f: &str, last: bool, args: &[Value]) -> Result<Value> {
    match &args[0] {
        Value::String(s) => {
            let hay = s.to_lowercase();
            let needle = as_str(f, &args[1])?.to_lowercase();
            let found = if last {
                hay.rfind(&needle)
            } else {
                hay.find(&needle)
            };
            Ok(Value::from(
                found.map_or(-1, |byte| hay[..byte].chars().count() as i64),
            ))
        }
        Value::Array(a) => {
            let found = if last {
                a.iter().rposition(|v| v == &args[1])
            } else {
                a.iter().position(|v| v == &args[1])
            };
            Ok(Value::from(found.map_or(-1, |i| i as i64)))
        }
        other => Err(wrong_type(f, "Array or String", other)),
    }
}

fn union(f: &str, args: &[Value]) -> Result<Value> {
    match args.first() {
        Some(Value::Object(_)) => {
            let mut out = Value::Object(Map::new());
            for a in args {
                as_object(f, a)?;
                merge_into(&mut out, a);
            }
            Ok(out)
        }
        Some(Value::Array(_)) => {
            let mut out: Vec<Value> = Vec::new();
            for a in args {
                for item in as_array(f, a)? {
                    if !out.contains(item) {
                        out.push(item.clone());
                    }
                }
            }
            Ok(Value::Array(out))
        }
        Some(other) => Err(wrong_type(f, "Object or Array", other)),
        None => Err(arity_error(f, 1, usize::MAX, 0)),
    }
}

/// `union` on objects merges nested objects recursively; later values win otherwise.
fn merge_into(target: &mut Value, source: &Value) {
    match (target, source) {
        (Value::Object(t), Value::Object(s)) => {
            for (k, v) in s {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_into(existing, v)
                    }
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, s) => *t = s.clone(),
    }
}

fn intersection(f: &str, args: &[Value]) -> Result<Value> {
    match args.first() {
        Some(Value::Object(first)) => {
            let mut out = first.clone();
            for a in &args[1..] {
                let other = as_object(f, a)?;
                out.retain(|k, v| other.get(k) == Some(v));
            }
            Ok(Value::Object(out))
        }
        Some(Value::Array(first)) => {
            let mut out: Vec<Value> = Vec::new();
            for item in first {
                let everywhere = args[1..]
                    .iter()
                    .map(|a| as_array(f, a).map(|arr| arr.contains(item)))
                    .collect::<Result<Vec<bool>>>()?
                    .into_iter()
                    .all(|b| b);
                if everywhere && !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(Value::Array(out))
        }
        Some(other) => Err(wrong_type(f, "Object or Array", other)),
        None => Err(arity_error(f, 1, usize::MAX, 0)),
    }
}

fn try_get(f: &str, args: &[Value]) -> Result<Value> {
    if args.len() < 2 {
        return Err(arity_error(f, 2, usize::MAX, args.len()));
    }
    let mut current = args[0].clone();
    for key in &args[1..] {
        current = match (&current, key) {
            (Value::Object(o), Value::String(k)) => get_ci(o, k).cloned().unwrap_or(Value::Null),
            (Value::Array(a), Value::Number(n)) => n
                .as_u64()
                .and_then(|i| a.get(i as usize))
                .cloned()
                .unwrap_or(Value::Null),
            (Value::Null, _) => Value::Null,
            (Value::Object(_) | Value::Array(_), k) => {
                return Err(invalid_arg(
                    f,
                    &format!("a key of type '{}' cannot index this value", type_name(k)),
                ));
            }
            _ => Value::Null,
        };
    }
    Ok(current)
}

fn split(f: &str, args: &[Value]) -> Result<Value> {
    let s = as_str(f, &args[0])?;
    let delimiters: Vec<String> = match &args[1] {
        Value::String(d) => vec![d.clone()],
        Value::Array(a) => a
            .iter()
            .map(|d| as_str(f, d).map(str::to_string))
            .collect::<Result<_>>()?,
        other => return Err(wrong_type(f, "String or Array", other)),
    };
    let mut parts = vec![s.to_string()];
    for d in delimiters.iter().filter(|d| !d.is_empty()) {
        parts = parts
            .iter()
            .flat_map(|p| p.split(d.as_str()).map(str::to_string).collect::<Vec<_>>())
            .collect();
    }
    Ok(Value::Array(parts.into_iter().map(Value::from).collect()))
}

fn substring(f: &str, args: &[Value]) -> Result<Value> {
    let chars: Vec<char> = as_str(f, &args[0])?.chars().collect();
    let start = as_int(f, &args[1])?;
    let len = match args.get(2) {
        Some(v) => as_int(f, v)?,
        None => chars.len() as i64 - start,
    };
    if start < 0 || len < 0 || start + len > chars.len() as i64 {
        return Err(invalid_arg(
            f,
            &format!(
                "the index and length parameters must refer to a location within the string (length {}, start {start}, length {len})",
                chars.len()
            ),
        ));
    }
    Ok(Value::from(
        chars[start as usize..(start + len) as usize]
            .iter()
            .collect::<String>(),
    ))
}

/// `like()`: `*` matches any run of characters, `?` any one character.
fn wildcard_match(text: &[char], pattern: &[char]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            backtrack = Some((p, t));
            p += 1;
        } else if let Some((bp, bt)) = backtrack {
            p = bp + 1;
            t = bt + 1;
            backtrack = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

fn decode_base64(f: &str, s: &str) -> Result<String> {
    let bytes = BASE64
        .decode(s.trim())
        .map_err(|_| invalid_arg(f, "the value is not valid base64"))?;
    String::from_utf8(bytes).map_err(|_| invalid_arg(f, "the decoded value is not valid UTF-8"))
}

/// .NET `Uri.EscapeDataString`: everything except RFC 3986 unreserved characters.
pub fn escape_data_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(f: &str, s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| invalid_arg(f, "the decoded value is not valid UTF-8"))
}

fn combine_uri(f: &str, base: &str, relative: &str) -> Result<String> {
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| invalid_arg(f, "the base value is not an absolute URI"))?;
    if relative.contains("://") {
        return Ok(relative.to_string());
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if let Some(stripped) = relative.strip_prefix('/') {
        return Ok(format!("{scheme}://{authority}/{stripped}"));
    }
    let path = &rest[authority_end..];
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    Ok(format!("{scheme}://{authority}{dir}{relative}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: Vec<Value>) -> Value {
        call_pure(&name.to_lowercase(), name, &args)
            .expect("known function")
            .expect("evaluates")
    }

    #[test]
    fn numeric_functions_follow_the_documentation_examples() {
        assert_eq!(call("add", vec![json!(5), json!(3)]), json!(8));
        assert_eq!(call("sub", vec![json!(7), json!(3)]), json!(4));
        assert_eq!(call("mul", vec![json!(5), json!(3)]), json!(15));
        assert_eq!(call("div", vec![json!(8), json!(3)]), json!(2));
        assert_eq!(call("mod", vec![json!(7), json!(3)]), json!(1));
        assert_eq!(call("max", vec![json!([0, 3, 2, 5, 4])]), json!(5));
        assert_eq!(call("min", vec![json!(0), json!(3), json!(2)]), json!(0));
        assert_eq!(call("range", vec![json!(1), json!(3)]), json!([1, 2, 3]));
        assert_eq!(call("int", vec![json!("4")]), json!(4));
        assert!(
            call_pure("div", "div", &[json!(1), json!(0)])
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn string_functions_follow_the_documentation_examples() {
        assert_eq!(
            call("base64", vec![json!("one, two, three")]),
            json!("b25lLCB0d28sIHRocmVl")
        );
        assert_eq!(
            call("base64ToString", vec![json!("b25lLCB0d28sIHRocmVl")]),
            json!("one, two, three")
        );
        assert_eq!(
            call("dataUri", vec![json!("Hello")]),
            json!("data:text/plain;charset=utf8;base64,SGVsbG8=")
        );
        assert_eq!(
            call("padLeft", vec![json!("123"), json!(10), json!("0")]),
            json!("0000000123")
        );
        assert_eq!(call("indexOf", vec![json!("test"), json!("T")]), json!(0));
        assert_eq!(
            call("lastIndexOf", vec![json!("abcdef"), json!("z")]),
            json!(-1)
        );
        assert_eq!(
            call("startsWith", vec![json!("abcdef"), json!("AB")]),
            json!(true)
        );
        assert_eq!(
            call("endsWith", vec![json!("abcdef"), json!("e")]),
            json!(false)
        );
        assert_eq!(
            call("substring", vec![json!("hello there"), json!(1), json!(3)]),
            json!("ell")
        );
        assert_eq!(
            call("skip", vec![json!("one two three"), json!(4)]),
            json!("two three")
        );
        assert_eq!(
            call("take", vec![json!(["a", "b", "c"]), json!(2)]),
            json!(["a", "b"])
        );
        assert_eq!(
            call("split", vec![json!("one;two,three"), json!([",", ";"])]),
            json!(["one", "two", "three"])
        );
        assert_eq!(
            call(
                "uriComponent",
                vec![json!(
                    "http://contoso.com/resources/nested/azuredeploy.json"
                )]
            ),
            json!("http%3A%2F%2Fcontoso.com%2Fresources%2Fnested%2Fazuredeploy.json")
        );
        assert_eq!(
            call(
                "uriComponentToString",
                vec![json!("http%3A%2F%2Fcontoso.com")]
            ),
            json!("http://contoso.com")
        );
        assert_eq!(
            call(
                "uri",
                vec![
                    json!("http://contoso.org/firstpath/main.json"),
                    json!("nested.json")
                ]
            ),
            json!("http://contoso.org/firstpath/nested.json")
        );
        assert_eq!(
            call(
                "string",
                vec![json!({"valueA": 10, "valueB": "Example Text"})]
            ),
            json!("{\"valueA\":10,\"valueB\":\"Example Text\"}")
        );
        assert_eq!(call("string", vec![json!(true)]), json!("True"));
        assert_eq!(
            call("concat", vec![json!("a"), json!(1), json!("b")]),
            json!("a1b")
        );
        assert_eq!(call("last", vec![json!("One Two Three")]), json!("e"));
        assert_eq!(
            call("like", vec![json!("abcdef"), json!("A*d?f")]),
            json!(true)
        );
        assert_eq!(call("like", vec![json!("abc"), json!("a?")]), json!(false));
    }

    #[test]
    fn array_and_object_functions_follow_the_documentation_examples() {
        assert_eq!(
            call(
                "union",
                vec![
                    json!({"a": "b", "n": {"x": 1}}),
                    json!({"c": "d", "n": {"y": 2}})
                ]
            ),
            json!({"a": "b", "n": {"x": 1, "y": 2}, "c": "d"})
        );
        assert_eq!(
            call(
                "union",
                vec![json!(["one", "two"]), json!(["three", "one"])]
            ),
            json!(["one", "two", "three"])
        );
        assert_eq!(
            call(
                "intersection",
                vec![
                    json!({"one": "a", "two": "b"}),
                    json!({"one": "a", "two": "z"})
                ]
            ),
            json!({"one": "a"})
        );
        assert_eq!(
            call("items", vec![json!({"b": 1, "a": 2})]),
            json!([{"key": "a", "value": 2}, {"key": "b", "value": 1}])
        );
        assert_eq!(
            call("objectKeys", vec![json!({"a": 1, "b": 2})]),
            json!(["a", "b"])
        );
        assert_eq!(
            call(
                "shallowMerge",
                vec![json!([{"a": {"x": 1}}, {"a": {"y": 2}}])]
            ),
            json!({"a": {"y": 2}})
        );
        assert_eq!(
            call(
                "tryGet",
                vec![json!({"a": {"b": 1}}), json!("A"), json!("b")]
            ),
            json!(1)
        );
        assert_eq!(
            call("tryGet", vec![json!({"a": 1}), json!("missing")]),
            json!(null)
        );
        assert_eq!(
            call("contains", vec![json!({"Key": 1}), json!("key")]),
            json!(true)
        );
        assert_eq!(
            call("contains", vec![json!("OneTwo"), json!("one")]),
            json!(false)
        );
        assert_eq!(
            call("createObject", vec![json!("a"), json!(1)]),
            json!({"a": 1})
        );
        assert_eq!(call("empty", vec![json!({})]), json!(true));
        assert_eq!(call("coalesce", vec![json!(null), json!("x")]), json!("x"));
        assert_eq!(
            call("flatten", vec![json!([[1, 2], [3]])]),
            json!([1, 2, 3])
        );
        assert_eq!(call("json", vec![json!("{\"a\": [1]}")]), json!({"a": [1]}));
        assert_eq!(
            call("tryIndexFromEnd", vec![json!([1, 2, 3]), json!(1)]),
            json!(3)
        );
    }

    #[test]
    fn wrong_argument_types_and_counts_are_clear_errors() {
        let err = call_pure("tolower", "toLower", &[json!(1)])
            .unwrap()
            .unwrap_err();
        assert!(
            err.message.contains("'toLower'") && err.message.contains("'String'"),
            "{}",
            err.message
        );
        let err = call_pure("equals", "equals", &[json!(1)])
            .unwrap()
            .unwrap_err();
        assert!(err.message.contains("'equals'"), "{}", err.message);
        assert!(call_pure("nosuchfunction", "noSuchFunction", &[]).is_none());
    }
}
