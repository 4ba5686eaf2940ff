//! Which fragments a session's playlist or manifest lists right now: a pure function of the
//! session, the stream's fragment index and the time, so every mode's rule is unit-tested.
//!
//! Segments are numbered by their place in the session's own sequence (not by fragment
//! number, which can skip), so a live playlist's media sequence grows by one per segment that
//! leaves it, as HLS requires.

use oxbow_store::FragmentMeta;

use super::session::{Discontinuity, Mode, Session};

/// A gap or overlap larger than this between fragments is a discontinuity (KVS: 50 ms).
const DISCONTINUITY_MS: i64 = 50;

/// How far back a LIVE session looks for its first fragments (KVS: 30 s).
pub const LIVE_LOOKBACK_MS: i64 = 30_000;

/// One listed fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub meta: FragmentMeta,
    /// A discontinuity comes before it.
    pub discontinuity: bool,
}

/// What a playlist lists now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub entries: Vec<Entry>,
    /// The session-sequence number of the first entry.
    pub first_number: u64,
    /// Discontinuities before the first entry.
    pub discontinuities_before: u64,
    /// No fragment will be added.
    pub ended: bool,
}

/// The fragment's time on the session's selector.
pub fn time_of(session: &Session, m: &FragmentMeta) -> i64 {
    if session.producer_time {
        m.producer_ts_ms
    } else {
        m.server_ts_ms
    }
}

fn in_range(session: &Session, m: &FragmentMeta) -> bool {
    let t = time_of(session, m);
    session.start_ms.is_none_or(|s| t >= s) && session.end_ms.is_none_or(|e| t <= e)
}

/// The fragments a session would list at issue time, to refuse a session with nothing to
/// play: LIVE wants one ingested in the last 30 s, the others one in their range.
pub fn has_media(session: &Session, fragments: &[FragmentMeta], now_ms: i64) -> bool {
    match session.mode {
        Mode::Live => fragments
            .iter()
            .any(|m| m.server_ts_ms >= now_ms - LIVE_LOOKBACK_MS),
        _ => fragments.iter().any(|m| in_range(session, m)),
    }
}

/// The first fragment a new LIVE session lists: the oldest of the newest `max`.
pub fn live_first_seq(fragments: &[FragmentMeta], max: usize) -> u64 {
    let n = fragments.len();
    fragments
        .get(n.saturating_sub(max.max(1)))
        .map(|m| m.seq)
        .unwrap_or(0)
}

/// The fragment a session numbers `number` (DASH's `$Number$`), pacing aside: every
/// fragment the session may list, in its order.
pub fn nth(session: &Session, fragments: &[FragmentMeta], number: u64) -> Option<FragmentMeta> {
    let mut listed = fragments.iter().filter(|m| match session.mode {
        Mode::Live => m.seq >= session.first_seq,
        _ => in_range(session, m),
    });
    if session.mode == Mode::OnDemand && number >= session.max_fragments as u64 {
        return None;
    }
    listed.nth(usize::try_from(number).ok()?).copied()
}

/// Whether a fragment is one the session may serve: in its range, and for LIVE not older
/// than its first.
pub fn serves(session: &Session, m: &FragmentMeta) -> bool {
    match session.mode {
        Mode::Live => m.seq >= session.first_seq,
        _ => in_range(session, m),
    }
}

/// How long each entry plays: until the next fragment starts when they are continuous (a
/// fragment's stored duration spans all its tracks, so audio that runs past the last video
/// frame would otherwise overlap the next fragment), else its stored duration. Media time is
/// the producer's, whichever clock selected the fragments (server times only say when they
/// arrived). `following` is the producer start of the fragment arriving after the last entry.
pub fn durations(entries: &[Entry], following: Option<i64>) -> Vec<i64> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let next = entries
                .get(i + 1)
                .map(|n| n.meta.producer_ts_ms)
                .or(following);
            let own = e.meta.duration_ms;
            match next.map(|n| n - e.meta.producer_ts_ms) {
                Some(gap) if gap > 0 && gap <= own + DISCONTINUITY_MS => gap,
                _ => own,
            }
        })
        .collect()
}

