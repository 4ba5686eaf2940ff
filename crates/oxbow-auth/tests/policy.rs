//! The policies of the seed documents as executable cases: IoT devices scoped to their own
//! stream (by thing name or certificate id), WebRTC master rights on one channel, read-only
//! and write-only roles, and deny beating allow.

use oxbow_auth::policy::{evaluate, Decision, Policy, Request, Vars};

const STREAM_A: &str = "arn:aws:kinesisvideo:us-west-2:123456789012:stream/thing-a/1700000000000";
const STREAM_B: &str = "arn:aws:kinesisvideo:us-west-2:123456789012:stream/thing-b/1700000000000";
const CHANNEL: &str =
    "arn:aws:kinesisvideo:us-west-2:123456789012:channel/SignalingChannelName/1234567890123";

fn decide(policies: &[&Policy], action: &str, resource: &str, context: &Vars) -> Decision {
    evaluate(
        policies.iter().copied(),
        &Request {
            action,
            resource,
            context,
        },
    )
}

fn ctx(pairs: &[(&str, &str)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
        .collect()
}

/// Seed 003: the role the IoT credentials provider hands a device.
#[test]
fn iot_thing_may_write_only_its_own_stream() {
    let p = Policy::parse(
        r#"{ "Version": "2012-10-17", "Statement": [ { "Effect": "Allow",
          "Action": [ "kinesisvideo:DescribeStream", "kinesisvideo:PutMedia", "kinesisvideo:TagStream",
                      "kinesisvideo:GetDataEndpoint" ],
          "Resource": "arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*" } ] }"#,
    )
    .unwrap();
    let thing_a = ctx(&[("credentials-iot:ThingName", "thing-a")]);
    assert_eq!(
        decide(&[&p], "kinesisvideo:PutMedia", STREAM_A, &thing_a),
        Decision::Allow
    );
    assert_eq!(
        decide(&[&p], "kinesisvideo:PutMedia", STREAM_B, &thing_a),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&[&p], "kinesisvideo:GetMedia", STREAM_A, &thing_a),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&[&p], "kinesisvideo:PutMedia", STREAM_A, &Vars::new()),
        Decision::ImplicitDeny,
        "no thing, no access"
    );
}

/// Seed 003, certificate-id variant.
#[test]
fn iot_certificate_id_variant() {
    let p = Policy::parse(
        r#"{ "Version": "2012-10-17", "Statement": [ { "Effect": "Allow",
          "Action": [ "kinesisvideo:PutMedia" ],
          "Resource": "arn:aws:kinesisvideo:*:*:stream/${credentials-iot:AwsCertificateId}/*" } ] }"#,
    )
    .unwrap();
    let cert = "4a2b1c";
    let stream = format!("arn:aws:kinesisvideo:us-west-2:123456789012:stream/{cert}/1");
    let c = ctx(&[("credentials-iot:AwsCertificateId", cert)]);
    assert_eq!(
        decide(&[&p], "kinesisvideo:PutMedia", &stream, &c),
        Decision::Allow
    );
    assert_eq!(
        decide(&[&p], "kinesisvideo:PutMedia", STREAM_A, &c),
        Decision::ImplicitDeny
    );
}

/// Seed 004, verbatim (including the leading space inside the channel ARN).
#[test]
fn webrtc_master_on_one_channel() {
    let p = Policy::parse(
        r#"{ "Version": "2012-10-17", "Statement": [
          { "Effect": "Allow", "Action": [ "kinesisvideo:DescribeSignalingChannel",
              "kinesisvideo:DescribeMediaStorageConfiguration", "kinesisvideo:GetSignalingChannelEndpoint",
              "kinesisvideo:GetIceServerConfig", "kinesisvideo:ConnectAsMaster", "kinesisvideo:JoinStorageSession" ],
            "Resource":" arn:aws:kinesisvideo:us-west-2:123456789012:channel/SignalingChannelName/1234567890123" },
          { "Effect": "Allow", "Action": [ "kinesisvideo:GetDataEndpoint", "kinesisvideo:DescribeStream",
              "kinesisvideo:PutMedia" ],
            "Resource": "arn:aws:kinesisvideo:us-west-2:123456789012:stream/VideoStreamName/1234567890123" } ] }"#,
    )
    .unwrap();
    let none = Vars::new();
    assert_eq!(
        decide(&[&p], "kinesisvideo:ConnectAsMaster", CHANNEL, &none),
        Decision::Allow
    );
    assert_eq!(
        decide(&[&p], "kinesisvideo:ConnectAsViewer", CHANNEL, &none),
        Decision::ImplicitDeny
    );
    let other = CHANNEL.replace("SignalingChannelName", "Other");
    assert_eq!(
        decide(&[&p], "kinesisvideo:ConnectAsMaster", &other, &none),
        Decision::ImplicitDeny
    );
}

