//! A Kafka test broker for demos and local runs: librdkafka's in-process mock cluster
//! (a real Kafka-protocol broker). Prints `bootstrap.servers` as its first stdout line,
//! then every message of the topic as one JSON line (`headers`, `value`), until stdin
//! closes or it is interrupted.
//!
//! `cargo run -p azure-driver-shim --example kafka-test-broker -- [topic]`

use std::io::Write;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::mocking::MockCluster;
use serde_json::{Map, Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let topic = std::env::args()
        .nth(1)
        .unwrap_or_else(|| azure_driver_shim::config::DEFAULT_TOPIC.to_string());
    let cluster = MockCluster::new(1)?;
    cluster.create_topic(&topic, 1, 1)?;
    println!("{}", cluster.bootstrap_servers());
    std::io::stdout().flush()?;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("group.id", "kafka-test-broker")
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&topic])?;

    let stdin_closed = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut sink);
    });
    let mut stdin_closed = std::pin::pin!(stdin_closed);
    loop {
        tokio::select! {
            _ = &mut stdin_closed => break,
            _ = tokio::signal::ctrl_c() => break,
            received = tokio::time::timeout(Duration::from_secs(1), consumer.recv()) => {
                let Ok(Ok(message)) = received else { continue };
                let headers: Map<String, Value> = message
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                let value = String::from_utf8_lossy(h.value.unwrap_or_default());
                                (h.key.to_string(), Value::String(value.into_owned()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let value = message
                    .payload()
                    .and_then(|p| serde_json::from_slice::<Value>(p).ok())
                    .unwrap_or(Value::Null);
                println!("{}", json!({"topic": message.topic(), "headers": headers, "value": value}));
                std::io::stdout().flush()?;
            }
        }
    }
    Ok(())
}
