//! GetMedia and GetMediaForFragmentList: fragments out as MKV chunks. GetMedia reads
//! completed fragments from the index (live buffer or disk) until it reaches the live edge,
//! then follows the stream's live events, forwarding each frame as it arrives; it joins a
//! fragment in progress from its start. The response ends after 3 s with nothing new.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use oxbow_catalog::StreamRecord;
use oxbow_core::time::now_ms;
use oxbow_core::validate::{Checks, StrRule};
use oxbow_core::{ApiError, ErrorKind};
use oxbow_store::{FragmentSource, Partial, StreamLog};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::reader::{first_fragment, Follower, Snapshot, Start, Step};
use super::{chunk, is_time, tag_seconds, ChannelBody, FragmentNumber};
use crate::http::{boxed, Reply};
use crate::resource::media_key;
use crate::resource::{lookup, Need, StreamRef};
use crate::state::{AppState, ConnectionGuard};

const SELECTOR_TYPES: &[&str] = &[
    "FRAGMENT_NUMBER",
    "SERVER_TIMESTAMP",
    "PRODUCER_TIMESTAMP",
    "NOW",
    "EARLIEST",
    "CONTINUATION_TOKEN",
];

static FRAGMENT_NUMBER_RULE: StrRule = StrRule {
    min: 1,
    max: 128,
    pattern: None,
};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartSelector {
    start_selector_type: Option<String>,
    after_fragment_number: Option<String>,
    start_timestamp: Option<f64>,
    continuation_token: Option<String>,
}

#[derive(Deserialize)]
pub struct GetMediaRequest {
    #[serde(flatten)]
    stream: StreamRef,
    #[serde(rename = "StartSelector")]
    start_selector: Option<StartSelector>,
}

/// Chunks a GetMedia response queues ahead of its socket.
const READER_WINDOW: usize = 2;
/// The largest piece of a stored cluster sent as one chunk.
const PIECE_BYTES: usize = 32 << 10;

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn check_selector(sel: Option<&StartSelector>) -> Result<(), ApiError> {
    let mut checks = Checks::new();
    checks.required("startSelector", sel);
    if let Some(s) = sel {
        let kind = s.start_selector_type.as_deref();
        checks
            .required("startSelector.startSelectorType", kind)
            .one_of("startSelector.startSelectorType", kind, SELECTOR_TYPES)
            .string(
                "startSelector.afterFragmentNumber",
                s.after_fragment_number.as_deref(),
                &FRAGMENT_NUMBER_RULE,
            )
            .string(
                "startSelector.continuationToken",
                s.continuation_token.as_deref(),
                &FRAGMENT_NUMBER_RULE,
            );
        match kind {
            Some("FRAGMENT_NUMBER") => {
                checks.required(
                    "startSelector.afterFragmentNumber",
                    s.after_fragment_number.as_ref(),
                );
            }
            Some("SERVER_TIMESTAMP" | "PRODUCER_TIMESTAMP") => {
                checks.required("startSelector.startTimestamp", s.start_timestamp.as_ref());
            }
            Some("CONTINUATION_TOKEN") => {
                checks.required(
                    "startSelector.continuationToken",
                    s.continuation_token.as_ref(),
                );
            }
            _ => {}
        }
        if s.start_timestamp.is_some_and(|t| !is_time(t)) {
            checks.custom("Value at 'startSelector.startTimestamp' failed to satisfy constraint: Member must be a time from the epoch (1970-01-01T00:00:00Z) to 9999-12-31T23:59:59Z");
        }
        if s.after_fragment_number
            .as_deref()
            .is_some_and(|n| !digits(n))
        {
            checks.custom("Value at 'startSelector.afterFragmentNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9]+$");
        }
    }
    checks.finish()
}

fn start_of(sel: &StartSelector, stream: &StreamRecord) -> Result<Start, ApiError> {
    let number = |s: &str| {
        FragmentNumber::parse(s, stream.creation_ms)
            .map(|n| n.seq)
            .ok_or_else(|| {
                ApiError::invalid_argument(format!(
                    "Fragment number {s} does not belong to this stream."
                ))
            })
    };
    Ok(match sel.start_selector_type.as_deref() {
        Some("EARLIEST") => Start::Seq(0),
        Some("FRAGMENT_NUMBER") => {
            Start::Exactly(number(sel.after_fragment_number.as_deref().unwrap_or(""))?)
        }
        Some("CONTINUATION_TOKEN") => {
            Start::After(number(sel.continuation_token.as_deref().unwrap_or(""))?)
        }
        Some(kind @ ("SERVER_TIMESTAMP" | "PRODUCER_TIMESTAMP")) => Start::Time {
            producer: kind == "PRODUCER_TIMESTAMP",
            ms: (sel.start_timestamp.unwrap_or(0.0) * 1000.0).round() as i64,
        },
        _ => Start::Now,
    })
}

