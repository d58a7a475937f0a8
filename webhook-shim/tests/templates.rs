//! The built-in templates of the legacy resource types compile with the project's Bicep
//! compiler (as the controller will compile them), and armsim's ARM evaluator turns them
//! into exactly what the Python driver created (shared/contracts/legacy-resource-types.md).

use std::collections::BTreeMap;

use armsim::template::{
    DeploymentContext, EvaluatedDeployment, ResourceGroupInfo, ResourceLookup, TemplateError,
    evaluate,
};
use azure_driver_shim::mapping::builtin_template;
use azure_driver_shim::request::Lifecycle;
use serde_json::{Map, Value, json};

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const RG: &str = "rg1";

fn group_id() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}")
}

/// Resources that exist before the deployment, keyed by lower-cased id.
#[derive(Default)]
struct Existing(BTreeMap<String, Value>);

impl Existing {
    fn with(mut self, resource_type: &str, name: &str) -> Self {
        let id = format!("{}/providers/{resource_type}/{name}", group_id());
        self.0.insert(
            id.to_ascii_lowercase(),
            json!({"id": id, "name": name, "type": resource_type, "location": "westeurope", "properties": {}}),
        );
        self
    }
}

impl ResourceLookup for Existing {
    fn get(&self, resource_id: &str) -> Option<Value> {
        self.0.get(&resource_id.to_ascii_lowercase()).cloned()
    }
}

fn compiled(kind: &str, lifecycle: &Lifecycle) -> Value {
    let source = builtin_template(kind, lifecycle).expect("a built-in template");
    let compiled = bicep::compile_source(
        &format!("{kind}.bicep"),
        source,
        &bicep::MapResolver::default(),
    )
    .unwrap_or_else(|err| panic!("{kind} {lifecycle:?} does not compile: {err:?}"));
    serde_json::from_str(&compiled.to_json_string()).expect("compiled JSON")
}

fn deploy_with(
    kind: &str,
    parameters: Value,
    existing: &Existing,
) -> Result<EvaluatedDeployment, TemplateError> {
    deploy_lifecycle(kind, &Lifecycle::Create, parameters, existing)
}

fn deploy_lifecycle(
    kind: &str,
    lifecycle: &Lifecycle,
    parameters: Value,
    existing: &Existing,
) -> Result<EvaluatedDeployment, TemplateError> {
    let template = compiled(kind, lifecycle);
    let parameters: Map<String, Value> = parameters
        .as_object()
        .expect("parameters object")
        .iter()
        .map(|(name, value)| (name.clone(), json!({ "value": value })))
        .collect();
    let ctx = DeploymentContext {
        tenant_id: "11111111-1111-1111-1111-111111111111".into(),
        subscription_id: SUB.into(),
        resource_group: Some(ResourceGroupInfo {
            name: RG.into(),
            location: "westeurope".into(),
            tags: Map::new(),
        }),
        deployment_name: format!("legacy-{kind}-{}", lifecycle.name()),
        location: None,
    };
    evaluate(&template, &Value::Object(parameters), &ctx, existing)
}

fn deploy(kind: &str, parameters: Value) -> EvaluatedDeployment {
    deploy_with(kind, parameters, &Existing::default())
        .unwrap_or_else(|err| panic!("{kind} does not deploy: {err}"))
}

/// Bodies of the deployed resources of `resource_type`, by name (the last name segment).
fn of_type(deployment: &EvaluatedDeployment, resource_type: &str) -> BTreeMap<String, Value> {
    deployment
        .resources
        .iter()
        .filter(|r| r.resource_type.eq_ignore_ascii_case(resource_type))
        .map(|r| {
            let name = r.name.rsplit('/').next().unwrap_or_default().to_string();
            (name, r.body.clone())
        })
        .collect()
}

