//! Throughput of the simulator: deployments driven to completion by concurrent
//! clients, and the latency of plain reads. Prints numbers; asserts nothing.
//!
//! `cargo bench -p e2e --bench armsim_throughput` (env `ARMSIM_BENCH_DEPLOYMENTS`,
//! default 1000, and `ARMSIM_BENCH_CLIENTS`, default 32).

use std::sync::Arc;
use std::time::{Duration, Instant};

use armsim::{LatencyConfig, SimConfig, Simulator, ThrottlingConfig};
use serde_json::{Value, json};

const API: &str = "2025-04-01";
const SUB: &str = "00000000-0000-0000-0000-00000000b0b0";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn template() -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": { "prefix": { "type": "string" } },
        "variables": { "name": "[toLower(concat(replace(parameters('prefix'), '-', ''), uniqueString(resourceGroup().id)))]" },
        "resources": [
            { "type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "[variables('name')]",
              "location": "[resourceGroup().location]", "sku": { "name": "Standard_LRS" }, "kind": "StorageV2" },
            { "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-09-01", "name": "[concat(parameters('prefix'), '-vnet')]",
              "location": "[resourceGroup().location]",
              "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] } } },
            { "type": "Microsoft.Network/virtualNetworks/subnets", "apiVersion": "2023-09-01",
              "name": "[concat(parameters('prefix'), '-vnet/default')]",
              "dependsOn": ["[resourceId('Microsoft.Network/virtualNetworks', concat(parameters('prefix'), '-vnet'))]"],
              "properties": { "addressPrefix": "10.0.0.0/24" } }
        ],
        "outputs": { "account": { "type": "string", "value": "[variables('name')]" } }
    })
}

struct Client {
    http: reqwest::Client,
    endpoint: String,
    token: String,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = if url.starts_with("https://") {
            url.to_owned()
        } else {
            format!("{}{url}", self.endpoint)
        };
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("simulator answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }
}

async fn deploy(client: &Client, rg: &str, name: &str) {
    let path = format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Resources/deployments/{name}?api-version={API}"
    );
    let body = json!({ "properties": { "mode": "Incremental", "template": template(), "parameters": { "prefix": { "value": name } } } });
    let (status, headers, answer) = client.send(reqwest::Method::PUT, &path, Some(&body)).await;
    assert_eq!(status, 201, "{answer}");
    let status_url = headers["azure-asyncoperation"].to_str().unwrap().to_owned();
    loop {
        let (_, _, answer) = client.send(reqwest::Method::GET, &status_url, None).await;
        match answer["status"].as_str() {
            Some("Succeeded") => break,
            Some("Failed" | "Canceled") => panic!("deployment ended {answer}"),
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    let (status, _, answer) = client.send(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["properties"]["outputResources"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}

#[tokio::main]
async fn main() {
    let deployments = env_or("ARMSIM_BENCH_DEPLOYMENTS", 1000);
    let clients = env_or("ARMSIM_BENCH_CLIENTS", 32);
    let tls_dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        retry_after_secs: 0,
        latency: LatencyConfig {
            accepted_ms: 0,
            running_ms: 10,
            ..LatencyConfig::default()
        },
        throttling: ThrottlingConfig {
            enabled: false,
            ..ThrottlingConfig::default()
        },
        ..SimConfig::default()
    };
    let sim = Simulator::start(config, tls_dir.path()).await.unwrap();
    let ca = std::fs::read(sim.ca_file()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let token: Value = http
        .post(format!("{}/bench/oauth2/v2.0/token", sim.endpoint()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "bench"),
            ("client_secret", "x"),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = Arc::new(Client {
        http,
        endpoint: sim.endpoint(),
        token: token["access_token"].as_str().unwrap().to_owned(),
    });
    let groups = 10;
    for g in 0..groups {
        let (status, _, _) = client
            .send(
                reqwest::Method::PUT,
                &format!("/subscriptions/{SUB}/resourcegroups/bench-{g}?api-version={API}"),
                Some(&json!({ "location": "westeurope" })),
            )
            .await;
        assert_eq!(status, 201);
    }
    sim.reset_counters();

    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let client = client.clone();
            let next = next.clone();
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= deployments {
                        break;
                    }
                    deploy(
                        &client,
                        &format!("bench-{}", n % groups),
                        &format!("dep-{n}"),
                    )
                    .await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed();
    let requests = sim.counters().total();
    println!(
        "deployments: {deployments} with {clients} clients in {:.2}s = {:.0} deployments/s; {requests} ARM requests = {:.0} requests/s",
        elapsed.as_secs_f64(),
        deployments as f64 / elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64()
    );
    println!("inventory: {} resources", sim.inventory().len());

    let mut latencies = Vec::with_capacity(1000);
    let path = format!("/subscriptions/{SUB}/resourcegroups/bench-0?api-version={API}");
    for _ in 0..1000 {
        let t = Instant::now();
        let (status, _, _) = client.send(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200);
        latencies.push(t.elapsed());
    }
    latencies.sort();
    println!(
        "sequential GET resource group: p50 {:?}, p99 {:?}, max {:?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
        latencies[latencies.len() - 1]
    );
}
