//! `oxbow bench stall`: what clients that stop cost the server. A backlog of large
//! fragments is written first; then GetMedia readers that never read their response and
//! PutMedia producers that send half a fragment and then nothing (and read no acks) are held
//! open; the server's RSS is sampled before, while they are open, and after they leave.
//! Each round starts from the state the previous one left, so a leak shows as growth.

use std::time::{Duration, Instant};

use clap::Args;
use http::{HeaderMap, HeaderValue};
use oxbow_mkv::{ids, write};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{median, proc_sample};

#[derive(Args)]
pub struct StallArgs {
    #[command(flatten)]
    target: super::Target,
    /// The server's process id (its RSS is what is measured).
    #[arg(long)]
    server_pid: u32,
    /// GetMedia readers that never read.
    #[arg(long, default_value_t = 200)]
    readers: usize,
    /// PutMedia producers that stall mid-fragment.
    #[arg(long, default_value_t = 200)]
    producers: usize,
    /// Streams holding the backlog the readers are pointed at.
    #[arg(long, default_value_t = 20)]
    streams: usize,
    /// Fragments of backlog per stream.
    #[arg(long, default_value_t = 10)]
    fragments: usize,
    /// Size of each backlog fragment.
    #[arg(long, default_value_t = 1_000_000)]
    fragment_bytes: usize,
    /// How long the stalled clients are held open.
    #[arg(long, default_value_t = 30)]
    hold_seconds: u64,
    /// How long after they leave RSS is sampled again.
    #[arg(long, default_value_t = 15)]
    settle_seconds: u64,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

fn rss_mb(pid: u32) -> f64 {
    proc_sample(pid).map_or(0.0, |(_, rss)| rss as f64 / 1e6)
}

/// A stream header and `n` fragments of about `bytes` each, one video frame apiece.
fn backlog(n: usize, bytes: usize) -> Vec<u8> {
    let mut out = header();
    let start = OffsetDateTime::now_utc().unix_timestamp() as u64 * 1000 - 3_600_000;
    for i in 0..n {
        out.extend(write::unknown_size(ids::CLUSTER));
        out.extend(write::uint(ids::TIMECODE, start + i as u64 * 2000));
        let payload: Vec<u8> = (0..bytes).map(|j| (j * 7 + i) as u8).collect();
        out.extend(write::simple_block(1, 0, true, &payload));
    }
    out
}

fn header() -> Vec<u8> {
    let mut h = write::ebml_header();
    h.extend(write::unknown_size(ids::SEGMENT));
    h.extend(write::info(1_000_000, "oxbow bench stall"));
    h.extend(write::tracks(&[(1, 1, "V_MPEG4/ISO/AVC", &[1, 2, 3])]));
    h
}

/// A signed request head for `path` with `extra` headers; `body` is what is signed.
fn head(
    args: &StallArgs,
    addr: &str,
    path: &str,
    extra: &[(&'static str, String)],
    body: &[u8],
    body_framing: &str,
) -> Vec<u8> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "host",
        HeaderValue::from_str(addr).unwrap_or(HeaderValue::from_static("localhost")),
    );
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(*k, v);
        }
    }
    super::sign_headers(&args.target, None, "POST", path, &mut headers, body);
    let mut text = format!("POST {path} HTTP/1.1\r\n{body_framing}\r\n");
    for (k, v) in headers.iter() {
        text.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap_or("")));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

async fn stalled_reader(args: &StallArgs, addr: &str, stream: &str) -> Option<TcpStream> {
    let body = format!(
        r#"{{"StreamName":"{stream}","StartSelector":{{"StartSelectorType":"EARLIEST"}}}}"#
    );
    let extra = [("content-type", "application/json".to_string())];
    let framing = format!("content-length: {}", body.len());
    let mut req = head(args, addr, "/getMedia", &extra, body.as_bytes(), &framing);
    req.extend_from_slice(body.as_bytes());
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(&req).await.ok()?;
    Some(s)
}

async fn stalled_producer(args: &StallArgs, addr: &str, stream: &str) -> Option<TcpStream> {
    let extra = [
        ("x-amzn-stream-name", stream.to_string()),
        ("x-amzn-fragment-timecode-type", "RELATIVE".to_string()),
    ];
    let mut req = head(
        args,
        addr,
        "/putMedia",
        &extra,
        b"",
        "transfer-encoding: chunked",
    );
    // The header and the first half of a 200 KB frame, then nothing.
    let mut first = header();
    first.extend(write::unknown_size(ids::CLUSTER));
    first.extend(write::uint(ids::TIMECODE, 0));
    let frame = write::simple_block(1, 0, true, &vec![5u8; 200_000]);
    first.extend_from_slice(&frame[..frame.len() / 2]);
    req.extend(format!("{:x}\r\n", first.len()).into_bytes());
    req.extend(first);
    req.extend(b"\r\n");
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(&req).await.ok()?;
    Some(s)
}

pub async fn stall(args: StallArgs) -> Result<(), Box<dyn std::error::Error>> {
    let addr = args
        .target
        .endpoint
        .trim_start_matches("http://")
        .to_string();
    let client = args.target.client()?;
    let pid = args.server_pid;
    let started = Instant::now();
    for i in 0..args.streams {
        let name = format!("stall-backlog-{i}");
        client.ensure_stream(&name, 1).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let body = backlog(args.fragments, args.fragment_bytes);
        tokio::spawn(async move {
            for piece in body.chunks(1 << 20) {
                if tx.send(bytes::Bytes::copy_from_slice(piece)).await.is_err() {
                    return;
                }
            }
        });
        client.put_media_raw(&name, "ABSOLUTE", rx).await?;
        client
            .ensure_stream(&format!("stall-producer-{i}"), 1)
            .await?;
    }
    println!(
        "backlog: {} streams x {} fragments of {} bytes in {:.1} s",
        args.streams,
        args.fragments,
        args.fragment_bytes,
        started.elapsed().as_secs_f64()
    );
    // The starting point is the server at rest after the backlog, as the end of each round is.
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let first_before = rss_mb(pid);
    println!(
        "round  rss_before_MB  rss_held_MB  held-first_MB  held_KB_per_client  rss_after_MB  after/first_before"
    );
    let (mut held_per, mut returned) = (Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let before = rss_mb(pid);
        let mut sockets = Vec::new();
        for i in 0..args.readers {
            let stream = format!("stall-backlog-{}", i % args.streams);
            sockets.extend(stalled_reader(&args, &addr, &stream).await);
        }
        for i in 0..args.producers {
            let stream = format!("stall-producer-{}", i % args.streams);
            sockets.extend(stalled_producer(&args, &addr, &stream).await);
        }
        let clients = sockets.len();
        let mut held = 0.0f64;
        let until = Instant::now() + Duration::from_secs(args.hold_seconds);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(500)).await;
            held = held.max(rss_mb(pid));
        }
        drop(sockets);
        tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
        let after = rss_mb(pid);
        let over_first = held - first_before;
        let per = over_first.max(0.0) * 1000.0 / clients.max(1) as f64;
        println!(
            "{round:>5}  {before:>13.1}  {held:>11.1}  {over_first:>13.1}  {per:>18.1}  {after:>12.1}  {:>18.3}",
            after / first_before
        );
        held_per.push(over_first);
        returned.push(after / first_before);
    }
    println!(
        "median: {} readers + {} producers held {:.1} MB over the first start; RSS after they left {:.3} x the first start",
        args.readers,
        args.producers,
        median(&mut held_per),
        median(&mut returned)
    );
    Ok(())
}
