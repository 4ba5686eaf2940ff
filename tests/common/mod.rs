//! Test harness: starts the real `oxbow` binary on an ephemeral loopback port with its own data
//! directory, and talks to it with the official AWS SDK or with raw, officially signed HTTP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use aws_sdk_kinesisvideo::config::{BehaviorVersion, Credentials, Region};

pub const ACCESS_KEY: &str = "AKIAOXBOWTESTROOT001";
pub const SECRET_KEY: &str = "oxbow-test-secret-key-0123456789abcdefgh";
pub const REGION: &str = "us-east-1";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "oxbow-test-{tag}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct TestServer {
    child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    /// Everything the server printed on stdout up to readiness.
    pub banner: String,
    /// The data directory is this server's own (made by [`TestServer::start_with`]), removed
    /// when it ends: a test run would otherwise leave hundreds of megabytes behind.
    owns_data_dir: bool,
}

impl TestServer {
    /// A server with the fixed test root key and default settings.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
        let mut server = Self::start_in(&temp_dir("srv"), args, true);
        server.owns_data_dir = true;
        server
    }

    /// Starts on `data_dir`; `fixed_keys` sets the test root key through the environment.
    pub fn start_in(data_dir: &Path, args: &[&str], fixed_keys: bool) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxbow"));
        cmd.arg("serve");
        if !args.contains(&"--listen") {
            cmd.arg("--listen").arg("127.0.0.1:0");
        }
        if !args.contains(&"--turn-listen") && !args.contains(&"--no-turn") {
            cmd.arg("--turn-listen").arg("127.0.0.1:0");
        }
        if !args.contains(&"--turn-tls-listen") {
            cmd.arg("--turn-tls-listen").arg("127.0.0.1:0");
        }
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env_remove("OXBOW_ROOT_ACCESS_KEY_ID")
            .env_remove("OXBOW_ROOT_SECRET_ACCESS_KEY")
            .env(
                "RUST_LOG",
                std::env::var("OXBOW_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if fixed_keys {
            cmd.env("OXBOW_ROOT_ACCESS_KEY_ID", ACCESS_KEY)
                .env("OXBOW_ROOT_SECRET_ACCESS_KEY", SECRET_KEY);
        }
        let mut child = cmd.spawn().expect("start oxbow");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut banner = String::new();
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    banner.push_str(&line);
                    banner.push('\n');
                    if line.starts_with("  aws kinesisvideo") {
                        let _ = tx.send(banner.clone());
                        sent = true;
                    }
                }
            }
        });
        let banner = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!("oxbow did not become ready");
            }
        };
        let url = banner
            .lines()
            .find_map(|l| {
                l.split_once("is ready: ")
                    .map(|(_, u)| u.trim().to_string())
            })
            .expect("ready line");
        TestServer {
            child,
            url,
            data_dir: data_dir.to_path_buf(),
            banner,
            owns_data_dir: false,
        }
    }

    pub fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string()
    }

    pub fn client(&self) -> aws_sdk_kinesisvideo::Client {
        client_for(&self.url, ACCESS_KEY, SECRET_KEY)
    }

    /// What the readiness banner says after `prefix` (`plain HTTP also on `, ...).
    pub fn banner_value(&self, prefix: &str) -> String {
        self.banner
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' in {}", self.banner))
            .trim()
            .to_string()
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().unwrap();
        self.remove_own_data_dir();
        std::mem::forget(self);
        status
    }
}

impl TestServer {
    /// SIGKILL: no shutdown, no flush, as in a crash or power loss of the process.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.remove_own_data_dir();
    }
}

impl TestServer {
    fn remove_own_data_dir(&self) {
        if self.owns_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

pub fn client_for(url: &str, key: &str, secret: &str) -> aws_sdk_kinesisvideo::Client {
    let config = aws_sdk_kinesisvideo::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(key, secret, None, None, "oxbow-tests"))
        .build();
    aws_sdk_kinesisvideo::Client::from_conf(config)
}

/// The official WebRTC storage client (JoinStorageSession) for `url`, signing as `key`.
pub fn storage_client_for(
    url: &str,
    key: &str,
    secret: &str,
) -> aws_sdk_kinesisvideowebrtcstorage::Client {
    let config = aws_sdk_kinesisvideowebrtcstorage::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(key, secret, None, None, "oxbow-tests"))
        .build();
    aws_sdk_kinesisvideowebrtcstorage::Client::from_conf(config)
}

