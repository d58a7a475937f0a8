//! [`AzureApi`] on the `arm` crate's client.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use arm::{
    ArmClient, ArmError, ArmOptions, CredentialCache, CredentialSpec, ErrorCategory, ErrorSource,
    LroHandle, LroKind, LroOperation, PollResult, RequestClass, RequestObserver, RequestRecord,
    Secret, WhatIfStart,
    models::{
        ActionOnUnmanage, DenySettings, Deployment, DeploymentRequestProperties, DeploymentStack,
        StackRequest, StackRequestProperties, TypedValue, WhatIfPropertyChange, WhatIfResult,
    },
};
use async_trait::async_trait;

use crate::azure::{
    ArmFailure, AzureApi, AzureApiFactory, Credentials, DeleteOutcome, DeploymentObservation,
    DeploymentRequest, DeploymentScope, Engine, Mode, OperationKind, OperationStatus, Output,
    Priority, ProvisioningState, StartOutcome, Target, UnmanageAction, WhatIfOutcome,
};
use crate::drift::{ChangeType, PropertyChange, ResourceChange};
use crate::error::{ArmDetail, Error, Result};
use crate::metrics::Metrics;

/// One HTTP pool, throttle and token cache for all objects; a client per identity.
pub struct ArmFactory {
    base: ArmClient,
    credentials: CredentialCache,
    /// The operator's identity from the environment, or why it is unusable.
    operator: std::result::Result<CredentialSpec, String>,
}

impl ArmFactory {
    /// The operator identity is read from the environment (`AZURE_*`).
    pub fn new(options: ArmOptions, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let credentials = CredentialCache::new(&options)?;
        let operator = CredentialSpec::from_env().map_err(|e| e.to_string());
        // The base client's identity is never used directly: every call goes through
        // `with_credential`. A managed identity is built without any network traffic.
        let placeholder = credentials.get(&CredentialSpec::ManagedIdentity { client_id: None })?;
        let base =
            ArmClient::new_observed(options, placeholder, Arc::new(MetricsObserver(metrics)))?;
        Ok(ArmFactory {
            base,
            credentials,
            operator,
        })
    }
}

impl AzureApiFactory for ArmFactory {
    fn api(&self, credentials: &Credentials) -> Result<Arc<dyn AzureApi>> {
        let spec = match credentials {
            Credentials::Operator => self
                .operator
                .clone()
                .map_err(|e| Error::CredentialsMissing(format!("operator identity: {e}")))?,
            Credentials::ClientSecret(c) => CredentialSpec::ClientSecret {
                tenant_id: c.tenant_id.clone(),
                client_id: c.client_id.clone(),
                client_secret: Secret::new(c.client_secret.clone()),
            },
        };
        let credential = self
            .credentials
            .get(&spec)
            .map_err(|e| Error::CredentialsInvalid(e.message.clone()))?;
        Ok(Arc::new(ArmApi {
            client: self.base.with_credential(credential),
        }))
    }
}

struct MetricsObserver(Arc<Metrics>);

impl RequestObserver for MetricsObserver {
    fn observe(&self, record: &RequestRecord<'_>) {
        let status = record
            .status
            .map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.0
            .arm_request(record.operation, &status, record.duration);
    }
}

struct ArmApi {
    client: ArmClient,
}

fn scope(scope: &DeploymentScope) -> arm::DeploymentScope {
    match scope {
        DeploymentScope::ResourceGroup {
            subscription_id,
            resource_group,
        } => arm::DeploymentScope::ResourceGroup {
            subscription: subscription_id.clone(),
            resource_group: resource_group.clone(),
        },
        DeploymentScope::Subscription {
            subscription_id,
            location,
        } => arm::DeploymentScope::Subscription {
            subscription: subscription_id.clone(),
            location: location.clone(),
        },
    }
}

fn unmanage(action: UnmanageAction) -> ActionOnUnmanage {
    match action {
        UnmanageAction::Delete => ActionOnUnmanage::delete_all(),
        UnmanageAction::Detach => ActionOnUnmanage::detach_all(),
    }
}

fn arm_priority(priority: Priority) -> arm::Priority {
    match priority {
        Priority::Queued => arm::Priority::Queued,
        Priority::Spare => arm::Priority::Spare,
        Priority::Idle => arm::Priority::Idle,
    }
}

