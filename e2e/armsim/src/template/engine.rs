//! Template processing: parameters, variables, resources (copy, condition, children,
//! dependsOn, nested deployments), outputs, and the functions that need them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use chrono::{DateTime, Duration, Months, NaiveDateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use super::expr::{self, Expr, StringForm};
use super::format::format_datetime;
use super::functions::{arity, call_pure, invalid_arg};
use super::runtime;
use super::value::{as_array, as_bool, as_int, as_object, as_str, get_ci, type_name};
use super::{
    DeploymentContext, EvaluatedDeployment, EvaluationOptions, PlannedResource, ResourceGroupInfo,
    ResourceLookup, TargetScope, TemplateError, TypedValue,
};

type Result<T> = std::result::Result<T, TemplateError>;

/// Nested deployments deeper than this are refused.
const MAX_NESTING: usize = 12;
/// What one level of nested deployment costs against [`MAX_CALL_DEPTH`].
const NESTED_DEPLOYMENT_WEIGHT: usize = 3;
/// Marks the error of a parameter default that reads a parameter not bound yet.
const UNBOUND_PARAMETER: &str = "is read before its value is known";
/// How deep function calls may nest while being evaluated, through expressions,
/// variables, user-defined functions (which ARM forbids to recurse) and nested
/// deployments (each counts as [`NESTED_DEPLOYMENT_WEIGHT`] calls). Bounded so that
/// evaluation fits a 2 MiB thread stack even in debug builds.
const MAX_CALL_DEPTH: usize = 40;
/// ARM's limit on `copy` counts.
const MAX_COPY: i64 = 800;

pub fn evaluate_root(
    template: &Value,
    parameters: &Value,
    ctx: &DeploymentContext,
    lookup: &dyn ResourceLookup,
    options: &EvaluationOptions,
) -> Result<EvaluatedDeployment> {
    let shared = Shared {
        lookup,
        now: options.now.unwrap_or_else(Utc::now),
        parsed: RefCell::new(HashMap::new()),
        planned: RefCell::new(Vec::new()),
        depth: std::cell::Cell::new(0),
    };
    let target = match &options.scope {
        TargetScope::FromContext => Target {
            tenant_id: ctx.tenant_id.clone(),
            subscription_id: Some(ctx.subscription_id.clone()),
            resource_group: ctx.resource_group.clone(),
            management_group: None,
            location: ctx.location.clone(),
        },
        TargetScope::ManagementGroup(mg) => Target {
            tenant_id: ctx.tenant_id.clone(),
            subscription_id: None,
            resource_group: None,
            management_group: Some(mg.clone()),
            location: ctx.location.clone(),
        },
        TargetScope::Tenant => Target {
            tenant_id: ctx.tenant_id.clone(),
            subscription_id: None,
            resource_group: None,
            management_group: None,
            location: ctx.location.clone(),
        },
    };
    check_schema(template, &target)?;
    let parameters = match parameters {
        Value::Null => Map::new(),
        Value::Object(o) => o.clone(),
        other => {
            return Err(TemplateError::invalid_deployment(format!(
                "The deployment parameters must be an object, not a value of type '{}'.",
                type_name(other)
            )));
        }
    };
    let result = run_template(
        &shared,
        target,
        &ctx.deployment_name,
        template,
        Source::Own(&parameters),
        0,
    )?;
    Ok(EvaluatedDeployment {
        resources: shared.planned.into_inner(),
        outputs: result.outputs,
        parameters: result.parameters,
    })
}

/// A template whose `$schema` names a different deployment scope is refused, as ARM does.
fn check_schema(template: &Value, target: &Target) -> Result<()> {
    let Some(schema) = template.get("$schema").and_then(Value::as_str) else {
        return Ok(());
    };
    let schema = schema.to_lowercase();
    let declared = if schema.contains("subscriptiondeploymenttemplate") {
        "subscription"
    } else if schema.contains("managementgroupdeploymenttemplate") {
        "managementGroup"
    } else if schema.contains("tenantdeploymenttemplate") {
        "tenant"
    } else if schema.contains("deploymenttemplate") {
        "resourceGroup"
    } else {
        return Ok(());
    };
    let actual = target.kind();
    if declared != actual {
        return Err(TemplateError::invalid_template(format!(
            "The template schema '{schema}' is for {declared} deployments and cannot be deployed at {actual} scope."
        )));
    }
    Ok(())
}

struct Shared<'a> {
    lookup: &'a dyn ResourceLookup,
    now: DateTime<Utc>,
    parsed: RefCell<HashMap<String, Rc<Expr>>>,
    planned: RefCell<Vec<PlannedResource>>,
    /// Function calls currently being evaluated.
    depth: std::cell::Cell<usize>,
}

/// The scope one (possibly nested) deployment targets.
#[derive(Debug, Clone)]
struct Target {
    tenant_id: String,
    subscription_id: Option<String>,
    resource_group: Option<ResourceGroupInfo>,
    management_group: Option<String>,
    location: Option<String>,
}

impl Target {
    fn kind(&self) -> &'static str {
        match (
            &self.resource_group,
            &self.subscription_id,
            &self.management_group,
        ) {
            (Some(_), Some(_), _) => "resourceGroup",
            (None, Some(_), _) => "subscription",
            (_, None, Some(_)) => "managementGroup",
            _ => "tenant",
        }
    }

    /// The id every resource of this scope is prefixed with (`""` at tenant scope).
    fn scope_id(&self) -> String {
        match (
            &self.subscription_id,
            &self.resource_group,
            &self.management_group,
        ) {
            (Some(s), Some(rg), _) => format!("/subscriptions/{s}/resourceGroups/{}", rg.name),
            (Some(s), None, _) => format!("/subscriptions/{s}"),
            (None, _, Some(mg)) => mg_id(mg),
            _ => String::new(),
        }
    }
}

fn mg_id(name: &str) -> String {
    format!("/providers/Microsoft.Management/managementGroups/{name}")
}

/// Builds `{prefix}/providers/{namespace}/{type}/{name}/...`; names may be given
/// as separate arguments or joined with '/'.
fn compose_id(prefix: &str, resource_type: &str, names: &[&str]) -> Result<String> {
    let resource_type = resource_type.trim_end_matches('/');
    let type_segments: Vec<&str> = resource_type.split('/').collect();
    let name_segments: Vec<&str> = names.iter().flat_map(|n| n.split('/')).collect();
    if type_segments.len() < 2
        || type_segments.iter().any(|s| s.is_empty())
        || name_segments.len() != type_segments.len() - 1
    {
        return Err(TemplateError::invalid_template(format!(
            "The resource '{}' of type '{resource_type}' has incorrect segment lengths. A nested resource type must have identical number of segments as its resource name: a type with {} segment(s) needs {} name segment(s).",
            names.join("/"),
            type_segments.len(),
            type_segments.len().saturating_sub(1)
        )));
    }
    if type_segments[0].eq_ignore_ascii_case("Microsoft.Resources")
        && type_segments.len() == 2
        && type_segments[1].eq_ignore_ascii_case("resourceGroups")
        && prefix.starts_with("/subscriptions/")
    {
        let sub = prefix.split('/').nth(2).unwrap_or_default();
        return Ok(format!(
            "/subscriptions/{sub}/resourceGroups/{}",
            name_segments[0]
        ));
    }
    let mut id = format!("{prefix}/providers/{}", type_segments[0]);
    for (t, n) in type_segments[1..].iter().zip(&name_segments) {
        id.push('/');
        id.push_str(t);
        id.push('/');
        id.push_str(n);
    }
    Ok(id)
}

