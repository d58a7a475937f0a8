//! The shim's accepted Creates against the apiserver's own AzureResource creates, on one
//! control plane, in alternating rounds while objects accumulate (to 50,000 by default).
//! Both sides send bodies of the same size (a Brent Create with a 1.2 KB Bicep package in
//! `driverFiles`; the raw object carries the same Bicep inline, padded to the same length)
//! over 64 keep-alive TLS connections. Per round it prints both rates, their ratio (target at
//! least 85 %), p50/p99 of both (target: shim p99 <= 1.2 x raw p99), the number of objects and
//! the shim's RSS (target <= 64 MiB at 50,000 objects) with the number of those objects that
//! are the shim's (the ones its watch cache holds) and the shim's CPU time per accepted
//! Create (watch events included), plus the apiserver requests per accepted Create by verb.
//! A third side in each round creates copies of the object the shim wrote for one Create
//! (its labels, annotations, finalizer and spec): the apiserver costs more for that object
//! than for the padded raw one, so the shim/copy ratio is the shim's own overhead. For each
//! side it prints the CPU per accepted request of the control plane and of the load generator.
//!
//! `cargo bench -p e2e --bench shim_vs_apiserver`
//! (`BENCH_OBJECTS`: objects to reach (50000); `BENCH_ROUND`: requests per side and round
//! (2500); `BENCH_CLIENTS`: connections per side (64); `BENCH_SHIM_BIN`: a shim binary to
//! measure instead of this tree's, e.g. an older build for a before/after comparison).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::Posted;
use crds::AzureResource;
use e2e::shim::{MockKafka, RESULT_TOPIC};
use e2e::{ControlPlane, TestNamespace};
use futures::{StreamExt, stream};
use kube::{Api, api::PostParams};
use serde_json::{Value, json};
use tokio_rustls::TlsConnector;

/// A Bicep package of about 1.2 KB: what a typical Brent resource ships.
fn bicep_package() -> String {
    let mut source = String::from(
        "// Storage account for a network function's logs and configuration backups.\n\
         @description('Name of the storage account (3-24 lower-case letters and digits)')\n\
         param accountName string\n\
         @description('Azure region of the account')\n\
         param location string = resourceGroup().location\n\
         @allowed(['Standard_LRS', 'Standard_GRS', 'Standard_ZRS'])\n\
         param sku string = 'Standard_LRS'\n\
         param tags object = {}\n\n\
         resource account 'Microsoft.Storage/storageAccounts@2023-01-01' = {\n\
         \x20 name: accountName\n\
         \x20 location: location\n\
         \x20 sku: { name: sku }\n\
         \x20 kind: 'StorageV2'\n\
         \x20 tags: tags\n\
         \x20 properties: {\n\
         \x20   minimumTlsVersion: 'TLS1_2'\n\
         \x20   supportsHttpsTrafficOnly: true\n\
         \x20   allowBlobPublicAccess: false\n\
         \x20 }\n\
         }\n\n\
         output id string = account.id\n\
         output blobEndpoint string = account.properties.primaryEndpoints.blob\n",
    );
    let mut line = 0;
    while source.len() < 1200 {
        line += 1;
        source.push_str(&format!(
            "// Operations note {line}: rotate the access keys through the platform's key vault.\n"
        ));
    }
    source
}

fn zip_base64(name: &str, content: &[u8]) -> String {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, content).unwrap();
    base64::engine::general_purpose::STANDARD.encode(zip.finish().unwrap().into_inner())
}

fn resource_id(index: usize) -> String {
    format!("5c000000-0000-4000-8000-{index:012}")
}

fn shim_create(driver_files: &str, index: usize) -> String {
    json!({
        "lifecycleName": "Create",
        "driverFiles": driver_files,
        "systemProperties": {
            "resourceId": {"type": "string", "value": resource_id(index)},
            "resourceName": {"type": "string", "value": format!("store-{index}")},
            "resourceType": {"type": "string", "value": "resource::StorageAccount::1.0"}
        },
        "resourceProperties": {
            "resourcegroup_name": {"type": "string", "value": "rg-bench"},
            "accountName": {"type": "string", "value": format!("acct{index:08}")},
            "location": {"type": "string", "value": "westeurope"}
        },
        "requestProperties": {},
        "associatedTopology": {},
        "deploymentLocation": {"name": "azure-bench", "type": "Azure", "properties": {
            "tenantId": "11111111-1111-1111-1111-111111111111",
            "clientId": "22222222-2222-2222-2222-222222222222",
            "clientSecret": "not-a-real-secret",
            "subscriptionId": "00000000-0000-0000-0000-0000000000cc"}}
    })
    .to_string()
}

