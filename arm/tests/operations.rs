//! Every client operation and error class against a running ARM simulator.

mod common;

use arm::models::{ActionOnUnmanage, DeploymentMode, DeploymentRequest, StackRequest};
use arm::{
    ArmClient, BucketLimit, CredentialCache, CredentialSpec, DeploymentScope, ErrorCategory,
    ErrorSource, LroHandle, LroKind, PollResult, Priority, RequestClass, RequestObserver,
    RequestRecord, ThrottleLimits, WhatIfStart,
};
use armsim::{
    BucketConfig, Credential, RequestFault, RequestFaultRule, SimConfig, ThrottlingConfig,
};
use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test]
async fn resource_group_lifecycle() {
    let h = start().await;
    let tags = BTreeMap::from([("owner".to_string(), "arm-tests".to_string())]);
    let rg = h
        .client
        .ensure_resource_group(SUB, "rg-life", "westeurope", &tags)
        .await
        .unwrap();
    assert_eq!(rg.name, "rg-life");
    assert_eq!(rg.properties.provisioning_state, "Succeeded");
    assert_eq!(rg.tags, tags);
    let again = h
        .client
        .ensure_resource_group(SUB, "rg-life", "westeurope", &BTreeMap::new())
        .await
        .unwrap();
    assert!(again.tags.is_empty(), "second PUT updates the tags");
    let got = h.client.get_resource_group(SUB, "rg-life").await.unwrap();
    assert_eq!(
        got.unwrap().id,
        format!("/subscriptions/{SUB}/resourceGroups/rg-life")
    );

    let handle = h
        .client
        .delete_resource_group(SUB, "rg-life")
        .await
        .unwrap()
        .expect("resource group deletion is long-running");
    assert_eq!(handle.kind, LroKind::Location);
    wait_done(&h.client, &handle).await;
    assert!(
        h.client
            .get_resource_group(SUB, "rg-life")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.client
            .delete_resource_group(SUB, "rg-life")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.sim
            .resource(&format!("/subscriptions/{SUB}/resourceGroups/rg-life"))
            .is_none()
    );
}

