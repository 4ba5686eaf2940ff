//! `oxbow bench control`: signed DescribeStream over many keep-alive connections against
//! unauthenticated `GET /health` on the same server as the baseline, signed by root and by a
//! user bound by many policies (the cost of authorization), runs interleaved.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;

use super::{median, percentile};
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

#[derive(Args)]
pub struct ControlArgs {
    #[command(flatten)]
    target: super::Target,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds each measured run lasts.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Runs per target; the report gives medians.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Policies attached to the policy-bound user (0: skip that target).
    #[arg(long, default_value_t = 100)]
    policies: usize,
    /// Statements per policy; only the very last one allows the request.
    #[arg(long, default_value_t = 10)]
    statements: usize,
    /// The server's process id: report its CPU time per request (from /proc), a steadier
    /// measure of cost than throughput on a shared machine.
    #[arg(long)]
    server_pid: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("endpoint must be http://host:port, got {0}")]
    Endpoint(String),
    #[error("request failed: {0}")]
    Http(String),
}

/// Every run's measurements of one target.
#[derive(Clone, Default)]
struct Samples {
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    cpu_us: Vec<f64>,
    errors: usize,
}

/// One measured run: requests completed, and each request's latency in microseconds.
struct RunResult {
    requests: usize,
    errors: usize,
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

#[derive(Clone)]
struct Target {
    method: &'static str,
    path: &'static str,
    body: Bytes,
    signed: bool,
    /// Sign with this key and secret instead of the root key.
    key: Option<(String, String)>,
}

impl Target {
    /// A signed JSON POST with the root key.
    fn post(path: &'static str, body: impl ToString) -> Self {
        Target {
            method: "POST",
            path,
            body: Bytes::from(body.to_string()),
            signed: true,
            key: None,
        }
    }
}

/// A user with `policies` × `statements` statements of which only the last allows
/// DescribeStream on `stream`; returns its access key.
async fn policy_bound_user(
    addr: &str,
    args: &ControlArgs,
    stream: &str,
) -> Result<(String, String), Box<dyn std::error::Error>> {
    let user = format!("{stream}-user");
    let call = |action, body| async move {
        let (status, bytes) = one_call(addr, args, &Target::post(action, body)).await?;
        if status != 200 {
            return Err(BenchError::Http(format!(
                "{action}: HTTP {status} {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        Ok::<_, BenchError>(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default())
    };
    call("/admin/CreateUser", serde_json::json!({ "UserName": user })).await?;
    for p in 0..args.policies {
        let statements: Vec<serde_json::Value> = (0..args.statements)
            .map(|s| {
                let last = p + 1 == args.policies && s + 1 == args.statements;
                let target = if last {
                    stream.to_string()
                } else {
                    format!("other-{p}-{s}")
                };
                serde_json::json!({"Effect": "Allow",
                    "Action": ["kinesisvideo:Describe*", "kinesisvideo:PutMedia"],
                    "Resource": format!("arn:aws:kinesisvideo:*:*:stream/{target}/*")})
            })
            .collect();
        let name = format!("{user}-{p}");
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
        call(
            "/admin/CreatePolicy",
            serde_json::json!({"PolicyName": name, "PolicyDocument": doc.to_string()}),
        )
        .await?;
        call(
            "/admin/AttachPolicy",
            serde_json::json!({"PolicyName": name, "UserName": user}),
        )
        .await?;
    }
    let key = call(
        "/admin/CreateAccessKey",
        serde_json::json!({ "UserName": user }),
    )
    .await?;
    let field = |k: &str| key["AccessKey"][k].as_str().unwrap_or_default().to_string();
    Ok((field("AccessKeyId"), field("SecretAccessKey")))
}

pub async fn control(args: ControlArgs) -> Result<(), Box<dyn std::error::Error>> {
    let addr = args
        .target
        .endpoint
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/').to_string())
        .ok_or_else(|| BenchError::Endpoint(args.target.endpoint.clone()))?;
    let stream = format!("bench-{}", std::process::id());
    let named = format!(r#"{{"StreamName":"{stream}"}}"#);
    let (status, _) = one_call(&addr, &args, &Target::post("/createStream", &named)).await?;
    eprintln!("created stream {stream} (HTTP {status})");
    let describe = Target::post("/describeStream", &named);
    let mut targets = vec![
        (
            "GET /health (no auth, baseline)".to_string(),
            Target {
                method: "GET",
                path: "/health",
                body: Bytes::new(),
                signed: false,
                key: None,
            },
        ),
        ("signed DescribeStream (root)".to_string(), describe.clone()),
    ];
    if args.policies > 0 {
        let key = policy_bound_user(&addr, &args, &stream).await?;
        eprintln!(
            "created a user bound by {} policies x {} statements",
            args.policies, args.statements
        );
        targets.push((
            format!(
                "signed DescribeStream (user, {} policies x {} statements)",
                args.policies, args.statements
            ),
            Target {
                key: Some(key),
                ..describe
            },
        ));
    }
    println!(
        "connections={} seconds={} runs={} (medians over runs)",
        args.connections, args.seconds, args.runs
    );
    println!("| target | requests/s | p50 ms | p99 ms | server CPU µs/request | errors |");
    println!("|---|---|---|---|---|---|");
    // Runs are interleaved, and each round starts with another target, so drifts in the
    // machine's speed hit every target alike.
    let mut samples = vec![Samples::default(); targets.len()];
    for round in 0..args.runs {
        for i in 0..targets.len() {
            let i = (i + round) % targets.len();
            let cpu_before = args.server_pid.and_then(super::proc_sample);
            let r = load(&addr, &args, &targets[i].1).await?;
            let cpu_after = args.server_pid.and_then(super::proc_sample);
            let s = &mut samples[i];
            s.rps.push(r.requests as f64 / r.elapsed.as_secs_f64());
            if let (Some(b), Some(a)) = (cpu_before, cpu_after) {
                s.cpu_us.push((a.0 - b.0) * 1e6 / r.requests.max(1) as f64);
            }
            let mut l = r.latencies_us;
            l.sort_unstable();
            s.p50.push(percentile(&l, 0.50));
            s.p99.push(percentile(&l, 0.99));
            s.errors += r.errors;
        }
    }
    let mut medians = Vec::new();
    for ((label, _), s) in targets.iter().zip(samples.iter_mut()) {
        let m = (
            median(&mut s.rps),
            median(&mut s.p50),
            median(&mut s.p99),
            median(&mut s.cpu_us),
        );
        let cpu = if s.cpu_us.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1}", m.3)
        };
        println!(
            "| {label} | {:.0} | {:.2} | {:.2} | {cpu} | {} |",
            m.0,
            m.1 / 1000.0,
            m.2 / 1000.0,
            s.errors
        );
        medians.push(m);
    }
    if let [base, root, ..] = medians[..] {
        println!(
            "signed DescribeStream (root) / baseline: {:.2} of the requests/s, p99 {:.2}x",
            root.0 / base.0,
            root.2 / base.2.max(1.0)
        );
    }
    if let [_, root, user] = medians[..] {
        println!(
            "policy-bound user / root: {:.3} of the requests/s ({:+.1} %), p99 {:.2}x",
            user.0 / root.0,
            (user.0 / root.0 - 1.0) * 100.0,
            user.2 / root.2.max(1.0)
        );
        if root.3 > 0.0 {
            println!(
                "server CPU per request, policy-bound user / root: {:.3} ({:+.1} %)",
                user.3 / root.3,
                (user.3 / root.3 - 1.0) * 100.0
            );
        }
    }
    Ok(())
}

/// Builds the request; signed ones carry a fresh SigV4 header signature (valid 15 minutes,
/// so a connection re-signs well before then rather than per request: the server's cost of
/// verifying is the same either way, and the client's signing cost stays off the measured
/// machine's budget).
fn build(addr: &str, args: &ControlArgs, t: &Target) -> Request<Full<Bytes>> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "host",
        HeaderValue::from_str(addr).unwrap_or(HeaderValue::from_static("localhost")),
    );
    if t.signed {
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let key = t.key.as_ref().map(|(k, s)| (k.as_str(), s.as_str()));
        super::sign_headers(&args.target, key, t.method, t.path, &mut headers, &t.body);
    }
    let mut req = Request::new(Full::new(t.body.clone()));
    *req.method_mut() = t.method.parse().unwrap_or_default();
    *req.uri_mut() = t.path.parse().unwrap_or_default();
    *req.headers_mut() = headers;
    req
}

pub(super) type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

pub(super) async fn connect(addr: &str) -> Result<Sender, BenchError> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| BenchError::Http(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| BenchError::Http(e.to_string()))?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> Result<u16, BenchError> {
    Ok(send_read(sender, req).await?.0)
}

pub(super) async fn send_read(
    sender: &mut Sender,
    req: Request<Full<Bytes>>,
) -> Result<(u16, Bytes), BenchError> {
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| BenchError::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| BenchError::Http(e.to_string()))?
        .to_bytes();
    Ok((status, body))
}

/// One request on its own connection: status and body.
async fn one_call(addr: &str, args: &ControlArgs, t: &Target) -> Result<(u16, Bytes), BenchError> {
    let mut sender = connect(addr).await?;
    send_read(&mut sender, build(addr, args, t)).await
}

async fn load(addr: &str, args: &ControlArgs, t: &Target) -> Result<RunResult, BenchError> {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let mut sender = connect(addr).await?;
        let template = build(addr, args, t);
        let (parts, body) = template.into_parts();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let mut req = Request::new(body.clone());
                *req.method_mut() = parts.method.clone();
                *req.uri_mut() = parts.uri.clone();
                *req.headers_mut() = parts.headers.clone();
                let t0 = Instant::now();
                match send(&mut sender, req).await {
                    Ok(200) => latencies.push(t0.elapsed().as_micros() as u64),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut result = RunResult {
        requests: 0,
        errors: 0,
        latencies_us: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        if let Ok((lat, err)) = task.await {
            result.requests += lat.len();
            result.errors += err;
            result.latencies_us.extend(lat);
        }
    }
    result.elapsed = started.elapsed();
    Ok(result)
}
