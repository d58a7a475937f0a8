//! The product as users run it: the image built from the Dockerfile, installed with Helm
//! on a real node (containerd, kubelet, kube-proxy), the shim reached through its ClusterIP
//! Service over TLS as Brent reaches it, ARM played by armsim and Kafka by librdkafka's mock
//! broker, both listening on the host address the pods reach; the apiserver calls the
//! chart's admission webhook through its Service. Prints the node's timings (image build,
//! node start, pod start-to-Ready, leader hand-over).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use azure_driver_shim::kafka::{ResultMessage, ResultStatus};
use crds::{AzureResource, Phase};
use e2e::admission::{
    BROKEN_BICEP, VALID_BICEP, apply_until_refused, assert_refused_with_position, kubectl_apply,
    manifest,
};
use e2e::process::{ArmsimProcess, built_binaries, run};
use e2e::shim::{AdvertisedKafka, MockKafka};
use e2e::{Node, TestNamespace};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use serde_json::{Value, json};

const RELEASE: &str = "azure-driver";
const SHIM_PORT: u16 = 7275;
const SUBSCRIPTION: &str = "00000000-0000-0000-0000-0000000000ee";
const EXECUTE: &str = "/api/driver/lifecycle/execute";
const READY_WITHIN: Duration = Duration::from_secs(240);
const RESULT_WITHIN: Duration = Duration::from_secs(180);
const SHIM_PODS: &str = "app.kubernetes.io/component=driver-api";
const CONTROLLER_PODS: &str = "app.kubernetes.io/component=controller";
const ADMISSION_PODS: &str = "app.kubernetes.io/component=admission";
/// The legacy values file asks 2 CPUs for the shim: the whole of this node. Its documented
/// override key leaves room for the controller.
const SHIM_CPU_REQUEST: &str = "resources.requests.cpu=250m";

/// What the pods talk to, listening on the host address of the node's network: armsim as
/// ARM and its token authority, the mock Kafka cluster for results.
struct Doubles {
    armsim: ArmsimProcess,
    kafka: MockKafka,
    advertised: AdvertisedKafka,
    _tls_dir: tempfile::TempDir,
}

impl Doubles {
    async fn start(node: &Node) -> Self {
        let bin = built_binaries(&["armsim"], &[]);
        let tls_dir = tempfile::tempdir().unwrap();
        let armsim = ArmsimProcess::start_on(&bin, tls_dir.path(), node.host_address());
        let kafka = MockKafka::start();
        let advertised = AdvertisedKafka::start(&kafka, node.host_address())
            .await
            .expect("the Kafka listener binds on the host address");
        Self {
            armsim,
            kafka,
            advertised,
            _tls_dir: tls_dir,
        }
    }

    /// `helm` arguments pointing a release in `namespace` at the node's image and at these
    /// doubles.
    fn helm_values(&self, node: &Node, namespace: &str) -> Vec<String> {
        let (repository, tag) = node.image().rsplit_once(':').expect("the image has a tag");
        let mut args = Vec::new();
        for value in [
            format!("docker.image={repository}"),
            format!("docker.version={tag}"),
            format!(
                "app.config.override.messaging.connection_address={}",
                self.advertised.bootstrap_servers()
            ),
            format!("azure.resourceManagerEndpoint={}", self.armsim.endpoint),
            format!("azure.authorityHost={}", self.armsim.endpoint),
            // Other tests' releases share the node: each controller keeps to its namespace,
            // and so does each admission webhook.
            format!("controller.watchNamespaces={{{namespace}}}"),
            format!(
                "admission.namespaceSelector.matchLabels.{}={namespace}",
                e2e::NAMESPACE_NAME_LABEL.replace('.', "\\.")
            ),
        ] {
            args.push("--set".to_owned());
            args.push(value);
        }
        args.push("--set-file".to_owned());
        args.push(format!("azure.caBundle={}", self.armsim.ca_file.display()));
        args
    }
}

fn helm(node: &Node, namespace: &str, args: &[&str], values: &[String]) -> Command {
    let mut command = Command::new(e2e::deploy_tools().join("helm"));
    command
        .args(args)
        .args([
            RELEASE,
            "deploy/helm/azure-driver",
            "--namespace",
            namespace,
        ])
        .arg("--kubeconfig")
        .arg(node.kubeconfig_path())
        .args(values)
        .current_dir(e2e::repo_root());
    command
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|status| status.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
}

