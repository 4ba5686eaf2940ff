//! The PutMedia rules as a sans-IO state machine: body bytes, body end, time and the answers
//! of the store go in ([`Ingest::handle_input`], [`Ingest::handle_timeout`]); acks, store
//! calls and the end of the session come out ([`Ingest::poll_output`]). No clock, socket,
//! catalog or store is inside, so every KVS ack rule is unit-tested faster than real time;
//! `put.rs` is the thin Tokio driver that runs it.
//!
//! A store call that returns something (a header id, a fragment number, the stream's current
//! facts) is a question: the machine stops producing output until the driver answers with the
//! matching [`Input`]. PERSISTED acks leave in fragment order whatever order durability is
//! reported in, and the machine asks for no more body ([`Ingest::wants_body`]) while more than
//! its limit of bytes is waiting to become durable, so a slow disk slows the producer (TCP
//! backpressure) instead of growing memory.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use oxbow_mkv::{Event, Frame, MkvError, MkvParser};
use oxbow_store::{StoredFragment, StreamHeader};

use super::{FragmentNumber, MAX_TIME_MS};

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

/// One acknowledgement, as the producer SDK reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    Buffering {
        timecode: u64,
        number: String,
    },
    Received {
        timecode: u64,
        number: String,
    },
    Persisted {
        timecode: u64,
        number: String,
    },
    Idle,
    Error {
        error: AckError,
        timecode: Option<u64>,
        number: Option<String>,
    },
}

impl Ack {
    /// The ack as one line of the response body, in the flat shape the SDK's parser reads.
    pub fn line(&self) -> Bytes {
        let event = |name: &str, timecode: &u64, number: &str| {
            format!(
                r#"{{"EventType":"{name}","FragmentTimecode":{timecode},"FragmentNumber":"{number}"}}"#
            )
        };
        let mut line = match self {
            Ack::Buffering { timecode, number } => event("BUFFERING", timecode, number),
            Ack::Received { timecode, number } => event("RECEIVED", timecode, number),
            Ack::Persisted { timecode, number } => event("PERSISTED", timecode, number),
            Ack::Idle => r#"{"EventType":"IDLE"}"#.to_string(),
            Ack::Error {
                error,
                timecode,
                number,
            } => {
                let (id, code) = error.id_and_code();
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
        };
        line.push('\n');
        Bytes::from(line)
    }
}

/// The limits a session enforces (from the server's `Limits`).
#[derive(Debug, Clone)]
pub struct IngestLimits {
    pub max_fragment_bytes: usize,
    pub max_fragment_duration_ms: i64,
    pub max_tracks: usize,
    pub max_fragment_tags: usize,
    pub max_connection: Duration,
    pub idle_close: Duration,
    pub idle_ack: Duration,
    pub max_future_ms: i64,
    /// Bytes of completed fragments not yet durable past which no more body is read.
    pub max_pending_bytes: usize,
}

/// The current time, as both clocks the rules need: a monotonic one for timeouts and the
/// wall clock for server timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: Instant,
    pub wall_ms: i64,
}

/// What the catalog says about the stream when a fragment starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamFacts {
    /// Whether fragments are kept (retention above zero): only those get PERSISTED.
    pub persist: bool,
}

#[derive(Debug)]
pub enum Input {
    /// Body bytes, as they arrived.
    Bytes(Bytes),
    /// The body ended cleanly.
    BodyEnd,
    /// The body broke off (the connection failed).
    BodyError,
    /// The stream was deleted (its log closed).
    StreamGone,
    /// A newer PutMedia took the stream over.
    Superseded,
    /// The server is shutting down.
    Shutdown,
    /// Answers [`StoreCall::Declare`].
    HeaderId(u32),
    /// Answers [`StoreCall::CheckStream`]: `None` if the stream is no longer active.
    StreamChecked(Option<StreamFacts>),
    /// Answers [`StoreCall::Begin`]: the fragment's sequence, or that none could be leased.
    Numbered(Result<u64, ()>),
    /// A fragment completed with `persist` became durable (`ok`) or could not be written.
    Durable { seq: u64, ok: bool },
}

/// What the driver must do to the stream's log.
#[derive(Debug)]
pub enum StoreCall {
    /// Register the producer's header; answer [`Input::HeaderId`].
    Declare(StreamHeader),
    /// Re-read the stream from the catalog; answer [`Input::StreamChecked`].
    CheckStream,
    /// Number a new fragment; answer [`Input::Numbered`].
    Begin {
        header_id: u32,
        producer_ts_ms: i64,
        server_ts_ms: i64,
        timecode: u64,
    },
    /// Forward a frame of the fragment in progress to live readers.
    Frame { seq: u64, element: Bytes },
    /// Drop a fragment that will not complete.
    Abandon { seq: u64 },
    /// Add a completed fragment; when `persist`, report [`Input::Durable`] once it is written.
    Complete {
        fragment: StoredFragment,
        persist: bool,
    },
}

/// Why the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The body ended.
    Finished,
    /// The stream cannot continue (the ERROR ack is out): the driver reads and discards the
    /// rest of the body for a moment so the producer reads the ack, then closes.
    Refused,
    /// A newer PutMedia took over.
    Superseded,
    /// Nothing arrived for the idle-close time.
    Idle,
    /// The connection reached its longest duration (the 4003 ack is out).
    TooLong,
    /// The body broke off (the 4000 ack is out).
    BodyBroken,
    /// The server is shutting down.
    Shutdown,
}

