//! The shim against a real kube-apiserver and librdkafka's mock Kafka cluster: requests
//! become objects, object status (set here through the status subresource, as the
//! controller would) becomes exactly one Kafka message per request.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use azure_driver_shim::api::{Shim, routes};
use azure_driver_shim::config::KafkaSettings;
use azure_driver_shim::kafka::{ResultMessage, ResultPublisher, ResultStatus};
use azure_driver_shim::mapping::{
    ANNOTATION_REPORTED, FINALIZER, LABEL_RESOURCE_ID, MappingContext,
};
use azure_driver_shim::metrics::Metrics;
use azure_driver_shim::reporter::Reporter;
use crds::AzureResource;
use e2e::{ControlPlane, TestNamespace};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};

const TOPIC: &str = "lm_vnfc_lifecycle_execution_events";
const SUB: &str = "00000000-0000-0000-0000-0000000000aa";

struct Harness {
    client: Client,
    namespace: TestNamespace,
    kafka: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
}

impl Harness {
    async fn new() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("azure_driver_shim=debug")
            .try_init();
        let control_plane = ControlPlane::shared().await;
        let namespace = TestNamespace::create(control_plane).await;
        let kafka = MockCluster::new(1).expect("mock cluster");
        kafka.create_topic(TOPIC, 1, 1).expect("topic");
        Self {
            client: control_plane.client(),
            namespace,
            kafka,
        }
    }

    fn kafka_settings(&self) -> KafkaSettings {
        KafkaSettings {
            bootstrap_servers: self.kafka.bootstrap_servers(),
            topic: TOPIC.into(),
            client_config: BTreeMap::new(),
        }
    }

    fn shim(&self) -> Shim {
        Shim::new(
            self.client.clone(),
            MappingContext {
                namespace: self.namespace.name().to_string(),
                ..MappingContext::default()
            },
            ResultPublisher::new(&self.kafka_settings()).unwrap(),
            Metrics::default(),
        )
    }

    fn start_reporter(&self, replica: &str) -> tokio::task::JoinHandle<()> {
        let reporter = Reporter::new(
            Api::namespaced(self.client.clone(), self.namespace.name()),
            ResultPublisher::new(&self.kafka_settings()).unwrap(),
            replica.to_string(),
            Metrics::default(),
        );
        tokio::spawn(reporter.run(Duration::from_secs(1)))
    }

    fn resources(&self) -> Api<AzureResource> {
        Api::namespaced(self.client.clone(), self.namespace.name())
    }

    async fn no_objects(&self) -> bool {
        let list = self.resources().list(&ListParams::default()).await.unwrap();
        list.items.is_empty()
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), self.namespace.name())
    }

    fn consumer(&self) -> StreamConsumer {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.kafka.bootstrap_servers())
            .set("group.id", format!("count-{}", uuid::Uuid::new_v4()))
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&[TOPIC]).unwrap();
        consumer
    }

    async fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = warp::test::request()
            .method("POST")
            .path(path)
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.reply(&routes(self.shim())).await;
        (
            response.status().as_u16(),
            serde_json::from_slice(response.body()).unwrap(),
        )
    }

    /// Creates resource `ids[i]` named `<name>-<i>`, each answered 202; their request ids.
    async fn create_all(&self, ids: &[String], name: &str) -> Vec<String> {
        let mut request_ids = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let (status, body) = self
                .post(
                    "/api/driver/lifecycle/execute",
                    &execute_body("Create", id, &format!("{name}-{i}")),
                    &[],
                )
                .await;
            assert_eq!(status, 202, "{body}");
            request_ids.push(body["requestId"].as_str().unwrap().to_string());
        }
        request_ids
    }

    /// What the controller would write: phase and outputs for the current generation.
    async fn set_status(&self, name: &str, phase: &str, extra: Value) {
        let object = self.resources().get(name).await.unwrap();
        let mut status = json!({
            "phase": phase,
            "observedGeneration": object.metadata.generation,
            "outputs": {"vnetId": "/subscriptions/x/vnet1"},
        });
        if let (Value::Object(status), Value::Object(extra)) = (&mut status, extra) {
            status.extend(extra);
        }
        self.resources()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
            .unwrap();
    }
}

