//! A live object with a template: its deployment request is built once per reconcile,
//! then each [`Action`] [`crate::decide`] chooses is carried out by its own method.

use std::{sync::Arc, time::Duration};

use crds::DriftPolicy;
use k8s_openapi::jiff::SignedDuration;
use kube::{
    ResourceExt,
    runtime::{controller::Action as Requeue, events::EventType},
};
use tracing::{info, warn};

use super::reconciler::{Reconciler, Step, at_next_check, jitter};
use crate::azure::{
    ArmFailure, AzureApi, DeploymentObservation, DeploymentRequest, DeploymentScope, Engine,
    OperationKind, Priority, ProvisioningState,
};
use crate::build;
use crate::decide::{
    self, Action, Observed, PendingWhatIf, WriteBudget, after_deployment_check, after_observe,
    after_poll, after_start, after_what_if,
};
use crate::dereference;
use crate::drift::{self, DriftVerdict, ResourceChange};
use crate::error::{Error, Result, backoff};
use crate::status;
use crate::validate;

/// What a deploying reconcile derives once from the object and its inputs.
struct Plan {
    azure: Arc<dyn AzureApi>,
    request: DeploymentRequest,
    sync_interval: Option<Duration>,
    /// The resource group the request creates before deploying.
    group: Option<ResourceGroup>,
}

struct ResourceGroup {
    subscription_id: String,
    name: String,
    location: String,
    /// subscription/name/location, lower case: the key of `Context::group_ensured`.
    key: String,
}

impl ResourceGroup {
    fn of(request: &DeploymentRequest) -> Option<Self> {
        let (
            Some(location),
            DeploymentScope::ResourceGroup {
                subscription_id,
                resource_group,
            },
        ) = (&request.ensure_resource_group, &request.target.scope)
        else {
            return None;
        };
        Some(ResourceGroup {
            key: format!("{subscription_id}/{resource_group}/{location}").to_ascii_lowercase(),
            subscription_id: subscription_id.clone(),
            name: resource_group.clone(),
            location: location.clone(),
        })
    }
}

type DeployStep = Step<Action, Requeue>;

