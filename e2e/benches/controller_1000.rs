//! AzureResource objects with a small template (1,000 by default), reconciled by the
//! controller binary against the real local apiserver and armsim. Prints time until all
//! Ready and its ratio to the bound ARM's default per-subscription budgets put on it, and
//! to the larger of that and the apiserver's own bound; ARM requests, object writes and
//! Events per object, and the controller's RSS (at Ready and peak) and CPU seconds; then,
//! while every Ready object is re-checked at its sync interval (drift check by what-if),
//! ARM writes, read-type calls and apiserver writes per check (an unchanged object's check
//! writes nothing).
//!
//! The apiserver's bound: on a small machine the apiserver itself may be what limits. Before
//! the controller starts, the benchmark makes the controller's writes itself for
//! min(count, `BENCH_APISERVER_SAMPLE` (5000)) objects in a namespace of their own (create,
//! finalizer, two status writes, two Events each, at the controller's concurrency) and
//! times them; count divided by that rate is the bound.
//!
//! `cargo bench -p e2e --bench controller_1000`
//! (`BENCH_OBJECTS` changes the count, `BENCH_CONCURRENCY` the controller's workers,
//! `BENCH_SYNC_SECONDS` the objects' sync interval (30), `BENCH_SYNC_WINDOW_SECONDS` how long
//! the re-checks are observed (90), `BENCH_ENGINE` the objects' engine (`Stack`, or
//! `Deployment`), `BENCH_DRIFT_POLICY` their drift policy (`Report`; `Ignore` is the check
//! without what-if), and `BENCH_ARM=unthrottled` runs armsim with zero latency and no
//! throttling, so that the controller itself is what is measured; `BENCH_CONTROLLER_BIN`
//! runs another controller binary, e.g. an older build). Every `BENCH_PROGRESS_SECONDS`
//! (10) it reports objects created and Ready so far and the controller's RSS and CPU; after
//! `BENCH_READY_TIMEOUT_SECONDS` (3600) it stops and prints how far the run got.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use armsim::{SimConfig, Simulator};
use crds::{AzureResource, Phase};
use futures::{StreamExt, stream};
use k8s_openapi::{
    ByteString,
    api::{
        core::v1::{Namespace, Secret},
        events::v1::Event,
    },
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::Timestamp,
};
use kube::{
    Api, Resource,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
    runtime::WatchStreamExt,
};
use serde_json::json;

/// Objects are spread over this many subscriptions (100 each at the default count), as
/// ARM's write limits are per subscription.
const SUBSCRIPTIONS: usize = 10;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn subscription(i: usize) -> String {
    format!("00000000-0000-0000-0000-0000000b{:04}", i % SUBSCRIPTIONS)
}

/// The apiserver's write requests so far, from its own metrics: to `AzureResource`
/// objects (status included) and to Events.
#[derive(Debug, Clone, Copy, Default)]
struct Writes {
    objects: f64,
    events: f64,
}

impl std::ops::Sub for Writes {
    type Output = Writes;
    fn sub(self, before: Writes) -> Writes {
        Writes {
            objects: self.objects - before.objects,
            events: self.events - before.events,
        }
    }
}

fn apiserver_writes(cp: &e2e::ControlPlane) -> Writes {
    let output = cp
        .kubectl()
        .args(["get", "--raw", "/metrics"])
        .output()
        .expect("kubectl runs");
    let mut writes = Writes::default();
    for line in String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| {
            [
                "POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE",
            ]
            .iter()
            .any(|v| l.contains(&format!("verb=\"{v}\"")))
        })
    {
        let Some(count) = line.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok()) else {
            continue;
        };
        if line.contains("resource=\"azureresources\"") {
            writes.objects += count;
        } else if line.contains("resource=\"events\"") {
            writes.events += count;
        }
    }
    writes
}

/// The least time ARM's default per-subscription token buckets allow for `count` objects
/// over [`SUBSCRIPTIONS`]: one PUT each (plus one per resource group) and two reads each
/// (operation poll, deployment GET).
fn arm_budget_bound(count: usize) -> f64 {
    let budgets = armsim::ThrottlingConfig::default();
    let per_subscription = count.div_ceil(SUBSCRIPTIONS) as f64;
    let drain = |requests: f64, bucket: armsim::BucketConfig| {
        (requests - f64::from(bucket.capacity)).max(0.0) / bucket.refill_per_sec
    };
    drain(per_subscription + 1.0, budgets.writes).max(drain(2.0 * per_subscription, budgets.reads))
}

