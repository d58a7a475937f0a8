//! associatedTopology and ARM ids: what Brent holds about a resource and what a Delete
//! without objects adopts.

use crds::{
    AdoptedId, AzureResource, AzureResourceSpec, CLEANUP_FINALIZER, DeletionPolicy, Scope,
    deployment_name,
};
use kube::ResourceExt;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::request::{ExecuteRequest, Lifecycle};

use super::checks::*;
use super::legacy::*;
use super::metadata::*;
use super::model::*;
use super::names::*;

/// ARM id of the deployment stack an object produces (known once it has a uid).
pub fn stack_id(object: &AzureResource) -> Option<String> {
    let subscription = object.spec.subscription_id.as_deref()?;
    let uid = object.uid()?;
    let name = deployment_name(
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
        &uid,
    );
    Some(match (&object.spec.scope, &object.spec.resource_group) {
        (Scope::ResourceGroup, Some(group)) => format!(
            "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Resources/deploymentStacks/{name}"
        ),
        _ => format!(
            "/subscriptions/{subscription}/providers/Microsoft.Resources/deploymentStacks/{name}"
        ),
    })
}

/// The ARM id an object stands for in request ids: the adopted id, else its stack.
pub(super) fn arm_id(object: &AzureResource) -> Option<String> {
    match &object.spec.adopt {
        Some(adopt) => Some(adopt.id.clone()),
        None => stack_id(object),
    }
}

/// The id recorded in associatedTopology: the resource group for the legacy
/// resource-group type (as the Python driver did), else the adopted id or the stack.
pub fn topology_id(object: &AzureResource) -> Option<String> {
    let is_group = object
        .labels()
        .get(LABEL_RESOURCE_TYPE)
        .is_some_and(|t| t == "AzureResourceGroup");
    match (is_group, object.spec.parameters.get("resourcegroup_name")) {
        (true, Some(Value::String(group))) => Some(format!(
            "/subscriptions/{}/resourceGroups/{group}",
            object.spec.subscription_id.as_deref()?
        )),
        _ => arm_id(object),
    }
}

/// The ARM id Brent holds for a resource: its entry in associatedTopology, named as the
/// Python driver named it.
pub fn topology_arm_id(req: &ExecuteRequest) -> Option<String> {
    entry_arm_id(req, &topology_entry_name(&req.system.resource_name))
}

