//! Pure mapping of a validated request onto `AzureResource` objects and Secrets.

use std::collections::BTreeMap;

use bicep::ast::{DeclKind, ExprKind};
use crds::{
    AdoptedId, AzureResource, AzureResourceSpec, CLEANUP_FINALIZER, DeletionPolicy, KeyRef,
    LocalObjectRef, ParameterFrom, ParameterSource, Scope, TemplateSource, deployment_name,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::driver_files::{DriverFiles, Template};
use crate::error::ApiError;
use crate::request::{Credentials, ExecuteRequest, Lifecycle, Properties, Property};

pub const LABEL_RESOURCE_ID: &str = "azure-driver.io/resource-id";
pub const LABEL_RESOURCE_NAME: &str = "azure-driver.io/resource-name";
pub const LABEL_RESOURCE_TYPE: &str = "azure-driver.io/resource-type";
pub const LABEL_DEPLOYMENT_LOCATION: &str = "azure-driver.io/deployment-location";
/// `create` for the resource's object, the operation name for operation objects.
pub const LABEL_LIFECYCLE: &str = "azure-driver.io/lifecycle";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "azure-driver-shim";
/// The request awaiting its Kafka result (JSON of [`PendingRequest`]).
pub const ANNOTATION_REQUEST: &str = "azure-driver.io/request";
/// Id of the last request whose result was published.
pub const ANNOTATION_REPORTED: &str = "azure-driver.io/reported";
/// `<request id> <holder> <unix seconds>`: a replica publishing the result right now.
pub const ANNOTATION_CLAIM: &str = "azure-driver.io/report-claim";
/// The resource name exactly as Brent sent it (labels hold a sanitised form).
pub const ANNOTATION_RESOURCE_NAME: &str = "azure-driver.io/resource-name";
/// The resource id exactly as Brent sent it.
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
    #[serde(default)]
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

/// A valid Kubernetes label value for any input: itself when valid, else a sanitised
/// prefix and a digest, so lookups by the same input find the same value.
pub fn label_value(raw: &str) -> String {
    let valid = raw.len() <= 63
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && raw
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && raw
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if valid {
        return raw.to_string();
    }
    let digest = short_digest(raw);
    let prefix: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() {
        digest
    } else {
        format!("{prefix}-{digest}")
    }
}

fn short_digest(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))[..10].to_string()
}

/// DNS-1123 label form of any input (case-insensitive), at most `max` characters,
/// digest-suffixed when more than the case had to change.
fn dns_label(raw: &str, max: usize) -> String {
    let lower = raw.to_ascii_lowercase();
    let valid = lower.len() <= max
        && !lower.is_empty()
        && lower.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !lower.starts_with('-')
        && !lower.ends_with('-');
    if valid {
        return lower;
    }
    let digest = short_digest(raw);
    let prefix: String = lower
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(max.saturating_sub(digest.len() + 1))
        .collect();
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() {
        digest
    } else {
        format!("{prefix}-{digest}")
    }
}

/// `r-<resourceId>`, plus `-<operation>` for lifecycles other than Create.
pub fn object_name(resource_id: &str, lifecycle: &Lifecycle) -> String {
    let base = format!("r-{}", dns_label(resource_id, 60));
    match lifecycle {
        Lifecycle::Create | Lifecycle::Delete => base,
        Lifecycle::Operation(name) => format!("{base}-{}", dns_label(name, 60)),
    }
}

/// The object a request writes or removes: [`object_name`], plus the instance an
/// addition names (see [`addition_instance`]), so that several additions of one resource
/// coexist and each removal takes away only its own.
pub fn request_object_name(req: &ExecuteRequest, lifecycle: &Lifecycle) -> String {
    let base = object_name(&req.system.resource_id, lifecycle);
    match addition_instance(req, lifecycle) {
        Some((_, instance)) => format!("{base}-{}", dns_label(&instance, 60)),
        None => base,
    }
}

/// Which of several additions `Add<X>`/`Create<X>` is meant, with the parameters that
/// name it: a peering by `<initiator>-to-<acceptor>`, any other addition by its property
/// `<x>_name` (`route_name` for AddRoute). `None` for other lifecycles or when the
/// request does not name the instance.
fn addition_instance(
    req: &ExecuteRequest,
    lifecycle: &Lifecycle,
) -> Option<(BTreeMap<String, String>, String)> {
    let Lifecycle::Operation(operation) = lifecycle else {
        return None;
    };
    let thing = strip_prefix_ignore_case(operation, "Add")
        .or_else(|| strip_prefix_ignore_case(operation, "Create"))
        .filter(|thing| !thing.is_empty())?;
    if req.system.resource_type.name == "AzureVNet" && thing.eq_ignore_ascii_case("VnetPeering") {
        let initiator = req.string_property("initiator_vnet_name")?;
        let acceptor = req.string_property("acceptor_vnet_name")?;
        let instance = format!("{initiator}-to-{acceptor}");
        let parameters = BTreeMap::from([
            ("initiator_vnet_name".to_string(), initiator),
            ("acceptor_vnet_name".to_string(), acceptor),
        ]);
        return Some((parameters, instance));
    }
    let property = format!("{}_name", snake_case(thing));
    let instance = req.string_property(&property)?;
    Some((BTreeMap::from([(property, instance.clone())]), instance))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .map(|_| &text[prefix.len()..])
}

