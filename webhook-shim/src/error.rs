//! The JSON error body of the resource-driver API: `{"localizedMessage", "status"}`.

use serde::Serialize;

/// An error answered to Brent. The message is shown to users, so it never carries secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    localized_message: &'a str,
    status: u16,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: 500,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: 503,
            message: message.into(),
        }
    }

    pub fn with_status(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The `'X' is a required field ...` message the Python driver answered.
    pub fn missing_field(field: &str) -> Self {
        Self::bad_request(format!(
            "'{field}' is a required field but was not found in the request data body"
        ))
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(ErrorBody {
            localized_message: &self.message,
            status: self.status,
        })
        .unwrap_or_default()
    }
}

/// The answer for an apiserver refusal of `what`: its size and validation refusals are
/// the caller's (413, 400), conflicts and throttling are retried later (503).
pub(crate) fn kube_error(err: kube::Error, what: &str) -> ApiError {
    match err {
        kube::Error::Api(status) if status.code == 413 => {
            ApiError::with_status(413, format!("{what} is too large: {}", status.message))
        }
        kube::Error::Api(status) if status.code == 422 || status.code == 400 => {
            ApiError::bad_request(format!("{what} was rejected: {}", status.message))
        }
        kube::Error::Api(status) if status.code == 409 || status.code == 429 => {
            ApiError::unavailable(format!("{what}: {}; retry", status.message))
        }
        kube::Error::Api(status) => {
            ApiError::internal(format!("{what} failed: {}", status.message))
        }
        _ => ApiError::unavailable(format!("{what}: Kubernetes API unavailable")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_framework_shape() {
        let err = ApiError::missing_field("lifecycleName");
        assert_eq!(
            err.body(),
            serde_json::json!({
                "localizedMessage": "'lifecycleName' is a required field but was not found in the request data body",
                "status": 400
            })
        );
    }
}