pub async fn get_media(state: &Arc<AppState>, req: GetMediaRequest) -> Result<Reply, ApiError> {
    check_selector(req.start_selector.as_ref())?;
    let target = req.stream.resolve(state, &mut Checks::new())?;
    let stream: StreamRecord = lookup::get(state, &target, Need::Live).await?;
    let start = start_of(req.start_selector.as_ref().expect("checked"), &stream)?;
    let key = media_key(&stream);
    super::check_rate(state, &key, "GetMedia")?;
    let log = super::open_log_for_reading(state, &key, &stream.name).await?;
    let guard = state
        .get_media_connections
        .acquire(&key, state.config.limits.get_media_max_connections)
        .ok_or_else(|| {
            ApiError::new(
                ErrorKind::ConnectionLimitExceeded,
                "Too many GetMedia connections are open on this stream.",
            )
        })?;
    // A few chunks (a chunk is at most one fragment's Cluster): a reader that stops
    // reading holds this much, then waits on its socket until the write timeout.
    let (tx, body) = ChannelBody::new(READER_WINDOW);
    let idle = Duration::from_millis(state.config.limits.get_media_idle_ms);
    let reader = Reader {
        // No live events reach a node that does not own the stream: it follows the bucket.
        follow_bucket: !state.owns_stream(&stream.name),
        max_bytes_per_sec: state.config.limits.get_media_max_bytes_per_sec,
        sent: std::sync::atomic::AtomicU64::new(0),
        started: std::time::Instant::now(),
        log,
        creation_ms: stream.creation_ms,
        tx,
        _guard: guard,
    };
    tokio::spawn(reader.run(start, idle));
    Ok(media_response(body))
}

fn media_response(body: ChannelBody) -> Reply {
    let mut r = Response::new(boxed(body));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("video/webm"),
    );
    r
}

/// The error chunk KVS ends a GetMedia response with when its start is not available.
fn not_available() -> Bytes {
    chunk::tags_only(&[
        (
            "AWS_KINESISVIDEO_ERROR_CODE",
            "The requested fragment is not available.",
        ),
        ("AWS_KINESISVIDEO_ERROR_ID", "4000"),
    ])
}

/// How often a live GetMedia at a node that does not own the stream (cluster mode) looks in
/// the bucket for what the owner stored.
const FOLLOW_BUCKET_EVERY: Duration = Duration::from_millis(500);

/// One GetMedia response being written.
struct Reader {
    /// At a node that does not own the stream: look in the bucket every
    /// [`FOLLOW_BUCKET_EVERY`].
    follow_bucket: bool,
    max_bytes_per_sec: u64,
    sent: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
    log: Arc<StreamLog>,
    creation_ms: i64,
    tx: mpsc::Sender<Bytes>,
    _guard: ConnectionGuard,
}

/// The client went away.
struct Gone;