/// `VnetPeering` → `vnet_peering`.
fn snake_case(name: &str) -> String {
    let mut snake = String::new();
    for (index, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && index > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

/// The associatedTopology key under which the Python driver recorded an addition
/// (contract sections 2.2.2 and 2.5.2): the resource name without `-`, then for
/// CreateVnetPeering `VNetResource` replaced by the initiator and `peer` appended, for
/// AddRoute the route name and `route` appended. `None` for additions it did not make.
pub fn python_addition_key(req: &ExecuteRequest, lifecycle: &Lifecycle) -> Option<String> {
    let Lifecycle::Operation(operation) = lifecycle else {
        return None;
    };
    let sanitized = topology_entry_name(&req.system.resource_name);
    match req.system.resource_type.name.as_str() {
        "AzureVNet" if operation.eq_ignore_ascii_case("CreateVnetPeering") => {
            let initiator = req.string_property("initiator_vnet_name")?;
            Some(format!(
                "{}peer",
                sanitized.replace("VNetResource", &initiator)
            ))
        }
        "AzureRouteTable" if operation.eq_ignore_ascii_case("AddRoute") => {
            let route = req.string_property("route_name")?;
            Some(format!("{sanitized}{route}route"))
        }
        _ => None,
    }
}

/// The Python driver's addition a removal names: its key (see [`python_addition_key`])
/// and the peering `<initiator>-to-<acceptor>` on the initiator VNet, or the route
/// `route_name` in `route_table_name`. The removal deletes exactly that resource: the
/// key alone is no proof, since the Python driver kept one key per VNet for all of its
/// peerings.
fn python_addition(req: &ExecuteRequest, lifecycle: &Lifecycle) -> Option<PythonAddition> {
    let key = python_addition_key(req, lifecycle)?;
    let resource = match req.system.resource_type.name.as_str() {
        "AzureVNet" => {
            let initiator = req.string_property("initiator_vnet_name")?;
            let acceptor = req.string_property("acceptor_vnet_name")?;
            format!(
                "providers/Microsoft.Network/virtualNetworks/{initiator}/virtualNetworkPeerings/{initiator}-to-{acceptor}"
            )
        }
        _ => {
            let table = req.string_property("route_table_name")?;
            let route = req.string_property("route_name")?;
            format!("providers/Microsoft.Network/routeTables/{table}/routes/{route}")
        }
    };
    Some(PythonAddition { key, resource })
}

/// The property naming the resource group a request deploys into: the initiator's group
/// for CreateVnetPeering (the Python driver deployed the peering there), else
/// `resourcegroup_name`; `None` when the request does not name it.
fn deployment_group_property(req: &ExecuteRequest) -> Option<&'static str> {
    let peering = matches!(&req.lifecycle, Lifecycle::Operation(op) if op.eq_ignore_ascii_case("CreateVnetPeering"))
        && req.system.resource_type.name == "AzureVNet"
        && req.string_property("initiator_vnet_rg_name").is_some();
    if peering {
        Some("initiator_vnet_rg_name")
    } else {
        req.string_property("resourcegroup_name")
            .map(|_| "resourcegroup_name")
    }
}

/// With `legacy_delete_keeps_resources`, a Delete of a legacy resource other than a
/// resource group leaves its Azure resources, as the Python driver did: its object
/// orphans them (the deployment stack goes, the resources stay). Additions
/// (CreateVnetPeering, AddRoute) are still removed by their removal and by the Delete.
fn keeps_resources_on_delete(req: &ExecuteRequest, ctx: &MappingContext) -> bool {
    let type_name = req.system.resource_type.name.as_str();
    ctx.legacy_delete_keeps_resources
        && type_name != "AzureResourceGroup"
        && builtin_template(type_name, &Lifecycle::Create).is_some()
}

/// The request runs a built-in legacy template (no driverFiles template replaces it).
fn template_is_builtin(req: &ExecuteRequest) -> bool {
    builtin_template(&req.system.resource_type.name, &req.lifecycle).is_some()
}

/// Refuses (400), before anything is written, names the legacy templates would hand to
/// Azure although its rules refuse them: a storage account base other than ASCII letters
/// and digits (the template lower-cases it), an NSG name outside Azure's characters.
/// The Python driver answered these with 500 or let ARM refuse them.
fn check_legacy_names(req: &ExecuteRequest) -> Result<(), ApiError> {
    // The value as the template receives it, untrimmed.
    let name_of = |property: &str| {
        req.property(property)
            .and_then(|p| p.value.as_str())
            .map(str::to_string)
    };
    match req.system.resource_type.name.as_str() {
        "AzureStorageAccount" => match name_of("storage_account_name") {
            Some(name) if !name.chars().all(|c| c.is_ascii_alphanumeric()) => {
                Err(ApiError::bad_request(format!(
                    "storage_account_name \"{name}\" may contain only letters a-z, A-Z and digits"
                )))
            }
            _ => Ok(()),
        },
        "AzureNetworkSecurityGroup" => match name_of("network_security_group_name") {
            Some(name)
                if !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                Err(ApiError::bad_request(format!(
                    "network_security_group_name \"{name}\" may contain only letters, digits, '-', '_' and '.'"
                )))
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// SHA-256 of `fields`, each length-prefixed so that no two field lists share a digest.
fn fields_digest(fields: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Secret holding one client's credentials for one tenant and deployment location (the
/// exact name: locations differing only in case never share it), named by a digest.
pub fn credentials_secret_name(
    tenant_header: Option<&str>,
    location: &str,
    credentials: &Credentials,
) -> String {
    let digest = fields_digest(&[
        tenant_header.unwrap_or_default(),
        location,
        credentials.tenant_id.as_deref().unwrap_or_default(),
        credentials.client_id.as_deref().unwrap_or_default(),
    ]);
    format!("dl-{}", &digest[..40])
}

/// Who a request acts as: its `tenantId` header and the deployment location's Azure
/// tenant, client and subscription. The client secret is left out, so rotating it keeps
/// the resource's owner.
pub fn owner_digest(
    req: &ExecuteRequest,
    ctx: &MappingContext,
    tenant_header: Option<&str>,
) -> Result<String, ApiError> {
    let credentials = &req.deployment_location.credentials;
    let subscription = subscription_id(req, ctx)?;
    Ok(fields_digest(&[
        tenant_header.unwrap_or_default(),
        credentials.tenant_id.as_deref().unwrap_or_default(),
        credentials.client_id.as_deref().unwrap_or_default(),
        &subscription,
    ]))
}

/// Refuses (403) a request acting as `owner` about a resource any of whose `objects` was
/// created by someone else. Objects made before ownership was recorded bind to the next
/// Create.
pub fn authorise(owner: &str, objects: &[&AzureResource]) -> Result<(), ApiError> {
    let foreign = objects.iter().find(|object| {
        object
            .annotations()
            .get(ANNOTATION_OWNER)
            .is_some_and(|bound| bound != owner)
    });
    match foreign {
        Some(object) => Err(ApiError::with_status(
            403,
            format!(
                "resource {} was created with other credentials (tenant, client or subscription)",
                object
                    .annotations()
                    .get(ANNOTATION_RESOURCE_ID)
                    .map(String::as_str)
                    .unwrap_or_else(|| object.meta().name.as_deref().unwrap_or_default())
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses (413) an object etcd could not store, or a Secret the apiserver would reject,
/// before anything is written.
pub fn check_sizes(plan: &ApplyPlan) -> Result<(), ApiError> {
    let object_bytes = serde_json::to_vec(&plan.resource)
        .map_err(|err| ApiError::internal(format!("cannot encode the AzureResource: {err}")))?
        .len();
    if object_bytes > MAX_OBJECT_BYTES {
        return Err(ApiError::with_status(
            413,
            format!(
                "The template and parameters make an AzureResource of {object_bytes} bytes; at most {MAX_OBJECT_BYTES} bytes fit in the cluster's store"
            ),
        ));
    }
    for secret in [&plan.credentials, &plan.secure_parameters]
        .into_iter()
        .flatten()
    {
        let data_bytes: usize = secret
            .string_data
            .iter()
            .flatten()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        if data_bytes > MAX_SECRET_BYTES {
            return Err(ApiError::with_status(
                413,
                format!(
                    "Secure values of {data_bytes} bytes exceed the {MAX_SECRET_BYTES} bytes a Secret holds"
                ),
            ));
        }
    }
    Ok(())
}

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
fn arm_id(object: &AzureResource) -> Option<String> {
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

/// Topology entry name the Python driver used: the resource name without `-`.
pub fn topology_entry_name(resource_name: &str) -> String {
    resource_name.replace('-', "")
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

fn annotations(
    req: &ExecuteRequest,
    ctx: &MappingContext,
    pending: &PendingRequest,
) -> Result<BTreeMap<String, String>, ApiError> {
    let request_json = serde_json::to_string(pending)
        .map_err(|err| ApiError::internal(format!("cannot record the request: {err}")))?;
    Ok(BTreeMap::from([
        (ANNOTATION_REQUEST.into(), request_json),
        (
            ANNOTATION_OWNER.into(),
            owner_digest(req, ctx, pending.tenant_id.as_deref())?,
        ),
        (
            ANNOTATION_RESOURCE_NAME.into(),
            req.system.resource_name.clone(),
        ),
        (
            ANNOTATION_RESOURCE_ID.into(),
            req.system.resource_id.clone(),
        ),
    ]))
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

/// A built-in template for a legacy resource type and lifecycle.
pub fn builtin_template(resource_type: &str, lifecycle: &Lifecycle) -> Option<&'static str> {
    match (resource_type, lifecycle) {
        ("AzureResourceGroup", Lifecycle::Create) => {
            Some(include_str!("../templates/AzureResourceGroup.bicep"))
        }
        ("AzureVNet", Lifecycle::Create) => Some(include_str!("../templates/AzureVNet.bicep")),
        ("AzureSubnet", Lifecycle::Create) => Some(include_str!("../templates/AzureSubnet.bicep")),
        ("AzureNetworkSecurityGroup", Lifecycle::Create) => {
            Some(include_str!("../templates/AzureNetworkSecurityGroup.bicep"))
        }
        ("AzureRouteTable", Lifecycle::Create) => {
            Some(include_str!("../templates/AzureRouteTable.bicep"))
        }
        ("AzureStorageAccount", Lifecycle::Create) => {
            Some(include_str!("../templates/AzureStorageAccount.bicep"))
        }
        ("AzureVNet", Lifecycle::Operation(op)) if op.eq_ignore_ascii_case("CreateVnetPeering") => {
            Some(include_str!("../templates/CreateVnetPeering.bicep"))
        }
        ("AzureRouteTable", Lifecycle::Operation(op)) if op.eq_ignore_ascii_case("AddRoute") => {
            Some(include_str!("../templates/AddRoute.bicep"))
        }
        _ => None,
    }
}

/// The additions a `Remove<X>` may undo: `Add<X>`, then `Create<X>`.
fn additions_undone_by(lifecycle: &Lifecycle) -> Vec<Lifecycle> {
    let Lifecycle::Operation(operation) = lifecycle else {
        return Vec::new();
    };
    match strip_prefix_ignore_case(operation, "Remove").filter(|thing| !thing.is_empty()) {
        Some(thing) => ["Add", "Create"]
            .iter()
            .map(|verb| Lifecycle::Operation(format!("{verb}{thing}")))
            .collect(),
        None => Vec::new(),
    }
}

/// The built-in addition a `Remove<X>` of a legacy type undoes (RemoveVnetPeering,
/// RemoveRoute).
fn removal_counterpart(req: &ExecuteRequest) -> Option<Lifecycle> {
    additions_undone_by(&req.lifecycle)
        .into_iter()
        .find(|added| builtin_template(&req.system.resource_type.name, added).is_some())
}

/// The addition a `Remove<X>` undoes: the first of `Add<X>`, `Create<X>` that the
/// package or the built-in templates provide. Removing is deleting that addition's
/// object, which removes exactly what it deployed; a package shipping a `Remove<X>`
/// template as well is refused, since that template would never run.
fn undone_addition(
    req: &ExecuteRequest,
    files: &DriverFiles,
) -> Result<Option<Lifecycle>, ApiError> {
    for added in additions_undone_by(&req.lifecycle) {
        let provided = files.template_for(&added)?.is_some()
            || builtin_template(&req.system.resource_type.name, &added).is_some();
        if !provided {
            continue;
        }
        if files.template_for(&req.lifecycle)?.is_some() {
            return Err(ApiError::bad_request(format!(
                "driverFiles has a template for \"{}\", which undoes \"{}\" by removing what it deployed; remove that template",
                req.lifecycle.name(),
                added.name()
            )));
        }
        return Ok(Some(added));
    }
    Ok(None)
}

/// What a `Remove<X>` deletes: the addition's object, that object as the previous naming
/// scheme named it (one per operation), or the Python driver's deployment of it.
fn removal_target(req: &ExecuteRequest, added: &Lifecycle) -> DeleteTarget {
    let previous = addition_instance(req, added).map(|(parameters, _)| PreviousObject {
        name: object_name(&req.system.resource_id, added),
        parameters,
    });
    DeleteTarget::Object {
        name: request_object_name(req, added),
        previous,
        python: python_addition(req, added),
    }
}

/// Declared parameters of a template: name → declared secure.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TemplateShape {
    parameters: BTreeMap<String, bool>,
    subscription_scope: bool,
}

/// Declared parameters and target scope of a Bicep template, from the `bicep` crate's
/// parser (decorators spanning lines, comments and strings are read as Bicep reads them).
fn bicep_shape(source: &str) -> Result<TemplateShape, ApiError> {
    let file = bicep::parser::parse(source)
        .into_result()
        .map_err(|diagnostic| {
            ApiError::bad_request(format!(
                "The Bicep template does not parse: {} {}",
                diagnostic.code, diagnostic.message
            ))
        })?;
    let mut parameters = BTreeMap::new();
    let mut subscription_scope = false;
    for decl in &file.decls {
        match (&decl.kind, &decl.name) {
            (DeclKind::Param { .. }, Some((name, _))) => {
                let secure = decl.decorators.iter().any(|d| {
                    matches!(&d.kind, ExprKind::Call { namespace, name, .. }
                        if name == "secure" && namespace.as_deref().is_none_or(|ns| ns == "sys"))
                });
                parameters.insert(name.clone(), secure);
            }
            (DeclKind::TargetScope(scope), _) => {
                subscription_scope = matches!(&scope.kind, ExprKind::Str { pieces, holes }
                    if holes.is_empty() && pieces.len() == 1 && pieces[0] == "subscription");
            }
            _ => {}
        }
    }
    Ok(TemplateShape {
        parameters,
        subscription_scope,
    })
}

fn json_shape(template: &Map<String, Value>) -> TemplateShape {
    let parameters = template
        .get("parameters")
        .and_then(Value::as_object)
        .map(|params| {
            params
                .iter()
                .map(|(name, decl)| {
                    let kind = decl
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    (name.clone(), kind.starts_with("secure"))
                })
                .collect()
        })
        .unwrap_or_default();
    let subscription_scope = template
        .get("$schema")
        .and_then(Value::as_str)
        .is_some_and(|schema| schema.contains("subscriptionDeploymentTemplate"));
    TemplateShape {
        parameters,
        subscription_scope,
    }
}

fn is_guid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    parts.len() == 5
        && parts
            .iter()
            .zip(lengths)
            .all(|(part, len)| part.len() == len && part.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Azure's resource group name rule (the CRD enforces it too; checked here so bad input
/// is a 400 naming the property, and nothing is written).
fn check_resource_group(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 90
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.()".contains(c));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "resourcegroup_name \"{name}\" is not a valid Azure resource group name"
        )))
    }
}

fn check_location(location: &str) -> Result<(), ApiError> {
    let valid = location.len() <= 64
        && location
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && location
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "location \"{location}\" is not a valid Azure location"
        )))
    }
}

fn system_parameters(req: &ExecuteRequest) -> Properties {
    let plain = |value: &str| Property {
        kind: "string".into(),
        value: Value::String(value.to_string()),
    };
    let mut props = Properties::new();
    props.insert("resourceId".into(), plain(&req.system.resource_id));
    props.insert("resourceName".into(), plain(&req.system.resource_name));
    props.insert(
        "resourceType".into(),
        plain(&req.system.resource_type.full()),
    );
    props.insert(
        "storage_account_name_suffix".into(),
        Property {
            kind: "integer".into(),
            value: Value::from(storage_account_name_suffix(&req.system.resource_id)),
        },
    );
    props
}

/// The number from 1 to 50 the legacy storage account template appends to the account
/// name. The Python driver drew it at random on every Create, so a repeated Create made a
/// second account; derived from the resource id, the same resource keeps its account.
pub fn storage_account_name_suffix(resource_id: &str) -> u64 {
    let digest = Sha256::digest(resource_id.as_bytes());
    let mut leading = [0u8; 8];
    leading.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(leading) % 50 + 1
}

fn labels(req: &ExecuteRequest) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            LABEL_RESOURCE_ID.into(),
            label_value(&req.system.resource_id),
        ),
        (
            LABEL_RESOURCE_NAME.into(),
            label_value(&req.system.resource_name),
        ),
        (
            LABEL_RESOURCE_TYPE.into(),
            label_value(&req.system.resource_type.name),
        ),
        (
            LABEL_DEPLOYMENT_LOCATION.into(),
            label_value(&req.deployment_location.name),
        ),
        (
            LABEL_LIFECYCLE.into(),
            match &req.lifecycle {
                Lifecycle::Operation(name) => dns_label(name, 63),
                _ => "create".into(),
            },
        ),
        (LABEL_MANAGED_BY.into(), MANAGED_BY.into()),
    ])
}