#[derive(Debug)]
pub enum Output {
    Ack(Ack),
    Store(StoreCall),
    /// The session is over: read no more body. Acks for fragments still becoming durable
    /// follow; the driver runs until [`Ingest::is_done`].
    End(End),
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

/// The producer's declared header, once registered.
struct Declared {
    header_id: u32,
    scale_ns: u64,
    tracks: Vec<u64>,
}

/// The question the machine waits on.
enum Awaiting {
    HeaderId {
        scale_ns: u64,
        tracks: Vec<u64>,
    },
    StreamCheck {
        timecode: u64,
    },
    Number {
        timecode: u64,
        producer_ts_ms: i64,
        server_ts_ms: i64,
    },
}

/// A fragment acknowledged RECEIVED and waiting to become durable.
struct Pending {
    seq: u64,
    timecode: u64,
    number: String,
    bytes: usize,
    result: Option<bool>,
}

pub struct Ingest {
    limits: IngestLimits,
    creation_ms: i64,
    relative: bool,
    start_ms: i64,
    now: Now,
    started: Instant,
    last_data: Instant,
    next_idle: Instant,
    parser: MkvParser,
    /// The parser has no event ready: it needs more bytes.
    parser_idle: bool,
    body_ended: bool,
    out: VecDeque<Output>,
    awaiting: Option<Awaiting>,
    declared: Option<Declared>,
    facts: StreamFacts,
    current: Option<Building>,
    /// The cluster being received was rejected: ignore its frames.
    skipping: bool,
    pending_tags: Vec<(String, String)>,
    last_fragment_ms: Option<i64>,
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    /// Whether the body carried any byte (an empty body is no MKV error).
    received_any: bool,
    ended: bool,
}

impl Ingest {
    /// A session on a stream created at `creation_ms` (part of fragment numbers).
    /// `producer_start_ms` is the request's start timestamp (`None`: now); `resume` is the
    /// stream's stored header, for a producer that reconnects without resending it.
    pub fn new(
        limits: IngestLimits,
        now: Now,
        creation_ms: i64,
        relative: bool,
        producer_start_ms: Option<i64>,
        resume: Option<StreamHeader>,
    ) -> Self {
        // An element larger than a fragment may be is refused before it is buffered; the
        // ack says which rule it broke (4001, see `invalid_mkv`).
        let mut parser = MkvParser::new().with_max_element(limits.max_fragment_bytes as u64);
        if let Some(h) = resume {
            if let Err(e) = parser.resume_with(h.ebml, h.segment_head) {
                tracing::warn!(error = %e, "stored stream header unusable");
            }
        }
        let next_idle = now.at + limits.idle_ack;
        Self {
            limits,
            creation_ms,
            relative,
            start_ms: producer_start_ms.unwrap_or(now.wall_ms),
            now,
            started: now.at,
            last_data: now.at,
            next_idle,
            parser,
            parser_idle: true,
            body_ended: false,
            out: VecDeque::new(),
            awaiting: None,
            declared: None,
            facts: StreamFacts { persist: false },
            current: None,
            skipping: false,
            pending_tags: Vec::new(),
            last_fragment_ms: None,
            pending: VecDeque::new(),
            pending_bytes: 0,
            received_any: false,
            ended: false,
        }
    }

    /// Whether the driver should read more body now: not once the session ended, not while a
    /// question is open or parsed events wait, not past the limit of bytes not yet durable.
    pub fn wants_body(&self) -> bool {
        !self.ended
            && !self.body_ended
            && self.awaiting.is_none()
            && self.parser_idle
            && self.out.is_empty()
            && self.pending_bytes <= self.limits.max_pending_bytes
    }

    /// Bytes of completed fragments waiting to become durable.
    #[cfg(test)]
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// The session ended and every fragment it completed has its final ack out.
    pub fn is_done(&self) -> bool {
        self.ended && self.pending.is_empty() && self.out.is_empty()
    }

