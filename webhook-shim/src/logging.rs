//! Logs: human-readable by default, logstash JSON lines with `LOG_TYPE=logstash`. The
//! line format is `telemetry`'s, shared with the controller; this module adds the shim's
//! log-level names and quiet dependencies.

pub use telemetry::{LogFormat, LogstashLayer, trace_field};

use crate::config::tracing_level;

/// Installs the global subscriber. `RUST_LOG` wins over `LOG_LEVEL` when set.
pub fn init(format: LogFormat, level: &str) {
    telemetry::init(
        format,
        &format!("{},rdkafka=warn,kube=warn,hyper=warn", tracing_level(level)),
    );
}

#[cfg(test)]
mod tests {
    use telemetry::capture::logstash_lines;

    #[test]
    fn logstash_lines_carry_tracectx_fields() {
        let lines = logstash_lines("pod-1", || {
            let span =
                tracing::info_span!("request", tracectx = "transactionid=tx-1;processid=p-2");
            let _entered = span.enter();
            tracing::warn!(request_id = "r-1", "lifecycle request accepted");
        });
        let [line] = lines.as_slice() else {
            panic!("one line: {lines:?}");
        };
        assert_eq!(line["message"], "lifecycle request accepted");
        assert_eq!(line["level"], "WARNING");
        assert_eq!(line["@version"], "1");
        assert_eq!(line["HOSTNAME"], "pod-1");
        assert_eq!(line["tracectx.transactionid"], "tx-1");
        assert_eq!(line["tracectx.processid"], "p-2");
        assert_eq!(line["request_id"], "r-1");
        assert!(
            line["logger_name"]
                .as_str()
                .unwrap()
                .starts_with("azure_driver_shim")
        );
        assert!(line["thread_name"].is_string());
        assert!(line["@timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
