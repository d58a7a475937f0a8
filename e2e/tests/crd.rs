//! The generated `AzureResource` CRD on a real kube-apiserver: it is Established, the
//! examples are accepted, invalid objects are rejected naming the field, and kubectl shows
//! the printer columns and field documentation.

use std::process::Output;

use crds::{AzureResource, DeletionPolicy, DeploymentMode, Engine, Phase, Scope};
use e2e::{ControlPlane, TestNamespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde::Deserialize as _;
use serde_json::{Value, json};

fn run(mut command: std::process::Command) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("kubectl runs");
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "{command:?} failed: {}{stdout}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

fn azure_resource(namespace: &str, name: &str, spec: Value) -> DynamicObject {
    let api_resource = ApiResource::erase::<AzureResource>(&());
    let mut object = DynamicObject::new(name, &api_resource).within(namespace);
    object.data = json!({ "spec": spec });
    object
}

fn dynamic_api(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, namespace, &ApiResource::erase::<AzureResource>(&()))
}

#[tokio::test]
async fn crd_is_established_and_structural() {
    let control_plane = ControlPlane::shared().await;
    let crd = Api::<CustomResourceDefinition>::all(control_plane.client())
        .get(crds::CRD_NAME)
        .await
        .unwrap();
    let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
    let status_of = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind)
            .map(|c| c.status.clone())
    };
    assert_eq!(status_of("Established").as_deref(), Some("True"));
    assert_eq!(status_of("NamesAccepted").as_deref(), Some("True"));
    assert_eq!(status_of("NonStructuralSchema"), None, "{conditions:?}");
}

#[tokio::test]
async fn examples_are_accepted_and_read_back_typed() {
    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let examples_dir = e2e::repo_root().join("deploy/examples");
    let mut examples: Vec<_> = std::fs::read_dir(&examples_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 3, "examples: {examples:?}");

    let mut expected_names = Vec::new();
    for example in &examples {
        let text = std::fs::read_to_string(example).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(document).unwrap();
            if value["kind"] == "AzureResource" {
                expected_names.push(value["metadata"]["name"].as_str().unwrap().to_owned());
            }
        }
        let mut apply = control_plane.kubectl();
        apply.args(["apply", "--namespace", namespace.name(), "--filename"]);
        apply.arg(example);
        run(apply);
    }

    let api: Api<AzureResource> = Api::namespaced(control_plane.client(), namespace.name());
    let mut names: Vec<_> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|object| object.metadata.name.unwrap())
        .collect();
    names.sort();
    expected_names.sort();
    assert_eq!(names, expected_names);

    let sql = api.get("demo-sql").await.unwrap();
    assert!(matches!(
        sql.spec.template,
        Some(crds::TemplateSource::ConfigMapKeyRef(_))
    ));
    assert_eq!(sql.spec.parameters_from.len(), 2);
    let vnet = api.get("demo-vnet").await.unwrap();
    assert_eq!(vnet.spec.engine, Engine::Deployment);
    assert_eq!(vnet.spec.mode, DeploymentMode::Complete);
    let landing_zone = api.get("demo-landing-zone").await.unwrap();
    assert_eq!(landing_zone.spec.scope, Scope::Subscription);
    assert_eq!(landing_zone.spec.resource_group, None);
}

#[tokio::test]
async fn server_applies_defaults() {
    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let object = azure_resource(
        namespace.name(),
        "minimal",
        json!({"resourceGroup": "rg", "template": {"bicep": "param a string"}}),
    );
    dynamic_api(control_plane.client(), namespace.name())
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    let stored = Api::<AzureResource>::namespaced(control_plane.client(), namespace.name())
        .get("minimal")
        .await
        .unwrap();
    assert_eq!(stored.spec.scope, Scope::ResourceGroup);
    assert_eq!(stored.spec.engine, Engine::Stack);
    assert_eq!(stored.spec.deletion_policy, DeletionPolicy::Delete);
    assert_eq!(stored.spec.mode, DeploymentMode::Incremental);
    assert!(stored.spec.create_resource_group);
    assert_eq!(stored.spec.sync_interval, "1h");
}

