//! The reconcile pipeline's I/O half: resolve inputs, build, then carry out what
//! [`crate::decide`] says, persisting every transition in status and as an Event.

use std::{sync::Arc, time::Instant};

use crds::{AzureResource, AzureResourceSpec, AzureResourceStatus, DriftPolicy, ParameterSource};
use k8s_openapi::{
    api::core::v1::{ObjectReference, Secret},
    jiff::Timestamp,
};
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    core::DeserializeGuard,
    runtime::{
        controller::Action as Requeue,
        events::{Event, EventType},
    },
};
use tracing::{info, warn};

use crate::azure::{
    Credentials, DeleteOutcome, DeploymentObservation, DeploymentScope, Engine, OperationKind,
    OperationStatus, ProvisioningState, Target, UnmanageAction,
};
use crate::build::{self, Owned};
use crate::context::Context;
use crate::decide::{
    self, Action, AdoptAction, DEFAULT_POLL, DeleteAction, Observed, PendingWhatIf, Removal,
    after_deployment_check, after_observe, after_poll, after_stack_delete, after_start,
    after_what_if, decide_delete,
};
use crate::dereference;
use crate::drift::{self, DriftVerdict};
use crate::error::{Error, Result, backoff};
use crate::status;

/// Finalizer that keeps an object until its Azure resources are handled.
pub const FINALIZER: &str = crds::CLEANUP_FINALIZER;

