//! Deployment stacks: a deployment whose resources ARM manages as a set, deleting
//! or detaching the ones a later template no longer declares.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::deployments::{
    RunPlan, context, evaluate_for_run, operation_result_url, template_request, validate_name,
};
use crate::config::{CompiledConfig, FaultStage};
use crate::error::{ArmError, ErrorDetail, deployment_failed};
use crate::faults::resource_fault;
use crate::http::{ArmRequest, Handled, Reply};
use crate::route::{Scope, key};
use crate::shared::Shared;
use crate::state::deployment::{DEPLOYMENT_TYPE, render_typed};
use crate::state::lock::LockedOperation;
use crate::state::stack::{STACK_TYPE, StackRecord, Unmanage, UnmanageActions};
use crate::state::{RESOURCE_GROUP_TYPE, State};
use crate::template::PlannedResource;

/// What `actions` do to `id`: the resource group action for resource groups.
fn unmanage_action(actions: &UnmanageActions, id: &str, state: &State) -> Unmanage {
    let is_group = state
        .inventory
        .get(id)
        .is_some_and(|item| item.resource_type.eq_ignore_ascii_case(RESOURCE_GROUP_TYPE));
    if is_group {
        actions.resource_groups
    } else {
        actions.resources
    }
}

fn stack_id(scope: &Scope, name: &str) -> String {
    format!("{}/providers/{STACK_TYPE}/{name}", scope.id())
}

fn not_found(name: &str) -> ArmError {
    ArmError::not_found(
        "DeploymentStackResourceNotFound",
        format!("The deployment stack '{name}' was not found."),
    )
}

fn in_progress(name: &str) -> ArmError {
    ArmError::conflict(
        "DeploymentStackInProgress",
        format!(
            "The deployment stack '{name}' has an operation in progress. Wait for it to complete."
        ),
    )
}

/// A stack operation whose resource deletes were refused (locked resources).
fn delete_resources_failed(refused: &[(String, ErrorDetail)]) -> ArmError {
    ArmError::new(
        400,
        "DeploymentStackDeleteResourcesFailed",
        "One or more resources could not be deleted. See the stack's failedResources for details.",
    )
    .with_details(refused.iter().map(|(_, detail)| detail.clone()).collect())
}

/// Deletes each resource the actions say to delete, unless a lock refuses it.
/// Returns the deleted ids and the refused ones with why.
fn delete_unless_locked(
    state: &mut State,
    ids: impl Iterator<Item = String>,
    actions: UnmanageActions,
) -> (Vec<String>, Vec<String>, Vec<(String, ErrorDetail)>) {
    let mut deleted = Vec::new();
    let mut detached = Vec::new();
    let mut refused = Vec::new();
    for id in ids {
        if unmanage_action(&actions, &id, state) == Unmanage::Detach {
            detached.push(id);
        } else if let Some(detail) = state.locks.refusal(LockedOperation::Delete, &id) {
            refused.push((id, detail));
        } else {
            state.remove(&id);
            deleted.push(id);
        }
    }
    (deleted, detached, refused)
}

fn status_url(shared: &Shared, scope: &Scope, operation: &str, api_version: &str) -> String {
    format!(
        "{}/subscriptions/{}/providers/Microsoft.Resources/operationStatuses/{operation}?api-version={api_version}",
        shared.endpoint, scope.subscription
    )
}

