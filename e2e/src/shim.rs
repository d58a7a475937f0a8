//! The shim in process with results on librdkafka's mock cluster: what the shim's tests
//! and benchmarks put in front of Brent-shaped requests.

use std::collections::BTreeMap;
use std::time::Duration;

use azure_driver_shim::api::Shim;
use azure_driver_shim::config::KafkaSettings;
use azure_driver_shim::kafka::{ResultMessage, ResultPublisher};
use azure_driver_shim::mapping::MappingContext;
use azure_driver_shim::metrics::Metrics;
use azure_driver_shim::reporter::Reporter;
use kube::{Api, Client};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

/// The topic Brent reads lifecycle results from.
pub const RESULT_TOPIC: &str = "lm_vnfc_lifecycle_execution_events";

/// A Brent request of `lifecycle` for the legacy `AzureResourceGroup` type (built-in
/// template): resource `id` makes the group `group` in westeurope, with the credentials
/// of `deployment_location`.
pub fn resource_group_request(
    lifecycle: &str,
    id: &str,
    group: &str,
    deployment_location: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "lifecycleName": lifecycle,
        "driverFiles": "",
        "systemProperties": {
            "resourceId": {"type": "string", "value": id},
            "resourceName": {"type": "string", "value": group},
            "resourceType": {"type": "string", "value": "resource::AzureResourceGroup::1.0"}
        },
        "resourceProperties": {
            "resourcegroup_name": {"type": "string", "value": group},
            "resourcegroup_location": {"type": "string", "value": "westeurope"}
        },
        "requestProperties": {},
        "associatedTopology": {},
        "deploymentLocation": deployment_location
    })
}

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
        let objects = reporter.cache();
        tokio::spawn(reporter.run(sweep));
        Self {
            shim: kafka.shim(client, namespace).with_object_cache(objects),
            consumer: kafka.consumer(replica),
            _kafka: kafka,
        }
    }

    /// The next result published on Kafka, waiting at most `wait` for it.
    pub async fn next_result(&self, wait: Duration) -> ResultMessage {
        let message = tokio::time::timeout(wait, self.consumer.recv())
            .await
            .expect("a result on Kafka within the wait")
            .expect("the consumer reads the result topic");
        serde_json::from_slice(message.payload().expect("the result has a payload"))
            .expect("the result is a result message")
    }

    /// Panics if a result is published within `quiet`.
    pub async fn no_result_within(&self, quiet: Duration) {
        if let Ok(Ok(message)) = tokio::time::timeout(quiet, self.consumer.recv()).await {
            panic!("unexpected result {:?}", message.payload_view::<str>());
        }
    }
}

/// The mock cluster made reachable on `address` (a host address pods can reach).
///
/// librdkafka's mock broker listens on loopback only and names itself `127.0.0.1` in
/// metadata. This listener, on the broker's port at `address`, forwards Kafka frames both
/// ways and rewrites the broker address in the answers that carry one (Metadata,
/// FindCoordinator, DescribeCluster), as a broker's `advertised.listeners` would name it.
pub struct AdvertisedKafka {
    bootstrap_servers: String,
    accept: tokio::task::JoinHandle<()>,
}

/// Kafka API keys whose responses name brokers.
const BROKER_NAMING_APIS: [i16; 3] = [3, 10, 60];
const LOOPBACK: &[u8] = b"127.0.0.1";

impl AdvertisedKafka {
    /// Starts listening; the forwarding runs on the current tokio runtime until dropped.
    pub async fn start(kafka: &MockKafka, address: std::net::IpAddr) -> std::io::Result<Self> {
        let broker: std::net::SocketAddr = kafka
            .bootstrap_servers()
            .parse()
            .expect("a one-broker mock cluster bootstraps from one address");
        let listener = tokio::net::TcpListener::bind((address, broker.port())).await?;
        let host = address.to_string();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward_kafka(client, broker, host.clone()));
            }
        });
        Ok(Self {
            bootstrap_servers: format!("{address}:{}", broker.port()),
            accept,
        })
    }

    /// `bootstrap.servers` for clients that reach `address`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }
}

