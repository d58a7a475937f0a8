//! ARM's answers as the client sees them, and what it does about them by itself: which
//! answers it retries and after how long, how it paces a subscription ARM throttled.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::ArmOptions;
use crate::error::{ArmError, ErrorSource, retry_after};
use crate::throttle::RequestClass;

/// A response after the client's own retries.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: bytes::Bytes,
}

impl Answer {
    pub(crate) fn error(&self) -> ArmError {
        ArmError::from_response(self.status.as_u16(), &self.headers, &self.body)
    }

    pub(crate) fn json<T: DeserializeOwned>(&self, correlation_id: &str) -> Result<T, ArmError> {
        let body: &[u8] = if self.body.is_empty() {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|e| {
            ArmError::bare(
                ErrorSource::Decode,
                "InvalidResponse",
                format!("cannot decode ARM answer: {e}"),
            )
            .with_correlation(correlation_id)
        })
    }

    pub(crate) fn success<T: DeserializeOwned>(self, correlation_id: &str) -> Result<T, ArmError> {
        if self.status.is_success() {
            self.json(correlation_id)
        } else {
            Err(self.error())
        }
    }
}

/// Whether and after how long the client retries by itself: 408/429/5xx and transport
/// errors, within `max_retries`, and only when the wait fits `max_retry_wait` (a longer
/// `Retry-After` goes back to the caller).
pub(crate) fn retry_delay(
    outcome: &Result<Answer, ArmError>,
    attempt: u32,
    options: &ArmOptions,
) -> Option<Duration> {
    let (retryable, retry_after) = match outcome {
        Ok(answer) => (
            matches!(answer.status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504),
            retry_after(&answer.headers),
        ),
        Err(error) => (error.source_kind == ErrorSource::Transport, None),
    };
    let delay = retry_after.unwrap_or_else(|| backoff(options.retry_backoff, attempt));
    (retryable && attempt < options.max_retries && delay <= options.max_retry_wait).then_some(delay)
}

pub(crate) fn client_throttled(
    subscription: &str,
    left: Duration,
    correlation_id: &str,
) -> ArmError {
    let mut error = ArmError::bare(
        ErrorSource::ClientThrottle,
        "ClientThrottled",
        format!(
            "ARM asked to pause requests to subscription {subscription}; {}s left",
            left.as_secs()
        ),
    )
    .with_correlation(correlation_id);
    error.retry_after = Some(left);
    error
}

pub(crate) fn no_spare_budget(
    subscription: &str,
    class: RequestClass,
    correlation_id: &str,
) -> ArmError {
    ArmError::bare(
        ErrorSource::NoSpareBudget,
        "NoSpareBudget",
        format!(
            "not sent: the {class:?} budget of subscription {subscription} has nothing to spare"
        ),
    )
    .with_correlation(correlation_id)
}

/// ARM's answers to a PUT while the previous operation on the same deployment or stack
/// still runs.
pub(crate) fn is_operation_active(code: &str) -> bool {
    matches!(
        code,
        "DeploymentActive" | "DeploymentStackInNonTerminalState" | "DeploymentStackInProgress"
    )
}

pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << attempt.min(10))
}

/// The subscription a URL addresses (`""` for tenant-level URLs), for the throttle.
pub(crate) fn subscription_of(url: &Url) -> String {
    let mut segments = url.path_segments().into_iter().flatten();
    while let Some(segment) = segments.next() {
        if segment.eq_ignore_ascii_case("subscriptions") {
            return segments.next().unwrap_or_default().to_ascii_lowercase();
        }
    }
    String::new()
}