/// Seconds from the pod's creation to its Ready condition.
fn start_to_ready(pod: &Pod) -> i64 {
    let created = pod.metadata.creation_timestamp.as_ref().expect("created");
    let ready = pod
        .status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Ready"))
        .and_then(|c| c.last_transition_time.as_ref())
        .expect("a Ready pod has a Ready condition");
    ready.0.as_second() - created.0.as_second()
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().expect("pods have names")
}

/// Waits until exactly `count` pods match `selector`, none of them terminating or in
/// `gone`, all Ready; panics with their state and the kubelet's last lines otherwise.
async fn ready_pods(
    node: &Node,
    namespace: &str,
    selector: &str,
    count: usize,
    gone: &HashSet<String>,
) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(node.client(), namespace);
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        let listed = pods
            .list(&ListParams::default().labels(selector))
            .await
            .expect("pods are listed")
            .items;
        let current: Vec<Pod> = listed
            .iter()
            .filter(|pod| !gone.contains(&name(pod)) && pod.metadata.deletion_timestamp.is_none())
            .cloned()
            .collect();
        if current.len() == count && current.iter().all(is_ready) && listed.len() == current.len() {
            return current;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = listed
                .iter()
                .map(|pod| format!("{}:\n{}", name(pod), pod_log_tail(namespace, &name(pod))))
                .collect();
            panic!(
                "{selector} in {namespace}: not {count} Ready pods within {READY_WITHIN:?}: {:#?}\nkubelet:\n{}\ncontainer logs:\n{}",
                listed
                    .iter()
                    .map(|p| (&p.metadata.name, &p.status))
                    .collect::<Vec<_>>(),
                last_lines(&node.log_dir().join("kubelet.log")),
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The last lines of a file, for failure messages.
fn last_lines(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The last lines each container of the pod logged (the kubelet keeps them in
/// /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log).
fn pod_log_tail(namespace: &str, pod: &str) -> String {
    let prefix = format!("{namespace}_{pod}_");
    let mut tails = Vec::new();
    for pod_dir in std::fs::read_dir("/var/log/pods")
        .into_iter()
        .flatten()
        .flatten()
    {
        if !pod_dir.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        for container in std::fs::read_dir(pod_dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for log in std::fs::read_dir(container.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                tails.push(format!(
                    "{}:\n{}",
                    log.path().display(),
                    last_lines(&log.path())
                ));
            }
        }
    }
    tails.join("\n")
}

/// Every container of `pods` runs as a non-root user on a read-only root filesystem, with
/// the service account token mounted and no kubeconfig: it reaches the apiserver through
/// in-cluster configuration (the `kubernetes` Service).
fn assert_hardened_in_cluster(node: &Node, pods: &[Pod]) {
    for pod in pods {
        for status in pod
            .status
            .as_ref()
            .and_then(|status| status.container_statuses.as_ref())
            .expect("a Ready pod has container statuses")
        {
            let id = status
                .container_id
                .as_deref()
                .and_then(|id| id.strip_prefix("containerd://"))
                .expect("containerd runs the containers");
            let process = node.container_process(id).expect("the container's process");
            let who = format!("{}/{}", name(pod), status.name);
            assert!(
                !process.uids.is_empty() && process.uids.iter().all(|uid| *uid != 0),
                "{who} runs as root: {process:?}"
            );
            assert!(
                process.read_only_root,
                "{who}: root filesystem writable: {process:?}"
            );
            assert!(
                process
                    .mounts
                    .iter()
                    // /var/run is a link to /run in the Debian image
                    .any(|m| m.ends_with("/run/secrets/kubernetes.io/serviceaccount")),
                "{who}: no service account token: {process:?}"
            );
            assert!(
                process
                    .environment
                    .iter()
                    .any(|e| e == "KUBERNETES_SERVICE_HOST=10.96.0.1"),
                "{who}: not told the kubernetes Service: {process:?}"
            );
            assert!(
                !process
                    .environment
                    .iter()
                    .any(|e| e.starts_with("KUBECONFIG=")),
                "{who}: has a kubeconfig: {process:?}"
            );
        }
    }
}

/// Brent as registered with lmctl: `https://azure-driver:7275` with the chart's certificate
/// (`tls.crt`) as the one it trusts, the name resolving to the shim Service's ClusterIP.
/// curl, as OpenSSL verifies it: the registered certificate itself is the trust anchor,
/// as in Brent's trust store.
struct Brent {
    certificate: Vec<u8>,
    certificate_file: tempfile::NamedTempFile,
    service: SocketAddr,
}

impl Brent {
    async fn connect(node: &Node, namespace: &str) -> Self {
        let secrets: Api<Secret> = Api::namespaced(node.client(), namespace);
        let certificate = secrets
            .get("azure-driver-tls")
            .await
            .expect("the chart's TLS Secret exists")
            .data
            .and_then(|data| data.get("tls.crt").cloned())
            .expect("the Secret holds tls.crt")
            .0;
        let certificate_file = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(certificate_file.path(), &certificate).expect("the certificate is written");
        Self {
            certificate,
            certificate_file,
            service: shim_service(node, namespace).await,
        }
    }

    /// POSTs a lifecycle request on a connection of its own; the status and body, or why
    /// there was no answer.
    async fn execute(&self, body: &Value) -> Result<(u16, Value), String> {
        let output = tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "30", "--cacert"])
            .arg(self.certificate_file.path())
            .arg("--resolve")
            .arg(format!("{RELEASE}:{SHIM_PORT}:{}", self.service.ip()))
            .args(["--header", "content-type: application/json"])
            .args(["--header", "tenantId: e2e"])
            .arg("--data-binary")
            .arg(body.to_string())
            .args(["--write-out", "\n%{http_code}"])
            .arg(format!("https://{RELEASE}:{SHIM_PORT}{EXECUTE}"))
            .output()
            .await
            .expect("curl runs");
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let (answer, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        let status = status.trim().parse().map_err(|_| stdout.to_string())?;
        Ok((status, serde_json::from_str(answer).unwrap_or(Value::Null)))
    }

    /// Sends `body`, expects 202 and returns the request id.
    async fn accepted(&self, body: &Value) -> String {
        let (status, answer) = self.execute(body).await.expect("the shim answers");
        assert_eq!(status, 202, "{answer}");
        answer["requestId"]
            .as_str()
            .expect("a requestId")
            .to_owned()
    }
}

fn resource_group_request(lifecycle: &str, id: &str, group: &str) -> Value {
    e2e::shim::resource_group_request(
        lifecycle,
        id,
        group,
        json!({"name": "azure-e2e", "type": "Azure", "properties": {
            "tenantId": "tenant-e2e", "clientId": "client-e2e", "clientSecret": "secret-e2e",
            "subscriptionId": SUBSCRIPTION}}),
    )
}

/// Results read from Kafka until every id in `expected` has one and no more arrive for a
/// few seconds; every message by request id.
async fn results(
    consumer: &StreamConsumer,
    expected: &HashSet<String>,
) -> BTreeMap<String, Vec<ResultMessage>> {
    let mut seen: BTreeMap<String, Vec<ResultMessage>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + RESULT_WITHIN;
    loop {
        let all_in = expected.iter().all(|id| seen.contains_key(id));
        let wait_until = if all_in {
            // Anything published twice would follow closely.
            tokio::time::Instant::now() + Duration::from_secs(5)
        } else {
            deadline
        };
        match tokio::time::timeout_at(wait_until, consumer.recv()).await {
            Err(_) if all_in => return seen,
            Err(_) => panic!(
                "no result within {RESULT_WITHIN:?} for {:?}",
                expected
                    .iter()
                    .filter(|id| !seen.contains_key(*id))
                    .collect::<Vec<_>>()
            ),
            Ok(Err(_)) => continue,
            Ok(Ok(message)) => {
                let result: ResultMessage =
                    serde_json::from_slice(message.payload().expect("a payload"))
                        .expect("a result message");
                seen.entry(result.request_id.clone())
                    .or_default()
                    .push(result);
            }
        }
    }
}

/// Every request in `expected` has exactly one result, COMPLETE.
fn assert_completed_once(seen: &BTreeMap<String, Vec<ResultMessage>>, expected: &HashSet<String>) {
    for id in expected {
        let results = &seen[id];
        assert_eq!(results.len(), 1, "{id}: {results:?}");
        assert_eq!(results[0].status, ResultStatus::Complete, "{results:?}");
    }
}

/// A Brent Create and then Delete of one resource group, both COMPLETE on Kafka.
async fn create_and_delete(brent: &Brent, consumer: &StreamConsumer, id: &str, group: &str) {
    for lifecycle in ["Create", "Delete"] {
        let request = brent
            .accepted(&resource_group_request(lifecycle, id, group))
            .await;
        let expected = HashSet::from([request]);
        assert_completed_once(&results(consumer, &expected).await, &expected);
    }
}

fn report_node(node: &Node) {
    println!(
        "node: image ready in {:.1} s, cluster with a Ready node in {:.1} s",
        node.image_build_time().as_secs_f64(),
        node.start_time().as_secs_f64()
    );
}

fn report_ready(what: &str, pods: &[Pod]) {
    for pod in pods {
        println!(
            "{what}: pod {} Ready {} s after creation",
            name(pod),
            start_to_ready(pod)
        );
    }
}

fn pod_names(pods: &[Pod]) -> HashSet<String> {
    pods.iter().map(name).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_values_install_serves_brent_through_the_service_and_upgrades_in_place() {
    let node = Node::shared().await;
    report_node(node);
    let doubles = Doubles::start(node).await;
    let namespace = TestNamespace::create(node).await;
    let ns = namespace.name();
    let mut values = doubles.helm_values(node, ns);
    values.extend([
        "--values".to_owned(),
        "deploy/helm/azure-driver/ci/legacy-values.yaml".to_owned(),
        "--set".to_owned(),
        SHIM_CPU_REQUEST.to_owned(),
    ]);
    run(helm(node, ns, &["install"], &values));
    let none = HashSet::new();
    let shim = ready_pods(node, ns, SHIM_PODS, 1, &none).await;
    let controller = ready_pods(node, ns, CONTROLLER_PODS, 1, &none).await;
    report_ready(
        "legacy install",
        &[shim.clone(), controller.clone()].concat(),
    );
    assert_hardened_in_cluster(node, &[shim.clone(), controller.clone()].concat());

    let consumer = doubles.kafka.consumer("brent");
    let brent = Brent::connect(node, ns).await;
    create_and_delete(
        &brent,
        &consumer,
        "0d0e0f10-0000-4000-8000-000000000001",
        "node-rg-1",
    )
    .await;

    // An upgrade that changes the pods' configuration rolls them and keeps the certificate
    // lmctl was registered with.
    values.extend(["--set".to_owned(), "app.config.log.level=DEBUG".to_owned()]);
    run(helm(node, ns, &["upgrade"], &values));
    let old = pod_names(&[shim, controller].concat());
    let shim = ready_pods(node, ns, SHIM_PODS, 1, &old).await;
    let controller = ready_pods(node, ns, CONTROLLER_PODS, 1, &old).await;
    report_ready(
        "after helm upgrade",
        &[shim.clone(), controller.clone()].concat(),
    );
    let upgraded = Brent::connect(node, ns).await;
    assert_eq!(
        upgraded.certificate, brent.certificate,
        "helm upgrade replaced the TLS certificate"
    );
    create_and_delete(
        &brent,
        &consumer,
        "0d0e0f10-0000-4000-8000-000000000002",
        "node-rg-2",
    )
    .await;
    webhook_checks_applies_through_its_service(node, &doubles, ns).await;
}

/// The chart's admission webhook (on by default) is called by the node's apiserver through
/// its ClusterIP Service: `kubectl apply` refuses invalid Bicep with main.bicep:LINE:COL
/// and admits a valid object; with the webhook's pods gone, objects are still admitted
/// (`failurePolicy: Ignore`) and deleted.
async fn webhook_checks_applies_through_its_service(node: &Node, doubles: &Doubles, ns: &str) {
    let webhook = ready_pods(node, ns, ADMISSION_PODS, 2, &HashSet::new()).await;
    report_ready("admission webhook", &webhook);
    let broken = manifest("broken", ns, BROKEN_BICEP, "{name: brokenacct}");
    let stderr = apply_until_refused(node, &broken, "broken", ns, READY_WITHIN).await;
    assert_refused_with_position(&stderr);
    let objects: Api<AzureResource> = Api::namespaced(node.client(), ns);
    wait_until_gone(&objects, "broken").await;

    let secrets: Api<Secret> = Api::namespaced(node.client(), ns);
    let credentials: Secret = serde_json::from_value(json!({
        "metadata": {"name": "azure-credentials"},
        "stringData": {
            "tenantId": "11111111-1111-1111-1111-111111111111",
            "clientId": "22222222-2222-2222-2222-222222222222",
            "clientSecret": "not-a-real-secret",
            "subscriptionId": SUBSCRIPTION
        }
    }))
    .expect("a Secret");
    secrets
        .create(&PostParams::default(), &credentials)
        .await
        .expect("the credentials Secret is created");
    let valid = manifest("valid", ns, VALID_BICEP, "{name: nodeadmitted}");
    let output = kubectl_apply(node, &valid);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        let object = objects.get("valid").await.expect("the object exists");
        if object.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready) {
            break;
        }
        assert!(Instant::now() < deadline, "not Ready: {:?}", object.status);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The webhook stops: nothing answers behind its Service.
    let mut scale = node.kubectl();
    scale.args([
        "scale",
        "deployment",
        "-n",
        ns,
        "-l",
        ADMISSION_PODS,
        "--replicas=0",
    ]);
    run(scale);
    let pods: Api<Pod> = Api::namespaced(node.client(), ns);
    let deadline = Instant::now() + READY_WITHIN;
    while !pods
        .list(&ListParams::default().labels(ADMISSION_PODS))
        .await
        .expect("pods are listed")
        .items
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the webhook's pods did not stop");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let unchecked = kubectl_apply(node, &broken);
    assert!(
        unchecked.status.success(),
        "not admitted without the webhook: {}",
        String::from_utf8_lossy(&unchecked.stderr)
    );
    for name in ["broken", "valid"] {
        objects
            .delete(name, &DeleteParams::default())
            .await
            .expect("the object is deleted");
    }
    for name in ["broken", "valid"] {
        wait_until_gone(&objects, name).await;
    }
    // Nothing of the refused object reached Azure; the valid one was created and removed.
    let touched = |group: &str| {
        let group = format!("/resourcegroups/{group}");
        move |event: &Value| {
            event["id"].as_str().is_some_and(|id| {
                let id = id.to_ascii_lowercase();
                id.ends_with(&group) || id.contains(&format!("{group}/"))
            })
        }
    };
    let events = armsim_events(doubles).await;
    assert!(!events.iter().any(touched("rg-broken")), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "deleted" && touched("rg-valid")(e)),
        "{events:?}"
    );
}

async fn wait_until_gone(objects: &Api<AzureResource>, name: &str) {
    let deadline = Instant::now() + READY_WITHIN;
    while objects
        .get_opt(name)
        .await
        .expect("the object is read")
        .is_some()
    {
        assert!(Instant::now() < deadline, "{name} was not deleted");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_lose_nothing_when_a_shim_pod_or_the_leading_controller_is_deleted() {
    let node = Node::shared().await;
    let doubles = Doubles::start(node).await;
    let namespace = TestNamespace::create(node).await;
    let ns = namespace.name();
    let mut values = doubles.helm_values(node, ns);
    values.extend(
        ["app.replicas=2", "controller.replicas=2"]
            .into_iter()
            .flat_map(|value| ["--set".to_owned(), value.to_owned()]),
    );
    run(helm(node, ns, &["install"], &values));
    let none = HashSet::new();
    let shims = ready_pods(node, ns, SHIM_PODS, 2, &none).await;
    let controllers = ready_pods(node, ns, CONTROLLER_PODS, 2, &none).await;
    report_ready(
        "2+2 replicas",
        &[shims.clone(), controllers.clone()].concat(),
    );
    assert_hardened_in_cluster(node, &[shims.clone(), controllers.clone()].concat());
    let consumer = doubles.kafka.consumer("brent");
    let brent = Brent::connect(node, ns).await;
    let pods: Api<Pod> = Api::namespaced(node.client(), ns);

    // A stream of Creates over new connections, spread over both shim pods by kube-proxy;
    // one shim pod is deleted while they flow. Every accepted request must get its result.
    const CREATES: usize = 40;
    let victim = name(&shims[0]);
    let mut accepted = HashSet::new();
    let mut refused = Vec::new();
    let mut in_flight = tokio::task::JoinSet::new();
    let brent = std::sync::Arc::new(brent);
    for i in 0..CREATES {
        if i == CREATES / 2 {
            pods.delete(&victim, &DeleteParams::default())
                .await
                .expect("the shim pod is deleted");
        }
        let one = brent.clone();
        in_flight.spawn(async move {
            let body = resource_group_request(
                "Create",
                &format!("0d0e0f10-0000-4000-8000-1000000000{i:02}"),
                &format!("node-ha-{i}"),
            );
            one.execute(&body).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while let Some(outcome) = in_flight.join_next().await {
        match outcome.expect("the request task completes") {
            Ok((202, answer)) => {
                accepted.insert(answer["requestId"].as_str().unwrap().to_owned());
            }
            // Not accepted (the pod was going away): Brent retries these; nothing is owed.
            Ok((status, answer)) => {
                assert!(status >= 500, "{status} {answer}");
                refused.push(format!("{status} {answer}"));
            }
            Err(error) => refused.push(error.trim().to_owned()),
        }
    }
    println!(
        "shim pod {victim} deleted mid-stream: {} of {CREATES} Creates accepted, {} not: {refused:?}",
        accepted.len(),
        refused.len()
    );
    assert!(
        accepted.len() >= CREATES / 2,
        "too few accepted: {}",
        accepted.len()
    );
    assert_completed_once(&results(&consumer, &accepted).await, &accepted);

    // The leading controller goes away: another replica takes the Lease and reconciles
    // what is created afterwards; nothing reconciled before is done again.
    let leases: Api<Lease> = Api::namespaced(node.client(), ns);
    let holder = |lease: Lease| lease.spec.and_then(|spec| spec.holder_identity);
    let leader = holder(
        leases
            .get("azure-driver-controller")
            .await
            .expect("a Lease"),
    )
    .expect("a leader holds the Lease");
    assert!(
        pod_names(&controllers).contains(&leader),
        "the leader {leader} is one of the controller pods"
    );
    // Creates accepted just before the leader goes are reconciled by its successor
    // (or finished by the leader while it drains); those after the hand-over too.
    const AROUND: usize = 15;
    let create = |i: usize| {
        resource_group_request(
            "Create",
            &format!("0d0e0f10-0000-4000-8000-2000000000{i:02}"),
            &format!("node-lead-{i}"),
        )
    };
    let mut around = HashSet::new();
    for i in 0..AROUND - 5 {
        around.insert(brent.accepted(&create(i)).await);
    }
    pods.delete(&leader, &DeleteParams::default())
        .await
        .expect("the leader pod is deleted");
    let deleted_at = Instant::now();
    let new_leader = loop {
        let current = holder(
            leases
                .get("azure-driver-controller")
                .await
                .expect("a Lease"),
        );
        if let Some(current) = current.filter(|current| *current != leader) {
            break current;
        }
        assert!(
            deleted_at.elapsed() < READY_WITHIN,
            "the Lease did not move from {leader}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "controller leader {leader} deleted: {new_leader} holds the Lease after {:.1} s",
        deleted_at.elapsed().as_secs_f64()
    );
    for i in AROUND - 5..AROUND {
        around.insert(brent.accepted(&create(i)).await);
    }
    assert_completed_once(&results(&consumer, &around).await, &around);
    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    for event in armsim_events(&doubles).await {
        if event["action"] == "created" {
            let id = event["id"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            *created.entry(id).or_default() += 1;
        }
    }
    let twice: Vec<_> = created.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "created more than once: {twice:?}");
    for i in 0..AROUND {
        let group = format!("/resourcegroups/node-lead-{i}");
        assert!(
            created.keys().any(|id| id.ends_with(&group)),
            "{group} never created"
        );
    }
    // The Deployment replaces the deleted leader with a pod that becomes Ready too.
    ready_pods(node, ns, CONTROLLER_PODS, 2, &HashSet::from([leader])).await;
}

/// The shim Service's ClusterIP and port.
async fn shim_service(node: &Node, namespace: &str) -> SocketAddr {
    let services: Api<Service> = Api::namespaced(node.client(), namespace);
    let ip = services
        .get(RELEASE)
        .await
        .expect("the shim Service exists")
        .spec
        .and_then(|spec| spec.cluster_ip)
        .expect("a ClusterIP")
        .parse()
        .expect("an IP address");
    SocketAddr::new(ip, SHIM_PORT)
}

/// armsim's event log (created / updated / deleted, oldest first).
async fn armsim_events(doubles: &Doubles) -> Vec<Value> {
    let ca = std::fs::read(&doubles.armsim.ca_file).expect("armsim wrote its CA");
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let events: Value = http
        .get(format!("{}/_armsim/events", doubles.armsim.endpoint))
        .send()
        .await
        .expect("armsim answers")
        .json()
        .await
        .expect("JSON");
    events["value"].as_array().cloned().unwrap_or_default()
}
