//! The README's first command, `scripts/demo.sh`, brings the whole product up and shows a
//! Brent request's round trip; `--once` makes it exit after that instead of waiting.

use std::process::Command;

#[test]
fn demo_runs_end_to_end() {
    let output = Command::new(e2e::repo_root().join("scripts/demo.sh"))
        .arg("--once")
        .current_dir(e2e::repo_root())
        .output()
        .expect("scripts/demo.sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for example in ["demo-storage", "demo-vnet", "demo-sql", "demo-landing-zone"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(example))
            .unwrap_or_else(|| panic!("{example} missing from kubectl get:\n{stdout}"));
        assert!(line.contains(" Ready "), "{example} not Ready: {line}");
    }
    assert!(
        stdout.contains(r#""status":"COMPLETE""#),
        "no COMPLETE result on Kafka:\n{stdout}"
    );
    assert!(
        stdout.contains(r#""tenantId":"demo""#),
        "tenantId header missing:\n{stdout}"
    );
}