/// The session's window at `now_ms`. `fragments` is the stream's index, in ingestion order.
pub fn window(session: &Session, fragments: &[FragmentMeta], now_ms: i64) -> Window {
    let max = session.max_fragments.max(1);
    let eligible: Vec<FragmentMeta> = match session.mode {
        Mode::Live => fragments
            .iter()
            .filter(|m| m.seq >= session.first_seq)
            .copied()
            .collect(),
        Mode::OnDemand => fragments
            .iter()
            .filter(|m| in_range(session, m))
            .take(max)
            .copied()
            .collect(),
        Mode::LiveReplay => {
            // Paced as if played from the first fragment of the range when the session was
            // issued: a fragment is added once the media before it (on the producer's clock,
            // media time) has had time to play.
            let played = now_ms - session.issued_ms;
            let mut in_range = fragments.iter().filter(|m| in_range(session, m));
            let origin = in_range.clone().next().map(|m| m.producer_ts_ms);
            in_range
                .by_ref()
                .filter(|m| origin.is_some_and(|o| m.producer_ts_ms - o <= played))
                .copied()
                .collect()
        }
    };
    let mut entries = Vec::with_capacity(eligible.len());
    let mut previous: Option<&FragmentMeta> = None;
    for m in &eligible {
        let discontinuity = match previous {
            None => false,
            Some(p) if p.header_id != m.header_id => true,
            Some(p) => match session.discontinuity {
                Discontinuity::Always => true,
                Discontinuity::Never => false,
                Discontinuity::AtGaps => {
                    let expected = time_of(session, p) + p.duration_ms;
                    (time_of(session, m) - expected).abs() > DISCONTINUITY_MS
                }
            },
        };
        entries.push(Entry {
            meta: *m,
            discontinuity,
        });
        previous = Some(m);
    }
    let ended = match session.mode {
        Mode::OnDemand => true,
        // Every fragment of a closed range listed.
        Mode::LiveReplay => session.end_ms.is_some_and(|end| {
            end <= now_ms
                && fragments.iter().filter(|m| in_range(session, m)).count() == entries.len()
        }),
        Mode::Live => false,
    };
    let cut = if session.mode == Mode::OnDemand {
        0
    } else {
        entries.len().saturating_sub(max)
    };
    let discontinuities_before = entries[..cut].iter().filter(|e| e.discontinuity).count() as u64;
    Window {
        entries: entries.split_off(cut),
        first_number: cut as u64,
        discontinuities_before,
        ended,
    }
}

#[cfg(test)]
mod tests {
    use super::super::session::{Container, Protocol};
    use super::*;

    fn frag(seq: u64, t: i64) -> FragmentMeta {
        FragmentMeta {
            seq,
            producer_ts_ms: t,
            server_ts_ms: t + 100,
            duration_ms: 2000,
            size: 1000,
            header_id: 0,
            persisted: true,
        }
    }

    fn session(mode: Mode) -> Session {
        Session {
            protocol: Protocol::Hls,
            stream_key: "s".into(),
            creation_ms: 0,
            mode,
            container: Container::Fmp4,
            producer_time: true,
            start_ms: None,
            end_ms: None,
            max_fragments: 3,
            discontinuity: Discontinuity::Never,
            display_timestamp: false,
            display_number: false,
            first_seq: 0,
            issued_ms: 100_000,
            expires_ms: i64::MAX,
        }
    }

    /// Fragments 1..=n every 2 s from t = 10 s, numbers skipping 4 (an abandoned fragment).
    fn index(n: u64) -> Vec<FragmentMeta> {
        (1..=n + 1)
            .filter(|s| *s != 4)
            .enumerate()
            .map(|(i, s)| frag(s, 10_000 + 2000 * i as i64))
            .collect()
    }

    fn seqs(w: &Window) -> Vec<u64> {
        w.entries.iter().map(|e| e.meta.seq).collect()
    }

    #[test]
    fn live_slides_over_the_newest_and_numbers_by_place_not_fragment_number() {
        let mut s = session(Mode::Live);
        let all = index(6);
        s.first_seq = live_first_seq(&all[..3], 3);
        assert_eq!(s.first_seq, 1);
        let w = window(&s, &all[..3], 0);
        assert_eq!(
            (seqs(&w), w.first_number, w.ended),
            (vec![1, 2, 3], 0, false)
        );
        // Three more arrive (4 was skipped): the window moves by three places.
        let w = window(&s, &all, 0);
        assert_eq!((seqs(&w), w.first_number), (vec![5, 6, 7], 3));
    }

