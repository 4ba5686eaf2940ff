//! GetMedia's rules as sans-IO pieces: where a response starts ([`first_fragment`]), and how
//! it follows the live stream once the archive is sent ([`Follower`]): which live events
//! become chunks, when a reader that fell behind goes back to the index, and when the
//! response ends at the live edge. No clock, socket or store inside; `get.rs` drives them and
//! these tests run faster than real time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use oxbow_store::{FragmentMeta, LiveEvent, Missed, Partial};

/// Where GetMedia starts, as the selector says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The first fragment with this number or a later one (EARLIEST is 0).
    Seq(u64),
    /// FRAGMENT_NUMBER: exactly this fragment, which must exist.
    Exactly(u64),
    /// CONTINUATION_TOKEN: the fragment after this one.
    After(u64),
    /// The fragment in progress, or else the next one to start.
    Now,
    /// The fragment whose time span holds this instant, or the next (producer or server
    /// clock).
    Time { producer: bool, ms: i64 },
}

/// What the stream holds when a response starts.
pub struct Snapshot<'a> {
    /// The index, oldest first.
    pub index: &'a [FragmentMeta],
    /// The number the next fragment will get.
    pub next_seq: u64,
    /// The fragment in progress, if any.
    pub in_progress: Option<u64>,
}

/// The start is not available: the response is only the 4000 error chunk, as on KVS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAvailable;

/// The first fragment number a response sends.
pub fn first_fragment(start: Start, s: &Snapshot<'_>) -> Result<u64, NotAvailable> {
    let oldest = s.index.first().map(|m| m.seq);
    match start {
        // A fragment the stream never had, or that retention removed, is not available.
        Start::Exactly(seq) if s.index.binary_search_by_key(&seq, |m| m.seq).is_ok() => Ok(seq),
        Start::Exactly(_) => Err(NotAvailable),
        // A continuation token is the last fragment a reader got: one from the future is
        // not a token this stream handed out, and one whose successor expired is too old.
        Start::After(seq) if seq + 1 > s.next_seq => Err(NotAvailable),
        Start::After(seq) | Start::Seq(seq) => {
            let seq = if let Start::After(_) = start {
                seq + 1
            } else {
                seq
            };
            if seq > 0 && oldest.is_some_and(|f| seq < f) {
                Err(NotAvailable)
            } else {
                Ok(seq)
            }
        }
        Start::Now => Ok(s.in_progress.unwrap_or(s.next_seq)),
        Start::Time { producer, ms } => Ok(first_at(s.index, producer, ms).unwrap_or(s.next_seq)),
    }
}

/// The fragment a timestamp selector starts at. A fragment covers [start, start +
/// duration): an instant equal to a fragment's start begins with that fragment, and an
/// instant inside a fragment's span begins with it only if no later fragment has started by
/// then (fragments that arrived faster than real time overlap on the server clock).
fn first_at(fragments: &[FragmentMeta], producer: bool, ms: i64) -> Option<u64> {
    let start = |m: &FragmentMeta| {
        if producer {
            m.producer_ts_ms
        } else {
            m.server_ts_ms
        }
    };
    fragments.iter().enumerate().find_map(|(i, m)| {
        let t = start(m);
        let next_started = fragments.get(i + 1).is_some_and(|n| start(n) <= ms);
        (t >= ms || (t + m.duration_ms > ms && !next_started)).then_some(m.seq)
    })
}

/// What to write next while following the live stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Open a fragment's chunk (document start, tags, the live Cluster's start). The driver
    /// answers [`Follower::started`]: a fragment whose stream header is unknown is skipped.
    Open {
        seq: u64,
        header_id: u32,
        server_ts_ms: i64,
        producer_ts_ms: i64,
        cluster_timecode: u64,
    },
    /// A frame of the open fragment.
    Frame(Bytes),
    /// Close the open fragment's chunk with its tags and a continuation token.
    Close {
        seq: u64,
        server_ts_ms: i64,
        tags: Vec<(String, String)>,
    },
    /// The open fragment was abandoned by its producer: close the chunk with nothing more.
    Cut,
    /// The reader fell behind between fragments: read the index again from the cursor, then
    /// follow anew.
    CatchUp,
    /// The response is over (the live edge stayed quiet, or the feed ended, or the reader
    /// fell behind inside a fragment it cannot finish).
    Finish,
}

