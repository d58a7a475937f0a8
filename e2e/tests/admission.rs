//! The validating admission webhook (`azure-driver-admission`) called by the real
//! kube-apiserver over TLS: `kubectl apply` refuses invalid Bicep with line:column
//! messages and admits a valid object, which the controller deploys (armsim); with the
//! webhook stopped, deleting that object (the controller's finalizer removal is an
//! update the webhook would see) still completes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crds::{AzureResource, Phase};
use e2e::admission::{
    BROKEN_BICEP, VALID_BICEP, apply_until_refused, assert_refused_with_position, kubectl_apply,
    manifest,
};
use e2e::process::{ArmsimProcess, KilledOnDrop, built_binaries, first_line};
use k8s_openapi::{
    ByteString,
    api::{
        admissionregistration::v1::{
            RuleWithOperations, ServiceReference, ValidatingWebhook,
            ValidatingWebhookConfiguration, WebhookClientConfig,
        },
        core::v1::Secret,
    },
};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

const WAIT: Duration = Duration::from_secs(60);

/// A CA (PEM) and a server certificate and key (PEM) it signed for 127.0.0.1.
fn loopback_certificate() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    (ca.pem(), server.pem(), server_key.serialize_pem())
}

fn start_webhook(bin_dir: &Path, tls_dir: &Path) -> (String, KilledOnDrop) {
    let mut child = Command::new(bin_dir.join("azure-driver-admission"))
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(tls_dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(tls_dir.join("tls.key"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("azure-driver-admission starts");
    let (url, _) = first_line(child.stdout.take().expect("stdout is piped"));
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    (url, KilledOnDrop::new(child))
}

/// The chart's webhook settings, with the test process's URL instead of the Service.
fn webhook_configuration(
    name: &str,
    url: &str,
    ca_pem: &str,
    namespace: &str,
) -> ValidatingWebhookConfiguration {
    let mut selector = std::collections::BTreeMap::new();
    selector.insert(
        "azure-driver.io/admission-test".to_owned(),
        namespace.to_owned(),
    );
    ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: "azureresources.azure-driver.io".into(),
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            failure_policy: Some("Ignore".into()),
            timeout_seconds: Some(5),
            match_policy: Some("Equivalent".into()),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec!["azure-driver.io".into()]),
                api_versions: Some(vec!["v1alpha1".into()]),
                operations: Some(vec!["CREATE".into(), "UPDATE".into()]),
                resources: Some(vec!["azureresources".into()]),
                scope: Some("Namespaced".into()),
            }]),
            object_selector: Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some(selector),
                    ..Default::default()
                },
            ),
            client_config: WebhookClientConfig {
                url: Some(format!("{url}/validate")),
                ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
                service: None::<ServiceReference>,
            },
            ..ValidatingWebhook::default()
        }]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_is_checked_and_deletes_do_not_need_the_webhook() {
    let cp = e2e::ControlPlane::shared().await;
    let ns = e2e::TestNamespace::create(cp).await;
    let namespace = ns.name().to_owned();
    let bin_dir = built_binaries(
        &["azure-driver-shim", "azure-driver-controller", "armsim"],
        &[],
    );
    let tls = tempfile::tempdir().unwrap();
    let (ca, cert, key) = loopback_certificate();
    std::fs::write(tls.path().join("tls.crt"), cert).unwrap();
    std::fs::write(tls.path().join("tls.key"), key).unwrap();
    let (url, webhook) = start_webhook(&bin_dir, tls.path());

    let configurations: Api<ValidatingWebhookConfiguration> = Api::all(cp.client());
    let configuration_name = format!("azure-driver-admission-{namespace}");
    configurations
        .create(
            &PostParams::default(),
            &webhook_configuration(&configuration_name, &url, &ca, &namespace),
        )
        .await
        .unwrap();

    // The apiserver picks up new webhook configurations asynchronously.
    let broken = manifest("broken", &namespace, BROKEN_BICEP, "{name: acct}");
    let stderr = apply_until_refused(cp, &broken, "broken", &namespace, WAIT).await;
    assert_refused_with_position(&stderr);

    let bad_parameters = manifest(
        "badparams",
        &namespace,
        VALID_BICEP,
        "{sku: Premium_LRS, colour: red}",
    );
    let output = kubectl_apply(cp, &bad_parameters);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    for expected in [
        "spec.parameters.colour",
        "spec.parameters.sku: \"Premium_LRS\" is not one of the allowed values",
        "spec.parameters.name: parameter \"name\" is required (declared at main.bicep:3:7)",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected} missing from {stderr}"
        );
    }

    // A valid object is admitted and deployed by the controller.
    let sim_tls = tempfile::tempdir().unwrap();
    let sim = ArmsimProcess::start(&bin_dir, sim_tls.path());
    let secrets: Api<Secret> = Api::namespaced(cp.client(), &namespace);
    let credentials: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "azure-credentials"},
        "stringData": {
            "tenantId": "11111111-1111-1111-1111-111111111111",
            "clientId": "22222222-2222-2222-2222-222222222222",
            "clientSecret": "not-a-real-secret",
            "subscriptionId": "00000000-0000-0000-0000-0000000ad315"
        }
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &credentials)
        .await
        .unwrap();
    let _controller = KilledOnDrop::new(
        sim.lone_controller(&bin_dir, cp.kubeconfig_path(), &namespace)
            .spawn()
            .expect("the controller starts"),
    );
    let valid = manifest("valid", &namespace, VALID_BICEP, "{name: admittedacct}");
    let output = kubectl_apply(cp, &valid);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let objects: Api<AzureResource> = Api::namespaced(cp.client(), &namespace);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let object = objects.get("valid").await.unwrap();
        if object.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready) {
            assert_eq!(
                object.metadata.finalizers.as_deref(),
                Some(&[crds::CLEANUP_FINALIZER.to_owned()][..])
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not Ready: {:?}",
            object.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Without the webhook the deletion completes: the finalizer removal is admitted.
    drop(webhook);
    objects
        .delete("valid", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while objects.get_opt("valid").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deletion did not complete"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    configurations
        .delete(&configuration_name, &DeleteParams::default())
        .await
        .unwrap();
}