    /// When [`Ingest::handle_timeout`] is next due (the next IDLE ack, idle close or the
    /// connection's deadline).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended {
            return None;
        }
        Some(
            self.next_idle
                .min(self.started + self.limits.max_connection),
        )
    }

    pub fn handle_timeout(&mut self, now: Now) {
        self.now = now;
        if self.ended || self.past_deadline() {
            return;
        }
        if now.at < self.next_idle {
            return;
        }
        if !self.wants_body() {
            // Waiting on the disk or the driver is not the producer's silence.
            self.last_data = now.at;
            self.next_idle = now.at + self.limits.idle_ack;
            return;
        }
        if now.at.duration_since(self.last_data) >= self.limits.idle_close {
            tracing::info!("PutMedia idle: closing");
            self.end(End::Idle);
            return;
        }
        self.ack(Ack::Idle);
        self.next_idle = now.at + self.limits.idle_ack;
    }

    pub fn handle_input(&mut self, now: Now, input: Input) {
        self.now = now;
        match input {
            Input::Durable { seq, ok } => return self.durable(seq, ok),
            Input::HeaderId(id) => return self.header_id(id),
            Input::StreamChecked(facts) => return self.stream_checked(facts),
            Input::Numbered(result) => return self.numbered(result),
            _ => {}
        }
        if self.ended || self.past_deadline() {
            return;
        }
        match input {
            Input::Bytes(data) => {
                self.last_data = now.at;
                self.next_idle = now.at + self.limits.idle_ack;
                self.received_any |= !data.is_empty();
                self.parser.push(&data);
                self.parser_idle = false;
            }
            Input::BodyEnd => {
                self.body_ended = true;
                self.parser_idle = false;
            }
            Input::BodyError => {
                tracing::info!("PutMedia body ended abruptly");
                self.error_for_current(AckError::StreamReadError);
                self.abandon_current();
                self.end(End::BodyBroken);
            }
            Input::StreamGone => {
                self.error_for_current(AckError::StreamNotActive);
                self.abandon_current();
                self.end(End::Refused);
            }
            Input::Superseded => {
                tracing::info!("a newer PutMedia took over");
                self.abandon_current();
                self.end(End::Superseded);
            }
            Input::Shutdown => {
                // The fragment in progress was never acknowledged RECEIVED: the producer
                // sends it again on its next connection.
                tracing::info!("PutMedia: server shutting down, ending the session");
                self.abandon_current();
                self.end(End::Shutdown);
            }
            _ => {}
        }
    }

    /// The next thing to do, after running the rules as far as the input allows.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.advance();
        self.out.pop_front()
    }

    /// Ends the session at its deadline (4003); true if it has passed.
    fn past_deadline(&mut self) -> bool {
        if self.now.at.duration_since(self.started) < self.limits.max_connection {
            return false;
        }
        self.ack(Ack::Error {
            error: AckError::MaxConnectionDuration,
            timecode: None,
            number: None,
        });
        self.abandon_current();
        self.end(End::TooLong);
        true
    }

    fn advance(&mut self) {
        while !self.ended && self.awaiting.is_none() && !self.parser_idle {
            match self.parser.next_event() {
                Ok(Some(event)) => self.event(event),
                Ok(None) if self.body_ended => {
                    self.finish();
                    self.parser_idle = true;
                }
                Ok(None) => self.parser_idle = true,
                Err(e) => self.invalid_mkv(&e),
            }
        }
    }

    fn ack(&mut self, ack: Ack) {
        if let Ack::Error { error, .. } = &ack {
            let (id, code) = error.id_and_code();
            tracing::info!(error_id = id, code, "PutMedia error ack");
        }
        self.out.push_back(Output::Ack(ack));
    }

    fn store(&mut self, call: StoreCall) {
        self.out.push_back(Output::Store(call));
    }

    fn end(&mut self, end: End) {
        if !self.ended {
            self.ended = true;
            self.out.push_back(Output::End(end));
        }
    }

    /// An ERROR ack naming the fragment in progress, if there is one.
    fn error_for_current(&mut self, error: AckError) {
        let (timecode, number) = self
            .current
            .as_ref()
            .map(|b| (b.timecode, b.number.clone()))
            .unzip();
        self.ack(Ack::Error {
            error,
            timecode,
            number,
        });
    }

    fn invalid_mkv(&mut self, e: &MkvError) {
        tracing::info!(error = %e, "PutMedia: invalid MKV");
        // A frame larger than a whole fragment may be breaks the fragment-size rule, however
        // much larger it is.
        let err = match e {
            MkvError::TooLarge(_) if self.current.is_some() => AckError::MaxFragmentSize,
            _ => AckError::InvalidMkvData,
        };
        self.error_for_current(err);
        self.abandon_current();
        self.end(End::Refused);
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
                } else {
                    self.end(End::Finished);
                }
            }
            Err(e) => self.invalid_mkv(&e),
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Header(h) => self.declare(h),
            Event::ClusterStart { timecode } => {
                if self.current.is_some() {
                    self.complete();
                }
                self.awaiting = Some(Awaiting::StreamCheck { timecode });
                self.store(StoreCall::CheckStream);
            }
            Event::Frame(f) => self.frame(f),
            Event::ClusterEnd => {
                if !std::mem::take(&mut self.skipping) {
                    self.complete();
                }
            }
            Event::Tags(tags) => self.metadata(tags),
        }
    }

    fn declare(&mut self, h: oxbow_mkv::Header) {
        if !(1..=MAX_TIMECODE_SCALE_NS).contains(&h.timecode_scale_ns) {
            return self.invalid_mkv(&MkvError::Invalid(format!(
                "TimecodeScale {} ns is outside 1 ns to 1 s",
                h.timecode_scale_ns
            )));
        }
        if h.track_list.len() > self.limits.max_tracks {
            self.ack(Ack::Error {
                error: AckError::MoreThanAllowedTracks,
                timecode: None,
                number: None,
            });
            return self.end(End::Refused);
        }
        let mut segment_head = BytesMut::with_capacity(h.info.len() + h.tracks.len());
        segment_head.extend_from_slice(&h.info);
        segment_head.extend_from_slice(&h.tracks);
        self.awaiting = Some(Awaiting::HeaderId {
            scale_ns: h.timecode_scale_ns,
            tracks: h.track_list.iter().map(|t| t.number).collect(),
        });
        self.store(StoreCall::Declare(StreamHeader {
            ebml: h.ebml,
            segment_head: segment_head.freeze(),
        }));
    }

    fn header_id(&mut self, header_id: u32) {
        if let Some(Awaiting::HeaderId { scale_ns, tracks }) = self.awaiting.take() {
            self.declared = Some(Declared {
                header_id,
                scale_ns,
                tracks,
            });
        }
    }

    fn stream_checked(&mut self, facts: Option<StreamFacts>) {
        let Some(Awaiting::StreamCheck { timecode }) = self.awaiting.take() else {
            return;
        };
        let Some(facts) = facts else {
            self.ack(Ack::Error {
                error: AckError::StreamNotActive,
                timecode: Some(timecode),
                number: None,
            });
            return self.end(End::Refused);
        };
        self.facts = facts;
        let Some(d) = &self.declared else {
            return self.invalid_mkv(&MkvError::Invalid("a cluster before the header".into()));
        };
        let header_id = d.header_id;
        // A timecode that is no time at all (past the year 9999 or beyond i64 milliseconds)
        // must not wrap into a plausible one.
        let offset_ms = i64::try_from(u128::from(timecode) * u128::from(d.scale_ns) / 1_000_000)
            .ok()
            .filter(|ms| *ms <= MAX_TIME_MS);
        let producer_ts_ms = match offset_ms {
            Some(ms) if self.relative => self.start_ms.checked_add(ms),
            other => other,
        };
        let refuse = |error| Ack::Error {
            error,
            timecode: Some(timecode),
            number: None,
        };
        let Some(producer_ts_ms) = producer_ts_ms.filter(|ms| (0..=MAX_TIME_MS).contains(ms))
        else {
            self.ack(refuse(AckError::InvalidProducerTimestamp));
            self.skipping = true;
            return;
        };
        if self
            .last_fragment_ms
            .is_some_and(|prev| producer_ts_ms < prev)
        {
            self.ack(refuse(AckError::TimecodeLesserThanPrevious));
            self.skipping = true;
            return;
        }
        let now = self.now.wall_ms;
        if producer_ts_ms > now + self.limits.max_future_ms {
            self.ack(refuse(AckError::InvalidProducerTimestamp));
            self.skipping = true;
            return;
        }
        self.awaiting = Some(Awaiting::Number {
            timecode,
            producer_ts_ms,
            server_ts_ms: now,
        });
        self.store(StoreCall::Begin {
            header_id,
            producer_ts_ms,
            server_ts_ms: now,
            timecode,
        });
    }

    fn numbered(&mut self, result: Result<u64, ()>) {
        let Some(Awaiting::Number {
            timecode,
            producer_ts_ms,
            server_ts_ms,
        }) = self.awaiting.take()
        else {
            return;
        };
        let Ok(seq) = result else {
            self.ack(Ack::Error {
                error: AckError::ArchivalError,
                timecode: Some(timecode),
                number: None,
            });
            self.skipping = true;
            return;
        };
        let number = FragmentNumber::new(self.creation_ms, seq).to_string();
        self.ack(Ack::Buffering {
            timecode,
            number: number.clone(),
        });
        self.current = Some(Building {
            seq,
            number,
            timecode,
            producer_ts_ms,
            server_ts_ms,
            frames: Vec::new(),
            bytes: 0,
            tracks_seen: Vec::new(),
            min_rel: i64::MAX,
            max_rel: i64::MIN,
            lead_frames: 0,
            tags: std::mem::take(&mut self.pending_tags),
        });
    }

    fn reject_current(&mut self, err: AckError) {
        self.error_for_current(err);
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
            return self.reject_current(AckError::TrackNumberMismatch);
        }
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
        if b.bytes > self.limits.max_fragment_bytes {
            return self.reject_current(AckError::MaxFragmentSize);
        }
        if b.max_rel - b.min_rel.min(0) > self.limits.max_fragment_duration_ms {
            return self.reject_current(AckError::MaxFragmentDuration);
        }
        b.frames.push(f.element.clone());
        let seq = b.seq;
        self.store(StoreCall::Frame {
            seq,
            element: f.element,
        });
    }

    fn metadata(&mut self, tags: Vec<(String, String)>) {
        for (name, value) in tags {
            if name == END_OF_FRAGMENT {
                continue;
            }
            let reserved = RESERVED_TAGS.contains(&name.as_str());
            let malformed = name.len() > 128
                || value.len() > 256
                || (name.starts_with("AWS") && !reserved)
                || name.is_empty();
            // The producer SDK reads 4009 as "name/value/count limit reached".
            if malformed || self.pending_tags.len() >= self.limits.max_fragment_tags {
                self.ack(Ack::Error {
                    error: AckError::FragmentMetadataLimit,
                    timecode: None,
                    number: None,
                });
                continue;
            }
            self.pending_tags.push((name, value));
        }
    }

    fn abandon_current(&mut self) {
        if let Some(b) = self.current.take() {
            self.store(StoreCall::Abandon { seq: b.seq });
        }
    }

    fn complete(&mut self) {
        let Some(b) = self.current.take() else { return };
        let Some(d) = &self.declared else { return };
        if d.tracks.iter().any(|t| !b.tracks_seen.contains(t)) {
            self.ack(Ack::Error {
                error: AckError::FramesMissingForTrack,
                timecode: Some(b.timecode),
                number: Some(b.number),
            });
            return self.store(StoreCall::Abandon { seq: b.seq });
        }
        let cluster = cluster_bytes(b.timecode, &b.frames, b.bytes);
        // The span of the frames plus one frame interval of the lead (video) track.
        let span = (b.max_rel - b.min_rel).max(0);
        let last_frame = span / (b.lead_frames - 1).max(1);
        let bytes = cluster.len();
        let fragment = StoredFragment {
            seq: b.seq,
            producer_ts_ms: b.producer_ts_ms,
            server_ts_ms: b.server_ts_ms,
            duration_ms: span + last_frame,
            header_id: d.header_id,
            tags: b.tags,
            cluster,
        };
        self.ack(Ack::Received {
            timecode: b.timecode,
            number: b.number.clone(),
        });
        self.last_fragment_ms = Some(b.producer_ts_ms);
        let persist = self.facts.persist;
        if persist {
            self.pending.push_back(Pending {
                seq: b.seq,
                timecode: b.timecode,
                number: b.number,
                bytes,
                result: None,
            });
            self.pending_bytes += bytes;
        }
        self.store(StoreCall::Complete { fragment, persist });
    }

    /// Records a durability result and sends the final acks that are now in order.
    fn durable(&mut self, seq: u64, ok: bool) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.seq == seq) {
            p.result = Some(ok);
        }
        while let Some(ok) = self.pending.front().and_then(|p| p.result) {
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            self.pending_bytes -= p.bytes;
            let ack = if ok {
                Ack::Persisted {
                    timecode: p.timecode,
                    number: p.number,
                }
            } else {
                tracing::error!(seq = p.seq, "fragment not persisted");
                Ack::Error {
                    error: AckError::ArchivalError,
                    timecode: Some(p.timecode),
                    number: Some(p.number),
                }
            };
            self.ack(ack);
        }
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
    use oxbow_mkv::{ids, write};

    const WALL: i64 = 1_700_000_000_000;
    const CREATED: i64 = 1_690_000_000_000;
    const AV: &[(u64, u64, &str, &[u8])] = &[
        (1, 1, "V_MPEG4/ISO/AVC", &[1]),
        (2, 2, "A_AAC", &[0x12, 0x10]),
    ];

    fn limits() -> IngestLimits {
        IngestLimits {
            max_fragment_bytes: 10_000,
            max_fragment_duration_ms: 20_000,
            max_tracks: 3,
            max_fragment_tags: 10,
            max_connection: Duration::from_secs(45 * 60),
            idle_close: Duration::from_secs(30),
            idle_ack: Duration::from_secs(3),
            max_future_ms: 600_000,
            max_pending_bytes: 1_000_000,
        }
    }

    fn header_with(tracks: &[(u64, u64, &str, &[u8])], scale_ns: u64) -> Vec<u8> {
        let mut s = write::ebml_header();
        s.extend(write::unknown_size(ids::SEGMENT));
        s.extend(write::info(scale_ns, "test"));
        s.extend(write::tracks(tracks));
        s
    }

    fn header() -> Vec<u8> {
        header_with(AV, 1_000_000)
    }

    /// A Cluster at `timecode` (ms) with a video and an audio frame every 100 ms.
    fn cluster(timecode: u64, frames: usize, payload: usize) -> Vec<u8> {
        let mut c = write::unknown_size(ids::CLUSTER);
        c.extend(write::uint(ids::TIMECODE, timecode));
        for i in 0..frames {
            let rel = (i * 100) as i16;
            c.extend(write::simple_block(1, rel, i == 0, &vec![7u8; payload]));
            c.extend(write::simple_block(2, rel, true, &[9u8; 16]));
        }
        c
    }

    fn tc(n: u64) -> u64 {
        WALL as u64 + n * 2000
    }

    fn number(seq: u64) -> String {
        FragmentNumber::new(CREATED, seq).to_string()
    }

    /// The machine with a store that answers every question at once, and a clock that moves
    /// only when told.
    struct Harness {
        ingest: Ingest,
        now: Now,
        acks: Vec<Ack>,
        ends: Vec<End>,
        frames: usize,
        abandoned: Vec<u64>,
        completed: Vec<(u64, bool)>,
        next_seq: u64,
        /// What CheckStream answers.
        facts: Option<StreamFacts>,
        numbering_fails: bool,
    }

    impl Harness {
        fn new(limits: IngestLimits) -> Self {
            Self::with(limits, false, None)
        }

        fn with(limits: IngestLimits, relative: bool, start_ms: Option<i64>) -> Self {
            let now = Now {
                at: Instant::now(),
                wall_ms: WALL,
            };
            Self {
                ingest: Ingest::new(limits, now, CREATED, relative, start_ms, None),
                now,
                acks: Vec::new(),
                ends: Vec::new(),
                frames: 0,
                abandoned: Vec::new(),
                completed: Vec::new(),
                next_seq: 1,
                facts: Some(StreamFacts { persist: true }),
                numbering_fails: false,
            }
        }

        fn input(&mut self, input: Input) {
            self.ingest.handle_input(self.now, input);
            self.pump();
        }

        fn send(&mut self, bytes: &[u8]) {
            assert!(self.ingest.wants_body(), "the machine asked for no body");
            self.input(Input::Bytes(Bytes::copy_from_slice(bytes)));
        }

        fn end_body(&mut self) {
            self.input(Input::BodyEnd);
        }

        fn wait(&mut self, ms: u64) {
            self.now.at += Duration::from_millis(ms);
            self.now.wall_ms += ms as i64;
            self.ingest.handle_timeout(self.now);
            self.pump();
        }

        fn durable(&mut self, seq: u64, ok: bool) {
            self.input(Input::Durable { seq, ok });
        }

        fn pump(&mut self) {
            while let Some(out) = self.ingest.poll_output() {
                match out {
                    Output::Ack(a) => self.acks.push(a),
                    Output::End(e) => self.ends.push(e),
                    Output::Store(call) => {
                        let answer = match call {
                            StoreCall::Declare(_) => Some(Input::HeaderId(7)),
                            StoreCall::CheckStream => Some(Input::StreamChecked(self.facts)),
                            StoreCall::Begin { header_id, .. } => {
                                assert_eq!(header_id, 7);
                                if self.numbering_fails {
                                    Some(Input::Numbered(Err(())))
                                } else {
                                    self.next_seq += 1;
                                    Some(Input::Numbered(Ok(self.next_seq - 1)))
                                }
                            }
                            StoreCall::Frame { .. } => {
                                self.frames += 1;
                                None
                            }
                            StoreCall::Abandon { seq } => {
                                self.abandoned.push(seq);
                                None
                            }
                            StoreCall::Complete { fragment, persist } => {
                                assert_eq!(fragment.header_id, 7);
                                self.completed.push((fragment.seq, persist));
                                None
                            }
                        };
                        if let Some(a) = answer {
                            self.ingest.handle_input(self.now, a);
                        }
                    }
                }
            }
        }

        /// The acks so far, short: `BUFFERING 1`, `RECEIVED 1`, `PERSISTED 1`, `IDLE`,
        /// `ERROR 4004 @<timecode> #<seq>` (fragment number given as its sequence).
        fn log(&self) -> Vec<String> {
            let seq_of = |n: &str| {
                (1..100)
                    .find(|s| number(*s) == n)
                    .map_or("?".to_string(), |s| s.to_string())
            };
            self.acks
                .iter()
                .map(|a| match a {
                    Ack::Buffering { number, .. } => format!("BUFFERING {}", seq_of(number)),
                    Ack::Received { number, .. } => format!("RECEIVED {}", seq_of(number)),
                    Ack::Persisted { number, .. } => format!("PERSISTED {}", seq_of(number)),
                    Ack::Idle => "IDLE".to_string(),
                    Ack::Error {
                        error,
                        timecode,
                        number,
                    } => {
                        let mut s = format!("ERROR {}", error.id_and_code().0);
                        if let Some(t) = timecode {
                            s.push_str(&format!(" @{}", (*t - WALL as u64) / 2000));
                        }
                        if let Some(n) = number {
                            s.push_str(&format!(" #{}", seq_of(n)));
                        }
                        s
                    }
                })
                .collect()
        }
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fragments_are_buffering_received_then_persisted_in_order() {
        let mut h = Harness::new(limits());
        h.send(&header());
        h.send(&cluster(tc(0), 3, 100));
        assert_eq!(h.log(), strs(&["BUFFERING 1"]));
        assert_eq!(h.frames, 6, "frames reach live readers as they arrive");
        h.send(&cluster(tc(1), 3, 100));
        h.end_body();
        assert_eq!(
            h.log(),
            strs(&["BUFFERING 1", "RECEIVED 1", "BUFFERING 2", "RECEIVED 2"])
        );
        assert_eq!(h.completed, vec![(1, true), (2, true)]);
        assert_eq!(h.ends, vec![End::Finished]);
        assert!(!h.ingest.is_done(), "two fragments still to become durable");
        // Durability reported out of order: PERSISTED still leaves in fragment order.
        h.durable(2, true);
        assert_eq!(h.acks.len(), 4);
        h.durable(1, true);
        assert_eq!(&h.log()[4..], strs(&["PERSISTED 1", "PERSISTED 2"]));
        assert!(h.ingest.is_done());
        // The exact lines the producer SDK parses.
        assert_eq!(
            h.acks[0].line(),
            Bytes::from(format!(
                "{{\"EventType\":\"BUFFERING\",\"FragmentTimecode\":{},\"FragmentNumber\":\"{}\"}}\n",
                tc(0),
                number(1)
            ))
        );
    }

    #[test]
    fn streams_without_retention_get_no_persisted() {
        let mut h = Harness::new(limits());
        h.facts = Some(StreamFacts { persist: false });
        h.send(&header());
        h.send(&cluster(tc(0), 2, 10));
        h.end_body();
        assert_eq!(h.log(), strs(&["BUFFERING 1", "RECEIVED 1"]));
        assert_eq!(h.completed, vec![(1, false)]);
        assert!(h.ingest.is_done());
    }

    #[test]
    fn a_failed_write_is_error_5001_in_its_place() {
        let mut h = Harness::new(limits());
        h.send(&header());
        h.send(&cluster(tc(0), 2, 10));
        h.send(&cluster(tc(1), 2, 10));
        h.end_body();
        h.durable(1, false);
        h.durable(2, true);
        assert_eq!(&h.log()[4..], strs(&["ERROR 5001 @0 #1", "PERSISTED 2"]));
    }

    #[test]
    fn a_number_that_cannot_be_leased_is_error_5001_and_the_fragment_is_skipped() {
        let mut h = Harness::new(limits());
        h.send(&header());
        h.numbering_fails = true;
        h.send(&cluster(tc(0), 2, 10));
        h.numbering_fails = false;
        h.send(&cluster(tc(1), 2, 10));
        h.end_body();
        assert_eq!(
            h.log(),
            strs(&["ERROR 5001 @0", "BUFFERING 1", "RECEIVED 1"])
        );
        assert_eq!(h.frames, 4, "the skipped fragment's frames go nowhere");
    }

    #[test]
    fn idle_acks_while_silent_then_close() {
        let mut h = Harness::new(limits());
        h.send(&header());
        h.wait(2_999);
        assert!(h.acks.is_empty());
        h.wait(1);
        assert_eq!(h.log(), strs(&["IDLE"]));
        h.send(&cluster(tc(0), 1, 10));
        h.wait(2_999);
        assert_eq!(h.acks.len(), 2, "data resets the idle timer");
        for _ in 0..10 {
            h.wait(3_000);
        }
        // IDLE every 3 s until 30 s of silence, then the session closes without an ack.
        let idles = h.acks.iter().filter(|a| **a == Ack::Idle).count();
        assert_eq!(idles, 1 + 9);
        assert_eq!(h.ends, vec![End::Idle]);
        assert_eq!(h.abandoned, Vec::<u64>::new());
    }

    #[test]
    fn backpressure_past_the_pending_limit() {
        let mut l = limits();
        l.max_pending_bytes = 1_000;
        let mut h = Harness::new(l);
        h.send(&header());
        h.send(&cluster(tc(0), 2, 300));
        h.send(&cluster(tc(1), 2, 300));
        // Fragment 1 (~650 bytes) is pending: under the limit, reading goes on.
        assert!(h.ingest.wants_body());
        assert!(h.ingest.pending_bytes() > 600 && h.ingest.pending_bytes() < 1_000);
        h.send(&cluster(tc(2), 2, 300));
        assert!(h.ingest.pending_bytes() > 1_000);
        assert!(
            !h.ingest.wants_body(),
            "two fragments pending: past the limit"
        );
        h.durable(1, true);
        assert!(h.ingest.wants_body());
        assert_eq!(h.log().last().unwrap(), "PERSISTED 1");
    }

    #[test]
    fn body_error_is_4000_naming_the_fragment_in_progress() {
        let mut h = Harness::new(limits());
        h.send(&header());
        h.send(&cluster(tc(0), 2, 10));
        h.input(Input::BodyError);
        assert_eq!(h.log(), strs(&["BUFFERING 1", "ERROR 4000 @0 #1"]));
        assert_eq!(h.abandoned, vec![1]);
        assert_eq!(h.ends, vec![End::BodyBroken]);
        assert!(h.ingest.is_done());
    }

    #[test]
    fn an_oversized_fragment_is_4001_and_the_next_one_is_taken() {
        let mut h = Harness::new(limits());
        h.send(&header());
        h.send(&cluster(tc(0), 20, 900)); // ~18 KB > 10 KB
        h.send(&cluster(tc(1), 2, 10));
        h.end_body();
        assert_eq!(
            h.log(),
            strs(&[
                "BUFFERING 1",
                "ERROR 4001 @0 #1",
                "BUFFERING 2",
                "RECEIVED 2"
            ])
        );
        assert_eq!(h.abandoned, vec![1]);
        assert_eq!(h.completed, vec![(2, true)]);
    }

    #[test]
    fn a_frame_larger_than_a_fragment_may_be_is_4001_and_ends_the_session() {
        let mut h = Harness::new(limits());
        h.send(&header());
        h.send(&cluster(tc(0), 1, 20_000));
        assert_eq!(h.log(), strs(&["BUFFERING 1", "ERROR 4001 @0 #1"]));
        assert_eq!(h.ends, vec![End::Refused]);
    }

    #[test]
    fn a_fragment_too_long_is_4002() {
        let mut h = Harness::new(limits());
        h.send(&header());
        let mut c = write::unknown_size(ids::CLUSTER);
        c.extend(write::uint(ids::TIMECODE, tc(0)));
        for rel in [0i16, 10_000, 20_001] {
            c.extend(write::simple_block(1, rel, rel == 0, &[1; 10]));
            c.extend(write::simple_block(2, rel, true, &[1; 10]));
        }
        h.send(&c);
        h.end_body();
        assert_eq!(h.log(), strs(&["BUFFERING 1", "ERROR 4002 @0 #1"]));
        assert_eq!(h.ends, vec![End::Finished]);
    }

    #[test]
    fn the_connection_deadline_is_4003() {
        let mut l = limits();
        l.max_connection = Duration::from_secs(10);
        let mut h = Harness::new(l);
        h.send(&header());
        h.send(&cluster(tc(0), 2, 10));
        assert_eq!(
            h.ingest.poll_timeout(),
            Some(h.now.at + Duration::from_secs(3))
        );
        for _ in 0..3 {
            h.wait(3_000);
        }
        assert_eq!(
            h.ingest.poll_timeout(),
            Some(h.now.at + Duration::from_secs(1))
        );
        h.wait(1_000);
        assert_eq!(
            h.log(),
            strs(&["BUFFERING 1", "IDLE", "IDLE", "IDLE", "ERROR 4003"])
        );
        assert_eq!(h.abandoned, vec![1]);
        assert_eq!(h.ends, vec![End::TooLong]);
    }

    #[test]
    fn a_timecode_going_back_is_4004_and_skipped() {
        let mut h = Harness::new(limits());
        h.send(&header());
        h.send(&cluster(tc(5), 2, 10));
        h.send(&cluster(tc(3), 2, 10));
        h.send(&cluster(tc(6), 2, 10));
        h.end_body();
        assert_eq!(
            h.log(),
            strs(&[
                "BUFFERING 1",
                "RECEIVED 1",
                "ERROR 4004 @3",
                "BUFFERING 2",
                "RECEIVED 2"
            ])
        );
        assert_eq!(h.frames, 8);
    }

    #[test]
    fn garbage_is_4006() {
        let mut h = Harness::new(limits());
        h.send(b"this is not matroska at all, not even close to it");
        assert_eq!(h.log(), strs(&["ERROR 4006"]));
        assert_eq!(h.ends, vec![End::Refused]);
        assert!(h.ingest.is_done());
    }

    #[test]
    fn a_body_cut_inside_an_element_is_4006() {
        let mut h = Harness::new(limits());
        h.send(&header());
        let c = cluster(tc(0), 2, 100);
        h.send(&c[..c.len() - 20]);
        h.end_body();
        assert_eq!(h.log(), strs(&["BUFFERING 1", "ERROR 4006 @0 #1"]));
        assert_eq!(h.abandoned, vec![1]);
    }

    #[test]
    fn an_empty_body_is_no_error_but_a_headerless_one_is() {
        let mut h = Harness::new(limits());
        h.end_body();
        assert!(h.acks.is_empty());
        assert_eq!(h.ends, vec![End::Finished]);

        let mut h = Harness::new(limits());
        h.send(&cluster(tc(0), 2, 10));
        h.end_body();
        assert_eq!(h.log(), strs(&["ERROR 4006"]));
    }

    #[test]
    fn a_header_resumed_from_the_store_lets_a_producer_send_clusters_only() {
        let mut p = MkvParser::new();
        p.push(&header());
        let Ok(Some(Event::Header(hd))) = p.next_event() else {
            panic!("no header");
        };
        let mut head = hd.info.to_vec();
        head.extend_from_slice(&hd.tracks);
        let stored = StreamHeader {
            ebml: hd.ebml,
            segment_head: Bytes::from(head),
        };
        let now = Now {
            at: Instant::now(),
            wall_ms: WALL,
        };
        let mut h = Harness::new(limits());
        h.ingest = Ingest::new(limits(), now, CREATED, false, None, Some(stored));
        h.send(&cluster(tc(0), 2, 10));
        h.end_body();
        assert_eq!(h.log(), strs(&["BUFFERING 1", "RECEIVED 1"]));
    }

    #[test]
    fn bad_producer_timestamps_are_4007() {
        let mut h = Harness::new(limits());
        h.send(&header());
        // Eleven minutes ahead of the server clock (the limit is ten).
        h.send(&cluster(WALL as u64 + 660_000, 2, 10));
        // Past the year 9999.
        h.send(&cluster(300_000_000_000_000, 2, 10));
        h.send(&cluster(tc(1), 2, 10));
        h.end_body();
        assert_eq!(h.acks.len(), 4);
        assert!(matches!(
            h.acks[0],
            Ack::Error {
                error: AckError::InvalidProducerTimestamp,
                number: None,
                ..
            }
        ));
        assert!(matches!(
            h.acks[1],
            Ack::Error {
                error: AckError::InvalidProducerTimestamp,
                ..
            }
        ));
        assert_eq!(&h.log()[2..], strs(&["BUFFERING 1", "RECEIVED 1"]));
    }

    #[test]
    fn relative_timecodes_count_from_the_start_timestamp() {
        let start = WALL - 60_000;
        let mut h = Harness::with(limits(), true, Some(start));
        h.send(&header());
        h.send(&cluster(0, 2, 10));
        h.send(&cluster(2_000, 2, 10));
        h.end_body();
        let mut completed = Vec::new();
        // Re-run to see the timestamps the fragments were numbered with.
        let now = h.now;
        let mut ing = Ingest::new(limits(), now, CREATED, true, Some(start), None);
        ing.handle_input(now, Input::Bytes(Bytes::from(header())));
        ing.handle_input(now, Input::Bytes(Bytes::from(cluster(2_000, 2, 10))));
        while let Some(out) = ing.poll_output() {
            match out {
                Output::Store(StoreCall::Declare(_)) => ing.handle_input(now, Input::HeaderId(7)),
                Output::Store(StoreCall::CheckStream) => ing.handle_input(
                    now,
                    Input::StreamChecked(Some(StreamFacts { persist: true })),
                ),
                Output::Store(StoreCall::Begin { producer_ts_ms, .. }) => {
                    completed.push(producer_ts_ms);
                    ing.handle_input(now, Input::Numbered(Ok(1)));
                }
                _ => {}
            }
        }
        assert_eq!(completed, vec![start + 2_000]);
        assert_eq!(
            h.log(),
            strs(&["BUFFERING 1", "RECEIVED 1", "BUFFERING 2", "RECEIVED 2"])
        );
    }

    #[test]
    fn a_deleted_stream_is_4008() {
        let mut h = Harness::new(limits());
        h.send(&header());
        h.send(&cluster(tc(0), 2, 10));
        h.facts = None;
        h.send(&cluster(tc(1), 2, 10));
        assert_eq!(
            h.log(),
            strs(&["BUFFERING 1", "RECEIVED 1", "ERROR 4008 @1"])
        );
        assert_eq!(h.ends, vec![End::Refused]);

        // Deleted while a fragment is in progress (the log closed under the session).
        let mut h = Harness::new(limits());
        h.send(&header());
        h.send(&cluster(tc(0), 2, 10));
        h.input(Input::StreamGone);
        assert_eq!(h.log(), strs(&["BUFFERING 1", "ERROR 4008 @0 #1"]));
        assert_eq!(h.abandoned, vec![1]);
    }

    #[test]
    fn bad_metadata_is_4009_and_good_tags_reach_the_fragment() {
        let mut l = limits();
        l.max_fragment_tags = 2;
        let mut h = Harness::new(l);
        h.send(&header());
        let mut body = write::tags(&[("AWSSECRET", "x"), ("a", "1"), ("b", "2"), ("c", "3")]);
        body.extend(write::tags(&[("AWS_KINESISVIDEO_END_OF_FRAGMENT", "")]));
        h.send(&body);
        let long = "n".repeat(129);
        h.send(&write::tags(&[(long.as_str(), "v")]));
        h.send(&cluster(tc(0), 2, 10));
        assert_eq!(
            h.log(),
            strs(&["ERROR 4009", "ERROR 4009", "ERROR 4009", "BUFFERING 1"])
        );
        h.end_body();
        assert_eq!(h.completed, vec![(1, true)]);
    }

    #[test]
    fn a_frame_of_an_undeclared_track_is_4010() {
        let mut h = Harness::new(limits());
        h.send(&header());
        let mut c = write::unknown_size(ids::CLUSTER);
        c.extend(write::uint(ids::TIMECODE, tc(0)));
        c.extend(write::simple_block(1, 0, true, &[1; 10]));
        c.extend(write::simple_block(5, 0, true, &[1; 10]));
        h.send(&c);
        h.send(&cluster(tc(1), 2, 10));
        h.end_body();
        assert_eq!(
            h.log(),
            strs(&[
                "BUFFERING 1",
                "ERROR 4010 @0 #1",
                "BUFFERING 2",
                "RECEIVED 2"
            ])
        );
    }

    #[test]
    fn a_fragment_missing_a_track_is_4011() {
        let mut h = Harness::new(limits());
        h.send(&header());
        let mut c = write::unknown_size(ids::CLUSTER);
        c.extend(write::uint(ids::TIMECODE, tc(0)));
        c.extend(write::simple_block(1, 0, true, &[1; 10]));
        h.send(&c);
        h.end_body();
        assert_eq!(h.log(), strs(&["BUFFERING 1", "ERROR 4011 @0 #1"]));
        assert_eq!(h.abandoned, vec![1]);
        assert!(h.completed.is_empty());
    }

    #[test]
    fn too_many_tracks_is_4012() {
        let four: &[(u64, u64, &str, &[u8])] = &[
            (1, 1, "V_MPEG4/ISO/AVC", &[1]),
            (2, 2, "A_AAC", &[1]),
            (3, 2, "A_AAC", &[1]),
            (4, 2, "A_AAC", &[1]),
        ];
        let mut h = Harness::new(limits());
        h.send(&header_with(four, 1_000_000));
        assert_eq!(h.log(), strs(&["ERROR 4012"]));
        assert_eq!(h.ends, vec![End::Refused]);
    }

    #[test]
    fn a_timecode_scale_past_one_second_is_4006() {
        let mut h = Harness::new(limits());
        h.send(&header_with(AV, 2_000_000_000));
        assert_eq!(h.log(), strs(&["ERROR 4006"]));
    }

    #[test]
    fn a_newer_producer_or_shutdown_ends_without_an_error_ack() {
        let mut h = Harness::new(limits());
        h.send(&header());
        h.send(&cluster(tc(0), 2, 10));
        h.input(Input::Superseded);
        assert_eq!(h.log(), strs(&["BUFFERING 1"]));
        assert_eq!(h.abandoned, vec![1]);
        assert_eq!(h.ends, vec![End::Superseded]);

        let mut h = Harness::new(limits());
        h.send(&header());
        h.send(&cluster(tc(0), 2, 10));
        h.send(&cluster(tc(1), 2, 10));
        h.input(Input::Shutdown);
        assert_eq!(h.ends, vec![End::Shutdown]);
        assert_eq!(h.abandoned, vec![2]);
        assert!(!h.ingest.is_done(), "fragment 1 still becomes durable");
        h.durable(1, true);
        assert_eq!(h.log().last().unwrap(), "PERSISTED 1");
        assert!(h.ingest.is_done());
    }

    #[test]
    fn ack_error_codes() {
        assert_eq!(AckError::TimecodeLesserThanPrevious.id_and_code().0, 4004);
        assert_eq!(
            AckError::ArchivalError.id_and_code(),
            (5001, "ARCHIVAL_ERROR")
        );
        let line = Ack::Error {
            error: AckError::StreamNotActive,
            timecode: Some(5),
            number: Some("9".into()),
        }
        .line();
        assert_eq!(
            line,
            Bytes::from_static(
                b"{\"EventType\":\"ERROR\",\"FragmentTimecode\":5,\"FragmentNumber\":\"9\",\"ErrorId\":4008,\"ErrorCode\":\"STREAM_NOT_ACTIVE\"}\n"
            )
        );
    }
}
