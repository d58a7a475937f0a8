//! The controller binary as a process: kill -9 at random points during concurrent creates
//! and deletes, and two replicas with leader election. Real apiserver, in-process armsim.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use armsim::{InventoryAction, RunningSim, SimConfig, Simulator};
use crds::{AzureResource, Phase};
use k8s_openapi::{ByteString, api::core::v1::Secret};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::json;
use tokio::{io::AsyncReadExt, io::AsyncWriteExt, net::TcpStream};

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-0000000c4a05";

struct Env {
    client: Client,
    kubeconfig: std::path::PathBuf,
    namespace: String,
    sim: RunningSim,
    _ns: e2e::TestNamespace,
    _tls: tempfile::TempDir,
}

async fn env() -> Env {
    let cp = e2e::ControlPlane::shared().await;
    let ns = e2e::TestNamespace::create(cp).await;
    let tls = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimConfig::default(), tls.path())
        .await
        .unwrap();
    let client = cp.client();
    let namespace = ns.name().to_owned();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let data: BTreeMap<String, ByteString> = [
        ("tenantId", "11111111-1111-1111-1111-111111111111"),
        ("clientId", "22222222-2222-2222-2222-222222222222"),
        ("clientSecret", "not-a-real-secret"),
        ("subscriptionId", SUBSCRIPTION),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
    .collect();
    let mut secret = Secret::default();
    secret.metadata.name = Some("azure-credentials".into());
    secret.data = Some(data);
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    Env {
        client,
        kubeconfig: cp.kubeconfig_path().to_owned(),
        namespace,
        sim,
        _ns: ns,
        _tls: tls,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The operator binary, configured as the demo and the Helm chart configure it.
fn spawn_controller(env: &Env, port: u16, extra: &[&str]) -> Child {
    spawn(&env.kubeconfig, &env.sim, &env.namespace, port, extra)
}

fn spawn(kubeconfig: &Path, sim: &RunningSim, namespace: &str, port: u16, extra: &[&str]) -> Child {
    e2e::process::controller_command(
        Path::new(env!("CARGO_BIN_EXE_azure-driver-controller")),
        kubeconfig,
        namespace,
        &sim.endpoint(),
        &sim.ca_file(),
    )
    .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
    .args(["--lease-namespace", namespace])
    .args(extra)
    .spawn()
    .unwrap()
}

fn object(name: &str, engine: &str) -> AzureResource {
    serde_json::from_value(json!({
        "apiVersion": "azure-driver.io/v1alpha1",
        "kind": "AzureResource",
        "metadata": {"name": name},
        "spec": {
            "resourceGroup": "rg-chaos",
            "location": "westeurope",
            "engine": engine,
            "template": {"json": {
                "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                "contentVersion": "1.0.0.0",
                "parameters": {"name": {"type": "string"}},
                "resources": [{
                    "type": "Microsoft.Storage/storageAccounts",
                    "apiVersion": "2023-01-01",
                    "name": "[parameters('name')]",
                    "location": "westeurope",
                    "sku": {"name": "Standard_LRS"},
                    "kind": "StorageV2",
                    "properties": {}
                }]
            }},
            "parameters": {"name": name}
        }
    }))
    .unwrap()
}

fn account_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-chaos/providers/Microsoft.Storage/storageAccounts/{name}"
    )
}

async fn metrics(port: u16) -> Option<String> {
    get(port, "/metrics").await
}

