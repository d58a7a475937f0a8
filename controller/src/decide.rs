//! Pure decisions: from what is known about an object (its status, the desired hash, the
//! latest ARM answer) to the next [`Action`] or [`DeleteAction`]. The reconciler performs
//! the I/O an action names and feeds the answer back through the `after_*` functions.

use std::time::Duration;

use crds::{AzureResourceStatus, DeletionPolicy, DriftPolicy, Phase};
use k8s_openapi::jiff::Timestamp;

use crate::azure::{
    ArmFailure, DeleteOutcome, DeploymentObservation, Engine, OperationStatus, ProvisioningState,
    StartOutcome, UnmanageAction, WhatIfOutcome,
};
use crate::drift::ResourceChange;
use crate::error::is_retryable_reason;

/// Poll interval when ARM gives no `Retry-After` (ARM itself suggests up to 60 s; the
/// simulator and small templates finish much sooner).
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

/// What the apply step does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// PUT the deployment (after ensuring the resource group).
    StartDeployment,
    /// GET the long-running operation's status URL.
    PollOperation { operation_url: String },
    /// GET the deployment itself (no operation URL known, or the operation finished).
    ObserveDeployment,
    /// A Ready object is due for its periodic check: GET the deployment (and, under
    /// `driftPolicy: Ignore`, its resources) first; redeploy when it is gone or unhealthy.
    CheckDrift,
    /// The deployment is healthy: ask ARM's what-if how Azure differs from the template.
    StartWhatIf,
    /// GET a running what-if's result.
    PollWhatIf { operation_url: String },
    /// Remember a running what-if and read it after `after`.
    AwaitWhatIf {
        operation_url: String,
        after: Duration,
    },
    /// Judge and record what the what-if found.
    RecordDrift(Vec<ResourceChange>),
    /// ARM could not run the what-if: report it, check again at the next interval.
    DriftCheckFailed(ArmFailure),
    /// Record that a deployment was accepted and is running.
    RecordStarted {
        operation_url: Option<String>,
        poll_after: Duration,
    },
    /// Record success: outputs, resources, Ready.
    RecordSuccess(DeploymentObservation),
    /// Record an ARM-reported deployment failure.
    RecordFailure(ArmFailure),
    /// Nothing to write; look again later.
    Requeue { after: Duration },
    /// Nothing to do until the object or one of its inputs changes.
    AwaitChange,
}

/// What the decision looks at.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub generation: Option<i64>,
    pub status: &'a AzureResourceStatus,
    pub desired_hash: &'a str,
    pub now: Timestamp,
    pub sync_interval: Option<Duration>,
    /// When this process last checked the object against Azure (not persisted: a
    /// restart checks once, with reads only).
    pub last_checked: Option<Timestamp>,
    pub drift_policy: DriftPolicy,
    pub engine: Engine,
    /// Value of the `azure-driver.io/check-drift` annotation.
    pub check_drift_annotation: Option<&'a str>,
    /// A what-if this process started for the object and has not read yet.
    pub pending_what_if: Option<&'a PendingWhatIf>,
}

/// A running what-if, kept in memory (after a restart the next check starts another).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingWhatIf {
    pub operation_url: String,
    /// The applied hash it was started for: a what-if of an older spec is not read.
    pub applied_hash: String,
    pub due: Timestamp,
}

/// A new value of the check-drift annotation asks for a check now.
fn drift_check_requested(o: &Observed<'_>) -> bool {
    let answered = o
        .status
        .drift
        .as_ref()
        .and_then(|d| d.check_request.as_deref());
    o.drift_policy != DriftPolicy::Ignore
        && o.check_drift_annotation.is_some()
        && o.check_drift_annotation != answered
}

/// The first step of a reconcile of a live (not deleted) object.
pub fn decide(o: &Observed<'_>) -> Action {
    let status = o.status;
    let same_hash = status.applied_hash.as_deref() == Some(o.desired_hash);
    match status.phase {
        // Finish what runs before anything else: ARM refuses a second PUT anyway.
        Some(Phase::Deploying) => match operation_url(status) {
            Some(operation_url) => Action::PollOperation { operation_url },
            None => Action::ObserveDeployment,
        },
        Some(Phase::Ready) if same_hash => check_when_due(o),
        Some(Phase::Failed)
            if same_hash
                && o.generation == status.observed_generation
                && !failure_is_retryable(status) =>
        {
            Action::AwaitChange
        }
        _ => Action::StartDeployment,
    }
}