/// The official signaling client (GetIceServerConfig, SendAlexaOfferToMaster) for `url`.
pub fn signaling_client_for(url: &str) -> aws_sdk_kinesisvideosignaling::Client {
    let config = aws_sdk_kinesisvideosignaling::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "oxbow-tests",
        ))
        .build();
    aws_sdk_kinesisvideosignaling::Client::from_conf(config)
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The AWS error type, from the header.
    pub fn error_type(&self) -> &str {
        self.header("x-amzn-ErrorType").unwrap_or("")
    }
}

/// Sends one HTTP/1.1 request as written (`head` without the blank line) and reads the reply.
pub fn send_raw(addr: &str, head: &str, body: &[u8]) -> Raw {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = wire(head).into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> Raw {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Raw {
        status,
        headers,
        body: body.to_string(),
    }
}

/// How to sign a raw request.
pub struct Signing<'a> {
    pub key: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    pub time: SystemTime,
    /// The `host` value to sign and send (the KVS C SDK sends one without the port).
    pub host: Option<&'a str>,
    pub presigned: bool,
    /// The session token of temporary credentials.
    pub token: Option<&'a str>,
    /// The SigV4 service name.
    pub service: &'a str,
}

impl Default for Signing<'_> {
    fn default() -> Self {
        Signing {
            key: ACCESS_KEY,
            secret: SECRET_KEY,
            region: REGION,
            time: SystemTime::now(),
            host: None,
            presigned: false,
            token: None,
            service: "kinesisvideo",
        }
    }
}

/// Signs with the official `aws-sigv4` crate and returns (path with query, headers to send).
pub fn sign(
    method: &str,
    addr: &str,
    path_and_query: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
    s: &Signing<'_>,
) -> (String, Vec<(String, String)>) {
    use aws_sigv4::http_request::{
        sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    };
    use aws_sigv4::sign::v4;
    let host = s.host.unwrap_or(addr);
    let identity = aws_credential_types::Credentials::new(
        s.key,
        s.secret,
        s.token.map(str::to_string),
        None,
        "t",
    )
    .into();
    let mut settings = SigningSettings::default();
    if s.presigned {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(300));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(s.region)
        .name(s.service)
        .time(s.time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let url = format!("http://{host}{path_and_query}");
    let mut headers: Vec<(String, String)> = vec![("host".into(), host.into())];
    headers.extend(
        extra_headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let signable = SignableRequest::new(
        method,
        &url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    for (k, v) in instructions.headers() {
        headers.push((k.to_string(), v.to_string()));
    }
    let mut target = path_and_query.to_string();
    for (i, (k, v)) in instructions.params().iter().enumerate() {
        let sep = if i == 0 && !target.contains('?') {
            '?'
        } else {
            '&'
        };
        target.push(sep);
        target.push_str(&format!("{k}={}", urlencode(v)));
    }
    (target, headers)
}

pub fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A signed JSON POST to a control-plane path.
pub fn post(server: &TestServer, path: &str, body: &str, s: &Signing<'_>) -> Raw {
    request(
        server,
        "POST",
        path,
        Some("application/json"),
        body.as_bytes(),
        s,
    )
}

/// Any signed request: `method` to `path_and_query` with an optional content type and body.
pub fn request(
    server: &TestServer,
    method: &str,
    path_and_query: &str,
    content_type: Option<&str>,
    body: &[u8],
    s: &Signing<'_>,
) -> Raw {
    let addr = server.addr();
    let len = body.len().to_string();
    let mut extra = vec![("content-length", len.as_str())];
    if let Some(ct) = content_type {
        extra.push(("content-type", ct));
    }
    let head = signed_head(
        method,
        &addr,
        path_and_query,
        &extra,
        body,
        s,
        "connection: close",
    );
    send_raw(&addr, &head, body)
}

/// A signed request head, one line per `\n` (see [`wire`]): the request line, the `unsigned`
/// lines (e.g. framing), then `extra` and the SigV4 headers, all signed over `body`.
pub fn signed_head(
    method: &str,
    addr: &str,
    path_and_query: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    s: &Signing<'_>,
    unsigned: &str,
) -> String {
    let (target, headers) = sign(method, addr, path_and_query, extra, body, s);
    let mut head = format!("{method} {target} HTTP/1.1\n");
    if !unsigned.is_empty() {
        head.push_str(unsigned.trim_end());
        head.push('\n');
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\n"));
    }
    head
}

/// A head written with `\n` line ends as it goes on the wire: CRLF, and the blank line.
pub fn wire(head: &str) -> String {
    format!("{}\r\n\r\n", head.trim_end().replace('\n', "\r\n"))
}

/// The error code a GetMedia call through the official SDK fails with.
pub async fn get_media_error(
    server: &TestServer,
    stream: &str,
    selector: aws_sdk_kinesisvideomedia::types::StartSelector,
) -> String {
    let err = media_sdk(server)
        .get_media()
        .stream_name(stream)
        .start_selector(selector)
        .send()
        .await
        .unwrap_err();
    aws_sdk_kinesisvideomedia::error::ProvideErrorMetadata::code(&err)
        .unwrap_or_default()
        .to_string()
}

/// `post` with the default signing.
pub fn post_ok(server: &TestServer, path: &str, body: &str) -> Raw {
    post(server, path, body, &Signing::default())
}

// ---- media helpers ----

/// An `oxbow-client` for the test server with the test root key.
pub fn media_client(server: &TestServer) -> oxbow_client::Client {
    oxbow_client::Client::new(
        &server.url,
        REGION,
        oxbow_client::Credentials {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            session_token: None,
        },
    )
    .unwrap()
}

pub fn media_sdk(server: &TestServer) -> aws_sdk_kinesisvideomedia::Client {
    media_sdk_for(&server.url)
}

/// The official media client for `url` (a listener other than the server's first, say).
pub fn media_sdk_for(url: &str) -> aws_sdk_kinesisvideomedia::Client {
    let config = aws_sdk_kinesisvideomedia::Config::builder()
        .behavior_version(aws_sdk_kinesisvideomedia::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesisvideomedia::config::Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_kinesisvideomedia::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "t",
        ))
        .build();
    aws_sdk_kinesisvideomedia::Client::from_conf(config)
}

pub fn archive_sdk(server: &TestServer) -> aws_sdk_kinesisvideoarchivedmedia::Client {
    archive_sdk_for(&server.url)
}

/// The official archived-media client for `url`.
pub fn archive_sdk_for(url: &str) -> aws_sdk_kinesisvideoarchivedmedia::Client {
    let config = aws_sdk_kinesisvideoarchivedmedia::Config::builder()
        .behavior_version(aws_sdk_kinesisvideoarchivedmedia::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesisvideoarchivedmedia::config::Region::new(
            REGION,
        ))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_kinesisvideoarchivedmedia::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "t",
        ))
        .build();
    aws_sdk_kinesisvideoarchivedmedia::Client::from_conf(config)
}

