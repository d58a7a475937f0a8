//! Resource groups, resources by id, providers, and `Location` polling.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::deployments::{operation_result_url, operation_status, validate_name};
use crate::error::{ArmError, resource_group_not_found};
use crate::http::{ArmRequest, Handled, Reply};
use crate::inventory::InventoryItem;
use crate::lro::is_terminal;
use crate::providers;
use crate::route::Scope;
use crate::shared::Shared;
use crate::state::lock::LockedOperation;
use crate::state::{RESOURCE_GROUP_TYPE, State};
use crate::template::PlannedResource;

fn group_scope(subscription: &str, name: &str) -> Scope {
    Scope {
        subscription: subscription.to_owned(),
        resource_group: Some(name.to_owned()),
    }
}

fn is_deleting(item: &InventoryItem) -> bool {
    item.body.pointer("/properties/provisioningState") == Some(&json!("Deleting"))
}

pub(crate) fn put_group(
    shared: &Shared,
    request: &ArmRequest,
    subscription: &str,
    name: &str,
) -> Handled {
    if validate_name("resource group", name, 90).is_err() || name.ends_with('.') {
        return Err(ArmError::bad_request(
            "InvalidResourceGroup",
            format!(
                "The provided resource group name '{name}' has these invalid characters or is too long."
            ),
        ));
    }
    let body = request.json_body()?;
    let Some(location) = body
        .get("location")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
    else {
        return Err(ArmError::bad_request(
            "LocationRequired",
            "The location property is required for this definition.",
        ));
    };
    let tags = match body.get("tags") {
        None | Some(Value::Null) => json!({}),
        Some(tags @ Value::Object(map)) if map.values().all(Value::is_string) => tags.clone(),
        Some(_) => {
            return Err(ArmError::bad_request(
                "InvalidRequestContent",
                "The request content was invalid: 'tags' must be an object of strings.",
            ));
        }
    };
    let id = group_scope(subscription, name).id();
    let mut state = shared.state();
    let (status, stored_name) = match state.inventory.get(&id) {
        Some(existing) if is_deleting(existing) => {
            return Err(ArmError::conflict(
                "ResourceGroupBeingDeleted",
                format!(
                    "The resource group '{name}' is in deprovisioning state and cannot perform this operation."
                ),
            ));
        }
        Some(existing) => {
            let existing_location = existing.body["location"].as_str().unwrap_or_default();
            if normalise_location(existing_location) != normalise_location(location) {
                return Err(ArmError::conflict(
                    "InvalidResourceGroupLocation",
                    format!(
                        "Invalid resource group location '{location}'. The Resource group already exists in location '{existing_location}'."
                    ),
                ));
            }
            (
                200,
                existing.body["name"].as_str().unwrap_or(name).to_owned(),
            )
        }
        None => (201, name.to_owned()),
    };
    let stored_id = group_scope(subscription, &stored_name).id();
    state.locks.check(LockedOperation::Write, &stored_id)?;
    let group = json!({
        "id": stored_id,
        "name": stored_name,
        "type": RESOURCE_GROUP_TYPE,
        "location": normalise_location(location),
        "tags": tags,
        "properties": { "provisioningState": "Succeeded" },
    });
    state.inventory.put(InventoryItem {
        id: stored_id,
        resource_type: RESOURCE_GROUP_TYPE.into(),
        body: group.clone(),
    });
    Ok(Reply::json(status, group))
}

/// ARM stores locations as lower-case names without spaces (`West Europe` → `westeurope`).
fn normalise_location(location: &str) -> String {
    location.replace(' ', "").to_ascii_lowercase()
}

pub(crate) fn get_group(
    shared: &Shared,
    request: &ArmRequest,
    subscription: &str,
    name: &str,
) -> Handled {
    let state = shared.state();
    let group = state
        .inventory
        .get(&group_scope(subscription, name).id())
        .ok_or_else(|| resource_group_not_found(name))?;
    if request.method == hyper::Method::HEAD {
        return Ok(Reply::empty(204));
    }
    Ok(Reply::json(200, group.body.clone()))
}