/// Follows a stream's live events from `cursor` (the first fragment not yet sent).
pub struct Follower {
    cursor: u64,
    /// The fragment being forwarded and its server timestamp.
    open: Option<(u64, i64)>,
    idle: Duration,
    deadline: Instant,
}

impl Follower {
    pub fn new(cursor: u64, idle: Duration, now: Instant) -> Self {
        Self {
            cursor,
            open: None,
            idle,
            deadline: now + idle,
        }
    }

    /// The first fragment not yet sent (where a catch-up starts).
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// When the response ends if nothing happens.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Joins the fragment in progress at subscription time, from its start.
    pub fn join(&mut self, partial: Option<Partial>) -> Vec<Step> {
        let Some(p) = partial.filter(|p| p.seq >= self.cursor) else {
            return Vec::new();
        };
        let mut steps = vec![Step::Open {
            seq: p.seq,
            header_id: p.header_id,
            server_ts_ms: p.server_ts_ms,
            producer_ts_ms: p.producer_ts_ms,
            cluster_timecode: p.cluster_timecode,
        }];
        steps.extend(p.frames.into_iter().map(Step::Frame));
        self.open = Some((p.seq, p.server_ts_ms));
        steps
    }

    /// The driver could not open the fragment (its header is unknown): skip its frames.
    pub fn started(&mut self, ok: bool) {
        if !ok {
            self.open = None;
        }
    }

    /// One live event (or why none came).
    pub fn event(&mut self, now: Instant, event: Result<LiveEvent, Missed>) -> Vec<Step> {
        self.deadline = now + self.idle;
        let event = match event {
            Ok(e) => e,
            Err(Missed::Lagged(_)) if self.open.is_none() => return vec![Step::CatchUp],
            Err(_) => return vec![Step::Finish],
        };
        match event {
            LiveEvent::Start {
                seq,
                header_id,
                producer_ts_ms,
                server_ts_ms,
                cluster_timecode,
            } if self.open.is_none() && seq >= self.cursor => {
                self.open = Some((seq, server_ts_ms));
                vec![Step::Open {
                    seq,
                    header_id,
                    server_ts_ms,
                    producer_ts_ms,
                    cluster_timecode,
                }]
            }
            LiveEvent::Frame { seq, element } if self.is_open(seq) => vec![Step::Frame(element)],
            LiveEvent::End { seq, ok, tags } if self.is_open(seq) => {
                let server_ts_ms = self.open.take().map_or(0, |(_, t)| t);
                self.cursor = seq + 1;
                if ok {
                    vec![Step::Close {
                        seq,
                        server_ts_ms,
                        tags,
                    }]
                } else {
                    vec![Step::Cut]
                }
            }
            _ => Vec::new(),
        }
    }

    /// Time passed: past the deadline with nothing new, the response is over.
    pub fn timeout(&mut self, now: Instant) -> Option<Step> {
        (now >= self.deadline).then_some(Step::Finish)
    }

