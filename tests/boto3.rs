//! boto3, the Python SDK, performs every control-plane action against a real server
//! (`tests/boto3_smoke.py`; `.ci/run` installs boto3).

mod common;

use common::{TestServer, ACCESS_KEY, SECRET_KEY};

#[test]
fn boto3_performs_every_control_plane_action() {
    let server = TestServer::start_with(&["--edge-sync-delay-ms", "100"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/boto3_smoke.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args([&server.url, ACCESS_KEY, SECRET_KEY])
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .output()
        .expect("python3 with boto3 (pip install boto3)");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
