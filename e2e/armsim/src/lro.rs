//! Long-running operations as ARM reports them: status records, terminal states,
//! and the timestamps and durations their bodies carry.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::error::ArmError;

/// A long-running operation as its status URLs report it.
#[derive(Debug, Clone)]
pub(crate) struct LongOp {
    pub status: String,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    pub error: Option<ArmError>,
    /// Serialized body of the final `Location` poll (what-if results).
    pub result: Option<Bytes>,
    /// Status of the final `Location` poll.
    pub done_status: u16,
}

impl LongOp {
    pub fn status_body(&self, id: &str) -> Value {
        let mut body = json!({
            "id": id,
            "name": id,
            "status": self.status,
            "startTime": timestamp(self.started),
        });
        if let Some(ended) = self.ended {
            body["endTime"] = json!(timestamp(ended));
        }
        if let Some(error) = &self.error {
            body["error"] = error.body();
        }
        body
    }
}

pub(crate) fn is_terminal(status: &str) -> bool {
    ["succeeded", "failed", "canceled"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(status))
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// ISO 8601 duration as ARM prints it (`PT1.234S`).
pub(crate) fn iso_duration(duration: Duration) -> String {
    format!("PT{:.3}S", duration.as_secs_f64())
}

pub(crate) fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_terminal_states() {
        assert_eq!(iso_duration(Duration::from_millis(1500)), "PT1.500S");
        assert!(is_terminal("Succeeded") && is_terminal("canceled"));
        assert!(!is_terminal("Running") && !is_terminal("deploying"));
    }
}
