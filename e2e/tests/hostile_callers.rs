//! Attacks on the driver as a caller on the same network would try them, against the real
//! thing: kube-apiserver, the controller binary, armsim, librdkafka's mock Kafka cluster and
//! the shim over TLS with client certificates and bearer tokens required. Each attack is
//! refused and leaves objects, Secrets, Kafka and armsim's inventory as they were; armsim's
//! record of client ids shows every deployment ran with its own tenant's client.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use azure_driver_shim::api::routes;
use azure_driver_shim::auth::{Authenticator, TokenFile};
use azure_driver_shim::kafka::ResultStatus;
use azure_driver_shim::mapping::ANNOTATION_REPORTED;
use azure_driver_shim::tls::{
    ConnectionLimits, ReloadingCert, serve, server_config_with_client_ca,
};
use base64::Engine;
use crds::{AzureResource, Phase};
use e2e::TestNamespace;
use e2e::process::KilledOnDrop;
use e2e::shim::ShimOnMockKafka;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

mod support;
use support::ControllerOnArmsim;

const EXECUTE: &str = "/api/driver/lifecycle/execute";
const SUB_A: &str = "00000000-0000-0000-0000-00000000000a";
const SUB_B: &str = "00000000-0000-0000-0000-00000000000b";
const TOKEN: &str = "orchestrator-token";
const WAIT: Duration = Duration::from_secs(120);
/// How long the test server waits for request headers (the production default is 10 s).
const HEADER_READ: Duration = Duration::from_secs(2);

/// A tenant as Brent presents it: `tenantId` header and deployment location.
#[derive(Clone, Copy)]
struct Tenant {
    header: &'static str,
    location: &'static str,
    client: &'static str,
    subscription: &'static str,
}

const A: Tenant = Tenant {
    header: "tenant-a",
    location: "azure-dev",
    client: "client-a",
    subscription: SUB_A,
};
const B: Tenant = Tenant {
    header: "tenant-b",
    location: "azure-dev",
    client: "client-b",
    subscription: SUB_B,
};

fn location(tenant: Tenant) -> Value {
    json!({"name": tenant.location, "type": "Azure", "properties": {
        "tenantId": format!("aad-{}", tenant.header), "clientId": tenant.client,
        "clientSecret": format!("secret-of-{}", tenant.client), "subscriptionId": tenant.subscription
    }})
}

/// A resource group Create (the legacy type, built-in template) of `resource_id`.
fn create_group(tenant: Tenant, resource_id: &str, group: &str) -> Value {
    e2e::shim::resource_group_request("Create", resource_id, group, location(tenant))
}

fn with_lifecycle(mut body: Value, lifecycle: &str) -> Value {
    body["lifecycleName"] = json!(lifecycle);
    body
}

fn zip_of(name: &str, content: &[u8]) -> String {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, content).unwrap();
    base64::engine::general_purpose::STANDARD.encode(zip.finish().unwrap().into_inner())
}

/// Objects and Secrets by name → resourceVersion, Azure resources by id → body.
#[derive(Debug, PartialEq)]
struct Snapshot {
    objects: BTreeMap<String, Option<String>>,
    secrets: BTreeMap<String, Option<String>>,
    azure: BTreeMap<String, String>,
}

struct Pki {
    server_ca: reqwest::Certificate,
    client_identity: reqwest::Identity,
    /// The orchestrator's TLS client settings for raw connections.
    brent_tls: Arc<rustls::ClientConfig>,
    /// The same without a client certificate.
    anonymous_tls: Arc<rustls::ClientConfig>,
}

