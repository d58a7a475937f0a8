//! The `azure-driver-shim` binary as Brent meets it: HTTPS with the legacy config file,
//! killed between the 202 and completion, and run as two replicas. Every accepted
//! request yields exactly one Kafka message (counted by a consumer).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use azure_driver_shim::kafka::ResultMessage;
use crds::AzureResource;
use e2e::{ControlPlane, TestNamespace};
use kube::api::{Api, Patch, PatchParams};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

const TOPIC: &str = "results_for_process_test";
const SUB: &str = "00000000-0000-0000-0000-0000000000bb";

struct ShimProcess {
    child: Child,
    port: u16,
}

impl Drop for ShimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_shim(dir: &Path, kubeconfig: &Path, namespace: &str, replica: &str) -> ShimProcess {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_azure-driver-shim"))
        .arg("--config")
        .arg(dir.join("azuredriver_config.yml"))
        .arg("--tls-cert")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls.key"))
        .args(["--namespace", namespace, "--replica-id", replica])
        .env("KUBECONFIG", kubeconfig)
        .env("DRIVER_PORT", port.to_string())
        .env("LOG_TYPE", "logstash")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the shim binary starts");
    ShimProcess { child, port }
}

fn tls_connector(cert: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// One HTTPS/1.1 request; returns status and JSON body.
async fn https(
    connector: &TlsConnector,
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tls = connector
        .connect(ServerName::try_from("azure-driver").unwrap(), tcp)
        .await?;
    let payload = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: azure-driver\r\nconnection: close\r\ncontent-type: application/json\r\ntenantId: tenant-p\r\ncontent-length: {}\r\n\r\n{payload}",
        payload.len()
    );
    tls.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Ok((status, body))
}

async fn wait_healthy(connector: &TlsConnector, port: u16) {
    for _ in 0..100 {
        if let Ok((200, _)) = https(connector, port, "GET", "/management/health", None).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the shim on port {port} never became healthy");
}

fn create_body(resource_id: &str, name: &str) -> Value {
    json!({
        "lifecycleName": "Create",
        "driverFiles": "",
        "systemProperties": {
            "resourceId": {"type": "string", "value": resource_id},
            "resourceName": {"type": "string", "value": name},
            "resourceType": {"type": "string", "value": "resource::AzureStorageAccount::1.0"}
        },
        "resourceProperties": {
            "resourcegroup_name": {"type": "string", "value": "rg1"},
            "storage_account_name": {"type": "string", "value": "st1"}
        },
        "deploymentLocation": {
            "name": "azure-dev",
            "type": "Azure",
            "properties": {"tenantId": "t", "clientId": "c", "clientSecret": "s", "subscriptionId": SUB}
        }
    })
}

async fn mark_ready(api: &Api<AzureResource>, name: &str) {
    let object = api.get(name).await.unwrap();
    let status = json!({"status": {
        "phase": "Ready",
        "observedGeneration": object.metadata.generation,
        "outputs": {"storageEndpoint": {"blob": "https://st1.blob.core.windows.net/"}}
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// Counts messages by request id until none arrived for `quiet`.
async fn count(
    consumer: &StreamConsumer,
    counts: &mut BTreeMap<String, usize>,
    first_within: Duration,
    quiet: Duration,
) {
    let mut deadline = tokio::time::Instant::now() + first_within;
    loop {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => return,
            Ok(Err(_)) => continue,
            Ok(Ok(message)) => {
                let body: ResultMessage =
                    serde_json::from_slice(message.payload().unwrap()).unwrap();
                *counts.entry(body.request_id).or_default() += 1;
                deadline = tokio::time::Instant::now() + quiet;
            }
        }
    }
}

#[tokio::test]
async fn killed_and_replicated_shims_publish_every_result_exactly_once() {
    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let api: Api<AzureResource> = Api::namespaced(control_plane.client(), namespace.name());
    let kafka = MockCluster::new(1).unwrap();
    kafka.create_topic(TOPIC, 1, 1).unwrap();
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .set("group.id", "process-test")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["azure-driver".to_string()]).unwrap();
    std::fs::write(dir.path().join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    // The legacy config file shape, as the Helm chart mounts it.
    std::fs::write(
        dir.path().join("azuredriver_config.yml"),
        format!(
            "application:\n  port: 1\n  ssl:\n    enabled: True\nmessaging:\n  connection_address: {}\n  api_version_auto_timeout_ms: 10000\n  topics:\n    lifecycle_execution_events:\n      name: {TOPIC}\n",
            kafka.bootstrap_servers()
        ),
    )
    .unwrap();
    let connector = tls_connector(cert.cert.der());
    let kubeconfig = control_plane.kubeconfig_path();

    // Accepted, then the shim dies before the deployment finishes.
    let first = spawn_shim(dir.path(), kubeconfig, namespace.name(), "replica-1");
    wait_healthy(&connector, first.port).await;
    let (status, body) = https(
        &connector,
        first.port,
        "POST",
        "/api/driver/lifecycle/execute",
        Some(&create_body(
            "d0000000-0000-4000-8000-000000000000",
            "killed",
        )),
    )
    .await
    .unwrap();
    assert_eq!(status, 202, "{body}");
    let killed_request = body["requestId"].as_str().unwrap().to_string();
    drop(first);
    mark_ready(&api, "r-d0000000-0000-4000-8000-000000000000").await;

    // Two replicas come up; both watch the same objects.
    let a = spawn_shim(dir.path(), kubeconfig, namespace.name(), "replica-a");
    let b = spawn_shim(dir.path(), kubeconfig, namespace.name(), "replica-b");
    wait_healthy(&connector, a.port).await;
    wait_healthy(&connector, b.port).await;
    let mut accepted = vec![killed_request];
    for i in 1..=20 {
        let port = if i % 2 == 0 { a.port } else { b.port };
        let id = format!("d0000000-0000-4000-8000-{i:012}");
        let (status, body) = https(
            &connector,
            port,
            "POST",
            "/api/driver/lifecycle/execute",
            Some(&create_body(&id, &format!("st-{i}"))),
        )
        .await
        .unwrap();
        assert_eq!(status, 202, "{body}");
        accepted.push(body["requestId"].as_str().unwrap().to_string());
        mark_ready(&api, &format!("r-{id}")).await;
    }

    let mut counts = BTreeMap::new();
    count(
        &consumer,
        &mut counts,
        Duration::from_secs(60),
        Duration::from_secs(8),
    )
    .await;
    accepted.sort();
    let published: Vec<String> = counts.keys().cloned().collect();
    assert_eq!(published, accepted, "every accepted request is published");
    assert!(
        counts.values().all(|n| *n == 1),
        "duplicates: {:?}",
        counts.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}
