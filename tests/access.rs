//! Access control end to end: identities and policies made through the admin API, enforced on
//! every API for the official Rust SDK, `oxbow-client` PutMedia and raw signed requests; STS
//! AssumeRole; the IoT credentials provider of seed 003 driven by `curl --cert`; camera-owner
//! signaling URLs (seed 001).

mod common;

use std::process::Command;

use aws_sdk_kinesisvideo::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesisvideo::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use common::{admin, attach_new_policy, request, Raw, Signing, TestServer, REGION};
use serde_json::{json, Value};

/// An access key, secret and (temporary credentials) session token.
#[derive(Debug, Clone)]
struct Creds {
    key: String,
    secret: String,
    token: Option<String>,
}

impl Creds {
    fn signing(&self) -> Signing<'_> {
        Signing {
            key: &self.key,
            secret: &self.secret,
            token: self.token.as_deref(),
            ..Signing::default()
        }
    }
}

fn sdk(server: &TestServer, c: &Creds) -> aws_sdk_kinesisvideo::Client {
    let config = aws_sdk_kinesisvideo::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&server.url)
        .credentials_provider(Credentials::new(
            &c.key,
            &c.secret,
            c.token.clone(),
            None,
            "access-tests",
        ))
        .build();
    aws_sdk_kinesisvideo::Client::from_conf(config)
}

/// A user with the given policy documents attached, and an access key.
async fn user(server: &TestServer, name: &str, policies: &[Value]) -> Creds {
    admin(server, "CreateUser", json!({ "UserName": name })).await;
    for (i, doc) in policies.iter().enumerate() {
        attach_new_policy(server, &format!("{name}-{i}"), doc, "UserName", name).await;
    }
    let k = admin(server, "CreateAccessKey", json!({ "UserName": name })).await;
    Creds {
        key: k["AccessKey"]["AccessKeyId"].as_str().unwrap().into(),
        secret: k["AccessKey"]["SecretAccessKey"].as_str().unwrap().into(),
        token: None,
    }
}

/// A role with one policy document attached.
async fn role(server: &TestServer, name: &str, policy: &Value) -> String {
    let r = admin(server, "CreateRole", json!({ "RoleName": name })).await;
    attach_new_policy(server, name, policy, "RoleName", name).await;
    r["Role"]["Arn"].as_str().unwrap().to_string()
}

fn allow(actions: &[&str], resource: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]})
}

/// The error code and HTTP status of a failed SDK call.
fn sdk_error<E>(e: SdkError<E, HttpResponse>) -> (String, u16)
where
    E: ProvideErrorMetadata,
{
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    (e.code().unwrap_or_default().to_string(), status)
}

fn xml_field(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_string())
}

/// STS AssumeRole signed by `caller`: the credentials, or the raw refusal.
fn assume_role(
    server: &TestServer,
    caller: &Creds,
    role_arn: &str,
    extra: &str,
) -> Result<Creds, Raw> {
    let r = assume_role_request(server, caller, role_arn, extra);
    if r.status != 200 {
        return Err(r);
    }
    Ok(sts_creds(&r))
}

fn assume_role_request(server: &TestServer, caller: &Creds, role_arn: &str, extra: &str) -> Raw {
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=tests{extra}",
        common::urlencode(role_arn)
    );
    let s = Signing {
        service: "sts",
        ..caller.signing()
    };
    request(
        server,
        "POST",
        "/",
        Some("application/x-www-form-urlencoded; charset=utf-8"),
        body.as_bytes(),
        &s,
    )
}

fn root() -> Creds {
    Creds {
        key: common::ACCESS_KEY.into(),
        secret: common::SECRET_KEY.into(),
        token: None,
    }
}

async fn create_stream(server: &TestServer, name: &str) -> String {
    common::create_stream_with(server, name, 1).await
}

async fn create_channel(server: &TestServer, name: &str) -> String {
    server
        .client()
        .create_signaling_channel()
        .channel_name(name)
        .send()
        .await
        .unwrap()
        .channel_arn
        .unwrap()
}

/// PutMedia of a short real clip with `creds`: Ok(acks) or the error type.
async fn put_media(server: &TestServer, creds: &Creds, stream: &str) -> Result<usize, String> {
    let client = oxbow_client::Client::new(
        &server.url,
        REGION,
        oxbow_client::Credentials {
            access_key_id: creds.key.clone(),
            secret_access_key: creds.secret.clone(),
            session_token: creds.token.clone(),
        },
    )
    .unwrap();
    let data = std::fs::read(common::fixture(2)).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(bytes::Bytes::from(data)).await.unwrap();
    drop(tx);
    client
        .put_media_raw(stream, "ABSOLUTE", rx)
        .await
        .map(|acks| acks.len())
        .map_err(|e| e.error_type().unwrap_or("other").to_string())
}

#[tokio::test]
async fn explicit_deny_beats_allow_and_errors_follow_the_spec() {
    let server = TestServer::start();
    create_stream(&server, "open").await;
    create_stream(&server, "protected").await;
    create_channel(&server, "chan").await;
    let deny = json!({"Statement": [{"Effect": "Deny", "Action": "kinesisvideo:Delete*",
        "Resource": "arn:aws:kinesisvideo:*:*:stream/protected/*"}]});
    let alice = user(&server, "alice", &[allow(&["kinesisvideo:*"], "*"), deny]).await;
    let kv = sdk(&server, &alice);
    kv.describe_stream()
        .stream_name("protected")
        .send()
        .await
        .unwrap();
    let e = kv
        .delete_stream()
        .stream_arn(common::stream_arn(&kv, "protected").await)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e), ("NotAuthorizedException".into(), 401));
    let arn = common::stream_arn(&kv, "open").await;
    kv.delete_stream().stream_arn(arn).send().await.unwrap();

    // A cached Allow gives way at once to a Deny attached afterwards.
    admin(
        &server,
        "CreatePolicy",
        json!({"PolicyName": "no-describe", "PolicyDocument": json!({"Statement": [{"Effect": "Deny",
            "Action": "kinesisvideo:DescribeStream", "Resource": "*"}]}).to_string()}),
    )
    .await;
    admin(
        &server,
        "AttachPolicy",
        json!({"PolicyName": "no-describe", "UserName": "alice"}),
    )
    .await;
    let e = kv
        .describe_stream()
        .stream_name("protected")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e), ("NotAuthorizedException".into(), 401));
    admin(
        &server,
        "DetachPolicy",
        json!({"PolicyName": "no-describe", "UserName": "alice"}),
    )
    .await;
    kv.describe_stream()
        .stream_name("protected")
        .send()
        .await
        .unwrap();

    // A principal with nothing attached: stream APIs say NotAuthorized, channel APIs
    // AccessDenied, both 401.
    let bob = user(&server, "bob", &[]).await;
    let kv = sdk(&server, &bob);
    let e = kv.list_streams().send().await.unwrap_err();
    assert_eq!(sdk_error(e), ("NotAuthorizedException".into(), 401));
    let e = kv
        .describe_signaling_channel()
        .channel_name("chan")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e), ("AccessDeniedException".into(), 401));
    let e = kv
        .describe_image_generation_configuration()
        .stream_name("protected")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e), ("AccessDeniedException".into(), 401));

    // Every routed operation is judged: none succeeds for bob.
    for op in [
        "/createStream",
        "/describeStream",
        "/getDataEndpoint",
        "/TagResource",
        "/listSignalingChannels",
        "/getMedia",
        "/listFragments",
        "/getMediaForFragmentList",
        "/describeEdgeConfiguration",
        "/listEdgeAgentConfigurations",
    ] {
        let r = common::post(
            &server,
            op,
            r#"{"StreamName":"protected","ChannelName":"chan"}"#,
            &bob.signing(),
        );
        assert_eq!(r.status, 401, "{op}: {}", r.body);
    }
    // The admin API is root's alone.
    let r = common::post(
        &server,
        "/admin/CreateUser",
        r#"{"UserName":"mallory"}"#,
        &alice.signing(),
    );
    assert_eq!((r.status, r.error_type()), (401, "AccessDeniedException"));
}

