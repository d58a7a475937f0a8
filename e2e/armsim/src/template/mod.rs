//! ARM template evaluation: turns a deployment's template and parameters into the
//! resources ARM would create and the outputs it would report.
//!
//! Interface shared by the HTTP layer of the simulator (which owns the inventory,
//! long-running behaviour and faults) and the evaluator (which owns the language).
//! Entry points: [`evaluate`] and [`evaluate_with`].

mod evaluator;
mod expr;
mod extensions;
mod format;
mod functions;
mod hash;
mod model;
mod nested;
mod planner;
mod run;
mod runtime;
mod value;

use serde_json::{Map, Value};

pub use hash::{guid, unique_string};
pub use model::{
    DeploymentContext, EvaluatedDeployment, EvaluationOptions, PlannedResource, ResourceGroupInfo,
    ResourceLookup, TargetScope, TemplateError, TypedValue,
};

/// Adds to `body` (a resource as GET returns it) the runtime-only values its resource
/// provider would report: endpoints, principal ids, sub-resource ids,
/// `provisioningState`. Declared values are kept. Deterministic per resource id.
pub fn synthesize_runtime(
    body: &mut Map<String, Value>,
    resource_id: &str,
    resource_type: &str,
    tenant_id: &str,
) {
    runtime::synthesize(body, resource_id, resource_type, tenant_id);
}

/// What a `list*` action (`listKeys`, `listSecrets`, ...) on `resource_id` returns.
pub fn list_action(function: &str, resource_id: &str) -> Value {
    runtime::list_action(function, resource_id)
}

/// Evaluates `template` with ARM's `{"name": {"value": ...}}` `parameters` at the scope
/// `ctx` describes, reading pre-existing resources through `lookup`.
pub fn evaluate(
    template: &Value,
    parameters: &Value,
    ctx: &DeploymentContext,
    lookup: &dyn ResourceLookup,
) -> Result<EvaluatedDeployment, TemplateError> {
    evaluate_with(
        template,
        parameters,
        ctx,
        lookup,
        &EvaluationOptions::default(),
    )
}

/// [`evaluate`] with explicit [`EvaluationOptions`] (fixed clock, management group or
/// tenant scope).
pub fn evaluate_with(
    template: &Value,
    parameters: &Value,
    ctx: &DeploymentContext,
    lookup: &dyn ResourceLookup,
    options: &EvaluationOptions,
) -> Result<EvaluatedDeployment, TemplateError> {
    planner::evaluate_root(template, parameters, ctx, lookup, options)
}

#[cfg(test)]
mod tests;
