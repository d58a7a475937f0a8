//! The long-running operations status and result URLs answer for. ARM forgets a
//! finished operation after a while; so does the simulator, or every what-if (whose
//! result lists each resource of its resource group) stays in memory for good.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::config::OperationRetentionConfig;
use crate::error::ArmError;
use crate::lro::{LongOp, elapsed, is_terminal};

#[derive(Debug, Default)]
pub(crate) struct Operations {
    by_id: HashMap<String, LongOp>,
    /// Finished operations by id, in the order they finished: the next to forget first.
    finished: VecDeque<String>,
    /// Size of the results kept, of running and finished operations.
    result_bytes: usize,
    retention: OperationRetentionConfig,
}

impl Operations {
    pub fn set_retention(&mut self, retention: OperationRetentionConfig) {
        self.retention = retention;
        self.forget_expired(Utc::now());
    }

    /// Starts an operation in `status`; its final `Location` poll answers `done_status`.
    pub fn start(&mut self, status: &str, done_status: u16) -> String {
        let now = Utc::now();
        self.forget_expired(now);
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.by_id.insert(
            id.clone(),
            LongOp {
                status: status.to_owned(),
                started: now,
                ended: None,
                error: None,
                result: None,
                done_status,
            },
        );
        id
    }

    pub fn get(&self, id: &str) -> Option<&LongOp> {
        self.by_id.get(id)
    }

    /// The serialized body of the final `Location` poll (what-if results).
    pub fn set_result(&mut self, id: &str, result: Bytes) {
        if let Some(op) = self.by_id.get_mut(id) {
            self.result_bytes += result.len();
            if let Some(old) = op.result.replace(result) {
                self.result_bytes -= old.len();
            }
        }
    }

    /// Moves an operation to `status`; the first terminal status ends it, and from
    /// then on it counts against the retention.
    pub fn update(&mut self, id: &str, status: &str, error: Option<ArmError>) {
        let now = Utc::now();
        let Some(op) = self.by_id.get_mut(id) else {
            return;
        };
        op.status = status.to_owned();
        op.error = error;
        if is_terminal(status) && op.ended.is_none() {
            op.ended = Some(now);
            self.finished.push_back(id.to_owned());
        }
        self.forget_expired(now);
    }

    /// Operations still answered for, running and finished.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Forgets finished operations past their retention time, then the oldest
    /// finished ones while more are kept than the retention allows.
    fn forget_expired(&mut self, now: DateTime<Utc>) {
        let keep_for = Duration::from_secs(self.retention.seconds);
        while let Some(oldest) = self.finished.front() {
            let expired = self
                .by_id
                .get(oldest)
                .and_then(|op| op.ended)
                .is_none_or(|ended| elapsed(ended, now) >= keep_for);
            if !expired
                && self.finished.len() <= self.retention.max_finished
                && self.result_bytes <= self.retention.max_result_bytes
            {
                break;
            }
            if let Some(forgotten) = self
                .finished
                .pop_front()
                .and_then(|id| self.by_id.remove(&id))
            {
                self.result_bytes -= forgotten.result.map_or(0, |r| r.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operations(seconds: u64, max_finished: usize, max_result_bytes: usize) -> Operations {
        let mut operations = Operations::default();
        operations.set_retention(OperationRetentionConfig {
            seconds,
            max_finished,
            max_result_bytes,
        });
        operations
    }

    fn finished_with_result(ops: &mut Operations, result: &'static str) -> String {
        let id = ops.start("Running", 200);
        ops.set_result(&id, Bytes::from_static(result.as_bytes()));
        ops.update(&id, "Succeeded", None);
        id
    }

    #[test]
    fn beyond_the_count_the_oldest_finished_are_forgotten_and_running_ones_kept() {
        let mut ops = operations(3600, 3, usize::MAX);
        let running: Vec<String> = (0..2).map(|_| ops.start("Running", 200)).collect();
        let finished: Vec<String> = (0..1000)
            .map(|_| finished_with_result(&mut ops, r#"{"status":"Succeeded"}"#))
            .collect();
        assert_eq!(ops.len(), 2 + 3);
        assert!(running.iter().all(|id| ops.get(id).is_some()));
        assert!(finished[..997].iter().all(|id| ops.get(id).is_none()));
        let newest = ops.get(&finished[999]).expect("the newest stays pollable");
        assert_eq!(newest.status, "Succeeded");
        assert!(newest.result.is_some());
    }

    #[test]
    fn beyond_the_result_size_the_oldest_finished_are_forgotten() {
        let mut ops = operations(3600, usize::MAX, 25);
        let finished: Vec<String> = (0..1000)
            .map(|_| finished_with_result(&mut ops, "0123456789"))
            .collect();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops.result_bytes, 20);
        assert!(ops.get(&finished[998]).is_some() && ops.get(&finished[999]).is_some());
    }

    #[test]
    fn finished_operations_are_forgotten_after_the_retention_time() {
        let mut ops = operations(60, 100, usize::MAX);
        let running = ops.start("Running", 200);
        let done = ops.start("Running", 200);
        ops.update(&done, "Failed", None);
        let ended = ops.get(&done).and_then(|op| op.ended).unwrap();
        ops.forget_expired(ended + chrono::Duration::seconds(59));
        assert!(ops.get(&done).is_some());
        ops.forget_expired(ended + chrono::Duration::seconds(60));
        assert!(ops.get(&done).is_none());
        assert!(ops.get(&running).is_some());
        assert_eq!(ops.len(), 1);
    }

    #[test]
    fn an_operation_ends_once() {
        let mut ops = operations(3600, 1, usize::MAX);
        let canceled = ops.start("Running", 200);
        ops.update(&canceled, "Canceled", None);
        ops.update(&canceled, "Canceled", None);
        assert_eq!(ops.finished.len(), 1);
        assert!(ops.get(&canceled).is_some());
    }
}