/// A Ready, unchanged object: read a pending what-if when due, check on request or
/// when the sync interval has passed, else wait.
fn check_when_due(o: &Observed<'_>) -> Action {
    if let Some(pending) = o
        .pending_what_if
        .filter(|p| p.applied_hash == o.desired_hash)
    {
        let wait = o.now.duration_since(pending.due);
        return if wait.is_negative() {
            Action::Requeue {
                after: wait.unsigned_abs(),
            }
        } else {
            Action::PollWhatIf {
                operation_url: pending.operation_url.clone(),
            }
        };
    }
    if drift_check_requested(o) {
        return start_check(o.engine, o.drift_policy);
    }
    let Some(interval) = o.sync_interval else {
        return Action::AwaitChange;
    };
    let last = o
        .last_checked
        .or_else(|| last_drift_check(o.status))
        .or_else(|| finished_at(o.status))
        .unwrap_or(o.now);
    let elapsed = o.now.duration_since(last).unsigned_abs();
    if elapsed >= interval {
        start_check(o.engine, o.drift_policy)
    } else {
        Action::Requeue {
            after: interval - elapsed,
        }
    }
}

/// The first step of a due check. The what-if answers for the resources (a missing one
/// is a `Create`, which redeploys), so a plain deployment's record is not read: nothing
/// depends on it (deletion uses `status.resources`) and ARM trims deployment history by
/// itself. A stack is read first: it owns its resources (deleting it deletes them) and a
/// stack deleted out of band with `detach` leaves resources that what-if calls unchanged.
/// `driftPolicy: Ignore` runs no what-if: the deployment and resources are read instead.
fn start_check(engine: Engine, policy: DriftPolicy) -> Action {
    match (engine, policy) {
        (Engine::Deployment, DriftPolicy::Report | DriftPolicy::Correct) => Action::StartWhatIf,
        (Engine::Stack, _) | (Engine::Deployment, DriftPolicy::Ignore) => Action::CheckDrift,
    }
}

/// After ARM refused a what-if (`code`, classified `retryable`). A missing resource group
/// means all the template deployed is gone: deploy again (ensuring the group), as the
/// check's GET of the deployment would have. Other terminal refusals say nothing about
/// the deployment: the object stays Ready and the next interval checks again. Other
/// retryable ones are retried (`None`).
pub fn after_what_if_refused(code: &str, message: &str, retryable: bool) -> Option<Action> {
    if code == "ResourceGroupNotFound" {
        Some(Action::StartDeployment)
    } else if retryable {
        None
    } else {
        Some(Action::DriftCheckFailed(ArmFailure {
            code: code.to_owned(),
            message: message.to_owned(),
            details: vec![],
        }))
    }
}

/// After a PUT.
pub fn after_start(outcome: StartOutcome) -> Action {
    match outcome {
        StartOutcome::Accepted {
            operation_url,
            retry_after,
        } => Action::RecordStarted {
            operation_url,
            poll_after: retry_after.unwrap_or(DEFAULT_POLL),
        },
        StartOutcome::AlreadyRunning => Action::RecordStarted {
            operation_url: None,
            poll_after: DEFAULT_POLL,
        },
    }
}

/// After polling the operation URL.
pub fn after_poll(status: OperationStatus) -> Action {
    match status {
        OperationStatus::Running { retry_after } => Action::Requeue {
            after: retry_after.unwrap_or(DEFAULT_POLL),
        },
        // The outputs and resources are on the deployment, not on the operation.
        OperationStatus::Succeeded => Action::ObserveDeployment,
        OperationStatus::Failed(failure) => Action::RecordFailure(failure),
    }
}

/// After a GET of the deployment while one is believed to be running.
pub fn after_observe(observation: Option<DeploymentObservation>) -> Action {
    let Some(observation) = observation else {
        // The PUT never landed (or the record was trimmed): send it (again).
        return Action::StartDeployment;
    };
    match observation.state {
        ProvisioningState::Running => Action::Requeue {
            after: DEFAULT_POLL,
        },
        ProvisioningState::Succeeded => Action::RecordSuccess(observation),
        ProvisioningState::Failed | ProvisioningState::Canceled => {
            Action::RecordFailure(failure_of(observation))
        }
    }
}