impl Reader {
    async fn send(&self, b: Bytes) -> Result<(), Gone> {
        let total = self
            .sent
            .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed)
            + b.len() as u64;
        super::throttle(total, self.started, self.max_bytes_per_sec).await;
        self.tx.send(b).await.map_err(|_| Gone)
    }

    fn number(&self, seq: u64) -> String {
        FragmentNumber::new(self.creation_ms, seq).to_string()
    }

    async fn run(self, start: Start, idle: Duration) {
        let (_, in_progress) = self.log.subscribe();
        let index = self.log.fragments();
        let snapshot = Snapshot {
            index: &index,
            next_seq: self.log.next_seq(),
            in_progress: in_progress.map(|p| p.seq),
        };
        let Ok(mut cursor) = first_fragment(start, &snapshot) else {
            let _ = self.send(not_available()).await;
            return;
        };
        loop {
            let (rx, partial) = self.log.subscribe();
            match self.catch_up(&mut cursor).await {
                Ok(()) => {}
                Err(Gone) => return,
            }
            let mut follower = Follower::new(cursor, idle, Instant::now());
            let caught_up = self.follow(rx, partial, &mut follower).await;
            cursor = follower.cursor();
            match caught_up {
                Ok(true) => continue,
                Ok(false) | Err(Gone) => return,
            }
        }
    }

    /// Sends every completed fragment from `cursor` on.
    async fn catch_up(&self, cursor: &mut u64) -> Result<(), Gone> {
        loop {
            let metas: Vec<u64> = self
                .log
                .fragments()
                .iter()
                .map(|m| m.seq)
                .filter(|s| *s >= *cursor)
                .collect();
            if metas.is_empty() {
                return Ok(());
            }
            for seq in metas {
                match self.log.open_fragment(seq).await {
                    Ok(f) => self.send_archived(&f).await?,
                    Err(e) => tracing::debug!(seq, error = %e, "fragment vanished while reading"),
                }
                *cursor = seq + 1;
            }
        }
    }

    /// Sends a chunk's opening (document start and identifying tags); `false` if the
    /// fragment's stream header is unknown.
    async fn send_start(
        &self,
        seq: u64,
        header_id: u32,
        server_ts: i64,
        producer_ts: i64,
    ) -> Result<bool, Gone> {
        let Some(header) = self.log.header(header_id) else {
            return Ok(false);
        };
        let number = self.number(seq);
        let (server, producer) = (tag_seconds(server_ts), tag_seconds(producer_ts));
        self.send(chunk::start(
            &header,
            &[
                ("AWS_KINESISVIDEO_FRAGMENT_NUMBER", &number),
                ("AWS_KINESISVIDEO_SERVER_TIMESTAMP", &server),
                ("AWS_KINESISVIDEO_PRODUCER_TIMESTAMP", &producer),
            ],
        ))
        .await?;
        Ok(true)
    }

    /// Sends a stored fragment, its cluster in pieces of at most [`PIECE_BYTES`]: with the
    /// reader's window, that bounds what a reader that stops reading holds.
    async fn send_archived(&self, f: &FragmentSource) -> Result<(), Gone> {
        let head = f.head();
        if !self
            .send_start(
                head.seq,
                head.header_id,
                head.server_ts_ms,
                head.producer_ts_ms,
            )
            .await?
        {
            return Ok(());
        }
        let mut at = 0;
        loop {
            match f.next_piece(&mut at, PIECE_BYTES).await {
                Ok(Some(piece)) => self.send(piece).await?,
                Ok(None) => break,
                // The response ends rather than carrying a truncated cluster on.
                Err(e) => {
                    tracing::debug!(seq = head.seq, error = %e, "fragment ended while being read");
                    return Err(Gone);
                }
            }
        }
        self.send_end(head.seq, head.server_ts_ms, &head.tags).await
    }

    async fn send_end(
        &self,
        seq: u64,
        server_ts_ms: i64,
        tags: &[(String, String)],
    ) -> Result<(), Gone> {
        let behind = (now_ms() - server_ts_ms).max(0).to_string();
        let number = self.number(seq);
        self.send(chunk::end(
            tags,
            &[
                ("AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", &behind),
                ("AWS_KINESISVIDEO_CONTINUATION_TOKEN", &number),
            ],
        ))
        .await
    }

    /// Follows live events through `follower`. `Ok(true)`: fell behind between fragments,
    /// catch up again; `Ok(false)`: the response is over.
    async fn follow(
        &self,
        mut rx: oxbow_store::Subscription,
        partial: Option<Partial>,
        follower: &mut Follower,
    ) -> Result<bool, Gone> {
        let mut steps = follower.join(partial);
        loop {
            for step in std::mem::take(&mut steps) {
                match step {
                    Step::Open {
                        seq,
                        header_id,
                        server_ts_ms,
                        producer_ts_ms,
                        cluster_timecode,
                    } => {
                        let opened = self
                            .send_start(seq, header_id, server_ts_ms, producer_ts_ms)
                            .await?;
                        if opened {
                            self.send(chunk::live_cluster_start(cluster_timecode))
                                .await?;
                        }
                        follower.started(opened);
                    }
                    Step::Frame(element) => self.send(element).await?,
                    Step::Close {
                        seq,
                        server_ts_ms,
                        tags,
                    } => self.send_end(seq, server_ts_ms, &tags).await?,
                    Step::Cut => self.send(chunk::end(&[], &[])).await?,
                    Step::CatchUp => return Ok(true),
                    Step::Finish => return Ok(false),
                }
            }
            // The reader leaving frees its connection slot at once, not at the live edge.
            steps = tokio::select! {
                _ = self.tx.closed() => return Err(Gone),
                _ = tokio::time::sleep_until(follower.deadline().into()) => {
                    follower.timeout(Instant::now()).into_iter().collect()
                }
                e = rx.recv() => follower.event(Instant::now(), e),
                _ = tokio::time::sleep(FOLLOW_BUCKET_EVERY), if self.follow_bucket => {
                    let log = Arc::clone(&self.log);
                    let _ = tokio::task::spawn_blocking(move || log.catch_up()).await;
                    // The owner stored more (found now, or by another reader of this node):
                    // send it as archived fragments.
                    let cursor = follower.cursor();
                    if self.log.fragments().iter().any(|m| m.seq >= cursor) {
                        return Ok(true);
                    }
                    Vec::new()
                }
            };
        }
    }
}

