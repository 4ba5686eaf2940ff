//! Cluster mode, catalog side: several nodes on one PostgreSQL catalog (a real server, started
//! privately for the test) act as one service. What one node creates, the others serve; a key
//! deactivated, a policy detached or sessions revoked on one node stop working on another
//! within a second (LISTEN/NOTIFY, not the caches' minute); temporary credentials sealed by
//! one node open on another (the sealing key is the cluster's).

mod common;
#[path = "support/postgres.rs"]
mod pg;

use std::time::{Duration, Instant};

use aws_sdk_kinesisvideo::config::{BehaviorVersion, Credentials, Region};
use common::{admin, attach_new_policy, TestServer};
use serde_json::json;

fn node(url: &str) -> TestServer {
    TestServer::start_in(&common::temp_dir("node"), &["--catalog", url], true)
}

fn client(
    server: &TestServer,
    key: &str,
    secret: &str,
    token: Option<String>,
) -> aws_sdk_kinesisvideo::Client {
    let config = aws_sdk_kinesisvideo::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(common::REGION))
        .endpoint_url(&server.url)
        .credentials_provider(Credentials::new(key, secret, token, None, "cluster-test"))
        .build();
    aws_sdk_kinesisvideo::Client::from_conf(config)
}

/// A user `ops` who may list streams and assume roles, made on `server`: its key and secret.
async fn ops_user(server: &TestServer) -> (String, String) {
    admin(server, "CreateUser", json!({"UserName": "ops"})).await;
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["kinesisvideo:ListStreams", "sts:AssumeRole"], "Resource": "*"}]});
    attach_new_policy(server, "ops", &doc, "UserName", "ops").await;
    let k = admin(server, "CreateAccessKey", json!({"UserName": "ops"})).await;
    let field = |name: &str| k["AccessKey"][name].as_str().unwrap().to_string();
    (field("AccessKeyId"), field("SecretAccessKey"))
}