    #[test]
    fn on_demand_lists_the_oldest_in_range_up_to_the_maximum_and_ends() {
        let mut s = session(Mode::OnDemand);
        s.start_ms = Some(12_000);
        s.end_ms = Some(20_000);
        let w = window(&s, &index(10), 0);
        assert_eq!(
            (seqs(&w), w.first_number, w.ended),
            (vec![2, 3, 5], 0, true)
        );
        s.max_fragments = 100;
        assert_eq!(seqs(&window(&s, &index(10), 0)), vec![2, 3, 5, 6, 7]);
    }

    #[test]
    fn live_replay_adds_fragments_as_their_time_comes_and_ends_with_its_range() {
        let mut s = session(Mode::LiveReplay);
        s.start_ms = Some(10_000);
        s.end_ms = Some(16_000);
        s.max_fragments = 10;
        let all = index(10);
        // At issue only the first has "played"; 4.5 s later three have.
        assert_eq!(seqs(&window(&s, &all, 100_000)), vec![1]);
        assert_eq!(seqs(&window(&s, &all, 104_500)), vec![1, 2, 3]);
        assert!(!window(&s, &all, 104_500).ended);
        let done = window(&s, &all, 106_000);
        assert_eq!((seqs(&done), done.ended), (vec![1, 2, 3, 5], true));
    }

    #[test]
    fn discontinuities_follow_the_mode_and_header_changes() {
        let mut s = session(Mode::OnDemand);
        s.start_ms = Some(0);
        s.end_ms = Some(i64::MAX);
        s.max_fragments = 10;
        let mut all = vec![frag(1, 0), frag(2, 2000), frag(3, 4030), frag(4, 9000)];
        all[3].header_id = 0;
        let marks = |s: &Session, all: &[FragmentMeta]| {
            window(s, all, 0)
                .entries
                .iter()
                .map(|e| e.discontinuity)
                .collect::<Vec<_>>()
        };
        assert_eq!(marks(&s, &all), [false, false, false, false]);
        s.discontinuity = Discontinuity::Always;
        assert_eq!(marks(&s, &all), [false, true, true, true]);
        // 30 ms late is continuous; 3 s late is a gap.
        s.discontinuity = Discontinuity::AtGaps;
        assert_eq!(marks(&s, &all), [false, false, false, true]);
        // A new stream header (new codec private data) always is one.
        s.discontinuity = Discontinuity::Never;
        all[1].header_id = 1;
        assert_eq!(marks(&s, &all), [false, true, true, false]);
    }

    #[test]
    fn numbers_name_the_same_fragments_as_the_window() {
        let mut s = session(Mode::Live);
        let all = index(8);
        s.first_seq = 2;
        let w = window(&s, &all, 0);
        for (i, e) in w.entries.iter().enumerate() {
            assert_eq!(nth(&s, &all, w.first_number + i as u64), Some(e.meta));
        }
        assert_eq!(nth(&s, &all, 100), None);
        assert!(serves(&s, &all[1]) && !serves(&s, &all[0]));
    }

    #[test]
    fn entries_last_until_the_next_fragment_when_continuous() {
        let s = session(Mode::Live);
        let mut all = vec![frag(1, 0), frag(2, 1000), frag(3, 9000)];
        for f in &mut all {
            f.duration_ms = 1021;
        }
        let w = window(&s, &all, 0);
        // Continuous: until the next start; a gap: its own; the last: until the arriving one.
        assert_eq!(durations(&w.entries, Some(10_000)), [1000, 1021, 1000]);
        assert_eq!(durations(&w.entries, None), [1000, 1021, 1021]);
        // Server times are when fragments arrived (here all at once), not media time.
        let mut s = session(Mode::Live);
        s.producer_time = false;
        for f in &mut all {
            f.server_ts_ms = 5;
        }
        assert_eq!(
            durations(&window(&s, &all, 0).entries, None),
            [1000, 1021, 1021]
        );
    }

    #[test]
    fn a_live_session_needs_recent_media_and_the_others_media_in_range() {
        let all = index(3);
        let live = session(Mode::Live);
        assert!(has_media(&live, &all, 20_000));
        assert!(!has_media(&live, &all, 20_000 + LIVE_LOOKBACK_MS + 1_000));
        let mut od = session(Mode::OnDemand);
        od.start_ms = Some(50_000);
        od.end_ms = Some(60_000);
        assert!(!has_media(&od, &all, 0));
    }
}