/// Where a template's parameters and variables come from.
enum Source<'p, 'a> {
    /// Its own `parameters` section, fed from a deployment's parameter values.
    Own(&'p Map<String, Value>),
    /// A nested deployment with outer scope: the enclosing template's.
    Outer(&'p Deployment<'p, 'a>),
}

struct RunResult {
    outputs: IndexMap<String, TypedValue>,
    parameters: IndexMap<String, TypedValue>,
}

#[derive(Clone)]
enum VarDef<'a> {
    Plain(&'a Value),
    Copy(&'a Value),
}

#[derive(Clone)]
enum Slot {
    Busy,
    Done(Value),
}

#[derive(Clone, Default)]
struct Frame {
    /// Named copy loops in scope, innermost last.
    loops: Vec<(String, i64)>,
    /// What `copyIndex()` without a loop name returns.
    default_index: Option<i64>,
    lambdas: Vec<(String, Value)>,
    /// Arguments of the user-defined function being evaluated.
    fn_args: Option<Rc<HashMap<String, Value>>>,
    /// `utcNow()` and `newGuid()` are only valid in parameter defaults.
    in_parameter_default: bool,
}

enum State {
    Pending,
    Busy,
    Done(Value),
}

struct Instance<'a> {
    raw: &'a Map<String, Value>,
    frame: Frame,
    symbolic: Option<String>,
    loop_name: Option<String>,
    resource_type: String,
    name: String,
    id: String,
    api_version: String,
    deployed: bool,
    existing: bool,
    parent: Option<usize>,
    deps: Vec<usize>,
    state: State,
}

impl Instance<'_> {
    /// True when a languageVersion 2.0 reference names this instance: its symbolic
    /// name (every element of a loop), or `symbol[i]` for element `i` of its loop.
    fn names_symbol(&self, target: &str) -> bool {
        let Some(symbolic) = self.symbolic.as_deref() else {
            return false;
        };
        if symbolic == target {
            return true;
        }
        let element = target
            .strip_prefix(symbolic)
            .and_then(|rest| rest.strip_prefix('['))
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|i| i.parse::<i64>().ok());
        let own_index = self.loop_name.as_deref().and_then(|l| {
            self.frame
                .loops
                .iter()
                .rev()
                .find(|(name, _)| name.eq_ignore_ascii_case(l))
                .map(|(_, i)| *i)
        });
        element.is_some() && element == own_index
    }
}

struct Deployment<'s, 'a> {
    shared: &'s Shared<'a>,
    /// Where the template's resources go.
    target: Target,
    /// What `resourceGroup()`, `subscription()`, `resourceId()`, ... see: the same as
    /// `target`, except in a nested deployment with outer scope, whose functions
    /// resolve against the parent template's scope (as ARM documents).
    fn_target: Target,
    name: String,
    template: &'a Value,
    depth: usize,
    v2: bool,
    params: RefCell<IndexMap<String, (String, Value)>>,
    variables: HashMap<String, VarDef<'a>>,
    var_slots: RefCell<HashMap<String, Slot>>,
    functions: HashMap<String, &'a Value>,
    definitions: Option<&'a Map<String, Value>>,
    instances: RefCell<Vec<Instance<'a>>>,
}

fn run_template<'a>(
    shared: &Shared<'a>,
    target: Target,
    name: &str,
    template: &'a Value,
    source: Source<'_, 'a>,
    depth: usize,
) -> Result<RunResult> {
    if depth > MAX_NESTING {
        return Err(TemplateError::invalid_template(format!(
            "The nested deployment '{name}' exceeds the maximum nesting depth of {MAX_NESTING}."
        )));
    }
    let Some(tpl) = template.as_object() else {
        return Err(TemplateError::invalid_template(format!(
            "The template of deployment '{name}' must be a JSON object."
        )));
    };
    let version = tpl
        .get("languageVersion")
        .and_then(Value::as_str)
        .unwrap_or("1.0");
    let v2 = version.starts_with('2');
    let mut functions = HashMap::new();
    if let Some(list) = tpl.get("functions") {
        for ns in as_array("functions", list).map_err(|_| section_error("functions", "an array"))? {
            let prefix = ns
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Some(Value::Object(members)) = ns.get("members") {
                for (member, def) in members {
                    functions.insert(format!("{prefix}.{member}").to_lowercase(), def);
                }
            }
        }
    }
    let mut variables = HashMap::new();
    let definitions = tpl.get("definitions").and_then(Value::as_object);
    let (params, own_params) = match &source {
        Source::Outer(parent) => {
            variables = parent.variables.clone();
            for (k, v) in &parent.functions {
                functions.entry(k.clone()).or_insert(*v);
            }
            (parent.params.borrow().clone(), None)
        }
        Source::Own(values) => (IndexMap::new(), Some(*values)),
    };
    if own_params.is_some() {
        match tpl.get("variables") {
            None => {}
            Some(Value::Object(vars)) => {
                for (k, v) in vars {
                    if k.eq_ignore_ascii_case("copy") {
                        for spec in as_array("variables", v)
                            .map_err(|_| section_error("variables.copy", "an array"))?
                        {
                            let n = spec.get("name").and_then(Value::as_str).ok_or_else(|| {
                                TemplateError::invalid_template(
                                    "A variable 'copy' entry must have a 'name'.",
                                )
                            })?;
                            variables.insert(n.to_lowercase(), VarDef::Copy(spec));
                        }
                    } else {
                        variables.insert(k.to_lowercase(), VarDef::Plain(v));
                    }
                }
            }
            Some(_) => return Err(section_error("variables", "an object")),
        }
    }
    let fn_target = match &source {
        Source::Outer(parent) => parent.fn_target.clone(),
        Source::Own(_) => target.clone(),
    };
    let dep = Deployment {
        shared,
        target,
        fn_target,
        name: name.to_string(),
        template,
        depth,
        v2,
        params: RefCell::new(params),
        variables,
        var_slots: RefCell::new(HashMap::new()),
        functions,
        definitions,
        instances: RefCell::new(Vec::new()),
    };
    let reported = match own_params {
        Some(values) => dep.bind_parameters(tpl, values)?,
        None => IndexMap::new(),
    };
    dep.expand_resources(tpl)?;
    dep.resolve_dependencies()?;
    for i in dep.creation_order()? {
        let (deployed, existing) = {
            let list = dep.instances.borrow();
            (list[i].deployed, list[i].existing)
        };
        if deployed && !existing {
            dep.deploy(i)?;
        }
    }
    let outputs = dep.outputs(tpl)?;
    Ok(RunResult {
        outputs,
        parameters: reported,
    })
}

fn section_error(section: &str, shape: &str) -> TemplateError {
    TemplateError::invalid_template(format!("The template '{section}' section must be {shape}."))
}

/// ARM's capitalised type name for a declared type.
fn arm_type_name(declared: &str) -> Option<&'static str> {
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
fn type_of_value(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "String",
        Value::Number(_) => "Int",
        Value::Bool(_) => "Bool",
        Value::Array(_) => "Array",
        _ => "Object",
    }
}

