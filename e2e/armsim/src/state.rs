//! Everything the simulator remembers besides tokens and counters: the inventory,
//! deployment and stack records, and long-running operations.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::error::ArmError;
use crate::inventory::{Inventory, InventoryItem};
use crate::route::{Route, Scope};
use crate::template::{PlannedResource, TypedValue};

pub(crate) const DEPLOYMENT_TYPE: &str = "Microsoft.Resources/deployments";
pub(crate) const RESOURCE_GROUP_TYPE: &str = "Microsoft.Resources/resourceGroups";

#[derive(Debug, Default)]
pub(crate) struct State {
    pub inventory: Inventory,
    /// Deployment records by scope key, then lower-cased name, oldest first.
    pub deployments: HashMap<String, IndexMap<String, DeploymentRecord>>,
    /// Stacks by lower-cased stack id.
    pub stacks: HashMap<String, crate::stacks::StackRecord>,
    pub operations: HashMap<String, LongOp>,
    pub locks: crate::locks::Locks,
    generation: u64,
}

impl State {
    /// A number no other record has, so drivers notice their record was replaced.
    pub fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    pub fn start_operation(&mut self, status: &str, done_status: u16) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.operations.insert(
            id.clone(),
            LongOp {
                status: status.to_owned(),
                started: Utc::now(),
                ended: None,
                error: None,
                result: None,
                done_status,
            },
        );
        id
    }

    pub fn set_operation(&mut self, id: &str, status: &str, error: Option<ArmError>) {
        if let Some(op) = self.operations.get_mut(id) {
            op.status = status.to_owned();
            if is_terminal(status) {
                op.ended = Some(Utc::now());
            }
            op.error = error;
        }
    }

    pub fn deployment_mut(
        &mut self,
        scope_key: &str,
        name: &str,
        generation: u64,
    ) -> Option<&mut DeploymentRecord> {
        self.deployments
            .get_mut(scope_key)?
            .get_mut(&name.to_ascii_lowercase())
            .filter(|record| record.generation == generation)
    }

    /// Deletes a resource with everything below it, locks included; for a
    /// resource group that includes its deployment history and stacks.
    pub fn remove(&mut self, id: &str) -> Vec<String> {
        let removed = self.inventory.remove_tree(id);
        self.locks.remove_at_or_below(id);
        if let Route::ResourceGroup { subscription, name } = crate::route::parse(id) {
            let scope = Scope {
                subscription,
                resource_group: Some(name),
            };
            let scope_key = scope.key();
            self.deployments.remove(&scope_key);
            let prefix = format!("{scope_key}/");
            self.stacks
                .retain(|stack_key, _| !stack_key.starts_with(&prefix));
        }
        removed
    }

    /// Creates or updates one planned resource. Nested deployments become
    /// deployment records rather than inventory entries. Returns whether it is a
    /// resource that belongs in `outputResources`.
    pub fn apply(&mut self, resource: &PlannedResource, correlation_id: &str) -> bool {
        if resource.resource_type.eq_ignore_ascii_case(DEPLOYMENT_TYPE) {
            if let Route::Deployment { scope, name, .. } = crate::route::parse(&resource.id) {
                let generation = self.next_generation();
                let record = DeploymentRecord::nested(
                    &scope,
                    &name,
                    generation,
                    correlation_id,
                    resource.body.get("properties").unwrap_or(&Value::Null),
                );
                let records = self.deployments.entry(scope.key()).or_default();
                records.shift_remove(&name.to_ascii_lowercase());
                records.insert(name.to_ascii_lowercase(), record);
            }
            return false;
        }
        let mut body = resource.body.clone();
        if let Some(object) = body.as_object_mut() {
            object.entry("id").or_insert_with(|| json!(resource.id));
            object.entry("name").or_insert_with(|| json!(resource.name));
            object
                .entry("type")
                .or_insert_with(|| json!(resource.resource_type));
            let properties = object.entry("properties").or_insert_with(|| json!({}));
            if let Some(properties) = properties.as_object_mut() {
                properties
                    .entry("provisioningState")
                    .or_insert_with(|| json!("Succeeded"));
            }
        }
        self.inventory.put(InventoryItem {
            id: resource.id.clone(),
            resource_type: resource.resource_type.clone(),
            body,
        });
        true
    }
}