#[tokio::test]
async fn deployment_lifecycle_with_every_operation() {
    let h = start().await;
    ensure_rg(&h.client, "rg-dep").await;
    let scope = rg_scope("rg-dep");
    let request = storage_request("stdep01", json!({"env": "test"}));

    let valid = h
        .client
        .validate_deployment(&scope, "dep-1", &request)
        .await
        .unwrap();
    assert!(valid.is_object());
    assert!(
        h.sim.resource(&account_id("rg-dep", "stdep01")).is_none(),
        "validate creates nothing"
    );

    let started = h
        .client
        .put_deployment(&scope, "dep-1", &request)
        .await
        .unwrap();
    assert!(!started.resumed);
    assert_eq!(started.handle.kind, LroKind::AsyncOperation);
    assert!(started.handle.operation_url.starts_with(&h.sim.endpoint()));
    wait_done(&h.client, &started.handle).await;

    let deployment = h
        .client
        .get_deployment(&scope, "dep-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deployment.properties.provisioning_state, "Succeeded");
    let id = account_id("rg-dep", "stdep01");
    assert!(
        deployment
            .properties
            .output_resources
            .iter()
            .any(|r| r.id.eq_ignore_ascii_case(&id)),
        "{:?}",
        deployment.properties.output_resources
    );
    assert_eq!(
        deployment.properties.outputs["accountId"]
            .value
            .as_str()
            .unwrap()
            .to_lowercase(),
        id.to_lowercase()
    );
    assert!(h.sim.resource(&id).is_some());

    let operations = h
        .client
        .list_deployment_operations(&scope, "dep-1")
        .await
        .unwrap();
    assert!(
        operations.iter().any(|op| op
            .properties
            .target_resource
            .as_ref()
            .is_some_and(|t| t.id.eq_ignore_ascii_case(&id))),
        "{operations:?}"
    );

    let changed = storage_request("stdep01", json!({"env": "prod"}));
    let what_if = match h.client.what_if(&scope, "dep-1", &changed).await.unwrap() {
        WhatIfStart::Running(handle) => {
            ArmClient::what_if_result(wait_done(&h.client, &handle).await).unwrap()
        }
        WhatIfStart::Done(result) => result,
    };
    let change = what_if
        .properties
        .changes
        .iter()
        .find(|c| c.resource_id.eq_ignore_ascii_case(&id))
        .expect("what-if lists the storage account");
    assert_eq!(change.change_type, "Modify");

    let handle = h
        .client
        .delete_deployment(&scope, "dep-1")
        .await
        .unwrap()
        .expect("deployment deletion is long-running");
    wait_done(&h.client, &handle).await;
    assert!(
        h.client
            .get_deployment(&scope, "dep-1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.sim.resource(&id).is_some(),
        "deleting the history keeps the resources"
    );
}

#[tokio::test]
async fn subscription_scope_deployment_carries_location() {
    let h = start().await;
    let scope = DeploymentScope::Subscription {
        subscription: SUB.into(),
        location: "westeurope".into(),
    };
    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [{"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2022-09-01",
            "name": "rg-from-sub", "location": "westeurope"}]
    });
    let request = DeploymentRequest::new(template, [], DeploymentMode::Incremental);
    let started = h
        .client
        .put_deployment(&scope, "sub-dep", &request)
        .await
        .unwrap();
    wait_done(&h.client, &started.handle).await;
    let deployment = h
        .client
        .get_deployment(&scope, "sub-dep")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deployment.properties.provisioning_state, "Succeeded");
    assert!(
        h.client
            .get_resource_group(SUB, "rg-from-sub")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn deployment_active_resumes_the_running_deployment() {
    let mut config = SimConfig::default();
    config.latency.running_ms = 1500;
    let h = start_with(config, |o| o).await;
    ensure_rg(&h.client, "rg-active").await;
    let scope = rg_scope("rg-active");
    let request = storage_request("stactive01", json!({}));
    let first = h
        .client
        .put_deployment(&scope, "dep-a", &request)
        .await
        .unwrap();
    assert!(!first.resumed);
    let second = h
        .client
        .put_deployment(&scope, "dep-a", &request)
        .await
        .unwrap();
    assert!(second.resumed, "409 DeploymentActive resumes");
    assert_eq!(second.handle.kind, LroKind::ProvisioningState);
    let mut handle = second.handle.clone();
    assert!(matches!(
        h.client.poll(&mut handle).await.unwrap(),
        PollResult::InProgress { .. }
    ));
    wait_done(&h.client, &second.handle).await;
    let id = account_id("rg-active", "stactive01");
    assert_eq!(h.sim.created_count(&id), 1, "deployed once");
}

#[tokio::test]
async fn resume_from_stored_handle_after_dropping_the_client() {
    let mut config = SimConfig::default();
    config.latency.running_ms = 2500;
    let h = start_with(config, |o| o).await;
    ensure_rg(&h.client, "rg-resume").await;
    let scope = rg_scope("rg-resume");
    let started = h
        .client
        .put_deployment(&scope, "dep-r", &storage_request("stresume01", json!({})))
        .await
        .unwrap();
    let stored = serde_json::to_string(&started.handle).unwrap();
    drop(started);
    let Harness {
        sim,
        _dir,
        options,
        cache,
        client,
    } = h;
    drop(client);
    drop(cache);

    let fresh = client_for(&options, SECRET);
    let mut handle: LroHandle = serde_json::from_str(&stored).unwrap();
    let mut polls = 0;
    let outcome = loop {
        tokio::time::sleep(handle.wait_time()).await;
        polls += 1;
        match fresh.poll(&mut handle).await.unwrap() {
            PollResult::InProgress { .. } => continue,
            other => break other,
        }
    };
    assert!(matches!(outcome, PollResult::Done(_)), "{outcome:?}");
    assert!(polls >= 2, "the deployment was still running when resumed");
    let deployment = fresh
        .get_deployment(&scope, "dep-r")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deployment.properties.provisioning_state, "Succeeded");
    assert_eq!(sim.created_count(&account_id("rg-resume", "stresume01")), 1);
}