#[derive(Deserialize)]
pub struct ForListRequest {
    #[serde(flatten)]
    stream: StreamRef,
    #[serde(rename = "Fragments")]
    fragments: Option<Vec<String>>,
}

pub async fn get_for_list(state: &Arc<AppState>, req: ForListRequest) -> Result<Reply, ApiError> {
    let mut checks = Checks::new();
    checks.required("fragments", req.fragments.as_ref()).count(
        "fragments",
        req.fragments.as_ref().map(Vec::len),
        1,
        1000,
    );
    for n in req.fragments.iter().flatten() {
        checks.string("fragments.member", Some(n), &FRAGMENT_NUMBER_RULE);
        if !digits(n) {
            checks.custom(format!("Value '{n}' at 'fragments.member' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9]+$"));
        }
    }
    let target = req.stream.resolve(state, &mut checks)?;
    let stream: StreamRecord = lookup::get(state, &target, Need::Live).await?;
    let log = super::open_log_for_reading(state, &media_key(&stream), &stream.name).await?;
    let (tx, body) = ChannelBody::new(64);
    let numbers = req.fragments.unwrap_or_default();
    let creation = stream.creation_ms;
    // Without retention there is no archive to fetch from (see ListFragments).
    let archived = stream.retention_hours > 0;
    tokio::spawn(async move {
        for n in numbers {
            let found = match FragmentNumber::parse(&n, creation) {
                Some(fnum) if archived => log.open_fragment(fnum.seq).await.ok(),
                _ => None,
            };
            let found = found.and_then(|f| log.header(f.head().header_id).map(|h| (f, h)));
            let sent = match found {
                Some((f, header)) => send_listed(&tx, &n, &f, &header).await,
                None => tx
                    .send(chunk::tags_only(&[
                        ("AWS_KINESISVIDEO_FRAGMENT_NUMBER", &n),
                        ("AWS_KINESISVIDEO_EXCEPTION_ERROR_CODE", "4000"),
                        (
                            "AWS_KINESISVIDEO_EXCEPTION_MESSAGE",
                            "The requested fragment was not found.",
                        ),
                    ]))
                    .await
                    .is_ok(),
            };
            if !sent {
                return;
            }
        }
    });
    Ok(media_response(body))
}

/// One fragment of a GetMediaForFragmentList response, its cluster in pieces; false once the
/// client is gone or the fragment cannot be read to its end.
async fn send_listed(
    tx: &mpsc::Sender<Bytes>,
    number: &str,
    f: &FragmentSource,
    header: &oxbow_store::StreamHeader,
) -> bool {
    let head = f.head();
    let (server, producer) = (
        tag_seconds(head.server_ts_ms),
        tag_seconds(head.producer_ts_ms),
    );
    let start = chunk::start(
        header,
        &[
            ("AWS_KINESISVIDEO_FRAGMENT_NUMBER", number),
            ("AWS_KINESISVIDEO_SERVER_SIDE_TIMESTAMP", &server),
            ("AWS_KINESISVIDEO_PRODUCER_SIDE_TIMESTAMP", &producer),
        ],
    );
    if tx.send(start).await.is_err() {
        return false;
    }
    let mut at = 0;
    loop {
        match f.next_piece(&mut at, PIECE_BYTES).await {
            Ok(Some(piece)) => {
                if tx.send(piece).await.is_err() {
                    return false;
                }
            }
            Ok(None) => break,
            Err(_) => return false,
        }
    }
    tx.send(chunk::end(&head.tags, &[])).await.is_ok()
}
