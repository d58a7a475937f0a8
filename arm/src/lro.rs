//! Long-running operations as data: a handle the caller stores (e.g. in a CR status) and
//! polls once per reconcile, so nothing blocks and a restarted process resumes.

use crate::error::{ArmError, header_str, retry_after};
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How the operation's progress is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LroKind {
    /// `Azure-AsyncOperation`: GET returns `{"status": ...}`, 200 throughout.
    AsyncOperation,
    /// `Location`: GET returns 202 while running, then the final answer (200/204).
    Location,
    /// No operation URL (e.g. resuming after 409 `DeploymentActive`): GET the resource
    /// itself and read `properties.provisioningState`.
    ProvisioningState,
}

/// What started the operation; decides how a finished one is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LroOperation {
    ResourceGroupDelete,
    DeploymentPut,
    DeploymentDelete,
    WhatIf,
    StackPut,
    StackDelete,
    ResourceDelete,
}

impl LroOperation {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::ResourceGroupDelete => "poll_resource_group_delete",
            Self::DeploymentPut => "poll_deployment",
            Self::DeploymentDelete => "poll_deployment_delete",
            Self::WhatIf => "poll_what_if",
            Self::StackPut => "poll_stack",
            Self::StackDelete => "poll_stack_delete",
            Self::ResourceDelete => "poll_resource_delete",
        }
    }

    fn is_delete(self) -> bool {
        matches!(
            self,
            Self::ResourceGroupDelete
                | Self::DeploymentDelete
                | Self::StackDelete
                | Self::ResourceDelete
        )
    }
}

/// A started long-running operation. Serialisable so it survives restarts; polling it
/// with a new client continues where the old one stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LroHandle {
    pub operation: LroOperation,
    pub kind: LroKind,
    /// Absolute URL to GET for progress (the resource URL for `ProvisioningState`).
    pub operation_url: String,
    /// Absolute URL of the resource the operation works on.
    pub resource_url: String,
    /// Earliest time the next poll is useful (from `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// The correlation id of the logical operation, sent again with every poll.
    pub correlation_id: String,
}

impl LroHandle {
    /// How long to wait from now before polling.
    pub fn wait_time(&self) -> Duration {
        self.not_before
            .map(|at| (at - Utc::now()).to_std().unwrap_or_default())
            .unwrap_or_default()
    }

    /// Builds a handle from the headers of a 201/202 answer. Prefers
    /// `Azure-AsyncOperation` over `Location`; with neither, polls the resource.
    pub(crate) fn from_response(
        operation: LroOperation,
        resource_url: &str,
        headers: &HeaderMap,
        correlation_id: &str,
        default_poll: Duration,
    ) -> Self {
        let (kind, operation_url) = if let Some(url) = header_str(headers, "azure-asyncoperation") {
            (LroKind::AsyncOperation, url)
        } else if let Some(url) = header_str(headers, "location") {
            (LroKind::Location, url)
        } else {
            (LroKind::ProvisioningState, resource_url.to_string())
        };
        let delay = retry_after(headers).unwrap_or(default_poll);
        Self {
            operation,
            kind,
            operation_url,
            resource_url: resource_url.to_string(),
            not_before: Some(after(delay)),
            correlation_id: correlation_id.to_string(),
        }
    }

    /// A handle that polls the resource's provisioning state (no operation URL known).
    pub(crate) fn provisioning_state(
        operation: LroOperation,
        resource_url: &str,
        correlation_id: &str,
        delay: Duration,
    ) -> Self {
        Self {
            operation,
            kind: LroKind::ProvisioningState,
            operation_url: resource_url.to_string(),
            resource_url: resource_url.to_string(),
            not_before: Some(after(delay)),
            correlation_id: correlation_id.to_string(),
        }
    }

    /// Interprets one poll answer (status already known not to be a transport failure).
    /// `Err` means the poll itself failed (retry it later); it does not mean the operation
    /// failed.
    pub(crate) fn interpret(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        default_poll: Duration,
    ) -> Result<PollResult, ArmError> {
        let delay = retry_after(headers).unwrap_or(default_poll);
        let body_json = || -> Option<serde_json::Value> {
            if body.is_empty() {
                None
            } else {
                serde_json::from_slice(body).ok()
            }
        };
        match self.kind {
            LroKind::AsyncOperation => {
                if !(200..300).contains(&status) {
                    return Err(ArmError::from_response(status, headers, body));
                }
                let json = body_json().ok_or_else(|| undecodable(&self.correlation_id))?;
                let state = json
                    .get("status")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
                    .to_string();
                Ok(self.state_result(&state, Some(json), delay))
            }
            LroKind::Location => match status {
                202 => Ok(PollResult::InProgress {
                    retry_after: delay,
                    status: "Running".to_string(),
                }),
                200..=299 => Ok(PollResult::Done(body_json())),
                404 if self.operation.is_delete() => Ok(PollResult::Done(None)),
                408 | 429 | 500..=599 => Err(ArmError::from_response(status, headers, body)),
                _ => Ok(PollResult::Failed(
                    ArmError::from_response(status, headers, body)
                        .with_correlation(&self.correlation_id),
                )),
            },
            LroKind::ProvisioningState => match status {
                404 if self.operation.is_delete() => Ok(PollResult::Done(None)),
                200..=299 => {
                    let json = body_json().ok_or_else(|| undecodable(&self.correlation_id))?;
                    let state = json
                        .pointer("/properties/provisioningState")
                        .and_then(|s| s.as_str())
                        .unwrap_or_default()
                        .to_string();
                    if self.operation.is_delete() {
                        // The resource still exists, so the delete is still running.
                        return Ok(PollResult::InProgress {
                            retry_after: delay,
                            status: state,
                        });
                    }
                    Ok(self.state_result(&state, Some(json), delay))
                }
                _ => Err(ArmError::from_response(status, headers, body)),
            },
        }
    }