#[tokio::test]
async fn revoked_keys_and_expired_sessions_are_refused() {
    let server = TestServer::start_with(&["--min-session-seconds", "1"]);
    let carol = user(&server, "carol", &[allow(&["kinesisvideo:List*"], "*")]).await;
    sdk(&server, &carol).list_streams().send().await.unwrap();
    admin(
        &server,
        "UpdateAccessKey",
        json!({"AccessKeyId": carol.key, "Status": "Inactive"}),
    )
    .await;
    let e = sdk(&server, &carol)
        .list_streams()
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e), ("UnrecognizedClientException".into(), 403));
    admin(
        &server,
        "DeleteAccessKey",
        json!({"AccessKeyId": carol.key}),
    )
    .await;
    let e = sdk(&server, &carol)
        .list_streams()
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e).1, 403);

    // AssumeRole: root may assume any role; the session expires.
    let arn = role(&server, "lister", &allow(&["kinesisvideo:List*"], "*")).await;
    let session = assume_role(&server, &root(), &arn, "&DurationSeconds=1").unwrap();
    sdk(&server, &session).list_streams().send().await.unwrap();
    let e = sdk(&server, &session)
        .describe_stream()
        .stream_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e).0, "NotAuthorizedException");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let e = sdk(&server, &session)
        .list_streams()
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e), ("ExpiredTokenException".into(), 403));

    // A user needs sts:AssumeRole on the role; refusals are STS's XML AccessDenied.
    let dave = user(&server, "dave", &[]).await;
    let refused = assume_role(&server, &dave, &arn, "").unwrap_err();
    assert_eq!(refused.status, 403);
    assert_eq!(
        xml_field(&refused.body, "Code").as_deref(),
        Some("AccessDenied")
    );
    let erin = user(&server, "erin", &[allow(&["sts:AssumeRole"], &arn)]).await;
    let s = assume_role(&server, &erin, &arn, "").unwrap();
    sdk(&server, &s).list_streams().send().await.unwrap();
    let unknown = assume_role(&server, &erin, "arn:aws:iam::123456789012:role/nope", "");
    assert_eq!(unknown.unwrap_err().status, 403);
}

/// A role with a 12-hour MaxSessionDuration and one policy document attached.
async fn twelve_hour_role(server: &TestServer, name: &str, policy: &Value) -> String {
    let r = admin(
        server,
        "CreateRole",
        json!({"RoleName": name, "MaxSessionDuration": 43_200}),
    )
    .await;
    attach_new_policy(server, name, policy, "RoleName", name).await;
    r["Role"]["Arn"].as_str().unwrap().to_string()
}

/// Role chaining: a role session assuming a role gets at most an hour (AWS's limit), however
/// long the role's MaxSessionDuration, so a short session cannot stretch itself to 12 hours.
#[tokio::test]
async fn role_chaining_is_capped_at_one_hour() {
    let server = TestServer::start();
    let target = twelve_hour_role(&server, "target", &allow(&["kinesisvideo:List*"], "*")).await;
    let hop = twelve_hour_role(&server, "hop", &allow(&["sts:AssumeRole"], &target)).await;
    // Not chained: the role's 12 hours are there to take.
    let hop_session = assume_role(&server, &root(), &hop, "&DurationSeconds=43200").unwrap();
    let direct = assume_role(&server, &root(), &target, "&DurationSeconds=43200");
    assert!(direct.is_ok());
    // Chained: more than an hour is STS's ValidationError; an hour is granted.
    let refused = assume_role(&server, &hop_session, &target, "&DurationSeconds=7200").unwrap_err();
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(
        xml_field(&refused.body, "Code").as_deref(),
        Some("ValidationError")
    );
    assert!(refused.body.contains("role chaining"), "{}", refused.body);
    let chained = assume_role(&server, &hop_session, &target, "&DurationSeconds=3600").unwrap();
    sdk(&server, &chained).list_streams().send().await.unwrap();
    // Without DurationSeconds the chained session runs an hour, not the role's twelve.
    let body = {
        let b = "Action=AssumeRole&Version=2011-06-15&RoleSessionName=chained&RoleArn=".to_string()
            + &common::urlencode(&target);
        let s = Signing {
            service: "sts",
            ..hop_session.signing()
        };
        request(
            &server,
            "POST",
            "/",
            Some("application/x-www-form-urlencoded"),
            b.as_bytes(),
            &s,
        )
        .body
    };
    let expires = xml_field(&body, "Expiration").unwrap();
    let expires =
        time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left <= time::Duration::seconds(3601) && left > time::Duration::seconds(3500),
        "{left}"
    );
}