#[test]
fn builtin_templates_compile_and_tag_their_resources() {
    let cases = [
        ("AzureResourceGroup", Lifecycle::Create),
        ("AzureVNet", Lifecycle::Create),
        ("AzureSubnet", Lifecycle::Create),
        ("AzureNetworkSecurityGroup", Lifecycle::Create),
        ("AzureRouteTable", Lifecycle::Create),
        ("AzureStorageAccount", Lifecycle::Create),
        (
            "AzureVNet",
            Lifecycle::Operation("CreateVnetPeering".into()),
        ),
        ("AzureRouteTable", Lifecycle::Operation("AddRoute".into())),
    ];
    for (kind, lifecycle) in cases {
        let text = compiled(kind, &lifecycle).to_string();
        // Subnets and peerings are child resources without tags in ARM.
        if kind != "AzureSubnet" && !matches!(lifecycle, Lifecycle::Operation(_)) {
            assert!(text.contains("Cp4na"), "{kind}: no Creator tag in {text}");
        }
    }
}

/// (name, direction, priority, access, source prefix, destination prefix) of each rule.
type RuleRow = (String, String, i64, String, String, String);

fn nsg_rules(private_or_public: &str, local_or_global: &str) -> Vec<RuleRow> {
    let deployment = deploy(
        "AzureNetworkSecurityGroup",
        json!({
            "network_security_group_name": "nsg1",
            "network_security_group_location": "westeurope",
            "private_or_public": private_or_public,
            "local_or_global": local_or_global,
            "vnet_address_space": "10.10.0.0/16",
        }),
    );
    let groups = of_type(&deployment, "Microsoft.Network/networkSecurityGroups");
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups["nsg1"]["tags"], json!({"Creator": "Cp4na"}));
    assert_eq!(groups["nsg1"]["location"], "westeurope");
    let rules = of_type(
        &deployment,
        "Microsoft.Network/networkSecurityGroups/securityRules",
    );
    rules
        .into_iter()
        .map(|(name, body)| {
            let p = &body["properties"];
            for any in ["protocol", "sourcePortRange", "destinationPortRange"] {
                assert_eq!(p[any], "*", "{name}: {any}");
            }
            let text = |key: &str| p[key].as_str().unwrap_or_default().to_string();
            (
                name,
                text("direction"),
                p["priority"].as_i64().unwrap(),
                text("access"),
                text("sourceAddressPrefix"),
                text("destinationAddressPrefix"),
            )
        })
        .collect()
}

fn rule(name: &str, dir: &str, prio: i64, access: &str, src: &str, dst: &str) -> RuleRow {
    (
        name.into(),
        dir.into(),
        prio,
        access.into(),
        src.into(),
        dst.into(),
    )
}

#[test]
fn nsg_rules_follow_the_python_drivers_switches() {
    let cidr = "10.10.0.0/16";
    let allow_cidr_in = rule("AllowVnetCIDRInbound", "Inbound", 200, "Allow", cidr, cidr);
    let deny_vnet_in = rule(
        "DenyVnetInbound",
        "Inbound",
        300,
        "Deny",
        "VirtualNetwork",
        "VirtualNetwork",
    );
    let allow_internet_in = rule(
        "AllowInternetInbound",
        "Inbound",
        500,
        "Allow",
        "Internet",
        cidr,
    );
    let deny_lb_in = rule(
        "DenyLoadbalancerInbound",
        "Inbound",
        600,
        "Deny",
        "AzureLoadBalancer",
        "*",
    );
    let deny_internet_out = rule(
        "DenyInternetOutbound",
        "Outbound",
        300,
        "Deny",
        "*",
        "Internet",
    );
    let allow_cidr_out = rule(
        "AllowVnetCIDROutbound",
        "Outbound",
        400,
        "Allow",
        cidr,
        cidr,
    );
    let deny_vnet_out = rule(
        "DenyVnetOutbound",
        "Outbound",
        500,
        "Deny",
        "VirtualNetwork",
        "VirtualNetwork",
    );
    let sorted = |mut rows: Vec<RuleRow>| {
        rows.sort();
        rows
    };
    assert_eq!(
        nsg_rules("public", "local"),
        sorted(vec![
            allow_cidr_in.clone(),
            deny_vnet_in.clone(),
            allow_internet_in.clone(),
            allow_cidr_out.clone(),
            deny_vnet_out.clone(),
        ])
    );
    assert_eq!(
        nsg_rules("public", "global"),
        vec![allow_internet_in.clone()]
    );
    assert_eq!(
        nsg_rules("private", "local"),
        sorted(vec![
            allow_cidr_in,
            deny_vnet_in,
            deny_lb_in.clone(),
            deny_internet_out.clone(),
            allow_cidr_out,
            deny_vnet_out,
        ])
    );
    assert_eq!(
        nsg_rules("private", "global"),
        sorted(vec![deny_lb_in, deny_internet_out])
    );
    // Exact, case-sensitive comparisons: other spellings add no rules.
    assert_eq!(nsg_rules("Private", "Local"), vec![]);
    assert_eq!(nsg_rules("", ""), vec![]);
}

