//! An in-memory [`AzureApi`]: deployments and resources by name, the ARM calls made, and
//! failures queued per call.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;

use crate::azure::{
    ArmFailure, AzureApi, AzureApiFactory, Credentials, DeleteOutcome, DeploymentObservation,
    DeploymentRequest, OperationKind, OperationStatus, Priority, ProvisioningState, StartOutcome,
    Target, UnmanageAction, WhatIfOutcome,
};
use crate::error::{Error, Result};

/// An ARM call, as the fake records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    EnsureResourceGroup,
    StartDeployment,
    PollOperation,
    GetDeployment,
    DeleteDeployment,
    DeleteResource,
    ResourceExists,
    WhatIf,
    PollWhatIf,
}

impl Call {
    /// Whether the call changes something in Azure.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Call::EnsureResourceGroup
                | Call::StartDeployment
                | Call::DeleteDeployment
                | Call::DeleteResource
        )
    }
}

/// Deployments finish at once: the PUT stores the deployment in its final state, which
/// the next poll reports.
#[derive(Default)]
pub struct FakeAzure {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Whether writes at `Priority::Spare` or `Priority::Idle` find no such budget (by
    /// default they find it).
    no_spare_writes: bool,
    calls: Vec<Call>,
    deployments: HashMap<String, DeploymentObservation>,
    resources: BTreeSet<String>,
    /// Resources the next deployment creates.
    creates: Vec<String>,
    /// How the next deployments end: `None` succeeds.
    deployment_failure: Option<ArmFailure>,
    /// Errors answered (in order) instead of carrying out the call.
    refusals: HashMap<Call, VecDeque<(String, String)>>,
}

impl FakeAzure {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Deployments from now on create these resources.
    pub fn creates(&self, ids: &[&str]) {
        self.state().creates = ids.iter().map(|id| (*id).to_owned()).collect();
    }

    /// Deployments from now on end Failed with this error.
    pub fn deployments_fail(&self, failure: ArmFailure) {
        self.state().deployment_failure = Some(failure);
    }

    /// The next `call` is refused by ARM with `code`.
    pub fn refuse_next(&self, call: Call, code: &str, message: &str) {
        self.state()
            .refusals
            .entry(call)
            .or_default()
            .push_back((code.to_owned(), message.to_owned()));
    }

    /// Whether writes at `Priority::Spare` and `Priority::Idle` find such budget from now on.
    pub fn spare_writes(&self, spare: bool) {
        self.state().no_spare_writes = !spare;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.state().calls.clear();
    }

    pub fn resources(&self) -> Vec<String> {
        self.state().resources.iter().cloned().collect()
    }

    pub fn deployment(&self, name: &str) -> Option<DeploymentObservation> {
        self.state().deployments.get(name).cloned()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the call; answers a queued refusal instead when there is one.
    fn call(&self, call: Call) -> Result<MutexGuard<'_, State>> {
        let mut state = self.state();
        state.calls.push(call);
        match state.refusals.get_mut(&call).and_then(VecDeque::pop_front) {
            Some((code, message)) => Err(Error::arm(code, message, vec![])),
            None => Ok(state),
        }
    }
}

#[async_trait]
impl AzureApi for FakeAzure {
    async fn ensure_resource_group(&self, _: &str, _: &str, _: &str) -> Result<()> {
        drop(self.call(Call::EnsureResourceGroup)?);
        Ok(())
    }

    async fn start_deployment(&self, request: &DeploymentRequest) -> Result<StartOutcome> {
        let mut state = self.call(Call::StartDeployment)?;
        let failure = state.deployment_failure.clone();
        let resources = if failure.is_none() {
            state.creates.clone()
        } else {
            vec![]
        };
        state.resources.extend(resources.iter().cloned());
        let observation = DeploymentObservation {
            id: Some(format!("/fake/deployments/{}", request.target.name)),
            provisioning_state_text: if failure.is_none() {
                "Succeeded"
            } else {
                "Failed"
            }
            .into(),
            state: if failure.is_none() {
                ProvisioningState::Succeeded
            } else {
                ProvisioningState::Failed
            },
            correlation_id: None,
            outputs: vec![],
            resources,
            error: failure,
        };
        state
            .deployments
            .insert(request.target.name.clone(), observation);
        Ok(StartOutcome::Accepted {
            operation_url: Some(format!("https://fake/operations/{}", request.target.name)),
            retry_after: None,
        })
    }

    async fn poll_operation(&self, _: OperationKind, url: &str) -> Result<OperationStatus> {
        let state = self.call(Call::PollOperation)?;
        let name = url.rsplit('/').next().unwrap_or_default();
        Ok(match state.deployments.get(name) {
            Some(DeploymentObservation {
                error: Some(failure),
                ..
            }) => OperationStatus::Failed(failure.clone()),
            _ => OperationStatus::Succeeded,
        })
    }

    async fn get_deployment(&self, target: &Target) -> Result<Option<DeploymentObservation>> {
        let state = self.call(Call::GetDeployment)?;
        Ok(state.deployments.get(&target.name).cloned())
    }

    async fn delete_deployment(
        &self,
        target: &Target,
        unmanage: UnmanageAction,
    ) -> Result<DeleteOutcome> {
        let mut state = self.call(Call::DeleteDeployment)?;
        if let Some(deployment) = state.deployments.remove(&target.name)
            && unmanage == UnmanageAction::Delete
        {
            for id in &deployment.resources {
                state.resources.remove(id);
            }
        }
        Ok(DeleteOutcome::Done)
    }

    async fn delete_resource(&self, id: &str) -> Result<DeleteOutcome> {
        self.call(Call::DeleteResource)?.resources.remove(id);
        Ok(DeleteOutcome::Done)
    }

    async fn resource_exists(&self, id: &str) -> Result<bool> {
        Ok(self.call(Call::ResourceExists)?.resources.contains(id))
    }

    fn has_spare_write_budget(&self, _: &str, priority: Priority) -> bool {
        priority == Priority::Queued || !self.state().no_spare_writes
    }

    async fn what_if(&self, _: &DeploymentRequest, priority: Priority) -> Result<WhatIfOutcome> {
        if !self.has_spare_write_budget("", priority) {
            return Ok(WhatIfOutcome::Deferred);
        }
        // Azure as the template says: no changes.
        drop(self.call(Call::WhatIf)?);
        Ok(WhatIfOutcome::Done(vec![]))
    }

    async fn poll_what_if(&self, _: &str) -> Result<WhatIfOutcome> {
        drop(self.call(Call::PollWhatIf)?);
        Ok(WhatIfOutcome::Done(vec![]))
    }
}

/// Every credential gets the same fake.
impl AzureApiFactory for Arc<FakeAzure> {
    fn api(&self, _: &Credentials) -> Result<Arc<dyn AzureApi>> {
        Ok(self.clone())
    }
}