    fn is_open(&self, seq: u64) -> bool {
        self.open.is_some_and(|(s, _)| s == seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(seq: u64, producer: i64, server: i64, duration: i64) -> FragmentMeta {
        FragmentMeta {
            seq,
            producer_ts_ms: producer,
            server_ts_ms: server,
            duration_ms: duration,
            size: 100,
            header_id: 1,
            persisted: true,
        }
    }

    /// Fragments 5..=8, two seconds each, producer clock 1000 ms behind the server's.
    fn index() -> Vec<FragmentMeta> {
        (5..=8)
            .map(|s| meta(s, s as i64 * 2000 - 1000, s as i64 * 2000, 2000))
            .collect()
    }

    fn first(start: Start, in_progress: Option<u64>) -> Result<u64, NotAvailable> {
        let index = index();
        first_fragment(
            start,
            &Snapshot {
                index: &index,
                next_seq: 10,
                in_progress,
            },
        )
    }

    #[test]
    fn selectors_pick_their_first_fragment() {
        assert_eq!(
            first(Start::Seq(0), None),
            Ok(0),
            "EARLIEST: whatever is oldest"
        );
        assert_eq!(first(Start::Exactly(6), None), Ok(6));
        assert_eq!(first(Start::Exactly(4), None), Err(NotAvailable), "expired");
        assert_eq!(
            first(Start::Exactly(9), None),
            Err(NotAvailable),
            "never stored"
        );
        assert_eq!(first(Start::After(6), None), Ok(7));
        assert_eq!(
            first(Start::After(9), None),
            Ok(10),
            "the next one to arrive"
        );
        assert_eq!(
            first(Start::After(10), None),
            Err(NotAvailable),
            "from the future"
        );
        assert_eq!(
            first(Start::After(3), None),
            Err(NotAvailable),
            "its successor expired"
        );
        assert_eq!(
            first(Start::Now, Some(9)),
            Ok(9),
            "joins the fragment in progress"
        );
        assert_eq!(first(Start::Now, None), Ok(10));
        let server = |ms| Start::Time {
            producer: false,
            ms,
        };
        assert_eq!(
            first(server(12_000), None),
            Ok(6),
            "a fragment's exact start"
        );
        assert_eq!(first(server(12_500), None), Ok(6), "inside its span");
        assert_eq!(first(server(1_000), None), Ok(5), "before everything");
        assert_eq!(
            first(server(99_000), None),
            Ok(10),
            "after everything: live"
        );
        let producer = Start::Time {
            producer: true,
            ms: 11_000,
        };
        assert_eq!(first(producer, None), Ok(6), "by the producer's clock");
    }

    #[test]
    fn overlapping_fragments_start_at_the_latest_that_began() {
        // Sent faster than real time: 1 and 2 both span 10_500 on the server clock.
        let index = vec![meta(1, 0, 10_000, 2000), meta(2, 2000, 10_400, 2000)];
        let s = Snapshot {
            index: &index,
            next_seq: 3,
            in_progress: None,
        };
        let at = |ms| Start::Time {
            producer: false,
            ms,
        };
        assert_eq!(first_fragment(at(10_200), &s), Ok(1));
        assert_eq!(first_fragment(at(10_500), &s), Ok(2));
    }

    fn start(seq: u64, ts: i64) -> LiveEvent {
        LiveEvent::Start {
            seq,
            header_id: 1,
            producer_ts_ms: ts,
            server_ts_ms: ts + 5,
            cluster_timecode: ts as u64,
        }
    }

    fn frame(seq: u64, b: &'static [u8]) -> LiveEvent {
        LiveEvent::Frame {
            seq,
            element: Bytes::from_static(b),
        }
    }

    fn end(seq: u64, ok: bool) -> LiveEvent {
        LiveEvent::End {
            seq,
            ok,
            tags: vec![("k".into(), "v".into())],
        }
    }

    /// Steps, short: `open 3`, `frame a`, `close 3`, `cut`, `catch-up`, `finish`.
    fn short(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Open { seq, .. } => format!("open {seq}"),
                Step::Frame(b) => format!("frame {}", String::from_utf8_lossy(b)),
                Step::Close { seq, .. } => format!("close {seq}"),
                Step::Cut => "cut".into(),
                Step::CatchUp => "catch-up".into(),
                Step::Finish => "finish".into(),
            })
            .collect()
    }

    fn feed(f: &mut Follower, now: Instant, events: Vec<LiveEvent>) -> Vec<String> {
        let mut out = Vec::new();
        for e in events {
            out.extend(short(&f.event(now, Ok(e))));
        }
        out
    }