/// A trust policy with an ExternalId condition: the account's users who may assume roles
/// get this one only with the agreed external id; a user it does not name gets nothing.
#[tokio::test]
async fn trust_policies_decide_who_assumes_a_role() {
    let server = TestServer::start();
    let trust = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"sts:ExternalId": "agreed-id"}}},
        {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:user/eve"},
         "Action": "sts:AssumeRole"}]});
    let r = admin(
        &server,
        "CreateRole",
        json!({"RoleName": "partner", "AssumeRolePolicyDocument": trust.to_string()}),
    )
    .await;
    assert_eq!(r["Role"]["AssumeRolePolicyDocument"], trust.to_string());
    attach_new_policy(
        &server,
        "partner",
        &allow(&["kinesisvideo:List*"], "*"),
        "RoleName",
        "partner",
    )
    .await;
    let arn = r["Role"]["Arn"].as_str().unwrap().to_string();
    let bob = user(&server, "bob", &[allow(&["sts:AssumeRole"], &arn)]).await;
    let eve = user(&server, "eve", &[allow(&["sts:AssumeRole"], &arn)]).await;
    assert_eq!(
        assume_role(&server, &bob, &arn, "").unwrap_err().status,
        403
    );
    assert_eq!(
        assume_role(&server, &bob, &arn, "&ExternalId=wrong")
            .unwrap_err()
            .status,
        403
    );
    let s = assume_role(&server, &bob, &arn, "&ExternalId=agreed-id").unwrap();
    sdk(&server, &s).list_streams().send().await.unwrap();
    assert_eq!(
        assume_role(&server, &eve, &arn, "&ExternalId=agreed-id")
            .unwrap_err()
            .status,
        403
    );
    // Issuing is rate-limited per caller: a burst past 20 a second is STS's Throttling.
    let codes: Vec<Option<String>> = (0..30)
        .map(
            |_| match assume_role(&server, &bob, &arn, "&ExternalId=agreed-id") {
                Ok(_) => None,
                Err(r) => xml_field(&r.body, "Code"),
            },
        )
        .collect();
    assert!(
        codes.iter().any(|c| c.as_deref() == Some("Throttling")),
        "{codes:?}"
    );
    assert!(
        codes.iter().filter(|c| c.is_none()).count() >= 10,
        "{codes:?}"
    );
    // A malformed trust policy is refused when the role is made.
    let e = common::media_client(&server)
        .call_json(
            "/admin/CreateRole",
            &json!({"RoleName": "broken", "AssumeRolePolicyDocument": "{\"Statement\": 1}"}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("AssumeRolePolicyDocument"), "{e}");
}

/// Session tags become the session's principal tags (`${aws:PrincipalTag/camera}` scopes it to
/// one stream) when the trust policy allows sts:TagSession; a source identity is echoed,
/// needs sts:SetSourceIdentity, and stays with the session through role chaining.
#[tokio::test]
async fn session_tags_and_source_identity() {
    let server = TestServer::start();
    let trust = |actions: &[&str]| {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": actions}]})
        .to_string()
    };
    let r = admin(
        &server,
        "CreateRole",
        json!({"RoleName": "tagged", "AssumeRolePolicyDocument":
            trust(&["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"])}),
    )
    .await;
    let arn = r["Role"]["Arn"].as_str().unwrap().to_string();
    let scoped = allow(
        &["kinesisvideo:DescribeStream"],
        "arn:aws:kinesisvideo:*:*:stream/${aws:PrincipalTag/camera}/*",
    );
    attach_new_policy(&server, "tagged", &scoped, "RoleName", "tagged").await;
    create_stream(&server, "cam-1").await;
    create_stream(&server, "cam-2").await;
    let tags = "&Tags.member.1.Key=camera&Tags.member.1.Value=cam-1";
    let r = assume_role_request(
        &server,
        &root(),
        &arn,
        &format!("{tags}&SourceIdentity=alice@example.com"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        xml_field(&r.body, "SourceIdentity").as_deref(),
        Some("alice@example.com")
    );
    let kv = sdk(&server, &sts_creds(&r));
    kv.describe_stream()
        .stream_name("cam-1")
        .send()
        .await
        .unwrap();
    let e = kv
        .describe_stream()
        .stream_name("cam-2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e).1, 401);
    // Bad tags are STS's ValidationError.
    let dup =
        "&Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.2.Key=A&Tags.member.2.Value=2";
    let r = assume_role_request(&server, &root(), &arn, dup);
    assert_eq!(
        (r.status, xml_field(&r.body, "Code")),
        (400, Some("ValidationError".into()))
    );
    // A trust policy without sts:TagSession refuses tags (and still allows no tags).
    admin(
        &server,
        "UpdateAssumeRolePolicy",
        json!({"RoleName": "tagged", "PolicyDocument": trust(&["sts:AssumeRole"])}),
    )
    .await;
    let r = assume_role_request(&server, &root(), &arn, tags);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = assume_role_request(&server, &root(), &arn, "&SourceIdentity=alice");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(assume_role_request(&server, &root(), &arn, "").status, 200);
}

/// Transitive session tags follow a chain of sessions (`TransitiveTagKeys`); others do not,
/// and an inherited transitive tag cannot be set again.
#[tokio::test]
async fn transitive_session_tags_follow_role_chaining() {
    let server = TestServer::start();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "123456789012"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]})
    .to_string();
    let mut arns = Vec::new();
    for name in ["first", "second"] {
        let r = admin(
            &server,
            "CreateRole",
            json!({"RoleName": name, "AssumeRolePolicyDocument": trust}),
        )
        .await;
        arns.push(r["Role"]["Arn"].as_str().unwrap().to_string());
    }
    let first_policy = allow(&["sts:AssumeRole", "sts:TagSession"], &arns[1]);
    attach_new_policy(&server, "first", &first_policy, "RoleName", "first").await;
    let scoped = allow(
        &["kinesisvideo:DescribeStream"],
        "arn:aws:kinesisvideo:*:*:stream/${aws:PrincipalTag/camera}/*",
    );
    attach_new_policy(&server, "second", &scoped, "RoleName", "second").await;
    create_stream(&server, "cam-1").await;
    let tag = "&Tags.member.1.Key=camera&Tags.member.1.Value=cam-1";
    let describe = |c: Creds| {
        let server = &server;
        async move {
            sdk(server, &c)
                .describe_stream()
                .stream_name("cam-1")
                .send()
                .await
                .map(drop)
                .map_err(sdk_error)
        }
    };

    // Transitive: the second session still has camera=cam-1.
    let first = assume_role(
        &server,
        &root(),
        &arns[0],
        &format!("{tag}&TransitiveTagKeys.member.1=camera"),
    )
    .unwrap();
    let second = assume_role(&server, &first, &arns[1], "").unwrap();
    assert_eq!(describe(second).await, Ok(()));
    // ... and it cannot be set again down the chain.
    let r = assume_role_request(&server, &first, &arns[1], tag);
    assert_eq!(
        (r.status, xml_field(&r.body, "Code")),
        (400, Some("ValidationError".into()))
    );

    // Not transitive: the chained session has no tag, so no stream.
    let first = assume_role(&server, &root(), &arns[0], tag).unwrap();
    let second = assume_role(&server, &first, &arns[1], "").unwrap();
    assert_eq!(
        describe(second).await,
        Err(("NotAuthorizedException".into(), 401))
    );
    // A transitive key must be one of the tags passed.
    let r = assume_role_request(
        &server,
        &root(),
        &arns[0],
        "&TransitiveTagKeys.member.1=site",
    );
    assert_eq!(
        (r.status, xml_field(&r.body, "Code")),
        (400, Some("ValidationError".into()))
    );
}

