//! PutMedia: a long-lived chunked POST carrying one MKV segment. The 200 and the
//! acknowledgement stream go out at once and flow while the body is still arriving; a session
//! task parses the body, cuts it into fragments (one per Cluster), stores them, and acks each
//! one as KVS does: BUFFERING at its first byte, RECEIVED when complete, PERSISTED once
//! durable (streams with retention), ERROR with the KVS ErrorId, IDLE while nothing arrives.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use oxbow_catalog::StreamRecord;
use oxbow_core::time::now_ms;
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::ApiError;
use oxbow_store::{StoreError, StreamLog};
use tokio::sync::{mpsc, oneshot, watch};

use super::ingest::{End, Ingest, IngestLimits, Input, Now, Output, StoreCall, StreamFacts};
use super::FragmentNumber;
use super::{throttle, ChannelBody};
use crate::config::Limits;
use crate::deadline::sleep_until;
use crate::http::{boxed, discard_rest, Body, REFUSED_BODY_LINGER};
use crate::resource::media_key;
use crate::resource::{lookup, Need, StreamRef};
use crate::state::AppState;

/// The request's headers, validated.
struct PutRequest {
    stream: StreamRef,
    relative: bool,
    producer_start_ms: Option<i64>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

impl PutRequest {
    fn from_headers(h: &HeaderMap) -> Result<Self, ApiError> {
        let name = header(h, "x-amzn-stream-name");
        let arn = header(h, "x-amzn-stream-arn");
        let kind = header(h, "x-amzn-fragment-timecode-type");
        let start = header(h, "x-amzn-producer-start-timestamp");
        Checks::new()
            .required("x-amzn-fragment-timecode-type", kind)
            .one_of(
                "x-amzn-fragment-timecode-type",
                kind,
                &["ABSOLUTE", "RELATIVE"],
            )
            .string("x-amzn-stream-name", name, &v::STREAM_NAME)
            .string("x-amzn-stream-arn", arn, &v::RESOURCE_ARN)
            .finish()?;
        if name.is_some() && arn.is_some() {
            return Err(ApiError::invalid_argument(
                "Specify either x-amzn-stream-name or x-amzn-stream-arn, not both.",
            ));
        }
        let producer_start_ms = match start {
            None | Some("") => None,
            Some(s) => Some(parse_start_timestamp(s).ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "x-amzn-producer-start-timestamp '{s}' is not a timestamp."
                ))
            })?),
        };
        Ok(Self {
            stream: StreamRef {
                name: name.map(str::to_string),
                arn: arn.map(str::to_string),
            },
            relative: kind == Some("RELATIVE"),
            producer_start_ms,
        })
    }
}

/// `secs.frac` as the KVS producer SDK writes it: the fraction is the milliseconds printed
/// without padding (`1700000000.5` is 5 ms past the second), so up to three digits are read
/// as a millisecond count; a longer fraction is read as a decimal fraction.
pub fn parse_start_timestamp(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms = match frac.len() {
        0 => 0,
        1..=3 => frac.parse::<i64>().ok()?,
        _ => frac[..3].parse::<i64>().ok()?,
    };
    secs.checked_mul(1000)?.checked_add(ms)
}

