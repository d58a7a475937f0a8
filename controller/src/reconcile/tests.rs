//! Whole reconciles against [`FakeAzure`] and [`FakeKube`]: what each writes to ARM and
//! to the apiserver, and what the object says afterwards.

use std::{sync::Arc, time::Duration};

use crds::{AzureResource, Phase};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::{core::DeserializeGuard, runtime::controller::Action as Requeue};
use serde_json::{Value, json};

use super::{FINALIZER, error_policy, reconcile};
use crate::azure::{ArmFailure, AzureApiFactory};
use crate::context::Context;
use crate::decide::DEFAULT_POLL;
use crate::error::{ArmDetail, Result};
use crate::events::EventRecorder;
use crate::metrics::Metrics;
use crate::testing::{Call, FakeAzure, FakeKube};

const OBJECT: &str = "/apis/azure-driver.io/v1alpha1/namespaces/team-a/azureresources/storage";
const STATUS: &str =
    "PATCH /apis/azure-driver.io/v1alpha1/namespaces/team-a/azureresources/storage/status";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/team-a/events/";
const UID: &str = "6f1c2a4e-0000-4000-8000-000000000001";
const RG: &str =
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-a/providers";
const HOUR: Duration = Duration::from_secs(3600);

struct Harness {
    kube: FakeKube,
    azure: Arc<FakeAzure>,
    ctx: Arc<Context>,
}

impl Harness {
    /// An object (with our finalizer, as after its first reconcile) of `engine`.
    fn new(engine: &str) -> Self {
        let kube = FakeKube::default();
        kube.put(
            OBJECT,
            json!({
                "apiVersion": "azure-driver.io/v1alpha1",
                "kind": "AzureResource",
                "metadata": {
                    "name": "storage",
                    "namespace": "team-a",
                    "uid": UID,
                    "generation": 1,
                    "finalizers": [FINALIZER],
                },
                "spec": {
                    "subscriptionId": "00000000-0000-0000-0000-000000000001",
                    "resourceGroup": "rg-a",
                    "location": "westeurope",
                    "engine": engine,
                    "template": {"json": {"resources": []}},
                },
            }),
        );
        let azure = FakeAzure::new();
        let factory: Arc<dyn AzureApiFactory> = Arc::new(azure.clone());
        let client = kube.client();
        let recorder = EventRecorder::new(client.clone(), "test".into(), "test-0".into());
        let ctx = Context::new(
            client,
            factory,
            recorder,
            Arc::new(Metrics::default()),
            None,
        );
        Harness {
            kube,
            azure,
            ctx: Arc::new(ctx),
        }
    }

    fn object(&self) -> Option<AzureResource> {
        let object = self.kube.get(OBJECT)?;
        Some(serde_json::from_value(object).expect("an AzureResource"))
    }

    fn status(&self) -> crds::AzureResourceStatus {
        self.object().and_then(|o| o.status).unwrap_or_default()
    }

    async fn reconcile(&self) -> Result<Requeue> {
        let object = self.object().expect("the object exists");
        reconcile(
            Arc::new(DeserializeGuard(Ok(object)).into()),
            self.ctx.clone(),
        )
        .await
    }

    /// Type and reason of the Events recorded so far.
    fn events(&self) -> Vec<(String, String)> {
        self.kube
            .list(EVENTS)
            .iter()
            .map(|e| (text(&e["type"]), text(&e["reason"])))
            .collect()
    }

    fn has_event(&self, type_: &str, reason: &str) -> bool {
        self.events().iter().any(|(t, r)| t == type_ && r == reason)
    }

    /// The `Ready` condition's status and reason.
    fn ready(&self) -> (String, String) {
        let status = self.status();
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("a Ready condition");
        (ready.status.clone(), ready.reason.clone())
    }

    fn status_writes(&self) -> usize {
        self.kube.writes().iter().filter(|w| *w == STATUS).count()
    }

    /// Deploys the object to Ready: the PUT, then the poll that finds it done.
    async fn deploy(&self) {
        assert_eq!(
            self.reconcile().await.unwrap(),
            Requeue::requeue(DEFAULT_POLL)
        );
        assert_eq!(self.reconcile().await.unwrap(), Requeue::requeue(HOUR));
        assert_eq!(self.status().phase, Some(Phase::Ready));
    }

    /// Marks the object for deletion, as `kubectl delete` does while a finalizer remains.
    fn delete(&self) {
        let mut object = self.kube.get(OBJECT).unwrap();
        object["metadata"]["deletionTimestamp"] = json!("2026-12-05T00:00:00Z");
        object["metadata"]["generation"] = json!(2);
        self.kube.put(OBJECT, object);
    }

