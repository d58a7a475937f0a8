//! Deployments at resource-group and subscription scope: PUT (long-running),
//! GET, DELETE (history record only), cancel, validate, what-if, operations.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::config::{CompiledConfig, FaultStage};
use crate::error::{ArmError, ErrorDetail, deployment_failed, resource_group_not_found};
use crate::faults::resource_fault;
use crate::http::{ArmRequest, Handled, Reply};
use crate::lro::is_terminal;
use crate::route::{Scope, key};
use crate::shared::{InventoryLookup, Shared};
use crate::state::State;
use crate::state::deployment::{DEPLOYMENT_TYPE, DeploymentRecord, operation_entry, render_typed};
use crate::state::lock::LockedOperation;
use crate::template::{
    self, DeploymentContext, EvaluatedDeployment, PlannedResource, ResourceGroupInfo,
};

/// ARM trims a scope's history past this many deployments...
const HISTORY_TRIM_ABOVE: usize = 700;
/// ...down to this many...
const HISTORY_TRIM_TO: usize = 600;
/// ...and refuses new ones past this (only reachable with that many running).
const HISTORY_MAX: usize = 800;

/// The evaluator's code for a template that reads an absent resource.
const RESOURCE_NOT_FOUND: &str = "ResourceNotFound";

/// The parts of a deployment (or stack) PUT body the evaluator needs.
pub(crate) struct TemplateRequest {
    pub template: Value,
    pub parameters: Value,
    pub location: Option<String>,
    pub tags: Option<Value>,
    pub properties: Map<String, Value>,
}

pub(crate) fn validate_name(kind: &str, name: &str, max: usize) -> Result<(), ArmError> {
    let valid = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.()".contains(c));
    if valid {
        Ok(())
    } else {
        Err(ArmError::bad_request(
            "InvalidDeploymentName",
            format!(
                "The {kind} name '{name}' is invalid. It can contain only alphanumeric characters, '-', '_', '.', '(' and ')', and be at most {max} characters long."
            ),
        ))
    }
}

pub(crate) fn template_request(
    request: &ArmRequest,
    scope: &Scope,
) -> Result<TemplateRequest, ArmError> {
    let mut body = request.json_body()?;
    let Some(Value::Object(properties)) = body.remove("properties") else {
        return Err(ArmError::bad_request(
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'properties' is required.",
        ));
    };
    let template = match (properties.get("template"), properties.get("templateLink")) {
        (Some(template @ Value::Object(_)), _) => template.clone(),
        (None, Some(_)) => {
            return Err(ArmError::bad_request(
                "InvalidTemplateDeployment",
                "The template link cannot be downloaded by the ARM simulator; send the template inline.",
            ));
        }
        _ => {
            return Err(ArmError::bad_request(
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: 'properties.template' must be an object.",
            ));
        }
    };
    let parameters = match properties.get("parameters") {
        None | Some(Value::Null) => json!({}),
        Some(parameters @ Value::Object(_)) => parameters.clone(),
        Some(_) => {
            return Err(ArmError::bad_request(
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: 'properties.parameters' must be an object.",
            ));
        }
    };
    let location = body
        .get("location")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if scope.resource_group.is_none() && location.is_none() {
        return Err(ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        ));
    }
    Ok(TemplateRequest {
        template,
        parameters,
        location,
        tags: body.get("tags").cloned(),
        properties,
    })
}

