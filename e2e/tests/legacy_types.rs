//! Every legacy resource type and operation of `shared/contracts/legacy-resource-types.md`
//! through the whole product: Brent's request over TLS to the shim, the AzureResource in a
//! real kube-apiserver, the controller binary, armsim, the result on librdkafka's mock
//! Kafka cluster. Each test asserts what armsim then holds against the contract's tables,
//! and the shapes of the 202 and of the Kafka message.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use azure_driver_shim::api::{Shim, routes};
use azure_driver_shim::kafka::{ResultMessage, ResultStatus};
use azure_driver_shim::mapping::{Action, PendingRequest, object_name, plan};
use azure_driver_shim::request::parse_execute;
use azure_driver_shim::tls::{ConnectionLimits, ReloadingCert, serve, server_config};
use crds::{AzureResource, Phase};
use e2e::TestNamespace;
use e2e::process::KilledOnDrop;
use e2e::shim::ShimOnMockKafka;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

mod support;
use support::ControllerOnArmsim;

const EXECUTE: &str = "/api/driver/lifecycle/execute";
const SUB: &str = "00000000-0000-0000-0000-0000000000c1";
/// The acceptor's subscription of a cross-subscription peering.
const SUB_ACCEPTOR: &str = "00000000-0000-0000-0000-0000000000c2";
const CLIENT: &str = "client-legacy";
const WAIT: Duration = Duration::from_secs(120);
const ARM_VERSION: &str = "api-version=2021-04-01";

/// The product in front of one test: a namespace of its own, in-process armsim, the
/// controller binary, the shim over TLS (twice: as installed by default, and with the
/// chart value `legacyDeleteKeepsResources`) and the Kafka consumer Brent would be.
struct Stack {
    client: kube::Client,
    namespace: TestNamespace,
    sim: armsim::RunningSim,
    shim: ShimOnMockKafka,
    https: reqwest::Client,
    shim_addr: SocketAddr,
    keeping_shim_addr: SocketAddr,
    arm: reqwest::Client,
    _controller: KilledOnDrop,
    _dir: tempfile::TempDir,
}