#[tokio::test]
async fn preflight_failure_is_terminal_and_creates_nothing() {
    let h = start().await;
    ensure_rg(&h.client, "rg-pre").await;
    let request = storage_request("stpre01", json!({"armsim-preflight": "SkuNotAvailable"}));
    let err = h
        .client
        .put_deployment(&rg_scope("rg-pre"), "dep-pre", &request)
        .await
        .unwrap_err();
    assert_eq!(err.status, Some(400));
    assert!(
        err.code == "InvalidTemplateDeployment" || err.code == "InvalidTemplate",
        "{err}"
    );
    assert_eq!(err.category(), ErrorCategory::Terminal);
    assert!(!err.is_retryable());
    assert!(err.correlation_id.is_some());
    let err = h
        .client
        .validate_deployment(&rg_scope("rg-pre"), "dep-pre", &request)
        .await
        .unwrap_err();
    assert_eq!(err.status, Some(400));
    assert!(h.sim.resource(&account_id("rg-pre", "stpre01")).is_none());
}

#[tokio::test]
async fn failed_and_canceled_deployments_report_arm_errors() {
    let mut config = SimConfig::default();
    config.latency.running_ms = 1500;
    let h = start_with(config, |o| o).await;
    ensure_rg(&h.client, "rg-fail").await;
    let scope = rg_scope("rg-fail");

    let failing = storage_request("stfail01", json!({"armsim-fail": "Conflict"}));
    let started = h
        .client
        .put_deployment(&scope, "dep-fail", &failing)
        .await
        .unwrap();
    let err = h.client.wait(&started.handle).await.unwrap_err();
    assert_eq!(err.code, "DeploymentFailed", "{err}");
    assert!(
        format!("{:?}", err.details).contains("Conflict"),
        "{:?}",
        err.details
    );
    let deployment = h
        .client
        .get_deployment(&scope, "dep-fail")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deployment.properties.provisioning_state, "Failed");
    assert!(deployment.properties.error.is_some());

    let started = h
        .client
        .put_deployment(
            &scope,
            "dep-cancel",
            &storage_request("stcancel01", json!({})),
        )
        .await
        .unwrap();
    h.client
        .cancel_deployment(&scope, "dep-cancel")
        .await
        .unwrap();
    let err = h.client.wait(&started.handle).await.unwrap_err();
    assert!(err.code.contains("Cancel"), "{err}");
    let again = h
        .client
        .cancel_deployment(&scope, "dep-cancel")
        .await
        .unwrap_err();
    assert_eq!(again.code, "DeploymentCannotBeCancelled");
    assert_eq!(again.category(), ErrorCategory::Terminal);
}

