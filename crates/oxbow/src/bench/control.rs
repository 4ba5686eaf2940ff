//! `oxbow bench control`: signed DescribeStream over many keep-alive connections against
//! unauthenticated `GET /health` on the same server as the baseline.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;

use super::{median, percentile};
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use oxbow_auth::SigningParams;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

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
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("endpoint must be http://host:port, got {0}")]
    Endpoint(String),
    #[error("request failed: {0}")]
    Http(String),
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
}

pub async fn control(args: ControlArgs) -> Result<(), Box<dyn std::error::Error>> {
    let addr = args
        .target
        .endpoint
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/').to_string())
        .ok_or_else(|| BenchError::Endpoint(args.target.endpoint.clone()))?;
    let stream = format!("bench-{}", std::process::id());
    let create = Target {
        method: "POST",
        path: "/createStream",
        body: Bytes::from(format!(r#"{{"StreamName":"{stream}"}}"#)),
        signed: true,
    };
    let status = one_request(&addr, &args, &create).await?;
    eprintln!("created stream {stream} (HTTP {status})");
    let targets = [
        (
            "GET /health (no auth, baseline)",
            Target {
                method: "GET",
                path: "/health",
                body: Bytes::new(),
                signed: false,
            },
        ),
        (
            "signed DescribeStream",
            Target {
                method: "POST",
                path: "/describeStream",
                body: Bytes::from(format!(r#"{{"StreamName":"{stream}"}}"#)),
                signed: true,
            },
        ),
    ];
    println!(
        "connections={} seconds={} runs={} (medians over runs)",
        args.connections, args.seconds, args.runs
    );
    println!("| target | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|");
    let mut medians = Vec::new();
    for (label, target) in &targets {
        let mut rps = Vec::new();
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        let mut errors = 0;
        for _ in 0..args.runs {
            let r = load(&addr, &args, target).await?;
            let secs = r.elapsed.as_secs_f64();
            rps.push(r.requests as f64 / secs);
            let mut l = r.latencies_us;
            l.sort_unstable();
            p50.push(percentile(&l, 0.50));
            p99.push(percentile(&l, 0.99));
            errors += r.errors;
        }
        let m = (median(&mut rps), median(&mut p50), median(&mut p99));
        println!(
            "| {label} | {:.0} | {:.2} | {:.2} | {errors} |",
            m.0,
            m.1 / 1000.0,
            m.2 / 1000.0
        );
        medians.push(m);
    }
    if let [base, signed] = medians[..] {
        println!(
            "signed DescribeStream / baseline: {:.2} of the requests/s, p99 {:.2}x",
            signed.0 / base.0,
            signed.2 / base.2.max(1.0)
        );
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
        let hash = hex::encode(Sha256::digest(&t.body));
        let p = SigningParams {
            access_key_id: &args.target.access_key_id,
            secret_access_key: &args.target.secret_access_key,
            security_token: None,
            region: &args.target.region,
            service: "kinesisvideo",
            time: OffsetDateTime::now_utc(),
        };
        for (k, v) in oxbow_auth::sign(t.method, t.path, None, &headers, &hash, &p) {
            if let Ok(v) = HeaderValue::from_str(&v) {
                headers.insert(k, v);
            }
        }
    }
    let mut req = Request::new(Full::new(t.body.clone()));
    *req.method_mut() = t.method.parse().unwrap_or_default();
    *req.uri_mut() = t.path.parse().unwrap_or_default();
    *req.headers_mut() = headers;
    req
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> Result<Sender, BenchError> {
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
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| BenchError::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    resp.into_body()
        .collect()
        .await
        .map_err(|e| BenchError::Http(e.to_string()))?;
    Ok(status)
}

async fn one_request(addr: &str, args: &ControlArgs, t: &Target) -> Result<u16, BenchError> {
    let mut sender = connect(addr).await?;
    send(&mut sender, build(addr, args, t)).await
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
