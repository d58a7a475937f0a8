//! Pure mapping of a validated request onto `AzureResource` objects and Secrets.

mod checks;
mod legacy;
mod metadata;
mod model;
mod names;
mod topology;

pub use checks::*;
pub use legacy::*;
use metadata::*;
pub use model::*;
pub use names::*;
pub use topology::*;

use std::collections::BTreeMap;
use std::sync::Arc;

use crds::{
    AzureResource, AzureResourceSpec, DeletionPolicy, KeyRef, ParameterFrom, ParameterSource,
    Scope, TemplateSource,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};

use crate::driver_files::{DriverFiles, Template};
use crate::error::ApiError;
use crate::request::{ExecuteRequest, Lifecycle};

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
            let shape = Arc::new(json_shape(&map));
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
    let (parameters, secure) = template_parameters(req, shape);
    if template_is_builtin(req) {
        check_legacy_names(req)?;
    }
    let location = request_location(req);
    let is_legacy = builtin_template(&req.system.resource_type.name, &Lifecycle::Create).is_some();
    let resource_group = if shape.subscription_scope {
        None
    } else {
        Some(request_resource_group(req)?)
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

    let secure_parameters = (!secure.is_empty())
        .then(|| secure_parameters_secret(req, ctx, secure_secret_name, secure));
    let plan = ApplyPlan {
        resource,
        credentials: credentials_secret(req, ctx, pending),
        secure_parameters,
    };
    check_sizes(&plan)?;
    Ok(plan)
}

/// The Secret holding a request's secure parameter values.
fn secure_parameters_secret(
    req: &ExecuteRequest,
    ctx: &MappingContext,
    name: String,
    values: BTreeMap<String, String>,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(ctx.namespace.clone()),
            labels: Some(labels(req)),
            ..ObjectMeta::default()
        },
        string_data: Some(values),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// The template's declared parameters the request gives a value (system parameters
/// first, request properties over them): plain ones, and secure ones as text (a property
/// Brent marks secure, or a parameter the template declares `@secure()`).
fn template_parameters(
    req: &ExecuteRequest,
    shape: &TemplateShape,
) -> (BTreeMap<String, Value>, BTreeMap<String, String>) {
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
    (parameters, secure)
}

/// The location a request names (`resourcegroup_location`, `location`), else its
/// deployment location's (`location`, `region`).
fn request_location(req: &ExecuteRequest) -> Option<String> {
    ["resourcegroup_location", "location"]
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
        })
}

