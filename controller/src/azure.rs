//! The slice of Azure Resource Manager the controller needs, as a trait.
//!
//! The reconciler talks to [`AzureApi`] only; `arm_adapter` implements it with the `arm`
//! crate, unit tests with an in-memory fake.

use std::{fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::Result;

/// Where a deployment goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentScope {
    ResourceGroup {
        subscription_id: String,
        resource_group: String,
    },
    /// ARM keeps subscription-scope deployment metadata in a location.
    Subscription {
        subscription_id: String,
        location: String,
    },
}

impl DeploymentScope {
    pub fn subscription_id(&self) -> &str {
        match self {
            DeploymentScope::ResourceGroup {
                subscription_id, ..
            }
            | DeploymentScope::Subscription {
                subscription_id, ..
            } => subscription_id,
        }
    }
}

/// ARM object that carries the deployment: the spec's own choice.
pub use crds::Engine;

/// A deployment or deployment stack, addressed by its stable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scope: DeploymentScope,
    pub engine: Engine,
    pub name: String,
}

/// What a stack does with resources it stops managing (also on stack deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnmanageAction {
    Delete,
    Detach,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Incremental,
    Complete,
}

/// Template parameters as ARM receives them. `Debug` shows names only: values may be
/// secrets.
#[derive(Clone, PartialEq, Default)]
pub struct Parameters(pub Map<String, Value>);

impl fmt::Debug for Parameters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A complete deployment request, built purely from the object and its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRequest {
    pub target: Target,
    pub template: Value,
    pub parameters: Parameters,
    pub mode: Mode,
    /// Resource group to create before deploying, with its location.
    pub ensure_resource_group: Option<String>,
    pub on_unmanage: UnmanageAction,
    /// Hash of everything above that reaches ARM; equal hashes need no ARM write.
    pub applied_hash: String,
}

/// Answer to a deployment PUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// ARM accepted the request; poll `operation_url` (or the deployment itself when ARM
    /// gave none).
    Accepted {
        operation_url: Option<String>,
        retry_after: Option<Duration>,
    },
    /// 409 `DeploymentActive`: a deployment of this name is running; poll it.
    AlreadyRunning,
}

/// What a stored operation URL belongs to, so that it can be polled after a restart.
/// Deployment URLs are `Azure-AsyncOperation` status URLs, deletion URLs `Location` URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Deploy(Engine),
    DeleteStack,
    /// The deletion of a deployment's history record.
    DeleteRecord,
}

/// State of a long-running operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationStatus {
    Running { retry_after: Option<Duration> },
    Succeeded,
    Failed(ArmFailure),
}

/// An error ARM reported for a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmFailure {
    pub code: String,
    pub message: String,
    pub details: Vec<crate::error::ArmDetail>,
}

/// Provisioning state, folded to what the controller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisioningState {
    Running,
    Succeeded,
    Failed,
    Canceled,
}

/// One template output.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub name: String,
    pub value: Value,
    /// `SecureString`/`SecureObject` outputs never go to status.
    pub secure: bool,
}

/// What a GET of the deployment or stack shows.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentObservation {
    pub id: Option<String>,
    /// The state as ARM spells it, for status.
    pub provisioning_state_text: String,
    pub state: ProvisioningState,
    pub correlation_id: Option<String>,
    pub outputs: Vec<Output>,
    /// Ids of the resources the deployment created (outputResources / stack resources).
    pub resources: Vec<String>,
    pub error: Option<ArmFailure>,
}

impl DeploymentObservation {
    /// A plain resource (or resource group) that exists: it stands for itself.
    pub fn existing_resource(id: &str) -> Self {
        DeploymentObservation {
            id: Some(id.to_owned()),
            provisioning_state_text: "Succeeded".into(),
            state: ProvisioningState::Succeeded,
            correlation_id: None,
            outputs: vec![],
            resources: vec![id.to_owned()],
            error: None,
        }
    }
}

/// Answer to a DELETE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Gone (200/204/404).
    Done,
    /// Accepted; poll `operation_url` when given.
    Accepted {
        operation_url: Option<String>,
        retry_after: Option<Duration>,
    },
}

/// Where a what-if stands.
#[derive(Debug, Clone, PartialEq)]
pub enum WhatIfOutcome {
    /// Finished: ARM's list of changes.
    Done(Vec<crate::drift::ResourceChange>),
    /// Running: poll `operation_url` after `retry_after`.
    Running {
        operation_url: String,
        retry_after: Option<Duration>,
    },
    /// ARM could not compute it (for example the template no longer evaluates).
    Failed(ArmFailure),
    /// Not sent: at [`Priority::Spare`] or [`Priority::Idle`], the subscription's write
    /// budget had nothing to spare.
    Deferred,
}

/// What a request may take from the subscription's ARM budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Waits its turn: deployments, deletions, polls, checks a user asked for.
    Queued,
    /// Only what is spare, else it is not sent: periodic re-checks, which can as well run
    /// a little later, never delay a deployment.
    Spare,
    /// Only what is spare once deployments have left the budget alone for 10 seconds:
    /// periodic re-checks then do not even share the controller's workers and the
    /// apiserver with a stream of deployments.
    Idle,
}

/// The ARM calls the reconciler makes, for one credential.
#[async_trait]
pub trait AzureApi: Send + Sync {
    async fn ensure_resource_group(
        &self,
        subscription_id: &str,
        name: &str,
        location: &str,
    ) -> Result<()>;
    async fn start_deployment(&self, request: &DeploymentRequest) -> Result<StartOutcome>;
    async fn poll_operation(
        &self,
        kind: OperationKind,
        operation_url: &str,
    ) -> Result<OperationStatus>;
    /// `None` when the deployment (or stack) does not exist.
    async fn get_deployment(&self, target: &Target) -> Result<Option<DeploymentObservation>>;
    /// Stack: delete with `unmanage`; Deployment: delete the history record only.
    async fn delete_deployment(
        &self,
        target: &Target,
        unmanage: UnmanageAction,
    ) -> Result<DeleteOutcome>;
    async fn delete_resource(&self, id: &str) -> Result<DeleteOutcome>;
    async fn resource_exists(&self, id: &str) -> Result<bool>;
    /// Whether a write to this subscription at `priority` would be sent now without
    /// waiting (ARM counts a what-if as a write). Takes nothing.
    fn has_spare_write_budget(&self, subscription_id: &str, priority: Priority) -> bool;
    /// Starts a what-if of the request (a deployment what-if at the target's scope and
    /// name, for either engine): reads only, changes nothing. At [`Priority::Spare`] or
    /// [`Priority::Idle`] without such budget it is not sent ([`WhatIfOutcome::Deferred`]).
    async fn what_if(
        &self,
        request: &DeploymentRequest,
        priority: Priority,
    ) -> Result<WhatIfOutcome>;
    /// Polls a running what-if.
    async fn poll_what_if(&self, operation_url: &str) -> Result<WhatIfOutcome>;
}

/// Service principal credentials read from a Secret. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecretCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for ClientSecretCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecretCredentials")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Whose identity calls ARM for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// From `credentialsSecretRef` or the namespace's `azure-credentials` Secret.
    ClientSecret(ClientSecretCredentials),
    /// The operator's own identity (environment, workload or managed identity).
    Operator,
}

/// Hands out an [`AzureApi`] per credential (implementations cache them).
pub trait AzureApiFactory: Send + Sync {
    fn api(&self, credentials: &Credentials) -> Result<Arc<dyn AzureApi>>;
}
