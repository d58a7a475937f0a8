//! Lifecycle results on Kafka: one JSON message per finished request, idempotent producer.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::KafkaSettings;

pub const MESSAGE_VERSION: &str = "1.0.0";
pub const TENANT_HEADER: &str = "tenantId";
/// Trace ids travel as `x-tracectx-<name>` headers, as on the HTTP request.
pub const TRACE_HEADER_PREFIX: &str = "x-tracectx-";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultStatus {
    Complete,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureCode {
    ResourceAlreadyExists,
    ResourceNotFound,
    InfrastructureError,
    InsufficientCapacity,
    InternalError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureDetails {
    pub failure_code: FailureCode,
    pub description: String,
}

/// The `LifecycleExecutionAsyncResponse` of the resource-driver contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultMessage {
    pub request_id: String,
    pub status: ResultStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_details: Option<FailureDetails>,
    pub outputs: Map<String, Value>,
    pub associated_topology: Map<String, Value>,
    pub version: String,
}

impl ResultMessage {
    pub fn complete(
        request_id: String,
        outputs: Map<String, Value>,
        associated_topology: Map<String, Value>,
    ) -> Self {
        Self {
            request_id,
            status: ResultStatus::Complete,
            failure_details: None,
            outputs,
            associated_topology,
            version: MESSAGE_VERSION.into(),
        }
    }

    pub fn failed(request_id: String, failure_code: FailureCode, description: String) -> Self {
        Self {
            request_id,
            status: ResultStatus::Failed,
            failure_details: Some(FailureDetails {
                failure_code,
                description,
            }),
            outputs: Map::new(),
            associated_topology: Map::new(),
            version: MESSAGE_VERSION.into(),
        }
    }
}

/// Who asked, carried as record headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub tenant_id: Option<String>,
    pub trace: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("kafka producer cannot be created: {0}")]
    Create(#[source] KafkaError),
    #[error("result {request_id} was not delivered: {source}")]
    Delivery {
        request_id: String,
        #[source]
        source: KafkaError,
    },
    #[error("result cannot be serialised: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Publishes results; a result counts as published only once the broker acknowledged it.
#[derive(Clone)]
pub struct ResultPublisher {
    producer: FutureProducer,
    topic: String,
}

/// librdkafka gives up delivering a result after this long (`message.timeout.ms`, at most
/// this whatever the settings say): a publication claim outlives every delivery attempt.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a publish waits for room in librdkafka's queue before delivery starts.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// The producer settings: idempotent, all in-sync replicas, user settings on top
/// (except those that would break idempotence or outlive a publication claim).
pub fn client_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("client.id", "azure-driver-shim");
    for (key, value) in &settings.client_config {
        config.set(key, value);
    }
    let cap = DELIVERY_TIMEOUT.as_millis() as u64;
    let timeout = ["message.timeout.ms", "delivery.timeout.ms"]
        .iter()
        .filter_map(|key| config.get(key).and_then(|v| v.parse::<u64>().ok()))
        .filter(|ms| *ms > 0)
        .min()
        .map_or(cap, |ms| ms.min(cap));
    config
        .remove("delivery.timeout.ms")
        .set("message.timeout.ms", timeout.to_string())
        .set("enable.idempotence", "true")
        .set("acks", "all");
    config
}