/// Starts a PutMedia session; returns the 200 whose body is the ack stream.
pub async fn put_media(
    state: Arc<AppState>,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response<Body>, ApiError> {
    let req = PutRequest::from_headers(headers)?;
    let target = req.stream.resolve(&state, &mut Checks::new())?;
    let stream: StreamRecord = lookup::get(&state, &target, Need::Active).await?;
    let (acks, out) = ChannelBody::new(ACK_QUEUE);
    let name = stream.name.clone();
    start_ingest(
        &state,
        stream,
        Session {
            relative: req.relative,
            producer_start_ms: req.producer_start_ms,
            acks,
        },
        body,
        tracing::info_span!("put_media", stream = %name),
    )
    .await?;
    let mut response = Response::new(boxed(out));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    // When the session ends (idle, too long, an error, shutdown) the connection ends with
    // it, even though the producer's body is unfinished: that is how its SDK learns to
    // reconnect at once rather than through its own low-speed timeout.
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    Ok(response)
}

/// How an ingest session's body is read, and where its acks go.
pub(crate) struct Session {
    /// Cluster timecodes are relative to the producer start timestamp.
    pub relative: bool,
    pub producer_start_ms: Option<i64>,
    pub acks: mpsc::Sender<Bytes>,
}

/// Runs the PutMedia rules over `body` (MKV) into `stream`, on a task of its own: numbering,
/// durability, live readers and fragment events exactly as for PutMedia, whoever produces the
/// bytes (a producer's request body, or a WebRTC storage session's recorder).
pub(crate) async fn start_ingest<B>(
    state: &Arc<AppState>,
    stream: StreamRecord,
    session: Session,
    body: B,
    span: tracing::Span,
) -> Result<(), ApiError>
where
    B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Display + Send,
{
    super::check_rate(state, &media_key(&stream), "PutMedia")?;
    if let Some(leases) = &state.leases {
        match leases
            .claim(
                state.catalog.as_ref(),
                &crate::leases::stream_key(&stream.name),
            )
            .await?
        {
            crate::leases::Claim::Theirs { url } => return Err(crate::leases::not_here(&url)),
            // Taken over: what another node wrote since this one last looked is in the
            // bucket, not in this node's view of the stream.
            crate::leases::Claim::Mine { fresh: true, .. } => {
                state.store.forget(&media_key(&stream));
            }
            crate::leases::Claim::Mine { .. } => {}
        }
    }
    let log = super::open_log(&state.store, &media_key(&stream)).await?;
    // Tagged fragments (notifications, image generation) are followed beside the session.
    let creation_ms = stream.creation_ms;
    state.fragment_events.watch(&stream, &log, move |seq| {
        FragmentNumber::new(creation_ms, seq).to_string()
    });
    let limits = &state.config.limits;
    let ingest = Ingest::new(
        ingest_limits(limits),
        Now::current(),
        stream.creation_ms,
        session.relative,
        session.producer_start_ms,
        log.latest_header(),
    );
    let driver = Driver {
        epoch: log.claim_writer(),
        log,
        acks: session.acks,
        ack_timeout: Duration::from_millis(limits.write_stall_timeout_ms),
        max_bytes_per_sec: limits.put_max_bytes_per_sec,
        draining: state.draining.subscribe(),
        owns: ownership(Arc::clone(state), &stream.name),
        check: stream_check(Arc::clone(state), stream),
    };
    tokio::spawn(tracing::Instrument::instrument(
        driver.run(ingest, body),
        span,
    ));
    Ok(())
}

/// Acks queued for a producer that is slow to read them; past this the session waits (and
/// reads no more body), and past the write-stall timeout it ends.
const ACK_QUEUE: usize = 256;

fn ingest_limits(l: &Limits) -> IngestLimits {
    IngestLimits {
        max_fragment_bytes: l.put_max_fragment_bytes,
        max_fragment_duration_ms: l.put_max_fragment_duration_ms,
        max_tracks: l.put_max_tracks,
        max_fragment_tags: l.put_max_fragment_tags,
        max_connection: Duration::from_millis(l.put_max_connection_ms),
        idle_close: Duration::from_millis(l.put_idle_close_ms),
        idle_ack: Duration::from_millis(l.put_idle_ack_ms),
        max_future_ms: l.put_max_future_ms,
        max_pending_bytes: l.put_max_pending_bytes,
    }
}

impl Now {
    pub fn current() -> Self {
        Self {
            at: Instant::now(),
            wall_ms: now_ms(),
        }
    }
}

/// Whether this node owns the stream now (always, outside a cluster).
fn ownership(state: Arc<AppState>, name: &str) -> Box<dyn Fn() -> bool + Send + Sync> {
    let name = name.to_string();
    Box::new(move || state.owns_stream(&name))
}

/// Re-reads the stream from the catalog at each fragment: it must still exist, be the same
/// incarnation and not be deleting; its retention decides whether fragments persist.
fn stream_check(
    state: Arc<AppState>,
    stream: StreamRecord,
) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = Option<StreamFacts>> + Send>> {
    move || {
        let state = Arc::clone(&state);
        let target = lookup::Target {
            name: stream.name.clone(),
            arn: Some(stream.arn.clone()),
        };
        Box::pin(async move {
            // In a cluster, a node numbers a fragment only while it owns the stream.
            if let Some(leases) = &state.leases {
                let key = crate::leases::stream_key(&target.name);
                if !leases.holds(&key) {
                    tracing::warn!(stream = %target.name, "ownership lost; the session ends");
                    return None;
                }
                leases.touch(&key);
            }
            lookup::get::<StreamRecord>(&state, &target, Need::Live)
                .await
                .ok()
                .map(|s| StreamFacts {
                    persist: s.retention_hours > 0,
                })
        })
    }
}

/// Runs an [`Ingest`] over a request body, the stream's log and the ack channel.
pub(crate) struct Driver<C> {
    pub log: Arc<StreamLog>,
    pub epoch: u64,
    pub acks: mpsc::Sender<Bytes>,
    pub ack_timeout: Duration,
    pub max_bytes_per_sec: u64,
    pub draining: watch::Receiver<bool>,
    pub check: C,
    /// Whether this node may still acknowledge PERSISTED: in a cluster, only while it owns
    /// the stream, so no fragment is acknowledged after another node took the stream over
    /// (a write that lands later gets an error ack; the producer resends it to the owner).
    pub owns: Box<dyn Fn() -> bool + Send + Sync>,
}

type DurableWait = (u64, oneshot::Receiver<Result<(), StoreError>>);

impl<C, F> Driver<C>
where
    C: FnMut() -> F,
    F: Future<Output = Option<StreamFacts>>,
{
    pub async fn run<B>(mut self, mut ingest: Ingest, mut body: B)
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let started = Instant::now();
        let mut received = 0u64;
        let mut durable: VecDeque<DurableWait> = VecDeque::new();
        let mut refused = false;
        let mut acks_open = true;
        let mut shutdown_seen = false;
        loop {
            while let Some(out) = ingest.poll_output() {
                match out {
                    Output::Ack(ack) if acks_open => {
                        if let Err(why) = self.send_ack(ack.line()).await {
                            // Never a silent drop: the producer that cannot take its acks
                            // loses the connection, and resends what it did not see acked.
                            tracing::warn!(
                                why,
                                "PutMedia: acks cannot be delivered; ending the session"
                            );
                            acks_open = false;
                            ingest.handle_input(Now::current(), Input::BodyError);
                        }
                    }
                    Output::Ack(_) => {}
                    Output::Store(call) => self.execute(call, &mut ingest, &mut durable).await,
                    Output::End(end) => refused |= end == End::Refused,
                }
            }
            if ingest.is_done() {
                break;
            }
            let wants_body = ingest.wants_body();
            let deadline = ingest.poll_timeout();
            tokio::select! {
                biased;
                result = async { (&mut durable.front_mut().expect("checked").1).await }, if !durable.is_empty() => {
                    let (seq, _) = durable.pop_front().expect("checked");
                    let mut ok = matches!(result, Ok(Ok(())));
                    if let Ok(Err(e)) = &result {
                        tracing::error!(seq, error = %e, "fragment not persisted");
                    }
                    if ok && !(self.owns)() {
                        tracing::warn!(seq, "ownership lost before the fragment was stored; not acknowledged PERSISTED");
                        ok = false;
                    }
                    ingest.handle_input(Now::current(), Input::Durable { seq, ok });
                }
                // (the guard `wait_for` returns must not live across the other arms' awaits)
                _ = async { drop(self.draining.wait_for(|d| *d).await) }, if !shutdown_seen => {
                    shutdown_seen = true;
                    ingest.handle_input(Now::current(), Input::Shutdown);
                }
                frame = body.frame(), if wants_body => {
                    let input = match frame {
                        None => Input::BodyEnd,
                        Some(Err(e)) => {
                            tracing::info!(error = %e, "PutMedia body ended abruptly");
                            Input::BodyError
                        }
                        Some(Ok(frame)) => match frame.into_data() {
                            Err(_) => continue,
                            Ok(_) if self.log.is_closed() => Input::StreamGone,
                            Ok(_) if !self.log.is_writer(self.epoch) => Input::Superseded,
                            Ok(data) => {
                                received += data.len() as u64;
                                throttle(received, started, self.max_bytes_per_sec).await;
                                Input::Bytes(data)
                            }
                        },
                    };
                    ingest.handle_input(Now::current(), input);
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    ingest.handle_timeout(Now::current());
                }
            }
        }
        if refused {
            discard_rest(&mut body, REFUSED_BODY_LINGER, u64::MAX).await;
        }
    }

    async fn send_ack(&self, line: Bytes) -> Result<(), &'static str> {
        match tokio::time::timeout(self.ack_timeout, self.acks.send(line)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err("the connection is gone"),
            Err(_) => Err("the producer stopped reading acks"),
        }
    }

    /// Carries out one store call and answers the machine's question, if it asked one.
    /// Numbering (which may write a lease) and completing (which may start a segment file)
    /// run on a blocking thread.
    async fn execute(
        &mut self,
        call: StoreCall,
        ingest: &mut Ingest,
        durable: &mut VecDeque<DurableWait>,
    ) {
        let answer = match call {
            StoreCall::Declare(header) => Some(Input::HeaderId(self.log.set_header(header))),
            StoreCall::CheckStream => Some(Input::StreamChecked((self.check)().await)),
            StoreCall::Begin {
                header_id,
                producer_ts_ms,
                server_ts_ms,
                timecode,
            } => {
                let log = Arc::clone(&self.log);
                let numbered = tokio::task::spawn_blocking(move || {
                    log.begin(header_id, producer_ts_ms, server_ts_ms, timecode)
                })
                .await
                .map_err(|_| StoreError::Closed)
                .and_then(|r| r);
                if let Err(e) = &numbered {
                    tracing::error!(error = %e, "cannot number a fragment");
                }
                Some(Input::Numbered(numbered.map_err(|_| ())))
            }
            StoreCall::Frame { seq, element } => {
                self.log.frame(seq, element);
                None
            }
            StoreCall::Abandon { seq } => {
                self.log.abandon(seq);
                None
            }
            StoreCall::Complete { fragment, persist } => {
                let (seq, log) = (fragment.seq, Arc::clone(&self.log));
                let done =
                    tokio::task::spawn_blocking(move || log.complete(fragment, persist)).await;
                match done {
                    Ok(rx) if persist => durable.push_back((seq, rx)),
                    Ok(_) => {}
                    Err(_) => {
                        if persist {
                            let (tx, rx) = oneshot::channel();
                            let _ = tx.send(Err(StoreError::Closed));
                            durable.push_back((seq, rx));
                        }
                    }
                }
                None
            }
        };
        if let Some(input) = answer {
            ingest.handle_input(Now::current(), input);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_start_timestamps() {
        assert_eq!(
            parse_start_timestamp("1795288820.755"),
            Some(1_795_288_820_755)
        );
        assert_eq!(
            parse_start_timestamp("1700000000.5"),
            Some(1_700_000_000_005)
        );
        assert_eq!(parse_start_timestamp("1700000000"), Some(1_700_000_000_000));
        assert_eq!(
            parse_start_timestamp("1700000000.123456"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_start_timestamp("0"), Some(0));
        assert_eq!(parse_start_timestamp("abc"), None);
        assert_eq!(parse_start_timestamp("1.-5"), None);
    }

    /// A disk whose every fdatasync takes 30 ms: durability lags far behind the producer.
    struct SlowDisk;

    impl oxbow_store::Disk for SlowDisk {
        fn write_at(
            &self,
            p: &std::path::Path,
            f: &std::fs::File,
            b: &[u8],
            o: u64,
        ) -> std::io::Result<()> {
            oxbow_store::RealDisk.write_at(p, f, b, o)
        }
        fn sync_data(&self, p: &std::path::Path, f: &std::fs::File) -> std::io::Result<()> {
            std::thread::sleep(Duration::from_millis(30));
            oxbow_store::RealDisk.sync_data(p, f)
        }
        fn sync_dir(&self, d: &std::path::Path) -> std::io::Result<()> {
            oxbow_store::RealDisk.sync_dir(d)
        }
        fn available_bytes(&self, d: &std::path::Path) -> std::io::Result<u64> {
            oxbow_store::RealDisk.available_bytes(d)
        }
    }

    /// Runs the real driver over a real store on a slow disk, with a producer that sends
    /// 30 fragments of ~100 KB as fast as it is let; returns the acks and the most bytes of
    /// completed fragments that were ever waiting for the disk.
    async fn slow_disk_session(
        max_pending_bytes: usize,
        owns: Box<dyn Fn() -> bool + Send + Sync>,
    ) -> (Vec<String>, usize) {
        use oxbow_mkv::{ids, write};
        let dir = std::env::temp_dir().join(format!(
            "oxbow-put-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let store = oxbow_store::Store::open_on(
            &dir,
            oxbow_store::StoreConfig::default(),
            Arc::new(SlowDisk),
        )
        .unwrap();
        let log = store.stream("s-1").unwrap();
        let mut limits = crate::config::Limits::for_region("us-east-1");
        limits.put_max_pending_bytes = max_pending_bytes;
        limits.put_max_fragment_bytes = 1 << 20;
        let now = Now::current();
        let ingest = Ingest::new(ingest_limits(&limits), now, 1, false, None, None);
        let (acks, mut ack_rx) = mpsc::channel(ACK_QUEUE);
        let (_drain_tx, draining) = watch::channel(false);
        let driver = Driver {
            epoch: log.claim_writer(),
            log: Arc::clone(&log),
            acks,
            ack_timeout: Duration::from_secs(20),
            max_bytes_per_sec: 0,
            draining,
            check: || async { Some(StreamFacts { persist: true }) },
            owns,
        };
        let (body_tx, body) = ChannelBody::new(1);
        let session = tokio::spawn(driver.run(ingest, body));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (watcher_log, watcher_most) = (Arc::clone(&log), Arc::clone(&most));
        let watcher = tokio::spawn(async move {
            loop {
                let waiting: u64 = watcher_log
                    .fragments()
                    .iter()
                    .filter(|f| !f.persisted)
                    .map(|f| f.size)
                    .sum();
                watcher_most.fetch_max(waiting as usize, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let producer = tokio::spawn(async move {
            let mut head = write::ebml_header();
            head.extend(write::unknown_size(ids::SEGMENT));
            head.extend(write::info(1_000_000, "t"));
            head.extend(write::tracks(&[(1, 1, "V_MPEG4/ISO/AVC", &[1])]));
            body_tx.send(Bytes::from(head)).await.unwrap();
            let t0 = now.wall_ms as u64 - 100_000;
            for i in 0..30u64 {
                let mut c = write::unknown_size(ids::CLUSTER);
                c.extend(write::uint(ids::TIMECODE, t0 + i * 2000));
                for f in 0..10 {
                    c.extend(write::simple_block(1, f * 100, f == 0, &[7u8; 10_000]));
                }
                body_tx.send(Bytes::from(c)).await.unwrap();
            }
        });
        let collect = async {
            let mut lines = Vec::new();
            while let Some(line) = ack_rx.recv().await {
                let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
                lines.push(format!(
                    "{} {}",
                    v["EventType"].as_str().unwrap(),
                    v["FragmentTimecode"]
                        .as_u64()
                        .map_or(0, |t| (t - (now.wall_ms as u64 - 100_000)) / 2000)
                ));
            }
            lines
        };
        let lines = tokio::time::timeout(Duration::from_secs(30), collect)
            .await
            .expect("the session finished");
        producer.await.unwrap();
        session.await.unwrap();
        watcher.abort();
        let _ = std::fs::remove_dir_all(&dir);
        (lines, most.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The acks a producer must see for fragments 0..n: BUFFERING, RECEIVED (at the next
    /// cluster or the body's end) and PERSISTED, each kind in fragment order.
    fn assert_every_ack_in_order(lines: &[String], n: u64) {
        for kind in ["BUFFERING", "RECEIVED", "PERSISTED"] {
            let seen: Vec<u64> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(kind))
                .map(|t| t.trim().parse().unwrap())
                .collect();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "{kind} acks: {lines:?}");
        }
        assert_eq!(lines.len() as u64, 3 * n, "no other ack: {lines:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_disk_slows_the_producer_and_loses_no_ack() {
        let limit = 250_000;
        let (lines, most) = slow_disk_session(limit, Box::new(|| true)).await;
        assert_every_ack_in_order(&lines, 30);
        // At most the limit plus the fragment that crossed it (~100 KB) waits for the disk.
        assert!(most <= limit + 110_000, "{most} bytes waited for the disk");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_the_limit_the_same_producer_runs_ahead_of_the_disk() {
        // The control for the test above: the watcher does see memory grow when nothing
        // holds the producer back, so a bound it reports there is the limit's doing.
        let (lines, most) = slow_disk_session(usize::MAX / 2, Box::new(|| true)).await;
        assert_every_ack_in_order(&lines, 30);
        assert!(
            most > 1_000_000,
            "only {most} bytes ever waited for the disk"
        );
    }

    /// In a cluster a node that lost the stream (its lease ran out while a fragment was being
    /// stored) must not acknowledge that fragment PERSISTED: another node may own the stream
    /// by then. Here ownership ends after five fragments were stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_fragment_is_acknowledged_persisted_once_ownership_is_lost() {
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let owns = move || asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5;
        let (lines, _) = slow_disk_session(usize::MAX / 2, Box::new(owns)).await;
        let seen = |kind: &str| -> Vec<u64> {
            lines
                .iter()
                .filter_map(|l| l.strip_prefix(kind))
                .map(|t| t.trim().parse().unwrap())
                .collect()
        };
        assert_eq!(seen("PERSISTED "), (0..5).collect::<Vec<_>>(), "{lines:?}");
        assert_eq!(seen("ERROR "), (5..30).collect::<Vec<_>>(), "{lines:?}");
    }
}