#[test]
fn nsg_names_over_80_characters_are_cut_to_79() {
    let long = "n".repeat(81);
    let deployment = deploy(
        "AzureNetworkSecurityGroup",
        json!({"network_security_group_name": long}),
    );
    let groups = of_type(&deployment, "Microsoft.Network/networkSecurityGroups");
    assert_eq!(groups.keys().collect::<Vec<_>>(), [&"n".repeat(79)]);
    let exact = "m".repeat(80);
    let deployment = deploy(
        "AzureNetworkSecurityGroup",
        json!({"network_security_group_name": exact}),
    );
    let groups = of_type(&deployment, "Microsoft.Network/networkSecurityGroups");
    assert_eq!(groups.keys().collect::<Vec<_>>(), [&exact]);
}

fn route_table(private_or_public: &str, local_or_global: &str) -> EvaluatedDeployment {
    deploy(
        "AzureRouteTable",
        json!({
            "route_table_name": "rt1",
            "route_table_location": "westeurope",
            "route_table_disable_bgp_route_propagation": true,
            "private_or_public": private_or_public,
            "local_or_global": local_or_global,
            "branch_office_cidr": "192.168.10.0/24",
            "private_static_ip": "10.0.2.4",
        }),
    )
}

#[test]
fn route_tables_route_to_the_branch_office_only_when_private_and_global() {
    let deployment = route_table("private", "global");
    let tables = of_type(&deployment, "Microsoft.Network/routeTables");
    assert_eq!(tables["rt1"]["tags"], json!({"Creator": "Cp4na"}));
    assert_eq!(tables["rt1"]["location"], "westeurope");
    assert_eq!(
        tables["rt1"]["properties"]["disableBgpRoutePropagation"],
        true
    );
    let routes = of_type(&deployment, "Microsoft.Network/routeTables/routes");
    assert_eq!(routes.keys().collect::<Vec<_>>(), ["BranchOfficeRoute"]);
    let route = &routes["BranchOfficeRoute"]["properties"];
    assert_eq!(route["addressPrefix"], "192.168.10.0/24");
    assert_eq!(route["nextHopType"], "VirtualAppliance");
    assert_eq!(route["nextHopIpAddress"], "10.0.2.4");
    assert_eq!(route["hasBgpOverride"], true);

    for (private_or_public, local_or_global) in [
        ("public", "global"),
        ("public", "local"),
        ("private", "local"),
        ("Private", "Global"),
        ("", ""),
    ] {
        let deployment = route_table(private_or_public, local_or_global);
        let routes = of_type(&deployment, "Microsoft.Network/routeTables/routes");
        assert!(
            routes.is_empty(),
            "{private_or_public}/{local_or_global}: {routes:?}"
        );
        let tables = of_type(&deployment, "Microsoft.Network/routeTables");
        assert_eq!(tables.len(), 1);
    }
}

/// A resource's properties without the `provisioningState` the evaluator fills in.
fn declared(resource: &Value) -> Value {
    let mut properties = resource["properties"].clone();
    properties
        .as_object_mut()
        .unwrap()
        .remove("provisioningState");
    properties
}

