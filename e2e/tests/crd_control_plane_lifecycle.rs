//! The local control plane stops everything it started, both when its owner drops it and
//! when the process holding its stdin dies without cleaning up (panic, abort, SIGKILL).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::ControlPlane;

fn api_address(kubeconfig: &Path) -> SocketAddr {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let server = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("server: https://"))
        .expect("kubeconfig names the server");
    server.parse().unwrap()
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn refuses_connections(address: SocketAddr) -> bool {
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_err()
}

#[tokio::test]
async fn dropping_the_control_plane_stops_it() {
    let control_plane = ControlPlane::start().await.unwrap();
    let kubeconfig = control_plane.kubeconfig_path().to_path_buf();
    let address = api_address(&kubeconfig);
    let mut readyz = control_plane.kubectl();
    readyz.args(["get", "--raw", "/readyz"]);
    let output = readyz.output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ok");

    drop(control_plane);
    assert!(refuses_connections(address), "apiserver still listening");
    assert!(
        !kubeconfig.parent().unwrap().exists(),
        "run directory left behind"
    );
}

#[test]
fn killing_the_stdin_holder_stops_it() {
    // `sleep` stands in for a test process: it holds the write end of the script's stdin
    // and is then killed without any chance to clean up.
    let mut holder = Command::new("sleep")
        .arg("3600")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let script = e2e::repo_root().join("e2e/scripts/control-plane.sh");
    let mut control_plane = Command::new(script)
        .stdin(holder.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(control_plane.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let kubeconfig = PathBuf::from(line.trim());
    let address = api_address(&kubeconfig);
    assert!(!refuses_connections(address), "apiserver not listening");

    holder.kill().unwrap();
    holder.wait().unwrap();
    wait_until("the script exits", || {
        control_plane.try_wait().unwrap().is_some()
    });
    assert!(refuses_connections(address), "apiserver still listening");
    assert!(
        !kubeconfig.parent().unwrap().exists(),
        "run directory left behind"
    );
}
