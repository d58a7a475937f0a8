//! The chart's RBAC on the real apiserver: what each ServiceAccount may do (nothing more
//! than listed), and the controller and the shim doing their whole job as processes that
//! authenticate with the chart's ServiceAccount tokens, not as admin.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crds::{AzureResource, Phase};
use e2e::process::{
    ArmsimProcess, KilledOnDrop, built_binaries, controller_command, first_line, run,
};
use e2e::{ControlPlane, TestNamespace};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use serde_json::{Value, json};

fn helm_install(control_plane: &ControlPlane, namespace: &str, settings: &[String]) {
    let mut helm = Command::new(e2e::deploy_tools().join("helm"));
    helm.current_dir(e2e::repo_root())
        .args([
            "install",
            "azure-driver",
            "deploy/helm/azure-driver",
            "-n",
            namespace,
        ])
        .arg("--kubeconfig")
        .arg(control_plane.kubeconfig_path());
    for setting in settings {
        helm.args(["--set", setting]);
    }
    run(helm);
}

/// (resource, resource names) → verbs, as `kubectl auth can-i --list` shows them, without
/// what every authenticated user may do (discovery, self reviews).
type Permissions = BTreeMap<(String, String), BTreeSet<String>>;

fn can_i_list(kubeconfig: &Path, namespace: &str) -> Permissions {
    let mut kubectl = Command::new("kubectl");
    kubectl
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["auth", "can-i", "--list", "-n", namespace]);
    let table = run(kubectl);
    let mut lines = table.lines();
    let header = lines.next().expect("a header line");
    let column = |name: &str| {
        header
            .find(name)
            .unwrap_or_else(|| panic!("no {name} column in {header}"))
    };
    let (urls, names, verbs) = (
        column("Non-Resource URLs"),
        column("Resource Names"),
        column("Verbs"),
    );
    let mut permissions = Permissions::new();
    for line in lines {
        let cell = |from: usize, to: usize| {
            line.get(from..to.min(line.len()))
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        let resource = cell(0, urls);
        // Rows without a resource are non-resource URLs (discovery, health).
        if resource.is_empty() || resource.starts_with("selfsubject") {
            continue;
        }
        let entry = permissions
            .entry((
                resource,
                cell(names, verbs).trim_matches(['[', ']']).to_owned(),
            ))
            .or_default();
        entry.extend(
            cell(verbs, line.len())
                .trim_matches(['[', ']'])
                .split_whitespace()
                .map(str::to_owned),
        );
    }
    permissions
}

fn expected(rows: &[(&str, &str, &str)]) -> Permissions {
    rows.iter()
        .map(|(resource, names, verbs)| {
            (
                ((*resource).to_owned(), (*names).to_owned()),
                verbs.split_whitespace().map(str::to_owned).collect(),
            )
        })
        .collect()
}

const CRD_READ: (&str, &str, &str) = (
    "customresourcedefinitions.apiextensions.k8s.io",
    "azureresources.azure-driver.io",
    "get list watch",
);
const RECONCILE: [(&str, &str, &str); 6] = [
    ("azureresources.azure-driver.io", "", "get list watch patch"),
    ("azureresources.azure-driver.io/status", "", "patch"),
    ("azureresources.azure-driver.io/finalizers", "", "update"),
    ("secrets", "", "get list watch create patch"),
    ("configmaps", "", "get list watch"),
    ("events.events.k8s.io", "", "create patch"),
];

#[tokio::test]
async fn service_accounts_have_exactly_the_listed_permissions() {
    let control_plane = ControlPlane::shared().await;
    let release = TestNamespace::create(control_plane).await;
    let watched = TestNamespace::create(control_plane).await;
    let other = TestNamespace::create(control_plane).await;
    helm_install(
        control_plane,
        release.name(),
        &[format!("controller.watchNamespaces={{{}}}", watched.name())],
    );
    let (controller, _) = control_plane
        .service_account_access(release.name(), "azure-driver-controller")
        .await
        .unwrap();
    let (shim, _) = control_plane
        .service_account_access(release.name(), "azure-driver")
        .await
        .unwrap();

    let mut in_release = expected(&RECONCILE);
    in_release.extend(expected(&[
        CRD_READ,
        ("leases.coordination.k8s.io", "", "create"),
        (
            "leases.coordination.k8s.io",
            "azure-driver-controller",
            "get patch",
        ),
    ]));
    assert_eq!(can_i_list(&controller, release.name()), in_release);
    let mut in_watched = expected(&RECONCILE);
    in_watched.extend(expected(&[CRD_READ]));
    assert_eq!(can_i_list(&controller, watched.name()), in_watched);
    assert_eq!(can_i_list(&controller, other.name()), expected(&[CRD_READ]));

    assert_eq!(
        can_i_list(&shim, release.name()),
        expected(&[
            (
                "azureresources.azure-driver.io",
                "",
                "get list watch create patch delete"
            ),
            ("secrets", "", "create patch"),
        ])
    );
    assert_eq!(can_i_list(&shim, watched.name()), Permissions::new());
}