/// Temporary credentials carry themselves: issuing them stores nothing (none of their key ids
/// reaches the catalog's files), they survive a restart (the sealing key is kept in the data
/// directory), and a token whose payload was changed is refused.
#[tokio::test]
async fn sessions_are_sealed_not_stored() {
    let dir = common::temp_dir("sealed");
    let server = TestServer::start_in(&dir, &[], true);
    let arn = role(&server, "sealer", &allow(&["kinesisvideo:List*"], "*")).await;
    let sessions: Vec<Creds> = (0..10)
        .map(|_| assume_role(&server, &root(), &arn, "").unwrap())
        .collect();
    for s in &sessions {
        sdk(&server, s).list_streams().send().await.unwrap();
    }
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("catalog")
        {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!stored.is_empty(), "the catalog files were found");
    let text = String::from_utf8_lossy(&stored);
    for s in &sessions {
        assert!(!text.contains(&s.key), "{} was stored", s.key);
    }
    // A changed payload breaks the seal.
    let mut forged = sessions[0].clone();
    let token = forged.token.clone().unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[2] = parts[2].chars().rev().collect();
    forged.token = Some(parts.join("."));
    let e = sdk(&server, &forged)
        .list_streams()
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e).1, 403);
    // Restarted on the same data directory, the sessions still work.
    server.stop();
    let server = TestServer::start_in(&dir, &[], true);
    sdk(&server, &sessions[9])
        .list_streams()
        .send()
        .await
        .unwrap();
}

/// `oxbow admin rotate-session-key`: new sessions are sealed with a new key, the sessions of
/// the key it replaced keep working (also after a restart), and a second rotation ends them;
/// only root may rotate.
#[tokio::test]
async fn rotating_the_session_key_ends_the_oldest_sessions_at_the_second_rotation() {
    let dir = common::temp_dir("rotation");
    let server = TestServer::start_in(&dir, &[], true);
    let arn = role(&server, "rotated", &allow(&["kinesisvideo:List*"], "*")).await;
    let key_id = |c: &Creds| {
        c.token
            .as_ref()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .to_string()
    };
    let first = assume_role(&server, &root(), &arn, "").unwrap();

    let rotated = admin(&server, "RotateSessionKey", json!({})).await;
    assert_eq!(rotated["PreviousKeyId"], json!(key_id(&first)), "{rotated}");
    let second = assume_role(&server, &root(), &arn, "").unwrap();
    assert_eq!(rotated["KeyId"], json!(key_id(&second)), "{rotated}");
    assert_ne!(key_id(&first), key_id(&second));
    lists(&server, &first).await.unwrap();
    lists(&server, &second).await.unwrap();

    // The rotation is in the data directory: a restart keeps both keys.
    server.stop();
    let server = TestServer::start_in(&dir, &[], true);
    lists(&server, &first).await.unwrap();
    lists(&server, &second).await.unwrap();

    // Root only.
    let ops = user(&server, "ops", &[allow(&["*"], "*")]).await;
    let refused = common::request(
        &server,
        "POST",
        "/admin/RotateSessionKey",
        Some("application/json"),
        b"{}",
        &Signing {
            key: &ops.key,
            secret: &ops.secret,
            ..Signing::default()
        },
    );
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(
        refused.body.contains("AccessDeniedException"),
        "{}",
        refused.body
    );

    admin(&server, "RotateSessionKey", json!({})).await;
    assert_eq!(
        lists(&server, &first).await.unwrap_err(),
        ("UnrecognizedClientException".to_string(), 403)
    );
    lists(&server, &second).await.unwrap();
}

/// GetCallerIdentity names callers with the ids AWS uses: the account id for root, the user's
/// `AIDA…` id, `AROA…:session` for a role session.
#[tokio::test]
async fn get_caller_identity_returns_aws_unique_ids() {
    let server = TestServer::start();
    let who = |c: &Creds| {
        let s = Signing {
            service: "sts",
            ..c.signing()
        };
        let r = request(
            &server,
            "POST",
            "/",
            Some("application/x-www-form-urlencoded"),
            b"Action=GetCallerIdentity&Version=2011-06-15",
            &s,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        (
            xml_field(&r.body, "UserId").unwrap(),
            xml_field(&r.body, "Arn").unwrap(),
        )
    };
    assert_eq!(
        who(&root()),
        (
            "123456789012".to_string(),
            "arn:aws:iam::123456789012:root".to_string()
        )
    );
    let alice = user(&server, "alice", &[]).await;
    let alice_id = admin(&server, "GetUser", json!({"UserName": "alice"})).await["User"]["UserId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(alice_id.starts_with("AIDA"), "{alice_id}");
    assert_eq!(
        who(&alice),
        (alice_id, "arn:aws:iam::123456789012:user/alice".to_string())
    );
    let r = admin(&server, "CreateRole", json!({"RoleName": "looker"})).await;
    let role_id = r["Role"]["RoleId"].as_str().unwrap().to_string();
    let session = assume_role(&server, &root(), r["Role"]["Arn"].as_str().unwrap(), "").unwrap();
    assert_eq!(
        who(&session),
        (
            format!("{role_id}:tests"),
            "arn:aws:sts::123456789012:assumed-role/looker/tests".to_string()
        )
    );
}

/// A session belongs to the role it was issued for: deleting the role and creating another of
/// the same name (with wider rights) gives the old session nothing, and each role has its own
/// unique id, which AssumeRole reports as AWS does (`AROA…:session`).
#[tokio::test]
async fn a_recreated_role_is_not_the_role_old_sessions_were_issued_for() {
    let server = TestServer::start();
    let first = admin(&server, "CreateRole", json!({"RoleName": "flip"})).await;
    attach_new_policy(
        &server,
        "flip-list",
        &allow(&["kinesisvideo:List*"], "*"),
        "RoleName",
        "flip",
    )
    .await;
    let arn = first["Role"]["Arn"].as_str().unwrap().to_string();
    let first_id = first["Role"]["RoleId"].as_str().unwrap().to_string();
    assert!(first_id.starts_with("AROA"), "{first}");
    let (old, body) = assume_role_raw(&server, &root(), &arn);
    assert_eq!(
        xml_field(&body, "AssumedRoleId"),
        Some(format!("{first_id}:tests"))
    );
    sdk(&server, &old).list_streams().send().await.unwrap();

    admin(
        &server,
        "DetachPolicy",
        json!({"PolicyName": "flip-list", "RoleName": "flip"}),
    )
    .await;
    admin(&server, "DeleteRole", json!({"RoleName": "flip"})).await;
    let second = admin(&server, "CreateRole", json!({"RoleName": "flip"})).await;
    attach_new_policy(
        &server,
        "flip-all",
        &allow(&["kinesisvideo:*"], "*"),
        "RoleName",
        "flip",
    )
    .await;
    assert_ne!(second["Role"]["RoleId"], first["Role"]["RoleId"]);

    // The old session: nothing, not even what it had (KVS's 401 denials).
    let e = sdk(&server, &old).list_streams().send().await.unwrap_err();
    assert_eq!(sdk_error(e), ("NotAuthorizedException".into(), 401));
    let e = sdk(&server, &old)
        .create_stream()
        .stream_name("escalated")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e), ("NotAuthorizedException".into(), 401));
    // A new session of the new role has the new role's rights.
    let (new, _) = assume_role_raw(&server, &root(), &arn);
    sdk(&server, &new)
        .create_stream()
        .stream_name("allowed")
        .send()
        .await
        .unwrap();
}

