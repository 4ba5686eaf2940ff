//! `oxbow bench signaling`: many WebSocket signaling connections held open (one master and
//! several viewers per channel, presigned as the SDKs presign), the server's memory per idle
//! connection against its memory before they opened, then offer relay latency (viewer →
//! server → master, measured on one clock) while they are all held.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::Full;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::control::{connect as http_connect, send_read, BenchError};
use super::{percentile, proc_sample, Target};

#[derive(Args)]
pub struct SignalingArgs {
    #[command(flatten)]
    pub target: Target,
    /// Signaling channels, each with one master.
    #[arg(long, default_value_t = 1000)]
    pub channels: usize,
    /// Viewers per channel (the server's --signaling-max-viewers must allow them).
    #[arg(long, default_value_t = 9)]
    pub viewers: usize,
    /// Offers relayed for the latency figures, spread over the viewers.
    #[arg(long, default_value_t = 5000)]
    pub offers: usize,
    /// Offers sent per second in total while measuring.
    #[arg(long, default_value_t = 1000)]
    pub rate: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 200)]
    pub concurrency: usize,
    /// The server's pid, for its memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

pub(super) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn create_channel(addr: &str, t: &Target, name: &str) -> Result<String, BenchError> {
    let body = format!(r#"{{"ChannelName":"{name}"}}"#);
    let mut headers = HeaderMap::new();
    headers.insert(
        "host",
        HeaderValue::from_str(addr).map_err(|e| BenchError::Http(e.to_string()))?,
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    super::sign_headers(
        t,
        None,
        "POST",
        "/createSignalingChannel",
        &mut headers,
        body.as_bytes(),
    );
    let mut req = Request::new(Full::new(Bytes::from(body)));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = "/createSignalingChannel".parse().unwrap_or_default();
    *req.headers_mut() = headers;
    let mut sender = http_connect(addr).await?;
    let (status, body) = send_read(&mut sender, req).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| BenchError::Http(e.to_string()))?;
    v["ChannelARN"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| BenchError::Http(format!("CreateSignalingChannel: HTTP {status}")))
}

pub(super) async fn open(
    addr: &str,
    t: &Target,
    arn: &str,
    client: Option<&str>,
) -> Result<Ws, String> {
    let mut params = vec![("X-Amz-ChannelARN", arn)];
    if let Some(c) = client {
        params.push(("X-Amz-ClientId", c));
    }
    let p = oxbow_auth::SigningParams {
        access_key_id: &t.access_key_id,
        secret_access_key: &t.secret_access_key,
        security_token: None,
        region: &t.region,
        service: "kinesisvideo",
        time: time::OffsetDateTime::now_utc(),
    };
    let query = oxbow_auth::presign("GET", addr, "/", &params, 299, &p);
    let req = format!("ws://{addr}/?{query}")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

pub async fn signaling(args: SignalingArgs) -> Result<(), Box<dyn std::error::Error>> {
    let t = &args.target;
    let addr = t
        .endpoint
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/').to_string())
        .ok_or_else(|| BenchError::Endpoint(t.endpoint.clone()))?;
    println!(
        "# {} {} cores",
        time::OffsetDateTime::now_utc(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut arns = Vec::with_capacity(args.channels);
    for i in 0..args.channels {
        arns.push(create_channel(&addr, t, &format!("bench-{}-{i}", std::process::id())).await?);
    }
    let rss = |pid: Option<u32>| pid.and_then(proc_sample).map_or(0, |(_, r)| r);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss(args.server_pid);

    // Open every connection, masters first, a bounded number at a time.
    let started = Instant::now();
    let clock = Instant::now();
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let gate = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut masters = Vec::new();
    let mut failures = 0usize;
    for arn in &arns {
        let permit = gate.clone().acquire_owned().await?;
        let (addr, t2, arn) = (addr.clone(), t.clone_target(), arn.clone());
        masters.push(tokio::spawn(async move {
            let ws = open(&addr, &t2, &arn, None).await;
            drop(permit);
            ws
        }));
    }
    let mut master_tasks = Vec::new();
    for m in masters {
        match m.await? {
            Ok(ws) => {
                let lat = Arc::clone(&latencies);
                master_tasks.push(tokio::spawn(read_offers(ws, clock, lat)));
            }
            Err(e) => {
                failures += 1;
                if failures < 5 {
                    eprintln!("master: {e}");
                }
            }
        }
    }
    let mut viewer_opens = Vec::new();
    for (c, arn) in arns.iter().enumerate() {
        for v in 0..args.viewers {
            let permit = gate.clone().acquire_owned().await?;
            let (addr, t2, arn) = (addr.clone(), t.clone_target(), arn.clone());
            viewer_opens.push(tokio::spawn(async move {
                let ws = open(&addr, &t2, &arn, Some(&format!("v{c}-{v}"))).await;
                drop(permit);
                ws
            }));
        }
    }
    let mut viewers = Vec::new();
    for v in viewer_opens {
        match v.await? {
            Ok(ws) => viewers.push(ws),
            Err(e) => {
                failures += 1;
                if failures < 5 {
                    eprintln!("viewer: {e}");
                }
            }
        }
    }
    let held = master_tasks.len() + viewers.len();
    let open_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_held = rss(args.server_pid);
    let cpu_before = args
        .server_pid
        .and_then(proc_sample)
        .map_or(0.0, |(c, _)| c);

    // Relay latency: offers at a steady total rate, round-robin over the viewers (each stays
    // well under its 5 offers per second).
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let measure = Instant::now();
    let n = viewers.len().max(1);
    for i in 0..args.offers {
        let due = measure + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let sent = clock.elapsed().as_micros() as u64;
        let text = format!(r#"{{"action":"SDP_OFFER","messagePayload":"{sent}"}}"#);
        if let Some(ws) = viewers.get_mut(i % n) {
            let _ = ws.send(Message::text(text)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu_after = args
        .server_pid
        .and_then(proc_sample)
        .map_or(0.0, |(c, _)| c);
    let measured = measure.elapsed().as_secs_f64();
    let mut lat = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort_unstable();
    println!(
        "channels={} viewers/channel={} offers={} rate={}/s",
        args.channels, args.viewers, args.offers, args.rate
    );
    println!("connections held: {held} ({failures} failed to open) in {open_secs:.1} s");
    if args.server_pid.is_some() {
        let per = rss_held.saturating_sub(rss_before) as f64 / held.max(1) as f64;
        println!(
            "server RSS: {:.1} MB before -> {:.1} MB held ({:.1} KB per connection)",
            rss_before as f64 / 1e6,
            rss_held as f64 / 1e6,
            per / 1024.0
        );
        println!(
            "server CPU while relaying: {:.1}% of one core",
            (cpu_after - cpu_before) / measured * 100.0
        );
    }
    println!(
        "offer relay latency (viewer -> master): p50 {:.2} ms, p99 {:.2} ms ({} of {} delivered)",
        percentile(&lat, 0.5) / 1000.0,
        percentile(&lat, 0.99) / 1000.0,
        lat.len(),
        args.offers
    );
    for t in master_tasks {
        t.abort();
    }
    Ok(())
}

/// Records, for each offer a master receives, the microseconds since it was sent.
async fn read_offers(mut ws: Ws, clock: Instant, latencies: Arc<Mutex<Vec<u64>>>) {
    while let Some(Ok(frame)) = ws.next().await {
        let Message::Text(t) = frame else { continue };
        let now = clock.elapsed().as_micros() as u64;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) else {
            continue;
        };
        if let Some(sent) = v["messagePayload"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok())
        {
            if let Ok(mut l) = latencies.lock() {
                l.push(now.saturating_sub(sent));
            }
        }
    }
}