    #[test]
    fn joins_the_fragment_in_progress_from_its_start() {
        let now = Instant::now();
        let mut f = Follower::new(3, Duration::from_secs(3), now);
        let partial = Partial {
            seq: 3,
            header_id: 1,
            producer_ts_ms: 100,
            server_ts_ms: 105,
            cluster_timecode: 100,
            frames: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        };
        assert_eq!(
            short(&f.join(Some(partial))),
            ["open 3", "frame a", "frame b"]
        );
        let steps = feed(
            &mut f,
            now,
            vec![frame(3, b"c"), end(3, true), start(4, 200)],
        );
        assert_eq!(steps, ["frame c", "close 3", "open 4"]);
        assert_eq!(f.cursor(), 4);
    }

    #[test]
    fn the_archive_hand_off_skips_what_was_already_sent() {
        // The archive sent up to 6; the live feed still carries the end of 6.
        let now = Instant::now();
        let mut f = Follower::new(7, Duration::from_secs(3), now);
        let stale = Partial {
            seq: 6,
            header_id: 1,
            producer_ts_ms: 0,
            server_ts_ms: 0,
            cluster_timecode: 0,
            frames: vec![],
        };
        assert!(f.join(Some(stale)).is_empty());
        let steps = feed(
            &mut f,
            now,
            vec![
                frame(6, b"x"),
                end(6, true),
                start(7, 300),
                frame(7, b"y"),
                end(7, true),
            ],
        );
        assert_eq!(steps, ["open 7", "frame y", "close 7"]);
        // The close carries the server timestamp of the fragment's start.
        let mut f = Follower::new(7, Duration::from_secs(3), now);
        f.event(now, Ok(start(7, 300)));
        let close = f.event(now, Ok(end(7, true)));
        assert_eq!(
            close,
            vec![Step::Close {
                seq: 7,
                server_ts_ms: 305,
                tags: vec![("k".into(), "v".into())]
            }]
        );
    }

    #[test]
    fn an_abandoned_fragment_is_cut_and_the_next_one_follows() {
        let now = Instant::now();
        let mut f = Follower::new(1, Duration::from_secs(3), now);
        let steps = feed(
            &mut f,
            now,
            vec![
                start(1, 0),
                frame(1, b"a"),
                end(1, false),
                start(2, 10),
                end(2, true),
            ],
        );
        assert_eq!(steps, ["open 1", "frame a", "cut", "open 2", "close 2"]);
    }

    #[test]
    fn a_fragment_whose_header_is_unknown_is_skipped() {
        let now = Instant::now();
        let mut f = Follower::new(1, Duration::from_secs(3), now);
        assert_eq!(feed(&mut f, now, vec![start(1, 0)]), ["open 1"]);
        f.started(false);
        let steps = feed(&mut f, now, vec![frame(1, b"a"), end(1, true), start(2, 9)]);
        assert_eq!(steps, ["open 2"]);
    }

    #[test]
    fn falling_behind_between_fragments_catches_up_inside_one_ends() {
        let now = Instant::now();
        let mut f = Follower::new(1, Duration::from_secs(3), now);
        assert_eq!(short(&f.event(now, Err(Missed::Lagged(9)))), ["catch-up"]);
        feed(&mut f, now, vec![start(1, 0)]);
        assert_eq!(short(&f.event(now, Err(Missed::Lagged(9)))), ["finish"]);
        let mut f = Follower::new(1, Duration::from_secs(3), now);
        assert_eq!(short(&f.event(now, Err(Missed::Closed))), ["finish"]);
    }

    #[test]
    fn the_response_ends_after_the_idle_time_with_nothing_new() {
        let t0 = Instant::now();
        let mut f = Follower::new(1, Duration::from_secs(3), t0);
        assert_eq!(f.deadline(), t0 + Duration::from_secs(3));
        assert_eq!(f.timeout(t0 + Duration::from_millis(2_999)), None);
        // Any event, even one for a fragment this reader ignores, moves the deadline.
        f.event(t0 + Duration::from_secs(2), Ok(frame(9, b"z")));
        assert_eq!(f.timeout(t0 + Duration::from_millis(4_999)), None);
        assert_eq!(f.timeout(t0 + Duration::from_secs(5)), Some(Step::Finish));
    }
}
