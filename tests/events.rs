//! Tagged fragments: `AWS_KINESISVIDEO_NOTIFICATION` reaches the stream's webhook (signed,
//! after the fragment is durable, with its custom tags), `AWS_KINESISVIDEO_IMAGE_GENERATION`
//! writes images of that fragment under the image destination with KVS's key layout and
//! metadata. Real H.264 from ffmpeg, re-tagged; a webhook server in the test.

mod common;

use std::time::Duration;

use aws_sdk_kinesisvideo::types::{
    ConfigurationStatus, Format, FormatConfigKey, ImageGenerationConfiguration,
    ImageGenerationDestinationConfig, ImageSelectorType, NotificationConfiguration,
    NotificationDestinationConfig,
};
use common::*;
use hmac::Mac;
use oxbow_mkv::{ids, write, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The fixture as one MKV whose cluster timecodes are absolute (from `start_ms`), with
/// `tags` before its second cluster.
fn tagged_fixture(seconds: u32, start_ms: u64, tags: &[(&str, &str)]) -> Vec<u8> {
    let mkv = std::fs::read(fixture(seconds)).unwrap();
    let mut out = Vec::new();
    let mut clusters = 0;
    for event in events(&mkv) {
        match event {
            Event::Header(h) => {
                out.extend_from_slice(&h.ebml);
                out.extend(write::unknown_size(ids::SEGMENT));
                out.extend_from_slice(&h.info);
                out.extend_from_slice(&h.tracks);
            }
            Event::ClusterStart { timecode } => {
                clusters += 1;
                if clusters == 2 {
                    out.extend(write::tags(tags));
                }
                out.extend(write::unknown_size(ids::CLUSTER));
                out.extend(write::uint(ids::TIMECODE, start_ms + timecode));
            }
            Event::Frame(f) => out.extend_from_slice(&f.element),
            _ => {}
        }
    }
    out
}

/// A webhook that answers `status` and hands each request's headers and body to the test.
async fn webhook(status: u16) -> (String, tokio::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + length {
                        continue;
                    }
                    let body = buf[end + 4..end + 4 + length].to_vec();
                    let reply = format!(
                        "HTTP/1.1 {status} Answer
content-length: 0
connection: close

"
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                    let _ = tx.send((head, body)).await;
                    return;
                }
            });
        }
    });
    (url, rx)
}

/// An enabled image generation configuration for `uri`, to finish with options.
fn image_config(
    uri: &str,
    selector: ImageSelectorType,
    interval_ms: i32,
    format: Format,
) -> aws_sdk_kinesisvideo::types::builders::ImageGenerationConfigurationBuilder {
    ImageGenerationConfiguration::builder()
        .status(ConfigurationStatus::Enabled)
        .image_selector_type(selector)
        .destination_config(
            ImageGenerationDestinationConfig::builder()
                .uri(uri)
                .destination_region("us-east-1")
                .build()
                .unwrap(),
        )
        .sampling_interval(interval_ms)
        .format(format)
}

/// Turns on image generation for stream "cam".
async fn generate_images(
    server: &TestServer,
    config: aws_sdk_kinesisvideo::types::builders::ImageGenerationConfigurationBuilder,
) {
    server
        .client()
        .update_image_generation_configuration()
        .stream_name("cam")
        .image_generation_configuration(config.build().unwrap())
        .send()
        .await
        .unwrap();
}

