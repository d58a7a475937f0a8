//! The Helm chart: lint, rendering with the legacy values file and the `--set` commands
//! users already run, the Dockerfile lint, and `helm install`/`upgrade` into the real
//! local apiserver (the generated certificate covers the service names and survives the
//! upgrade).

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use e2e::process::run;
use e2e::{ControlPlane, TestNamespace};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde::Deserialize as _;
use serde_yaml::Value;

/// The Python driver's values file, unchanged.
const LEGACY_VALUES: &str = "deploy/helm/azure-driver/ci/legacy-values.yaml";

fn chart() -> PathBuf {
    e2e::repo_root().join("deploy/helm/azure-driver")
}

fn helm(args: &[&str]) -> Command {
    let mut command = Command::new(e2e::deploy_tools().join("helm"));
    command.args(args).current_dir(e2e::repo_root());
    command
}

/// The rendered objects.
fn documents(rendered: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(rendered)
        .map(|document| Value::deserialize(document).expect("helm renders valid YAML"))
        .filter(|document| !document.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

/// Subject alternative names of a PEM certificate, as openssl prints them.
fn alt_names(pem: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tls.crt");
    std::fs::write(&path, pem).unwrap();
    let mut openssl = Command::new("openssl");
    openssl
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&path);
    run(openssl)
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter_map(|part| part.strip_prefix("DNS:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn chart_lints_clean_with_its_defaults_and_the_legacy_values() {
    let lint = run(helm(&["lint", "--strict", chart().to_str().unwrap()]));
    assert!(lint.contains("0 chart(s) failed"), "{lint}");
    let lint = run(helm(&[
        "lint",
        "--strict",
        chart().to_str().unwrap(),
        "-f",
        LEGACY_VALUES,
    ]));
    assert!(lint.contains("0 chart(s) failed"), "{lint}");
}

#[test]
fn legacy_values_and_set_commands_keep_their_meaning() {
    let rendered = run(helm(&[
        "template",
        "azure-driver",
        chart().to_str().unwrap(),
        "-n",
        "lm",
        "-f",
        LEGACY_VALUES,
        "--set",
        "docker.image=azure-driver",
        "--set",
        "docker.version=2.1.0",
        "--set",
        "app.config.env.NUM_PROCESSES=3",
        "--set",
        "app.config.env.NUM_THREADS=5",
        "--set",
        "resources.requests.cpu=250m",
        "--set",
        "resources.limits.cpu=1500m",
    ]));
    let objects = documents(&rendered);

    let shim = find(&objects, "Deployment", "azure-driver");
    assert_eq!(shim["spec"]["replicas"], 1);
    let pod = &shim["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"]["app"], "azure-driver");
    assert_eq!(pod["metadata"]["labels"]["part-of"], "lm");
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], "azure-driver:2.1.0");
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    assert_eq!(env(container, "NUM_PROCESSES"), Some("3"));
    assert_eq!(env(container, "NUM_THREADS"), Some("5"));
    assert_eq!(env(container, "LOG_TYPE"), Some("logstash"));
    assert_eq!(env(container, "LOG_LEVEL"), Some("INFO"));
    assert_eq!(env(container, "SSL_ENABLED"), Some("true"));
    // --set resources.* overrides app.resources key by key; the rest of the legacy values stay.
    assert_eq!(container["resources"]["requests"]["cpu"], "250m");
    assert_eq!(container["resources"]["limits"]["cpu"], "1500m");
    assert_eq!(container["resources"]["limits"]["memory"], "2Gi");
    assert_eq!(container["resources"]["requests"]["memory"], "1Gi");
    assert_eq!(container["livenessProbe"]["initialDelaySeconds"], 90);
    assert_eq!(container["livenessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(container["readinessProbe"]["periodSeconds"], 10);
    assert_eq!(
        pod["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0]["weight"],
        100
    );
    assert!(
        pod["spec"]["securityContext"]["runAsUser"].is_null(),
        "arbitraryUids leaves the UID to the platform"
    );

    let config = find(&objects, "ConfigMap", "azure-driver-config");
    let file: Value =
        serde_yaml::from_str(config["data"]["azuredriver_config.yml"].as_str().unwrap()).unwrap();
    assert_eq!(
        file["messaging"]["connection_address"],
        "cp4na-o-events-kafka-bootstrap:9092"
    );
    assert_eq!(file["messaging"]["api_version_auto_timeout_ms"], 10000);
    assert_eq!(file["application"]["port"], 7275);
    assert_eq!(file["application"]["ssl"]["enabled"], true);

    let tls = find(&objects, "Secret", "azure-driver-tls");
    let pem = tls["data"]["tls.crt"].as_str().unwrap();
    let pem = base64_decode(pem);
    let names = alt_names(&pem);
    for expected in ["azure-driver", "azure-driver.lm", "azure-driver.lm.svc"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }

    let service = find(&objects, "Service", "azure-driver");
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(service["spec"]["ports"][0]["port"], 7275);
    let ingress = find(&objects, "Ingress", "azure-driver");
    assert_eq!(ingress["spec"]["rules"][0]["host"], "azure-driver.lm");
    // route.enabled, but there is no route.openshift.io API in `helm template`.
    assert!(objects.iter().all(|o| o["kind"] != "Route"));
    let controller = find(&objects, "Deployment", "azure-driver-controller");
    assert_eq!(
        env(
            &controller["spec"]["template"]["spec"]["containers"][0],
            "LOG_FORMAT"
        ),
        Some("json")
    );
}

/// The admission webhook: its certificate names the Service, its CA is the caBundle, and
/// only creates and updates of AzureResource objects reach it, failing open.
#[test]
fn admission_webhook_renders_with_its_certificate_and_ca_bundle() {
    let rendered = run(helm(&[
        "template",
        "azure-driver",
        chart().to_str().unwrap(),
        "-n",
        "lm",
    ]));
    let objects = documents(&rendered);
    let secret = find(&objects, "Secret", "azure-driver-admission-tls");
    let names = alt_names(&base64_decode(secret["data"]["tls.crt"].as_str().unwrap()));
    assert!(
        names.iter().any(|n| n == "azure-driver-admission.lm.svc"),
        "{names:?}"
    );
    let configuration = find(
        &objects,
        "ValidatingWebhookConfiguration",
        "azure-driver-admission.lm.azure-driver.io",
    );
    let webhook = &configuration["webhooks"][0];
    assert_eq!(
        webhook["clientConfig"]["caBundle"],
        secret["data"]["ca.crt"]
    );
    assert_eq!(
        webhook["clientConfig"]["service"]["name"],
        "azure-driver-admission"
    );
    assert_eq!(webhook["clientConfig"]["service"]["path"], "/validate");
    assert_eq!(webhook["failurePolicy"], "Ignore");
    assert_eq!(webhook["sideEffects"], "None");
    assert_eq!(webhook["timeoutSeconds"], 5);
    let rule = &webhook["rules"][0];
    assert_eq!(
        rule["operations"],
        serde_yaml::to_value(["CREATE", "UPDATE"]).unwrap()
    );
    assert_eq!(
        rule["resources"],
        serde_yaml::to_value(["azureresources"]).unwrap()
    );
    let deployment = find(&objects, "Deployment", "azure-driver-admission");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(
        pod["containers"][0]["command"][0],
        "/usr/local/bin/azure-driver-admission"
    );
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        "azure-driver-admission-tls"
    );
    find(&objects, "Service", "azure-driver-admission");

    let disabled = run(helm(&[
        "template",
        "azure-driver",
        chart().to_str().unwrap(),
        "--set",
        "admission.enabled=false",
    ]));
    assert!(!disabled.contains("ValidatingWebhookConfiguration"));
}

#[test]
fn service_autoscaler_route_and_fixed_uid_options_render() {
    let rendered = run(helm(&[
        "template",
        "azure-driver",
        chart().to_str().unwrap(),
        "-n",
        "lm",
        "--kube-version",
        "1.33.0",
        "--api-versions",
        "route.openshift.io/v1/Route",
        "--set",
        "route.enabled=true",
        "--set",
        "service.type=NodePort",
        "--set",
        "app.autoscaler.enabled=true",
        "--set",
        "global.arbitraryUids=false",
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "controller.watchNamespaces={team-a,team-b}",
        "--set",
        "app.config.security.ssl.enabled=false",
    ]));
    let objects = documents(&rendered);
    let service = find(&objects, "Service", "azure-driver");
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 30258);
    let hpa = find(&objects, "HorizontalPodAutoscaler", "azure-driver");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    let shim = find(&objects, "Deployment", "azure-driver");
    assert!(
        shim["spec"]["replicas"].is_null(),
        "the autoscaler owns replicas"
    );
    let pod = &shim["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(
        pod["containers"][0]["livenessProbe"]["httpGet"]["scheme"],
        "HTTP"
    );
    // The admission webhook's own certificate does not depend on the shim's TLS.
    assert!(
        objects
            .iter()
            .all(|o| o["kind"] != "Secret" || o["metadata"]["name"] == "azure-driver-admission-tls"),
        "no TLS secret without TLS"
    );
    let route = find(&objects, "Route", "azure-driver");
    assert_eq!(route["spec"]["tls"]["termination"], "passthrough");
    find(&objects, "NetworkPolicy", "azure-driver");
    let controller = find(&objects, "Deployment", "azure-driver-controller");
    assert_eq!(
        env(
            &controller["spec"]["template"]["spec"]["containers"][0],
            "WATCH_NAMESPACES"
        ),
        Some("team-a,team-b,lm")
    );
    for namespace in ["team-a", "team-b", "lm"] {
        assert!(
            objects.iter().any(|o| o["kind"] == "RoleBinding"
                && o["metadata"]["name"] == "azure-driver-controller"
                && o["metadata"]["namespace"] == namespace),
            "no controller RoleBinding in {namespace}"
        );
    }
    assert!(
        objects.iter().all(|o| !(o["kind"] == "ClusterRoleBinding"
            && o["roleRef"]["name"] == "lm-azure-driver-controller")),
        "watching namespaces must not bind the reconcile role cluster-wide"
    );

    let hpa_120 = run(helm(&[
        "template",
        "azure-driver",
        chart().to_str().unwrap(),
        "--kube-version",
        "1.20.2",
        "--set",
        "app.autoscaler.enabled=true",
    ]));
    let objects = documents(&hpa_120);
    let hpa = find(&objects, "HorizontalPodAutoscaler", "azure-driver");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2beta2");
}

#[test]
fn defaults_admit_only_the_orchestrator_and_watch_the_release_namespace() {
    let chart = chart();
    let template = |extra: &[&str]| {
        let mut args = vec![
            "template",
            "azure-driver",
            chart.to_str().unwrap(),
            "-n",
            "lm",
            "--kube-version",
            "1.33.0",
            "--api-versions",
            "route.openshift.io/v1/Route",
        ];
        args.extend_from_slice(extra);
        documents(&run(helm(&args)))
    };
    let objects = template(&[
        "--set",
        "azure.credentials.existingSecret=operator-credentials",
    ]);
    assert!(objects.iter().all(|o| o["kind"] != "Route"));
    assert!(objects.iter().all(|o| o["kind"] != "PodDisruptionBudget"));
    let policy = find(&objects, "NetworkPolicy", "azure-driver");
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_yaml::from_str::<Value>("[Ingress]").unwrap()
    );
    let rule = &policy["spec"]["ingress"][0];
    assert_eq!(rule["ports"][0]["port"], "driver-api");
    assert_eq!(
        rule["from"],
        serde_yaml::from_str::<Value>("[{podSelector: {}}]").unwrap(),
        "only pods of the release namespace"
    );
    let admission = find(&objects, "NetworkPolicy", "azure-driver-admission");
    assert_eq!(
        admission["spec"]["ingress"],
        serde_yaml::from_str::<Value>("[{ports: [{port: https, protocol: TCP}]}]").unwrap(),
        "the webhook admits only its own port"
    );
    assert_eq!(
        admission["spec"]["egress"],
        serde_yaml::from_str::<Value>("[]").unwrap()
    );
    let deployment_env = |objects: &[Value], name: &str, variable: &str| {
        let deployment = find(objects, "Deployment", name);
        env(
            &deployment["spec"]["template"]["spec"]["containers"][0],
            variable,
        )
        .map(str::to_owned)
    };
    assert_eq!(
        deployment_env(&objects, "azure-driver", "AZURE_DRIVER_OPERATOR_IDENTITY"),
        None
    );
    assert_eq!(
        deployment_env(&objects, "azure-driver", "LEGACY_DELETE_KEEPS_RESOURCES"),
        None,
        "Delete removes a legacy resource's Azure resources by default"
    );
    assert_eq!(
        deployment_env(&objects, "azure-driver-controller", "WATCH_NAMESPACES").as_deref(),
        Some("lm")
    );
    assert!(objects.iter().all(|o| o["kind"] != "ClusterRoleBinding"
        || o["metadata"]["name"] != "lm-azure-driver-controller"));

    let objects = template(&[
        "--set",
        "networkPolicy.orchestrator.namespace=cp4na",
        "--set",
        "networkPolicy.orchestrator.podLabels.app=brent",
        "--set",
        "networkPolicy.egress.enabled=true",
        "--set",
        "app.replicas=2",
        "--set",
        "controller.replicas=2",
        "--set",
        "controller.watchAllNamespaces=true",
        "--set",
        "azure.credentials.existingSecret=operator-credentials",
        "--set",
        "azure.shimUsesOperatorIdentity=true",
        "--set",
        "app.config.legacyDeleteKeepsResources=true",
    ]);
    let policy = find(&objects, "NetworkPolicy", "azure-driver");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"],
        serde_yaml::from_str::<Value>(
            "[{podSelector: {matchLabels: {app: brent}}, namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: cp4na}}}]"
        )
        .unwrap()
    );
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_yaml::from_str::<Value>("[Ingress, Egress]").unwrap()
    );
    assert_eq!(policy["spec"]["egress"][0]["ports"][1]["protocol"], "UDP");
    for name in ["azure-driver", "azure-driver-controller"] {
        let budget = find(&objects, "PodDisruptionBudget", name);
        assert_eq!(budget["apiVersion"], "policy/v1");
        assert_eq!(budget["spec"]["maxUnavailable"], 1);
    }
    assert_eq!(
        deployment_env(&objects, "azure-driver", "AZURE_DRIVER_OPERATOR_IDENTITY").as_deref(),
        Some("true")
    );
    assert_eq!(
        deployment_env(&objects, "azure-driver", "LEGACY_DELETE_KEEPS_RESOURCES").as_deref(),
        Some("true")
    );
    assert_eq!(
        deployment_env(&objects, "azure-driver-controller", "WATCH_NAMESPACES").as_deref(),
        Some("")
    );
    find(&objects, "ClusterRoleBinding", "lm-azure-driver-controller");
}

