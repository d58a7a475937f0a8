//! Decides the one Kafka result owed per request from object status (the
//! [`crate::reporter`] carries it out).
//!
//! The pending request lives on the object, so any replica can report it and a restart
//! loses nothing. A replica claims publication with a patch conditioned on the
//! object's resourceVersion (only one replica wins), publishes, then records the request
//! as reported. A claim whose holder died expires and is taken over: duplicates are
//! possible only after a crash between publishing and recording.

use std::collections::BTreeMap;

use crds::{AzureResource, Phase};
use kube::ResourceExt;
use serde_json::{Map, Value, json};

use crate::kafka::{Envelope, FailureCode, ResultMessage};
use crate::mapping::{
    ANNOTATION_CLAIM, ANNOTATION_REPORTED, ANNOTATION_REQUEST, FINALIZER, PendingRequest,
    exact_resource_name, request_id, topology_entry_name, topology_id,
};
use crate::request::Lifecycle;

/// How long a publication claim blocks other replicas: longer than the holder can still be
/// delivering (queue wait plus librdkafka's delivery timeout), with a margin for clock skew.
pub const CLAIM_TTL_SECS: i64 =
    (crate::kafka::QUEUE_TIMEOUT.as_secs() + crate::kafka::DELIVERY_TIMEOUT.as_secs() + 30) as i64;

/// One result to publish: the request it answers (by uuid), the message and its record
/// headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub uuid: String,
    pub message: ResultMessage,
    pub envelope: Envelope,
}

/// What to do about one object now.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Nothing,
    /// Publish this result for the pending request, then record it (and, when
    /// `release`, drop the shim's finalizer so the object goes away).
    Publish {
        outcome: Box<Outcome>,
        release: bool,
    },
    /// The result was published already; only the finalizer is left to drop.
    Release,
}

/// The request recorded on the object, if any.
pub fn pending(object: &AzureResource) -> Option<PendingRequest> {
    object
        .annotations()
        .get(ANNOTATION_REQUEST)
        .and_then(|raw| serde_json::from_str(raw).ok())
}

/// A claim held by someone else and still fresh.
fn foreign_claim(object: &AzureResource, uuid: &str, replica: &str, now: i64) -> bool {
    let Some(claim) = object.annotations().get(ANNOTATION_CLAIM) else {
        return false;
    };
    let mut parts = claim.split(' ');
    let (Some(claimed), Some(holder), Some(at)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let at: i64 = at.parse().unwrap_or(0);
    claimed == uuid && holder != replica && now - at < CLAIM_TTL_SECS
}

pub fn claim_value(uuid: &str, replica: &str, now: i64) -> String {
    format!("{uuid} {replica} {now}")
}

/// ARM error codes that mean Azure had no room, as opposed to any other infrastructure error.
fn failure_code(arm_code: &str) -> FailureCode {
    match arm_code {
        "QuotaExceeded"
        | "OperationNotAllowed"
        | "SkuNotAvailable"
        | "AllocationFailed"
        | "ZonalAllocationFailed"
        | "OverconstrainedAllocationRequest" => FailureCode::InsufficientCapacity,
        _ => FailureCode::InfrastructureError,
    }
}

fn failure_description(object: &AzureResource) -> (FailureCode, String) {
    let status = object.status.as_ref();
    if let Some(error) = status.and_then(|s| s.error.as_ref()) {
        return (failure_code(&error.code), error.message.clone());
    }
    let condition = status
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| (failure_code(&c.reason), c.message.clone()));
    condition.unwrap_or((FailureCode::InfrastructureError, "deployment failed".into()))
}

/// The object's outputs in ARM's `{"type", "value"}` form, as the Python driver
/// published them and descriptors read them.
fn outputs(object: &AzureResource) -> Map<String, Value> {
    object
        .status
        .as_ref()
        .map(|s| arm_typed_outputs(&s.outputs))
        .unwrap_or_default()
}

/// `{"name": {"type": "<ARM type>", "value": v}}` for plain output values. Secure outputs
/// never reach the status, so the types are ARM's plain ones.
pub fn arm_typed_outputs(outputs: &BTreeMap<String, Value>) -> Map<String, Value> {
    outputs
        .iter()
        .map(|(name, value)| {
            let type_name = match value {
                Value::String(_) => "String",
                Value::Number(_) => "Int",
                Value::Bool(_) => "Bool",
                Value::Array(_) => "Array",
                Value::Object(_) | Value::Null => "Object",
            };
            (name.clone(), json!({"type": type_name, "value": value}))
        })
        .collect()
}