impl Reconciler<'_> {
    /// Creates or updates the deployment (or reports an adopted object); failures are
    /// recorded in status and as an Event.
    pub(super) async fn apply(&mut self) -> Result<Requeue> {
        let mut hash = None;
        let result = if self.object.spec.adopt.is_some() {
            self.observe_adopted().await
        } else {
            self.deploy(&mut hash).await
        };
        match result {
            Ok(next) => Ok(next),
            Err(Error::NotLeader) => Err(Error::NotLeader),
            Err(error) => {
                let terminal = !error.is_retryable();
                self.record_error(&error, terminal.then_some(hash).flatten().as_deref())
                    .await?;
                if terminal {
                    Ok(Requeue::await_change())
                } else {
                    Err(error)
                }
            }
        }
    }

    /// Sets `hash` to the request's applied hash once it is known.
    async fn deploy(&mut self, hash: &mut Option<String>) -> Result<Requeue> {
        let plan = self.plan().await?;
        *hash = Some(plan.request.applied_hash.clone());
        let mut action = self.first_action(&plan);
        loop {
            self.ctx.metrics.action(action_label(&action));
            action = match self.act(&plan, action).await? {
                Step::Next(next) => next,
                Step::Done(requeue) => return Ok(requeue),
            };
        }
    }

    /// Dereference, validate, build.
    async fn plan(&mut self) -> Result<Plan> {
        let caller = self.caller_identity().await?;
        let inputs = dereference::inputs(
            &self.ctx.client,
            &self.ctx.secrets,
            &self.ctx.bicep,
            &self.object,
            &self.namespace(),
            caller.subscription_id,
        )
        .await?;
        let valid = validate::validate(
            &self.object,
            inputs.credential_subscription_id.as_deref(),
            Some(&inputs.template),
        )?;
        let target = valid.owned.deployment()?;
        let mut request = build::build(&self.object.spec, target, &inputs);
        self.key_hash(&mut request).await?;
        Ok(Plan {
            azure: self.ctx.azure.api(&caller.credentials)?,
            group: ResourceGroup::of(&request),
            request,
            sync_interval: valid.sync_interval,
        })
    }

    /// Keys the request's hash with the installation's key. An object deployed before the
    /// hash was keyed is unchanged, and its plain digest (which lets a reader test guesses
    /// of secure values) is replaced at once.
    async fn key_hash(&mut self, request: &mut DeploymentRequest) -> Result<()> {
        let plain_hash = std::mem::take(&mut request.applied_hash);
        request.applied_hash = self.ctx.keyed_hash(&plain_hash);
        if self.status.applied_hash.as_deref() == Some(plain_hash.as_str())
            && plain_hash != request.applied_hash
        {
            self.status.applied_hash = Some(request.applied_hash.clone());
            self.write_status().await?;
        }
        Ok(())
    }

    fn first_action(&self, plan: &Plan) -> Action {
        let pending_what_if = self.ctx.pending_what_if(&self.uid);
        decide::decide(&Observed {
            generation: self.generation(),
            status: &self.status,
            desired_hash: &plan.request.applied_hash,
            now: self.now,
            sync_interval: plan.sync_interval,
            last_checked: self.ctx.last_checked(&self.uid),
            drift_policy: self.object.spec.drift_policy,
            engine: plan.request.target.engine,
            check_drift_annotation: self.check_drift_annotation(),
            pending_what_if: pending_what_if.as_ref(),
            write_budget: write_budget(plan),
        })
    }

    /// How long the object's periodic check has been due (zero when it is not).
    fn overdue(&self, plan: &Plan) -> Duration {
        plan.sync_interval.map_or(Duration::ZERO, |interval| {
            decide::check_due(
                &self.status,
                self.ctx.last_checked(&self.uid),
                self.now,
                interval,
            )
            .unwrap_or_default()
        })
    }

    fn check_drift_annotation(&self) -> Option<&str> {
        self.object
            .annotations()
            .get(crds::CHECK_DRIFT_ANNOTATION)
            .map(String::as_str)
    }

    async fn act(&mut self, plan: &Plan, action: Action) -> Result<DeployStep> {
        match action {
            Action::StartDeployment => self.start_deployment(plan).await,
            Action::PollOperation { operation_url } => {
                self.poll_operation(plan, &operation_url).await
            }
            Action::ObserveDeployment => self.observe_deployment(plan).await,
            Action::CheckDrift => self.check_drift(plan).await,
            Action::StartWhatIf => self.start_what_if(plan).await,
            Action::PollWhatIf { operation_url } => self.poll_what_if(plan, &operation_url).await,
            Action::AwaitWhatIf {
                operation_url,
                after,
            } => Ok(self.await_what_if(plan, operation_url, after)),
            Action::RecordDrift(changes) => self.record_drift(plan, &changes).await,
            Action::DeferCheck => Ok(self.defer_check(plan)),
            Action::DriftCheckFailed(failure) => self.drift_check_failed(plan, &failure).await,
            Action::RecordStarted {
                operation_url,
                poll_after,
            } => self.record_started(plan, operation_url, poll_after).await,
            Action::RecordSuccess(observation) => self.record_success(plan, &observation).await,
            Action::RecordFailure(failure) => self.record_failure(&failure).await,
            Action::Requeue { after } => Ok(Step::Done(Requeue::requeue(after))),
            Action::AwaitChange => Ok(Step::Done(Requeue::await_change())),
        }
    }

    async fn start_deployment(&mut self, plan: &Plan) -> Result<DeployStep> {
        self.check_outputs_secret().await?;
        self.ctx.may_write()?;
        if let Some(group) = &plan.group
            && !self.ctx.group_ensured(&group.key)
        {
            plan.azure
                .ensure_resource_group(&group.subscription_id, &group.name, &group.location)
                .await?;
            self.ctx.mark_group_ensured(&group.key, true);
        }
        match plan.azure.start_deployment(&plan.request).await {
            Err(error) if error.reason() == "ResourceGroupNotFound" => {
                // Deleted behind our back: create it again on the next attempt.
                self.forget_group(plan);
                Err(error)
            }
            outcome => Ok(Step::Next(after_start(outcome?))),
        }
    }

    fn forget_group(&self, plan: &Plan) {
        if let Some(group) = &plan.group {
            self.ctx.mark_group_ensured(&group.key, false);
        }
    }

    async fn poll_operation(&mut self, plan: &Plan, operation_url: &str) -> Result<DeployStep> {
        let kind = OperationKind::Deploy(plan.request.target.engine);
        let status = plan.azure.poll_operation(kind, operation_url).await?;
        Ok(Step::Next(self.unless_superseded(plan, after_poll(status))))
    }

    async fn observe_deployment(&mut self, plan: &Plan) -> Result<DeployStep> {
        let observation = plan.azure.get_deployment(&plan.request.target).await?;
        Ok(Step::Next(
            self.unless_superseded(plan, after_observe(observation)),
        ))
    }

    fn unless_superseded(&self, plan: &Plan, action: Action) -> Action {
        decide::unless_superseded(
            action,
            self.status.applied_hash.as_deref(),
            &plan.request.applied_hash,
        )
    }

    async fn check_drift(&mut self, plan: &Plan) -> Result<DeployStep> {
        let observation = plan.azure.get_deployment(&plan.request.target).await?;
        let drift_policy = self.object.spec.drift_policy;
        let mut missing = 0;
        if drift_policy == DriftPolicy::Ignore {
            // Without what-if, a resource's existence is all that is checked.
            for id in &self.status.resources {
                if !plan.azure.resource_exists(id).await? {
                    missing += 1;
                }
            }
            status::drift_unchecked(&mut self.status);
            self.write_status().await?;
        }
        let next = after_deployment_check(
            observation.as_ref(),
            missing,
            plan.sync_interval,
            drift_policy,
        );
        if next != Action::StartWhatIf {
            // The check ends here; one going on to a what-if is marked when that answers
            // (a deferred what-if leaves it due).
            self.ctx.mark_checked(&self.uid, self.now);
        }
        if next == Action::StartDeployment {
            self.drift_detected(&gone_note(observation.as_ref(), missing))
                .await;
        }
        Ok(Step::Next(next))
    }

    async fn start_what_if(&mut self, plan: &Plan) -> Result<DeployStep> {
        let priority = decide::what_if_priority(
            &self.status,
            self.check_drift_annotation(),
            self.object.spec.drift_policy,
            self.overdue(plan),
        );
        let error = match plan.azure.what_if(&plan.request, priority).await {
            Ok(outcome) => return Ok(Step::Next(after_what_if(outcome, plan.sync_interval))),
            Err(error) => error,
        };
        let Some(next) = decide::after_what_if_refused(
            &error.reason(),
            &error.to_string(),
            error.is_retryable(),
        ) else {
            return Err(error);
        };
        if next == Action::StartDeployment {
            self.forget_group(plan);
            self.ctx.mark_checked(&self.uid, self.now);
            self.drift_detected(&format!("the what-if found no resource group: {error}"))
                .await;
        }
        Ok(Step::Next(next))
    }

    async fn poll_what_if(&mut self, plan: &Plan, operation_url: &str) -> Result<DeployStep> {
        let outcome = plan.azure.poll_what_if(operation_url).await?;
        self.ctx.set_pending_what_if(&self.uid, None);
        Ok(Step::Next(after_what_if(outcome, plan.sync_interval)))
    }

    fn await_what_if(&self, plan: &Plan, operation_url: String, after: Duration) -> DeployStep {
        let due = SignedDuration::try_from(after)
            .ok()
            .and_then(|after| self.now.checked_add(after).ok())
            .unwrap_or(self.now);
        let pending = PendingWhatIf {
            operation_url,
            applied_hash: plan.request.applied_hash.clone(),
            due,
        };
        self.ctx.set_pending_what_if(&self.uid, Some(pending));
        Step::Done(Requeue::requeue(after))
    }

    /// Nothing sent, nothing written, no Event: the check is simply still due.
    fn defer_check(&self, plan: &Plan) -> DeployStep {
        let after = decide::deferral(self.overdue(plan), plan.sync_interval, jitter());
        Step::Done(Requeue::requeue(after))
    }

    async fn record_drift(
        &mut self,
        plan: &Plan,
        changes: &[ResourceChange],
    ) -> Result<DeployStep> {
        let drift_policy = self.object.spec.drift_policy;
        let secrets = drift::secure_values(
            &plan.request.template,
            &plan.request.parameters.0,
            &dereference::secret_parameters(&self.object.spec),
        );
        let request = self.check_drift_annotation().map(str::to_owned);
        let report = drift::report(changes, &secrets, request, self.now);
        let verdict = drift::verdict(drift_policy, &report, self.status.drift.as_ref());
        let note = drift::describe(&report);
        let redeploy = verdict == DriftVerdict::Redeploy;
        let generation = self.generation();
        status::drift_checked(&mut self.status, report, redeploy, generation, self.now);
        self.ctx.mark_checked(&self.uid, self.now);
        if redeploy {
            // The deployment's own status write records the report.
            info!("{note}");
            self.drift_detected(&format!("{note}; deploying the template again"))
                .await;
            return Ok(Step::Next(Action::StartDeployment));
        }
        // A check that finds what the last one found writes nothing.
        self.write_status().await?;
        if verdict == (DriftVerdict::Report { announce: true }) {
            warn!("{note}");
            self.publish(EventType::Warning, "Drifted", "Check", &note)
                .await;
        }
        Ok(Step::Done(at_next_check(plan.sync_interval)))
    }

    async fn drift_check_failed(
        &mut self,
        plan: &Plan,
        failure: &ArmFailure,
    ) -> Result<DeployStep> {
        let error = status::arm_error(failure);
        self.ctx.mark_checked(&self.uid, self.now);
        warn!(reason = %error.reason(), error = %error, "drift check failed");
        self.publish(
            EventType::Warning,
            "DriftCheckFailed",
            "Check",
            &error.to_string(),
        )
        .await;
        Ok(Step::Done(at_next_check(plan.sync_interval)))
    }

    async fn record_started(
        &mut self,
        plan: &Plan,
        operation_url: Option<String>,
        poll_after: Duration,
    ) -> Result<DeployStep> {
        let target = &plan.request.target;
        let generation = self.generation();
        status::started(
            &mut self.status,
            &target.name,
            &plan.request.applied_hash,
            operation_url,
            generation,
            self.now,
        );
        self.write_status().await?;
        self.keep_written();
        let note = format!("{} {} started", engine_name(target.engine), target.name);
        info!("{note}");
        self.publish(EventType::Normal, "DeploymentStarted", "Deploy", &note)
            .await;
        Ok(Step::Done(Requeue::requeue(poll_after)))
    }

    async fn record_success(
        &mut self,
        plan: &Plan,
        observation: &DeploymentObservation,
    ) -> Result<DeployStep> {
        self.write_outputs(&observation.outputs).await?;
        let generation = self.generation();
        status::succeeded(&mut self.status, observation, generation, self.now);
        let drift_policy = self.object.spec.drift_policy;
        status::deployed_in_sync(&mut self.status, drift_policy, generation, self.now);
        self.write_status().await?;
        self.ctx.mark_checked(&self.uid, self.now);
        info!("ready");
        let note = format!("{} succeeded", engine_name(plan.request.target.engine));
        self.publish(EventType::Normal, "Ready", "Deploy", &note)
            .await;
        Ok(Step::Done(at_next_check(plan.sync_interval)))
    }

    async fn record_failure(&mut self, failure: &ArmFailure) -> Result<DeployStep> {
        let error = status::arm_error(failure);
        let generation = self.generation();
        status::failed(&mut self.status, &error, true, None, generation, self.now);
        self.write_status().await?;
        warn!(reason = %error.reason(), error = %error, "deployment failed");
        self.publish(
            EventType::Warning,
            &error.reason(),
            "Deploy",
            &error.to_string(),
        )
        .await;
        self.ctx.metrics.error(error.metric_label());
        Ok(Step::Done(if error.is_retryable() {
            Requeue::requeue(backoff(self.status.failures, None, jitter()))
        } else {
            Requeue::await_change()
        }))
    }

    /// The Event of a check that deploys the template again.
    async fn drift_detected(&self, note: &str) {
        self.publish(EventType::Normal, "DriftDetected", "Check", note)
            .await;
    }
}