// ---- browser helpers ----

/// Where the browser tests' pages, scripts and bundles live (`tests/browser/setup.sh`).
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// Runs `tests/browser/<script>` in node with `cfg` as JSON in the environment variable
/// `env`, within `limit`; returns the JSON it printed after `RESULT ` (panics with its whole
/// output if it failed or printed none).
pub async fn run_browser_script(
    script: &str,
    env: &str,
    cfg: &serde_json::Value,
    limit: Duration,
) -> serde_json::Value {
    let (path, env, cfg) = (browser_dir().join(script), env.to_string(), cfg.to_string());
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(path)
            .env(env, cfg)
            .output()
            .expect("node")
    });
    let out = tokio::time::timeout(limit, run)
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {limit:?}"))
        .unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let result = log
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|r| serde_json::from_str(r).unwrap())
        .unwrap_or_else(|| panic!("{log}"));
    println!("{result}");
    result
}

/// The IceServer list GetIceServerConfig gives a peer (`client`, or the master), as
/// RTCPeerConnection takes it.
/// The WSS endpoint GetSignalingChannelEndpoint answers `kv`'s node for `arn` and `role`
/// (`MASTER` or `VIEWER`).
pub async fn wss_endpoint(kv: &aws_sdk_kinesisvideo::Client, arn: &str, role: &str) -> String {
    use aws_sdk_kinesisvideo::types::{
        ChannelProtocol, ChannelRole, SingleMasterChannelEndpointConfiguration,
    };
    let out = kv
        .get_signaling_channel_endpoint()
        .channel_arn(arn)
        .single_master_channel_endpoint_configuration(
            SingleMasterChannelEndpointConfiguration::builder()
                .protocols(ChannelProtocol::Wss)
                .role(ChannelRole::from(role))
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.resource_endpoint_list()[0]
        .resource_endpoint()
        .unwrap()
        .to_string()
}

pub async fn ice_servers(url: &str, arn: &str, client: Option<&str>) -> serde_json::Value {
    let out = signaling_client_for(url)
        .get_ice_server_config()
        .channel_arn(arn)
        .set_client_id(client.map(str::to_string))
        .send()
        .await
        .unwrap();
    serde_json::Value::Array(
        out.ice_server_list()
            .iter()
            .map(|s| {
                serde_json::json!({"urls": s.uris(), "username": s.username(), "credential": s.password()})
            })
            .collect(),
    )
}

/// Runs a boto3 script of `tests/` with `args`, outside any AWS profile; panics with its
/// output unless it succeeds.
pub fn run_boto3(script: &str, args: &[&std::ffi::OsStr]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests")
        .join(script);
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .output()
        .expect("python3 with boto3 (pip install boto3)");
    assert!(
        out.status.success(),
        "{script}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- admin helpers ----

/// One admin API call with the test root key; panics on failure.
pub async fn admin(
    server: &TestServer,
    action: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    media_client(server)
        .call_json(&format!("/admin/{action}"), &body)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"))
}

/// A device: thing `thing`, and a certificate from Oxbow's CA saved in `dir` as curl wants it
/// (`certificate.pem`, `private.pem.key`), attached to the thing and to policy `policy`.
/// Returns the certificate id.
pub async fn iot_device(server: &TestServer, dir: &Path, thing: &str, policy: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    admin(
        server,
        "CreateThing",
        serde_json::json!({ "ThingName": thing }),
    )
    .await;
    let c = admin(
        server,
        "CreateKeysAndCertificate",
        serde_json::json!({"SetAsActive": true}),
    )
    .await;
    std::fs::write(
        dir.join("certificate.pem"),
        c["CertificatePem"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("private.pem.key"),
        c["KeyPair"]["PrivateKey"].as_str().unwrap(),
    )
    .unwrap();
    let id = c["CertificateId"].as_str().unwrap().to_string();
    admin(
        server,
        "AttachPolicy",
        serde_json::json!({"PolicyName": policy, "CertificateId": id}),
    )
    .await;
    admin(
        server,
        "AttachThingPrincipal",
        serde_json::json!({"ThingName": thing, "CertificateId": id}),
    )
    .await;
    id
}

/// Creates policy `name` from `document` and attaches it to the holder named by `member`
/// (`UserName`, `RoleName` or `CertificateId`) = `holder`.
pub async fn attach_new_policy(
    server: &TestServer,
    name: &str,
    document: &serde_json::Value,
    member: &str,
    holder: &str,
) {
    admin(
        server,
        "CreatePolicy",
        serde_json::json!({"PolicyName": name, "PolicyDocument": document.to_string()}),
    )
    .await;
    admin(
        server,
        "AttachPolicy",
        serde_json::json!({"PolicyName": name, member: holder}),
    )
    .await;
}

/// Real media: H.264 (one key frame a second, 25 fps) and AAC, made by ffmpeg once per test
/// process and cached in the temp directory.
pub fn fixture(seconds: u32) -> PathBuf {
    fixture_sized(seconds, "320x240")
}

/// The same media at another picture size (`640x360`).
pub fn fixture_sized(seconds: u32, size: &str) -> PathBuf {
    let name = if size == "320x240" {
        format!("oxbow-fixture-{seconds}s.mkv")
    } else {
        format!("oxbow-fixture-{seconds}s-{size}.mkv")
    };
    let path = std::env::temp_dir().join(name);
    if path.exists() {
        return path;
    }
    let tmp = temp_dir("fixture").join("f.mkv");
    let status = Command::new("ffmpeg")
        .args([
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=25"),
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
        ])
        .arg(seconds.to_string())
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-keyint_min",
            "25",
        ])
        .args([
            "-sc_threshold",
            "0",
            "-bf",
            "0",
            "-c:a",
            "aac",
            "-f",
            "matroska",
        ])
        .arg(&tmp)
        .status()
        .expect("ffmpeg (installed by .ci/run)");
    assert!(status.success(), "ffmpeg failed");
    // Atomic: parallel test processes may race to make the same fixture.
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// The frame elements (SimpleBlock/BlockGroup bytes) of MKV data, in order.
pub fn frames(mkv: &[u8]) -> Vec<bytes::Bytes> {
    tagged_frames(mkv).into_iter().map(|(_, f)| f).collect()
}

/// Frames with the fragment number tag of the chunk they came in (if any).
pub fn tagged_frames(mkv: &[u8]) -> Vec<(String, bytes::Bytes)> {
    let mut out = Vec::new();
    let mut number = String::new();
    for e in events(mkv) {
        match e {
            oxbow_mkv::Event::Tags(tags) => {
                for (k, v) in tags {
                    if k == "AWS_KINESISVIDEO_FRAGMENT_NUMBER" {
                        number = v;
                    }
                }
            }
            oxbow_mkv::Event::Frame(f) => out.push((number.clone(), f.element)),
            _ => {}
        }
    }
    out
}

/// All tag pairs of MKV data, in order.
pub fn all_tags(mkv: &[u8]) -> Vec<(String, String)> {
    events(mkv)
        .into_iter()
        .flat_map(|e| match e {
            oxbow_mkv::Event::Tags(t) => t,
            _ => Vec::new(),
        })
        .collect()
}

/// Every parser event of MKV data (back-to-back documents included), in order.
pub fn events(mkv: &[u8]) -> Vec<oxbow_mkv::Event> {
    let mut r = oxbow_client::ChunkReader::default();
    r.push(mkv);
    r.finish().unwrap()
}

/// Streams a file with the producer; returns its acks and summary.
pub async fn put_file(
    server: &TestServer,
    stream: &str,
    path: &Path,
    realtime: bool,
) -> (Vec<oxbow_client::Ack>, oxbow_client::PutSummary) {
    let client = media_client(server);
    let retention = server
        .client()
        .describe_stream()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap()
        .data_retention_in_hours
        .unwrap_or(0);
    let mut options = oxbow_client::PutOptions::new(stream);
    options.realtime = realtime;
    options.no_retention = retention == 0;
    let producer = oxbow_client::Producer::new(client, options);
    let file = tokio::fs::File::open(path).await.unwrap();
    let mut acks = Vec::new();
    let summary = producer.run(file, |a| acks.push(a.clone())).await.unwrap();
    (acks, summary)
}

// ---- hand-made MKV ----

use oxbow_mkv::{ids, write};

pub fn mkv_start(tracks: &[(u64, u64, &str, &[u8])]) -> Vec<u8> {
    let mut s = write::ebml_header();
    s.extend(write::unknown_size(ids::SEGMENT));
    s.extend(write::info(1_000_000, "test"));
    s.extend(write::tracks(tracks));
    s
}

pub const AV: &[(u64, u64, &str, &[u8])] = &[
    (1, 1, "V_MPEG4/ISO/AVC", &[1]),
    (2, 2, "A_AAC", &[0x12, 0x10]),
];

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A fragment: a Cluster at `timecode` with a video and an audio frame per 100 ms.
pub fn cluster(timecode: u64, frames: usize, payload: usize) -> Vec<u8> {
    let mut c = write::unknown_size(ids::CLUSTER);
    c.extend(write::uint(ids::TIMECODE, timecode));
    for i in 0..frames {
        c.extend(write::simple_block(
            1,
            (i * 100) as i16,
            i == 0,
            &vec![7u8; payload],
        ));
        c.extend(write::simple_block(2, (i * 100) as i16, true, &[9u8; 16]));
    }
    c
}

/// A PutMedia body: pieces sent after a pause of so many milliseconds.
pub type Body = Vec<(u64, Vec<u8>)>;

/// Sends `pieces` (with pauses) as one PutMedia body; returns the acks.
pub async fn put_raw(server: &TestServer, stream: &str, pieces: Body) -> Vec<oxbow_client::Ack> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        for (pause_ms, bytes) in pieces {
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
            if tx.send(bytes::Bytes::from(bytes)).await.is_err() {
                return;
            }
        }
    });
    media_client(server)
        .put_media_raw(stream, "ABSOLUTE", rx)
        .await
        .unwrap()
}