/// AddRoute of the later branch (multipleBOs): one route under the existing table, the
/// next hop `.4` of `private_subnet_cidr` (a text operation, as that branch did it).
#[test]
fn add_route_makes_one_route_with_the_next_hop_of_the_subnet() {
    let existing = Existing::default().with("Microsoft.Network/routeTables", "rt1");
    let add_route = Lifecycle::Operation("AddRoute".into());
    let deployment = deploy_lifecycle(
        "AzureRouteTable",
        &add_route,
        json!({
            "route_table_name": "rt1",
            "route_name": "bo1",
            "route_address_prefix": "192.168.20.0/24",
            "route_next_hop_type": "VirtualAppliance",
            "private_subnet_cidr": "10.0.2.128/25",
            "route_has_bgp_override": true,
        }),
        &existing,
    )
    .unwrap();
    assert_eq!(deployment.resources.len(), 1);
    let routes = of_type(&deployment, "Microsoft.Network/routeTables/routes");
    assert_eq!(
        routes["bo1"]["id"],
        format!(
            "{}/providers/Microsoft.Network/routeTables/rt1/routes/bo1",
            group_id()
        )
    );
    assert_eq!(
        declared(&routes["bo1"]),
        json!({"addressPrefix": "192.168.20.0/24", "nextHopType": "VirtualAppliance",
               "nextHopIpAddress": "10.0.2.4", "hasBgpOverride": true})
    );

    // Without a subnet CIDR the explicit next hop (none for Internet) is used.
    let deployment = deploy_lifecycle(
        "AzureRouteTable",
        &add_route,
        json!({
            "route_table_name": "rt1",
            "route_name": "out",
            "route_address_prefix": "0.0.0.0/0",
            "route_next_hop_type": "Internet",
        }),
        &existing,
    )
    .unwrap();
    let routes = of_type(&deployment, "Microsoft.Network/routeTables/routes");
    assert_eq!(
        declared(&routes["out"]),
        json!({"addressPrefix": "0.0.0.0/0", "nextHopType": "Internet", "nextHopIpAddress": null, "hasBgpOverride": false})
    );
}

#[test]
fn vnets_have_the_python_drivers_address_space_and_default_subnet() {
    let deployment = deploy(
        "AzureVNet",
        json!({
            "vnet_name": "vnet1",
            "vnet_location": "westeurope",
            "vnet_enable_ddos_protection": false,
            "vnet_private_endpoint_network_policies": "Disabled",
            "vnet_private_link_service_network_policies": "Enabled",
            "vnet_default_cidr_block": "10.1.0.0/24",
            "vnet_address_space": "10.1.0.0/16,10.2.0.0/16",
        }),
    );
    let vnets = of_type(&deployment, "Microsoft.Network/virtualNetworks");
    let vnet = &vnets["vnet1"];
    assert_eq!(vnet["tags"], json!({"Creator": "Cp4na"}));
    assert_eq!(vnet["location"], "westeurope");
    let p = &vnet["properties"];
    assert_eq!(
        p["addressSpace"]["addressPrefixes"],
        json!(["10.1.0.0/16", "10.2.0.0/16"])
    );
    assert_eq!(p["enableDdosProtection"], false);
    // No inline child lists (contract D17): a repeated Create leaves later subnets and
    // peerings alone; `default` is a child resource of its own.
    assert!(p.get("subnets").is_none(), "{p}");
    assert!(p.get("virtualNetworkPeerings").is_none(), "{p}");
    let subnets = of_type(&deployment, "Microsoft.Network/virtualNetworks/subnets");
    assert_eq!(subnets.keys().collect::<Vec<_>>(), ["default"]);
    let subnet = &subnets["default"]["properties"];
    assert_eq!(subnet["addressPrefix"], "10.1.0.0/24");
    assert_eq!(subnet["delegations"], json!([]));
    assert_eq!(subnet["privateEndpointNetworkPolicies"], "Disabled");
    assert_eq!(subnet["privateLinkServiceNetworkPolicies"], "Enabled");
}

#[test]
fn vnet_defaults_are_the_python_drivers_bicep_defaults() {
    let deployment = deploy("AzureVNet", json!({"vnet_name": "vnet1"}));
    let vnets = of_type(&deployment, "Microsoft.Network/virtualNetworks");
    let p = &vnets["vnet1"]["properties"];
    // Where the Python driver failed, the resource group's location stands in.
    assert_eq!(vnets["vnet1"]["location"], "westeurope");
    assert_eq!(
        p["addressSpace"]["addressPrefixes"],
        json!(["10.0.1.0/24", "10.0.2.0/24"])
    );
    assert_eq!(p["enableDdosProtection"], false);
    let subnets = of_type(&deployment, "Microsoft.Network/virtualNetworks/subnets");
    let subnet = &subnets["default"]["properties"];
    assert_eq!(subnet["addressPrefix"], "10.0.1.0/24");
    assert_eq!(subnet["privateEndpointNetworkPolicies"], "Enabled");
    assert_eq!(subnet["privateLinkServiceNetworkPolicies"], "Enabled");
}