/// Entry point for the kube-runtime `Controller`.
pub async fn reconcile(
    guard: Arc<DeserializeGuard<AzureResource>>,
    ctx: Arc<Context>,
) -> Result<Requeue> {
    let started = Instant::now();
    let result = match &guard.0 {
        Ok(object) => reconcile_object(object, &ctx).await,
        Err(invalid) => {
            // One malformed object must not stop the others: report it and wait for a fix.
            warn!(name = ?invalid.metadata.name, namespace = ?invalid.metadata.namespace,
                  error = %invalid.error, "invalid AzureResource");
            let note = format!("the object cannot be read: {}", invalid.error);
            publish(
                &ctx,
                &guard.object_ref(&()),
                EventType::Warning,
                "InvalidObject",
                "Read",
                &note,
            )
            .await;
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
pub fn error_policy(
    guard: Arc<DeserializeGuard<AzureResource>>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Requeue {
    // The status was written with the incremented count; the cached object may lag.
    let failures = guard
        .0
        .as_ref()
        .ok()
        .and_then(|o| o.status.as_ref())
        .map_or(0, |s| s.failures)
        .saturating_add(1);
    Requeue::requeue(backoff(failures, error.retry_after(), jitter()))
}

fn jitter() -> f64 {
    rand::random::<f64>() * 2.0 - 1.0
}

/// Finalizer handling: added (and persisted) before anything reaches ARM, removed only
/// when the cleanup reports that nothing is left to do in Azure. `cached` is the watch
/// cache's stripped copy ([`crate::watch_cache`]); whatever goes on to ARM reads the whole
/// object first.
async fn reconcile_object(cached: &AzureResource, ctx: &Context) -> Result<Requeue> {
    let namespace = cached.namespace().unwrap_or_default();
    let api: Api<AzureResource> = Api::namespaced(ctx.client.clone(), &namespace);
    let has_finalizer = cached.finalizers().iter().any(|f| f == FINALIZER);
    let deleting = cached.metadata.deletion_timestamp.is_some();
    if deleting && !has_finalizer {
        return Ok(Requeue::await_change());
    }
    if !deleting && !has_finalizer {
        // The finalizer change itself triggers the next reconcile.
        set_finalizer(&api, cached, true).await?;
        return Ok(Requeue::await_change());
    }
    let Some(object) = api.get_opt(&cached.name_any()).await? else {
        return Ok(Requeue::await_change());
    };
    if object.uid() != cached.uid() || !object.finalizers().iter().any(|f| f == FINALIZER) {
        // Created again under the same name, or the finalizer went meanwhile: the watch
        // event of that change reconciles it.
        return Ok(Requeue::await_change());
    }
    if object.metadata.deletion_timestamp.is_none() {
        return apply(&object, ctx, &api).await;
    }
    match cleanup(&object, ctx, &api).await? {
        Cleanup::Finished => {
            set_finalizer(&api, &object, false).await?;
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
    object: &AzureResource,
    present: bool,
) -> Result<()> {
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
        {"op": "test", "path": "/metadata/finalizers", "value": object.metadata.finalizers},
        {"op": "add", "path": "/metadata/finalizers", "value": finalizers},
    ]))
    .expect("a JSON patch of two operations");
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Json::<()>(patch),
    )
    .await?;
    Ok(())
}

/// Creates or updates the deployment; failures are recorded in status and as an Event.
async fn apply(object: &AzureResource, ctx: &Context, api: &Api<AzureResource>) -> Result<Requeue> {
    let mut status = object.status.clone().unwrap_or_default();
    let mut hash = None;
    let result = if object.spec.adopt.is_some() {
        run_adopted(object, ctx, api, &mut status).await
    } else {
        run_apply(object, ctx, api, &mut status, &mut hash).await
    };
    match result {
        Ok(next) => Ok(next),
        Err(Error::NotLeader) => Err(Error::NotLeader),
        Err(error) => {
            let terminal = !error.is_retryable();
            record_error(
                object,
                ctx,
                api,
                &mut status,
                &error,
                terminal.then_some(hash).flatten().as_deref(),
            )
            .await?;
            if terminal {
                Ok(Requeue::await_change())
            } else {
                Err(error)
            }
        }
    }
}

async fn record_error(
    object: &AzureResource,
    ctx: &Context,
    api: &Api<AzureResource>,
    status: &mut AzureResourceStatus,
    error: &Error,
    applied_hash: Option<&str>,
) -> Result<()> {
    warn!(object = %object.name_any(), namespace = ?object.namespace(),
          reason = %error.reason(), error = %error, "reconcile failed");
    status::failed(
        status,
        error,
        false,
        applied_hash,
        object.metadata.generation,
        Timestamp::now(),
    );
    status::apply(api, object, status).await?;
    publish(
        ctx,
        &object.object_ref(&()),
        EventType::Warning,
        &error.reason(),
        "Reconcile",
        &error.to_string(),
    )
    .await;
    Ok(())
}

async fn run_apply(
    object: &AzureResource,
    ctx: &Context,
    api: &Api<AzureResource>,
    status: &mut AzureResourceStatus,
    hash: &mut Option<String>,
) -> Result<Requeue> {
    let namespace = object.namespace().unwrap_or_default();
    let (credentials, credential_subscription) = credentials_of(object, ctx).await?;
    let inputs = dereference::inputs(
        &ctx.client,
        &ctx.bicep,
        object,
        &namespace,
        credential_subscription,
    )
    .await?;
    let mut request = build::build(object, &inputs)?;
    let plain_hash = std::mem::take(&mut request.applied_hash);
    request.applied_hash = ctx.keyed_hash(&plain_hash);
    if status.applied_hash.as_deref() == Some(plain_hash.as_str())
        && plain_hash != request.applied_hash
    {
        // Deployed before the hash was keyed: unchanged, and the plain digest (which lets
        // a reader test guesses of secure values) is replaced at once.
        status.applied_hash = Some(request.applied_hash.clone());
        status::apply(api, object, status).await?;
    }
    *hash = Some(request.applied_hash.clone());
    let sync_interval = object
        .spec
        .sync_interval()
        .map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let azure = ctx.azure.api(&credentials)?;

    let uid = object.uid().unwrap_or_default();
    let generation = object.metadata.generation;
    let now = Timestamp::now();
    let drift_policy = object.spec.drift_policy;
    let check_drift_annotation = object
        .annotations()
        .get(crds::CHECK_DRIFT_ANNOTATION)
        .map(String::as_str);
    let pending_what_if = ctx.pending_what_if(&uid);
    let mut action = decide::decide(&Observed {
        generation,
        status,
        desired_hash: &request.applied_hash,
        now,
        sync_interval,
        last_checked: ctx.last_checked(&uid),
        drift_policy,
        engine: request.target.engine,
        check_drift_annotation,
        pending_what_if: pending_what_if.as_ref(),
    });
    let group = match (&request.ensure_resource_group, &request.target.scope) {
        (
            Some(location),
            DeploymentScope::ResourceGroup {
                subscription_id,
                resource_group,
            },
        ) => Some((subscription_id, resource_group, location)),
        _ => None,
    };
    let group_key = group.map(|(s, g, l)| format!("{s}/{g}/{l}").to_ascii_lowercase());
    loop {
        ctx.metrics.action(action_label(&action));
        action = match action {
            Action::StartDeployment => {
                // Refused before the first ARM write, not after the deployment ran.
                if let Some(secret) = &object.spec.outputs_secret_ref {
                    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
                    status::outputs_secret_access(
                        secrets.get_opt(&secret.name).await?.as_ref(),
                        &uid,
                    )?;
                }
                ctx.may_write()?;
                if let (Some((subscription_id, resource_group, location)), Some(key)) =
                    (group, &group_key)
                    && !ctx.group_ensured(key)
                {
                    azure
                        .ensure_resource_group(subscription_id, resource_group, location)
                        .await?;
                    ctx.mark_group_ensured(key, true);
                }
                match azure.start_deployment(&request).await {
                    Err(error) if error.reason() == "ResourceGroupNotFound" => {
                        // Deleted behind our back: create it again on the next attempt.
                        if let Some(key) = &group_key {
                            ctx.mark_group_ensured(key, false);
                        }
                        return Err(error);
                    }
                    outcome => after_start(outcome?),
                }
            }
            Action::PollOperation { operation_url } => decide::unless_superseded(
                after_poll(
                    azure
                        .poll_operation(
                            OperationKind::Deploy(request.target.engine),
                            &operation_url,
                        )
                        .await?,
                ),
                status.applied_hash.as_deref(),
                &request.applied_hash,
            ),
            Action::ObserveDeployment => decide::unless_superseded(
                after_observe(azure.get_deployment(&request.target).await?),
                status.applied_hash.as_deref(),
                &request.applied_hash,
            ),
            Action::CheckDrift => {
                let observation = azure.get_deployment(&request.target).await?;
                let mut missing = 0;
                if drift_policy == DriftPolicy::Ignore {
                    // Without what-if, a resource's existence is all that is checked.
                    for id in &status.resources {
                        if !azure.resource_exists(id).await? {
                            missing += 1;
                        }
                    }
                    status::drift_unchecked(status);
                    status::apply(api, object, status).await?;
                }
                ctx.mark_checked(&uid, now);
                let next = after_deployment_check(
                    observation.as_ref(),
                    missing,
                    sync_interval,
                    drift_policy,
                );
                if next == Action::StartDeployment {
                    let note = match &observation {
                        None => "the deployment is gone from Azure".to_owned(),
                        Some(o) if o.state != ProvisioningState::Succeeded => {
                            format!("the deployment is {}", o.provisioning_state_text)
                        }
                        Some(_) => format!("{missing} resource(s) are gone from Azure"),
                    };
                    drift_detected(ctx, object, &note).await;
                }
                next
            }
            Action::StartWhatIf => match azure.what_if(&request).await {
                Ok(outcome) => after_what_if(outcome, sync_interval),
                Err(error) => {
                    let reason = error.reason();
                    let Some(next) = decide::after_what_if_refused(
                        &reason,
                        &error.to_string(),
                        error.is_retryable(),
                    ) else {
                        return Err(error);
                    };
                    if next == Action::StartDeployment {
                        if let Some(key) = &group_key {
                            ctx.mark_group_ensured(key, false);
                        }
                        ctx.mark_checked(&uid, now);
                        let note = format!("the what-if found no resource group: {error}");
                        drift_detected(ctx, object, &note).await;
                    }
                    next
                }
            },
            Action::PollWhatIf { operation_url } => {
                let outcome = azure.poll_what_if(&operation_url).await?;
                ctx.set_pending_what_if(&uid, None);
                after_what_if(outcome, sync_interval)
            }
            Action::AwaitWhatIf {
                operation_url,
                after,
            } => {
                let due = k8s_openapi::jiff::SignedDuration::try_from(after)
                    .ok()
                    .and_then(|after| now.checked_add(after).ok())
                    .unwrap_or(now);
                ctx.set_pending_what_if(
                    &uid,
                    Some(PendingWhatIf {
                        operation_url,
                        applied_hash: request.applied_hash.clone(),
                        due,
                    }),
                );
                return Ok(Requeue::requeue(after));
            }
            Action::RecordDrift(changes) => {
                let secrets = drift::secure_values(
                    &request.template,
                    &request.parameters.0,
                    &secret_parameters(&object.spec),
                );
                let report = drift::report(
                    &changes,
                    &secrets,
                    check_drift_annotation.map(str::to_owned),
                    now,
                );
                let verdict = drift::verdict(drift_policy, &report, status.drift.as_ref());
                let note = drift::describe(&report);
                status::drift_checked(
                    status,
                    report,
                    verdict == DriftVerdict::Redeploy,
                    generation,
                    now,
                );
                ctx.mark_checked(&uid, now);
                if verdict == DriftVerdict::Redeploy {
                    // The deployment's own status write records the report.
                    info!(object = %object.name_any(), namespace = %namespace, "{note}");
                    drift_detected(
                        ctx,
                        object,
                        &format!("{note}; deploying the template again"),
                    )
                    .await;
                    Action::StartDeployment
                } else {
                    // A check that finds what the last one found writes nothing.
                    status::apply(api, object, status).await?;
                    if verdict == (DriftVerdict::Report { announce: true }) {
                        warn!(object = %object.name_any(), namespace = %namespace, "{note}");
                        publish(
                            ctx,
                            &object.object_ref(&()),
                            EventType::Warning,
                            "Drifted",
                            "Check",
                            &note,
                        )
                        .await;
                    }
                    return Ok(sync_interval.map_or_else(Requeue::await_change, Requeue::requeue));
                }
            }
            Action::DriftCheckFailed(failure) => {
                let error = status::arm_error(&failure);
                ctx.mark_checked(&uid, now);
                warn!(object = %object.name_any(), namespace = %namespace,
                      reason = %error.reason(), error = %error, "drift check failed");
                publish(
                    ctx,
                    &object.object_ref(&()),
                    EventType::Warning,
                    "DriftCheckFailed",
                    "Check",
                    &error.to_string(),
                )
                .await;
                return Ok(sync_interval.map_or_else(Requeue::await_change, Requeue::requeue));
            }
            Action::RecordStarted {
                operation_url,
                poll_after,
            } => {
                status::started(
                    status,
                    &request.target.name,
                    &request.applied_hash,
                    operation_url,
                    generation,
                    now,
                );
                status::apply(api, object, status).await?;
                let note = format!(
                    "{} {} started",
                    engine_name(request.target.engine),
                    request.target.name
                );
                info!(object = %object.name_any(), namespace = %namespace, "{note}");
                publish(
                    ctx,
                    &object.object_ref(&()),
                    EventType::Normal,
                    "DeploymentStarted",
                    "Deploy",
                    &note,
                )
                .await;
                return Ok(Requeue::requeue(poll_after));
            }
            Action::RecordSuccess(observation) => {
                if let Some(secret) = &object.spec.outputs_secret_ref {
                    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
                    status::apply_outputs_secret(
                        &secrets,
                        object,
                        &secret.name,
                        &observation.outputs,
                    )
                    .await?;
                }
                status::succeeded(status, &observation, generation, now);
                status::apply(api, object, status).await?;
                ctx.mark_checked(&uid, now);
                info!(object = %object.name_any(), namespace = %namespace, "ready");
                publish(
                    ctx,
                    &object.object_ref(&()),
                    EventType::Normal,
                    "Ready",
                    "Deploy",
                    &format!("{} succeeded", engine_name(request.target.engine)),
                )
                .await;
                return Ok(sync_interval.map_or_else(Requeue::await_change, Requeue::requeue));
            }
            Action::RecordFailure(failure) => {
                let error = status::arm_error(&failure);
                status::failed(status, &error, true, None, generation, now);
                status::apply(api, object, status).await?;
                warn!(object = %object.name_any(), namespace = %namespace,
                      reason = %error.reason(), error = %error, "deployment failed");
                publish(
                    ctx,
                    &object.object_ref(&()),
                    EventType::Warning,
                    &error.reason(),
                    "Deploy",
                    &error.to_string(),
                )
                .await;
                ctx.metrics.error(error.metric_label());
                return Ok(if error.is_retryable() {
                    Requeue::requeue(backoff(status.failures, None, jitter()))
                } else {
                    Requeue::await_change()
                });
            }
            Action::Requeue { after } => return Ok(Requeue::requeue(after)),
            Action::AwaitChange => return Ok(Requeue::await_change()),
        };
    }
}

/// An adopted object: report the state of what it names; nothing is ever deployed.
async fn run_adopted(
    object: &AzureResource,
    ctx: &Context,
    api: &Api<AzureResource>,
    status: &mut AzureResourceStatus,
) -> Result<Requeue> {
    let namespace = object.namespace().unwrap_or_default();
    let (credentials, credential_subscription) = credentials_of(object, ctx).await?;
    let owned = build::owned(object, credential_subscription.as_deref())?;
    let sync_interval = object
        .spec
        .sync_interval()
        .map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let azure = ctx.azure.api(&credentials)?;
    let observation = match &owned {
        Owned::Deployment(target) => azure.get_deployment(target).await?,
        Owned::Resource(id) => azure
            .resource_exists(id)
            .await?
            .then(|| DeploymentObservation::existing_resource(id)),
    };
    let id = object.spec.adopt.as_ref().map_or("", |a| a.id.as_str());
    let generation = object.metadata.generation;
    let now = Timestamp::now();
    let before = status.clone();
    let (next, event) = match decide::after_adopt_observe(observation, id) {
        AdoptAction::RecordReady(observation) => {
            if let Some(secret) = &object.spec.outputs_secret_ref {
                let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
                status::apply_outputs_secret(&secrets, object, &secret.name, &observation.outputs)
                    .await?;
            }
            status::succeeded(status, &observation, generation, now);
            let next = sync_interval.map_or_else(Requeue::await_change, Requeue::requeue);
            (next, None)
        }
        AdoptAction::RecordFailure(failure) => {
            let error = status::arm_error(&failure);
            status::failed(status, &error, true, None, generation, now);
            // Looking costs one read: keep looking (the id may appear, access be granted).
            let next = Requeue::requeue(backoff(status.failures, None, jitter()));
            (next, Some(error))
        }
        AdoptAction::Requeue { after } => return Ok(Requeue::requeue(after)),
    };
    // A periodic check that finds nothing new writes nothing.
    let unchanged = before.phase == status.phase
        && before.resources == status.resources
        && before.outputs == status.outputs
        && before.observed_generation == status.observed_generation
        && event.is_none();
    if !unchanged {
        status::apply(api, object, status).await?;
        let (type_, reason, note) = match &event {
            None => (
                EventType::Normal,
                "Ready".to_owned(),
                format!("adopted {id}"),
            ),
            Some(error) => (EventType::Warning, error.reason(), error.to_string()),
        };
        publish(ctx, &object.object_ref(&()), type_, &reason, "Adopt", &note).await;
    }
    Ok(next)
}

/// Where the deletion of an object stands.
enum Cleanup {
    /// Nothing is left to do in Azure: the finalizer may go.
    Finished,
    /// Azure is still working: look again after this long.
    Pending(std::time::Duration),
}

async fn cleanup(
    object: &AzureResource,
    ctx: &Context,
    api: &Api<AzureResource>,
) -> Result<Cleanup> {
    let mut status = object.status.clone().unwrap_or_default();
    // Deleting is a new operation: its failures count from zero. The apiserver bumps the
    // generation when the deletion begins, so a status of an older one is from before.
    if status.observed_generation != object.metadata.generation {
        status.failures = 0;
    }
    match run_cleanup(object, ctx, api, &mut status).await {
        Ok(next) => Ok(next),
        Err(Error::NotLeader) => Err(Error::NotLeader),
        Err(error) => {
            // Deletion has no spec change to wait for: every failure is retried.
            record_error(object, ctx, api, &mut status, &error, None).await?;
            Err(error)
        }
    }
}

async fn run_cleanup(
    object: &AzureResource,
    ctx: &Context,
    api: &Api<AzureResource>,
    status: &mut AzureResourceStatus,
) -> Result<Cleanup> {
    let removal = build::removal(&object.spec)?;
    let policy = object.spec.deletion_policy;
    let generation = object.metadata.generation;
    let now = Timestamp::now();
    let uid = object.uid().unwrap_or_default();
    let mut action = decide_delete(status, removal, policy);

    let mut azure = None;
    let mut owned = None;
    if action != DeleteAction::RemoveFinalizer {
        let (credentials, subscription) = credentials_of(object, ctx).await?;
        owned = Some(build::owned(object, subscription.as_deref())?);
        azure = Some(ctx.azure.api(&credentials)?);
    }
    // Announce the start of deletion once, when this reconcile first writes Deleting.
    let mut announce_start = status.phase != Some(crds::Phase::Deleting);

    loop {
        ctx.metrics.action(delete_action_label(&action));
        let (Some(azure), Some(owned)) = (&azure, &owned) else {
            // Only RemoveFinalizer runs without ARM.
            publish(
                ctx,
                &object.object_ref(&()),
                EventType::Normal,
                "Deleted",
                "Delete",
                "deletionPolicy Orphan: Azure resources left in place",
            )
            .await;
            ctx.forget(&uid);
            return Ok(Cleanup::Finished);
        };
        action = match action {
            DeleteAction::WaitForDeployment { operation_url } => {
                let target = deployment_of(owned)?;
                if let Some(url) = operation_url
                    && let OperationStatus::Running { retry_after } = azure
                        .poll_operation(OperationKind::Deploy(target.engine), &url)
                        .await?
                {
                    return Ok(Cleanup::Pending(retry_after.unwrap_or(DEFAULT_POLL)));
                }
                match azure.get_deployment(target).await? {
                    Some(o) if o.state == ProvisioningState::Running => {
                        return Ok(Cleanup::Pending(DEFAULT_POLL));
                    }
                    Some(o) => status.resources = o.resources,
                    None => {}
                }
                status::deleting(status, None, generation, now);
                decide_delete(status, removal, policy)
            }
            DeleteAction::DeleteStack { unmanage } => {
                let target = deployment_of(owned)?;
                ctx.may_write()?;
                match after_stack_delete(azure.delete_deployment(target, unmanage).await?) {
                    None => DeleteAction::RemoveFinalizer,
                    Some((operation_url, after)) => {
                        status::deleting(status, operation_url, generation, now);
                        status::apply(api, object, status).await?;
                        if announce_start {
                            publish(
                                ctx,
                                &object.object_ref(&()),
                                EventType::Normal,
                                "DeleteStarted",
                                "Delete",
                                &format!("deleting stack {} ({unmanage:?} resources)", target.name),
                            )
                            .await;
                        }
                        return Ok(Cleanup::Pending(after));
                    }
                }
            }
            DeleteAction::PollDelete { operation_url } => {
                match azure
                    .poll_operation(
                        match removal {
                            Removal::Stack => OperationKind::DeleteStack,
                            _ => OperationKind::DeleteRecord,
                        },
                        &operation_url,
                    )
                    .await?
                {
                    OperationStatus::Running { retry_after } => {
                        return Ok(Cleanup::Pending(retry_after.unwrap_or(DEFAULT_POLL)));
                    }
                    OperationStatus::Succeeded => DeleteAction::RemoveFinalizer,
                    OperationStatus::Failed(failure) => {
                        // Send the DELETE again after the backoff.
                        if let Some(d) = status.deployment.as_mut() {
                            d.operation_url = None;
                        }
                        return Err(status::arm_error(&failure));
                    }
                }
            }
            DeleteAction::DiscoverResources => match owned {
                Owned::Resource(id) => {
                    status.resources = vec![id.clone()];
                    status::deleting(status, None, generation, now);
                    decide_delete(status, removal, policy)
                }
                Owned::Deployment(target) => match azure.get_deployment(target).await? {
                    None => DeleteAction::RemoveFinalizer,
                    Some(o) if o.state == ProvisioningState::Running => {
                        return Ok(Cleanup::Pending(DEFAULT_POLL));
                    }
                    Some(o) => {
                        status.resources = o.resources;
                        status::deleting(status, None, generation, now);
                        decide_delete(status, removal, policy)
                    }
                },
            },
            DeleteAction::DeleteResources { ids } => {
                if announce_start {
                    publish(
                        ctx,
                        &object.object_ref(&()),
                        EventType::Normal,
                        "DeleteStarted",
                        "Delete",
                        &format!("deleting {} resource(s)", status.resources.len()),
                    )
                    .await;
                    announce_start = false;
                }
                let mut pending = false;
                for id in ids {
                    ctx.may_write()?;
                    match azure.delete_resource(&id).await? {
                        DeleteOutcome::Done => status.resources.retain(|r| *r != id),
                        DeleteOutcome::Accepted { .. } => pending = true,
                    }
                }
                status::deleting(status, None, generation, now);
                status::apply(api, object, status).await?;
                if pending {
                    return Ok(Cleanup::Pending(DEFAULT_POLL));
                }
                decide_delete(status, removal, policy)
            }
            DeleteAction::DeleteRecord => {
                // Only the history record: its resources are gone already. ARM removes it
                // asynchronously; the finalizer stays until it is gone.
                match azure
                    .delete_deployment(deployment_of(owned)?, UnmanageAction::Delete)
                    .await?
                {
                    DeleteOutcome::Done => DeleteAction::RemoveFinalizer,
                    DeleteOutcome::Accepted {
                        operation_url,
                        retry_after,
                    } => {
                        status::deleting(status, operation_url, generation, now);
                        status::apply(api, object, status).await?;
                        return Ok(Cleanup::Pending(retry_after.unwrap_or(DEFAULT_POLL)));
                    }
                }
            }
            DeleteAction::RemoveFinalizer => {
                let note = match policy {
                    crds::DeletionPolicy::Delete => "Azure resources deleted",
                    crds::DeletionPolicy::Orphan => "Azure resources left in place",
                };
                info!(object = %object.name_any(), namespace = ?object.namespace(), "{note}");
                publish(
                    ctx,
                    &object.object_ref(&()),
                    EventType::Normal,
                    "Deleted",
                    "Delete",
                    note,
                )
                .await;
                ctx.forget(&uid);
                return Ok(Cleanup::Finished);
            }
        };
    }
}

/// The object's credentials and the subscription they name, per DESIGN.md's order.
async fn credentials_of(
    object: &AzureResource,
    ctx: &Context,
) -> Result<(Credentials, Option<String>)> {
    dereference::credentials(
        &ctx.client,
        &object.namespace().unwrap_or_default(),
        &object.spec,
        ctx.operator_subscription_id.as_deref(),
    )
    .await
}

/// Names of the parameters read from Secrets: their values are secure.
fn secret_parameters(spec: &AzureResourceSpec) -> Vec<&str> {
    spec.parameters_from
        .iter()
        .filter(|p| matches!(p.source, ParameterSource::SecretKeyRef(_)))
        .map(|p| p.name.as_str())
        .collect()
}

/// The deployment or stack an action on one needs; an adopted plain resource has none.
fn deployment_of(owned: &Owned) -> Result<&Target> {
    match owned {
        Owned::Deployment(target) => Ok(target),
        Owned::Resource(id) => Err(Error::InvalidSpec(format!(
            "{id} is not a deployment or deployment stack"
        ))),
    }
}

/// Events are best effort: a failure to record one must not fail the reconcile.
/// The Event of a check that deploys the template again.
async fn drift_detected(ctx: &Context, object: &AzureResource, note: &str) {
    publish(
        ctx,
        &object.object_ref(&()),
        EventType::Normal,
        "DriftDetected",
        "Check",
        note,
    )
    .await;
}

async fn publish(
    ctx: &Context,
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.chars().take(128).collect(),
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, regarding).await {
        warn!(error = %e, reason, "could not publish event");
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
        Action::DriftCheckFailed(_) => "drift_check_failed",
        Action::RecordStarted { .. } => "record_started",
        Action::RecordSuccess(_) => "record_success",
        Action::RecordFailure(_) => "record_failure",
        Action::Requeue { .. } => "requeue",
        Action::AwaitChange => "await_change",
    }
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