/// Checks (and where ARM converts, converts) `value` against a declared type.
fn coerce(value: Value, arm_type: &str) -> std::result::Result<Value, Value> {
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

impl<'s, 'a> Deployment<'s, 'a> {
    // ----- parameters -------------------------------------------------------------

    /// Resolves a declaration's type through `$ref` into `definitions` (2.0 templates).
    fn declared_type(&self, decl: &'a Value) -> Option<(&'static str, &'a Value)> {
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

    fn bind_parameters(
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

    fn bind_parameter(
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
    fn parameter_value(&self, name: &str, entry: &Value) -> Result<Value> {
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

    // ----- variables -------------------------------------------------------------

    fn variable(&self, name: &str) -> Result<Value> {
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
    fn copy_array(&self, spec: &Value, frame: &Frame, what: &str) -> Result<Value> {
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

    fn copy_count(&self, spec: &Value, frame: &Frame, what: &str) -> Result<i64> {
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

    // ----- evaluation of JSON and expressions ---------------------------------------

    fn eval_value(&self, v: &Value, frame: &Frame) -> Result<Value> {
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

    fn eval_str(&self, s: &str, frame: &Frame) -> Result<Value> {
        match expr::classify(s) {
            StringForm::Literal(l) => Ok(Value::String(l.to_string())),
            StringForm::Expression(text) => {
                let parsed = self.parsed(text)?;
                self.eval(&parsed, frame)
            }
        }
    }

    fn parsed(&self, text: &str) -> Result<Rc<Expr>> {
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

    fn eval(&self, e: &Expr, frame: &Frame) -> Result<Value> {
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

    fn eval_args(&self, args: &[Expr], frame: &Frame) -> Result<Vec<Value>> {
        args.iter().map(|a| self.eval(a, frame)).collect()
    }

    fn call(&self, name: &str, args: &[Expr], frame: &Frame) -> Result<Value> {
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

    fn call_inner(&self, name: &str, args: &[Expr], frame: &Frame) -> Result<Value> {
        let lower = name.to_lowercase();
        match lower.as_str() {
            "if" => {
                if args.len() != 3 {
                    return Err(super::functions::arity_error(name, 3, 3, args.len()));
                }
                let cond = as_bool(name, &self.eval(&args[0], frame)?)?;
                self.eval(if cond { &args[1] } else { &args[2] }, frame)
            }
            "and" | "or" => {
                if args.is_empty() {
                    return Err(super::functions::arity_error(name, 1, usize::MAX, 0));
                }
                let want = lower == "or";
                for a in args {
                    if as_bool(name, &self.eval(a, frame)?)? == want {
                        return Ok(Value::Bool(want));
                    }
                }
                Ok(Value::Bool(!want))
            }
            "parameters" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 1, 1)?;
                let key = as_str(name, &vals[0])?;
                if let Some(fn_args) = &frame.fn_args {
                    return fn_args.get(&key.to_lowercase()).cloned().ok_or_else(|| {
                        TemplateError::invalid_template(format!(
                            "The function parameter '{key}' is not defined."
                        ))
                    });
                }
                let declared = self
                    .template
                    .get("parameters")
                    .and_then(Value::as_object)
                    .is_some_and(|p| p.keys().any(|k| k.eq_ignore_ascii_case(key)));
                self.params
                    .borrow()
                    .get(&key.to_lowercase())
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        if declared {
                            return TemplateError::invalid_template(format!(
                                "The template parameter '{key}' {UNBOUND_PARAMETER}."
                            ));
                        }
                        TemplateError::invalid_template(format!(
                            "The template parameter '{key}' is not found. Please see https://aka.ms/arm-syntax-parameters for usage details."
                        ))
                    })
            }
            "variables" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 1, 1)?;
                self.variable(as_str(name, &vals[0])?)
            }
            "copyindex" => self.copy_index(name, &self.eval_args(args, frame)?, frame),
            "lambdavariables" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 1, 1)?;
                let var = as_str(name, &vals[0])?;
                frame
                    .lambdas
                    .iter()
                    .rev()
                    .find(|(k, _)| k == var)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| {
                        TemplateError::invalid_template(format!(
                            "The lambda variable '{var}' is not defined."
                        ))
                    })
            }
            "lambda" => Err(TemplateError::invalid_template(
                "The template function 'lambda' can only be used as an argument of 'filter', 'map', 'reduce', 'sort', 'toObject', 'mapValues' or 'groupBy'.",
            )),
            "map" | "filter" | "reduce" | "sort" | "toobject" | "mapvalues" | "groupby" => {
                self.lambda_function(name, &lower, args, frame)
            }
            "reference" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 1, 3)?;
                let full = vals
                    .get(2)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case("full"));
                let body = self.resolve_resource(name, as_str(name, &vals[0])?)?;
                if full {
                    Ok(body)
                } else {
                    Ok(body.get("properties").cloned().unwrap_or_else(|| json!({})))
                }
            }
            l if l.starts_with("list") && l.len() > 4 => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 2, 3)?;
                let target = as_str(name, &vals[0])?;
                let body = self.resolve_resource(name, target)?;
                let id = body
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or(target)
                    .to_string();
                Ok(runtime::list_action(name, &id))
            }
            "resourceid"
            | "subscriptionresourceid"
            | "tenantresourceid"
            | "extensionresourceid"
            | "managementgroupresourceid" => {
                let vals = self.eval_args(args, frame)?;
                self.resource_id_function(name, &lower, &vals)
                    .map(Value::from)
            }
            l if l.contains('.') => self.user_function(name, &lower, args, frame),
            _ => self.context_function(name, &lower, args, frame),
        }
    }

    /// Functions of the deployment's scope and the argument-only functions; kept
    /// out of `call_inner` so the recursive evaluation path has a small stack frame.
    #[inline(never)]
    fn context_function(
        &self,
        name: &str,
        lower: &str,
        args: &[Expr],
        frame: &Frame,
    ) -> Result<Value> {
        match lower {
            "resourcegroup" => {
                no_args(name, args)?;
                let rg = self.fn_target.resource_group.as_ref().ok_or_else(|| {
                    TemplateError::invalid_template(
                        "The template function 'resourceGroup' is not expected at this location: the deployment is not at resource group scope.",
                    )
                })?;
                Ok(json!({
                    "id": self.fn_target.scope_id(),
                    "name": rg.name,
                    "type": "Microsoft.Resources/resourceGroups",
                    "location": rg.location,
                    "tags": rg.tags,
                    "properties": {"provisioningState": "Succeeded"},
                }))
            }
            "subscription" => {
                no_args(name, args)?;
                let sub = self.fn_target.subscription_id.as_ref().ok_or_else(|| {
                    TemplateError::invalid_template(
                        "The template function 'subscription' is not expected at this location: the deployment is not at subscription or resource group scope.",
                    )
                })?;
                Ok(json!({
                    "id": format!("/subscriptions/{sub}"),
                    "subscriptionId": sub,
                    "tenantId": self.fn_target.tenant_id,
                    "displayName": "Simulated subscription",
                }))
            }
            "tenant" => {
                no_args(name, args)?;
                Ok(json!({
                    "countryCode": "US",
                    "displayName": "Simulated tenant",
                    "id": format!("/tenants/{}", self.fn_target.tenant_id),
                    "tenantId": self.fn_target.tenant_id,
                }))
            }
            "managementgroup" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 0, 1)?;
                let mg = match vals.first() {
                    Some(v) => as_str(name, v)?.to_string(),
                    None => self.fn_target.management_group.clone().ok_or_else(|| {
                        TemplateError::invalid_template(
                            "The template function 'managementGroup' is not expected at this location: the deployment is not at management group scope.",
                        )
                    })?,
                };
                Ok(json!({
                    "id": mg_id(&mg),
                    "name": mg,
                    "type": "Microsoft.Management/managementGroups",
                    "properties": {
                        "displayName": mg,
                        "tenantId": self.fn_target.tenant_id,
                        "details": {"parent": {
                            "id": mg_id(&self.fn_target.tenant_id),
                            "name": self.fn_target.tenant_id,
                            "displayName": "Tenant Root Group",
                        }},
                    },
                }))
            }
            "deployment" => {
                no_args(name, args)?;
                let mut template = Map::new();
                for key in ["$schema", "contentVersion", "metadata", "languageVersion"] {
                    if let Some(v) = self.template.get(key) {
                        template.insert(key.to_string(), v.clone());
                    }
                }
                let mut out = json!({
                    "name": self.name,
                    "properties": {
                        "template": template,
                        "templateHash": runtime::seeded_guid(&self.name, "templateHash"),
                        "parameters": {},
                        "mode": "Incremental",
                        "provisioningState": "Accepted",
                    },
                });
                if let Some(loc) = &self.fn_target.location {
                    out["location"] = json!(loc);
                }
                Ok(out)
            }
            "deployer" => {
                no_args(name, args)?;
                Ok(json!({
                    "objectId": runtime::seeded_guid(&self.fn_target.tenant_id, "deployer"),
                    "tenantId": self.fn_target.tenant_id,
                    "userPrincipalName": "deployer@simulated.example",
                }))
            }
            "environment" => {
                no_args(name, args)?;
                Ok(environment())
            }
            "utcnow" | "newguid" => {
                if !frame.in_parameter_default {
                    return Err(TemplateError::invalid_template(format!(
                        "The template function '{name}' is not expected at this location. It can only be used in the default value of a parameter."
                    )));
                }
                let vals = self.eval_args(args, frame)?;
                if lower == "newguid" {
                    arity(name, &vals, 0, 0)?;
                    return Ok(Value::from(uuid::Uuid::new_v4().to_string()));
                }
                arity(name, &vals, 0, 1)?;
                let fmt = match vals.first() {
                    Some(v) => as_str(name, v)?,
                    None => "yyyyMMddTHHmmssZ",
                };
                Ok(Value::from(format_datetime(&self.shared.now, fmt)))
            }
            "datetimeadd" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 2, 3)?;
                let base = parse_datetime(name, as_str(name, &vals[0])?)?;
                let t = add_duration(name, base, as_str(name, &vals[1])?)?;
                Ok(Value::from(match vals.get(2) {
                    Some(f) => format_datetime(&t, as_str(name, f)?),
                    None => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                }))
            }
            "datetimefromepoch" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 1, 1)?;
                let t = DateTime::<Utc>::from_timestamp(as_int(name, &vals[0])?, 0)
                    .ok_or_else(|| invalid_arg(name, "the epoch value is out of range"))?;
                Ok(Value::from(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
            }
            "datetimetoepoch" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 1, 1)?;
                Ok(Value::from(
                    parse_datetime(name, as_str(name, &vals[0])?)?.timestamp(),
                ))
            }
            "pickzones" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 3, 5)?;
                let location = as_str(name, &vals[2])?.to_lowercase().replace(' ', "");
                let count = vals
                    .get(3)
                    .map(|v| as_int(name, v))
                    .transpose()?
                    .unwrap_or(1);
                let offset = vals
                    .get(4)
                    .map(|v| as_int(name, v))
                    .transpose()?
                    .unwrap_or(0);
                if !ZONAL_REGIONS.contains(&location.as_str()) {
                    return Ok(json!([]));
                }
                Ok(Value::Array(
                    (0..count.clamp(0, 3))
                        .map(|i| Value::from(((offset + i) % 3 + 1).to_string()))
                        .collect(),
                ))
            }
            "providers" => {
                let vals = self.eval_args(args, frame)?;
                arity(name, &vals, 1, 2)?;
                let ns = as_str(name, &vals[0])?;
                let resource_type = vals.get(1).map(|t| as_str(name, t)).transpose()?;
                crate::providers::function_value(ns, resource_type).ok_or_else(|| {
                    TemplateError::invalid_template(format!(
                        "The resource namespace '{ns}' or its type is not registered."
                    ))
                })
            }
            _ => {
                let vals = self.eval_args(args, frame)?;
                call_pure(lower, name, &vals).unwrap_or_else(|| {
                    Err(TemplateError::invalid_template(format!(
                        "The template function '{name}' is not valid. Please see https://aka.ms/arm-functions for usage details."
                    )))
                })
            }
        }
    }

    fn copy_index(&self, name: &str, vals: &[Value], frame: &Frame) -> Result<Value> {
        arity(name, vals, 0, 2)?;
        let (loop_name, offset) = match vals {
            [] => (None, 0),
            [Value::String(l)] => (Some(l.as_str()), 0),
            [other] => (None, as_int(name, other)?),
            [l, o] => (Some(as_str(name, l)?), as_int(name, o)?),
            _ => unreachable!("arity checked"),
        };
        let index = match loop_name {
            Some(l) => frame
                .loops
                .iter()
                .rev()
                .find(|(n, _)| n.eq_ignore_ascii_case(l))
                .map(|(_, i)| *i)
                .ok_or_else(|| {
                    TemplateError::invalid_template(format!(
                        "The template function 'copyIndex' refers to the copy loop '{l}', which is not in scope here."
                    ))
                })?,
            None => frame.default_index.ok_or_else(|| {
                TemplateError::invalid_template(
                    "The template function 'copyIndex' is not expected at this location: it is only valid inside a 'copy' loop.",
                )
            })?,
        };
        Ok(Value::from(index + offset))
    }

    fn lambda_function(
        &self,
        name: &str,
        lower: &str,
        args: &[Expr],
        frame: &Frame,
    ) -> Result<Value> {
        let (min, max) = match lower {
            "reduce" => (3, 3),
            "toobject" => (2, 3),
            _ => (2, 2),
        };
        if args.len() < min || args.len() > max {
            return Err(super::functions::arity_error(name, min, max, args.len()));
        }
        let collection = self.eval(&args[0], frame)?;
        match lower {
            "map" | "filter" | "sort" | "toobject" | "groupby" | "reduce" => {
                let items = as_array(name, &collection)?.clone();
                match lower {
                    "map" => {
                        let f = self.lambda(name, &args[1])?;
                        let out = items
                            .iter()
                            .enumerate()
                            .map(|(i, v)| self.apply(&f, &[v.clone(), Value::from(i)], frame))
                            .collect::<Result<Vec<_>>>()?;
                        Ok(Value::Array(out))
                    }
                    "filter" => {
                        let f = self.lambda(name, &args[1])?;
                        let mut out = Vec::new();
                        for (i, v) in items.iter().enumerate() {
                            if as_bool(name, &self.apply(&f, &[v.clone(), Value::from(i)], frame)?)?
                            {
                                out.push(v.clone());
                            }
                        }
                        Ok(Value::Array(out))
                    }
                    "reduce" => {
                        let mut acc = self.eval(&args[1], frame)?;
                        let f = self.lambda(name, &args[2])?;
                        for (i, v) in items.iter().enumerate() {
                            acc = self.apply(&f, &[acc, v.clone(), Value::from(i)], frame)?;
                        }
                        Ok(acc)
                    }
                    "sort" => {
                        let f = self.lambda(name, &args[1])?;
                        let mut out: Vec<Value> = Vec::with_capacity(items.len());
                        for item in items {
                            let mut pos = out.len();
                            while pos > 0
                                && as_bool(
                                    name,
                                    &self.apply(
                                        &f,
                                        &[item.clone(), out[pos - 1].clone()],
                                        frame,
                                    )?,
                                )?
                            {
                                pos -= 1;
                            }
                            out.insert(pos, item);
                        }
                        Ok(Value::Array(out))
                    }
                    "toobject" => {
                        let key_fn = self.lambda(name, &args[1])?;
                        let value_fn = args.get(2).map(|a| self.lambda(name, a)).transpose()?;
                        let mut out = Map::new();
                        for v in &items {
                            let key = self.apply(&key_fn, std::slice::from_ref(v), frame)?;
                            let value = match &value_fn {
                                Some(f) => self.apply(f, std::slice::from_ref(v), frame)?,
                                None => v.clone(),
                            };
                            out.insert(as_str(name, &key)?.to_string(), value);
                        }
                        Ok(Value::Object(out))
                    }
                    _ => {
                        let f = self.lambda(name, &args[1])?;
                        let mut out = Map::new();
                        for v in &items {
                            let key = self.apply(&f, std::slice::from_ref(v), frame)?;
                            let key = as_str(name, &key)?.to_string();
                            match out.entry(key).or_insert_with(|| json!([])) {
                                Value::Array(group) => group.push(v.clone()),
                                _ => unreachable!("groups are arrays"),
                            }
                        }
                        Ok(Value::Object(out))
                    }
                }
            }
            _ => {
                let object = as_object(name, &collection)?.clone();
                let f = self.lambda(name, &args[1])?;
                let mut out = Map::new();
                for (k, v) in object {
                    out.insert(k, self.apply(&f, &[v], frame)?);
                }
                Ok(Value::Object(out))
            }
        }
    }

    fn lambda<'e>(&self, function: &str, e: &'e Expr) -> Result<(Vec<String>, &'e Expr)> {
        let Expr::Call { name, args } = e else {
            return Err(invalid_arg(
                function,
                "the argument must be a lambda expression",
            ));
        };
        if !name.eq_ignore_ascii_case("lambda") || args.is_empty() {
            return Err(invalid_arg(
                function,
                "the argument must be a lambda expression",
            ));
        }
        let mut params = Vec::new();
        for p in &args[..args.len() - 1] {
            match p {
                Expr::Str(s) => params.push(s.clone()),
                _ => {
                    return Err(invalid_arg(
                        "lambda",
                        "lambda parameter names must be string literals",
                    ));
                }
            }
        }
        Ok((params, &args[args.len() - 1]))
    }

    fn apply(&self, f: &(Vec<String>, &Expr), values: &[Value], frame: &Frame) -> Result<Value> {
        let mut inner = frame.clone();
        for (p, v) in f.0.iter().zip(values) {
            inner.lambdas.push((p.clone(), v.clone()));
        }
        self.eval(f.1, &inner)
    }

    fn user_function(
        &self,
        name: &str,
        lower: &str,
        args: &[Expr],
        frame: &Frame,
    ) -> Result<Value> {
        let def = *self.functions.get(lower).ok_or_else(|| {
            TemplateError::invalid_template(format!(
                "The template function '{name}' is not valid. Please see https://aka.ms/arm-functions for usage details."
            ))
        })?;
        let declared: Vec<&str> = def
            .get("parameters")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.get("name").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let vals = self.eval_args(args, frame)?;
        if vals.len() != declared.len() {
            return Err(super::functions::arity_error(
                name,
                declared.len(),
                declared.len(),
                vals.len(),
            ));
        }
        let bound: HashMap<String, Value> = declared
            .iter()
            .map(|d| d.to_lowercase())
            .zip(vals)
            .collect();
        let body = def.pointer("/output/value").ok_or_else(|| {
            TemplateError::invalid_template(format!(
                "The user-defined function '{name}' has no 'output.value'."
            ))
        })?;
        let inner = Frame {
            fn_args: Some(Rc::new(bound)),
            ..Frame::default()
        };
        self.eval_value(body, &inner)
    }

    fn resource_id_function(&self, name: &str, lower: &str, vals: &[Value]) -> Result<String> {
        let strings = vals
            .iter()
            .map(|v| as_str(name, v))
            .collect::<Result<Vec<&str>>>()?;
        let need = |min: usize| -> Result<()> {
            if strings.len() < min {
                Err(super::functions::arity_error(
                    name,
                    min,
                    usize::MAX,
                    strings.len(),
                ))
            } else {
                Ok(())
            }
        };
        match lower {
            "resourceid" => {
                need(2)?;
                let type_at = strings
                    .iter()
                    .position(|s| s.contains('/'))
                    .filter(|p| *p <= 2)
                    .ok_or_else(|| {
                        invalid_arg(name, "no argument is a resource type ('Namespace/type')")
                    })?;
                // ARM reads the first argument containing '/' as the type, so a full
                // id such as `subscription().id` passed as the subscription lands there.
                if strings[type_at].starts_with('/') {
                    return Err(invalid_arg(
                        name,
                        &format!(
                            "argument {} '{}' is a resource id where a subscription id, resource group name or resource type ('Namespace/type') goes (use subscription().subscriptionId, not subscription().id)",
                            type_at + 1,
                            strings[type_at]
                        ),
                    ));
                }
                let prefix = match type_at {
                    0 => self.fn_target.scope_id(),
                    1 => {
                        let sub = self.fn_target.subscription_id.as_deref().ok_or_else(|| {
                            invalid_arg(name, "a resource group was named outside a subscription")
                        })?;
                        format!("/subscriptions/{sub}/resourceGroups/{}", strings[0])
                    }
                    _ => format!(
                        "/subscriptions/{}/resourceGroups/{}",
                        strings[0], strings[1]
                    ),
                };
                compose_id(&prefix, strings[type_at], &strings[type_at + 1..])
            }
            "subscriptionresourceid" => {
                need(2)?;
                let (sub, rest) = if strings[0].contains('/') {
                    let sub = self.fn_target.subscription_id.clone().ok_or_else(|| {
                        invalid_arg(
                            name,
                            "the deployment is not within a subscription; pass the subscription id",
                        )
                    })?;
                    (sub, &strings[..])
                } else {
                    (strings[0].to_string(), &strings[1..])
                };
                if rest.len() < 2 {
                    return Err(super::functions::arity_error(
                        name,
                        2,
                        usize::MAX,
                        strings.len(),
                    ));
                }
                compose_id(&format!("/subscriptions/{sub}"), rest[0], &rest[1..])
            }
            "tenantresourceid" => {
                need(2)?;
                compose_id("", strings[0], &strings[1..])
            }
            "extensionresourceid" => {
                need(3)?;
                compose_id(strings[0].trim_end_matches('/'), strings[1], &strings[2..])
            }
            _ => {
                need(2)?;
                let (mg, rest) = if strings[0].contains('/') {
                    let mg = self.fn_target.management_group.clone().ok_or_else(|| {
                        invalid_arg(name, "the deployment is not at management group scope; pass the management group name")
                    })?;
                    (mg, &strings[..])
                } else {
                    (strings[0].to_string(), &strings[1..])
                };
                if rest.len() < 2 {
                    return Err(super::functions::arity_error(
                        name,
                        2,
                        usize::MAX,
                        strings.len(),
                    ));
                }
                compose_id(&mg_id(&mg), rest[0], &rest[1..])
            }
        }
    }

    // ----- resources ----------------------------------------------------------------

    fn expand_resources(&self, tpl: &'a Map<String, Value>) -> Result<()> {
        match tpl.get("resources") {
            None => Ok(()),
            Some(Value::Array(list)) => {
                for raw in list {
                    self.expand(raw, None, None, &Frame::default())?;
                }
                Ok(())
            }
            Some(Value::Object(map)) if self.v2 => {
                for (symbolic, raw) in map {
                    self.expand(raw, Some(symbolic), None, &Frame::default())?;
                }
                Ok(())
            }
            Some(_) => Err(section_error(
                "resources",
                if self.v2 {
                    "an object or an array"
                } else {
                    "an array"
                },
            )),
        }
    }

    fn expand(
        &self,
        raw: &'a Value,
        symbolic: Option<&str>,
        parent: Option<usize>,
        outer: &Frame,
    ) -> Result<()> {
        let what = symbolic.map_or_else(
            || "a template resource".to_string(),
            |s| format!("resource '{s}'"),
        );
        let obj = raw.as_object().ok_or_else(|| {
            TemplateError::invalid_template(format!(
                "Every template resource must be a JSON object; {what} is not."
            ))
        })?;
        if obj.contains_key("import") || obj.contains_key("extension") {
            return Err(TemplateError::invalid_template(format!(
                "The {what} uses a Bicep extension ('import'/'extension'), which this simulator does not implement."
            )));
        }
        match obj.get("copy") {
            Some(copy) => {
                let loop_name = copy
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| {
                        TemplateError::invalid_template(format!(
                            "The 'copy' of {what} has no 'name'."
                        ))
                    })?;
                let count = self.copy_count(copy, outer, &what)?;
                for i in 0..count {
                    let mut frame = outer.clone();
                    frame.loops.push((loop_name.to_lowercase(), i));
                    frame.default_index = Some(i);
                    self.expand_one(obj, symbolic, parent, frame, Some(&loop_name))?;
                }
                Ok(())
            }
            None => self.expand_one(obj, symbolic, parent, outer.clone(), None),
        }
    }

    fn expand_one(
        &self,
        obj: &'a Map<String, Value>,
        symbolic: Option<&str>,
        parent: Option<usize>,
        frame: Frame,
        loop_name: Option<&str>,
    ) -> Result<()> {
        let label = symbolic.map(str::to_string).unwrap_or_else(|| {
            obj.get("name")
                .and_then(Value::as_str)
                .unwrap_or("<unnamed>")
                .to_string()
        });
        let ctx = |e: TemplateError| e.within(&format!("resource '{label}'"), None);
        let field = |key: &str| -> Result<String> {
            let raw = obj.get(key).ok_or_else(|| {
                TemplateError::invalid_template(format!(
                    "The template resource '{label}' has no '{key}'."
                ))
            })?;
            match self.eval_value(raw, &frame).map_err(ctx)? {
                Value::String(s) => Ok(s),
                other => Err(TemplateError::invalid_template(format!(
                    "The '{key}' of template resource '{label}' must be a string, not '{}'.",
                    type_name(&other)
                ))),
            }
        };
        let mut resource_type = field("type")?;
        let mut name = field("name")?;
        let api_version = match obj.get("apiVersion") {
            Some(_) => field("apiVersion")?,
            None => String::new(),
        };
        let mut deployed = match obj.get("condition") {
            None => true,
            Some(c) => match self.eval_value(c, &frame).map_err(ctx)? {
                Value::Bool(b) => b,
                other => {
                    return Err(TemplateError::invalid_template(format!(
                        "The condition of template resource '{label}' must be a boolean, not '{}'.",
                        type_name(&other)
                    )));
                }
            },
        };
        if let Some(p) = parent {
            let list = self.instances.borrow();
            let parent = &list[p];
            if !resource_type.contains('/') {
                resource_type = format!("{}/{resource_type}", parent.resource_type);
                name = format!("{}/{name}", parent.name);
            }
            deployed &= parent.deployed;
        }
        let existing = obj
            .get("existing")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let id = self
            .instance_id(obj, &frame, &resource_type, &name)
            .map_err(ctx)?;
        let index = {
            let mut list = self.instances.borrow_mut();
            list.push(Instance {
                raw: obj,
                frame: frame.clone(),
                symbolic: symbolic.map(str::to_string),
                loop_name: loop_name.map(str::to_string),
                resource_type,
                name,
                id,
                api_version,
                deployed,
                existing,
                parent,
                deps: Vec::new(),
                state: State::Pending,
            });
            list.len() - 1
        };
        if let Some(children) = obj.get("resources") {
            for child in as_array("resources", children)
                .map_err(|_| section_error("resources", "an array"))?
            {
                let mut child_frame = frame.clone();
                child_frame.default_index = frame.default_index;
                self.expand(child, None, Some(index), &child_frame)?;
            }
        }
        Ok(())
    }

    fn instance_id(
        &self,
        obj: &Map<String, Value>,
        frame: &Frame,
        resource_type: &str,
        name: &str,
    ) -> Result<String> {
        let text = |key: &str| -> Result<Option<String>> {
            match obj.get(key) {
                None => Ok(None),
                Some(raw) => match self.eval_value(raw, frame)? {
                    Value::String(s) => Ok(Some(s)),
                    Value::Null => Ok(None),
                    other => Err(TemplateError::invalid_template(format!(
                        "The '{key}' of a template resource must be a string, not '{}'.",
                        type_name(&other)
                    ))),
                },
            }
        };
        if is_deployment_type(resource_type) {
            let target = self.nested_target(obj, frame)?;
            return compose_id(&target.scope_id(), resource_type, &[name]);
        }
        let prefix = if let Some(scope) = text("scope")? {
            if scope == "/" {
                String::new()
            } else if scope.starts_with('/') {
                scope.trim_end_matches('/').to_string()
            } else {
                format!("{}/providers/{scope}", self.target.scope_id())
            }
        } else {
            match (text("subscriptionId")?, text("resourceGroup")?) {
                (None, None) => self.target.scope_id(),
                (sub, Some(rg)) => format!(
                    "/subscriptions/{}/resourceGroups/{rg}",
                    sub.or_else(|| self.target.subscription_id.clone())
                        .unwrap_or_default()
                ),
                (Some(sub), None) => format!("/subscriptions/{sub}"),
            }
        };
        compose_id(&prefix, resource_type, &[name])
    }

    /// The scope a nested deployment targets, from its `subscriptionId`, `resourceGroup`,
    /// `scope` and `location` properties.
    fn nested_target(&self, obj: &Map<String, Value>, frame: &Frame) -> Result<Target> {
        let text = |key: &str| -> Result<Option<String>> {
            match obj.get(key) {
                None => Ok(None),
                Some(raw) => Ok(self.eval_value(raw, frame)?.as_str().map(str::to_string)),
            }
        };
        let mut target = self.target.clone();
        if let Some(loc) = text("location")? {
            target.location = Some(loc);
        }
        if let Some(scope) = text("scope")? {
            let segments: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
            if scope == "/" {
                target.subscription_id = None;
                target.resource_group = None;
                target.management_group = None;
            } else if let Some(pos) = segments
                .iter()
                .position(|s| s.eq_ignore_ascii_case("managementGroups"))
            {
                target.subscription_id = None;
                target.resource_group = None;
                target.management_group = segments.get(pos + 1).map(|s| s.to_string());
            } else if segments
                .first()
                .is_some_and(|s| s.eq_ignore_ascii_case("subscriptions"))
            {
                target.subscription_id = segments.get(1).map(|s| s.to_string());
                target.resource_group = match segments.get(3) {
                    Some(rg) => Some(self.resource_group_info(
                        target.subscription_id.as_deref().unwrap_or_default(),
                        rg,
                    )),
                    None => None,
                };
            }
            return Ok(target);
        }
        let sub = text("subscriptionId")?;
        let rg = text("resourceGroup")?;
        if let Some(s) = &sub {
            target.subscription_id = Some(s.clone());
            target.management_group = None;
            if rg.is_none() {
                target.resource_group = None;
            }
        }
        if let Some(rg) = rg {
            let sub = target.subscription_id.clone().ok_or_else(|| {
                TemplateError::invalid_template(
                    "A nested deployment names a resource group but no subscription.",
                )
            })?;
            target.resource_group = Some(self.resource_group_info(&sub, &rg));
        }
        Ok(target)
    }

    /// What `resourceGroup()` returns inside a nested deployment targeting `rg`.
    fn resource_group_info(&self, sub: &str, rg: &str) -> ResourceGroupInfo {
        if let Some(current) = &self.target.resource_group
            && current.name.eq_ignore_ascii_case(rg)
            && self.target.subscription_id.as_deref() == Some(sub)
        {
            return current.clone();
        }
        let id = format!("/subscriptions/{sub}/resourceGroups/{rg}");
        let known = self
            .shared
            .planned
            .borrow()
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(&id))
            .map(|p| p.body.clone())
            .or_else(|| self.find_instance_body(&id))
            .or_else(|| self.shared.lookup.get(&id));
        let location = known
            .as_ref()
            .and_then(|b| b.get("location"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                self.target
                    .resource_group
                    .as_ref()
                    .map(|r| r.location.clone())
            })
            .or_else(|| self.target.location.clone())
            .unwrap_or_else(|| "eastus".into());
        let tags = known
            .as_ref()
            .and_then(|b| b.get("tags"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        ResourceGroupInfo {
            name: rg.to_string(),
            location,
            tags,
        }
    }

    /// The evaluated body of a resource of this template declared with `id`, without
    /// deploying it (used while still expanding, e.g. for a resource group's location).
    fn find_instance_body(&self, id: &str) -> Option<Value> {
        let list = self.instances.borrow();
        let inst = list.iter().find(|i| i.id.eq_ignore_ascii_case(id))?;
        let location = inst.raw.get("location")?;
        let location = self.eval_value(location, &inst.frame).ok()?;
        Some(json!({"location": location}))
    }

    fn resolve_dependencies(&self) -> Result<()> {
        let count = self.instances.borrow().len();
        for i in 0..count {
            let (raw, frame, parent, label) = {
                let list = self.instances.borrow();
                let inst = &list[i];
                (inst.raw, inst.frame.clone(), inst.parent, inst.id.clone())
            };
            let mut deps: Vec<usize> = parent.into_iter().collect();
            if let Some(list) = raw.get("dependsOn") {
                let entries = as_array("dependsOn", list).map_err(|_| {
                    TemplateError::invalid_template(format!(
                        "The 'dependsOn' of resource '{label}' must be an array."
                    ))
                })?;
                for entry in entries {
                    let target = self
                        .eval_value(entry, &frame)
                        .map_err(|e| e.within(&format!("resource '{label}'"), Some(&label)))?;
                    let target = as_str("dependsOn", &target)?.to_string();
                    let found = self.match_dependency(&target);
                    if found.is_empty() {
                        let mut e = TemplateError::invalid_template(format!(
                            "Deployment template validation failed: 'The resource '{target}' is not defined in the template.'"
                        ));
                        e.target = Some(label.clone());
                        return Err(e);
                    }
                    deps.extend(found);
                }
            }
            deps.sort_unstable();
            deps.dedup();
            deps.retain(|d| *d != i);
            self.instances.borrow_mut()[i].deps = deps;
        }
        Ok(())
    }

    fn match_dependency(&self, target: &str) -> Vec<usize> {
        let list = self.instances.borrow();
        let all = |pred: &dyn Fn(&Instance) -> bool| -> Vec<usize> {
            list.iter()
                .enumerate()
                .filter(|(_, i)| pred(i))
                .map(|(n, _)| n)
                .collect()
        };
        if self.v2 {
            let found = all(&|i| i.names_symbol(target));
            if !found.is_empty() {
                return found;
            }
        }
        let found = all(&|i| i.id.eq_ignore_ascii_case(target));
        if !found.is_empty() {
            return found;
        }
        let found = all(&|i| {
            i.loop_name
                .as_deref()
                .is_some_and(|l| l.eq_ignore_ascii_case(target))
        });
        if !found.is_empty() {
            return found;
        }
        if target.contains('/') {
            let suffix = format!("/providers/{}", target.to_lowercase());
            let found = all(&|i| {
                format!("{}/{}", i.resource_type, i.name).eq_ignore_ascii_case(target)
                    || i.id.to_lowercase().ends_with(&suffix)
            });
            if !found.is_empty() {
                return found;
            }
        }
        all(&|i| i.name.eq_ignore_ascii_case(target))
    }

    /// A creation order in which every resource follows its dependencies (depth-first
    /// post-order, template order otherwise); a cycle is an error.
    fn creation_order(&self) -> Result<Vec<usize>> {
        let list = self.instances.borrow();
        let mut order = Vec::with_capacity(list.len());
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut marks = vec![0u8; list.len()];
        for start in 0..list.len() {
            if marks[start] != 0 {
                continue;
            }
            let mut stack = vec![(start, 0usize)];
            marks[start] = 1;
            while let Some((node, next)) = stack.pop() {
                if let Some(&dep) = list[node].deps.get(next) {
                    stack.push((node, next + 1));
                    match marks[dep] {
                        0 => {
                            marks[dep] = 1;
                            stack.push((dep, 0));
                        }
                        1 => {
                            return Err(TemplateError::invalid_template(format!(
                                "Deployment template validation failed: 'Circular dependency detected on resource: '{}'.'",
                                list[dep].id
                            )));
                        }
                        _ => {}
                    }
                } else {
                    marks[node] = 2;
                    order.push(node);
                }
            }
        }
        Ok(order)
    }

    /// Deploys instance `i` (after its dependencies) and returns its body.
    fn deploy(&self, i: usize) -> Result<Value> {
        let (deps, id) = {
            let list = self.instances.borrow();
            let inst = &list[i];
            match &inst.state {
                State::Done(body) => return Ok(body.clone()),
                State::Busy => {
                    return Err(TemplateError::invalid_template(format!(
                        "Circular dependency detected on resource: '{}'. A resource's evaluation requires its own runtime state.",
                        inst.id
                    )));
                }
                State::Pending => {}
            }
            if !inst.deployed {
                return Err(TemplateError::invalid_template(format!(
                    "The resource '{}' is not deployed because its condition evaluated to false, so its runtime state cannot be referenced.",
                    inst.id
                )));
            }
            if inst.existing {
                let id = inst.id.clone();
                drop(list);
                return self.shared.lookup.get(&id).ok_or_else(|| not_found(&id));
            }
            (inst.deps.clone(), inst.id.clone())
        };
        self.instances.borrow_mut()[i].state = State::Busy;
        for d in &deps {
            let (deployed, existing) = {
                let list = self.instances.borrow();
                (list[*d].deployed, list[*d].existing)
            };
            if deployed && !existing {
                self.deploy(*d)
                    .inspect_err(|_| self.instances.borrow_mut()[i].state = State::Pending)?;
            }
        }
        let result = self.build(i);
        let mut list = self.instances.borrow_mut();
        match result {
            Ok(body) => {
                list[i].state = State::Done(body.clone());
                let dep_ids = deps
                    .iter()
                    .filter(|d| list[**d].deployed && !list[**d].existing)
                    .map(|d| list[*d].id.clone())
                    .collect();
                self.shared.planned.borrow_mut().push(PlannedResource {
                    id,
                    resource_type: list[i].resource_type.clone(),
                    name: list[i].name.clone(),
                    api_version: list[i].api_version.clone(),
                    body: body.clone(),
                    depends_on: dep_ids,
                });
                Ok(body)
            }
            Err(e) => {
                list[i].state = State::Pending;
                Err(e.within(&format!("resource '{id}'"), Some(&id)))
            }
        }
    }

    fn build(&self, i: usize) -> Result<Value> {
        let (raw, frame, id, resource_type, name, api_version) = {
            let list = self.instances.borrow();
            let inst = &list[i];
            (
                inst.raw,
                inst.frame.clone(),
                inst.id.clone(),
                inst.resource_type.clone(),
                inst.name.clone(),
                inst.api_version.clone(),
            )
        };
        let nested = is_deployment_type(&resource_type);
        let mut body = Map::new();
        body.insert("id".into(), json!(id));
        body.insert(
            "name".into(),
            json!(name.rsplit('/').next().unwrap_or(&name)),
        );
        body.insert("type".into(), json!(resource_type));
        if !api_version.is_empty() {
            body.insert("apiVersion".into(), json!(api_version));
        }
        for (k, v) in raw {
            match k.to_lowercase().as_str() {
                "condition" | "copy" | "dependson" | "resources" | "comments" | "existing"
                | "scope" | "type" | "name" | "apiversion" | "subscriptionid" | "resourcegroup" => {
                }
                "properties" if nested => {}
                _ => {
                    body.insert(k.clone(), self.eval_value(v, &frame)?);
                }
            }
        }
        if nested {
            let props = self.deploy_nested(raw, &frame, &name)?;
            body.insert("properties".into(), props);
        } else {
            runtime::synthesize(&mut body, &id, &resource_type, &self.target.tenant_id);
        }
        Ok(Value::Object(body))
    }

    fn deploy_nested(
        &self,
        raw: &'a Map<String, Value>,
        frame: &Frame,
        name: &str,
    ) -> Result<Value> {
        let props = raw
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| {
                TemplateError::invalid_template(format!(
                    "The nested deployment '{name}' has no 'properties' object."
                ))
            })?;
        if let (None, Some(link)) = (props.get("template"), props.get("templateLink")) {
            return self.deploy_linked(raw, props, link, frame, name);
        }
        let template = props.get("template").ok_or_else(|| {
            TemplateError::invalid_template(format!(
                "The nested deployment '{name}' has no 'template'."
            ))
        })?;
        let inner = props
            .get("expressionEvaluationOptions")
            .and_then(|o| get_ci(o.as_object()?, "scope"))
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("inner"));
        let target = self.nested_target(raw, frame)?;
        let before = self.shared.planned.borrow().len();
        let depth = self.shared.depth.get();
        if depth + NESTED_DEPLOYMENT_WEIGHT > MAX_CALL_DEPTH {
            return Err(TemplateError::invalid_template(format!(
                "The nested deployment '{name}' is nested too deeply within other deployments and expressions."
            )));
        }
        self.shared.depth.set(depth + NESTED_DEPLOYMENT_WEIGHT);
        let result = self.run_nested(props, template, target, name, inner, frame);
        self.shared.depth.set(depth);
        self.nested_properties(props, frame, name, before, result?)
    }

    /// A nested deployment whose `templateLink.id` names a template spec version: its
    /// `properties.mainTemplate`, evaluated in its own (inner) scope. URI links are
    /// not fetched.
    fn deploy_linked(
        &self,
        raw: &'a Map<String, Value>,
        props: &'a Map<String, Value>,
        link: &Value,
        frame: &Frame,
        name: &str,
    ) -> Result<Value> {
        let id = match link.get("id") {
            Some(id) => self.eval_value(id, frame)?,
            None => {
                return Err(TemplateError::invalid_template(format!(
                    "The nested deployment '{name}' links its template by URI ('templateLink.uri'/'relativePath'), which this simulator does not fetch; inline the template or link a template spec by 'id'."
                )));
            }
        };
        let id = as_str("templateLink", &id)?.to_string();
        let spec = self
            .shared
            .planned
            .borrow()
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(&id))
            .map(|p| p.body.clone())
            .or_else(|| self.shared.lookup.get(&id))
            .ok_or_else(|| not_found(&id))?;
        let template = spec
            .pointer("/properties/mainTemplate")
            .filter(|t| t.is_object())
            .cloned()
            .ok_or_else(|| {
                TemplateError::invalid_template(format!(
                    "The template spec version '{id}' linked by nested deployment '{name}' has no 'properties.mainTemplate'."
                ))
            })?;
        let target = self.nested_target(raw, frame)?;
        let params = match props.get("parameters") {
            Some(p) => self.eval_value(p, frame)?,
            None => json!({}),
        };
        let params = params.as_object().cloned().ok_or_else(|| {
            TemplateError::invalid_template(format!(
                "The parameters of nested deployment '{name}' must be an object."
            ))
        })?;
        let before = self.shared.planned.borrow().len();
        let depth = self.shared.depth.get();
        if depth + NESTED_DEPLOYMENT_WEIGHT > MAX_CALL_DEPTH {
            return Err(TemplateError::invalid_template(format!(
                "The nested deployment '{name}' is nested too deeply within other deployments and expressions."
            )));
        }
        self.shared.depth.set(depth + NESTED_DEPLOYMENT_WEIGHT);
        let result = run_template(
            self.shared,
            target,
            name,
            &template,
            Source::Own(&params),
            self.depth + 1,
        );
        self.shared.depth.set(depth);
        self.nested_properties(props, frame, name, before, result?)
    }

    /// The `properties` of a finished nested deployment, as GET returns them.
    fn nested_properties(
        &self,
        props: &Map<String, Value>,
        frame: &Frame,
        name: &str,
        before: usize,
        result: RunResult,
    ) -> Result<Value> {
        let mode = match props.get("mode") {
            Some(m) => self.eval_value(m, frame)?,
            None => json!("Incremental"),
        };
        let output_resources: Vec<Value> = self.shared.planned.borrow()[before..]
            .iter()
            .map(|p| json!({"id": p.id}))
            .collect();
        let typed = |m: &IndexMap<String, TypedValue>, hide_secure: bool| -> Value {
            Value::Object(
                m.iter()
                    .map(|(k, t)| {
                        let mut entry = json!({"type": t.type_name});
                        if !(hide_secure && t.type_name.starts_with("Secure")) {
                            entry["value"] = t.value.clone();
                        }
                        (k.clone(), entry)
                    })
                    .collect(),
            )
        };
        Ok(json!({
            "provisioningState": "Succeeded",
            "mode": mode,
            "outputs": typed(&result.outputs, false),
            "outputResources": output_resources,
            "parameters": typed(&result.parameters, true),
            "correlationId": runtime::seeded_guid(name, "correlationId"),
        }))
    }

    fn run_nested(
        &self,
        props: &'a Map<String, Value>,
        template: &'a Value,
        target: Target,
        name: &str,
        inner: bool,
        frame: &Frame,
    ) -> Result<RunResult> {
        if inner {
            let params = match props.get("parameters") {
                Some(p) => self.eval_value(p, frame)?,
                None => json!({}),
            };
            let params = params.as_object().cloned().ok_or_else(|| {
                TemplateError::invalid_template(format!(
                    "The parameters of nested deployment '{name}' must be an object."
                ))
            })?;
            run_template(
                self.shared,
                target,
                name,
                template,
                Source::Own(&params),
                self.depth + 1,
            )
        } else {
            run_template(
                self.shared,
                target,
                name,
                template,
                Source::Outer(self),
                self.depth + 1,
            )
        }
    }

    /// Finds what `reference()`/`list*()` read: a resource of this template (deployed
    /// on demand), one an enclosing or earlier nested deployment created, or an existing one.
    fn resolve_resource(&self, function: &str, target: &str) -> Result<Value> {
        let index = {
            let list = self.instances.borrow();
            let by = |pred: &dyn Fn(&Instance) -> bool| list.iter().position(pred);
            if target.starts_with('/') {
                by(&|i| i.id.eq_ignore_ascii_case(target))
            } else if self.v2 {
                by(&|i| i.names_symbol(target))
                    .or_else(|| by(&|i| i.name.eq_ignore_ascii_case(target)))
            } else {
                let matches: Vec<usize> = list
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| i.name.eq_ignore_ascii_case(target))
                    .map(|(n, _)| n)
                    .collect();
                if matches.len() > 1 {
                    return Err(invalid_arg(
                        function,
                        &format!("the resource name '{target}' is ambiguous; use a resource id"),
                    ));
                }
                matches.first().copied()
            }
        };
        if let Some(i) = index {
            return self.deploy(i);
        }
        if let Some(body) = self
            .shared
            .planned
            .borrow()
            .iter()
            .rev()
            .find(|p| p.id.eq_ignore_ascii_case(target))
            .map(|p| p.body.clone())
        {
            return Ok(body);
        }
        if !target.starts_with('/') {
            return Err(TemplateError::invalid_template(format!(
                "The template function '{function}' refers to '{target}', which is not a resource of the template. Please see https://aka.ms/arm-function-reference for usage details."
            )));
        }
        if let Some(body) = self.implicit_child(target) {
            return Ok(body);
        }
        self.shared
            .lookup
            .get(target)
            .ok_or_else(|| not_found(target))
    }

    /// A child the resource provider creates by itself (`logs/default`,
    /// `blobServices/default`, ...) below a resource this deployment created.
    fn implicit_child(&self, target: &str) -> Option<Value> {
        let trimmed = target.trim_end_matches('/');
        let (rest, child_name) = trimmed.rsplit_once('/')?;
        let (parent_id, child_type) = rest.rsplit_once('/')?;
        if !parent_id.to_lowercase().contains("/providers/")
            || child_type.eq_ignore_ascii_case("providers")
        {
            return None;
        }
        let own = {
            let list = self.instances.borrow();
            list.iter()
                .position(|i| i.id.eq_ignore_ascii_case(parent_id) && i.deployed && !i.existing)
        };
        let parent = match own {
            Some(i) => self.deploy(i).ok()?,
            None => self
                .shared
                .planned
                .borrow()
                .iter()
                .find(|p| p.id.eq_ignore_ascii_case(parent_id))
                .map(|p| p.body.clone())?,
        };
        let parent_type = parent.get("type").and_then(Value::as_str)?;
        let child_type = format!("{parent_type}/{child_type}");
        let mut body = Map::new();
        body.insert("id".into(), json!(trimmed));
        body.insert("name".into(), json!(child_name));
        body.insert("type".into(), json!(child_type));
        runtime::synthesize(&mut body, trimmed, &child_type, &self.target.tenant_id);
        Some(Value::Object(body))
    }

    // ----- outputs ------------------------------------------------------------------

    fn outputs(&self, tpl: &'a Map<String, Value>) -> Result<IndexMap<String, TypedValue>> {
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
                        super::value::type_name(&got)
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

fn no_args(name: &str, args: &[Expr]) -> Result<()> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(super::functions::arity_error(name, 0, 0, args.len()))
    }
}