/// Collects every message that arrives within `quiet` of the previous one (the first
/// within `first_within`). Consumer errors (a broker coming back) are skipped.
async fn drain(
    consumer: &StreamConsumer,
    first_within: Duration,
    quiet: Duration,
) -> Vec<(ResultMessage, HashMap<String, String>)> {
    let mut messages = Vec::new();
    let mut deadline = tokio::time::Instant::now() + first_within;
    loop {
        let message = match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Err(_) => return messages,
            Ok(Err(_)) => continue,
            Ok(Ok(message)) => message,
        };
        let body: ResultMessage = serde_json::from_slice(message.payload().unwrap()).unwrap();
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value.unwrap_or_default());
                        (h.key.to_string(), value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        messages.push((body, headers));
        deadline = tokio::time::Instant::now() + quiet;
    }
}

fn execute_body(lifecycle: &str, resource_id: &str, resource_name: &str) -> Value {
    json!({
        "lifecycleName": lifecycle,
        "driverFiles": "",
        "systemProperties": {
            "resourceId": {"type": "string", "value": resource_id},
            "resourceName": {"type": "string", "value": resource_name},
            "resourceType": {"type": "string", "value": "resource::AzureVNet::1.0"},
            "requestId": {"type": "string", "value": "brent-req-1"}
        },
        "resourceProperties": {
            "resourcegroup_name": {"type": "string", "value": "rg1"},
            "vnet_name": {"type": "string", "value": "vnet1"},
            "vnet_address_space": {"type": "string", "value": "10.1.0.0/16"}
        },
        "requestProperties": {},
        "associatedTopology": {},
        "deploymentLocation": {
            "name": "azure-dev",
            "type": "Azure",
            "properties": {"tenantId": "tenant", "clientId": "client", "clientSecret": "very-secret", "subscriptionId": SUB}
        }
    })
}

async fn wait_gone(api: &Api<AzureResource>, name: &str) {
    for _ in 0..100 {
        if api.get_opt(name).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} still exists");
}