/// The subscription a request deploys into, validated.
fn subscription_id(req: &ExecuteRequest, ctx: &MappingContext) -> Result<String, ApiError> {
    let subscription = req
        .deployment_location
        .credentials
        .subscription_id
        .clone()
        .or_else(|| ctx.default_subscription_id.clone())
        .ok_or_else(|| ApiError::bad_request("AZURE subscriptionId is missing"))?;
    if !is_guid(&subscription) {
        return Err(ApiError::bad_request(
            "AZURE subscriptionId of the deployment location is not a GUID",
        ));
    }
    Ok(subscription)
}

/// Checks the deployment location can authenticate; every lifecycle needs it.
pub fn check_credentials(req: &ExecuteRequest, ctx: &MappingContext) -> Result<(), ApiError> {
    let credentials = &req.deployment_location.credentials;
    if !credentials.has_client_secret() && !ctx.operator_identity {
        return Err(ApiError::bad_request("AZURE credentials are missing"));
    }
    subscription_id(req, ctx).map(|_| ())
}

/// The Secret holding the deployment location's credentials, when it carries any.
fn credentials_secret_ref(
    req: &ExecuteRequest,
    pending: &PendingRequest,
) -> Option<LocalObjectRef> {
    let credentials = &req.deployment_location.credentials;
    credentials.has_client_secret().then(|| LocalObjectRef {
        name: credentials_secret_name(
            pending.tenant_id.as_deref(),
            &req.deployment_location.name,
            credentials,
        ),
    })
}

