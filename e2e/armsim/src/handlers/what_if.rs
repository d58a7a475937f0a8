//! What-if: the changes a deployment would make, reported as a long-running
//! operation's result without touching the inventory.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::deployments::{
    context, evaluate_and_preflight, operation_result_url, template_request, validate_name,
};
use crate::http::{ArmRequest, Handled, Reply};
use crate::route::{Scope, key};
use crate::shared::Shared;
use crate::state::deployment::DEPLOYMENT_TYPE;
use crate::template::{self, PlannedResource};

pub(crate) fn what_if(
    shared: &Arc<Shared>,
    request: &ArmRequest,
    scope: &Scope,
    name: &str,
) -> Handled {
    validate_name("deployment", name, 64)?;
    let parts = template_request(request, scope)?;
    let context = context(shared, request, scope, name, parts.location.clone())?;
    let evaluated = evaluate_and_preflight(shared, &parts, &context)?;
    let complete = parts
        .properties
        .get("mode")
        .and_then(Value::as_str)
        .is_some_and(|m| m.eq_ignore_ascii_case("Complete"));
    let changes = changes(
        shared,
        scope,
        &evaluated.resources,
        complete,
        &context.tenant_id,
    );
    let result = Bytes::from(
        json!({
            "status": "Succeeded",
            "properties": { "changes": changes },
        })
        .to_string(),
    );
    let operation = {
        let mut state = shared.state();
        let operation = state.start_operation("Running", 200);
        state.operations.set_result(&operation, result);
        operation
    };
    let config = shared.config();
    let delay = Duration::from_millis(config.config.latency.what_if_ms);
    let task_shared = shared.clone();
    let task_operation = operation.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        task_shared
            .state()
            .set_operation(&task_operation, "Succeeded", None);
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

/// Every change the planned resources make, then the other resources of the resource
/// group (`Ignore`, or `Delete` in `Complete` mode), against the current inventory.
fn changes(
    shared: &Shared,
    scope: &Scope,
    planned: &[PlannedResource],
    complete: bool,
    tenant_id: &str,
) -> Vec<Value> {
    let state = shared.state();
    let resources: Vec<&PlannedResource> = planned
        .iter()
        .filter(|r| !r.resource_type.eq_ignore_ascii_case(DEPLOYMENT_TYPE))
        .collect();
    let mut changes: Vec<Value> = resources
        .iter()
        .map(|r| {
            let before = state.inventory.get(&r.id).map(|item| item.body.clone());
            change(r, before, tenant_id)
        })
        .collect();
    if scope.resource_group.is_some() {
        let declared: std::collections::HashSet<String> =
            resources.iter().map(|r| key(&r.id)).collect();
        changes.extend(
            state
                .inventory
                .under(&scope.id())
                .into_iter()
                .filter(|item| !declared.contains(&key(&item.id)))
                .map(|item| {
                    // As in ARM, an ignored resource is named, not described.
                    if complete {
                        json!({ "resourceId": item.id, "changeType": "Delete", "before": item.body })
                    } else {
                        json!({ "resourceId": item.id, "changeType": "Ignore" })
                    }
                }),
        );
    }
    changes
}

/// Top-level fields that name a resource rather than describe it: never a change.
const IDENTITY_FIELDS: [&str; 4] = ["id", "name", "type", "apiVersion"];

/// One what-if change: Create, NoChange or Modify (with the property delta). `before` is
/// what a GET returns; the values only the service sets (endpoints, principal ids,
/// `provisioningState`) are filled in as the resource provider reports them, so that a
/// resource written out of band compares like one the deployment created.
fn change(resource: &PlannedResource, before: Option<Value>, tenant_id: &str) -> Value {
    match before {
        None => json!({
            "resourceId": resource.id,
            "changeType": "Create",
            "after": resource.body,
        }),
        Some(mut before) => {
            if let Some(object) = before.as_object_mut() {
                template::synthesize_runtime(
                    object,
                    &resource.id,
                    &resource.resource_type,
                    tenant_id,
                );
            }
            let mut delta = Vec::new();
            diff("", &before, &resource.body, &mut delta);
            json!({
                "resourceId": resource.id,
                "changeType": if delta.is_empty() { "NoChange" } else { "Modify" },
                "before": before,
                "after": resource.body,
                "delta": delta,
            })
        }
    }
}

/// Property changes from `before` (Azure) to `after` (the template), as ARM's what-if
/// reports them: `Create` for a declared property Azure lacks, `Delete` for one Azure
/// has that the template does not declare, `Modify` for a different value (arrays are
/// compared whole).
fn diff(path: &str, before: &Value, after: &Value, out: &mut Vec<Value>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let child = |k: &str| {
                if path.is_empty() {
                    k.to_owned()
                } else {
                    format!("{path}.{k}")
                }
            };
            let named = |k: &str| path.is_empty() && IDENTITY_FIELDS.contains(&k);
            for (k, after_value) in a.iter().filter(|(k, _)| !named(k)) {
                match b.get(k) {
                    None => out.push(json!({ "path": child(k), "propertyChangeType": "Create", "after": after_value })),
                    Some(before_value) => diff(&child(k), before_value, after_value, out),
                }
            }
            for (k, before_value) in b.iter().filter(|(k, _)| !named(k)) {
                if !a.contains_key(k) {
                    out.push(json!({ "path": child(k), "propertyChangeType": "Delete", "before": before_value }));
                }
            }
        }
        (b, a) if b != a => out.push(json!({
            "path": path,
            "propertyChangeType": "Modify",
            "before": b,
            "after": a,
        })),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_created_modified_and_deleted_properties() {
        let before = json!({
            "id": "/x", "location": "westeurope",
            "properties": { "a": 1, "b": 2, "set": 3 }, "tags": { "extra": "1" }
        });
        let after = json!({
            "id": "/x", "apiVersion": "2023-01-01", "location": "westeurope",
            "properties": { "a": 1, "b": 5, "c": 1 }, "tags": {}
        });
        let mut delta = Vec::new();
        diff("", &before, &after, &mut delta);
        assert_eq!(
            delta,
            vec![
                json!({ "path": "properties.b", "propertyChangeType": "Modify", "before": 2, "after": 5 }),
                json!({ "path": "properties.c", "propertyChangeType": "Create", "after": 1 }),
                json!({ "path": "properties.set", "propertyChangeType": "Delete", "before": 3 }),
                json!({ "path": "tags.extra", "propertyChangeType": "Delete", "before": "1" }),
            ]
        );
    }

    #[test]
    fn a_resource_written_out_of_band_as_declared_is_no_change() {
        let id =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct";
        let mut declared = serde_json::Map::new();
        declared.insert("location".into(), json!("westeurope"));
        declared.insert("sku".into(), json!({ "name": "Standard_LRS" }));
        let mut after = declared.clone();
        template::synthesize_runtime(&mut after, id, "Microsoft.Storage/storageAccounts", "t");
        let planned = PlannedResource {
            id: id.into(),
            resource_type: "Microsoft.Storage/storageAccounts".into(),
            name: "acct".into(),
            api_version: "2023-01-01".into(),
            body: Value::Object(after),
            depends_on: vec![],
        };
        let unchanged = change(&planned, Some(Value::Object(declared.clone())), "t");
        assert_eq!(unchanged["changeType"], "NoChange", "{unchanged}");
        declared.insert("sku".into(), json!({ "name": "Standard_GRS" }));
        let modified = change(&planned, Some(Value::Object(declared)), "t");
        assert_eq!(modified["changeType"], "Modify");
        assert_eq!(modified["delta"][0]["path"], "sku.name");
    }
}