#[test]
fn bad_values_are_rejected_by_the_schema() {
    for bad in [
        "app.replicas=many",
        "app.config.log.level=LOUD",
        "service.type=Mesh",
        "controller.logFormat=xml",
        "app.config.legacyDeleteKeepsResources=sometimes",
    ] {
        let output = helm(&["template", "x", chart().to_str().unwrap(), "--set", bad])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{bad} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("schema"), "{bad}: {stderr}");
    }
    let output = helm(&[
        "template",
        "x",
        chart().to_str().unwrap(),
        "--set",
        "azure.credentials.create=true",
    ])
    .output()
    .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("azure.credentials.tenantId is required")
    );
}

#[test]
fn chart_crd_is_the_generated_one() {
    let generated =
        std::fs::read_to_string(e2e::repo_root().join("deploy/crds/azureresources.yaml")).unwrap();
    let packaged = std::fs::read_to_string(chart().join("crds/azureresources.yaml")).unwrap();
    assert!(
        generated == packaged,
        "deploy/helm/azure-driver/crds/azureresources.yaml is stale: copy deploy/crds/azureresources.yaml"
    );
}

#[test]
fn dockerfile_is_hadolint_clean() {
    let mut hadolint = Command::new(e2e::deploy_tools().join("hadolint"));
    hadolint.arg("Dockerfile").current_dir(e2e::repo_root());
    run(hadolint);
}

