//! Drift: what ARM's what-if says would change if the object's template were deployed
//! again now, and what the controller does about it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::any_json_value_schema;

/// Annotation that asks for a drift check now: any new value triggers one what-if, even
/// between sync intervals or with `syncInterval: 0` (for example
/// `kubectl annotate azr NAME azure-driver.io/check-drift="$(date +%s)" --overwrite`).
pub const CHECK_DRIFT_ANNOTATION: &str = "azure-driver.io/check-drift";

/// Most drifted resources listed in `status.drift.resources`.
pub const DRIFT_MAX_RESOURCES: usize = 20;
/// Most property changes listed per drifted resource.
pub const DRIFT_MAX_PROPERTIES: usize = 20;
/// Longest JSON text of one before or after value kept in status.
pub const DRIFT_MAX_VALUE_CHARS: usize = 256;

/// What the controller does when what-if shows that Azure differs from the template.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DriftPolicy {
    /// Record the drift in `status.drift` and the `Drifted` condition, with one Event per
    /// new drift; redeploy only to recreate resources that are gone.
    #[default]
    Report,
    /// Record the drift, then deploy the template again (one ARM write) to undo it.
    Correct,
    /// Run no what-if; only recreate resources that are gone, as without drift detection.
    Ignore,
}

/// The last drift check (ARM what-if of the current template and parameters).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftStatus {
    /// When this report last changed: the what-if of the check that changed it (or answered
    /// a check request) finished, or the deployment it describes did (a deployment leaves
    /// Azure as the template says). A check that finds the same drift writes nothing, so
    /// that resyncs of unchanged objects cost no apiserver writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,
    /// Value of the `azure-driver.io/check-drift` annotation the last check answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_request: Option<String>,
    /// One line for `kubectl get`: `None`, or the drifted resources per change type
    /// (for example `Modify=1 Delete=1`).
    pub summary: String,
    /// Resources per what-if change type, after noise filtering, as of the report's last
    /// change (a deployment counts its resources as `noChange`; `noChange` and `ignore`
    /// changing alone are not written).
    pub counts: DriftCounts,
    /// The drifted resources (at most 20, each with at most 20 property changes); secure
    /// values are shown as `[redacted]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<DriftedResource>,
    /// Some resources, property changes or long values were left out to bound the size.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Number of resources per what-if change type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftCounts {
    /// Declared by the template but missing in Azure.
    pub create: u32,
    /// In Azure but no longer declared (what-if reports these for `mode: Complete`).
    pub delete: u32,
    /// Present with properties that differ from the template.
    pub modify: u32,
    /// Present and as the template declares them (noise filtered out).
    pub no_change: u32,
    /// In the resource group but not managed by this template, left alone.
    pub ignore: u32,
}

/// One resource that differs from the template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftedResource {
    /// ARM id of the resource.
    pub id: String,
    /// What-if change type: `Create`, `Delete` or `Modify`.
    pub change_type: String,
    /// The properties that differ (for `Modify`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<PropertyDrift>,
}

/// One property that differs from the template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PropertyDrift {
    /// Property path as what-if reports it, such as `sku.name` or `tags.env`.
    pub path: String,
    /// What-if property change type: `Create` (declared, missing in Azure), `Modify` or
    /// `Array`.
    pub change_type: String,
    /// The value in Azure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json_value_schema")]
    pub before: Option<Value>,
    /// The value the template declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_json_value_schema")]
    pub after: Option<Value>,
}