/// A CA for the shim's clients, the client certificate it signs, and a self-signed server
/// certificate; written where the shim reads them.
fn pki(dir: &std::path::Path) -> Pki {
    let server = rcgen::generate_simple_self_signed(vec!["azure-driver".to_string()]).unwrap();
    std::fs::write(dir.join("tls.crt"), server.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), server.signing_key.serialize_pem()).unwrap();

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("client-ca.crt"), ca.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["brent".to_string()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.cert.der().clone()).unwrap();
    let builder = || {
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
    };
    let brent_tls = builder()
        .with_client_auth_cert(
            vec![client.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client_key.serialize_der())),
        )
        .unwrap();
    Pki {
        server_ca: reqwest::Certificate::from_pem(server.cert.pem().as_bytes()).unwrap(),
        client_identity: reqwest::Identity::from_pem(
            format!("{}{}", client.pem(), client_key.serialize_pem()).as_bytes(),
        )
        .unwrap(),
        brent_tls: Arc::new(brent_tls),
        anonymous_tls: Arc::new(builder().with_no_client_auth()),
    }
}

struct World {
    client: kube::Client,
    namespace: TestNamespace,
    sim: armsim::RunningSim,
    shim: ShimOnMockKafka,
    addr: SocketAddr,
    brent: reqwest::Client,
    no_certificate: reqwest::Client,
    pki: Pki,
    _controller: KilledOnDrop,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Self {
        let product = ControllerOnArmsim::start().await;
        let dir = product.dir.path();
        let pki = pki(dir);
        std::fs::write(dir.join("tokens"), format!("{TOKEN}\n")).unwrap();
        let mut shim = product.shim_on_mock_kafka("hostile");
        shim.shim.authenticator = Authenticator {
            client_certificate: true,
            tokens: Some(Arc::new(TokenFile::load(&dir.join("tokens")).unwrap())),
        };
        let resolver =
            Arc::new(ReloadingCert::load(&dir.join("tls.crt"), &dir.join("tls.key")).unwrap());
        let config = server_config_with_client_ca(resolver, &dir.join("client-ca.crt")).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(
            listener,
            Some(config),
            routes(shim.shim.clone()),
            ConnectionLimits {
                header_read: HEADER_READ,
                ..ConnectionLimits::default()
            },
            std::future::pending(),
        ));
        let client = |identity: Option<reqwest::Identity>| {
            let mut builder = reqwest::Client::builder()
                .use_rustls_tls()
                .tls_built_in_root_certs(false)
                .add_root_certificate(pki.server_ca.clone())
                .resolve("azure-driver", addr);
            if let Some(identity) = identity {
                builder = builder.identity(identity);
            }
            builder.build().unwrap()
        };
        Self {
            brent: client(Some(pki.client_identity.clone())),
            no_certificate: client(None),
            pki,
            client: product.control_plane.client(),
            namespace: product.namespace,
            sim: product.sim,
            shim,
            addr,
            _controller: product.controller,
            _dir: product.dir,
        }
    }

    fn resources(&self) -> Api<AzureResource> {
        Api::namespaced(self.client.clone(), self.namespace.name())
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), self.namespace.name())
    }

    /// POSTs `body` as the orchestrator (client certificate and token) unless `client` and
    /// `token` say otherwise; the status, body and `Retry-After`.
    async fn post_with(
        &self,
        client: &reqwest::Client,
        token: Option<&str>,
        tenant: &str,
        body: &Value,
    ) -> (u16, Value) {
        let mut request = client
            .post(format!(
                "https://azure-driver:{}{EXECUTE}",
                self.addr.port()
            ))
            .header("content-type", "application/json")
            .header("tenantId", tenant)
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the shim answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, tenant: Tenant, body: &Value) -> (u16, Value) {
        self.post_with(&self.brent, Some(TOKEN), tenant.header, body)
            .await
    }

    async fn snapshot(&self) -> Snapshot {
        let objects = self.resources().list(&ListParams::default()).await.unwrap();
        let secrets = self.secrets().list(&ListParams::default()).await.unwrap();
        Snapshot {
            objects: objects
                .items
                .iter()
                .map(|o| (o.name_any(), o.resource_version()))
                .collect(),
            secrets: secrets
                .items
                .iter()
                .map(|s| (s.name_any(), s.resource_version()))
                .collect(),
            azure: self
                .sim
                .inventory()
                .into_iter()
                .map(|item| (item.id.to_ascii_lowercase(), item.body.to_string()))
                .collect(),
        }
    }

    /// Creates a resource group as `tenant` and waits until its result is published and
    /// recorded, so that nothing moves afterwards.
    async fn create(&self, tenant: Tenant, resource_id: &str, group: &str) -> AzureResource {
        let (status, answer) = self
            .post(tenant, &create_group(tenant, resource_id, group))
            .await;
        assert_eq!(status, 202, "{answer}");
        let result = self.shim.next_result(WAIT).await;
        assert_eq!(result.request_id, answer["requestId"].as_str().unwrap());
        assert_eq!(result.status, ResultStatus::Complete, "{result:?}");
        let name = format!("r-{resource_id}");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let object = self.resources().get(&name).await.unwrap();
            if object.annotations().contains_key(ANNOTATION_REPORTED) {
                return object;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} never marked reported"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn connect(
        &self,
        config: &Arc<rustls::ClientConfig>,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        TlsConnector::from(config.clone())
            .connect(ServerName::try_from("azure-driver").unwrap(), tcp)
            .await
    }

    /// Sends request headers and never finishes them: the shim must hang up.
    async fn slow_headers_are_cut_off(&self) {
        let mut tls = self.connect(&self.pki.anonymous_tls).await.unwrap();
        tls.write_all(b"POST /api/driver/lifecycle/execute HTTP/1.1\r\nhost: azure-driver\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(HEADER_READ * 10, tls.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the connection stayed open");
    }

    /// As the orchestrator: headers and most of a 256 KiB body, then nothing. The status
    /// answered and whether it carried `Retry-After`; `None` when the shim hung up first.
    async fn slow_request(&self) -> Option<(u16, bool)> {
        let mut tls = self.connect(&self.pki.brent_tls).await.ok()?;
        let head = format!(
            "POST {EXECUTE} HTTP/1.1\r\nhost: azure-driver\r\ncontent-type: application/json\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: {}\r\n\r\n",
            256 * 1024
        );
        tls.write_all(head.as_bytes()).await.ok()?;
        // A shim that refused the request already may close before all of it is written.
        let _ = tls.write_all(&[b' '; 224 * 1024]).await;
        let mut response = Vec::new();
        let mut buffer = [0u8; 4096];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = tokio::time::timeout(WAIT, tls.read(&mut buffer))
                .await
                .ok()?
                .ok()?;
            if read == 0 {
                break;
            }
            response.extend_from_slice(&buffer[..read]);
        }
        let head = String::from_utf8_lossy(&response).to_ascii_lowercase();
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, head.contains("\r\nretry-after:")))
    }
}

