//! The process around the reconciler: configuration, watches, the health/metrics
//! endpoint and shutdown; leader election is in [`crate::leader`].

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use futures::{FutureExt, StreamExt, future::join_all};
use k8s_openapi::{
    api::core::v1::{ConfigMap, Secret},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Resource,
    core::PartialObjectMeta,
    runtime::{
        Controller, WatchStreamExt,
        controller::Config as ControllerConfig,
        reflector::{self, ObjectRef, Store, store::Writer},
        wait::{await_condition, conditions},
        watcher,
    },
};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::azure::AzureApiFactory;
use crate::context::Context;
use crate::dereference::InputKind;
use crate::events::EventRecorder;
use crate::leader::{self, stopped};
use crate::metrics::Metrics;
use crate::reconcile::{error_policy, reconcile};
use crate::referrers::Referrers;
use crate::secret_cache::SecretCache;
use crate::watch_cache::{CachedResource, Triggers};

/// Controller settings; every flag has an environment fallback.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "azure-driver-controller",
    version,
    about = "Reconciles AzureResource objects into Azure deployments"
)]
pub struct Config {
    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Objects reconciled in parallel.
    #[arg(long, env = "CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// Namespaces to watch, comma separated; empty watches all.
    #[arg(
        long,
        env = "WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub namespaces: Vec<String>,
    /// Run leader election (several replicas, one active).
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the coordination.k8s.io Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "azure-driver-controller")]
    pub lease_name: String,
    /// Namespace of the Lease.
    #[arg(long, env = "LEASE_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Seconds a lease is held without renewal; the failover time after a crash.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// This replica's identity in the Lease (default: host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Secret (in the lease namespace, key `key`) holding this installation's key of
    /// `status.appliedHash` (HMAC-SHA256), created with 32 random bytes when missing.
    /// Empty: the hash is a plain SHA-256.
    #[arg(long, env = "HASH_KEY_SECRET", default_value = "")]
    pub hash_key_secret: String,
    /// Log format; `LOG_TYPE=logstash` also selects JSON.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Subscription of the operator's own identity, the last fallback.
    #[arg(long, env = "AZURE_SUBSCRIPTION_ID")]
    pub operator_subscription_id: Option<String>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    fn namespaces(&self) -> Vec<String> {
        self.namespaces
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect()
    }

    fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "azure-driver".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// Health as served on `/healthz` and `/readyz`.
#[derive(Default)]
pub struct Health {
    /// Watches synced (or standing by as a non-leader).
    pub ready: AtomicBool,
    /// Unix ms since when the object watch has failed without a success in between (0:
    /// it works; 1: it ended although nobody asked it to). `/healthz` fails once this is
    /// older than [`WATCH_FAILURE_GRACE`], so that the kubelet restarts the process.
    pub watch_failing_since: AtomicI64,
}

/// How long the object watch may keep failing before `/healthz` does.
pub const WATCH_FAILURE_GRACE: Duration = Duration::from_secs(60);

impl Health {
    /// False once the object watch has been failing longer than [`WATCH_FAILURE_GRACE`].
    pub fn live(&self, now_ms: i64) -> bool {
        let since = self.watch_failing_since.load(Ordering::Relaxed);
        since == 0 || now_ms - since < WATCH_FAILURE_GRACE.as_millis() as i64
    }

