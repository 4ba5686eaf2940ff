//! KVS WebRTC signaling over WebSocket, end to end: the real server, presigned URLs signed by
//! the official `aws-sigv4` crate the way the SDKs sign them, and a WebSocket client.

mod common;

use std::time::Duration;

use common::{Signing, TestServer};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn create_channel(server: &TestServer, name: &str, ttl: i32) -> String {
    server
        .client()
        .create_signaling_channel()
        .channel_name(name)
        .single_master_configuration(
            aws_sdk_kinesisvideo::types::SingleMasterConfiguration::builder()
                .message_ttl_seconds(ttl)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap()
}

/// The handshake's path and query, presigned for `signed_host` (the JS SDK signs the host
/// with its port, the C SDK without).
fn presigned(server: &TestServer, arn: &str, client_id: Option<&str>, signed_host: &str) -> String {
    let mut q = format!("/?X-Amz-ChannelARN={}", common::urlencode(arn));
    if let Some(id) = client_id {
        q.push_str(&format!("&X-Amz-ClientId={id}"));
    }
    let s = Signing {
        presigned: true,
        host: Some(signed_host),
        ..Signing::default()
    };
    common::sign("GET", &server.addr(), &q, &[], b"", &s).0
}

/// Opens a signaling connection as the JS SDK does (host signed with its port).
async fn connect(server: &TestServer, arn: &str, client_id: Option<&str>) -> Ws {
    try_connect(server, arn, client_id, &server.addr())
        .await
        .unwrap()
}

async fn try_connect(
    server: &TestServer,
    arn: &str,
    client_id: Option<&str>,
    signed_host: &str,
) -> Result<Ws, (u16, String)> {
    let path = presigned(server, arn, client_id, signed_host);
    let req = format!("ws://{}{path}", server.addr())
        .into_client_request()
        .unwrap();
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            let body = r
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).to_string())
                .unwrap_or_default();
            Err((r.status().as_u16(), body))
        }
        Err(e) => panic!("{e}"),
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next text frame as JSON (pongs and pings skipped), or `None` when the connection
/// closes; panics after `secs` seconds of nothing.
async fn next(ws: &mut Ws, secs: u64) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(secs), ws.next())
            .await
            .expect("a frame in time");
        match frame {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Nothing arrives within `ms`.
async fn quiet(ws: &mut Ws, ms: u64) {
    if let Ok(f) = tokio::time::timeout(Duration::from_millis(ms), ws.next()).await {
        panic!("expected nothing, got {f:?}");
    }
}

#[tokio::test]
async fn viewer_and_master_exchange_offer_answer_and_candidates() {
    let server = TestServer::start();
    let arn = create_channel(&server, "door", 60).await;
    let mut master = connect(&server, &arn, None).await;
    // The C SDK signs the host without the port it connects to.
    let mut viewer = try_connect(&server, &arn, Some("viewer-1"), "127.0.0.1")
        .await
        .expect("a host signed without its port");
    // The JS SDK's camelCase, no recipient.
    send(
        &mut viewer,
        json!({"action": "SDP_OFFER", "messagePayload": "eyJ0eXBlIjoib2ZmZXIifQ=="}),
    )
    .await;
    assert_eq!(
        next(&mut master, 5).await.unwrap(),
        json!({"senderClientId": "viewer-1", "messageType": "SDP_OFFER",
               "messagePayload": "eyJ0eXBlIjoib2ZmZXIifQ=="})
    );
    // The C SDK's PascalCase, from the master to the named viewer.
    send(
        &mut master,
        json!({"action": "SDP_ANSWER", "RecipientClientId": "viewer-1",
               "MessagePayload": "YW5zd2Vy", "CorrelationId": "c-1"}),
    )
    .await;
    assert_eq!(
        next(&mut viewer, 5).await.unwrap(),
        json!({"messageType": "SDP_ANSWER", "messagePayload": "YW5zd2Vy"})
    );
    for i in 0..3 {
        send(
            &mut viewer,
            json!({"action": "ICE_CANDIDATE", "messagePayload": format!("Y2FuZA{i}")}),
        )
        .await;
    }
    for i in 0..3 {
        let m = next(&mut master, 5).await.unwrap();
        assert_eq!(m["messagePayload"], format!("Y2FuZA{i}"), "in order");
    }
    // The master without a recipient: a STATUS_RESPONSE for its correlation id only.
    send(
        &mut master,
        json!({"action": "ICE_CANDIDATE", "messagePayload": "eA==", "correlationId": "c-2"}),
    )
    .await;
    let status = next(&mut master, 5).await.unwrap();
    assert_eq!(status["messageType"], "STATUS_RESPONSE");
    assert_eq!(status["statusResponse"]["correlationId"], "c-2");
    assert_eq!(status["statusResponse"]["statusCode"], "400");
    quiet(&mut viewer, 300).await;
}

#[tokio::test]
async fn the_newest_master_wins_and_viewers_are_limited() {
    let server = TestServer::start_with(&["--signaling-max-viewers", "2"]);
    let arn = create_channel(&server, "door", 60).await;
    let mut first = connect(&server, &arn, None).await;
    let mut second = connect(&server, &arn, None).await;
    assert_eq!(
        next(&mut first, 5).await,
        None,
        "the older master is closed"
    );
    let mut v1 = connect(&server, &arn, Some("v1")).await;
    let _v2 = connect(&server, &arn, Some("v2")).await;
    let refused = try_connect(&server, &arn, Some("v3"), &server.addr()).await;
    let (status, body) = refused.expect_err("a third viewer is refused");
    assert_eq!(status, 400);
    assert!(body.contains("ClientLimitExceededException"), "{body}");
    send(
        &mut v1,
        json!({"action": "SDP_OFFER", "messagePayload": "eA=="}),
    )
    .await;
    assert_eq!(next(&mut second, 5).await.unwrap()["senderClientId"], "v1");
}

#[tokio::test]
async fn messages_wait_for_a_late_master_within_the_ttl() {
    let server = TestServer::start();
    let arn = create_channel(&server, "door", 5).await;
    let mut viewer = connect(&server, &arn, Some("early")).await;
    send(
        &mut viewer,
        json!({"action": "SDP_OFFER", "messagePayload": "b2xk"}),
    )
    .await;
    send(
        &mut viewer,
        json!({"action": "SDP_OFFER", "messagePayload": "bmV3"}),
    )
    .await;
    send(
        &mut viewer,
        json!({"action": "ICE_CANDIDATE", "messagePayload": "YzE="}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut master = connect(&server, &arn, None).await;
    let got: Vec<Value> = vec![
        next(&mut master, 5).await.unwrap()["messagePayload"].clone(),
        next(&mut master, 5).await.unwrap()["messagePayload"].clone(),
    ];
    assert_eq!(
        got,
        vec![json!("bmV3"), json!("YzE=")],
        "the newest offer, then candidates"
    );
    drop(master);
    // Past the channel's 5 s TTL nothing waits.
    send(
        &mut viewer,
        json!({"action": "SDP_OFFER", "messagePayload": "bGF0ZQ=="}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(5_300)).await;
    let mut master = connect(&server, &arn, None).await;
    quiet(&mut master, 500).await;
}

#[tokio::test]
async fn bad_frames_never_reach_a_peer_and_oversized_ones_end_only_their_connection() {
    let server = TestServer::start_with(&["--signaling-max-payload", "100"]);
    let arn = create_channel(&server, "door", 60).await;
    let mut master = connect(&server, &arn, None).await;
    let mut viewer = connect(&server, &arn, Some("v")).await;
    viewer.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    viewer.send(Message::text("not json")).await.unwrap();
    send(
        &mut viewer,
        json!({"action": "HELLO", "messagePayload": "eA=="}),
    )
    .await;
    send(
        &mut viewer,
        json!({"action": "SDP_OFFER", "messagePayload": "x".repeat(101), "correlationId": "big"}),
    )
    .await;
    let refused = next(&mut viewer, 5).await.unwrap();
    assert_eq!(refused["statusResponse"]["correlationId"], "big");
    assert_eq!(
        refused["statusResponse"]["errorType"],
        "InvalidArgumentException"
    );
    quiet(&mut master, 300).await;
    send(
        &mut viewer,
        json!({"action": "SDP_OFFER", "messagePayload": "b2s="}),
    )
    .await;
    assert_eq!(
        next(&mut master, 5).await.unwrap()["messagePayload"],
        "b2s="
    );
    // A frame far over any message's size closes that connection, and only it.
    let mut big = connect(&server, &arn, Some("big")).await;
    let _ = big.send(Message::text("y".repeat(200_000))).await;
    assert_eq!(next(&mut big, 5).await, None);
    send(
        &mut viewer,
        json!({"action": "ICE_CANDIDATE", "messagePayload": "c3RpbGw="}),
    )
    .await;
    assert_eq!(
        next(&mut master, 5).await.unwrap()["messagePayload"],
        "c3RpbGw="
    );
}

#[tokio::test]
async fn idle_and_old_connections_are_closed_with_go_away_first() {
    let server = TestServer::start_with(&[
        "--signaling-idle-timeout-ms",
        "1500",
        "--signaling-max-connection-ms",
        "6000",
    ]);
    let arn = create_channel(&server, "door", 60).await;
    let mut idle = connect(&server, &arn, Some("idle")).await;
    let started = std::time::Instant::now();
    assert_eq!(next(&mut idle, 5).await, None);
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(1400),
        "closed after {after:?}"
    );

    let mut busy = connect(&server, &arn, None).await;
    let started = std::time::Instant::now();
    let mut got = None;
    while started.elapsed() < Duration::from_secs(8) {
        // Keep it active: a message to a viewer that is not there.
        send(
            &mut busy,
            json!({"action": "ICE_CANDIDATE", "recipientClientId": "nobody", "messagePayload": "eA=="}),
        )
        .await;
        if let Ok(f) = tokio::time::timeout(Duration::from_millis(500), busy.next()).await {
            got = Some((f, started.elapsed()));
            break;
        }
    }
    let (frame, at) = got.expect("GO_AWAY before the maximum age");
    let Some(Ok(Message::Text(t))) = frame else {
        panic!("{frame:?}")
    };
    assert_eq!(t.as_str(), r#"{"messageType":"GO_AWAY"}"#);
    assert!(
        at >= Duration::from_millis(5800) && at < Duration::from_millis(6000),
        "{at:?}"
    );
    assert_eq!(next(&mut busy, 3).await, None, "closed at the maximum age");
}

#[tokio::test]
async fn server_shutdown_sends_go_away() {
    let server = TestServer::start();
    let arn = create_channel(&server, "door", 60).await;
    let mut master = connect(&server, &arn, None).await;
    let stopping = tokio::task::spawn_blocking(move || server.stop());
    assert_eq!(
        next(&mut master, 10).await.unwrap(),
        json!({"messageType": "GO_AWAY"})
    );
    assert_eq!(next(&mut master, 10).await, None);
    assert!(stopping.await.unwrap().success());
}

fn signaling_sdk(server: &TestServer) -> aws_sdk_kinesisvideosignaling::Client {
    common::signaling_client_for(&server.url)
}

#[tokio::test]
async fn ice_server_config_hands_out_turn_rest_credentials() {
    use base64::Engine;
    use hmac::Mac;
    let uris = [
        "turn:127.0.0.1:3478?transport=udp",
        "turn:127.0.0.1:3478?transport=tcp",
    ];
    let server = TestServer::start_with(&[
        "--turn-uri",
        uris[0],
        "--turn-uri",
        uris[1],
        "--turn-secret",
        "s3cret",
    ]);
    let arn = create_channel(&server, "door", 60).await;
    let sdk = signaling_sdk(&server);
    let now = common::now_ms() / 1000;
    let out = sdk
        .get_ice_server_config()
        .channel_arn(&arn)
        .client_id("viewer-1")
        .service(aws_sdk_kinesisvideosignaling::types::Service::Turn)
        .send()
        .await
        .unwrap();
    let list = out.ice_server_list();
    assert_eq!(list.len(), 1);
    let ice = &list[0];
    assert_eq!(ice.uris(), uris);
    assert_eq!(ice.ttl(), Some(300));
    let username = ice.username().unwrap();
    let (expiry, opaque) = username.split_once(':').unwrap();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        (now + 299..=now + 302).contains(&expiry),
        "{expiry} vs {now}"
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        b64.decode(opaque).unwrap(),
        format!("v1:{arn}").into_bytes()
    );
    // The password is what a TURN server with the same secret computes (coturn's
    // use-auth-secret): base64(HMAC-SHA1(secret, username)).
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(b"s3cret").unwrap();
    mac.update(username.as_bytes());
    assert_eq!(
        ice.password(),
        Some(b64.encode(mac.finalize().into_bytes()).as_str())
    );

    // A channel that does not exist; then the per-channel rate (5 a second).
    let missing = arn.replace("/door/", "/nope/");
    let e = sdk
        .get_ice_server_config()
        .channel_arn(&missing)
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    let mut limited = 0;
    for _ in 0..8 {
        if let Err(e) = sdk.get_ice_server_config().channel_arn(&arn).send().await {
            assert!(e.into_service_error().is_client_limit_exceeded_exception());
            limited += 1;
        }
    }
    assert!(limited >= 3, "{limited} of 8 refused");

    // Without any TURN server the list is empty (peers use STUN alone).
    let plain = TestServer::start_with(&["--no-turn"]);
    let arn = create_channel(&plain, "door", 60).await;
    let out = signaling_sdk(&plain)
        .get_ice_server_config()
        .channel_arn(&arn)
        .send()
        .await
        .unwrap();
    assert!(out.ice_server_list().is_empty());
}

/// The turn address from the readiness banner (`STUN/TURN (UDP): ip:port`).
fn turn_addr(server: &TestServer) -> String {
    server.banner_value("STUN/TURN (UDP): ")
}

/// Runs coturn's `turnutils_uclient` (an independent TURN client) against Oxbow's embedded
/// server in client-to-client mode: two allocations, permissions, channel binds, and data
/// relayed both ways.
fn uclient(turn: &str, user: &str, password: &str, via: Via) -> std::process::Output {
    uclient_with(turn, user, password, via, &["-n", "20", "-l", "200"])
}

/// How a TURN client reaches the server.
#[derive(Debug, Clone, Copy)]
enum Via {
    Udp,
    Tcp,
    Tls,
}

fn uclient_with(
    turn: &str,
    user: &str,
    password: &str,
    via: Via,
    load: &[&str],
) -> std::process::Output {
    let (host, port) = turn.rsplit_once(':').unwrap();
    let mut cmd = std::process::Command::new("turnutils_uclient");
    cmd.args(match via {
        Via::Udp => &[][..],
        Via::Tcp => &["-t"],
        // TLS over TCP; the client does not verify the server's certificate.
        Via::Tls => &["-t", "-S"],
    });
    cmd.args(["-y", "-c", "-p", port])
        .args(load)
        .args(["-u", user, "-w", password, host])
        .output()
        .expect("turnutils_uclient (Debian coturn) is installed")
}

#[tokio::test]
async fn the_embedded_turn_server_relays_with_issued_credentials_only() {
    let server = TestServer::start();
    let turn = turn_addr(&server);
    let ice = ice_server_at(&server.url).await;
    assert_eq!(
        ice.uris,
        [
            format!("turn:{turn}?transport=udp"),
            format!("turn:{turn}?transport=tcp")
        ]
    );
    for via in [Via::Udp, Via::Tcp] {
        relays_both_ways(&turn, &ice.user, &ice.password, via);
    }
    // A password Oxbow did not issue is refused.
    let wrong = uclient(&turn, &ice.user, "not-the-password", Via::Udp);
    let text = String::from_utf8_lossy(&wrong.stdout).to_string()
        + &String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success(), "{text}");
    assert!(text.contains("Cannot complete Allocation"), "{text}");
}

#[tokio::test]
async fn turn_over_tls_is_offered_and_relays_when_oxbow_serves_tls() {
    let server = TestServer::start_with(&["--tls-self-signed", "--http-listen", "127.0.0.1:0"]);
    let (turn, tls) = (turn_addr(&server), server.banner_value("TURN over TLS: "));
    let ice = ice_server_at(&server.banner_value("plain HTTP also on ")).await;
    assert_eq!(
        ice.uris,
        [
            format!("turn:{turn}?transport=udp"),
            format!("turn:{turn}?transport=tcp"),
            format!("turns:{tls}?transport=tcp"),
        ]
    );
    relays_both_ways(&tls, &ice.user, &ice.password, Via::Tls);
    // Plain TCP on the TLS port is not TURN.
    assert!(!uclient(&tls, &ice.user, &ice.password, Via::Tcp)
        .status
        .success());
}

/// Two clients (over UDP, TCP or TLS to the server) relay 20 messages each through their relays.
fn relays_both_ways(turn: &str, user: &str, password: &str, via: Via) {
    let run = uclient(turn, user, password, via);
    let stdout =
        String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{via:?}: {stdout}");
    let total = |what: &str| -> u64 {
        stdout
            .lines()
            .rev()
            .find_map(|l| l.split_once(what).map(|(_, rest)| rest.trim()))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| {
                v.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no '{what}' in {stdout}"))
    };
    assert_eq!(total("Total lost packets"), 0, "{via:?}: {stdout}");
    // Each of the two clients sent 20 messages through its relay and got 20 back.
    assert_eq!(total("tot_send_msgs="), 40, "{via:?}: {stdout}");
    assert_eq!(total("tot_recv_msgs="), 40, "{via:?}: {stdout}");
}

#[tokio::test]
async fn alexa_offers_reach_the_master_and_return_its_answer() {
    let server = TestServer::start();
    let arn = create_channel(&server, "door", 5).await;
    let sdk = signaling_sdk(&server);
    // The offer is sent before the master connects: it waits for the master.
    let call = {
        let sdk = sdk.clone();
        let arn = arn.clone();
        tokio::spawn(async move {
            sdk.send_alexa_offer_to_master()
                .channel_arn(arn)
                .sender_client_id("alexa-1")
                .message_payload("b2ZmZXI=")
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut master = connect(&server, &arn, None).await;
    let offer = next(&mut master, 5).await.unwrap();
    assert_eq!(
        offer,
        json!({"senderClientId": "alexa-1", "messageType": "SDP_OFFER", "messagePayload": "b2ZmZXI="})
    );
    send(
        &mut master,
        json!({"action": "ICE_CANDIDATE", "recipientClientId": "alexa-1", "messagePayload": "Yw=="}),
    )
    .await;
    send(
        &mut master,
        json!({"action": "SDP_ANSWER", "recipientClientId": "alexa-1", "messagePayload": "YW5zd2Vy"}),
    )
    .await;
    let out = call.await.unwrap().unwrap();
    assert_eq!(out.answer(), Some("YW5zd2Vy"));

    // Nobody answers within the channel's 5 s TTL.
    drop(master);
    let started = std::time::Instant::now();
    let e = sdk
        .send_alexa_offer_to_master()
        .channel_arn(&arn)
        .sender_client_id("alexa-2")
        .message_payload("b2ZmZXI=")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    assert!(started.elapsed() >= Duration::from_millis(4900));
    // Not base64.
    let e = sdk
        .send_alexa_offer_to_master()
        .channel_arn(&arn)
        .sender_client_id("alexa-3")
        .message_payload("not base64!")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_invalid_argument_exception());
}

/// A server's embedded TURN address and one set of credentials GetIceServerConfig issued.
async fn turn_credentials(server: &TestServer) -> (String, String, String) {
    let ice = ice_server_at(&server.url).await;
    (turn_addr(server), ice.user, ice.password)
}

/// The one ICE server GetIceServerConfig hands out for a new channel, asked at `url`.
struct IceServer {
    uris: Vec<String>,
    user: String,
    password: String,
}

async fn ice_server_at(url: &str) -> IceServer {
    let arn = common::client_for(url, common::ACCESS_KEY, common::SECRET_KEY)
        .create_signaling_channel()
        .channel_name("door")
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap();
    let out = common::signaling_client_for(url)
        .get_ice_server_config()
        .channel_arn(&arn)
        .send()
        .await
        .unwrap();
    let ice = &out.ice_server_list()[0];
    IceServer {
        uris: ice.uris().to_vec(),
        user: ice.username().unwrap().to_string(),
        password: ice.password().unwrap().to_string(),
    }
}

#[tokio::test]
async fn turn_allocations_are_held_to_their_bit_rate() {
    // 100 kbit/s = 12.5 KB/s per allocation; the load offers 1000-byte messages every 2 ms
    // (500 KB/s): most of it must be dropped, none of it with the limit lifted.
    for (limit, lossy) in [("100", true), ("0", false)] {
        let server = TestServer::start_with(&["--turn-max-kbps", limit]);
        let (turn, user, password) = turn_credentials(&server).await;
        let run = uclient_with(
            &turn,
            &user,
            &password,
            Via::Udp,
            &["-n", "200", "-l", "1000", "-z", "2"],
        );
        let text = String::from_utf8_lossy(&run.stdout).to_string()
            + &String::from_utf8_lossy(&run.stderr);
        let lost: u64 = text
            .lines()
            .rev()
            .find_map(|l| l.split_once("Total lost packets ").map(|(_, r)| r.trim()))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{text}"));
        if lossy {
            assert!(lost > 200, "limit {limit}: only {lost} of 400 lost: {text}");
        } else {
            assert_eq!(lost, 0, "limit {limit}: {text}");
        }
    }
}

#[tokio::test]
async fn turn_allocations_are_limited_per_channel() {
    // turnutils_uclient -y opens several allocations (three, in coturn 4.6.1) under the same
    // channel's credentials: one allowed is too few, KVS's 50 plenty.
    for (quota, succeeds) in [("1", false), ("50", true)] {
        let server = TestServer::start_with(&["--turn-max-allocations-per-channel", quota]);
        let (turn, user, password) = turn_credentials(&server).await;
        let run = uclient(&turn, &user, &password, Via::Udp);
        let text = String::from_utf8_lossy(&run.stdout).to_string()
            + &String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.success(), succeeds, "quota {quota}: {text}");
        if !succeeds {
            // The second allocation is refused with 508 Insufficient Capacity.
            assert!(text.contains("error 508"), "{text}");
        }
    }
}
