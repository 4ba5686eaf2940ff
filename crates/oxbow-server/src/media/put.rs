//! PutMedia: a long-lived chunked POST carrying one MKV segment. The 200 and the
//! acknowledgement stream go out at once and flow while the body is still arriving; a session
//! task parses the body, cuts it into fragments (one per Cluster), stores them, and acks each
//! one as KVS does: BUFFERING at its first byte, RECEIVED when complete, PERSISTED once
//! durable (streams with retention), ERROR with the KVS ErrorId, IDLE while nothing arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use oxbow_catalog::StreamRecord;
use oxbow_core::time::now_ms;
use oxbow_core::validate::{self as v, Checks};
use oxbow_core::ApiError;
use oxbow_mkv::{Event, Frame, MkvError, MkvParser};
use oxbow_store::{LocalStreamLog as StreamLog, StoredFragment, StreamHeader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{media_key, throttle, ChannelBody, FragmentNumber, MAX_TIME_MS};
use crate::control::{lookup, Need, StreamRef};
use crate::front::{boxed, discard_rest, Body, REFUSED_BODY_LINGER};
use crate::state::AppState;

const END_OF_FRAGMENT: &str = "AWS_KINESISVIDEO_END_OF_FRAGMENT";
/// The coarsest TimecodeScale accepted: one second per tick.
const MAX_TIMECODE_SCALE_NS: u64 = 1_000_000_000;
/// Metadata names KVS reserves for itself and producers may still send.
const RESERVED_TAGS: &[&str] = &[
    END_OF_FRAGMENT,
    "AWS_KINESISVIDEO_IMAGE_GENERATION",
    "AWS_KINESISVIDEO_IMAGE_PREFIX",
    "AWS_KINESISVIDEO_NOTIFICATION",
];

/// The ack errors of the PutMedia reference (ErrorId, ErrorCode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckError {
    StreamReadError,
    MaxFragmentSize,
    MaxFragmentDuration,
    MaxConnectionDuration,
    TimecodeLesserThanPrevious,
    InvalidMkvData,
    InvalidProducerTimestamp,
    StreamNotActive,
    FragmentMetadataLimit,
    TrackNumberMismatch,
    FramesMissingForTrack,
    /// 4012 in the KVS producer SDK (the API reference's 4012 text disagrees; the SDK wins).
    MoreThanAllowedTracks,
    ArchivalError,
}

impl AckError {
    pub fn id_and_code(self) -> (u32, &'static str) {
        use AckError::*;
        match self {
            StreamReadError => (4000, "STREAM_READ_ERROR"),
            MaxFragmentSize => (4001, "MAX_FRAGMENT_SIZE_REACHED"),
            MaxFragmentDuration => (4002, "MAX_FRAGMENT_DURATION_REACHED"),
            MaxConnectionDuration => (4003, "MAX_CONNECTION_DURATION_REACHED"),
            TimecodeLesserThanPrevious => (4004, "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS"),
            InvalidMkvData => (4006, "INVALID_MKV_DATA"),
            InvalidProducerTimestamp => (4007, "INVALID_PRODUCER_TIMESTAMP"),
            StreamNotActive => (4008, "STREAM_NOT_ACTIVE"),
            FragmentMetadataLimit => (4009, "FRAGMENT_METADATA_LIMIT_REACHED"),
            TrackNumberMismatch => (4010, "TRACK_NUMBER_MISMATCH"),
            FramesMissingForTrack => (4011, "FRAMES_MISSING_FOR_TRACK"),
            MoreThanAllowedTracks => (4012, "MORE_THAN_ALLOWED_TRACKS_FOUND"),
            ArchivalError => (5001, "ARCHIVAL_ERROR"),
        }
    }
}

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
    super::check_rate(&state, &media_key(&stream), "PutMedia")?;
    let log = state
        .store
        .open_stream(&media_key(&stream))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let (acks, out) = ChannelBody::new(1024);
    let session = Session::new(Arc::clone(&state), log, stream, &req, acks);
    tokio::spawn(session.run(body));
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

/// The fragment being received.
struct Building {
    seq: u64,
    number: String,
    timecode: u64,
    producer_ts_ms: i64,
    server_ts_ms: i64,
    frames: Vec<Bytes>,
    bytes: usize,
    tracks_seen: Vec<u64>,
    min_rel: i64,
    max_rel: i64,
    /// Frames of the first declared track, whose spacing is the frame duration.
    lead_frames: i64,
    tags: Vec<(String, String)>,
}

/// The producer's declared header, once read.
struct Declared {
    header_id: u32,
    scale_ns: u64,
    tracks: Vec<u64>,
}