/// The benchmark's object `i`: a storage account from an inline ARM template.
fn bench_object(i: usize, engine: &str, drift_policy: &str, sync_seconds: usize) -> AzureResource {
    serde_json::from_value(json!({
        "apiVersion": "azure-driver.io/v1alpha1",
        "kind": "AzureResource",
        "metadata": {"name": format!("bench{i:05}")},
        "spec": {
            "subscriptionId": subscription(i),
            "resourceGroup": format!("rg-bench-{}", i % SUBSCRIPTIONS),
            "location": "westeurope",
            "engine": engine,
            "driftPolicy": drift_policy,
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
                }],
                "outputs": {"id": {"type": "string", "value": "[resourceId('Microsoft.Storage/storageAccounts', parameters('name'))]"}}
            }},
            "parameters": {"name": format!("bench{i:05}")},
            "syncInterval": format!("{sync_seconds}s")
        }
    }))
    .unwrap()
}

/// The apiserver's own rate for the writes the controller makes per object, measured
/// without the controller: objects per second.
struct ApiserverRate {
    objects: usize,
    seconds: f64,
}

impl ApiserverRate {
    fn per_second(&self) -> f64 {
        self.objects as f64 / self.seconds.max(f64::EPSILON)
    }

    /// The least time the apiserver needs for `count` objects' writes at this rate.
    fn bound(&self, count: usize) -> f64 {
        count as f64 / self.per_second()
    }
}

/// Per object, in a namespace no controller watches, the writes the controller and the
/// benchmark make on the way to Ready, in the controller's order and with its patch types:
/// the create, the finalizer (JSON patch testing the list read), the status `Deploying`
/// and its Event, the status `Ready` and its Event (status by forced server-side apply,
/// events.k8s.io/v1 Events), `concurrency` objects at a time as the controller's workers.
/// The namespace is emptied and deleted before this returns, so that the controller's run
/// does not compete with its deletion.
async fn apiserver_rate(
    cp: &e2e::ControlPlane,
    objects: usize,
    concurrency: usize,
    engine: &str,
    drift_policy: &str,
) -> ApiserverRate {
    let ns = e2e::TestNamespace::create(cp).await;
    let api: Api<AzureResource> = Api::namespaced(cp.client(), ns.name());
    let events: Api<Event> = Api::namespaced(cp.client(), ns.name());
    let started = Instant::now();
    stream::iter(0..objects)
        .map(|i| {
            let object = bench_object(i, engine, drift_policy, 3600);
            object_writes(&api, &events, object)
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let seconds = started.elapsed().as_secs_f64();

    // Untimed: without the finalizer the namespace's deletion can finish.
    stream::iter(0..objects)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("bench{i:05}");
                let patch = Patch::Merge(json!({"metadata": {"finalizers": null}}));
                api.patch(&name, &PatchParams::default(), &patch)
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let name = ns.name().to_owned();
    drop(ns);
    let namespaces: Api<Namespace> = Api::all(cp.client());
    let deadline = Instant::now() + Duration::from_secs(600);
    while namespaces.get_opt(&name).await.unwrap().is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ApiserverRate { objects, seconds }
}

/// One object's writes, in order (see [`apiserver_rate`]).
async fn object_writes(api: &Api<AzureResource>, events: &Api<Event>, object: AzureResource) {
    let created = api.create(&PostParams::default(), &object).await.unwrap();
    let name = created.metadata.name.clone().unwrap();
    let finalizer: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": created.metadata.finalizers},
        {"op": "add", "path": "/metadata/finalizers", "value": [crds::CLEANUP_FINALIZER]},
    ]))
    .unwrap();
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Json::<()>(finalizer),
    )
    .await
    .unwrap();
    let generation = created.metadata.generation;
    let deployment = crds::deployment_name(
        created.metadata.namespace.as_deref().unwrap(),
        &name,
        created.metadata.uid.as_deref().unwrap(),
    );
    let started_at = Timestamp::now();
    let deploying = json!({
        "phase": "Deploying",
        "observedGeneration": generation,
        "appliedHash": format!("{:064x}", 0xb3c4_u64),
        "deployment": {
            "name": deployment,
            "provisioningState": "Accepted",
            "operationUrl": format!("https://management.azure.com/subscriptions/x/providers/Microsoft.Resources/operationStatuses/{name}?api-version=2024-03-01"),
            "startedAt": started_at,
        },
        "conditions": [{
            "type": "Ready", "status": "False", "reason": "Deploying",
            "message": "deployment running in Azure",
            "observedGeneration": generation, "lastTransitionTime": started_at,
        }],
    });
    apply_status(api, &name, deploying).await;
    create_event(events, &created, "DeploymentStarted", "stack started").await;
    let id = format!(
        "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{name}"
    );
    let ready = json!({
        "phase": "Ready",
        "observedGeneration": generation,
        "appliedHash": format!("{:064x}", 0xb3c4_u64),
        "outputs": {"id": id},
        "resources": [id],
        "deployment": {
            "name": deployment,
            "id": format!("/subscriptions/x/resourceGroups/rg/providers/Microsoft.Resources/deploymentStacks/{name}"),
            "provisioningState": "Succeeded",
            "correlationId": "00000000-0000-0000-0000-00000000c0de",
            "startedAt": started_at,
            "finishedAt": Timestamp::now(),
        },
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "Succeeded",
            "message": "deployment succeeded",
            "observedGeneration": generation, "lastTransitionTime": Timestamp::now(),
        }],
    });
    apply_status(api, &name, ready).await;
    create_event(events, &created, "Ready", "stack succeeded").await;
}