/// The stack's `actionOnUnmanage` and `denySettings` as sent, and the parsed actions.
fn stack_settings(
    properties: &Map<String, Value>,
) -> Result<(&Value, UnmanageActions, &Value), ArmError> {
    let Some(action_on_unmanage) = properties.get("actionOnUnmanage").filter(|v| v.is_object())
    else {
        return Err(ArmError::bad_request(
            "InvalidRequestContent",
            "The request content was invalid: 'properties.actionOnUnmanage' is required.",
        ));
    };
    let actions = UnmanageActions {
        resources: Unmanage::parse(
            "actionOnUnmanage.resources",
            Some(action_on_unmanage["resources"].as_str().ok_or_else(|| {
                ArmError::bad_request(
                    "InvalidRequestContent",
                    "The request content was invalid: 'properties.actionOnUnmanage.resources' is required.",
                )
            })?),
        )?,
        resource_groups: Unmanage::parse(
            "actionOnUnmanage.resourceGroups",
            action_on_unmanage["resourceGroups"].as_str(),
        )?,
    };
    let Some(deny_settings) = properties
        .get("denySettings")
        .filter(|v| v["mode"].is_string())
    else {
        return Err(ArmError::bad_request(
            "InvalidRequestContent",
            "The request content was invalid: 'properties.denySettings.mode' is required.",
        ));
    };
    Ok((action_on_unmanage, actions, deny_settings))
}

pub(crate) fn put(
    shared: &Arc<Shared>,
    request: &ArmRequest,
    scope: &Scope,
    name: &str,
) -> Handled {
    validate_name("deployment stack", name, 90)?;
    let parts = template_request(request, scope)?;
    let (action_on_unmanage, actions, deny_settings) = stack_settings(&parts.properties)?;
    let context = context(shared, request, scope, name, parts.location.clone())?;
    let stack_key = key(&stack_id(scope, name));
    let existing_active = |shared: &Shared| {
        shared
            .state()
            .stacks
            .get(&stack_key)
            .is_some_and(StackRecord::is_active)
    };
    if existing_active(shared) {
        return Err(in_progress(name));
    }
    let (evaluated, plan) = evaluate_for_run(shared, &parts, &context)?;

    let (status, body, operation, generation, previous) = {
        let mut state = shared.state();
        let existing = state.stacks.get(&stack_key);
        if existing.is_some_and(StackRecord::is_active) {
            return Err(in_progress(name));
        }
        let status = if existing.is_some() { 200 } else { 201 };
        let previous = existing.map(|s| s.resources.clone()).unwrap_or_default();
        let operation = state.start_operation("initializing", 200);
        let generation = state.next_generation();
        let started = Utc::now();
        let record = StackRecord {
            id: stack_id(scope, name),
            name: name.to_owned(),
            location: parts.location.clone(),
            tags: parts.tags.clone(),
            state: "initializing",
            generation,
            correlation_id: request.correlation_id.clone(),
            started,
            ended: None,
            action_on_unmanage: action_on_unmanage.clone(),
            deny_settings: deny_settings.clone(),
            parameters: render_typed(&evaluated.parameters),
            outputs_on_success: render_typed(&evaluated.outputs),
            resources: previous.clone(),
            detached: Vec::new(),
            deleted: Vec::new(),
            failed: Vec::new(),
            delete_failed: Vec::new(),
            error: None,
            deployment_id: stack_deployment_id(scope, name, started),
        };
        let body = record.body();
        state.stacks.insert(stack_key.clone(), record);
        (status, body, operation, generation, previous)
    };
    tokio::spawn(run(
        shared.clone(),
        stack_key,
        generation,
        operation.clone(),
        plan,
        previous,
        actions,
    ));
    Ok(Reply::json(status, body)
        .header(
            "azure-asyncoperation",
            status_url(shared, scope, &operation, request.api_version()),
        )
        .header(
            "retry-after",
            shared.config().config.retry_after_secs.to_string(),
        ))
}

/// The id of the deployment a stack operation started at `started` runs as.
fn stack_deployment_id(scope: &Scope, name: &str, started: DateTime<Utc>) -> String {
    format!(
        "{}/providers/{DEPLOYMENT_TYPE}/{name}-{}",
        scope.id(),
        started.format("%Y%m%d%H%M%S")
    )
}

fn stack_mut<'a>(
    state: &'a mut State,
    stack_key: &str,
    generation: u64,
) -> Option<&'a mut StackRecord> {
    state
        .stacks
        .get_mut(stack_key)
        .filter(|s| s.generation == generation)
}