/// The error of a deployment that ended Failed or Canceled (ARM's, else one naming the
/// state).
fn failure_of(observation: DeploymentObservation) -> ArmFailure {
    observation.error.unwrap_or_else(|| ArmFailure {
        code: format!("Deployment{}", observation.provisioning_state_text),
        message: format!(
            "the deployment ended in state {}",
            observation.provisioning_state_text
        ),
        details: vec![],
    })
}

/// A finished deployment answers the spec it was started for (`running_hash`): when the
/// object changed meanwhile (`desired_hash`), its outcome is not this generation's answer
/// and the current spec is deployed at once instead of at the next change or check.
pub fn unless_superseded(action: Action, running_hash: Option<&str>, desired_hash: &str) -> Action {
    match action {
        Action::RecordSuccess(_) | Action::RecordFailure(_)
            if running_hash != Some(desired_hash) =>
        {
            Action::StartDeployment
        }
        other => other,
    }
}

/// What observing an adopted object leads to: it is never deployed, only reported.
#[derive(Debug, Clone, PartialEq)]
pub enum AdoptAction {
    /// It exists and is settled: record it Ready.
    RecordReady(DeploymentObservation),
    /// It is missing, or its deployment failed: record that, and look again later.
    RecordFailure(ArmFailure),
    /// Its deployment still runs: look again after this long.
    Requeue { after: Duration },
}

/// After a GET of an adopted deployment, stack or resource (`None`: it does not exist).
pub fn after_adopt_observe(observation: Option<DeploymentObservation>, id: &str) -> AdoptAction {
    let Some(observation) = observation else {
        return AdoptAction::RecordFailure(ArmFailure {
            code: "ResourceNotFound".into(),
            message: format!("the adopted {id} does not exist in Azure"),
            details: vec![],
        });
    };
    match observation.state {
        ProvisioningState::Running => AdoptAction::Requeue {
            after: DEFAULT_POLL,
        },
        ProvisioningState::Succeeded => AdoptAction::RecordReady(observation),
        ProvisioningState::Failed | ProvisioningState::Canceled => {
            AdoptAction::RecordFailure(failure_of(observation))
        }
    }
}

/// After the periodic check: redeploy when the deployment is gone, did not succeed, or
/// any of its resources vanished; else look again after the interval.
pub fn after_drift_check(
    observation: Option<&DeploymentObservation>,
    missing_resources: usize,
    sync_interval: Option<Duration>,
) -> Action {
    let healthy = observation.is_some_and(|o| o.state == ProvisioningState::Succeeded);
    if !healthy || missing_resources > 0 {
        return Action::StartDeployment;
    }
    sync_interval.map_or(Action::AwaitChange, |after| Action::Requeue { after })
}

/// After the GET of the deployment at a periodic check: a gone or unhealthy deployment
/// (or, with `driftPolicy: Ignore`, a missing resource) is deployed again as before; a
/// healthy one is compared with the template by what-if unless the policy is `Ignore`.
pub fn after_deployment_check(
    observation: Option<&DeploymentObservation>,
    missing_resources: usize,
    sync_interval: Option<Duration>,
    policy: DriftPolicy,
) -> Action {
    match after_drift_check(observation, missing_resources, sync_interval) {
        Action::StartDeployment => Action::StartDeployment,
        _ if policy != DriftPolicy::Ignore => Action::StartWhatIf,
        next => next,
    }
}

/// After starting or polling a what-if. A running one is read after ARM's `Retry-After`,
/// but no later than one sync interval: the check's answer is due within the interval.
pub fn after_what_if(outcome: WhatIfOutcome, sync_interval: Option<Duration>) -> Action {
    match outcome {
        WhatIfOutcome::Done(changes) => Action::RecordDrift(changes),
        WhatIfOutcome::Running {
            operation_url,
            retry_after,
        } => {
            let wait = retry_after.unwrap_or(DEFAULT_POLL);
            Action::AwaitWhatIf {
                operation_url,
                after: sync_interval.map_or(wait, |interval| wait.min(interval)),
            }
        }
        WhatIfOutcome::Failed(failure) => Action::DriftCheckFailed(failure),
    }
}

/// What the delete path does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteAction {
    /// A deployment is still running: wait for it before removing anything.
    WaitForDeployment { operation_url: Option<String> },
    /// DELETE the stack with this unmanage action.
    DeleteStack { unmanage: UnmanageAction },
    /// Poll a running stack or deployment record deletion.
    PollDelete { operation_url: String },
    /// Resources unknown: read them from the deployment (or take the adopted id).
    DiscoverResources,
    /// DELETE these ids (the deepest level of those left: children first).
    DeleteResources { ids: Vec<String> },
    /// All resources are gone: delete the deployment history record.
    DeleteRecord,
    /// Nothing left in Azure for this object.
    RemoveFinalizer,
}