/// Sessions are revoked without a record per session: by user (which reaches the role
/// sessions the user obtained), by role, or all of them before a time; and the AWS console's
/// way (a Deny on `aws:TokenIssueTime` in the role's policy) works as it does on AWS.
#[tokio::test]
async fn sessions_are_revoked_by_user_by_role_or_by_time() {
    // (its own directory: the server restarts on it)
    let server = TestServer::start_in(&common::temp_dir("revocations"), &[], true);
    let arn = role(&server, "worker", &allow(&["kinesisvideo:List*"], "*")).await;
    let alice = user(&server, "alice", &[allow(&["sts:AssumeRole"], "*")]).await;
    let revoked = Err(("UnrecognizedClientException".to_string(), 403));
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(5));
    let of_alice = assume_role(&server, &alice, &arn, "").unwrap();
    let of_root = assume_role(&server, &root(), &arn, "").unwrap();
    assert_eq!(lists(&server, &of_alice).await, Ok(()));
    assert_eq!(lists(&server, &of_root).await, Ok(()));

    // By user: the role session alice obtained ends; root's does not, and alice can get a
    // new one.
    pause().await;
    admin(&server, "RevokeSessions", json!({"UserName": "alice"})).await;
    assert_eq!(lists(&server, &of_alice).await, revoked);
    assert_eq!(lists(&server, &of_root).await, Ok(()));
    pause().await;
    let again = assume_role(&server, &alice, &arn, "").unwrap();
    assert_eq!(lists(&server, &again).await, Ok(()));

    // By role: every session of it ends, whoever obtained it.
    pause().await;
    admin(&server, "RevokeSessions", json!({"RoleName": "worker"})).await;
    assert_eq!(lists(&server, &of_root).await, revoked);
    assert_eq!(lists(&server, &again).await, revoked);
    pause().await;
    let fresh = assume_role(&server, &root(), &arn, "").unwrap();
    assert_eq!(lists(&server, &fresh).await, Ok(()));

    // Everything before now; long-term keys are not sessions and keep working.
    pause().await;
    admin(&server, "RevokeSessions", json!({"All": true})).await;
    assert_eq!(lists(&server, &fresh).await, revoked);
    assert_eq!(lists(&server, &root()).await, Ok(()));
    let listed = admin(&server, "ListRevocations", json!({})).await;
    let principals: Vec<&str> = listed["Revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Principal"].as_str().unwrap())
        .collect();
    assert_eq!(principals, ["*", "role/worker", "user/alice"]);
    // Survives a restart: revocations are in the catalog.
    let data_dir = server.data_dir.clone();
    drop(server);
    let server = TestServer::start_in(&data_dir, &[], true);
    assert_eq!(lists(&server, &fresh).await, revoked);

    // The AWS console's "revoke active sessions": a Deny on sessions issued before a time.
    pause().await;
    let old = assume_role(&server, &root(), &arn, "").unwrap();
    pause().await;
    let cutoff = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    pause().await;
    let new = assume_role(&server, &root(), &arn, "").unwrap();
    let deny_older = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny",
        "Action": "*", "Resource": "*",
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}}}]});
    attach_new_policy(
        &server,
        "AWSRevokeOlderSessions",
        &deny_older,
        "RoleName",
        "worker",
    )
    .await;
    assert_eq!(
        lists(&server, &old).await,
        Err(("NotAuthorizedException".into(), 401))
    );
    assert_eq!(lists(&server, &new).await, Ok(()));
}

/// ListStreams signed with `c`: Ok, or the error code and status.
async fn lists(server: &TestServer, c: &Creds) -> Result<(), (String, u16)> {
    sdk(server, c)
        .list_streams()
        .send()
        .await
        .map(drop)
        .map_err(sdk_error)
}

/// AssumeRole's credentials and the whole response body.
fn assume_role_raw(server: &TestServer, caller: &Creds, arn: &str) -> (Creds, String) {
    let r = assume_role_request(server, caller, arn, "");
    assert_eq!(r.status, 200, "{}", r.body);
    (sts_creds(&r), r.body)
}

fn sts_creds(r: &Raw) -> Creds {
    Creds {
        key: xml_field(&r.body, "AccessKeyId").unwrap(),
        secret: xml_field(&r.body, "SecretAccessKey").unwrap(),
        token: xml_field(&r.body, "SessionToken"),
    }
}