#[test]
fn subnets_attach_the_named_nsg_and_route_table() {
    let existing = Existing::default()
        .with("Microsoft.Network/virtualNetworks", "vnet1")
        .with("Microsoft.Network/networkSecurityGroups", "nsg1")
        .with("Microsoft.Network/routeTables", "rt1");
    let deployment = deploy_with(
        "AzureSubnet",
        json!({
            "vnet_name": "vnet1",
            "subnet_name": "sub1",
            "subnet_cidr_block": "10.0.2.0/24",
            "subnet_private_network_endpoint_policies": "Disabled",
            "subnet_private_link_service_network_policies": "Enabled",
            "route_table_name": "rt1",
            "network_security_group_name": "nsg1",
        }),
        &existing,
    )
    .unwrap();
    let subnets = of_type(&deployment, "Microsoft.Network/virtualNetworks/subnets");
    let subnet = &subnets["sub1"];
    assert_eq!(
        subnet["id"],
        format!(
            "{}/providers/Microsoft.Network/virtualNetworks/vnet1/subnets/sub1",
            group_id()
        )
    );
    let p = &subnet["properties"];
    assert_eq!(p["addressPrefix"], "10.0.2.0/24");
    assert_eq!(p["serviceEndpoints"], json!([]));
    assert_eq!(p["delegations"], json!([]));
    assert_eq!(p["privateEndpointNetworkPolicies"], "Disabled");
    assert_eq!(p["privateLinkServiceNetworkPolicies"], "Enabled");
    assert_eq!(
        p["networkSecurityGroup"]["id"],
        format!(
            "{}/providers/Microsoft.Network/networkSecurityGroups/nsg1",
            group_id()
        )
    );
    assert_eq!(
        p["routeTable"]["id"],
        format!("{}/providers/Microsoft.Network/routeTables/rt1", group_id())
    );

    let defaults = deploy_with(
        "AzureSubnet",
        json!({"vnet_name": "vnet1", "subnet_name": "sub2", "subnet_cidr_block": "10.0.3.0/24"}),
        &existing,
    )
    .unwrap();
    let p = &of_type(&defaults, "Microsoft.Network/virtualNetworks/subnets")["sub2"]["properties"];
    assert_eq!(p["privateEndpointNetworkPolicies"], "Enabled");
    assert_eq!(p["privateLinkServiceNetworkPolicies"], "Enabled");
    assert!(p.get("networkSecurityGroup").is_none_or(Value::is_null));
    assert!(p.get("routeTable").is_none_or(Value::is_null));
}

