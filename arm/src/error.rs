//! The one error type of the client, parsed from ARM's error envelope and classified per
//! the contract (retryable vs terminal).

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where an error came from; ARM errors carry an HTTP status, the others do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorSource {
    /// ARM answered with a non-success status.
    Arm,
    /// The request never got an HTTP answer (connect, TLS, reset, timeout).
    Transport,
    /// Getting a token failed (Entra answered with an error, or could not be reached).
    Credential,
    /// The caller passed something the client rejects before sending (bad name, bad URL).
    InvalidInput,
    /// ARM answered with a body the client cannot decode.
    Decode,
    /// Not sent: ARM asked this process (by `Retry-After`) to stay away from the
    /// subscription for longer than the client waits by itself.
    ClientThrottle,
    /// Not sent: a request of [`crate::Priority::Spare`] found no spare budget. Nothing
    /// failed; the caller sends it later.
    NoSpareBudget,
}

/// How a caller should react to an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCategory {
    /// 429: ARM is throttling this subscription; retry after `retry_after`.
    Throttled,
    /// Transient server, network or consistency problem; retry with backoff.
    Transient,
    /// The resource does not exist.
    NotFound,
    /// The identity lacks a role assignment. Assignments take minutes to propagate, so
    /// callers retry a bounded number of times before treating it as terminal.
    Authorization,
    /// The credentials are wrong (bad secret, unknown client, expired federation).
    Credential,
    /// The request itself is wrong (template, parameters, policy, SKU); retrying the same
    /// request cannot succeed, wait for a change of the input.
    Terminal,
}

/// An ARM error detail (`error.details[]`), recursive like the wire format.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
    #[serde(
        default,
        rename = "additionalInfo",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_info: Vec<serde_json::Value>,
}

/// Every failure of the client. Never carries secrets: messages come from ARM/Entra error
/// bodies or from the client itself, never from request bodies or headers. Boxed so
/// `Result<_, ArmError>` stays small; the fields are reached through `Deref`
/// (`err.code`, `err.status`, ...).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}{}: {}", .0.code, .0.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(), .0.message)]
pub struct ArmError(Box<ArmErrorData>);

impl std::ops::Deref for ArmError {
    type Target = ArmErrorData;
    fn deref(&self) -> &ArmErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for ArmError {
    fn deref_mut(&mut self) -> &mut ArmErrorData {
        &mut self.0
    }
}

/// The contents of an [`ArmError`].
#[derive(Clone, Debug)]
pub struct ArmErrorData {
    pub source_kind: ErrorSource,
    /// HTTP status, when ARM answered.
    pub status: Option<u16>,
    /// ARM error code (`InvalidTemplate`, `DeploymentActive`, ...) or the client's own code
    /// (`ConnectionFailed`, `CredentialUnavailable`, `InvalidName`, ...).
    pub code: String,
    pub message: String,
    pub target: Option<String>,
    pub details: Vec<ErrorDetail>,
    /// `x-ms-request-id` of the failed response.
    pub request_id: Option<String>,
    /// `x-ms-correlation-request-id` of the logical operation.
    pub correlation_id: Option<String>,
    /// `Retry-After` of the failed response.
    pub retry_after: Option<Duration>,
}

/// ARM codes that mean "try again later" whatever the status (contracts/arm.md,
/// "Retryable"): the one list for the client and the controller's recorded failures.
const RETRYABLE_CODES: &[&str] = &[
    "AnotherOperationInProgress",
    "Conflict",
    "ResourceGroupNotFound",
    "ResourceGroupBeingDeleted",
    "DeploymentActive",
    "RetryableError",
    "ServerTimeout",
    // The status-code names of 408, 500, 502, 503 and 504: a failed operation reports
    // them as codes without a status.
    "RequestTimeout",
    "InternalServerError",
    "BadGateway",
    "ServiceUnavailable",
    "GatewayTimeout",
    "SubscriptionRequestsThrottled",
    "TooManyRequests",
    // The token expired in flight; the next attempt gets a fresh one.
    "ExpiredAuthenticationToken",
];

/// Whether an ARM error code means the same request may succeed later. ARM codes are
/// compared without regard to case, as ARM itself does.
pub fn is_retryable_code(code: &str) -> bool {
    RETRYABLE_CODES.iter().any(|r| r.eq_ignore_ascii_case(code))
}

/// ARM codes that mean "this request will never succeed as is".
const TERMINAL_CODES: &[&str] = &[
    "InvalidTemplate",
    "InvalidTemplateDeployment",
    "InvalidParameter",
    "InvalidRequestContent",
    "InvalidDeploymentName",
    "BadRequest",
    "LocationRequired",
    "LocationNotAvailableForResourceType",
    "RequestDisallowedByPolicy",
    "SkuNotAvailable",
    "MissingSubscriptionRegistration",
    "DeploymentCannotBeCancelled",
    "InvalidName",
    // 409, but a management lock stays until somebody removes it.
    "ScopeLocked",
];

/// Entra error codes (AADSTS numbers) of bad credentials rather than an unreachable service:
/// invalid secret, expired secret, unknown application, tenant not found, bad assertion.
const CREDENTIAL_AADSTS: &[&str] = &[
    "7000215", "7000222", "700016", "90002", "700024", "700027", "70021", "7000216",
];

impl ArmError {
    /// An error the client raises itself before sending anything.
    pub fn invalid_input(code: &str, message: impl Into<String>) -> Self {
        Self::bare(ErrorSource::InvalidInput, code, message)
    }