/// Sends `stream`'s notifications to `uri`.
async fn notify_to(server: &TestServer, stream: &str, uri: &str) {
    server
        .client()
        .update_notification_configuration()
        .stream_name(stream)
        .notification_configuration(
            NotificationConfiguration::builder()
                .status(ConfigurationStatus::Enabled)
                .destination_config(
                    NotificationDestinationConfig::builder()
                        .uri(uri)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_notification_the_webhook_refuses_is_retried_then_kept_as_a_dead_letter() {
    // (its own directory: the server restarts on it)
    let server = TestServer::start_in(&common::temp_dir("dead-letters"), &[], true);
    create_stream_with(&server, "cam", 24).await;
    let (hook, mut received) = webhook(500).await;
    notify_to(&server, "cam", &hook).await;
    let body = tagged_fixture(3, now_ms(), &[("AWS_KINESISVIDEO_NOTIFICATION", "")]);
    put_raw(&server, "cam", vec![(0, body)]).await;
    // Four attempts (at 0, 0.5, 2.5 and 10.5 s), then the dead letter.
    for attempt in 0..4 {
        tokio::time::timeout(Duration::from_secs(15), received.recv())
            .await
            .unwrap_or_else(|_| panic!("attempt {attempt} did not come"));
    }
    let mut letters = serde_json::Value::Null;
    for _ in 0..50 {
        letters = admin(&server, "ListDeadLetters", serde_json::json!({})).await;
        if letters["DeadLetters"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let letter = &letters["DeadLetters"][0];
    assert_eq!(letter["Kind"], "NOTIFICATION", "{letters}");
    assert_eq!(letter["Destination"], hook.as_str());
    assert!(
        letter["Error"].as_str().unwrap().contains("500"),
        "{letters}"
    );
    assert_eq!(letters["DeadLetters"].as_array().unwrap().len(), 1);
    // The record outlives a restart.
    let dir = server.data_dir.clone();
    drop(server);
    let again = TestServer::start_in(&dir, &[], true);
    let after = admin(&again, "ListDeadLetters", serde_json::json!({})).await;
    assert_eq!(after["DeadLetters"], letters["DeadLetters"]);
}

#[tokio::test]
async fn tagged_fragments_notify_a_webhook_and_generate_images() {
    let server = TestServer::start();
    create_stream_with(&server, "cam", 24).await;
    let (hook, mut received) = webhook(200).await;
    notify_to(&server, "cam", &hook).await;
    generate_images(
        &server,
        image_config(
            "s3://cams/porch",
            ImageSelectorType::ServerTimestamp,
            500,
            Format::Jpeg,
        )
        .format_config(FormatConfigKey::JpegQuality, "90")
        .height_pixels(120),
    )
    .await;
    let body = tagged_fixture(
        3,
        now_ms(),
        &[
            ("AWS_KINESISVIDEO_NOTIFICATION", ""),
            ("AWS_KINESISVIDEO_IMAGE_GENERATION", ""),
            ("AWS_KINESISVIDEO_IMAGE_PREFIX", "door"),
            ("SHIFT", "night"),
        ],
    );
    let acks = put_raw(&server, "cam", vec![(0, body)]).await;
    let persisted: Vec<String> = acks
        .iter()
        .filter(|a| a.event == oxbow_client::AckEvent::Persisted)
        .map(|a| a.fragment_number.clone().unwrap())
        .collect();
    assert_eq!(persisted.len(), 3, "{acks:?}");

    // One notification, for the second fragment, signed with the server's webhook key.
    let (head, body) = tokio::time::timeout(Duration::from_secs(15), received.recv())
        .await
        .expect("the webhook is called")
        .unwrap();
    let key = hex::decode(
        std::fs::read_to_string(server.data_dir.join("notification-webhook.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("x-oxbow-signature: {signature}")),
        "{head}"
    );
    assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
    let envelope: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(envelope["Subject"], "Kinesis Video Streams Notification");
    let message: serde_json::Value =
        serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message["FragmentNumber"], persisted[1].as_str());
    assert_eq!(message["NotificationType"], "PERSISTED");
    assert_eq!(
        message["NotificationPayload"],
        serde_json::json!({"SHIFT": "night"})
    );
    assert!(message["StreamArn"]
        .as_str()
        .unwrap()
        .contains(":stream/cam/"));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), received.recv())
            .await
            .is_err()
    );

    // Images of the second fragment every 500 ms: three, 160x120 JPEGs, named and described
    // as KVS names and describes them.
    let dir = server.data_dir.join("images/cams/porch");
    let mut images = Vec::new();
    for _ in 0..100 {
        images = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.ends_with(".jpg"))
                    .collect()
            })
            .unwrap_or_default();
        if images.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(images.len(), 3, "{images:?}");
    for name in &images {
        assert!(name.starts_with("door_123456789012_cam_"), "{name}");
        assert_eq!(probe_image(&dir.join(name)), "mjpeg,160,120");
        let metadata: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.metadata.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            metadata["x-amz-meta-aws_kinesisvideo_fragment_number"],
            persisted[1].as_str()
        );
        assert_eq!(metadata["x-amz-meta-SHIFT"], "night");
    }
}