/// Dev-guide examples: read-only with wildcards, admin, and an explicit deny that wins.
#[test]
fn wildcards_and_explicit_deny() {
    let read = Policy::parse(
        r#"{"Statement": [{"Effect": "Allow",
            "Action": ["kinesisvideo:Describe*", "kinesisvideo:Get*", "kinesisvideo:List*"], "Resource": "*"}]}"#,
    )
    .unwrap();
    let admin = Policy::parse(
        r#"{"Statement": {"Effect": "Allow", "Action": "kinesisvideo:*", "Resource": "*"}}"#,
    )
    .unwrap();
    let deny_put = Policy::parse(
        r#"{"Statement": [{"Principal": "*", "Effect": "Deny", "Action": ["kinesisvideo:PutMedia"], "Resource": "*"}]}"#,
    )
    .unwrap();
    let none = Vars::new();
    assert_eq!(
        decide(&[&read], "kinesisvideo:GetMedia", STREAM_A, &none),
        Decision::Allow
    );
    assert_eq!(
        decide(&[&read], "kinesisvideo:getmedia", STREAM_A, &none),
        Decision::Allow,
        "actions ignore case"
    );
    assert_eq!(
        decide(&[&read], "kinesisvideo:PutMedia", STREAM_A, &none),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&[&admin], "kinesisvideo:PutMedia", STREAM_A, &none),
        Decision::Allow
    );
    assert_eq!(
        decide(
            &[&admin, &deny_put],
            "kinesisvideo:PutMedia",
            STREAM_A,
            &none
        ),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide(
            &[&deny_put, &admin],
            "kinesisvideo:GetMedia",
            STREAM_A,
            &none
        ),
        Decision::Allow
    );
    assert_eq!(
        decide(&[], "kinesisvideo:GetMedia", STREAM_A, &none),
        Decision::ImplicitDeny,
        "default deny"
    );
}

#[test]
fn not_action_not_resource_and_conditions() {
    let p = Policy::parse(
        r#"{"Statement": [
            {"Effect": "Allow", "NotAction": "kinesisvideo:Delete*", "NotResource": "arn:aws:kinesisvideo:*:*:stream/thing-b/*"},
            {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
        ]}"#,
    )
    .unwrap();
    let inside = ctx(&[("aws:SourceIp", "10.2.3.4")]);
    let outside = ctx(&[("aws:SourceIp", "192.0.2.1")]);
    assert_eq!(
        decide(&[&p], "kinesisvideo:PutMedia", STREAM_A, &inside),
        Decision::Allow
    );
    assert_eq!(
        decide(&[&p], "kinesisvideo:DeleteStream", STREAM_A, &inside),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&[&p], "kinesisvideo:PutMedia", STREAM_B, &inside),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&[&p], "kinesisvideo:PutMedia", STREAM_A, &outside),
        Decision::ExplicitDeny
    );
}

#[test]
fn malformed_policies_are_refused() {
    for doc in [
        "not json",
        "[]",
        r#"{"Statement": []}"#.replace("[]", "5").as_str(),
        r#"{"Version": "1999-01-01", "Statement": []}"#,
        r#"{"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}"#,
        r#"{"Statement": [{"Effect": "Allow", "Resource": "*"}]}"#,
        r#"{"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "x", "Resource": "*"}]}"#,
        r#"{"Statement": [{"Effect": "Allow", "Action": [1], "Resource": "*"}]}"#,
        r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"Nope": {"k": "v"}}}]}"#,
    ] {
        assert!(Policy::parse(doc).is_err(), "{doc}");
    }
    assert!(Policy::parse(r#"{"Version": "2012-10-17", "Statement": []}"#).is_ok());
}
