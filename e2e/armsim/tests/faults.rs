//! Fault injection, throttling, counters, the admin API and the binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use armsim::{BucketConfig, FaultStage, RequestFault, RequestFaultRule, ResourceFaultRule};
use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn tagged_resource_fails_the_deployment_as_arm_reports_it() {
    let h = Harness::start(quick_config()).await;
    h.create_group("rg1").await;
    let path = format!("{}?api-version={API}", deployment_path("rg1", "bad"));
    let created = h
        .put(
            &path,
            storage_deployment(&["boom"], json!({ "armsim-fail": "Conflict" })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let status = h
        .wait_status(created.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(status["status"], "Failed");
    assert_eq!(status["error"]["code"], "DeploymentFailed");
    assert_eq!(status["error"]["details"][0]["code"], "Conflict");
    let got = h.get(&path).await;
    assert_eq!(got.body["properties"]["provisioningState"], "Failed");
    assert_eq!(
        got.body["properties"]["error"]["details"][0]["code"],
        "Conflict"
    );
    assert!(got.body["properties"].get("outputs").is_none());
    let operations = h
        .get(&format!(
            "{}/operations?api-version={API}",
            deployment_path("rg1", "bad")
        ))
        .await;
    assert_eq!(
        operations.body["value"][0]["properties"]["provisioningState"],
        "Failed"
    );
    assert_eq!(
        operations.body["value"][0]["properties"]["statusCode"],
        "Conflict"
    );
    assert!(h.sim.resource(&account_id("rg1", "boom")).is_none());
}

#[tokio::test]
async fn config_rules_fail_deployments_and_preflight() {
    let mut config = quick_config();
    config.faults.resource_rules = vec![
        ResourceFaultRule {
            resource_type: Some("^Microsoft\\.Storage/".into()),
            name: Some("^quota".into()),
            stage: FaultStage::Deploy,
            code: "QuotaExceeded".into(),
            message: Some("Out of storage accounts.".into()),
        },
        ResourceFaultRule {
            resource_type: None,
            name: Some("^nosku".into()),
            stage: FaultStage::Preflight,
            code: "SkuNotAvailable".into(),
            message: None,
        },
    ];
    let h = Harness::start(config).await;
    h.create_group("rg1").await;

    let failing = h
        .put(
            &format!("{}?api-version={API}", deployment_path("rg1", "quota")),
            storage_deployment(&["fine", "quota1"], json!({})),
        )
        .await;
    let status = h
        .wait_status(failing.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(status["error"]["details"][0]["code"], "QuotaExceeded");
    assert_eq!(
        status["error"]["details"][0]["message"],
        "Out of storage accounts."
    );
    assert!(
        h.sim.resource(&account_id("rg1", "fine")).is_some(),
        "resources before the failure exist"
    );

    let refused = h
        .put(
            &format!("{}?api-version={API}", deployment_path("rg1", "preflight")),
            storage_deployment(&["nosku1"], json!({})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.code(), "InvalidTemplateDeployment");
    assert_eq!(
        refused.body["error"]["details"][0]["code"],
        "SkuNotAvailable"
    );
    let never_started = h
        .get(&format!(
            "{}?api-version={API}",
            deployment_path("rg1", "preflight")
        ))
        .await;
    assert_eq!(
        never_started.status,
        StatusCode::NOT_FOUND,
        "bad input changes nothing"
    );

    let tagged = h
        .post(
            &format!(
                "{}/validate?api-version={API}",
                deployment_path("rg1", "tagged")
            ),
            Some(storage_deployment(
                &["xx1"],
                json!({ "armsim-preflight": "RequestDisallowedByPolicy" }),
            )),
        )
        .await;
    assert_eq!(tagged.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        tagged.body["error"]["details"][0]["code"],
        "RequestDisallowedByPolicy"
    );
}

#[tokio::test]
async fn injected_throttles_gateway_errors_and_dropped_connections() {
    let h = Harness::start(quick_config()).await;
    let path = format!("/subscriptions/{SUB}/resourcegroups?api-version={API}");
    let set_fault = |fault: RequestFault| {
        let mut config = h.sim.config();
        config.faults.request_rules = vec![RequestFaultRule {
            route: Some("^GET resourceGroups/list$".into()),
            probability: 1.0,
            fault,
        }];
        h.sim.update_config(config).unwrap();
    };

    set_fault(RequestFault::Throttle {
        retry_after_secs: 7,
    });
    let throttled = h.get(&path).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.code(), "SubscriptionRequestsThrottled");
    assert_eq!(throttled.header("retry-after"), Some("7"));

    set_fault(RequestFault::Status { status: 503 });
    let unavailable = h.get(&path).await;
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unavailable.header("x-ms-failure-cause"), Some("gateway"));
    set_fault(RequestFault::Status { status: 500 });
    assert_eq!(h.get(&path).await.status, StatusCode::INTERNAL_SERVER_ERROR);
    set_fault(RequestFault::Status { status: 409 });
    let conflict = h.get(&path).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.code(), "Conflict");
    assert_eq!(conflict.header("x-ms-failure-cause"), None);

    set_fault(RequestFault::Drop);
    let dropped = h.http.get(h.url(&path)).bearer_auth(&h.token).send().await;
    assert!(
        dropped.is_err(),
        "the connection closes without an answer: {dropped:?}"
    );

    // Other routes are untouched; removing the rule heals the route.
    let group = h.get(&format!("{}?api-version={API}", rg_path("x"))).await;
    assert_eq!(group.status, StatusCode::NOT_FOUND);
    let mut config = h.sim.config();
    config.faults.request_rules.clear();
    h.sim.update_config(config).unwrap();
    assert_eq!(h.get(&path).await.status, StatusCode::OK);

    let counters = h.sim.counters();
    assert_eq!(counters.throttled, 1);
    assert_eq!(counters.faults, 4);
}

#[tokio::test]
async fn probabilistic_faults_repeat_with_the_seed() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let mut config = quick_config();
        config.seed = seed;
        config.faults.request_rules = vec![RequestFaultRule {
            route: None,
            probability: 0.5,
            fault: RequestFault::Status { status: 500 },
        }];
        let h = Harness::start(config).await;
        let path = format!("/subscriptions/{SUB}/resourcegroups?api-version={API}");
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(h.get(&path).await.status.as_u16());
        }
        statuses
    }
    let first = pattern(42).await;
    assert_eq!(first, pattern(42).await);
    assert!(first.contains(&500) && first.contains(&200), "{first:?}");
}

