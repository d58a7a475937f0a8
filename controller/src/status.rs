//! Status transitions (pure) and their persistence by server-side apply on `/status`.

use std::collections::BTreeMap;

use crds::{
    AzureResource, AzureResourceStatus, DeploymentStatus, DriftCounts, DriftPolicy, DriftStatus,
    ErrorDetail, ErrorStatus, Phase,
};
use k8s_openapi::{
    api::core::v1::Secret,
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

use crate::azure::{ArmFailure, DeploymentObservation, Output};
use crate::drift;
use crate::error::{ArmDetail, Error, Result};

/// The one field manager for everything the controller applies.
pub const FIELD_MANAGER: &str = "azure-driver-controller";

/// `Ready` condition type.
pub const READY: &str = "Ready";

/// `Drifted` condition type: True while the last drift check found drift.
pub const DRIFTED: &str = "Drifted";

/// Sets the `Ready` condition, keeping `lastTransitionTime` when the status is unchanged.
pub fn set_ready(
    status: &mut AzureResourceStatus,
    ready: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    set_condition(status, READY, ready, reason, message, generation, now);
}

/// Sets a condition, keeping `lastTransitionTime` when its status is unchanged.
fn set_condition(
    status: &mut AzureResourceStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let value = if value { "True" } else { "False" };
    let since = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == value)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    status.conditions.retain(|c| c.type_ != type_);
    status.conditions.push(Condition {
        type_: type_.into(),
        status: value.into(),
        reason: reason.into(),
        // The API server limits messages to 32 KiB; ARM messages can be long.
        message: truncate(message, 4096),
        observed_generation: generation,
        last_transition_time: since,
    });
}

/// A drift check finished: its report and the `Drifted` condition (reason `InSync`,
/// `Drifted`, or `Correcting` when the template is deployed again to undo it).
pub fn drift_checked(
    status: &mut AzureResourceStatus,
    report: DriftStatus,
    correcting: bool,
    generation: Option<i64>,
    now: Timestamp,
) {
    let drifted = drift::is_drifted(&report);
    let (reason, message) = match (drifted, correcting) {
        (false, _) => ("InSync", "Azure matches the template".to_owned()),
        (true, false) => ("Drifted", drift::describe(&report)),
        (true, true) => ("Correcting", drift::describe(&report)),
    };
    set_condition(status, DRIFTED, drifted, reason, &message, generation, now);
    status.drift = Some(report);
}

/// A deployment of the template just succeeded, so Azure is as the template says: that is
/// the drift report (`None`, the deployed resources as `noChange`, `Drifted` False
/// `InSync`), recorded in the same write as `Ready`, so that the first check that finds
/// Azure unchanged has nothing new to write. An answered check request stays answered.
/// `driftPolicy: Ignore` keeps no report.
pub fn deployed_in_sync(
    status: &mut AzureResourceStatus,
    policy: DriftPolicy,
    generation: Option<i64>,
    now: Timestamp,
) {
    if policy == DriftPolicy::Ignore {
        drift_unchecked(status);
        return;
    }
    let counts = DriftCounts {
        no_change: u32::try_from(status.resources.len()).unwrap_or(u32::MAX),
        ..DriftCounts::default()
    };
    let report = DriftStatus {
        last_check_time: Some(Time(now)),
        check_request: status.drift.as_ref().and_then(|d| d.check_request.clone()),
        summary: drift::summary(&counts),
        counts,
        resources: vec![],
        truncated: false,
    };
    drift_checked(status, report, false, generation, now);
}

