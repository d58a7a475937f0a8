//! Time until every result is on Kafka for N creates (default 1,000): Brent-shaped
//! requests → shim → AzureResource → controller → armsim → Kafka. The controller and
//! armsim run as their own binaries, built here.
//!
//! `cargo bench -p azure-driver-shim --bench results [-- <creates> <clients>]`

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use azure_driver_shim::api::{Shim, routes};
use azure_driver_shim::completion::Reporter;
use azure_driver_shim::config::KafkaSettings;
use azure_driver_shim::kafka::{ResultMessage, ResultPublisher, ResultStatus};
use azure_driver_shim::mapping::MappingContext;
use azure_driver_shim::metrics::Metrics;
use e2e::{ControlPlane, TestNamespace};
use kube::Api;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use serde_json::json;

const TOPIC: &str = "lm_vnfc_lifecycle_execution_events";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn request(index: usize) -> String {
    json!({
        "lifecycleName": "Create",
        "driverFiles": "",
        "systemProperties": {
            "resourceId": {"type": "string", "value": format!("bb000000-0000-4000-8000-{index:012}")},
            "resourceName": {"type": "string", "value": format!("rg-bench-{index}")},
            "resourceType": {"type": "string", "value": "resource::AzureResourceGroup::1.0"}
        },
        "resourceProperties": {
            "resourcegroup_name": {"type": "string", "value": format!("rg-bench-{index}")},
            "resourcegroup_location": {"type": "string", "value": "westeurope"}
        },
        "deploymentLocation": {"name": "azure-bench", "type": "Azure", "properties": {
            "tenantId": "t", "clientId": "c", "clientSecret": "s",
            "subscriptionId": "00000000-0000-0000-0000-0000000000ee"}}
    })
    .to_string()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let creates: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);

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
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();

    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let tls_dir = tempfile::tempdir().unwrap();
    let mut armsim = Command::new(bin.join("armsim"))
        .args(["--listen", "127.0.0.1:0", "--tls-dir"])
        .arg(tls_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("armsim starts");
    let mut endpoint = String::new();
    BufReader::new(armsim.stdout.take().unwrap())
        .read_line(&mut endpoint)
        .unwrap();
    let _armsim = Killed(armsim);
    let endpoint = endpoint.trim();
    let _controller = Killed(
        Command::new(bin.join("azure-driver-controller"))
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--leader-election",
                "false",
            ])
            .args(["--namespaces", namespace.name()])
            .env("KUBECONFIG", control_plane.kubeconfig_path())
            .env("AZURE_RESOURCE_MANAGER_ENDPOINT", endpoint)
            .env("AZURE_AUTHORITY_HOST", endpoint)
            .env("AZURE_CA_FILE", tls_dir.path().join("ca.pem"))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the controller starts"),
    );

    let kafka = MockCluster::new(1).unwrap();
    kafka.create_topic(TOPIC, 1, 1).unwrap();
    let settings = KafkaSettings {
        bootstrap_servers: kafka.bootstrap_servers(),
        topic: TOPIC.into(),
        client_config: Default::default(),
    };
    let reporter = Reporter::new(
        Api::namespaced(control_plane.client(), namespace.name()),
        ResultPublisher::new(&settings).unwrap(),
        "bench".into(),
        Metrics::default(),
    );
    tokio::spawn(reporter.run(Duration::from_secs(10)));
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
        .set("group.id", "bench")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();

    let started = Instant::now();
    let filter = routes(shim);
    let mut senders = Vec::new();
    for client in 0..clients {
        let filter = filter.clone();
        senders.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for index in (client..creates).step_by(clients) {
                let response = warp::test::request()
                    .method("POST")
                    .path("/api/driver/lifecycle/execute")
                    .header("content-type", "application/json")
                    .body(request(index))
                    .reply(&filter)
                    .await;
                assert_eq!(response.status(), 202);
                let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
                accepted.push(body["requestId"].as_str().unwrap().to_string());
            }
            accepted
        }));
    }
    let mut pending = HashSet::new();
    for sender in senders {
        pending.extend(sender.await.unwrap());
    }
    let all_accepted = started.elapsed();

    let mut failed = 0;
    let mut duplicates = 0;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut seen = HashSet::new();
    while !pending.is_empty() && Instant::now() < deadline {
        let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await
        else {
            continue;
        };
        let body: ResultMessage = serde_json::from_slice(message.payload().unwrap()).unwrap();
        if !seen.insert(body.request_id.clone()) {
            duplicates += 1;
        }
        if body.status == ResultStatus::Failed {
            failed += 1;
        }
        pending.remove(&body.request_id);
    }
    let all_published = started.elapsed();
    println!("{creates} creates (resource groups) through shim → controller → armsim → Kafka");
    println!(
        "all accepted after {:.2} s; all results on Kafka after {:.2} s ({:.1} results/s); missing {}, failed {failed}, duplicates {duplicates}",
        all_accepted.as_secs_f64(),
        all_published.as_secs_f64(),
        (creates - pending.len()) as f64 / all_published.as_secs_f64(),
        pending.len()
    );
}
