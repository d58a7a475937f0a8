use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::drift::{DriftPolicy, DriftStatus};
use crate::patterns::{
    ARM_ID, ARM_ID_MAX_LEN, DATA_KEY, DATA_KEY_MAX_LEN, DEPLOYMENT_NAME, DEPLOYMENT_NAME_MAX_LEN,
    DNS_SUBDOMAIN, DNS_SUBDOMAIN_MAX_LEN, LOCATION, LOCATION_MAX_LEN, RESOURCE_GROUP,
    RESOURCE_GROUP_MAX_LEN, SUBSCRIPTION_ID, SYNC_INTERVAL, TEMPLATE_KEY,
};
use crate::schema::{arm_template_schema, json_value_map_schema};

/// Desired state of an Azure deployment: a Bicep or ARM template, its parameters, and
/// where in Azure it is deployed.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[allow(
    clippy::duplicated_attributes,
    reason = "clippy reads the repeated keys of separate printcolumn(...) groups as duplicates"
)]
#[kube(
    group = "azure-driver.io",
    version = "v1alpha1",
    kind = "AzureResource",
    plural = "azureresources",
    shortname = "azr",
    category = "azure",
    namespaced,
    status = "AzureResourceStatus",
    doc = "An Azure deployment of a Bicep or ARM template, kept in sync by azure-driver.",
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Lifecycle phase of the object"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.deployment.provisioningState",
        description = "Provisioning state ARM reports for the deployment"
    ),
    printcolumn(
        name = "Drift",
        type_ = "string",
        json_path = ".status.drift.summary",
        description = "Drift found by the last what-if check (None when Azure matches the template)"
    ),
    printcolumn(
        name = "ResourceGroup",
        type_ = "string",
        json_path = ".spec.resourceGroup",
        description = "Target resource group"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        description = "Message of the Ready condition"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AzureResourceSpec {
    /// Azure subscription (GUID) to deploy into. Defaults to the `subscriptionId` of the
    /// credentials in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SUBSCRIPTION_ID))]
    pub subscription_id: Option<String>,

    /// Resource group to deploy into; required when `scope` is `ResourceGroup`. Up to 90
    /// letters, digits, `-`, `_`, `.`, `(`, `)`, not ending in `.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = RESOURCE_GROUP), length(min = 1, max = RESOURCE_GROUP_MAX_LEN))]
    pub resource_group: Option<String>,

    /// Azure location (for example `westeurope`) of the resource group when it is created,
    /// and of subscription-scope deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = LOCATION), length(min = 1, max = LOCATION_MAX_LEN))]
    pub location: Option<String>,

    /// Create the resource group (in `location`) when it does not exist.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    #[schemars(extend("default" = true))]
    pub create_resource_group: bool,

    /// Level the template is deployed at.
    #[serde(default, skip_serializing_if = "is_default")]
    #[schemars(extend("default" = "ResourceGroup"))]
    pub scope: Scope,

    /// The template to deploy: exactly one of `bicep`, `json` or `configMapKeyRef`.
    /// Exactly one of `template` and `adopt` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateSource>,

    /// An Azure resource group, deployment, deployment stack or resource that already
    /// exists (for example one made by the Python azure-driver) and that this object takes
    /// over instead of deploying a template: its state is reported in status, and with
    /// `deletionPolicy: Delete` deleting the object deletes it (a deployment's resources,
    /// a stack with everything it manages, a resource group with its content). Exactly one
    /// of `template` and `adopt` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<Adopt>,

    /// Template parameters by name; values are any JSON value (plain values, not the
    /// `{"value": ...}` wrapper of ARM parameter files).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "json_value_map_schema")]
    pub parameters: BTreeMap<String, Value>,

    /// Template parameters read from Secrets or ConfigMaps in the same namespace; they win
    /// over `parameters` of the same name. Values from Secrets are passed as secure
    /// parameters and never written to status, events or logs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters_from: Vec<ParameterFrom>,

    /// Secret in the same namespace holding the Azure credentials (keys `tenantId`,
    /// `clientId`, `clientSecret`, `subscriptionId`). Defaults to the Secret
    /// `azure-credentials` if it exists, else the operator's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalObjectRef>,

    /// How the template is deployed and later removed.
    #[serde(default, skip_serializing_if = "is_default")]
    #[schemars(extend("default" = "Stack"))]
    pub engine: Engine,

    /// What happens to the Azure resources when this object is deleted.
    #[serde(default, skip_serializing_if = "is_default")]
    #[schemars(extend("default" = "Delete"))]
    pub deletion_policy: DeletionPolicy,

    /// ARM deployment mode (used by the `Deployment` engine).
    #[serde(default, skip_serializing_if = "is_default")]
    #[schemars(extend("default" = "Incremental"))]
    pub mode: DeploymentMode,

    /// Secret in the same namespace to write all template outputs to, secure ones
    /// included. It is created or overwritten by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_secret_ref: Option<LocalObjectRef>,

    /// Any text. Changing it deploys the template again although nothing else changed,
    /// and retries a failed deployment (the shim sets it to each request's id, so that
    /// every Brent request is carried out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub redeploy_token: Option<String>,

    /// How often a Ready object is re-checked against Azure, as a duration such as `1h`,
    /// `30m`, `90s` or `1h30m`, at least `1s`; `0` turns re-checking off.
    #[serde(
        default = "default_sync_interval",
        skip_serializing_if = "is_default_sync_interval"
    )]
    #[schemars(regex(pattern = SYNC_INTERVAL))]
    #[schemars(extend("default" = "1h"))]
    pub sync_interval: String,

    /// What a drift check does when Azure differs from the template: `Report` (default)
    /// records it in `status.drift`, `Correct` also deploys again, `Ignore` runs no check.
    /// A check (ARM what-if, no write) runs every `syncInterval` and whenever the
    /// annotation `azure-driver.io/check-drift` changes.
    #[serde(default, skip_serializing_if = "is_default")]
    #[schemars(extend("default" = "Report"))]
    pub drift_policy: DriftPolicy,
}