    pub(crate) fn bare(source_kind: ErrorSource, code: &str, message: impl Into<String>) -> Self {
        Self(Box::new(ArmErrorData {
            source_kind,
            status: None,
            code: code.to_string(),
            message: message.into(),
            target: None,
            details: Vec::new(),
            request_id: None,
            correlation_id: None,
            retry_after: None,
        }))
    }

    pub(crate) fn with_correlation(mut self, correlation_id: &str) -> Self {
        if self.correlation_id.is_none() {
            self.correlation_id = Some(correlation_id.to_string());
        }
        self
    }

    /// Parses a non-success ARM response. Understands the standard envelope
    /// `{"error":{code,message,target,details}}`, the bare `{code,message}` some providers
    /// send, and falls back to `x-ms-error-code` / the status reason for empty bodies.
    pub fn from_response(status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Envelope {
            error: Option<ErrorDetail>,
            code: Option<String>,
            message: Option<String>,
        }
        let parsed: Option<ErrorDetail> =
            serde_json::from_slice::<Envelope>(body)
                .ok()
                .and_then(|env| {
                    env.error.or_else(|| {
                        env.code.map(|code| ErrorDetail {
                            code,
                            message: env.message.unwrap_or_default(),
                            ..ErrorDetail::default()
                        })
                    })
                });
        let header_code = header_str(headers, "x-ms-error-code");
        let detail = parsed.unwrap_or_default();
        let code = if !detail.code.is_empty() {
            detail.code
        } else if let Some(code) = header_code {
            code
        } else {
            status_code_name(status).to_string()
        };
        let message = if detail.message.is_empty() {
            format!("ARM answered HTTP {status} without an error message")
        } else {
            detail.message
        };
        Self(Box::new(ArmErrorData {
            source_kind: ErrorSource::Arm,
            status: Some(status),
            code,
            message,
            target: detail.target,
            details: detail.details,
            request_id: header_str(headers, "x-ms-request-id"),
            correlation_id: header_str(headers, "x-ms-correlation-request-id"),
            retry_after: retry_after(headers),
        }))
    }

    /// Wraps a failed operation body (`{"status":"Failed","error":{...}}`) as an error.
    pub(crate) fn from_detail(detail: ErrorDetail, correlation_id: Option<String>) -> Self {
        Self(Box::new(ArmErrorData {
            source_kind: ErrorSource::Arm,
            status: None,
            code: if detail.code.is_empty() {
                "OperationFailed".to_string()
            } else {
                detail.code
            },
            message: detail.message,
            target: detail.target,
            details: detail.details,
            request_id: None,
            correlation_id,
            retry_after: None,
        }))
    }

    /// Maps a transport error. The URL is stripped because reqwest puts it in Display and a
    /// URL can carry query parameters; the operation name in the span identifies the call.
    pub(crate) fn from_transport(err: reqwest::Error) -> Self {
        let code = if err.is_timeout() {
            "Timeout"
        } else if err.is_connect() {
            "ConnectionFailed"
        } else if err.is_decode() || err.is_body() {
            "ResponseInterrupted"
        } else {
            "TransportError"
        };
        let message = error_chain(&err.without_url());
        Self::bare(ErrorSource::Transport, code, message)
    }

    /// Maps a credential failure from azure_identity. Entra's message (with its AADSTS code)
    /// is kept; it never contains the secret or the assertion.
    pub(crate) fn from_credential(err: &azure_core::Error) -> Self {
        let message = error_chain(err);
        let entra_status = find_http_status(err);
        let aadsts = aadsts_code(&message);
        let code = match (&aadsts, entra_status) {
            (Some(n), _) => format!("AADSTS{n}"),
            (None, Some(_)) => "CredentialRejected".to_string(),
            (None, None) => "CredentialUnavailable".to_string(),
        };
        let mut error = Self::bare(ErrorSource::Credential, &code, message);
        error.status = entra_status;
        error
    }

