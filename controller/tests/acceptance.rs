//! Acceptance tests: the controller, run in-process, against the real local kube-apiserver
//! (e2e fixture, one namespace per test) and an in-process ARM simulator.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use arm::{ArmOptions, CloudConfig};
use armsim::{RequestFault, RequestFaultRule, RunningSim, SimConfig, Simulator};
use azure_driver_controller::{Config, Health, arm_adapter::ArmFactory, metrics::Metrics, run};
use clap::Parser;
use crds::{AzureResource, Phase};
use k8s_openapi::{
    ByteString,
    api::{
        coordination::v1::Lease,
        core::v1::{ConfigMap, Secret},
        events::v1::Event,
    },
    apimachinery::pkg::apis::meta::v1::Condition,
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-00000000c0de";
const WAIT: Duration = Duration::from_secs(60);

/// A namespace, a simulator and a controller watching only that namespace.
struct Harness {
    client: Client,
    namespace: String,
    sim: RunningSim,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    controller: Option<JoinHandle<anyhow::Result<()>>>,
    _namespace_guard: e2e::TestNamespace,
    _tls: tempfile::TempDir,
}

impl Harness {
    async fn start(sim_config: SimConfig) -> Harness {
        Self::start_with(sim_config, None).await
    }

    /// With `leader`: leader election in the test namespace under that identity, with a
    /// 30 s lease (renewed every 20 s).
    async fn start_with(sim_config: SimConfig, leader: Option<&str>) -> Harness {
        let cp = e2e::ControlPlane::shared().await;
        let client = cp.client();
        let ns = e2e::TestNamespace::create(cp).await;
        let namespace = ns.name().to_owned();

        let tls = tempfile::tempdir().unwrap();
        let sim = Simulator::start(sim_config, tls.path()).await.unwrap();
        let cloud = CloudConfig::default()
            .with_resource_manager_endpoint(&sim.endpoint())
            .unwrap()
            .with_authority_host(&sim.endpoint())
            .unwrap()
            .with_ca_file(sim.ca_file());
        let options = ArmOptions::default()
            .with_cloud(cloud)
            .with_max_retry_wait(Duration::from_secs(5))
            .with_retry_backoff(Duration::from_millis(100))
            .with_default_poll_interval(Duration::from_millis(500));
        let metrics = Arc::new(Metrics::default());
        let factory = Arc::new(ArmFactory::new(options, metrics.clone()).unwrap());

        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        secrets
            .create(
                &PostParams::default(),
                &secret(
                    "azure-credentials",
                    &[
                        ("tenantId", "11111111-1111-1111-1111-111111111111"),
                        ("clientId", "22222222-2222-2222-2222-222222222222"),
                        ("clientSecret", "not-a-real-secret"),
                        ("subscriptionId", SUBSCRIPTION),
                    ],
                ),
            )
            .await
            .unwrap();

        let mut args = vec![
            "azure-driver-controller",
            "--namespaces",
            &namespace,
            "--concurrency",
            "8",
        ];
        match leader {
            Some(identity) => args.extend([
                "--leader-election",
                "true",
                "--lease-namespace",
                &namespace,
                "--lease-duration-seconds",
                "30",
                "--identity",
                identity,
            ]),
            None => args.extend(["--leader-election", "false"]),
        }
        let config = Config::parse_from(args);
        let (stop, stopped) = oneshot::channel::<()>();
        let controller = tokio::spawn(run(
            client.clone(),
            config,
            factory,
            metrics.clone(),
            Arc::new(Health::default()),
            async move {
                let _ = stopped.await;
            },
        ));
        Harness {
            client,
            namespace,
            sim,
            metrics,
            stop: Some(stop),
            controller: Some(controller),
            _namespace_guard: ns,
            _tls: tls,
        }
    }

    fn api(&self) -> Api<AzureResource> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn resource_group_id(&self, rg: &str) -> String {
        format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}")
    }

    async fn create(&self, object: Value) -> AzureResource {
        let object: AzureResource = serde_json::from_value(object).unwrap();
        self.api()
            .create(&PostParams::default(), &object)
            .await
            .unwrap()
    }

    async fn wait_for(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&AzureResource) -> bool,
    ) -> AzureResource {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let object = self.api().get(name).await.unwrap();
            if done(&object) {
                return object;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{name}: timed out waiting for {what}; status: {:#?}",
                    object.status
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_ready(&self, name: &str) -> AzureResource {
        self.wait_for(name, "Ready", |o| phase(o) == Some(Phase::Ready))
            .await
    }

    async fn wait_gone(&self, name: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.api().get_opt(name).await.unwrap().is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} was not deleted"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn delete(&self, name: &str) {
        self.api()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }

    /// ARM writes (PUT, POST, DELETE) the simulator received for our subscription.
    fn arm_writes(&self) -> u64 {
        let counters = self.sim.counters();
        counters
            .subscriptions
            .get(SUBSCRIPTION)
            .map_or(0, |s| s.writes + s.deletes)
    }

    fn inventory_under(&self, rg: &str) -> Vec<String> {
        let prefix = format!("{}/providers/", self.resource_group_id(rg)).to_ascii_lowercase();
        self.sim
            .inventory()
            .into_iter()
            .map(|i| i.id)
            .filter(|id| id.to_ascii_lowercase().starts_with(&prefix))
            .filter(|id| !id.to_ascii_lowercase().contains("/microsoft.resources/"))
            .collect()
    }

    async fn events_for(&self, name: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect()
    }

    /// Events are published right after the status write they describe.
    async fn wait_for_event(&self, name: &str, type_: &str, reason: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.events_for(name).await;
            if events
                .iter()
                .any(|e| e.type_.as_deref() == Some(type_) && e.reason.as_deref() == Some(reason))
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {type_} {reason} event for {name} in {events:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An ARM client of someone other than the operator, for changes made out of band.
    fn someone_else(&self) -> arm::ArmClient {
        let options = ArmOptions::default().with_cloud(
            CloudConfig::default()
                .with_resource_manager_endpoint(&self.sim.endpoint())
                .unwrap()
                .with_authority_host(&self.sim.endpoint())
                .unwrap()
                .with_ca_file(self.sim.ca_file()),
        );
        let credentials = arm::CredentialCache::new(&options).unwrap();
        let credential = credentials
            .get(&arm::CredentialSpec::ClientSecret {
                tenant_id: "11111111-1111-1111-1111-111111111111".into(),
                client_id: "44444444-4444-4444-4444-444444444444".into(),
                client_secret: arm::Secret::new("someone-else".to_owned()),
            })
            .unwrap();
        arm::ArmClient::new(options, credential).unwrap()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(controller) = self.controller.take() {
            tokio::time::timeout(Duration::from_secs(30), controller)
                .await
                .expect("controller stops on shutdown")
                .unwrap()
                .unwrap();
        }
    }
}

fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

fn phase(o: &AzureResource) -> Option<Phase> {
    o.status.as_ref().and_then(|s| s.phase)
}

/// A storage account named by a parameter, a plain and a secure output; `tags` may
/// carry the simulator's fault marker.
fn storage_template(tags: Value) -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "name": {"type": "string"},
            "token": {"type": "secureString", "defaultValue": "t0ken-value"}
        },
        "resources": [{
            "type": "Microsoft.Storage/storageAccounts",
            "apiVersion": "2023-01-01",
            "name": "[parameters('name')]",
            "location": "westeurope",
            "sku": {"name": "Standard_LRS"},
            "kind": "StorageV2",
            "tags": tags,
            "properties": {}
        }],
        "outputs": {
            "accountId": {
                "type": "string",
                "value": "[resourceId('Microsoft.Storage/storageAccounts', parameters('name'))]"
            },
            "token": {"type": "secureString", "value": "[parameters('token')]"}
        }
    })
}

