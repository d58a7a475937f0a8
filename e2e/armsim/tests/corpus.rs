//! Deploys every compiled sample of the Bicep conformance corpus through the
//! simulator's HTTP API (and the valid baselines through the evaluator), with
//! parameter values synthesised from the declared types and constraints.
//!
//! The corpus lives in `shared/bicep-conformance/` beside the repository
//! (`AZURE_DRIVER_SHARED_DIR` overrides the `shared/` location).

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use armsim::template::{
    DeploymentContext, EvaluationOptions, ResourceGroupInfo, ResourceLookup, TargetScope,
    evaluate_with,
};
use armsim::{SimConfig, ThrottlingConfig, assumed_resource, resource_type_of};
use common::{Harness, SUB as SUBSCRIPTION, TENANT};
use serde_json::{Map, Value, json};

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
/// identities they declare `existing` or read by id), for the evaluator-level
/// tests: what the simulator's `assumeExisting: [".*"]` answers over HTTP.
struct PreExisting;

impl ResourceLookup for PreExisting {
    fn get(&self, resource_id: &str) -> Option<Value> {
        let resource_type = resource_type_of(resource_id)?;
        Some(assumed_resource(
            resource_id,
            &resource_type,
            "eastus",
            TENANT,
        ))
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
        "object" | "secureobject" => {
            let mut shape = match inferred_shape(template, name) {
                Some(shape @ Value::Object(_)) => shape,
                _ => json!({}),
            };
            for (path, value) in passed_to_nested(template, name) {
                let mut target = &mut shape;
                for key in &path {
                    if !target.is_object() {
                        *target = json!({});
                    }
                    target = &mut target[key.as_str()];
                }
                *target = value;
            }
            shape
        }
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

/// Values for the properties of object parameter `name` that the template passes
/// as a whole to a nested deployment's parameter (`"value": "[parameters('name').a.b]"`),
/// synthesised from that parameter's declaration in the nested template: the
/// nested template says what type and shape it expects.
fn passed_to_nested(template: &Value, name: &str) -> Vec<(Vec<String>, Value)> {
    let mut found = Vec::new();
    let prefix = format!("[parameters('{}')", name.to_lowercase());
    let mut stack = vec![template];
    while let Some(node) = stack.pop() {
        match node {
            Value::Array(items) => stack.extend(items),
            Value::Object(object) => {
                let is_deployment = object
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("Microsoft.Resources/deployments"));
                let nested = &node["properties"]["template"];
                if is_deployment && let Some(passed) = node["properties"]["parameters"].as_object()
                {
                    for (parameter, given) in passed {
                        let Some(expression) = given["value"].as_str() else {
                            continue;
                        };
                        let Some(path) = expression
                            .to_lowercase()
                            .strip_prefix(&prefix)
                            .and_then(|rest| rest.strip_suffix(']'))
                            .map(|_| &expression[prefix.len()..expression.len() - 1])
                            .filter(|rest| rest.starts_with('.'))
                            .map(|rest| rest[1..].split('.').map(str::to_owned).collect::<Vec<_>>())
                            .filter(|keys| {
                                keys.iter()
                                    .all(|k| k.chars().all(|c| c.is_alphanumeric() || c == '_'))
                            })
                        else {
                            continue;
                        };
                        if let Some(decl) = nested["parameters"].get(parameter) {
                            let definitions = nested.get("definitions").and_then(Value::as_object);
                            found.push((path, synthesise(parameter, decl, definitions, nested)));
                        }
                    }
                }
                // Only the outer template's own expressions refer to `name`.
                stack.extend(
                    object
                        .iter()
                        .filter(|(k, _)| *k != "template")
                        .map(|(_, v)| v),
                );
            }
            _ => {}
        }
    }
    found
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

/// The evaluator's view of where a template deploys, from its `$schema`.
fn scope_for(template: &Value) -> (DeploymentContext, EvaluationOptions) {
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
    let scope = target_scope(template);
    if scope != Scope::ResourceGroup {
        ctx.resource_group = None;
        ctx.location = Some("eastus".into());
    }
    match scope {
        Scope::ManagementGroup => options.scope = TargetScope::ManagementGroup("mg-corpus".into()),
        Scope::Tenant => options.scope = TargetScope::Tenant,
        Scope::ResourceGroup | Scope::Subscription => {}
    }
    (ctx, options)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    ResourceGroup,
    Subscription,
    ManagementGroup,
    Tenant,
}

fn target_scope(template: &Value) -> Scope {
    let schema = template
        .get("$schema")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    if schema.contains("/deploymenttemplate.json") {
        Scope::ResourceGroup
    } else if schema.contains("managementgroupdeploymenttemplate") {
        Scope::ManagementGroup
    } else if schema.contains("tenantdeploymenttemplate") {
        Scope::Tenant
    } else {
        Scope::Subscription
    }
}

/// `(case, main.json)` for every sample under `root`, the case being the folder
/// relative to it (`101/storage-blob-container`).
fn cases(root: &Path) -> Vec<(String, Value)> {
    let files = main_json_files(root);
    assert!(!files.is_empty(), "no main.json under {}", root.display());
    files
        .iter()
        .map(|file| {
            let case = file
                .parent()
                .and_then(|p| p.strip_prefix(root).ok())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let text = std::fs::read_to_string(file).expect("readable main.json");
            (case, serde_json::from_str(&text).expect("valid JSON"))
        })
        .collect()
}

/// Samples that do not reach Succeeded, and the text their error must contain:
/// the thing that failed, named. Each is refused by real ARM as well (see the
/// README's corpus section).
const EXPECTED_FAILURES: &[(&str, &str)] = &[
    // The subnet's default name 'subnet-01' has one segment; a child type needs two.
    (
        "101/sqlmi-new-vnet",
        "The resource 'subnet-01' of type 'Microsoft.Network/virtualNetworks/subnets' has incorrect segment lengths",
    ),
    // resourceId(subscription().id, ...): a '/subscriptions/...' id is no subscription id.
    (
        "101/deployment-script-with-storage",
        "'resourceId': argument 1 '/subscriptions/",
    ),
    // A nested deployment linked to a template spec version that does not exist.
    ("101/template-spec-deploy", "templateSpecs/"),
    // An API policy declared with the operation-policy type (one name segment short).
    (
        "201/api-management-create-all-resources",
        "of type 'Microsoft.ApiManagement/service/apis/operations/policies' has incorrect segment lengths",
    ),
];

struct Outcome {
    state: String,
    code: String,
    message: String,
}

/// PUTs the template as a deployment, polls it to a terminal state and returns
/// its GET body (or the synchronous refusal).
async fn deploy(h: &Harness, case: &str, template: &Value) -> (Outcome, Value) {
    let name: String = case
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(60)
        .collect();
    let mut body = json!({
        "properties": {
            "mode": "Incremental",
            "template": template,
            "parameters": parameters_for(template),
        }
    });
    let scope_path = match target_scope(template) {
        Scope::ResourceGroup => {
            let group = format!("rg-{name}");
            h.create_group(&group).await;
            common::rg_path(&group)
        }
        Scope::Subscription => {
            body["location"] = json!("westeurope");
            format!("/subscriptions/{SUBSCRIPTION}")
        }
        Scope::ManagementGroup => {
            body["location"] = json!("westeurope");
            "/providers/Microsoft.Management/managementGroups/mg-corpus".to_owned()
        }
        Scope::Tenant => {
            body["location"] = json!("westeurope");
            String::new()
        }
    };
    let path = format!(
        "{scope_path}/providers/Microsoft.Resources/deployments/{name}?api-version={}",
        common::API
    );
    let created = h.put(&path, body).await;
    if !created.status.is_success() {
        assert_eq!(created.status, 400, "{case}: {:?}", created.body);
        let outcome = Outcome {
            state: "Refused".into(),
            code: created.code().to_owned(),
            message: created.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
        return (outcome, created.body);
    }
    let status_url = created
        .header("azure-asyncoperation")
        .expect("Azure-AsyncOperation header")
        .to_owned();
    let status = h.wait_status(&status_url).await;
    let got = h.get(&path).await;
    assert_eq!(got.status, 200, "{case}: {:?}", got.body);
    let error = &got.body["properties"]["error"];
    // A failed deployment names the failing resource's error in its details.
    let detail = error["details"].get(0).unwrap_or(error);
    let outcome = Outcome {
        state: status["status"].as_str().unwrap_or_default().to_owned(),
        code: detail["code"].as_str().unwrap_or_default().to_owned(),
        message: detail["message"].as_str().unwrap_or_default().to_owned(),
    };
    (outcome, got.body)
}

/// Outputs and outputResources of a Succeeded deployment are those the template
/// declares and the inventory holds; secure outputs carry no value.
fn check_succeeded(h: &Harness, case: &str, template: &Value, got: &Value) -> usize {
    let declared = template["outputs"].as_object().cloned().unwrap_or_default();
    let outputs = got["properties"]["outputs"]
        .as_object()
        .unwrap_or_else(|| panic!("{case}: Succeeded without outputs: {got}"));
    for (name, decl) in &declared {
        let Some(output) = outputs.get(name) else {
            assert!(
                decl.get("condition").is_some(),
                "{case}: unconditional output '{name}' missing"
            );
            continue;
        };
        let secure = decl["type"]
            .as_str()
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("secure"));
        assert_eq!(
            output.get("value").is_none(),
            secure,
            "{case}: output '{name}' ({}) value presence",
            decl["type"]
        );
    }
    assert!(
        outputs.keys().all(|k| declared.contains_key(k)),
        "{case}: undeclared outputs {outputs:?}"
    );
    let resources = got["properties"]["outputResources"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: no outputResources: {got}"));
    for resource in resources {
        let id = resource["id"].as_str().expect("outputResources[].id");
        assert!(
            h.sim.resource(id).is_some(),
            "{case}: output resource {id} not in the inventory"
        );
    }
    resources.len()
}

#[tokio::test]
async fn corpus_samples_deploy_over_http() {
    let config = SimConfig {
        retry_after_secs: 0,
        latency: armsim::LatencyConfig {
            accepted_ms: 0,
            running_ms: 0,
            delete_ms: 0,
            what_if_ms: 0,
            ..armsim::LatencyConfig::default()
        },
        throttling: ThrottlingConfig {
            enabled: false,
            ..ThrottlingConfig::default()
        },
        assume_existing: vec![".*".into()],
        ..SimConfig::default()
    };
    let h = Harness::start(config).await;
    let samples = cases(&shared_dir().join("bicep-conformance/samples"));
    let started = Instant::now();
    let mut succeeded = 0;
    let mut output_resources = 0;
    let mut failures = Vec::new();
    for (case, template) in &samples {
        let (outcome, got) = deploy(&h, case, template).await;
        if outcome.state == "Succeeded" {
            succeeded += 1;
            output_resources += check_succeeded(&h, case, template, &got);
            println!("samples {case}: Succeeded");
        } else {
            println!(
                "samples {case}: {} {}: {}",
                outcome.state, outcome.code, outcome.message
            );
            failures.push((case.clone(), outcome));
        }
    }
    println!(
        "samples: {succeeded} of {} reached Succeeded over HTTP ({output_resources} output resources, {:.1} s)",
        samples.len(),
        started.elapsed().as_secs_f64()
    );
    for (case, outcome) in &failures {
        assert!(
            [
                "InvalidTemplate",
                "InvalidTemplateDeployment",
                "UnsupportedDeploymentScope"
            ]
            .contains(&outcome.code.as_str()),
            "{case}: a failure must be a 400 naming what failed, got {} {}: {}",
            outcome.state,
            outcome.code,
            outcome.message
        );
        let expected = EXPECTED_FAILURES
            .iter()
            .find(|(c, _)| c == case)
            .map(|(_, text)| *text);
        match expected {
            Some(text) => assert!(
                outcome.message.contains(text),
                "{case}: the error must say {text:?}: {}",
                outcome.message
            ),
            None => assert!(
                outcome.code == "UnsupportedDeploymentScope" && outcome.message.contains("'/"),
                "{case}: unexpected failure {}: {}",
                outcome.code,
                outcome.message
            ),
        }
    }
    assert!(output_resources > 0, "no deployment created anything");
    assert!(
        succeeded * 10 >= samples.len() * 9,
        "only {succeeded} of {} samples reached Succeeded",
        samples.len()
    );
}

#[test]
fn corpus_baselines_evaluate() {
    let root = shared_dir().join("bicep-conformance/baselines/valid");
    let baselines = cases(&root);
    let mut succeeded = 0;
    for (case, template) in &baselines {
        let (ctx, options) = scope_for(template);
        let params = parameters_for(template);
        match evaluate_with(template, &params, &ctx, &PreExisting, &options) {
            Ok(_) => succeeded += 1,
            Err(e) => {
                println!("baselines {case}: Failed {}: {}", e.code, e.message);
                assert!(!e.message.is_empty(), "{case}: failures carry a message");
            }
        }
    }
    println!(
        "baselines: {succeeded} of {} evaluated to Succeeded",
        baselines.len()
    );
}

/// How the evaluator ends a deployment of `template` with synthesised parameters.
fn outcome(template: &Value) -> Result<(), String> {
    let (ctx, options) = scope_for(template);
    let params = parameters_for(template);
    evaluate_with(template, &params, &ctx, &PreExisting, &options)
        .map(|_| ())
        .map_err(|e| format!("{} {}", e.code, e.message))
}

/// What `bicepc` makes of every valid baseline it compiles deploys as the official
/// compiler's `main.json` does: both succeed, or both fail with the same error
/// (some baselines exercise the language with values no deployment accepts, such
/// as a boolean in a string output).
#[test]
fn compiled_baselines_deploy_like_the_official_output() {
    let root = shared_dir().join("bicep-conformance/baselines/valid");
    let official = cases(&root);
    let mut deployed = 0;
    let mut compiled = 0;
    let mut differences = Vec::new();
    for (case, expected) in &official {
        let Ok(ours) = bicep::compile_file(root.join(case).join("main.bicep")) else {
            println!("baselines {case}: not compiled");
            continue;
        };
        compiled += 1;
        let (ours, theirs) = (outcome(&ours.json), outcome(expected));
        println!("baselines {case}: {ours:?}");
        if ours.is_ok() {
            deployed += 1;
        }
        if ours != theirs {
            differences.push(format!("{case}: ours {ours:?}, official {theirs:?}"));
        }
    }
    println!("compiled baselines: {deployed} of {compiled} deployed");
    assert!(compiled >= 36, "only {compiled} baselines compiled");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Resource-derived types outside the corpus deploy: a parameter typed from the
/// facts is checked by the engine (`array` refuses a string), one no fact covers
/// carries only the pointer and takes any value.
#[test]
fn resource_derived_types_outside_the_corpus_deploy() {
    let source = "param policies resourceInput<'Microsoft.KeyVault/vaults@2022-07-01'>.properties.accessPolicies = []\n\
        param size resourceOutput<'Contoso.Widgets/gadgets@2024-01-01'>.properties.size?\n\
        resource kv 'Microsoft.KeyVault/vaults@2022-07-01' = {\n  name: 'kv'\n  location: 'westeurope'\n  \
        properties: {\n    tenantId: subscription().tenantId\n    sku: { family: 'A', name: 'standard' }\n    \
        accessPolicies: policies\n  }\n}\n\
        output uri resourceOutput<'Microsoft.KeyVault/vaults@2022-07-01'>.properties.vaultUri = kv.properties.vaultUri\n\
        output size string = string(size)\n";
    let resolver = bicep::MapResolver::new(std::collections::HashMap::new());
    let template = bicep::compile_source("main.bicep", source, &resolver)
        .expect("compiles")
        .json;
    assert_eq!(template["parameters"]["policies"]["type"], "array");
    assert_eq!(template["parameters"]["size"].get("type"), None);
    let (ctx, options) = scope_for(&template);
    let deploy = |params: Value| {
        evaluate_with(&template, &params, &ctx, &PreExisting, &options)
            .map(|_| ())
            .map_err(|e| e.code)
    };
    assert_eq!(deploy(json!({})), Ok(()));
    assert_eq!(
        deploy(json!({"size": {"value": {"any": ["shape", 1]}}})),
        Ok(())
    );
    assert!(deploy(json!({"policies": {"value": "not an array"}})).is_err());
}

/// Every sample compiled by `bicepc` with symbolic names (languageVersion 2.0:
/// resources keyed by symbol, `existing` resources, symbolic `dependsOn`,
/// `reference('symbol')`) evaluates as its classic compilation does.
#[test]
fn symbolic_name_samples_deploy_like_classic_ones() {
    let root = shared_dir().join("bicep-conformance/samples");
    let mut deployed = 0;
    let mut differences = Vec::new();
    let samples = cases(&root);
    for (case, _) in &samples {
        let dir = root.join(case);
        let mut files = std::collections::HashMap::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("sample folder").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(text) = std::fs::read_to_string(&path) {
                    let rel = path.strip_prefix(&dir).expect("inside the sample");
                    files.insert(rel.to_string_lossy().replace('\\', "/"), text);
                }
            }
        }
        let classic = bicep::MapResolver::new(files.clone());
        files.insert(
            "bicepconfig.json".into(),
            r#"{"experimentalFeaturesEnabled": {"symbolicNameCodegen": true}}"#.into(),
        );
        let symbolic = bicep::MapResolver::new(files.clone());
        let compile = |resolver: &bicep::MapResolver| {
            bicep::compile_source("main.bicep", &files["main.bicep"], resolver)
                .unwrap_or_else(|e| panic!("{case}: {e}"))
                .json
        };
        let (classic, symbolic) = (compile(&classic), compile(&symbolic));
        assert_eq!(symbolic["languageVersion"], "2.0", "{case}");
        let (ours, theirs) = (outcome(&symbolic), outcome(&classic));
        if ours.is_ok() {
            deployed += 1;
        }
        if ours.is_ok() != theirs.is_ok() {
            differences.push(format!("{case}: symbolic {ours:?}, classic {theirs:?}"));
        }
    }
    println!(
        "symbolic-name samples: {deployed} of {} deployed",
        samples.len()
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
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