async fn apply_status(api: &Api<AzureResource>, name: &str, status: serde_json::Value) {
    let patch = json!({
        "apiVersion": "azure-driver.io/v1alpha1",
        "kind": "AzureResource",
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply("azure-driver-controller").force(),
        &Patch::Apply(&patch),
    )
    .await
    .unwrap();
}

async fn create_event(events: &Api<Event>, regarding: &AzureResource, reason: &str, note: &str) {
    let now = Timestamp::now();
    let object = regarding.metadata.name.clone().unwrap();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            ..ObjectMeta::default()
        },
        action: Some("Deploy".into()),
        reason: Some(reason.into()),
        note: Some(note.into()),
        type_: Some("Normal".into()),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.object_ref(&())),
        reporting_controller: Some("azure-driver-controller".into()),
        reporting_instance: Some("bench".into()),
        ..Event::default()
    };
    events.create(&PostParams::default(), &event).await.unwrap();
}

/// Peak resident set (MiB) and CPU seconds (user + system) of a process.
fn process_usage(pid: u32) -> (f64, f64) {
    (
        e2e::process::peak_rss_mib(pid),
        e2e::process::cpu_seconds(pid),
    )
}

/// Counts the benchmark's progress for the periodic report.
#[derive(Clone, Default)]
struct Progress {
    created: Arc<AtomicUsize>,
    ready: Arc<AtomicUsize>,
}

impl Progress {
    /// Prints, every `every`, objects created and Ready so far and the controller's RSS
    /// and CPU seconds: how a run that does not finish got as far as it did.
    async fn report(self, started: Instant, controller: u32, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            let (peak_mib, cpu_seconds) = process_usage(controller);
            eprintln!(
                "  [{:>6.0} s] created {:>7}  Ready {:>7}  controller RSS {:>6.1} MiB (peak {peak_mib:.1})  CPU {cpu_seconds:>7.1} s",
                started.elapsed().as_secs_f64(),
                self.created.load(Ordering::Relaxed),
                self.ready.load(Ordering::Relaxed),
                e2e::process::rss_mib(controller),
            );
        }
    }
}