fn object(name: &str, rg: &str, engine: &str, policy: &str, account: &str) -> Value {
    json!({
        "apiVersion": "azure-driver.io/v1alpha1",
        "kind": "AzureResource",
        "metadata": {"name": name},
        "spec": {
            "resourceGroup": rg,
            "location": "westeurope",
            "engine": engine,
            "deletionPolicy": policy,
            "template": {"json": storage_template(json!({}))},
            "parameters": {"name": account},
            "outputsSecretRef": {"name": format!("{name}-outputs")}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_ready_outputs_redeploy_and_quiet_resyncs() {
    let h = Harness::start(SimConfig::default()).await;
    h.create(object("web", "rg-web", "Stack", "Delete", "acct1"))
        .await;
    let ready = h.wait_ready("web").await;
    let status = ready.status.clone().unwrap();
    let expected_id = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/acct1",
        h.resource_group_id("rg-web")
    );
    assert_eq!(
        status
            .outputs
            .get("accountId")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase),
        Some(expected_id.to_ascii_lowercase())
    );
    assert!(
        !status.outputs.contains_key("token"),
        "secure output in status"
    );
    assert!(
        status
            .resources
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&expected_id)),
        "{:?}",
        status.resources
    );
    assert!(h.sim.resource(&expected_id).is_some());
    assert_eq!(ready.finalizers(), ["azure-driver.io/cleanup"]);

    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), &h.namespace);
    let outputs = secrets.get("web-outputs").await.unwrap();
    let data = outputs.data.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&data["accountId"].0).to_ascii_lowercase(),
        expected_id.to_ascii_lowercase()
    );
    // ARM never returns secure output values; what it returns must not be faked.
    assert!(data.get("token").is_none_or(|t| t.0 != b"null"));
    assert_eq!(
        outputs.metadata.owner_references.unwrap()[0].uid,
        ready.uid().unwrap()
    );
    for reason in ["DeploymentStarted", "Ready"] {
        h.wait_for_event("web", "Normal", reason).await;
    }

    // Parameter change → redeploy, the old account is removed by the stack.
    let first_hash = status.applied_hash.clone().unwrap();
    h.api()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"parameters": {"name": "acct2"}}})),
        )
        .await
        .unwrap();
    let redeployed = h
        .wait_for("web", "redeploy", |o| {
            phase(o) == Some(Phase::Ready)
                && o.status.as_ref().and_then(|s| s.applied_hash.as_deref())
                    != Some(first_hash.as_str())
        })
        .await;
    let second_id = expected_id.replace("acct1", "acct2");
    assert!(
        redeployed
            .status
            .unwrap()
            .resources
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&second_id))
    );
    assert!(h.sim.resource(&second_id).is_some());

    // Periodic re-checks of an unchanged object at the shortest interval allowed: reads only.
    h.api()
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"syncInterval": "1s"}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes_before = h.arm_writes();
    let gets_before = h.sim.counters().route("GET deploymentStacks");
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.sim.counters().route("GET deploymentStacks") < gets_before + 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than 5 re-checks"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        h.arm_writes(),
        writes_before,
        "an unchanged resync wrote to ARM"
    );
    assert_eq!(
        phase(&h.api().get("web").await.unwrap()),
        Some(Phase::Ready)
    );

    let text = h.metrics.encode();
    assert!(
        text.contains("azure_driver_arm_requests_total{operation=\"put_stack\""),
        "{text}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletion_per_engine_and_policy() {
    let h = Harness::start(SimConfig::default()).await;
    h.create(object("stack-del", "rg-a", "Stack", "Delete", "stackdel"))
        .await;
    h.create(object("dep-del", "rg-b", "Deployment", "Delete", "depdel"))
        .await;
    h.create(object(
        "stack-orphan",
        "rg-c",
        "Stack",
        "Orphan",
        "stackorphan",
    ))
    .await;
    h.create(object(
        "dep-orphan",
        "rg-d",
        "Deployment",
        "Orphan",
        "deporphan",
    ))
    .await;
    for name in ["stack-del", "dep-del", "stack-orphan", "dep-orphan"] {
        h.wait_ready(name).await;
    }
    for rg in ["rg-a", "rg-b", "rg-c", "rg-d"] {
        assert_eq!(
            h.inventory_under(rg).len(),
            1,
            "{rg}: {:?}",
            h.inventory_under(rg)
        );
    }
    for name in ["stack-del", "dep-del", "stack-orphan", "dep-orphan"] {
        h.delete(name).await;
    }
    for name in ["stack-del", "dep-del", "stack-orphan", "dep-orphan"] {
        h.wait_gone(name).await;
    }
    assert!(
        h.inventory_under("rg-a").is_empty(),
        "{:?} {:?}",
        h.inventory_under("rg-a"),
        h.sim.counters().by_route
    );
    assert!(
        h.inventory_under("rg-b").is_empty(),
        "{:?}",
        h.inventory_under("rg-b")
    );
    assert_eq!(h.inventory_under("rg-c").len(), 1);
    assert_eq!(h.inventory_under("rg-d").len(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_template_is_failed_with_the_arm_code_and_a_warning() {
    let h = Harness::start(SimConfig::default()).await;
    let mut failing = object("broken", "rg-f", "Stack", "Delete", "broken1");
    failing["spec"]["template"]["json"] =
        storage_template(json!({"armsim-fail": "SkuNotAvailable"}));
    h.create(failing).await;
    let failed = h
        .wait_for("broken", "Failed", |o| phase(o) == Some(Phase::Failed))
        .await;
    let status = failed.status.unwrap();
    let error = status.error.unwrap();
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, error.code);
    let all_codes: Vec<&str> = std::iter::once(error.code.as_str())
        .chain(error.details.iter().map(|d| d.code.as_str()))
        .collect();
    assert!(all_codes.contains(&"SkuNotAvailable"), "{all_codes:?}");
    h.wait_for_event("broken", "Warning", &error.code).await;
    // Terminal: no new attempt without a change.
    let writes = h.arm_writes();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(h.arm_writes(), writes);

    // Invalid input changes nothing in Azure and says why.
    let config_maps: Api<ConfigMap> = Api::namespaced(h.client.clone(), &h.namespace);
    let mut not_json = ConfigMap::default();
    not_json.metadata.name = Some("templates".into());
    not_json.data = Some([("main.json".to_owned(), "{ not json".to_owned())].into());
    config_maps
        .create(&PostParams::default(), &not_json)
        .await
        .unwrap();
    let mut bad = object("bad-template", "rg-x", "Stack", "Delete", "fixed1");
    bad["spec"]["template"] = json!({"configMapKeyRef": {"name": "templates", "key": "main.json"}});
    h.create(bad).await;
    let rejected = h
        .wait_for("bad-template", "Failed", |o| {
            phase(o) == Some(Phase::Failed)
        })
        .await;
    let error = rejected.status.unwrap().error.unwrap();
    assert_eq!(error.code, "InvalidTemplate");
    assert!(error.message.contains("templates"), "{}", error.message);
    assert!(h.inventory_under("rg-x").is_empty());

    // A corrected ConfigMap reconciles the objects that use it.
    config_maps
        .patch(
            "templates",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {
                "main.json": storage_template(json!({})).to_string()
            }})),
        )
        .await
        .unwrap();
    h.wait_ready("bad-template").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_and_server_errors_still_converge() {
    let mut config = SimConfig::default();
    config.faults.request_rules = vec![
        RequestFaultRule {
            route: Some(
                "^(PUT|GET|DELETE) (deploymentStacks|operationStatuses|resourceGroups)$".into(),
            ),
            probability: 0.1,
            fault: RequestFault::Throttle {
                retry_after_secs: 1,
            },
        },
        RequestFaultRule {
            route: Some(
                "^(PUT|GET|DELETE) (deploymentStacks|operationStatuses|resourceGroups)$".into(),
            ),
            probability: 0.1,
            fault: RequestFault::Status { status: 503 },
        },
    ];
    let h = Harness::start(config).await;
    for i in 0..5 {
        h.create(object(
            &format!("flaky{i}"),
            "rg-flaky",
            "Stack",
            "Delete",
            &format!("flaky{i}"),
        ))
        .await;
    }
    for i in 0..5 {
        h.wait_ready(&format!("flaky{i}")).await;
    }
    assert!(
        h.sim.counters().throttled + h.sim.counters().faults > 0,
        "no fault was injected"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_credentials_are_a_condition_and_a_new_secret_redeploys() {
    let h = Harness::start(SimConfig::default()).await;
    let mut spec = object("creds", "rg-creds", "Stack", "Delete", "creds1");
    spec["spec"]["credentialsSecretRef"] = json!({"name": "team-credentials"});
    spec["spec"]["parametersFrom"] = json!([
        {"name": "token", "secretKeyRef": {"name": "team-params", "key": "token"}}
    ]);
    h.create(spec).await;
    let waiting = h
        .wait_for("creds", "CredentialsMissing", |o| {
            o.status
                .as_ref()
                .and_then(|s| s.error.as_ref())
                .is_some_and(|e| e.code == "CredentialsMissing")
        })
        .await;
    assert_eq!(phase(&waiting), Some(Phase::Failed));
    assert_eq!(h.arm_writes(), 0);

    let secrets: Api<Secret> = Api::namespaced(h.client.clone(), &h.namespace);
    secrets
        .create(
            &PostParams::default(),
            &secret(
                "team-credentials",
                &[
                    ("tenantId", "11111111-1111-1111-1111-111111111111"),
                    ("clientId", "33333333-3333-3333-3333-333333333333"),
                    ("clientSecret", "another-secret"),
                    ("subscriptionId", SUBSCRIPTION),
                ],
            ),
        )
        .await
        .unwrap();
    secrets
        .create(
            &PostParams::default(),
            &secret("team-params", &[("token", "first-s3cret")]),
        )
        .await
        .unwrap();
    let ready = h.wait_ready("creds").await;
    let first_hash = ready.status.unwrap().applied_hash.unwrap();

    // A changed Secret value redeploys; the value itself never shows up in status.
    secrets
        .patch(
            "team-params",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"token": "second-s3cret"}})),
        )
        .await
        .unwrap();
    let redeployed = h
        .wait_for("creds", "redeploy after the Secret changed", |o| {
            phase(o) == Some(Phase::Ready)
                && o.status.as_ref().and_then(|s| s.applied_hash.as_deref())
                    != Some(first_hash.as_str())
        })
        .await;
    let text = serde_json::to_string(&redeployed).unwrap();
    assert!(
        !text.contains("s3cret"),
        "a secret value leaked into the object"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drift_is_detected_and_repaired_at_the_sync_interval() {
    let h = Harness::start(SimConfig::default()).await;
    let mut spec = object("drifty", "rg-drift", "Deployment", "Delete", "drift1");
    spec["spec"]["syncInterval"] = json!("1s");
    h.create(spec).await;
    h.wait_ready("drifty").await;
    let id = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/drift1",
        h.resource_group_id("rg-drift")
    );
    assert_eq!(h.sim.created_count(&id), 1);

    // Someone deletes the account behind the operator's back.
    let client = h.someone_else();
    if let Some(handle) = client.delete_resource_by_id(&id).await.unwrap() {
        client.wait(&handle).await.unwrap();
    }
    assert!(h.sim.resource(&id).is_none());

    wait_until_created(&h, &id).await;
    assert_eq!(h.sim.created_count(&id), 2);
    h.wait_for_event("drifty", "Normal", "DriftDetected").await;
    h.wait_ready("drifty").await;

    // A plain deployment's checks are the what-if alone: its record is never read.
    let records_read = h.sim.counters().route("GET deployments");
    let checks = h.sim.counters().route("POST deployments/whatIf");
    let writes = h.arm_writes();
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.sim.counters().route("POST deployments/whatIf") < checks + 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than 3 checks"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h.sim.counters().route("GET deployments"), records_read);
    assert_eq!(h.arm_writes(), writes, "a check wrote to ARM");

    // The whole resource group is deleted: the what-if is refused, the group and the
    // account are created again.
    let group = h.resource_group_id("rg-drift");
    let subscription = group.split('/').nth(2).unwrap().to_owned();
    if let Some(handle) = client
        .delete_resource_group(&subscription, "rg-drift")
        .await
        .unwrap()
    {
        client.wait(&handle).await.unwrap();
    }
    assert!(h.sim.resource(&id).is_none());
    wait_until_created(&h, &id).await;
    assert_eq!(h.sim.created_count(&id), 3);
    h.wait_ready("drifty").await;
    h.stop().await;
}