/// The evaluator's view of where the deployment runs.
pub(crate) fn context(
    shared: &Shared,
    request: &ArmRequest,
    scope: &Scope,
    name: &str,
    location: Option<String>,
) -> Result<DeploymentContext, ArmError> {
    let resource_group = match &scope.resource_group {
        None => None,
        Some(rg) => {
            let state = shared.state();
            let group = state
                .inventory
                .get(&scope.id())
                .ok_or_else(|| resource_group_not_found(rg))?;
            if group.body.pointer("/properties/provisioningState") == Some(&json!("Deleting")) {
                return Err(ArmError::conflict(
                    "ResourceGroupBeingDeleted",
                    format!(
                        "The resource group '{rg}' is in deprovisioning state and cannot perform this operation."
                    ),
                ));
            }
            Some(ResourceGroupInfo {
                name: group.body["name"].as_str().unwrap_or(rg).to_owned(),
                location: group.body["location"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                tags: group.body["tags"].as_object().cloned().unwrap_or_default(),
            })
        }
    };
    Ok(DeploymentContext {
        tenant_id: request.caller.tenant.clone(),
        subscription_id: scope.subscription.clone(),
        resource_group,
        deployment_name: name.to_owned(),
        location,
    })
}

/// Runs the evaluator, then the preflight fault checks, as ARM's validation does.
pub(crate) fn evaluate_and_preflight(
    shared: &Shared,
    parts: &TemplateRequest,
    context: &DeploymentContext,
) -> Result<EvaluatedDeployment, ArmError> {
    let evaluated = template::evaluate(
        &parts.template,
        &parts.parameters,
        context,
        &InventoryLookup {
            shared,
            tenant_id: &context.tenant_id,
        },
    )
    .map_err(|e| {
        let error = ArmError::bad_request(e.code, e.message);
        match e.target {
            Some(target) => error.with_target(target),
            None => error,
        }
    })?;
    let config = shared.config();
    let failures: Vec<ErrorDetail> = evaluated
        .resources
        .iter()
        .filter_map(|r| {
            let own_name = r.name.rsplit('/').next().unwrap_or_default();
            crate::providers::name_error(&r.resource_type, own_name)
                .map(|error| ErrorDetail {
                    target: Some(r.id.clone()),
                    ..error
                })
                .or_else(|| resource_fault(&config, r, FaultStage::Preflight))
        })
        .collect();
    if failures.is_empty() {
        Ok(evaluated)
    } else {
        Err(ArmError::bad_request(
            "InvalidTemplateDeployment",
            format!(
                "The template deployment '{}' is not valid according to the validation procedure. The tracking id is '{}'. See inner errors for details.",
                context.deployment_name,
                uuid::Uuid::new_v4()
            ),
        )
        .with_details(failures))
    }
}

/// The evaluation a PUT starts from, and what its run creates: the planned
/// resources, or the error it fails with once running. A template reading a
/// resource that does not exist passes validation; as in ARM, the deployment
/// starts and fails when it gets there.
pub(crate) type RunPlan = Result<Vec<PlannedResource>, ErrorDetail>;

pub(crate) fn evaluate_for_run(
    shared: &Shared,
    parts: &TemplateRequest,
    context: &DeploymentContext,
) -> Result<(EvaluatedDeployment, RunPlan), ArmError> {
    match evaluate_and_preflight(shared, parts, context) {
        Ok(mut evaluated) => {
            let plan = std::mem::take(&mut evaluated.resources);
            Ok((evaluated, Ok(plan)))
        }
        Err(error) if error.code == RESOURCE_NOT_FOUND => Ok((
            EvaluatedDeployment {
                resources: Vec::new(),
                outputs: indexmap::IndexMap::new(),
                parameters: indexmap::IndexMap::new(),
            },
            Err(ErrorDetail {
                code: error.code,
                message: error.message,
                target: error.target,
            }),
        )),
        Err(error) => Err(error),
    }
}

pub(crate) fn template_hash(template: &Value) -> String {
    let digest = Sha256::digest(template.to_string().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first).to_string()
}

fn deployment_id(scope: &Scope, name: &str) -> String {
    format!("{}/providers/{DEPLOYMENT_TYPE}/{name}", scope.id())
}

fn not_found(name: &str) -> ArmError {
    ArmError::not_found(
        "DeploymentNotFound",
        format!("Deployment '{name}' could not be found."),
    )
}

fn active(name: &str) -> ArmError {
    ArmError::conflict(
        "DeploymentActive",
        format!("The deployment '{name}' is still active. Wait for it to complete or cancel it."),
    )
}

pub(crate) fn operation_status_url(
    shared: &Shared,
    scope: &Scope,
    name: &str,
    operation: &str,
    api_version: &str,
) -> String {
    format!(
        "{}{}/operationStatuses/{operation}?api-version={api_version}",
        shared.endpoint,
        deployment_id(scope, name)
    )
}

pub(crate) fn operation_result_url(
    shared: &Shared,
    subscription: &str,
    operation: &str,
    api_version: &str,
) -> String {
    format!(
        "{}/subscriptions/{subscription}/providers/Microsoft.Resources/operationResults/{operation}?api-version={api_version}",
        shared.endpoint
    )
}

pub(crate) fn put(
    shared: &Arc<Shared>,
    request: &ArmRequest,
    scope: &Scope,
    name: &str,
) -> Handled {
    validate_name("deployment", name, 64)?;
    let parts = template_request(request, scope)?;
    let context = context(shared, request, scope, name, parts.location.clone())?;
    let name_key = name.to_ascii_lowercase();
    let scope_key = scope.key();
    if has_active_record(&shared.state(), &scope_key, &name_key) {
        return Err(active(name));
    }
    let (evaluated, plan) = evaluate_for_run(shared, &parts, &context)?;
    let complete = is_complete_mode(&parts.properties)?;

    let (body, operation, generation) = {
        let mut state = shared.state();
        let records = state.deployments.entry(scope_key.clone()).or_default();
        if records
            .get(&name_key)
            .is_some_and(DeploymentRecord::is_active)
        {
            return Err(active(name));
        }
        records.shift_remove(&name_key);
        trim_history(records)?;
        let operation = state.start_operation("Accepted", 200);
        let generation = state.next_generation();
        let record = DeploymentRecord {
            id: deployment_id(scope, name),
            name: name.to_owned(),
            location: parts.location.clone(),
            tags: parts.tags.clone(),
            mode: if complete { "Complete" } else { "Incremental" }.into(),
            state: "Accepted",
            generation,
            operation_id: operation.clone(),
            correlation_id: request.correlation_id.clone(),
            template_hash: template_hash(&parts.template),
            started: Utc::now(),
            ended: None,
            parameters: render_typed(&evaluated.parameters),
            outputs_on_success: render_typed(&evaluated.outputs),
            output_resources: Vec::new(),
            error: None,
            operations: Vec::new(),
        };
        let body = record.body();
        state
            .deployments
            .entry(scope_key.clone())
            .or_default()
            .insert(name_key.clone(), record);
        (body, operation, generation)
    };
    tokio::spawn(run(
        shared.clone(),
        scope.clone(),
        name.to_owned(),
        generation,
        operation.clone(),
        plan,
        complete,
    ));
    let retry_after = shared.config().config.retry_after_secs;
    Ok(Reply::json(201, body)
        .header(
            "azure-asyncoperation",
            operation_status_url(shared, scope, name, &operation, request.api_version()),
        )
        .header("retry-after", retry_after.to_string()))
}

fn has_active_record(state: &State, scope_key: &str, name_key: &str) -> bool {
    state
        .deployments
        .get(scope_key)
        .and_then(|records| records.get(name_key))
        .is_some_and(DeploymentRecord::is_active)
}

/// Whether the deployment runs in Complete mode; other modes than Incremental
/// and Complete are refused.
fn is_complete_mode(properties: &Map<String, Value>) -> Result<bool, ArmError> {
    let mode = properties
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or("Incremental");
    if !mode.eq_ignore_ascii_case("Incremental") && !mode.eq_ignore_ascii_case("Complete") {
        return Err(ArmError::bad_request(
            "InvalidDeploymentMode",
            format!(
                "The deployment mode '{mode}' is not supported. Use 'Incremental' or 'Complete'."
            ),
        ));
    }
    Ok(mode.eq_ignore_ascii_case("Complete"))
}

/// Drops the oldest finished records once a scope's history is long, as ARM does.
fn trim_history(
    records: &mut indexmap::IndexMap<String, DeploymentRecord>,
) -> Result<(), ArmError> {
    if records.len() >= HISTORY_TRIM_ABOVE {
        let mut excess = records.len() + 1 - HISTORY_TRIM_TO;
        records.retain(|_, record| {
            if excess > 0 && !record.is_active() {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }
    if records.len() >= HISTORY_MAX {
        return Err(ArmError::bad_request(
            "DeploymentQuotaExceeded",
            format!("Creating the deployment would exceed the quota of '{HISTORY_MAX}'."),
        ));
    }
    Ok(())
}

/// Drives one deployment through Accepted → Running → Succeeded/Failed on the
/// configured clock. Stops quietly when the record was canceled or replaced.
/// `plan` is the resources to create, or the error it fails with once running.
async fn run(
    shared: Arc<Shared>,
    scope: Scope,
    name: String,
    generation: u64,
    operation: String,
    plan: RunPlan,
    complete: bool,
) {
    let config = shared.config();
    let latency = &config.config.latency;
    let run = DeploymentRun {
        scope_key: scope.key(),
        shared,
        scope,
        name,
        generation,
        operation,
    };
    tokio::time::sleep(Duration::from_millis(latency.accepted_ms)).await;
    if !run.start_running() {
        return;
    }
    tokio::time::sleep(Duration::from_millis(latency.running_ms)).await;
    let plan = match plan {
        Ok(plan) => plan,
        Err(detail) => {
            run.finish(
                &mut run.shared.state(),
                Some(deployment_failed(vec![detail])),
            );
            return;
        }
    };
    if !run.apply(&config, &plan).await {
        return;
    }
    let mut state = run.shared.state();
    if complete && run.scope.resource_group.is_some() {
        let refused = remove_unplanned(&mut state, &run.scope, &plan);
        if !refused.is_empty() {
            run.finish(&mut state, Some(deployment_failed(refused)));
        }
    }
    run.finish(&mut state, None);
}

/// One running deployment: the record it drives and the operation it reports to.
struct DeploymentRun {
    shared: Arc<Shared>,
    scope: Scope,
    scope_key: String,
    name: String,
    generation: u64,
    operation: String,
}

impl DeploymentRun {
    fn record<'a>(&self, state: &'a mut State) -> Option<&'a mut DeploymentRecord> {
        state.deployment_mut(&self.scope_key, &self.name, self.generation)
    }

    /// Moves the accepted deployment to Running; false if it was canceled or replaced.
    fn start_running(&self) -> bool {
        let mut state = self.shared.state();
        let Some(record) = self.record(&mut state) else {
            return false;
        };
        if record.state != "Accepted" {
            return false;
        }
        record.state = "Running";
        state.set_operation(&self.operation, "Running", None);
        true
    }

    /// Ends the deployment, failed with `error` or succeeded without one, if it is
    /// still running.
    fn finish(&self, state: &mut State, error: Option<ArmError>) {
        if let Some(record) = self.record(state)
            && record.state == "Running"
        {
            let outcome = if error.is_some() {
                "Failed"
            } else {
                "Succeeded"
            };
            record.finish(outcome, error.clone());
            state.set_operation(&self.operation, outcome, error);
        }
    }

    /// Creates the planned resources in order, each after the configured latency;
    /// false once the deployment stopped (failed, canceled or replaced).
    async fn apply(&self, config: &CompiledConfig, plan: &[PlannedResource]) -> bool {
        let latency = &config.config.latency;
        for resource in plan {
            let started = Utc::now();
            if latency.per_resource_ms > 0 {
                tokio::time::sleep(Duration::from_millis(latency.per_resource_ms)).await;
            }
            let fault = resource_fault(config, resource, FaultStage::Deploy);
            let mut state = self.shared.state();
            let fault = fault.or_else(|| state.locks.refusal(LockedOperation::Write, &resource.id));
            let Some(record) = self.record(&mut state) else {
                return false;
            };
            if record.state != "Running" {
                return false;
            }
            let entry = operation_entry(&record.id, resource, started, fault.as_ref());
            record.operations.push(entry);
            if let Some(detail) = fault {
                self.finish(&mut state, Some(deployment_failed(vec![detail])));
                return false;
            }
            let correlation_id = record.correlation_id.clone();
            if state.apply(resource, &correlation_id)
                && let Some(record) = self.record(&mut state)
            {
                record.output_resources.push(resource.id.clone());
            }
        }
        true
    }
}

/// Complete mode: deletes what the scope holds that the plan does not declare
/// (nor is below something it declares), unless a lock refuses; returns the refusals.
fn remove_unplanned(
    state: &mut State,
    scope: &Scope,
    plan: &[PlannedResource],
) -> Vec<ErrorDetail> {
    let planned: std::collections::HashSet<String> = plan.iter().map(|r| key(&r.id)).collect();
    let stale: Vec<String> = state
        .inventory
        .under(&scope.id())
        .into_iter()
        .filter(|item| !planned.contains(&key(&item.id)))
        .filter(|item| {
            !planned
                .iter()
                .any(|p| key(&item.id).starts_with(&format!("{p}/")))
        })
        .map(|item| item.id.clone())
        .collect();
    let resource_group = scope.resource_group.as_deref().unwrap_or_default();
    tracing::debug!(resource_group = %resource_group, count = stale.len(), "complete mode removes resources");
    let mut refused = Vec::new();
    for id in stale {
        match state.locks.refusal(LockedOperation::Delete, &id) {
            Some(detail) => refused.push(detail),
            None => {
                state.remove(&id);
            }
        }
    }
    refused
}

pub(crate) fn get(shared: &Shared, scope: &Scope, name: &str) -> Handled {
    let state = shared.state();
    let record = state
        .deployments
        .get(&scope.key())
        .and_then(|records| records.get(&name.to_ascii_lowercase()))
        .ok_or_else(|| not_found(name))?;
    Ok(Reply::json(200, record.body()))
}

/// The scope's history, oldest first.
pub(crate) fn list(shared: &Shared, scope: &Scope) -> Handled {
    let state = shared.state();
    let value: Vec<Value> = state
        .deployments
        .get(&scope.key())
        .map(|records| records.values().map(DeploymentRecord::body).collect())
        .unwrap_or_default();
    Ok(Reply::json(200, json!({ "value": value })))
}

pub(crate) fn delete(
    shared: &Arc<Shared>,
    request: &ArmRequest,
    scope: &Scope,
    name: &str,
) -> Handled {
    let name_key = name.to_ascii_lowercase();
    let scope_key = scope.key();
    let (operation, generation) = {
        let mut state = shared.state();
        let Some(record) = state
            .deployments
            .get(&scope_key)
            .and_then(|records| records.get(&name_key))
        else {
            return Ok(Reply::empty(204));
        };
        if record.is_active() {
            return Err(active(name));
        }
        let generation = record.generation;
        (state.start_operation("Running", 204), generation)
    };
    let config = shared.config();
    let delay = Duration::from_millis(config.config.latency.delete_ms);
    let task_shared = shared.clone();
    let task_operation = operation.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut state = task_shared.state();
        if let Some(records) = state.deployments.get_mut(&scope_key)
            && records
                .get(&name_key)
                .is_some_and(|record| record.generation == generation)
        {
            records.shift_remove(&name_key);
        }
        state.set_operation(&task_operation, "Succeeded", None);
    });
    Ok(Reply::empty(202)
        .header(
            "location",
            operation_result_url(
                shared,
                &scope.subscription,
                &operation,
                request.api_version(),
            ),
        )
        .header("retry-after", config.config.retry_after_secs.to_string()))
}

