//! Who may watch through a storage session, as KVS rules it: at most three viewers; a viewer
//! that left keeps its seat for a minute, in which only the same client id may take it back;
//! the same client id joining again replaces itself; and a viewer is sent away after three
//! minutes without a camera. Pure: time is an argument.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct SeatRules {
    pub max_viewers: usize,
    /// How long a departed viewer's seat stays taken.
    pub hold: Duration,
    /// How long a viewer may stay with no camera connected.
    pub without_camera: Duration,
}

impl Default for SeatRules {
    fn default() -> Self {
        Self {
            max_viewers: 3,
            hold: Duration::from_secs(60),
            without_camera: Duration::from_secs(180),
        }
    }
}

#[derive(Debug, Default)]
pub struct Seats {
    rules: SeatRules,
    /// Viewers connected (or connecting), with when they joined.
    seated: HashMap<String, Instant>,
    /// Viewers that left, with when.
    left: HashMap<String, Instant>,
}

impl Seats {
    pub fn new(rules: SeatRules) -> Self {
        Self {
            rules,
            ..Self::default()
        }
    }

    /// Whether `id` may join now; if so it is seated.
    pub fn admit(&mut self, now: Instant, id: &str) -> bool {
        let hold = self.rules.hold;
        self.left.retain(|_, at| now.duration_since(*at) < hold);
        let taken = self.seated.keys().filter(|k| *k != id).count()
            + self.left.keys().filter(|k| *k != id).count();
        if taken >= self.rules.max_viewers {
            return false;
        }
        self.left.remove(id);
        self.seated.insert(id.to_string(), now);
        true
    }

    /// `id` left (its peer ended): its seat is held for a while.
    pub fn leave(&mut self, now: Instant, id: &str) {
        if self.seated.remove(id).is_some() {
            self.left.insert(id.to_string(), now);
        }
    }

    /// When the viewer seated at `joined` must go, given the camera was last connected at
    /// `camera_seen` (now, if it is connected).
    pub fn deadline(&self, joined: Instant, camera_seen: Option<Instant>) -> Instant {
        let since = camera_seen.map_or(joined, |c| c.max(joined));
        since + self.rules.without_camera
    }

    pub fn joined(&self, id: &str) -> Option<Instant> {
        self.seated.get(id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_seats_held_a_minute_after_leaving_and_kept_by_the_same_id() {
        let t0 = Instant::now();
        let mut s = Seats::new(SeatRules::default());
        assert!(s.admit(t0, "a") && s.admit(t0, "b") && s.admit(t0, "c"));
        assert!(!s.admit(t0, "d"), "a fourth viewer is refused");
        assert!(
            s.admit(t0, "b"),
            "the same id joining again replaces itself"
        );
        s.leave(t0, "a");
        assert!(
            !s.admit(t0 + Duration::from_secs(30), "d"),
            "a's seat is held"
        );
        assert!(
            s.admit(t0 + Duration::from_secs(30), "a"),
            "a may take it back"
        );
        s.leave(t0 + Duration::from_secs(40), "a");
        assert!(
            s.admit(t0 + Duration::from_secs(101), "d"),
            "after a minute it is free"
        );
    }

    #[test]
    fn viewers_go_three_minutes_without_a_camera() {
        let t0 = Instant::now();
        let s = Seats::new(SeatRules::default());
        let three = Duration::from_secs(180);
        assert_eq!(s.deadline(t0, None), t0 + three);
        let seen = t0 + Duration::from_secs(50);
        assert_eq!(s.deadline(t0, Some(seen)), seen + three);
        assert_eq!(s.deadline(seen, Some(t0)), seen + three);
    }
}