/// `driftPolicy: Ignore`: no report and no `Drifted` condition.
pub fn drift_unchecked(status: &mut AzureResourceStatus) {
    status.drift = None;
    status.conditions.retain(|c| c.type_ != DRIFTED);
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A deployment was accepted by ARM.
pub fn started(
    status: &mut AzureResourceStatus,
    name: &str,
    applied_hash: &str,
    operation_url: Option<String>,
    generation: Option<i64>,
    now: Timestamp,
) {
    status.phase = Some(Phase::Deploying);
    status.observed_generation = generation;
    status.applied_hash = Some(applied_hash.into());
    status.deployment = Some(DeploymentStatus {
        name: Some(name.into()),
        id: status.deployment.as_ref().and_then(|d| d.id.clone()),
        provisioning_state: Some("Accepted".into()),
        correlation_id: None,
        operation_url,
        started_at: Some(Time(now)),
        finished_at: None,
    });
    set_ready(
        status,
        false,
        "Deploying",
        "deployment running in Azure",
        generation,
        now,
    );
}

/// The deployment succeeded.
pub fn succeeded(
    status: &mut AzureResourceStatus,
    observation: &DeploymentObservation,
    generation: Option<i64>,
    now: Timestamp,
) {
    status.phase = Some(Phase::Ready);
    status.observed_generation = generation;
    status.outputs = public_outputs(&observation.outputs);
    status.resources = observation.resources.clone();
    status.error = None;
    status.failures = 0;
    let deployment = status.deployment.get_or_insert_with(Default::default);
    deployment.id = observation.id.clone().or(deployment.id.take());
    deployment.provisioning_state = Some(observation.provisioning_state_text.clone());
    deployment.correlation_id = observation.correlation_id.clone();
    deployment.operation_url = None;
    deployment.finished_at = Some(Time(now));
    set_ready(
        status,
        true,
        "Succeeded",
        "deployment succeeded",
        generation,
        now,
    );
}

/// A failure: ARM's own report of a failed deployment (`deployment_failed`), or an error
/// of the reconcile. `applied_hash` is set when the failure is the final answer to that
/// request, so that an unchanged object does not send it again.
pub fn failed(
    status: &mut AzureResourceStatus,
    error: &Error,
    deployment_failed: bool,
    applied_hash: Option<&str>,
    generation: Option<i64>,
    now: Timestamp,
) {
    // A transient error while Ready, Deploying or Deleting says nothing about Azure's
    // state: keep the phase (and keep polling what runs).
    let keep_phase = !deployment_failed
        && error.is_retryable()
        && matches!(
            status.phase,
            Some(Phase::Ready | Phase::Deploying | Phase::Deleting)
        );
    if !keep_phase {
        status.phase = Some(Phase::Failed);
        set_ready(
            status,
            false,
            &error.reason(),
            &error.to_string(),
            generation,
            now,
        );
        if let Some(d) = status.deployment.as_mut() {
            d.operation_url = None;
            if d.finished_at.is_none() && d.started_at.is_some() {
                d.finished_at = Some(Time(now));
            }
        }
    }
    if let Some(hash) = applied_hash {
        status.applied_hash = Some(hash.into());
    }
    status.observed_generation = generation;
    status.failures = status.failures.saturating_add(1);
    status.error = Some(error_status(error));
}

/// The object is being deleted.
pub fn deleting(
    status: &mut AzureResourceStatus,
    operation_url: Option<String>,
    generation: Option<i64>,
    now: Timestamp,
) {
    status.phase = Some(Phase::Deleting);
    status
        .deployment
        .get_or_insert_with(Default::default)
        .operation_url = operation_url;
    set_ready(
        status,
        false,
        "Deleting",
        "removing Azure resources",
        generation,
        now,
    );
}

/// The ARM failure as an [`Error`] (classified by its code).
pub fn arm_error(failure: &ArmFailure) -> Error {
    Error::arm(
        failure.code.clone(),
        failure.message.clone(),
        failure.details.clone(),
    )
}

fn error_status(error: &Error) -> ErrorStatus {
    let details = match error {
        Error::Arm { details, .. } => details
            .iter()
            .map(|d: &ArmDetail| ErrorDetail {
                message: truncate(&d.message, 1024),
                ..d.clone()
            })
            .collect(),
        _ => vec![],
    };
    let message = match error {
        Error::Arm { message, .. } => message.clone(),
        other => other.to_string(),
    };
    ErrorStatus {
        code: error.reason(),
        message: truncate(&message, 4096),
        details,
    }
}

/// Non-secure outputs, for status.
pub fn public_outputs(outputs: &[Output]) -> BTreeMap<String, Value> {
    outputs
        .iter()
        .filter(|o| !o.secure)
        .map(|o| (o.name.clone(), o.value.clone()))
        .collect()
}

/// All outputs as Secret string data: strings as they are, anything else as JSON. ARM
/// answers secure outputs without their value; those are left out rather than written
/// as `null`.
pub fn secret_outputs(outputs: &[Output]) -> BTreeMap<String, String> {
    outputs
        .iter()
        .filter(|o| !(o.secure && o.value.is_null()))
        .map(|o| {
            let text = match &o.value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (o.name.clone(), text)
        })
        .collect()
}

/// Whether `after` tells the apiserver anything `before` (the status the reconcile read)
/// does not. A drift check that found what the previous report says is no news: neither
/// its time nor its counts of resources that did not drift (`noChange`, and `ignore`,
/// which other objects' resources in the same group change) are written alone, so that
/// resyncs of unchanged objects write nothing.
pub fn needs_write(before: Option<&AzureResourceStatus>, after: &AzureResourceStatus) -> bool {
    let Some(before) = before else {
        return *after != AzureResourceStatus::default();
    };
    if before == after {
        return false;
    }
    let (Some(recorded), Some(_)) = (&before.drift, &after.drift) else {
        return true;
    };
    let mut after = after.clone();
    if let Some(drift) = after.drift.as_mut() {
        drift.last_check_time = recorded.last_check_time.clone();
        drift.counts.no_change = recorded.counts.no_change;
        drift.counts.ignore = recorded.counts.ignore;
    }
    *before != after
}

/// Writes the whole status (this field manager owns all of it), unless [`needs_write`]
/// finds nothing new in it compared with the object's; returns the object as written.
pub async fn apply(
    api: &Api<AzureResource>,
    object: &AzureResource,
    status: &AzureResourceStatus,
) -> Result<Option<AzureResource>> {
    if !needs_write(object.status.as_ref(), status) {
        return Ok(None);
    }
    let patch = json!({
        "apiVersion": AzureResource::api_version(&()),
        "kind": AzureResource::kind(&()),
        "status": status,
    });
    let written = api
        .patch_status(
            &object.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    Ok(Some(written))
}

/// Label the operator puts on the outputs Secrets it creates; a Secret created by someone
/// else receives outputs only when it carries this label too.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// How the outputs of an object may reach the Secret its `outputsSecretRef` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputsSecret {
    /// No such Secret: create it, owned by the object (deleted with it).
    Create,
    /// The operator's own Secret for this object.
    UpdateOwned,
    /// A Secret someone else made and labelled for the operator: data only, never an
    /// ownerReference (deleting the object must not delete it).
    UpdateLabelled,
}

/// Decides whether `object_uid`'s outputs may be written into `existing`: never into a
/// Secret the operator did not create that lacks its label, nor into another object's.
pub fn outputs_secret_access(existing: Option<&Secret>, object_uid: &str) -> Result<OutputsSecret> {
    let Some(secret) = existing else {
        return Ok(OutputsSecret::Create);
    };
    let owners = secret
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default();
    if owners.iter().any(|owner| owner.uid == object_uid) {
        return Ok(OutputsSecret::UpdateOwned);
    }
    let labelled = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(MANAGED_BY_LABEL))
        .is_some_and(|manager| manager == FIELD_MANAGER);
    let owned_by_other_object = owners
        .iter()
        .any(|owner| owner.kind == AzureResource::kind(&()));
    if labelled && !owned_by_other_object {
        return Ok(OutputsSecret::UpdateLabelled);
    }
    Err(Error::InvalidSpec(format!(
        "outputsSecretRef names Secret {} which the operator did not create for this object; label it {MANAGED_BY_LABEL}={FIELD_MANAGER} to receive outputs, or name another Secret",
        secret.metadata.name.as_deref().unwrap_or_default()
    )))
}

