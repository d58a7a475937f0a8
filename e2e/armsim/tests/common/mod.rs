//! A plain HTTPS client speaking to a simulator started in-process.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use armsim::{LatencyConfig, RunningSim, SimConfig, Simulator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const API: &str = "2025-04-01";
pub const STACK_API: &str = "2024-03-01";
pub const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
pub const TENANT: &str = "11111111-1111-1111-1111-111111111111";

pub struct Harness {
    pub sim: RunningSim,
    pub http: reqwest::Client,
    pub token: String,
    _tls_dir: tempfile::TempDir,
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// Latencies short enough for tests yet long enough to observe each state.
pub fn quick_config() -> SimConfig {
    SimConfig {
        retry_after_secs: 0,
        latency: LatencyConfig {
            accepted_ms: 50,
            running_ms: 150,
            delete_ms: 100,
            what_if_ms: 50,
            ..LatencyConfig::default()
        },
        ..SimConfig::default()
    }
}

pub fn client_for(sim: &RunningSim) -> reqwest::Client {
    let ca = std::fs::read(sim.ca_file()).expect("CA file written");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA parses"))
        .build()
        .expect("client builds")
}

pub async fn token_request(
    http: &reqwest::Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = http
        .post(format!("{endpoint}/{TENANT}/oauth2/v2.0/token"))
        .form(form)
        .send()
        .await
        .expect("token endpoint answers");
    let status = response.status();
    (status, response.json().await.expect("token body is JSON"))
}

pub async fn secret_token(
    http: &reqwest::Client,
    endpoint: &str,
    secret: &str,
) -> (StatusCode, Value) {
    token_request(
        http,
        endpoint,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app-1"),
            ("client_secret", secret),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await
}

impl Harness {
    pub async fn start(config: SimConfig) -> Self {
        let tls_dir = tempfile::tempdir().expect("temp dir");
        let sim = Simulator::start(config, tls_dir.path())
            .await
            .expect("simulator starts");
        let http = client_for(&sim);
        let (status, body) = secret_token(&http, &sim.endpoint(), "anything").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Self {
            token: body["access_token"].as_str().expect("token").to_owned(),
            sim,
            http,
            _tls_dir: tls_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        let endpoint = self.sim.endpoint();
        if path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{endpoint}{path}")
        }
    }

    /// Sends with the harness token; `path` may carry its own query.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("simulator answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> Answer {
        self.call(Method::POST, path, body).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    pub async fn create_group(&self, name: &str) {
        let answer = self
            .put(
                &format!("/subscriptions/{SUB}/resourcegroups/{name}?api-version={API}"),
                json!({ "location": "westeurope", "tags": { "env": "test" } }),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    }

    /// Polls an `Azure-AsyncOperation` URL until a terminal status; returns it.
    pub async fn wait_status(&self, url: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = self.get(url).await;
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
            let status = answer.body["status"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if ["succeeded", "failed", "canceled"].contains(&status.as_str()) {
                return answer.body;
            }
            assert!(
                Instant::now() < deadline,
                "operation never finished: {:?}",
                answer.body
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Polls an `Azure-AsyncOperation` URL until a terminal status; returns every
    /// distinct status seen, in order.
    pub async fn status_sequence(&self, url: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen: Vec<String> = Vec::new();
        loop {
            let answer = self.get(url).await;
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
            let status = answer.body["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if seen.last() != Some(&status) {
                seen.push(status.clone());
            }
            let lower = status.to_ascii_lowercase();
            if ["succeeded", "failed", "canceled"].contains(&lower.as_str()) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "operation never finished: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls a `Location` URL until it stops answering 202; returns the final answer.
    pub async fn wait_location(&self, url: &str) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = self.get(url).await;
            if answer.status != StatusCode::ACCEPTED {
                return answer;
            }
            assert!(Instant::now() < deadline, "operation never finished");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

pub fn rg_path(rg: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}")
}

pub fn deployment_path(rg: &str, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Resources/deployments/{name}",
        rg_path(rg)
    )
}

pub fn stack_path(rg: &str, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Resources/deploymentStacks/{name}",
        rg_path(rg)
    )
}

/// Storage accounts named by the `names` parameter, tags from `tags`, and outputs
/// of each kind.
pub fn storage_template() -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "names": { "type": "array" },
            "tags": { "type": "object", "defaultValue": {} }
        },
        "resources": [
            {
                "copy": { "name": "accounts", "count": "[length(parameters('names'))]" },
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-01-01",
                "name": "[parameters('names')[copyIndex()]]",
                "location": "[resourceGroup().location]",
                "tags": "[parameters('tags')]",
                "sku": { "name": "Standard_LRS" },
                "kind": "StorageV2",
                "properties": { "minimumTlsVersion": "TLS1_2" }
            }
        ],
        "outputs": {
            "firstId": {
                "type": "string",
                "value": "[resourceId('Microsoft.Storage/storageAccounts', parameters('names')[0])]"
            },
            "count": { "type": "int", "value": "[length(parameters('names'))]" },
            "ok": { "type": "bool", "value": true },
            "tags": { "type": "object", "value": "[parameters('tags')]" },
            "names": { "type": "array", "value": "[parameters('names')]" }
        }
    })
}

pub fn storage_deployment(names: &[&str], tags: Value) -> Value {
    json!({
        "properties": {
            "mode": "Incremental",
            "template": storage_template(),
            "parameters": { "names": { "value": names }, "tags": { "value": tags } }
        }
    })
}

pub fn account_id(rg: &str, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Storage/storageAccounts/{name}",
        rg_path(rg)
    )
}