#[tokio::main]
async fn main() {
    let count = env_number("BENCH_OBJECTS", 1000);
    let concurrency = env_number("BENCH_CONCURRENCY", 32);
    let sync_seconds = env_number("BENCH_SYNC_SECONDS", 30);
    let sync_window = Duration::from_secs(env_number("BENCH_SYNC_WINDOW_SECONDS", 90) as u64);
    let engine = std::env::var("BENCH_ENGINE").unwrap_or_else(|_| "Stack".to_owned());
    let drift_policy = std::env::var("BENCH_DRIFT_POLICY").unwrap_or_else(|_| "Report".to_owned());
    let binary = match std::env::var_os("BENCH_CONTROLLER_BIN") {
        Some(path) => std::path::PathBuf::from(path),
        None => e2e::process::built_binaries(&["azure-driver-controller"], &[])
            .join("azure-driver-controller"),
    };
    let cp = e2e::ControlPlane::shared().await;
    let ns = e2e::TestNamespace::create(cp).await;
    let namespace = ns.name().to_owned();
    let client = cp.client();
    let tls = tempfile::tempdir().unwrap();
    let unthrottled = std::env::var("BENCH_ARM").is_ok_and(|v| v == "unthrottled");
    let mut sim_config = SimConfig::default();
    if unthrottled {
        sim_config.throttling.enabled = false;
        sim_config.latency = armsim::LatencyConfig {
            accepted_ms: 0,
            running_ms: 0,
            per_resource_ms: 0,
            delete_ms: 0,
            what_if_ms: 0,
            responses: BTreeMap::new(),
        };
    }
    let sim = Simulator::start(sim_config, tls.path()).await.unwrap();

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut secret = Secret::default();
    secret.metadata.name = Some("azure-credentials".into());
    secret.data = Some(
        [
            ("tenantId", "11111111-1111-1111-1111-111111111111"),
            ("clientId", "22222222-2222-2222-2222-222222222222"),
            ("clientSecret", "not-a-real-secret"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
        .collect::<BTreeMap<_, _>>(),
    );
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();

    // Before the controller starts, so that neither competes with the other.
    let sample = count.min(env_number("BENCH_APISERVER_SAMPLE", 5000));
    let apiserver = apiserver_rate(cp, sample, concurrency, &engine, &drift_policy).await;

    let mut controller = e2e::process::controller_command(
        &binary,
        cp.kubeconfig_path(),
        &namespace,
        &sim.endpoint(),
        &sim.ca_file(),
    )
    .args(["--leader-election", "false"])
    .args(["--metrics-addr", "127.0.0.1:0"])
    .args(["--concurrency", &concurrency.to_string()])
    .spawn()
    .expect("the controller binary starts");

    let api: Api<AzureResource> = Api::namespaced(client.clone(), &namespace);
    let writes_before = apiserver_writes(cp);
    sim.reset_counters();
    let started = Instant::now();
    let progress = Progress::default();
    let reporter = tokio::spawn(progress.clone().report(
        started,
        controller.id(),
        Duration::from_secs(env_number("BENCH_PROGRESS_SECONDS", 10) as u64),
    ));
    stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let object = bench_object(i, &engine, &drift_policy, sync_seconds);
            let created = progress.created.clone();
            async move {
                api.create(&PostParams::default(), &object).await.unwrap();
                created.fetch_add(1, Ordering::Relaxed);
            }
        })
        .buffer_unordered(50)
        .collect::<Vec<_>>()
        .await;
    let created = started.elapsed();

    // Counted from a watch: listing 100,000 objects twice a second would load the
    // apiserver more than the controller does.
    let timeout = Duration::from_secs(env_number("BENCH_READY_TIMEOUT_SECONDS", 3600) as u64);
    let deadline = started + timeout;
    let mut ready = HashSet::new();
    let mut events = std::pin::pin!(
        kube::runtime::watcher(api.clone(), kube::runtime::watcher::Config::default())
            .default_backoff()
            .applied_objects()
    );
    while ready.len() < count {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let object = match tokio::time::timeout(remaining, events.next()).await {
            Ok(Some(Ok(object))) => object,
            // The watcher backs off and watches again (e.g. after its resource version expired).
            Ok(Some(Err(_))) => continue,
            Ok(None) | Err(_) => break,
        };
        let name = object.metadata.name.clone().unwrap_or_default();
        if object.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready) {
            ready.insert(name);
            progress.ready.store(ready.len(), Ordering::Relaxed);
        }
    }
    let ready_after = started.elapsed();
    reporter.abort();
    if ready.len() < count {
        // Reported as far as it got: what was Ready when the time ran out.
        let (peak_mib, cpu_seconds) = process_usage(controller.id());
        println!(
            "controller benchmark: {count} objects, only {} Ready after {:.0} s (BENCH_READY_TIMEOUT_SECONDS); created in {:.2} s, controller RSS {:.1} MiB, peak {peak_mib:.1} MiB, CPU {cpu_seconds:.2} s",
            ready.len(),
            ready_after.as_secs_f64(),
            created.as_secs_f64(),
            e2e::process::rss_mib(controller.id()),
        );
        controller.kill().unwrap();
        controller.wait().unwrap();
        drop(ns);
        return;
    }
    let rss_at_ready = e2e::process::rss_mib(controller.id());
    let (peak_mib, cpu_seconds) = process_usage(controller.id());
    let counters = sim.counters();
    let arm_requests = counters.total() - counters.route("POST token");
    // The benchmark's own creates are not the controller's.
    let writes = apiserver_writes(cp) - writes_before;
    let object_writes = writes.objects - count as f64;

    // Steady state: every object is Ready and re-checked once per sync interval. Each
    // check is one what-if (under `driftPolicy: Ignore` one GET of the deployment or
    // stack), so their count is the number of object-intervals seen.
    sim.reset_counters();
    let sync_writes_before = apiserver_writes(cp);
    tokio::time::sleep(sync_window).await;
    let sync = sim.counters();
    let sync_apiserver_writes = apiserver_writes(cp) - sync_writes_before;
    let (peak_after_sync, cpu_after_sync) = process_usage(controller.id());
    let rss_after_sync = e2e::process::rss_mib(controller.id());
    controller.kill().unwrap();
    controller.wait().unwrap();
    let checks = if drift_policy == "Ignore" {
        sync.route("GET deployments") + sync.route("GET deploymentStacks")
    } else {
        sync.route("POST deployments/whatIf")
    };
    let (sync_writes, sync_reads): (Vec<_>, Vec<_>) = sync
        .by_route
        .iter()
        .filter(|(route, _)| route.as_str() != "POST token")
        .partition(|(route, _)| {
            route.starts_with("PUT") || route.starts_with("DELETE") || route.starts_with("PATCH")
        });
    let total = |routes: &[(&String, &u64)]| routes.iter().map(|(_, n)| **n).sum::<u64>();

    let n = count as f64;
    let bound = arm_budget_bound(count);
    println!(
        "controller benchmark: {count} objects ({engine}, driftPolicy {drift_policy}), {SUBSCRIPTIONS} subscriptions, concurrency {concurrency}, armsim {}",
        if unthrottled {
            "unthrottled, zero latency"
        } else {
            "default budgets and latency"
        }
    );
    println!(
        "  objects created in          {:>10.2} s",
        created.as_secs_f64()
    );
    let apiserver_bound = apiserver.bound(count);
    println!(
        "  apiserver alone             {:>10.1} objects/s  ({} objects' writes in {:.2} s without the controller: {apiserver_bound:.0} s for {count})",
        apiserver.per_second(),
        apiserver.objects,
        apiserver.seconds
    );
    println!(
        "  all Ready after             {:>10.2} s  ({:.2} x the {bound:.0} s ARM's default budgets allow; {:.2} x the larger of that and the apiserver's {apiserver_bound:.0} s)",
        ready_after.as_secs_f64(),
        ready_after.as_secs_f64() / bound.max(1.0),
        ready_after.as_secs_f64() / bound.max(apiserver_bound).max(1.0)
    );
    println!(
        "  ARM requests per object     {:>10.2}  ({arm_requests} total, {} throttled by armsim; target <= 3)",
        arm_requests as f64 / n,
        counters.throttled
    );
    println!(
        "  object writes per object    {:>10.2}  ({object_writes} total: finalizer, status; target <= 3)",
        object_writes / n
    );
    println!(
        "  Event writes per object     {:>10.2}  ({} total; target <= 2)",
        writes.events / n,
        writes.events
    );
    println!("  controller RSS at Ready     {rss_at_ready:>10.1} MiB");
    println!("  controller peak RSS         {peak_mib:>10.1} MiB");
    println!("  controller CPU              {cpu_seconds:>10.2} s");
    let per_check = |n: u64| n as f64 / checks.max(1) as f64;
    println!(
        "re-checks over {} s at syncInterval {sync_seconds}s: {checks} checks ({:.2} per object per interval)",
        sync_window.as_secs(),
        checks as f64 * sync_seconds as f64 / (n * sync_window.as_secs_f64())
    );
    println!(
        "  ARM writes per check        {:>10.2}  ({} total)",
        per_check(total(&sync_writes)),
        total(&sync_writes)
    );
    println!(
        "  ARM read-type per check     {:>10.2}  ({} total, what-if POSTs included)",
        per_check(total(&sync_reads)),
        total(&sync_reads)
    );
    for (route, requests) in &sync_reads {
        println!("    {route:<36} {:>6.2} per check", per_check(**requests));
    }
    println!(
        "  apiserver writes per check  {:>10.2}  ({} object writes, {} Event writes; target 0)",
        (sync_apiserver_writes.objects + sync_apiserver_writes.events) / checks.max(1) as f64,
        sync_apiserver_writes.objects,
        sync_apiserver_writes.events
    );
    println!(
        "  controller RSS after checks {rss_after_sync:>10.1} MiB (peak {peak_after_sync:.1} MiB)"
    );
    println!(
        "  controller CPU per check    {:>10.2} ms",
        (cpu_after_sync - cpu_seconds) * 1000.0 / checks.max(1) as f64
    );
    drop(ns);
}