/// An AzureResource with the package's Bicep inline, padded by an annotation to `size`
/// bytes of JSON.
fn raw_object(bicep: &str, index: usize, size: usize) -> AzureResource {
    let mut object = json!({
        "apiVersion": "azure-driver.io/v1alpha1",
        "kind": "AzureResource",
        "metadata": {"name": format!("raw-{index:06}"), "annotations": {"bench/padding": ""}},
        "spec": {
            "subscriptionId": "00000000-0000-0000-0000-0000000000cc",
            "resourceGroup": "rg-bench",
            "template": {"bicep": bicep},
            "parameters": {"accountName": format!("raw{index:08}"), "location": "westeurope"}
        }
    });
    let short = size.saturating_sub(object.to_string().len());
    object["metadata"]["annotations"]["bench/padding"] = Value::String("x".repeat(short));
    serde_json::from_value(object).unwrap()
}

/// The resource id of the Create whose object [`object_copies`] copies.
const MODEL_INDEX: usize = 999_999_999_999;

/// The object the shim wrote for its Create of `MODEL_INDEX`, as JSON to create again
/// under other names: what the apiserver costs for exactly the shim's object, without the
/// shim. Server-set fields are dropped; the managed-by label changes so the shim's watch
/// (and reporter) ignore the copies.
fn object_copy_model(object: &AzureResource) -> String {
    let mut model = serde_json::to_value(object).unwrap();
    let metadata = model["metadata"].as_object_mut().unwrap();
    for server_set in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "managedFields",
        "namespace",
        "selfLink",
    ] {
        metadata.remove(server_set);
    }
    metadata["labels"]["app.kubernetes.io/managed-by"] = json!("azure-driver-bench");
    model.as_object_mut().unwrap().remove("status");
    model.to_string()
}

fn object_copy(model: &str, index: usize) -> AzureResource {
    let copy = model.replace(&resource_id(MODEL_INDEX), &copy_id(index));
    serde_json::from_str(&copy).unwrap()
}

fn copy_id(index: usize) -> String {
    format!("6c000000-0000-4000-8000-{index:012}")
}

/// One side's round: accepted requests per second, latencies and refusals.
struct Round {
    rate: f64,
    posted: Posted,
}

impl Round {
    fn new(elapsed: Duration, posted: Posted) -> Self {
        Round {
            rate: posted.accepted() as f64 / elapsed.as_secs_f64(),
            posted,
        }
    }

    fn p(&self, p: f64) -> f64 {
        self.posted.percentile_ms(p)
    }

    fn failures(&self) -> usize {
        self.posted.failures
    }
}

async fn raw_round(api: &Api<AzureResource>, objects: Vec<AzureResource>, clients: usize) -> Round {
    let started = Instant::now();
    let results: Vec<(Duration, bool)> = stream::iter(objects)
        .map(|object| {
            let api = api.clone();
            async move {
                let sent = Instant::now();
                let ok = api.create(&PostParams::default(), &object).await.is_ok();
                (sent.elapsed(), ok)
            }
        })
        .buffer_unordered(clients)
        .collect()
        .await;
    let failures = results.iter().filter(|(_, ok)| !ok).count();
    let mut latencies: Vec<Duration> = results.into_iter().map(|(l, _)| l).collect();
    latencies.sort();
    Round::new(
        started.elapsed(),
        Posted {
            latencies,
            failures,
        },
    )
}

/// `bodies` sent over `clients` keep-alive HTTP/1.1 TLS connections to the shim.
async fn shim_round(
    connector: &TlsConnector,
    port: u16,
    bodies: Vec<String>,
    clients: usize,
) -> Round {
    let started = Instant::now();
    let posted = common::post_executes(connector, port, bodies, clients).await;
    Round::new(started.elapsed(), posted)
}

/// CPU used so far by the control plane (etcd, apiserver) and by this process, which
/// generates the load of both sides.
struct Usage {
    control_plane: f64,
    load_generator: f64,
}

impl Usage {
    fn now(cp: &ControlPlane) -> Self {
        Usage {
            control_plane: cp.cpu_seconds(),
            load_generator: e2e::process::cpu_seconds(std::process::id()),
        }
    }