/// Why a session stops reading.
enum Stop {
    /// The stream cannot continue (bad MKV, deleted stream, ...); the ERROR ack was sent.
    Fatal,
    /// A newer PutMedia took over the stream.
    Superseded,
}

struct Session {
    state: Arc<AppState>,
    log: Arc<StreamLog>,
    stream: StreamRecord,
    epoch: u64,
    relative: bool,
    start_ms: i64,
    acks: mpsc::Sender<Bytes>,
    parser: MkvParser,
    declared: Option<Declared>,
    current: Option<Building>,
    /// The cluster being received was rejected: ignore its frames.
    skipping: bool,
    pending_tags: Vec<(String, String)>,
    last_fragment_ms: Option<i64>,
    persisting: Vec<JoinHandle<()>>,
    /// Whether the body carried any byte (an empty body is no MKV error).
    received_any: bool,
}

impl Session {
    fn new(
        state: Arc<AppState>,
        log: Arc<StreamLog>,
        stream: StreamRecord,
        req: &PutRequest,
        acks: mpsc::Sender<Bytes>,
    ) -> Self {
        let epoch = log.claim_writer();
        // An element larger than a fragment may be is refused before it is buffered; the
        // ack says which rule it broke (4001, see `invalid_mkv`).
        let mut parser =
            MkvParser::new().with_max_element(state.config.limits.put_max_fragment_bytes as u64);
        if let Some(h) = log.latest_header() {
            if let Err(e) = parser.resume_with(h.ebml, h.segment_head) {
                tracing::warn!(stream = %stream.name, error = %e, "stored stream header unusable");
            }
        }
        Self {
            state,
            log,
            stream,
            epoch,
            relative: req.relative,
            start_ms: req.producer_start_ms.unwrap_or_else(now_ms),
            acks,
            parser,
            declared: None,
            received_any: false,
            current: None,
            skipping: false,
            pending_tags: Vec::new(),
            last_fragment_ms: None,
            persisting: Vec::new(),
        }
    }

    fn ack(&self, line: String) {
        send_ack(&self.acks, &self.stream.name, line);
    }

    fn ack_event(&self, event: &str, timecode: u64, number: &str) {
        self.ack(event_line(event, timecode, number));
    }

    fn ack_error(&self, err: AckError, timecode: Option<u64>, number: Option<&str>) {
        let (id, code) = err.id_and_code();
        tracing::info!(stream = %self.stream.name, error_id = id, code, "PutMedia error ack");
        self.ack(error_line(err, timecode, number));
    }

    async fn run(mut self, mut body: Incoming) {
        let limits = self.state.config.limits.clone();
        let started = Instant::now();
        let mut last_data = Instant::now();
        let mut received = 0u64;
        let idle_ack = Duration::from_millis(limits.put_idle_ack_ms);
        let mut draining = self.state.draining.subscribe();
        loop {
            if started.elapsed() > Duration::from_millis(limits.put_max_connection_ms) {
                self.ack_error(AckError::MaxConnectionDuration, None, None);
                break;
            }
            let next = tokio::select! {
                _ = draining.wait_for(|d| *d) => {
                    // The fragment in progress was never acknowledged RECEIVED: the producer
                    // sends it again on its next connection.
                    tracing::info!(stream = %self.stream.name, "PutMedia: server shutting down, ending the session");
                    break;
                }
                next = tokio::time::timeout(idle_ack, body.frame()) => next,
            };
            match next {
                Err(_) => {
                    if last_data.elapsed() >= Duration::from_millis(limits.put_idle_close_ms) {
                        tracing::info!(stream = %self.stream.name, "PutMedia idle: closing");
                        break;
                    }
                    self.ack(r#"{"EventType":"IDLE"}"#.to_string());
                }
                Ok(None) => {
                    self.finish();
                    break;
                }
                Ok(Some(Err(e))) => {
                    tracing::info!(stream = %self.stream.name, error = %e, "PutMedia body ended abruptly");
                    let (tc, n) = self
                        .current
                        .as_ref()
                        .map(|b| (b.timecode, b.number.clone()))
                        .unzip();
                    self.ack_error(AckError::StreamReadError, tc, n.as_deref());
                    self.abandon_current();
                    break;
                }
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    last_data = Instant::now();
                    received += data.len() as u64;
                    self.received_any |= !data.is_empty();
                    throttle(received, started, limits.put_max_bytes_per_sec).await;
                    self.parser.push(&data);
                    match self.drain().await {
                        Ok(()) => {}
                        Err(Stop::Fatal) => {
                            discard_rest(&mut body, REFUSED_BODY_LINGER, u64::MAX).await;
                            break;
                        }
                        Err(Stop::Superseded) => {
                            tracing::info!(stream = %self.stream.name, "a newer PutMedia took over");
                            break;
                        }
                    }
                }
            }
        }
        self.abandon_current();
        for task in std::mem::take(&mut self.persisting) {
            let _ = task.await;
        }
    }