/// How an object's Azure side is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Delete the deployment stack: ARM deletes (or detaches) what it manages.
    Stack,
    /// Delete the deployment's resources by id, children first, then its record.
    Deployment,
    /// Delete one adopted resource (or resource group) by id.
    Resource,
}

impl From<Engine> for Removal {
    fn from(engine: Engine) -> Self {
        match engine {
            Engine::Stack => Removal::Stack,
            Engine::Deployment => Removal::Deployment,
        }
    }
}

/// The next step of deleting an object.
pub fn decide_delete(
    status: &AzureResourceStatus,
    removal: Removal,
    policy: DeletionPolicy,
) -> DeleteAction {
    if status.phase == Some(Phase::Deploying) {
        return DeleteAction::WaitForDeployment {
            operation_url: operation_url(status),
        };
    }
    let deleting = status.phase == Some(Phase::Deleting);
    match (removal, policy) {
        (Removal::Deployment | Removal::Resource, DeletionPolicy::Orphan) => {
            DeleteAction::RemoveFinalizer
        }
        (Removal::Stack, _) => match operation_url(status).filter(|_| deleting) {
            Some(operation_url) => DeleteAction::PollDelete { operation_url },
            None => DeleteAction::DeleteStack {
                unmanage: crate::build::unmanage_action(policy),
            },
        },
        (Removal::Deployment | Removal::Resource, DeletionPolicy::Delete) => {
            if !status.resources.is_empty() {
                DeleteAction::DeleteResources {
                    ids: deepest(&status.resources),
                }
            } else if !deleting {
                DeleteAction::DiscoverResources
            } else if removal == Removal::Deployment {
                match operation_url(status) {
                    Some(operation_url) => DeleteAction::PollDelete { operation_url },
                    None => DeleteAction::DeleteRecord,
                }
            } else {
                DeleteAction::RemoveFinalizer
            }
        }
    }
}

/// After a stack DELETE or a poll of it: `None` means done.
pub fn after_stack_delete(outcome: DeleteOutcome) -> Option<(Option<String>, Duration)> {
    match outcome {
        DeleteOutcome::Done => None,
        DeleteOutcome::Accepted {
            operation_url,
            retry_after,
        } => Some((operation_url, retry_after.unwrap_or(DEFAULT_POLL))),
    }
}

/// The ids at the greatest path depth, so that children go before their parents.
pub fn deepest(ids: &[String]) -> Vec<String> {
    let depth = |id: &str| id.trim_matches('/').split('/').count();
    let max = ids.iter().map(|id| depth(id)).max().unwrap_or(0);
    ids.iter().filter(|id| depth(id) == max).cloned().collect()
}

fn operation_url(status: &AzureResourceStatus) -> Option<String> {
    status
        .deployment
        .as_ref()
        .and_then(|d| d.operation_url.clone())
}

fn last_drift_check(status: &AzureResourceStatus) -> Option<Timestamp> {
    status
        .drift
        .as_ref()
        .and_then(|d| d.last_check_time.as_ref())
        .map(|t| t.0)
}

fn finished_at(status: &AzureResourceStatus) -> Option<Timestamp> {
    status
        .deployment
        .as_ref()
        .and_then(|d| d.finished_at.as_ref())
        .map(|t| t.0)
}