/// Waits until the resource `id` exists in armsim again.
async fn wait_until_created(h: &Harness, id: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.sim.resource(id).is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} was not created again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn adopting(name: &str, id: &str) -> Value {
    json!({
        "apiVersion": "azure-driver.io/v1alpha1",
        "kind": "AzureResource",
        "metadata": {"name": name},
        "spec": {"adopt": {"id": id}}
    })
}

/// What the Python azure-driver left behind (a plain deployment and a resource group) is
/// taken over by id: reported Ready with its resources, deleted with the object, and
/// nothing is ever deployed for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adopted_deployments_and_resource_groups_are_observed_then_deleted() {
    let h = Harness::start(SimConfig::default()).await;
    // A deployment nobody manages any more: deployed, then orphaned.
    h.create(object(
        "legacy",
        "rg-legacy",
        "Deployment",
        "Orphan",
        "legacyacct",
    ))
    .await;
    let legacy = h.wait_ready("legacy").await;
    let deployment_id = legacy.status.unwrap().deployment.unwrap().id.unwrap();
    h.delete("legacy").await;
    h.wait_gone("legacy").await;
    assert_eq!(h.inventory_under("rg-legacy").len(), 1);
    let group_id = h.resource_group_id("rg-legacy");

    let writes_before = h.arm_writes();
    h.create(adopting("adopt-deployment", &deployment_id)).await;
    h.create(adopting("adopt-group", &group_id)).await;
    h.create(adopting(
        "adopt-missing",
        &h.resource_group_id("rg-never-existed"),
    ))
    .await;
    let adopted = h.wait_ready("adopt-deployment").await;
    let status = adopted.status.unwrap();
    assert_eq!(status.resources, h.inventory_under("rg-legacy"));
    assert!(
        status.outputs["accountId"]
            .as_str()
            .unwrap()
            .ends_with("/legacyacct")
    );
    let group = h.wait_ready("adopt-group").await;
    assert_eq!(group.status.unwrap().resources, vec![group_id.clone()]);
    let missing = h
        .wait_for("adopt-missing", "Failed", |o| {
            phase(o) == Some(Phase::Failed)
        })
        .await;
    assert_eq!(
        missing.status.unwrap().error.unwrap().code,
        "ResourceNotFound"
    );
    h.wait_for_event("adopt-missing", "Warning", "ResourceNotFound")
        .await;
    assert_eq!(h.arm_writes(), writes_before, "adopting wrote to ARM");

    // Deleting the deployment's object deletes the resources it created and its record.
    h.delete("adopt-deployment").await;
    h.wait_gone("adopt-deployment").await;
    assert!(h.inventory_under("rg-legacy").is_empty());
    assert_eq!(
        h.sim.counters().by_route.get("DELETE deployments"),
        Some(&1),
        "the deployment record is deleted once"
    );
    assert!(h.sim.resource(&group_id).is_some());
    // Deleting the group's object deletes the group; a missing one is simply gone.
    h.delete("adopt-group").await;
    h.delete("adopt-missing").await;
    h.wait_gone("adopt-group").await;
    h.wait_gone("adopt-missing").await;
    assert!(h.sim.resource(&group_id).is_none());
    h.stop().await;
}

