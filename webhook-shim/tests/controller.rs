//! End to end: Brent-shaped requests → shim → AzureResource → controller → armsim (the
//! ARM simulator), results on librdkafka's mock cluster. The controller and armsim run as
//! their own binaries, built here into this test's target directory.

use std::sync::Arc;
use std::time::Duration;

use azure_driver_shim::api::routes;
use azure_driver_shim::kafka::{ResultMessage, ResultStatus};
use base64::Engine;
use bytes::Bytes;
use e2e::process::{ArmsimProcess, KilledOnDrop, built_binaries};
use e2e::shim::ShimOnMockKafka;
use e2e::{ControlPlane, TestNamespace};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rdkafka::Message;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio_rustls::TlsConnector;

const SUB: &str = "00000000-0000-0000-0000-0000000000dd";
const EXECUTE: &str = "/api/driver/lifecycle/execute";
const RESULT_WITHIN: Duration = Duration::from_secs(120);

/// The product as Brent meets it: armsim and the controller as processes in a namespace
/// of their own, the shim and its completion reporter in-process, results read from the
/// mock Kafka cluster by `shim_on_kafka.consumer`.
struct Harness {
    shim_on_kafka: ShimOnMockKafka,
    _controller: KilledOnDrop,
    simulator: ArmsimProcess,
    _tls_dir: tempfile::TempDir,
    _namespace: TestNamespace,
}

