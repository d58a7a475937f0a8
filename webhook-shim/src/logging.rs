//! Logs: human-readable by default, logstash JSON lines with `LOG_TYPE=logstash`
//! (the fields the Python driver's Filebeat/Elasticsearch setup indexes).

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

use crate::config::{LogFormat, tracing_level};

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

/// Installs the global subscriber. `RUST_LOG` wins over `LOG_LEVEL` when set.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{},rdkafka=warn,kube=warn,hyper=warn",
            tracing_level(level)
        ))
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn logstash_lines_carry_tracectx_fields() {
        let buffer = Buffer::default();
        let subscriber =
            tracing_subscriber::registry().with(LogstashLayer::new(buffer.clone(), "pod-1".into()));
        tracing::subscriber::with_default(subscriber, || {
            let span =
                tracing::info_span!("request", tracectx = "transactionid=tx-1;processid=p-2");
            let _entered = span.enter();
            tracing::warn!(request_id = "r-1", "lifecycle request accepted");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
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
