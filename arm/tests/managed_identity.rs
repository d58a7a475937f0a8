//! The managed-identity path against the ARM simulator's identity endpoints: the client is
//! configured only through environment lookups, as on a VM/AKS node (IMDS) or in App Service.

mod common;

use arm::models::{DeploymentMode, DeploymentRequest};
use arm::{
    ArmClient, ArmOptions, CloudConfig, CredentialCache, CredentialSpec, ErrorCategory,
    ErrorSource, ManagedIdentitySource, TokenCredential,
};
use armsim::{ManagedIdentityConfig, RunningSim, SimConfig, Simulator};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{SUB, rg_scope, wait_done};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Differs from every service-principal tenant of the other tests, so a deployment that
/// reports it ran as the managed identity.
const MI_TENANT: &str = "7e4a7e4a-0000-4000-8000-00000000a3d1";
const MI_CLIENT: &str = "5a1e7c3d-0000-4000-8000-00000000b2c4";
const IDENTITY_HEADER: &str = "armsim-app-service-header-31b7";

struct Host {
    sim: RunningSim,
    _dir: tempfile::TempDir,
}

impl Host {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = SimConfig {
            managed_identity: ManagedIdentityConfig {
                tenant_id: MI_TENANT.into(),
                client_id: MI_CLIENT.into(),
                identity_header: IDENTITY_HEADER.into(),
            },
            ..SimConfig::default()
        };
        let sim = Simulator::start(config, dir.path()).await.unwrap();
        Host { sim, _dir: dir }
    }

    /// The process environment of an operator on this host: the simulator as ARM, its
    /// CA trusted, plus the managed-identity variables of `extra`.
    fn env(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut env = HashMap::from([
            (
                "AZURE_RESOURCE_MANAGER_ENDPOINT".to_string(),
                self.sim.endpoint(),
            ),
            (
                "AZURE_CA_FILE".to_string(),
                self.sim.ca_file().display().to_string(),
            ),
        ]);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    fn app_service_env(&self, header: &str) -> HashMap<String, String> {
        let endpoint = format!("{}/msi/token", self.sim.endpoint());
        self.env(&[
            ("IDENTITY_ENDPOINT", endpoint.as_str()),
            ("IDENTITY_HEADER", header),
        ])
    }
}

/// A client built the way the operator builds its own: options and identity from the
/// environment (here an in-memory one).
fn operator_client(env: &HashMap<String, String>) -> (ArmClient, Arc<dyn TokenCredential>) {
    let lookup = |name: &str| env.get(name).cloned();
    let options = ArmOptions::default()
        .with_cloud(CloudConfig::from_lookup(lookup).unwrap())
        .with_retry_backoff(Duration::from_millis(50))
        .with_default_poll_interval(Duration::from_millis(200));
    let spec = CredentialSpec::from_lookup(lookup).unwrap();
    assert!(
        matches!(spec, CredentialSpec::ManagedIdentity { .. }),
        "{spec:?}"
    );
    let credential = CredentialCache::new(&options).unwrap().get(&spec).unwrap();
    let client = ArmClient::new(options, credential.clone()).unwrap();
    (client, credential)
}

/// Creates and reads a resource group, then deploys a template reporting the caller's
/// tenant as ARM saw it.
async fn create_read_and_ask_arm_who_called(client: &ArmClient, rg: &str) -> String {
    let created = client
        .ensure_resource_group(SUB, rg, "westeurope", &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(created.properties.provisioning_state, "Succeeded");
    let read = client.get_resource_group(SUB, rg).await.unwrap().unwrap();
    assert_eq!(read.id, created.id);

    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [],
        "outputs": {"tenantId": {"type": "string", "value": "[tenant().tenantId]"}}
    });
    let request = DeploymentRequest::new(template, [], DeploymentMode::Incremental);
    let started = client
        .put_deployment(&rg_scope(rg), "who-called", &request)
        .await
        .unwrap();
    wait_done(client, &started.handle).await;
    let deployment = client
        .get_deployment(&rg_scope(rg), "who-called")
        .await
        .unwrap()
        .unwrap();
    deployment.properties.outputs["tenantId"]
        .value
        .as_str()
        .unwrap()
        .to_string()
}

