//! A deleted object: its Azure side is removed (or left, per `deletionPolicy`), one method
//! per [`DeleteAction`] [`crate::decide::decide_delete`] chooses, before the finalizer goes.

use std::{sync::Arc, time::Duration};

use crds::{DeletionPolicy, Phase};
use kube::runtime::events::EventType;
use tracing::info;

use super::reconciler::{Reconciler, Step};
use crate::azure::{
    AzureApi, DeleteOutcome, OperationKind, OperationStatus, ProvisioningState, UnmanageAction,
};
use crate::decide::{DEFAULT_POLL, DeleteAction, after_stack_delete, decide_delete};
use crate::error::{Error, Result};
use crate::status;
use crate::validate::{self, Owned, Removal};

/// Where the deletion of an object stands.
pub(super) enum Cleanup {
    /// Nothing is left to do in Azure: the finalizer may go.
    Finished,
    /// Azure is still working: look again after this long.
    Pending(Duration),
}

/// What removing an object's Azure side derives once.
struct Removing {
    removal: Removal,
    policy: DeletionPolicy,
    azure: Arc<dyn AzureApi>,
    owned: Owned,
    /// Announce the start of deletion once, when this reconcile first writes Deleting.
    announce_start: bool,
}

type CleanupStep = Step<DeleteAction, Cleanup>;

