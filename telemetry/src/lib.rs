//! What the binaries (controller, shim, admission webhook) share about running as a
//! service: logs, human-readable by default or logstash JSON lines (the fields the Python
//! driver's Filebeat/Elasticsearch setup indexes) with `LOG_TYPE=logstash`, one line shape
//! for every binary; the `tracectx` span field that carries a request's trace ids into
//! every line; and the shutdown signal.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber, span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

#[cfg(any(test, feature = "test-support"))]
pub mod capture;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    /// One logstash JSON object per line.
    Logstash,
}

impl LogFormat {
    /// The format a `LOG_TYPE` value selects: `logstash` (any case), else text.
    pub fn from_log_type(log_type: &str) -> Self {
        if log_type.eq_ignore_ascii_case("logstash") {
            Self::Logstash
        } else {
            Self::Text
        }
    }
}

/// Span or event fields as strings.
#[derive(Default, Debug, Clone)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

/// Python logging level names, which the existing dashboards filter on.
fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// The `tracectx` span field for a request's trace ids: `key=value` pairs joined by `;`.
pub fn trace_field(trace: &BTreeMap<String, String>) -> String {
    trace
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Writes one logstash JSON object per event to the writer.
pub struct LogstashLayer<W> {
    writer: Arc<Mutex<W>>,
    hostname: String,
}

impl<W: Write> LogstashLayer<W> {
    pub fn new(writer: W, hostname: String) -> Self {
        Self {
            writer: Arc::new(Mutex::new(writer)),
            hostname,
        }
    }
}

/// `tracectx` span fields hold `key=value;key=value`; each becomes `tracectx.<key>`.
fn insert_field(line: &mut Map<String, Value>, name: &str, value: &str) {
    if name == "tracectx" {
        for pair in value.split(';').filter(|p| !p.is_empty()) {
            if let Some((key, val)) = pair.split_once('=') {
                line.insert(format!("tracectx.{key}"), Value::String(val.to_string()));
            }
        }
    } else {
        line.insert(name.to_string(), Value::String(value.to_string()));
    }
}

impl<S, W> Layer<S> for LogstashLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: Write + Send + 'static,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(fields) = extensions.get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = Map::new();
        line.insert(
            "@timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        line.insert("@version".into(), Value::String("1".into()));
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<Fields>() {
                    for (name, value) in &fields.0 {
                        insert_field(&mut line, name, value);
                    }
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        for (name, value) in &fields.0 {
            insert_field(&mut line, name, value);
        }
        let message = line
            .remove("message")
            .unwrap_or(Value::String(String::new()));
        line.insert("message".into(), message);
        line.insert(
            "level".into(),
            Value::String(level_name(event.metadata().level()).into()),
        );
        line.insert(
            "logger_name".into(),
            Value::String(event.metadata().target().into()),
        );
        let thread = std::thread::current();
        line.insert(
            "thread_name".into(),
            Value::String(
                thread
                    .name()
                    .map_or_else(|| format!("{:?}", thread.id()), str::to_string),
            ),
        );
        line.insert("HOSTNAME".into(), Value::String(self.hostname.clone()));
        if let Ok(mut writer) = self.writer.lock() {
            let _ = serde_json::to_writer(&mut *writer, &Value::Object(line));
            let _ = writer.write_all(b"\n");
        }
    }
}

/// Installs the global subscriber writing to stdout. `RUST_LOG` wins over
/// `default_directives` (an `EnvFilter` string such as `info,kube=warn`) when set.
pub fn init(format: LogFormat, default_directives: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_directives));
    match format {
        LogFormat::Logstash => {
            let hostname = std::env::var("HOSTNAME").unwrap_or_default();
            tracing_subscriber::registry()
                .with(filter)
                .with(LogstashLayer::new(std::io::stdout(), hostname))
                .init();
        }
        LogFormat::Text => {
            tracing_subscriber::registry()
                .with(filter)
                .with(tracing_subscriber::fmt::layer())
                .init();
        }
    }
}

/// Resolves on SIGTERM (Kubernetes) or Ctrl-C; on Ctrl-C alone where SIGTERM cannot be
/// listened for.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::logstash_lines;

    #[test]
    fn a_line_has_the_logstash_fields_and_the_span_and_event_fields() {
        let lines = logstash_lines("pod-1", || {
            let span = tracing::info_span!("reconcile", object = "ns/web", tracectx = "a=1;b=2");
            let _entered = span.enter();
            tracing::error!(attempt = 3, "deploy failed");
        });
        let line = &lines[0];
        let keys: Vec<&str> = line.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "@timestamp",
                "@version",
                "object",
                "tracectx.a",
                "tracectx.b",
                "attempt",
                "message",
                "level",
                "logger_name",
                "thread_name",
                "HOSTNAME",
            ]
        );
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["attempt"], "3");
        assert_eq!(line["object"], "ns/web");
        assert_eq!(line["message"], "deploy failed");
        assert!(
            line["logger_name"]
                .as_str()
                .unwrap()
                .starts_with("telemetry")
        );
    }

    #[test]
    fn levels_use_python_names_and_a_line_without_message_has_an_empty_one() {
        let lines = logstash_lines("pod-1", || {
            tracing::warn!(code = "x");
            tracing::info!("i");
            tracing::debug!("d");
            tracing::trace!("t");
        });
        let levels: Vec<&Value> = lines.iter().map(|l| &l["level"]).collect();
        assert_eq!(levels, ["WARNING", "INFO", "DEBUG", "TRACE"]);
        assert_eq!(lines[0]["message"], "");
    }

    #[test]
    fn trace_fields_join_pairs_and_skip_malformed_ones() {
        let trace = BTreeMap::from([("b".to_string(), "2".to_string()), ("a".into(), "1".into())]);
        assert_eq!(trace_field(&trace), "a=1;b=2");
        let lines = logstash_lines("pod-1", || {
            let span = tracing::info_span!("r", tracectx = "x=1;;novalue;y=a=b");
            let _entered = span.enter();
            tracing::info!("m");
        });
        assert_eq!(lines[0]["tracectx.x"], "1");
        assert_eq!(lines[0]["tracectx.y"], "a=b");
        assert!(!lines[0].contains_key("tracectx.novalue"));
        assert!(!lines[0].contains_key("tracectx"));
    }

    #[test]
    fn log_type_selects_the_format() {
        assert_eq!(LogFormat::from_log_type("logstash"), LogFormat::Logstash);
        assert_eq!(LogFormat::from_log_type("LOGSTASH"), LogFormat::Logstash);
        assert_eq!(LogFormat::from_log_type("text"), LogFormat::Text);
        assert_eq!(LogFormat::from_log_type(""), LogFormat::Text);
    }
}