/// Drives a stack PUT: deploy the template, then delete or detach what it no
/// longer declares.
async fn run(
    shared: Arc<Shared>,
    stack_key: String,
    generation: u64,
    operation: String,
    plan: RunPlan,
    previous: Vec<String>,
    actions: UnmanageActions,
) {
    let config = shared.config();
    let latency = &config.config.latency;
    let run = StackRun {
        shared,
        stack_key,
        generation,
        operation,
    };
    tokio::time::sleep(Duration::from_millis(latency.accepted_ms)).await;
    if !run.set_state("deploying") {
        return;
    }
    tokio::time::sleep(Duration::from_millis(latency.running_ms)).await;
    let plan = match plan {
        Ok(plan) => plan,
        Err(detail) => {
            run.fail(&mut run.shared.state(), deployment_failed(vec![detail]));
            return;
        }
    };
    let Some(managed) = run.apply(&config, &plan).await else {
        return;
    };
    let kept: HashSet<String> = managed.iter().map(|id| key(id)).collect();
    let unmanaged: Vec<String> = previous
        .into_iter()
        .filter(|id| !kept.contains(&key(id)))
        .collect();
    if !unmanaged.is_empty() {
        if !run.set_state("deletingResources") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(latency.delete_ms)).await;
    }
    run.settle(&mut run.shared.state(), managed, unmanaged, actions);
}

/// One running stack operation: the record it drives and the operation it reports to.
struct StackRun {
    shared: Arc<Shared>,
    stack_key: String,
    generation: u64,
    operation: String,
}

impl StackRun {
    fn stack<'a>(&self, state: &'a mut State) -> Option<&'a mut StackRecord> {
        stack_mut(state, &self.stack_key, self.generation)
    }

    /// Moves the stack to `state_name`; false if it was replaced.
    fn set_state(&self, state_name: &'static str) -> bool {
        let mut state = self.shared.state();
        let Some(stack) = self.stack(&mut state) else {
            return false;
        };
        stack.state = state_name;
        state.set_operation(&self.operation, state_name, None);
        true
    }

    /// Fails the stack operation with `error` unless the stack was replaced.
    fn fail(&self, state: &mut State, error: ArmError) {
        if let Some(stack) = self.stack(state) {
            stack.finish("failed", Some(error.clone()));
            state.set_operation(&self.operation, "failed", Some(error));
        }
    }

    /// Creates the planned resources in order; the ids it manages now, or `None`
    /// once the operation stopped (a resource failed, or the stack was replaced).
    async fn apply(
        &self,
        config: &CompiledConfig,
        plan: &[PlannedResource],
    ) -> Option<Vec<String>> {
        let latency = &config.config.latency;
        let mut managed: Vec<String> = Vec::new();
        for resource in plan {
            if latency.per_resource_ms > 0 {
                tokio::time::sleep(Duration::from_millis(latency.per_resource_ms)).await;
            }
            let fault = resource_fault(config, resource, FaultStage::Deploy);
            let mut state = self.shared.state();
            let fault = fault.or_else(|| state.locks.refusal(LockedOperation::Write, &resource.id));
            let stack = self.stack(&mut state)?;
            if let Some(detail) = fault {
                let mut resources = stack.resources.clone();
                let known: HashSet<String> = resources.iter().map(|id| key(id)).collect();
                resources.extend(managed.into_iter().filter(|id| !known.contains(&key(id))));
                stack.resources = resources;
                stack.failed.push((resource.id.clone(), detail.clone()));
                self.fail(&mut state, deployment_failed(vec![detail]));
                return None;
            }
            let correlation_id = stack.correlation_id.clone();
            if state.apply(resource, &correlation_id) {
                managed.push(resource.id.clone());
            }
        }
        Some(managed)
    }

    /// Ends an operation whose resources are deployed: deletes or detaches the
    /// ones no longer declared and records the outcome.
    fn settle(
        &self,
        state: &mut State,
        managed: Vec<String>,
        unmanaged: Vec<String>,
        actions: UnmanageActions,
    ) {
        let (deleted, detached, refused) =
            delete_unless_locked(state, unmanaged.into_iter().rev(), actions);
        let Some(stack) = self.stack(state) else {
            return;
        };
        stack.resources = managed;
        stack.deleted = deleted;
        stack.detached = detached;
        if refused.is_empty() {
            stack.finish("succeeded", None);
            state.set_operation(&self.operation, "succeeded", None);
            return;
        }
        let error = delete_resources_failed(&refused);
        stack
            .resources
            .extend(refused.iter().map(|(id, _)| id.clone()));
        stack.delete_failed = refused.iter().map(|(id, _)| id.clone()).collect();
        stack.failed = refused;
        stack.finish("failed", Some(error.clone()));
        state.set_operation(&self.operation, "failed", Some(error));
    }
}