    fn watch_result<T, E>(&self, result: &Result<T, E>) {
        let since = &self.watch_failing_since;
        match result {
            Ok(_) => since.store(0, Ordering::Relaxed),
            Err(_) => {
                let now = k8s_openapi::jiff::Timestamp::now().as_millisecond();
                let _ = since.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
    }
}

/// Runs the controller until `shutdown` resolves: waits for the CRD, takes part in leader
/// election, reconciles while leading, then finishes in-flight reconciles and releases
/// the lease.
pub async fn run(
    client: Client,
    config: Config,
    azure: Arc<dyn AzureApiFactory>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    wait_for_crd(&client, stop_rx.clone()).await?;
    if *stop_rx.borrow() {
        return Ok(());
    }

    let identity = config.identity();
    let recorder = EventRecorder::new(
        client.clone(),
        "azure-driver-controller".into(),
        identity.clone(),
    );
    let mut ctx = Context::new(
        client.clone(),
        azure,
        recorder,
        metrics.clone(),
        config.operator_subscription_id.clone(),
    )
    .with_secret_cache(SecretCache::watched());
    if !config.hash_key_secret.is_empty() {
        let secrets = Api::namespaced(client.clone(), &config.lease_namespace);
        ctx = ctx.with_hash_key(hash_key(&secrets, &config.hash_key_secret).await?);
    }

    if !config.leader_election {
        let ctx = Arc::new(ctx);
        metrics.leader.set(1);
        run_controllers(&ctx, &config, &health, stopped(stop_rx.clone())).await;
        return Ok(());
    }
    let deadline = Arc::new(AtomicI64::new(0));
    let ctx = Arc::new(ctx.with_write_deadline(deadline.clone()));
    let election = leader::Election {
        client,
        lease_name: config.lease_name.clone(),
        lease_namespace: config.lease_namespace.clone(),
        identity,
        duration_seconds: config.lease_duration_seconds,
    };
    leader::run(
        election,
        deadline,
        &metrics,
        &health.ready,
        stop_rx,
        |until| run_controllers(&ctx, &config, &health, until),
    )
    .await
}

/// The installation's hash key from Secret `name`, created with a random key by the first
/// replica that finds none (a concurrent creator's key wins over ours).
async fn hash_key(secrets: &Api<Secret>, name: &str) -> anyhow::Result<Vec<u8>> {
    let key_of = |secret: Secret| {
        secret
            .data
            .and_then(|data| data.get("key").map(|key| key.0.clone()))
            .filter(|key| !key.is_empty())
    };
    if let Some(secret) = secrets
        .get_opt(name)
        .await
        .context("reading the hash key")?
    {
        return key_of(secret).with_context(|| format!("Secret {name} has no key"));
    }
    let fresh: [u8; 32] = rand::random();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(
                [(
                    crate::status::MANAGED_BY_LABEL.to_owned(),
                    crate::status::FIELD_MANAGER.to_owned(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        data: Some([("key".to_owned(), k8s_openapi::ByteString(fresh.to_vec()))].into()),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    match secrets
        .create(&kube::api::PostParams::default(), &secret)
        .await
    {
        Ok(created) => key_of(created).context("the created hash key"),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = secrets.get(name).await.context("reading the hash key")?;
            key_of(existing).with_context(|| format!("Secret {name} has no key"))
        }
        Err(err) => Err(err).context("creating the hash key"),
    }
}

async fn wait_for_crd(client: &Client, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    info!(
        crd = crds::CRD_NAME,
        "waiting for the CRD to be established"
    );
    tokio::select! {
        r = await_condition(crds, crds::CRD_NAME, conditions::is_crd_established()) => {
            r.context("waiting for the CRD")?;
        }
        _ = stopped(stop) => {}
    }
    Ok(())
}

/// How often readiness looks at the controllers' stores until they have synced.
const READY_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Runs one controller per watched namespace (or one for all) until `until` resolves.
async fn run_controllers(
    ctx: &Arc<Context>,
    config: &Config,
    health: &Arc<Health>,
    until: impl Future<Output = ()> + Send + 'static,
) {
    let namespaces = config.namespaces();
    let scopes: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    // Secrets read in an earlier term went unwatched since.
    ctx.secrets.clear();
    let mut stores = Vec::new();
    let mut controllers = Vec::new();
    for namespace in scopes {
        let (store, controller) = controller(
            ctx.clone(),
            health.clone(),
            namespace,
            config.concurrency,
            stopped(stop_rx.clone()),
        );
        stores.push(store);
        controllers.push(controller);
    }
    let readiness = {
        let health = health.clone();
        async move {
            health.ready.store(false, Ordering::Relaxed);
            for store in stores {
                // A store wakes only the last task waiting for it, and the controller
                // waits on the same store: poll again rather than wait for a wake-up.
                loop {
                    match tokio::time::timeout(READY_POLL, store.wait_until_ready()).await {
                        Ok(Ok(())) => break,
                        Ok(Err(_)) => return,
                        Err(_) => continue,
                    }
                }
            }
            health.ready.store(true, Ordering::Relaxed);
        }
    };
    let readiness = tokio::spawn(readiness);
    let asked = Arc::new(AtomicBool::new(false));
    let stopper = {
        let asked = asked.clone();
        tokio::spawn(async move {
            until.await;
            asked.store(true, Ordering::Release);
            let _ = stop_tx.send(true);
        })
    };
    join_all(controllers).await;
    readiness.abort();
    if !asked.load(Ordering::Acquire) {
        warn!("the AzureResource watch ended; /healthz now fails");
        health.watch_failing_since.store(1, Ordering::Relaxed);
        stopper.abort();
    }
}

fn controller(
    ctx: Arc<Context>,
    health: Arc<Health>,
    namespace: Option<String>,
    concurrency: u16,
    stop: impl Future<Output = ()> + Send + Sync + 'static,
) -> (
    Store<CachedResource>,
    futures::future::BoxFuture<'static, ()>,
) {
    let client = ctx.client.clone();
    let (objects, secrets, config_maps) = match &namespace {
        Some(ns) => (
            Api::<CachedResource>::namespaced(client.clone(), ns),
            Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), ns),
            Api::<PartialObjectMeta<ConfigMap>>::namespaced(client, ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client),
        ),
    };
    let (reader, writer) = reflector::store();
    let referrers = Arc::new(Mutex::new(Referrers::default()));
    let mut triggers = Triggers::default();
    let mut reflect = reflect_into(writer, referrers.clone());
    let main = watcher(objects, watcher::Config::default())
        .default_backoff()
        .inspect(move |event| health.watch_result(event))
        .inspect(move |event| {
            if let Ok(event) = event {
                reflect(event);
            }
        })
        .filter_map(move |event| {
            futures::future::ready(match event {
                Ok(event) if !triggers.observe(&event) => None,
                Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                    Some(Ok(object.trigger()))
                }
                Ok(_) => None,
                Err(error) => Some(Err(error)),
            })
        });
    let store = reader.clone();
    let secret_ctx = ctx.clone();
    let secret_referrers = referrers.clone();
    let controller = Controller::for_stream(main, reader)
        .watches_stream(
            watcher(secrets, watcher::Config::default())
                .default_backoff()
                .inspect(move |event| follow_secret(&secret_ctx.secrets, event))
                .touched_objects(),
            move |secret: PartialObjectMeta<Secret>| {
                referring(&secret_referrers, InputKind::Secret, &secret)
            },
        )
        .watches_stream(
            watcher(config_maps, watcher::Config::default())
                .default_backoff()
                .touched_objects(),
            move |cm: PartialObjectMeta<ConfigMap>| {
                referring(&referrers, InputKind::ConfigMap, &cm)
            },
        )
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile ended with an error");
            }
        })
        .boxed();
    (store, controller)
}