pub(crate) fn cancel(shared: &Shared, scope: &Scope, name: &str) -> Handled {
    let mut state = shared.state();
    let record = state
        .deployments
        .get_mut(&scope.key())
        .and_then(|records| records.get_mut(&name.to_ascii_lowercase()))
        .ok_or_else(|| not_found(name))?;
    if !record.is_active() {
        return Err(ArmError::conflict(
            "DeploymentCannotBeCancelled",
            format!(
                "The deployment '{name}' cannot be cancelled because it is in '{}' state.",
                record.state
            ),
        ));
    }
    record.finish("Canceled", None);
    let operation = record.operation_id.clone();
    state.set_operation(&operation, "Canceled", None);
    Ok(Reply::empty(204))
}

pub(crate) fn validate(
    shared: &Shared,
    request: &ArmRequest,
    scope: &Scope,
    name: &str,
) -> Handled {
    validate_name("deployment", name, 64)?;
    let parts = template_request(request, scope)?;
    let context = context(shared, request, scope, name, parts.location.clone())?;
    let evaluated = evaluate_and_preflight(shared, &parts, &context)?;
    let validated: Vec<Value> = evaluated
        .resources
        .iter()
        .map(|r| json!({ "id": r.id }))
        .collect();
    let now = crate::lro::timestamp(Utc::now());
    Ok(Reply::json(
        200,
        json!({
            "id": deployment_id(scope, name),
            "name": name,
            "type": DEPLOYMENT_TYPE,
            "properties": {
                "templateHash": template_hash(&parts.template),
                "parameters": render_typed(&evaluated.parameters),
                "mode": parts.properties.get("mode").cloned().unwrap_or_else(|| json!("Incremental")),
                "provisioningState": "Succeeded",
                "timestamp": now,
                "duration": "PT0S",
                "correlationId": request.correlation_id,
                "validatedResources": validated,
            },
        }),
    ))
}

