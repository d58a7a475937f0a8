//! ARM's error envelope: `{"error":{"code","message","target","details"}}` with the
//! code repeated in `x-ms-error-code`.

use serde::Serialize;
use serde_json::{Value, json};

/// One entry of an error's `details`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// An error as ARM reports it, with the HTTP status it travels with.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub target: Option<String>,
    pub details: Vec<ErrorDetail>,
}

impl ArmError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            target: None,
            details: Vec::new(),
        }
    }

    pub fn bad_request(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn not_found(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    pub fn conflict(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    pub fn with_details(mut self, details: Vec<ErrorDetail>) -> Self {
        self.details = details;
        self
    }

    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// The inner object (`code`, `message`, `details`), as embedded in deployment
    /// bodies and operation statuses.
    pub fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(target) = &self.target {
            error["target"] = json!(target);
        }
        if !self.details.is_empty() {
            error["details"] = json!(self.details);
        }
        error
    }

    /// The full response envelope.
    pub fn envelope(&self) -> Value {
        json!({ "error": self.body() })
    }
}

/// 405 for a method the addressed route does not serve.
pub(crate) fn method_not_allowed(method: &hyper::Method) -> ArmError {
    ArmError::new(
        405,
        "MethodNotAllowed",
        format!("The requested method '{method}' is not allowed on this resource."),
    )
}

pub(crate) fn resource_group_not_found(name: &str) -> ArmError {
    ArmError::not_found(
        "ResourceGroupNotFound",
        format!("Resource group '{name}' could not be found."),
    )
}

/// A deployment (or stack) whose resource operations failed, with their errors.
pub(crate) fn deployment_failed(details: Vec<ErrorDetail>) -> ArmError {
    ArmError::new(
        400,
        "DeploymentFailed",
        "At least one resource deployment operation failed. Please list deployment operations for details. Please see https://aka.ms/arm-deployment-operations for usage details.",
    )
    .with_details(details)
}
