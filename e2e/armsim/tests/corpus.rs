//! Deploys every compiled sample of the Bicep conformance corpus through the template
//! evaluator, with parameter values synthesised from the declared types and constraints.
//!
//! The corpus lives in `shared/bicep-conformance/` beside the repository
//! (`AZURE_DRIVER_SHARED_DIR` overrides the `shared/` location).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use armsim::template::{
    DeploymentContext, EvaluationOptions, ResourceGroupInfo, ResourceLookup, TargetScope,
    TemplateError, evaluate_with, synthesize_runtime,
};
use serde_json::{Map, Value, json};

const SUBSCRIPTION: &str = "11111111-2222-3333-4444-555555555555";
const TENANT: &str = "66666666-7777-8888-9999-000000000000";

fn shared_dir() -> PathBuf {
    match std::env::var_os("AZURE_DRIVER_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn main_json_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "main.json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The environment the samples assume already exists (virtual networks, vaults,
/// identities they declare `existing` or read by id): any id resolves to a resource
/// of its type, in the resource group's location.
struct PreExisting;

impl ResourceLookup for PreExisting {
    fn get(&self, resource_id: &str) -> Option<Value> {
        let segments: Vec<&str> = resource_id.split('/').filter(|s| !s.is_empty()).collect();
        let name = segments.last()?.to_string();
        let providers = segments
            .iter()
            .rposition(|s| s.eq_ignore_ascii_case("providers"));
        let resource_type = match providers {
            Some(p) => {
                let mut t = vec![segments.get(p + 1)?.to_string()];
                t.extend(segments[p + 2..].iter().step_by(2).map(|s| s.to_string()));
                t.join("/")
            }
            None => "Microsoft.Resources/resourceGroups".to_string(),
        };
        let mut body = json!({
            "id": resource_id,
            "name": name,
            "type": resource_type,
            "location": "eastus",
            "tags": {},
            "properties": {},
        });
        if let Some(b) = body.as_object_mut() {
            synthesize_runtime(b, resource_id, &resource_type, TENANT);
        }
        Some(body)
    }
}

fn resolve_type<'a>(
    decl: &'a Value,
    definitions: Option<&'a Map<String, Value>>,
) -> (String, &'a Value) {
    let mut current = decl;
    for _ in 0..16 {
        if let Some(t) = current.get("type").and_then(Value::as_str) {
            return (t.to_lowercase(), current);
        }
        match current
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/definitions/"))
            .and_then(|n| definitions?.get(n))
        {
            Some(next) => current = next,
            None => break,
        }
    }
    ("object".into(), current)
}

/// A value for a parameter that has no default, from its type and constraints.
fn synthesise(
    name: &str,
    decl: &Value,
    definitions: Option<&Map<String, Value>>,
    template: &Value,
) -> Value {
    let (ty, typed) = resolve_type(decl, definitions);
    let get = |k: &str| decl.get(k).or_else(|| typed.get(k));
    if let Some(Value::Array(allowed)) = get("allowedValues")
        && let Some(first) = allowed.first()
    {
        return if ty == "array" && !first.is_array() {
            json!([first])
        } else {
            first.clone()
        };
    }

    let min_len = get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max_len = get("maxLength").and_then(Value::as_u64).map(|m| m as usize);
    let fit = |base: String| -> String {
        let mut s = base;
        while s.len() < min_len {
            s.push('x');
        }
        match max_len {
            Some(max) if s.len() > max => s[..max].to_string(),
            _ => s,
        }
    };
    match ty.as_str() {
        "int" => {
            let min = get("minValue").and_then(Value::as_i64);
            let max = get("maxValue").and_then(Value::as_i64);
            json!(min.unwrap_or_else(|| max.map_or(1, |m| m.min(1))))
        }
        "bool" => json!(true),
        "array" => {
            if let Some(shape @ Value::Array(_)) = inferred_shape(template, name) {
                return shape;
            }
            let items: Vec<Value> = (0..min_len.max(1))
                .map(|i| json!(format!("{name}{i}")))
                .collect();
            json!(items)
        }
        "object" | "secureobject" => match inferred_shape(template, name) {
            Some(shape @ Value::Object(_)) => shape,
            _ => json!({}),
        },
        "securestring" => json!(fit("Sim-P@ssw0rd-2026!".into())),
        _ => {
            let lower = name.to_lowercase();
            if lower.ends_with("resourceid") || lower.ends_with("accountid") {
                json!(format!(
                    "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-shared/providers/Microsoft.Resources/simulated/{name}"
                ))
            } else if lower.ends_with("subscriptionid") || lower == "subid" {
                json!(SUBSCRIPTION)
            } else if ["principalid", "objectid", "clientid", "oid"]
                .iter()
                .any(|s| lower.ends_with(s))
            {
                json!("0c7e1b7a-5d4f-4c6e-9a51-2f0b8f3d9e11")
            } else {
                json!(fit(format!(
                    "sim{}",
                    lower
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .take(10)
                        .collect::<String>()
                )))
            }
        }
    }
}

/// The shape of an object or array parameter as the template reads it:
/// `parameters('p').a[0].b` makes `{"a": [{"b": "simb"}]}`.
fn inferred_shape(template: &Value, name: &str) -> Option<Value> {
    fn strings<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
        match v {
            Value::String(s) => out.push(s),
            Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
            Value::Object(o) => o.values().for_each(|i| strings(i, out)),
            _ => {}
        }
    }
    fn insert(shape: &mut Value, path: &[Option<String>]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let leaf = |key: &Option<String>| json!(format!("sim{}", key.as_deref().unwrap_or("item")));
        match first {
            Some(key) => {
                if !shape.is_object() {
                    *shape = json!({});
                }
                let entry = shape
                    .as_object_mut()
                    .map(|o| o.entry(key.clone()).or_insert_with(|| leaf(first)));
                if let Some(entry) = entry
                    && !rest.is_empty()
                {
                    insert(entry, rest);
                }
            }
            None => {
                if !shape.is_array() {
                    *shape = json!([leaf(first)]);
                }
                if let Some(item) = shape.as_array_mut().and_then(|a| a.first_mut())
                    && !rest.is_empty()
                {
                    insert(item, rest);
                }
            }
        }
    }
    let mut texts = Vec::new();
    strings(template, &mut texts);
    let needle = format!("parameters('{}')", name.to_lowercase());
    let mut shape: Option<Value> = None;
    for text in texts {
        let lower = text.to_lowercase();
        let mut from = 0;
        while let Some(pos) = lower[from..].find(&needle) {
            let chars: Vec<char> = text[from + pos + needle.len()..].chars().collect();
            from += pos + needle.len();
            let mut path: Vec<Option<String>> = Vec::new();
            let mut i = 0;
            loop {
                match chars.get(i) {
                    Some('.') => {
                        let key: String = chars[i + 1..]
                            .iter()
                            .take_while(|c| c.is_alphanumeric() || **c == '_')
                            .collect();
                        if key.is_empty() {
                            break;
                        }
                        i += 1 + key.chars().count();
                        path.push(Some(key));
                    }
                    Some('[') => {
                        let mut depth = 0;
                        let mut end = None;
                        for (j, c) in chars.iter().enumerate().skip(i) {
                            match c {
                                '[' | '(' => depth += 1,
                                ']' | ')' => {
                                    depth -= 1;
                                    if depth == 0 {
                                        end = Some(j);
                                        break;
                                    }
                                }
                                _ => {}
                            }
                        }
                        let Some(end) = end else { break };
                        let inner: String = chars[i + 1..end].iter().collect();
                        let literal = inner
                            .strip_prefix('\'')
                            .and_then(|k| k.strip_suffix('\''))
                            .filter(|k| !k.contains('\''));
                        path.push(literal.map(str::to_string));
                        i = end + 1;
                    }
                    _ => break,
                }
            }
            if !path.is_empty() {
                let target = shape.get_or_insert_with(|| match path[0] {
                    Some(_) => json!({}),
                    None => json!([]),
                });
                insert(target, &path);
            }
        }
    }
    shape
}

fn parameters_for(template: &Value) -> Value {
    let definitions = template.get("definitions").and_then(Value::as_object);
    let mut out = Map::new();
    if let Some(Value::Object(params)) = template.get("parameters") {
        for (name, decl) in params {
            let nullable = decl
                .get("nullable")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if decl.get("defaultValue").is_none() && !nullable {
                out.insert(
                    name.clone(),
                    json!({"value": synthesise(name, decl, definitions, template)}),
                );
            }
        }
    }
    Value::Object(out)
}

fn scope_for(template: &Value) -> (DeploymentContext, EvaluationOptions) {
    let schema = template
        .get("$schema")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    let mut ctx = DeploymentContext {
        tenant_id: TENANT.into(),
        subscription_id: SUBSCRIPTION.into(),
        resource_group: Some(ResourceGroupInfo {
            name: "rg-corpus".into(),
            location: "eastus".into(),
            tags: Map::new(),
        }),
        deployment_name: "corpus".into(),
        location: None,
    };
    let mut options = EvaluationOptions::default();
    if !schema.contains("/deploymenttemplate.json") {
        ctx.resource_group = None;
        ctx.location = Some("eastus".into());
        if schema.contains("managementgroupdeploymenttemplate") {
            options.scope = TargetScope::ManagementGroup("mg-corpus".into());
        } else if schema.contains("tenantdeploymenttemplate") {
            options.scope = TargetScope::Tenant;
        }
    }
    (ctx, options)
}

struct Tally {
    succeeded: usize,
    failures: Vec<(String, TemplateError)>,
    total: usize,
}

fn run_folder(root: &Path, label: &str) -> Tally {
    let files = main_json_files(root);
    assert!(!files.is_empty(), "no main.json under {}", root.display());
    let mut tally = Tally {
        succeeded: 0,
        failures: Vec::new(),
        total: files.len(),
    };
    let mut timings: HashMap<&str, f64> = HashMap::new();
    for file in &files {
        let case = file
            .parent()
            .and_then(|p| p.strip_prefix(root).ok())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let text = std::fs::read_to_string(file).expect("readable main.json");
        let template: Value = serde_json::from_str(&text).expect("valid JSON");
        let params = parameters_for(&template);
        let (ctx, options) = scope_for(&template);
        let started = Instant::now();
        let result = evaluate_with(&template, &params, &ctx, &PreExisting, &options);
        let micros = started.elapsed().as_secs_f64() * 1e6;
        *timings.entry("total").or_default() += micros;
        match result {
            Ok(d) => {
                tally.succeeded += 1;
                println!(
                    "{label} {case}: Succeeded ({} resources, {} outputs, {micros:.0} us)",
                    d.resources.len(),
                    d.outputs.len()
                );
            }
            Err(e) => {
                println!("{label} {case}: Failed {}: {}", e.code, e.message);
                tally.failures.push((case, e));
            }
        }
    }
    println!(
        "{label}: {} of {} evaluated to Succeeded; mean evaluation time {:.0} us",
        tally.succeeded,
        tally.total,
        timings["total"] / tally.total as f64
    );
    tally
}

#[test]
fn corpus_samples_deploy() {
    let root = shared_dir().join("bicep-conformance/samples");
    let tally = run_folder(&root, "samples");
    for (case, e) in &tally.failures {
        assert!(
            matches!(
                e.code.as_str(),
                "InvalidTemplate" | "InvalidTemplateDeployment"
            ),
            "{case}: a failure must be an InvalidTemplate-class 400, got {}: {}",
            e.code,
            e.message
        );
        assert!(
            e.message.contains('\''),
            "{case}: the error must name what failed: {}",
            e.message
        );
    }
    assert!(
        tally.succeeded * 10 >= tally.total * 9,
        "only {} of {} samples reached Succeeded",
        tally.succeeded,
        tally.total
    );
}

#[test]
fn corpus_baselines_deploy() {
    let root = shared_dir().join("bicep-conformance/baselines/valid");
    let tally = run_folder(&root, "baselines");
    for (case, e) in &tally.failures {
        assert!(!e.message.is_empty(), "{case}: failures carry a message");
    }
}

/// Perturbing the samples (dropping keys, replacing values) must give errors or
/// results, never panics.
#[test]
fn perturbed_samples_never_panic() {
    let root = shared_dir().join("bicep-conformance/samples");
    let mut evaluated = 0;
    for file in main_json_files(&root).iter().step_by(5) {
        let template: Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("readable")).expect("JSON");
        let params = parameters_for(&template);
        let (ctx, options) = scope_for(&template);
        let mutations: [fn(&mut Value); 5] = [
            |t| {
                t.as_object_mut().map(|o| o.remove("parameters"));
            },
            |t| {
                t.as_object_mut().map(|o| o.remove("variables"));
            },
            |t| {
                if let Some(Value::Array(r)) = t.get_mut("resources") {
                    r.reverse();
                    r.truncate(r.len() / 2);
                }
            },
            |t| {
                if let Some(Value::Array(r)) = t.get_mut("resources") {
                    for res in r.iter_mut() {
                        res["name"] = json!(7);
                    }
                }
            },
            |t| {
                if let Some(Value::Object(o)) = t.get_mut("outputs") {
                    for out in o.values_mut() {
                        out["value"] = json!("[parameters('missing')]");
                    }
                }
            },
        ];
        for mutate in mutations {
            let mut t = template.clone();
            mutate(&mut t);
            let _ = evaluate_with(&t, &params, &ctx, &PreExisting, &options);
            evaluated += 1;
        }
    }
    assert!(evaluated > 0);
}
