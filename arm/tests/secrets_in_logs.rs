//! A run with TRACE logging captured into a buffer: no secret may appear in it.

mod common;

use arm::{
    ArmClient, ArmOptions, CloudConfig, CredentialCache, CredentialSpec, ErrorSource,
    TokenCredential,
};
use armsim::{Credential, ManagedIdentityConfig, SimConfig};
use common::*;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const IDENTITY_HEADER: &str = "identity-header-secret-logs-2277";

/// A client on the system-assigned identity of an App Service host whose
/// `IDENTITY_HEADER` is `header`.
fn managed_identity_client(
    h: &Harness,
    header: &str,
) -> (ArmClient, ArmOptions, Arc<dyn TokenCredential>) {
    let endpoint = format!("{}/msi/token", h.sim.endpoint());
    let cloud = CloudConfig::from_lookup(|name| match name {
        "AZURE_RESOURCE_MANAGER_ENDPOINT" => Some(h.sim.endpoint()),
        "AZURE_CA_FILE" => Some(h.sim.ca_file().display().to_string()),
        "IDENTITY_ENDPOINT" => Some(endpoint.clone()),
        "IDENTITY_HEADER" => Some(header.to_string()),
        _ => None,
    })
    .unwrap();
    let options = h.options.clone().with_cloud(cloud);
    let credential = CredentialCache::new(&options)
        .unwrap()
        .get(&CredentialSpec::ManagedIdentity { client_id: None })
        .unwrap();
    let client = ArmClient::new(options.clone(), credential.clone()).unwrap();
    (client, options, credential)
}

// The only test of this binary: tracing caches per-callsite interest process-wide, so a
// thread-local subscriber sees everything only when no other test runs alongside.
#[tokio::test]
async fn no_secret_in_logs_or_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "arm=trace,azure_core=trace,azure_identity=trace,typespec_client_core=trace,reqwest=trace,hyper_util=trace",
        ))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let config = SimConfig {
        credentials: vec![Credential {
            tenant_id: None,
            client_id: CLIENT.into(),
            client_secret: Some(SECRET.into()),
            allow_assertion: false,
        }],
        managed_identity: ManagedIdentityConfig {
            identity_header: IDENTITY_HEADER.into(),
            ..ManagedIdentityConfig::default()
        },
        ..SimConfig::default()
    };
    let h = start_with(config, |o| o).await;
    ensure_rg(&h.client, "rg-logs").await;
    let password = "P@ssw0rd-secure-parameter-77";
    let mut request = storage_request("stlogs01", json!({}));
    request
        .properties
        .parameters
        .insert("password".into(), json!({ "value": password }));
    let started = h
        .client
        .put_deployment(&rg_scope("rg-logs"), "dep-logs", &request)
        .await
        .unwrap();
    wait_done(&h.client, &started.handle).await;
    let failing = storage_request("stlogs02", json!({"armsim-fail": "Conflict"}));
    let started = h
        .client
        .put_deployment(&rg_scope("rg-logs"), "dep-logs2", &failing)
        .await
        .unwrap();
    let failure = h.client.wait(&started.handle).await.unwrap_err();
    let wrong = "wrong-secret-logs-5566";
    let credential_error = client_for(&h.options, wrong)
        .get_resource_group(SUB, "rg-logs")
        .await
        .unwrap_err();

    let token = h
        .cache
        .get(&secret_spec(SECRET))
        .unwrap()
        .get_token(&[&h.options.cloud.arm_scope()], None)
        .await
        .unwrap();
    let token = token.token.secret().to_string();

    let wrong_header = "wrong-identity-header-logs-4411";
    let (managed, managed_options, managed_credential) =
        managed_identity_client(&h, IDENTITY_HEADER);
    ensure_rg(&managed, "rg-logs-mi").await;
    let managed_token = managed_credential
        .get_token(&[&managed_options.cloud.arm_scope()], None)
        .await
        .unwrap();
    let managed_token = managed_token.token.secret().to_string();
    let (refused, refused_options, _) = managed_identity_client(&h, wrong_header);
    let managed_error = refused
        .get_resource_group(SUB, "rg-logs-mi")
        .await
        .unwrap_err();
    assert_eq!(managed_error.source_kind, ErrorSource::Credential);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("arm_request"), "spans were captured:\n{logs}");
    assert!(
        logs.contains("correlation_id"),
        "spans carry the correlation id"
    );
    assert!(
        logs.contains("requesting a managed identity token"),
        "the managed identity's token requests were captured"
    );
    let texts = [
        logs,
        format!("{failure} {failure:?} {credential_error} {credential_error:?}"),
        format!("{request:?} {:?}", secret_spec(SECRET)),
        format!("{managed_error} {managed_error:?} {managed_options:?} {refused_options:?}"),
    ];
    for text in &texts {
        for secret in [
            SECRET,
            wrong,
            password,
            token.as_str(),
            IDENTITY_HEADER,
            wrong_header,
            managed_token.as_str(),
        ] {
            assert!(!text.contains(secret), "secret leaked into:\n{text}");
        }
    }
}