    /// The classification of the contract.
    pub fn category(&self) -> ErrorCategory {
        match self.source_kind {
            ErrorSource::Transport => return ErrorCategory::Transient,
            ErrorSource::InvalidInput => return ErrorCategory::Terminal,
            ErrorSource::Decode => return ErrorCategory::Transient,
            ErrorSource::ClientThrottle | ErrorSource::NoSpareBudget => {
                return ErrorCategory::Throttled;
            }
            ErrorSource::Credential => {
                let known_bad = self
                    .code
                    .strip_prefix("AADSTS")
                    .is_some_and(|n| CREDENTIAL_AADSTS.contains(&n));
                return match self.status {
                    _ if known_bad => ErrorCategory::Credential,
                    Some(400 | 401 | 403) => ErrorCategory::Credential,
                    _ => ErrorCategory::Transient,
                };
            }
            ErrorSource::Arm => {}
        }
        let code = self.code.as_str();
        if self.status == Some(429) {
            return ErrorCategory::Throttled;
        }
        if is_retryable_code(code) {
            return ErrorCategory::Transient;
        }
        if TERMINAL_CODES.contains(&code) {
            return ErrorCategory::Terminal;
        }
        if code == "AuthorizationFailed" || code == "LinkedAuthorizationFailed" {
            return ErrorCategory::Authorization;
        }
        match self.status {
            Some(401) => ErrorCategory::Credential,
            Some(403) => ErrorCategory::Authorization,
            Some(404) => ErrorCategory::NotFound,
            Some(408 | 409 | 500..=599) => ErrorCategory::Transient,
            // A failed long-running operation has no status; its code decides, and an
            // unknown code of a finished operation will not change by retrying.
            _ => ErrorCategory::Terminal,
        }
    }

    /// True when the same request may succeed later (throttling, 5xx, network, conflicts).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.category(),
            ErrorCategory::Throttled | ErrorCategory::Transient
        )
    }

    /// True for 404 answers other than `ResourceGroupNotFound` (which is transient).
    pub fn is_not_found(&self) -> bool {
        self.category() == ErrorCategory::NotFound
    }
}

fn status_code_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        408 => "RequestTimeout",
        409 => "Conflict",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "HttpError",
    }
}

pub(crate) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `Retry-After` as delta-seconds (what ARM sends) or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    parse_retry_after(
        headers.get("retry-after")?.to_str().ok()?,
        chrono::Utc::now(),
    )
}

pub(crate) fn parse_retry_after(
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or_default(),
    )
}

/// Display of an error and its sources, joined.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn find_http_status(err: &azure_core::Error) -> Option<u16> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(az) = e.downcast_ref::<azure_core::Error>()
            && let Some(status) = az.http_status()
        {
            return Some(u16::from(status));
        }
        current = e.source();
    }
    None
}

