use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

use crate::ControlPlane;

/// Label on every namespace a test creates.
pub const TEST_NAMESPACE_LABEL: &str = "azure-driver.io/e2e";
/// Label whose value is the namespace's own name, for selectors of one namespace (what
/// `kubernetes.io/metadata.name` is from Kubernetes 1.21; the test apiserver is 1.20).
pub const NAMESPACE_NAME_LABEL: &str = "azure-driver.io/e2e-namespace";
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace of its own for one test, deleted (best effort) when dropped.
pub struct TestNamespace {
    name: String,
    config: kube::Config,
}

impl TestNamespace {
    /// Creates a fresh, uniquely named namespace.
    pub async fn create(control_plane: &ControlPlane) -> TestNamespace {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let name = format!(
            "t-{:x}-{:x}-{}",
            std::process::id(),
            nanos,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    [
                        (TEST_NAMESPACE_LABEL.to_owned(), "true".to_owned()),
                        (NAMESPACE_NAME_LABEL.to_owned(), name.clone()),
                    ]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(control_plane.client())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|err| panic!("creating test namespace {name}: {err}"));
        TestNamespace {
            name,
            config: control_plane.config().clone(),
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be shutting down: delete from a
        // short-lived runtime on a thread of its own.
        let name = std::mem::take(&mut self.name);
        let config = self.config.clone();
        let deletion = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = kube::Client::try_from(config).ok()?;
                let namespaces = Api::<Namespace>::all(client);
                let params = DeleteParams::background();
                let delete = namespaces.delete(&name, &params);
                tokio::time::timeout(DELETE_TIMEOUT, delete)
                    .await
                    .ok()?
                    .ok()
            })
        });
        let _ = deletion.join();
    }
}
