//! End to end: Brent-shaped requests → shim → AzureResource → controller → armsim (the
//! ARM simulator), results on librdkafka's mock cluster. The controller and armsim run as
//! their own binaries, built here into this test's target directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use azure_driver_shim::api::{Shim, routes};
use azure_driver_shim::completion::Reporter;
use azure_driver_shim::config::KafkaSettings;
use azure_driver_shim::kafka::{ResultMessage, ResultPublisher, ResultStatus};
use azure_driver_shim::mapping::MappingContext;
use azure_driver_shim::metrics::Metrics;
use base64::Engine;
use crds::AzureResource;
use e2e::{ControlPlane, TestNamespace};
use kube::Api;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};

const TOPIC: &str = "lm_vnfc_lifecycle_execution_events";
const SUB: &str = "00000000-0000-0000-0000-0000000000dd";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds the other binaries into this test's target directory and returns it.
fn built_binaries() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            "azure-driver-controller",
            "-p",
            "armsim",
            "--bins",
        ])
        .current_dir(e2e::repo_root())
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building the controller and armsim failed"
    );
    // target/debug/deps/controller-<hash> → target/debug
    std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf()
}

fn start_armsim(bin: &Path, tls_dir: &Path) -> (Killed, String) {
    let mut child = Command::new(bin.join("armsim"))
        .args(["--listen", "127.0.0.1:0", "--tls-dir"])
        .arg(tls_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("armsim starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Killed(child), line.trim().to_string())
}

fn start_controller(
    bin: &Path,
    kubeconfig: &Path,
    namespace: &str,
    endpoint: &str,
    ca: &Path,
) -> Killed {
    let child = Command::new(bin.join("azure-driver-controller"))
        .args([
            "--metrics-addr",
            "127.0.0.1:0",
            "--leader-election",
            "false",
        ])
        .args(["--namespaces", namespace])
        .env("KUBECONFIG", kubeconfig)
        .env("AZURE_RESOURCE_MANAGER_ENDPOINT", endpoint)
        .env("AZURE_AUTHORITY_HOST", endpoint)
        .env("AZURE_CA_FILE", ca)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the controller starts");
    Killed(child)
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

async fn post(shim: &Shim, path: &str, body: &Value) -> (u16, Value) {
    let response = warp::test::request()
        .method("POST")
        .path(path)
        .header("content-type", "application/json")
        .body(body.to_string())
        .reply(&routes(shim.clone()))
        .await;
    (
        response.status().as_u16(),
        serde_json::from_slice(response.body()).unwrap(),
    )
}

/// Waits for the result of `request_id`; fails on any other message in between.
async fn result_of(consumer: &StreamConsumer, request_id: &str, within: Duration) -> ResultMessage {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => panic!("no result for {request_id} within {within:?}"),
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

async fn no_more_messages(consumer: &StreamConsumer) {
    if let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(3), consumer.recv()).await {
        panic!(
            "unexpected extra message: {:?}",
            message.payload_view::<str>()
        );
    }
}

#[tokio::test]
async fn brent_requests_round_trip_through_the_controller_and_armsim() {
    let bin = built_binaries();
    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let tls_dir = tempfile::tempdir().unwrap();
    let (_armsim, endpoint) = start_armsim(&bin, tls_dir.path());
    let _controller = start_controller(
        &bin,
        control_plane.kubeconfig_path(),
        namespace.name(),
        &endpoint,
        &tls_dir.path().join("ca.pem"),
    );
    let kafka = MockCluster::new(1).unwrap();
    kafka.create_topic(TOPIC, 1, 1).unwrap();
    let settings = KafkaSettings {
        bootstrap_servers: kafka.bootstrap_servers(),
        topic: TOPIC.into(),
        client_config: Default::default(),
    };
    let resources: Api<AzureResource> = Api::namespaced(control_plane.client(), namespace.name());
    let reporter = Reporter::new(
        resources.clone(),
        ResultPublisher::new(&settings).unwrap(),
        "e2e".into(),
        Metrics::default(),
    );
    tokio::spawn(reporter.run(Duration::from_secs(2)));
    let shim = Shim::new(
        control_plane.client(),
        MappingContext {
            namespace: namespace.name().to_string(),
            ..MappingContext::default()
        },
        ResultPublisher::new(&settings).unwrap(),
        Metrics::default(),
    );
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .set("group.id", "e2e")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    let execute = "/api/driver/lifecycle/execute";
    let within = Duration::from_secs(120);

    // Resource group (legacy type, subscription scope).
    let group_id = "e0000000-0000-4000-8000-000000000001";
    let (status, body) = post(&shim, execute, &request("Create", group_id, "rg-e2e", "resource::AzureResourceGroup::1.0",
        json!({"resourcegroup_name": {"type": "string", "value": "rg-e2e"}, "resourcegroup_location": {"type": "string", "value": "westeurope"}}))).await;
    assert_eq!(status, 202, "{body}");
    let group = result_of(&consumer, body["requestId"].as_str().unwrap(), within).await;
    assert_eq!(group.status, ResultStatus::Complete, "{group:?}");
    assert_eq!(
        group.associated_topology["rge2e"],
        json!({"id": format!("/subscriptions/{SUB}/resourceGroups/rg-e2e"), "type": "Azure"})
    );

    // Virtual network in it (legacy type).
    let vnet_id = "e0000000-0000-4000-8000-000000000002";
    let (status, body) = post(
        &shim,
        execute,
        &request(
            "Install",
            vnet_id,
            "vnet-e2e",
            "resource::AzureVNet::1.0",
            json!({"resourcegroup_name": {"type": "string", "value": "rg-e2e"},
               "vnet_name": {"type": "string", "value": "vnet-e2e"},
               "vnet_location": {"type": "string", "value": "westeurope"},
               "vnet_enable_ddos_protection": {"type": "boolean", "value": "false"},
               "vnet_address_space": {"type": "string", "value": "10.10.0.0/16, 10.20.0.0/16"},
               "vnet_default_cidr_block": {"type": "string", "value": "10.10.0.0/24"}}),
        ),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let vnet_request = body["requestId"].as_str().unwrap().to_string();
    let vnet = result_of(&consumer, &vnet_request, within).await;
    assert_eq!(vnet.status, ResultStatus::Complete, "{vnet:?}");
    assert!(
        vnet.outputs["vnetId"]
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
    let (status, body) = post(&shim, execute, &configure).await;
    assert_eq!(status, 202, "{body}");
    let configured = result_of(&consumer, body["requestId"].as_str().unwrap(), within).await;
    assert_eq!(configured.status, ResultStatus::Complete, "{configured:?}");
    assert_eq!(configured.outputs["nsgName"], json!("vnet-e2e-edge"));

    // Find.
    let (status, found) = post(
        &shim,
        "/api/driver/references/find",
        &json!({"instanceName": "vnet-e2e", "driverFiles": "", "deploymentLocation": location()}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found["result"]["resourceId"], json!(vnet_id));
    assert_eq!(found["result"]["outputs"]["vnetId"], vnet.outputs["vnetId"]);

    // Failure in Azure: the resource group does not exist.
    let (status, body) = post(&shim, execute, &request("Create", "e0000000-0000-4000-8000-000000000003", "vnet-bad", "resource::AzureVNet::1.0",
        json!({"resourcegroup_name": {"type": "string", "value": "rg-missing"}, "vnet_name": {"type": "string", "value": "vnet-bad"}}))).await;
    assert_eq!(status, 202, "{body}");
    let failed = result_of(&consumer, body["requestId"].as_str().unwrap(), within).await;
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
    let (status, body) = post(
        &shim,
        execute,
        &request(
            "Uninstall",
            vnet_id,
            "vnet-e2e",
            "resource::AzureVNet::1.0",
            json!({}),
        ),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let deleted = result_of(&consumer, body["requestId"].as_str().unwrap(), within).await;
    assert_eq!(deleted.status, ResultStatus::Complete, "{deleted:?}");
    assert_eq!(
        Value::Object(deleted.associated_topology),
        json!({"vnete2e": null})
    );
    let (_, gone) = post(
        &shim,
        "/api/driver/references/find",
        &json!({"instanceName": "vnet-e2e", "driverFiles": "", "deploymentLocation": location()}),
    )
    .await;
    assert_eq!(gone, json!({"result": null}));
    no_more_messages(&consumer).await;
}