impl Stack {
    async fn start() -> Self {
        let product = ControllerOnArmsim::start().await;
        let dir = product.dir.path();
        let certificate = rcgen::generate_simple_self_signed(vec!["azure-driver".into()]).unwrap();
        std::fs::write(dir.join("tls.crt"), certificate.cert.pem()).unwrap();
        std::fs::write(dir.join("tls.key"), certificate.signing_key.serialize_pem()).unwrap();
        let shim = product.shim_on_mock_kafka("legacy");
        let mut keeping = shim.shim.clone();
        keeping.mapping.legacy_delete_keeps_resources = true;
        let shim_addr = serve_over_tls(dir, shim.shim.clone()).await;
        let keeping_shim_addr = serve_over_tls(dir, keeping).await;
        let https = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(certificate.cert.pem().as_bytes()).unwrap(),
            )
            .resolve("azure-driver", shim_addr)
            .build()
            .unwrap();
        let arm = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(product.sim.ca_file()).unwrap())
                    .unwrap(),
            )
            .build()
            .unwrap();
        Self {
            client: product.control_plane.client(),
            namespace: product.namespace,
            sim: product.sim,
            shim,
            https,
            shim_addr,
            keeping_shim_addr,
            arm,
            _controller: product.controller,
            _dir: product.dir,
        }
    }

    /// POSTs a lifecycle request to the shim at `addr` over TLS: status and body.
    async fn post_to(&self, addr: SocketAddr, body: &Value) -> (u16, Value) {
        let response = self
            .https
            .post(format!("https://azure-driver:{}{EXECUTE}", addr.port()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("the shim answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sends a request, expects 202 and the one Kafka result of its request id.
    async fn execute(&self, body: &Value) -> (Value, ResultMessage) {
        self.execute_at(self.shim_addr, body).await
    }

    async fn execute_at(&self, addr: SocketAddr, body: &Value) -> (Value, ResultMessage) {
        let (status, accepted) = self.post_to(addr, body).await;
        assert_eq!(status, 202, "{accepted}");
        let request_id = accepted["requestId"].as_str().unwrap().to_string();
        let result = self.shim.next_result(WAIT).await;
        assert_eq!(result.request_id, request_id, "{result:?}");
        (accepted, result)
    }

    /// Sends requests at once; the 202s and results in the order of `bodies`.
    async fn execute_all(&self, bodies: &[Value]) -> Vec<(Value, ResultMessage)> {
        let mut accepted = Vec::new();
        for body in bodies {
            let (status, answer) = self.post_to(self.shim_addr, body).await;
            assert_eq!(status, 202, "{answer}");
            accepted.push(answer);
        }
        let mut results: BTreeMap<String, ResultMessage> = BTreeMap::new();
        while results.len() < accepted.len() {
            let result = self.shim.next_result(WAIT).await;
            assert!(
                accepted.iter().any(|a| a["requestId"] == result.request_id),
                "unexpected result {result:?}"
            );
            results.insert(result.request_id.clone(), result);
        }
        accepted
            .into_iter()
            .map(|a| {
                let result = results.remove(a["requestId"].as_str().unwrap()).unwrap();
                (a, result)
            })
            .collect()
    }

    /// The body armsim holds for `id`.
    fn held(&self, id: &str) -> Value {
        self.sim
            .resource(id)
            .unwrap_or_else(|| panic!("armsim does not hold {id}"))
    }

    fn holds(&self, id: &str) -> bool {
        self.sim.resource(id).is_some()
    }

    /// Names of the children of `parent` of `child_type` (for example `subnets`).
    fn children(&self, parent: &str, child_type: &str) -> BTreeSet<String> {
        let prefix = format!("{parent}/{child_type}/").to_ascii_lowercase();
        self.sim
            .inventory()
            .into_iter()
            .filter_map(|item| {
                let id = item.id.to_ascii_lowercase();
                let name = id.strip_prefix(&prefix)?;
                (!name.contains('/')).then(|| item.body["name"].as_str().unwrap().to_string())
            })
            .collect()
    }

    /// Whether ARM has the deployment stack `id` (the record of this driver's deployment).
    async fn has_stack(&self, id: &str) -> bool {
        let (status, body) = self
            .arm(
                reqwest::Method::GET,
                &format!("{id}?api-version=2024-03-01"),
                None,
            )
            .await;
        assert!(status == 200 || status == 404, "{status} {body}");
        status == 200
    }

    /// An ARM call with the deployment location's client, as the Python driver made them.
    async fn arm(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let token: Value = self
            .arm
            .post(format!(
                "{}/tenant-legacy/oauth2/v2.0/token",
                self.sim.endpoint()
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", "secret-legacy"),
                ("scope", "https://management.azure.com/.default"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut request = self
            .arm
            .request(method, format!("{}{path}", self.sim.endpoint()))
            .bearer_auth(token["access_token"].as_str().unwrap());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn wait_until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    fn resources(&self) -> Api<AzureResource> {
        Api::namespaced(self.client.clone(), self.namespace.name())
    }
}

async fn serve_over_tls(dir: &std::path::Path, shim: Shim) -> SocketAddr {
    let resolver =
        Arc::new(ReloadingCert::load(&dir.join("tls.crt"), &dir.join("tls.key")).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        Some(server_config(resolver).unwrap()),
        routes(shim),
        ConnectionLimits::default(),
        std::future::pending(),
    ));
    addr
}

fn location() -> Value {
    json!({"name": "azure-legacy", "type": "Azure", "properties": {
        "tenantId": "tenant-legacy", "clientId": CLIENT, "clientSecret": "secret-legacy",
        "subscriptionId": SUB}})
}

fn string(value: &str) -> Value {
    json!({"type": "string", "value": value})
}

/// A Brent request; `properties` are plain strings or typed values.
fn request(lifecycle: &str, id: &str, name: &str, kind: &str, properties: Value) -> Value {
    let typed: serde_json::Map<String, Value> = properties
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| {
            let typed = match value {
                Value::String(text) => string(text),
                Value::Bool(flag) => json!({"type": "boolean", "value": flag}),
                other => other.clone(),
            };
            (key.clone(), typed)
        })
        .collect();
    json!({
        "lifecycleName": lifecycle,
        "driverFiles": "",
        "systemProperties": {
            "resourceId": string(id),
            "resourceName": string(name),
            "resourceType": string(&format!("resource::{kind}::1.0"))
        },
        "resourceProperties": typed,
        "requestProperties": {},
        "associatedTopology": {},
        "deploymentLocation": location()
    })
}

fn group_id(group: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{group}")
}

fn network_id(group: &str, kind: &str, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Network/{kind}/{name}",
        group_id(group)
    )
}

/// `<prefix>::<id>::<uuid4>`: the id part when the shape holds.
fn request_id_part<'a>(request_id: &'a str, prefix: &str) -> &'a str {
    let rest = request_id
        .strip_prefix(&format!("{prefix}::"))
        .unwrap_or_else(|| panic!("{request_id} does not start with {prefix}::"));
    let (id, uuid) = rest.rsplit_once("::").expect("three parts");
    let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{request_id}");
    assert!(
        uuid.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "a lower-case uuid4: {request_id}"
    );
    id
}

/// Properties as the template declared them: without what the provider fills in.
fn declared(properties: &Value) -> Value {
    let mut properties = properties.clone();
    for computed in ["provisioningState", "resourceGuid"] {
        properties.as_object_mut().unwrap().remove(computed);
    }
    properties
}

/// A Create of the 202 and the Kafka message as the contract shapes them (1.5, 1.7):
/// `Create::<id>::<uuid>`, the entry `{key: {id, type: Azure}}` in both, COMPLETE,
/// outputs in ARM's `{type, value}` form. Returns the ARM id of the entry.
fn assert_created(accepted: &Value, result: &ResultMessage, key: &str) -> String {
    assert_eq!(result.status, ResultStatus::Complete, "{result:?}");
    let id = request_id_part(accepted["requestId"].as_str().unwrap(), "Create").to_string();
    let entry = json!({key: {"id": id, "type": "Azure"}});
    assert_eq!(accepted["associatedTopology"], entry, "{accepted}");
    assert_eq!(accepted["version"], json!("1.0.0"));
    for (name, output) in &result.outputs {
        let keys: BTreeSet<&str> = output
            .as_object()
            .unwrap_or_else(|| panic!("output {name} is not {{type, value}}: {output}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["type", "value"]), "{name}: {output}");
    }
    id
}

/// A Delete: `Delete::<id>::<uuid>`, the incoming entries echoed with `key` null, COMPLETE.
fn assert_deleted(accepted: &Value, result: &ResultMessage, key: &str, id: &str) {
    assert_eq!(result.status, ResultStatus::Complete, "{result:?}");
    assert_eq!(
        request_id_part(accepted["requestId"].as_str().unwrap(), "Delete"),
        id
    );
    assert_eq!(accepted["associatedTopology"][key], Value::Null);
    assert_eq!(
        Value::Object(result.associated_topology.clone()),
        json!({key: null})
    );
    assert!(result.outputs.is_empty(), "{result:?}");
}

/// Creates resource group `group` through the shim.
async fn create_group(stack: &Stack, id: &str, group: &str) -> (Value, ResultMessage) {
    stack
        .execute(&request(
            "Create",
            id,
            group,
            "AzureResourceGroup",
            json!({"resourcegroup_name": group, "resourcegroup_location": "westeurope"}),
        ))
        .await
}

fn vnet_properties(group: &str, vnet: &str, space: &str, default_cidr: &str) -> Value {
    json!({"resourcegroup_name": group, "vnet_name": vnet, "vnet_location": "westeurope",
           "vnet_enable_ddos_protection": false,
           "vnet_private_endpoint_network_policies": "Disabled",
           "vnet_private_link_service_network_policies": "Enabled",
           "vnet_address_space": space, "vnet_default_cidr_block": default_cidr})
}

/// 2.1: the group with its location and tag; Delete removes it.
#[tokio::test]
async fn resource_group_is_created_and_deleted_as_the_contract_says() {
    let stack = Stack::start().await;
    let (accepted, created) = create_group(
        &stack,
        "a1000000-0000-4000-8000-000000000001",
        "rg-legacy-a",
    )
    .await;
    let id = assert_created(&accepted, &created, "rglegacya");
    assert_eq!(id, group_id("rg-legacy-a"));
    assert_eq!(
        Value::Object(created.associated_topology.clone()),
        accepted["associatedTopology"]
    );
    let group = stack.held(&id);
    assert_eq!(group["location"], "westeurope");
    assert_eq!(group["tags"], json!({"Creator": "Cp4na"}));

    let mut delete = request(
        "Delete",
        "a1000000-0000-4000-8000-000000000001",
        "rg-legacy-a",
        "AzureResourceGroup",
        json!({}),
    );
    delete["associatedTopology"] = accepted["associatedTopology"].clone();
    let (accepted, deleted) = stack.execute(&delete).await;
    assert_deleted(&accepted, &deleted, "rglegacya", &id);
    assert!(!stack.holds(&id));
    stack.shim.no_result_within(Duration::from_secs(2)).await;
}

/// 2.2.1: the VNet with its address space (spaces removed, D15) and DDoS flag, the one
/// subnet `default` as a child resource (no inline lists, D17); Delete removes it.
#[tokio::test]
async fn vnet_has_the_contracts_address_space_and_default_subnet() {
    let stack = Stack::start().await;
    create_group(&stack, "a2000000-0000-4000-8000-000000000001", "rg-vnet").await;
    let vnet_request = request(
        "Create",
        "a2000000-0000-4000-8000-000000000002",
        "site-1__vnet",
        "AzureVNet",
        vnet_properties(
            "rg-vnet",
            "vnet-1",
            "10.1.0.0/16, 10.2.0.0/16",
            "10.1.0.0/24",
        ),
    );
    let (accepted, created) = stack.execute(&vnet_request).await;
    let stack_id = assert_created(&accepted, &created, "site1__vnet");
    let vnet_id = network_id("rg-vnet", "virtualNetworks", "vnet-1");
    let vnet = stack.held(&vnet_id);
    assert_eq!(vnet["location"], "westeurope");
    assert_eq!(vnet["tags"], json!({"Creator": "Cp4na"}));
    assert_eq!(
        vnet["properties"]["addressSpace"]["addressPrefixes"],
        json!(["10.1.0.0/16", "10.2.0.0/16"])
    );
    assert_eq!(vnet["properties"]["enableDdosProtection"], false);
    assert_eq!(
        stack.children(&vnet_id, "subnets"),
        BTreeSet::from(["default".to_string()])
    );
    let default = &stack.held(&format!("{vnet_id}/subnets/default"))["properties"];
    assert_eq!(default["addressPrefix"], "10.1.0.0/24");
    assert_eq!(default["delegations"], json!([]));
    assert_eq!(default["privateEndpointNetworkPolicies"], "Disabled");
    assert_eq!(default["privateLinkServiceNetworkPolicies"], "Enabled");
    assert_eq!(
        created.outputs["vnetId"]["value"]
            .as_str()
            .map(str::to_ascii_lowercase),
        Some(vnet_id.to_ascii_lowercase())
    );

    let mut delete = request(
        "Delete",
        "a2000000-0000-4000-8000-000000000002",
        "site-1__vnet",
        "AzureVNet",
        json!({}),
    );
    delete["associatedTopology"] = accepted["associatedTopology"].clone();
    let (accepted, deleted) = stack.execute(&delete).await;
    assert_deleted(&accepted, &deleted, "site1__vnet", &stack_id);
    assert!(
        !stack.holds(&vnet_id),
        "Delete removes the VNet (not only a record)"
    );
    stack.shim.no_result_within(Duration::from_secs(2)).await;
}

/// (name, direction, priority, access, source prefix, destination prefix).
type Rule = (String, String, i64, String, String, String);

fn rule(
    name: &str,
    direction: &str,
    priority: i64,
    access: &str,
    source: &str,
    destination: &str,
) -> Rule {
    (
        name.into(),
        direction.into(),
        priority,
        access.into(),
        source.into(),
        destination.into(),
    )
}

/// 2.4: for each switch combination exactly the contract's rules, with their direction,
/// priority, access and prefixes; protocol and ports `*`.
#[tokio::test]
async fn nsg_rules_are_the_contracts_for_every_switch() {
    let stack = Stack::start().await;
    create_group(&stack, "a3000000-0000-4000-8000-000000000001", "rg-nsg").await;
    let own = "10.5.0.0/16";
    let local = [
        rule("AllowVnetCIDRInbound", "Inbound", 200, "Allow", own, own),
        rule(
            "DenyVnetInbound",
            "Inbound",
            300,
            "Deny",
            "VirtualNetwork",
            "VirtualNetwork",
        ),
        rule("AllowVnetCIDROutbound", "Outbound", 400, "Allow", own, own),
        rule(
            "DenyVnetOutbound",
            "Outbound",
            500,
            "Deny",
            "VirtualNetwork",
            "VirtualNetwork",
        ),
    ];
    let public = [rule(
        "AllowInternetInbound",
        "Inbound",
        500,
        "Allow",
        "Internet",
        own,
    )];
    let private = [
        rule(
            "DenyLoadbalancerInbound",
            "Inbound",
            600,
            "Deny",
            "AzureLoadBalancer",
            "*",
        ),
        rule(
            "DenyInternetOutbound",
            "Outbound",
            300,
            "Deny",
            "*",
            "Internet",
        ),
    ];
    let cases: [(&str, &str, Vec<Rule>); 5] = [
        ("public", "local", [&local[..], &public[..]].concat()),
        ("public", "global", public.to_vec()),
        ("private", "local", [&local[..], &private[..]].concat()),
        ("private", "global", private.to_vec()),
        ("Private", "Local", Vec::new()),
    ];
    let bodies: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(index, (private_or_public, local_or_global, _))| {
            request(
                "Create",
                &format!("a3000000-0000-4000-8000-00000000001{index}"),
                &format!("nsg-{index}"),
                "AzureNetworkSecurityGroup",
                json!({"resourcegroup_name": "rg-nsg", "network_security_group_name": format!("nsg-{index}"),
                       "network_security_group_location": "westeurope",
                       "private_or_public": private_or_public, "local_or_global": local_or_global,
                       "vnet_address_space": own}),
            )
        })
        .collect();
    let results = stack.execute_all(&bodies).await;
    for (index, ((private_or_public, local_or_global, expected), (accepted, created))) in
        cases.iter().zip(&results).enumerate()
    {
        assert_created(accepted, created, &format!("nsg{index}"));
        let nsg_id = network_id("rg-nsg", "networkSecurityGroups", &format!("nsg-{index}"));
        let nsg = stack.held(&nsg_id);
        assert_eq!(nsg["tags"], json!({"Creator": "Cp4na"}));
        assert_eq!(nsg["location"], "westeurope");
        let mut rules: Vec<Rule> = stack
            .children(&nsg_id, "securityRules")
            .iter()
            .map(|name| {
                let p = stack.held(&format!("{nsg_id}/securityRules/{name}"))["properties"].clone();
                assert_eq!(
                    (
                        &p["protocol"],
                        &p["sourcePortRange"],
                        &p["destinationPortRange"]
                    ),
                    (&json!("*"), &json!("*"), &json!("*")),
                    "{name}"
                );
                rule(
                    name,
                    p["direction"].as_str().unwrap(),
                    p["priority"].as_i64().unwrap(),
                    p["access"].as_str().unwrap(),
                    p["sourceAddressPrefix"].as_str().unwrap(),
                    p["destinationAddressPrefix"].as_str().unwrap(),
                )
            })
            .collect();
        rules.sort();
        let mut expected = expected.clone();
        expected.sort();
        assert_eq!(rules, expected, "{private_or_public}/{local_or_global}");
    }
    stack.shim.no_result_within(Duration::from_secs(2)).await;
}

/// 2.5.1: BranchOfficeRoute only for private and global, with the branch office prefix,
/// the appliance at private_static_ip and the BGP flag; 2.5.2/2.5.3 (later branch):
/// AddRoute adds one route with the `.4` next hop, routes of several AddRoutes coexist,
/// RemoveRoute removes exactly its own (the Python branch left it, D19), and a route the
/// Python driver's AddRoute deployed is removed through its topology entry.
#[tokio::test]
async fn route_tables_and_their_added_routes_are_the_contracts() {
    let stack = Stack::start().await;
    create_group(&stack, "a4000000-0000-4000-8000-000000000001", "rg-rt").await;
    let table = |index: usize, private_or_public: &str, local_or_global: &str| {
        request(
            "Create",
            &format!("a4000000-0000-4000-8000-00000000001{index}"),
            &format!("rt-{index}"),
            "AzureRouteTable",
            json!({"resourcegroup_name": "rg-rt", "route_table_name": format!("rt-{index}"),
                   "route_table_location": "westeurope",
                   "route_table_disable_bgp_route_propagation": true,
                   "private_or_public": private_or_public, "local_or_global": local_or_global,
                   "branch_office_cidr": "192.168.10.0/24", "private_static_ip": "10.0.2.4"}),
        )
    };
    let cases = [
        ("private", "global"),
        ("public", "global"),
        ("private", "local"),
        ("public", "local"),
    ];
    let bodies: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(index, (pp, lg))| table(index, pp, lg))
        .collect();
    let results = stack.execute_all(&bodies).await;
    for (index, (accepted, created)) in results.iter().enumerate() {
        assert_created(accepted, created, &format!("rt{index}"));
        let table_id = network_id("rg-rt", "routeTables", &format!("rt-{index}"));
        let table = stack.held(&table_id);
        assert_eq!(table["tags"], json!({"Creator": "Cp4na"}));
        assert_eq!(table["properties"]["disableBgpRoutePropagation"], true);
        let routes = stack.children(&table_id, "routes");
        if index == 0 {
            assert_eq!(routes, BTreeSet::from(["BranchOfficeRoute".to_string()]));
            let route = &stack.held(&format!("{table_id}/routes/BranchOfficeRoute"))["properties"];
            assert_eq!(route["addressPrefix"], "192.168.10.0/24");
            assert_eq!(route["nextHopType"], "VirtualAppliance");
            assert_eq!(route["nextHopIpAddress"], "10.0.2.4");
            assert_eq!(route["hasBgpOverride"], true);
        } else {
            assert!(routes.is_empty(), "{:?}: {routes:?}", cases[index]);
        }
    }

    // AddRoute twice on rt-0, then RemoveRoute of the first.
    let table_id = network_id("rg-rt", "routeTables", "rt-0");
    let add_route = |route: &str, prefix: &str| {
        request(
            "AddRoute",
            "a4000000-0000-4000-8000-000000000010",
            "rt-0",
            "AzureRouteTable",
            json!({"resourcegroup_name": "rg-rt", "route_table_name": "rt-0", "route_name": route,
                   "route_next_hop_type": "VirtualAppliance", "route_address_prefix": prefix,
                   "private_subnet_cidr": "10.0.3.0/24", "route_has_bgp_override": "false"}),
        )
    };
    let (accepted, added) = stack.execute(&add_route("bo1", "192.168.21.0/24")).await;
    let bo1_id = assert_created(&accepted, &added, "rt0bo1route");
    stack.execute(&add_route("bo2", "192.168.22.0/24")).await;
    assert_eq!(
        stack.children(&table_id, "routes"),
        BTreeSet::from(["BranchOfficeRoute".into(), "bo1".into(), "bo2".into()])
    );
    assert_eq!(
        declared(&stack.held(&format!("{table_id}/routes/bo1"))["properties"]),
        json!({"addressPrefix": "192.168.21.0/24", "nextHopType": "VirtualAppliance",
               "nextHopIpAddress": "10.0.3.4", "hasBgpOverride": false})
    );
    let mut remove = add_route("bo1", "192.168.21.0/24");
    remove["lifecycleName"] = json!("RemoveRoute");
    remove["associatedTopology"] = accepted["associatedTopology"].clone();
    let (accepted, removed) = stack.execute(&remove).await;
    assert_eq!(removed.status, ResultStatus::Complete, "{removed:?}");
    assert_eq!(
        request_id_part(accepted["requestId"].as_str().unwrap(), "Delete"),
        bo1_id
    );
    assert_eq!(accepted["associatedTopology"], json!({"rt0bo1route": null}));
    assert_eq!(
        stack.children(&table_id, "routes"),
        BTreeSet::from(["BranchOfficeRoute".into(), "bo2".into()])
    );

    // A route the Python driver's AddRoute made: its deployment, named and keyed as 1.3
    // and 2.5.2 say, removed by RemoveRoute with the caller's credentials.
    let key = "rt0bo3route";
    let deployment = python_deployment(
        &stack,
        "rg-rt",
        &format!("sa4000000-0000-4000-8000-000000000010-{key}"),
        json!({"type": "Microsoft.Network/routeTables/routes", "apiVersion": "2020-11-01",
               "name": "rt-0/bo3", "properties": {"addressPrefix": "192.168.23.0/24",
               "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.3.4", "hasBgpOverride": false}}),
        &format!("{table_id}/routes/bo3"),
    )
    .await;
    let mut remove = add_route("bo3", "192.168.23.0/24");
    remove["lifecycleName"] = json!("RemoveRoute");
    remove["associatedTopology"] = json!({key: {"id": deployment, "type": "Azure"}});
    let (accepted, removed) = stack.execute(&remove).await;
    assert_eq!(removed.status, ResultStatus::Complete, "{removed:?}");
    assert_eq!(
        request_id_part(accepted["requestId"].as_str().unwrap(), "Delete"),
        format!("{table_id}/routes/bo3")
    );
    assert_eq!(accepted["associatedTopology"], json!({key: null}));
    assert_eq!(
        stack.children(&table_id, "routes"),
        BTreeSet::from(["BranchOfficeRoute".into(), "bo2".into()])
    );
    stack.shim.no_result_within(Duration::from_secs(2)).await;
}

/// Deploys `resource` as the Python driver did (a plain ARM deployment named `name` in
/// `group`, Incremental) and waits until `made` exists; the deployment's id.
async fn python_deployment(
    stack: &Stack,
    group: &str,
    name: &str,
    resource: Value,
    made: &str,
) -> String {
    let deployment = format!(
        "{}/providers/Microsoft.Resources/deployments/{name}",
        group_id(group)
    );
    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [resource]
    });
    let (status, body) = stack
        .arm(
            reqwest::Method::PUT,
            &format!("{deployment}?{ARM_VERSION}"),
            Some(json!({"properties": {"mode": "Incremental", "template": template}})),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    stack
        .wait_until(&format!("{made} deployed"), |s| s.holds(made))
        .await;
    deployment
}

/// 2.3: the subnet in the existing VNet with the NSG and route table attached, its
/// prefix and policies; a repeated Create of the VNet keeps it (no inline subnet list,
/// D17); Delete of the subnet removes it and leaves the VNet.
#[tokio::test]
async fn subnet_attaches_the_nsg_and_route_table_and_survives_a_vnet_create() {
    let stack = Stack::start().await;
    create_group(&stack, "a5000000-0000-4000-8000-000000000001", "rg-sub").await;
    let vnet = request(
        "Create",
        "a5000000-0000-4000-8000-000000000002",
        "vnet-s",
        "AzureVNet",
        vnet_properties("rg-sub", "vnet-s", "10.6.0.0/16", "10.6.0.0/24"),
    );
    let prerequisites = [
        vnet.clone(),
        request(
            "Create",
            "a5000000-0000-4000-8000-000000000003",
            "nsg-s",
            "AzureNetworkSecurityGroup",
            json!({"resourcegroup_name": "rg-sub", "network_security_group_name": "nsg-s",
                   "private_or_public": "private", "local_or_global": "global"}),
        ),
        request(
            "Create",
            "a5000000-0000-4000-8000-000000000004",
            "rt-s",
            "AzureRouteTable",
            json!({"resourcegroup_name": "rg-sub", "route_table_name": "rt-s",
                   "route_table_disable_bgp_route_propagation": false}),
        ),
    ];
    for (_, result) in stack.execute_all(&prerequisites).await {
        assert_eq!(result.status, ResultStatus::Complete, "{result:?}");
    }
    let subnet = |lifecycle: &str| {
        request(
            lifecycle,
            "a5000000-0000-4000-8000-000000000005",
            "subnet-s",
            "AzureSubnet",
            json!({"resourcegroup_name": "rg-sub", "vnet_name": "vnet-s", "subnet_name": "app",
                   "subnet_cidr_block": "10.6.1.0/24",
                   "subnet_private_network_endpoint_policies": "Disabled",
                   "subnet_private_link_service_network_policies": "Enabled",
                   "route_table_name": "rt-s", "network_security_group_name": "nsg-s"}),
        )
    };
    let (accepted, created) = stack.execute(&subnet("Create")).await;
    let stack_id = assert_created(&accepted, &created, "subnets");
    let vnet_id = network_id("rg-sub", "virtualNetworks", "vnet-s");
    let subnet_id = format!("{vnet_id}/subnets/app");
    let p = stack.held(&subnet_id)["properties"].clone();
    assert_eq!(p["addressPrefix"], "10.6.1.0/24");
    assert_eq!(
        p["networkSecurityGroup"]["id"]
            .as_str()
            .map(str::to_ascii_lowercase),
        Some(network_id("rg-sub", "networkSecurityGroups", "nsg-s").to_ascii_lowercase())
    );
    assert_eq!(
        p["routeTable"]["id"].as_str().map(str::to_ascii_lowercase),
        Some(network_id("rg-sub", "routeTables", "rt-s").to_ascii_lowercase())
    );
    assert_eq!(p["serviceEndpoints"], json!([]));
    assert_eq!(p["delegations"], json!([]));
    assert_eq!(p["privateEndpointNetworkPolicies"], "Disabled");
    assert_eq!(p["privateLinkServiceNetworkPolicies"], "Enabled");

    let (_, recreated) = stack.execute(&vnet).await;
    assert_eq!(recreated.status, ResultStatus::Complete, "{recreated:?}");
    assert_eq!(
        stack.children(&vnet_id, "subnets"),
        BTreeSet::from(["app".to_string(), "default".to_string()])
    );

    let mut delete = subnet("Delete");
    delete["associatedTopology"] = accepted["associatedTopology"].clone();
    let (accepted, deleted) = stack.execute(&delete).await;
    assert_deleted(&accepted, &deleted, "subnets", &stack_id);
    assert!(!stack.holds(&subnet_id));
    assert!(stack.holds(&vnet_id));
    stack.shim.no_result_within(Duration::from_secs(2)).await;
}

/// 2.6: the account named as the contract says (lower-cased, cut to 22, a suffix from 1
/// to 50; the same on a repeated Create, D12), kind, SKU and properties; output
/// `storageEndpoint` in ARM's `{type: Object, value}` form.
#[tokio::test]
async fn storage_account_is_named_and_configured_as_the_contract_says() {
    let stack = Stack::start().await;
    create_group(&stack, "a6000000-0000-4000-8000-000000000001", "rg-sa").await;
    let account = request(
        "Create",
        "a6000000-0000-4000-8000-000000000002",
        "store-1",
        "AzureStorageAccount",
        json!({"resourcegroup_name": "rg-sa", "storage_account_name": "MyStorageAccountWithALongName",
               "storage_account_type": "Standard_GRS", "storage_location": "westeurope"}),
    );
    let (accepted, created) = stack.execute(&account).await;
    assert_created(&accepted, &created, "store1");
    let accounts = |stack: &Stack| -> Vec<Value> {
        stack
            .sim
            .inventory()
            .into_iter()
            .filter(|item| {
                item.resource_type
                    .eq_ignore_ascii_case("Microsoft.Storage/storageAccounts")
            })
            .map(|item| item.body)
            .collect()
    };
    let held = accounts(&stack);
    assert_eq!(held.len(), 1, "{held:?}");
    let name = held[0]["name"].as_str().unwrap().to_string();
    let suffix: u32 = name
        .strip_prefix("mystorageaccountwithal")
        .unwrap_or_else(|| panic!("{name}: not the lower-cased 22-character base"))
        .parse()
        .unwrap();
    assert!((1..=50).contains(&suffix), "{name}");
    assert_eq!(held[0]["kind"], "StorageV2");
    assert_eq!(held[0]["sku"]["name"], "Standard_GRS");
    assert_eq!(held[0]["location"], "westeurope");
    assert_eq!(held[0]["tags"], json!({"Creator": "Cp4na"}));
    let p = &held[0]["properties"];
    assert_eq!(p["minimumTlsVersion"], "TLS1_2");
    assert_eq!(p["allowBlobPublicAccess"], false);
    assert_eq!(
        p["networkAcls"],
        json!({"bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [], "defaultAction": "Allow"})
    );
    let endpoint = &created.outputs["storageEndpoint"];
    assert_eq!(endpoint["type"], "Object", "{endpoint}");
    assert_eq!(
        endpoint["value"]["blob"],
        json!(format!("https://{name}.blob.core.windows.net/"))
    );

    let (_, again) = stack.execute(&account).await;
    assert_eq!(again.status, ResultStatus::Complete, "{again:?}");
    let held = accounts(&stack);
    assert_eq!(
        held.len(),
        1,
        "a repeated Create keeps the one account: {held:?}"
    );
    assert_eq!(held[0]["name"], json!(name));
    stack.shim.no_result_within(Duration::from_secs(2)).await;
}

/// 2.2.2 / 2.2.3: CreateVnetPeering peers one way with every property, the acceptor in
/// another subscription; a peering the Python driver made (raw ARM deployment, keyed as
/// the contract says) and one an earlier release of this driver named `…-createvnetpeering`
/// are each removed by RemoveVnetPeering, exactly and with the caller's credentials.
#[tokio::test]
async fn vnet_peerings_of_every_origin_are_made_and_removed_exactly() {
    let stack = Stack::start().await;
    create_group(&stack, "a7000000-0000-4000-8000-000000000001", "rg-peer").await;
    let vnet_resource = "a7000000-0000-4000-8000-000000000002";
    let vnets: Vec<Value> = [
        ("vnet-a", "10.7.0.0/16"),
        ("vnet-b", "10.8.0.0/16"),
        ("vnet-c", "10.9.0.0/16"),
        ("vnet-d", "10.10.0.0/16"),
    ]
    .iter()
    .enumerate()
    .map(|(index, (vnet, space))| {
        request(
            "Create",
            &format!("a7000000-0000-4000-8000-00000000001{index}"),
            vnet,
            "AzureVNet",
            vnet_properties("rg-peer", vnet, space, space),
        )
    })
    .collect();
    for (_, result) in stack.execute_all(&vnets).await {
        assert_eq!(result.status, ResultStatus::Complete, "{result:?}");
    }
    let initiator = network_id("rg-peer", "virtualNetworks", "vnet-a");
    let peering = |lifecycle: &str, acceptor: &str| {
        let mut body = request(
            lifecycle,
            vnet_resource,
            "site-1__VNetResource",
            "AzureVNet",
            json!({"resourcegroup_name": "rg-peer", "vnet_name": "vnet-a"}),
        );
        body["requestProperties"] = json!({
            "initiator_vnet_name": string("vnet-a"), "initiator_vnet_rg_name": string("rg-peer"),
            "acceptor_vnet_name": string(acceptor), "acceptor_vnet_rg_name": string("rg-remote"),
            "acceptor_vnet_subscription_id": string(SUB_ACCEPTOR),
            "peering_state": string("Initiated"),
            "allow_virtual_network_access": {"type": "boolean", "value": false},
            "allow_forwarded_traffic": {"type": "boolean", "value": true},
            "allow_gateway_transit": {"type": "boolean", "value": true},
            "use_remote_gateways": {"type": "boolean", "value": false}
        });
        body
    };

    // Made by this driver: one way, every property, the acceptor's subscription.
    let (accepted, peered) = stack.execute(&peering("CreateVnetPeering", "vnet-b")).await;
    let key = "site1__vnet-apeer";
    assert_created(&accepted, &peered, key);
    assert_eq!(
        declared(
            &stack.held(&format!(
                "{initiator}/virtualNetworkPeerings/vnet-a-to-vnet-b"
            ))["properties"]
        ),
        json!({"remoteVirtualNetwork": {"id": format!(
                  "/subscriptions/{SUB_ACCEPTOR}/resourceGroups/rg-remote/providers/Microsoft.Network/virtualNetworks/vnet-b")},
               "peeringState": "Initiated", "allowVirtualNetworkAccess": false,
               "allowForwardedTraffic": true, "allowGatewayTransit": true, "useRemoteGateways": false})
    );
    let acceptor_side = stack
        .sim
        .inventory()
        .into_iter()
        .filter(|item| {
            item.id
                .to_ascii_lowercase()
                .contains("/virtualnetworkpeerings/vnet-b-to-")
        })
        .count();
    assert_eq!(acceptor_side, 0, "one way only");

    // Made by the Python driver: its deployment in the initiator's group, named
    // s<resourceId>-<key> (1.3), the peering under the initiator VNet (2.2.2).
    let python_made = format!("{initiator}/virtualNetworkPeerings/vnet-a-to-vnet-c");
    let deployment = python_deployment(
        &stack,
        "rg-peer",
        &format!("s{vnet_resource}-{key}"),
        json!({"type": "Microsoft.Network/virtualNetworks/virtualNetworkPeerings",
               "apiVersion": "2020-11-01", "name": "vnet-a/vnet-a-to-vnet-c",
               "properties": {"remoteVirtualNetwork": {"id": network_id("rg-peer", "virtualNetworks", "vnet-c")},
                   "peeringState": "Connected", "allowVirtualNetworkAccess": true,
                   "allowForwardedTraffic": true, "allowGatewayTransit": false, "useRemoteGateways": false}}),
        &python_made,
    )
    .await;

    // Made by an earlier release of this driver: one object per VNet, named without the
    // peering (what the shim applies today, under that name).
    let previous = previous_release_peering(&stack, &peering("CreateVnetPeering", "vnet-d")).await;
    let previous_made = format!("{initiator}/virtualNetworkPeerings/vnet-a-to-vnet-d");
    stack
        .wait_until("the earlier release's peering", |s| s.holds(&previous_made))
        .await;
    let result = stack.shim.next_result(WAIT).await;
    assert_eq!(result.status, ResultStatus::Complete, "{result:?}");
    assert_eq!(
        stack.children(&initiator, "virtualNetworkPeerings"),
        BTreeSet::from([
            "vnet-a-to-vnet-b".into(),
            "vnet-a-to-vnet-c".into(),
            "vnet-a-to-vnet-d".into()
        ])
    );

    // The Python driver kept one key for all peerings of a VNet: a removal naming
    // another acceptor leaves vnet-a-to-vnet-c alone.
    let mut remove = peering("RemoveVnetPeering", "vnet-e");
    remove["associatedTopology"] = json!({key: {"id": deployment, "type": "Azure"}});
    let (_, removed) = stack.execute(&remove).await;
    assert_eq!(removed.status, ResultStatus::Complete, "{removed:?}");
    assert_eq!(
        stack.children(&initiator, "virtualNetworkPeerings"),
        BTreeSet::from([
            "vnet-a-to-vnet-b".into(),
            "vnet-a-to-vnet-c".into(),
            "vnet-a-to-vnet-d".into()
        ])
    );

    // The Python driver's peering: Brent's topology holds the deployment under the key.
    stack.sim.reset_counters();
    let mut remove = peering("RemoveVnetPeering", "vnet-c");
    remove["associatedTopology"] = json!({
        "site1__VNetResource": {"id": "/elsewhere", "type": "Azure"},
        key: {"id": deployment, "type": "Azure"}
    });
    let (accepted, removed) = stack.execute(&remove).await;
    assert_eq!(removed.status, ResultStatus::Complete, "{removed:?}");
    assert_eq!(
        request_id_part(accepted["requestId"].as_str().unwrap(), "Delete"),
        python_made
    );
    assert_eq!(
        accepted["associatedTopology"],
        json!({"site1__VNetResource": {"id": "/elsewhere", "type": "Azure"}, key: null})
    );
    assert_eq!(
        stack.children(&initiator, "virtualNetworkPeerings"),
        BTreeSet::from(["vnet-a-to-vnet-b".into(), "vnet-a-to-vnet-d".into()])
    );
    let calls = stack.sim.counters().client(CLIENT);
    assert!(
        calls.keys().any(|route| route.starts_with("DELETE")),
        "the removal ran with the caller's client: {calls:?}"
    );

    // The earlier release's object.
    let (_, removed) = stack.execute(&peering("RemoveVnetPeering", "vnet-d")).await;
    assert_eq!(removed.status, ResultStatus::Complete, "{removed:?}");
    assert!(
        stack
            .resources()
            .get_opt(&previous)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        stack.children(&initiator, "virtualNetworkPeerings"),
        BTreeSet::from(["vnet-a-to-vnet-b".to_string()])
    );

    // This driver's own.
    let (accepted, removed) = stack.execute(&peering("RemoveVnetPeering", "vnet-b")).await;
    assert_eq!(removed.status, ResultStatus::Complete, "{removed:?}");
    request_id_part(accepted["requestId"].as_str().unwrap(), "Delete");
    assert!(
        stack
            .children(&initiator, "virtualNetworkPeerings")
            .is_empty()
    );
    for vnet in ["vnet-a", "vnet-b", "vnet-c", "vnet-d"] {
        assert!(
            stack.holds(&network_id("rg-peer", "virtualNetworks", vnet)),
            "{vnet}"
        );
    }
    stack.shim.no_result_within(Duration::from_secs(2)).await;
}

/// Applies the object (and credentials Secret) the shim plans for `create_peering`, under
/// the name earlier releases gave every peering of a VNet; its name.
async fn previous_release_peering(stack: &Stack, create_peering: &Value) -> String {
    let req = parse_execute(create_peering.to_string().as_bytes()).unwrap();
    let pending = PendingRequest {
        uuid: "d0000000-0000-4000-8000-000000000001".into(),
        lifecycle: req.lifecycle.name().to_string(),
        tenant_id: None,
        trace: BTreeMap::new(),
        delete: false,
    };
    let Action::Apply(planned) = plan(
        &req,
        &Default::default(),
        &stack.shim.shim.mapping,
        &pending,
    )
    .unwrap() else {
        panic!("CreateVnetPeering applies an object");
    };
    let name = object_name(&req.system.resource_id, &req.lifecycle);
    let mut resource = planned.resource;
    resource.metadata.name = Some(name.clone());
    let apply = PatchParams::apply("earlier-release").force();
    let secrets: Api<Secret> = Api::namespaced(stack.client.clone(), stack.namespace.name());
    let credentials = planned.credentials.unwrap();
    secrets
        .patch(&credentials.name_any(), &apply, &Patch::Apply(&credentials))
        .await
        .unwrap();
    stack
        .resources()
        .patch(&name, &apply, &Patch::Apply(&resource))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let object = stack.resources().get(&name).await.unwrap();
        if object.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready) {
            return name;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never became Ready"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The chart value `legacyDeleteKeepsResources` restores the Python driver's Delete (D5):
/// the deployment record (stack) goes, the VNet stays; without it Delete removes the VNet.
#[tokio::test]
async fn delete_keeps_the_resources_only_with_the_chart_value() {
    let stack = Stack::start().await;
    create_group(&stack, "a8000000-0000-4000-8000-000000000001", "rg-del").await;
    for (index, keeping) in [(2, true), (3, false)] {
        let vnet = format!("vnet-{index}");
        let id = format!("a8000000-0000-4000-8000-00000000000{index}");
        let addr = if keeping {
            stack.keeping_shim_addr
        } else {
            stack.shim_addr
        };
        let properties = vnet_properties("rg-del", &vnet, "10.11.0.0/16", "10.11.0.0/24");
        let (accepted, created) = stack
            .execute_at(
                addr,
                &request("Create", &id, &vnet, "AzureVNet", properties),
            )
            .await;
        let stack_id = assert_created(&accepted, &created, &vnet.replace('-', ""));
        assert!(stack.has_stack(&stack_id).await, "{stack_id}");
        let mut delete = request("Delete", &id, &vnet, "AzureVNet", json!({}));
        delete["associatedTopology"] = accepted["associatedTopology"].clone();
        let (accepted, deleted) = stack.execute_at(addr, &delete).await;
        assert_deleted(&accepted, &deleted, &vnet.replace('-', ""), &stack_id);
        assert!(!stack.has_stack(&stack_id).await, "the record goes");
        let vnet_id = network_id("rg-del", "virtualNetworks", &vnet);
        assert_eq!(stack.holds(&vnet_id), keeping, "{vnet}: keeping {keeping}");
        assert_eq!(stack.holds(&format!("{vnet_id}/subnets/default")), keeping);
    }
    stack.shim.no_result_within(Duration::from_secs(2)).await;
}

/// Operations in pairs for any package: `RemoveGateway` undoes exactly the
/// `AddGateway` of the same gateway (`gateway_name`), the other one stays.
#[tokio::test]
async fn package_additions_are_undone_by_their_removal() {
    let stack = Stack::start().await;
    create_group(&stack, "aa000000-0000-4000-8000-000000000001", "rg-pkg").await;
    let template = b"param gateway_name string\n\nresource ip 'Microsoft.Network/publicIPAddresses@2023-09-01' = {\n  name: gateway_name\n  location: 'westeurope'\n}\n";
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("AddGateway.bicep", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, template).unwrap();
    let package = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        zip.finish().unwrap().into_inner(),
    );
    let gateway = |lifecycle: &str, name: &str| {
        let mut body = request(
            lifecycle,
            "aa000000-0000-4000-8000-000000000002",
            "edge-1",
            "Edge",
            json!({"resourcegroup_name": "rg-pkg", "gateway_name": name}),
        );
        body["driverFiles"] = json!(package);
        body
    };
    let ip = |name: &str| network_id("rg-pkg", "publicIPAddresses", name);
    for name in ["gw1", "gw2"] {
        let (accepted, added) = stack.execute(&gateway("AddGateway", name)).await;
        assert_eq!(added.status, ResultStatus::Complete, "{added:?}");
        request_id_part(accepted["requestId"].as_str().unwrap(), "Create");
    }
    assert!(stack.holds(&ip("gw1")) && stack.holds(&ip("gw2")));
    let (accepted, removed) = stack.execute(&gateway("RemoveGateway", "gw1")).await;
    assert_eq!(removed.status, ResultStatus::Complete, "{removed:?}");
    request_id_part(accepted["requestId"].as_str().unwrap(), "Delete");
    assert!(!stack.holds(&ip("gw1")), "the removal undoes its addition");
    assert!(stack.holds(&ip("gw2")), "and only its own");
    stack.shim.no_result_within(Duration::from_secs(2)).await;
}