pub(crate) fn operations(shared: &Shared, scope: &Scope, name: &str) -> Handled {
    let state = shared.state();
    let record = state
        .deployments
        .get(&scope.key())
        .and_then(|records| records.get(&name.to_ascii_lowercase()))
        .ok_or_else(|| not_found(name))?;
    Ok(Reply::json(200, json!({ "value": record.operations })))
}

pub(crate) fn operation_status(shared: &Shared, operation: &str) -> Handled {
    let state = shared.state();
    let op = state.operations.get(operation).ok_or_else(|| {
        ArmError::not_found(
            "OperationNotFound",
            format!("The operation '{operation}' could not be found."),
        )
    })?;
    let reply = Reply::json(200, op.status_body(operation));
    Ok(if is_terminal(&op.status) {
        reply
    } else {
        reply.header(
            "retry-after",
            shared.config().config.retry_after_secs.to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_arm_rules() {
        assert!(validate_name("deployment", "my-dep_1.(x)", 64).is_ok());
        assert!(validate_name("deployment", "bad/name", 64).is_err());
        assert!(validate_name("deployment", &"a".repeat(65), 64).is_err());
        assert!(validate_name("deployment", "", 64).is_err());
    }

    fn record(n: usize, active: bool) -> DeploymentRecord {
        let mut record = DeploymentRecord {
            id: format!("d{n}"),
            name: format!("d{n}"),
            location: None,
            tags: None,
            mode: "Incremental".into(),
            state: "Succeeded",
            generation: n as u64,
            operation_id: String::new(),
            correlation_id: String::new(),
            template_hash: String::new(),
            started: Utc::now(),
            ended: None,
            parameters: json!({}),
            outputs_on_success: json!({}),
            output_resources: vec![],
            error: None,
            operations: vec![],
        };
        if active {
            record.state = "Running";
        }
        record
    }

    #[test]
    fn history_is_trimmed_oldest_finished_first_and_capped() {
        let mut records = indexmap::IndexMap::new();
        for n in 0..HISTORY_TRIM_ABOVE {
            records.insert(format!("d{n}"), record(n, n == 0));
        }
        trim_history(&mut records).unwrap();
        assert_eq!(records.len(), HISTORY_TRIM_TO - 1);
        assert!(records.contains_key("d0"), "running deployments are kept");
        assert!(!records.contains_key("d1"));
        let mut running = indexmap::IndexMap::new();
        for n in 0..HISTORY_MAX {
            running.insert(format!("d{n}"), record(n, true));
        }
        assert_eq!(
            trim_history(&mut running).unwrap_err().code,
            "DeploymentQuotaExceeded"
        );
    }
}