fn entry_name(object: &AzureResource) -> String {
    topology_entry_name(exact_resource_name(object).unwrap_or_default())
}

/// The request id answered with 202 for this object's pending request.
/// Its ARM id is the one the topology names (as the Python driver's request ids did).
pub fn object_request_id(object: &AzureResource, pending: &PendingRequest) -> String {
    let arm_id = topology_id(object).unwrap_or_else(|| object.name_any());
    request_id(&pending.lifecycle, &arm_id, &pending.uuid)
}

/// Failed attempts to delete after which a Delete is answered FAILED although the
/// controller deems the error transient (a missing permission, say): about 2.5 minutes of
/// its backoff.
pub const DELETE_ATTEMPTS_BEFORE_FAILED: u32 = 5;

/// Deleting this object failed for now: a terminal ARM error (a lock), or repeated
/// failures, recorded after the deletion began (deletion bumps the generation, so an older
/// failure of the deployment itself does not count). The controller keeps retrying.
fn failed_while_deleting(object: &AzureResource) -> bool {
    object.metadata.deletion_timestamp.is_some()
        && object.status.as_ref().is_some_and(|s| {
            s.observed_generation == object.metadata.generation
                && (s.phase == Some(Phase::Failed)
                    || (s.error.is_some() && s.failures >= DELETE_ATTEMPTS_BEFORE_FAILED))
        })
}

/// The result owed for the request on `object` when request `by` is about to replace it
/// before it was answered: FAILED, so that the earlier request is not left without one.
/// `None` when it was answered already, or the same request is recorded again.
pub fn superseded(object: &AzureResource, by: &str) -> Option<Outcome> {
    let pending = pending(object)?;
    let reported = object
        .annotations()
        .get(ANNOTATION_REPORTED)
        .is_some_and(|r| *r == pending.uuid);
    if reported || pending.uuid == by {
        return None;
    }
    let message = ResultMessage::failed(
        object_request_id(object, &pending),
        FailureCode::InternalError,
        format!("request {by} for the same resource replaced this one before it completed"),
    );
    let envelope = Envelope {
        tenant_id: pending.tenant_id,
        trace: pending.trace,
    };
    Some(Outcome {
        uuid: pending.uuid,
        message,
        envelope,
    })
}

/// Decides what the shim owes Brent for one object. `siblings`: the other objects of the
/// same resource while it is deleted (a resource Delete completes when all are gone, and
/// fails when any of them cannot be deleted).
pub fn decide(
    object: &AzureResource,
    replica: &str,
    now: i64,
    siblings: &[&AzureResource],
) -> Decision {
    let has_finalizer = object.finalizers().iter().any(|f| f == FINALIZER);
    let deleting = object.metadata.deletion_timestamp.is_some();
    let only_ours_left = object.finalizers().iter().all(|f| f == FINALIZER);
    let release_if_deleted = || {
        if deleting && has_finalizer && only_ours_left {
            Decision::Release
        } else {
            Decision::Nothing
        }
    };
    let Some(pending) = pending(object) else {
        return release_if_deleted();
    };
    let reported = object
        .annotations()
        .get(ANNOTATION_REPORTED)
        .is_some_and(|r| *r == pending.uuid);
    if reported {
        return release_if_deleted();
    }
    if foreign_claim(object, &pending.uuid, replica, now) {
        return Decision::Nothing;
    }
    if deleting {
        if !has_finalizer {
            return Decision::Nothing;
        }
        return decide_deleted(object, pending, siblings, only_ours_left);
    }
    if pending.delete {
        return Decision::Nothing;
    }
    decide_settled(object, pending)
}

/// The result owed for a request whose object is being deleted (and still has the
/// shim's finalizer).
fn decide_deleted(
    object: &AzureResource,
    pending: PendingRequest,
    siblings: &[&AzureResource],
    only_ours_left: bool,
) -> Decision {
    let request_id = object_request_id(object, &pending);
    let failed = std::iter::once(object)
        .chain(siblings.iter().copied())
        .find(|o| failed_while_deleting(o));
    if let Some(failed) = failed.filter(|_| pending.delete) {
        let (code, description) = failure_description(failed);
        let message = ResultMessage::failed(request_id, code, description);
        return publish(pending, message, false);
    }
    // A resource Delete waits for all its objects; an operation's undo (e.g.
    // RemoveVnetPeering) removes one object and leaves the resource in the topology.
    let whole_resource = pending.lifecycle == Lifecycle::Delete.name();
    if !only_ours_left || (whole_resource && !siblings.is_empty()) {
        return Decision::Nothing;
    }
    let message = if pending.delete {
        let mut topology = Map::new();
        if whole_resource {
            topology.insert(entry_name(object), Value::Null);
        }
        ResultMessage::complete(request_id, Map::new(), topology)
    } else {
        ResultMessage::failed(
            request_id,
            FailureCode::InternalError,
            "the AzureResource was deleted before the request completed".into(),
        )
    };
    publish(pending, message, true)
}

