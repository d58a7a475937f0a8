//! Validating admission for `AzureResource`: the template must compile (Bicep) or be a
//! well-formed ARM template (inline JSON), and `parameters`/`parametersFrom` must fit the
//! parameters it declares (names, types, required, allowed values, bounds). Every error
//! is reported at once, Bicep ones and parameter declarations with line:column.
//!
//! What is admitted without a look: deletions, updates that leave `spec` unchanged (the
//! controller's finalizer changes must pass even if the compiler grew stricter since),
//! objects being deleted, adopted objects, and templates in ConfigMaps (read by the
//! controller, which reports their errors in status).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

use crds::{AzureResource, AzureResourceSpec, TemplateSource};
use kube::core::{
    DynamicObject,
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation},
};
use serde_json::{Map, Value};
use warp::{Filter, Reply, http::StatusCode, reply::Response};

/// The file name Bicep positions refer to.
pub const BICEP_FILE: &str = "main.bicep";

/// An AdmissionReview holds the object and the old one; objects stay under etcd's
/// 1.5 MiB.
const MAX_REVIEW_BYTES: u64 = 4 * 1024 * 1024;

/// `POST /validate` (AdmissionReview v1 in, AdmissionReview out) and `GET /healthz`.
pub fn routes() -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let validate = warp::path!("validate")
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_REVIEW_BYTES))
        .and(warp::body::json())
        .then(|request: AdmissionReview<DynamicObject>| async move {
            // Compiling is CPU work, off the async workers. Should it panic, the 500
            // counts as the webhook failing (the failurePolicy decides).
            match tokio::task::spawn_blocking(move || review(request)).await {
                Ok(answer) => warp::reply::json(&answer).into_response(),
                Err(_) => warp::reply::with_status(
                    "the review could not be completed",
                    StatusCode::INTERNAL_SERVER_ERROR,
                )
                .into_response(),
            }
        });
    let health = warp::path!("healthz")
        .and(warp::get())
        .map(|| warp::reply::with_status("ok", StatusCode::OK).into_response());
    validate
        .or(health)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            let status = if rejection.is_not_found() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::BAD_REQUEST
            };
            Ok::<_, Infallible>(
                warp::reply::with_status("not an AdmissionReview", status).into_response(),
            )
        })
        .unify()
}

/// The answer to one AdmissionReview.
pub fn review(review: AdmissionReview<DynamicObject>) -> AdmissionReview<DynamicObject> {
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(request) => request,
        Err(_) => {
            return AdmissionResponse::invalid("the AdmissionReview carries no request")
                .into_review();
        }
    };
    let response = AdmissionResponse::from(&request);
    match refusal(&request) {
        None => response,
        Some(message) => response.deny(message),
    }
    .into_review()
}

/// Why the request is refused, or `None` to admit it.
pub fn refusal(request: &AdmissionRequest<DynamicObject>) -> Option<String> {
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return None;
    }
    let object = request.object.as_ref()?;
    if object.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let unchanged = request
        .old_object
        .as_ref()
        .is_some_and(|old| old.data.get("spec") == object.data.get("spec"));
    if unchanged {
        return None;
    }
    let errors =
        match serde_json::to_value(object).and_then(serde_json::from_value::<AzureResource>) {
            Ok(resource) => validate(&resource.spec),
            Err(e) => vec![format!("the object is not a valid AzureResource: {e}")],
        };
    (!errors.is_empty()).then(|| {
        format!(
            "{} error(s) in spec.template or spec.parameters:\n{}",
            errors.len(),
            errors.join("\n")
        )
    })
}

