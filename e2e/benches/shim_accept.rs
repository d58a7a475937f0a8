//! Accepted requests per second and latency percentiles of `lifecycle/execute` at 64
//! concurrent HTTPS clients (keep-alive, HTTP/1.1), against a real kube-apiserver and
//! librdkafka's mock cluster. Each request is a Create of its own resource, so every one
//! costs the full set of apiserver writes.
//!
//! `cargo bench -p e2e --bench shim_accept [-- <requests> <clients>]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_driver_shim::api::routes;
use azure_driver_shim::tls::{ReloadingCert, serve_tls, server_config};
use bytes::Bytes;
use e2e::shim::MockKafka;
use e2e::{ControlPlane, TestNamespace};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::json;
use tokio_rustls::TlsConnector;

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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
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

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client_config));

    let started = Instant::now();
    let mut workers = Vec::new();
    for client in 0..clients {
        let connector = connector.clone();
        workers.push(tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let tls = connector
                .connect(ServerName::try_from("azure-driver").unwrap(), tcp)
                .await
                .unwrap();
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .unwrap();
            tokio::spawn(connection);
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            for index in (client..requests).step_by(clients) {
                let request = hyper::Request::post("/api/driver/lifecycle/execute")
                    .header("host", "azure-driver")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body(index))))
                    .unwrap();
                let sent = Instant::now();
                let response = sender.send_request(request).await.unwrap();
                let status = response.status();
                response.into_body().collect().await.unwrap();
                latencies.push(sent.elapsed());
                if status != 202 {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (mut l, f) = worker.await.unwrap();
        latencies.append(&mut l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "lifecycle/execute Create: {} requests, {clients} concurrent clients, {failures} not accepted",
        latencies.len()
    );
    println!(
        "accepted/s: {:.1}  p50: {:.1} ms  p99: {:.1} ms  max: {:.1} ms  total: {:.2} s",
        (latencies.len() - failures) as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        elapsed.as_secs_f64()
    );
}
