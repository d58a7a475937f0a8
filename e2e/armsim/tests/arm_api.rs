//! The ARM conversations a client has with the simulator, over HTTPS.

mod common;

use std::time::Duration;

use armsim::{Credential, InventoryAction, OperationRetentionConfig, SimConfig};
use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn token_endpoint_secret_assertion_and_errors() {
    let mut config = quick_config();
    config.credentials = vec![
        Credential {
            tenant_id: None,
            client_id: "app-1".into(),
            client_secret: Some("right".into()),
            allow_assertion: false,
        },
        Credential {
            tenant_id: Some(TENANT.into()),
            client_id: "wi-app".into(),
            client_secret: None,
            allow_assertion: true,
        },
    ];
    let tls_dir = tempfile::tempdir().unwrap();
    let sim = armsim::Simulator::start(config, tls_dir.path())
        .await
        .unwrap();
    assert_eq!(sim.ca_file(), tls_dir.path().join("ca.pem"));
    let http = client_for(&sim);
    let endpoint = sim.endpoint();

    let (status, body) = secret_token(&http, &endpoint, "right").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);

    let (status, body) = secret_token(&http, &endpoint, "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([7000215]));
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215:")
    );
    assert!(
        !body.to_string().contains("wrong"),
        "secrets are never echoed"
    );

    let assertion = [
        ("grant_type", "client_credentials"),
        ("client_id", "wi-app"),
        (
            "client_assertion",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
        ),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("scope", "https://management.azure.com/.default"),
    ];
    let (status, body) = token_request(&http, &endpoint, &assertion).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut unknown = assertion;
    unknown[1] = ("client_id", "someone-else");
    let (status, body) = token_request(&http, &endpoint, &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");

    assert_eq!(sim.counters().route("POST token"), 4);
}

#[tokio::test]
async fn arm_requires_api_version_and_a_token_it_issued() {
    let h = Harness::start(quick_config()).await;
    let path = format!("/subscriptions/{SUB}/resourcegroups/rg1");

    let answer = h.get(&path).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.code(), "MissingApiVersionParameter");
    assert_eq!(
        answer.header("x-ms-error-code"),
        Some("MissingApiVersionParameter")
    );

    let url = h.url(&format!("{path}?api-version={API}"));
    let anonymous = h.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers()["x-ms-error-code"],
        "AuthenticationFailed"
    );

    let forged = h.http.get(&url).bearer_auth("a.b.c").send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");

    // Headers every ARM answer carries; a client correlation id is echoed.
    let answer = h
        .http
        .get(&url)
        .bearer_auth(&h.token)
        .header("x-ms-correlation-request-id", "corr-123")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_eq!(answer.headers()["x-ms-correlation-request-id"], "corr-123");
    assert!(answer.headers().contains_key("x-ms-request-id"));
    assert!(answer.headers().contains_key("x-ms-routing-request-id"));
    assert!(
        answer
            .headers()
            .contains_key("x-ms-ratelimit-remaining-subscription-global-reads")
    );
}

#[tokio::test]
async fn tokens_expire() {
    let mut config = quick_config();
    config.token_lifetime_secs = 1;
    let h = Harness::start(config).await;
    let path = format!("/subscriptions/{SUB}/resourcegroups?api-version={API}");
    assert_eq!(h.get(&path).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = h.get(&path).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.code(), "ExpiredAuthenticationToken");
}