    /// The poll result a reported operation state means: done, failed with ARM's error
    /// (or one naming the state), or still running.
    fn state_result(
        &self,
        state: &str,
        body: Option<serde_json::Value>,
        delay: Duration,
    ) -> PollResult {
        if state.eq_ignore_ascii_case("succeeded") {
            PollResult::Done(body)
        } else if crate::models::is_terminal_state(state) {
            let detail = body
                .as_ref()
                .and_then(|b| {
                    b.get("error")
                        .or_else(|| b.pointer("/properties/error"))
                        .cloned()
                })
                .and_then(|e| serde_json::from_value(e).ok())
                .unwrap_or_else(|| crate::error::ErrorDetail {
                    code: format!("Operation{state}"),
                    message: format!("the operation ended in state {state}"),
                    ..Default::default()
                });
            PollResult::Failed(ArmError::from_detail(
                detail,
                Some(self.correlation_id.clone()),
            ))
        } else {
            PollResult::InProgress {
                retry_after: delay,
                status: state.to_string(),
            }
        }
    }

    pub(crate) fn reschedule(&mut self, delay: Duration) {
        self.not_before = Some(after(delay));
    }
}

fn after(delay: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
}

fn undecodable(correlation_id: &str) -> ArmError {
    ArmError::bare(
        crate::error::ErrorSource::Decode,
        "InvalidOperationStatus",
        "the operation status answer is not the expected JSON",
    )
    .with_correlation(correlation_id)
}