impl Drop for AdvertisedKafka {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn read_frame(stream: &mut tokio::net::tcp::OwnedReadHalf) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let size = stream.read_i32().await?;
    let mut frame = vec![0; usize::try_from(size).map_err(std::io::Error::other)?];
    stream.read_exact(&mut frame).await?;
    Ok(frame)
}

async fn write_frame(
    stream: &mut tokio::net::tcp::OwnedWriteHalf,
    frame: &[u8],
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    let size = i32::try_from(frame.len()).map_err(std::io::Error::other)?;
    stream.write_all(&size.to_be_bytes()).await?;
    stream.write_all(frame).await
}

/// One client connection: requests pass unchanged (their API key noted by correlation
/// id), answers naming brokers get `host` instead of the loopback address.
async fn forward_kafka(
    client: tokio::net::TcpStream,
    broker: std::net::SocketAddr,
    host: String,
) -> std::io::Result<()> {
    let upstream = tokio::net::TcpStream::connect(broker).await?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut broker_read, mut broker_write) = upstream.into_split();
    let pending = std::sync::Mutex::new(std::collections::HashMap::new());
    let requests = async {
        loop {
            let frame = read_frame(&mut client_read).await?;
            // Request header: api_key i16, api_version i16, correlation_id i32.
            if let (Some(key), Some(correlation)) = (frame.get(0..2), frame.get(4..8)) {
                let key = i16::from_be_bytes([key[0], key[1]]);
                let correlation = i32::from_be_bytes(correlation.try_into().expect("4 bytes"));
                pending
                    .lock()
                    .expect("not poisoned")
                    .insert(correlation, key);
            }
            write_frame(&mut broker_write, &frame).await?;
        }
    };
    let responses = async {
        loop {
            let frame = read_frame(&mut broker_read).await?;
            let key = frame.get(0..4).and_then(|correlation| {
                let correlation = i32::from_be_bytes(correlation.try_into().expect("4 bytes"));
                pending.lock().expect("not poisoned").remove(&correlation)
            });
            let frame = match key {
                Some(key) if BROKER_NAMING_APIS.contains(&key) => advertise(&frame, &host),
                _ => frame,
            };
            write_frame(&mut client_write, &frame).await?;
        }
    };
    tokio::select! {
        result = requests => result,
        result = responses => result,
    }
}

/// `frame` with every `127.0.0.1` string field (INT16-length or compact, length + 1, as
/// the API version has it) replaced by `host`.
fn advertise(frame: &[u8], host: &str) -> Vec<u8> {
    let loopback_len = LOOPBACK.len() as u8;
    let host_len = u8::try_from(host.len()).expect("an IP address is short");
    let mut out = Vec::with_capacity(frame.len() + 16);
    let mut at = 0;
    while at < frame.len() {
        if frame[at..].starts_with(LOOPBACK) {
            let n = out.len();
            if n >= 2 && out[n - 2..] == [0, loopback_len] {
                out[n - 1] = host_len;
            } else if n >= 1 && out[n - 1] == loopback_len + 1 {
                out[n - 1] = host_len + 1;
            } else {
                out.push(frame[at]);
                at += 1;
                continue;
            }
            out.extend_from_slice(host.as_bytes());
            at += LOOPBACK.len();
            continue;
        }
        out.push(frame[at]);
        at += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::advertise;

    #[test]
    fn broker_names_are_rewritten_with_their_length_prefixes() {
        let mut legacy = vec![0, 0, 0, 7, 0, 9];
        legacy.extend_from_slice(b"127.0.0.1");
        legacy.extend_from_slice(&[0, 0, 0x23, 0x82]);
        let mut expected = vec![0, 0, 0, 7, 0, 12];
        expected.extend_from_slice(b"10.87.10.201");
        expected.extend_from_slice(&[0, 0, 0x23, 0x82]);
        assert_eq!(advertise(&legacy, "10.87.10.201"), expected);

        let mut compact = vec![1, 10];
        compact.extend_from_slice(b"127.0.0.1");
        let mut expected = vec![1, 10];
        expected.extend_from_slice(b"10.87.0.1");
        assert_eq!(advertise(&compact, "10.87.0.1"), expected);

        let unprefixed = b"x127.0.0.1".to_vec();
        assert_eq!(advertise(&unprefixed, "10.87.0.1"), unprefixed);
    }
}