#[tokio::test]
async fn invalid_objects_are_rejected_naming_the_field() {
    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let api = dynamic_api(control_plane.client(), namespace.name());
    let bicep = json!({"bicep": "param a string"});
    let cases = [
        (
            "no template source",
            json!({"resourceGroup": "rg", "template": {}}),
            "spec.template",
        ),
        (
            "two template sources",
            json!({"resourceGroup": "rg", "template": {"bicep": "x", "json": {}}}),
            "spec.template",
        ),
        (
            "no template",
            json!({"resourceGroup": "rg"}),
            "spec.template",
        ),
        (
            "resource group scope without resource group",
            json!({"template": bicep}),
            "spec.resourceGroup",
        ),
        (
            "a template and an adopted id",
            json!({"resourceGroup": "rg", "template": bicep, "adopt": {"id": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"}}),
            "spec",
        ),
        (
            "an adopted id that is not an ARM id",
            json!({"adopt": {"id": "rg-legacy"}}),
            "spec.adopt.id",
        ),
        (
            "unknown engine",
            json!({"resourceGroup": "rg", "engine": "Fast", "template": bicep}),
            "spec.engine",
        ),
        (
            "unknown scope",
            json!({"resourceGroup": "rg", "scope": "Tenant", "template": bicep}),
            "spec.scope",
        ),
        (
            "unknown deletion policy",
            json!({"resourceGroup": "rg", "deletionPolicy": "Keep", "template": bicep}),
            "spec.deletionPolicy",
        ),
        (
            "unknown mode",
            json!({"resourceGroup": "rg", "mode": "Partial", "template": bicep}),
            "spec.mode",
        ),
        (
            "resource group ending in a dot",
            json!({"resourceGroup": "rg.", "template": bicep}),
            "spec.resourceGroup",
        ),
        (
            "resource group with a slash",
            json!({"resourceGroup": "a/b", "template": bicep}),
            "spec.resourceGroup",
        ),
        (
            "resource group too long",
            json!({"resourceGroup": "r".repeat(91), "template": bicep}),
            "spec.resourceGroup",
        ),
        (
            "subscription id not a GUID",
            json!({"resourceGroup": "rg", "subscriptionId": "my-sub", "template": bicep}),
            "spec.subscriptionId",
        ),
        (
            "sync interval in days",
            json!({"resourceGroup": "rg", "syncInterval": "1d", "template": bicep}),
            "spec.syncInterval",
        ),
        (
            "sync interval under a second",
            json!({"resourceGroup": "rg", "syncInterval": "50ms", "template": bicep}),
            "spec.syncInterval",
        ),
        (
            "template ConfigMap key without language suffix",
            json!({"resourceGroup": "rg", "template": {"configMapKeyRef": {"name": "t", "key": "main"}}}),
            "spec.template.configMapKeyRef.key",
        ),
        (
            "template ConfigMap with an invalid name",
            json!({"resourceGroup": "rg", "template": {"configMapKeyRef": {"name": "Templates", "key": "main.bicep"}}}),
            "spec.template.configMapKeyRef.name",
        ),
        (
            "credentials Secret with an invalid name",
            json!({"resourceGroup": "rg", "template": bicep, "credentialsSecretRef": {"name": "my_creds"}}),
            "spec.credentialsSecretRef.name",
        ),
        (
            "parameter from both a Secret and a ConfigMap",
            json!({"resourceGroup": "rg", "template": bicep, "parametersFrom": [{
                "name": "a",
                "secretKeyRef": {"name": "s", "key": "k"},
                "configMapKeyRef": {"name": "c", "key": "k"}
            }]}),
            "spec.parametersFrom",
        ),
        (
            "parameter from nowhere",
            json!({"resourceGroup": "rg", "template": bicep, "parametersFrom": [{"name": "a"}]}),
            "spec.parametersFrom",
        ),
        (
            "inline ARM template that is not an object",
            json!({"resourceGroup": "rg", "template": {"json": "not an object"}}),
            "spec.template.json",
        ),
    ];
    let mut failures = Vec::new();
    for (index, (case, spec, field)) in cases.into_iter().enumerate() {
        let object = azure_resource(namespace.name(), &format!("invalid-{index}"), spec);
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => failures.push(format!("{case}: accepted")),
            Err(kube::Error::Api(status)) => {
                if status.code != 422 || !status.message.contains(field) {
                    failures.push(format!(
                        "{case}: expected 422 naming {field}, got {}: {}",
                        status.code, status.message
                    ));
                }
            }
            Err(other) => failures.push(format!("{case}: {other}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let stored = api.list(&Default::default()).await.unwrap();
    assert!(
        stored.items.is_empty(),
        "rejected objects must not be stored"
    );
}

#[tokio::test]
async fn kubectl_get_shows_printer_columns_from_status() {
    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let object = azure_resource(
        namespace.name(),
        "columns",
        json!({"resourceGroup": "rg-columns", "template": {"bicep": "param a string"}}),
    );
    let api = dynamic_api(control_plane.client(), namespace.name());
    api.create(&PostParams::default(), &object).await.unwrap();
    let status = json!({
        "apiVersion": "azure-driver.io/v1alpha1",
        "kind": "AzureResource",
        "status": {
            "phase": Phase::Ready,
            "observedGeneration": 1,
            "deployment": {"name": "azd-columns", "provisioningState": "Succeeded"},
            "drift": {
                "summary": "Modify=1",
                "counts": {"create": 0, "delete": 0, "modify": 1, "noChange": 0, "ignore": 0}
            },
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": "deployment-succeeded",
                "lastTransitionTime": "2026-01-01T00:00:00Z"
            }]
        }
    });
    api.patch_status(
        "columns",
        &PatchParams::apply("e2e-status").force(),
        &Patch::Apply(&status),
    )
    .await
    .unwrap();

    for resource in ["azr", "azureresources", "azure"] {
        let mut get = control_plane.kubectl();
        get.args(["get", resource, "--namespace", namespace.name()]);
        let table = run(get);
        let mut lines = table.lines();
        let header: Vec<_> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            [
                "NAME",
                "PHASE",
                "STATE",
                "DRIFT",
                "RESOURCEGROUP",
                "AGE",
                "MESSAGE"
            ],
            "{resource}"
        );
        let row: Vec<_> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            row[..5],
            ["columns", "Ready", "Succeeded", "Modify=1", "rg-columns"]
        );
        assert_eq!(row[6], "deployment-succeeded");
    }
}

/// `kubectl explain` reads the published OpenAPI, which the apiserver republishes a few
/// seconds after a CRD changes.
async fn explain(control_plane: &ControlPlane, field: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut explain = control_plane.kubectl();
        explain.args(["explain", field]);
        let output = explain.output().expect("kubectl runs");
        if output.status.success() {
            return String::from_utf8_lossy(&output.stdout).into_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl explain {field}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn kubectl_explain_documents_fields() {
    let control_plane = ControlPlane::shared().await;
    let text = explain(control_plane, "azureresource.spec.template").await;
    for expected in [
        "exactly one of",
        "bicep",
        "Inline Bicep source",
        "configMapKeyRef",
        "json",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let text = explain(control_plane, "azureresource.spec.syncInterval").await;
    assert!(text.contains("turns re-checking off"), "{text}");
}

#[tokio::test]
async fn kubectl_explain_documents_drift() {
    let control_plane = ControlPlane::shared().await;
    let text = explain(control_plane, "azureresource.spec.driftPolicy").await;
    for expected in ["Report", "Correct", "Ignore", "azure-driver.io/check-drift"] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let text = explain(control_plane, "azureresource.status.drift").await;
    for expected in [
        "lastCheckTime",
        "summary",
        "counts",
        "resources",
        "[redacted]",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let text = explain(
        control_plane,
        "azureresource.status.drift.resources.properties",
    )
    .await;
    for expected in ["path", "before", "after", "sku.name"] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

/// RBAC is enforced: a ServiceAccount sees AzureResources only once a Role grants it.
#[tokio::test]
async fn service_account_access_follows_rbac() {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
    use kube::api::ObjectMeta;

    let control_plane = ControlPlane::shared().await;
    let namespace = TestNamespace::create(control_plane).await;
    let ns = namespace.name();
    let admin = control_plane.client();
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(ns.to_owned()),
        ..ObjectMeta::default()
    };
    Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta("reader"),
                ..ServiceAccount::default()
            },
        )
        .await
        .unwrap();
    let (kubeconfig, client) = control_plane
        .service_account_access(ns, "reader")
        .await
        .unwrap();
    let as_reader: Api<AzureResource> = Api::namespaced(client, ns);
    match as_reader.list(&Default::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 before the Role exists, got {other:?}"),
    }

    Api::<Role>::namespaced(admin.clone(), ns)
        .create(
            &PostParams::default(),
            &Role {
                metadata: meta("read-azureresources"),
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec!["azure-driver.io".to_owned()]),
                    resources: Some(vec!["azureresources".to_owned()]),
                    verbs: vec!["get".to_owned(), "list".to_owned()],
                    ..PolicyRule::default()
                }]),
            },
        )
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin, ns)
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: meta("reader"),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".to_owned(),
                    kind: "Role".to_owned(),
                    name: "read-azureresources".to_owned(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".to_owned(),
                    name: "reader".to_owned(),
                    namespace: Some(ns.to_owned()),
                    ..Subject::default()
                }]),
            },
        )
        .await
        .unwrap();
    assert!(as_reader.list(&Default::default()).await.is_ok());

    let mut kubectl = std::process::Command::new("kubectl");
    kubectl.arg("--kubeconfig").arg(&kubeconfig);
    kubectl.args(["auth", "can-i", "create", "azureresources"]);
    let output = kubectl.output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "no");
}
