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

/// boto3's STS client assumes a role on Oxbow and its KVS client is judged by the role's
/// policy (`tests/boto3_access.py`).
#[test]
fn boto3_assumes_a_role_through_sts() {
    let server = TestServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let role_arn = runtime.block_on(async {
        let client = common::media_client(&server);
        let call = |action: &str, body: serde_json::Value| {
            let client = client.clone();
            let path = format!("/admin/{action}");
            async move { client.call_json(&path, &body).await.unwrap() }
        };
        let role = call("CreateRole", serde_json::json!({"RoleName": "lister"})).await;
        let doc = serde_json::json!({"Statement": [{"Effect": "Allow",
            "Action": "kinesisvideo:List*", "Resource": "*"}]});
        call(
            "CreatePolicy",
            serde_json::json!({"PolicyName": "list", "PolicyDocument": doc.to_string()}),
        )
        .await;
        call(
            "AttachPolicy",
            serde_json::json!({"PolicyName": "list", "RoleName": "lister"}),
        )
        .await;
        role["Role"]["Arn"].as_str().unwrap().to_string()
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/boto3_access.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args([&server.url, ACCESS_KEY, SECRET_KEY, &role_arn])
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