pub(crate) fn get(shared: &Shared, scope: &Scope, name: &str) -> Handled {
    let state = shared.state();
    let stack = state
        .stacks
        .get(&key(&stack_id(scope, name)))
        .ok_or_else(|| not_found(name))?;
    Ok(Reply::json(200, stack.body()))
}

/// Deletes (or detaches) what a stack being deleted manages; removes the stack
/// unless a lock refused a delete, which leaves it failed with what is left.
fn finish_delete(
    state: &mut State,
    stack_key: &str,
    generation: u64,
    operation: &str,
    actions: UnmanageActions,
) {
    let Some(stack) = state
        .stacks
        .get(stack_key)
        .filter(|s| s.generation == generation)
    else {
        return;
    };
    let managed = stack.resources.clone();
    let (deleted, _, refused) = delete_unless_locked(state, managed.into_iter().rev(), actions);
    if refused.is_empty() {
        state.stacks.remove(stack_key);
        state.set_operation(operation, "succeeded", None);
        return;
    }
    // ARM keeps a stack whose resources could not all be deleted, failed,
    // still managing what is left.
    let error = delete_resources_failed(&refused);
    if let Some(stack) = state.stacks.get_mut(stack_key) {
        let gone: HashSet<String> = deleted.iter().map(|id| key(id)).collect();
        stack.resources.retain(|id| !gone.contains(&key(id)));
        stack.deleted = deleted;
        stack.delete_failed = refused.iter().map(|(id, _)| id.clone()).collect();
        stack.failed = refused;
        stack.finish("failed", Some(error.clone()));
    }
    state.set_operation(operation, "failed", Some(error));
}

pub(crate) fn delete(
    shared: &Arc<Shared>,
    request: &ArmRequest,
    scope: &Scope,
    name: &str,
) -> Handled {
    let actions = UnmanageActions {
        resources: Unmanage::parse(
            "unmanageAction.Resources",
            request
                .query
                .get("unmanageaction.resources")
                .map(String::as_str),
        )?,
        resource_groups: Unmanage::parse(
            "unmanageAction.ResourceGroups",
            request
                .query
                .get("unmanageaction.resourcegroups")
                .map(String::as_str),
        )?,
    };
    let stack_key = key(&stack_id(scope, name));
    let (operation, generation) = {
        let mut state = shared.state();
        let Some(stack) = state.stacks.get_mut(&stack_key) else {
            return Ok(Reply::empty(204));
        };
        if stack.is_active() {
            return Err(in_progress(name));
        }
        stack.state = "deleting";
        stack.ended = None;
        let generation = stack.generation;
        (state.start_operation("deleting", 200), generation)
    };
    let config = shared.config();
    let delay = Duration::from_millis(config.config.latency.delete_ms);
    let task_shared = shared.clone();
    let task_operation = operation.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut state = task_shared.state();
        finish_delete(&mut state, &stack_key, generation, &task_operation, actions);
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