fn base64_decode(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .expect("valid base64")
}

#[tokio::test]
async fn installs_into_the_apiserver_and_upgrade_keeps_the_certificate() {
    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let ns = namespace.name();
    let kubeconfig = control_plane.kubeconfig_path().to_str().unwrap().to_owned();
    let install = |verb: &str| {
        run(helm(&[
            verb,
            "azure-driver",
            chart().to_str().unwrap(),
            "-n",
            ns,
            "--kubeconfig",
            &kubeconfig,
            "-f",
            LEGACY_VALUES,
            "--set",
            "docker.image=azure-driver",
            "--set",
            "docker.version=2.1.0",
            "--set",
            "app.config.env.NUM_PROCESSES=2",
            "--set",
            "app.config.env.NUM_THREADS=4",
            "--set",
            "resources.requests.cpu=500m",
            "--set",
            "resources.limits.cpu=2",
        ]))
    };
    install("install");
    let secrets: Api<Secret> = Api::namespaced(control_plane.client(), ns);
    let first = secrets.get("azure-driver-tls").await.unwrap();
    let crt = first.data.as_ref().unwrap()["tls.crt"].0.clone();
    let names = alt_names(&crt);
    for expected in [
        "azure-driver".to_owned(),
        format!("azure-driver.{ns}"),
        format!("azure-driver.{ns}.svc"),
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    let deployments: Api<Deployment> = Api::namespaced(control_plane.client(), ns);
    let shim = deployments.get("azure-driver").await.unwrap();
    let template = shim.spec.unwrap().template;
    let container = &template.spec.as_ref().unwrap().containers[0];
    let resources = container.resources.as_ref().unwrap();
    assert_eq!(resources.limits.as_ref().unwrap()["cpu"].0, "2");
    assert_eq!(resources.requests.as_ref().unwrap()["cpu"].0, "500m");
    assert_eq!(resources.limits.as_ref().unwrap()["memory"].0, "2Gi");
    let threads = container
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == "NUM_THREADS");
    assert_eq!(threads.and_then(|e| e.value.as_deref()), Some("4"));
    let labels = template.metadata.unwrap().labels.unwrap();
    assert_eq!(labels["app"], "azure-driver");
    assert_eq!(labels["part-of"], "lm");
    deployments.get("azure-driver-controller").await.unwrap();

    install("upgrade");
    let second = secrets.get("azure-driver-tls").await.unwrap();
    assert!(
        second.data.as_ref().unwrap()["tls.crt"].0 == crt,
        "the certificate changed on upgrade"
    );
    assert!(second.data.unwrap()["tls.key"] == first.data.unwrap()["tls.key"]);

    // The documented way to hand the certificate to lmctl.
    let mut kubectl = control_plane.kubectl();
    kubectl.args([
        "-n",
        ns,
        "get",
        "secret",
        "azure-driver-tls",
        "-o",
        r#"go-template={{index .data "tls.crt"}}"#,
    ]);
    assert_eq!(base64_decode(&run(kubectl)), crt);

    run(helm(&[
        "uninstall",
        "azure-driver",
        "-n",
        ns,
        "--kubeconfig",
        &kubeconfig,
    ]));
    // The certificate registered with the orchestrator outlives the release.
    secrets.get("azure-driver-tls").await.unwrap();
}
