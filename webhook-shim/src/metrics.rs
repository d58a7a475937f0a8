//! Prometheus metrics served on `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::kafka::ResultStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub status: String,
}

/// Counters shared by the API and the reporter.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub results: Family<ResultLabels, Counter>,
    pub publish_failures: Counter,
    pub stale_cache: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let results = Family::<ResultLabels, Counter>::default();
        let publish_failures = Counter::default();
        let stale_cache = Counter::default();
        let mut registry = Registry::with_prefix("azure_driver_shim");
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "results_published",
            "Lifecycle results published to Kafka",
            results.clone(),
        );
        registry.register(
            "publish_failures",
            "Attempts to publish a result that failed and will be retried",
            publish_failures.clone(),
        );
        registry.register(
            "stale_cache",
            "Creates whose object had changed since the watch cache saw it (decided again on a fresh read)",
            stale_cache.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            results,
            publish_failures,
            stale_cache,
        }
    }
}

impl Metrics {
    pub fn record_request(&self, endpoint: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_string(),
                status,
            })
            .inc();
    }

    pub fn record_result(&self, status: &ResultStatus) {
        let status = match status {
            ResultStatus::Complete => "COMPLETE",
            ResultStatus::Failed => "FAILED",
        };
        self.results
            .get_or_create(&ResultLabels {
                status: status.to_string(),
            })
            .inc();
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.record_request("execute", 202);
        metrics.record_result(&ResultStatus::Failed);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"azure_driver_shim_http_requests_total{endpoint="execute",status="202"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"azure_driver_shim_results_published_total{status="FAILED"} 1"#),
            "{text}"
        );
    }
}
