//! The validate step: from the raw spec and what it refers to (the credentials'
//! subscription, the template) to a [`ValidatedSpec`] that the later steps take as given.
//! Pure; every refusal carries the [`Category`] that becomes its Event and condition reason.

use std::time::Duration;

use crds::{AdoptedId, AdoptedKind, AzureResource, AzureResourceSpec, DeletionPolicy, Scope};
use kube::ResourceExt;
use serde_json::Value;

use crate::azure::{DeploymentScope, Engine, Target, UnmanageAction};
use crate::error::Error;

/// What kind of mistake a refused spec makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// The spec is inconsistent in a way the schema cannot express.
    Spec,
    /// The template is not usable.
    Template,
}

impl Category {
    /// The Event and `Ready` condition reason of a refusal of this category.
    pub fn reason(self) -> &'static str {
        match self {
            Category::Spec => "InvalidSpec",
            Category::Template => "InvalidTemplate",
        }
    }
}

/// Why a spec was refused. Terminal: only a change of the object (or its inputs) helps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub category: Category,
    pub message: String,
}

impl Invalid {
    fn spec(message: impl Into<String>) -> Self {
        Invalid {
            category: Category::Spec,
            message: message.into(),
        }
    }
}

impl From<Invalid> for Error {
    fn from(invalid: Invalid) -> Self {
        match invalid.category {
            Category::Spec => Error::InvalidSpec(invalid.message),
            Category::Template => Error::InvalidTemplate(invalid.message),
        }
    }
}

/// A spec checked against what it refers to, with everything derived from it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedSpec {
    /// What the object stands for in Azure.
    pub owned: Owned,
    /// How often a Ready object is checked against Azure (`None`: never).
    pub sync_interval: Option<Duration>,
}

/// Validates a live object. `credential_subscription_id` is the fallback of
/// `spec.subscriptionId`; `template` is the resolved template of an object that deploys
/// one (`None` for an adopted object).
pub fn validate(
    object: &AzureResource,
    credential_subscription_id: Option<&str>,
    template: Option<&Value>,
) -> Result<ValidatedSpec, Invalid> {
    let owned = owned(object, credential_subscription_id)?;
    if template.is_some_and(|t| !t.is_object()) {
        return Err(Invalid {
            category: Category::Template,
            message: "the template is not a JSON object".into(),
        });
    }
    let sync_interval = object
        .spec
        .sync_interval()
        .map_err(|e| Invalid::spec(e.to_string()))?;
    Ok(ValidatedSpec {
        owned,
        sync_interval,
    })
}

/// The ARM target of an object that deploys its template.
pub fn target(
    object: &AzureResource,
    credential_subscription_id: Option<&str>,
) -> Result<Target, Invalid> {
    let spec = &object.spec;
    let subscription_id = spec
        .subscription_id
        .as_deref()
        .or(credential_subscription_id)
        .ok_or_else(|| {
            Invalid::spec(
                "no subscription: set spec.subscriptionId or subscriptionId in the credentials",
            )
        })?
        .to_owned();
    let scope = match spec.scope {
        Scope::ResourceGroup => DeploymentScope::ResourceGroup {
            subscription_id,
            resource_group: spec.resource_group.clone().ok_or_else(|| {
                Invalid::spec("spec.resourceGroup is required for scope ResourceGroup")
            })?,
        },
        Scope::Subscription => DeploymentScope::Subscription {
            subscription_id,
            location: spec
                .location
                .clone()
                .ok_or_else(|| Invalid::spec("spec.location is required for scope Subscription"))?,
        },
    };
    let engine = spec.engine;
    let uid = object
        .uid()
        .ok_or_else(|| Invalid::spec("object has no uid"))?;
    Ok(Target {
        scope,
        engine,
        name: crds::deployment_name(
            &object.namespace().unwrap_or_default(),
            &object.name_any(),
            &uid,
        ),
    })
}

/// The Azure object an object stands for: what is observed and, on deletion, removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned {
    /// A deployment or deployment stack (deployed from the template, or adopted).
    Deployment(Target),
    /// An adopted resource group or other resource, removed by id.
    Resource(String),
}

impl Owned {
    /// The deployment or stack an action on one needs; an adopted plain resource has none.
    pub fn deployment(&self) -> Result<&Target, Invalid> {
        match self {
            Owned::Deployment(target) => Ok(target),
            Owned::Resource(id) => Err(Invalid::spec(format!(
                "{id} is not a deployment or deployment stack"
            ))),
        }
    }
}

/// What the object owns in Azure: its own deployment, or the adopted id.
pub fn owned(
    object: &AzureResource,
    credential_subscription_id: Option<&str>,
) -> Result<Owned, Invalid> {
    let Some(adopt) = &object.spec.adopt else {
        return target(object, credential_subscription_id).map(Owned::Deployment);
    };
    let adopted = AdoptedId::parse(&adopt.id).map_err(|e| Invalid::spec(e.to_string()))?;
    let scope = match adopted.resource_group {
        Some(resource_group) => DeploymentScope::ResourceGroup {
            subscription_id: adopted.subscription_id,
            resource_group,
        },
        // Reads and deletes of a subscription-level deployment do not use its location.
        None => DeploymentScope::Subscription {
            subscription_id: adopted.subscription_id,
            location: object.spec.location.clone().unwrap_or_default(),
        },
    };
    Ok(match adopted.kind {
        AdoptedKind::Stack { name } => Owned::Deployment(Target {
            scope,
            engine: Engine::Stack,
            name,
        }),
        AdoptedKind::Deployment { name } => Owned::Deployment(Target {
            scope,
            engine: Engine::Deployment,
            name,
        }),
        AdoptedKind::ResourceGroup | AdoptedKind::Resource => Owned::Resource(adopted.id),
    })
}

/// How an object's Azure side is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Delete the deployment stack: ARM deletes (or detaches) what it manages.
    Stack,
    /// Delete the deployment's resources by id, children first, then its record.
    Deployment,
    /// Delete one adopted resource (or resource group) by id.
    Resource,
}

impl From<Engine> for Removal {
    fn from(engine: Engine) -> Self {
        match engine {
            Engine::Stack => Removal::Stack,
            Engine::Deployment => Removal::Deployment,
        }
    }
}

/// How deleting the object removes its Azure side. Read from the spec alone, and checking
/// nothing else, so that an orphaning delete needs no credentials and an object whose spec
/// went wrong in some other respect can still be deleted.
pub fn removal(spec: &AzureResourceSpec) -> Result<Removal, Invalid> {
    let Some(adopt) = &spec.adopt else {
        return Ok(match spec.engine {
            crds::Engine::Stack => Removal::Stack,
            crds::Engine::Deployment => Removal::Deployment,
        });
    };
    let adopted = AdoptedId::parse(&adopt.id).map_err(|e| Invalid::spec(e.to_string()))?;
    Ok(match adopted.kind {
        AdoptedKind::Stack { .. } => Removal::Stack,
        AdoptedKind::Deployment { .. } => Removal::Deployment,
        AdoptedKind::ResourceGroup | AdoptedKind::Resource => Removal::Resource,
    })
}

/// What a stack does with its resources on deletion, per `deletionPolicy`.
pub fn unmanage_action(policy: DeletionPolicy) -> UnmanageAction {
    match policy {
        DeletionPolicy::Delete => UnmanageAction::Delete,
        DeletionPolicy::Orphan => UnmanageAction::Detach,
    }
}

#[cfg(test)]
mod tests;
