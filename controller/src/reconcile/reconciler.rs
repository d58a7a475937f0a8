//! The [`Reconciler`]: one object, the shared [`Context`], and the helpers every path uses
//! (status writes, Events, credentials, the outputs Secret).

use std::time::Duration;

use crds::{AzureResource, AzureResourceStatus};
use k8s_openapi::{
    api::core::v1::{ObjectReference, Secret},
    jiff::Timestamp,
};
use kube::{
    Api, Resource, ResourceExt,
    runtime::{
        controller::Action as Requeue,
        events::{Event, EventType},
    },
};
use tracing::warn;

use crate::azure::{Credentials, Output};
use crate::context::Context;
use crate::dereference;
use crate::error::{Error, Result};
use crate::status;

/// One reconcile of one object, read whole from the apiserver. `status` is the status as
/// the reconcile changes it; writes compare it with the status the object was read with.
pub(super) struct Reconciler<'a> {
    pub(super) ctx: &'a Context,
    pub(super) api: Api<AzureResource>,
    pub(super) object: AzureResource,
    pub(super) status: AzureResourceStatus,
    /// The object as this reconcile's last status write left it.
    pub(super) written: Option<AzureResource>,
    pub(super) uid: String,
    /// The time this reconcile acts at.
    pub(super) now: Timestamp,
}

/// What an action leads to: another action in the same reconcile, or its end.
pub(super) enum Step<A, D> {
    Next(A),
    Done(D),
}

/// The credentials an object calls ARM with, read from the cluster.
pub(super) struct CallerIdentity {
    pub(super) credentials: Credentials,
    /// `subscriptionId` named with them: the fallback of `spec.subscriptionId`.
    pub(super) subscription_id: Option<String>,
}

impl<'a> Reconciler<'a> {
    pub(super) fn new(ctx: &'a Context, api: Api<AzureResource>, object: AzureResource) -> Self {
        Reconciler {
            ctx,
            api,
            status: object.status.clone().unwrap_or_default(),
            written: None,
            uid: object.uid().unwrap_or_default(),
            object,
            now: Timestamp::now(),
        }
    }

    pub(super) fn namespace(&self) -> String {
        self.object.namespace().unwrap_or_default()
    }

    pub(super) fn generation(&self) -> Option<i64> {
        self.object.metadata.generation
    }

    /// Records an Event about the object (best effort).
    pub(super) async fn publish(&self, type_: EventType, reason: &str, action: &str, note: &str) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.into()),
            action: action.into(),
            secondary: None,
        };
        publish(self.ctx, &self.object.object_ref(&()), event).await;
    }

    /// Writes the status, unless it says nothing new ([`status::needs_write`]).
    pub(super) async fn write_status(&mut self) -> Result<()> {
        if let Some(written) = status::apply(&self.api, &self.object, &self.status).await? {
            self.written = Some(written);
        }
        Ok(())
    }

    /// Hands the object as last written to the reconcile that follows shortly.
    pub(super) fn keep_written(&mut self) {
        if let Some(written) = self.written.take() {
            self.ctx.own_writes.keep(written);
        }
    }

    /// The object's credentials and the subscription they name, per DESIGN.md's order.
    pub(super) async fn caller_identity(&self) -> Result<CallerIdentity> {
        let (credentials, subscription_id) = dereference::credentials(
            &self.ctx.client,
            &self.ctx.secrets,
            &self.namespace(),
            &self.object.spec,
            self.ctx.operator_subscription_id.as_deref(),
        )
        .await?;
        Ok(CallerIdentity {
            credentials,
            subscription_id,
        })
    }

    /// Records a failed reconcile in status and as a Warning. `applied_hash` is set when
    /// the failure is the final answer to that request.
    pub(super) async fn record_error(
        &mut self,
        error: &Error,
        applied_hash: Option<&str>,
    ) -> Result<()> {
        warn!(reason = %error.reason(), error = %error, "reconcile failed");
        let generation = self.generation();
        status::failed(
            &mut self.status,
            error,
            false,
            applied_hash,
            generation,
            Timestamp::now(),
        );
        self.write_status().await?;
        self.publish(
            EventType::Warning,
            &error.reason(),
            "Reconcile",
            &error.to_string(),
        )
        .await;
        Ok(())
    }

    /// Refuses an `outputsSecretRef` naming a Secret the outputs may not go to, before the
    /// first ARM write rather than after the deployment ran.
    pub(super) async fn check_outputs_secret(&self) -> Result<()> {
        if let Some(secret) = &self.object.spec.outputs_secret_ref {
            status::outputs_secret_access(
                self.secrets().get_opt(&secret.name).await?.as_ref(),
                &self.uid,
            )?;
        }
        Ok(())
    }

    /// Writes the outputs into the `outputsSecretRef` Secret, when the object names one.
    pub(super) async fn write_outputs(&self, outputs: &[Output]) -> Result<()> {
        if let Some(secret) = &self.object.spec.outputs_secret_ref {
            status::apply_outputs_secret(&self.secrets(), &self.object, &secret.name, outputs)
                .await?;
        }
        Ok(())
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace())
    }
}

/// The requeue of a settled object: at its next check, or at its next change.
pub(super) fn at_next_check(sync_interval: Option<Duration>) -> Requeue {
    sync_interval.map_or_else(Requeue::await_change, Requeue::requeue)
}

/// Events are best effort: a failure to record one must not fail the reconcile. Reason and
/// note are cut to what the apiserver accepts.
pub(super) async fn publish(ctx: &Context, regarding: &ObjectReference, event: Event) {
    let event = Event {
        reason: event.reason.chars().take(128).collect(),
        note: event.note.map(|note| note.chars().take(1000).collect()),
        ..event
    };
    if let Err(e) = ctx.recorder.publish(&event, regarding).await {
        warn!(error = %e, reason = %event.reason, "could not publish event");
    }
}

/// Spreads retries of objects failing together: a factor in [-1, 1] for [`crate::error::backoff`].
pub(super) fn jitter() -> f64 {
    rand::random::<f64>() * 2.0 - 1.0
}