/// The id of associatedTopology entry `entry`.
pub fn entry_arm_id(req: &ExecuteRequest, entry: &str) -> Option<String> {
    req.associated_topology
        .get(entry)
        .and_then(|entry| entry.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// Something Brent knows only by an associatedTopology entry (the Python driver made
/// it), to be adopted by object `object` and deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptedEntry {
    pub entry: String,
    pub arm_id: String,
    pub object: String,
}

/// What a Delete or removal without objects adopts: for a Delete the id of the
/// resource's own entry (object `r-<resourceId>`); for a removal whose addition's entry
/// Brent holds, the addition's resource in that entry's subscription and resource group
/// (the addition's object).
pub fn entry_to_adopt(req: &ExecuteRequest, target: &DeleteTarget) -> Option<AdoptedEntry> {
    match target {
        DeleteTarget::Resource { .. } => {
            let entry = topology_entry_name(&req.system.resource_name);
            Some(AdoptedEntry {
                arm_id: entry_arm_id(req, &entry)?,
                entry,
                object: object_name(&req.system.resource_id, &Lifecycle::Create),
            })
        }
        DeleteTarget::Object {
            name,
            python: Some(addition),
            ..
        } => {
            let deployment = AdoptedId::parse(&entry_arm_id(req, &addition.key)?).ok()?;
            Some(AdoptedEntry {
                arm_id: format!(
                    "/subscriptions/{}/resourceGroups/{}/{}",
                    deployment.subscription_id, deployment.resource_group?, addition.resource
                ),
                entry: addition.key.clone(),
                object: name.clone(),
            })
        }
        DeleteTarget::Object { python: None, .. } => None,
    }
}

/// A Delete of a resource without objects (made by the Python driver, or deleted
/// before): an object adopting the id Brent holds, created with both finalizers so that
/// it is deleted at once and stays until the controller removed the id from Azure and
/// the shim reported the result.
pub fn adopt_for_delete(
    req: &ExecuteRequest,
    ctx: &MappingContext,
    pending: &PendingRequest,
    adopted: &AdoptedEntry,
) -> Result<ApplyPlan, ApiError> {
    let arm_id = adopted.arm_id.as_str();
    let object = adopted.object.clone();
    let adopted = AdoptedId::parse(arm_id).map_err(|err| {
        ApiError::bad_request(format!(
            "associatedTopology entry \"{}\": {err}",
            adopted.entry
        ))
    })?;
    let mut spec = AzureResourceSpec::adopting(arm_id);
    spec.subscription_id = Some(adopted.subscription_id);
    let own_entry = object == object_name(&req.system.resource_id, &Lifecycle::Create);
    if own_entry && keeps_resources_on_delete(req, ctx) {
        spec.deletion_policy = DeletionPolicy::Orphan;
    }
    spec.credentials_secret_ref = credentials_secret_ref(req, pending);
    let mut resource = AzureResource::new(&object, spec);
    resource.metadata.namespace = Some(ctx.namespace.clone());
    resource.metadata.labels = Some(labels(req));
    resource.metadata.annotations = Some(annotations(req, ctx, pending)?);
    resource.metadata.finalizers = Some(vec![FINALIZER.into(), CLEANUP_FINALIZER.into()]);
    let plan = ApplyPlan {
        resource,
        credentials: credentials_secret(req, ctx, pending),
        secure_parameters: None,
    };
    check_sizes(&plan)?;
    Ok(plan)
}

/// associatedTopology of the 202, as the Python driver answered it: a Create names the
/// resource's entry (`created_id`, known once its object exists), an addition its own
/// entry (CreateVnetPeering, AddRoute); a Delete echoes the incoming entries with the
/// resource's own set to null, a removal with the addition's set to null; other
/// operations answer none.
pub fn accepted_topology(req: &ExecuteRequest, created_id: Option<&str>) -> Map<String, Value> {
    let entry = topology_entry_name(&req.system.resource_name);
    let removed_addition =
        removal_counterpart(req).and_then(|added| python_addition_key(req, &added));
    match (&req.lifecycle, created_id) {
        (Lifecycle::Create, Some(id)) => {
            Map::from_iter([(entry, serde_json::json!({"id": id, "type": "Azure"}))])
        }
        (Lifecycle::Delete, _) => {
            let mut echoed = req.associated_topology.clone();
            echoed.insert(entry, Value::Null);
            echoed
        }
        (Lifecycle::Operation(_), Some(id)) => python_addition_key(req, &req.lifecycle)
            .map(|key| Map::from_iter([(key, serde_json::json!({"id": id, "type": "Azure"}))]))
            .unwrap_or_default(),
        (Lifecycle::Operation(_), None) => match removed_addition {
            Some(key) => {
                let mut echoed = req.associated_topology.clone();
                echoed.insert(key, Value::Null);
                echoed
            }
            None => Map::new(),
        },
        (Lifecycle::Create, None) => Map::new(),
    }
}

/// `<prefix>::<armId>::<uuid>`, the prefix as the Python driver wrote it: `Create` for a
/// Create or an addition (`Add<X>`, `Create<X>`), `Delete` for a Delete or a removal
/// (`Remove<X>`); other operations keep their name.
pub fn request_id(lifecycle: &str, arm_id: &str, uuid: &str) -> String {
    let prefix = if strip_prefix_ignore_case(lifecycle, "Remove").is_some() {
        "Delete"
    } else if strip_prefix_ignore_case(lifecycle, "Add").is_some()
        || strip_prefix_ignore_case(lifecycle, "Create").is_some()
    {
        "Create"
    } else {
        lifecycle
    };
    format!("{prefix}::{arm_id}::{uuid}")
}
