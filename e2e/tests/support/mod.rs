//! Setup shared by the tests that run the whole product (`legacy_types`,
//! `hostile_callers`): a namespace of their own, in-process armsim and the controller
//! binary watching that namespace against it.

use e2e::process::{KilledOnDrop, built_binaries, lone_controller};
use e2e::{ControlPlane, TestNamespace};

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
}