/// The resource group a resource-group-scope request deploys into, checked.
fn request_resource_group(req: &ExecuteRequest) -> Result<String, ApiError> {
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
    Ok(group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver_files::{Limits, tests::zip_of};
    use crate::request::{Credentials, parse_execute};
    use base64::Engine;
    use crds::CLEANUP_FINALIZER;
    use kube::ResourceExt;
    use serde_json::json;
    use sha2::{Digest, Sha256};

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
        assert_eq!(exact_resource_name(resource), Some("net-a"));
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
    fn a_location_azure_would_refuse_is_a_bad_request_naming_it() {
        let located = |location: &str| {
            run(body(
                "Create",
                "resource::AzureResourceGroup::1.0",
                json!({"resourcegroup_name": "rg1", "resourcegroup_location": location}),
            ))
        };
        assert_eq!(
            located("west/europe").unwrap_err().message,
            "location \"west/europe\" is not a valid Azure location"
        );
        assert_eq!(
            located("west-europe").unwrap_err().message,
            "location \"west-europe\" is not a valid Azure location"
        );
        let plan = apply(located("West Europe").unwrap());
        assert_eq!(plan.resource.spec.location.as_deref(), Some("West Europe"));
    }

    #[test]
    fn only_a_vnet_names_its_peering_by_both_ends() {
        let instance = |kind: &str, operation: &str, props: Value| {
            let req = parse_execute(body(operation, kind, props).to_string().as_bytes()).unwrap();
            addition_instance(&req, &req.lifecycle).map(|(_, instance)| instance)
        };
        let peering = json!({"initiator_vnet_name": "a", "acceptor_vnet_name": "b",
                             "vnet_peering_name": "p"});
        let vnet = "resource::AzureVNet::1.0";
        assert_eq!(
            instance(vnet, "CreateVnetPeering", peering.clone()).as_deref(),
            Some("a-to-b")
        );
        assert_eq!(
            instance("resource::MyVNet::1.0", "CreateVnetPeering", peering).as_deref(),
            Some("p")
        );
        assert_eq!(
            instance(vnet, "AddThing", json!({"thing_name": "t"})).as_deref(),
            Some("t")
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
    fn a_bicep_template_is_parsed_once_and_its_shape_reused() {
        let source = "targetScope = 'subscription'\n@secure()\nparam memoKey string\n";
        let first = bicep_shape(source).unwrap();
        let again = bicep_shape(source).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert!(first.subscription_scope);
        let other = bicep_shape("param memoKey string\n").unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(
            other.parameters,
            BTreeMap::from([("memoKey".into(), false)])
        );
        let broken = "param p string = {\n";
        assert!(bicep_shape(broken).is_err());
        assert!(
            bicep_shape(broken).is_err(),
            "a refused template is refused again"
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

    /// `body` with `files` as its driverFiles archive.
    fn with_files(mut request: Value, files: &[(&str, &[u8])]) -> Value {
        request["driverFiles"] =
            json!(base64::engine::general_purpose::STANDARD.encode(zip_of(files)));
        request
    }

    #[test]
    fn the_size_limits_hold_to_the_byte() {
        let mut resource = AzureResource::new(
            "r-x",
            AzureResourceSpec::new("rg1", TemplateSource::Bicep(String::new())),
        );
        resource.spec.parameters.insert("pad".into(), json!(""));
        let unpadded = serde_json::to_vec(&resource).unwrap().len();
        let object_of = |bytes: usize| {
            let mut resource = resource.clone();
            resource
                .spec
                .parameters
                .insert("pad".into(), json!("a".repeat(bytes - unpadded)));
            assert_eq!(serde_json::to_vec(&resource).unwrap().len(), bytes);
            ApplyPlan {
                resource,
                credentials: None,
                secure_parameters: None,
            }
        };
        assert!(check_sizes(&object_of(1024 * 1024)).is_ok());
        let refused = check_sizes(&object_of(1024 * 1024 + 1)).unwrap_err();
        assert_eq!(refused.status, 413);
        assert_eq!(
            refused.message,
            "The template and parameters make an AzureResource of 1048577 bytes; at most 1048576 bytes fit in the cluster's store"
        );

        // A Secret's size is its keys' and values' bytes, in either Secret of a plan.
        let secret_of = |value_bytes: usize| Secret {
            string_data: Some(BTreeMap::from([
                ("key".into(), "a".repeat(value_bytes)),
                ("k".into(), "b".into()),
            ])),
            ..Secret::default()
        };
        let small = object_of(unpadded);
        for fits in [true, false] {
            let secret = secret_of(1024 * 1024 - 5 + usize::from(!fits));
            let as_credentials = ApplyPlan {
                credentials: Some(secret.clone()),
                ..small.clone()
            };
            let as_parameters = ApplyPlan {
                secure_parameters: Some(secret),
                ..small.clone()
            };
            for plan in [as_credentials, as_parameters] {
                match check_sizes(&plan) {
                    Ok(()) => assert!(fits),
                    Err(refused) => {
                        assert!(!fits);
                        assert_eq!(refused.status, 413);
                        assert_eq!(
                            refused.message,
                            "Secure values of 1048577 bytes exceed the 1048576 bytes a Secret holds"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn long_names_keep_a_readable_prefix_and_the_digest_within_the_limit() {
        let long_id = "a".repeat(100);
        assert_eq!(
            object_name(&long_id, &Lifecycle::Create),
            format!("r-{}-{}", "a".repeat(49), short_digest(&long_id))
        );
        let operation = "Do".repeat(40);
        let label = dns_label(&operation, 63);
        assert_eq!(
            label,
            format!("{}-{}", "do".repeat(26), short_digest(&operation))
        );
        assert_eq!(label.len(), 63);
    }

    #[test]
    fn addition_parameters_are_named_in_snake_case() {
        assert_eq!(snake_case("VnetPeering"), "vnet_peering");
        assert_eq!(snake_case("Route"), "route");
        let template = b"param public_ip_name string\n";
        let request = with_files(
            body(
                "AddPublicIp",
                "resource::Edge::1.0",
                json!({"resourcegroup_name": "rg1", "public_ip_name": "ip1"}),
            ),
            &[("AddPublicIp.bicep", template.as_slice())],
        );
        assert_eq!(
            apply(run(request).unwrap()).resource.name_any(),
            "r-be3870d2-891c-487e-9736-ca19e4741cf4-addpublicip-ip1"
        );
    }

    #[test]
    fn only_package_types_with_a_location_create_their_group() {
        let create_group = |kind: &str, files: &[(&str, &[u8])]| {
            let request = with_files(
                body(
                    "Create",
                    kind,
                    json!({"resourcegroup_name": "rg1", "resourcegroup_location": "westeurope",
                           "vnet_name": "v"}),
                ),
                files,
            );
            apply(run(request).unwrap())
                .resource
                .spec
                .create_resource_group
        };
        let template = b"param vnet_name string\n";
        // Legacy types deploy into the group their AzureResourceGroup made.
        assert!(!create_group("resource::AzureVNet::1.0", &[]));
        assert!(!create_group(
            "resource::AzureVNet::1.0",
            &[("Create.bicep", template.as_slice())]
        ));
        assert!(create_group(
            "resource::MyVNet::1.0",
            &[("Create.bicep", template.as_slice())]
        ));
    }

    #[test]
    fn the_secrets_are_in_the_namespace_labelled_and_opaque() {
        let request = with_files(
            body(
                "Create",
                "resource::MyVm::2.0",
                json!({"resourcegroup_name": "rg1",
                       "adminPassword": {"type": "password", "value": "pw"}}),
            ),
            &[("Create.bicep", b"@secure()\nparam adminPassword string\n")],
        );
        let plan = apply(run(request).unwrap());
        let parameters = plan.secure_parameters.unwrap();
        assert_eq!(parameters.metadata.namespace.as_deref(), Some("brent"));
        assert_eq!(
            parameters.metadata.labels.as_ref(),
            plan.resource.metadata.labels.as_ref()
        );
        assert_eq!(parameters.type_.as_deref(), Some("Opaque"));

        let credentials = plan.credentials.unwrap();
        assert_eq!(
            credentials.metadata.name.as_deref(),
            Some(
                credentials_secret_name(
                    Some("tenant-a"),
                    "Azure Dev",
                    &Credentials {
                        tenant_id: Some("t".into()),
                        client_id: Some("c".into()),
                        client_secret: None,
                        subscription_id: None,
                    }
                )
                .as_str()
            )
        );
        assert_eq!(credentials.metadata.namespace.as_deref(), Some("brent"));
        assert_eq!(
            credentials.metadata.labels.unwrap(),
            BTreeMap::from([
                (
                    LABEL_DEPLOYMENT_LOCATION.to_string(),
                    format!("Azure-Dev-{}", short_digest("Azure Dev"))
                ),
                (
                    LABEL_MANAGED_BY.to_string(),
                    "azure-driver-shim".to_string()
                ),
            ])
        );
        assert_eq!(
            credentials.string_data.unwrap(),
            BTreeMap::from([
                ("tenantId".to_string(), "t".to_string()),
                ("clientId".to_string(), "c".to_string()),
                ("clientSecret".to_string(), "s3cr3t".to_string()),
                ("subscriptionId".to_string(), SUB.to_string()),
            ])
        );
        assert_eq!(credentials.type_.as_deref(), Some("Opaque"));
    }

    #[test]
    fn exact_values_are_annotated_only_where_the_label_cannot_hold_them() {
        let mut request = body(
            "Create",
            "resource::AzureVNet::1.0",
            json!({"resourcegroup_name": "rg1"}),
        );
        let plain = apply(run(request.clone()).unwrap()).resource;
        assert_eq!(plain.labels()[LABEL_RESOURCE_NAME], "net-a");
        assert!(!plain.annotations().contains_key(ANNOTATION_RESOURCE_NAME));
        assert!(!plain.annotations().contains_key(ANNOTATION_RESOURCE_ID));
        assert_eq!(
            exact_resource_id(&plain),
            Some(plain.labels()[LABEL_RESOURCE_ID].as_str())
        );

        request["systemProperties"]["resourceName"]["value"] = json!("Net A/1");
        let sanitised = apply(run(request).unwrap()).resource;
        assert_ne!(sanitised.labels()[LABEL_RESOURCE_NAME], "Net A/1");
        assert_eq!(sanitised.annotations()[ANNOTATION_RESOURCE_NAME], "Net A/1");
        assert_eq!(exact_resource_name(&sanitised), Some("Net A/1"));
    }

    #[test]
    fn the_lifecycle_label_tells_creates_from_operations() {
        let label = |lifecycle: &str| {
            let plan = apply(
                run(body(
                    lifecycle,
                    "resource::AzureVNet::1.0",
                    json!({"resourcegroup_name": "rg1", "initiator_vnet_name": "a",
                           "acceptor_vnet_name": "b"}),
                ))
                .unwrap(),
            );
            (
                plan.resource.labels().get(LABEL_LIFECYCLE).cloned(),
                is_resource_object(&plan.resource),
            )
        };
        // `references/find` answers with the resource's own object.
        assert_eq!(label("Install"), (None, true));
        let mut earlier = AzureResource::new("r-1", AzureResourceSpec::adopting("/x"));
        earlier
            .labels_mut()
            .insert(LABEL_LIFECYCLE.into(), "create".into());
        assert!(is_resource_object(&earlier));
        assert_eq!(
            label("CreateVnetPeering"),
            (Some("createvnetpeering".into()), false)
        );
    }

    #[test]
    fn built_in_operations_belong_to_their_own_type() {
        let operation = |name: &str| Lifecycle::Operation(name.into());
        assert!(builtin_template("AzureVNet", &operation("createvnetpeering")).is_some());
        assert!(builtin_template("AzureRouteTable", &operation("addroute")).is_some());
        for (kind, name) in [
            ("AzureVNet", "AddRoute"),
            ("AzureVNet", "Configure"),
            ("AzureRouteTable", "CreateVnetPeering"),
            ("AzureRouteTable", "Configure"),
            ("AzureSubnet", "AddRoute"),
        ] {
            assert_eq!(
                builtin_template(kind, &operation(name)),
                None,
                "{kind} {name}"
            );
        }
        let refused = run(body(
            "Configure",
            "resource::AzureRouteTable::1.0",
            json!({"resourcegroup_name": "rg1"}),
        ))
        .unwrap_err();
        assert_eq!(
            refused.message,
            "No lifecycle script with name \"Configure\""
        );
    }

    #[test]
    fn a_packaged_operation_of_a_legacy_type_is_not_held_to_the_legacy_names() {
        let request = |lifecycle: &str, files: &[(&str, &[u8])]| {
            with_files(
                body(
                    lifecycle,
                    "resource::AzureStorageAccount::1.0",
                    json!({"resourcegroup_name": "rg1", "storage_account_name": "my-data"}),
                ),
                files,
            )
        };
        let template = b"param storage_account_name string\n";
        assert!(
            run(request(
                "Configure",
                &[("Configure.bicep", template.as_slice())]
            ))
            .is_ok()
        );
        // The built-in Create hands the name to Azure as it is.
        assert_eq!(run(request("Create", &[])).unwrap_err().status, 400);
    }

    #[test]
    fn a_resource_is_named_to_brent_by_its_deployment_stack() {
        let plan = apply(
            run(body(
                "Create",
                "resource::AzureVNet::1.0",
                json!({"resourcegroup_name": "rg1"}),
            ))
            .unwrap(),
        );
        let mut object = plan.resource;
        assert_eq!(stack_id(&object), None, "no uid before it is created");
        object.metadata.uid = Some("uid-1".into());
        let name =
            crds::deployment_name("brent", "r-be3870d2-891c-487e-9736-ca19e4741cf4", "uid-1");
        let in_group = format!(
            "/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Resources/deploymentStacks/{name}"
        );
        assert_eq!(stack_id(&object).as_deref(), Some(in_group.as_str()));
        assert_eq!(topology_id(&object).as_deref(), Some(in_group.as_str()));
        object.spec.scope = Scope::Subscription;
        object.spec.resource_group = None;
        assert_eq!(
            stack_id(&object),
            Some(format!(
                "/subscriptions/{SUB}/providers/Microsoft.Resources/deploymentStacks/{name}"
            ))
        );
    }

    #[test]
    fn the_python_drivers_entry_of_a_resource_is_its_name_without_dashes() {
        let mut request = body("Delete", "resource::AzureVNet::1.0", json!({}));
        let req = parse_execute(request.to_string().as_bytes()).unwrap();
        assert_eq!(topology_arm_id(&req), None);
        request["associatedTopology"] = json!({
            "net-a": {"id": "/subscriptions/s/dashed", "type": "Azure"},
            "neta": {"id": "/subscriptions/s/entry", "type": "Azure"}
        });
        let req = parse_execute(request.to_string().as_bytes()).unwrap();
        assert_eq!(
            topology_arm_id(&req).as_deref(),
            Some("/subscriptions/s/entry")
        );
    }

    #[test]
    fn only_peerings_and_routes_have_python_topology_entries() {
        let props = json!({"resourcegroup_name": "rg1", "initiator_vnet_name": "a",
                           "acceptor_vnet_name": "b", "route_table_name": "rt1", "route_name": "r1"});
        let request = |lifecycle: &str, kind: &str| {
            parse_execute(body(lifecycle, kind, props.clone()).to_string().as_bytes()).unwrap()
        };
        let key = |req: &ExecuteRequest| python_addition_key(req, &req.lifecycle);
        let peering = request("CreateVnetPeering", "resource::AzureVNet::1.0");
        assert_eq!(key(&peering).as_deref(), Some("netapeer"));
        let route = request("AddRoute", "resource::AzureRouteTable::1.0");
        assert_eq!(key(&route).as_deref(), Some("netar1route"));
        for (lifecycle, kind) in [
            ("Configure", "resource::AzureVNet::1.0"),
            ("AddRoute", "resource::AzureVNet::1.0"),
            ("Configure", "resource::AzureRouteTable::1.0"),
            ("CreateVnetPeering", "resource::AzureRouteTable::1.0"),
        ] {
            let req = request(lifecycle, kind);
            assert_eq!(key(&req), None, "{lifecycle} {kind}");
            assert!(
                accepted_topology(&req, Some("/dep")).is_empty(),
                "{lifecycle} {kind}"
            );
        }
    }
}