impl Harness {
    async fn start() -> Self {
        let bin = built_binaries(&["azure-driver-controller", "armsim"], &[]);
        let control_plane = ControlPlane::shared().await;
        let namespace = TestNamespace::create(control_plane).await;
        let tls_dir = tempfile::tempdir().unwrap();
        let armsim = ArmsimProcess::start(&bin, tls_dir.path());
        let controller = KilledOnDrop::new(
            armsim
                .lone_controller(&bin, control_plane.kubeconfig_path(), namespace.name())
                .spawn()
                .expect("the controller starts"),
        );
        let shim_on_kafka = ShimOnMockKafka::start(
            control_plane.client(),
            namespace.name(),
            "e2e",
            Duration::from_secs(2),
        );
        Self {
            shim_on_kafka,
            _controller: controller,
            simulator: armsim,
            _tls_dir: tls_dir,
            _namespace: namespace,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = warp::test::request()
            .method("POST")
            .path(path)
            .header("content-type", "application/json")
            .body(body.to_string())
            .reply(&routes(self.shim_on_kafka.shim.clone()))
            .await;
        (
            response.status().as_u16(),
            serde_json::from_slice(response.body()).unwrap(),
        )
    }

    /// Sends a lifecycle request, expects 202 and returns its one result from Kafka.
    async fn execute(&self, body: &Value) -> ResultMessage {
        let (status, accepted) = self.post(EXECUTE, body).await;
        assert_eq!(status, 202, "{accepted}");
        self.result_of(accepted["requestId"].as_str().unwrap())
            .await
    }

    /// Waits for the result of `request_id`; fails on any other message in between.
    async fn result_of(&self, request_id: &str) -> ResultMessage {
        let deadline = tokio::time::Instant::now() + RESULT_WITHIN;
        loop {
            match tokio::time::timeout_at(deadline, self.shim_on_kafka.consumer.recv()).await {
                Err(_) => panic!("no result for {request_id} within {RESULT_WITHIN:?}"),
                Ok(Err(_)) => continue,
                Ok(Ok(message)) => {
                    let body: ResultMessage =
                        serde_json::from_slice(message.payload().unwrap()).unwrap();
                    assert_eq!(body.request_id, request_id, "unexpected message {body:?}");
                    return body;
                }
            }
        }
    }

    async fn no_more_messages(&self) {
        if let Ok(Ok(message)) =
            tokio::time::timeout(Duration::from_secs(3), self.shim_on_kafka.consumer.recv()).await
        {
            panic!(
                "unexpected extra message: {:?}",
                message.payload_view::<str>()
            );
        }
    }

    /// One HTTPS request to armsim, trusting the CA it wrote; the answer's status and JSON
    /// body (`null` when empty).
    async fn armsim(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> (u16, Value) {
        let pem = std::fs::read(&self.simulator.ca_file).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let authority = self
            .simulator
            .endpoint
            .strip_prefix("https://")
            .expect("armsim's endpoint is https");
        let host = authority.rsplit_once(':').unwrap().0;
        let tcp = tokio::net::TcpStream::connect(authority).await.unwrap();
        let tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from(host.to_string()).unwrap(), tcp)
            .await
            .unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", authority);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        (status, body)
    }

    /// An ARM call as the deployment location's service principal would make it.
    async fn arm(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let form = "grant_type=client_credentials&client_id=client-e2e&client_secret=secret-e2e\
                    &scope=https%3A%2F%2Fmanagement.azure.com%2F.default";
        let (status, token) = self
            .armsim(
                "POST",
                "/tenant-e2e/oauth2/v2.0/token",
                &[("content-type", "application/x-www-form-urlencoded")],
                form.into(),
            )
            .await;
        assert_eq!(status, 200, "{token}");
        let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        self.armsim(
            method,
            path,
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    /// Ids of every resource armsim holds (`GET /_armsim/inventory`), lower-cased.
    async fn inventory(&self) -> Vec<String> {
        let (status, inventory) = self
            .armsim("GET", "/_armsim/inventory", &[], String::new())
            .await;
        assert_eq!(status, 200, "{inventory}");
        inventory["value"]
            .as_array()
            .expect("the inventory lists its items in 'value'")
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_ascii_lowercase())
            .collect()
    }

    /// Polls armsim until `id` is gone.
    async fn wait_gone_from_azure(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + RESULT_WITHIN;
        while held(&self.inventory().await, id) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} is still in Azure"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn location() -> Value {
    json!({"name": "azure-e2e", "type": "Azure", "properties": {
        "tenantId": "tenant-e2e", "clientId": "client-e2e", "clientSecret": "secret-e2e",
        "subscriptionId": SUB}})
}

fn request(lifecycle: &str, id: &str, name: &str, kind: &str, props: Value) -> Value {
    json!({
        "lifecycleName": lifecycle,
        "driverFiles": "",
        "systemProperties": {
            "resourceId": {"type": "string", "value": id},
            "resourceName": {"type": "string", "value": name},
            "resourceType": {"type": "string", "value": kind}
        },
        "resourceProperties": props,
        "requestProperties": {},
        "deploymentLocation": location()
    })
}

fn resource_group_request(lifecycle: &str, id: &str, group: &str) -> Value {
    request(
        lifecycle,
        id,
        group,
        "resource::AzureResourceGroup::1.0",
        json!({"resourcegroup_name": {"type": "string", "value": group},
               "resourcegroup_location": {"type": "string", "value": "westeurope"}}),
    )
}

/// The properties Brent holds for a virtual network (and sends with each of its
/// lifecycle requests and operations).
fn vnet_properties(group: &str, vnet: &str, address_space: &str, subnet: &str) -> Value {
    json!({"resourcegroup_name": {"type": "string", "value": group},
           "vnet_name": {"type": "string", "value": vnet},
           "vnet_location": {"type": "string", "value": "westeurope"},
           "vnet_enable_ddos_protection": {"type": "boolean", "value": "false"},
           "vnet_address_space": {"type": "string", "value": address_space},
           "vnet_default_cidr_block": {"type": "string", "value": subnet}})
}

/// Whether an inventory (lower-cased ids) holds `id`.
fn held(inventory: &[String], id: &str) -> bool {
    inventory.contains(&id.to_ascii_lowercase())
}

fn group_arm_id(group: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{group}")
}

fn vnet_arm_id(group: &str, vnet: &str) -> String {
    format!(
        "{}/providers/Microsoft.Network/virtualNetworks/{vnet}",
        group_arm_id(group)
    )
}

#[tokio::test]
async fn brent_requests_round_trip_through_the_controller_and_armsim() {
    let harness = Harness::start().await;

    // Resource group (legacy type, subscription scope).
    let group_id = "e0000000-0000-4000-8000-000000000001";
    let group = harness
        .execute(&resource_group_request("Create", group_id, "rg-e2e"))
        .await;
    assert_eq!(group.status, ResultStatus::Complete, "{group:?}");
    // As the Python driver did, the request id names the ARM id the topology holds.
    assert!(
        group
            .request_id
            .starts_with(&format!("Create::{}::", group_arm_id("rg-e2e"))),
        "{group:?}"
    );
    assert_eq!(
        group.associated_topology["rge2e"],
        json!({"id": group_arm_id("rg-e2e"), "type": "Azure"})
    );

    // Virtual network in it (legacy type).
    let vnet_id = "e0000000-0000-4000-8000-000000000002";
    let vnet = harness
        .execute(&request(
            "Install",
            vnet_id,
            "vnet-e2e",
            "resource::AzureVNet::1.0",
            vnet_properties(
                "rg-e2e",
                "vnet-e2e",
                "10.10.0.0/16, 10.20.0.0/16",
                "10.10.0.0/24",
            ),
        ))
        .await;
    assert_eq!(vnet.status, ResultStatus::Complete, "{vnet:?}");
    assert!(
        vnet.outputs["vnetId"]["value"]
            .as_str()
            .unwrap()
            .ends_with("/virtualNetworks/vnet-e2e"),
        "{vnet:?}"
    );

    // A custom operation from driverFiles.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("Configure.bicep", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, b"param vnet_name string\nparam label string\n\nresource nsg 'Microsoft.Network/networkSecurityGroups@2023-09-01' = {\n  name: '${vnet_name}-${label}'\n  location: 'westeurope'\n  tags: {\n    Creator: 'Cp4na'\n  }\n}\n\noutput nsgName string = nsg.name\n").unwrap();
    let zip = zip.finish().unwrap().into_inner();
    let mut configure = request(
        "Configure",
        vnet_id,
        "vnet-e2e",
        "resource::AzureVNet::1.0",
        json!({"resourcegroup_name": {"type": "string", "value": "rg-e2e"}, "vnet_name": {"type": "string", "value": "vnet-e2e"}}),
    );
    configure["requestProperties"] = json!({"label": {"type": "string", "value": "edge"}});
    configure["driverFiles"] = json!(base64::engine::general_purpose::STANDARD.encode(zip));
    let configured = harness.execute(&configure).await;
    assert_eq!(configured.status, ResultStatus::Complete, "{configured:?}");
    assert_eq!(
        configured.outputs["nsgName"],
        json!({"type": "String", "value": "vnet-e2e-edge"})
    );

    // Find.
    let (status, found) = harness
        .post(
            "/api/driver/references/find",
            &json!({"instanceName": "vnet-e2e", "driverFiles": "", "deploymentLocation": location()}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["result"]["resourceId"], json!(vnet_id));
    assert_eq!(
        found["result"]["outputs"]["vnetId"],
        vnet.outputs["vnetId"]["value"]
    );

    // Failure in Azure: the resource group does not exist.
    let failed = harness.execute(&request("Create", "e0000000-0000-4000-8000-000000000003", "vnet-bad", "resource::AzureVNet::1.0",
        json!({"resourcegroup_name": {"type": "string", "value": "rg-missing"}, "vnet_name": {"type": "string", "value": "vnet-bad"}}))).await;
    assert_eq!(failed.status, ResultStatus::Failed, "{failed:?}");
    let details = failed.failure_details.unwrap();
    assert_eq!(
        serde_json::to_value(details.failure_code).unwrap(),
        json!("INFRASTRUCTURE_ERROR")
    );
    assert!(
        details.description.contains("rg-missing"),
        "{}",
        details.description
    );

    // Delete of the vnet (and its Configure object).
    let deleted = harness
        .execute(&request(
            "Uninstall",
            vnet_id,
            "vnet-e2e",
            "resource::AzureVNet::1.0",
            json!({}),
        ))
        .await;
    assert_eq!(deleted.status, ResultStatus::Complete, "{deleted:?}");
    assert_eq!(
        Value::Object(deleted.associated_topology),
        json!({"vnete2e": null})
    );
    let (_, gone) = harness
        .post(
            "/api/driver/references/find",
            &json!({"instanceName": "vnet-e2e", "driverFiles": "", "deploymentLocation": location()}),
        )
        .await;
    assert_eq!(gone, json!({"result": null}));
    harness.no_more_messages().await;
}

/// Operations CreateVnetPeering / RemoveVnetPeering of `resource::AzureVNet::1.0`: as the
/// Python driver, the peering goes one way (initiator to acceptor); `peer_both_directions`
/// adds the acceptor's side in the acceptor's resource group. Removing it takes away what
/// it made and leaves the networks.
#[tokio::test]
async fn vnet_peering_goes_one_way_or_both_and_is_removed_through_the_controller_and_armsim() {
    let harness = Harness::start().await;
    let vnet_type = "resource::AzureVNet::1.0";
    let groups = [
        ("e1000000-0000-4000-8000-00000000000a", "rg-peer-a"),
        ("e1000000-0000-4000-8000-00000000000b", "rg-peer-b"),
    ];
    let vnets = [
        (
            "e1000000-0000-4000-8000-0000000000a1",
            "vnet-a",
            vnet_properties("rg-peer-a", "vnet-a", "10.1.0.0/16", "10.1.0.0/24"),
        ),
        (
            "e1000000-0000-4000-8000-0000000000b1",
            "vnet-b",
            vnet_properties("rg-peer-b", "vnet-b", "10.2.0.0/16", "10.2.0.0/24"),
        ),
        (
            "e1000000-0000-4000-8000-0000000000c1",
            "vnet-c",
            vnet_properties("rg-peer-b", "vnet-c", "10.3.0.0/16", "10.3.0.0/24"),
        ),
    ];
    for (id, group) in groups {
        let created = harness
            .execute(&resource_group_request("Create", id, group))
            .await;
        assert_eq!(created.status, ResultStatus::Complete, "{created:?}");
    }
    for (id, name, properties) in &vnets {
        let created = harness
            .execute(&request("Create", id, name, vnet_type, properties.clone()))
            .await;
        assert_eq!(created.status, ResultStatus::Complete, "{created:?}");
    }
    let initiator_side = format!(
        "{}/virtualNetworkPeerings/vnet-a-to-vnet-b",
        vnet_arm_id("rg-peer-a", "vnet-a")
    );
    let acceptor_side = format!(
        "{}/virtualNetworkPeerings/vnet-b-to-vnet-a",
        vnet_arm_id("rg-peer-b", "vnet-b")
    );

    let (initiator_id, initiator_name, initiator_properties) = &vnets[0];
    let mut create_peering = request(
        "CreateVnetPeering",
        initiator_id,
        initiator_name,
        vnet_type,
        initiator_properties.clone(),
    );
    create_peering["requestProperties"] = json!({
        "initiator_vnet_name": {"type": "string", "value": "vnet-a"},
        "initiator_vnet_rg_name": {"type": "string", "value": "rg-peer-a"},
        "acceptor_vnet_name": {"type": "string", "value": "vnet-b"},
        "acceptor_vnet_rg_name": {"type": "string", "value": "rg-peer-b"}
    });
    let peered = harness.execute(&create_peering).await;
    assert_eq!(peered.status, ResultStatus::Complete, "{peered:?}");
    assert!(peered.associated_topology.is_empty(), "{peered:?}");
    assert!(
        peered.outputs["peeringId"]["value"]
            .as_str()
            .is_some_and(|id| id.eq_ignore_ascii_case(&initiator_side)),
        "{peered:?}"
    );
    let inventory = harness.inventory().await;
    assert!(held(&inventory, &initiator_side), "{inventory:#?}");
    assert!(!held(&inventory, &acceptor_side), "one way: {inventory:#?}");

    // A second peering of the same VNet coexists with the first.
    let to_c_side = format!(
        "{}/virtualNetworkPeerings/vnet-a-to-vnet-c",
        vnet_arm_id("rg-peer-a", "vnet-a")
    );
    let mut create_peering_to_c = create_peering.clone();
    create_peering_to_c["requestProperties"]["acceptor_vnet_name"] =
        json!({"type": "string", "value": "vnet-c"});
    let peered_to_c = harness.execute(&create_peering_to_c).await;
    assert_eq!(
        peered_to_c.status,
        ResultStatus::Complete,
        "{peered_to_c:?}"
    );
    let inventory = harness.inventory().await;
    assert!(held(&inventory, &initiator_side), "{inventory:#?}");
    assert!(held(&inventory, &to_c_side), "{inventory:#?}");

    // Each removal removes only its own.
    let mut remove_peering = create_peering.clone();
    remove_peering["lifecycleName"] = json!("RemoveVnetPeering");
    let removed = harness.execute(&remove_peering).await;
    assert_eq!(removed.status, ResultStatus::Complete, "{removed:?}");
    let inventory = harness.inventory().await;
    assert!(!held(&inventory, &initiator_side), "{inventory:#?}");
    assert!(held(&inventory, &to_c_side), "{inventory:#?}");
    let mut remove_peering_to_c = create_peering_to_c.clone();
    remove_peering_to_c["lifecycleName"] = json!("RemoveVnetPeering");
    let removed = harness.execute(&remove_peering_to_c).await;
    assert_eq!(removed.status, ResultStatus::Complete, "{removed:?}");
    let inventory = harness.inventory().await;
    assert!(!held(&inventory, &to_c_side), "{inventory:#?}");

    create_peering["requestProperties"]["peer_both_directions"] =
        json!({"type": "boolean", "value": true});
    let peered = harness.execute(&create_peering).await;
    assert_eq!(peered.status, ResultStatus::Complete, "{peered:?}");
    let inventory = harness.inventory().await;
    assert!(held(&inventory, &initiator_side), "{inventory:#?}");
    assert!(held(&inventory, &acceptor_side), "{inventory:#?}");

    let removed = harness.execute(&remove_peering).await;
    assert_eq!(removed.status, ResultStatus::Complete, "{removed:?}");
    assert!(
        removed.associated_topology.is_empty(),
        "the vnet stays in the topology: {removed:?}"
    );
    let inventory = harness.inventory().await;
    assert!(!held(&inventory, &initiator_side), "{inventory:#?}");
    assert!(!held(&inventory, &acceptor_side), "{inventory:#?}");
    for (group, vnet) in [
        ("rg-peer-a", "vnet-a"),
        ("rg-peer-b", "vnet-b"),
        ("rg-peer-b", "vnet-c"),
    ] {
        assert!(
            held(&inventory, &vnet_arm_id(group, vnet)),
            "{inventory:#?}"
        );
    }

    for (id, name, _) in &vnets {
        let deleted = harness
            .execute(&request("Delete", id, name, vnet_type, json!({})))
            .await;
        assert_eq!(deleted.status, ResultStatus::Complete, "{deleted:?}");
        assert_eq!(
            Value::Object(deleted.associated_topology),
            json!({name.replace('-', ""): null})
        );
    }
    for (id, group) in groups {
        let deleted = harness
            .execute(&resource_group_request("Delete", id, group))
            .await;
        assert_eq!(deleted.status, ResultStatus::Complete, "{deleted:?}");
    }
    let inventory = harness.inventory().await;
    for (group, vnet) in [("rg-peer-a", "vnet-a"), ("rg-peer-b", "vnet-b")] {
        assert!(
            !held(&inventory, &vnet_arm_id(group, vnet)),
            "{inventory:#?}"
        );
        assert!(!held(&inventory, &group_arm_id(group)), "{inventory:#?}");
    }
    harness.no_more_messages().await;
}

/// What the Python driver made: a resource group through the API and a plain ARM
/// deployment, known to Brent only by the ids in associatedTopology. Their Deletes remove
/// them from Azure, answer with the Python request id shape, and a delete Azure refuses
/// (a management lock) gives FAILED with ARM's message until the lock is gone.
#[tokio::test]
async fn python_driver_resources_delete_and_a_locked_one_fails_until_unlocked() {
    let harness = Harness::start().await;
    let version = "api-version=2021-04-01";
    let group_path = group_arm_id("rg-legacy");
    for group in [&group_path, &group_arm_id("rg-legacy-net")] {
        let (status, body) = harness
            .arm(
                "PUT",
                &format!("{group}?{version}"),
                json!({"location": "westeurope", "tags": {"Creator": "Cp4na"}}),
            )
            .await;
        assert!(status == 200 || status == 201, "{status} {body}");
    }
    let deployment_id = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-legacy-net/providers/Microsoft.Resources/deployments/vnet-legacy"
    );
    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [{
            "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-09-01",
            "name": "vnet-legacy", "location": "westeurope", "tags": {"Creator": "Cp4na"},
            "properties": {"addressSpace": {"addressPrefixes": ["10.50.0.0/16"]}}
        }]
    });
    let (status, body) = harness
        .arm(
            "PUT",
            &format!("{deployment_id}?{version}"),
            json!({"properties": {"mode": "Incremental", "template": template}}),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let vnet_id = vnet_arm_id("rg-legacy-net", "vnet-legacy");
    let deadline = tokio::time::Instant::now() + RESULT_WITHIN;
    while !held(&harness.inventory().await, &vnet_id) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the legacy deployment never finished"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The virtual network: its deployment's resources and record go; the group stays.
    let mut delete_vnet = request(
        "Delete",
        "f0000000-0000-4000-8000-000000000001",
        "vnet-legacy",
        "resource::AzureVNet::1.0",
        json!({}),
    );
    delete_vnet["associatedTopology"] =
        json!({"vnetlegacy": {"id": deployment_id, "type": "Azure"}});
    let (status, accepted) = harness.post(EXECUTE, &delete_vnet).await;
    assert_eq!(status, 202, "{accepted}");
    let request_id = accepted["requestId"].as_str().unwrap();
    let uuid = request_id
        .strip_prefix(&format!("Delete::{deployment_id}::"))
        .unwrap_or_else(|| panic!("not the Python request id shape: {request_id}"));
    assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{request_id}");
    let deleted = harness.result_of(request_id).await;
    assert_eq!(deleted.status, ResultStatus::Complete, "{deleted:?}");
    assert_eq!(
        Value::Object(deleted.associated_topology),
        json!({"vnetlegacy": null})
    );
    let inventory = harness.inventory().await;
    assert!(!held(&inventory, &vnet_id), "{inventory:#?}");
    assert!(held(&inventory, &group_path), "{inventory:#?}");
    let (status, _) = harness
        .arm("GET", &format!("{deployment_id}?{version}"), Value::Null)
        .await;
    assert_eq!(status, 404, "the deployment record is deleted too");

    // The resource group, locked: FAILED with ARM's message, and it stays.
    let lock =
        format!("{group_path}/providers/Microsoft.Authorization/locks/keep?api-version=2020-05-01");
    let (status, body) = harness
        .arm(
            "PUT",
            &lock,
            json!({"properties": {"level": "CanNotDelete"}}),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let mut delete_group = request(
        "Delete",
        "f0000000-0000-4000-8000-000000000002",
        "rg-legacy",
        "resource::AzureResourceGroup::1.0",
        json!({}),
    );
    delete_group["associatedTopology"] = json!({"rglegacy": {"id": group_path, "type": "Azure"}});
    let refused = harness.execute(&delete_group).await;
    assert_eq!(refused.status, ResultStatus::Failed, "{refused:?}");
    let details = refused.failure_details.unwrap();
    assert_eq!(
        serde_json::to_value(details.failure_code).unwrap(),
        json!("INFRASTRUCTURE_ERROR")
    );
    assert!(
        details.description.contains("locked"),
        "{}",
        details.description
    );
    assert!(held(&harness.inventory().await, &group_path));

    // Unlocked, the controller's retry deletes it (nothing more is published for the
    // failed request); Brent's next Delete completes and drops the topology entry.
    let (status, body) = harness.arm("DELETE", &lock, Value::Null).await;
    assert!(status == 200 || status == 204, "{status} {body}");
    harness.wait_gone_from_azure(&group_path).await;
    let completed = harness.execute(&delete_group).await;
    assert_eq!(completed.status, ResultStatus::Complete, "{completed:?}");
    assert_eq!(
        Value::Object(completed.associated_topology),
        json!({"rglegacy": null})
    );
    harness.no_more_messages().await;
}