#[tokio::test]
async fn create_then_delete_round_trip() {
    let h = Harness::new().await;
    let consumer = h.consumer();
    let _reporter = h.start_reporter("replica-a");
    let id = "6c1a0b7e-1111-4222-8333-944455556666";

    let (status, body) = h
        .post(
            "/api/driver/lifecycle/execute",
            &execute_body("Install", id, "net-a"),
            &[
                ("tenantId", "tenant-7"),
                ("x-tracectx-TransactionId", "tx-42"),
            ],
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let request_id = body["requestId"].as_str().unwrap().to_string();
    assert!(request_id.starts_with(&format!(
        "Create::/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Resources/deploymentStacks/"
    )), "{request_id}");
    // As the Python driver: the 202 names the new entry; its id is the stack the request id names.
    let accepted_entry = &body["associatedTopology"]["neta"];
    assert_eq!(accepted_entry["type"], json!("Azure"));
    assert_eq!(
        request_id.split("::").nth(1),
        accepted_entry["id"].as_str(),
        "{body}"
    );

    let name = format!("r-{id}");
    let object = h.resources().get(&name).await.unwrap();
    assert_eq!(object.spec.resource_group.as_deref(), Some("rg1"));
    assert_eq!(object.spec.parameters["vnet_name"], json!("vnet1"));
    assert_eq!(object.labels()[LABEL_RESOURCE_ID], id);
    assert!(object.finalizers().contains(&FINALIZER.to_string()));
    let credentials_name = &object.spec.credentials_secret_ref.as_ref().unwrap().name;
    assert!(credentials_name.starts_with("dl-"), "{credentials_name}");
    let credentials = h.secrets().get(credentials_name).await.unwrap();
    assert_eq!(
        credentials.data.unwrap()["clientSecret"].0,
        b"very-secret".to_vec()
    );
    assert!(
        !serde_json::to_string(&object)
            .unwrap()
            .contains("very-secret")
    );

    // Nothing is published before the controller reports the generation done.
    assert!(
        drain(&consumer, Duration::from_secs(2), Duration::from_secs(1))
            .await
            .is_empty()
    );
    h.set_status(&name, "Ready", json!({})).await;
    let messages = drain(&consumer, Duration::from_secs(20), Duration::from_secs(3)).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let (message, headers) = &messages[0];
    assert_eq!(message.request_id, request_id);
    assert_eq!(message.status, ResultStatus::Complete);
    assert_eq!(
        message.outputs["vnetId"],
        json!({"type": "String", "value": "/subscriptions/x/vnet1"})
    );
    assert_eq!(message.associated_topology["neta"]["type"], json!("Azure"));
    assert_eq!(&message.associated_topology["neta"], accepted_entry);
    assert!(
        message.associated_topology["neta"]["id"]
            .as_str()
            .unwrap()
            .contains("deploymentStacks")
    );
    assert_eq!(headers["tenantId"], "tenant-7");
    assert_eq!(headers["x-tracectx-transactionid"], "tx-42");

    let (status, found) = h
        .post(
            "/api/driver/references/find",
            &json!({"instanceName": "net-a", "driverFiles": "", "deploymentLocation": {"name": "azure-dev"}}),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["result"]["resourceId"], json!(id));
    assert_eq!(
        found["result"]["associatedTopology"],
        Value::Object(message.associated_topology.clone())
    );

    let (status, body) = h
        .post(
            "/api/driver/lifecycle/execute",
            &execute_body("Uninstall", id, "net-a"),
            &[("tenantId", "tenant-7")],
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let delete_id = body["requestId"].as_str().unwrap().to_string();
    assert!(
        delete_id.starts_with("Delete::/subscriptions/"),
        "{delete_id}"
    );
    assert_eq!(body["associatedTopology"], json!({"neta": null}));
    wait_gone(&h.resources(), &name).await;
    let messages = drain(&consumer, Duration::from_secs(20), Duration::from_secs(3)).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].0.request_id, delete_id);
    assert_eq!(messages[0].0.status, ResultStatus::Complete);
    assert_eq!(
        Value::Object(messages[0].0.associated_topology.clone()),
        json!({"neta": null})
    );

    let (_, gone) = h
        .post(
            "/api/driver/references/find",
            &json!({"instanceName": "net-a", "driverFiles": "", "deploymentLocation": {"name": "azure-dev"}}),
            &[],
        )
        .await;
    assert_eq!(gone, json!({"result": null}));
}

#[tokio::test]
async fn failure_reports_the_arm_message() {
    let h = Harness::new().await;
    let consumer = h.consumer();
    let _reporter = h.start_reporter("replica-a");
    let id = "7d2b1c8f-2222-4333-8444-a55566667777";
    let (status, body) = h
        .post(
            "/api/driver/lifecycle/execute",
            &execute_body("Create", id, "net-b"),
            &[],
        )
        .await;
    assert_eq!(status, 202, "{body}");
    h.set_status(
        &format!("r-{id}"),
        "Failed",
        json!({"error": {"code": "InvalidTemplateDeployment", "message": "The subnet overlaps 10.1.0.0/16"}}),
    )
    .await;
    let messages = drain(&consumer, Duration::from_secs(20), Duration::from_secs(3)).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0].0;
    assert_eq!(message.status, ResultStatus::Failed);
    let details = message.failure_details.as_ref().unwrap();
    assert_eq!(
        serde_json::to_value(details.failure_code).unwrap(),
        json!("INFRASTRUCTURE_ERROR")
    );
    assert_eq!(details.description, "The subnet overlaps 10.1.0.0/16");
}

#[tokio::test]
async fn delete_without_objects_or_topology_completes_at_once() {
    let h = Harness::new().await;
    let consumer = h.consumer();
    let id = "8e3c2d90-3333-4444-8555-b66677778888";
    let body = execute_body("Delete", id, "net-c");
    let (status, answer) = h.post("/api/driver/lifecycle/execute", &body, &[]).await;
    assert_eq!(status, 202, "{answer}");
    let request_id = answer["requestId"].as_str().unwrap();
    assert!(
        request_id.starts_with(&format!("Delete::{id}::")),
        "{request_id}"
    );
    let messages = drain(&consumer, Duration::from_secs(20), Duration::from_secs(2)).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].0.request_id, request_id);
    assert_eq!(messages[0].0.status, ResultStatus::Complete);
    assert!(h.no_objects().await);
}