/// A long-running operation as its status URLs report it.
#[derive(Debug, Clone)]
pub(crate) struct LongOp {
    pub status: String,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    pub error: Option<ArmError>,
    /// Body of the final `Location` poll (what-if results).
    pub result: Option<Value>,
    /// Status of the final `Location` poll.
    pub done_status: u16,
}

impl LongOp {
    pub fn status_body(&self, id: &str) -> Value {
        let mut body = json!({
            "id": id,
            "name": id,
            "status": self.status,
            "startTime": timestamp(self.started),
        });
        if let Some(ended) = self.ended {
            body["endTime"] = json!(timestamp(ended));
        }
        if let Some(error) = &self.error {
            body["error"] = error.body();
        }
        body
    }
}

pub(crate) fn is_terminal(status: &str) -> bool {
    ["succeeded", "failed", "canceled"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(status))
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// ISO 8601 duration as ARM prints it (`PT1.234S`).
pub(crate) fn iso_duration(duration: Duration) -> String {
    format!("PT{:.3}S", duration.as_secs_f64())
}

pub(crate) fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

/// `{"name": {"type": "String", "value": ...}}`; secure values are never echoed.
pub(crate) fn render_typed(values: &IndexMap<String, TypedValue>) -> Value {
    let map: Map<String, Value> = values
        .iter()
        .map(|(name, typed)| {
            let mut entry = json!({ "type": typed.type_name });
            if !typed.type_name.to_ascii_lowercase().starts_with("secure") {
                entry["value"] = typed.value.clone();
            }
            (name.clone(), entry)
        })
        .collect();
    Value::Object(map)
}

/// A rendered `{"name": {"type", "value"}}` map with secure values dropped.
fn without_secure_values(typed: &Value) -> Value {
    let Some(map) = typed.as_object() else {
        return json!({});
    };
    Value::Object(
        map.iter()
            .map(|(name, entry)| {
                let secure = entry["type"]
                    .as_str()
                    .is_some_and(|t| t.to_ascii_lowercase().starts_with("secure"));
                let mut entry = entry.clone();
                if secure && let Some(object) = entry.as_object_mut() {
                    object.remove("value");
                }
                (name.clone(), entry)
            })
            .collect(),
    )
}

pub(crate) fn id_list(ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| json!({ "id": id })).collect())
}

/// One deployment's history record.
#[derive(Debug, Clone)]
pub(crate) struct DeploymentRecord {
    pub id: String,
    pub name: String,
    pub location: Option<String>,
    pub tags: Option<Value>,
    pub mode: String,
    pub state: &'static str,
    pub generation: u64,
    pub operation_id: String,
    pub correlation_id: String,
    pub template_hash: String,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    pub parameters: Value,
    /// Outputs reported once the deployment succeeded.
    pub outputs_on_success: Value,
    pub output_resources: Vec<String>,
    pub error: Option<ArmError>,
    pub operations: Vec<Value>,
}