#[tokio::test]
async fn write_bucket_throttles_a_burst_and_refills() {
    let mut config = quick_config();
    // Slow refill, so a burst drains the bucket even on a loaded machine.
    config.throttling.writes = BucketConfig {
        capacity: 5,
        refill_per_sec: 0.5,
    };
    let h = Harness::start(config).await;
    let path = format!("{}?api-version={API}", rg_path("burst"));
    let mut remaining = Vec::new();
    let mut throttled = None;
    for _ in 0..8 {
        let answer = h.put(&path, json!({ "location": "westeurope" })).await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(answer);
            break;
        }
        remaining.push(
            answer
                .header("x-ms-ratelimit-remaining-subscription-global-writes")
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(remaining, ["4", "3", "2", "1", "0"]);
    let throttled = throttled.expect("the sixth write is throttled");
    assert_eq!(throttled.code(), "SubscriptionRequestsThrottled");
    let retry_after: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Reads draw from their own bucket.
    assert_eq!(h.get(&path).await.status, StatusCode::OK);
    // Another subscription has its own buckets.
    let other = format!("/subscriptions/other-sub/resourcegroups/burst?api-version={API}");
    assert_eq!(
        h.put(&other, json!({ "location": "westeurope" }))
            .await
            .status,
        StatusCode::CREATED
    );
    // Waiting as Retry-After says lets the next write through.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(
        h.put(&path, json!({ "location": "westeurope" }))
            .await
            .status,
        StatusCode::OK
    );

    let counters = h.sim.counters();
    assert_eq!(counters.throttled, 1);
    assert_eq!(counters.subscriptions[SUB].throttled, 1);
    assert_eq!(counters.subscriptions[SUB].writes, 7);
    assert_eq!(counters.subscriptions[SUB].reads, 1);
    assert_eq!(counters.route("PUT resourceGroups"), 8);
}

