//! Request counters by method and route, and per subscription.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::throttle::RequestClass;

/// A snapshot of the counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// Requests received by `"METHOD route"`, e.g. `"PUT deployments"`.
    pub by_route: BTreeMap<String, u64>,
    /// Requests received per subscription id (lower-cased).
    pub subscriptions: BTreeMap<String, SubscriptionCounters>,
    /// 429 responses sent, from buckets and from injected faults.
    pub throttled: u64,
    /// Injected request faults (5xx and dropped connections; throttles count in `throttled`).
    pub faults: u64,
    /// Authenticated ARM requests by the client id of their token, then by
    /// `"METHOD route subscription"` (`-` without one): who did what where.
    #[serde(default)]
    pub by_client: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionCounters {
    pub reads: u64,
    pub writes: u64,
    pub deletes: u64,
    pub throttled: u64,
}

impl Counters {
    /// Requests seen for `"METHOD route"`; 0 when none.
    pub fn route(&self, key: &str) -> u64 {
        self.by_route.get(key).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.by_route.values().sum()
    }

    /// Requests made with `client_id`'s tokens, by `"METHOD route subscription"`.
    pub fn client(&self, client_id: &str) -> BTreeMap<String, u64> {
        self.by_client.get(client_id).cloned().unwrap_or_default()
    }

    pub(crate) fn record_caller(
        &mut self,
        client_id: &str,
        route_key: &str,
        subscription: Option<&str>,
    ) {
        let key = format!(
            "{route_key} {}",
            subscription.map_or_else(|| "-".to_owned(), str::to_ascii_lowercase)
        );
        *self
            .by_client
            .entry(client_id.to_owned())
            .or_default()
            .entry(key)
            .or_default() += 1;
    }

    pub(crate) fn record(
        &mut self,
        route_key: &str,
        subscription: Option<&str>,
        class: RequestClass,
    ) {
        *self.by_route.entry(route_key.to_owned()).or_default() += 1;
        if let Some(subscription) = subscription {
            let counters = self
                .subscriptions
                .entry(subscription.to_ascii_lowercase())
                .or_default();
            match class {
                RequestClass::Read => counters.reads += 1,
                RequestClass::Write => counters.writes += 1,
                RequestClass::Delete => counters.deletes += 1,
            }
        }
    }

    pub(crate) fn record_throttled(&mut self, subscription: Option<&str>) {
        self.throttled += 1;
        if let Some(subscription) = subscription {
            self.subscriptions
                .entry(subscription.to_ascii_lowercase())
                .or_default()
                .throttled += 1;
        }
    }
}