pub(crate) fn list_groups(shared: &Shared, subscription: &str) -> Handled {
    let state = shared.state();
    let groups: Vec<Value> = state
        .inventory
        .under(&format!("/subscriptions/{subscription}/resourceGroups"))
        .into_iter()
        .filter(|item| item.resource_type.eq_ignore_ascii_case(RESOURCE_GROUP_TYPE))
        .map(|item| item.body.clone())
        .collect();
    Ok(Reply::json(200, json!({ "value": groups })))
}

pub(crate) fn delete_group(
    shared: &Arc<Shared>,
    request: &ArmRequest,
    subscription: &str,
    name: &str,
) -> Handled {
    let scope = group_scope(subscription, name);
    let operation = {
        let mut state = shared.state();
        let group = state
            .inventory
            .get_mut(&scope.id())
            .ok_or_else(|| resource_group_not_found(name))?;
        let group_id = group.id.clone();
        state.locks.check(LockedOperation::Delete, &group_id)?;
        if let Some(group) = state.inventory.get_mut(&group_id) {
            group.body["properties"]["provisioningState"] = json!("Deleting");
        }
        state.start_operation("Running", 200)
    };
    let config = shared.config();
    let delay = Duration::from_millis(config.config.latency.delete_ms);
    let task_shared = shared.clone();
    let task_operation = operation.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut state = task_shared.state();
        state.remove(&scope.id());
        state.set_operation(&task_operation, "Succeeded", None);
    });
    Ok(Reply::empty(202)
        .header(
            "location",
            operation_result_url(shared, subscription, &operation, request.api_version()),
        )
        .header("retry-after", config.config.retry_after_secs.to_string()))
}

pub(crate) fn provider(subscription: &str, namespace: &str) -> Handled {
    providers::provider_body(subscription, namespace)
        .map(|body| Reply::json(200, body))
        .ok_or_else(|| {
            ArmError::not_found(
                "InvalidResourceNamespace",
                format!("The resource namespace '{namespace}' is invalid."),
            )
        })
}

fn check_api_version(request: &ArmRequest, resource_type: &str) -> Result<(), ArmError> {
    if providers::accepts_api_version(resource_type, request.api_version()) {
        Ok(())
    } else {
        Err(ArmError::bad_request(
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for API version '{}' and type '{resource_type}'.",
                request.api_version()
            ),
        ))
    }
}

/// 404 for a missing resource, or for its missing resource group, as ARM tells them apart.
pub(crate) fn missing(state: &State, id: &str, resource_type: &str) -> ArmError {
    if let Some(rg) = missing_group(state, id) {
        return resource_group_not_found(&rg);
    }
    let name = id.rsplit('/').next().unwrap_or_default();
    ArmError::not_found(
        "ResourceNotFound",
        format!("The Resource '{resource_type}/{name}' was not found."),
    )
}

pub(crate) fn get_resource(
    shared: &Shared,
    request: &ArmRequest,
    id: &str,
    resource_type: &str,
) -> Handled {
    check_api_version(request, resource_type)?;
    let state = shared.state();
    match state.inventory.get(id) {
        Some(item) => Ok(Reply::json(200, item.body.clone())),
        None => Err(missing(&state, id, resource_type)),
    }
}