fn is_property_copy(v: &Value) -> bool {
    v.as_array().is_some_and(|specs| {
        !specs.is_empty()
            && specs.iter().all(|s| {
                s.get("name").is_some_and(Value::is_string)
                    && s.get("count").is_some()
                    && s.get("input").is_some()
            })
    })
}

fn is_deployment_type(resource_type: &str) -> bool {
    resource_type.eq_ignore_ascii_case("Microsoft.Resources/deployments")
}

fn not_found(id: &str) -> TemplateError {
    let mut e = TemplateError::not_found(format!("The Resource '{id}' was not found."));
    e.target = Some(id.to_string());
    e
}

fn member(v: &Value, name: &str) -> Result<Value> {
    match v {
        Value::Object(o) => get_ci(o, name).cloned().ok_or_else(|| {
            TemplateError::invalid_template(format!(
                "The language expression property '{name}' doesn't exist, available properties are '{}'.",
                o.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        }),
        other => Err(TemplateError::invalid_template(format!(
            "The language expression property '{name}' can't be evaluated, property name must be accessed on an object, not a value of type '{}'.",
            type_name(other)
        ))),
    }
}

fn check_constraints(name: &str, value: &Value, decl: &Value, typed: &Value) -> Result<()> {
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

const ZONAL_REGIONS: &[&str] = &[
    "eastus",
    "eastus2",
    "westus2",
    "westus3",
    "centralus",
    "southcentralus",
    "canadacentral",
    "brazilsouth",
    "northeurope",
    "westeurope",
    "uksouth",
    "francecentral",
    "germanywestcentral",
    "swedencentral",
    "switzerlandnorth",
    "norwayeast",
    "italynorth",
    "polandcentral",
    "southeastasia",
    "eastasia",
    "japaneast",
    "koreacentral",
    "australiaeast",
    "centralindia",
    "southafricanorth",
    "uaenorth",
    "qatarcentral",
    "israelcentral",
];

fn environment() -> Value {
    json!({
        "name": "AzureCloud",
        "gallery": "https://gallery.azure.com/",
        "graph": "https://graph.windows.net/",
        "portal": "https://portal.azure.com",
        "graphAudience": "https://graph.windows.net/",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "batch": "https://batch.core.windows.net/",
        "media": "https://rest.media.azure.net",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/master/arm-compute/quickstart-templates/aliases.json",
        "resourceManager": "https://management.azure.com/",
        "authentication": {
            "loginEndpoint": "https://login.microsoftonline.com/",
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "suffixes": {
            "acrLoginServer": ".azurecr.io",
            "azureDatalakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
            "azureDatalakeStoreFileSystem": "azuredatalakestore.net",
            "azureFrontDoorEndpointSuffix": "azurefd.net",
            "keyvaultDns": ".vault.azure.net",
            "sqlServerHostname": ".database.windows.net",
            "storage": "core.windows.net",
        },
    })
}

fn parse_datetime(function: &str, s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for pattern in [
        "%Y%m%dT%H%M%SZ",
        "%Y-%m-%d %H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, pattern) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Err(invalid_arg(
        function,
        "the value is not a valid date and time",
    ))
}

/// Adds an ISO 8601 duration (`P1Y2M3DT4H5M6S`, optionally negative).
fn add_duration(function: &str, base: DateTime<Utc>, duration: &str) -> Result<DateTime<Utc>> {
    let bad = || invalid_arg(function, "the duration is not a valid ISO 8601 duration");
    let (negative, rest) = match duration.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, duration),
    };
    let rest = rest.strip_prefix('P').ok_or_else(bad)?;
    let mut t = base;
    let mut in_time = false;
    let mut number = String::new();
    for c in rest.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' => number.push(c),
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                let n = if negative { -n } else { n };
                let months = |m: i64| -> Option<DateTime<Utc>> {
                    if m >= 0 {
                        t.checked_add_months(Months::new(u32::try_from(m).ok()?))
                    } else {
                        t.checked_sub_months(Months::new(u32::try_from(-m).ok()?))
                    }
                };
                t = match (in_time, unit) {
                    (false, 'Y') => n.checked_mul(12).and_then(months),
                    (false, 'M') => months(n),
                    (false, 'W') => Duration::try_weeks(n).and_then(|d| t.checked_add_signed(d)),
                    (false, 'D') => Duration::try_days(n).and_then(|d| t.checked_add_signed(d)),
                    (true, 'H') => Duration::try_hours(n).and_then(|d| t.checked_add_signed(d)),
                    (true, 'M') => Duration::try_minutes(n).and_then(|d| t.checked_add_signed(d)),
                    (true, 'S') => Duration::try_seconds(n).and_then(|d| t.checked_add_signed(d)),
                    _ => None,
                }
                .ok_or_else(bad)?;
            }
        }
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(t)
}