/// A change made while ARM still deploys the previous spec is deployed as soon as that
/// deployment ends, and only then is the object Ready for its generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_during_a_deployment_is_deployed_when_it_ends() {
    let mut config = SimConfig::default();
    config.latency.running_ms = 4000;
    let h = Harness::start(config).await;
    h.create(object(
        "moving",
        "rg-moving",
        "Deployment",
        "Delete",
        "firstacct",
    ))
    .await;
    h.wait_for("moving", "Deploying", |o| {
        phase(o) == Some(Phase::Deploying)
    })
    .await;
    let changed = h
        .api()
        .patch(
            "moving",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"parameters": {"name": "secondacct"}}})),
        )
        .await
        .unwrap();
    let ready = h
        .wait_for("moving", "Ready for the changed spec", |o| {
            phase(o) == Some(Phase::Ready)
                && o.status.as_ref().unwrap().observed_generation == changed.metadata.generation
        })
        .await;
    let account = ready.status.unwrap().outputs["accountId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(account.ends_with("/secondacct"), "{account}");
    h.stop().await;
}

/// `mode: Complete` (Deployment engine): a resource the template no longer declares is
/// deleted from the resource group by ARM; in Incremental mode it would stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn complete_mode_removes_what_the_template_no_longer_declares() {
    let h = Harness::start(SimConfig::default()).await;
    let two_accounts = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"names": {"type": "array"}},
        "resources": [{
            "type": "Microsoft.Storage/storageAccounts",
            "apiVersion": "2023-01-01",
            "name": "[parameters('names')[copyIndex()]]",
            "copy": {"name": "accounts", "count": "[length(parameters('names'))]"},
            "location": "westeurope",
            "sku": {"name": "Standard_LRS"},
            "kind": "StorageV2",
            "properties": {}
        }]
    });
    let mut object = json!({
        "apiVersion": "azure-driver.io/v1alpha1",
        "kind": "AzureResource",
        "metadata": {"name": "complete"},
        "spec": {
            "resourceGroup": "rg-complete",
            "location": "westeurope",
            "engine": "Deployment",
            "mode": "Complete",
            "template": {"json": two_accounts},
            "parameters": {"names": ["keepacct", "dropacct"]}
        }
    });
    h.create(object.clone()).await;
    h.wait_ready("complete").await;
    assert_eq!(h.inventory_under("rg-complete").len(), 2);
    object["spec"]["parameters"]["names"] = json!(["keepacct"]);
    let changed = h
        .api()
        .patch(
            "complete",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": object["spec"]})),
        )
        .await
        .unwrap();
    h.wait_for("complete", "Ready for the smaller template", |o| {
        phase(o) == Some(Phase::Ready)
            && o.status.as_ref().unwrap().observed_generation == changed.metadata.generation
    })
    .await;
    let left = h.inventory_under("rg-complete");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with("/keepacct"), "{left:?}");
    h.stop().await;
}