/// The result owed once the controller settled the object's current generation: COMPLETE
/// when Ready, FAILED when Failed, nothing yet otherwise.
fn decide_settled(object: &AzureResource, pending: PendingRequest) -> Decision {
    let Some(status) = object.status.as_ref() else {
        return Decision::Nothing;
    };
    if status.observed_generation != object.metadata.generation {
        return Decision::Nothing;
    }
    let request_id = object_request_id(object, &pending);
    let message = match status.phase {
        Some(Phase::Ready) => {
            let mut topology = Map::new();
            if let Some(id) = topology_id(object).filter(|_| pending.lifecycle == "Create") {
                topology.insert(entry_name(object), json!({"id": id, "type": "Azure"}));
            }
            ResultMessage::complete(request_id, outputs(object), topology)
        }
        Some(Phase::Failed) => {
            let (code, description) = failure_description(object);
            ResultMessage::failed(request_id, code, description)
        }
        _ => return Decision::Nothing,
    };
    publish(pending, message, false)
}

/// Publishing `message` for `pending`, releasing the object afterwards or not.
fn publish(pending: PendingRequest, message: ResultMessage, release: bool) -> Decision {
    Decision::Publish {
        outcome: Box::new(Outcome {
            uuid: pending.uuid,
            message,
            envelope: Envelope {
                tenant_id: pending.tenant_id,
                trace: pending.trace,
            },
        }),
        release,
    }
}

/// Parameters longer than this (as JSON) leave the watch cache; names such as
/// `resourcegroup_name`, which the topology entry is made of, stay.
pub const CACHED_PARAMETER_BYTES: usize = 256;

