//! Throughput and latency of the client against an in-process armsim, printed as numbers.
//! `cargo bench -p e2e --bench arm_client_throughput`

use arm::models::{DeploymentMode, DeploymentRequest};
use arm::{
    ArmClient, ArmOptions, BucketLimit, CloudConfig, CredentialCache, CredentialSpec,
    DeploymentScope, Secret, ThrottleLimits,
};
use armsim::{SimConfig, Simulator, ThrottlingConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SUB: &str = "00000000-0000-0000-0000-0000000be001";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        throttling: ThrottlingConfig {
            enabled: false,
            ..ThrottlingConfig::default()
        },
        ..SimConfig::default()
    };
    let sim = Simulator::start(config, dir.path()).await.unwrap();
    let unlimited = BucketLimit {
        burst: 1e9,
        per_second: 1e9,
    };
    let options = ArmOptions::default()
        .with_cloud(
            CloudConfig::default()
                .with_resource_manager_endpoint(&sim.endpoint())
                .unwrap()
                .with_authority_host(&sim.endpoint())
                .unwrap()
                .with_ca_file(sim.ca_file()),
        )
        .with_limits(ThrottleLimits {
            reads: unlimited,
            writes: unlimited,
            deletes: unlimited,
        })
        .with_default_poll_interval(Duration::from_millis(100));
    let cache = CredentialCache::new(&options).unwrap();
    let spec = CredentialSpec::ClientSecret {
        tenant_id: "bench".into(),
        client_id: "bench".into(),
        client_secret: Secret::new("bench-secret".to_string()),
    };
    let client = ArmClient::new(options, cache.get(&spec).unwrap()).unwrap();
    client
        .ensure_resource_group(SUB, "rg-bench", "westeurope", &BTreeMap::new())
        .await
        .unwrap();

    const SEQUENTIAL: usize = 500;
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    let started = Instant::now();
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        client.get_resource_group(SUB, "rg-bench").await.unwrap();
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "sequential GET resourceGroup: {SEQUENTIAL} requests, {:.0} req/s, p50 {:?}, p99 {:?}",
        SEQUENTIAL as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );

    const CONCURRENT: usize = 2000;
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_resource_group(SUB, "rg-bench").await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "concurrent GET resourceGroup: {CONCURRENT} requests, {:.0} req/s",
        CONCURRENT as f64 / elapsed.as_secs_f64()
    );

    const DEPLOYMENTS: usize = 50;
    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"name": {"type": "string"}},
        "resources": [{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01",
            "name": "[parameters('name')]", "location": "westeurope",
            "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}]
    });
    let scope = DeploymentScope::ResourceGroup {
        subscription: SUB.into(),
        resource_group: "rg-bench".into(),
    };
    let started = Instant::now();
    let tasks: Vec<_> = (0..DEPLOYMENTS)
        .map(|i| {
            let client = client.clone();
            let scope = scope.clone();
            let request = DeploymentRequest::new(
                template.clone(),
                [("name".to_string(), json!(format!("stbench{i:04}")))],
                DeploymentMode::Incremental,
            );
            tokio::spawn(async move {
                let started = client
                    .put_deployment(&scope, &format!("bench-{i}"), &request)
                    .await?;
                client.wait(&started.handle).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    println!(
        "deployments: {DEPLOYMENTS} put+poll to Succeeded concurrently in {:.2}s ({} ARM requests)",
        started.elapsed().as_secs_f64(),
        sim.counters().total()
    );
}
