//! Harness shared by the integration tests: an in-process armsim and a client for it.
// Each test binary uses a different subset of the harness.
#![allow(dead_code)]

use arm::models::{DeploymentMode, DeploymentRequest};
use arm::{
    ArmClient, ArmOptions, CloudConfig, CredentialCache, CredentialSpec, DeploymentScope,
    LroHandle, Secret,
};
use armsim::{RunningSim, SimConfig, Simulator};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

pub const SUB: &str = "00000000-0000-0000-0000-00000000a001";
pub const TENANT: &str = "tenant-1";
pub const CLIENT: &str = "client-1";
pub const SECRET: &str = "client-secret-9f8e7d6c5b4a";

pub struct Harness {
    pub sim: RunningSim,
    pub _dir: tempfile::TempDir,
    pub options: ArmOptions,
    pub cache: CredentialCache,
    pub client: ArmClient,
}

pub fn options_for(sim: &RunningSim) -> ArmOptions {
    let cloud = CloudConfig::default()
        .with_resource_manager_endpoint(&sim.endpoint())
        .unwrap()
        .with_authority_host(&sim.endpoint())
        .unwrap()
        .with_ca_file(sim.ca_file());
    ArmOptions::default()
        .with_cloud(cloud)
        .with_retry_backoff(Duration::from_millis(50))
        .with_default_poll_interval(Duration::from_millis(200))
}

pub fn secret_spec(secret: &str) -> CredentialSpec {
    CredentialSpec::ClientSecret {
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        client_secret: Secret::new(secret.to_string()),
    }
}

pub fn client_for(options: &ArmOptions, secret: &str) -> ArmClient {
    let cache = CredentialCache::new(options).unwrap();
    ArmClient::new(options.clone(), cache.get(&secret_spec(secret)).unwrap()).unwrap()
}

pub async fn start_with(config: SimConfig, tune: impl FnOnce(ArmOptions) -> ArmOptions) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(config, dir.path()).await.unwrap();
    let options = tune(options_for(&sim));
    let cache = CredentialCache::new(&options).unwrap();
    let client = ArmClient::new(options.clone(), cache.get(&secret_spec(SECRET)).unwrap()).unwrap();
    Harness {
        sim,
        _dir: dir,
        options,
        cache,
        client,
    }
}

pub async fn start() -> Harness {
    start_with(SimConfig::default(), |o| o).await
}

pub fn rg_scope(rg: &str) -> DeploymentScope {
    DeploymentScope::ResourceGroup {
        subscription: SUB.into(),
        resource_group: rg.into(),
    }
}

pub fn storage_template(with_account: bool) -> Value {
    let resources = if with_account {
        json!([{
            "type": "Microsoft.Storage/storageAccounts",
            "apiVersion": "2023-01-01",
            "name": "[parameters('name')]",
            "location": "westeurope",
            "sku": {"name": "Standard_LRS"},
            "kind": "StorageV2",
            "tags": "[parameters('tags')]"
        }])
    } else {
        json!([])
    };
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "name": {"type": "string"},
            "tags": {"type": "object", "defaultValue": {}},
            "password": {"type": "securestring", "defaultValue": ""}
        },
        "resources": resources,
        "outputs": {
            "accountId": {"type": "string", "value": "[resourceId('Microsoft.Storage/storageAccounts', parameters('name'))]"}
        }
    })
}

pub fn storage_request(name: &str, tags: Value) -> DeploymentRequest {
    DeploymentRequest::new(
        storage_template(true),
        [
            ("name".to_string(), json!(name)),
            ("tags".to_string(), tags),
        ],
        DeploymentMode::Incremental,
    )
}

pub fn account_id(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}"
    )
}

pub async fn ensure_rg(client: &ArmClient, rg: &str) {
    client
        .ensure_resource_group(SUB, rg, "westeurope", &BTreeMap::new())
        .await
        .unwrap();
}

pub async fn wait_done(client: &ArmClient, handle: &LroHandle) -> Option<Value> {
    tokio::time::timeout(Duration::from_secs(30), client.wait(handle))
        .await
        .expect("operation finished in time")
        .expect("operation succeeded")
}