/// Installs the chart (no leader election, plus `settings`) into a namespace of its own:
/// what the controller may do there and in another namespace.
async fn controller_permissions(settings: &[&str]) -> (Permissions, Permissions) {
    let control_plane = ControlPlane::shared().await;
    let release = TestNamespace::create(control_plane).await;
    let other = TestNamespace::create(control_plane).await;
    let mut all = vec!["controller.leaderElection.enabled=false".to_string()];
    all.extend(settings.iter().map(|setting| (*setting).to_string()));
    helm_install(control_plane, release.name(), &all);
    let (controller, _) = control_plane
        .service_account_access(release.name(), "azure-driver-controller")
        .await
        .unwrap();
    (
        can_i_list(&controller, release.name()),
        can_i_list(&controller, other.name()),
    )
}

#[tokio::test]
async fn by_default_the_controller_reconciles_in_the_release_namespace_only() {
    let (in_release, elsewhere) = controller_permissions(&[]).await;
    let mut reconcile = expected(&RECONCILE);
    reconcile.extend(expected(&[CRD_READ]));
    assert_eq!(in_release, reconcile);
    assert_eq!(elsewhere, expected(&[CRD_READ]));
}

#[tokio::test]
async fn cluster_wide_controller_reconciles_in_every_namespace_only() {
    let (in_release, elsewhere) =
        controller_permissions(&["controller.watchAllNamespaces=true"]).await;
    let mut everywhere = expected(&RECONCILE);
    everywhere.extend(expected(&[CRD_READ]));
    assert_eq!(elsewhere, everywhere);
    assert_eq!(in_release, everywhere);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Kafka broker's stdout, one JSON line per message, read on a thread of its own.
fn kafka_messages(reader: BufReader<ChildStdout>) -> std::sync::mpsc::Receiver<Value> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if let Ok(message) = serde_json::from_str::<Value>(&line)
                && sender.send(message).is_err()
            {
                return;
            }
        }
    });
    receiver
}

fn result_of(messages: &std::sync::mpsc::Receiver<Value>, request_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = messages
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no result for {request_id} on Kafka"));
        if message["value"]["requestId"] == request_id {
            return message["value"].clone();
        }
    }
}

