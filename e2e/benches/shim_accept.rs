//! Accepted requests per second and latency percentiles of `lifecycle/execute` at 64
//! concurrent HTTPS clients (keep-alive, HTTP/1.1), against a real kube-apiserver and
//! librdkafka's mock cluster. Each request is a Create of its own resource, so every one
//! costs the full set of apiserver writes.
//!
//! `cargo bench -p e2e --bench shim_accept [-- <requests> <clients>]`

mod common;

use std::sync::Arc;
use std::time::Instant;

use azure_driver_shim::api::routes;
use azure_driver_shim::tls::{ReloadingCert, serve_tls, server_config};
use e2e::shim::MockKafka;
use e2e::{ControlPlane, TestNamespace};
use serde_json::json;

fn body(index: usize) -> String {
    json!({
        "lifecycleName": "Create",
        "driverFiles": "",
        "systemProperties": {
            "resourceId": {"type": "string", "value": format!("be000000-0000-4000-8000-{index:012}")},
            "resourceName": {"type": "string", "value": format!("bench-{index}")},
            "resourceType": {"type": "string", "value": "resource::AzureVNet::1.0"}
        },
        "resourceProperties": {
            "resourcegroup_name": {"type": "string", "value": "rg-bench"},
            "vnet_name": {"type": "string", "value": format!("vnet-{index}")}
        },
        "deploymentLocation": {"name": "azure-bench", "type": "Azure", "properties": {
            "tenantId": "t", "clientId": "c", "clientSecret": "s",
            "subscriptionId": "00000000-0000-0000-0000-0000000000cc"}}
    })
    .to_string()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let requests: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);

    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let kafka = MockKafka::start();
    let shim = kafka.shim(control_plane.client(), namespace.name());

    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["azure-driver".to_string()]).unwrap();
    std::fs::write(dir.path().join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    let resolver = Arc::new(
        ReloadingCert::load(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve_tls(
        listener,
        server_config(resolver).unwrap(),
        routes(shim),
        std::future::pending(),
    ));

    let connector = common::connector_trusting(cert.cert.der());
    let started = Instant::now();
    let bodies = (0..requests).map(body).collect();
    let posted = common::post_executes(&connector, port, bodies, clients).await;
    let elapsed = started.elapsed();
    let failures = posted.failures;
    println!(
        "lifecycle/execute Create: {} requests, {clients} concurrent clients, {failures} not accepted",
        posted.latencies.len()
    );
    println!(
        "accepted/s: {:.1}  p50: {:.1} ms  p99: {:.1} ms  max: {:.1} ms  total: {:.2} s",
        posted.accepted() as f64 / elapsed.as_secs_f64(),
        posted.percentile_ms(0.50),
        posted.percentile_ms(0.99),
        posted.percentile_ms(1.0),
        elapsed.as_secs_f64()
    );
}
