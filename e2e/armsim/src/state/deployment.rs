//! Deployment history records and the bodies ARM renders from them.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

use crate::error::{ArmError, ErrorDetail};
use crate::lro::{elapsed, iso_duration, timestamp};
use crate::route::Scope;
use crate::template::{PlannedResource, TypedValue};

pub(crate) const DEPLOYMENT_TYPE: &str = "Microsoft.Resources/deployments";

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
    pub(crate) fn nested(
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
    error: Option<&ErrorDetail>,
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
}