    async fn drain(&mut self) -> Result<(), Stop> {
        loop {
            match self.parser.next_event() {
                Ok(Some(event)) => self.handle(event).await?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.invalid_mkv(&e)),
            }
        }
    }

    fn invalid_mkv(&mut self, e: &MkvError) -> Stop {
        tracing::info!(stream = %self.stream.name, error = %e, "PutMedia: invalid MKV");
        let (tc, number) = self
            .current
            .as_ref()
            .map(|b| (b.timecode, b.number.clone()))
            .unzip();
        // A frame larger than a whole fragment may be breaks the fragment-size rule, however
        // much larger it is.
        let err = match e {
            MkvError::TooLarge(_) if self.current.is_some() => AckError::MaxFragmentSize,
            _ => AckError::InvalidMkvData,
        };
        self.ack_error(err, tc, number.as_deref());
        self.abandon_current();
        Stop::Fatal
    }

    /// The body ended cleanly: close the fragment in progress. A body that ends inside an
    /// element, or that carried bytes but never a stream header, was not valid MKV.
    fn finish(&mut self) {
        match self.parser.finish() {
            Ok((events, truncated)) => {
                let invalid = truncated || (self.received_any && self.declared.is_none());
                for e in events {
                    if let Event::ClusterEnd = e {
                        if !invalid && !std::mem::take(&mut self.skipping) {
                            self.complete();
                        }
                    }
                }
                if invalid {
                    self.invalid_mkv(&MkvError::Invalid(
                        "the body ended in the middle of an element".into(),
                    ));
                }
            }
            Err(e) => {
                self.invalid_mkv(&e);
            }
        }
    }

    async fn handle(&mut self, event: Event) -> Result<(), Stop> {
        if self.log.is_closed() {
            // The stream was deleted under us.
            let (tc, n) = self
                .current
                .as_ref()
                .map(|b| (b.timecode, b.number.clone()))
                .unzip();
            self.ack_error(AckError::StreamNotActive, tc, n.as_deref());
            self.abandon_current();
            return Err(Stop::Fatal);
        }
        if !self.log.is_writer(self.epoch) {
            self.abandon_current();
            return Err(Stop::Superseded);
        }
        match event {
            Event::Header(h) => self.declare(h),
            Event::ClusterStart { timecode } => self.start_fragment(timecode).await,
            Event::Frame(f) => {
                self.frame(f);
                Ok(())
            }
            Event::ClusterEnd => {
                if std::mem::take(&mut self.skipping) {
                    return Ok(());
                }
                self.complete();
                Ok(())
            }
            Event::Tags(tags) => {
                self.metadata(tags);
                Ok(())
            }
        }
    }

    fn declare(&mut self, h: oxbow_mkv::Header) -> Result<(), Stop> {
        if !(1..=MAX_TIMECODE_SCALE_NS).contains(&h.timecode_scale_ns) {
            return Err(self.invalid_mkv(&MkvError::Invalid(format!(
                "TimecodeScale {} ns is outside 1 ns to 1 s",
                h.timecode_scale_ns
            ))));
        }
        if h.track_list.len() > self.state.config.limits.put_max_tracks {
            self.ack_error(AckError::MoreThanAllowedTracks, None, None);
            return Err(Stop::Fatal);
        }
        let mut segment_head = BytesMut::with_capacity(h.info.len() + h.tracks.len());
        segment_head.extend_from_slice(&h.info);
        segment_head.extend_from_slice(&h.tracks);
        let header_id = self.log.set_header(StreamHeader {
            ebml: h.ebml,
            segment_head: segment_head.freeze(),
        });
        self.declared = Some(Declared {
            header_id,
            scale_ns: h.timecode_scale_ns,
            tracks: h.track_list.iter().map(|t| t.number).collect(),
        });
        Ok(())
    }

    /// Re-reads the stream: it must still exist, be the same incarnation and not be deleting.
    async fn still_active(&mut self) -> bool {
        let target = lookup::Target {
            name: self.stream.name.clone(),
            arn: Some(self.stream.arn.clone()),
        };
        match lookup::get::<StreamRecord>(&self.state, &target, Need::Live).await {
            Ok(s) => {
                self.stream = s;
                true
            }
            Err(_) => false,
        }
    }

    async fn start_fragment(&mut self, timecode: u64) -> Result<(), Stop> {
        if self.current.is_some() {
            self.complete();
        }
        if !self.still_active().await {
            self.ack_error(AckError::StreamNotActive, Some(timecode), None);
            return Err(Stop::Fatal);
        }
        let Some(d) = &self.declared else {
            return Err(Stop::Fatal);
        };
        let now = now_ms();
        // A timecode that is no time at all (past the year 9999 or beyond i64 milliseconds)
        // must not wrap into a plausible one.
        let offset_ms = i64::try_from(u128::from(timecode) * u128::from(d.scale_ns) / 1_000_000)
            .ok()
            .filter(|ms| *ms <= MAX_TIME_MS);
        let producer_ts_ms = match offset_ms {
            Some(ms) if self.relative => self.start_ms.checked_add(ms),
            other => other,
        };
        let Some(producer_ts_ms) = producer_ts_ms.filter(|ms| (0..=MAX_TIME_MS).contains(ms))
        else {
            self.ack_error(AckError::InvalidProducerTimestamp, Some(timecode), None);
            self.skipping = true;
            return Ok(());
        };
        if self
            .last_fragment_ms
            .is_some_and(|prev| producer_ts_ms < prev)
        {
            self.ack_error(AckError::TimecodeLesserThanPrevious, Some(timecode), None);
            self.skipping = true;
            return Ok(());
        }
        if producer_ts_ms > now + self.state.config.limits.put_max_future_ms {
            self.ack_error(AckError::InvalidProducerTimestamp, Some(timecode), None);
            self.skipping = true;
            return Ok(());
        }
        let seq = match self.log.begin(d.header_id, producer_ts_ms, now, timecode) {
            Ok(seq) => seq,
            Err(e) => {
                tracing::error!(stream = %self.stream.name, error = %e, "cannot number a fragment");
                self.ack_error(AckError::ArchivalError, Some(timecode), None);
                self.skipping = true;
                return Ok(());
            }
        };
        let number = FragmentNumber::new(self.stream.creation_ms, seq).to_string();
        self.ack_event("BUFFERING", timecode, &number);
        self.current = Some(Building {
            seq,
            number,
            timecode,
            producer_ts_ms,
            server_ts_ms: now,
            frames: Vec::new(),
            bytes: 0,
            tracks_seen: Vec::new(),
            min_rel: i64::MAX,
            max_rel: i64::MIN,
            lead_frames: 0,
            tags: std::mem::take(&mut self.pending_tags),
        });
        Ok(())
    }

    fn reject_current(&mut self, err: AckError) {
        if let Some(b) = &self.current {
            self.ack_error(err, Some(b.timecode), Some(&b.number.clone()));
        }
        self.abandon_current();
        self.skipping = true;
    }

    fn frame(&mut self, f: Frame) {
        if self.skipping {
            return;
        }
        let (Some(b), Some(d)) = (self.current.as_mut(), self.declared.as_ref()) else {
            return;
        };
        if !d.tracks.contains(&f.track) {
            self.reject_current(AckError::TrackNumberMismatch);
            return;
        }
        let limits = &self.state.config.limits;
        b.bytes += f.element.len();
        let rel_ms = i64::from(f.relative_timecode) * d.scale_ns as i64 / 1_000_000;
        b.min_rel = b.min_rel.min(rel_ms);
        b.max_rel = b.max_rel.max(rel_ms);
        if !b.tracks_seen.contains(&f.track) {
            b.tracks_seen.push(f.track);
        }
        if d.tracks.first() == Some(&f.track) {
            b.lead_frames += 1;
        }
        if b.bytes > limits.put_max_fragment_bytes {
            self.reject_current(AckError::MaxFragmentSize);
            return;
        }
        if b.max_rel - b.min_rel.min(0) > limits.put_max_fragment_duration_ms {
            self.reject_current(AckError::MaxFragmentDuration);
            return;
        }
        self.log.frame(b.seq, f.element.clone());
        b.frames.push(f.element);
    }

    fn metadata(&mut self, tags: Vec<(String, String)>) {
        let limits = &self.state.config.limits;
        for (name, value) in tags {
            if name == END_OF_FRAGMENT {
                continue;
            }
            let reserved = RESERVED_TAGS.contains(&name.as_str());
            if name.len() > 128
                || value.len() > 256
                || (name.starts_with("AWS") && !reserved)
                || name.is_empty()
            {
                // The producer SDK reads 4009 as "name/value/count limit reached".
                self.ack_error(AckError::FragmentMetadataLimit, None, None);
                continue;
            }
            if self.pending_tags.len() >= limits.put_max_fragment_tags {
                self.ack_error(AckError::FragmentMetadataLimit, None, None);
                continue;
            }
            self.pending_tags.push((name, value));
        }
    }

    fn abandon_current(&mut self) {
        if let Some(b) = self.current.take() {
            self.log.abandon(b.seq);
        }
    }

    fn complete(&mut self) {
        let Some(b) = self.current.take() else { return };
        let Some(d) = &self.declared else { return };
        if let Some(missing) = d.tracks.iter().find(|t| !b.tracks_seen.contains(t)) {
            tracing::debug!(stream = %self.stream.name, track = missing, "fragment lacks a track");
            self.ack_error(
                AckError::FramesMissingForTrack,
                Some(b.timecode),
                Some(&b.number),
            );
            self.log.abandon(b.seq);
            return;
        }
        let cluster = cluster_bytes(b.timecode, &b.frames, b.bytes);
        // The span of the frames plus one frame interval of the lead (video) track.
        let span = (b.max_rel - b.min_rel).max(0);
        let last_frame = span / (b.lead_frames - 1).max(1);
        let fragment = StoredFragment {
            seq: b.seq,
            producer_ts_ms: b.producer_ts_ms,
            server_ts_ms: b.server_ts_ms,
            duration_ms: span + last_frame,
            header_id: d.header_id,
            tags: b.tags,
            cluster,
        };
        self.ack_event("RECEIVED", b.timecode, &b.number);
        self.last_fragment_ms = Some(b.producer_ts_ms);
        let persist = self.stream.retention_hours > 0;
        let done = self.log.complete(fragment, persist);
        if persist {
            let acks = self.acks.clone();
            let (timecode, number, stream) = (b.timecode, b.number, self.stream.name.clone());
            self.persisting.retain(|t| !t.is_finished());
            self.persisting.push(tokio::spawn(async move {
                let line = match done.await {
                    Ok(Ok(())) => event_line("PERSISTED", timecode, &number),
                    other => {
                        tracing::error!(%stream, result = ?other.map(|r| r.err().map(|e| e.to_string())), "fragment not persisted");
                        error_line(AckError::ArchivalError, Some(timecode), Some(&number))
                    }
                };
                send_ack(&acks, &stream, line);
            }));
        }
    }
}

