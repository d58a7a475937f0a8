//! An adopted object: the state of what it names is reported; nothing is ever deployed.

use kube::runtime::{controller::Action as Requeue, events::EventType};

use super::reconciler::{Reconciler, at_next_check, jitter};
use crate::azure::DeploymentObservation;
use crate::decide::{self, AdoptAction};
use crate::error::{Error, Result, backoff};
use crate::status;
use crate::validate::{self, Owned};

impl Reconciler<'_> {
    pub(super) async fn observe_adopted(&mut self) -> Result<Requeue> {
        let caller = self.caller_identity().await?;
        let valid = validate::validate(&self.object, caller.subscription_id.as_deref(), None)?;
        let azure = self.ctx.azure.api(&caller.credentials)?;
        let observation = match &valid.owned {
            Owned::Deployment(target) => azure.get_deployment(target).await?,
            Owned::Resource(id) => azure
                .resource_exists(id)
                .await?
                .then(|| DeploymentObservation::existing_resource(id)),
        };
        let id = self.adopted_id();
        let generation = self.generation();
        let before = self.status.clone();
        let (next, failure) = match decide::after_adopt_observe(observation, id) {
            AdoptAction::RecordReady(observation) => {
                self.write_outputs(&observation.outputs).await?;
                status::succeeded(&mut self.status, &observation, generation, self.now);
                (at_next_check(valid.sync_interval), None)
            }
            AdoptAction::RecordFailure(failure) => {
                let error = status::arm_error(&failure);
                status::failed(&mut self.status, &error, true, None, generation, self.now);
                // Looking costs one read: keep looking (the id may appear, access be granted).
                let next = Requeue::requeue(backoff(self.status.failures, None, jitter()));
                (next, Some(error))
            }
            AdoptAction::Requeue { after } => return Ok(Requeue::requeue(after)),
        };
        // A periodic check that finds nothing new writes nothing.
        let unchanged = before.phase == self.status.phase
            && before.resources == self.status.resources
            && before.outputs == self.status.outputs
            && before.observed_generation == self.status.observed_generation
            && failure.is_none();
        if !unchanged {
            self.write_status().await?;
            self.announce_adopted(failure.as_ref()).await;
        }
        Ok(next)
    }

    /// The Azure id the object adopts (empty when it adopts nothing).
    fn adopted_id(&self) -> &str {
        self.object
            .spec
            .adopt
            .as_ref()
            .map_or("", |a| a.id.as_str())
    }

    async fn announce_adopted(&self, failure: Option<&Error>) {
        match failure {
            None => {
                let id = self.adopted_id();
                self.publish(
                    EventType::Normal,
                    "Ready",
                    "Adopt",
                    &format!("adopted {id}"),
                )
                .await
            }
            Some(error) => {
                self.publish(
                    EventType::Warning,
                    &error.reason(),
                    "Adopt",
                    &error.to_string(),
                )
                .await
            }
        }
    }
}