#[tokio::test]
async fn deployment_stack_lifecycle() {
    let h = start().await;
    ensure_rg(&h.client, "rg-stack").await;
    let scope = rg_scope("rg-stack");
    let id = account_id("rg-stack", "ststack01");
    let with_account = StackRequest::new(
        storage_template(true),
        [("name".to_string(), json!("ststack01"))],
    );
    let started = h
        .client
        .put_stack(&scope, "stack-1", &with_account)
        .await
        .unwrap();
    wait_done(&h.client, &started.handle).await;
    let stack = h
        .client
        .get_stack(&scope, "stack-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stack.properties.provisioning_state.to_lowercase(),
        "succeeded"
    );
    assert!(
        stack
            .properties
            .resources
            .iter()
            .any(|r| r.id.eq_ignore_ascii_case(&id))
    );
    assert!(h.sim.resource(&id).is_some());

    let without = StackRequest::new(
        storage_template(false),
        [("name".to_string(), json!("ststack01"))],
    );
    let started = h
        .client
        .put_stack(&scope, "stack-1", &without)
        .await
        .unwrap();
    wait_done(&h.client, &started.handle).await;
    assert!(h.sim.resource(&id).is_none(), "unmanaged resource deleted");

    let started = h
        .client
        .put_stack(&scope, "stack-1", &with_account)
        .await
        .unwrap();
    wait_done(&h.client, &started.handle).await;
    assert!(h.sim.resource(&id).is_some());
    if let Some(handle) = h
        .client
        .delete_stack(&scope, "stack-1", ActionOnUnmanage::delete_all())
        .await
        .unwrap()
    {
        wait_done(&h.client, &handle).await;
    }
    assert!(
        h.client
            .get_stack(&scope, "stack-1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        h.sim.resource(&id).is_none(),
        "stack deletion deleted its resources"
    );
    assert!(
        h.client
            .delete_stack(&scope, "stack-1", ActionOnUnmanage::delete_all())
            .await
            .unwrap()
            .is_none(),
        "deleting a missing stack is done"
    );
}

#[tokio::test]
async fn resources_by_id_use_the_cached_newest_stable_api_version() {
    let h = start().await;
    ensure_rg(&h.client, "rg-byid").await;
    let scope = rg_scope("rg-byid");
    let started = h
        .client
        .put_deployment(&scope, "dep-byid", &storage_request("stbyid01", json!({})))
        .await
        .unwrap();
    wait_done(&h.client, &started.handle).await;
    let id = account_id("rg-byid", "stbyid01");

    let versions = h
        .client
        .provider_api_versions(SUB, "Microsoft.Storage")
        .await
        .unwrap();
    assert!(versions.contains_key("storageaccounts"));
    let resource = h.client.get_resource_by_id(&id).await.unwrap().unwrap();
    assert!(resource["id"].as_str().unwrap().eq_ignore_ascii_case(&id));
    if let Some(handle) = h.client.delete_resource_by_id(&id).await.unwrap() {
        wait_done(&h.client, &handle).await;
    }
    assert!(h.client.get_resource_by_id(&id).await.unwrap().is_none());
    assert!(h.client.delete_resource_by_id(&id).await.unwrap().is_none());
    assert_eq!(
        h.sim.counters().route("GET providers"),
        1,
        "provider looked up once"
    );

    let before = h.sim.counters().total();
    let err = h
        .client
        .get_resource_by_id("/subscriptions/x/../etc")
        .await
        .unwrap_err();
    assert_eq!(err.source_kind, ErrorSource::InvalidInput);
    let err = h
        .client
        .put_deployment(&scope, "bad/name", &storage_request("x", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code, "InvalidDeploymentName");
    assert_eq!(h.sim.counters().total(), before, "bad input sends nothing");
}

#[tokio::test]
async fn foreign_operation_urls_are_refused() {
    let h = start().await;
    let mut handle: LroHandle = serde_json::from_value(json!({
        "operation": "DeploymentPut",
        "kind": "AsyncOperation",
        "operationUrl": "https://attacker.example/steal?api-version=1",
        "resourceUrl": "https://attacker.example/x",
        "correlationId": "c"
    }))
    .unwrap();
    let err = h.client.poll(&mut handle).await.unwrap_err();
    assert_eq!(err.code, "InvalidOperationUrl");
    assert_eq!(
        h.sim.counters().route("POST token"),
        0,
        "no token fetched for it"
    );
}

fn fault(route: &str, fault: RequestFault) -> SimConfig {
    let mut config = SimConfig::default();
    config.faults.request_rules = vec![RequestFaultRule {
        route: Some(route.to_string()),
        probability: 1.0,
        fault,
    }];
    config
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried_then_retryable() {
    let h = start_with(
        fault("^GET resourceGroups$", RequestFault::Status { status: 503 }),
        |o| o.with_max_retries(2),
    )
    .await;
    let err = h.client.get_resource_group(SUB, "rg-x").await.unwrap_err();
    assert_eq!(err.status, Some(503));
    assert!(err.is_retryable());
    assert_eq!(
        h.sim.counters().route("GET resourceGroups"),
        3,
        "first try + 2 retries"
    );

    h.sim
        .update_config(fault("^GET resourceGroups$", RequestFault::Drop))
        .unwrap();
    h.sim.reset_counters();
    let err = h.client.get_resource_group(SUB, "rg-x").await.unwrap_err();
    assert_eq!(err.source_kind, ErrorSource::Transport, "{err}");
    assert!(err.is_retryable());
    assert_eq!(h.sim.counters().route("GET resourceGroups"), 3);

    h.sim.update_config(SimConfig::default()).unwrap();
    assert!(
        h.client
            .get_resource_group(SUB, "rg-x")
            .await
            .unwrap()
            .is_none(),
        "404 → None"
    );
}

#[tokio::test]
async fn retry_after_pauses_the_subscription() {
    let h = start_with(
        fault(
            "^PUT resourceGroups$",
            RequestFault::Throttle {
                retry_after_secs: 2,
            },
        ),
        |o| o,
    )
    .await;
    let recorder = Arc::new(Recorder::default());
    let client = ArmClient::new_observed(
        h.options.clone(),
        h.cache.get(&secret_spec(SECRET)).unwrap(),
        recorder.clone(),
    )
    .unwrap();
    let started = Instant::now();
    let first = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .ensure_resource_group(SUB, "rg-t1", "westeurope", &BTreeMap::new())
                .await
        })
    };
    // The client sets its pause when it reads the 429, right after reporting it to the
    // observer, so from here on the pause lasts at least 2 s.
    let throttled_at = tokio::time::timeout(Duration::from_secs(10), async {
        while !recorder.0.lock().unwrap().iter().any(|r| r.2 == Some(429)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Instant::now()
    })
    .await
    .expect("first PUT answered");
    assert_eq!(h.sim.counters().route("PUT resourceGroups"), 1);
    let second = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .ensure_resource_group(SUB, "rg-t2", "westeurope", &BTreeMap::new())
                .await
        })
    };
    // A read of the same subscription is not paused by a write throttle.
    client.get_resource_group(SUB, "rg-t1").await.unwrap();
    tokio::time::sleep_until((throttled_at + Duration::from_millis(1700)).into()).await;
    assert_eq!(
        h.sim.counters().route("PUT resourceGroups"),
        1,
        "nothing sent to the throttled bucket before Retry-After elapsed"
    );
    h.sim.update_config(SimConfig::default()).unwrap();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(h.sim.counters().route("PUT resourceGroups"), 3);

    // A Retry-After longer than the client waits by itself comes back as an error.
    h.sim
        .update_config(fault(
            "^PUT resourceGroups$",
            RequestFault::Throttle {
                retry_after_secs: 60,
            },
        ))
        .unwrap();
    let err = h
        .client
        .ensure_resource_group(SUB, "rg-t3", "westeurope", &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Throttled);
    assert_eq!(err.retry_after, Some(Duration::from_secs(60)));
    let sent = h.sim.counters().route("PUT resourceGroups");
    let err = h
        .client
        .ensure_resource_group(SUB, "rg-t4", "westeurope", &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, "ClientThrottled");
    assert!(err.retry_after.unwrap() > Duration::from_secs(50));
    assert_eq!(
        h.sim.counters().route("PUT resourceGroups"),
        sent,
        "not sent while paused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_bucket_keeps_writes_under_the_configured_rate() {
    const BURST: u32 = 3;
    const RATE: f64 = 5.0;
    const WRITES: usize = 15;
    // ARM's bucket has a little slack: requests leave the client paced, but connection
    // set-up on a loaded machine can bunch them up on arrival.
    let bucket = BucketConfig {
        capacity: BURST + 2,
        refill_per_sec: RATE,
    };
    let config = SimConfig {
        throttling: ThrottlingConfig {
            enabled: true,
            writes: bucket,
            ..ThrottlingConfig::default()
        },
        ..SimConfig::default()
    };
    let limit = BucketLimit {
        burst: f64::from(BURST),
        per_second: RATE,
    };
    let h = start_with(config, |o| {
        o.with_limits(ThrottleLimits {
            writes: limit,
            ..ThrottleLimits::default()
        })
    })
    .await;
    h.client.get_resource_group(SUB, "rg-rate-0").await.unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITES)
        .map(|i| {
            let client = h.client.clone();
            tokio::spawn(async move {
                client
                    .ensure_resource_group(
                        SUB,
                        &format!("rg-rate-{i}"),
                        "westeurope",
                        &BTreeMap::new(),
                    )
                    .await
            })
        })
        .collect();
    let mut samples = Vec::new();
    while tasks.iter().any(|t| !t.is_finished()) {
        let writes = h
            .sim
            .counters()
            .subscriptions
            .get(SUB)
            .map_or(0, |c| c.writes);
        samples.push((started.elapsed().as_secs_f64(), writes));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    for (at, writes) in &samples {
        let allowed = f64::from(BURST) + RATE * at + 1.0;
        assert!(
            (*writes as f64) <= allowed,
            "{writes} writes at {at:.2}s > {allowed}"
        );
    }
    let minimum = (WRITES as f64 - f64::from(BURST)) / RATE;
    assert!(
        elapsed >= minimum * 0.9,
        "took {elapsed:.2}s, expected ≥ {minimum:.2}s"
    );
    assert_eq!(h.sim.counters().throttled, 0, "ARM never had to throttle");
    println!("{WRITES} writes at burst {BURST}, {RATE}/s: {elapsed:.2}s");
}