/// The raw HTTP response to `GET path` on the metrics port.
async fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    Some(text)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_concurrent_creates_and_deletes_converges() {
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261123);
    let mut rng = StdRng::seed_from_u64(seed);
    let env = env().await;
    let api: Api<AzureResource> = Api::namespaced(env.client.clone(), &env.namespace);
    let port = free_port();
    let mut controller = spawn_controller(&env, port, &["--leader-election", "false"]);
    let mut kills = 0;

    let names: Vec<String> = (0..50).map(|i| format!("chaos{i:02}")).collect();
    let creates = names.iter().enumerate().map(|(i, name)| {
        let api = api.clone();
        let engine = if i.is_multiple_of(2) {
            "Stack"
        } else {
            "Deployment"
        };
        let object = object(name, engine);
        async move { api.create(&PostParams::default(), &object).await.unwrap() }
    });
    futures::future::join_all(creates).await;

    // Kill -9 at random moments while the creates are in flight, restart at once.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
        controller.kill().unwrap();
        controller.wait().unwrap();
        kills += 1;
        controller = spawn_controller(&env, port, &["--leader-election", "false"]);
    }

    // Most objects deployed (some still running): delete half of them, both engines,
    // with more kills during the deletes.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = api
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|o| o.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready))
            .count();
        if ready >= 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {ready} Ready before the deletes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deleted: Vec<&String> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 < 2)
        .map(|(_, n)| n)
        .collect();
    for name in &deleted {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
        controller.kill().unwrap();
        controller.wait().unwrap();
        kills += 1;
        controller = spawn_controller(&env, port, &["--leader-election", "false"]);
    }

    let kept: Vec<&String> = names.iter().filter(|n| !deleted.contains(n)).collect();
    let started = Instant::now();
    loop {
        let objects = api.list(&Default::default()).await.unwrap().items;
        let gone = deleted.iter().all(|d| {
            !objects
                .iter()
                .any(|o| o.metadata.name.as_deref() == Some(d.as_str()))
        });
        let ready = kept.iter().all(|k| {
            objects.iter().any(|o| {
                o.metadata.name.as_deref() == Some(k.as_str())
                    && o.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready)
            })
        });
        if gone && ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no convergence: deleted gone={gone}, kept ready={ready}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let converged = started.elapsed();
    controller.kill().unwrap();
    controller.wait().unwrap();

    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    for event in env.sim.events() {
        if event.action == InventoryAction::Created {
            *created.entry(event.id.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let twice: Vec<_> = created.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "created more than once: {twice:?}");
    for name in &kept {
        assert!(
            env.sim.resource(&account_id(name)).is_some(),
            "{name} missing"
        );
    }
    let mut deleted_deployed = 0;
    for name in &deleted {
        assert!(
            env.sim.resource(&account_id(name)).is_none(),
            "{name} left behind"
        );
        if created.contains_key(&account_id(name).to_ascii_lowercase()) {
            deleted_deployed += 1;
        }
    }
    assert!(deleted_deployed > 0, "no deleted object had been deployed");
    println!(
        "chaos: seed {seed}, {} objects, {} deleted ({deleted_deployed} of them after their resources existed), {kills} kill -9, converged {converged:?} after the last kill, {} resources created once each",
        names.len(),
        deleted.len(),
        created.len()
    );
}

/// The leader's `/readyz` (the chart's readiness probe) answers 200 once its watches
/// have synced.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_turns_ready_once_its_watches_synced() {
    let env = env().await;
    let port = free_port();
    let _controller = e2e::process::KilledOnDrop::new(spawn_controller(
        &env,
        port,
        &["--lease-name", "azd-ready"],
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let leading = metrics(port)
            .await
            .and_then(|text| metric(&text, "azure_driver_leader"))
            == Some(1.0);
        let ready = get(port, "/readyz")
            .await
            .is_some_and(|response| response.starts_with("HTTP/1.1 200"));
        if leading && ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leading: {leading}, ready: {ready} after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_one_leader_and_fast_failover() {
    let env = env().await;
    let api: Api<AzureResource> = Api::namespaced(env.client.clone(), &env.namespace);
    let lease = ["--lease-duration-seconds", "3", "--lease-name", "azd-test"];
    let ports = [free_port(), free_port()];
    let mut replicas = [
        spawn_controller(
            &env,
            ports[0],
            &[&lease[..], &["--identity", "replica-a"]].concat(),
        ),
        spawn_controller(
            &env,
            ports[1],
            &[&lease[..], &["--identity", "replica-b"]].concat(),
        ),
    ];

    let leader = wait_for_leader(&ports, None).await;
    let follower = 1 - leader;
    api.create(&PostParams::default(), &object("led1", "Stack"))
        .await
        .unwrap();
    wait_ready(&api, "led1").await;
    let follower_metrics = metrics(ports[follower]).await.unwrap();
    assert_eq!(metric(&follower_metrics, "azure_driver_leader"), Some(0.0));
    assert_eq!(
        metric(&follower_metrics, "azure_driver_reconcile_total").unwrap_or(0.0),
        0.0,
        "the follower reconciled"
    );

    let killed = Instant::now();
    replicas[leader].kill().unwrap();
    replicas[leader].wait().unwrap();
    let new_leader = wait_for_leader(&ports, Some(leader)).await;
    let failover = killed.elapsed();
    assert_eq!(new_leader, follower);
    assert!(
        failover < Duration::from_secs(8),
        "failover took {failover:?}"
    );
    api.create(&PostParams::default(), &object("led2", "Stack"))
        .await
        .unwrap();
    wait_ready(&api, "led2").await;
    println!("leader election: failover after kill -9 of the leader took {failover:?} (lease 3 s)");
    replicas[follower].kill().unwrap();
    replicas[follower].wait().unwrap();
}

async fn wait_for_leader(ports: &[u16; 2], skip: Option<usize>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for (i, port) in ports.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            if let Some(text) = metrics(*port).await
                && metric(&text, "azure_driver_leader") == Some(1.0)
            {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_ready(api: &Api<AzureResource>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = api.get(name).await.unwrap();
        if o.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} not Ready: {:?}",
            o.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