fn default_true() -> bool {
    true
}

fn default_sync_interval() -> String {
    "1h".to_owned()
}

fn is_true(value: &bool) -> bool {
    *value
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn is_default_sync_interval(value: &str) -> bool {
    value == default_sync_interval()
}

/// Level an ARM deployment targets.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Scope {
    /// Deploy into `resourceGroup`.
    #[default]
    ResourceGroup,
    /// Deploy at subscription level (the template may create resource groups).
    Subscription,
}

/// How the template is deployed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Engine {
    /// A deployment stack (`Microsoft.Resources/deploymentStacks`): ARM tracks and deletes
    /// what the template created.
    #[default]
    Stack,
    /// A plain ARM deployment: deletion removes the deployment's output resources by id.
    Deployment,
}

/// What happens to the Azure resources when the object is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the Azure resources the template created.
    #[default]
    Delete,
    /// Leave the Azure resources in place.
    Orphan,
}

/// ARM deployment mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeploymentMode {
    /// Add and update the template's resources; leave others in the resource group alone.
    #[default]
    Incremental,
    /// Also delete resources in the resource group that the template does not declare.
    Complete,
}

/// Where the template comes from. Exactly one source is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TemplateSource {
    /// Inline Bicep source.
    Bicep(String),
    /// Inline ARM template (JSON object with `$schema`, `resources`, ...).
    Json(#[schemars(schema_with = "arm_template_schema")] serde_json::Map<String, Value>),
    /// Key of a ConfigMap in the same namespace holding the template; a key ending in
    /// `.bicep` holds Bicep, one ending in `.json` an ARM template.
    ConfigMapKeyRef(TemplateConfigMapRef),
}

/// An existing Azure object this `AzureResource` owns.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct Adopt {
    /// Its ARM id, such as
    /// `/subscriptions/{id}/resourceGroups/{group}/providers/Microsoft.Resources/deployments/{name}`.
    #[schemars(regex(pattern = ARM_ID), length(min = 1, max = ARM_ID_MAX_LEN))]
    pub id: String,
}

/// Language of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateLanguage {
    /// Bicep source, compiled before deployment.
    Bicep,
    /// ARM template JSON, deployed as is.
    ArmJson,
}

impl TemplateSource {
    /// The language of the template, or `None` for a ConfigMap key without a `.bicep` or
    /// `.json` suffix (the schema rejects those).
    pub fn language(&self) -> Option<TemplateLanguage> {
        match self {
            TemplateSource::Bicep(_) => Some(TemplateLanguage::Bicep),
            TemplateSource::Json(_) => Some(TemplateLanguage::ArmJson),
            TemplateSource::ConfigMapKeyRef(r) => r.language(),
        }
    }
}