/// A what-if at `Priority::Spare` goes while the write bucket holds more than its reserve;
/// then it is not sent at all, while queued writes and spare reads still go.
#[tokio::test]
async fn spare_requests_are_not_sent_without_spare_budget() {
    let h = start_with(SimConfig::default(), |o| {
        o.with_limits(ThrottleLimits {
            writes: BucketLimit {
                burst: 4.0,
                per_second: 0.001,
            },
            ..ThrottleLimits::default()
        })
    })
    .await;
    ensure_rg(&h.client, "rg-spare").await;
    let scope = rg_scope("rg-spare");
    let request = storage_request("stspare01", json!({}));
    let what_ifs = || h.sim.counters().route("POST deployments/whatIf");
    let spare = h.client.with_priority(Priority::Spare);

    assert!(spare.has_spare_budget(SUB, RequestClass::Write, Priority::Spare));
    spare.what_if(&scope, "dep-spare", &request).await.unwrap();
    assert_eq!(what_ifs(), 1);
    assert!(!spare.has_spare_budget(SUB, RequestClass::Write, Priority::Spare));
    let err = spare
        .what_if(&scope, "dep-spare", &request)
        .await
        .unwrap_err();
    assert_eq!(err.source_kind, ErrorSource::NoSpareBudget, "{err}");
    assert_eq!(err.category(), ErrorCategory::Throttled);
    assert_eq!(what_ifs(), 1, "not sent");

    spare.get_resource_group(SUB, "rg-spare").await.unwrap();
    h.client
        .what_if(&scope, "dep-spare", &request)
        .await
        .unwrap();
    assert_eq!(what_ifs(), 2, "a queued request takes the reserve");
}