/// What the subscription's write budget allows a periodic check now.
fn write_budget(plan: &Plan) -> WriteBudget {
    let subscription = plan.request.target.scope.subscription_id();
    if plan
        .azure
        .has_spare_write_budget(subscription, Priority::Idle)
    {
        WriteBudget::Idle
    } else if plan
        .azure
        .has_spare_write_budget(subscription, Priority::Spare)
    {
        WriteBudget::Spare
    } else {
        WriteBudget::Busy
    }
}

/// Why a check found the deployment in need of deploying again.
fn gone_note(observation: Option<&DeploymentObservation>, missing: usize) -> String {
    match observation {
        None => "the deployment is gone from Azure".to_owned(),
        Some(o) if o.state != ProvisioningState::Succeeded => {
            format!("the deployment is {}", o.provisioning_state_text)
        }
        Some(_) => format!("{missing} resource(s) are gone from Azure"),
    }
}

fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Stack => "deployment stack",
        Engine::Deployment => "deployment",
    }
}

fn action_label(action: &Action) -> &'static str {
    match action {
        Action::StartDeployment => "start_deployment",
        Action::PollOperation { .. } => "poll_operation",
        Action::ObserveDeployment => "observe_deployment",
        Action::CheckDrift => "check_drift",
        Action::StartWhatIf => "start_what_if",
        Action::PollWhatIf { .. } => "poll_what_if",
        Action::AwaitWhatIf { .. } => "await_what_if",
        Action::RecordDrift(_) => "record_drift",
        Action::DeferCheck => "defer_check",
        Action::DriftCheckFailed(_) => "drift_check_failed",
        Action::RecordStarted { .. } => "record_started",
        Action::RecordSuccess(_) => "record_success",
        Action::RecordFailure(_) => "record_failure",
        Action::Requeue { .. } => "requeue",
        Action::AwaitChange => "await_change",
    }
}