/// The seed-004 style split: the viewer role may connect as viewer, not as master.
#[tokio::test]
async fn viewer_role_connects_as_viewer_not_master() {
    let server = TestServer::start();
    let channel = create_channel(&server, "front-door").await;
    let arn = role(
        &server,
        "viewer",
        &allow(
            &[
                "kinesisvideo:DescribeSignalingChannel",
                "kinesisvideo:GetSignalingChannelEndpoint",
                "kinesisvideo:ConnectAsViewer",
            ],
            &channel,
        ),
    )
    .await;
    let viewer = assume_role(&server, &root(), &arn, "").unwrap();
    let kv = sdk(&server, &viewer);
    kv.describe_signaling_channel()
        .channel_name("front-door")
        .send()
        .await
        .unwrap();
    let handshake_to = |channel: &str, client_id: Option<&str>| {
        let mut q = format!("/?X-Amz-ChannelARN={}", common::urlencode(channel));
        if let Some(id) = client_id {
            q.push_str(&format!("&X-Amz-ClientId={id}"));
        }
        let s = Signing {
            presigned: true,
            ..viewer.signing()
        };
        request(&server, "GET", &q, None, b"", &s)
    };
    let handshake = |client_id: Option<&str>| handshake_to(&channel, client_id);
    // Authorized; a handshake that is no WebSocket upgrade is then refused as such.
    let as_viewer = handshake(Some("viewer-1"));
    assert_eq!(as_viewer.status, 400, "authorized: {}", as_viewer.body);
    assert!(as_viewer.body.contains("WebSocket"), "{}", as_viewer.body);
    let as_master = handshake(None);
    assert_eq!(as_master.status, 403, "{}", as_master.body);
    assert_eq!(as_master.error_type(), "AccessDeniedException");
    // GetIceServerConfig is its own action, which this role lacks: 401 NotAuthorized.
    let ice = request(
        &server,
        "POST",
        "/v1/get-ice-server-config",
        Some("application/json"),
        json!({"ChannelARN": channel}).to_string().as_bytes(),
        &viewer.signing(),
    );
    assert_eq!(
        (ice.status, ice.error_type()),
        (401, "NotAuthorizedException"),
        "{}",
        ice.body
    );
    // A channel the caller may not connect to is refused before its existence is looked up.
    let elsewhere = channel.replace("front-door", "no-such-door");
    let unknown = handshake_to(&elsewhere, Some("viewer-1"));
    assert_eq!(
        (unknown.status, unknown.error_type()),
        (403, "AccessDeniedException"),
        "{}",
        unknown.body
    );
}

#[tokio::test]
async fn camera_owner_gets_a_url_for_their_camera_only() {
    let server = TestServer::start();
    let garage = create_channel(&server, "garage-cam").await;
    create_channel(&server, "neighbour-cam").await;
    let owner = user(&server, "owner", &[]).await;
    let stranger = user(&server, "stranger", &[]).await;
    admin(
        &server,
        "AddCameraOwner",
        json!({"UserName": "owner", "ChannelName": "garage-cam", "Roles": ["VIEWER"]}),
    )
    .await;
    let ask = |who: &Creds, q: &str| {
        request(
            &server,
            "GET",
            &format!("/camera-url?{q}"),
            None,
            b"",
            &who.signing(),
        )
    };
    let r = ask(&owner, "channelName=garage-cam&clientId=phone-1");
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    let url = answer["signedURL"].as_str().unwrap();
    assert!(url.contains("X-Amz-ChannelARN=") && url.contains("X-Amz-Expires=299"));
    assert_eq!(answer["ChannelARN"], garage.as_str());
    // The URL opens the handshake (authorized, then refused only for not upgrading).
    let path = &url[url.find("/?").unwrap()..];
    let head = format!(
        "GET {path} HTTP/1.1\nhost: {}\nconnection: close\n",
        server.addr()
    );
    let opened = common::send_raw(&server.addr(), &head, b"");
    assert_eq!(opened.status, 400, "{}", opened.body);
    assert!(opened.body.contains("WebSocket"), "{}", opened.body);
    // Pointing the URL at another channel breaks the signature.
    let moved = head.replace("garage-cam", "neighbour-cam");
    assert_eq!(common::send_raw(&server.addr(), &moved, b"").status, 403);

    // Not the owner, not this camera, not this role, unknown camera: 403 without revealing
    // whether the channel exists.
    for (who, q) in [
        (&stranger, "channelName=garage-cam"),
        (&owner, "channelName=neighbour-cam"),
        (&owner, "channelName=garage-cam&role=MASTER"),
        (&owner, "channelName=no-such-cam"),
    ] {
        let r = ask(who, q);
        assert_eq!(
            (r.status, r.error_type()),
            (403, "AccessDeniedException"),
            "{q}: {}",
            r.body
        );
    }
    let r = ask(&owner, "role=VIEWER");
    assert_eq!(r.status, 400);
}

fn curl_credentials(iot_url: &str, ca: &str, dir: &std::path::Path, thing: &str) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "-w", "\n%{http_code}"])
        .arg("-H")
        .arg(format!("x-amzn-iot-thingname:{thing}"))
        .arg("--cert")
        .arg(dir.join("certificate.pem"))
        .arg("--key")
        .arg(dir.join("private.pem.key"))
        .arg("--cacert")
        .arg(ca)
        .arg(format!(
            "{iot_url}/role-aliases/KvsCameraIoTRoleAlias/credentials"
        ))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// A device of seed 003: its thing, and a certificate allowed to assume the role alias.
async fn device(server: &TestServer, dir: &std::path::Path, thing: &str) -> String {
    common::iot_device(server, dir, thing, "KvsCameraIoTPolicy").await
}

fn creds_of(v: &Value) -> Creds {
    let c = &v["credentials"];
    Creds {
        key: c["accessKeyId"].as_str().unwrap().into(),
        secret: c["secretAccessKey"].as_str().unwrap().into(),
        token: c["sessionToken"].as_str().map(str::to_string),
    }
}

/// Seed 003's trust policy for the camera role.
const IOT_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"credentials.iot.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Seed 003's role (streams scoped by `${credentials-iot:ThingName}`), its role alias and
/// the IoT policy that lets certificates assume it.
async fn iot_setup(server: &TestServer) {
    let role_policy = allow(
        &[
            "kinesisvideo:DescribeStream",
            "kinesisvideo:PutMedia",
            "kinesisvideo:TagStream",
            "kinesisvideo:GetDataEndpoint",
        ],
        "arn:aws:kinesisvideo:*:*:stream/${credentials-iot:ThingName}/*",
    );
    // Seed 003's role, with its trust policy: only the IoT credentials provider assumes it.
    admin(
        server,
        "CreateRole",
        json!({"RoleName": "KVSCameraCertificateBasedIAMRole",
               "AssumeRolePolicyDocument": IOT_TRUST}),
    )
    .await;
    attach_new_policy(
        server,
        "KVSCameraCertificateBasedIAMRole",
        &role_policy,
        "RoleName",
        "KVSCameraCertificateBasedIAMRole",
    )
    .await;
    admin(
        server,
        "CreateRoleAlias",
        json!({"RoleAlias": "KvsCameraIoTRoleAlias", "RoleName": "KVSCameraCertificateBasedIAMRole",
               "CredentialDurationSeconds": 3600}),
    )
    .await;
    let iot_policy = allow(
        &["iot:AssumeRoleWithCertificate"],
        "arn:aws:iot:us-east-1:123456789012:rolealias/KvsCameraIoTRoleAlias",
    );
    admin(
        server,
        "CreatePolicy",
        json!({"PolicyName": "KvsCameraIoTPolicy", "PolicyDocument": iot_policy.to_string()}),
    )
    .await;
}