/// Keeps the Secret cache current: a changed or deleted Secret is read again when next
/// needed; after a failure or a new list, every Secret is.
fn follow_secret(
    secrets: &SecretCache,
    event: &Result<watcher::Event<PartialObjectMeta<Secret>>, watcher::Error>,
) {
    match event {
        Ok(
            watcher::Event::Apply(secret)
            | watcher::Event::Delete(secret)
            | watcher::Event::InitApply(secret),
        ) => secrets.changed(
            secret.metadata.namespace.as_deref().unwrap_or_default(),
            secret.metadata.name.as_deref().unwrap_or_default(),
        ),
        Ok(watcher::Event::Init) | Err(_) => secrets.clear(),
        Ok(watcher::Event::InitDone) => {}
    }
}

/// Applies each watch event to the store and to the index of referrers in step, so that
/// the index holds exactly the store's entries: an update or deletion replaces the store's
/// previous version of the object, and a relist, once complete, rebuilds the index.
fn reflect_into(
    mut writer: Writer<CachedResource>,
    referrers: Arc<Mutex<Referrers>>,
) -> impl FnMut(&watcher::Event<CachedResource>) {
    let store = writer.as_reader();
    move |event| match event {
        watcher::Event::Apply(object) | watcher::Event::Delete(object) => {
            let key = ObjectRef::from_obj(object);
            let previous = store.get(&key);
            writer.apply_watcher_event(event);
            let current = store.get(&key);
            lock(&referrers).replace(previous.as_ref(), current.as_ref());
        }
        watcher::Event::InitDone => {
            writer.apply_watcher_event(event);
            lock(&referrers).relist(store.state());
        }
        watcher::Event::Init | watcher::Event::InitApply(_) => writer.apply_watcher_event(event),
    }
}

fn lock(referrers: &Mutex<Referrers>) -> MutexGuard<'_, Referrers> {
    referrers.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Objects in the input's namespace that refer to it.
fn referring<K: Resource>(
    referrers: &Mutex<Referrers>,
    kind: InputKind,
    input: &K,
) -> Vec<ObjectRef<CachedResource>> {
    let meta = input.meta();
    lock(referrers).of(
        meta.namespace.as_deref().unwrap_or_default(),
        kind,
        meta.name.as_deref().unwrap_or_default(),
    )
}