fn credentials_secret(
    req: &ExecuteRequest,
    ctx: &MappingContext,
    pending: &PendingRequest,
) -> Option<Secret> {
    let credentials = &req.deployment_location.credentials;
    if !credentials.has_client_secret() {
        return None;
    }
    let data: BTreeMap<String, String> = [
        ("tenantId", &credentials.tenant_id),
        ("clientId", &credentials.client_id),
        ("clientSecret", &credentials.client_secret),
        ("subscriptionId", &credentials.subscription_id),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.clone().map(|v| (key.to_string(), v)))
    .collect();
    Some(Secret {
        metadata: ObjectMeta {
            name: Some(credentials_secret_name(
                pending.tenant_id.as_deref(),
                &req.deployment_location.name,
                credentials,
            )),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(BTreeMap::from([
                (
                    LABEL_DEPLOYMENT_LOCATION.into(),
                    label_value(&req.deployment_location.name),
                ),
                (LABEL_MANAGED_BY.into(), MANAGED_BY.into()),
            ])),
            ..ObjectMeta::default()
        },
        string_data: Some(data),
        type_: Some("Opaque".into()),
        ..Secret::default()
    })
}

/// Maps a validated request to what the shim does in the cluster.
pub fn plan(
    req: &ExecuteRequest,
    files: &DriverFiles,
    ctx: &MappingContext,
    pending: &PendingRequest,
) -> Result<Action, ApiError> {
    check_credentials(req, ctx)?;
    let type_name = req.system.resource_type.name.as_str();
    if req.lifecycle == Lifecycle::Delete {
        return Ok(Action::Delete(DeleteTarget::Resource {
            resource_id_label: label_value(&req.system.resource_id),
        }));
    }
    if let Some(added) = undone_addition(req, files)? {
        return Ok(Action::Delete(removal_target(req, &added)));
    }
    let template = match files.template_for(&req.lifecycle)? {
        Some(template) => template,
        None => match builtin_template(type_name, &req.lifecycle) {
            Some(source) => Template::Bicep(source.to_string()),
            None if req.lifecycle == Lifecycle::Create => {
                return Err(ApiError::bad_request(format!(
                    "Unknown resource type \"{}\": no template in driverFiles and no built-in template",
                    req.system.resource_type.full()
                )));
            }
            None => {
                return Err(ApiError::bad_request(format!(
                    "No lifecycle script with name \"{}\"",
                    req.lifecycle.name()
                )));
            }
        },
    };
    let (source, shape) = match template {
        Template::Bicep(text) => {
            let shape = bicep_shape(&text)?;
            (TemplateSource::Bicep(text), shape)
        }
        Template::Json(text) => {
            let map: Map<String, Value> = serde_json::from_str(&text).map_err(|_| {
                ApiError::bad_request("driverFiles JSON template must be an object")
            })?;
            let shape = json_shape(&map);
            (TemplateSource::Json(map), shape)
        }
    };
    Ok(Action::Apply(Box::new(build_plan(
        req, ctx, pending, source, &shape,
    )?)))
}