/// Seed 003 end to end: certificate → credentials (curl --cert) → the Rust SDK and PutMedia,
/// scoped by `${credentials-iot:ThingName}`, and the `AwsCertificateId` variant.
#[tokio::test]
async fn iot_certificate_credentials_reach_only_the_devices_stream() {
    let port = common::free_port().to_string();
    let server = TestServer::start_with(&["--iot-listen", &format!("127.0.0.1:{port}")]);
    let iot_url = server.banner_value("IoT credentials provider (mutual TLS):");
    let ca = server.banner_value("devices verify it with");
    iot_setup(&server).await;
    let dir_a = common::temp_dir("iot-a");
    let cert_a = device(&server, &dir_a, "camera-a").await;
    create_stream(&server, "camera-a").await;
    create_stream(&server, "camera-b").await;

    let (status, body) = curl_credentials(&iot_url, &ca, &dir_a, "camera-a");
    assert_eq!(status, 200, "{body}");
    assert!(body["credentials"]["expiration"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let creds = creds_of(&body);
    let kv = sdk(&server, &creds);
    kv.describe_stream()
        .stream_name("camera-a")
        .send()
        .await
        .unwrap();
    kv.get_data_endpoint()
        .stream_name("camera-a")
        .api_name(aws_sdk_kinesisvideo::types::ApiName::PutMedia)
        .send()
        .await
        .unwrap();
    let e = kv
        .describe_stream()
        .stream_name("camera-b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e), ("NotAuthorizedException".into(), 401));
    assert!(put_media(&server, &creds, "camera-a").await.unwrap() > 0);
    assert_eq!(
        put_media(&server, &creds, "camera-b").await.unwrap_err(),
        "NotAuthorizedException"
    );

    // The role trusts the credentials provider only: users, even root, cannot assume it...
    let arn = admin(
        &server,
        "GetRole",
        json!({"RoleName": "KVSCameraCertificateBasedIAMRole"}),
    )
    .await["Role"]["Arn"]
        .as_str()
        .unwrap()
        .to_string();
    let mallory = user(&server, "mallory", &[allow(&["sts:AssumeRole"], "*")]).await;
    for caller in [&mallory, &root()] {
        let refused = assume_role(&server, caller, &arn, "").unwrap_err();
        assert_eq!(
            (refused.status, xml_field(&refused.body, "Code")),
            (403, Some("AccessDenied".into()))
        );
    }
    // ... and a role that does not trust the provider gives devices nothing.
    let account_only = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]});
    let set_trust = |doc: String| {
        admin(
            &server,
            "UpdateAssumeRolePolicy",
            json!({"RoleName": "KVSCameraCertificateBasedIAMRole", "PolicyDocument": doc}),
        )
    };
    set_trust(account_only.to_string()).await;
    let (status, _) = curl_credentials(&iot_url, &ca, &dir_a, "camera-a");
    assert_eq!(status, 403);
    set_trust(IOT_TRUST.to_string()).await;
    let (status, _) = curl_credentials(&iot_url, &ca, &dir_a, "camera-a");
    assert_eq!(status, 200);

    // The thing must be the certificate's.
    let (status, body) = curl_credentials(&iot_url, &ca, &dir_a, "camera-b");
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("Invalid thing name passed"))
    );
    // A deactivated certificate gets nothing.
    admin(
        &server,
        "UpdateCertificate",
        json!({"CertificateId": cert_a, "NewStatus": "INACTIVE"}),
    )
    .await;
    let (status, _) = curl_credentials(&iot_url, &ca, &dir_a, "camera-a");
    assert_eq!(status, 403);

    // The certificate-id variant: streams named by the certificate id.
    let cert_policy = allow(
        &["kinesisvideo:DescribeStream", "kinesisvideo:PutMedia"],
        "arn:aws:kinesisvideo:*:*:stream/${credentials-iot:AwsCertificateId}/*",
    );
    admin(
        &server,
        "UpdatePolicy",
        json!({"PolicyName": "KVSCameraCertificateBasedIAMRole", "PolicyDocument": cert_policy.to_string()}),
    )
    .await;
    let dir_c = common::temp_dir("iot-c");
    let cert_c = device(&server, &dir_c, "camera-c").await;
    create_stream(&server, &cert_c).await;
    let (status, body) = curl_credentials(&iot_url, &ca, &dir_c, "camera-c");
    assert_eq!(status, 200, "{body}");
    let kv = sdk(&server, &creds_of(&body));
    kv.describe_stream()
        .stream_name(&cert_c)
        .send()
        .await
        .unwrap();
    let e = kv
        .describe_stream()
        .stream_name("camera-c")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(e).0, "NotAuthorizedException");
}

/// A device certificate from the operator's own CA works once that CA is trusted
/// (`--iot-ca`) and the certificate registered; one from an unknown CA fails the handshake.
#[tokio::test]
async fn iot_certificates_from_a_trusted_external_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = common::temp_dir("iot-ext");
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ext-ca.pem"), ca.pem()).unwrap();
    let device_cert = |issuer: Option<(&rcgen::Certificate, &KeyPair)>| {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let cert = match issuer {
            Some((c, k)) => params.signed_by(&key, c, k).unwrap(),
            None => params.self_signed(&key).unwrap(),
        };
        (cert.pem(), key.serialize_pem())
    };
    let port = common::free_port().to_string();
    let ext_ca = dir.join("ext-ca.pem");
    let server = TestServer::start_with(&[
        "--iot-listen",
        &format!("127.0.0.1:{port}"),
        "--iot-ca",
        ext_ca.to_str().unwrap(),
    ]);
    let iot_url = server.banner_value("IoT credentials provider (mutual TLS):");
    let server_ca = server.banner_value("devices verify it with");
    iot_setup(&server).await;
    create_stream(&server, "ext-cam").await;
    admin(&server, "CreateThing", json!({"ThingName": "ext-cam"})).await;

    let (pem, key) = device_cert(Some((&ca, &ca_key)));
    std::fs::write(dir.join("certificate.pem"), &pem).unwrap();
    std::fs::write(dir.join("private.pem.key"), &key).unwrap();
    // Trusted CA but not registered: refused.
    let (status, _) = curl_credentials(&iot_url, &server_ca, &dir, "ext-cam");
    assert_eq!(status, 403);
    let r = admin(
        &server,
        "RegisterCertificate",
        json!({"CertificatePem": pem, "SetAsActive": true}),
    )
    .await;
    let id = r["CertificateId"].as_str().unwrap();
    admin(
        &server,
        "AttachPolicy",
        json!({"PolicyName": "KvsCameraIoTPolicy", "CertificateId": id}),
    )
    .await;
    admin(
        &server,
        "AttachThingPrincipal",
        json!({"ThingName": "ext-cam", "CertificateId": id}),
    )
    .await;
    let (status, body) = curl_credentials(&iot_url, &server_ca, &dir, "ext-cam");
    assert_eq!(status, 200, "{body}");
    sdk(&server, &creds_of(&body))
        .describe_stream()
        .stream_name("ext-cam")
        .send()
        .await
        .unwrap();

    // A self-signed device certificate, even registered, never completes the handshake.
    let (pem, key) = device_cert(None);
    std::fs::write(dir.join("certificate.pem"), &pem).unwrap();
    std::fs::write(dir.join("private.pem.key"), &key).unwrap();
    admin(
        &server,
        "RegisterCertificate",
        json!({"CertificatePem": pem, "SetAsActive": true}),
    )
    .await;
    let (status, _) = curl_credentials(&iot_url, &server_ca, &dir, "ext-cam");
    assert_eq!(status, 0, "no HTTP exchange without a trusted chain");
}

