//! Setup shared by the tests that run the whole product (`legacy_types`,
//! `hostile_callers`): a namespace of their own, in-process armsim, the controller
//! binary watching that namespace against it, and the shim on librdkafka's mock cluster.

use std::time::Duration;

use e2e::process::{KilledOnDrop, built_binaries, lone_controller};
use e2e::shim::ShimOnMockKafka;
use e2e::{ControlPlane, TestNamespace};

/// How often the reporter of [`ControllerOnArmsim::shim_on_mock_kafka`] sweeps: often, so
/// retries and expired claims show within a test's wait.
const SWEEP: Duration = Duration::from_secs(1);

/// The product without the shim: the controller binary on armsim, in a fresh namespace.
pub struct ControllerOnArmsim {
    pub control_plane: &'static ControlPlane,
    pub namespace: TestNamespace,
    pub sim: armsim::RunningSim,
    pub controller: KilledOnDrop,
    /// Where armsim keeps its state; callers put their TLS material here too.
    pub dir: tempfile::TempDir,
}

impl ControllerOnArmsim {
    pub async fn start() -> Self {
        let bin = built_binaries(&["azure-driver-controller"], &[]);
        let control_plane = ControlPlane::shared().await;
        let namespace = TestNamespace::create(control_plane).await;
        let dir = tempfile::tempdir().unwrap();
        let sim = armsim::Simulator::start(armsim::SimConfig::default(), &dir.path().join("arm"))
            .await
            .unwrap();
        let controller = KilledOnDrop::new(
            lone_controller(
                &bin,
                control_plane.kubeconfig_path(),
                namespace.name(),
                &sim.endpoint(),
                &sim.ca_file(),
            )
            .spawn()
            .expect("the controller starts"),
        );
        Self {
            control_plane,
            namespace,
            sim,
            controller,
            dir,
        }
    }

    /// The shim's request path and reporter for this namespace, its results on a mock
    /// Kafka cluster of its own; `replica` names the reporter and the consumer group.
    pub fn shim_on_mock_kafka(&self, replica: &str) -> ShimOnMockKafka {
        ShimOnMockKafka::start(
            self.control_plane.client(),
            self.namespace.name(),
            replica,
            SWEEP,
        )
    }
}