impl ResultPublisher {
    pub fn new(settings: &KafkaSettings) -> Result<Self, PublishError> {
        let producer: FutureProducer = client_config(settings)
            .create()
            .map_err(PublishError::Create)?;
        Ok(Self {
            producer,
            topic: settings.topic.clone(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends one result and waits for the broker's acknowledgement. librdkafka retries
    /// through broker outages until `message.timeout.ms`.
    pub async fn publish(
        &self,
        message: &ResultMessage,
        envelope: &Envelope,
    ) -> Result<(), PublishError> {
        let payload = serde_json::to_vec(message)?;
        let mut headers = OwnedHeaders::new();
        if let Some(tenant) = &envelope.tenant_id {
            headers = headers.insert(Header {
                key: TENANT_HEADER,
                value: Some(tenant.as_bytes()),
            });
        }
        for (name, value) in &envelope.trace {
            let key = format!("{TRACE_HEADER_PREFIX}{name}");
            headers = headers.insert(Header {
                key: &key,
                value: Some(value.as_bytes()),
            });
        }
        let record: FutureRecord<'_, (), Vec<u8>> = FutureRecord::to(&self.topic)
            .payload(&payload)
            .headers(headers);
        self.producer
            .send(record, QUEUE_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(|(source, _)| PublishError::Delivery {
                request_id: message.request_id.clone(),
                source,
            })
    }

    /// Waits for queued messages, e.g. before exit.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::Message;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::Headers;
    use rdkafka::mocking::MockCluster;
    use serde_json::json;

    #[test]
    fn message_shapes_follow_the_contract() {
        let done = ResultMessage::complete(
            "Create::/x::u".into(),
            serde_json::from_value(json!({"a": 1})).unwrap(),
            serde_json::from_value(json!({"neta": {"id": "/x", "type": "Azure"}})).unwrap(),
        );
        assert_eq!(
            serde_json::to_value(&done).unwrap(),
            json!({"requestId": "Create::/x::u", "status": "COMPLETE", "outputs": {"a": 1},
                   "associatedTopology": {"neta": {"id": "/x", "type": "Azure"}}, "version": "1.0.0"})
        );
        let failed =
            ResultMessage::failed("r".into(), FailureCode::InfrastructureError, "boom".into());
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            json!({"requestId": "r", "status": "FAILED",
                   "failureDetails": {"failureCode": "INFRASTRUCTURE_ERROR", "description": "boom"},
                   "outputs": {}, "associatedTopology": {}, "version": "1.0.0"})
        );
    }

    #[test]
    fn user_settings_cannot_turn_idempotence_off() {
        let settings = KafkaSettings {
            bootstrap_servers: "b:9092".into(),
            topic: "t".into(),
            client_config: BTreeMap::from([
                ("enable.idempotence".into(), "false".into()),
                ("security.protocol".into(), "SASL_SSL".into()),
            ]),
        };
        let config = client_config(&settings);
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("message.timeout.ms"), Some("120000"));
    }

    #[test]
    fn delivery_never_outlasts_the_cap() {
        let with = |key: &str, value: &str| {
            client_config(&KafkaSettings {
                bootstrap_servers: "b:9092".into(),
                topic: "t".into(),
                client_config: BTreeMap::from([(key.into(), value.into())]),
            })
        };
        let longer = with("delivery.timeout.ms", "300000");
        assert_eq!(longer.get("message.timeout.ms"), Some("120000"));
        assert_eq!(longer.get("delivery.timeout.ms"), None);
        assert_eq!(
            with("message.timeout.ms", "0").get("message.timeout.ms"),
            Some("120000")
        );
        assert_eq!(
            with("message.timeout.ms", "30000").get("message.timeout.ms"),
            Some("30000")
        );
    }

    #[tokio::test]
    async fn publishes_to_a_real_kafka_protocol_broker() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("results", 1, 1).unwrap();
        let settings = KafkaSettings {
            bootstrap_servers: cluster.bootstrap_servers(),
            topic: "results".into(),
            client_config: BTreeMap::new(),
        };
        let publisher = ResultPublisher::new(&settings).unwrap();
        let envelope = Envelope {
            tenant_id: Some("tenant-a".into()),
            trace: BTreeMap::from([("transactionid".into(), "tx-1".into())]),
        };
        for i in 0..3 {
            let message = ResultMessage::complete(format!("req-{i}"), Map::new(), Map::new());
            publisher.publish(&message, &envelope).await.unwrap();
        }

        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("group.id", "test")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&["results"]).unwrap();
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let message = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
                .await
                .expect("message within 20 s")
                .unwrap();
            let body: ResultMessage = serde_json::from_slice(message.payload().unwrap()).unwrap();
            let headers = message.headers().unwrap();
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|h| h.key == name)
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8(v.to_vec()).unwrap())
            };
            assert_eq!(header(TENANT_HEADER).as_deref(), Some("tenant-a"));
            assert_eq!(header("x-tracectx-transactionid").as_deref(), Some("tx-1"));
            assert!(message.key().is_none());
            seen.push(body.request_id);
        }
        assert_eq!(seen, ["req-0", "req-1", "req-2"]);
    }
}