/// POST over HTTPS, trusting only the chart's CA and checking the certificate names the
/// in-cluster service address.
fn post(ca: &Path, host: &str, port: u16, path: &str, body: &Value) -> Value {
    let mut curl = Command::new("curl");
    curl.args(["--silent", "--show-error", "--fail-with-body", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(["-H", "content-type: application/json", "--data-binary"])
        .arg(body.to_string())
        .arg(format!("https://{host}:{port}{path}"));
    serde_json::from_str(&run(curl)).expect("a JSON answer")
}

fn request(lifecycle: &str, resource_id: &str) -> Value {
    json!({
        "lifecycleName": lifecycle,
        "driverFiles": "",
        "systemProperties": {
            "resourceId": {"type": "string", "value": resource_id},
            "resourceName": {"type": "string", "value": "rg-rbac"},
            "resourceType": {"type": "string", "value": "resource::AzureResourceGroup::1.0"}
        },
        "resourceProperties": {
            "resourcegroup_name": {"type": "string", "value": "rg-rbac"},
            "resourcegroup_location": {"type": "string", "value": "westeurope"}
        },
        "requestProperties": {},
        "deploymentLocation": {"name": "azure-rbac", "type": "Azure", "properties": {
            "tenantId": "tenant-rbac", "clientId": "client-rbac", "clientSecret": "secret-rbac",
            "subscriptionId": "00000000-0000-0000-0000-0000000000ab"}}
    })
}

#[tokio::test]
async fn controller_and_shim_do_their_job_with_the_chart_service_accounts() {
    // The binaries the chart runs, and the test doubles: ARM simulator, Kafka broker.
    let bin = built_binaries(
        &["azure-driver-controller", "azure-driver-shim", "armsim"],
        &["--example", "kafka-test-broker"],
    );
    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let ns = namespace.name();

    let (broker, bootstrap) = {
        let mut child = Command::new(bin.join("examples/kafka-test-broker"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the Kafka test broker starts");
        let (bootstrap, reader) = first_line(child.stdout.take().unwrap());
        (
            (KilledOnDrop::new(child), kafka_messages(reader)),
            bootstrap,
        )
    };
    let tls_dir = tempfile::tempdir().unwrap();
    let armsim = ArmsimProcess::start(&bin, tls_dir.path());

    helm_install(
        control_plane,
        ns,
        &[
            format!("controller.watchNamespaces={{{ns}}}"),
            format!("app.config.override.messaging.connection_address={bootstrap}"),
        ],
    );
    let (controller_kubeconfig, _) = control_plane
        .service_account_access(ns, "azure-driver-controller")
        .await
        .unwrap();
    let (shim_kubeconfig, _) = control_plane
        .service_account_access(ns, "azure-driver")
        .await
        .unwrap();

    // The shim gets the files the chart mounts: its config file and the generated TLS pair.
    let files = tempfile::tempdir().unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(control_plane.client(), ns);
    let config = config_maps.get("azure-driver-config").await.unwrap();
    std::fs::write(
        files.path().join("azuredriver_config.yml"),
        &config.data.unwrap()["azuredriver_config.yml"],
    )
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(control_plane.client(), ns);
    let tls = secrets.get("azure-driver-tls").await.unwrap().data.unwrap();
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        std::fs::write(files.path().join(key), &tls[key].0).unwrap();
    }

    let _controller = KilledOnDrop::new(
        controller_command(
            &bin.join("azure-driver-controller"),
            &controller_kubeconfig,
            ns,
            &armsim.endpoint,
            &armsim.ca_file,
        )
        .args(["--metrics-addr", "127.0.0.1:0", "--lease-namespace", ns])
        .spawn()
        .expect("the controller starts"),
    );
    let port = free_port();
    let _shim = KilledOnDrop::new(
        Command::new(bin.join("azure-driver-shim"))
            .arg("--config")
            .arg(files.path().join("azuredriver_config.yml"))
            .arg("--tls-cert")
            .arg(files.path().join("tls.crt"))
            .arg("--tls-key")
            .arg(files.path().join("tls.key"))
            .args(["--namespace", ns])
            .env("KUBECONFIG", &shim_kubeconfig)
            .env("DRIVER_PORT", port.to_string())
            .env("LOG_LEVEL", "WARNING")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the shim starts"),
    );

    let host = format!("azure-driver.{ns}.svc");
    let ca = files.path().join("ca.crt");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut curl = Command::new("curl");
        curl.args(["--silent", "--fail", "--cacert"])
            .arg(&ca)
            .arg("--resolve")
            .arg(format!("{host}:{port}:127.0.0.1"))
            .arg(format!("https://{host}:{port}/management/health"));
        if curl.output().is_ok_and(|o| o.status.success()) {
            break;
        }
        assert!(Instant::now() < deadline, "the shim never became healthy");
        std::thread::sleep(Duration::from_millis(300));
    }

    let execute = "/api/driver/lifecycle/execute";
    let resource_id = "a0000000-0000-4000-8000-0000000000ab";
    let (_broker, messages) = broker;
    let accepted = post(&ca, &host, port, execute, &request("Create", resource_id));
    let created = result_of(&messages, accepted["requestId"].as_str().unwrap());
    assert_eq!(created["status"], "COMPLETE", "{created}");
    assert_eq!(
        created["associatedTopology"]["rgrbac"]["id"],
        "/subscriptions/00000000-0000-0000-0000-0000000000ab/resourceGroups/rg-rbac"
    );

    // kubectl users: a template from a ConfigMap, parameters from a Secret and a
    // ConfigMap, outputs written to a Secret the controller creates.
    let mut kubectl = control_plane.kubectl();
    kubectl
        .args(["apply", "-n", ns, "-f"])
        .arg(e2e::repo_root().join("deploy/examples/configmap-template.yaml"));
    run(kubectl);
    let objects: Api<AzureResource> = Api::namespaced(control_plane.client(), ns);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let object = objects.get("demo-sql").await.unwrap();
        let phase = object.status.and_then(|status| status.phase);
        if phase == Some(Phase::Ready) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "demo-sql is {phase:?}, not Ready"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let outputs = secrets.get("demo-sql-outputs").await.unwrap();
    assert!(outputs.data.unwrap().contains_key("fqdn"));
    let mut kubectl = control_plane.kubectl();
    kubectl.args([
        "delete",
        "-n",
        ns,
        "azureresource",
        "demo-sql",
        "--timeout=120s",
    ]);
    run(kubectl);

    let accepted = post(&ca, &host, port, execute, &request("Delete", resource_id));
    let deleted = result_of(&messages, accepted["requestId"].as_str().unwrap());
    assert_eq!(deleted["status"], "COMPLETE", "{deleted}");
    assert_eq!(deleted["associatedTopology"], json!({"rgrbac": null}));
}