/// An ack line for a fragment event, in the flat shape the producer SDK's parser reads.
fn event_line(event: &str, timecode: u64, number: &str) -> String {
    format!(
        r#"{{"EventType":"{event}","FragmentTimecode":{timecode},"FragmentNumber":"{number}"}}"#
    )
}

/// An ERROR ack line; timecode and number are present when a fragment is concerned.
fn error_line(err: AckError, timecode: Option<u64>, number: Option<&str>) -> String {
    let (id, code) = err.id_and_code();
    let mut line = String::from(r#"{"EventType":"ERROR""#);
    if let Some(t) = timecode {
        line.push_str(&format!(r#","FragmentTimecode":{t}"#));
    }
    if let Some(n) = number {
        line.push_str(&format!(r#","FragmentNumber":"{n}""#));
    }
    line.push_str(&format!(r#","ErrorId":{id},"ErrorCode":"{code}"}}"#));
    line
}

/// Queues one ack line; a producer that does not read its acks loses them, not the session.
fn send_ack(acks: &mpsc::Sender<Bytes>, stream: &str, line: String) {
    let mut b = BytesMut::with_capacity(line.len() + 1);
    b.extend_from_slice(line.as_bytes());
    b.extend_from_slice(b"\n");
    if acks.try_send(b.freeze()).is_err() {
        tracing::debug!(%stream, "ack dropped: the producer is not reading acks");
    }
}

/// A sized Cluster element holding the Timecode and the frames as received.
fn cluster_bytes(timecode: u64, frames: &[Bytes], frame_bytes: usize) -> Bytes {
    let tc = oxbow_mkv::write::uint(oxbow_mkv::ids::TIMECODE, timecode);
    let body_len = (tc.len() + frame_bytes) as u64;
    let mut out = Vec::with_capacity(body_len as usize + 12);
    oxbow_mkv::vint::write_id(&mut out, oxbow_mkv::ids::CLUSTER);
    oxbow_mkv::vint::write_size(&mut out, body_len);
    out.extend_from_slice(&tc);
    for f in frames {
        out.extend_from_slice(f);
    }
    Bytes::from(out)
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

    #[test]
    fn ack_error_codes() {
        assert_eq!(AckError::TimecodeLesserThanPrevious.id_and_code().0, 4004);
        assert_eq!(
            AckError::ArchivalError.id_and_code(),
            (5001, "ARCHIVAL_ERROR")
        );
    }
}
