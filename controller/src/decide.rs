//! Pure decisions: from what is known about an object (its status, the desired hash, the
//! latest ARM answer) to the next [`Action`] or [`DeleteAction`]. The reconciler performs
//! the I/O an action names and feeds the answer back through the `after_*` functions.

use std::time::Duration;

use crds::{AzureResourceStatus, DeletionPolicy, DriftPolicy, Phase};
use k8s_openapi::jiff::Timestamp;

use crate::azure::{
    ArmFailure, DeleteOutcome, DeploymentObservation, Engine, OperationStatus, Priority,
    ProvisioningState, StartOutcome, UnmanageAction, WhatIfOutcome,
};
use crate::drift::ResourceChange;
use crate::error::is_retryable_reason;
use crate::validate::{Removal, unmanage_action};

/// Poll interval when ARM gives no `Retry-After` (ARM itself suggests up to 60 s; the
/// simulator and small templates finish much sooner).
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

/// Shortest wait of a deferred periodic check (see [`deferral`]).
const MIN_DEFERRAL: Duration = Duration::from_secs(1);
/// Longest first wait of a deferred periodic check.
const MAX_FIRST_DEFERRAL: Duration = Duration::from_secs(30);
/// Longest wait of a deferred periodic check; also how long a check waits for
/// deployments to pause before it takes any spare budget (see [`periodic_priority`]).
const MAX_DEFERRAL: Duration = Duration::from_secs(300);

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
    /// A periodic check found no spare ARM write budget for its what-if (deployments go
    /// first): nothing is sent or written, the check asks again after [`deferral`].
    DeferCheck,
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
    /// What the subscription's ARM write budget allows a periodic check's what-if now.
    pub write_budget: WriteBudget,
}

/// What a subscription's ARM write budget allows a periodic check now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteBudget {
    /// Nothing to spare (deployments wait for it, or took it down to the reserve).
    Busy,
    /// Something to spare, but deployments used the budget within the last 10 seconds.
    Spare,
    /// Something to spare, and no deployment used the budget for 10 seconds.
    Idle,
}

impl WriteBudget {
    /// Whether a request at `priority` goes with this budget.
    pub fn allows(self, priority: Priority) -> bool {
        match priority {
            Priority::Queued => true,
            Priority::Spare => self != WriteBudget::Busy,
            Priority::Idle => self == WriteBudget::Idle,
        }
    }
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
pub fn drift_check_requested(
    status: &AzureResourceStatus,
    check_drift_annotation: Option<&str>,
    policy: DriftPolicy,
) -> bool {
    let answered = status
        .drift
        .as_ref()
        .and_then(|d| d.check_request.as_deref());
    policy != DriftPolicy::Ignore
        && check_drift_annotation.is_some()
        && check_drift_annotation != answered
}

/// What a what-if may take from the subscription's ARM write budget (ARM counts the
/// what-if POST as a write): a check the user asked for waits its turn like a
/// deployment; a periodic one, due for `overdue`, takes only what is spare
/// ([`periodic_priority`]), so that it never delays one.
pub fn what_if_priority(
    status: &AzureResourceStatus,
    check_drift_annotation: Option<&str>,
    policy: DriftPolicy,
    overdue: Duration,
) -> Priority {
    if drift_check_requested(status, check_drift_annotation, policy) {
        Priority::Queued
    } else {
        periodic_priority(overdue)
    }
}

/// A periodic check waits until deployments leave the budget alone (so that checks do
/// not even share the controller's workers and the apiserver with a stream of them), but
/// once it has been overdue for [`MAX_DEFERRAL`] it takes any spare budget: deployments
/// that never pause cannot hold checks off for longer.
pub fn periodic_priority(overdue: Duration) -> Priority {
    if overdue >= MAX_DEFERRAL {
        Priority::Spare
    } else {
        Priority::Idle
    }
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
    if drift_check_requested(o.status, o.check_drift_annotation, o.drift_policy) {
        return start_check(o.engine, o.drift_policy);
    }
    let Some(interval) = o.sync_interval else {
        return Action::AwaitChange;
    };
    match check_due(o.status, o.last_checked, o.now, interval) {
        Err(wait) => Action::Requeue { after: wait },
        // Reads only, not worth deferring.
        Ok(_) if o.drift_policy == DriftPolicy::Ignore => start_check(o.engine, o.drift_policy),
        Ok(overdue) if o.write_budget.allows(periodic_priority(overdue)) => {
            start_check(o.engine, o.drift_policy)
        }
        Ok(_) => Action::DeferCheck,
    }
}

/// Since when a Ready object's periodic check has been due (`Ok`), or how long until it
/// is (`Err`). Counted from this process's last check of it (`last_checked`), else the
/// recorded one, else the end of the deployment.
pub fn check_due(
    status: &AzureResourceStatus,
    last_checked: Option<Timestamp>,
    now: Timestamp,
    interval: Duration,
) -> Result<Duration, Duration> {
    let last = last_checked
        .or_else(|| last_drift_check(status))
        .or_else(|| finished_at(status))
        .unwrap_or(now);
    let elapsed = now.duration_since(last).unsigned_abs();
    if elapsed >= interval {
        Ok(elapsed - interval)
    } else {
        Err(interval - elapsed)
    }
}

/// How long a periodic check deferred for want of spare write budget waits before it
/// looks again, when it has been due for `overdue`: as long again (so that the waits of
/// a check deferred over and over double, and the reconciles and reads of the object
/// with them), from the interval (1–30 s) up to five minutes, so that a check finds
/// spare budget within minutes of there being some. `jitter` in [-1, 1] spreads the
/// wait by up to a quarter, so that checks deferred together do not come back together.
pub fn deferral(overdue: Duration, interval: Option<Duration>, jitter: f64) -> Duration {
    let interval = interval.unwrap_or(MAX_DEFERRAL);
    let shortest = interval.clamp(MIN_DEFERRAL, MAX_FIRST_DEFERRAL);
    overdue
        .clamp(shortest, MAX_DEFERRAL)
        .mul_f64(1.0 + jitter.clamp(-1.0, 1.0) / 4.0)
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
        WhatIfOutcome::Deferred => Action::DeferCheck,
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
                unmanage: unmanage_action(policy),
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
mod tests;
