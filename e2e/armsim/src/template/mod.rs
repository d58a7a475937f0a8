//! ARM template evaluation: turns a deployment's template and parameters into the
//! resources ARM would create and the outputs it would report.
//!
//! Interface shared by the HTTP layer of the simulator (which owns the inventory,
//! long-running behaviour and faults) and the evaluator (which owns the language).

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
    /// own scope), in an order that respects `dependsOn`.
    pub resources: Vec<PlannedResource>,
    pub outputs: IndexMap<String, TypedValue>,
    /// Parameters as ARM reports them back on GET (secure values omitted).
    pub parameters: IndexMap<String, TypedValue>,
}

/// A template ARM would reject before starting (synchronous 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct TemplateError {
    /// `InvalidTemplate` or `InvalidTemplateDeployment`.
    pub code: String,
    pub message: String,
    pub target: Option<String>,
}