/// Bad admin and STS input gets a clear 4xx, never a 5xx or a hang.
#[tokio::test]
async fn admin_and_sts_reject_bad_input() {
    let server = TestServer::start();
    let root = root();
    let post = |path: &str, body: &str| common::post(&server, path, body, &root.signing());
    // 800 KB of statements: far over IAM's 6,144-character policy quota.
    let statement =
        r#"{\"Effect\":\"Allow\",\"Action\":\"kinesisvideo:DescribeStream\",\"Resource\":\"*\"}"#;
    let big_policy = format!(
        r#"{{"PolicyName":"big","PolicyDocument":"{{\"Statement\":[{}]}}"}}"#,
        vec![statement; 10_000].join(",")
    );
    for (path, body, status, error) in [
        (
            "/admin/CreateUser",
            "{not json",
            400,
            "SerializationException",
        ),
        ("/admin/CreateUser", "{}", 400, "InvalidArgumentException"),
        (
            "/admin/CreateUser",
            r#"{"UserName":"bad name!"}"#,
            400,
            "InvalidArgumentException",
        ),
        (
            "/admin/CreatePolicy",
            r#"{"PolicyName":"p","PolicyDocument":"{\"Statement\":[{\"Effect\":\"Maybe\",\"Action\":\"*\",\"Resource\":\"*\"}]}"}"#,
            400,
            "MalformedPolicyDocumentException",
        ),
        (
            "/admin/CreatePolicy",
            r#"{"PolicyName":"p","PolicyDocument":"[]"}"#,
            400,
            "MalformedPolicyDocumentException",
        ),
        (
            "/admin/CreatePolicy",
            r#"{"PolicyName":"p","PolicyDocument":"{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\",\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/33\"}}}]}"}"#,
            400,
            "MalformedPolicyDocumentException",
        ),
        (
            "/admin/CreatePolicy",
            &big_policy,
            409,
            "LimitExceededException",
        ),
        (
            "/admin/CreateUser",
            r#"{"UserName":"a","UserName":"b"}"#,
            400,
            "SerializationException",
        ),
        (
            "/admin/AttachPolicy",
            r#"{"PolicyName":"nope","UserName":"nobody"}"#,
            404,
            "ResourceNotFoundException",
        ),
        (
            "/admin/CreateRoleAlias",
            r#"{"RoleAlias":"a","RoleName":"nobody"}"#,
            404,
            "ResourceNotFoundException",
        ),
        (
            "/admin/RegisterCertificate",
            r#"{"CertificatePem":"garbage"}"#,
            400,
            "CertificateValidationException",
        ),
        (
            "/admin/RegisterCertificate",
            r#"{"CertificatePem":"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"}"#,
            400,
            "CertificateValidationException",
        ),
        (
            "/admin/UpdateCertificate",
            r#"{"CertificateId":"00","NewStatus":"ACTIVE"}"#,
            400,
            "InvalidArgumentException",
        ),
        (
            "/admin/DeleteAccessKey",
            &format!(r#"{{"AccessKeyId":"{}"}}"#, common::ACCESS_KEY),
            400,
            "InvalidArgumentException",
        ),
        ("/admin/Explode", "{}", 404, "UnknownOperationException"),
    ] {
        let r = post(path, body);
        assert_eq!(
            (r.status, r.error_type()),
            (status, error),
            "{path} {body}: {}",
            r.body
        );
    }
    admin(&server, "CreateUser", json!({"UserName": "twice"})).await;
    let r = post("/admin/CreateUser", r#"{"UserName":"twice"}"#);
    assert_eq!((r.status, r.error_type()), (400, "ResourceInUseException"));

    let sts = |body: &str| {
        let s = Signing {
            service: "sts",
            ..root.signing()
        };
        request(
            &server,
            "POST",
            "/",
            Some("application/x-www-form-urlencoded"),
            body.as_bytes(),
            &s,
        )
    };
    let r = sts("Action=AssumeRole&Version=2011-06-15");
    assert_eq!(r.status, 400);
    assert_eq!(
        xml_field(&r.body, "Code").as_deref(),
        Some("ValidationError")
    );
    let r = sts("Action=Explode");
    assert_eq!(r.status, 400);
    // Signed for the wrong service: STS's own error shape.
    let r = request(
        &server,
        "POST",
        "/",
        Some("application/x-www-form-urlencoded"),
        b"Action=GetCallerIdentity",
        &root.signing(),
    );
    assert_eq!(r.status, 403);
    assert!(xml_field(&r.body, "Code").is_some(), "{}", r.body);
}

/// `oxbow admin` finds the server and root key in the data directory and prints the answer.
#[test]
fn oxbow_admin_command_line() {
    let server = TestServer::start();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_oxbow"))
            .arg("admin")
            .args(args)
            .arg("--data-dir")
            .arg(&server.data_dir)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("OXBOW_ENDPOINT")
            .output()
            .expect("oxbow admin")
    };
    let out = run(&["create-user", "--user-name", "cli-user"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["User"]["UserName"], "cli-user");
    let doc = common::temp_dir("cli").join("p.json");
    std::fs::write(&doc, allow(&["kinesisvideo:List*"], "*").to_string()).unwrap();
    let file_arg = format!("file://{}", doc.display());
    let out = run(&[
        "create-policy",
        "--policy-name",
        "lists",
        "--policy-document",
        &file_arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "attach-policy",
        "--policy-name",
        "lists",
        "--user-name",
        "cli-user",
    ]);
    assert!(out.status.success());
    let out = run(&["get-user", "--user-name", "cli-user"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["User"]["AttachedPolicies"], json!(["lists"]));
    // Errors are reported, with a failing exit status.
    let out = run(&["get-user", "--user-name", "nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ResourceNotFoundException"));
    let out = run(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown action"));
}
