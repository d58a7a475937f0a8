//! What the mapping produces and stores: labels, annotations, plans and the request
//! data kept on an object.

use std::collections::BTreeMap;

use crds::AzureResource;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const LABEL_RESOURCE_ID: &str = "azure-driver.io/resource-id";
pub const LABEL_RESOURCE_NAME: &str = "azure-driver.io/resource-name";
pub const LABEL_RESOURCE_TYPE: &str = "azure-driver.io/resource-type";
pub const LABEL_DEPLOYMENT_LOCATION: &str = "azure-driver.io/deployment-location";
/// The operation name, on operation objects only (objects written by earlier versions
/// carry `create` on the resource's own object).
pub const LABEL_LIFECYCLE: &str = "azure-driver.io/lifecycle";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "azure-driver-shim";
/// The request awaiting its Kafka result (JSON of [`PendingRequest`]).
pub const ANNOTATION_REQUEST: &str = "azure-driver.io/request";
/// Id of the last request whose result was published.
pub const ANNOTATION_REPORTED: &str = "azure-driver.io/reported";
/// `<request id> <holder> <unix seconds>`: a replica publishing the result right now.
pub const ANNOTATION_CLAIM: &str = "azure-driver.io/report-claim";
/// The resource name exactly as Brent sent it, when the label holds a sanitised form.
pub const ANNOTATION_RESOURCE_NAME: &str = "azure-driver.io/resource-name";
/// The resource id exactly as Brent sent it, when the label holds a sanitised form.
pub const ANNOTATION_RESOURCE_ID: &str = "azure-driver.io/resource-id";
/// Keeps a deleted object observable until its Delete result is published.
pub const FINALIZER: &str = "azure-driver.io/shim-report";
/// Field manager of the shim's server-side applies.
pub const FIELD_MANAGER: &str = "azure-driver-shim";
/// [`owner_digest`] of the credentials that created the resource: requests about it with
/// other credentials are refused.
pub const ANNOTATION_OWNER: &str = "azure-driver.io/owner";
/// etcd refuses writes over 1.5 MiB (its default `--max-request-bytes`); an object the
/// shim applies stays under 1 MiB so that status and metadata still fit beside it.
pub const MAX_OBJECT_BYTES: usize = 1024 * 1024;
/// The apiserver refuses Secrets whose data exceeds 1 MiB.
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// Everything about a request the completion needs, stored on the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequest {
    /// The uuid part of the request id.
    pub uuid: String,
    pub lifecycle: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// `x-tracectx-*` headers, lower-cased suffix → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub trace: BTreeMap<String, String>,
    /// True when the object is being removed: the result is reported once it is gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
}

/// Request-independent inputs of the mapping.
#[derive(Debug, Clone, Default)]
pub struct MappingContext {
    pub namespace: String,
    /// Subscription used when the deployment location names none.
    pub default_subscription_id: Option<String>,
    /// The shim's own Azure identity is configured, so locations may omit credentials.
    pub operator_identity: bool,
    /// Delete of a legacy resource removes only its deployment record and leaves the Azure
    /// resources, as the Python driver did (default: they are deleted).
    pub legacy_delete_keeps_resources: bool,
}

/// What a request turns into.
#[derive(Debug, Clone)]
pub enum Action {
    Apply(Box<ApplyPlan>),
    /// Delete objects: all objects of a resource, or one operation's object.
    Delete(DeleteTarget),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteTarget {
    Resource {
        resource_id_label: String,
    },
    /// The object of the operation a `Remove<X>` undoes.
    Object {
        name: String,
        /// The same addition's object as an earlier release named it, if it is one.
        previous: Option<PreviousObject>,
        /// What the Python driver's addition made: adopted and deleted when no object
        /// exists and Brent's topology holds its entry.
        python: Option<PythonAddition>,
    },
}

/// An addition as the Python driver made it: the associatedTopology key of its
/// deployment and the one resource that deployment created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonAddition {
    pub key: String,
    /// The resource, relative to the deployment's resource group
    /// (`providers/Microsoft.Network/…`).
    pub resource: String,
}

/// An object named by an earlier naming scheme (one per operation and resource): it is
/// the addition being undone only if its parameters hold these values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousObject {
    pub name: String,
    pub parameters: BTreeMap<String, String>,
}

impl PreviousObject {
    pub fn matches(&self, object: &AzureResource) -> bool {
        self.parameters.iter().all(|(name, value)| {
            object.spec.parameters.get(name).and_then(Value::as_str) == Some(value.as_str())
        })
    }
}

#[derive(Debug, Clone)]
pub struct ApplyPlan {
    pub resource: AzureResource,
    pub credentials: Option<Secret>,
    /// `<object>-params`; the caller adds the object's ownerReference once its uid is known.
    pub secure_parameters: Option<Secret>,
}

/// The resource id exactly as Brent sent it: the annotation, else the label (written
/// without annotation when it holds the id unchanged).
pub fn exact_resource_id(object: &AzureResource) -> Option<&str> {
    exact_value(object, ANNOTATION_RESOURCE_ID, LABEL_RESOURCE_ID)
}

/// The resource name exactly as Brent sent it (see [`exact_resource_id`]).
pub fn exact_resource_name(object: &AzureResource) -> Option<&str> {
    exact_value(object, ANNOTATION_RESOURCE_NAME, LABEL_RESOURCE_NAME)
}

fn exact_value<'a>(object: &'a AzureResource, annotation: &str, label: &str) -> Option<&'a str> {
    object
        .annotations()
        .get(annotation)
        .or_else(|| object.labels().get(label))
        .map(String::as_str)
}

/// Whether `object` is a resource's own object, not an operation's.
pub fn is_resource_object(object: &AzureResource) -> bool {
    object
        .labels()
        .get(LABEL_LIFECYCLE)
        .is_none_or(|lifecycle| lifecycle == "create")
}