impl DeploymentRecord {
    /// The record of a nested deployment, from the evaluator's body for it.
    fn nested(
        scope: &Scope,
        name: &str,
        generation: u64,
        correlation_id: &str,
        properties: &Value,
    ) -> Self {
        let now = Utc::now();
        let output_resources = properties["outputResources"]
            .as_array()
            .map(|resources| {
                resources
                    .iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            id: format!("{}/providers/{DEPLOYMENT_TYPE}/{name}", scope.id()),
            name: name.to_owned(),
            location: None,
            tags: None,
            mode: properties["mode"]
                .as_str()
                .unwrap_or("Incremental")
                .to_owned(),
            state: "Succeeded",
            generation,
            operation_id: String::new(),
            correlation_id: correlation_id.to_owned(),
            template_hash: String::new(),
            started: now,
            ended: Some(now),
            parameters: without_secure_values(&properties["parameters"]),
            outputs_on_success: without_secure_values(&properties["outputs"]),
            output_resources,
            error: None,
            operations: Vec::new(),
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self.state, "Accepted" | "Running")
    }

    pub fn finish(&mut self, state: &'static str, error: Option<ArmError>) {
        self.state = state;
        self.ended = Some(Utc::now());
        self.error = error;
    }

    pub fn body(&self) -> Value {
        let end = self.ended.unwrap_or_else(Utc::now);
        let mut properties = json!({
            "templateHash": self.template_hash,
            "parameters": self.parameters,
            "mode": self.mode,
            "provisioningState": self.state,
            "timestamp": timestamp(end),
            "duration": iso_duration(elapsed(self.started, end)),
            "correlationId": self.correlation_id,
            "providers": [],
            "dependencies": [],
            "outputResources": id_list(&self.output_resources),
        });
        if self.state == "Succeeded" {
            properties["outputs"] = self.outputs_on_success.clone();
        }
        if let Some(error) = &self.error {
            properties["error"] = error.body();
        }
        let mut body = json!({
            "id": self.id,
            "name": self.name,
            "type": DEPLOYMENT_TYPE,
            "properties": properties,
        });
        if let Some(location) = &self.location {
            body["location"] = json!(location);
        }
        if let Some(tags) = &self.tags {
            body["tags"] = tags.clone();
        }
        body
    }
}

/// ARM's entry in `GET .../operations` for one resource.
pub(crate) fn operation_entry(
    deployment_id: &str,
    resource: &PlannedResource,
    started: DateTime<Utc>,
    error: Option<&crate::error::ErrorDetail>,
) -> Value {
    let operation_id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let now = Utc::now();
    let (state, status_code, status_message) = match error {
        None => ("Succeeded", "OK".to_owned(), json!({ "status": "OK" })),
        Some(detail) => (
            "Failed",
            detail.code.clone(),
            json!({ "status": "Failed", "error": { "code": detail.code, "message": detail.message } }),
        ),
    };
    json!({
        "id": format!("{deployment_id}/operations/{operation_id}"),
        "operationId": operation_id,
        "properties": {
            "provisioningOperation": "Create",
            "provisioningState": state,
            "timestamp": timestamp(now),
            "duration": iso_duration(elapsed(started, now)),
            "trackingId": uuid::Uuid::new_v4(),
            "statusCode": status_code,
            "statusMessage": status_message,
            "targetResource": {
                "id": resource.id,
                "resourceType": resource.resource_type,
                "resourceName": resource.name,
                "apiVersion": resource.api_version,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_values_are_not_rendered() {
        let mut values = IndexMap::new();
        values.insert(
            "name".to_owned(),
            TypedValue {
                type_name: "String".into(),
                value: json!("x"),
            },
        );
        values.insert(
            "password".to_owned(),
            TypedValue {
                type_name: "SecureString".into(),
                value: json!("hunter2"),
            },
        );
        let rendered = render_typed(&values);
        assert_eq!(rendered["name"], json!({ "type": "String", "value": "x" }));
        assert_eq!(rendered["password"], json!({ "type": "SecureString" }));
    }

    #[test]
    fn durations_and_terminal_states() {
        assert_eq!(iso_duration(Duration::from_millis(1500)), "PT1.500S");
        assert!(is_terminal("Succeeded") && is_terminal("canceled"));
        assert!(!is_terminal("Running") && !is_terminal("deploying"));
    }

    #[test]
    fn nested_deployments_become_records_not_resources() {
        let mut state = State::default();
        let nested = PlannedResource {
            id:
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Resources/deployments/inner"
                    .into(),
            resource_type: DEPLOYMENT_TYPE.into(),
            name: "inner".into(),
            api_version: "2025-04-01".into(),
            body: json!({ "properties": {
                "outputs": {
                    "o": { "type": "String", "value": "v" },
                    "key": { "type": "SecureString", "value": "hidden" }
                },
                "outputResources": [{ "id": "/subscriptions/s/resourceGroups/rg/providers/A.B/c/d" }]
            } }),
            depends_on: vec![],
        };
        assert!(!state.apply(&nested, "c"));
        let record = &state.deployments["/subscriptions/s/resourcegroups/rg"]["inner"];
        let body = record.body();
        assert_eq!(body["properties"]["outputs"]["o"]["value"], "v");
        assert_eq!(
            body["properties"]["outputs"]["key"],
            json!({ "type": "SecureString" })
        );
        assert_eq!(
            body["properties"]["outputResources"][0]["id"],
            "/subscriptions/s/resourceGroups/rg/providers/A.B/c/d"
        );
        assert_eq!(state.inventory.items().count(), 0);
        let account = PlannedResource {
            id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa"
                .into(),
            resource_type: "Microsoft.Storage/storageAccounts".into(),
            name: "sa".into(),
            api_version: "2023-01-01".into(),
            body: json!({ "location": "westeurope" }),
            depends_on: vec![],
        };
        assert!(state.apply(&account, "c"));
        let body = &state.inventory.get(&account.id).unwrap().body;
        assert_eq!(body["properties"]["provisioningState"], "Succeeded");
        assert_eq!(body["name"], "sa");
    }
}