fn aadsts_code(message: &str) -> Option<String> {
    let start = message.find("AADSTS")? + "AADSTS".len();
    let digits: String = message[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn parses_standard_envelope_with_nested_details() {
        let body = br#"{"error":{"code":"InvalidTemplateDeployment","message":"The template deployment failed.","target":"dep","details":[{"code":"PreflightValidationCheckFailed","message":"x","details":[{"code":"InvalidParameter","message":"bad sku"}]}]}}"#;
        let h = headers(&[
            ("x-ms-request-id", "req-1"),
            ("x-ms-correlation-request-id", "corr-1"),
        ]);
        let err = ArmError::from_response(400, &h, body);
        assert_eq!(err.code, "InvalidTemplateDeployment");
        assert_eq!(err.status, Some(400));
        assert_eq!(err.target.as_deref(), Some("dep"));
        assert_eq!(err.details[0].details[0].code, "InvalidParameter");
        assert_eq!(err.request_id.as_deref(), Some("req-1"));
        assert_eq!(err.correlation_id.as_deref(), Some("corr-1"));
        assert_eq!(err.category(), ErrorCategory::Terminal);
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "InvalidTemplateDeployment (HTTP 400): The template deployment failed."
        );
    }

    #[test]
    fn falls_back_to_header_code_and_status_name() {
        let err = ArmError::from_response(
            404,
            &headers(&[("x-ms-error-code", "ResourceGroupNotFound")]),
            b"",
        );
        assert_eq!(err.code, "ResourceGroupNotFound");
        assert!(err.is_retryable(), "RG not found right after create");
        let err = ArmError::from_response(502, &HeaderMap::new(), b"<html>bad gateway</html>");
        assert_eq!(err.code, "BadGateway");
        assert!(err.is_retryable());
        let err = ArmError::from_response(
            404,
            &HeaderMap::new(),
            br#"{"code":"ResourceNotFound","message":"gone"}"#,
        );
        assert_eq!(err.code, "ResourceNotFound");
        assert!(err.is_not_found());
    }

    #[test]
    fn a_failed_operation_is_retryable_by_its_code_alone() {
        let failed = |code: &str| {
            ArmError::from_detail(
                ErrorDetail {
                    code: code.into(),
                    message: "m".into(),
                    ..ErrorDetail::default()
                },
                None,
            )
        };
        for code in [
            "ServiceUnavailable",
            "BadGateway",
            "RequestTimeout",
            "conflict",
        ] {
            assert_eq!(failed(code).category(), ErrorCategory::Transient, "{code}");
        }
        assert_eq!(failed("Unknown").category(), ErrorCategory::Terminal);
        assert!(is_retryable_code("anotheroperationinprogress"));
        assert!(!is_retryable_code("InvalidTemplate"));
    }

    #[test]
    fn classification_follows_the_contract() {
        let cases: &[(u16, &str, ErrorCategory)] = &[
            (
                429,
                "SubscriptionRequestsThrottled",
                ErrorCategory::Throttled,
            ),
            (408, "RequestTimeout", ErrorCategory::Transient),
            (500, "InternalServerError", ErrorCategory::Transient),
            (503, "ServiceUnavailable", ErrorCategory::Transient),
            (504, "GatewayTimeout", ErrorCategory::Transient),
            (409, "AnotherOperationInProgress", ErrorCategory::Transient),
            (409, "Conflict", ErrorCategory::Transient),
            (409, "DeploymentActive", ErrorCategory::Transient),
            (400, "InvalidTemplate", ErrorCategory::Terminal),
            (400, "InvalidParameter", ErrorCategory::Terminal),
            (400, "BadRequest", ErrorCategory::Terminal),
            (400, "LocationRequired", ErrorCategory::Terminal),
            (403, "RequestDisallowedByPolicy", ErrorCategory::Terminal),
            (409, "SkuNotAvailable", ErrorCategory::Terminal),
            (409, "ScopeLocked", ErrorCategory::Terminal),
            (403, "AuthorizationFailed", ErrorCategory::Authorization),
            (401, "InvalidAuthenticationToken", ErrorCategory::Credential),
            (401, "ExpiredAuthenticationToken", ErrorCategory::Transient),
            (404, "DeploymentNotFound", ErrorCategory::NotFound),
            (
                404,
                "DeploymentStackResourceNotFound",
                ErrorCategory::NotFound,
            ),
        ];
        for (status, code, expected) in cases {
            let body = format!(r#"{{"error":{{"code":"{code}","message":"m"}}}}"#);
            let err = ArmError::from_response(*status, &HeaderMap::new(), body.as_bytes());
            assert_eq!(err.category(), *expected, "{status} {code}");
        }
    }

    #[test]
    fn failed_operation_codes_are_classified_without_status() {
        let failed = ArmError::from_detail(
            ErrorDetail {
                code: "DeploymentFailed".into(),
                message: "At least one resource deployment operation failed".into(),
                ..Default::default()
            },
            None,
        );
        assert_eq!(failed.category(), ErrorCategory::Terminal);
        let conflict = ArmError::from_detail(
            ErrorDetail {
                code: "AnotherOperationInProgress".into(),
                ..Default::default()
            },
            None,
        );
        assert!(conflict.is_retryable());
    }

    #[test]
    fn credential_errors_by_aadsts_code() {
        let mut err = ArmError::bare(
            ErrorSource::Credential,
            "AADSTS7000215",
            "AADSTS7000215: Invalid client secret provided.",
        );
        err.status = Some(401);
        assert_eq!(err.category(), ErrorCategory::Credential);
        let unreachable =
            ArmError::bare(ErrorSource::Credential, "CredentialUnavailable", "connect");
        assert!(unreachable.is_retryable());
        assert_eq!(
            aadsts_code("x AADSTS700016: app not found"),
            Some("700016".into())
        );
        assert_eq!(aadsts_code("no code"), None);
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("17", now), Some(Duration::from_secs(17)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            retry_after(&headers(&[("Retry-After", "5")])),
            Some(Duration::from_secs(5))
        );
    }
}