/// Creates or replaces one resource by id, as its provider's PUT does. The
/// stored body is the request's with ARM's `id`, `name`, `type` and
/// `provisioningState`.
pub(crate) fn put_resource(
    shared: &Shared,
    request: &ArmRequest,
    id: &str,
    resource_type: &str,
) -> Handled {
    check_api_version(request, resource_type)?;
    let mut body = request.json_body()?;
    for field in ["id", "name", "type"] {
        body.remove(field);
    }
    let mut state = shared.state();
    if let Some(rg) = missing_group(&state, id) {
        return Err(resource_group_not_found(&rg));
    }
    let segments: Vec<&str> = id.split('/').collect();
    let name = segments.last().copied().unwrap_or_default().to_owned();
    if let Some(error) = providers::name_error(resource_type, &name) {
        return Err(ArmError::bad_request(error.code, error.message));
    }
    if resource_type.matches('/').count() > 1 {
        let parent = segments[..segments.len() - 2].join("/");
        if !state.inventory.contains(&parent) {
            let parent_name = segments[segments.len() - 3];
            return Err(ArmError::not_found(
                "ParentResourceNotFound",
                format!(
                    "Can not perform requested operation on nested resource. Parent resource '{parent_name}' not found."
                ),
            ));
        }
    }
    state.locks.check(LockedOperation::Write, id)?;
    let status = if state.inventory.contains(id) {
        200
    } else {
        201
    };
    state.apply(
        &PlannedResource {
            id: id.to_owned(),
            resource_type: resource_type.to_owned(),
            name,
            api_version: request.api_version().to_owned(),
            body: Value::Object(body),
            depends_on: Vec::new(),
        },
        &request.correlation_id,
    );
    let stored = state
        .inventory
        .get(id)
        .map(|item| item.body.clone())
        .unwrap_or_default();
    Ok(Reply::json(status, stored))
}

pub(crate) fn delete_resource(
    shared: &Arc<Shared>,
    request: &ArmRequest,
    id: &str,
    resource_type: &str,
) -> Handled {
    check_api_version(request, resource_type)?;
    let subscription = request_subscription(id);
    let mut state = shared.state();
    if !state.inventory.contains(id) {
        if let Some(rg) = missing_group(&state, id) {
            return Err(resource_group_not_found(&rg));
        }
        return Ok(Reply::empty(204));
    }
    state.locks.check(LockedOperation::Delete, id)?;
    if !providers::deletes_async(resource_type) {
        state.remove(id);
        return Ok(Reply::empty(200));
    }
    if let Some(item) = state.inventory.get_mut(id)
        && let Some(properties) = item
            .body
            .get_mut("properties")
            .and_then(Value::as_object_mut)
    {
        properties.insert("provisioningState".into(), json!("Deleting"));
    }
    let operation = state.start_operation("Running", 200);
    drop(state);
    let config = shared.config();
    let delay = Duration::from_millis(config.config.latency.delete_ms);
    let task_shared = shared.clone();
    let task_operation = operation.clone();
    let task_id = id.to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let mut state = task_shared.state();
        state.remove(&task_id);
        state.set_operation(&task_operation, "Succeeded", None);
    });
    Ok(Reply::empty(202)
        .header(
            "location",
            operation_result_url(shared, &subscription, &operation, request.api_version()),
        )
        .header("retry-after", config.config.retry_after_secs.to_string()))
}

fn request_subscription(id: &str) -> String {
    id.split('/').nth(2).unwrap_or_default().to_owned()
}

fn missing_group(state: &State, id: &str) -> Option<String> {
    match crate::route::parse(id) {
        crate::route::Route::Resource {
            subscription,
            resource_group: Some(rg),
            ..
        } if !state
            .inventory
            .contains(&group_scope(&subscription, &rg).id()) =>
        {
            Some(rg)
        }
        _ => None,
    }
}

/// `Location` (`operationResults`) and `Azure-AsyncOperation` (`operationStatuses`) polls.
pub(crate) fn poll_operation(
    shared: &Shared,
    request: &ArmRequest,
    subscription: &str,
    id: &str,
    status: bool,
) -> Handled {
    if status {
        return operation_status(shared, id);
    }
    let state = shared.state();
    let op = state.operations.get(id).ok_or_else(|| {
        ArmError::not_found(
            "OperationNotFound",
            format!("The operation '{id}' could not be found."),
        )
    })?;
    if !is_terminal(&op.status) {
        return Ok(Reply::empty(202)
            .header(
                "location",
                operation_result_url(shared, subscription, id, request.api_version()),
            )
            .header(
                "retry-after",
                shared.config().config.retry_after_secs.to_string(),
            ));
    }
    if let Some(error) = &op.error {
        return Err(error.clone());
    }
    Ok(match &op.result {
        Some(result) => Reply::serialized_json(op.done_status, result.clone()),
        None => Reply::empty(op.done_status),
    })
}
