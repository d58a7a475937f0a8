//! The types the evaluator shares with the rest of the simulator: where a
//! deployment runs, what it plans, its typed values and its errors.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde_json::{Map, Value};

/// Where a deployment runs, as ARM's `resourceGroup()`, `subscription()` and
/// `deployment()` functions see it.
#[derive(Debug, Clone)]
pub struct DeploymentContext {
    pub tenant_id: String,
    pub subscription_id: String,
    /// `None` at subscription scope.
    pub resource_group: Option<ResourceGroupInfo>,
    pub deployment_name: String,
    /// The deployment's own `location` (subscription scope) if given.
    pub location: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ResourceGroupInfo {
    pub name: String,
    pub location: String,
    pub tags: Map<String, Value>,
}

/// Read access to what already exists, for `reference()` / `existing` resources.
/// Keys are full ARM resource ids, compared case-insensitively by the implementor.
pub trait ResourceLookup {
    fn get(&self, resource_id: &str) -> Option<Value>;
}

/// One resource the deployment creates or updates, in creation order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedResource {
    /// Full ARM id.
    pub id: String,
    pub resource_type: String,
    /// The full name as the template writes it (`parent/child` for child resources).
    pub name: String,
    pub api_version: String,
    /// The resource as a GET would return it: id, name, type, location, tags,
    /// sku/kind/identity when present, and `properties` including the runtime-only
    /// values ARM would add (endpoints, principal ids, provisioningState).
    pub body: Value,
    /// Ids of the resources this one waits for.
    pub depends_on: Vec<String>,
}

/// A value with ARM's capitalised type name (`String`, `Int`, `Bool`, `Object`,
/// `Array`, `SecureString`, `SecureObject`).
#[derive(Debug, Clone, PartialEq)]
pub struct TypedValue {
    pub type_name: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatedDeployment {
    /// Every resource created, nested deployments' resources included (each under its
    /// own scope), in an order that respects `dependsOn`. Nested deployments appear
    /// as `Microsoft.Resources/deployments` resources after their inner resources.
    pub resources: Vec<PlannedResource>,
    pub outputs: IndexMap<String, TypedValue>,
    /// Parameters as ARM reports them back on GET. Secure parameters keep their
    /// type (`SecureString`/`SecureObject`) and carry `Value::Null` instead of the value.
    pub parameters: IndexMap<String, TypedValue>,
}

/// A template ARM would reject before starting (synchronous 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TemplateError {
    /// `InvalidTemplate` or `InvalidTemplateDeployment`; `ResourceNotFound` when the
    /// template reads (`reference`, `list*`, `existing`) a resource that does not exist.
    pub code: String,
    pub message: String,
    pub target: Option<String>,
}

impl TemplateError {
    pub(crate) fn invalid_template(message: impl Into<String>) -> Self {
        Self {
            code: "InvalidTemplate".into(),
            message: message.into(),
            target: None,
        }
    }

    pub(crate) fn invalid_deployment(message: impl Into<String>) -> Self {
        Self {
            code: "InvalidTemplateDeployment".into(),
            message: message.into(),
            target: None,
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: "ResourceNotFound".into(),
            message: message.into(),
            target: None,
        }
    }

    /// Wraps the message the way ARM reports where an expression failed.
    pub(crate) fn within(mut self, what: &str, target: Option<&str>) -> Self {
        if !self
            .message
            .starts_with("Unable to process template language expressions")
        {
            self.message = format!(
                "Unable to process template language expressions for {what}. '{}'",
                self.message
            );
        }
        if self.target.is_none() {
            self.target = target.map(str::to_string);
        }
        self
    }
}

/// Scope a deployment targets beyond what [`DeploymentContext`] expresses.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TargetScope {
    /// Resource group if `DeploymentContext::resource_group` is set, else subscription.
    #[default]
    FromContext,
    /// A management group deployment (`/providers/Microsoft.Management/managementGroups/{name}`).
    ManagementGroup(String),
    /// A tenant deployment (`/`).
    Tenant,
}

/// Knobs of an evaluation that are not part of the deployment request.
#[derive(Debug, Clone, Default)]
pub struct EvaluationOptions {
    /// The clock `utcNow()` reads; the real clock when `None`.
    pub now: Option<DateTime<Utc>>,
    pub scope: TargetScope,
}