#[test]
fn storage_accounts_are_named_and_configured_as_the_python_driver_did() {
    let deployment = deploy(
        "AzureStorageAccount",
        json!({
            "storage_account_name": "MyDataStoreForTheBranchOffice",
            "storage_account_name_suffix": 37,
            "storage_location": "westeurope",
            "storage_account_type": "Standard_GRS",
        }),
    );
    let accounts = of_type(&deployment, "Microsoft.Storage/storageAccounts");
    // Lower-cased, cut to 22 characters, then the suffix: at most 24.
    let name = "mydatastoreforthebranc37";
    let account = &accounts[name];
    assert_eq!(account["tags"], json!({"Creator": "Cp4na"}));
    assert_eq!(account["location"], "westeurope");
    assert_eq!(account["sku"]["name"], "Standard_GRS");
    assert_eq!(account["kind"], "StorageV2");
    let p = &account["properties"];
    assert_eq!(p["minimumTlsVersion"], "TLS1_2");
    assert_eq!(p["allowBlobPublicAccess"], false);
    assert_eq!(
        p["networkAcls"],
        json!({"bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [], "defaultAction": "Allow"})
    );
    let endpoint = &deployment.outputs["storageEndpoint"];
    assert_eq!(endpoint.type_name, "Object");
    assert_eq!(
        endpoint.value["blob"],
        format!("https://{name}.blob.core.windows.net/")
    );
    assert_eq!(deployment.outputs["storageAccountName"].value, name);

    let short = deploy(
        "AzureStorageAccount",
        json!({"storage_account_name": "Logs", "storage_account_name_suffix": 5}),
    );
    let accounts = of_type(&short, "Microsoft.Storage/storageAccounts");
    assert_eq!(accounts.keys().collect::<Vec<_>>(), ["logs5"]);
    assert_eq!(accounts["logs5"]["sku"]["name"], "Standard_LRS");
}

fn peering(parameters: Value) -> EvaluatedDeployment {
    let existing = Existing::default().with("Microsoft.Network/virtualNetworks", "hub-vnet");
    deploy_lifecycle(
        "AzureVNet",
        &Lifecycle::Operation("CreateVnetPeering".into()),
        parameters,
        &existing,
    )
    .unwrap_or_else(|err| panic!("peering does not deploy: {err}"))
}

#[test]
fn peerings_go_one_way_with_the_requests_properties() {
    let other_sub = "00000000-0000-0000-0000-0000000000ff";
    let deployment = peering(json!({
        "initiator_vnet_name": "hub-vnet",
        "initiator_vnet_rg_name": RG,
        "acceptor_vnet_name": "spoke-vnet",
        "acceptor_vnet_rg_name": "rg-spoke",
        "acceptor_vnet_subscription_id": other_sub,
        "peering_state": "Connected",
        "allow_virtual_network_access": true,
        "allow_forwarded_traffic": false,
        "allow_gateway_transit": true,
        "use_remote_gateways": false,
    }));
    let peerings: Vec<_> = deployment
        .resources
        .iter()
        .filter(|r| {
            r.resource_type
                .eq_ignore_ascii_case("Microsoft.Network/virtualNetworks/virtualNetworkPeerings")
        })
        .collect();
    assert_eq!(peerings.len(), 1, "one direction only: {peerings:#?}");
    assert_eq!(
        peerings[0].id,
        format!(
            "{}/providers/Microsoft.Network/virtualNetworks/hub-vnet/virtualNetworkPeerings/hub-vnet-to-spoke-vnet",
            group_id()
        )
    );
    let p = &peerings[0].body["properties"];
    assert_eq!(
        p["remoteVirtualNetwork"]["id"],
        format!(
            "/subscriptions/{other_sub}/resourceGroups/rg-spoke/providers/Microsoft.Network/virtualNetworks/spoke-vnet"
        )
    );
    assert_eq!(p["peeringState"], "Connected");
    assert_eq!(p["allowVirtualNetworkAccess"], true);
    assert_eq!(p["allowForwardedTraffic"], false);
    assert_eq!(p["allowGatewayTransit"], true);
    assert_eq!(p["useRemoteGateways"], false);
    assert!(
        deployment.resources.iter().all(|r| !r
            .resource_type
            .eq_ignore_ascii_case("Microsoft.Resources/deployments")),
        "no reverse side by default"
    );
}

#[test]
fn peerings_default_to_the_python_drivers_flags_and_the_same_subscription() {
    let deployment = peering(json!({
        "initiator_vnet_name": "hub-vnet",
        "acceptor_vnet_name": "spoke-vnet",
        "acceptor_vnet_rg_name": "rg-spoke",
    }));
    let peerings = of_type(
        &deployment,
        "Microsoft.Network/virtualNetworks/virtualNetworkPeerings",
    );
    let p = &peerings["hub-vnet-to-spoke-vnet"]["properties"];
    assert_eq!(
        p["remoteVirtualNetwork"]["id"],
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg-spoke/providers/Microsoft.Network/virtualNetworks/spoke-vnet"
        )
    );
    assert_eq!(p["allowVirtualNetworkAccess"], true);
    assert_eq!(p["allowForwardedTraffic"], true);
    assert_eq!(p["allowGatewayTransit"], false);
    assert_eq!(p["useRemoteGateways"], false);
}
