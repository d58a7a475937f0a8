//! Management lock requests: PUT, GET, DELETE and list at any scope.

use serde_json::{Value, json};

use crate::error::{ArmError, resource_group_not_found};
use crate::http::{ArmRequest, Handled, Reply};
use crate::providers;
use crate::route::Route;
use crate::shared::Shared;
use crate::state::State;
use crate::state::lock::{LOCK_TYPE, LockLevel, LockRecord, lock_id};

fn check_api_version(request: &ArmRequest) -> Result<(), ArmError> {
    if providers::accepts_api_version(LOCK_TYPE, request.api_version()) {
        return Ok(());
    }
    Err(ArmError::bad_request(
        "NoRegisteredProviderFound",
        format!(
            "No registered resource provider found for API version '{}' and type '{LOCK_TYPE}'.",
            request.api_version()
        ),
    ))
}

/// 404 when the scope to lock does not exist (subscriptions always do).
fn check_scope_exists(state: &State, scope: &str) -> Result<(), ArmError> {
    match crate::route::parse(scope) {
        Route::ResourceGroup { name, .. } if !state.inventory.contains(scope) => {
            Err(resource_group_not_found(&name))
        }
        Route::Resource {
            id, resource_type, ..
        } if !state.inventory.contains(&id) => {
            Err(super::resources::missing(state, &id, &resource_type))
        }
        _ => Ok(()),
    }
}

fn not_found(name: &str) -> ArmError {
    ArmError::not_found(
        "LockNotFound",
        format!("The lock '{name}' could not be found."),
    )
}

pub(crate) fn put(shared: &Shared, request: &ArmRequest, scope: &str, name: &str) -> Handled {
    check_api_version(request)?;
    if name.len() > 260 || name.contains(['<', '>', '*', '%', '&', ':', '\\', '?', '+']) {
        return Err(ArmError::bad_request(
            "InvalidLockName",
            format!(
                "The lock name '{name}' is invalid: at most 260 characters, none of < > * % & : \\ ? +."
            ),
        ));
    }
    let body = request.json_body()?;
    let properties = body.get("properties").filter(|p| p.is_object());
    let level = LockLevel::parse(properties.and_then(|p| p.get("level")))?;
    let notes = match properties.and_then(|p| p.get("notes")) {
        None | Some(Value::Null) => None,
        Some(Value::String(notes)) if notes.len() <= 512 => Some(notes.clone()),
        Some(_) => {
            return Err(ArmError::bad_request(
                "InvalidRequestContent",
                "The request content was invalid: 'properties.notes' must be a string of at most 512 characters.",
            ));
        }
    };
    let mut state = shared.state();
    check_scope_exists(&state, scope)?;
    let lock = LockRecord {
        id: lock_id(scope, name),
        name: name.to_owned(),
        scope: scope.to_owned(),
        level,
        notes,
    };
    let reply = lock.body();
    let existed = state.locks.put(lock);
    Ok(Reply::json(if existed { 200 } else { 201 }, reply))
}

pub(crate) fn get(shared: &Shared, request: &ArmRequest, scope: &str, name: &str) -> Handled {
    check_api_version(request)?;
    let state = shared.state();
    state
        .locks
        .get(&lock_id(scope, name))
        .map(|lock| Reply::json(200, lock.body()))
        .ok_or_else(|| not_found(name))
}

pub(crate) fn list(shared: &Shared, request: &ArmRequest, scope: &str) -> Handled {
    check_api_version(request)?;
    let state = shared.state();
    check_scope_exists(&state, scope)?;
    let locks: Vec<Value> = state
        .locks
        .at_or_below(scope)
        .into_iter()
        .map(LockRecord::body)
        .collect();
    Ok(Reply::json(200, json!({ "value": locks })))
}

pub(crate) fn delete(shared: &Shared, request: &ArmRequest, scope: &str, name: &str) -> Handled {
    check_api_version(request)?;
    let removed = shared.state().locks.remove(&lock_id(scope, name));
    Ok(Reply::empty(if removed.is_some() { 200 } else { 204 }))
}