/// Every error of the spec's template and parameters (empty when valid).
pub fn validate(spec: &AzureResourceSpec) -> Vec<String> {
    match &spec.template {
        Some(TemplateSource::Bicep(source)) => {
            match bicep::compile_source(BICEP_FILE, source, &bicep::MapResolver::default()) {
                Ok(compiled) => check_parameters(&compiled.json, spec, Some(source)),
                // The controller hands these to the official compiler when it is installed.
                Err(diagnostics) if diagnostics.is_unsupported() => Vec::new(),
                Err(diagnostics) => diagnostics
                    .0
                    .iter()
                    .map(|d| {
                        format!(
                            "{}:{}:{}: {} {}",
                            d.path, d.line, d.col, d.diagnostic.code, d.diagnostic.message
                        )
                    })
                    .collect(),
            }
        }
        Some(TemplateSource::Json(template)) => {
            let template = Value::Object(template.clone());
            let mut errors = check_arm_template(&template);
            if errors.is_empty() {
                errors = check_parameters(&template, spec, None);
            }
            errors
        }
        Some(TemplateSource::ConfigMapKeyRef(_)) | None => Vec::new(),
    }
}

const JSON_PATH: &str = "spec.template.json";

const PARAMETER_TYPES: [&str; 7] = [
    "string",
    "securestring",
    "int",
    "bool",
    "object",
    "secureobject",
    "array",
];

/// The structure ARM checks before evaluating anything: `resources`, each with `type`,
/// `apiVersion` and `name`; parameters and outputs with a known type; expressions with
/// balanced brackets, parentheses and quotes.
fn check_arm_template(template: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    match template.get("resources") {
        Some(Value::Array(resources)) => {
            for (i, resource) in resources.iter().enumerate() {
                check_resource(
                    &format!("{JSON_PATH}.resources[{i}]"),
                    resource,
                    &mut errors,
                );
            }
        }
        // languageVersion 2.0 names its resources.
        Some(Value::Object(resources)) => {
            for (name, resource) in resources {
                check_resource(
                    &format!("{JSON_PATH}.resources.{name}"),
                    resource,
                    &mut errors,
                );
            }
        }
        Some(_) => errors.push(format!("{JSON_PATH}.resources: must be an array")),
        None => errors.push(format!("{JSON_PATH}.resources: is required")),
    }
    for section in ["parameters", "outputs"] {
        match template.get(section) {
            None => {}
            Some(Value::Object(entries)) => {
                for (name, entry) in entries {
                    let path = format!("{JSON_PATH}.{section}.{name}");
                    match entry.get("type").and_then(Value::as_str) {
                        Some(t) if PARAMETER_TYPES.contains(&t.to_ascii_lowercase().as_str()) => {}
                        Some(t) => errors.push(format!(
                            "{path}.type: {t:?} is not one of string, secureString, int, bool, object, secureObject, array"
                        )),
                        None => errors.push(format!("{path}.type: is required")),
                    }
                }
            }
            Some(_) => errors.push(format!("{JSON_PATH}.{section}: must be an object")),
        }
    }
    check_expressions(JSON_PATH, template, &mut errors);
    errors
}

fn check_resource(path: &str, resource: &Value, errors: &mut Vec<String>) {
    let Some(resource) = resource.as_object() else {
        errors.push(format!("{path}: must be an object"));
        return;
    };
    for field in ["type", "apiVersion", "name"] {
        let existing = resource.get("existing").and_then(Value::as_bool) == Some(true);
        match resource.get(field) {
            Some(Value::String(text)) if !text.is_empty() => {
                if field == "type" && !text.starts_with('[') && !text.contains('/') {
                    errors.push(format!(
                        "{path}.type: {text:?} is not a resource type such as Microsoft.Storage/storageAccounts"
                    ));
                }
            }
            None if field == "name" && existing => {}
            _ => errors.push(format!("{path}.{field}: is required (a non-empty string)")),
        }
    }
}