impl Reconciler<'_> {
    pub(super) async fn cleanup(&mut self) -> Result<Cleanup> {
        // Deleting is a new operation: its failures count from zero. The apiserver bumps the
        // generation when the deletion begins, so a status of an older one is from before.
        if self.status.observed_generation != self.generation() {
            self.status.failures = 0;
        }
        match self.remove().await {
            Ok(next) => Ok(next),
            Err(Error::NotLeader) => Err(Error::NotLeader),
            Err(error) => {
                // Deletion has no spec change to wait for: every failure is retried.
                self.record_error(&error, None).await?;
                Err(error)
            }
        }
    }

    async fn remove(&mut self) -> Result<Cleanup> {
        let removal = validate::removal(&self.object.spec)?;
        let policy = self.object.spec.deletion_policy;
        let mut action = decide_delete(&self.status, removal, policy);
        if action == DeleteAction::RemoveFinalizer {
            // Nothing to do in Azure, so no credentials needed.
            self.ctx.metrics.action(delete_action_label(&action));
            let note = "deletionPolicy Orphan: Azure resources left in place";
            self.publish(EventType::Normal, "Deleted", "Delete", note)
                .await;
            self.ctx.forget(&self.uid);
            return Ok(Cleanup::Finished);
        }
        let caller = self.caller_identity().await?;
        let mut plan = Removing {
            removal,
            policy,
            owned: validate::owned(&self.object, caller.subscription_id.as_deref())?,
            azure: self.ctx.azure.api(&caller.credentials)?,
            announce_start: self.status.phase != Some(Phase::Deleting),
        };
        loop {
            self.ctx.metrics.action(delete_action_label(&action));
            action = match self.delete_step(&mut plan, action).await? {
                Step::Next(next) => next,
                Step::Done(cleanup) => return Ok(cleanup),
            };
        }
    }

    async fn delete_step(
        &mut self,
        plan: &mut Removing,
        action: DeleteAction,
    ) -> Result<CleanupStep> {
        match action {
            DeleteAction::WaitForDeployment { operation_url } => {
                self.wait_for_deployment(plan, operation_url).await
            }
            DeleteAction::DeleteStack { unmanage } => self.delete_stack(plan, unmanage).await,
            DeleteAction::PollDelete { operation_url } => {
                self.poll_delete(plan, &operation_url).await
            }
            DeleteAction::DiscoverResources => self.discover_resources(plan).await,
            DeleteAction::DeleteResources { ids } => self.delete_resources(plan, ids).await,
            DeleteAction::DeleteRecord => self.delete_record(plan).await,
            DeleteAction::RemoveFinalizer => Ok(self.deleted(plan).await),
        }
    }

    /// The next step after the status changed.
    fn next_delete_action(&self, plan: &Removing) -> CleanupStep {
        Step::Next(decide_delete(&self.status, plan.removal, plan.policy))
    }

    fn mark_deleting(&mut self, operation_url: Option<String>) {
        let generation = self.generation();
        status::deleting(&mut self.status, operation_url, generation, self.now);
    }

    async fn wait_for_deployment(
        &mut self,
        plan: &Removing,
        operation_url: Option<String>,
    ) -> Result<CleanupStep> {
        let target = plan.owned.deployment()?;
        if let Some(url) = operation_url
            && let OperationStatus::Running { retry_after } = plan
                .azure
                .poll_operation(OperationKind::Deploy(target.engine), &url)
                .await?
        {
            return Ok(pending(retry_after));
        }
        match plan.azure.get_deployment(target).await? {
            Some(o) if o.state == ProvisioningState::Running => return Ok(pending(None)),
            Some(o) => self.status.resources = o.resources,
            None => {}
        }
        self.mark_deleting(None);
        Ok(self.next_delete_action(plan))
    }

    async fn delete_stack(
        &mut self,
        plan: &Removing,
        unmanage: UnmanageAction,
    ) -> Result<CleanupStep> {
        let target = plan.owned.deployment()?;
        self.ctx.may_write()?;
        let outcome = plan.azure.delete_deployment(target, unmanage).await?;
        let Some((operation_url, after)) = after_stack_delete(outcome) else {
            return Ok(Step::Next(DeleteAction::RemoveFinalizer));
        };
        self.mark_deleting(operation_url);
        self.write_status().await?;
        if plan.announce_start {
            let note = format!("deleting stack {} ({unmanage:?} resources)", target.name);
            self.publish(EventType::Normal, "DeleteStarted", "Delete", &note)
                .await;
        }
        Ok(Step::Done(Cleanup::Pending(after)))
    }

    async fn poll_delete(&mut self, plan: &Removing, operation_url: &str) -> Result<CleanupStep> {
        let kind = match plan.removal {
            Removal::Stack => OperationKind::DeleteStack,
            _ => OperationKind::DeleteRecord,
        };
        match plan.azure.poll_operation(kind, operation_url).await? {
            OperationStatus::Running { retry_after } => Ok(pending(retry_after)),
            OperationStatus::Succeeded => Ok(Step::Next(DeleteAction::RemoveFinalizer)),
            OperationStatus::Failed(failure) => {
                // Send the DELETE again after the backoff.
                if let Some(d) = self.status.deployment.as_mut() {
                    d.operation_url = None;
                }
                Err(status::arm_error(&failure))
            }
        }
    }

    async fn discover_resources(&mut self, plan: &Removing) -> Result<CleanupStep> {
        self.status.resources = match &plan.owned {
            Owned::Resource(id) => vec![id.clone()],
            Owned::Deployment(target) => match plan.azure.get_deployment(target).await? {
                None => return Ok(Step::Next(DeleteAction::RemoveFinalizer)),
                Some(o) if o.state == ProvisioningState::Running => return Ok(pending(None)),
                Some(o) => o.resources,
            },
        };
        self.mark_deleting(None);
        Ok(self.next_delete_action(plan))
    }

    async fn delete_resources(
        &mut self,
        plan: &mut Removing,
        ids: Vec<String>,
    ) -> Result<CleanupStep> {
        if plan.announce_start {
            let note = format!("deleting {} resource(s)", self.status.resources.len());
            self.publish(EventType::Normal, "DeleteStarted", "Delete", &note)
                .await;
            plan.announce_start = false;
        }
        let mut accepted = false;
        for id in ids {
            self.ctx.may_write()?;
            match plan.azure.delete_resource(&id).await? {
                DeleteOutcome::Done => self.status.resources.retain(|r| *r != id),
                DeleteOutcome::Accepted { .. } => accepted = true,
            }
        }
        self.mark_deleting(None);
        self.write_status().await?;
        if accepted {
            return Ok(pending(None));
        }
        Ok(self.next_delete_action(plan))
    }

    /// Only the history record: its resources are gone already. ARM removes it
    /// asynchronously; the finalizer stays until it is gone.
    async fn delete_record(&mut self, plan: &Removing) -> Result<CleanupStep> {
        let target = plan.owned.deployment()?;
        match plan
            .azure
            .delete_deployment(target, UnmanageAction::Delete)
            .await?
        {
            DeleteOutcome::Done => Ok(Step::Next(DeleteAction::RemoveFinalizer)),
            DeleteOutcome::Accepted {
                operation_url,
                retry_after,
            } => {
                self.mark_deleting(operation_url);
                self.write_status().await?;
                Ok(pending(retry_after))
            }
        }
    }

    async fn deleted(&self, plan: &Removing) -> CleanupStep {
        let note = match plan.policy {
            DeletionPolicy::Delete => "Azure resources deleted",
            DeletionPolicy::Orphan => "Azure resources left in place",
        };
        info!("{note}");
        self.publish(EventType::Normal, "Deleted", "Delete", note)
            .await;
        self.ctx.forget(&self.uid);
        Step::Done(Cleanup::Finished)
    }
}

/// Azure is still at work: look again after ARM's `Retry-After`, or the default poll.
fn pending(retry_after: Option<Duration>) -> CleanupStep {
    Step::Done(Cleanup::Pending(retry_after.unwrap_or(DEFAULT_POLL)))
}

fn delete_action_label(action: &DeleteAction) -> &'static str {
    match action {
        DeleteAction::WaitForDeployment { .. } => "wait_for_deployment",
        DeleteAction::DeleteStack { .. } => "delete_stack",
        DeleteAction::PollDelete { .. } => "poll_delete",
        DeleteAction::DiscoverResources => "discover_resources",
        DeleteAction::DeleteResources { .. } => "delete_resources",
        DeleteAction::DeleteRecord => "delete_record",
        DeleteAction::RemoveFinalizer => "remove_finalizer",
    }
}
