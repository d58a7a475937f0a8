//! The reconcile pipeline's I/O half. Per object a [`Reconciler`] runs
//! dereference → validate → build → apply → status: it reads what the object refers to,
//! has [`crate::validate`] and [`crate::build`] turn that into a deployment request, then
//! carries out what [`crate::decide`] says, one method per decided action, persisting every
//! transition in status and as an Event.

mod adopt;
mod cleanup;
mod deploy;
mod reconciler;
#[cfg(test)]
mod tests;

use std::{sync::Arc, time::Instant};

use crds::AzureResource;
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        controller::Action as Requeue,
        events::{Event, EventType},
    },
};
use tracing::{Instrument, info_span, warn};

use crate::context::Context;
use crate::error::{Error, Result, backoff};
use crate::watch_cache::CachedResource;
use cleanup::Cleanup;
use reconciler::{Reconciler, jitter, publish};

/// Finalizer that keeps an object until its Azure resources are handled.
pub const FINALIZER: &str = crds::CLEANUP_FINALIZER;

/// Entry point for the kube-runtime `Controller`.
pub async fn reconcile(cached: Arc<CachedResource>, ctx: Arc<Context>) -> Result<Requeue> {
    let started = Instant::now();
    let result = match &cached.invalid {
        None => {
            let span = info_span!(
                "reconcile",
                namespace = %cached.namespace().unwrap_or_default(),
                name = %cached.name_any(),
                generation = cached.metadata.generation.unwrap_or_default(),
            );
            reconcile_object(&cached, &ctx).instrument(span).await
        }
        Some(error) => {
            // One malformed object must not stop the others: report it and wait for a fix.
            warn!(name = ?cached.metadata.name, namespace = ?cached.metadata.namespace,
                  error = %error, "invalid AzureResource");
            let event = Event {
                type_: EventType::Warning,
                reason: "InvalidObject".into(),
                note: Some(format!("the object cannot be read: {error}")),
                action: "Read".into(),
                secondary: None,
            };
            publish(&ctx, &cached.object_ref(&()), event).await;
            Ok(Requeue::await_change())
        }
    };
    ctx.metrics.reconciled(started.elapsed());
    if let Err(e) = &result {
        ctx.metrics.error(e.metric_label());
    }
    result
}

/// Retryable failures come back here (terminal ones are recorded and end in
/// `await_change`): back off exponentially, never before ARM's `Retry-After`.
pub fn error_policy(cached: Arc<CachedResource>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    // The status was written with the incremented count; the cached object may lag.
    let failures = cached.failures.saturating_add(1);
    Requeue::requeue(backoff(failures, error.retry_after(), jitter()))
}

/// Finalizer handling: added (and persisted) before anything reaches ARM, removed only
/// when the cleanup reports that nothing is left to do in Azure. `cached` is the watch
/// cache's stripped copy ([`crate::watch_cache`]); whatever goes on to ARM reads the whole
/// object first.
async fn reconcile_object(cached: &CachedResource, ctx: &Context) -> Result<Requeue> {
    let namespace = cached.namespace().unwrap_or_default();
    let api: Api<AzureResource> = Api::namespaced(ctx.client.clone(), &namespace);
    let has_finalizer = cached.finalizers().iter().any(|f| f == FINALIZER);
    let deleting = cached.metadata.deletion_timestamp.is_some();
    if deleting && !has_finalizer {
        return Ok(Requeue::await_change());
    }
    if !deleting && !has_finalizer {
        // The finalizer change itself triggers the next reconcile.
        let written = set_finalizer(&api, cached, true).await?;
        ctx.own_writes.keep(written);
        return Ok(Requeue::await_change());
    }
    let uid = cached.uid().unwrap_or_default();
    let kept = ctx
        .own_writes
        .take(&uid, cached.metadata.resource_version.as_deref());
    let object = match kept {
        Some(object) => object,
        None => match api.get_opt(&cached.name_any()).await? {
            Some(object) => object,
            None => return Ok(Requeue::await_change()),
        },
    };
    if object.uid() != cached.uid() || !object.finalizers().iter().any(|f| f == FINALIZER) {
        // Created again under the same name, or the finalizer went meanwhile: the watch
        // event of that change reconciles it.
        return Ok(Requeue::await_change());
    }
    let mut reconciler = Reconciler::new(ctx, api, object);
    if reconciler.object.metadata.deletion_timestamp.is_none() {
        return reconciler.apply().await;
    }
    match reconciler.cleanup().await? {
        Cleanup::Finished => {
            set_finalizer(&reconciler.api, &reconciler.object, false).await?;
            Ok(Requeue::await_change())
        }
        Cleanup::Pending(after) => Ok(Requeue::requeue(after)),
    }
}

/// Adds or removes our finalizer. The JSON patch tests the list it read, so a concurrent
/// change of the list fails it instead of being overwritten, while changes elsewhere (our
/// own status writes) do not.
async fn set_finalizer(
    api: &Api<AzureResource>,
    object: &impl Resource,
    present: bool,
) -> Result<AzureResource> {
    let mut finalizers: Vec<String> = object
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(FINALIZER.to_owned());
    }
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": "/metadata/finalizers", "value": object.meta().finalizers},
        {"op": "add", "path": "/metadata/finalizers", "value": finalizers},
    ]))
    .expect("a JSON patch of two operations");
    Ok(api
        .patch(
            &object.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await?)
}