/// The outcome of one poll.
#[derive(Clone, Debug)]
pub enum PollResult {
    /// Still running: poll again after `retry_after`. `status` is ARM's word for it.
    InProgress {
        retry_after: Duration,
        status: String,
    },
    /// Finished successfully; the final body when ARM sends one (what-if result, the
    /// operation status, the resource).
    Done(Option<serde_json::Value>),
    /// Finished unsuccessfully (Failed/Canceled), with ARM's error.
    Failed(ArmError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    const DEFAULT: Duration = Duration::from_secs(60);

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn async_handle() -> LroHandle {
        LroHandle::from_response(
            LroOperation::DeploymentPut,
            "https://arm/subscriptions/s/resourceGroups/rg/providers/Microsoft.Resources/deployments/d?api-version=2025-04-01",
            &headers(&[
                (
                    "Azure-AsyncOperation",
                    "https://arm/op/1?api-version=2025-04-01",
                ),
                ("Location", "https://arm/loc/1"),
                ("Retry-After", "7"),
            ]),
            "corr-1",
            DEFAULT,
        )
    }

    #[test]
    fn handle_prefers_async_operation_and_round_trips_json() {
        let handle = async_handle();
        assert_eq!(handle.kind, LroKind::AsyncOperation);
        assert_eq!(
            handle.operation_url,
            "https://arm/op/1?api-version=2025-04-01"
        );
        let wait = handle.wait_time();
        assert!(wait <= Duration::from_secs(7) && wait > Duration::from_secs(5));
        let json = serde_json::to_string(&handle).unwrap();
        let back: LroHandle = serde_json::from_str(&json).unwrap();
        assert_eq!(back, handle);
        assert!(json.contains("\"kind\":\"AsyncOperation\""), "{json}");
    }

    #[test]
    fn location_and_resource_fallbacks() {
        let loc = LroHandle::from_response(
            LroOperation::ResourceGroupDelete,
            "https://arm/rg",
            &headers(&[("Location", "https://arm/loc/2")]),
            "c",
            DEFAULT,
        );
        assert_eq!(loc.kind, LroKind::Location);
        let wait = loc.wait_time();
        assert!(wait > Duration::from_secs(58), "default poll interval used");
        let none = LroHandle::from_response(
            LroOperation::StackPut,
            "https://arm/s",
            &HeaderMap::new(),
            "c",
            DEFAULT,
        );
        assert_eq!(none.kind, LroKind::ProvisioningState);
        assert_eq!(none.operation_url, "https://arm/s");
    }

    #[test]
    fn async_operation_statuses() {
        let h = async_handle();
        let hdr = headers(&[("Retry-After", "3")]);
        match h
            .interpret(200, &hdr, br#"{"status":"Running"}"#, DEFAULT)
            .unwrap()
        {
            PollResult::InProgress {
                retry_after,
                status,
            } => {
                assert_eq!(retry_after, Duration::from_secs(3));
                assert_eq!(status, "Running");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            h.interpret(
                200,
                &HeaderMap::new(),
                br#"{"status":"succeeded"}"#,
                DEFAULT
            )
            .unwrap(),
            PollResult::Done(Some(_))
        ));
        let failed = br#"{"status":"Failed","error":{"code":"DeploymentFailed","message":"At least one resource deployment operation failed","details":[{"code":"Conflict","message":"x"}]}}"#;
        match h
            .interpret(200, &HeaderMap::new(), failed, DEFAULT)
            .unwrap()
        {
            PollResult::Failed(e) => {
                assert_eq!(e.code, "DeploymentFailed");
                assert_eq!(e.details[0].code, "Conflict");
                assert_eq!(e.correlation_id.as_deref(), Some("corr-1"));
            }
            other => panic!("{other:?}"),
        }
        match h
            .interpret(200, &HeaderMap::new(), br#"{"status":"Canceled"}"#, DEFAULT)
            .unwrap()
        {
            PollResult::Failed(e) => assert_eq!(e.code, "OperationCanceled"),
            other => panic!("{other:?}"),
        }
        // A failure to read the status URL is not a failure of the operation.
        let err = h
            .interpret(503, &HeaderMap::new(), b"", DEFAULT)
            .unwrap_err();
        assert!(err.is_retryable());
        assert!(
            h.interpret(200, &HeaderMap::new(), b"<html>", DEFAULT)
                .is_err()
        );
    }

    #[test]
    fn location_statuses() {
        let h = LroHandle::from_response(
            LroOperation::ResourceGroupDelete,
            "https://arm/rg",
            &headers(&[("Location", "https://arm/loc/2")]),
            "c",
            DEFAULT,
        );
        assert!(matches!(
            h.interpret(202, &HeaderMap::new(), b"", DEFAULT).unwrap(),
            PollResult::InProgress { .. }
        ));
        assert!(matches!(
            h.interpret(204, &HeaderMap::new(), b"", DEFAULT).unwrap(),
            PollResult::Done(None)
        ));
        assert!(matches!(
            h.interpret(
                200,
                &HeaderMap::new(),
                br#"{"status":"Succeeded"}"#,
                DEFAULT
            )
            .unwrap(),
            PollResult::Done(Some(_))
        ));
        assert!(matches!(
            h.interpret(404, &HeaderMap::new(), b"", DEFAULT).unwrap(),
            PollResult::Done(None)
        ));
        assert!(h.interpret(500, &HeaderMap::new(), b"", DEFAULT).is_err());
        match h
            .interpret(
                409,
                &HeaderMap::new(),
                br#"{"error":{"code":"Conflict","message":"locked"}}"#,
                DEFAULT,
            )
            .unwrap()
        {
            PollResult::Failed(e) => assert_eq!(e.code, "Conflict"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn provisioning_state_polls() {
        let h = LroHandle::provisioning_state(
            LroOperation::DeploymentPut,
            "https://arm/d",
            "c",
            Duration::ZERO,
        );
        let running = br#"{"properties":{"provisioningState":"Running"}}"#;
        assert!(matches!(
            h.interpret(200, &HeaderMap::new(), running, DEFAULT)
                .unwrap(),
            PollResult::InProgress { .. }
        ));
        let done = br#"{"properties":{"provisioningState":"Succeeded"}}"#;
        assert!(matches!(
            h.interpret(200, &HeaderMap::new(), done, DEFAULT).unwrap(),
            PollResult::Done(Some(_))
        ));
        let failed = br#"{"properties":{"provisioningState":"Failed","error":{"code":"DeploymentFailed","message":"m"}}}"#;
        match h
            .interpret(200, &HeaderMap::new(), failed, DEFAULT)
            .unwrap()
        {
            PollResult::Failed(e) => assert_eq!(e.code, "DeploymentFailed"),
            other => panic!("{other:?}"),
        }
        assert!(
            h.interpret(404, &HeaderMap::new(), b"", DEFAULT)
                .unwrap_err()
                .is_not_found()
        );
        let del = LroHandle::provisioning_state(
            LroOperation::StackDelete,
            "https://arm/s",
            "c",
            Duration::ZERO,
        );
        assert!(matches!(
            del.interpret(404, &HeaderMap::new(), b"", DEFAULT).unwrap(),
            PollResult::Done(None)
        ));
        assert!(matches!(
            del.interpret(200, &HeaderMap::new(), done, DEFAULT)
                .unwrap(),
            PollResult::InProgress { .. }
        ));
    }
}