fn drift_of(o: &AzureResource) -> Option<crds::DriftStatus> {
    o.status.as_ref().and_then(|s| s.drift.clone())
}

fn condition<'a>(o: &'a AzureResource, type_: &str) -> Option<&'a Condition> {
    o.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
}

/// Someone changes the storage account's SKU in Azure: with `driftPolicy: Report` the
/// next check shows `sku.name` with before and after in `status.drift`, the `Drifted`
/// condition and one Warning, and writes nothing to ARM; switched to `Correct`, one
/// deployment puts the declared SKU back and the next check finds no drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_out_of_band_change_is_reported_then_corrected() {
    let h = Harness::start(SimConfig::default()).await;
    let mut spec = object("modified", "rg-modified", "Stack", "Delete", "modacct1");
    spec["spec"]["syncInterval"] = json!("1s");
    h.create(spec).await;
    h.wait_ready("modified").await;
    h.wait_for("modified", "a first drift check", |o| {
        drift_of(o).is_some_and(|d| d.summary == "None")
    })
    .await;
    let id = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/modacct1",
        h.resource_group_id("rg-modified")
    );
    let mut changed = h.sim.resource(&id).expect("the account exists");
    changed["sku"]["name"] = json!("Standard_GRS");
    h.someone_else()
        .put_resource_by_id(&id, &changed)
        .await
        .unwrap();
    let puts_before = h.sim.counters().route("PUT deploymentStacks");

    let reported = h
        .wait_for("modified", "sku.name in status.drift", |o| {
            drift_of(o).is_some_and(|d| d.summary == "Modify=1")
        })
        .await;
    let drift = drift_of(&reported).unwrap();
    assert!(drift.last_check_time.is_some());
    assert_eq!(drift.counts.modify, 1);
    let resource = &drift.resources[0];
    assert!(resource.id.eq_ignore_ascii_case(&id), "{resource:?}");
    assert_eq!(resource.change_type, "Modify");
    assert_eq!(resource.properties.len(), 1, "{resource:?}");
    let property = &resource.properties[0];
    assert_eq!(property.path, "sku.name");
    assert_eq!(property.before, Some(json!("Standard_GRS")));
    assert_eq!(property.after, Some(json!("Standard_LRS")));
    let drifted = condition(&reported, "Drifted").expect("a Drifted condition");
    assert_eq!(
        (drifted.status.as_str(), drifted.reason.as_str()),
        ("True", "Drifted")
    );
    assert!(drifted.message.contains("sku.name"), "{}", drifted.message);
    h.wait_for_event("modified", "Warning", "Drifted").await;
    // Several more checks under Report: still reported, nothing deployed, one Event.
    let checks = h.sim.counters().route("POST deployments/whatIf");
    let deadline = tokio::time::Instant::now() + WAIT;
    while h.sim.counters().route("POST deployments/whatIf") < checks + 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than 3 more checks"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(h.sim.counters().route("PUT deploymentStacks"), puts_before);
    assert_eq!(h.sim.resource(&id).unwrap()["sku"]["name"], "Standard_GRS");
    let warnings = h
        .events_for("modified")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Drifted"))
        .count();
    assert_eq!(warnings, 1, "one Event per new drift");

    h.api()
        .patch(
            "modified",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"driftPolicy": "Correct"}})),
        )
        .await
        .unwrap();
    let corrected = h
        .wait_for("modified", "the drift corrected and checked again", |o| {
            drift_of(o).is_some_and(|d| d.summary == "None")
        })
        .await;
    assert_eq!(h.sim.resource(&id).unwrap()["sku"]["name"], "Standard_LRS");
    assert_eq!(
        h.sim.counters().route("PUT deploymentStacks"),
        puts_before + 1,
        "one deployment corrects the drift"
    );
    let in_sync = condition(&corrected, "Drifted").unwrap();
    assert_eq!(
        (in_sync.status.as_str(), in_sync.reason.as_str()),
        ("False", "InSync")
    );
    assert_eq!(phase(&corrected), Some(Phase::Ready));
    h.stop().await;
}