fn failure_is_retryable(status: &AzureResourceStatus) -> bool {
    status
        .error
        .as_ref()
        .is_some_and(|e| is_retryable_reason(&e.code, &e.details))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::{DeploymentStatus, ErrorDetail, ErrorStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const HASH: &str = "h1";

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn status(phase: Phase, hash: &str) -> AzureResourceStatus {
        AzureResourceStatus {
            phase: Some(phase),
            observed_generation: Some(1),
            applied_hash: Some(hash.into()),
            deployment: Some(DeploymentStatus {
                finished_at: Some(Time(at(0))),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn observed(status: &AzureResourceStatus) -> Observed<'_> {
        Observed {
            generation: Some(1),
            status,
            desired_hash: HASH,
            now: at(0),
            sync_interval: Some(Duration::from_secs(3600)),
            last_checked: None,
            drift_policy: DriftPolicy::Report,
            engine: Engine::Stack,
            check_drift_annotation: None,
            pending_what_if: None,
        }
    }

    fn observation(state: ProvisioningState) -> DeploymentObservation {
        DeploymentObservation {
            id: Some("/subscriptions/s/resourceGroups/rg/providers/x/deployments/d".into()),
            provisioning_state_text: format!("{state:?}"),
            state,
            correlation_id: None,
            outputs: vec![],
            resources: vec![],
            error: None,
        }
    }

    fn failed_with(code: &str, details: &[&str]) -> AzureResourceStatus {
        let mut s = status(Phase::Failed, HASH);
        s.error = Some(ErrorStatus {
            code: code.into(),
            message: "m".into(),
            details: details
                .iter()
                .map(|c| ErrorDetail {
                    code: (*c).into(),
                    message: "m".into(),
                    target: None,
                })
                .collect(),
        });
        s
    }

    #[test]
    fn new_object_deploys() {
        let s = AzureResourceStatus::default();
        assert_eq!(decide(&observed(&s)), Action::StartDeployment);
        let pending = status(Phase::Pending, "");
        assert_eq!(decide(&observed(&pending)), Action::StartDeployment);
    }

    #[test]
    fn running_deployment_is_polled_not_redeployed() {
        let mut s = status(Phase::Deploying, "old");
        assert_eq!(decide(&observed(&s)), Action::ObserveDeployment);
        s.deployment.as_mut().unwrap().operation_url = Some("https://op".into());
        assert_eq!(
            decide(&observed(&s)),
            Action::PollOperation {
                operation_url: "https://op".into()
            }
        );
    }

    #[test]
    fn ready_and_unchanged_waits_for_the_sync_interval() {
        let s = status(Phase::Ready, HASH);
        let mut o = observed(&s);
        o.now = at(600);
        assert_eq!(
            decide(&o),
            Action::Requeue {
                after: Duration::from_secs(3000)
            }
        );
        o.now = at(3600);
        assert_eq!(decide(&o), Action::CheckDrift);
        o.last_checked = Some(at(3000));
        assert_eq!(
            decide(&o),
            Action::Requeue {
                after: Duration::from_secs(3000)
            }
        );
        o.sync_interval = None;
        assert_eq!(decide(&o), Action::AwaitChange);
    }

    #[test]
    fn changed_hash_redeploys_a_ready_object() {
        let s = status(Phase::Ready, "old");
        assert_eq!(decide(&observed(&s)), Action::StartDeployment);
    }

    #[test]
    fn terminal_failure_waits_for_a_change() {
        let s = failed_with("InvalidTemplate", &[]);
        assert_eq!(decide(&observed(&s)), Action::AwaitChange);

        let mut new_generation = observed(&s);
        new_generation.generation = Some(2);
        assert_eq!(decide(&new_generation), Action::StartDeployment);

        let mut new_hash = observed(&s);
        new_hash.desired_hash = "h2";
        assert_eq!(decide(&new_hash), Action::StartDeployment);
    }

    #[test]
    fn retryable_failure_is_retried() {
        for s in [
            failed_with("SubscriptionRequestsThrottled", &[]),
            failed_with("DeploymentFailed", &["Conflict"]),
            failed_with("CredentialsMissing", &[]),
        ] {
            assert_eq!(decide(&observed(&s)), Action::StartDeployment);
        }
        let mut no_error = status(Phase::Failed, "");
        no_error.error = None;
        assert_eq!(decide(&observed(&no_error)), Action::StartDeployment);
    }

    #[test]
    fn start_outcomes_record_the_operation() {
        assert_eq!(
            after_start(StartOutcome::Accepted {
                operation_url: Some("https://op".into()),
                retry_after: Some(Duration::from_secs(2))
            }),
            Action::RecordStarted {
                operation_url: Some("https://op".into()),
                poll_after: Duration::from_secs(2)
            }
        );
        assert_eq!(
            after_start(StartOutcome::AlreadyRunning),
            Action::RecordStarted {
                operation_url: None,
                poll_after: DEFAULT_POLL
            }
        );
    }

    #[test]
    fn poll_results() {
        assert_eq!(
            after_poll(OperationStatus::Running {
                retry_after: Some(Duration::from_secs(7))
            }),
            Action::Requeue {
                after: Duration::from_secs(7)
            }
        );
        assert_eq!(
            after_poll(OperationStatus::Succeeded),
            Action::ObserveDeployment
        );
        let failure = ArmFailure {
            code: "DeploymentFailed".into(),
            message: "m".into(),
            details: vec![],
        };
        assert_eq!(
            after_poll(OperationStatus::Failed(failure.clone())),
            Action::RecordFailure(failure)
        );
    }

    #[test]
    fn observation_results() {
        assert_eq!(after_observe(None), Action::StartDeployment);
        assert_eq!(
            after_observe(Some(observation(ProvisioningState::Running))),
            Action::Requeue {
                after: DEFAULT_POLL
            }
        );
        let ok = observation(ProvisioningState::Succeeded);
        assert_eq!(after_observe(Some(ok.clone())), Action::RecordSuccess(ok));
        match after_observe(Some(observation(ProvisioningState::Canceled))) {
            Action::RecordFailure(f) => assert_eq!(f.code, "DeploymentCanceled"),
            other => panic!("unexpected {other:?}"),
        }
        let mut failed = observation(ProvisioningState::Failed);
        failed.error = Some(ArmFailure {
            code: "DeploymentFailed".into(),
            message: "boom".into(),
            details: vec![],
        });
        assert_eq!(
            after_observe(Some(failed.clone())),
            Action::RecordFailure(failed.error.unwrap())
        );
    }

    #[test]
    fn drift_check_redeploys_only_on_drift() {
        let ok = observation(ProvisioningState::Succeeded);
        let hour = Some(Duration::from_secs(3600));
        assert_eq!(
            after_drift_check(Some(&ok), 0, hour),
            Action::Requeue {
                after: Duration::from_secs(3600)
            }
        );
        assert_eq!(
            after_drift_check(Some(&ok), 1, hour),
            Action::StartDeployment
        );
        assert_eq!(after_drift_check(None, 0, hour), Action::StartDeployment);
        let failed = observation(ProvisioningState::Failed);
        assert_eq!(
            after_drift_check(Some(&failed), 0, hour),
            Action::StartDeployment
        );
    }

    #[test]
    fn delete_waits_for_a_running_deployment() {
        let s = status(Phase::Deploying, HASH);
        for engine in [Removal::Stack, Removal::Deployment, Removal::Resource] {
            assert_eq!(
                decide_delete(&s, engine, DeletionPolicy::Delete),
                DeleteAction::WaitForDeployment {
                    operation_url: None
                }
            );
        }
    }

    #[test]
    fn stack_delete_and_orphan() {
        let s = status(Phase::Ready, HASH);
        assert_eq!(
            decide_delete(&s, Removal::Stack, DeletionPolicy::Delete),
            DeleteAction::DeleteStack {
                unmanage: UnmanageAction::Delete
            }
        );
        assert_eq!(
            decide_delete(&s, Removal::Stack, DeletionPolicy::Orphan),
            DeleteAction::DeleteStack {
                unmanage: UnmanageAction::Detach
            }
        );
        let mut deleting = status(Phase::Deleting, HASH);
        deleting.deployment.as_mut().unwrap().operation_url = Some("https://del".into());
        assert_eq!(
            decide_delete(&deleting, Removal::Stack, DeletionPolicy::Delete),
            DeleteAction::PollDelete {
                operation_url: "https://del".into()
            }
        );
    }

    #[test]
    fn deployment_engine_delete_goes_children_first_then_record() {
        let rg = "/subscriptions/s/resourceGroups/rg/providers";
        let mut s = status(Phase::Ready, HASH);
        assert_eq!(
            decide_delete(&s, Removal::Deployment, DeletionPolicy::Orphan),
            DeleteAction::RemoveFinalizer
        );
        assert_eq!(
            decide_delete(&s, Removal::Deployment, DeletionPolicy::Delete),
            DeleteAction::DiscoverResources
        );
        s.resources = vec![
            format!("{rg}/Microsoft.Network/virtualNetworks/v"),
            format!("{rg}/Microsoft.Network/virtualNetworks/v/subnets/a"),
            format!("{rg}/Microsoft.Storage/storageAccounts/s"),
            format!("{rg}/Microsoft.Network/virtualNetworks/v/subnets/b"),
        ];
        assert_eq!(
            decide_delete(&s, Removal::Deployment, DeletionPolicy::Delete),
            DeleteAction::DeleteResources {
                ids: vec![
                    format!("{rg}/Microsoft.Network/virtualNetworks/v/subnets/a"),
                    format!("{rg}/Microsoft.Network/virtualNetworks/v/subnets/b"),
                ]
            }
        );
        let mut done = status(Phase::Deleting, HASH);
        done.resources.clear();
        assert_eq!(
            decide_delete(&done, Removal::Deployment, DeletionPolicy::Delete),
            DeleteAction::DeleteRecord
        );
    }

    #[test]
    fn a_record_deletion_in_progress_is_polled_not_sent_again() {
        let mut s = status(Phase::Deleting, HASH);
        s.deployment.as_mut().unwrap().operation_url = Some("https://record".into());
        assert_eq!(
            decide_delete(&s, Removal::Deployment, DeletionPolicy::Delete),
            DeleteAction::PollDelete {
                operation_url: "https://record".into()
            }
        );
    }

    #[test]
    fn stack_delete_outcomes() {
        assert_eq!(after_stack_delete(DeleteOutcome::Done), None);
        assert_eq!(
            after_stack_delete(DeleteOutcome::Accepted {
                operation_url: Some("u".into()),
                retry_after: None
            }),
            Some((Some("u".into()), DEFAULT_POLL))
        );
    }

    #[test]
    fn adopted_resources_are_deleted_by_id_without_a_record() {
        let id = "/subscriptions/s/resourceGroups/rg-legacy";
        let mut s = status(Phase::Ready, HASH);
        assert_eq!(
            decide_delete(&s, Removal::Resource, DeletionPolicy::Orphan),
            DeleteAction::RemoveFinalizer
        );
        assert_eq!(
            decide_delete(&s, Removal::Resource, DeletionPolicy::Delete),
            DeleteAction::DiscoverResources
        );
        s.resources = vec![id.into()];
        assert_eq!(
            decide_delete(&s, Removal::Resource, DeletionPolicy::Delete),
            DeleteAction::DeleteResources {
                ids: vec![id.into()]
            }
        );
        let mut done = status(Phase::Deleting, HASH);
        done.resources.clear();
        assert_eq!(
            decide_delete(&done, Removal::Resource, DeletionPolicy::Delete),
            DeleteAction::RemoveFinalizer
        );
    }

    #[test]
    fn adopted_objects_are_observed_never_deployed() {
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Resources/deployments/d";
        match after_adopt_observe(None, id) {
            AdoptAction::RecordFailure(f) => {
                assert_eq!(f.code, "ResourceNotFound");
                assert!(f.message.contains(id));
            }
            other => panic!("{other:?}"),
        }
        let ok = observation(ProvisioningState::Succeeded);
        assert_eq!(
            after_adopt_observe(Some(ok.clone()), id),
            AdoptAction::RecordReady(ok)
        );
        assert_eq!(
            after_adopt_observe(Some(observation(ProvisioningState::Running)), id),
            AdoptAction::Requeue {
                after: DEFAULT_POLL
            }
        );
        assert!(matches!(
            after_adopt_observe(Some(observation(ProvisioningState::Failed)), id),
            AdoptAction::RecordFailure(_)
        ));
    }

    #[test]
    fn an_outcome_for_an_older_spec_deploys_the_current_one() {
        let done = Action::RecordSuccess(observation(ProvisioningState::Succeeded));
        assert_eq!(
            unless_superseded(done.clone(), Some(HASH), HASH),
            done.clone()
        );
        assert_eq!(
            unless_superseded(done, Some("older"), HASH),
            Action::StartDeployment
        );
        let failed = after_observe(Some(observation(ProvisioningState::Failed)));
        assert_eq!(
            unless_superseded(failed, Some("older"), HASH),
            Action::StartDeployment
        );
        let running = Action::Requeue {
            after: DEFAULT_POLL,
        };
        assert_eq!(
            unless_superseded(running.clone(), Some("older"), HASH),
            running
        );
    }

    #[test]
    fn a_pending_what_if_is_read_when_due_and_only_for_the_current_spec() {
        let s = status(Phase::Ready, HASH);
        let pending = PendingWhatIf {
            operation_url: "https://whatif".into(),
            applied_hash: HASH.into(),
            due: at(10),
        };
        let mut o = observed(&s);
        o.pending_what_if = Some(&pending);
        assert_eq!(
            decide(&o),
            Action::Requeue {
                after: Duration::from_secs(10)
            }
        );
        o.now = at(10);
        assert_eq!(
            decide(&o),
            Action::PollWhatIf {
                operation_url: "https://whatif".into()
            }
        );
        let older = PendingWhatIf {
            applied_hash: "older".into(),
            ..pending.clone()
        };
        o.pending_what_if = Some(&older);
        assert_eq!(
            decide(&o),
            Action::Requeue {
                after: Duration::from_secs(3590)
            }
        );
    }

    #[test]
    fn a_new_check_drift_annotation_checks_at_once_unless_ignored() {
        let mut s = status(Phase::Ready, HASH);
        let mut o = observed(&s);
        o.sync_interval = None;
        o.check_drift_annotation = Some("1");
        assert_eq!(decide(&o), Action::CheckDrift);
        o.drift_policy = DriftPolicy::Ignore;
        assert_eq!(decide(&o), Action::AwaitChange);

        s.drift = Some(crds::DriftStatus {
            check_request: Some("1".into()),
            ..Default::default()
        });
        let mut answered = observed(&s);
        answered.sync_interval = None;
        answered.check_drift_annotation = Some("1");
        assert_eq!(decide(&answered), Action::AwaitChange);
        answered.check_drift_annotation = Some("2");
        assert_eq!(decide(&answered), Action::CheckDrift);
    }

    #[test]
    fn the_last_drift_check_in_status_times_the_next_one_after_a_restart() {
        let mut s = status(Phase::Ready, HASH);
        s.drift = Some(crds::DriftStatus {
            last_check_time: Some(Time(at(3000))),
            ..Default::default()
        });
        let mut o = observed(&s);
        o.now = at(3600);
        assert_eq!(
            decide(&o),
            Action::Requeue {
                after: Duration::from_secs(3000)
            }
        );
    }

    #[test]
    fn a_healthy_deployment_gets_a_what_if_unless_drift_is_ignored() {
        let ok = observation(ProvisioningState::Succeeded);
        let hour = Some(Duration::from_secs(3600));
        for policy in [DriftPolicy::Report, DriftPolicy::Correct] {
            assert_eq!(
                after_deployment_check(Some(&ok), 0, hour, policy),
                Action::StartWhatIf
            );
            assert_eq!(
                after_deployment_check(None, 0, hour, policy),
                Action::StartDeployment
            );
        }
        assert_eq!(
            after_deployment_check(Some(&ok), 0, hour, DriftPolicy::Ignore),
            Action::Requeue {
                after: Duration::from_secs(3600)
            }
        );
        assert_eq!(
            after_deployment_check(Some(&ok), 1, hour, DriftPolicy::Ignore),
            Action::StartDeployment
        );
    }

    #[test]
    fn a_running_what_if_is_read_within_the_sync_interval() {
        let running = |retry_after| WhatIfOutcome::Running {
            operation_url: "https://whatif".into(),
            retry_after,
        };
        assert_eq!(
            after_what_if(
                running(Some(Duration::from_secs(30))),
                Some(Duration::from_secs(1))
            ),
            Action::AwaitWhatIf {
                operation_url: "https://whatif".into(),
                after: Duration::from_secs(1)
            }
        );
        assert_eq!(
            after_what_if(running(None), None),
            Action::AwaitWhatIf {
                operation_url: "https://whatif".into(),
                after: DEFAULT_POLL
            }
        );
        assert_eq!(
            after_what_if(WhatIfOutcome::Done(vec![]), None),
            Action::RecordDrift(vec![])
        );
    }

    #[test]
    fn a_due_check_of_a_plain_deployment_starts_with_the_what_if() {
        let s = status(Phase::Ready, HASH);
        let mut o = observed(&s);
        o.now = at(3600);
        o.engine = Engine::Deployment;
        assert_eq!(decide(&o), Action::StartWhatIf);
        o.drift_policy = DriftPolicy::Correct;
        assert_eq!(decide(&o), Action::StartWhatIf);
        o.drift_policy = DriftPolicy::Ignore;
        assert_eq!(decide(&o), Action::CheckDrift);
        o.engine = Engine::Stack;
        for policy in [DriftPolicy::Report, DriftPolicy::Correct] {
            o.drift_policy = policy;
            assert_eq!(decide(&o), Action::CheckDrift);
        }
    }

    #[test]
    fn a_what_if_refused_for_a_missing_resource_group_redeploys() {
        assert_eq!(
            after_what_if_refused("ResourceGroupNotFound", "gone", true),
            Some(Action::StartDeployment)
        );
        assert_eq!(
            after_what_if_refused("InternalServerError", "m", true),
            None
        );
        assert_eq!(
            after_what_if_refused("InvalidTemplate", "m", false),
            Some(Action::DriftCheckFailed(ArmFailure {
                code: "InvalidTemplate".into(),
                message: "m".into(),
                details: vec![],
            }))
        );
    }
}