/// What the shim's watch cache keeps of an object: everything the reporter and the
/// request path decide on (metadata, status, the spec's scalars), without managed fields,
/// the template and long parameter values. With 50,000 objects this is tens of MiB
/// instead of hundreds. (Annotations stay whole: a Create's replace carries them over.)
pub fn strip_for_cache(object: &mut AzureResource) {
    object.metadata.managed_fields = None;
    object.spec.template = None;
    object
        .spec
        .parameters
        .retain(|_, value| value.to_string().len() <= CACHED_PARAMETER_BYTES);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::{AzureResourceSpec, AzureResourceStatus, ErrorStatus, TemplateSource};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use std::collections::BTreeMap;

    const SUB: &str = "00000000-0000-0000-0000-000000000001";

    fn object(lifecycle: &str, delete: bool) -> AzureResource {
        let mut spec = AzureResourceSpec::new("rg1", TemplateSource::Bicep(String::new()));
        spec.subscription_id = Some(SUB.into());
        let mut object = AzureResource::new("r-abc", spec);
        object.metadata.namespace = Some("ns".into());
        object.metadata.uid = Some("uid-1".into());
        object.metadata.generation = Some(2);
        object.metadata.resource_version = Some("10".into());
        object.metadata.finalizers = Some(vec![FINALIZER.into(), "azure-driver.io/cleanup".into()]);
        let pending = PendingRequest {
            uuid: "u1".into(),
            lifecycle: lifecycle.into(),
            tenant_id: Some("t1".into()),
            trace: BTreeMap::from([("transactionid".into(), "tx".into())]),
            delete,
        };
        object.metadata.annotations = Some(BTreeMap::from([(
            ANNOTATION_REQUEST.into(),
            serde_json::to_string(&pending).unwrap(),
        )]));
        object.metadata.labels = Some(BTreeMap::from([(
            crate::mapping::LABEL_RESOURCE_NAME.into(),
            "net-a".into(),
        )]));
        object
    }

    fn with_status(mut object: AzureResource, phase: Phase, observed: i64) -> AzureResource {
        object.status = Some(AzureResourceStatus {
            phase: Some(phase),
            observed_generation: Some(observed),
            outputs: BTreeMap::from([("vnetId".into(), json!("/x"))]),
            ..AzureResourceStatus::default()
        });
        object
    }

    fn expected_request_id(lifecycle: &str) -> String {
        let name = crds::deployment_name("ns", "r-abc", "uid-1");
        format!(
            "{lifecycle}::/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Resources/deploymentStacks/{name}::u1"
        )
    }

    fn published(decision: Decision) -> (ResultMessage, Envelope, bool) {
        match decision {
            Decision::Publish { outcome, release } => (outcome.message, outcome.envelope, release),
            other => panic!("expected publish, got {other:?}"),
        }
    }

    #[test]
    fn the_stripped_cache_decides_and_names_results_as_the_whole_object_does() {
        let mut whole = with_status(object("Create", false), Phase::Ready, 2);
        whole.labels_mut().insert(
            crate::mapping::LABEL_RESOURCE_TYPE.into(),
            "AzureResourceGroup".into(),
        );
        whole.spec.template = Some(TemplateSource::Bicep("param p string\n".repeat(100)));
        whole.spec.parameters = BTreeMap::from([
            ("resourcegroup_name".into(), json!("rg1")),
            ("blob".into(), json!("x".repeat(4096))),
        ]);
        let mut stripped = whole.clone();
        strip_for_cache(&mut stripped);
        assert_eq!(stripped.spec.template, None);
        assert!(!stripped.spec.parameters.contains_key("blob"));
        assert_eq!(
            crate::mapping::topology_id(&stripped),
            crate::mapping::topology_id(&whole)
        );
        assert_eq!(
            decide(&stripped, "replica-a", 1000, &[]),
            decide(&whole, "replica-a", 1000, &[])
        );
        assert!(serde_json::to_string(&stripped).unwrap().len() < 2048);
    }

    #[test]
    fn ready_for_the_current_generation_completes() {
        let (message, envelope, release) = published(decide(
            &with_status(object("Create", false), Phase::Ready, 2),
            "me",
            0,
            &[],
        ));
        assert_eq!(message.request_id, expected_request_id("Create"));
        assert_eq!(message.status, crate::kafka::ResultStatus::Complete);
        assert_eq!(
            message.outputs["vnetId"],
            json!({"type": "String", "value": "/x"})
        );
        assert_eq!(message.associated_topology["neta"]["type"], json!("Azure"));
        assert_eq!(envelope.tenant_id.as_deref(), Some("t1"));
        assert!(!release);
    }

    #[test]
    fn outputs_carry_arm_type_names() {
        let plain = BTreeMap::from([
            ("id".to_string(), json!("/x")),
            ("count".to_string(), json!(3)),
            ("on".to_string(), json!(true)),
            ("list".to_string(), json!(["a"])),
            (
                "storageEndpoint".to_string(),
                json!({"blob": "https://a.blob/"}),
            ),
        ]);
        assert_eq!(
            Value::Object(arm_typed_outputs(&plain)),
            json!({
                "id": {"type": "String", "value": "/x"},
                "count": {"type": "Int", "value": 3},
                "on": {"type": "Bool", "value": true},
                "list": {"type": "Array", "value": ["a"]},
                "storageEndpoint": {"type": "Object", "value": {"blob": "https://a.blob/"}},
            })
        );
    }

    #[test]
    fn stale_or_running_status_waits() {
        assert_eq!(
            decide(
                &with_status(object("Create", false), Phase::Ready, 1),
                "me",
                0,
                &[]
            ),
            Decision::Nothing
        );
        assert_eq!(
            decide(
                &with_status(object("Create", false), Phase::Deploying, 2),
                "me",
                0,
                &[]
            ),
            Decision::Nothing
        );
        assert_eq!(
            decide(&object("Create", false), "me", 0, &[]),
            Decision::Nothing
        );
    }

    #[test]
    fn failure_carries_the_arm_message() {
        let mut failed = with_status(object("Create", false), Phase::Failed, 2);
        failed.status.as_mut().unwrap().error = Some(ErrorStatus {
            code: "InvalidTemplate".into(),
            message: "Deployment template validation failed".into(),
            details: vec![],
        });
        let (message, _, _) = published(decide(&failed, "me", 0, &[]));
        let details = message.failure_details.unwrap();
        assert_eq!(details.failure_code, FailureCode::InfrastructureError);
        assert_eq!(details.description, "Deployment template validation failed");
    }

    /// The failure code and description published for a failed object.
    fn failure_of(failed: &AzureResource) -> (FailureCode, String) {
        let (message, _, _) = published(decide(failed, "me", 0, &[]));
        let details = message.failure_details.unwrap();
        (details.failure_code, details.description)
    }

    #[test]
    fn no_room_in_azure_is_insufficient_capacity() {
        for code in [
            "QuotaExceeded",
            "OperationNotAllowed",
            "SkuNotAvailable",
            "AllocationFailed",
            "ZonalAllocationFailed",
            "OverconstrainedAllocationRequest",
        ] {
            let mut failed = with_status(object("Create", false), Phase::Failed, 2);
            failed.status.as_mut().unwrap().error = Some(ErrorStatus {
                code: code.into(),
                message: "no room".into(),
                details: vec![],
            });
            let failure = failure_of(&failed);
            assert_eq!(
                failure,
                (FailureCode::InsufficientCapacity, "no room".into()),
                "{code}"
            );
        }
    }

    #[test]
    fn without_an_error_the_ready_condition_describes_the_failure() {
        let mut failed = with_status(object("Create", false), Phase::Failed, 2);
        let condition = |type_: &str, reason: &str, message: &str| Condition {
            type_: type_.into(),
            status: "False".into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            observed_generation: Some(2),
        };
        failed.status.as_mut().unwrap().conditions = vec![
            condition("Drifted", "Other", "not this one"),
            condition("Ready", "QuotaExceeded", "cores quota reached"),
        ];
        assert_eq!(
            failure_of(&failed),
            (
                FailureCode::InsufficientCapacity,
                "cores quota reached".into()
            )
        );
        failed.status.as_mut().unwrap().conditions.pop();
        assert_eq!(
            failure_of(&failed),
            (FailureCode::InfrastructureError, "deployment failed".into())
        );
    }

    #[test]
    fn without_a_request_only_a_deleted_object_with_only_our_finalizer_is_released() {
        let mut plain = object("Create", false);
        plain.annotations_mut().remove(ANNOTATION_REQUEST);
        // Not deleted, although only our finalizer is left.
        plain.metadata.finalizers = Some(vec![FINALIZER.into()]);
        assert_eq!(decide(&plain, "me", 0, &[]), Decision::Nothing);
        plain.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert_eq!(decide(&plain, "me", 0, &[]), Decision::Release);
        // Deleted, but the controller's finalizer is still there.
        plain.metadata.finalizers = Some(vec![FINALIZER.into(), "azure-driver.io/cleanup".into()]);
        assert_eq!(decide(&plain, "me", 0, &[]), Decision::Nothing);
        // Deleted, and ours is gone already.
        plain.metadata.finalizers = Some(vec!["azure-driver.io/cleanup".into()]);
        assert_eq!(decide(&plain, "me", 0, &[]), Decision::Nothing);
    }

    #[test]
    fn reported_requests_are_not_published_again() {
        let mut done = with_status(object("Create", false), Phase::Ready, 2);
        done.annotations_mut()
            .insert(ANNOTATION_REPORTED.into(), "u1".into());
        assert_eq!(decide(&done, "me", 0, &[]), Decision::Nothing);
    }

    #[test]
    fn a_claim_outlives_the_holders_delivery_by_half_a_minute() {
        let delivery =
            (crate::kafka::QUEUE_TIMEOUT + crate::kafka::DELIVERY_TIMEOUT).as_secs() as i64;
        assert!(CLAIM_TTL_SECS >= delivery + 30, "{CLAIM_TTL_SECS}");
        // A dead holder's claim is taken over soon after it could have delivered.
        assert!(CLAIM_TTL_SECS <= delivery + 60, "{CLAIM_TTL_SECS}");
    }

    #[test]
    fn fresh_foreign_claims_block_and_expire() {
        let mut claimed = with_status(object("Create", false), Phase::Ready, 2);
        claimed
            .annotations_mut()
            .insert(ANNOTATION_CLAIM.into(), claim_value("u1", "other", 1000));
        assert_eq!(decide(&claimed, "me", 1010, &[]), Decision::Nothing);
        assert!(matches!(
            decide(&claimed, "me", 1000 + CLAIM_TTL_SECS, &[]),
            Decision::Publish { .. }
        ));
        assert!(matches!(
            decide(&claimed, "other", 1010, &[]),
            Decision::Publish { .. }
        ));
    }

    #[test]
    fn delete_completes_once_the_controller_let_go() {
        let mut deleting = object("Delete", true);
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert_eq!(decide(&deleting, "me", 0, &[]), Decision::Nothing);
        deleting.metadata.finalizers = Some(vec![FINALIZER.into()]);
        let sibling = object("Configure", false);
        assert_eq!(decide(&deleting, "me", 0, &[&sibling]), Decision::Nothing);
        let (message, _, release) = published(decide(&deleting, "me", 0, &[]));
        assert!(release);
        assert_eq!(message.request_id, expected_request_id("Delete"));
        assert_eq!(
            message.associated_topology,
            serde_json::from_value::<Map<String, Value>>(json!({"neta": null})).unwrap()
        );
        deleting
            .annotations_mut()
            .insert(ANNOTATION_REPORTED.into(), "u1".into());
        assert_eq!(decide(&deleting, "me", 0, &[]), Decision::Release);
    }

    #[test]
    fn deleting_an_unfinished_create_reports_failure() {
        let mut deleting = object("Create", false);
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        deleting.metadata.finalizers = Some(vec![FINALIZER.into()]);
        let (message, _, _) = published(decide(&deleting, "me", 0, &[]));
        assert_eq!(
            message.failure_details.unwrap().failure_code,
            FailureCode::InternalError
        );
    }

    #[test]
    fn a_terminal_failure_while_deleting_fails_the_delete_once() {
        let mut deleting = object("Delete", true);
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        // Failed before the deletion began (older generation): not the delete's answer.
        let mut failed = with_status(deleting.clone(), Phase::Failed, 1);
        assert_eq!(decide(&failed, "me", 0, &[]), Decision::Nothing);
        failed.status.as_mut().unwrap().observed_generation = Some(2);
        failed.status.as_mut().unwrap().error = Some(ErrorStatus {
            code: "ScopeLocked".into(),
            message: "The scope 'rg1' cannot perform delete operation".into(),
            details: vec![],
        });
        let (message, _, release) = published(decide(&failed, "me", 0, &[]));
        assert!(!release, "the object stays until Azure lets go");
        assert_eq!(message.request_id, expected_request_id("Delete"));
        let details = message.failure_details.unwrap();
        assert_eq!(details.failure_code, FailureCode::InfrastructureError);
        assert!(details.description.contains("cannot perform delete"));
        // Transient errors fail the delete only once they keep coming.
        let mut retrying = deleting.clone();
        retrying.status = failed.status.clone();
        let status = retrying.status.as_mut().unwrap();
        status.phase = Some(Phase::Deleting);
        status.failures = DELETE_ATTEMPTS_BEFORE_FAILED - 1;
        assert_eq!(decide(&retrying, "me", 0, &[]), Decision::Nothing);
        retrying.status.as_mut().unwrap().failures = DELETE_ATTEMPTS_BEFORE_FAILED;
        assert!(matches!(
            decide(&retrying, "me", 0, &[]),
            Decision::Publish { release: false, .. }
        ));
        // A sibling's failure fails the whole resource's delete.
        let (sibling_failure, _, _) = published(decide(&deleting, "me", 0, &[&failed]));
        assert_eq!(sibling_failure.status, crate::kafka::ResultStatus::Failed);
        failed
            .annotations_mut()
            .insert(ANNOTATION_REPORTED.into(), "u1".into());
        assert_eq!(decide(&failed, "me", 0, &[]), Decision::Nothing);
    }

    #[test]
    fn an_operation_undo_completes_alone_and_keeps_the_resource_in_the_topology() {
        let mut undo = object("RemoveVnetPeering", true);
        undo.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        undo.metadata.finalizers = Some(vec![FINALIZER.into()]);
        let vnet = object("Create", false);
        let (message, _, release) = published(decide(&undo, "me", 0, &[&vnet]));
        assert!(release);
        assert_eq!(message.status, crate::kafka::ResultStatus::Complete);
        assert!(message.associated_topology.is_empty(), "{message:?}");
    }

    #[test]
    fn a_replaced_request_without_a_result_fails() {
        let running = object("Create", false);
        let Outcome {
            uuid,
            message,
            envelope,
        } = superseded(&running, "u2").unwrap();
        assert_eq!(uuid, "u1");
        assert_eq!(message.request_id, expected_request_id("Create"));
        assert_eq!(message.status, crate::kafka::ResultStatus::Failed);
        assert!(
            message
                .failure_details
                .unwrap()
                .description
                .contains("request u2")
        );
        assert_eq!(envelope.tenant_id.as_deref(), Some("t1"));
        assert_eq!(superseded(&running, "u1"), None);
        let mut answered = running.clone();
        answered
            .annotations_mut()
            .insert(ANNOTATION_REPORTED.into(), "u1".into());
        assert_eq!(superseded(&answered, "u2"), None);
    }
}