#[tokio::test]
async fn resource_groups_create_update_get_and_delete_with_contents() {
    let mut config = quick_config();
    config.latency.delete_ms = 500;
    let h = Harness::start(config).await;
    let path = format!("{}?api-version={API}", rg_path("Group-A"));

    let missing = h.get(&path).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "ResourceGroupNotFound");
    let no_location = h.put(&path, json!({ "tags": {} })).await;
    assert_eq!(no_location.code(), "LocationRequired");

    let created = h
        .put(
            &path,
            json!({ "location": "West Europe", "tags": { "a": "1" } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["type"], "Microsoft.Resources/resourceGroups");
    assert_eq!(created.body["location"], "westeurope");
    assert_eq!(created.body["properties"]["provisioningState"], "Succeeded");
    let updated = h
        .put(
            &format!("/subscriptions/{SUB}/resourcegroups/group-a?api-version={API}"),
            json!({ "location": "westeurope", "tags": { "a": "2" } }),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(
        updated.body["name"], "Group-A",
        "the first spelling is kept"
    );
    assert_eq!(h.get(&path).await.body["tags"]["a"], "2");
    let moved = h.put(&path, json!({ "location": "eastus" })).await;
    assert_eq!(moved.status, StatusCode::CONFLICT);

    // Fill it through a deployment, then delete the group.
    let deployment = h
        .put(
            &format!("{}?api-version={API}", deployment_path("Group-A", "fill")),
            storage_deployment(&["fill1", "fill2"], json!({})),
        )
        .await;
    assert_eq!(
        deployment.status,
        StatusCode::CREATED,
        "{:?}",
        deployment.body
    );
    h.wait_status(deployment.header("azure-asyncoperation").unwrap())
        .await;
    assert!(h.sim.resource(&account_id("group-a", "FILL1")).is_some());

    let deleted = h.delete(&path).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    let location = deleted.header("location").unwrap().to_owned();
    assert!(location.starts_with(&h.sim.endpoint()));
    assert_eq!(
        h.get(&path).await.body["properties"]["provisioningState"],
        "Deleting"
    );
    let done = h.wait_location(&location).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(h.get(&path).await.status, StatusCode::NOT_FOUND);
    assert!(h.sim.resource(&account_id("Group-A", "fill1")).is_none());
    assert!(h.sim.inventory().is_empty());
    let deployment_gone = h
        .get(&format!(
            "{}?api-version={API}",
            deployment_path("Group-A", "fill")
        ))
        .await;
    assert_eq!(deployment_gone.status, StatusCode::NOT_FOUND);
    assert_eq!(h.delete(&path).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deployment_create_poll_get_operations_and_delete_record() {
    let mut config = quick_config();
    config.latency.accepted_ms = 400;
    config.latency.running_ms = 400;
    let h = Harness::start(config).await;
    h.create_group("rg1").await;
    let path = format!("{}?api-version={API}", deployment_path("rg1", "dep1"));
    let tags = json!({ "owner": "team" });

    let created = h
        .put(&path, storage_deployment(&["acct1", "acct2"], tags.clone()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["properties"]["provisioningState"], "Accepted");
    let status_url = created.header("azure-asyncoperation").unwrap().to_owned();
    assert!(status_url.starts_with(&format!(
        "{}{}",
        h.sim.endpoint(),
        deployment_path("rg1", "dep1")
    )));
    assert!(status_url.contains("/operationStatuses/"));
    assert!(created.header("retry-after").is_some());

    // Progress is driven by time: Accepted, then Running, then Succeeded.
    assert_eq!(
        h.status_sequence(&status_url).await,
        ["Accepted", "Running", "Succeeded"]
    );

    let got = h.get(&path).await;
    let props = &got.body["properties"];
    assert_eq!(props["provisioningState"], "Succeeded");
    assert_eq!(got.body["type"], "Microsoft.Resources/deployments");
    assert_eq!(props["outputs"]["firstId"]["type"], "String");
    assert_eq!(
        props["outputs"]["firstId"]["value"],
        account_id("rg1", "acct1")
    );
    assert_eq!(
        props["outputs"]["count"],
        json!({ "type": "Int", "value": 2 })
    );
    assert_eq!(props["outputs"]["ok"]["type"], "Bool");
    assert_eq!(
        props["outputs"]["tags"],
        json!({ "type": "Object", "value": tags })
    );
    assert_eq!(props["outputs"]["names"]["type"], "Array");
    assert_eq!(props["parameters"]["names"]["type"], "Array");
    let output_ids: Vec<&str> = props["outputResources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        output_ids,
        [account_id("rg1", "acct1"), account_id("rg1", "acct2")]
    );
    assert!(props["correlationId"].is_string());
    assert!(props["duration"].as_str().unwrap().starts_with("PT"));

    // The inventory has the evaluated resources; GET by id returns them.
    let account = h
        .get(&format!(
            "{}?api-version=2023-01-01",
            account_id("rg1", "acct1")
        ))
        .await;
    assert_eq!(account.status, StatusCode::OK);
    assert_eq!(account.body["location"], "westeurope");
    assert_eq!(account.body["tags"]["owner"], "team");
    assert_eq!(account.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(h.sim.created_count(&account_id("rg1", "acct1")), 1);

    let operations = h
        .get(&format!(
            "{}/operations?api-version={API}",
            deployment_path("rg1", "dep1")
        ))
        .await;
    let ops = operations.body["value"].as_array().unwrap();
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0]["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        ops[0]["properties"]["targetResource"]["id"],
        account_id("rg1", "acct1")
    );
    assert_eq!(
        ops[0]["properties"]["targetResource"]["resourceType"],
        "Microsoft.Storage/storageAccounts"
    );

    // Redeploying the same template updates, never creates twice.
    let again = h
        .put(&path, storage_deployment(&["acct1", "acct2"], tags.clone()))
        .await;
    h.wait_status(again.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(h.sim.created_count(&account_id("rg1", "acct1")), 1);
    assert!(
        h.sim
            .events()
            .iter()
            .any(|e| e.action == InventoryAction::Updated && e.id == account_id("rg1", "acct1"))
    );

    let history = h
        .get(&format!(
            "{}/providers/Microsoft.Resources/deployments?api-version={API}",
            rg_path("rg1")
        ))
        .await;
    assert_eq!(history.body["value"][0]["name"], "dep1");

    // DELETE removes the record only.
    let deleted = h.delete(&path).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    let done = h.wait_location(deleted.header("location").unwrap()).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    let gone = h.get(&path).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "DeploymentNotFound");
    assert!(h.sim.resource(&account_id("rg1", "acct1")).is_some());
    assert_eq!(h.delete(&path).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn deployment_active_conflict_and_cancel() {
    let mut config = quick_config();
    config.latency.running_ms = 1000;
    let h = Harness::start(config).await;
    h.create_group("rg1").await;
    let path = format!("{}?api-version={API}", deployment_path("rg1", "slow"));
    let created = h
        .put(&path, storage_deployment(&["slow1"], json!({})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);

    let again = h
        .put(&path, storage_deployment(&["slow1"], json!({})))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "DeploymentActive");
    assert_eq!(h.delete(&path).await.status, StatusCode::CONFLICT);

    let cancel = format!(
        "{}/cancel?api-version={API}",
        deployment_path("rg1", "slow")
    );
    assert_eq!(h.post(&cancel, None).await.status, StatusCode::NO_CONTENT);
    let status = h
        .wait_status(created.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(status["status"], "Canceled");
    assert_eq!(
        h.get(&path).await.body["properties"]["provisioningState"],
        "Canceled"
    );
    let second = h.post(&cancel, None).await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.code(), "DeploymentCannotBeCancelled");

    // The canceled deployment never creates its resource, even after its time.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(h.sim.resource(&account_id("rg1", "slow1")).is_none());
    let missing = h
        .post(
            &format!(
                "{}/cancel?api-version={API}",
                deployment_path("rg1", "nope")
            ),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Repeated what-ifs, as a controller's drift checks make them, leave at most
/// `operationRetention.maxFinished` finished operations behind: the newest stay
/// pollable, the oldest answer 404 `OperationNotFound` as ARM's expired ones do.
#[tokio::test]
async fn finished_operations_beyond_the_retention_are_forgotten() {
    let mut config = quick_config();
    config.operation_retention = OperationRetentionConfig {
        max_finished: 5,
        ..OperationRetentionConfig::default()
    };
    let h = Harness::start(config).await;
    h.create_group("rg1").await;
    let deployed = h
        .put(
            &format!("{}?api-version={API}", deployment_path("rg1", "base")),
            storage_deployment(&["one", "two"], json!({ "v": "1" })),
        )
        .await;
    h.wait_status(deployed.header("azure-asyncoperation").unwrap())
        .await;

    let mut results = Vec::new();
    for _ in 0..40 {
        let what_if = h
            .post(
                &format!(
                    "{}/whatIf?api-version={API}",
                    deployment_path("rg1", "base")
                ),
                Some(storage_deployment(&["one"], json!({ "v": "1" }))),
            )
            .await;
        assert_eq!(what_if.status, StatusCode::ACCEPTED, "{:?}", what_if.body);
        let location = what_if.header("location").unwrap().to_owned();
        let result = h.wait_location(&location).await;
        assert_eq!(result.status, StatusCode::OK, "{:?}", result.body);
        assert_eq!(
            result.body["properties"]["changes"][1]["changeType"],
            "Ignore"
        );
        results.push(location);
    }
    assert!(
        h.sim.operation_count() <= 5,
        "{} kept",
        h.sim.operation_count()
    );
    let newest = h.get(results.last().unwrap()).await;
    assert_eq!(newest.status, StatusCode::OK);
    assert_eq!(newest.body["status"], "Succeeded");
    let oldest = h.get(&results[0]).await;
    assert_eq!(oldest.status, StatusCode::NOT_FOUND);
    assert_eq!(oldest.code(), "OperationNotFound");
}

#[tokio::test]
async fn validate_and_what_if() {
    let h = Harness::start(quick_config()).await;
    h.create_group("rg1").await;
    let first = h
        .put(
            &format!("{}?api-version={API}", deployment_path("rg1", "base")),
            storage_deployment(&["keep", "other"], json!({ "v": "1" })),
        )
        .await;
    h.wait_status(first.header("azure-asyncoperation").unwrap())
        .await;

    let validate = h
        .post(
            &format!(
                "{}/validate?api-version={API}",
                deployment_path("rg1", "next")
            ),
            Some(storage_deployment(&["keep", "fresh"], json!({ "v": "1" }))),
        )
        .await;
    assert_eq!(validate.status, StatusCode::OK, "{:?}", validate.body);
    assert_eq!(
        validate.body["properties"]["provisioningState"],
        "Succeeded"
    );
    assert_eq!(
        validate.body["properties"]["validatedResources"][1]["id"],
        account_id("rg1", "fresh")
    );
    assert!(
        h.sim.resource(&account_id("rg1", "fresh")).is_none(),
        "validate creates nothing"
    );
    let invalid = h
        .post(
            &format!("{}/validate?api-version={API}", deployment_path("rg1", "next")),
            Some(json!({ "properties": { "mode": "Incremental", "template": { "resources": "[bogus(" } } })),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert!(
        invalid.code().starts_with("InvalidTemplate"),
        "{:?}",
        invalid.body
    );

    let mut body = storage_deployment(&["keep", "fresh"], json!({ "v": "2" }));
    body["properties"]["mode"] = json!("Complete");
    let what_if = h
        .post(
            &format!(
                "{}/whatIf?api-version={API}",
                deployment_path("rg1", "next")
            ),
            Some(body),
        )
        .await;
    assert_eq!(what_if.status, StatusCode::ACCEPTED);
    let result = h.wait_location(what_if.header("location").unwrap()).await;
    assert_eq!(result.status, StatusCode::OK);
    assert_eq!(result.body["status"], "Succeeded");
    let changes = result.body["properties"]["changes"].as_array().unwrap();
    let change = |name: &str| {
        changes
            .iter()
            .find(|c| {
                c["resourceId"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case(&account_id("rg1", name))
            })
            .unwrap_or_else(|| panic!("no change for {name}: {changes:?}"))
    };
    assert_eq!(change("keep")["changeType"], "Modify");
    assert_eq!(change("keep")["delta"][0]["path"], "tags.v");
    assert_eq!(change("fresh")["changeType"], "Create");
    assert_eq!(change("other")["changeType"], "Delete");
    assert!(
        h.sim.resource(&account_id("rg1", "fresh")).is_none(),
        "what-if creates nothing"
    );
}

#[tokio::test]
async fn subscription_scope_deployment_creates_resource_groups() {
    let h = Harness::start(quick_config()).await;
    let path = format!(
        "/subscriptions/{SUB}/providers/Microsoft.Resources/deployments/sub-dep?api-version={API}"
    );
    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": { "rgName": { "type": "string" } },
        "resources": [{
            "type": "Microsoft.Resources/resourceGroups",
            "apiVersion": "2022-09-01",
            "name": "[parameters('rgName')]",
            "location": "[deployment().location]"
        }],
        "outputs": { "rgId": { "type": "string", "value": "[subscriptionResourceId('Microsoft.Resources/resourceGroups', parameters('rgName'))]" } }
    });
    let body = json!({ "properties": { "mode": "Incremental", "template": template, "parameters": { "rgName": { "value": "made-by-sub" } } } });
    let no_location = h.put(&path, body.clone()).await;
    assert_eq!(no_location.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_location.code(), "LocationRequired");

    let mut with_location = body;
    with_location["location"] = json!("westeurope");
    let created = h.put(&path, with_location).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let status_url = created.header("azure-asyncoperation").unwrap();
    assert!(status_url.contains(&format!(
        "/subscriptions/{SUB}/providers/Microsoft.Resources/deployments/sub-dep/operationStatuses/"
    )));
    assert_eq!(h.wait_status(status_url).await["status"], "Succeeded");
    let got = h.get(&path).await;
    assert_eq!(got.body["location"], "westeurope");
    assert_eq!(
        got.body["properties"]["outputs"]["rgId"]["value"],
        rg_path("made-by-sub")
    );
    let group = h
        .get(&format!("{}?api-version={API}", rg_path("made-by-sub")))
        .await;
    assert_eq!(group.status, StatusCode::OK);
    assert_eq!(group.body["location"], "westeurope");
}

#[tokio::test]
async fn resources_by_id_and_providers() {
    let h = Harness::start(quick_config()).await;
    h.create_group("rg1").await;
    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            { "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-09-01", "name": "vnet", "location": "westeurope",
              "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] } } },
            { "type": "Microsoft.Network/virtualNetworks/subnets", "apiVersion": "2023-09-01", "name": "vnet/default",
              "dependsOn": ["[resourceId('Microsoft.Network/virtualNetworks', 'vnet')]"],
              "properties": { "addressPrefix": "10.0.0.0/24" } },
            { "type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "plainacct", "location": "westeurope",
              "sku": { "name": "Standard_LRS" }, "kind": "StorageV2" }
        ]
    });
    let created = h
        .put(
            &format!("{}?api-version={API}", deployment_path("rg1", "net")),
            json!({ "properties": { "mode": "Incremental", "template": template } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        h.wait_status(created.header("azure-asyncoperation").unwrap())
            .await["status"],
        "Succeeded"
    );

    let vnet = format!(
        "{}/providers/Microsoft.Network/virtualNetworks/vnet",
        rg_path("rg1")
    );
    let subnet = format!("{vnet}/subnets/default");
    let subnet_answer = h.get(&format!("{subnet}?api-version=2023-09-01")).await;
    assert_eq!(subnet_answer.status, StatusCode::OK);
    assert_eq!(
        subnet_answer.body["properties"]["addressPrefix"],
        "10.0.0.0/24"
    );
    // Azure's published Microsoft.Network api-versions are accepted by id as they are in
    // templates (2023-05-01 was refused once).
    let published = h.get(&format!("{vnet}?api-version=2023-05-01")).await;
    assert_eq!(published.status, StatusCode::OK, "{:?}", published.body);
    assert_eq!(
        published.body["properties"]["addressSpace"]["addressPrefixes"][0],
        "10.0.0.0/16"
    );
    let bad_version = h.get(&format!("{vnet}?api-version=1999-01-01")).await;
    assert_eq!(bad_version.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_version.code(), "NoRegisteredProviderFound");

    // Network deletes are asynchronous and take the children along.
    let deleted = h.delete(&format!("{vnet}?api-version=2023-09-01")).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert_eq!(
        h.wait_location(deleted.header("location").unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let gone = h.get(&format!("{subnet}?api-version=2023-09-01")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "ResourceNotFound");
    assert_eq!(
        h.delete(&format!("{vnet}?api-version=2023-09-01"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    // Storage deletes are synchronous.
    let account = account_id("rg1", "plainacct");
    assert_eq!(
        h.delete(&format!("{account}?api-version=2023-01-01"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        h.get(&format!("{account}?api-version=2023-01-01"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let wrong_group = h
        .get(&format!(
            "{}?api-version=2023-01-01",
            account_id("nogroup", "x")
        ))
        .await;
    assert_eq!(wrong_group.code(), "ResourceGroupNotFound");

    let provider = h
        .get(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.Storage?api-version={API}"
        ))
        .await;
    assert_eq!(provider.status, StatusCode::OK);
    let types = provider.body["resourceTypes"].as_array().unwrap();
    let accounts = types
        .iter()
        .find(|t| t["resourceType"] == "storageAccounts")
        .unwrap();
    let versions: Vec<&str> = accounts["apiVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(versions.contains(&"2023-01-01"));
    assert!(versions.iter().any(|v| v.ends_with("-preview")));
    let unknown = h
        .get(&format!(
            "/subscriptions/{SUB}/providers/Contoso.Nothing?api-version={API}"
        ))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stacks_create_update_drop_and_delete_with_unmanage_actions() {
    let mut config = quick_config();
    config.latency.accepted_ms = 300;
    config.latency.running_ms = 300;
    let h = Harness::start(config).await;
    h.create_group("rg1").await;
    let path = format!("{}?api-version={STACK_API}", stack_path("rg1", "stack1"));
    let stack_body = |names: &[&str], resources: &str| {
        let mut body = storage_deployment(names, json!({}));
        let properties = body["properties"].as_object_mut().unwrap();
        properties.remove("mode");
        properties.insert(
            "actionOnUnmanage".into(),
            json!({ "resources": resources, "resourceGroups": "delete" }),
        );
        properties.insert("denySettings".into(), json!({ "mode": "none" }));
        body
    };

    let missing = h.get(&path).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "DeploymentStackResourceNotFound");
    let mut no_deny = stack_body(&["sa1"], "delete");
    no_deny["properties"]
        .as_object_mut()
        .unwrap()
        .remove("denySettings");
    assert_eq!(h.put(&path, no_deny).await.status, StatusCode::BAD_REQUEST);

    let created = h
        .put(&path, stack_body(&["sa1", "sa2", "sa3"], "delete"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        created.body["properties"]["provisioningState"],
        "initializing"
    );
    let status_url = created.header("azure-asyncoperation").unwrap().to_owned();
    assert_eq!(
        h.status_sequence(&status_url).await,
        ["initializing", "deploying", "succeeded"]
    );
    let got = h.get(&path).await;
    let props = &got.body["properties"];
    assert_eq!(props["provisioningState"], "succeeded");
    assert_eq!(props["resources"].as_array().unwrap().len(), 3);
    assert_eq!(props["resources"][0]["status"], "managed");
    assert_eq!(props["outputs"]["count"]["value"], 3);

    // Dropping s3 deletes it (actionOnUnmanage.resources = delete).
    let updated = h.put(&path, stack_body(&["sa1", "sa2"], "delete")).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(
        h.wait_status(updated.header("azure-asyncoperation").unwrap())
            .await["status"],
        "succeeded"
    );
    let props = h.get(&path).await.body["properties"].clone();
    assert_eq!(
        props["deletedResources"],
        json!([{ "id": account_id("rg1", "sa3") }])
    );
    assert!(h.sim.resource(&account_id("rg1", "sa3")).is_none());

    // Dropping s2 with detach keeps it in the inventory.
    let updated = h.put(&path, stack_body(&["sa1"], "detach")).await;
    assert_eq!(
        h.wait_status(updated.header("azure-asyncoperation").unwrap())
            .await["status"],
        "succeeded"
    );
    let props = h.get(&path).await.body["properties"].clone();
    assert_eq!(
        props["detachedResources"],
        json!([{ "id": account_id("rg1", "sa2") }])
    );
    assert!(h.sim.resource(&account_id("rg1", "sa2")).is_some());

    let bad_action = h
        .delete(&format!("{path}&unmanageAction.Resources=purge"))
        .await;
    assert_eq!(bad_action.status, StatusCode::BAD_REQUEST);
    let deleted = h
        .delete(&format!(
            "{path}&unmanageAction.Resources=delete&unmanageAction.ResourceGroups=delete"
        ))
        .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    h.wait_location(deleted.header("location").unwrap()).await;
    assert_eq!(h.get(&path).await.status, StatusCode::NOT_FOUND);
    assert!(h.sim.resource(&account_id("rg1", "sa1")).is_none());
    assert!(
        h.sim.resource(&account_id("rg1", "sa2")).is_some(),
        "detached earlier, not managed"
    );

    // Deleting a stack with detach leaves its resources.
    let path2 = format!("{}?api-version={STACK_API}", stack_path("rg1", "stack2"));
    let created = h.put(&path2, stack_body(&["ta1"], "delete")).await;
    h.wait_status(created.header("azure-asyncoperation").unwrap())
        .await;
    let deleted = h
        .delete(&format!("{path2}&unmanageAction.Resources=detach"))
        .await;
    h.wait_location(deleted.header("location").unwrap()).await;
    assert_eq!(h.get(&path2).await.status, StatusCode::NOT_FOUND);
    assert!(h.sim.resource(&account_id("rg1", "ta1")).is_some());
}

#[tokio::test]
async fn config_can_be_loaded_from_yaml() {
    let config = SimConfig::from_yaml("seed: 3\nlatency: { runningMs: 5 }").unwrap();
    let h = Harness::start(config).await;
    assert_eq!(h.sim.config().latency.running_ms, 5);
}

#[tokio::test]
async fn nested_deployments_get_their_own_records() {
    let h = Harness::start(quick_config()).await;
    h.create_group("rg1").await;
    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [{
            "type": "Microsoft.Resources/deployments",
            "apiVersion": "2022-09-01",
            "name": "inner",
            "properties": {
                "mode": "Incremental",
                "expressionEvaluationOptions": { "scope": "inner" },
                "parameters": { "n": { "value": "nestedacct" } },
                "template": {
                    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                    "contentVersion": "1.0.0.0",
                    "parameters": { "n": { "type": "string" } },
                    "resources": [{
                        "type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01",
                        "name": "[parameters('n')]", "location": "westeurope",
                        "sku": { "name": "Standard_LRS" }, "kind": "StorageV2"
                    }],
                    "outputs": { "id": { "type": "string", "value": "[resourceId('Microsoft.Storage/storageAccounts', parameters('n'))]" } }
                }
            }
        }],
        "outputs": { "fromInner": { "type": "string", "value": "[reference('inner').outputs.id.value]" } }
    });
    let path = format!("{}?api-version={API}", deployment_path("rg1", "outer"));
    let created = h
        .put(
            &path,
            json!({ "properties": { "mode": "Incremental", "template": template } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        h.wait_status(created.header("azure-asyncoperation").unwrap())
            .await["status"],
        "Succeeded"
    );

    let outer = h.get(&path).await.body;
    assert_eq!(
        outer["properties"]["outputs"]["fromInner"]["value"],
        account_id("rg1", "nestedacct")
    );
    assert_eq!(
        outer["properties"]["outputResources"],
        json!([{ "id": account_id("rg1", "nestedacct") }])
    );
    let inner = h
        .get(&format!(
            "{}?api-version={API}",
            deployment_path("rg1", "inner")
        ))
        .await;
    assert_eq!(inner.status, StatusCode::OK);
    assert_eq!(inner.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        inner.body["properties"]["outputs"]["id"]["value"],
        account_id("rg1", "nestedacct")
    );
    assert!(h.sim.resource(&account_id("rg1", "nestedacct")).is_some());
}

#[tokio::test]
async fn complete_mode_removes_what_the_template_no_longer_declares() {
    let h = Harness::start(quick_config()).await;
    h.create_group("rg1").await;
    let path = format!("{}?api-version={API}", deployment_path("rg1", "dep"));
    let first = h
        .put(&path, storage_deployment(&["stay", "goes"], json!({})))
        .await;
    h.wait_status(first.header("azure-asyncoperation").unwrap())
        .await;
    let mut complete = storage_deployment(&["stay"], json!({}));
    complete["properties"]["mode"] = json!("Complete");
    let second = h.put(&path, complete).await;
    assert_eq!(
        h.wait_status(second.header("azure-asyncoperation").unwrap())
            .await["status"],
        "Succeeded"
    );
    assert_eq!(h.get(&path).await.body["properties"]["mode"], "Complete");
    assert!(h.sim.resource(&account_id("rg1", "stay")).is_some());
    assert!(h.sim.resource(&account_id("rg1", "goes")).is_none());
    assert!(h.sim.resource(&rg_path("rg1")).is_some());
}

#[tokio::test]
async fn bad_deployment_requests_change_nothing() {
    let h = Harness::start(quick_config()).await;
    let missing_group = h
        .put(
            &format!("{}?api-version={API}", deployment_path("nowhere", "dep")),
            storage_deployment(&["aaa"], json!({})),
        )
        .await;
    assert_eq!(missing_group.status, StatusCode::NOT_FOUND);
    assert_eq!(missing_group.code(), "ResourceGroupNotFound");

    h.create_group("rg1").await;
    let bad_name = h
        .put(
            &format!("{}?api-version={API}", deployment_path("rg1", "bad%20name")),
            storage_deployment(&["aaa"], json!({})),
        )
        .await;
    assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_name.code(), "InvalidDeploymentName");

    let no_template = h
        .put(
            &format!("{}?api-version={API}", deployment_path("rg1", "dep")),
            json!({ "properties": { "mode": "Incremental" } }),
        )
        .await;
    assert_eq!(no_template.code(), "InvalidRequestContent");
    let not_json = h
        .http
        .put(h.url(&format!(
            "{}?api-version={API}",
            deployment_path("rg1", "dep")
        )))
        .bearer_auth(&h.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let missing_parameter = h
        .put(
            &format!("{}?api-version={API}", deployment_path("rg1", "dep")),
            json!({ "properties": { "mode": "Incremental", "template": storage_template() } }),
        )
        .await;
    assert_eq!(missing_parameter.status, StatusCode::BAD_REQUEST);
    assert!(
        missing_parameter.code().starts_with("InvalidTemplate"),
        "{:?}",
        missing_parameter.body
    );

    assert_eq!(h.sim.inventory().len(), 1, "only the resource group exists");
    let never = h
        .get(&format!(
            "{}?api-version={API}",
            deployment_path("rg1", "dep")
        ))
        .await;
    assert_eq!(never.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn subscription_stack_deletes_dropped_resource_groups() {
    let h = Harness::start(quick_config()).await;
    let path = format!(
        "/subscriptions/{SUB}/providers/Microsoft.Resources/deploymentStacks/groups?api-version={STACK_API}"
    );
    let body = |groups: &[&str]| {
        json!({
            "location": "westeurope",
            "properties": {
                "template": {
                    "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
                    "contentVersion": "1.0.0.0",
                    "parameters": { "groups": { "type": "array" } },
                    "resources": [{
                        "copy": { "name": "groups", "count": "[length(parameters('groups'))]" },
                        "type": "Microsoft.Resources/resourceGroups",
                        "apiVersion": "2022-09-01",
                        "name": "[parameters('groups')[copyIndex()]]",
                        "location": "westeurope"
                    }]
                },
                "parameters": { "groups": { "value": groups } },
                "actionOnUnmanage": { "resources": "detach", "resourceGroups": "delete" },
                "denySettings": { "mode": "none" }
            }
        })
    };
    let created = h.put(&path, body(&["stack-rg-1", "stack-rg-2"])).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        h.wait_status(created.header("azure-asyncoperation").unwrap())
            .await["status"],
        "succeeded"
    );
    assert!(h.sim.resource(&rg_path("stack-rg-2")).is_some());

    let updated = h.put(&path, body(&["stack-rg-1"])).await;
    assert_eq!(
        h.wait_status(updated.header("azure-asyncoperation").unwrap())
            .await["status"],
        "succeeded"
    );
    assert!(h.sim.resource(&rg_path("stack-rg-2")).is_none());
    assert!(h.sim.resource(&rg_path("stack-rg-1")).is_some());
    let props = h.get(&path).await.body["properties"].clone();
    assert_eq!(
        props["deletedResources"],
        json!([{ "id": rg_path("stack-rg-2") }])
    );
}

/// A template that reads a virtual network by id, with a secure and a plain output.
fn reads_vnet_template() -> Value {
    json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": { "secret": { "type": "securestring" } },
        "resources": [],
        "outputs": {
            "vnetLocation": {
                "type": "string",
                "value": "[reference(resourceId('Microsoft.Network/virtualNetworks', 'hub'), '2023-09-01', 'Full').location]"
            },
            "echoed": { "type": "securestring", "value": "[parameters('secret')]" }
        }
    })
}

#[tokio::test]
async fn reading_an_absent_resource_fails_the_deployment_unless_assumed() {
    let h = Harness::start(quick_config()).await;
    h.create_group("rg-ref").await;
    let path = format!("{}?api-version={API}", deployment_path("rg-ref", "reads"));
    let body = json!({ "properties": {
        "mode": "Incremental",
        "template": reads_vnet_template(),
        "parameters": { "secret": { "value": "hunter2-secret" } }
    }});

    let created = h.put(&path, body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let status = h
        .wait_status(created.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(status["status"], "Failed");
    let got = h.get(&path).await;
    let error = &got.body["properties"]["error"];
    assert_eq!(error["code"], "DeploymentFailed");
    assert_eq!(error["details"][0]["code"], "ResourceNotFound");
    let vnet = format!(
        "{}/providers/Microsoft.Network/virtualNetworks/hub",
        rg_path("rg-ref")
    );
    assert!(
        error["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&vnet),
        "{error}"
    );
    assert!(got.body["properties"].get("outputs").is_none());

    let mut config = quick_config();
    config.assume_existing = vec!["microsoft.network/.*".into()];
    h.sim.update_config(config).unwrap();
    let created = h.put(&path, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let status = h
        .wait_status(created.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(status["status"], "Succeeded", "{status}");
    let got = h.get(&path).await;
    let outputs = &got.body["properties"]["outputs"];
    assert_eq!(outputs["vnetLocation"]["value"], "westeurope");
    assert_eq!(outputs["echoed"]["type"], "SecureString");
    assert!(outputs["echoed"].get("value").is_none(), "{outputs}");
    assert!(!got.body.to_string().contains("hunter2-secret"));
    assert!(
        h.sim.resource(&vnet).is_none(),
        "assumed resources are not stored"
    );
    assert_eq!(
        h.get(&format!("{vnet}?api-version=2023-09-01"))
            .await
            .status,
        404
    );
}

#[test]
fn assume_existing_patterns_are_checked() {
    let bad = SimConfig::from_yaml("assumeExisting: ['(']").unwrap_err();
    assert!(bad.to_string().contains("assumeExisting"), "{bad}");
    let good = SimConfig::from_yaml("assumeExisting: ['Microsoft.KeyVault/vaults']").unwrap();
    assert_eq!(good.assume_existing, vec!["Microsoft.KeyVault/vaults"]);
}

#[tokio::test]
async fn managed_identity_tokens_from_imds_and_app_service_endpoints() {
    let h = Harness::start(quick_config()).await;
    let identity = armsim::ManagedIdentityConfig::default();
    let imds = h.url(
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F",
    );

    let refused = h.http.get(&imds).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");

    let granted = h
        .http
        .get(&imds)
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), StatusCode::OK);
    let body: Value = granted.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["resource"], "https://management.azure.com/");
    assert_eq!(body["client_id"], identity.client_id.as_str());
    assert_eq!(body["expires_in"], "3599");
    let token = body["access_token"].as_str().unwrap();
    let groups = h
        .http
        .get(h.url(&format!(
            "/subscriptions/{SUB}/resourcegroups?api-version={API}"
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        groups.status(),
        StatusCode::OK,
        "the token is accepted by ARM"
    );

    let app_service =
        h.url("/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com%2F");
    let wrong = h
        .http
        .get(&app_service)
        .header("X-IDENTITY-HEADER", "guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = h
        .http
        .get(&app_service)
        .header("X-IDENTITY-HEADER", identity.identity_header.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert_eq!(h.sim.counters().route("GET identityToken"), 4);
}

#[tokio::test]
async fn a_stack_reading_an_absent_resource_fails_while_deploying() {
    let h = Harness::start(quick_config()).await;
    h.create_group("rg-stack-ref").await;
    let path = format!(
        "{}?api-version={STACK_API}",
        stack_path("rg-stack-ref", "reads")
    );
    let created = h
        .put(
            &path,
            json!({ "properties": {
                "template": reads_vnet_template(),
                "parameters": { "secret": { "value": "hunter2-secret" } },
                "actionOnUnmanage": { "resources": "detach" },
                "denySettings": { "mode": "none" }
            }}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let status = h
        .wait_status(created.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(status["status"], "failed", "{status}");
    let got = h.get(&path).await;
    let error = &got.body["properties"]["error"];
    assert_eq!(error["code"], "DeploymentFailed", "{}", got.body);
    assert_eq!(error["details"][0]["code"], "ResourceNotFound");
    assert!(
        error["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("virtualNetworks/hub")
    );
}
