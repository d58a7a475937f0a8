//! Time until every result is on Kafka for N creates (default 1,000): Brent-shaped
//! requests → shim → AzureResource → controller → armsim → Kafka. The controller and
//! armsim run as their own binaries, built here.
//!
//! `cargo bench -p e2e --bench shim_results [-- <creates> <clients>]`

use std::collections::HashSet;
use std::time::{Duration, Instant};

use azure_driver_shim::api::routes;
use azure_driver_shim::kafka::{ResultMessage, ResultStatus};
use e2e::process::{ArmsimProcess, KilledOnDrop, built_binaries};
use e2e::shim::ShimOnMockKafka;
use e2e::{ControlPlane, TestNamespace};
use rdkafka::Message;
use serde_json::json;

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

    let bin = built_binaries(&["azure-driver-controller", "armsim"], &[]);
    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let tls_dir = tempfile::tempdir().unwrap();
    let armsim = ArmsimProcess::start(&bin, tls_dir.path());
    let _controller = KilledOnDrop::new(
        armsim
            .lone_controller(&bin, control_plane.kubeconfig_path(), namespace.name())
            .env("RUST_LOG", "error")
            .spawn()
            .expect("the controller starts"),
    );
    let harness = ShimOnMockKafka::start(
        control_plane.client(),
        namespace.name(),
        "bench",
        Duration::from_secs(10),
    );

    let started = Instant::now();
    let filter = routes(harness.shim.clone());
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
        let Ok(Ok(message)) =
            tokio::time::timeout(Duration::from_secs(5), harness.consumer.recv()).await
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
