//! The deployment plan: a template's resources expanded (copy loops, conditions,
//! child resources), ordered by their dependencies, and built into the bodies ARM
//! would create.

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::Utc;
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::template::extensions;
use crate::template::functions::pure::invalid_arg;
use crate::template::model::{
    DeploymentContext, EvaluatedDeployment, EvaluationOptions, PlannedResource, ResourceLookup,
    TargetScope, TemplateError,
};
use crate::template::run::{
    Deployment, Frame, Instance, MAX_NESTING, Result, RunResult, Shared, Source, State, Target,
    VarDef, compose_id, is_deployment_type, not_found, section_error,
};
use crate::template::runtime;
use crate::template::value::{as_array, as_str, type_name};

/// Evaluates a root deployment; see [`super::evaluate_with`].
pub(super) fn evaluate_root(
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
pub(super) fn check_schema(template: &Value, target: &Target) -> Result<()> {
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

pub(super) fn run_template<'a>(
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
    let mut functions = declared_functions(tpl)?;
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
        declare_variables(tpl, &mut variables)?;
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
        extensions: extensions::declared(tpl)?,
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

/// The template's user-defined functions by lower-case `namespace.member`.
fn declared_functions(tpl: &Map<String, Value>) -> Result<HashMap<String, &Value>> {
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
    Ok(functions)
}

/// Adds the template's own variables (plain and `copy`) to `variables`.
fn declare_variables<'a>(
    tpl: &'a Map<String, Value>,
    variables: &mut HashMap<String, VarDef<'a>>,
) -> Result<()> {
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
    Ok(())
}

impl<'s, 'a> Deployment<'s, 'a> {
    pub(super) fn expand_resources(&self, tpl: &'a Map<String, Value>) -> Result<()> {
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

    pub(super) fn expand(
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
        extensions::check_resource(obj, &self.extensions, &what)?;
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

    pub(super) fn expand_one(
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
        let mut deployed = self.condition(obj, &frame, &label)?;
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
        self.expand_children(obj, index, &frame)
    }

    /// A resource's `condition`: true when absent, else its boolean value.
    fn condition(&self, obj: &Map<String, Value>, frame: &Frame, label: &str) -> Result<bool> {
        let Some(condition) = obj.get("condition") else {
            return Ok(true);
        };
        let value = self
            .eval_value(condition, frame)
            .map_err(|e| e.within(&format!("resource '{label}'"), None))?;
        match value {
            Value::Bool(b) => Ok(b),
            other => Err(TemplateError::invalid_template(format!(
                "The condition of template resource '{label}' must be a boolean, not '{}'.",
                type_name(&other)
            ))),
        }
    }

    /// Expands the child resources declared inside the resource at `index`.
    fn expand_children(
        &self,
        obj: &'a Map<String, Value>,
        index: usize,
        frame: &Frame,
    ) -> Result<()> {
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

    pub(super) fn instance_id(
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

    /// The evaluated body of a resource of this template declared with `id`, without
    /// deploying it (used while still expanding, e.g. for a resource group's location).
    pub(super) fn find_instance_body(&self, id: &str) -> Option<Value> {
        let list = self.instances.borrow();
        let inst = list.iter().find(|i| i.id.eq_ignore_ascii_case(id))?;
        let location = inst.raw.get("location")?;
        let location = self.eval_value(location, &inst.frame).ok()?;
        Some(json!({"location": location}))
    }

    pub(super) fn resolve_dependencies(&self) -> Result<()> {
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

    pub(super) fn match_dependency(&self, target: &str) -> Vec<usize> {
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
    pub(super) fn creation_order(&self) -> Result<Vec<usize>> {
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
    pub(super) fn deploy(&self, i: usize) -> Result<Value> {
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

    pub(super) fn build(&self, i: usize) -> Result<Value> {
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

    /// Finds what `reference()`/`list*()` read: a resource of this template (deployed
    /// on demand), one an enclosing or earlier nested deployment created, or an existing one.
    pub(super) fn resolve_resource(&self, function: &str, target: &str) -> Result<Value> {
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
    pub(super) fn implicit_child(&self, target: &str) -> Option<Value> {
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
}
