//! Nested deployments: the scope they target, inline and linked templates, and the
//! deployment resource each one becomes.

use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::template::extensions;
use crate::template::model::{ResourceGroupInfo, TemplateError, TypedValue};
use crate::template::planner::run_template;
use crate::template::run::{
    Deployment, Frame, MAX_CALL_DEPTH, NESTED_DEPLOYMENT_WEIGHT, Result, RunResult, Source, Target,
    not_found,
};
use crate::template::runtime;
use crate::template::value::{as_str, get_ci};

impl<'s, 'a> Deployment<'s, 'a> {
    /// The scope a nested deployment targets, from its `subscriptionId`, `resourceGroup`,
    /// `scope` and `location` properties.
    pub(super) fn nested_target(&self, obj: &Map<String, Value>, frame: &Frame) -> Result<Target> {
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
    pub(super) fn resource_group_info(&self, sub: &str, rg: &str) -> ResourceGroupInfo {
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

    pub(super) fn deploy_nested(
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
        extensions::check_configs(props, name)?;
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
    pub(super) fn deploy_linked(
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
    pub(super) fn nested_properties(
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

    pub(super) fn run_nested(
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
}
