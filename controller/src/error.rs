//! Everything a reconcile can fail with, and how each failure is handled.
//!
//! Every variant has a stable `metric_label` (the `reason` label of the error metric) and a
//! `reason` (the Event reason and the `Ready` condition reason: the ARM error code when ARM
//! reported one). `is_retryable` decides between backoff and waiting for a change.

use std::time::Duration;

/// A reconcile failure. Messages never contain secret values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable credentials: the referenced Secret (or one of its keys) is absent.
    #[error("credentials missing: {0}")]
    CredentialsMissing(String),

    /// The credentials exist but Azure rejects them.
    #[error("credentials invalid: {0}")]
    CredentialsInvalid(String),

    /// A referenced Secret, ConfigMap or key does not exist (yet).
    #[error("{kind} {name:?} (key {key:?}) not found")]
    InputNotFound {
        kind: &'static str,
        name: String,
        key: String,
    },

    /// The spec is inconsistent in a way the schema cannot express.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),

    /// The template is not usable (not JSON, not an object, Bicep without a compiler).
    #[error("invalid template: {0}")]
    InvalidTemplate(String),

    /// ARM answered with an error or reported a failed deployment.
    #[error("{code}: {message}")]
    Arm {
        code: String,
        message: String,
        details: Vec<ArmDetail>,
        retryable: bool,
        retry_after: Option<Duration>,
    },

    /// ARM could not be reached or answered garbage.
    #[error("Azure Resource Manager unavailable: {message}")]
    ArmUnavailable {
        message: String,
        retry_after: Option<Duration>,
    },

    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    /// This replica may no longer hold the leader lease: no ARM write, and nothing recorded
    /// on the object (the leader reconciles it).
    #[error("this replica does not hold the leader lease")]
    NotLeader,
}

/// One nested ARM error detail: the shape `status.error.details` records.
pub use crds::ErrorDetail as ArmDetail;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether an ARM error code (with its details) is transient.
///
/// A `DeploymentFailed` wrapper is as retryable as all of its details are: a deployment
/// that failed on a conflict is worth retrying, one that failed on a bad SKU is not.
pub fn is_retryable_arm_code(code: &str, details: &[ArmDetail]) -> bool {
    if code.eq_ignore_ascii_case("DeploymentFailed") {
        return !details.is_empty() && details.iter().all(|d| arm::is_retryable_code(&d.code));
    }
    arm::is_retryable_code(code)
}

/// Whether a recorded failure (`status.error`) is worth another attempt: retryable ARM
/// codes and the operator-side reasons that resolve themselves or on an input change.
pub fn is_retryable_reason(code: &str, details: &[ArmDetail]) -> bool {
    const OPERATOR_RETRYABLE: &[&str] = &[
        "CredentialsMissing",
        "CredentialsInvalid",
        "InputNotFound",
        "ArmUnavailable",
        "KubernetesApiError",
    ];
    OPERATOR_RETRYABLE.contains(&code) || is_retryable_arm_code(code, details)
}

impl Error {
    /// Stable, low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::CredentialsMissing(_) => "credentials_missing",
            Error::CredentialsInvalid(_) => "credentials_invalid",
            Error::InputNotFound { .. } => "input_not_found",
            Error::InvalidSpec(_) => "invalid_spec",
            Error::InvalidTemplate(_) => "invalid_template",
            Error::Arm {
                retryable: true, ..
            } => "arm_retryable",
            Error::Arm {
                retryable: false, ..
            } => "arm_terminal",
            Error::ArmUnavailable { .. } => "arm_unavailable",
            Error::NotLeader => "not_leader",
            Error::Kube(_) => "kube",
        }
    }

    /// Event reason and `Ready` condition reason (PascalCase; the ARM code for ARM errors).
    pub fn reason(&self) -> String {
        match self {
            Error::CredentialsMissing(_) => "CredentialsMissing".into(),
            Error::CredentialsInvalid(_) => "CredentialsInvalid".into(),
            Error::InputNotFound { .. } => "InputNotFound".into(),
            Error::InvalidSpec(_) => "InvalidSpec".into(),
            Error::InvalidTemplate(_) => "InvalidTemplate".into(),
            Error::Arm { code, .. } => code.clone(),
            Error::ArmUnavailable { .. } => "ArmUnavailable".into(),
            Error::NotLeader => "NotLeader".into(),
            Error::Kube(_) => "KubernetesApiError".into(),
        }
    }

    /// Retryable errors are retried with backoff; the others wait for the object or one
    /// of its inputs to change.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::CredentialsMissing(_)
            | Error::CredentialsInvalid(_)
            | Error::InputNotFound { .. }
            | Error::ArmUnavailable { .. }
            | Error::NotLeader
            | Error::Kube(_) => true,
            Error::InvalidSpec(_) | Error::InvalidTemplate(_) => false,
            Error::Arm { retryable, .. } => *retryable,
        }
    }

    /// The earliest moment ARM allows another request, when it said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Arm { retry_after, .. } | Error::ArmUnavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// Builds an ARM error, classifying it by its code.
    pub fn arm(
        code: impl Into<String>,
        message: impl Into<String>,
        details: Vec<ArmDetail>,
    ) -> Self {
        let code = code.into();
        let retryable = is_retryable_arm_code(&code, &details);
        Error::Arm {
            code,
            message: message.into(),
            details,
            retryable,
            retry_after: None,
        }
    }
}

