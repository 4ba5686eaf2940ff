//! boto3, the Python SDK, performs every control-plane action against a real server
//! (`tests/boto3_smoke.py`; `.ci/run` installs boto3).

mod common;

use common::{TestServer, ACCESS_KEY, SECRET_KEY};

#[test]
fn boto3_performs_every_control_plane_action() {
    let server = TestServer::start_with(&["--edge-sync-delay-ms", "100"]);
    common::run_boto3(
        "boto3_smoke.py",
        &[
            server.url.as_ref(),
            ACCESS_KEY.as_ref(),
            SECRET_KEY.as_ref(),
        ],
    );
}

/// boto3's STS client assumes a role on Oxbow and its KVS client is judged by the role's
/// policy (`tests/boto3_access.py`).
#[test]
fn boto3_assumes_a_role_through_sts() {
    let server = TestServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let role_arn = runtime.block_on(async {
        let role = common::admin(
            &server,
            "CreateRole",
            serde_json::json!({"RoleName": "lister"}),
        )
        .await;
        let doc = serde_json::json!({"Statement": [{"Effect": "Allow",
            "Action": "kinesisvideo:List*", "Resource": "*"}]});
        common::attach_new_policy(&server, "list", &doc, "RoleName", "lister").await;
        role["Role"]["Arn"].as_str().unwrap().to_string()
    });
    common::run_boto3(
        "boto3_access.py",
        &[
            server.url.as_ref(),
            ACCESS_KEY.as_ref(),
            SECRET_KEY.as_ref(),
            role_arn.as_ref(),
        ],
    );
}

/// boto3's IAM client runs seed 003's role steps on Oxbow's IAM query API (a server in
/// eu-west-1), signed for IAM's global region and for the server's own (`tests/boto3_iam.py`).
#[test]
fn boto3_manages_roles_through_the_iam_api() {
    for region in ["us-east-1", "eu-west-1"] {
        let server = TestServer::start_with(&["--region", "eu-west-1"]);
        common::run_boto3(
            "boto3_iam.py",
            &[
                server.url.as_ref(),
                ACCESS_KEY.as_ref(),
                SECRET_KEY.as_ref(),
                region.as_ref(),
                "eu-west-1".as_ref(),
            ],
        );
    }
}