/// An object nobody touches shows no drift, check after check, and causes no ARM write and
/// no apiserver write (a check that finds what the last one found writes nothing); the
/// check-drift annotation runs a check on demand when re-checking is off.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_untouched_object_shows_no_drift_over_several_intervals() {
    let h = Harness::start(SimConfig::default()).await;
    let mut spec = object("calm", "rg-calm", "Deployment", "Delete", "calmacct1");
    spec["spec"]["syncInterval"] = json!("1s");
    h.create(spec).await;
    h.wait_ready("calm").await;
    let first = h
        .wait_for("calm", "the in-sync report", |o| drift_of(o).is_some())
        .await;
    let writes = h.arm_writes();
    let what_ifs = || h.sim.counters().route("POST deployments/whatIf");
    let checks_before = what_ifs();
    let deadline = tokio::time::Instant::now() + WAIT;
    while what_ifs() < checks_before + 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no further drift checks"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = h.api().get("calm").await.unwrap();
    assert_eq!(
        o.metadata.resource_version, first.metadata.resource_version,
        "a check that found nothing new wrote the object"
    );
    let drift = drift_of(&o).unwrap();
    assert_eq!(drift.summary, "None", "{drift:?}");
    assert!(drift.resources.is_empty());
    assert_eq!(drift.counts.no_change, 1, "{drift:?}");
    let drifted = condition(&o, "Drifted").unwrap();
    assert_eq!(
        (drifted.status.as_str(), drifted.reason.as_str()),
        ("False", "InSync")
    );
    assert_eq!(h.arm_writes(), writes, "a drift check wrote to ARM");
    assert!(
        !h.events_for("calm")
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some("Drifted")
                || e.reason.as_deref() == Some("DriftDetected")),
    );

    h.api()
        .patch(
            "calm",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {crds::CHECK_DRIFT_ANNOTATION: "now-1"}},
                "spec": {"syncInterval": "0"}
            })),
        )
        .await
        .unwrap();
    h.wait_for("calm", "the requested check", |o| {
        drift_of(o).is_some_and(|d| d.check_request.as_deref() == Some("now-1"))
    })
    .await;
    assert_eq!(h.arm_writes(), writes);
    h.stop().await;
}