    /// CPU seconds per accepted request since `before`.
    fn since(&self, before: &Usage, accepted: usize) -> Usage {
        let per = accepted.max(1) as f64;
        Usage {
            control_plane: (self.control_plane - before.control_plane) / per,
            load_generator: (self.load_generator - before.load_generator) / per,
        }
    }
}

/// The apiserver's requests so far for AzureResources, by verb (from its metrics).
fn object_requests(cp: &ControlPlane) -> BTreeMap<String, f64> {
    let output = cp
        .kubectl()
        .args(["get", "--raw", "/metrics"])
        .output()
        .expect("kubectl runs");
    let mut by_verb = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| l.contains("resource=\"azureresources\""))
    {
        let verb = line
            .split("verb=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("?");
        let dry_run = line.contains("dry_run=\"All\"");
        let key = if dry_run {
            format!("{verb} (dry run)")
        } else {
            verb.to_owned()
        };
        let count: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        *by_verb.entry(key).or_default() += count;
    }
    by_verb
}

fn shim_binary() -> PathBuf {
    match std::env::var_os("BENCH_SHIM_BIN") {
        Some(path) => PathBuf::from(path),
        None => e2e::process::built_binaries(&["azure-driver-shim"], &[]).join("azure-driver-shim"),
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let target = env_number("BENCH_OBJECTS", 50_000);
    let round_size = env_number("BENCH_ROUND", 2500);
    let clients = env_number("BENCH_CLIENTS", 64);
    let binary = shim_binary();

    let cp = ControlPlane::shared().await;
    let namespace = TestNamespace::create(cp).await;
    let kafka = MockKafka::start();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["azure-driver".to_string()]).unwrap();
    std::fs::write(dir.path().join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let shim = e2e::process::KilledOnDrop::new(
        Command::new(&binary)
            .arg("--tls-cert")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key")
            .arg(dir.path().join("tls.key"))
            .args(["--namespace", namespace.name(), "--replica-id", "bench"])
            .args(["--kafka-bootstrap", &kafka.bootstrap_servers()])
            .args(["--kafka-topic", RESULT_TOPIC])
            .env("KUBECONFIG", cp.kubeconfig_path())
            .env("DRIVER_PORT", port.to_string())
            .env("LOG_LEVEL", "WARNING")
            .stdout(Stdio::null())
            .spawn()
            .expect("the shim binary starts"),
    );

    let connector = common::connector_trusting(cert.cert.der());
    let health = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(cert.cert.der()).unwrap())
        .resolve("azure-driver", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while health
        .get(format!("https://azure-driver:{port}/management/health"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the shim did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let bicep = bicep_package();
    let driver_files = zip_base64("Create.bicep", bicep.as_bytes());
    let body_size = shim_create(&driver_files, 0).len();
    let api: Api<AzureResource> = Api::namespaced(cp.client(), namespace.name());
    let model = shim_round(
        &connector,
        port,
        vec![shim_create(&driver_files, MODEL_INDEX)],
        1,
    )
    .await;
    assert_eq!(model.posted.accepted(), 1, "the model Create is accepted");
    let model = object_copy_model(
        &api.get(&format!("r-{}", resource_id(MODEL_INDEX)))
            .await
            .expect("the shim wrote the model Create's object"),
    );
    println!(
        "shim vs apiserver: {clients} keep-alive TLS connections per side, {round_size} requests per side and round, {body_size}-byte bodies ({} B Bicep), shim {}",
        bicep.len(),
        binary.display()
    );
    println!(
        "{:>7} {:>6} {:>9} {:>9} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}  failures raw/shim",
        "objects",
        "shim's",
        "raw/s",
        "shim/s",
        "ratio",
        "raw p50",
        "raw p99",
        "shim p50",
        "shim p99",
        "shim RSS",
        "shim CPU"
    );
    let (mut raw_next, mut shim_next) = (0, 0);
    let mut objects = 0;
    let mut worst_ratio = f64::MAX;
    let mut shim_accepted = 0usize;
    let mut shim_verbs = BTreeMap::new();
    let mut copy_lines = Vec::new();
    let mut worst_copy_ratio = f64::MAX;
    while objects < target {
        let cpu_before = e2e::process::cpu_seconds(shim.id());
        let raw_objects = (raw_next..raw_next + round_size)
            .map(|i| raw_object(&bicep, i, body_size))
            .collect();
        let copies = (raw_next..raw_next + round_size)
            .map(|i| object_copy(&model, i))
            .collect();
        raw_next += round_size;
        let usage_before_raw = Usage::now(cp);
        let raw = raw_round(&api, raw_objects, clients).await;
        let raw_usage = Usage::now(cp).since(&usage_before_raw, raw.posted.accepted());
        let usage_before_copies = Usage::now(cp);
        let copy = raw_round(&api, copies, clients).await;
        let copy_usage = Usage::now(cp).since(&usage_before_copies, copy.posted.accepted());
        let bodies = (shim_next..shim_next + round_size)
            .map(|i| shim_create(&driver_files, i))
            .collect();
        shim_next += round_size;
        let verbs_before = object_requests(cp);
        let usage_before_shim = Usage::now(cp);
        let shim_side = shim_round(&connector, port, bodies, clients).await;
        let shim_usage = Usage::now(cp).since(&usage_before_shim, shim_side.posted.accepted());
        let objects_now =
            objects + 3 * round_size - raw.failures() - copy.failures() - shim_side.failures();
        worst_copy_ratio = worst_copy_ratio.min(shim_side.rate / copy.rate);
        copy_lines.push(format!(
            "{objects_now:>7} {:>9.1} {:>5.0}% {:>6.1}ms {:>6.1}ms {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            copy.rate,
            shim_side.rate / copy.rate * 100.0,
            copy.p(0.5),
            copy.p(0.99),
            raw_usage.control_plane * 1e3,
            copy_usage.control_plane * 1e3,
            shim_usage.control_plane * 1e3,
            raw_usage.load_generator * 1e3,
            copy_usage.load_generator * 1e3,
            shim_usage.load_generator * 1e3,
        ));
        for (verb, n) in object_requests(cp) {
            *shim_verbs.entry(verb.clone()).or_insert(0.0) +=
                n - verbs_before.get(&verb).copied().unwrap_or(0.0);
        }
        shim_accepted += shim_side.posted.accepted();
        objects = objects_now;
        let cpu_per_create = (e2e::process::cpu_seconds(shim.id()) - cpu_before)
            / shim_side.posted.accepted().max(1) as f64;
        let ratio = shim_side.rate / raw.rate;
        worst_ratio = worst_ratio.min(ratio);
        println!(
            "{objects:>7} {:>6} {:>9.1} {:>9.1} {:>5.0}% {:>6.1}ms {:>6.1}ms {:>6.1}ms {:>6.1}ms {:>5.1} MiB {:>5.2} ms  {}/{}",
            shim_accepted,
            raw.rate,
            shim_side.rate,
            ratio * 100.0,
            raw.p(0.5),
            raw.p(0.99),
            shim_side.p(0.5),
            shim_side.p(0.99),
            e2e::process::rss_mib(shim.id()),
            cpu_per_create * 1e3,
            raw.failures(),
            shim_side.failures()
        );
    }
    println!(
        "worst shim/raw ratio {:.0}% (target >= 85%); shim RSS at {objects} objects {:.1} MiB (target <= 64 MiB at 50,000)",
        worst_ratio * 100.0,
        e2e::process::rss_mib(shim.id())
    );
    println!(
        "the same rounds against creates of copies of the shim's own object (the apiserver's cost for what the shim writes), and CPU ms per accepted request of the control plane (cp) and of this load generator (client):\n{:>7} {:>9} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "objects",
        "copy/s",
        "ratio",
        "copy p50",
        "copy p99",
        "cp raw",
        "cp copy",
        "cp shim",
        "cl raw",
        "cl copy",
        "cl shim"
    );
    for line in copy_lines {
        println!("{line}");
    }
    println!(
        "worst shim/copy ratio {:.0}% (the shim's own overhead on the apiserver's cost of its object)",
        worst_copy_ratio * 100.0
    );
    let per_create: Vec<String> = shim_verbs
        .iter()
        .filter(|(_, n)| **n > 0.0)
        .map(|(verb, n)| format!("{verb} {:.2}", n / shim_accepted.max(1) as f64))
        .collect();
    println!(
        "apiserver AzureResource requests per accepted shim Create (reporter included): {}",
        per_create.join(", ")
    );
    drop(shim);
    drop(namespace);
}