    /// Pretends this process last checked the object against Azure `ago`.
    fn checked_ago(&self, ago: Duration) {
        let then = Timestamp::now() - SignedDuration::try_from(ago).unwrap();
        self.ctx.mark_checked(UID, then);
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn writes_to_arm(calls: &[Call]) -> Vec<Call> {
    calls.iter().copied().filter(|c| c.is_write()).collect()
}

#[tokio::test]
async fn a_new_object_is_deployed_and_becomes_ready() {
    let h = Harness::new("Stack");
    let storage = format!("{RG}/Microsoft.Storage/storageAccounts/acct1");
    h.azure.creates(&[&storage]);

    assert_eq!(h.reconcile().await.unwrap(), Requeue::requeue(DEFAULT_POLL));
    assert_eq!(
        h.azure.calls(),
        [Call::EnsureResourceGroup, Call::StartDeployment]
    );
    let status = h.status();
    assert_eq!(status.phase, Some(Phase::Deploying));
    let name = status
        .deployment
        .as_ref()
        .and_then(|d| d.name.clone())
        .unwrap();
    assert!(h.azure.deployment(&name).is_some());
    assert_eq!(h.ready(), ("False".into(), "Deploying".into()));
    assert!(h.has_event("Normal", "DeploymentStarted"));

    h.azure.clear_calls();
    assert_eq!(h.reconcile().await.unwrap(), Requeue::requeue(HOUR));
    assert_eq!(h.azure.calls(), [Call::PollOperation, Call::GetDeployment]);
    let status = h.status();
    assert_eq!(status.phase, Some(Phase::Ready));
    assert_eq!(status.resources, [storage]);
    assert_eq!(status.observed_generation, Some(1));
    assert!(status.applied_hash.is_some());
    assert_eq!(h.ready(), ("True".into(), "Succeeded".into()));
    assert!(h.has_event("Normal", "Ready"));
    assert_eq!(h.status_writes(), 2);
}

#[tokio::test]
async fn a_refused_put_is_retried_with_the_arm_code_as_reason() {
    let h = Harness::new("Stack");
    h.azure
        .refuse_next(Call::StartDeployment, "InternalServerError", "try again");

    let error = h.reconcile().await.unwrap_err();
    assert!(error.is_retryable());
    let status = h.status();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(status.failures, 1);
    assert_eq!(status.error.as_ref().unwrap().code, "InternalServerError");
    assert_eq!(h.ready(), ("False".into(), "InternalServerError".into()));
    assert!(h.has_event("Warning", "InternalServerError"));
    let object = h.object().unwrap();
    let retry = error_policy(
        Arc::new(DeserializeGuard(Ok(object)).into()),
        &error,
        h.ctx.clone(),
    );
    assert_ne!(retry, Requeue::await_change());

    // The retry deploys; the group was ensured once already.
    h.azure.clear_calls();
    assert_eq!(h.reconcile().await.unwrap(), Requeue::requeue(DEFAULT_POLL));
    assert_eq!(h.azure.calls(), [Call::StartDeployment]);
    assert_eq!(h.status().phase, Some(Phase::Deploying));
}

#[tokio::test]
async fn a_failed_deployment_is_failed_until_the_spec_changes() {
    let h = Harness::new("Stack");
    h.azure.deployments_fail(ArmFailure {
        code: "DeploymentFailed".into(),
        message: "one resource failed".into(),
        details: vec![ArmDetail {
            code: "SkuNotAvailable".into(),
            message: "no such SKU here".into(),
            target: None,
        }],
    });

    assert_eq!(h.reconcile().await.unwrap(), Requeue::requeue(DEFAULT_POLL));
    assert_eq!(h.reconcile().await.unwrap(), Requeue::await_change());
    let status = h.status();
    assert_eq!(status.phase, Some(Phase::Failed));
    let error = status.error.unwrap();
    assert_eq!(error.code, "DeploymentFailed");
    assert_eq!(error.details[0].code, "SkuNotAvailable");
    assert_eq!(h.ready(), ("False".into(), "DeploymentFailed".into()));
    assert!(h.has_event("Warning", "DeploymentFailed"));

    // Terminal: an unchanged object is not deployed again.
    h.azure.clear_calls();
    h.kube.clear_writes();
    assert_eq!(h.reconcile().await.unwrap(), Requeue::await_change());
    assert_eq!(h.azure.calls(), []);
    assert_eq!(h.kube.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn deleting_a_deployment_removes_its_resources_children_first_then_the_finalizer() {
    let h = Harness::new("Deployment");
    let vnet = format!("{RG}/Microsoft.Network/virtualNetworks/v");
    let subnet = format!("{vnet}/subnets/a");
    let storage = format!("{RG}/Microsoft.Storage/storageAccounts/acct1");
    h.azure.creates(&[&vnet, &subnet, &storage]);
    h.deploy().await;
    let name = h.status().deployment.and_then(|d| d.name).unwrap();

    h.delete();
    h.azure.clear_calls();
    assert_eq!(h.reconcile().await.unwrap(), Requeue::await_change());
    assert_eq!(
        h.azure.calls(),
        [
            Call::DeleteResource,
            Call::DeleteResource,
            Call::DeleteResource,
            Call::DeleteDeployment
        ]
    );
    assert_eq!(h.azure.resources(), Vec::<String>::new());
    assert!(h.azure.deployment(&name).is_none());
    assert!(
        h.object().is_none(),
        "the finalizer went, and the object with it"
    );
    assert!(h.has_event("Normal", "DeleteStarted"));
    assert!(h.has_event("Normal", "Deleted"));
}

#[tokio::test]
async fn deleting_a_stack_deletes_it_with_its_resources() {
    let h = Harness::new("Stack");
    let storage = format!("{RG}/Microsoft.Storage/storageAccounts/acct1");
    h.azure.creates(&[&storage]);
    h.deploy().await;

    h.delete();
    h.azure.clear_calls();
    assert_eq!(h.reconcile().await.unwrap(), Requeue::await_change());
    assert_eq!(h.azure.calls(), [Call::DeleteDeployment]);
    assert_eq!(h.azure.resources(), Vec::<String>::new());
    assert!(h.object().is_none());
    assert!(h.has_event("Normal", "Deleted"));
}

#[tokio::test]
async fn an_unchanged_resync_writes_nothing() {
    let h = Harness::new("Stack");
    h.deploy().await;

    // Within the sync interval: nothing is read or written.
    h.azure.clear_calls();
    h.kube.clear_writes();
    h.reconcile().await.unwrap();
    assert_eq!(h.azure.calls(), []);
    assert_eq!(h.kube.writes(), Vec::<String>::new());

    // The deployment recorded that Azure matches the template; due checks that find the
    // same, the first one included, write nothing.
    assert_eq!(h.status().drift.unwrap().summary, "None");
    for _ in 0..2 {
        h.azure.clear_calls();
        h.checked_ago(2 * HOUR);
        assert_eq!(h.reconcile().await.unwrap(), Requeue::requeue(HOUR));
        assert_eq!(h.azure.calls(), [Call::GetDeployment, Call::WhatIf]);
        assert_eq!(writes_to_arm(&h.azure.calls()), []);
        assert_eq!(h.kube.writes(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn a_periodic_check_without_spare_write_budget_waits_and_writes_nothing() {
    let h = Harness::new("Stack");
    h.deploy().await;
    h.azure.spare_writes(false);
    h.azure.clear_calls();
    h.kube.clear_writes();
    h.checked_ago(2 * HOUR);

    let deferred = h.reconcile().await.unwrap();
    assert_ne!(deferred, Requeue::requeue(HOUR), "asks again sooner");
    assert_ne!(deferred, Requeue::await_change());
    assert_eq!(
        h.azure.calls(),
        [],
        "not even the read that leads up to the what-if"
    );
    assert_eq!(h.kube.writes(), Vec::<String>::new(), "no status, no Event");
    assert_eq!(h.status().failures, 0);

    // Still due: as soon as there is budget to spare, the check goes.
    h.azure.spare_writes(true);
    assert_eq!(h.reconcile().await.unwrap(), Requeue::requeue(HOUR));
    assert_eq!(h.azure.calls(), [Call::GetDeployment, Call::WhatIf]);
}

#[tokio::test]
async fn a_requested_check_goes_without_spare_write_budget() {
    let h = Harness::new("Deployment");
    h.deploy().await;
    h.azure.spare_writes(false);
    h.azure.clear_calls();
    let mut object = h.kube.get(OBJECT).unwrap();
    object["metadata"]["annotations"] = json!({crds::CHECK_DRIFT_ANNOTATION: "1"});
    h.kube.put(OBJECT, object);

    assert_eq!(h.reconcile().await.unwrap(), Requeue::requeue(HOUR));
    assert_eq!(h.azure.calls(), [Call::WhatIf]);
    let drift = h.status().drift.unwrap();
    assert_eq!(drift.check_request.as_deref(), Some("1"));
}