/// Waits until `refused` says the call is refused on the other node; returns how long it took.
async fn until_refused<F, Fut>(what: &str, mut refused: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if refused().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{what}: still accepted on the other node after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn nodes_on_one_postgresql_catalog_act_as_one_service() {
    let pg = pg::PgServer::start();
    let url = pg.database("oxbow");
    let a = node(&url);
    let b = node(&url);
    assert!(
        a.banner.contains("catalog: PostgreSQL 127.0.0.1:") && !a.banner.contains("oxbow@"),
        "{}",
        a.banner
    );

    // A stream created on A is B's too, with the same ARN.
    let arn = a
        .client()
        .create_stream()
        .stream_name("shared-cam")
        .data_retention_in_hours(1)
        .send()
        .await
        .unwrap()
        .stream_arn
        .unwrap();
    let on_b = b
        .client()
        .describe_stream()
        .stream_name("shared-cam")
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap();
    assert_eq!(on_b.stream_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(
        b.client()
            .list_streams()
            .send()
            .await
            .unwrap()
            .stream_info_list()
            .len(),
        1
    );

    // A user made on A works on B, judged by the policy attached on A.
    let (id, secret) = ops_user(&a).await;
    let ops_on_b = client(&b, &id, &secret, None);
    ops_on_b.list_streams().send().await.unwrap();

    // Detaching the policy on A: B denies within a second (B had the decision cached).
    admin(
        &a,
        "DetachPolicy",
        json!({"PolicyName": "ops", "UserName": "ops"}),
    )
    .await;
    let took = until_refused("a detached policy", || async {
        ops_on_b.list_streams().send().await.is_err()
    })
    .await;
    eprintln!("policy change reached node B in {took:?}");
    admin(
        &a,
        "AttachPolicy",
        json!({"PolicyName": "ops", "UserName": "ops"}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(1);
    while ops_on_b.list_streams().send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "a re-attached policy did not reach B"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A role session sealed by A opens on B; revoking the user's sessions on A ends it on B.
    let role = admin(&a, "CreateRole", json!({"RoleName": "lister"})).await;
    let list = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "kinesisvideo:ListStreams", "Resource": "*"}]});
    attach_new_policy(&a, "lister", &list, "RoleName", "lister").await;
    let sts_a = aws_sdk_sts_like(&a, &id, &secret, role["Role"]["Arn"].as_str().unwrap());
    let session = client(&b, &sts_a.0, &sts_a.1, Some(sts_a.2.clone()));
    session.list_streams().send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    admin(&a, "RevokeSessions", json!({"UserName": "ops"})).await;
    until_refused("a revoked session", || async {
        session.list_streams().send().await.is_err()
    })
    .await;

    // Deactivating the key on A: B refuses it within a second (B had the key cached).
    ops_on_b.list_streams().send().await.unwrap();
    admin(
        &a,
        "UpdateAccessKey",
        json!({"AccessKeyId": id, "Status": "Inactive"}),
    )
    .await;
    let took = until_refused("a deactivated key", || async {
        ops_on_b.list_streams().send().await.is_err()
    })
    .await;
    eprintln!("key deactivation reached node B in {took:?}");

    // Deleting the stream on B: A no longer serves it.
    b.client()
        .delete_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while a
        .client()
        .describe_stream()
        .stream_name("shared-cam")
        .send()
        .await
        .is_ok_and(|r| {
            r.stream_info
                .and_then(|i| i.status)
                .map(|s| s.as_str().to_string())
                != Some("DELETING".into())
        })
    {
        assert!(
            Instant::now() < deadline,
            "A still serves a stream deleted on B"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// STS AssumeRole on `server` signed by `key`: the session's key id, secret and token.
fn aws_sdk_sts_like(
    server: &TestServer,
    key: &str,
    secret: &str,
    role_arn: &str,
) -> (String, String, String) {
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=cluster",
        common::urlencode(role_arn)
    );
    let s = common::Signing {
        key,
        secret,
        service: "sts",
        ..common::Signing::default()
    };
    let r = common::request(
        server,
        "POST",
        "/",
        Some("application/x-www-form-urlencoded; charset=utf-8"),
        body.as_bytes(),
        &s,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let field = |name: &str| {
        let start = r.body.find(&format!("<{name}>")).unwrap() + name.len() + 2;
        let end = r.body[start..].find(&format!("</{name}>")).unwrap() + start;
        r.body[start..end].to_string()
    };
    (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    )
}

#[path = "support/s3.rs"]
mod s3;

/// A node of a cluster with its media in `bucket` of `s3`.
fn media_node(catalog: &str, s3: &s3::S3Server, bucket: &str) -> TestServer {
    media_node_leasing(catalog, s3, bucket, "2000")
}

/// [`media_node`] with leases of `lease_ms`.
fn media_node_leasing(
    catalog: &str,
    s3: &s3::S3Server,
    bucket: &str,
    lease_ms: &str,
) -> TestServer {
    TestServer::start_in(
        &common::temp_dir("media-node"),
        &[
            "--catalog",
            catalog,
            "--media",
            &format!("s3://{bucket}/oxbow"),
            "--media-s3-endpoint",
            &s3.endpoint,
            "--media-s3-access-key-id",
            s3::ACCESS_KEY,
            "--media-s3-secret-access-key",
            s3::SECRET_KEY,
            "--lease-ttl-ms",
            lease_ms,
        ],
        true,
    )
}

/// Every fragment number ListFragments gives on `node`, sorted.
async fn listed_numbers(node: &TestServer, stream: &str) -> Vec<String> {
    let listed = common::list_all(node, stream, false).await;
    sorted(
        &listed
            .fragments()
            .iter()
            .filter_map(|f| f.fragment_number.clone())
            .collect::<Vec<_>>(),
    )
}

fn sorted(numbers: &[String]) -> Vec<String> {
    let mut v = numbers.to_vec();
    v.sort();
    v
}

fn persisted(acks: &[oxbow_client::Ack]) -> Vec<String> {
    acks.iter()
        .filter(|a| a.event == oxbow_client::AckEvent::Persisted)
        .filter_map(|a| a.fragment_number.clone())
        .collect()
}

/// Media in an S3-compatible bucket: every fragment acknowledged PERSISTED is an object, and
/// after the node that wrote it is killed (`kill -9`), a node with an empty disk lists and
/// serves every one of them byte for byte; a node that read the stream earlier also sees
/// what the owner wrote since; deleting the stream deletes its objects; with the
/// bucket unreachable, nothing is acknowledged PERSISTED.
#[tokio::test]
async fn media_in_a_bucket_outlives_its_node_and_reads_on_another() {
    let pg = pg::PgServer::start();
    let catalog = pg.database("oxbow");
    let mut s3 = s3::S3Server::start(&["media"]);
    let a = media_node(&catalog, &s3, "media");
    assert!(
        a.banner
            .contains(&format!("media: s3://media/oxbow at {}", s3.endpoint)),
        "{}",
        a.banner
    );
    common::create_stream_with(&a, "yard", 24).await;
    let (acks, _) = common::put_file(&a, "yard", &common::fixture(4), false).await;
    let numbers = persisted(&acks);
    assert_eq!(numbers.len(), 4, "{acks:?}");
    let fragment_objects = |s3: &s3::S3Server| {
        s3.objects_under("media/oxbow")
            .into_iter()
            .filter(|o| o.contains("/f/"))
            .count()
    };
    assert_eq!(fragment_objects(&s3), 4);
    let served_by_a = common::media_for_fragments(&a, "yard", numbers.clone()).await;

    // The writer dies; a node that never saw the stream serves it from the bucket.
    drop(a);
    let b = media_node(&catalog, &s3, "media");
    assert_eq!(listed_numbers(&b, "yard").await, sorted(&numbers));
    let served_by_b = common::media_for_fragments(&b, "yard", numbers.clone()).await;
    assert_eq!(served_by_b, served_by_a, "byte-identical on the other node");
    // An independent reader: every video frame of the 4 s clip (25 fps).
    let path = common::temp_dir("media-b").join("yard.mkv");
    std::fs::write(&path, &served_by_b).unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "100");

    // A third node reads the stream now (and so holds its view of it) ...
    let c = media_node(&catalog, &s3, "media");
    assert_eq!(listed_numbers(&c, "yard").await, sorted(&numbers));

    // ... a live GetMedia on it waits for what comes next ...
    let live_on_c = tokio::spawn({
        let url = c.url.clone();
        async move {
            let now = common::selector(aws_sdk_kinesisvideomedia::types::StartSelectorType::Now);
            common::get_media_at(&url, "yard", now).await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // ... new fragments on B continue the numbering in the same bucket ...
    let (more, _) = common::put_file(&b, "yard", &common::fixture(2), false).await;
    let more = persisted(&more);
    assert_eq!(more.len(), 2);
    assert!(
        more.iter().all(|n| numbers.iter().all(|old| n > old)),
        "{more:?} after {numbers:?}"
    );
    assert_eq!(fragment_objects(&s3), 6);

    // ... and the third node, asked directly, lists and serves them too, as B does.
    let all = sorted(&[numbers.clone(), more.clone()].concat());
    assert_eq!(listed_numbers(&c, "yard").await, all);
    assert_eq!(
        common::media_for_fragments(&c, "yard", more.clone()).await,
        common::media_for_fragments(&b, "yard", more.clone()).await,
        "the newest fragments, byte-identical on a node that does not own the stream"
    );
    // The live reader on C got them too, from the bucket (no live events reach C).
    let live = live_on_c.await.unwrap();
    let numbers_read: Vec<String> = common::all_tags(&live)
        .into_iter()
        .filter(|(k, _)| k == "AWS_KINESISVIDEO_FRAGMENT_NUMBER")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        numbers_read, more,
        "live GetMedia on a node that does not own the stream"
    );

    // Deleting the stream deletes its objects.
    let arn = common::stream_arn(&b.client(), "yard").await;
    b.client()
        .delete_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while fragment_objects(&s3) > 0 {
        assert!(
            Instant::now() < deadline,
            "objects of a deleted stream remain"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The bucket goes away while a stream is open: its fragments are never acknowledged
    // PERSISTED (each gets an error ack, or the whole request fails).
    common::create_stream_with(&b, "dark", 24).await;
    let (acks, _) = common::put_file(&b, "dark", &common::fixture(1), false).await;
    assert_eq!(persisted(&acks).len(), 1);
    s3.stop();
    let producer = oxbow_client::Producer::new(
        common::media_client(&b),
        oxbow_client::PutOptions::new("dark"),
    );
    let file = tokio::fs::File::open(common::fixture(2)).await.unwrap();
    let mut acks = Vec::new();
    let outcome = producer.run(file, |a| acks.push(a.clone())).await;
    assert!(persisted(&acks).is_empty(), "{acks:?}");
    assert!(
        outcome.is_err()
            || acks
                .iter()
                .any(|a| a.event == oxbow_client::AckEvent::Error),
        "{outcome:?} {acks:?}"
    );
}

/// A graceful stop (SIGTERM) hands the node's leases back: another node takes its stream at
/// once, long before the lease would have run out (30 s here), and continues it.
#[tokio::test]
async fn a_graceful_stop_hands_the_stream_to_another_node_at_once() {
    let pg = pg::PgServer::start();
    let catalog = pg.database("oxbow");
    let s3 = s3::S3Server::start(&["media"]);
    let a = media_node_leasing(&catalog, &s3, "media", "30000");
    let b = media_node_leasing(&catalog, &s3, "media", "30000");
    common::create_stream_with(&a, "gate", 24).await;
    let (acks, _) = common::put_file(&a, "gate", &common::fixture(2), false).await;
    let first = persisted(&acks);
    assert_eq!(first.len(), 2, "{acks:?}");
    let put_endpoint = |node: &TestServer| {
        let client = common::media_client(node);
        async move {
            let told = client.data_endpoint("gate", "PUT_MEDIA").await.unwrap();
            told.endpoint().to_string()
        }
    };
    assert_eq!(put_endpoint(&b).await, a.url, "A owns the stream");

    let a_url = a.url.clone();
    let stopped = Instant::now();
    assert!(a.stop().success());
    assert_eq!(put_endpoint(&b).await, b.url, "B takes it at once");
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopped.elapsed()
    );
    assert_ne!(b.url, a_url);

    let (acks, _) = common::put_file(&b, "gate", &common::fixture(2), false).await;
    let second = persisted(&acks);
    assert_eq!(second.len(), 2, "{acks:?}");
    let all = sorted(&[first, second].concat());
    assert_eq!(listed_numbers(&b, "gate").await, all);
}

/// A node with shared catalog and media, and short leases.
fn leasing_node(catalog: &str, s3: &s3::S3Server) -> TestServer {
    media_node(catalog, s3, "media")
}

/// What a producer SDK does: ask `control` for the PUT_MEDIA endpoint, stream `clip` there,
/// and on any failure ask again. Returns the PERSISTED fragment numbers, how many attempts
/// failed, and the node it wrote to.
async fn produce_like_an_sdk(
    control: &oxbow_client::Client,
    stream: &str,
    clip: &std::path::Path,
    give_up: Duration,
) -> (Vec<String>, u32, String) {
    let start = Instant::now();
    let mut failures = 0;
    loop {
        assert!(
            start.elapsed() < give_up,
            "no node took the stream within {give_up:?}"
        );
        let attempt = async {
            let endpoint = control.data_endpoint(stream, "PUT_MEDIA").await?;
            let url = endpoint.endpoint().to_string();
            let producer =
                oxbow_client::Producer::new(endpoint, oxbow_client::PutOptions::new(stream));
            let file = tokio::fs::File::open(clip).await.unwrap();
            let mut acks = Vec::new();
            producer.run(file, |a| acks.push(a.clone())).await?;
            Ok::<_, oxbow_client::ClientError>((acks, url))
        };
        match attempt.await {
            Ok((acks, url))
                if acks
                    .iter()
                    .all(|a| a.event != oxbow_client::AckEvent::Error) =>
            {
                return (persisted(&acks), failures, url)
            }
            _ => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Ownership by lease: one node owns a stream; a PutMedia reaching another is refused with a
/// retryable 503; when the owner is killed (`kill -9`) its lease runs out and a producer that
/// keeps asking GetDataEndpoint continues on a surviving node, with larger fragment numbers,
/// and every fragment acknowledged PERSISTED before and after is served byte for byte by every
/// surviving node.
#[tokio::test]
async fn a_producer_follows_its_stream_to_a_surviving_node() {
    let pg = pg::PgServer::start();
    let catalog = pg.database("oxbow");
    let s3 = s3::S3Server::start(&["media"]);
    let a = leasing_node(&catalog, &s3);
    let b = leasing_node(&catalog, &s3);
    let c = leasing_node(&catalog, &s3);
    common::create_stream_with(&a, "porch", 24).await;

    // B is asked first, so B owns the stream; A and C hand out B's URL.
    let via_b = common::media_client(&b);
    let owner = via_b.data_endpoint("porch", "PUT_MEDIA").await.unwrap();
    assert_eq!(owner.endpoint(), b.url);
    for node in [&a, &c] {
        let told = common::media_client(node)
            .data_endpoint("porch", "GET_MEDIA")
            .await
            .unwrap();
        assert_eq!(told.endpoint(), b.url);
    }
    let (before, failures, url) = produce_like_an_sdk(
        &via_b,
        "porch",
        &common::fixture(3),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        (before.len(), failures, url.as_str()),
        (3, 0, b.url.as_str())
    );

    // PutMedia straight to C, which does not own the stream: 503, retryable.
    let (_tx, rx) = tokio::sync::mpsc::channel(1);
    match common::media_client(&c)
        .put_media_raw("porch", "ABSOLUTE", rx)
        .await
    {
        Err(oxbow_client::ClientError::Api { status, .. }) => assert_eq!(status, 503),
        other => panic!("expected a 503 from a node not owning the stream: {other:?}"),
    }

    // A producer like `oxbow put` streams in real time across the kill: after its connection
    // breaks it asks the control plane (A) for the endpoint again, as the producer SDK does.
    let following = {
        let control = common::media_client(&a);
        let data = control.data_endpoint("porch", "PUT_MEDIA").await.unwrap();
        let mut options = oxbow_client::PutOptions::new("porch");
        options.realtime = true;
        let producer = oxbow_client::Producer::following(control, data, options);
        tokio::spawn(async move {
            let file = tokio::fs::File::open(common::fixture(6)).await.unwrap();
            let mut acks = Vec::new();
            let summary = producer.run(file, |a| acks.push(a.clone())).await;
            (summary, acks)
        })
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // The owner dies. GetDataEndpoint names it until its lease runs out, then a live node.
    let killed = Instant::now();
    let dead = b.url.clone();
    drop(b);
    let via_a = common::media_client(&a);
    loop {
        let told = via_a
            .data_endpoint("porch", "PUT_MEDIA")
            .await
            .unwrap()
            .endpoint();
        if told != dead {
            assert!(told == a.url || told == c.url, "{told}");
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the dead node kept the stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = killed.elapsed();
    eprintln!("the stream took PutMedia again {took:?} after its owner died");
    // A producer that asks for the endpoint again continues there.
    let (after, _, url) = produce_like_an_sdk(
        &via_a,
        "porch",
        &common::fixture(2),
        Duration::from_secs(20),
    )
    .await;
    assert!(url == a.url || url == c.url, "{url}");
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().all(|n| before.iter().all(|old| n > old)),
        "{after:?} after {before:?}"
    );

    // Every acknowledged fragment, from every surviving node, byte for byte.
    let (summary, acks) = following.await.unwrap();
    let summary = summary.expect("the following producer finished");
    let moved = persisted(&acks);
    assert_eq!(
        (moved.len(), summary.unacknowledged),
        (6, 0),
        "every fragment PERSISTED once, across the move: {acks:?}"
    );
    assert!(summary.reconnects >= 1, "{summary:?}");
    let mut all = before.clone();
    all.extend(after.clone());
    all.extend(moved.clone());
    let mut served = Vec::new();
    for node in [&a, &c] {
        assert_eq!(
            listed_numbers(node, "porch").await,
            sorted(&all),
            "ListFragments on {}",
            node.url
        );
        served.push(common::media_for_fragments(node, "porch", all.clone()).await);
    }
    assert_eq!(served[0], served[1]);
    assert!(!served[0].is_empty());
}

/// The WSS (here ws://) endpoint node `via` hands out for a channel, in `role`.
async fn signaling_endpoint(via: &TestServer, arn: &str, role: &str) -> String {
    common::wss_endpoint(&via.client(), arn, role).await
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a signaling connection to `endpoint` (`ws://host:port`) as the JS SDK does.
async fn open_signaling(endpoint: &str, arn: &str, client_id: Option<&str>) -> Result<Ws, u16> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let host = endpoint.trim_start_matches("ws://");
    let mut q = format!("/?X-Amz-ChannelARN={}", common::urlencode(arn));
    if let Some(id) = client_id {
        q.push_str(&format!("&X-Amz-ClientId={id}"));
    }
    let s = common::Signing {
        presigned: true,
        host: Some(host),
        ..common::Signing::default()
    };
    let path = common::sign("GET", host, &q, &[], b"", &s).0;
    let req = format!("ws://{host}{path}").into_client_request().unwrap();
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

async fn next_json(ws: &mut Ws) -> serde_json::Value {
    use futures_util::StreamExt;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(t) = frame {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Signaling in a cluster: one node relays a channel. A master that asked node A and a viewer
/// that asked node B are sent to the same node and meet; a connection straight to a node that
/// does not relay the channel is refused (503, retryable); the channel stays with its node
/// while connections are open, past its lease's length.
#[tokio::test]
async fn master_and_viewer_that_asked_different_nodes_meet() {
    use futures_util::SinkExt;
    let pg = pg::PgServer::start();
    let catalog = pg.database("oxbow");
    let args = ["--catalog", catalog.as_str(), "--lease-ttl-ms", "1000"];
    let a = TestServer::start_in(&common::temp_dir("sig-a"), &args, true);
    let b = TestServer::start_in(&common::temp_dir("sig-b"), &args, true);
    let c = TestServer::start_in(&common::temp_dir("sig-c"), &args, true);
    let arn = a
        .client()
        .create_signaling_channel()
        .channel_name("door")
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap();

    let for_master = signaling_endpoint(&a, &arn, "MASTER").await;
    let for_viewer = signaling_endpoint(&b, &arn, "VIEWER").await;
    assert_eq!(for_master, format!("ws://{}", a.addr()));
    assert_eq!(
        for_viewer, for_master,
        "both are sent to the node relaying the channel"
    );
    let mut master = open_signaling(&for_master, &arn, None).await.unwrap();
    let mut viewer = open_signaling(&for_viewer, &arn, Some("v1")).await.unwrap();
    viewer
        .send(tokio_tungstenite::tungstenite::Message::text(
            json!({"action": "SDP_OFFER", "messagePayload": "b2ZmZXI="}).to_string(),
        ))
        .await
        .unwrap();
    let offer = next_json(&mut master).await;
    assert_eq!(
        (
            offer["messageType"].as_str(),
            offer["senderClientId"].as_str()
        ),
        (Some("SDP_OFFER"), Some("v1"))
    );
    master
        .send(tokio_tungstenite::tungstenite::Message::text(
            json!({"action": "SDP_ANSWER", "recipientClientId": "v1", "messagePayload": "YW5zd2Vy"})
                .to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(next_json(&mut viewer).await["messagePayload"], "YW5zd2Vy");

    // Straight to C, which does not relay the channel: refused, retryable.
    assert_eq!(
        open_signaling(&format!("ws://{}", c.addr()), &arn, Some("v2"))
            .await
            .err(),
        Some(503)
    );
    // Three lease lengths later, with the connections open, A still relays the channel.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(signaling_endpoint(&c, &arn, "VIEWER").await, for_master);
}

/// The IoT device CA is the cluster's: a certificate made through node A's IoT API gets
/// temporary credentials from node B's IoT credentials provider, and they work on node A.
#[tokio::test]
async fn a_device_certificate_made_on_one_node_gets_credentials_from_another() {
    let pg = pg::PgServer::start();
    let catalog = pg.database("oxbow");
    let node_with_iot = |tag: &str| {
        let port = common::free_port().to_string();
        let listen = format!("127.0.0.1:{port}");
        TestServer::start_in(
            &common::temp_dir(tag),
            &[
                "--catalog",
                catalog.as_str(),
                "--iot-listen",
                listen.as_str(),
            ],
            true,
        )
    };
    let a = node_with_iot("iot-a");
    let b = node_with_iot("iot-b");
    assert_ne!(a.data_dir, b.data_dir);
    let same_ca = |s: &TestServer| std::fs::read(s.data_dir.join("iot/ca.pem")).unwrap();
    assert_eq!(same_ca(&a), same_ca(&b), "one device CA for the cluster");

    // Seed 003's set-up, made on A.
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "credentials.iot.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    admin(
        &a,
        "CreateRole",
        json!({"RoleName": "cam", "AssumeRolePolicyDocument": trust.to_string()}),
    )
    .await;
    let describe = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "kinesisvideo:DescribeStream",
        "Resource": "arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*"}]});
    attach_new_policy(&a, "cam", &describe, "RoleName", "cam").await;
    admin(
        &a,
        "CreateRoleAlias",
        json!({"RoleAlias": "CamAlias", "RoleName": "cam"}),
    )
    .await;
    let assume = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "iot:AssumeRoleWithCertificate",
        "Resource": "arn:aws:iot:us-east-1:123456789012:rolealias/CamAlias"}]});
    admin(
        &a,
        "CreateIotPolicy",
        json!({"PolicyName": "CamIot", "PolicyDocument": assume.to_string()}),
    )
    .await;
    let dir = common::temp_dir("iot-device");
    common::iot_device(&a, &dir, "gate", "CamIot").await;
    common::create_stream_with(&a, "gate", 1).await;

    // The device asks B's credentials provider.
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--fail"])
        .args(["-H", "x-amzn-iot-thingname:gate"])
        .arg("--cert")
        .arg(dir.join("certificate.pem"))
        .arg("--key")
        .arg(dir.join("private.pem.key"))
        .arg("--cacert")
        .arg(b.banner_value("devices verify it with"))
        .arg(format!(
            "{}/role-aliases/CamAlias/credentials",
            b.banner_value("IoT credentials provider (mutual TLS):")
        ))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &token["credentials"];
    let on_a = client(
        &a,
        c["accessKeyId"].as_str().unwrap(),
        c["secretAccessKey"].as_str().unwrap(),
        c["sessionToken"].as_str().map(str::to_string),
    );
    let info = on_a
        .describe_stream()
        .stream_name("gate")
        .send()
        .await
        .unwrap()
        .stream_info
        .unwrap();
    assert_eq!(info.stream_name.as_deref(), Some("gate"));
}

/// A node reaches a PostgreSQL that takes TCP only over TLS with `?sslmode=require` and the
/// CA that signed the server's certificate (`--catalog-ca`), and works; without the CA it
/// refuses to start and says why.
#[tokio::test]
async fn a_node_reaches_its_catalog_over_verified_tls() {
    let (ca, cert, key) = pg::tls_identity("Catalog CA");
    let pg = pg::PgServer::start_tls(&cert, &key);
    let url = format!("{}?sslmode=require", pg.database("oxbow"));
    let dir = common::temp_dir("tls-catalog");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_oxbow"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-turn",
            "--catalog",
            &url,
        ])
        .arg("--data-dir")
        .arg(dir.join("untrusting"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("UnknownIssuer"), "{said}");

    let node = TestServer::start_in(
        &dir.join("trusting"),
        &["--catalog", &url, "--catalog-ca", ca_file.to_str().unwrap()],
        true,
    );
    assert!(node.banner.contains("?sslmode=require"), "{}", node.banner);
    common::create_stream_with(&node, "over-tls", 1).await;
    // A second node over TLS sees the same stream.
    let other = TestServer::start_in(
        &dir.join("trusting-too"),
        &["--catalog", &url, "--catalog-ca", ca_file.to_str().unwrap()],
        true,
    );
    assert_eq!(
        common::stream_arn(&other.client(), "over-tls").await,
        common::stream_arn(&node.client(), "over-tls").await
    );
}

/// A catalog URL written as libpq takes it connects a node to a PostgreSQL that wants a client
/// certificate signed by its CA and whose own certificate names another host than the URL's:
/// `sslmode=verify-ca` with `sslrootcert`, `sslcert` and `sslkey` works; `verify-full` refuses
/// the name, `verify-ca` a root that did not sign the server's certificate, and without
/// `sslcert`/`sslkey` the server refuses the node. A refused node stops
/// at start and says why.
#[tokio::test]
async fn a_node_reaches_a_catalog_that_wants_client_certificates_as_psql_would() {
    let server_ca = pg::TestCa::new("Catalog CA");
    let (cert, key) = server_ca.issue(&["db.internal"]);
    let client_ca = pg::TestCa::new("Node CA");
    let pg = pg::PgServer::start_mutual_tls(&cert, &key, &client_ca.cert.pem());
    let dir = common::temp_dir("mtls-catalog");
    let file = |name: &str, contents: &str| {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_string()
    };
    let root = file("ca.pem", &server_ca.cert.pem());
    let (node_cert, node_key) = client_ca.issue(&["oxbow-node"]);
    let (node_cert, node_key) = (file("node.pem", &node_cert), file("node.key", &node_key));
    let database = pg.database("oxbow");
    let identity = format!("&sslrootcert={root}&sslcert={node_cert}&sslkey={node_key}");
    let refusal = |url: String, data: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_oxbow"))
            .args(["serve", "--listen", "127.0.0.1:0", "--no-turn"])
            .args(["--catalog", &url])
            .arg("--data-dir")
            .arg(dir.join(data))
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url} was taken");
        String::from_utf8_lossy(&out.stderr).to_string()
    };

    let said = refusal(format!("{database}?sslmode=verify-full{identity}"), "full");
    assert!(
        said.contains("certificate not valid for name \"127.0.0.1\""),
        "{said}"
    );
    let said = refusal(
        format!("{database}?sslmode=verify-ca&sslrootcert={root}"),
        "no-certificate",
    );
    assert!(
        said.contains("connection requires a valid client certificate"),
        "{said}"
    );

    // verify-ca still checks the chain.
    let stranger = file("stranger.pem", &pg::TestCa::new("Another CA").cert.pem());
    let said = refusal(
        format!("{database}?sslmode=verify-ca&sslrootcert={stranger}&sslcert={node_cert}&sslkey={node_key}"),
        "stranger",
    );
    assert!(said.contains("UnknownIssuer"), "{said}");

    let url = format!("{database}?sslmode=verify-ca{identity}");
    let node = TestServer::start_in(&dir.join("node"), &["--catalog", &url], true);
    common::create_stream_with(&node, "mutual", 1).await;
    let other = TestServer::start_in(&dir.join("other"), &["--catalog", &url], true);
    assert_eq!(
        common::stream_arn(&other.client(), "mutual").await,
        common::stream_arn(&node.client(), "mutual").await
    );
}

/// A session key rotated at one node reaches every node: new sessions sealed at A after B
/// rotated carry B's new key and open at B; sessions of the replaced key still open at both;
/// a second rotation (at A) ends them at B within a second.
#[tokio::test]
async fn a_session_key_rotated_at_one_node_seals_and_opens_at_every_node() {
    let pg = pg::PgServer::start();
    let url = pg.database("oxbow");
    let (a, b) = (node(&url), node(&url));
    let (id, secret) = ops_user(&a).await;
    let role = admin(&a, "CreateRole", json!({"RoleName": "lister"})).await;
    let role = role["Role"]["Arn"].as_str().unwrap().to_string();
    let list = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "kinesisvideo:ListStreams", "Resource": "*"}]});
    attach_new_policy(&a, "lister", &list, "RoleName", "lister").await;
    let at = |server: &TestServer, s: &(String, String, String)| {
        client(server, &s.0, &s.1, Some(s.2.clone()))
    };
    let key_id = |s: &(String, String, String)| s.2.split('.').nth(1).unwrap().to_string();

    let first = aws_sdk_sts_like(&a, &id, &secret, &role);
    let rotated = admin(&b, "RotateSessionKey", json!({})).await;
    assert_eq!(rotated["PreviousKeyId"], json!(key_id(&first)), "{rotated}");
    let new_key = rotated["KeyId"].as_str().unwrap().to_string();
    // A seals with B's new key once the catalog's announcement reached it.
    let deadline = Instant::now() + Duration::from_secs(1);
    let second = loop {
        let s = aws_sdk_sts_like(&a, &id, &secret, &role);
        if key_id(&s) == new_key {
            break s;
        }
        assert!(Instant::now() < deadline, "A still seals with the old key");
        // (AssumeRole takes 20 calls a second per caller)
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for server in [&a, &b] {
        at(server, &first).list_streams().send().await.unwrap();
        at(server, &second).list_streams().send().await.unwrap();
    }

    admin(&a, "RotateSessionKey", json!({})).await;
    until_refused("a session of the oldest key", || async {
        at(&b, &first).list_streams().send().await.is_err()
    })
    .await;
    at(&a, &first).list_streams().send().await.unwrap_err();
    for server in [&a, &b] {
        at(server, &second).list_streams().send().await.unwrap();
    }
}