fn build_plan(
    req: &ExecuteRequest,
    ctx: &MappingContext,
    pending: &PendingRequest,
    template: TemplateSource,
    shape: &TemplateShape,
) -> Result<ApplyPlan, ApiError> {
    let name = request_object_name(req, &req.lifecycle);
    let mut properties = system_parameters(req);
    properties.extend(req.merged_properties());

    let mut parameters = BTreeMap::new();
    let mut secure = BTreeMap::new();
    for (param, declared_secure) in &shape.parameters {
        let Some(property) = properties.get(param) else {
            continue;
        };
        if property.value.is_null() {
            continue;
        }
        if property.is_secure() || *declared_secure {
            let text = match &property.value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            secure.insert(param.clone(), text);
        } else {
            parameters.insert(param.clone(), property.value.clone());
        }
    }

    if template_is_builtin(req) {
        check_legacy_names(req)?;
    }
    let location = ["resourcegroup_location", "location"]
        .iter()
        .find_map(|key| req.string_property(key))
        .or_else(|| {
            ["location", "region"].iter().find_map(|key| {
                req.deployment_location
                    .properties
                    .get(*key)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        });
    let is_legacy = builtin_template(&req.system.resource_type.name, &Lifecycle::Create).is_some();
    let resource_group = if shape.subscription_scope {
        None
    } else {
        let group = deployment_group_property(req)
            .and_then(|property| req.string_property(property))
            .or_else(|| {
                req.deployment_location
                    .properties
                    .get("resourceGroup")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .ok_or_else(|| ApiError::missing_field("resourcegroup_name"))?;
        check_resource_group(&group)?;
        Some(group)
    };
    if let Some(location) = &location {
        check_location(location)?;
    }
    if shape.subscription_scope && location.is_none() {
        return Err(ApiError::missing_field("resourcegroup_location"));
    }

    let mut spec = AzureResourceSpec::new(String::new(), template);
    spec.resource_group = resource_group;
    spec.scope = if shape.subscription_scope {
        Scope::Subscription
    } else {
        Scope::ResourceGroup
    };
    spec.subscription_id = Some(subscription_id(req, ctx)?);
    // Legacy types deploy into groups made by an AzureResourceGroup resource, as before.
    spec.create_resource_group = !is_legacy && location.is_some();
    if req.lifecycle == Lifecycle::Create && keeps_resources_on_delete(req, ctx) {
        spec.deletion_policy = DeletionPolicy::Orphan;
    }
    spec.location = location;
    spec.parameters = parameters;
    // Every request is carried out: an unchanged Create deploys again (and a failed one
    // is retried) instead of repeating the last result.
    spec.redeploy_token = Some(pending.uuid.clone());
    spec.credentials_secret_ref = credentials_secret_ref(req, pending);

    let secure_secret_name = format!("{name}-params");
    spec.parameters_from = secure
        .keys()
        .map(|param| ParameterFrom {
            name: param.clone(),
            source: ParameterSource::SecretKeyRef(KeyRef {
                name: secure_secret_name.clone(),
                key: param.clone(),
            }),
        })
        .collect();

    let mut resource = AzureResource::new(&name, spec);
    resource.metadata.namespace = Some(ctx.namespace.clone());
    resource.metadata.labels = Some(labels(req));
    resource.metadata.annotations = Some(annotations(req, ctx, pending)?);
    resource.metadata.finalizers = Some(vec![FINALIZER.into()]);

    let secure_parameters = (!secure.is_empty()).then(|| Secret {
        metadata: ObjectMeta {
            name: Some(secure_secret_name),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(labels(req)),
            ..ObjectMeta::default()
        },
        string_data: Some(secure),
        type_: Some("Opaque".into()),
        ..Secret::default()
    });
    let plan = ApplyPlan {
        resource,
        credentials: credentials_secret(req, ctx, pending),
        secure_parameters,
    };
    check_sizes(&plan)?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver_files::{Limits, tests::zip_of};
    use crate::request::parse_execute;
    use base64::Engine;
    use serde_json::json;

    const SUB: &str = "00000000-0000-0000-0000-000000000001";

    fn body(lifecycle: &str, resource_type: &str, props: Value) -> Value {
        json!({
            "lifecycleName": lifecycle,
            "driverFiles": "",
            "systemProperties": {
                "resourceId": {"type": "string", "value": "be3870d2-891c-487e-9736-ca19e4741cf4"},
                "resourceName": {"type": "string", "value": "net-a"},
                "resourceType": {"type": "string", "value": resource_type}
            },
            "resourceProperties": props,
            "deploymentLocation": {
                "name": "Azure Dev",
                "type": "Azure",
                "properties": {"tenantId": "t", "clientId": "c", "clientSecret": "s3cr3t", "subscriptionId": SUB}
            }
        })
    }

    fn ctx() -> MappingContext {
        MappingContext {
            namespace: "brent".into(),
            ..MappingContext::default()
        }
    }

    fn pending() -> PendingRequest {
        PendingRequest {
            uuid: "u-1".into(),
            lifecycle: "Create".into(),
            tenant_id: Some("tenant-a".into()),
            trace: BTreeMap::new(),
            delete: false,
        }
    }

    fn run(body: Value) -> Result<Action, ApiError> {
        let req = parse_execute(body.to_string().as_bytes()).unwrap();
        let files = DriverFiles::from_zip(&req.driver_files, &Limits::default()).unwrap();
        plan(&req, &files, &ctx(), &pending())
    }

    fn apply(action: Action) -> ApplyPlan {
        match action {
            Action::Apply(plan) => *plan,
            other => panic!("expected apply, got {other:?}"),
        }
    }

    #[test]
    fn legacy_vnet_create_uses_the_builtin_template() {
        let plan = apply(
            run(body(
                "Install",
                "resource::AzureVNet::1.0",
                json!({
                    "resourcegroup_name": {"type": "string", "value": "rg1"},
                    "vnet_name": {"type": "string", "value": "vnet1"},
                    "vnet_enable_ddos_protection": {"type": "boolean", "value": "false"},
                    "unrelated": {"type": "string", "value": "x"}
                }),
            ))
            .unwrap(),
        );
        let resource = &plan.resource;
        assert_eq!(
            resource.name_any(),
            "r-be3870d2-891c-487e-9736-ca19e4741cf4"
        );
        assert_eq!(resource.namespace().as_deref(), Some("brent"));
        assert_eq!(resource.spec.resource_group.as_deref(), Some("rg1"));
        assert_eq!(resource.spec.subscription_id.as_deref(), Some(SUB));
        assert_eq!(resource.spec.redeploy_token.as_deref(), Some("u-1"));
        assert!(!resource.spec.create_resource_group);
        assert_eq!(
            resource.spec.parameters,
            BTreeMap::from([
                ("vnet_enable_ddos_protection".into(), json!(false)),
                ("vnet_name".into(), json!("vnet1")),
            ])
        );
        assert!(
            matches!(&resource.spec.template, Some(TemplateSource::Bicep(src)) if src.contains("Creator: 'Cp4na'"))
        );
        assert_eq!(resource.labels()[LABEL_RESOURCE_TYPE], "AzureVNet");
        assert_eq!(
            resource.labels()[LABEL_DEPLOYMENT_LOCATION],
            "Azure-Dev-".to_string() + &short_digest("Azure Dev")
        );
        assert_eq!(resource.annotations()[ANNOTATION_RESOURCE_NAME], "net-a");
        assert_eq!(resource.finalizers(), [FINALIZER.to_string()]);
        let recorded: PendingRequest =
            serde_json::from_str(&resource.annotations()[ANNOTATION_REQUEST]).unwrap();
        assert_eq!(recorded, pending());
        let credentials = plan.credentials.unwrap();
        let credentials_name = credentials.metadata.name.clone().unwrap();
        assert!(
            credentials_name.starts_with("dl-") && credentials_name.len() == 43,
            "{credentials_name}"
        );
        assert_eq!(
            resource.spec.credentials_secret_ref.as_ref().unwrap().name,
            credentials.metadata.name.unwrap()
        );
        assert!(plan.secure_parameters.is_none());
        assert!(!serde_json::to_string(&resource).unwrap().contains("s3cr3t"));
    }

    #[test]
    fn storage_accounts_get_a_suffix_from_1_to_50_fixed_by_the_resource_id() {
        let suffixes: Vec<u64> = (0..500)
            .map(|n| storage_account_name_suffix(&format!("resource-{n}")))
            .collect();
        assert!(suffixes.iter().all(|s| (1..=50).contains(s)));
        assert!(suffixes.contains(&1) && suffixes.contains(&50));
        assert_eq!(
            storage_account_name_suffix("resource-7"),
            storage_account_name_suffix("resource-7")
        );
        let plan = apply(
            run(body(
                "Create",
                "resource::AzureStorageAccount::1.0",
                json!({"resourcegroup_name": "rg1", "storage_account_name": "Data"}),
            ))
            .unwrap(),
        );
        assert_eq!(
            plan.resource.spec.parameters["storage_account_name_suffix"],
            json!(storage_account_name_suffix(
                "be3870d2-891c-487e-9736-ca19e4741cf4"
            ))
        );
        // A package may pin the number, e.g. to keep an account the Python driver named.
        let pinned = apply(
            run(body(
                "Create",
                "resource::AzureStorageAccount::1.0",
                json!({"resourcegroup_name": "rg1", "storage_account_name": "Data",
                       "storage_account_name_suffix": {"type": "integer", "value": 12}}),
            ))
            .unwrap(),
        );
        assert_eq!(
            pinned.resource.spec.parameters["storage_account_name_suffix"],
            json!(12)
        );
    }

    #[test]
    fn the_202_names_the_created_entry_and_nulls_the_deleted_one() {
        let create = parse_execute(
            &serde_json::to_vec(&body(
                "Install",
                "resource::AzureVNet::1.0",
                json!({"resourcegroup_name": "rg1"}),
            ))
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            Value::Object(accepted_topology(&create, Some("/subscriptions/s/x"))),
            json!({"neta": {"id": "/subscriptions/s/x", "type": "Azure"}})
        );
        let mut delete_body = body("Uninstall", "resource::AzureVNet::1.0", json!({}));
        delete_body["associatedTopology"] = json!({
            "neta": {"id": "/subscriptions/s/x", "type": "Azure"},
            "other": {"id": "/subscriptions/s/y", "type": "Azure"}
        });
        let delete = parse_execute(&serde_json::to_vec(&delete_body).unwrap()).unwrap();
        assert_eq!(
            Value::Object(accepted_topology(&delete, None)),
            json!({"neta": null, "other": {"id": "/subscriptions/s/y", "type": "Azure"}})
        );
        let mut operation_body = body("CreateVnetPeering", "resource::AzureVNet::1.0", json!({}));
        operation_body["associatedTopology"] = delete_body["associatedTopology"].clone();
        let operation = parse_execute(&serde_json::to_vec(&operation_body).unwrap()).unwrap();
        assert!(accepted_topology(&operation, Some("/subscriptions/s/z")).is_empty());
    }

    #[test]
    fn legacy_names_azure_refuses_are_400s() {
        let storage = |name: &str| {
            run(body(
                "Create",
                "resource::AzureStorageAccount::1.0",
                json!({"resourcegroup_name": "rg1", "storage_account_name": name}),
            ))
        };
        assert!(storage("MyData01").is_ok());
        for bad in ["my-data", "dätä", "a b", "x\"y", "data "] {
            let err = storage(bad).unwrap_err();
            assert_eq!(err.status, 400, "{bad}");
            assert!(err.message.contains("storage_account_name"), "{bad}");
        }
        let nsg = |name: &str| {
            run(body(
                "Create",
                "resource::AzureNetworkSecurityGroup::1.0",
                json!({"resourcegroup_name": "rg1", "network_security_group_name": name}),
            ))
        };
        assert!(nsg("nsg-1_a.b").is_ok());
        for bad in ["nsg/1", "nsg 1", "nsgé"] {
            assert_eq!(nsg(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn resource_group_type_deploys_at_subscription_scope() {
        let plan = apply(
            run(body(
                "Create",
                "resource::AzureResourceGroup::1.0",
                json!({"resourcegroup_name": "rg1", "resourcegroup_location": "westeurope"}),
            ))
            .unwrap(),
        );
        assert_eq!(plan.resource.spec.scope, Scope::Subscription);
        assert_eq!(plan.resource.spec.resource_group, None);
        assert_eq!(plan.resource.spec.location.as_deref(), Some("westeurope"));
        let mut object = plan.resource.clone();
        object.metadata.uid = Some("uid-1".into());
        assert_eq!(
            topology_id(&object).unwrap(),
            format!("/subscriptions/{SUB}/resourceGroups/rg1")
        );
    }

    #[test]
    fn driver_files_template_with_secure_parameters() {
        let zip = zip_of(&[(
            "Create.bicep",
            b"@secure()\nparam adminPassword string\nparam size int\nparam resourceName string\nparam key string\n",
        )]);
        let mut request = body(
            "Create",
            "resource::MyVm::2.0",
            json!({
                "resourcegroup_name": "rg1",
                "adminPassword": {"type": "string", "value": "pw"},
                "size": {"type": "integer", "value": "2"},
                "key": {"type": "key", "keyName": "k", "privateKey": "PRIV", "publicKey": "PUB"}
            }),
        );
        request["driverFiles"] = json!(base64::engine::general_purpose::STANDARD.encode(zip));
        let plan = apply(run(request).unwrap());
        let spec = &plan.resource.spec;
        assert_eq!(
            spec.parameters,
            BTreeMap::from([
                ("resourceName".into(), json!("net-a")),
                ("size".into(), json!(2))
            ])
        );
        let secret = plan.secure_parameters.unwrap();
        let name = secret.metadata.name.clone().unwrap();
        assert_eq!(name, "r-be3870d2-891c-487e-9736-ca19e4741cf4-params");
        assert_eq!(
            secret.string_data.unwrap(),
            BTreeMap::from([
                ("adminPassword".into(), "pw".into()),
                ("key".into(), "PRIV".into())
            ])
        );
        assert_eq!(spec.parameters_from.len(), 2);
        assert!(spec.create_resource_group == spec.location.is_some());
    }

    #[test]
    fn operations_get_their_own_object_and_undo_deletes_it() {
        let props = json!({
            "resourcegroup_name": "rg1",
            "initiator_vnet_name": "a", "acceptor_vnet_name": "b", "acceptor_vnet_rg_name": "rg2"
        });
        let plan = apply(
            run(body(
                "CreateVnetPeering",
                "resource::AzureVNet::1.0",
                props.clone(),
            ))
            .unwrap(),
        );
        assert_eq!(
            plan.resource.name_any(),
            "r-be3870d2-891c-487e-9736-ca19e4741cf4-createvnetpeering-a-to-b"
        );
        match run(body("removevnetpeering", "resource::AzureVNet::1.0", props)).unwrap() {
            Action::Delete(DeleteTarget::Object {
                name,
                previous,
                python,
            }) => {
                assert_eq!(name, plan.resource.name_any());
                // The name before peerings coexisted: found only if it peers a and b.
                let previous = previous.unwrap();
                assert_eq!(
                    previous.name,
                    "r-be3870d2-891c-487e-9736-ca19e4741cf4-createvnetpeering"
                );
                assert!(previous.matches(&plan.resource));
                // The Python driver's key: the name without `-`, then `peer`.
                assert_eq!(
                    python,
                    Some(PythonAddition {
                        key: "netapeer".into(),
                        resource: "providers/Microsoft.Network/virtualNetworks/a/virtualNetworkPeerings/a-to-b".into()
                    })
                );
            }
            other => panic!("{other:?}"),
        }
        // The peering deploys into the initiator's group, as the Python driver's did.
        let in_initiator_group = apply(
            run(body(
                "CreateVnetPeering",
                "resource::AzureVNet::1.0",
                json!({"resourcegroup_name": "rg1", "initiator_vnet_name": "a",
                       "initiator_vnet_rg_name": "rg-hub", "acceptor_vnet_name": "b"}),
            ))
            .unwrap(),
        );
        assert_eq!(
            in_initiator_group.resource.spec.resource_group.as_deref(),
            Some("rg-hub")
        );
        assert_eq!(plan.resource.spec.resource_group.as_deref(), Some("rg1"));
        // A second peering of the same VNet is a second object; its removal names only it.
        let other = json!({
            "resourcegroup_name": "rg1",
            "initiator_vnet_name": "a", "acceptor_vnet_name": "C_net", "acceptor_vnet_rg_name": "rg3"
        });
        let second = apply(
            run(body(
                "CreateVnetPeering",
                "resource::AzureVNet::1.0",
                other.clone(),
            ))
            .unwrap(),
        );
        assert_ne!(second.resource.name_any(), plan.resource.name_any());
        match run(body("RemoveVnetPeering", "resource::AzureVNet::1.0", other)).unwrap() {
            Action::Delete(DeleteTarget::Object { name, previous, .. }) => {
                assert_eq!(name, second.resource.name_any());
                assert!(!previous.unwrap().matches(&plan.resource));
            }
            other => panic!("{other:?}"),
        }
    }

    fn removal(action: Action) -> (String, Option<PreviousObject>, Option<PythonAddition>) {
        match action {
            Action::Delete(DeleteTarget::Object {
                name,
                previous,
                python,
            }) => (name, previous, python),
            other => panic!("expected a removal, got {other:?}"),
        }
    }

    #[test]
    fn remove_route_undoes_add_route_of_the_same_route() {
        let route = |name: &str| {
            let mut request = body(
                "AddRoute",
                "resource::AzureRouteTable::1.0",
                json!({"resourcegroup_name": "rg1", "route_table_name": "rt1",
                       "route_address_prefix": "192.168.1.0/24", "route_next_hop_type": "VirtualAppliance"}),
            );
            request["requestProperties"] = json!({"route_name": name});
            request
        };
        let added = apply(run(route("bo1")).unwrap());
        assert_eq!(
            added.resource.name_any(),
            "r-be3870d2-891c-487e-9736-ca19e4741cf4-addroute-bo1"
        );
        assert_eq!(added.resource.spec.parameters["route_name"], json!("bo1"));
        let other = apply(run(route("bo2")).unwrap());
        assert_ne!(other.resource.name_any(), added.resource.name_any());

        let mut remove = route("bo1");
        remove["lifecycleName"] = json!("RemoveRoute");
        let (name, _, python) = removal(run(remove).unwrap());
        assert_eq!(name, added.resource.name_any());
        // multipleBOs: the name without `-`, the route name, `route`.
        assert_eq!(
            python,
            Some(PythonAddition {
                key: "netabo1route".into(),
                resource: "providers/Microsoft.Network/routeTables/rt1/routes/bo1".into()
            })
        );
    }

    #[test]
    fn packages_pair_their_own_additions_and_removals() {
        let template = b"param gateway_name string\nresource g 'Microsoft.Network/publicIPAddresses@2023-09-01' = {\n  name: gateway_name\n  location: 'westeurope'\n}\n";
        let request = |lifecycle: &str, files: &[(&str, &[u8])]| {
            let mut request = body(
                lifecycle,
                "resource::Edge::1.0",
                json!({"resourcegroup_name": "rg1", "gateway_name": "gw1"}),
            );
            request["driverFiles"] =
                json!(base64::engine::general_purpose::STANDARD.encode(zip_of(files)));
            request
        };
        for verb in ["Add", "Create"] {
            let addition = format!("{verb}Gateway.bicep");
            let files = [(addition.as_str(), template.as_slice())];
            let added = apply(run(request(&format!("{verb}Gateway"), &files)).unwrap());
            let (name, previous, python) = removal(run(request("RemoveGateway", &files)).unwrap());
            assert_eq!(name, added.resource.name_any());
            assert!(name.ends_with(&format!("-{}gateway-gw1", verb.to_ascii_lowercase())));
            assert!(previous.unwrap().matches(&added.resource));
            assert_eq!(python, None, "the Python driver made no such thing");
        }
        // A Remove template beside the addition would never run: refused.
        let files = [
            ("AddGateway.bicep", template.as_slice()),
            ("RemoveGateway.bicep", template.as_slice()),
        ];
        let refused = run(request("RemoveGateway", &files)).unwrap_err();
        assert_eq!(refused.status, 400);
        assert!(
            refused.message.contains("undoes \"AddGateway\""),
            "{}",
            refused.message
        );
        // Without an addition, a Remove template is an operation like any other.
        let files = [("RemoveGateway.bicep", template.as_slice())];
        assert!(matches!(
            run(request("RemoveGateway", &files)).unwrap(),
            Action::Apply(_)
        ));
    }

    #[test]
    fn request_ids_and_topology_of_additions_and_removals_have_the_python_shapes() {
        assert_eq!(request_id("CreateVnetPeering", "/x", "u"), "Create::/x::u");
        assert_eq!(request_id("AddRoute", "/x", "u"), "Create::/x::u");
        assert_eq!(request_id("removevnetpeering", "/x", "u"), "Delete::/x::u");
        assert_eq!(request_id("RemoveRoute", "/x", "u"), "Delete::/x::u");
        assert_eq!(request_id("Create", "/x", "u"), "Create::/x::u");
        assert_eq!(request_id("Delete", "/x", "u"), "Delete::/x::u");
        assert_eq!(request_id("Configure", "/x", "u"), "Configure::/x::u");

        let mut peering = body(
            "CreateVnetPeering",
            "resource::AzureVNet::1.0",
            json!({"initiator_vnet_name": "hub-vnet", "acceptor_vnet_name": "b"}),
        );
        peering["systemProperties"]["resourceName"]["value"] = json!("site-1__VNetResource");
        let req = parse_execute(peering.to_string().as_bytes()).unwrap();
        assert_eq!(
            Value::Object(accepted_topology(&req, Some("/dep"))),
            json!({"site1__hub-vnetpeer": {"id": "/dep", "type": "Azure"}})
        );
        peering["lifecycleName"] = json!("RemoveVnetPeering");
        peering["associatedTopology"] = json!({"site1__VNetResource": {"id": "/vnet", "type": "Azure"},
                   "site1__hub-vnetpeer": {"id": "/dep", "type": "Azure"}});
        let req = parse_execute(peering.to_string().as_bytes()).unwrap();
        assert_eq!(
            Value::Object(accepted_topology(&req, None)),
            json!({"site1__VNetResource": {"id": "/vnet", "type": "Azure"},
                   "site1__hub-vnetpeer": null})
        );
        let configure = body("Configure", "resource::AzureVNet::1.0", json!({}));
        let req = parse_execute(configure.to_string().as_bytes()).unwrap();
        assert!(accepted_topology(&req, Some("/dep")).is_empty());
    }

    #[test]
    fn legacy_delete_keeps_resources_orphans_legacy_resources_only() {
        let keep = MappingContext {
            legacy_delete_keeps_resources: true,
            ..ctx()
        };
        let plan_with = |ctx: &MappingContext, lifecycle: &str, kind: &str| {
            let req = parse_execute(
                body(
                    lifecycle,
                    kind,
                    json!({"resourcegroup_name": "rg1", "resourcegroup_location": "westeurope",
                    "initiator_vnet_name": "a", "acceptor_vnet_name": "b"}),
                )
                .to_string()
                .as_bytes(),
            )
            .unwrap();
            apply(plan(&req, &DriverFiles::default(), ctx, &pending()).unwrap())
                .resource
                .spec
                .deletion_policy
        };
        for kind in [
            "resource::AzureVNet::1.0",
            "resource::AzureSubnet::1.0",
            "resource::AzureNetworkSecurityGroup::1.0",
            "resource::AzureRouteTable::1.0",
            "resource::AzureStorageAccount::1.0",
        ] {
            assert_eq!(
                plan_with(&keep, "Create", kind),
                DeletionPolicy::Orphan,
                "{kind}"
            );
            assert_eq!(
                plan_with(&ctx(), "Create", kind),
                DeletionPolicy::Delete,
                "{kind}"
            );
        }
        // Resource groups were deleted by the Python driver too; a removal must remove.
        for (lifecycle, kind) in [
            ("Create", "resource::AzureResourceGroup::1.0"),
            ("CreateVnetPeering", "resource::AzureVNet::1.0"),
        ] {
            assert_eq!(
                plan_with(&keep, lifecycle, kind),
                DeletionPolicy::Delete,
                "{kind}"
            );
        }
    }

    #[test]
    fn delete_targets_every_object_of_the_resource() {
        match run(body("Uninstall", "resource::Whatever::1.0", json!({}))).unwrap() {
            Action::Delete(DeleteTarget::Resource { resource_id_label }) => {
                assert_eq!(resource_id_label, "be3870d2-891c-487e-9736-ca19e4741cf4")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn python_driver_topology_ids_are_adopted_for_deletion() {
        let deployment = format!(
            "/subscriptions/{SUB}/resourceGroups/rg-a/providers/Microsoft.Resources/deployments/neta"
        );
        let mut delete = body("Delete", "resource::AzureVNet::1.0", json!({}));
        delete["associatedTopology"] = json!({"neta": {"id": deployment, "type": "Azure"}});
        let req = parse_execute(delete.to_string().as_bytes()).unwrap();
        let target = DeleteTarget::Resource {
            resource_id_label: "be3870d2-891c-487e-9736-ca19e4741cf4".into(),
        };
        let held = entry_to_adopt(&req, &target).unwrap();
        assert_eq!(held.arm_id, deployment);
        let pending = PendingRequest {
            delete: true,
            ..pending()
        };
        let plan = adopt_for_delete(&req, &ctx(), &pending, &held).unwrap();
        let object = &plan.resource;
        assert_eq!(object.name_any(), "r-be3870d2-891c-487e-9736-ca19e4741cf4");
        assert_eq!(object.spec.adopt.as_ref().unwrap().id, deployment);
        assert_eq!(object.spec.template, None);
        assert_eq!(object.spec.subscription_id.as_deref(), Some(SUB));
        assert_eq!(
            object.finalizers(),
            [FINALIZER.to_string(), CLEANUP_FINALIZER.to_string()]
        );
        assert_eq!(arm_id(object).unwrap(), deployment);
        assert!(plan.credentials.is_some());

        let keep = MappingContext {
            legacy_delete_keeps_resources: true,
            ..ctx()
        };
        let kept = adopt_for_delete(&req, &keep, &pending, &held).unwrap();
        assert_eq!(kept.resource.spec.deletion_policy, DeletionPolicy::Orphan);

        // A removal adopts, under the addition's object, the one resource it names, in
        // the group of the deployment Brent's entry holds (not the whole deployment: the
        // Python driver kept one key for every peering of a VNet).
        let removal = DeleteTarget::Object {
            name: "r-x-createvnetpeering-a-to-b".into(),
            previous: None,
            python: Some(PythonAddition {
                key: "netapeer".into(),
                resource:
                    "providers/Microsoft.Network/virtualNetworks/a/virtualNetworkPeerings/a-to-b"
                        .into(),
            }),
        };
        assert_eq!(entry_to_adopt(&req, &removal), None, "no such entry");
        let mut remove = body("RemoveVnetPeering", "resource::AzureVNet::1.0", json!({}));
        remove["associatedTopology"] = json!({"netapeer": {"id": deployment, "type": "Azure"}});
        let req = parse_execute(remove.to_string().as_bytes()).unwrap();
        let adopted = entry_to_adopt(&req, &removal).unwrap();
        assert_eq!(adopted.object, "r-x-createvnetpeering-a-to-b");
        assert_eq!(
            adopted.arm_id,
            format!(
                "/subscriptions/{SUB}/resourceGroups/rg-a/providers/Microsoft.Network/virtualNetworks/a/virtualNetworkPeerings/a-to-b"
            )
        );
        let plan = adopt_for_delete(&req, &keep, &pending, &adopted).unwrap();
        assert_eq!(plan.resource.name_any(), "r-x-createvnetpeering-a-to-b");
        assert_eq!(plan.resource.spec.deletion_policy, DeletionPolicy::Delete);

        let bad_entry = AdoptedEntry {
            entry: "neta".into(),
            arm_id: "rg-a".into(),
            object: held.object.clone(),
        };
        let bad = adopt_for_delete(&req, &ctx(), &pending, &bad_entry).unwrap_err();
        assert_eq!(bad.status, 400);
        assert!(
            bad.body()["localizedMessage"]
                .as_str()
                .unwrap()
                .contains("associatedTopology entry \"neta\"")
        );
    }

    #[test]
    fn bad_mappings_are_400s() {
        let unknown = run(body("Create", "resource::Nope::1.0", json!({}))).unwrap_err();
        assert_eq!(
            unknown.message,
            "Unknown resource type \"resource::Nope::1.0\": no template in driverFiles and no built-in template"
        );
        let start = run(body("Start", "resource::AzureVNet::1.0", json!({}))).unwrap_err();
        assert_eq!(start.message, "No lifecycle script with name \"Start\"");
        let no_group = run(body(
            "Create",
            "resource::AzureVNet::1.0",
            json!({"vnet_name": "v"}),
        ))
        .unwrap_err();
        assert_eq!(
            no_group.message,
            "'resourcegroup_name' is a required field but was not found in the request data body"
        );
        let mut no_creds = body("Create", "resource::AzureVNet::1.0", json!({}));
        no_creds["deploymentLocation"]["properties"] = json!({"subscriptionId": SUB});
        assert_eq!(
            run(no_creds).unwrap_err().message,
            "AZURE credentials are missing"
        );
        let bad_group = run(body(
            "Create",
            "resource::AzureVNet::1.0",
            json!({"resourcegroup_name": "a/b"}),
        ))
        .unwrap_err();
        assert_eq!(
            bad_group.message,
            "resourcegroup_name \"a/b\" is not a valid Azure resource group name"
        );
        let mut bad_sub = body("Create", "resource::AzureVNet::1.0", json!({}));
        bad_sub["deploymentLocation"]["properties"]["subscriptionId"] = json!("nope");
        assert_eq!(
            run(bad_sub).unwrap_err().message,
            "AZURE subscriptionId of the deployment location is not a GUID"
        );
    }

    #[test]
    fn names_stay_dns_valid() {
        assert_eq!(label_value("net-a"), "net-a");
        let odd = label_value("Net A/b");
        assert!(odd.starts_with("Net-A-b-") && odd.len() <= 63);
        assert_eq!(label_value("Net A/b"), odd);
        let name = object_name("Weird_ID", &Lifecycle::Operation("Do Thing".into()));
        assert!(name.starts_with("r-weird-id-"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn template_shapes() {
        let shape = bicep_shape(
            "targetScope = 'subscription'\n@secure()\n@description('x')\nparam a string\nparam b int = 3\n",
        )
        .unwrap();
        assert!(shape.subscription_scope);
        assert_eq!(
            shape.parameters,
            BTreeMap::from([("a".into(), true), ("b".into(), false)])
        );
        let json: Map<String, Value> = serde_json::from_value(json!({
            "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
            "parameters": {"p": {"type": "secureString"}, "q": {"type": "string"}}
        }))
        .unwrap();
        let shape = json_shape(&json);
        assert!(shape.subscription_scope);
        assert_eq!(
            shape.parameters,
            BTreeMap::from([("p".into(), true), ("q".into(), false)])
        );
    }

    #[test]
    fn secure_parameters_are_found_by_the_bicep_parser() {
        let shape = bicep_shape(
            "@secure()\n@metadata({\n  owner: 'ops'\n  note: 'param fake string'\n})\nparam adminPassword string\n// @secure()\nparam size int\n@sys.secure()\nparam key string\nvar text = '''\n@secure()\n'''\nparam plain string\n",
        )
        .unwrap();
        assert!(!shape.subscription_scope);
        assert_eq!(
            shape.parameters,
            BTreeMap::from([
                ("adminPassword".into(), true),
                ("key".into(), true),
                ("plain".into(), false),
                ("size".into(), false),
            ])
        );
        let broken = bicep_shape("param p string = {").unwrap_err();
        assert_eq!(broken.status, 400);
        assert!(
            broken
                .message
                .starts_with("The Bicep template does not parse")
        );
    }

    #[test]
    fn credentials_secrets_are_per_tenant_exact_location_and_client() {
        let credentials = |client: &str| Credentials {
            tenant_id: Some("t".into()),
            client_id: Some(client.into()),
            client_secret: Some("s".into()),
            subscription_id: Some(SUB.into()),
        };
        let base = credentials_secret_name(Some("tenant-a"), "Azure Dev", &credentials("c"));
        let others = [
            credentials_secret_name(Some("tenant-b"), "Azure Dev", &credentials("c")),
            credentials_secret_name(None, "Azure Dev", &credentials("c")),
            credentials_secret_name(Some("tenant-a"), "azure dev", &credentials("c")),
            credentials_secret_name(Some("tenant-a"), "Azure Dev", &credentials("c2")),
        ];
        assert!(others.iter().all(|other| *other != base), "{others:?}");
        let rotated = Credentials {
            client_secret: Some("new".into()),
            ..credentials("c")
        };
        assert_eq!(
            credentials_secret_name(Some("tenant-a"), "Azure Dev", &rotated),
            base
        );
    }

    fn owned_by(owner: &str) -> AzureResource {
        let mut object = AzureResource::new("r-x", AzureResourceSpec::adopting("/subscriptions/x"));
        object.metadata.annotations = Some(BTreeMap::from([
            (ANNOTATION_OWNER.to_string(), owner.to_string()),
            (ANNOTATION_RESOURCE_ID.to_string(), "res-1".to_string()),
        ]));
        object
    }

    #[test]
    fn requests_with_other_credentials_are_forbidden() {
        let req = |tenant_id: &str, client: &str, secret: &str, subscription: &str| {
            let mut request = body("Create", "resource::AzureVNet::1.0", json!({}));
            request["deploymentLocation"]["properties"] = json!({
                "tenantId": tenant_id, "clientId": client, "clientSecret": secret, "subscriptionId": subscription
            });
            parse_execute(request.to_string().as_bytes()).unwrap()
        };
        let owner = owner_digest(&req("t", "c", "s3cr3t", SUB), &ctx(), Some("tenant-a")).unwrap();
        let rotated_secret =
            owner_digest(&req("t", "c", "rotated", SUB), &ctx(), Some("tenant-a")).unwrap();
        assert_eq!(rotated_secret, owner);
        let other_sub = "00000000-0000-0000-0000-000000000002";
        for (tenant_header, request) in [
            (Some("tenant-b"), req("t", "c", "s3cr3t", SUB)),
            (None, req("t", "c", "s3cr3t", SUB)),
            (Some("tenant-a"), req("t2", "c", "s3cr3t", SUB)),
            (Some("tenant-a"), req("t", "c2", "s3cr3t", SUB)),
            (Some("tenant-a"), req("t", "c", "s3cr3t", other_sub)),
        ] {
            let other = owner_digest(&request, &ctx(), tenant_header).unwrap();
            let refused = authorise(&other, &[&owned_by(&owner)]).unwrap_err();
            assert_eq!(refused.status, 403);
            assert_eq!(
                refused.message,
                "resource res-1 was created with other credentials (tenant, client or subscription)"
            );
        }
        assert!(authorise(&owner, &[&owned_by(&owner)]).is_ok());
        let unbound = AzureResource::new("r-old", AzureResourceSpec::adopting("/subscriptions/x"));
        assert!(authorise(&owner, &[&unbound]).is_ok());

        let plan = apply(
            run(body(
                "Create",
                "resource::AzureVNet::1.0",
                json!({"resourcegroup_name": "rg1"}),
            ))
            .unwrap(),
        );
        let creator =
            owner_digest(&req("t", "c", "s3cr3t", SUB), &ctx(), Some("tenant-a")).unwrap();
        assert_eq!(plan.resource.annotations()[ANNOTATION_OWNER], creator);
        assert!(!plan.resource.annotations()[ANNOTATION_OWNER].contains("s3cr3t"));
    }

    #[test]
    fn objects_and_secrets_over_what_the_cluster_stores_are_413() {
        // Incompressible (digests), so that the archive passes the compression-ratio check.
        let big: String = (0..MAX_OBJECT_BYTES / 64)
            .map(|i| hex::encode(Sha256::digest(i.to_string())))
            .collect();
        let template = format!("param note string = '{big}'\n");
        let zip = zip_of(&[("Create.bicep", template.as_bytes())]);
        let mut request = body(
            "Create",
            "resource::MyVm::2.0",
            json!({"resourcegroup_name": "rg1"}),
        );
        request["driverFiles"] = json!(base64::engine::general_purpose::STANDARD.encode(zip));
        let refused = run(request).unwrap_err();
        assert_eq!(refused.status, 413);
        assert!(
            refused
                .message
                .contains(&format!("at most {MAX_OBJECT_BYTES} bytes")),
            "{}",
            refused.message
        );

        let zip = zip_of(&[("Create.bicep", b"@secure()\nparam pw string\n")]);
        let mut request = body(
            "Create",
            "resource::MyVm::2.0",
            json!({"resourcegroup_name": "rg1", "pw": {"type": "password", "value": big}}),
        );
        request["driverFiles"] = json!(base64::engine::general_purpose::STANDARD.encode(zip));
        let refused = run(request).unwrap_err();
        assert_eq!(refused.status, 413);
        assert!(
            refused.message.starts_with("Secure values of"),
            "{}",
            refused.message
        );
    }
}
