//! The AWS IoT control-plane API with the official clients: boto3's IoT client for every
//! operation Oxbow serves (`tests/boto3_iot.py`), and seed 003's camera set-up run as written
//! with the AWS CLI, jq, curl and openssl (`tests/seed003_aws_cli.sh`), ending in a camera
//! streaming with the credentials its certificate obtained.

mod common;

use std::process::Command;

use common::{TestServer, ACCESS_KEY, SECRET_KEY};

fn iot_server() -> (TestServer, String) {
    let port = common::free_port();
    let server = TestServer::start_with(&["--iot-listen", &format!("127.0.0.1:{port}")]);
    (server, format!("127.0.0.1:{port}"))
}

#[test]
fn boto3_manages_things_certificates_and_policies_through_the_iot_api() {
    let (server, iot_endpoint) = iot_server();
    common::run_boto3(
        "boto3_iot.py",
        &[
            server.url.as_ref(),
            ACCESS_KEY.as_ref(),
            SECRET_KEY.as_ref(),
            iot_endpoint.as_ref(),
        ],
    );
}

#[test]
fn seed_003_runs_as_written_with_the_aws_cli() {
    let (server, iot_endpoint) = iot_server();
    let dir = common::temp_dir("seed003");
    // The seed's `--profile default`: the root keys, in files of the test's own.
    std::fs::write(
        dir.join("credentials"),
        format!(
            "[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("config"), "[default]\nregion = us-east-1\n").unwrap();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/seed003_aws_cli.sh");
    let out = Command::new("bash")
        .arg(script)
        .current_dir(&work)
        .env("ENDPOINT", &server.url)
        .env("IOT_ENDPOINT", &iot_endpoint)
        .env("SERVER_CA", server.banner_value("devices verify it with"))
        .env("OXBOW", env!("CARGO_BIN_EXE_oxbow"))
        .env("AWS_CONFIG_FILE", dir.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("OXBOW_ENDPOINT")
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("seed 003: all three variants passed"),
        "seed 003 script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