/// Requests that replace one still running: the running one is answered FAILED first, so
/// each accepted request has exactly one result.
#[tokio::test]
async fn a_request_replacing_an_unanswered_one_answers_it() {
    let h = Harness::new().await;
    let _reporter = h.start_reporter("replica-a");
    let consumer = h.consumer();
    let id = "8e3c2d90-3333-4444-8555-b6667777888a";
    let execute = "/api/driver/lifecycle/execute";
    let mut ids = Vec::new();
    for lifecycle in ["Create", "Create", "Delete"] {
        let (status, answer) = h
            .post(execute, &execute_body(lifecycle, id, "net-e"), &[])
            .await;
        assert_eq!(status, 202, "{answer}");
        ids.push(answer["requestId"].as_str().unwrap().to_string());
    }
    let messages = drain(&consumer, Duration::from_secs(20), Duration::from_secs(3)).await;
    let results: Vec<(&str, ResultStatus)> = messages
        .iter()
        .map(|(m, _)| (m.request_id.as_str(), m.status))
        .collect();
    assert_eq!(
        results,
        [
            (ids[0].as_str(), ResultStatus::Failed),
            (ids[1].as_str(), ResultStatus::Failed),
            (ids[2].as_str(), ResultStatus::Complete),
        ]
    );
    assert!(
        messages[1]
            .0
            .failure_details
            .as_ref()
            .unwrap()
            .description
            .contains("replaced"),
        "{:?}",
        messages[1].0
    );
    assert!(h.no_objects().await);
}

/// Stands in for the controller (not running here): lets go of the object.
async fn controller_lets_go(h: &Harness, name: &str) {
    h.resources()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"finalizers": [FINALIZER]}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_of_a_python_driver_resource_waits_for_azure_and_reports_its_refusal() {
    let h = Harness::new().await;
    let _reporter = h.start_reporter("replica-a");
    let consumer = h.consumer();
    let id = "8e3c2d90-3333-4444-8555-b66677778889";
    let legacy_id = format!(
        "/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Resources/deployments/netc"
    );
    let mut body = execute_body("Delete", id, "net-c");
    body["associatedTopology"] = json!({"netc": {"id": legacy_id, "type": "Azure"}});
    let (status, answer) = h.post("/api/driver/lifecycle/execute", &body, &[]).await;
    assert_eq!(status, 202, "{answer}");
    let first = answer["requestId"].as_str().unwrap().to_string();
    assert!(
        first.starts_with(&format!("Delete::{legacy_id}::")),
        "{first}"
    );

    // An object adopting the id, deleted at once, held by both finalizers.
    let name = format!("r-{id}");
    let object = h.resources().get(&name).await.unwrap();
    assert_eq!(object.spec.adopt.as_ref().unwrap().id, legacy_id);
    assert!(object.metadata.deletion_timestamp.is_some());
    assert_eq!(object.finalizers(), [FINALIZER, crds::CLEANUP_FINALIZER]);
    // The apiserver bumps the generation when the deletion begins; failures recorded
    // for this generation are the delete's own.
    assert_eq!(object.metadata.generation, Some(2));
    assert!(
        drain(&consumer, Duration::from_secs(3), Duration::from_secs(1))
            .await
            .is_empty()
    );

    // Azure refuses (a lock): one FAILED with ARM's message; the object stays.
    h.set_status(&name, "Failed", json!({"error": {"code": "ScopeLocked",
        "message": "The scope 'rg1' cannot perform delete operation because following scope(s) are locked"}}))
        .await;
    let messages = drain(&consumer, Duration::from_secs(20), Duration::from_secs(2)).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let failed = &messages[0].0;
    assert_eq!(failed.request_id, first);
    assert_eq!(failed.status, ResultStatus::Failed);
    let details = failed.failure_details.as_ref().unwrap();
    assert_eq!(
        serde_json::to_value(details.failure_code).unwrap(),
        json!("INFRASTRUCTURE_ERROR")
    );
    assert!(
        details.description.contains("locked"),
        "{}",
        details.description
    );

    // A Create while the Delete still runs is refused (retry later) and changes nothing.
    let before = h.resources().get(&name).await.unwrap();
    let (status, answer) = h
        .post(
            "/api/driver/lifecycle/execute",
            &execute_body("Create", id, "net-c"),
            &[],
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    let after = h.resources().get(&name).await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );

    // The lock is lifted and the controller's retry succeeds: nothing more is reported.
    controller_lets_go(&h, &name).await;
    assert!(
        drain(&consumer, Duration::from_secs(5), Duration::from_secs(1))
            .await
            .is_empty()
    );
    assert!(h.resources().get_opt(&name).await.unwrap().is_none());

    // Brent asks again: the id is adopted again (gone from Azure, so the controller lets
    // go at once) and this request completes, removing the topology entry.
    let (status, answer) = h.post("/api/driver/lifecycle/execute", &body, &[]).await;
    assert_eq!(status, 202, "{answer}");
    let second = answer["requestId"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    controller_lets_go(&h, &name).await;
    let messages = drain(&consumer, Duration::from_secs(20), Duration::from_secs(2)).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].0.request_id, second);
    assert_eq!(messages[0].0.status, ResultStatus::Complete);
    assert_eq!(
        Value::Object(messages[0].0.associated_topology.clone()),
        json!({"netc": null})
    );

    // A topology id that is not an ARM id is refused and creates nothing.
    body["associatedTopology"] = json!({"netc": {"id": "netc-deployment", "type": "Azure"}});
    let (status, answer) = h.post("/api/driver/lifecycle/execute", &body, &[]).await;
    assert_eq!(status, 400, "{answer}");
    assert!(h.resources().get_opt(&name).await.unwrap().is_none());
}