/// A leader whose lease another replica took stops writing to ARM at once, although its
/// lease manager notices only at its next renewal (or, cut off from the apiserver, never):
/// the old and the new leader never write at the same time.
#[tokio::test]
async fn a_leader_that_lost_its_lease_stops_arm_writes() {
    let h = Harness::start_with(SimConfig::default(), Some("leader-1")).await;
    h.create(object(
        "before",
        "rg-lease",
        "Stack",
        "Delete",
        "acctlease1",
    ))
    .await;
    h.wait_ready("before").await;

    let leases: Api<Lease> = Api::namespaced(h.client.clone(), &h.namespace);
    leases
        .patch(
            "azure-driver-controller",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "holderIdentity": "intruder",
                "renewTime": MicroTime(Timestamp::now()),
                "leaseDurationSeconds": 30
            }})),
        )
        .await
        .unwrap();
    // Longer than the lease tracker's period (a tenth of the lease), far shorter than the
    // 20 s until the lease manager renews.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let writes = h.arm_writes();
    h.create(object("after", "rg-lease", "Stack", "Delete", "acctlease2"))
        .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        h.arm_writes(),
        writes,
        "the replica wrote to ARM after another took its lease"
    );
    let after = h.api().get("after").await.unwrap();
    assert_ne!(phase(&after), Some(Phase::Ready));
    h.stop().await;
}