/// Maps the client's error onto the controller's classification.
fn error(e: ArmError) -> Error {
    match (e.source_kind, e.category()) {
        (_, ErrorCategory::Credential) => Error::CredentialsInvalid(e.to_string()),
        (
            ErrorSource::Transport
            | ErrorSource::Decode
            | ErrorSource::ClientThrottle
            | ErrorSource::NoSpareBudget,
            _,
        ) => Error::ArmUnavailable {
            message: e.to_string(),
            retry_after: e.retry_after,
        },
        (ErrorSource::Credential, _) => Error::ArmUnavailable {
            message: e.to_string(),
            retry_after: e.retry_after,
        },
        (_, category) => Error::Arm {
            retryable: e.is_retryable() || category == ErrorCategory::Authorization,
            retry_after: e.retry_after,
            details: details(&e.details),
            code: e.code.clone(),
            message: e.message.clone(),
        },
    }
}

fn details(details: &[arm::ErrorDetail]) -> Vec<ArmDetail> {
    // Nested details flattened, outermost first: status shows them as one list.
    let mut out = Vec::new();
    let mut stack: Vec<&arm::ErrorDetail> = details.iter().rev().collect();
    while let Some(d) = stack.pop() {
        out.push(ArmDetail {
            code: d.code.clone(),
            message: d.message.clone(),
            target: d.target.clone(),
        });
        stack.extend(d.details.iter().rev());
    }
    out
}

fn failure(e: &ArmError) -> ArmFailure {
    ArmFailure {
        code: e.code.clone(),
        message: e.message.clone(),
        details: details(&e.details),
    }
}

fn detail_failure(d: &arm::ErrorDetail) -> ArmFailure {
    ArmFailure {
        code: d.code.clone(),
        message: d.message.clone(),
        details: details(&d.details),
    }
}

fn state(text: &str) -> ProvisioningState {
    match text.to_ascii_lowercase().as_str() {
        "succeeded" => ProvisioningState::Succeeded,
        "failed" => ProvisioningState::Failed,
        "canceled" => ProvisioningState::Canceled,
        _ => ProvisioningState::Running,
    }
}

fn outputs(outputs: &BTreeMap<String, TypedValue>) -> Vec<Output> {
    outputs
        .iter()
        .map(|(name, v)| Output {
            name: name.clone(),
            value: v.value.clone(),
            secure: v.is_secure(),
        })
        .collect()
}

fn deployment_observation(d: Deployment) -> DeploymentObservation {
    let p = d.properties;
    DeploymentObservation {
        id: Some(d.id).filter(|id| !id.is_empty()),
        state: state(&p.provisioning_state),
        provisioning_state_text: p.provisioning_state,
        correlation_id: p.correlation_id,
        outputs: outputs(&p.outputs),
        resources: p.output_resources.into_iter().map(|r| r.id).collect(),
        error: p.error.as_ref().map(detail_failure),
    }
}

fn stack_observation(s: DeploymentStack) -> DeploymentObservation {
    let p = s.properties;
    DeploymentObservation {
        id: Some(s.id).filter(|id| !id.is_empty()),
        state: state(&p.provisioning_state),
        provisioning_state_text: p.provisioning_state,
        correlation_id: p.correlation_id,
        outputs: outputs(&p.outputs),
        resources: p.resources.into_iter().map(|r| r.id).collect(),
        error: p.error.as_ref().map(detail_failure),
    }
}

/// The body of a deployment PUT or what-if for the request.
fn deployment_body(request: &DeploymentRequest) -> arm::models::DeploymentRequest {
    arm::models::DeploymentRequest {
        location: None,
        tags: BTreeMap::new(),
        properties: DeploymentRequestProperties {
            mode: match request.mode {
                Mode::Incremental => arm::models::DeploymentMode::Incremental,
                Mode::Complete => arm::models::DeploymentMode::Complete,
            },
            template: Some(request.template.clone()),
            template_link: None,
            parameters: request.parameters.0.clone(),
        },
    }
}

fn property_change(p: WhatIfPropertyChange) -> PropertyChange {
    PropertyChange {
        path: p.path,
        change_type: p.property_change_type,
        before: p.before,
        after: p.after,
    }
}