/// Every fragment of a stream by one clock, from ListFragments (one page of up to 1000).
pub async fn list_all(
    server: &TestServer,
    stream: &str,
    producer_clock: bool,
) -> aws_sdk_kinesisvideoarchivedmedia::operation::list_fragments::ListFragmentsOutput {
    list_all_at(&server.url, stream, producer_clock).await
}

/// [`list_all`] through the listener at `url`.
pub async fn list_all_at(
    url: &str,
    stream: &str,
    producer_clock: bool,
) -> aws_sdk_kinesisvideoarchivedmedia::operation::list_fragments::ListFragmentsOutput {
    use aws_sdk_kinesisvideoarchivedmedia::primitives::DateTime;
    use aws_sdk_kinesisvideoarchivedmedia::types::{
        FragmentSelector, FragmentSelectorType, TimestampRange,
    };
    let kind = if producer_clock {
        FragmentSelectorType::ProducerTimestamp
    } else {
        FragmentSelectorType::ServerTimestamp
    };
    archive_sdk_for(url)
        .list_fragments()
        .stream_name(stream)
        .max_results(1000)
        .fragment_selector(
            FragmentSelector::builder()
                .fragment_selector_type(kind)
                .timestamp_range(
                    TimestampRange::builder()
                        .start_timestamp(DateTime::from_secs(0))
                        .end_timestamp(DateTime::from_secs(4_000_000_000))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
}

/// A stream's ARN, from DescribeStream.
pub async fn stream_arn(client: &aws_sdk_kinesisvideo::Client, name: &str) -> String {
    client
        .describe_stream()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap()
        .stream_arn
        .unwrap()
}

/// Creates a stream with `retention_hours` of retention; returns its ARN.
pub async fn create_stream_with(server: &TestServer, name: &str, retention_hours: i32) -> String {
    server
        .client()
        .create_stream()
        .stream_name(name)
        .data_retention_in_hours(retention_hours)
        .send()
        .await
        .unwrap()
        .stream_arn
        .unwrap()
}

/// A whole GetMedia response through the official SDK, from `selector`.
pub async fn get_media(
    server: &TestServer,
    stream: &str,
    selector: aws_sdk_kinesisvideomedia::types::StartSelector,
) -> Vec<u8> {
    get_media_at(&server.url, stream, selector).await
}

/// [`get_media`] through the listener at `url`.
pub async fn get_media_at(
    url: &str,
    stream: &str,
    selector: aws_sdk_kinesisvideomedia::types::StartSelector,
) -> Vec<u8> {
    let out = media_sdk_for(url)
        .get_media()
        .stream_name(stream)
        .start_selector(selector)
        .send()
        .await
        .unwrap();
    out.payload.collect().await.unwrap().into_bytes().to_vec()
}

/// A start selector of a kind that takes no argument (NOW, EARLIEST).
pub fn selector(
    kind: aws_sdk_kinesisvideomedia::types::StartSelectorType,
) -> aws_sdk_kinesisvideomedia::types::StartSelector {
    aws_sdk_kinesisvideomedia::types::StartSelector::builder()
        .start_selector_type(kind)
        .build()
        .unwrap()
}

/// A whole GetMediaForFragmentList response through the official SDK.
pub async fn media_for_fragments(
    server: &TestServer,
    stream: &str,
    numbers: Vec<String>,
) -> bytes::Bytes {
    let out = archive_sdk(server)
        .get_media_for_fragment_list()
        .stream_name(stream)
        .set_fragments(Some(numbers))
        .send()
        .await
        .unwrap();
    out.payload.collect().await.unwrap().into_bytes()
}

/// Runs `test` while a producer sends 40 s of media to `stream` in real time, after giving it
/// 2.5 s to get a couple of fragments in.
pub async fn while_producing<T>(
    server: &TestServer,
    stream: &str,
    test: impl std::future::Future<Output = T>,
) -> T {
    create_stream_with(server, stream, 24).await;
    let fixture = fixture(40);
    let producer = put_file(server, stream, &fixture, true);
    tokio::pin!(producer);
    let test = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        test.await
    };
    tokio::select! {
        _ = &mut producer => panic!("the producer finished before the test"),
        r = test => r,
    }
}

/// An image file's codec, width and height as ffprobe reads them: `mjpeg,160,120`.
pub fn probe_image(path: &Path) -> String {
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe (installed by .ci/run)");
    String::from_utf8_lossy(&probe.stdout).trim().to_string()
}

/// H.265 video alone (no audio), 25 fps with a key frame a second, made by ffmpeg once.
pub fn hevc_fixture() -> std::path::PathBuf {
    let path = std::env::temp_dir().join("oxbow-fixture-hevc-3s.mkv");
    if path.exists() {
        return path;
    }
    let tmp = temp_dir("hevc").join("f.mkv");
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-f", "lavfi", "-i"])
        .args([
            "testsrc2=size=320x240:rate=25",
            "-t",
            "3",
            "-c:v",
            "libx265",
        ])
        .args(["-preset", "ultrafast", "-x265-params"])
        .args(["keyint=25:min-keyint=25:scenecut=0:bframes=0:log-level=error"])
        .args(["-f", "matroska"])
        .arg(&tmp)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg could not make H.265");
    std::fs::rename(&tmp, &path).unwrap();
    path
}