#[tokio::test]
async fn bad_requests_create_nothing() {
    let h = Harness::new().await;
    let id = "9f4d3ea1-4444-4555-8666-c77788889999";
    let mut no_credentials = execute_body("Create", id, "net-d");
    no_credentials["deploymentLocation"]["properties"] = json!({"subscriptionId": SUB});
    let mut unknown_type = execute_body("Create", id, "net-d");
    unknown_type["systemProperties"]["resourceType"]["value"] = json!("resource::Nope::1.0");
    let mut bad_group = execute_body("Create", id, "net-d");
    bad_group["resourceProperties"]["resourcegroup_name"]["value"] = json!("bad/group");
    for body in [no_credentials, unknown_type, bad_group] {
        let (status, answer) = h.post("/api/driver/lifecycle/execute", &body, &[]).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["status"], json!(400));
    }
    assert!(h.no_objects().await);
    let secrets = h
        .secrets()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert!(
        secrets.iter().all(|s| !s.name_any().starts_with("dl-")),
        "{secrets:?}"
    );
}

#[tokio::test]
async fn two_replicas_publish_each_result_once() {
    let h = Harness::new().await;
    let consumer = h.consumer();
    let _a = h.start_reporter("replica-a");
    let _b = h.start_reporter("replica-b");
    let ids: Vec<String> = (0..10)
        .map(|i| format!("a0000000-0000-4000-8000-{i:012}"))
        .collect();
    let mut request_ids = h.create_all(&ids, "net").await;
    for id in &ids {
        h.set_status(&format!("r-{id}"), "Ready", json!({})).await;
    }
    let messages = drain(&consumer, Duration::from_secs(30), Duration::from_secs(5)).await;
    let mut seen: Vec<String> = messages.into_iter().map(|(m, _)| m.request_id).collect();
    seen.sort();
    request_ids.sort();
    assert_eq!(seen, request_ids);
    for id in &ids {
        let object = h.resources().get(&format!("r-{id}")).await.unwrap();
        assert!(object.annotations().contains_key(ANNOTATION_REPORTED));
    }
}

#[tokio::test]
async fn results_survive_a_reporter_restart() {
    let h = Harness::new().await;
    let consumer = h.consumer();
    let id = "b1111111-0000-4000-8000-000000000001";
    let (status, body) = h
        .post(
            "/api/driver/lifecycle/execute",
            &execute_body("Create", id, "net-r"),
            &[],
        )
        .await;
    assert_eq!(status, 202, "{body}");
    // No reporter runs while the deployment finishes: the result waits on the object.
    h.set_status(&format!("r-{id}"), "Ready", json!({})).await;
    assert!(
        drain(&consumer, Duration::from_secs(2), Duration::from_secs(1))
            .await
            .is_empty()
    );
    let _reporter = h.start_reporter("replica-late");
    let messages = drain(&consumer, Duration::from_secs(20), Duration::from_secs(3)).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].0.request_id,
        body["requestId"].as_str().unwrap()
    );
}