/// A template stored in a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct TemplateConfigMapRef {
    /// Name of the ConfigMap (in the object's namespace).
    #[schemars(regex(pattern = DNS_SUBDOMAIN), length(min = 1, max = DNS_SUBDOMAIN_MAX_LEN))]
    pub name: String,
    /// Key holding the template; must end in `.bicep` or `.json`.
    #[schemars(regex(pattern = TEMPLATE_KEY), length(min = 1, max = DATA_KEY_MAX_LEN))]
    pub key: String,
}

impl TemplateConfigMapRef {
    /// The template language the key's suffix names.
    pub fn language(&self) -> Option<TemplateLanguage> {
        if self.key.ends_with(".bicep") {
            Some(TemplateLanguage::Bicep)
        } else if self.key.ends_with(".json") {
            Some(TemplateLanguage::ArmJson)
        } else {
            None
        }
    }
}

/// One template parameter read from a Secret or a ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ParameterFrom {
    /// Template parameter name.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// Where the value is read from: exactly one of `secretKeyRef` or `configMapKeyRef`.
    #[serde(flatten)]
    pub source: ParameterSource,
}

/// Source of one parameter value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ParameterSource {
    /// A key of a Secret in the same namespace; passed as a secure value.
    SecretKeyRef(KeyRef),
    /// A key of a ConfigMap in the same namespace.
    ConfigMapKeyRef(KeyRef),
}

/// A key of a Secret or ConfigMap in the object's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct KeyRef {
    /// Name of the Secret or ConfigMap.
    #[schemars(regex(pattern = DNS_SUBDOMAIN), length(min = 1, max = DNS_SUBDOMAIN_MAX_LEN))]
    pub name: String,
    /// Key within it.
    #[schemars(regex(pattern = DATA_KEY), length(min = 1, max = DATA_KEY_MAX_LEN))]
    pub key: String,
}

/// A Secret in the object's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectRef {
    /// Name of the Secret.
    #[schemars(regex(pattern = DNS_SUBDOMAIN), length(min = 1, max = DNS_SUBDOMAIN_MAX_LEN))]
    pub name: String,
}

/// Observed state, written by the controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureResourceStatus {
    /// Lifecycle phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Standard conditions; `Ready` carries the ARM error code as reason on failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The ARM deployment or deployment stack of the current generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentStatus>,

    /// Hash of the compiled template and parameters last deployed; an unchanged hash
    /// means no ARM write is needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_hash: Option<String>,

    /// Template outputs, secure outputs left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "json_value_map_schema")]
    pub outputs: BTreeMap<String, Value>,

    /// ARM ids of the resources the deployment created or manages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,

    /// The last error, cleared on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorStatus>,

    /// Consecutive failed attempts; reset on success.
    #[serde(default)]
    pub failures: u32,

    /// The last drift check (what-if); absent with `driftPolicy: Ignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftStatus>,
}

/// Lifecycle phase of an `AzureResource`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// Accepted, nothing deployed yet.
    Pending,
    /// A deployment is running in ARM.
    Deploying,
    /// The deployment of the current generation succeeded.
    Ready,
    /// The last attempt failed; see `error` and the Ready condition.
    Failed,
    /// The object is being deleted and its Azure resources removed.
    Deleting,
}

/// An ARM deployment or deployment stack.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatus {
    /// Deployment (or stack) name, stable for the life of the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DEPLOYMENT_NAME), length(min = 1, max = DEPLOYMENT_NAME_MAX_LEN))]
    pub name: Option<String>,
    /// ARM id of the deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Provisioning state ARM reports (`Accepted`, `Running`, `Succeeded`, `Failed`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    /// ARM correlation id, for Azure support requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// URL of the running long-running operation, polled instead of re-sending the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_url: Option<String>,
    /// When the deployment was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the deployment reached a terminal state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
}

/// An error reported by ARM or by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ErrorStatus {
    /// Error code (the ARM error code when ARM reported it).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Nested ARM error details, flattened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
}