/// Template expressions (`"[...]"`, not the `"[[` escape) with unbalanced quotes or
/// parentheses cannot be evaluated by ARM.
fn check_expressions(path: &str, value: &Value, errors: &mut Vec<String>) {
    match value {
        Value::String(text)
            if text.starts_with('[') && !text.starts_with("[[") && text.ends_with(']') =>
        {
            if let Some(problem) = expression_problem(&text[1..text.len() - 1]) {
                errors.push(format!("{path}: expression {text:?}: {problem}"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_expressions(&format!("{path}[{i}]"), item, errors);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                check_expressions(&format!("{path}.{key}"), item, errors);
            }
        }
        _ => {}
    }
}

fn expression_problem(expression: &str) -> Option<&'static str> {
    let mut depth = 0i32;
    let mut in_string = false;
    let mut chars = expression.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_string) {
            ('\'', true) if chars.peek() == Some(&'\'') => {
                chars.next();
            }
            ('\'', _) => in_string = !in_string,
            ('(' | '[', false) => depth += 1,
            (')' | ']', false) => {
                depth -= 1;
                if depth < 0 {
                    return Some("a closing parenthesis or bracket has no opening one");
                }
            }
            _ => {}
        }
    }
    if in_string {
        Some("a string literal is not closed")
    } else if depth > 0 {
        Some("a parenthesis or bracket is not closed")
    } else {
        None
    }
}

/// `parameters` and `parametersFrom` against the template's declared parameters.
fn check_parameters(
    template: &Value,
    spec: &AzureResourceSpec,
    bicep: Option<&str>,
) -> Vec<String> {
    let empty = Map::new();
    let declared = template
        .get("parameters")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let positions = bicep.map(declaration_positions).unwrap_or_default();
    let at = |name: &str| {
        positions
            .get(name)
            .map(|(line, col)| format!(" (declared at {BICEP_FILE}:{line}:{col})"))
            .unwrap_or_default()
    };
    let from: BTreeSet<&str> = spec
        .parameters_from
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let mut errors = Vec::new();
    let names = || {
        let list: Vec<&str> = declared.keys().map(String::as_str).collect();
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.join(", ")
        }
    };
    for name in spec
        .parameters
        .keys()
        .map(String::as_str)
        .chain(from.iter().copied())
    {
        if !declared.contains_key(name) {
            errors.push(format!(
                "spec.parameters.{name}: the template declares no parameter {name:?} (it declares: {})",
                names()
            ));
        }
    }
    for (name, declaration) in declared {
        let given = spec.parameters.get(name);
        if given.is_none() && !from.contains(name.as_str()) {
            if declaration.get("defaultValue").is_none() {
                errors.push(format!(
                    "spec.parameters.{name}: parameter {name:?} is required{}",
                    at(name)
                ));
            }
            continue;
        }
        // Values from Secrets and ConfigMaps are read by the controller, not here.
        if let Some(value) = given.filter(|_| !from.contains(name.as_str())) {
            errors.extend(
                value_problems(declaration, value)
                    .into_iter()
                    .map(|problem| format!("spec.parameters.{name}: {problem}{}", at(name))),
            );
        }
    }
    errors
}

/// Where each `param` of Bicep source is declared (1-based line and column of its
/// name), as the `bicep` crate's parser reads it.
fn declaration_positions(source: &str) -> BTreeMap<String, (usize, usize)> {
    bicep::parser::parse(source)
        .file
        .decls
        .iter()
        .filter(|decl| matches!(decl.kind, bicep::ast::DeclKind::Param { .. }))
        .filter_map(|decl| decl.name.as_ref())
        .map(|(name, span)| (name.clone(), bicep::diag::line_col(source, span.start)))
        .collect()
}

