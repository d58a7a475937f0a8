//! The shim in process with results on librdkafka's mock cluster: what the shim's tests
//! and benchmarks put in front of Brent-shaped requests.

use std::collections::BTreeMap;
use std::time::Duration;

use azure_driver_shim::api::Shim;
use azure_driver_shim::completion::Reporter;
use azure_driver_shim::config::KafkaSettings;
use azure_driver_shim::kafka::ResultPublisher;
use azure_driver_shim::mapping::MappingContext;
use azure_driver_shim::metrics::Metrics;
use kube::{Api, Client};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// The topic Brent reads lifecycle results from.
pub const RESULT_TOPIC: &str = "lm_vnfc_lifecycle_execution_events";

/// librdkafka's in-process mock cluster (one broker) with [`RESULT_TOPIC`] created.
pub struct MockKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl MockKafka {
    pub fn start() -> Self {
        let cluster = MockCluster::new(1).expect("the mock Kafka cluster starts");
        cluster
            .create_topic(RESULT_TOPIC, 1, 1)
            .expect("the result topic is created");
        Self { cluster }
    }

    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    /// The shim's Kafka settings for this cluster.
    pub fn settings(&self) -> KafkaSettings {
        KafkaSettings {
            bootstrap_servers: self.bootstrap_servers(),
            topic: RESULT_TOPIC.into(),
            client_config: BTreeMap::new(),
        }
    }

    /// A consumer of [`RESULT_TOPIC`] in consumer group `group`, from the earliest message.
    pub fn consumer(&self, group: &str) -> StreamConsumer {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap_servers())
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("the consumer is created");
        consumer
            .subscribe(&[RESULT_TOPIC])
            .expect("the consumer subscribes");
        consumer
    }

    /// The shim's API for `namespace`, publishing to this cluster.
    pub fn shim(&self, client: Client, namespace: &str) -> Shim {
        Shim::new(
            client,
            MappingContext {
                namespace: namespace.to_string(),
                ..MappingContext::default()
            },
            ResultPublisher::new(&self.settings()).expect("the result publisher is created"),
            Metrics::default(),
        )
    }
}

/// The shim's API and its completion reporter (replica `replica`, sweeping every
/// `sweep`) for `namespace`, with results read from the mock cluster by `consumer`
/// (consumer group `replica`).
pub struct ShimOnMockKafka {
    pub shim: Shim,
    pub consumer: StreamConsumer,
    _kafka: MockKafka,
}

impl ShimOnMockKafka {
    pub fn start(client: Client, namespace: &str, replica: &str, sweep: Duration) -> Self {
        let kafka = MockKafka::start();
        let reporter = Reporter::new(
            Api::namespaced(client.clone(), namespace),
            ResultPublisher::new(&kafka.settings()).expect("the result publisher is created"),
            replica.into(),
            Metrics::default(),
        );
        tokio::spawn(reporter.run(sweep));
        Self {
            shim: kafka.shim(client, namespace),
            consumer: kafka.consumer(replica),
            _kafka: kafka,
        }
    }
}
