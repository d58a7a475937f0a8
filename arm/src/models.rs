//! Wire shapes of the Microsoft.Resources API (only the fields the driver uses; unknown
//! fields are ignored so newer API versions still decode).

use crate::error::ErrorDetail;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// True for provisioning states after which nothing changes by itself. Deployments use
/// `Succeeded/Failed/Canceled`, stacks the same words in lowercase.
pub fn is_terminal_state(state: &str) -> bool {
    ["succeeded", "failed", "canceled", "cancelled", "deleted"]
        .iter()
        .any(|s| state.eq_ignore_ascii_case(s))
}

pub fn is_succeeded(state: &str) -> bool {
    state.eq_ignore_ascii_case("succeeded")
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroup {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: ResourceGroupProperties,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroupProperties {
    #[serde(default)]
    pub provisioning_state: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentMode {
    #[default]
    Incremental,
    Complete,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateLink {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Template and parameters to deploy. Parameter values may be secure, so `Debug` shows
/// only their names.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRequest {
    /// Required at subscription scope, absent at resource-group scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    pub properties: DeploymentRequestProperties,
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRequestProperties {
    pub mode: DeploymentMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_link: Option<TemplateLink>,
    /// `{"name": {"value": v}}` or Key Vault references.
    #[serde(default)]
    pub parameters: Map<String, Value>,
}

impl DeploymentRequest {
    /// An inline template with plain parameter values (wrapped as `{"value": v}`).
    pub fn new(
        template: Value,
        parameters: impl IntoIterator<Item = (String, Value)>,
        mode: DeploymentMode,
    ) -> Self {
        Self {
            location: None,
            tags: BTreeMap::new(),
            properties: DeploymentRequestProperties {
                mode,
                template: Some(template),
                template_link: None,
                parameters: wrap_parameters(parameters),
            },
        }
    }
}

/// Wraps plain values in ARM's `{"value": v}` parameter form.
pub fn wrap_parameters(
    parameters: impl IntoIterator<Item = (String, Value)>,
) -> Map<String, Value> {
    parameters
        .into_iter()
        .map(|(k, v)| (k, serde_json::json!({ "value": v })))
        .collect()
}

impl fmt::Debug for DeploymentRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeploymentRequest")
            .field("location", &self.location)
            .field("tags", &self.tags)
            .field("properties", &self.properties)
            .finish()
    }
}

impl fmt::Debug for DeploymentRequestProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeploymentRequestProperties")
            .field("mode", &self.mode)
            .field("template", &self.template.as_ref().map(|_| "<inline>"))
            .field("template_link", &self.template_link)
            .field("parameters", &self.parameters.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: DeploymentProperties,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentProperties {
    #[serde(default)]
    pub provisioning_state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DeploymentMode>,
    #[serde(default)]
    pub outputs: BTreeMap<String, TypedValue>,
    #[serde(default)]
    pub output_resources: Vec<ResourceReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// An output or echoed parameter: `{"type": "String", "value": ...}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TypedValue {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub value: Value,
}

impl TypedValue {
    /// `SecureString` / `SecureObject` values must not be copied to status or logs.
    pub fn is_secure(&self) -> bool {
        self.type_.to_ascii_lowercase().starts_with("secure")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceReference {
    #[serde(default)]
    pub id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentOperation {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub operation_id: String,
    #[serde(default)]
    pub properties: DeploymentOperationProperties,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentOperationProperties {
    #[serde(default)]
    pub provisioning_operation: String,
    #[serde(default)]
    pub provisioning_state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_resource: Option<TargetResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetResource {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub resource_type: String,
    #[serde(default)]
    pub resource_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatIfResult {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub properties: WhatIfProperties,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatIfProperties {
    #[serde(default)]
    pub changes: Vec<WhatIfChange>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatIfChange {
    #[serde(default)]
    pub resource_id: String,
    /// `Create | Delete | Ignore | Deploy | NoChange | Modify | Unsupported`.
    #[serde(default)]
    pub change_type: String,
    /// The resource as it is in Azure (absent for `Create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The resource as the template would make it (absent for `Delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Property-level changes (for `Modify` and `Deploy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delta: Vec<WhatIfPropertyChange>,
}

/// One property change of a what-if `Modify`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatIfPropertyChange {
    /// Dotted property path, such as `properties.sku.name` or `tags.env`.
    #[serde(default)]
    pub path: String,
    /// `Create | Delete | Modify | Array | NoEffect`.
    #[serde(default)]
    pub property_change_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Element changes of an `Array` change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<WhatIfPropertyChange>,
}

/// What happens to resources and resource groups a stack no longer manages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UnmanageAction {
    #[default]
    Delete,
    Detach,
}

impl UnmanageAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Detach => "detach",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionOnUnmanage {
    pub resources: UnmanageAction,
    pub resource_groups: UnmanageAction,
    /// Management groups can only be detached.
    pub management_groups: UnmanageAction,
}

impl Default for ActionOnUnmanage {
    fn default() -> Self {
        Self::delete_all()
    }
}

impl ActionOnUnmanage {
    pub fn delete_all() -> Self {
        Self {
            resources: UnmanageAction::Delete,
            resource_groups: UnmanageAction::Delete,
            management_groups: UnmanageAction::Detach,
        }
    }

    pub fn detach_all() -> Self {
        Self {
            resources: UnmanageAction::Detach,
            resource_groups: UnmanageAction::Detach,
            management_groups: UnmanageAction::Detach,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DenySettings {
    pub mode: String,
}

impl Default for DenySettings {
    fn default() -> Self {
        Self {
            mode: "none".to_string(),
        }
    }
}

/// A deployment stack to create or update. Parameter values may be secure, so `Debug`
/// shows only their names.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub properties: StackRequestProperties,
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackRequestProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_link: Option<TemplateLink>,
    #[serde(default)]
    pub parameters: Map<String, Value>,
    pub action_on_unmanage: ActionOnUnmanage,
    pub deny_settings: DenySettings,
}

impl StackRequest {
    /// An inline template with plain parameter values, deleting what it stops managing.
    pub fn new(template: Value, parameters: impl IntoIterator<Item = (String, Value)>) -> Self {
        Self {
            location: None,
            tags: BTreeMap::new(),
            properties: StackRequestProperties {
                template: Some(template),
                template_link: None,
                parameters: wrap_parameters(parameters),
                action_on_unmanage: ActionOnUnmanage::delete_all(),
                deny_settings: DenySettings::default(),
            },
        }
    }
}

impl fmt::Debug for StackRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackRequest")
            .field("location", &self.location)
            .field("tags", &self.tags)
            .field("properties", &self.properties)
            .finish()
    }
}

impl fmt::Debug for StackRequestProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackRequestProperties")
            .field("template", &self.template.as_ref().map(|_| "<inline>"))
            .field("template_link", &self.template_link)
            .field("parameters", &self.parameters.keys().collect::<Vec<_>>())
            .field("action_on_unmanage", &self.action_on_unmanage)
            .field("deny_settings", &self.deny_settings)
            .finish()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStack {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: StackProperties,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackProperties {
    #[serde(default)]
    pub provisioning_state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default)]
    pub outputs: BTreeMap<String, TypedValue>,
    #[serde(default)]
    pub resources: Vec<ManagedResource>,
    #[serde(default)]
    pub detached_resources: Vec<ResourceReference>,
    #[serde(default)]
    pub deleted_resources: Vec<ResourceReference>,
    #[serde(default)]
    pub failed_resources: Vec<FailedResource>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedResource {
    #[serde(default)]
    pub id: String,
    /// `managed | removeDenyFailed | deleteFailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_status: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FailedResource {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// `GET /subscriptions/{s}/providers/{namespace}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub resource_types: Vec<ProviderResourceType>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderResourceType {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default)]
    pub api_versions: Vec<String>,
}

/// A list page: `{"value": [...], "nextLink": ...}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(default)]
    pub next_link: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_request_wire_shape_and_redacted_debug() {
        let mut req = DeploymentRequest::new(
            json!({"resources": []}),
            [("adminPassword".to_string(), json!("hunter2-secret"))],
            DeploymentMode::Incremental,
        );
        req.location = Some("westeurope".into());
        let wire = serde_json::to_value(&req).unwrap();
        assert_eq!(
            wire,
            json!({"location": "westeurope", "properties": {"mode": "Incremental",
                "template": {"resources": []},
                "parameters": {"adminPassword": {"value": "hunter2-secret"}}}})
        );
        let debug = format!("{req:?}");
        assert!(debug.contains("adminPassword"));
        assert!(!debug.contains("hunter2-secret"), "{debug}");
    }

    #[test]
    fn stack_request_wire_shape_and_redacted_debug() {
        let req = StackRequest::new(json!({}), [("key".to_string(), json!("topsecret"))]);
        let wire = serde_json::to_value(&req).unwrap();
        assert_eq!(
            wire["properties"]["actionOnUnmanage"],
            json!({"resources": "delete", "resourceGroups": "delete", "managementGroups": "detach"})
        );
        assert_eq!(wire["properties"]["denySettings"], json!({"mode": "none"}));
        assert!(!format!("{req:?}").contains("topsecret"));
    }

    #[test]
    fn decodes_deployment_with_outputs_and_error() {
        let body = json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Resources/deployments/d",
            "name": "d", "type": "Microsoft.Resources/deployments",
            "properties": {"provisioningState": "Failed", "correlationId": "c",
              "outputs": {"o": {"type": "String", "value": "v"}, "s": {"type": "SecureString"}},
              "outputResources": [{"id": "/x"}],
              "error": {"code": "DeploymentFailed", "message": "m", "details": [{"code": "Conflict", "message": "c"}]},
              "somethingNew": 1}});
        let dep: Deployment = serde_json::from_value(body).unwrap();
        assert_eq!(dep.properties.outputs["o"].value, json!("v"));
        assert!(dep.properties.outputs["s"].is_secure());
        assert_eq!(dep.properties.output_resources[0].id, "/x");
        assert_eq!(dep.properties.error.unwrap().details[0].code, "Conflict");
        assert!(is_terminal_state(&dep.properties.provisioning_state));
    }

    #[test]
    fn terminal_states_in_both_cases() {
        for s in ["Succeeded", "failed", "Canceled", "canceled"] {
            assert!(is_terminal_state(s), "{s}");
        }
        for s in ["Accepted", "Running", "deploying", "deletingResources", ""] {
            assert!(!is_terminal_state(s), "{s}");
        }
    }
}