/// One nested ARM error detail.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ErrorDetail {
    /// Error code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// What the error is about, when ARM says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl AzureResourceSpec {
    /// A spec with every default applied, deploying `template` into `resource_group`.
    pub fn new(resource_group: impl Into<String>, template: TemplateSource) -> Self {
        AzureResourceSpec {
            subscription_id: None,
            resource_group: Some(resource_group.into()),
            location: None,
            create_resource_group: true,
            scope: Scope::default(),
            template: Some(template),
            adopt: None,
            parameters: BTreeMap::new(),
            parameters_from: Vec::new(),
            credentials_secret_ref: None,
            engine: Engine::default(),
            deletion_policy: DeletionPolicy::default(),
            mode: DeploymentMode::default(),
            outputs_secret_ref: None,
            redeploy_token: None,
            sync_interval: default_sync_interval(),
            drift_policy: DriftPolicy::default(),
        }
    }

    /// A spec with every default applied that takes over the existing Azure object `id`.
    pub fn adopting(id: impl Into<String>) -> Self {
        AzureResourceSpec {
            resource_group: None,
            template: None,
            adopt: Some(Adopt { id: id.into() }),
            ..AzureResourceSpec::new("", TemplateSource::Bicep(String::new()))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec_from(value: Value) -> Result<AzureResourceSpec, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn an_adopting_spec_names_no_group_and_no_template() {
        let id = "/subscriptions/s/resourceGroups/rg";
        let spec = AzureResourceSpec::adopting(id);
        assert_eq!(spec.resource_group, None);
        assert_eq!(spec.template, None);
        assert_eq!(spec.adopt, Some(Adopt { id: id.into() }));
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let spec = spec_from(json!({
            "resourceGroup": "rg-demo",
            "template": {"bicep": "param name string"}
        }))
        .unwrap();
        assert_eq!(
            spec,
            AzureResourceSpec::new("rg-demo", TemplateSource::Bicep("param name string".into()))
        );
        assert_eq!(spec.scope, Scope::ResourceGroup);
        assert_eq!(spec.engine, Engine::Stack);
        assert_eq!(spec.deletion_policy, DeletionPolicy::Delete);
        assert_eq!(spec.mode, DeploymentMode::Incremental);
        assert!(spec.create_resource_group);
        assert_eq!(spec.sync_interval, "1h");
    }

    #[test]
    fn each_template_source_and_its_language() {
        let cases = [
            (json!({"bicep": "x"}), TemplateLanguage::Bicep),
            (
                json!({"json": {"resources": []}}),
                TemplateLanguage::ArmJson,
            ),
            (
                json!({"configMapKeyRef": {"name": "t", "key": "main.bicep"}}),
                TemplateLanguage::Bicep,
            ),
            (
                json!({"configMapKeyRef": {"name": "t", "key": "azuredeploy.json"}}),
                TemplateLanguage::ArmJson,
            ),
        ];
        for (template, language) in cases {
            let source: TemplateSource = serde_json::from_value(template.clone()).unwrap();
            assert_eq!(source.language(), Some(language), "{template}");
            assert_eq!(serde_json::to_value(&source).unwrap(), template);
        }
        let unknown = TemplateConfigMapRef {
            name: "t".into(),
            key: "template.txt".into(),
        };
        assert_eq!(TemplateSource::ConfigMapKeyRef(unknown).language(), None);
    }

    #[test]
    fn two_template_sources_do_not_deserialize() {
        let both = json!({"bicep": "x", "json": {}});
        assert!(serde_json::from_value::<TemplateSource>(both).is_err());
        assert!(serde_json::from_value::<TemplateSource>(json!({})).is_err());
    }

    #[test]
    fn parameters_from_round_trip() {
        let wire = json!([
            {"name": "adminPassword", "secretKeyRef": {"name": "db", "key": "password"}},
            {"name": "sku", "configMapKeyRef": {"name": "settings", "key": "sku"}}
        ]);
        let parsed: Vec<ParameterFrom> = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(
            parsed[0].source,
            ParameterSource::SecretKeyRef(KeyRef {
                name: "db".into(),
                key: "password".into()
            })
        );
        assert!(matches!(
            parsed[1].source,
            ParameterSource::ConfigMapKeyRef(_)
        ));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), wire);
    }

    #[test]
    fn empty_status_serializes_without_optional_fields() {
        let status = AzureResourceStatus::default();
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            json!({"failures": 0})
        );
    }
}