/// Delay before retry number `failures` (1-based): exponential from 5 s, capped at
/// 5 min, with ±20 % jitter so that many objects failing together do not retry together;
/// never earlier than ARM's `Retry-After`.
pub fn backoff(failures: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let base = Duration::from_secs(5);
    let cap = Duration::from_secs(300);
    let exponent = failures.saturating_sub(1).min(16);
    let raw = base.saturating_mul(1u32 << exponent).min(cap);
    let jittered = raw.mul_f64(1.0 + 0.2 * jitter.clamp(-1.0, 1.0));
    retry_after.map_or(jittered, |ra| jittered.max(ra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(code: &str) -> ArmDetail {
        ArmDetail {
            code: code.into(),
            message: "m".into(),
            target: None,
        }
    }

    #[test]
    fn contract_codes_are_classified() {
        for code in [
            "SubscriptionRequestsThrottled",
            "AnotherOperationInProgress",
            "Conflict",
            "ResourceGroupNotFound",
        ] {
            assert!(Error::arm(code, "m", vec![]).is_retryable(), "{code}");
        }
        for code in [
            "InvalidTemplate",
            "InvalidTemplateDeployment",
            "InvalidParameter",
            "BadRequest",
            "LocationRequired",
            "RequestDisallowedByPolicy",
            "SkuNotAvailable",
        ] {
            assert!(!Error::arm(code, "m", vec![]).is_retryable(), "{code}");
        }
    }

    #[test]
    fn deployment_failed_follows_its_details() {
        assert!(is_retryable_arm_code(
            "DeploymentFailed",
            &[detail("Conflict"), detail("AnotherOperationInProgress")]
        ));
        assert!(!is_retryable_arm_code(
            "DeploymentFailed",
            &[detail("Conflict"), detail("SkuNotAvailable")]
        ));
        assert!(!is_retryable_arm_code("DeploymentFailed", &[]));
    }

    #[test]
    fn the_arm_crate_decides_which_codes_are_transient() {
        for code in [
            "ResourceGroupBeingDeleted",
            "RetryableError",
            "ServerTimeout",
            "ServiceUnavailable",
            "ExpiredAuthenticationToken",
        ] {
            assert!(is_retryable_arm_code(code, &[]), "{code}");
            assert!(Error::arm(code, "m", vec![]).is_retryable(), "{code}");
        }
        assert!(!is_retryable_arm_code("SkuNotAvailable", &[]));
    }

    #[test]
    fn recorded_operator_reasons_are_retryable() {
        for e in [
            Error::CredentialsMissing("x".into()),
            Error::CredentialsInvalid("x".into()),
            Error::InputNotFound {
                kind: "Secret",
                name: "n".into(),
                key: "k".into(),
            },
            Error::ArmUnavailable {
                message: "x".into(),
                retry_after: None,
            },
        ] {
            assert!(is_retryable_reason(&e.reason(), &[]), "{e}");
        }
        assert!(!is_retryable_reason("InvalidSpec", &[]));
        assert!(!is_retryable_reason("InvalidTemplate", &[]));
    }

    #[test]
    fn reason_is_the_arm_code() {
        let e = Error::arm("InvalidTemplate", "bad", vec![]);
        assert_eq!(e.reason(), "InvalidTemplate");
        assert_eq!(e.metric_label(), "arm_terminal");
        assert_eq!(e.to_string(), "InvalidTemplate: bad");
    }

    #[test]
    fn operator_side_errors_have_fixed_reasons() {
        assert_eq!(
            Error::CredentialsMissing("x".into()).reason(),
            "CredentialsMissing"
        );
        assert!(Error::CredentialsInvalid("x".into()).is_retryable());
        assert!(!Error::InvalidSpec("x".into()).is_retryable());
        assert_eq!(
            Error::InvalidTemplate("x".into()).metric_label(),
            "invalid_template"
        );
    }

    #[test]
    fn backoff_grows_caps_and_respects_retry_after() {
        assert_eq!(backoff(1, None, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(2, None, 0.0), Duration::from_secs(10));
        assert_eq!(backoff(4, None, 0.0), Duration::from_secs(40));
        assert_eq!(backoff(40, None, 0.0), Duration::from_secs(300));
        assert_eq!(backoff(1, None, 1.0), Duration::from_secs(6));
        assert_eq!(backoff(1, None, -1.0), Duration::from_secs(4));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(30)), 0.0),
            Duration::from_secs(30)
        );
    }
}