/// A finished what-if: its changes, or ARM's error when it failed.
fn what_if_outcome(result: WhatIfResult) -> WhatIfOutcome {
    if let Some(e) = result
        .error
        .filter(|_| result.status.eq_ignore_ascii_case("failed"))
    {
        return WhatIfOutcome::Failed(detail_failure(&e));
    }
    WhatIfOutcome::Done(
        result
            .properties
            .changes
            .into_iter()
            .map(|c| ResourceChange {
                id: c.resource_id,
                change_type: ChangeType::parse(&c.change_type),
                delta: c.delta.into_iter().map(property_change).collect(),
            })
            .collect(),
    )
}

/// Only URLs this process can poll after a restart are handed out (see [`OperationKind`]);
/// for others the caller observes the resource itself.
fn delete_outcome(handle: Option<LroHandle>) -> DeleteOutcome {
    match handle {
        None => DeleteOutcome::Done,
        Some(h) => DeleteOutcome::Accepted {
            retry_after: Some(h.wait_time()),
            operation_url: (h.kind == LroKind::Location).then_some(h.operation_url),
        },
    }
}

#[async_trait]
impl AzureApi for ArmApi {
    async fn ensure_resource_group(
        &self,
        subscription_id: &str,
        name: &str,
        location: &str,
    ) -> Result<()> {
        self.client
            .ensure_resource_group(subscription_id, name, location, &BTreeMap::new())
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn start_deployment(&self, request: &DeploymentRequest) -> Result<StartOutcome> {
        let target = &request.target;
        let arm_scope = scope(&target.scope);
        let (handle, resumed) = match target.engine {
            Engine::Deployment => {
                let started = self
                    .client
                    .put_deployment(&arm_scope, &target.name, &deployment_body(request))
                    .await
                    .map_err(error)?;
                (started.handle, started.resumed)
            }
            Engine::Stack => {
                let body = StackRequest {
                    location: None,
                    tags: BTreeMap::new(),
                    properties: StackRequestProperties {
                        template: Some(request.template.clone()),
                        template_link: None,
                        parameters: request.parameters.0.clone(),
                        action_on_unmanage: unmanage(request.on_unmanage),
                        deny_settings: DenySettings::default(),
                    },
                };
                let started = self
                    .client
                    .put_stack(&arm_scope, &target.name, &body)
                    .await
                    .map_err(error)?;
                (started.handle, started.resumed)
            }
        };
        if resumed {
            return Ok(StartOutcome::AlreadyRunning);
        }
        Ok(StartOutcome::Accepted {
            retry_after: Some(handle.wait_time()),
            operation_url: (handle.kind == LroKind::AsyncOperation).then_some(handle.operation_url),
        })
    }

    async fn poll_operation(
        &self,
        kind: OperationKind,
        operation_url: &str,
    ) -> Result<OperationStatus> {
        let (operation, lro_kind) = match kind {
            OperationKind::Deploy(Engine::Deployment) => {
                (LroOperation::DeploymentPut, LroKind::AsyncOperation)
            }
            OperationKind::Deploy(Engine::Stack) => {
                (LroOperation::StackPut, LroKind::AsyncOperation)
            }
            OperationKind::DeleteStack => (LroOperation::StackDelete, LroKind::Location),
            OperationKind::DeleteRecord => (LroOperation::DeploymentDelete, LroKind::Location),
        };
        let mut handle = LroHandle {
            operation,
            kind: lro_kind,
            operation_url: operation_url.to_owned(),
            resource_url: operation_url.to_owned(),
            not_before: None,
            correlation_id: uuid::Uuid::new_v4().to_string(),
        };
        Ok(match self.client.poll(&mut handle).await.map_err(error)? {
            PollResult::InProgress { retry_after, .. } => OperationStatus::Running {
                retry_after: Some(retry_after),
            },
            PollResult::Done(_) => OperationStatus::Succeeded,
            PollResult::Failed(e) => OperationStatus::Failed(failure(&e)),
        })
    }

    async fn get_deployment(&self, target: &Target) -> Result<Option<DeploymentObservation>> {
        let arm_scope = scope(&target.scope);
        Ok(match target.engine {
            Engine::Deployment => self
                .client
                .get_deployment(&arm_scope, &target.name)
                .await
                .map_err(error)?
                .map(deployment_observation),
            Engine::Stack => self
                .client
                .get_stack(&arm_scope, &target.name)
                .await
                .map_err(error)?
                .map(stack_observation),
        })
    }

    async fn delete_deployment(
        &self,
        target: &Target,
        action: UnmanageAction,
    ) -> Result<DeleteOutcome> {
        let arm_scope = scope(&target.scope);
        let handle = match target.engine {
            Engine::Deployment => {
                self.client
                    .delete_deployment(&arm_scope, &target.name)
                    .await
            }
            Engine::Stack => {
                self.client
                    .delete_stack(&arm_scope, &target.name, unmanage(action))
                    .await
            }
        }
        .map_err(error)?;
        Ok(delete_outcome(handle))
    }

    async fn delete_resource(&self, id: &str) -> Result<DeleteOutcome> {
        let handle = self.client.delete_resource_by_id(id).await.map_err(error)?;
        Ok(delete_outcome(handle))
    }

    async fn resource_exists(&self, id: &str) -> Result<bool> {
        Ok(self
            .client
            .get_resource_by_id(id)
            .await
            .map_err(error)?
            .is_some())
    }

    fn has_spare_write_budget(&self, subscription_id: &str, priority: Priority) -> bool {
        self.client
            .has_spare_budget(subscription_id, RequestClass::Write, arm_priority(priority))
    }

    async fn what_if(
        &self,
        request: &DeploymentRequest,
        priority: Priority,
    ) -> Result<WhatIfOutcome> {
        let target = &request.target;
        let client = self.client.with_priority(arm_priority(priority));
        let started = match client
            .what_if(
                &scope(&target.scope),
                &target.name,
                &deployment_body(request),
            )
            .await
        {
            Err(e) if e.source_kind == ErrorSource::NoSpareBudget => {
                return Ok(WhatIfOutcome::Deferred);
            }
            started => started.map_err(error)?,
        };
        Ok(match started {
            WhatIfStart::Done(result) => what_if_outcome(result),
            WhatIfStart::Running(handle) => WhatIfOutcome::Running {
                retry_after: Some(handle.wait_time()),
                operation_url: handle.operation_url,
            },
        })
    }

    async fn poll_what_if(&self, operation_url: &str) -> Result<WhatIfOutcome> {
        let mut handle = LroHandle {
            operation: LroOperation::WhatIf,
            kind: LroKind::Location,
            operation_url: operation_url.to_owned(),
            resource_url: operation_url.to_owned(),
            not_before: None,
            correlation_id: uuid::Uuid::new_v4().to_string(),
        };
        Ok(match self.client.poll(&mut handle).await.map_err(error)? {
            PollResult::InProgress { retry_after, .. } => WhatIfOutcome::Running {
                operation_url: operation_url.to_owned(),
                retry_after: Some(retry_after),
            },
            PollResult::Done(body) => {
                what_if_outcome(ArmClient::what_if_result(body).map_err(error)?)
            }
            PollResult::Failed(e) => WhatIfOutcome::Failed(failure(&e)),
        })
    }
}

/// The client's own retry wait is capped so that a long `Retry-After` comes back to the
/// reconciler (which requeues) instead of blocking a worker.
pub fn controller_options() -> anyhow::Result<ArmOptions> {
    Ok(ArmOptions::from_env()?
        .with_max_retry_wait(Duration::from_secs(5))
        .with_default_poll_interval(Duration::from_secs(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_details_are_flattened_outermost_first() {
        let nested = arm::ErrorDetail {
            code: "DeploymentFailed".into(),
            message: "m".into(),
            details: vec![arm::ErrorDetail {
                code: "Conflict".into(),
                message: "inner".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let flat = details(&[nested]);
        assert_eq!(
            flat.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(),
            ["DeploymentFailed", "Conflict"]
        );
    }

    #[test]
    fn states_are_case_insensitive() {
        assert_eq!(state("Succeeded"), ProvisioningState::Succeeded);
        assert_eq!(state("succeeded"), ProvisioningState::Succeeded);
        assert_eq!(state("failed"), ProvisioningState::Failed);
        assert_eq!(state("Canceled"), ProvisioningState::Canceled);
        assert_eq!(state("deploying"), ProvisioningState::Running);
        assert_eq!(state("Accepted"), ProvisioningState::Running);
    }

    #[test]
    fn client_errors_are_classified() {
        let invalid = error(ArmError::invalid_input("InvalidTemplate", "bad"));
        assert!(!invalid.is_retryable());
        assert_eq!(invalid.reason(), "InvalidTemplate");
    }
}