/// The claims of the token the credential holds (the simulator's tokens are JWT-shaped).
async fn token_claims(credential: &Arc<dyn TokenCredential>, client: &ArmClient) -> Value {
    let token = credential
        .get_token(&[&client.options().cloud.arm_scope()], None)
        .await
        .unwrap();
    let payload = token.token.secret().split('.').nth(1).unwrap().to_string();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn app_service_system_assigned_identity_creates_and_reads_a_resource_group() {
    let host = Host::start().await;
    let env = host.app_service_env(IDENTITY_HEADER);
    let (client, credential) = operator_client(&env);
    assert!(matches!(
        client.options().cloud.managed_identity,
        ManagedIdentitySource::AppService { .. }
    ));

    let tenant = create_read_and_ask_arm_who_called(&client, "rg-mi-appservice").await;
    assert_eq!(tenant, MI_TENANT, "ARM saw the managed identity as caller");
    assert!(
        host.sim
            .inventory()
            .iter()
            .any(|item| item.id.ends_with("/resourceGroups/rg-mi-appservice"))
    );
    let claims = token_claims(&credential, &client).await;
    assert_eq!(claims["appid"], MI_CLIENT);
    assert_eq!(claims["tid"], MI_TENANT);

    let counters = host.sim.counters();
    assert_eq!(
        counters.route("GET identityToken"),
        1,
        "one token, cached across every ARM call: {counters:?}"
    );
    assert_eq!(counters.route("POST token"), 0, "Entra was never asked");
    assert_eq!(counters.route("PUT resourceGroups"), 1);
    assert_eq!(counters.route("GET resourceGroups"), 1);
}

#[tokio::test]
async fn imds_user_assigned_identity_creates_and_reads_a_resource_group() {
    let host = Host::start().await;
    let endpoint = host.sim.endpoint();
    let env = host.env(&[
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", endpoint.as_str()),
        ("AZURE_CLIENT_ID", MI_CLIENT),
    ]);
    let (client, credential) = operator_client(&env);

    let tenant = create_read_and_ask_arm_who_called(&client, "rg-mi-imds").await;
    assert_eq!(tenant, MI_TENANT);
    let claims = token_claims(&credential, &client).await;
    assert_eq!(claims["appid"], MI_CLIENT);
    let counters = host.sim.counters();
    assert_eq!(counters.route("GET identityToken"), 1, "{counters:?}");
    assert_eq!(counters.route("POST token"), 0);
    assert_eq!(counters.route("PUT resourceGroups"), 1);
}

#[tokio::test]
async fn an_identity_not_assigned_to_the_host_is_refused_before_any_arm_call() {
    let host = Host::start().await;
    let endpoint = host.sim.endpoint();
    let env = host.env(&[
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", endpoint.as_str()),
        ("AZURE_CLIENT_ID", "00000000-0000-4000-8000-0000000000ff"),
    ]);
    let (client, _) = operator_client(&env);
    let err = client
        .ensure_resource_group(SUB, "rg-mi-other", "westeurope", &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.source_kind, ErrorSource::Credential);
    assert_eq!(err.status, Some(400));
    assert!(err.message.contains("Identity not found"), "{err}");
    assert_eq!(host.sim.counters().route("PUT resourceGroups"), 0);
}

#[tokio::test]
async fn a_wrong_identity_header_is_a_clear_credential_error_without_the_header() {
    let host = Host::start().await;
    let wrong = "wrong-identity-header-8c1f";
    let (client, _) = operator_client(&host.app_service_env(wrong));
    let err = client
        .ensure_resource_group(SUB, "rg-mi-refused", "westeurope", &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.source_kind, ErrorSource::Credential);
    assert_eq!(err.status, Some(401));
    assert_eq!(err.category(), ErrorCategory::Credential);
    assert!(!err.is_retryable());
    assert!(
        err.message.contains("App Service") && err.message.contains("X-IDENTITY-HEADER"),
        "names the protocol and the endpoint's reason: {err}"
    );
    let shown = format!("{err} {err:?}");
    for secret in [wrong, IDENTITY_HEADER] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let counters = host.sim.counters();
    assert_eq!(counters.route("GET identityToken"), 1);
    assert_eq!(counters.route("PUT resourceGroups"), 0, "ARM never called");
    assert!(host.sim.inventory().is_empty());
}

#[tokio::test]
async fn the_token_request_trusts_azure_ca_file_and_nothing_else() {
    let host = Host::start().await;
    let mut env = host.app_service_env(IDENTITY_HEADER);
    env.remove("AZURE_CA_FILE");
    let (client, _) = operator_client(&env);
    let err = client.get_resource_group(SUB, "rg-any").await.unwrap_err();
    assert_eq!(err.source_kind, ErrorSource::Credential);
    assert_eq!(err.status, None, "no answer: the TLS handshake failed");
    assert!(err.message.contains("could not be reached"), "{err}");
    assert!(err.is_retryable());
    assert_eq!(host.sim.counters().route("GET identityToken"), 0);
}