/// RSS of this process (shim, armsim and Kafka run in it), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_callers_are_refused_and_change_nothing() {
    let world = World::start().await;
    let resource = "0a0a0a0a-1111-4222-8333-444444444444";
    let owned = world.create(A, resource, "rg-tenant-a").await;
    let credentials_a = owned.spec.credentials_secret_ref.clone().unwrap().name;
    let before = world.snapshot().await;
    assert!(
        before
            .azure
            .keys()
            .any(|id| id.ends_with("/resourcegroups/rg-tenant-a")),
        "{:?}",
        before.azure.keys()
    );

    let mixed = Tenant {
        header: A.header,
        ..B
    };
    let other_subscription = Tenant {
        subscription: SUB_B,
        ..A
    };
    let configure = {
        let mut body = with_lifecycle(create_group(B, resource, "rg-tenant-a"), "Configure");
        body["driverFiles"] = json!(zip_of(
            "Configure.bicep",
            b"targetScope = 'subscription'\nparam resourcegroup_name string\n"
        ));
        body
    };
    let oversize = {
        // Incompressible text, so that only the size check refuses it.
        let filler: String = (0..40_000u32)
            .map(|i| {
                format!(
                    "{:016x}{:016x}",
                    u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    u64::from(i) ^ 0xDEAD_BEEF_CAFE
                )
            })
            .collect();
        let mut body = create_group(A, "0a0a0a0a-2222-4222-8333-444444444444", "rg-big");
        body["driverFiles"] = json!(zip_of(
            "Create.bicep",
            format!("targetScope = 'subscription'\nparam note string = '{filler}'\n").as_bytes()
        ));
        body
    };
    let rejected_by_apiserver = {
        // An annotation over the apiserver's 256 KiB total: the dry run fails with 422.
        let mut body = create_group(A, "0a0a0a0a-3333-4222-8333-444444444444", "rg-odd");
        body["systemProperties"]["resourceName"]["value"] = json!("n".repeat(300 * 1024));
        body
    };

    struct Attack<'a> {
        name: &'a str,
        client: &'a reqwest::Client,
        token: Option<&'a str>,
        tenant: &'a str,
        body: Value,
        status: u16,
    }
    let attacks = [
        Attack {
            name: "other tenant re-creates the resource",
            client: &world.brent,
            token: Some(TOKEN),
            tenant: B.header,
            body: create_group(B, resource, "rg-tenant-a"),
            status: 403,
        },
        Attack {
            name: "same tenantId header, other client",
            client: &world.brent,
            token: Some(TOKEN),
            tenant: mixed.header,
            body: create_group(mixed, resource, "rg-tenant-a"),
            status: 403,
        },
        Attack {
            name: "other tenant runs an operation on it",
            client: &world.brent,
            token: Some(TOKEN),
            tenant: B.header,
            body: configure,
            status: 403,
        },
        Attack {
            name: "other tenant deletes it",
            client: &world.brent,
            token: Some(TOKEN),
            tenant: B.header,
            body: with_lifecycle(create_group(B, resource, "rg-tenant-a"), "Delete"),
            status: 403,
        },
        Attack {
            name: "owner's tenant and client, other subscription, deletes it",
            client: &world.brent,
            token: Some(TOKEN),
            tenant: A.header,
            body: with_lifecycle(
                create_group(other_subscription, resource, "rg-tenant-a"),
                "Delete",
            ),
            status: 403,
        },
        Attack {
            name: "no client certificate",
            client: &world.no_certificate,
            token: Some(TOKEN),
            tenant: A.header,
            body: with_lifecycle(create_group(A, resource, "rg-tenant-a"), "Delete"),
            status: 401,
        },
        Attack {
            name: "wrong bearer token",
            client: &world.brent,
            token: Some("guessed-token"),
            tenant: A.header,
            body: with_lifecycle(create_group(A, resource, "rg-tenant-a"), "Delete"),
            status: 401,
        },
        Attack {
            name: "no bearer token",
            client: &world.brent,
            token: None,
            tenant: A.header,
            body: with_lifecycle(create_group(A, resource, "rg-tenant-a"), "Delete"),
            status: 401,
        },
        Attack {
            name: "template larger than etcd holds",
            client: &world.brent,
            token: Some(TOKEN),
            tenant: A.header,
            body: oversize,
            status: 413,
        },
        Attack {
            name: "object the apiserver rejects",
            client: &world.brent,
            token: Some(TOKEN),
            tenant: A.header,
            body: rejected_by_apiserver,
            status: 400,
        },
    ];
    for attack in attacks {
        let (status, answer) = world
            .post_with(attack.client, attack.token, attack.tenant, &attack.body)
            .await;
        assert_eq!(status, attack.status, "{}: {answer}", attack.name);
        assert_eq!(
            answer["status"],
            json!(attack.status),
            "{}: {answer}",
            attack.name
        );
        world.shim.no_result_within(Duration::from_secs(2)).await;
        assert_eq!(
            world.snapshot().await,
            before,
            "{} changed something",
            attack.name
        );
        println!("refused {:>3}: {}", attack.status, attack.name);
    }

    world.slow_headers_are_cut_off().await;
    assert_eq!(
        world.snapshot().await,
        before,
        "slow headers changed something"
    );
    println!("cut off     : request headers never finished");

    // Many slow requests at once: the shim admits what its bounds allow, answers the rest
    // 503 with Retry-After at once, and its memory stays within them.
    let rss_before = rss();
    let slow = (0..500).map(|_| world.slow_request());
    let answers: Vec<Option<(u16, bool)>> = futures::future::join_all(slow).await;
    let rss_growth = rss().saturating_sub(rss_before);
    let busy = answers
        .iter()
        .flatten()
        .filter(|(status, retry)| *status == 503 && *retry)
        .count();
    let timed_out = answers
        .iter()
        .flatten()
        .filter(|(status, _)| *status == 408)
        .count();
    let hung_up = answers.iter().filter(|answer| answer.is_none()).count();
    println!(
        "500 slow requests: {busy} answered 503 with Retry-After, {timed_out} 408 after the body timeout, {hung_up} closed before an answer was read, RSS grew {} MiB",
        rss_growth / (1024 * 1024)
    );
    assert_eq!(busy + timed_out + hung_up, 500, "{answers:?}");
    assert!(busy > 0 && timed_out > 0, "{answers:?}");
    assert!(
        rss_growth < 256 * 1024 * 1024,
        "RSS grew by {rss_growth} bytes"
    );
    world.shim.no_result_within(Duration::from_secs(2)).await;
    assert_eq!(
        world.snapshot().await,
        before,
        "slow requests changed something"
    );

    // A location name that differs only in case is another tenant's own: its request is
    // carried out with its own Secret and client, and the first tenant's Secret is untouched.
    let b_upper = Tenant {
        location: "AZURE-DEV",
        ..B
    };
    let b_object = world
        .create(
            b_upper,
            "0b0b0b0b-1111-4222-8333-444444444444",
            "rg-tenant-b",
        )
        .await;
    let credentials_b = b_object.spec.credentials_secret_ref.clone().unwrap().name;
    assert_ne!(credentials_a, credentials_b);
    let after = world.snapshot().await;
    assert_eq!(
        after.secrets[&credentials_a],
        before.secrets[&credentials_a]
    );
    assert_eq!(
        after.objects[&owned.name_any()],
        before.objects[&owned.name_any()]
    );

    // Every ARM call ran with its own tenant's client, in its own subscription.
    let counters = world.sim.counters();
    for (client, subscription) in [(A.client, SUB_A), (B.client, SUB_B)] {
        let calls = counters.client(client);
        assert!(!calls.is_empty(), "no calls by {client}");
        for call in calls.keys() {
            assert!(
                call.ends_with(subscription) || call.ends_with(" -"),
                "{client} called {call}"
            );
        }
    }
    println!("ARM calls by client: {:?}", counters.by_client);

    // The controller writes outputs only into Secrets it created or that carry its label.
    let foreign = world
        .secrets()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "team-database"},
                "stringData": {"password": "keep-me"}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let mut spec = owned.spec.clone();
    spec.redeploy_token = Some("outputs".into());
    spec.outputs_secret_ref = Some(crds::LocalObjectRef {
        name: "team-database".into(),
    });
    let mut thief = AzureResource::new("outputs-thief", spec);
    thief.metadata.namespace = Some(world.namespace.name().to_string());
    let azure_before = world.snapshot().await.azure;
    world
        .resources()
        .create(&PostParams::default(), &thief)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let failed = loop {
        let object = world.resources().get("outputs-thief").await.unwrap();
        if object.status.as_ref().and_then(|s| s.phase) == Some(Phase::Failed) {
            break object;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "outputs-thief never failed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let message = &failed.status.unwrap().error.unwrap().message;
    assert!(
        message.contains("did not create for this object"),
        "{message}"
    );
    let untouched = world.secrets().get("team-database").await.unwrap();
    assert_eq!(untouched.resource_version(), foreign.resource_version());
    assert!(untouched.metadata.owner_references.is_none());
    assert_eq!(world.snapshot().await.azure, azure_before);
    println!("refused     : outputsSecretRef naming a Secret the operator did not create");
}
