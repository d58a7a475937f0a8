//! Prometheus metrics served on `/metrics`.

use std::time::Duration;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ArmLabels {
    pub operation: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Counter,
    pub reconcile_duration: Histogram,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub actions: Family<ActionLabels, Counter>,
    pub arm_requests: Family<ArmLabels, Counter>,
    pub arm_request_duration: Family<ArmLabels, Histogram>,
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("azure_driver");
        let reconciles = Counter::default();
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let actions = Family::<ActionLabels, Counter>::default();
        let arm_requests = Family::<ArmLabels, Counter>::default();
        let arm_request_duration = Family::<ArmLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let leader = Gauge::default();
        registry.register("reconcile", "Reconciliations", reconciles.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one reconciliation",
            reconcile_duration.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciliations by reason",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_actions",
            "Reconcile steps taken, by action",
            actions.clone(),
        );
        registry.register(
            "arm_requests",
            "Azure Resource Manager requests by operation and status",
            arm_requests.clone(),
        );
        registry.register(
            "arm_request_duration_seconds",
            "Azure Resource Manager request latency",
            arm_request_duration.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the lease",
            leader.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_duration,
            reconcile_errors,
            actions,
            arm_requests,
            arm_request_duration,
            leader,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, took: Duration) {
        self.reconciles.inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    pub fn error(&self, metric_label: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                reason: metric_label.into(),
            })
            .inc();
    }

    pub fn action(&self, action: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                action: action.into(),
            })
            .inc();
    }

    pub fn arm_request(&self, operation: &str, status: &str, took: Duration) {
        let labels = ArmLabels {
            operation: operation.into(),
            status: status.into(),
        };
        self.arm_requests.get_or_create(&labels).inc();
        self.arm_request_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_reconciles_errors_arm_requests_and_leadership() {
        let m = Metrics::default();
        m.reconciled(Duration::from_millis(20));
        m.error("arm_terminal");
        m.arm_request("deployments.put", "201", Duration::from_millis(3));
        m.leader.set(1);
        let text = m.encode();
        assert!(text.contains("azure_driver_reconcile_total 1"), "{text}");
        assert!(text.contains("azure_driver_reconcile_errors_total{reason=\"arm_terminal\"} 1"));
        assert!(text.contains(
            "azure_driver_arm_requests_total{operation=\"deployments.put\",status=\"201\"} 1"
        ));
        assert!(text.contains("azure_driver_leader 1"));
        assert!(text.contains("azure_driver_reconcile_duration_seconds_count 1"));
    }
}