#[tokio::test]
async fn counters_reset_and_admin_api() {
    let h = Harness::start(quick_config()).await;
    h.create_group("rg1").await;
    h.get(&format!("{}?api-version={API}", rg_path("rg1")))
        .await;
    let counters = h.sim.counters();
    assert_eq!(counters.route("PUT resourceGroups"), 1);
    assert_eq!(counters.route("GET resourceGroups"), 1);
    assert_eq!(counters.subscriptions[SUB].writes, 1);

    let admin = h.http.get(h.url("/_armsim/counters")).send().await.unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
    let body: serde_json::Value = admin.json().await.unwrap();
    assert_eq!(body["byRoute"]["PUT resourceGroups"], 1);

    let inventory: serde_json::Value = h.get("/_armsim/inventory").await.body;
    assert_eq!(inventory["value"][0]["id"], rg_path("rg1"));
    let events: serde_json::Value = h.get("/_armsim/events").await.body;
    assert_eq!(events["value"][0]["action"], "created");

    let reset = h
        .http
        .delete(h.url("/_armsim/counters"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(h.sim.counters().total(), 0);
    h.get(&format!("{}?api-version={API}", rg_path("rg1")))
        .await;
    assert_eq!(h.sim.counters().total(), 1);
    h.sim.reset_counters();
    assert_eq!(h.sim.counters().total(), 0);

    let bad = h
        .http
        .put(h.url("/_armsim/config"))
        .body("faults: { requestRules: [ { probability: 2, fault: { kind: drop } } ] }")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        h.sim.config(),
        quick_config(),
        "a rejected config changes nothing"
    );
    let good = h
        .http
        .put(h.url("/_armsim/config"))
        .body("latency: { runningMs: 1 }\nfaults: { requestRules: [ { route: '^GET resourceGroups$', probability: 1, fault: { kind: status, status: 502 } } ] }")
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), StatusCode::OK);
    assert_eq!(h.sim.config().latency.running_ms, 1);
    let answer = h
        .get(&format!("{}?api-version={API}", rg_path("rg1")))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn slow_polls_delay_the_configured_route() {
    let mut config = quick_config();
    config
        .latency
        .responses
        .insert("GET resourceGroups".into(), 300);
    let h = Harness::start(config).await;
    let started = std::time::Instant::now();
    h.get(&format!("{}?api-version={API}", rg_path("rg1")))
        .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn binary_prints_endpoint_serves_and_stops_on_sigterm() {
    let tls_dir = tempfile::tempdir().unwrap();
    let config = tls_dir.path().join("sim.yaml");
    std::fs::write(&config, "latency: { runningMs: 10 }\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_armsim"))
        .args(["--listen", "127.0.0.1:0", "--tls-dir"])
        .arg(tls_dir.path())
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let endpoint = first.trim().to_owned();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    assert!(tls_dir.path().join("ca.pem").exists());

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ca = std::fs::read(tls_dir.path().join("ca.pem")).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap();
        let config: serde_json::Value = http
            .get(format!("{endpoint}/_armsim/config"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(config["latency"]["runningMs"], 10);
        let (status, _) = secret_token(&http, &endpoint, "x").await;
        assert_eq!(status, StatusCode::OK);
    });

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    let bad_config = Command::new(env!("CARGO_BIN_EXE_armsim"))
        .args(["--tls-dir"])
        .arg(tls_dir.path())
        .args(["--config", "/nonexistent/armsim.yaml"])
        .output()
        .unwrap();
    assert!(!bad_config.status.success());
}

#[tokio::test]
async fn storage_account_names_outside_the_providers_rules_are_refused() {
    let h = Harness::start(quick_config()).await;
    h.create_group("rg1").await;
    for (deployment, name) in [("upper", "Data37"), ("short", "ab"), ("dash", "data-37")] {
        let refused = h
            .put(
                &format!("{}?api-version={API}", deployment_path("rg1", deployment)),
                storage_deployment(&[name], json!({})),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(refused.code(), "InvalidTemplateDeployment");
        assert_eq!(
            refused.body["error"]["details"][0]["code"], "AccountNameInvalid",
            "{name}: {:?}",
            refused.body
        );
        let never_started = h
            .get(&format!(
                "{}?api-version={API}",
                deployment_path("rg1", deployment)
            ))
            .await;
        assert_eq!(never_started.status, StatusCode::NOT_FOUND, "{name}");
    }

    let direct = h
        .put(
            &format!("{}?api-version=2023-01-01", account_id("rg1", "Data37")),
            json!({"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}),
        )
        .await;
    assert_eq!(direct.status, StatusCode::BAD_REQUEST);
    assert_eq!(direct.code(), "AccountNameInvalid");
    assert!(h.sim.inventory().iter().all(|item| {
        !item
            .resource_type
            .eq_ignore_ascii_case("Microsoft.Storage/storageAccounts")
    }));

    let accepted = h
        .put(
            &format!("{}?api-version={API}", deployment_path("rg1", "good")),
            storage_deployment(&["data37"], json!({})),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{:?}", accepted.body);
}