#[tokio::test]
async fn kafka_outage_delays_but_never_drops() {
    let h = Harness::new().await;
    let consumer = h.consumer();
    let _reporter = h.start_reporter("replica-a");
    let id = "c2222222-0000-4000-8000-000000000002";
    let (status, body) = h
        .post(
            "/api/driver/lifecycle/execute",
            &execute_body("Create", id, "net-k"),
            &[],
        )
        .await;
    assert_eq!(status, 202, "{body}");
    h.kafka.broker_down(1).unwrap();
    h.set_status(&format!("r-{id}"), "Ready", json!({})).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let object = h.resources().get(&format!("r-{id}")).await.unwrap();
    assert!(
        !object.annotations().contains_key(ANNOTATION_REPORTED),
        "nothing can be reported while Kafka is down"
    );
    h.kafka.broker_up(1).unwrap();
    let messages = drain(&consumer, Duration::from_secs(60), Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        messages[0].0.request_id,
        body["requestId"].as_str().unwrap()
    );
}

/// Two replicas through a Kafka outage longer than the old 60 s claim: the replica that
/// claimed a result keeps delivering it (librdkafka retries for up to 120 s) and the other
/// never takes the claim over, so every accepted request is answered exactly once.
#[tokio::test]
async fn two_replicas_and_a_90_second_kafka_outage_answer_every_request_once() {
    let h = Harness::new().await;
    let consumer = h.consumer();
    let _a = h.start_reporter("replica-a");
    let _b = h.start_reporter("replica-b");
    let ids: Vec<String> = (0..5)
        .map(|i| format!("d3333333-0000-4000-8000-{i:012}"))
        .collect();
    let mut request_ids = h.create_all(&ids, "net-o").await;
    h.kafka.broker_down(1).unwrap();
    for id in &ids {
        h.set_status(&format!("r-{id}"), "Ready", json!({})).await;
    }
    tokio::time::sleep(Duration::from_secs(90)).await;
    h.kafka.broker_up(1).unwrap();
    let messages = drain(&consumer, Duration::from_secs(60), Duration::from_secs(20)).await;
    let mut seen: Vec<String> = messages.into_iter().map(|(m, _)| m.request_id).collect();
    seen.sort();
    request_ids.sort();
    assert_eq!(seen, request_ids, "every request answered exactly once");
}

/// Secure parameters live in `<object>-params`, owned by the object (deleted with it),
/// whether the object is new or re-created.
#[tokio::test]
async fn the_params_secret_is_owned_by_its_object() {
    let h = Harness::new().await;
    let id = "e4444444-0000-4000-8000-000000000001";
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    archive
        .start_file("Create.bicep", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(
        &mut archive,
        b"@secure()\n@metadata({\n  note: 'multi-line'\n})\nparam adminPassword string\n",
    )
    .unwrap();
    let mut body = execute_body("Create", id, "vm-p");
    body["systemProperties"]["resourceType"]["value"] = json!("resource::MyVm::1.0");
    body["resourceProperties"]["adminPassword"] = json!({"type": "string", "value": "pw-1"});
    body["driverFiles"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        archive.finish().unwrap().into_inner()
    ));
    for _ in 0..2 {
        let (status, answer) = h.post("/api/driver/lifecycle/execute", &body, &[]).await;
        assert_eq!(status, 202, "{answer}");
        let object = h.resources().get(&format!("r-{id}")).await.unwrap();
        assert!(!object.spec.parameters.contains_key("adminPassword"));
        let secret = h.secrets().get(&format!("r-{id}-params")).await.unwrap();
        let owners = secret.metadata.owner_references.unwrap_or_default();
        assert_eq!(owners.len(), 1, "{owners:?}");
        assert_eq!(Some(&owners[0].uid), object.metadata.uid.as_ref());
        assert_eq!(secret.data.unwrap()["adminPassword"].0, b"pw-1".to_vec());
    }
}