#[tokio::test]
async fn tokens_are_reused_until_near_expiry_then_refreshed() {
    // azure_identity refreshes 300 s before expiry: a 302 s token is reused for ~2 s.
    let config = SimConfig {
        token_lifetime_secs: 302,
        ..SimConfig::default()
    };
    let h = start_with(config, |o| o).await;
    h.client.get_resource_group(SUB, "rg-tok").await.unwrap();
    h.client.get_resource_group(SUB, "rg-tok").await.unwrap();
    assert_eq!(h.sim.counters().route("POST token"), 1, "token reused");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    h.client.get_resource_group(SUB, "rg-tok").await.unwrap();
    assert_eq!(h.sim.counters().route("POST token"), 2, "token refreshed");

    // A second client with the same identity from the same cache shares the token.
    let cache = CredentialCache::new(&h.options).unwrap();
    let a = ArmClient::new(h.options.clone(), cache.get(&secret_spec(SECRET)).unwrap()).unwrap();
    let b = a.with_credential(cache.get(&secret_spec(SECRET)).unwrap());
    a.get_resource_group(SUB, "rg-tok").await.unwrap();
    b.get_resource_group(SUB, "rg-tok").await.unwrap();
    assert_eq!(h.sim.counters().route("POST token"), 3);
}

#[tokio::test]
async fn wrong_client_secret_is_a_terminal_credential_error() {
    let config = SimConfig {
        credentials: vec![Credential {
            tenant_id: None,
            client_id: CLIENT.into(),
            client_secret: Some(SECRET.into()),
            allow_assertion: false,
        }],
        ..SimConfig::default()
    };
    let h = start_with(config, |o| o).await;
    h.client.get_resource_group(SUB, "rg-cred").await.unwrap();
    let wrong = "wrong-secret-0a1b2c3d";
    let bad = client_for(&h.options, wrong);
    let before = h.sim.counters().route("GET resourceGroups");
    let err = bad.get_resource_group(SUB, "rg-cred").await.unwrap_err();
    assert_eq!(err.source_kind, ErrorSource::Credential);
    assert_eq!(err.code, "AADSTS7000215", "{err}");
    assert_eq!(err.category(), ErrorCategory::Credential);
    assert!(!err.is_retryable());
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(wrong) && !text.contains(SECRET), "{text}");
    }
    assert_eq!(
        h.sim.counters().route("GET resourceGroups"),
        before,
        "no ARM call without a token"
    );
}

