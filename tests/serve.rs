//! `oxbow serve` as an operator sees it: generated credentials and AWS config files, TLS with a
//! self-signed CA, clean shutdown on SIGTERM, and a catalog that survives restarts.

mod common;

use aws_sdk_kinesisvideo::error::ProvideErrorMetadata;
use common::{client_for, temp_dir, TestServer};

fn ini_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == key))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("{key} missing in {text}"))
}

#[tokio::test]
async fn generated_credentials_persist_and_work() {
    let dir = temp_dir("creds");
    let server = TestServer::start_in(&dir, &[], false);
    let creds = std::fs::read_to_string(dir.join("aws/credentials")).unwrap();
    let config = std::fs::read_to_string(dir.join("aws/config")).unwrap();
    assert!(creds.starts_with("[oxbow]"));
    assert!(config.starts_with("[profile oxbow]"));
    assert_eq!(ini_value(&config, "endpoint_url"), server.url);
    assert_eq!(ini_value(&config, "region"), "us-east-1");
    let key = ini_value(&creds, "aws_access_key_id");
    let secret = ini_value(&creds, "aws_secret_access_key");
    assert!(key.starts_with("AKIA") && key.len() == 20);
    assert!(server.banner.contains(&key), "the banner names the key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("aws/credentials"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "credentials are private");
    }
    let kv = client_for(&server.url, &key, &secret);
    kv.create_stream()
        .stream_name("persisted")
        .send()
        .await
        .unwrap();
    let status = server.stop();
    assert!(status.success(), "SIGTERM exits cleanly: {status:?}");

    let server = TestServer::start_in(&dir, &[], false);
    let creds2 = std::fs::read_to_string(dir.join("aws/credentials")).unwrap();
    assert_eq!(
        ini_value(&creds2, "aws_access_key_id"),
        key,
        "same key after restart"
    );
    let kv = client_for(&server.url, &key, &secret);
    let info = kv
        .describe_stream()
        .stream_name("persisted")
        .send()
        .await
        .unwrap();
    assert_eq!(info.stream_info().unwrap().stream_name(), Some("persisted"));
    let wrong = client_for(&server.url, &key, "not-the-secret");
    let err = wrong.list_streams().send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidSignatureException"));
}

#[tokio::test]
async fn restart_keeps_every_resource() {
    let dir = temp_dir("restart");
    let server = TestServer::start_in(&dir, &[], true);
    let kv = server.client();
    let arn = kv
        .create_stream()
        .stream_name("s")
        .data_retention_in_hours(5)
        .tags("k", "v")
        .send()
        .await
        .unwrap()
        .stream_arn
        .unwrap();
    let ch = kv
        .create_signaling_channel()
        .channel_name("c")
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap();
    let before = kv
        .describe_stream()
        .stream_name("s")
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap();
    // A hard kill: the catalog commits with fsync, so nothing acknowledged is lost.
    drop(server);
    let server = TestServer::start_in(&dir, &[], true);
    let kv = server.client();
    let after = kv
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap();
    assert_eq!(before, after);
    let tags = kv
        .list_tags_for_stream()
        .stream_name("s")
        .send()
        .await
        .unwrap()
        .tags
        .unwrap();
    assert_eq!(tags["k"], "v");
    kv.describe_signaling_channel()
        .channel_arn(&ch)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn self_signed_tls() {
    let dir = temp_dir("tls");
    let server = TestServer::start_in(
        &dir,
        &["--tls-self-signed", "--http-listen", "127.0.0.1:0"],
        true,
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let ca = dir.join("tls/ca.pem");
    assert!(ca.exists());
    assert!(server.banner.contains("ca.pem"));
    let config = std::fs::read_to_string(dir.join("aws/config")).unwrap();
    assert!(config.contains("ca_bundle"));
    // curl verifies the server certificate against the generated CA, by name and by IP.
    for host in ["localhost", "127.0.0.1"] {
        let out = std::process::Command::new("curl")
            .args(["-s", "--fail", "--cacert"])
            .arg(&ca)
            .arg(format!("{}/health", server.url.replace("127.0.0.1", host)))
            .output()
            .expect("curl (installed by .ci/run)");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            r#"{"status":"ok"}"#,
            "{host}"
        );
    }
    let plain = server
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("plain HTTP also on "))
        .expect("plain listener")
        .to_string();
    let kv = client_for(&plain, common::ACCESS_KEY, common::SECRET_KEY);
    kv.list_streams().send().await.unwrap();
}

#[test]
fn bad_configuration_is_reported() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_oxbow"))
        .args(["serve", "--listen", "127.0.0.1:0", "--account-id", "12"])
        .arg("--data-dir")
        .arg(temp_dir("badcfg"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("12 digits"));
}
