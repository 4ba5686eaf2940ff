//! `oxbow serve` as an operator sees it: generated credentials and AWS config files, TLS with a
//! self-signed CA, clean shutdown on SIGTERM, and a catalog that survives restarts.

mod common;

use aws_sdk_kinesisvideo::error::ProvideErrorMetadata;
use common::{client_for, fixture, temp_dir, TestServer};

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
        &[
            "--tls-self-signed",
            "--http-listen",
            "127.0.0.1:0",
            "--region",
            "us-west-2",
        ],
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
    let plain = server.banner_value("plain HTTP also on ");
    let kv = client_for(&plain, common::ACCESS_KEY, common::SECRET_KEY);
    let e = kv.list_streams().send().await.unwrap_err();
    assert_eq!(
        e.code(),
        Some("InvalidSignatureException"),
        "signed for us-east-1"
    );

    // The CLI speaks HTTPS: endpoint, CA and region from the data directory's profile...
    let oxbow = |args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_oxbow"));
        cmd.args(args)
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("OXBOW_ENDPOINT")
            .envs(envs.iter().copied());
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "oxbow {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let data = dir.to_str().unwrap();
    let fixture = fixture(4);
    let input = fixture.to_str().unwrap();
    oxbow(&["put", "cli", input, "--data-dir", data], &[]);
    let users = oxbow(&["admin", "list-users", "--data-dir", data], &[]);
    assert!(users.contains("Users"), "{users}");
    // ... or given explicitly, with the region from AWS_DEFAULT_REGION as the AWS CLI takes it
    // (the server signs for us-west-2 here; a us-east-1 fallback would be refused).
    let keys = [
        ("AWS_ACCESS_KEY_ID", common::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", common::SECRET_KEY),
        ("AWS_DEFAULT_REGION", "us-west-2"),
    ];
    let nowhere = temp_dir("no-profile");
    let ca_path = ca.to_str().unwrap();
    let fragments_read = |endpoint: &str, ca: &[&str]| {
        let nowhere = nowhere.to_str().unwrap();
        let mut args = vec!["get", "cli", "--start", "earliest", "--summary"];
        args.extend(["--endpoint", endpoint, "--data-dir", nowhere]);
        args.extend_from_slice(ca);
        let summary = oxbow(&args, &keys);
        summary
            .lines()
            .filter(|l| l.starts_with("fragment "))
            .count()
    };
    assert_eq!(fragments_read(&server.url, &["--ca-bundle", ca_path]), 4);
    // Over the plain listener the data endpoint handed out is plain too.
    assert_eq!(fragments_read(&plain, &[]), 4);
}

/// The banner names absolute paths whatever the working directory, and logs written to a
/// pipe carry no colour codes.
#[test]
fn banner_paths_are_absolute_and_logs_plain() {
    let cwd = temp_dir("cwd");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_oxbow"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-self-signed"])
        .args(["--turn-listen", "127.0.0.1:0"])
        .args(["--data-dir", "relative-data"])
        .current_dir(&cwd)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut banner = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("  aws kinesisvideo") {
            break;
        }
    }
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let out = child.wait_with_output().unwrap();
    let expected = cwd.join("relative-data");
    for word in banner.split_whitespace() {
        let path = word.split_once('=').map_or(word, |(_, p)| p);
        if path.contains("relative-data") {
            assert!(
                path.starts_with(expected.to_str().unwrap()),
                "{path} in {banner}"
            );
        }
    }
    assert!(banner.contains("tls/ca.pem"), "{banner}");
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("shutting down"), "{logs}");
    assert!(!logs.contains('\x1b'), "colour codes in {logs}");
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
