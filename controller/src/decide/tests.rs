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
        write_budget: WriteBudget::Idle,
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
fn a_due_check_without_spare_write_budget_is_deferred_unless_asked_for() {
    let s = status(Phase::Ready, HASH);
    let mut o = observed(&s);
    o.now = at(3600);
    o.write_budget = WriteBudget::Busy;
    assert_eq!(decide(&o), Action::DeferCheck);
    o.engine = Engine::Deployment;
    assert_eq!(decide(&o), Action::DeferCheck);

    // Reads only: not deferred.
    o.drift_policy = DriftPolicy::Ignore;
    assert_eq!(decide(&o), Action::CheckDrift);
    o.drift_policy = DriftPolicy::Report;

    // Not due yet: waits for the interval as before.
    o.now = at(600);
    assert_eq!(
        decide(&o),
        Action::Requeue {
            after: Duration::from_secs(3000)
        }
    );

    // Asked for: goes at once, and its what-if queues for budget like a deployment.
    o.check_drift_annotation = Some("1");
    assert_eq!(decide(&o), Action::StartWhatIf);
    assert_eq!(
        what_if_priority(&s, Some("1"), DriftPolicy::Report, Duration::ZERO),
        Priority::Queued
    );

    // As soon as budget is spare and deployments pause, the deferred check goes.
    o.check_drift_annotation = None;
    o.now = at(3700);
    o.write_budget = WriteBudget::Spare;
    assert_eq!(decide(&o), Action::DeferCheck, "deployments still run");
    o.write_budget = WriteBudget::Idle;
    assert_eq!(decide(&o), Action::StartWhatIf);
}

#[test]
fn deployments_that_never_pause_hold_a_check_off_for_five_minutes_at_most() {
    let s = status(Phase::Ready, HASH);
    let mut o = observed(&s);
    o.engine = Engine::Deployment;
    o.write_budget = WriteBudget::Spare;
    o.now = at(3600 + 299);
    assert_eq!(decide(&o), Action::DeferCheck);
    o.now = at(3600 + 300);
    assert_eq!(decide(&o), Action::StartWhatIf);
    assert_eq!(
        what_if_priority(&s, None, DriftPolicy::Report, Duration::from_secs(300)),
        Priority::Spare
    );
    // Spare budget stays a must.
    o.write_budget = WriteBudget::Busy;
    assert_eq!(decide(&o), Action::DeferCheck);
    assert!(WriteBudget::Busy.allows(Priority::Queued));
    assert!(!WriteBudget::Spare.allows(Priority::Idle));
}

#[test]
fn only_a_new_check_request_queues_for_write_budget() {
    let mut s = status(Phase::Ready, HASH);
    assert_eq!(
        what_if_priority(&s, None, DriftPolicy::Report, Duration::ZERO),
        Priority::Idle
    );
    s.drift = Some(crds::DriftStatus {
        check_request: Some("1".into()),
        ..Default::default()
    });
    assert_eq!(
        what_if_priority(&s, Some("1"), DriftPolicy::Report, Duration::ZERO),
        Priority::Idle,
        "already answered"
    );
    assert_eq!(
        what_if_priority(&s, Some("2"), DriftPolicy::Correct, Duration::ZERO),
        Priority::Queued
    );
}

#[test]
fn a_check_is_due_from_the_last_check_or_else_the_deployment() {
    let mut s = status(Phase::Ready, HASH);
    let interval = Duration::from_secs(30);
    assert_eq!(
        check_due(&s, None, at(10), interval),
        Err(Duration::from_secs(20))
    );
    assert_eq!(
        check_due(&s, None, at(45), interval),
        Ok(Duration::from_secs(15))
    );
    assert_eq!(
        check_due(&s, Some(at(40)), at(45), interval),
        Err(Duration::from_secs(25))
    );
    s.drift = Some(crds::DriftStatus {
        last_check_time: Some(Time(at(20))),
        ..Default::default()
    });
    assert_eq!(
        check_due(&s, None, at(60), interval),
        Ok(Duration::from_secs(10))
    );
}

#[test]
fn a_deferred_check_waits_as_long_as_it_has_been_overdue_within_bounds() {
    let secs = Duration::from_secs;
    let half_minute = Some(secs(30));
    // From the interval, doubling, up to five minutes.
    assert_eq!(deferral(secs(0), half_minute, 0.0), secs(30));
    assert_eq!(deferral(secs(20), half_minute, 0.0), secs(30));
    assert_eq!(deferral(secs(30), half_minute, 0.0), secs(30));
    assert_eq!(deferral(secs(60), half_minute, 0.0), secs(60));
    assert_eq!(deferral(secs(120), half_minute, 0.0), secs(120));
    assert_eq!(deferral(secs(240), half_minute, 0.0), secs(240));
    assert_eq!(deferral(secs(480), half_minute, 0.0), secs(300));
    assert_eq!(deferral(secs(86_400), half_minute, 0.0), secs(300));
    // Long intervals: first wait at most 30 s, any wait at most 5 minutes.
    let hour = Some(secs(3600));
    assert_eq!(deferral(secs(0), hour, 0.0), secs(30));
    assert_eq!(deferral(secs(200), hour, 0.0), secs(200));
    assert_eq!(deferral(secs(86_400), hour, 0.0), secs(300));
    // Short intervals: at least a second.
    assert_eq!(deferral(secs(0), Some(secs(1)), 0.0), secs(1));
    assert_eq!(deferral(secs(9), Some(secs(1)), 0.0), secs(9));
    assert_eq!(deferral(secs(0), None, 0.0), secs(30));
    // Spread by up to a quarter.
    assert_eq!(deferral(secs(40), half_minute, 1.0), secs(50));
    assert_eq!(deferral(secs(40), half_minute, -1.0), secs(30));
    assert_eq!(deferral(secs(40), half_minute, -7.0), secs(30));
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
    assert_eq!(
        after_what_if(WhatIfOutcome::Deferred, None),
        Action::DeferCheck,
        "a what-if not sent for want of spare budget defers the check"
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
