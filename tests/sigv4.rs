//! Raw, officially signed HTTP (signed by the `aws-sigv4` crate): input the SDK would refuse
//! client-side, malformed bodies, and every class of signature failure, with the exact AWS
//! error type and status.

mod common;

use std::time::{Duration, SystemTime};

use common::{post, post_ok, send_raw, sign, signed_head, Signing, TestServer};

#[test]
fn validation_errors_are_invalid_argument() {
    let server = TestServer::start();
    for (path, body, needle) in [
        ("/createStream", r#"{}"#, "Value null at 'streamName'"),
        (
            "/createStream",
            r#"{"StreamName":""}"#,
            "length greater than or equal to 1",
        ),
        (
            "/createStream",
            r#"{"StreamName":"has space"}"#,
            "regular expression pattern",
        ),
        (
            "/createStream",
            &format!(r#"{{"StreamName":"{}"}}"#, "a".repeat(257)),
            "less than or equal to 256",
        ),
        (
            "/createStream",
            r#"{"StreamName":"ok","DataRetentionInHours":-1}"#,
            "greater than or equal to 0",
        ),
        (
            "/createStream",
            r#"{"StreamName":"ok","DataRetentionInHours":87601}"#,
            "less than or equal to 87600",
        ),
        (
            "/createStream",
            r#"{"StreamName":"ok","MediaType":"h264"}"#,
            "'mediaType'",
        ),
        ("/listStreams", r#"{"MaxResults":0}"#, "'maxResults'"),
        ("/listStreams", r#"{"MaxResults":10001}"#, "'maxResults'"),
        (
            "/listStreams",
            r#"{"StreamNameCondition":{"ComparisonOperator":"ENDS_WITH","ComparisonValue":"x"}}"#,
            "enum value set",
        ),
        ("/describeStream", r#"{}"#, "Either StreamName or StreamARN"),
        (
            "/describeStream",
            r#"{"StreamARN":"arn:nope"}"#,
            "'streamARN'",
        ),
        (
            "/createSignalingChannel",
            r#"{"ChannelName":"c","SingleMasterConfiguration":{"MessageTtlSeconds":4}}"#,
            "messageTtlSeconds",
        ),
        (
            "/getSignalingChannelEndpoint",
            r#"{}"#,
            "Value null at 'channelARN'",
        ),
        (
            "/updateDataRetention",
            r#"{"StreamName":"s","CurrentVersion":"v","Operation":"INCREASE_DATA_RETENTION","DataRetentionChangeInHours":0}"#,
            "dataRetentionChangeInHours",
        ),
        (
            "/TagResource",
            r#"{"ResourceARN":"arn:aws:kinesisvideo:us-east-1:123456789012:channel/c/1","Tags":[]}"#,
            "'tags'",
        ),
        (
            "/untagStream",
            r#"{"StreamName":"s","TagKeyList":[]}"#,
            "'tagKeyList'",
        ),
        (
            "/listEdgeAgentConfigurations",
            r#"{"HubDeviceArn":"arn:aws:iot:us-east-1:1:thing/h","MaxResults":11}"#,
            "'maxResults'",
        ),
        (
            "/describeMappedResourceConfiguration",
            r#"{"StreamName":"s","MaxResults":2}"#,
            "'maxResults'",
        ),
    ] {
        let r = post_ok(&server, path, body);
        assert_eq!(r.status, 400, "{path} {body}: {}", r.body);
        assert_eq!(r.error_type(), "InvalidArgumentException", "{path} {body}");
        assert_eq!(r.json()["__type"], "InvalidArgumentException");
        let message = r.json()["Message"].as_str().unwrap_or_default().to_string();
        assert!(message.contains(needle), "{path} {body}: {message}");
        assert!(r
            .header("x-amzn-RequestId")
            .is_some_and(|id| id.len() == 36));
    }
}

#[test]
fn malformed_bodies_are_serialization_errors() {
    let server = TestServer::start();
    for body in [
        "{",
        "not json",
        "[]",
        r#"{"StreamName": 5}"#,
        r#"{"StreamName":"a","DataRetentionInHours":"24"}"#,
        r#"{"StreamName":"a","Tags":["x"]}"#,
    ] {
        let r = post_ok(&server, "/createStream", body);
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.error_type(), "SerializationException", "{body}");
    }
    // An empty body is an empty input, as AWS treats it.
    let r = post_ok(&server, "/listStreams", "");
    assert_eq!(r.status, 200, "{}", r.body);
    // Unknown members are ignored.
    let r = post_ok(&server, "/listStreams", r#"{"SomethingNew":true}"#);
    assert_eq!(r.status, 200);
    // ... but checked like the rest: every API refuses the same malformed bodies, list
    // operations (all of whose members are optional) included.
    let deep = format!(r#"{{"X":{}{}}}"#, "[".repeat(20_000), "]".repeat(20_000));
    let bodies: [&[u8]; 4] = [
        b"{\"X\":\"\xff\xfe\"}",
        br#"{"MaxResults":1,"MaxResults":2}"#,
        br#"{"X":{"a":1,"a":2}}"#,
        deep.as_bytes(),
    ];
    for path in ["/listStreams", "/listSignalingChannels", "/describeStream"] {
        for body in bodies {
            let r = common::request(
                &server,
                "POST",
                path,
                Some("application/json"),
                body,
                &Signing::default(),
            );
            assert_eq!(
                (r.status, r.error_type()),
                (400, "SerializationException"),
                "{path} {}",
                String::from_utf8_lossy(&body[..body.len().min(40)])
            );
        }
    }
}

#[test]
fn unknown_paths_and_case_sensitivity() {
    let server = TestServer::start();
    let r = post_ok(&server, "/tagResource", r#"{}"#);
    assert_eq!(r.status, 404);
    assert_eq!(r.error_type(), "UnknownOperationException");
    let r = post_ok(&server, "/nothing", "{}");
    assert_eq!(r.status, 404);
    let r = post_ok(
        &server,
        "/TagResource",
        r#"{"ResourceARN":"arn:aws:kinesisvideo:us-east-1:123456789012:channel/none/1","Tags":[{"Key":"a","Value":"b"}]}"#,
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.error_type(), "ResourceNotFoundException");
}

#[test]
fn oversized_body_is_refused() {
    let server = TestServer::start();
    let body = format!(r#"{{"StreamName":"{}"}}"#, "a".repeat(2 << 20));
    let r = post_ok(&server, "/createStream", &body);
    assert_eq!(r.status, 413);
    assert_eq!(r.error_type(), "RequestEntityTooLargeException");
}

#[test]
fn signature_failures() {
    let server = TestServer::start();
    let body = "{}";
    let wrong_secret = Signing {
        secret: "wrong",
        ..Default::default()
    };
    let r = post(&server, "/listStreams", body, &wrong_secret);
    assert_eq!(
        (r.status, r.error_type()),
        (403, "InvalidSignatureException")
    );

    let unknown = Signing {
        key: "AKIAUNKNOWNUNKNOWN00",
        ..Default::default()
    };
    let r = post(&server, "/listStreams", body, &unknown);
    assert_eq!(
        (r.status, r.error_type()),
        (403, "UnrecognizedClientException")
    );

    let stale = Signing {
        time: SystemTime::now() - Duration::from_secs(20 * 60),
        ..Default::default()
    };
    let r = post(&server, "/listStreams", body, &stale);
    assert_eq!(
        (r.status, r.error_type()),
        (403, "InvalidSignatureException")
    );
    assert!(r.json()["Message"]
        .as_str()
        .unwrap()
        .starts_with("Signature expired"));

    let future = Signing {
        time: SystemTime::now() + Duration::from_secs(20 * 60),
        ..Default::default()
    };
    let r = post(&server, "/listStreams", body, &future);
    assert_eq!(
        (r.status, r.error_type()),
        (403, "InvalidSignatureException")
    );

    let skewed_ok = Signing {
        time: SystemTime::now() - Duration::from_secs(10 * 60),
        ..Default::default()
    };
    assert_eq!(post(&server, "/listStreams", body, &skewed_ok).status, 200);

    let other_region = Signing {
        region: "eu-west-1",
        ..Default::default()
    };
    let r = post(&server, "/listStreams", body, &other_region);
    assert_eq!(
        (r.status, r.error_type()),
        (403, "InvalidSignatureException")
    );

    let addr = server.addr();
    let r = send_raw(
        &addr,
        &format!("POST /listStreams HTTP/1.1\nhost: {addr}\ncontent-length: 2\nconnection: close"),
        b"{}",
    );
    assert_eq!(
        (r.status, r.error_type()),
        (403, "MissingAuthenticationTokenException")
    );

    let r = send_raw(
        &addr,
        &format!("POST /listStreams HTTP/1.1\nhost: {addr}\nauthorization: AWS4-HMAC-SHA256 Credential=x\nx-amz-date: 20260101T000000Z\ncontent-length: 2\nconnection: close"),
        b"{}",
    );
    assert_eq!(
        (r.status, r.error_type()),
        (403, "IncompleteSignatureException")
    );
}

#[test]
fn tampered_body_fails_the_signature() {
    let server = TestServer::start();
    let addr = server.addr();
    let signed_body = br#"{"StreamName":"a"}"#;
    let extra = [("content-type", "application/json")];
    let sent = br#"{"StreamName":"b"}"#;
    let head = signed_head(
        "POST",
        &addr,
        "/createStream",
        &extra,
        signed_body,
        &Signing::default(),
        &format!("connection: close\ncontent-length: {}", sent.len()),
    );
    let r = send_raw(&addr, &head, sent);
    assert_eq!(
        (r.status, r.error_type()),
        (403, "InvalidSignatureException")
    );
}

#[test]
fn presigned_query_form() {
    let server = TestServer::start();
    let addr = server.addr();
    let presign = Signing {
        presigned: true,
        ..Default::default()
    };
    let (target, headers) = sign("POST", &addr, "/listStreams", &[], b"", &presign);
    assert!(target.contains("X-Amz-Signature="));
    let host = headers.iter().find(|(k, _)| k == "host").unwrap().1.clone();
    let r = send_raw(
        &addr,
        &format!("POST {target} HTTP/1.1\nhost: {host}\ncontent-length: 0\nconnection: close"),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let tampered = target.replace("X-Amz-Expires=300", "X-Amz-Expires=301");
    let r = send_raw(
        &addr,
        &format!("POST {tampered} HTTP/1.1\nhost: {host}\ncontent-length: 0\nconnection: close"),
        b"",
    );
    assert_eq!(
        (r.status, r.error_type()),
        (403, "InvalidSignatureException")
    );
}

/// The KVS C SDKs sign a Host without the port while connecting to one; the signature is
/// checked against the Host header exactly as received. Their bodies are tab-indented JSON
/// and their SignedHeaders are `host;user-agent;x-amz-date`.
#[test]
fn producer_sdk_style_host_without_port() {
    let server = TestServer::start();
    let addr = server.addr();
    let body = "{\n\t\"StreamName\":\t\"from-c-sdk\",\n\t\"DataRetentionInHours\":\t2\n}";
    let host_only = Signing {
        host: Some("127.0.0.1"),
        ..Default::default()
    };
    let extra = [("user-agent", "AWS-SDK-KVS/1.6.0 GCC/12.2.0 Linux/6.1")];
    let head = signed_head(
        "POST",
        &addr,
        "/createStream",
        &extra,
        body.as_bytes(),
        &host_only,
        &format!("content-length: {}\nconnection: close", body.len()),
    );
    let r = send_raw(&addr, &head, body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["StreamARN"]
        .as_str()
        .unwrap()
        .contains("from-c-sdk"));
}

#[test]
fn cors_and_health() {
    let server = TestServer::start();
    let addr = server.addr();
    let r = send_raw(
        &addr,
        &format!("OPTIONS /listStreams HTTP/1.1\nhost: {addr}\norigin: http://localhost:3000\naccess-control-request-method: POST\naccess-control-request-headers: authorization,x-amz-date,content-type\nconnection: close"),
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("authorization,x-amz-date,content-type")
    );
    let r = post_ok(&server, "/listStreams", "{}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("access-control-expose-headers")
        .unwrap()
        .contains("x-amzn-RequestId"));
    let r = send_raw(
        &addr,
        &format!("GET /health HTTP/1.1\nhost: {addr}\nconnection: close"),
        b"",
    );
    assert_eq!(r.status, 200);
}

/// Every operation in botocore's service model (the AWS CLI's and boto3's source of truth)
/// is routed: a signed empty request never gets UnknownOperationException.
#[test]
fn every_botocore_operation_is_routed() {
    let script = r#"
import botocore.session
m = botocore.session.get_session().get_service_model('kinesisvideo')
for name in m.operation_names:
    print(name, m.operation_model(name).http['requestUri'])
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3 with botocore (pip install botocore)");
    assert!(
        out.status.success(),
        "botocore missing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    let ops: Vec<(&str, &str)> = listing.lines().filter_map(|l| l.split_once(' ')).collect();
    assert!(ops.len() >= 32, "{listing}");
    let server = TestServer::start();
    for (name, path) in ops {
        let r = post_ok(&server, path, "{}");
        assert_ne!(
            r.error_type(),
            "UnknownOperationException",
            "{name} {path} is not routed"
        );
        assert!(
            r.status == 200 || r.status == 400 || r.status == 404,
            "{name}: {}",
            r.status
        );
    }
}

/// A captured signed head replayed with another body: the payload hash that enters the
/// canonical request is always the received body's, so a declared `x-amz-content-sha256`
/// (signed or not) naming the original body cannot carry the swap. Duplicated auth headers
/// are refused rather than resolved by taking the first.
#[test]
fn body_swap_and_duplicate_auth_headers_are_refused() {
    use sha2::{Digest, Sha256};
    let server = TestServer::start();
    let addr = server.addr();
    for name in ["victim", "scratch"] {
        let r = post_ok(
            &server,
            "/createStream",
            &format!(r#"{{"StreamName":"{name}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let signed_body = br#"{"StreamName":"scratch"}"#;
    let signed_hash = hex::encode(Sha256::digest(signed_body));
    let evil = br#"{"StreamName":"victim"}"#;
    let head_for = |extra: &[(&str, &str)], sent: &[u8], add: &str| {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(extra);
        signed_head(
            "POST",
            &addr,
            "/describeStream",
            &all,
            signed_body,
            &Signing::default(),
            &format!("connection: close\ncontent-length: {}\n{add}", sent.len()),
        )
    };
    // Unsigned declared hash of the signed body, other body sent.
    let unsigned = format!("x-amz-content-sha256: {signed_hash}\n");
    let r = send_raw(&addr, &head_for(&[], evil, &unsigned), evil);
    assert_eq!(
        (r.status, r.error_type()),
        (403, "InvalidSignatureException"),
        "{}",
        r.body
    );
    // The same header signed: still the wrong body.
    let signed = [("x-amz-content-sha256", signed_hash.as_str())];
    let r = send_raw(&addr, &head_for(&signed, evil, ""), evil);
    assert_eq!(
        (r.status, r.error_type()),
        (403, "InvalidSignatureException")
    );
    // UNSIGNED-PAYLOAD is for PutMedia's streaming body only.
    let r = send_raw(
        &addr,
        &head_for(&[], evil, "x-amz-content-sha256: UNSIGNED-PAYLOAD\n"),
        evil,
    );
    assert_eq!(r.status, 403);
    // The honest request, with and without the (signed) declared hash, still works.
    let r = send_raw(&addr, &head_for(&signed, signed_body, ""), signed_body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["StreamInfo"]["StreamName"], "scratch");
    let r = send_raw(&addr, &head_for(&[], signed_body, &unsigned), signed_body);
    assert_eq!(r.status, 200, "{}", r.body);
    // Duplicated auth headers.
    let head = head_for(&[], signed_body, "");
    for name in ["authorization", "x-amz-date"] {
        let line = head
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap()
            .to_string();
        let doubled = format!("{head}{line}\n");
        let r = send_raw(&addr, &doubled, signed_body);
        assert_eq!(
            (r.status, r.error_type()),
            (403, "IncompleteSignatureException"),
            "{name}"
        );
    }
    let r = send_raw(
        &addr,
        &format!("{head}authorization: AWS4-HMAC-SHA256 Credential=x\n"),
        signed_body,
    );
    assert_eq!(r.status, 403);
    // Both streams are still there.
    let r = post_ok(&server, "/listStreams", "{}");
    assert_eq!(r.json()["StreamInfoList"].as_array().unwrap().len(), 2);
}

/// A body declared over the limit is refused at once; one that does not arrive in time gets
/// 408; either way the connection closes (send_raw reads to the end).
#[test]
fn oversized_and_stalled_bodies_are_cut_off() {
    let server = TestServer::start_with(&["--request-body-timeout-ms", "1000"]);
    let addr = server.addr();
    let head = |len: usize| {
        format!("POST /describeStream HTTP/1.1\nhost: {addr}\ncontent-type: application/json\ncontent-length: {len}")
    };
    // The answer comes at once (the rest of the body is read briefly, then the server
    // closes).
    let started = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    let raw = format!("{}\r\n\r\n{{\"Stream", head(2 << 20).replace('\n', "\r\n"));
    std::io::Write::write_all(&mut s, raw.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut first = [0u8; 12];
    std::io::Read::read_exact(&mut s, &mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 413");
    assert!(started.elapsed() < Duration::from_millis(900));
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut rest).expect("closed by the server");
    assert!(String::from_utf8_lossy(&rest).contains("RequestEntityTooLargeException"));
    assert!(started.elapsed() < Duration::from_secs(5));
    let started = std::time::Instant::now();
    let r = send_raw(&addr, &head(100), br#"{"Stream"#);
    assert_eq!((r.status, r.error_type()), (408, "RequestTimeoutException"));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

/// Requests the HTTP layer must refuse get an AWS-shaped error with a request id, not an
/// empty 400/414/431.
#[test]
fn malformed_http_gets_aws_shaped_errors() {
    let server = TestServer::start();
    let addr = server.addr();
    let long_uri = format!("GET /{} HTTP/1.1\nhost: x", "a".repeat(100_000));
    let big_header = format!("GET / HTTP/1.1\nhost: x\nx-big: {}", "a".repeat(1 << 20));
    for (head, status, error) in [
        ("BLAH\u{1} / HTTP/1.1\nhost: x", 400, "BadRequestException"),
        (long_uri.as_str(), 414, "RequestURITooLongException"),
        (
            big_header.as_str(),
            431,
            "RequestHeaderFieldsTooLargeException",
        ),
        (
            "POST /listStreams HTTP/1.1\nhost: x\ncontent-length: 2\ncontent-length: 5",
            400,
            "BadRequestException",
        ),
    ] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let raw = format!("{}\r\n\r\n{{}}", head.replace('\n', "\r\n"));
        // The server may answer (and close) before a huge head is fully sent.
        let _ = std::io::Write::write_all(&mut s, raw.as_bytes());
        let mut got = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut got);
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{error}: {}",
            &text[..text.len().min(200)]
        );
        assert!(text.contains("x-amzn-RequestId: "), "{text}");
        assert!(text.contains(&format!(r#""__type":"{error}""#)), "{text}");
    }
}