/// Writes the outputs Secret: created owned by the object (garbage collected with it), or
/// updated when [`outputs_secret_access`] allows it.
pub async fn apply_outputs_secret(
    secrets: &Api<Secret>,
    object: &AzureResource,
    name: &str,
    outputs: &[Output],
) -> Result<()> {
    let uid = object
        .uid()
        .ok_or_else(|| Error::InvalidSpec("object has no uid".into()))?;
    let access = outputs_secret_access(secrets.get_opt(name).await?.as_ref(), &uid)?;
    let mut metadata = json!({
        "name": name,
        "labels": {MANAGED_BY_LABEL: FIELD_MANAGER},
    });
    if access != OutputsSecret::UpdateLabelled {
        metadata["ownerReferences"] = json!([object.controller_owner_ref(&())]);
    }
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "stringData": secret_outputs(outputs),
    });
    match access {
        // Create, not apply: a Secret made by someone else in the meantime is not taken over.
        OutputsSecret::Create => {
            let secret: Secret = serde_json::from_value(secret)
                .map_err(|err| Error::InvalidSpec(format!("outputs Secret: {err}")))?;
            secrets.create(&PostParams::default(), &secret).await?;
        }
        OutputsSecret::UpdateOwned | OutputsSecret::UpdateLabelled => {
            secrets
                .patch(
                    name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&secret),
                )
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::ProvisioningState;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn outputs() -> Vec<Output> {
        vec![
            Output {
                name: "endpoint".into(),
                value: json!("https://x"),
                secure: false,
            },
            Output {
                name: "key".into(),
                value: json!("s3cret"),
                secure: true,
            },
            Output {
                name: "ports".into(),
                value: json!([80, 443]),
                secure: false,
            },
        ]
    }

    fn observation() -> DeploymentObservation {
        DeploymentObservation {
            id: Some("/d".into()),
            provisioning_state_text: "Succeeded".into(),
            state: ProvisioningState::Succeeded,
            correlation_id: Some("c".into()),
            outputs: outputs(),
            resources: vec!["/r1".into()],
            error: None,
        }
    }

    #[test]
    fn secure_outputs_stay_out_of_status_but_reach_the_secret() {
        let public = public_outputs(&outputs());
        assert_eq!(public.len(), 2);
        assert!(!public.contains_key("key"));
        let secret = secret_outputs(&outputs());
        assert_eq!(secret["key"], "s3cret");
        assert_eq!(secret["endpoint"], "https://x");
        assert_eq!(secret["ports"], "[80,443]");

        let withheld = [Output {
            name: "key".into(),
            value: Value::Null,
            secure: true,
        }];
        assert!(secret_outputs(&withheld).is_empty());
    }

    #[test]
    fn lifecycle_start_success() {
        let mut s = AzureResourceStatus::default();
        started(&mut s, "d", "h", Some("https://op".into()), Some(1), now());
        assert_eq!(s.phase, Some(Phase::Deploying));
        assert_eq!(s.applied_hash.as_deref(), Some("h"));
        assert_eq!(
            s.deployment.as_ref().unwrap().operation_url.as_deref(),
            Some("https://op")
        );
        s.failures = 3;
        succeeded(&mut s, &observation(), Some(1), now());
        assert_eq!(s.phase, Some(Phase::Ready));
        assert_eq!(s.failures, 0);
        assert_eq!(s.resources, vec!["/r1".to_string()]);
        assert!(!serde_json::to_string(&s).unwrap().contains("s3cret"));
        let d = s.deployment.as_ref().unwrap();
        assert_eq!(d.operation_url, None);
        assert_eq!(d.provisioning_state.as_deref(), Some("Succeeded"));
        let ready = &s.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Succeeded")
        );
    }

    #[test]
    fn arm_failure_sets_code_as_reason_and_records_the_hash() {
        let mut s = AzureResourceStatus::default();
        started(&mut s, "d", "h", None, Some(1), now());
        let err = arm_error(&ArmFailure {
            code: "DeploymentFailed".into(),
            message: "At least one resource deployment operation failed".into(),
            details: vec![ArmDetail {
                code: "SkuNotAvailable".into(),
                message: "no".into(),
                target: None,
            }],
        });
        failed(&mut s, &err, true, None, Some(1), now());
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(s.failures, 1);
        let e = s.error.as_ref().unwrap();
        assert_eq!(e.code, "DeploymentFailed");
        assert_eq!(e.details[0].code, "SkuNotAvailable");
        assert_eq!(s.conditions[0].reason, "DeploymentFailed");
        assert!(s.deployment.as_ref().unwrap().finished_at.is_some());
    }

    #[test]
    fn transient_errors_keep_a_ready_or_deploying_phase() {
        let mut s = AzureResourceStatus::default();
        succeeded(&mut s, &observation(), Some(1), now());
        let err = Error::ArmUnavailable {
            message: "connection reset".into(),
            retry_after: None,
        };
        failed(&mut s, &err, false, None, Some(1), now());
        assert_eq!(s.phase, Some(Phase::Ready));
        assert_eq!(s.failures, 1);
        assert_eq!(s.conditions[0].status, "True");

        let mut pending = AzureResourceStatus::default();
        failed(
            &mut pending,
            &Error::CredentialsMissing("Secret \"c\" does not exist".into()),
            false,
            None,
            Some(1),
            now(),
        );
        assert_eq!(pending.phase, Some(Phase::Failed));
        assert_eq!(pending.conditions[0].reason, "CredentialsMissing");
        assert_eq!(pending.applied_hash, None);
    }

    #[test]
    fn ready_condition_keeps_its_transition_time() {
        let mut s = AzureResourceStatus::default();
        set_ready(&mut s, true, "Succeeded", "ok", Some(1), now());
        let later = Timestamp::from_second(1_800_000_100).unwrap();
        set_ready(&mut s, true, "Succeeded", "ok", Some(2), later);
        assert_eq!(s.conditions.len(), 1);
        assert_eq!(s.conditions[0].last_transition_time, Time(now()));
        set_ready(&mut s, false, "Deploying", "x", Some(2), later);
        assert_eq!(s.conditions[0].last_transition_time, Time(later));
    }

    #[test]
    fn unchanged_status_and_repeated_drift_results_need_no_write() {
        let mut ready = AzureResourceStatus::default();
        assert!(!needs_write(None, &ready));
        succeeded(&mut ready, &observation(), Some(1), now());
        assert!(needs_write(None, &ready));
        assert!(!needs_write(Some(&ready), &ready.clone()));

        let in_sync = |at: Timestamp, request: Option<&str>| DriftStatus {
            last_check_time: Some(Time(at)),
            check_request: request.map(str::to_owned),
            summary: "None".into(),
            ..DriftStatus::default()
        };
        let mut checked = ready.clone();
        drift_checked(&mut checked, in_sync(now(), None), false, Some(1), now());
        assert!(
            needs_write(Some(&ready), &checked),
            "the first check result"
        );

        let later = Timestamp::from_second(1_800_000_600).unwrap();
        let mut again = checked.clone();
        drift_checked(&mut again, in_sync(later, None), false, Some(1), later);
        assert!(
            !needs_write(Some(&checked), &again),
            "same result, later time"
        );

        let mut answered = checked.clone();
        drift_checked(
            &mut answered,
            in_sync(later, Some("1")),
            false,
            Some(1),
            later,
        );
        assert!(
            needs_write(Some(&checked), &answered),
            "a check request answered"
        );

        let mut drifted = checked.clone();
        let report = DriftStatus {
            summary: "Modify=1".into(),
            counts: crds::DriftCounts {
                modify: 1,
                ..Default::default()
            },
            ..in_sync(later, None)
        };
        drift_checked(&mut drifted, report, false, Some(1), later);
        assert!(needs_write(Some(&checked), &drifted), "a new drift result");

        let mut failing = ready.clone();
        failing.failures = 1;
        assert!(needs_write(Some(&ready), &failing));
    }

    #[test]
    fn a_deployment_records_azure_in_sync_so_a_first_check_finding_the_same_writes_nothing() {
        let mut ready = AzureResourceStatus::default();
        succeeded(&mut ready, &observation(), Some(1), now());
        deployed_in_sync(&mut ready, DriftPolicy::Report, Some(1), now());
        let report = ready.drift.clone().expect("an in-sync report");
        assert_eq!(report.summary, "None");
        assert_eq!(report.counts.no_change, 1);
        assert_eq!(report.last_check_time, Some(Time(now())));
        let drifted = ready.conditions.iter().find(|c| c.type_ == DRIFTED);
        assert_eq!(
            drifted.map(|c| (c.status.as_str(), c.reason.as_str())),
            Some(("False", "InSync"))
        );

        // What ARM's what-if says of an untouched object: its account unchanged, and
        // other objects' resources in the same group not managed by this template.
        let later = Timestamp::from_second(1_800_000_600).unwrap();
        let what_if: Vec<_> = ["/r1", "/other1", "/other2"]
            .into_iter()
            .map(|id| drift::ResourceChange {
                id: id.into(),
                change_type: if id == "/r1" {
                    drift::ChangeType::NoChange
                } else {
                    drift::ChangeType::Ignore
                },
                delta: vec![],
            })
            .collect();
        let mut checked = ready.clone();
        let found = drift::report(&what_if, &[], None, later);
        assert_eq!(found.counts.ignore, 2);
        drift_checked(&mut checked, found, false, Some(1), later);
        assert!(!needs_write(Some(&ready), &checked));

        let modified = drift::ResourceChange {
            id: "/r1".into(),
            change_type: drift::ChangeType::Modify,
            delta: vec![drift::PropertyChange {
                path: "sku.name".into(),
                change_type: "Modify".into(),
                before: Some(json!("a")),
                after: Some(json!("b")),
            }],
        };
        let mut drifted = ready.clone();
        let found = drift::report(&[modified], &[], None, later);
        drift_checked(&mut drifted, found, false, Some(1), later);
        assert!(needs_write(Some(&ready), &drifted));

        // A request answered before stays answered after the next deployment.
        let mut answered = checked.clone();
        answered.drift.as_mut().unwrap().check_request = Some("7".into());
        deployed_in_sync(&mut answered, DriftPolicy::Correct, Some(2), later);
        assert_eq!(answered.drift.unwrap().check_request.as_deref(), Some("7"));

        let mut ignored = ready.clone();
        deployed_in_sync(&mut ignored, DriftPolicy::Ignore, Some(1), now());
        assert_eq!(ignored.drift, None);
        assert!(!ignored.conditions.iter().any(|c| c.type_ == DRIFTED));
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let text = "é".repeat(3000);
        let t = truncate(&text, 4095);
        assert!(t.len() <= 4095 + "…".len());
    }

    #[test]
    fn outputs_go_only_into_secrets_the_operator_made_or_that_carry_its_label() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
        let secret = |owner: Option<(&str, &str)>, label: Option<&str>| Secret {
            metadata: ObjectMeta {
                name: Some("db".into()),
                owner_references: owner.map(|(kind, uid)| {
                    vec![OwnerReference {
                        api_version: "x/v1".into(),
                        kind: kind.into(),
                        name: "o".into(),
                        uid: uid.into(),
                        ..OwnerReference::default()
                    }]
                }),
                labels: label.map(|manager| {
                    BTreeMap::from([(MANAGED_BY_LABEL.to_string(), manager.to_string())])
                }),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };
        assert_eq!(
            outputs_secret_access(None, "u1").unwrap(),
            OutputsSecret::Create
        );
        assert_eq!(
            outputs_secret_access(
                Some(&secret(Some(("AzureResource", "u1")), Some(FIELD_MANAGER))),
                "u1"
            )
            .unwrap(),
            OutputsSecret::UpdateOwned
        );
        assert_eq!(
            outputs_secret_access(Some(&secret(None, Some(FIELD_MANAGER))), "u1").unwrap(),
            OutputsSecret::UpdateLabelled
        );
        assert_eq!(
            outputs_secret_access(
                Some(&secret(Some(("Deployment", "d1")), Some(FIELD_MANAGER))),
                "u1"
            )
            .unwrap(),
            OutputsSecret::UpdateLabelled
        );
        for foreign in [
            secret(None, None),
            secret(None, Some("helm")),
            secret(Some(("AzureResource", "u2")), Some(FIELD_MANAGER)),
        ] {
            let err = outputs_secret_access(Some(&foreign), "u1").unwrap_err();
            assert!(
                err.to_string().contains("did not create for this object"),
                "{err}"
            );
            assert!(!err.is_retryable());
        }
    }
}
