//! The legacy (Python driver) resource types: built-in templates, additions and their
//! removals, the names the legacy templates would hand to Azure, system parameters.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::driver_files::DriverFiles;
use crate::error::ApiError;
use crate::request::{ExecuteRequest, Lifecycle, Properties, Property};

use super::model::*;
use super::names::*;

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
pub(super) fn python_addition(
    req: &ExecuteRequest,
    lifecycle: &Lifecycle,
) -> Option<PythonAddition> {
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
pub(super) fn deployment_group_property(req: &ExecuteRequest) -> Option<&'static str> {
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
pub(super) fn keeps_resources_on_delete(req: &ExecuteRequest, ctx: &MappingContext) -> bool {
    let type_name = req.system.resource_type.name.as_str();
    ctx.legacy_delete_keeps_resources
        && type_name != "AzureResourceGroup"
        && builtin_template(type_name, &Lifecycle::Create).is_some()
}

/// The request runs a built-in legacy template (no driverFiles template replaces it).
pub(super) fn template_is_builtin(req: &ExecuteRequest) -> bool {
    builtin_template(&req.system.resource_type.name, &req.lifecycle).is_some()
}

/// Refuses (400), before anything is written, names the legacy templates would hand to
/// Azure although its rules refuse them: a storage account base other than ASCII letters
/// and digits (the template lower-cases it), an NSG name outside Azure's characters.
/// The Python driver answered these with 500 or let ARM refuse them.
pub(super) fn check_legacy_names(req: &ExecuteRequest) -> Result<(), ApiError> {
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

/// A built-in template for a legacy resource type and lifecycle.
pub fn builtin_template(resource_type: &str, lifecycle: &Lifecycle) -> Option<&'static str> {
    match (resource_type, lifecycle) {
        ("AzureResourceGroup", Lifecycle::Create) => {
            Some(include_str!("../../templates/AzureResourceGroup.bicep"))
        }
        ("AzureVNet", Lifecycle::Create) => Some(include_str!("../../templates/AzureVNet.bicep")),
        ("AzureSubnet", Lifecycle::Create) => {
            Some(include_str!("../../templates/AzureSubnet.bicep"))
        }
        ("AzureNetworkSecurityGroup", Lifecycle::Create) => Some(include_str!(
            "../../templates/AzureNetworkSecurityGroup.bicep"
        )),
        ("AzureRouteTable", Lifecycle::Create) => {
            Some(include_str!("../../templates/AzureRouteTable.bicep"))
        }
        ("AzureStorageAccount", Lifecycle::Create) => {
            Some(include_str!("../../templates/AzureStorageAccount.bicep"))
        }
        ("AzureVNet", Lifecycle::Operation(op)) if op.eq_ignore_ascii_case("CreateVnetPeering") => {
            Some(include_str!("../../templates/CreateVnetPeering.bicep"))
        }
        ("AzureRouteTable", Lifecycle::Operation(op)) if op.eq_ignore_ascii_case("AddRoute") => {
            Some(include_str!("../../templates/AddRoute.bicep"))
        }
        _ => None,
    }
}

/// The additions a `Remove<X>` may undo: `Add<X>`, then `Create<X>`.
pub(super) fn additions_undone_by(lifecycle: &Lifecycle) -> Vec<Lifecycle> {
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
pub(super) fn removal_counterpart(req: &ExecuteRequest) -> Option<Lifecycle> {
    additions_undone_by(&req.lifecycle)
        .into_iter()
        .find(|added| builtin_template(&req.system.resource_type.name, added).is_some())
}

/// The addition a `Remove<X>` undoes: the first of `Add<X>`, `Create<X>` that the
/// package or the built-in templates provide. Removing is deleting that addition's
/// object, which removes exactly what it deployed; a package shipping a `Remove<X>`
/// template as well is refused, since that template would never run.
pub(super) fn undone_addition(
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
pub(super) fn removal_target(req: &ExecuteRequest, added: &Lifecycle) -> DeleteTarget {
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

pub(super) fn system_parameters(req: &ExecuteRequest) -> Properties {
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