/// How `value` breaks the declaration: type, allowed values, bounds. Values of secure
/// parameters never appear in a message.
fn value_problems(declaration: &Value, value: &Value) -> Vec<String> {
    let declared_type = declaration
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let secure = declared_type.starts_with("secure");
    let shown = |v: &Value| {
        if secure {
            "(secure value)".to_owned()
        } else {
            v.to_string()
        }
    };
    let type_fits = match declared_type.as_str() {
        "string" | "securestring" => value.is_string(),
        "int" => value.is_i64() || value.is_u64(),
        "bool" => value.is_boolean(),
        "object" | "secureobject" => value.is_object(),
        "array" => value.is_array(),
        _ => true,
    };
    if !type_fits {
        return vec![format!(
            "parameter is {}, got {} {}",
            declaration["type"].as_str().unwrap_or_default(),
            json_type(value),
            shown(value)
        )];
    }
    let mut problems = Vec::new();
    if let Some(allowed) = declaration.get("allowedValues").and_then(Value::as_array) {
        let fits = match value {
            // An array parameter's elements each have to be allowed.
            Value::Array(items) if declared_type == "array" => {
                items.iter().all(|item| allowed.contains(item))
            }
            other => allowed.contains(other),
        };
        if !fits {
            problems.push(format!(
                "{} is not one of the allowed values {}",
                shown(value),
                Value::Array(allowed.clone())
            ));
        }
    }
    let bound = |key: &str| declaration.get(key).and_then(Value::as_i64);
    if let Some(n) = value.as_i64() {
        if let Some(min) = bound("minValue").filter(|min| n < *min) {
            problems.push(format!("{} is below minValue {min}", shown(value)));
        }
        if let Some(max) = bound("maxValue").filter(|max| n > *max) {
            problems.push(format!("{} is above maxValue {max}", shown(value)));
        }
    }
    let length = match value {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(items) => Some(items.len()),
        _ => None,
    };
    if let Some(length) = length.and_then(|l| i64::try_from(l).ok()) {
        if let Some(min) = bound("minLength").filter(|min| length < *min) {
            problems.push(format!("length {length} is below minLength {min}"));
        }
        if let Some(max) = bound("maxLength").filter(|max| length > *max) {
            problems.push(format!("length {length} is above maxLength {max}"));
        }
    }
    problems
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(value: Value) -> AzureResourceSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn declarations_are_located_as_bicep_reads_them() {
        // A `param` line inside a comment or a multi-line string declares nothing.
        let source = "// param name string\nvar text = '''\nparam name string\n'''\n@minLength(1)\nparam  name string\noutput t string = text\n";
        let positions = declaration_positions(source);
        assert_eq!(positions.get("name"), Some(&(6, 8)));
        assert_eq!(positions.len(), 1);
    }

    const STORAGE: &str = "\
@allowed(['Standard_LRS', 'Standard_GRS'])
param sku string = 'Standard_LRS'
param name string
@minValue(1)
@maxValue(3)
param copies int = 1
@secure()
param adminPassword string = ''
resource storage 'Microsoft.Storage/storageAccounts@2023-01-01' = {
  name: name
  location: resourceGroup().location
  sku: { name: sku }
  kind: 'StorageV2'
}
";

    #[test]
    fn a_valid_bicep_object_passes() {
        let s = spec(json!({
            "resourceGroup": "rg",
            "template": {"bicep": STORAGE},
            "parameters": {"name": "acct", "sku": "Standard_GRS", "copies": 2}
        }));
        assert_eq!(validate(&s), Vec::<String>::new());
    }

    #[test]
    fn bicep_errors_carry_line_and_column() {
        let s = spec(json!({
            "resourceGroup": "rg",
            "template": {"bicep": "param name string\nresource x 'Microsoft.Storage/storageAccounts@2023-01-01' = {\n  name: name\n  sku: {\n}\n"},
        }));
        let errors = validate(&s);
        assert!(!errors.is_empty());
        for error in &errors {
            assert!(error.starts_with("main.bicep:"), "{error}");
            let position: Vec<&str> = error.splitn(4, ':').collect();
            assert!(
                position[1].parse::<usize>().is_ok() && position[2].parse::<usize>().is_ok(),
                "{error}"
            );
        }
    }

    #[test]
    fn every_parameter_error_is_reported_with_its_declaration() {
        let s = spec(json!({
            "resourceGroup": "rg",
            "template": {"bicep": STORAGE},
            "parameters": {"sku": "Premium_LRS", "copies": 7, "adminPassword": 5, "colour": "red"}
        }));
        let errors = validate(&s);
        assert_eq!(
            errors,
            [
                "spec.parameters.colour: the template declares no parameter \"colour\" (it declares: sku, name, copies, adminPassword)",
                "spec.parameters.sku: \"Premium_LRS\" is not one of the allowed values [\"Standard_LRS\",\"Standard_GRS\"] (declared at main.bicep:2:7)",
                "spec.parameters.name: parameter \"name\" is required (declared at main.bicep:3:7)",
                "spec.parameters.copies: 7 is above maxValue 3 (declared at main.bicep:6:7)",
                "spec.parameters.adminPassword: parameter is securestring, got int (secure value) (declared at main.bicep:8:7)",
            ],
            "{errors:#?}"
        );
    }

    #[test]
    fn parameters_from_count_as_given_and_must_be_declared() {
        let s = spec(json!({
            "resourceGroup": "rg",
            "template": {"bicep": STORAGE},
            "parametersFrom": [
                {"name": "name", "configMapKeyRef": {"name": "c", "key": "k"}},
                {"name": "nope", "secretKeyRef": {"name": "s", "key": "k"}}
            ]
        }));
        assert_eq!(
            validate(&s),
            [
                "spec.parameters.nope: the template declares no parameter \"nope\" (it declares: sku, name, copies, adminPassword)"
            ]
        );
    }

    #[test]
    fn arm_json_structure_and_expressions_are_checked() {
        let s = spec(json!({
            "resourceGroup": "rg",
            "template": {"json": {
                "parameters": {"n": {"type": "strng"}},
                "resources": [
                    {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "[concat('a', parameters('n')]"},
                    {"type": "storageAccounts", "name": "b"}
                ]
            }}
        }));
        assert_eq!(
            validate(&s),
            [
                "spec.template.json.resources[1].type: \"storageAccounts\" is not a resource type such as Microsoft.Storage/storageAccounts",
                "spec.template.json.resources[1].apiVersion: is required (a non-empty string)",
                "spec.template.json.parameters.n.type: \"strng\" is not one of string, secureString, int, bool, object, secureObject, array",
                "spec.template.json.resources[0].name: expression \"[concat('a', parameters('n')]\": a parenthesis or bracket is not closed",
            ]
        );
        let valid = spec(json!({
            "resourceGroup": "rg",
            "template": {"json": {
                "parameters": {"n": {"type": "string"}},
                "resources": [{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "[parameters('n')]"}]
            }},
            "parameters": {"n": "x"}
        }));
        assert_eq!(validate(&valid), Vec::<String>::new());
    }

    fn request(
        operation: &str,
        object: Value,
        old: Option<Value>,
    ) -> AdmissionRequest<DynamicObject> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "azure-driver.io", "version": "v1alpha1", "kind": "AzureResource"},
                "resource": {"group": "azure-driver.io", "version": "v1alpha1", "resource": "azureresources"},
                "requestKind": {"group": "azure-driver.io", "version": "v1alpha1", "kind": "AzureResource"},
                "requestResource": {"group": "azure-driver.io", "version": "v1alpha1", "resource": "azureresources"},
                "name": "x",
                "namespace": "ns",
                "operation": operation,
                "userInfo": {"username": "admin"},
                "object": object,
                "oldObject": old,
                "dryRun": false
            }
        }))
        .unwrap();
        review.try_into().unwrap()
    }

    fn object(bicep: &str, metadata: Value) -> Value {
        json!({
            "apiVersion": "azure-driver.io/v1alpha1",
            "kind": "AzureResource",
            "metadata": metadata,
            "spec": {"resourceGroup": "rg", "template": {"bicep": bicep}}
        })
    }

    #[test]
    fn invalid_creates_are_refused_and_unchanged_specs_or_deletions_admitted() {
        let broken = object("resource x = {", json!({"name": "x"}));
        let refused = refusal(&request("CREATE", broken.clone(), None)).expect("refused");
        assert!(refused.contains("main.bicep:1:"), "{refused}");

        let finalizer_removed = object("resource x = {", json!({"name": "x", "finalizers": []}));
        assert_eq!(
            refusal(&request("UPDATE", finalizer_removed, Some(broken.clone()))),
            None
        );
        let deleting = object(
            "resource x = {",
            json!({"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z"}),
        );
        assert_eq!(refusal(&request("UPDATE", deleting, Some(broken))), None);
        assert_eq!(
            refusal(&request(
                "CREATE",
                object("param name string = 'a'", json!({"name": "x"})),
                None
            )),
            None
        );
    }
}
