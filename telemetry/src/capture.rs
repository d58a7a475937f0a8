//! Log capture for tests: the logstash lines events produce, parsed, so tests of every
//! binary check the one line shape the same way.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tracing_subscriber::layer::SubscriberExt;

use crate::LogstashLayer;

/// A writer that keeps what is written, shared between its clones.
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

/// The lines a [`LogstashLayer`] with `HOSTNAME` `hostname` writes for the events `emit`
/// emits, each parsed as a JSON object. Panics on a line that is not one.
pub fn logstash_lines(hostname: &str, emit: impl FnOnce()) -> Vec<Map<String, Value>> {
    let buffer = Buffer::default();
    let subscriber =
        tracing_subscriber::registry().with(LogstashLayer::new(buffer.clone(), hostname.into()));
    tracing::subscriber::with_default(subscriber, emit);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|line| match serde_json::from_str(line).unwrap() {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        })
        .collect()
}