#[tokio::test]
async fn generated_images_go_to_an_s3_compatible_bucket() {
    // A real S3 server (s3s-fs, installed by .ci/run) with a bucket for the images.
    let root = temp_dir("s3");
    std::fs::create_dir_all(root.join("cams")).unwrap();
    let port = free_port();
    let _s3_server = KillOnDrop(
        std::process::Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "s3key", "--secret-key", "s3secret"])
            .arg(&root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect(
                "s3s-fs (cargo install s3s-fs --version 0.14.1 --features binary; .ci/run does)",
            ),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = TestServer::start_with(&[
        "--image-s3-endpoint",
        &endpoint,
        "--image-s3-access-key-id",
        "s3key",
        "--image-s3-secret-access-key",
        "s3secret",
    ]);
    create_stream_with(&server, "cam", 24).await;
    generate_images(
        &server,
        image_config(
            "s3://cams/yard",
            ImageSelectorType::ProducerTimestamp,
            1000,
            Format::Png,
        ),
    )
    .await;
    let body = tagged_fixture(
        3,
        now_ms(),
        &[("AWS_KINESISVIDEO_IMAGE_GENERATION", ""), ("SITE", "yard")],
    );
    let acks = put_raw(&server, "cam", vec![(0, body)]).await;
    let second = acks
        .iter()
        .filter(|a| a.event == oxbow_client::AckEvent::Persisted)
        .nth(1)
        .and_then(|a| a.fragment_number.clone())
        .unwrap();
    // Read back with the official S3 SDK: one PNG (a one-second fragment, one image a
    // second) under the prefix, with KVS's metadata.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "s3key", "s3secret", None, None, "test",
            ))
            .build(),
    );
    let mut keys = Vec::new();
    for _ in 0..100 {
        let listed = s3
            .list_objects_v2()
            .bucket("cams")
            .prefix("yard/")
            .send()
            .await;
        keys = listed
            .map(|l| {
                l.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if !keys.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A fragment of 1.02 s, an image a second: two PNGs under the prefix.
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in &keys {
        assert!(
            key.starts_with("yard/123456789012_cam_") && key.ends_with(".png"),
            "{keys:?}"
        );
        let head = s3
            .head_object()
            .bucket("cams")
            .key(key)
            .send()
            .await
            .unwrap();
        let metadata = head.metadata().cloned().unwrap_or_default();
        let get = |k: &str| {
            metadata
                .iter()
                .find(|(m, _)| m.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("aws_kinesisvideo_fragment_number"),
            Some(second.clone()),
            "{metadata:?}"
        );
        assert_eq!(get("SITE").as_deref(), Some("yard"), "{metadata:?}");
        assert_eq!(head.content_type(), Some("image/png"));
        let bytes = s3
            .get_object()
            .bucket("cams")
            .key(key)
            .send()
            .await
            .unwrap();
        let bytes = bytes.body.collect().await.unwrap().into_bytes();
        let file = temp_dir("s3-image").join("i.png");
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(probe_image(&file), "png,320,240");
    }
}

/// A child process stopped when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn notifications_reach_an_https_webhook_trusted_by_a_given_ca() {
    // A CA of the test's own, trusted through --webhook-ca, and a certificate it issued for
    // localhost.
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = temp_dir("tls-hook");
    let (ca_file, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    let mut hook = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/webhook_tls.py"
        ))
        .args([&cert, &key, &dir])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let port = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(hook.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        line.trim().to_string()
    };
    let _hook = KillOnDrop(hook);
    let server = TestServer::start_with(&["--webhook-ca", ca_file.to_str().unwrap()]);
    create_stream_with(&server, "cam", 24).await;
    notify_to(&server, "cam", &format!("https://localhost:{port}/hook")).await;
    let body = tagged_fixture(2, now_ms(), &[("AWS_KINESISVIDEO_NOTIFICATION", "")]);
    put_raw(&server, "cam", vec![(0, body)]).await;
    let received = dir.join("received-0.json");
    for _ in 0..100 {
        if received.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&received).expect("the https webhook was called"))
            .unwrap();
    let message: serde_json::Value =
        serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message["NotificationType"], "PERSISTED");
    assert!(std::fs::read_to_string(dir.join("received-0.sig"))
        .unwrap()
        .starts_with("sha256="));
}
