//! Routes ARM requests to the handler of the resource kind they address.

mod deployments;
mod locks;
mod resources;
mod stacks;
mod what_if;

use std::sync::Arc;

use hyper::Method;

use crate::error::{ArmError, method_not_allowed};
use crate::http::{ArmRequest, Handled};
use crate::route::{DeploymentAction, Route, Scope};
use crate::shared::Shared;

/// Answers an authenticated, admitted ARM request.
pub(crate) fn dispatch(shared: &Arc<Shared>, route: &Route, request: &ArmRequest) -> Handled {
    let method = &request.method;
    match route {
        Route::ResourceGroups { subscription } if method == Method::GET => {
            resources::list_groups(shared, subscription)
        }
        Route::ResourceGroup { subscription, name } => match *method {
            Method::PUT => resources::put_group(shared, request, subscription, name),
            Method::GET | Method::HEAD => resources::get_group(shared, request, subscription, name),
            Method::DELETE => resources::delete_group(shared, request, subscription, name),
            _ => Err(method_not_allowed(method)),
        },
        Route::DeploymentList { scope } if method == Method::GET => {
            deployments::list(shared, scope)
        }
        Route::Deployment {
            scope,
            name,
            action,
            operation,
        } => deployment(shared, request, scope, name, *action, operation.as_deref()),
        Route::Stack { scope, name } => match *method {
            Method::PUT => stacks::put(shared, request, scope, name),
            Method::GET => stacks::get(shared, scope, name),
            Method::DELETE => stacks::delete(shared, request, scope, name),
            _ => Err(method_not_allowed(method)),
        },
        Route::Operation {
            subscription,
            id,
            status,
        } if method == Method::GET => {
            resources::poll_operation(shared, request, subscription, id, *status)
        }
        Route::Provider {
            subscription,
            namespace,
        } if method == Method::GET => resources::provider(subscription, namespace),
        Route::Resource {
            id, resource_type, ..
        } => match *method {
            Method::PUT => resources::put_resource(shared, request, id, resource_type),
            Method::GET => resources::get_resource(shared, request, id, resource_type),
            Method::DELETE => resources::delete_resource(shared, request, id, resource_type),
            _ => Err(method_not_allowed(method)),
        },
        Route::Lock {
            scope,
            name: Some(name),
            ..
        } => match *method {
            Method::PUT => locks::put(shared, request, scope, name),
            Method::GET => locks::get(shared, request, scope, name),
            Method::DELETE => locks::delete(shared, request, scope, name),
            _ => Err(method_not_allowed(method)),
        },
        Route::Lock {
            scope, name: None, ..
        } if method == Method::GET => locks::list(shared, request, scope),
        Route::UnservedDeploymentScope { scope } => Err(ArmError::bad_request(
            "UnsupportedDeploymentScope",
            format!(
                "Deployments at scope '{}' are not implemented by the ARM simulator; it serves resource group and subscription scopes.",
                if scope == "/" { "/ (tenant)" } else { scope }
            ),
        )),
        _ => Err(ArmError::not_found(
            "NotFound",
            "The requested path is not served by the ARM simulator.",
        )),
    }
}

/// A deployment, or one of its actions.
fn deployment(
    shared: &Arc<Shared>,
    request: &ArmRequest,
    scope: &Scope,
    name: &str,
    action: DeploymentAction,
    operation: Option<&str>,
) -> Handled {
    use DeploymentAction as A;
    let method = &request.method;
    match (action, method) {
        (A::Itself, &Method::PUT) => deployments::put(shared, request, scope, name),
        (A::Itself, &Method::GET) => deployments::get(shared, scope, name),
        (A::Itself, &Method::DELETE) => deployments::delete(shared, request, scope, name),
        (A::Cancel, &Method::POST) => deployments::cancel(shared, scope, name),
        (A::Validate, &Method::POST) => deployments::validate(shared, request, scope, name),
        (A::WhatIf, &Method::POST) => what_if::what_if(shared, request, scope, name),
        (A::Operations, &Method::GET) => deployments::operations(shared, scope, name),
        (A::OperationStatus, &Method::GET) => {
            deployments::operation_status(shared, operation.unwrap_or_default())
        }
        _ => Err(method_not_allowed(method)),
    }
}