/// operation, method, status, attempt
type Seen = (String, String, Option<u16>, u32);

#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl RequestObserver for Recorder {
    fn observe(&self, r: &RequestRecord<'_>) {
        self.0.lock().unwrap().push((
            r.operation.to_string(),
            r.method.to_string(),
            r.status,
            r.attempt,
        ));
    }
}

#[tokio::test]
async fn observer_sees_every_attempt() {
    let h = start_with(
        fault("^GET resourceGroups$", RequestFault::Status { status: 500 }),
        |o| o.with_max_retries(1),
    )
    .await;
    let recorder = Arc::new(Recorder::default());
    let cache = CredentialCache::new(&h.options).unwrap();
    let client = ArmClient::new_observed(
        h.options.clone(),
        cache.get(&secret_spec(SECRET)).unwrap(),
        recorder.clone(),
    )
    .unwrap();
    client.get_resource_group(SUB, "rg-obs").await.unwrap_err();
    ensure_rg(&client, "rg-obs").await;
    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("get_resource_group".into(), "GET".into(), Some(500), 0),
            ("get_resource_group".into(), "GET".into(), Some(500), 1),
            ("ensure_resource_group".into(), "PUT".into(), Some(201), 0),
        ]
    );
}

#[tokio::test]
async fn workload_identity_exchanges_the_service_account_token() {
    let config = SimConfig {
        credentials: vec![Credential {
            tenant_id: Some(TENANT.into()),
            client_id: "wi-client".into(),
            client_secret: None,
            allow_assertion: true,
        }],
        ..SimConfig::default()
    };
    let h = start_with(config, |o| o).await;
    let token_file = h._dir.path().join("sa-token");
    let assertion = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl";
    std::fs::write(&token_file, assertion).unwrap();
    let spec = CredentialSpec::WorkloadIdentity {
        tenant_id: TENANT.into(),
        client_id: "wi-client".into(),
        token_file: token_file.clone(),
    };
    let client = h.client.with_credential(h.cache.get(&spec).unwrap());
    ensure_rg(&client, "rg-wi").await;
    assert!(
        client
            .get_resource_group(SUB, "rg-wi")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(h.sim.counters().route("POST token"), 1);

    let bad_file = h._dir.path().join("bad-token");
    std::fs::write(&bad_file, "not-a-jwt").unwrap();
    let bad = CredentialSpec::WorkloadIdentity {
        tenant_id: TENANT.into(),
        client_id: "wi-client".into(),
        token_file: bad_file,
    };
    let err = h
        .client
        .with_credential(h.cache.get(&bad).unwrap())
        .get_resource_group(SUB, "rg-wi")
        .await
        .unwrap_err();
    assert_eq!(err.source_kind, ErrorSource::Credential);
    assert_eq!(err.category(), ErrorCategory::Credential, "{err}");
    assert!(!err.to_string().contains("not-a-jwt"));
}
