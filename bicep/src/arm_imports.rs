//! Imports of exported variables from ARM JSON templates (`import {a, 'b-c' as d}
//! from 'x.json'`): the variables (listed in the template's
//! `__bicep_exported_variables!` metadata) and the variables they read are copied
//! into the importing template, renamed as the official compiler does (`_<n>.<name>`
//! for what was not imported by name), with `variables('...')` and
//! `copyIndex('...')` in their expressions renamed to match and copy counts written
//! as `length(range(0, count))`.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::ModuleResolver;
use crate::ast::*;
use crate::diag::Diagnostic;

/// Variables copied in from ARM templates.
#[derive(Debug, Default)]
pub struct ArmVariables {
    /// Plain variables: name in the importing template → value.
    pub values: Vec<(String, Value)>,
    /// Copy variables (`{"name", "count", "input"}`).
    pub copies: Vec<Value>,
}

impl ArmVariables {
    /// True when `name` is one of the copied variables.
    pub fn declares(&self, name: &str) -> bool {
        self.values.iter().any(|(n, _)| n == name)
            || self.copies.iter().any(|c| c["name"].as_str() == Some(name))
    }
}

/// The variables `file` imports from ARM templates.
pub fn import(
    file: &File,
    name: &str,
    resolver: &dyn ModuleResolver,
) -> Result<ArmVariables, Vec<Diagnostic>> {
    let numbers = crate::imports::file_numbers(file, name, resolver);
    let mut out = ArmVariables::default();
    let mut errors = Vec::new();
    for d in &file.decls {
        let DeclKind::Import(Some(spec)) = &d.kind else {
            continue;
        };
        if !spec.path.to_ascii_lowercase().ends_with(".json") {
            continue;
        }
        if spec.wildcard.is_some() {
            errors.push(Diagnostic::unsupported(
                "A wildcard import of an ARM template",
                d.keyword_span,
            ));
            continue;
        }
        let template = resolver
            .resolve(name, &spec.path)
            .map_err(|e| format!("An error occurred reading file. {e}"))
            .and_then(|(path, text)| {
                let json: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
                    .map_err(|e| format!("The referenced ARM template has errors: {e}"))?;
                Ok((path, json))
            });
        let (path, template) = match template {
            Ok(t) => t,
            Err(message) => {
                errors.push(Diagnostic::error("BCP091", message, d.keyword_span));
                continue;
            }
        };
        let prefix = format!("_{}", numbers.get(&path).copied().unwrap_or(0));
        match copy_variables(&template, spec, &prefix) {
            Ok(vars) => {
                out.values.extend(vars.values);
                out.copies.extend(vars.copies);
            }
            Err(missing) => errors.push(Diagnostic::error(
                "BCP360",
                format!("The \"{missing}\" symbol was not found in (or was not exported by) the imported template."),
                d.keyword_span,
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The imported variables of one template and what they read; `Err` names an
/// item the template does not export.
fn copy_variables(
    template: &Value,
    spec: &ImportSpec,
    prefix: &str,
) -> Result<ArmVariables, String> {
    let exported: Vec<&str> = template["metadata"]["__bicep_exported_variables!"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    let empty = Map::new();
    let variables = template["variables"].as_object().unwrap_or(&empty);
    let copies: HashMap<&str, &Value> = variables
        .get("copy")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["name"].as_str()?, c)))
        .collect();
    let mut names: HashMap<String, String> = HashMap::new();
    let mut work = Vec::new();
    for (item, alias) in &spec.items {
        if !exported.contains(&item.as_str()) {
            return Err(item.clone());
        }
        names.insert(item.clone(), alias.clone().unwrap_or_else(|| item.clone()));
        work.push(item.clone());
    }
    let mut done = BTreeSet::new();
    while let Some(v) = work.pop() {
        if !done.insert(v.clone()) {
            continue;
        }
        let body = copies
            .get(v.as_str())
            .copied()
            .or_else(|| variables.get(&v));
        for read in body.map(variables_read).unwrap_or_default() {
            if variables.contains_key(&read) || copies.contains_key(read.as_str()) {
                names
                    .entry(read.clone())
                    .or_insert_with(|| format!("{prefix}.{read}"));
                work.push(read);
            }
        }
    }
    let mut out = ArmVariables::default();
    for v in done {
        let new = names[&v].clone();
        if let Some(copy) = copies.get(v.as_str()) {
            let count = copy["count"].clone();
            let mut copy = rename(copy, &names);
            copy["name"] = Value::String(new);
            copy["count"] = Value::String(format!(
                "[length(range(0, {}))]",
                expression(&rename(&count, &names))
            ));
            out.copies.push(copy);
        } else if let Some(value) = variables.get(&v) {
            out.values.push((new, rename(value, &names)));
        }
    }
    Ok(out)
}

/// A count (`"[expr]"` or a number) as an expression.
fn expression(v: &Value) -> String {
    match v {
        Value::String(s) if s.starts_with('[') && s.ends_with(']') => s[1..s.len() - 1].to_string(),
        other => other.to_string(),
    }
}

/// Names of the variables an ARM value's expressions read.
fn variables_read(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_strings(v, &mut |s| {
        for name in quoted_arguments(s, "variables('") {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    });
    out
}

fn walk_strings(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| walk_strings(x, f)),
        Value::Object(m) => m.values().for_each(|x| walk_strings(x, f)),
        _ => {}
    }
}

/// The literal first arguments of every `<call>'...')` in an expression string.
fn quoted_arguments(s: &str, call: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(call) {
        let after = &rest[i + call.len()..];
        if let Some(end) = after.find('\'') {
            out.push(after[..end].to_string());
        }
        rest = after;
    }
    out
}

/// `v` with `variables('x')` and `copyIndex('x')` renamed by `names`.
fn rename(v: &Value, names: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) if s.starts_with('[') && !s.starts_with("[[") => {
            let mut s = s.clone();
            for call in ["variables('", "copyIndex('"] {
                for (old, new) in names {
                    s = s.replace(&format!("{call}{old}'"), &format!("{call}{new}'"));
                }
            }
            Value::String(s)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| rename(x, names)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), rename(x, names)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exported_variables_come_with_what_they_read() {
        let template = json!({
            "metadata": {"__bicep_exported_variables!": [{"name": "a-b"}, {"name": "uses"}]},
            "variables": {
                "a-b": "value",
                "copy": [{"name": "each", "count": "[variables('n')]", "input": "[copyIndex('each')]"}],
                "n": 2,
                "uses": "[variables('each')]"
            }
        });
        let spec = ImportSpec {
            items: vec![("a-b".into(), Some("ab".into())), ("uses".into(), None)],
            wildcard: None,
            path: "x.json".into(),
        };
        let vars = copy_variables(&template, &spec, "_1").unwrap();
        let values: HashMap<String, Value> = vars.values.into_iter().collect();
        assert_eq!(values["ab"], "value");
        assert_eq!(values["uses"], "[variables('_1.each')]");
        assert_eq!(values["_1.n"], 2);
        assert_eq!(
            vars.copies,
            [
                json!({"name": "_1.each", "count": "[length(range(0, variables('_1.n')))]", "input": "[copyIndex('_1.each')]"})
            ]
        );
        let missing = ImportSpec {
            items: vec![("n".into(), None)],
            ..spec
        };
        assert_eq!(copy_variables(&template, &missing, "_1").unwrap_err(), "n");
    }
}
