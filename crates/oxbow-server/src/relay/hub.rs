//! The signaling hub as a sans-IO state machine: who is connected to which channel as master
//! or viewer, how SDP offers, answers and ICE candidates are routed between them, what waits
//! for a recipient that is not connected yet (for the channel's `MessageTtlSeconds`), and the
//! limits (viewers per channel, message rates, payload size, idle time, connection age).
//! Connections are numbers; everything the hub wants done comes out as `(connection, Out)`,
//! and time is always an argument. The driver (`signaling/mod.rs`) owns the sockets.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

pub type ConnId = u64;

/// What a connection should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Send this text frame.
    Text(String),
    /// Close the connection (after sending what came before).
    Close,
}

/// Who a connection is on its channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    Master,
    Viewer(String),
}

#[derive(Debug, Clone)]
pub struct HubLimits {
    /// Viewers connected to one channel at once (KVS: 10).
    pub max_viewers: usize,
    /// Longest `messagePayload` accepted (KVS: "10K").
    pub max_payload: usize,
    /// A connection with no data frame for this long is closed (KVS: 10 minutes).
    pub idle: Duration,
    /// A connection is closed at this age (KVS: 1 hour)...
    pub max_duration: Duration,
    /// ... after a GO_AWAY this long before (KVS: 1 minute).
    pub go_away_grace: Duration,
    /// Messages per second per connection (KVS: 5 offers, 5 answers, 20 candidates).
    pub offers_per_sec: u32,
    pub answers_per_sec: u32,
    pub candidates_per_sec: u32,
    /// Candidates kept for one absent recipient at most.
    pub max_queued: usize,
}

impl Default for HubLimits {
    fn default() -> Self {
        Self {
            max_viewers: 10,
            max_payload: 10_240,
            idle: Duration::from_secs(600),
            max_duration: Duration::from_secs(3600),
            go_away_grace: Duration::from_secs(60),
            offers_per_sec: 5,
            answers_per_sec: 5,
            candidates_per_sec: 20,
            max_queued: 100,
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The channel already has its maximum of viewers.
    TooManyViewers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Offer,
    Answer,
    Candidate,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "SDP_OFFER" => Some(Self::Offer),
            "SDP_ANSWER" => Some(Self::Answer),
            "ICE_CANDIDATE" => Some(Self::Candidate),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Offer => "SDP_OFFER",
            Self::Answer => "SDP_ANSWER",
            Self::Candidate => "ICE_CANDIDATE",
        }
    }
}

/// Messages waiting for a recipient that is not connected: the newest offer and answer (a
/// newer one overwrites an undelivered one) and the candidates in order, each with the
/// instant it expires.
#[derive(Default)]
struct Waiting {
    offer: Option<(Instant, String)>,
    answer: Option<(Instant, String)>,
    candidates: VecDeque<(Instant, String)>,
}

impl Waiting {
    fn take_live(&mut self, now: Instant) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (until, text) in self.offer.take().into_iter().chain(self.answer.take()) {
            if until > now {
                out.push(text);
            }
        }
        out.extend(
            self.candidates
                .drain(..)
                .filter(|(until, _)| *until > now)
                .map(|(_, t)| t),
        );
        out
    }

    fn is_empty(&self) -> bool {
        self.offer.is_none() && self.answer.is_none() && self.candidates.is_empty()
    }
}

#[derive(Default)]
struct Channel {
    master: Option<ConnId>,
    viewers: HashMap<String, ConnId>,
    waiting: HashMap<Role, Waiting>,
}

struct Conn {
    channel: String,
    role: Role,
    ttl: Duration,
    connected: Instant,
    last_data: Instant,
    go_away_sent: bool,
    /// The start of the current one-second window and the messages of each action in it.
    window: (Instant, [u32; 3]),
}

#[derive(Default)]
pub struct Hub {
    limits: HubLimits,
    channels: HashMap<String, Channel>,
    conns: HashMap<ConnId, Conn>,
    next_id: ConnId,
}

/// A client message, with its keys matched the way the SDKs send them (the JS SDK in
/// camelCase, the C SDK in PascalCase); unknown members are ignored.
struct ClientMessage {
    action: Option<String>,
    recipient: Option<String>,
    payload: Option<String>,
    correlation: Option<String>,
}

fn member(obj: &Map<String, Value>, name: &str) -> Option<String> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
}

fn parse_message(text: &str) -> Option<ClientMessage> {
    let Value::Object(obj) = serde_json::from_str::<Value>(text).ok()? else {
        return None;
    };
    Some(ClientMessage {
        action: member(&obj, "action"),
        recipient: member(&obj, "recipientClientId").filter(|r| !r.is_empty()),
        payload: member(&obj, "messagePayload"),
        correlation: member(&obj, "correlationId").filter(|c| !c.is_empty()),
    })
}

/// A relayed message as the recipient gets it; the master has no client id, so its messages
/// carry none.
fn event(sender: &Role, action: Action, payload: &str) -> String {
    let mut e = Map::new();
    if let Role::Viewer(id) = sender {
        e.insert("senderClientId".into(), id.clone().into());
    }
    e.insert("messageType".into(), action.name().into());
    e.insert("messagePayload".into(), payload.into());
    Value::Object(e).to_string()
}

/// The STATUS_RESPONSE a message with a correlation id gets when it fails.
fn status(correlation: &str, error: &str, code: u16, description: &str) -> String {
    json!({
        "messageType": "STATUS_RESPONSE",
        "statusResponse": {
            "correlationId": correlation,
            "errorType": error,
            "statusCode": code.to_string(),
            "description": description,
        }
    })
    .to_string()
}

pub const GO_AWAY: &str = r#"{"messageType":"GO_AWAY"}"#;

impl Hub {
    pub fn new(limits: HubLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Connects a client to `channel` (its ARN) as `role`; `ttl` is the channel's message
    /// retention. The newest master (or viewer with the same client id) replaces the one
    /// before, which is closed. Messages waiting for this role are delivered at once.
    pub fn connect(
        &mut self,
        now: Instant,
        channel: &str,
        ttl: Duration,
        role: Role,
    ) -> Result<(ConnId, Vec<(ConnId, Out)>), Refused> {
        let ch = self.channels.entry(channel.to_string()).or_default();
        let replaced = match &role {
            Role::Master => ch.master,
            Role::Viewer(id) => match ch.viewers.get(id) {
                Some(old) => Some(*old),
                None if !is_internal(id)
                    && ch.viewers.keys().filter(|v| !is_internal(v)).count()
                        >= self.limits.max_viewers =>
                {
                    return Err(Refused::TooManyViewers)
                }
                None => None,
            },
        };
        self.next_id += 1;
        let id = self.next_id;
        match &role {
            Role::Master => ch.master = Some(id),
            Role::Viewer(v) => {
                ch.viewers.insert(v.clone(), id);
            }
        }
        let mut out = Vec::new();
        if let Some(w) = ch.waiting.get_mut(&role) {
            out.extend(w.take_live(now).into_iter().map(|t| (id, Out::Text(t))));
            ch.waiting.remove(&role);
        }
        self.conns.insert(
            id,
            Conn {
                channel: channel.to_string(),
                role,
                ttl,
                connected: now,
                last_data: now,
                go_away_sent: false,
                window: (now, [0; 3]),
            },
        );
        if let Some(old) = replaced {
            if let Some(c) = self.conns.remove(&old) {
                tracing::info!(channel, role = ?c.role, "a newer connection took over");
            }
            out.push((old, Out::Close));
        }
        Ok((id, out))
    }

    /// Forgets a connection; messages for it wait (within the TTL) for its successor.
    pub fn disconnect(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        let Some(ch) = self.channels.get_mut(&c.channel) else {
            return;
        };
        match &c.role {
            Role::Master if ch.master == Some(conn) => ch.master = None,
            Role::Viewer(id) if ch.viewers.get(id) == Some(&conn) => {
                ch.viewers.remove(id);
            }
            _ => {}
        }
        if ch.master.is_none() && ch.viewers.is_empty() && ch.waiting.is_empty() {
            self.channels.remove(&c.channel);
        }
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// One text frame from `conn`.
    pub fn message(&mut self, now: Instant, conn: ConnId, text: &str) -> Vec<(ConnId, Out)> {
        let limits = self.limits.clone();
        let Some(c) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        c.last_data = now;
        let Some(msg) = parse_message(text) else {
            tracing::debug!(
                conn,
                "signaling: a frame that is not a JSON object, ignored"
            );
            return Vec::new();
        };
        let fail = |error: &str, code: u16, why: &str| match &msg.correlation {
            Some(id) => vec![(conn, Out::Text(status(id, error, code, why)))],
            None => {
                tracing::debug!(conn, why, "signaling: message refused");
                Vec::new()
            }
        };
        let Some(action) = msg.action.as_deref().and_then(Action::parse) else {
            return fail(
                "InvalidArgumentException",
                400,
                "action must be SDP_OFFER, SDP_ANSWER or ICE_CANDIDATE.",
            );
        };
        let Some(payload) = msg.payload.as_deref().filter(|p| !p.is_empty()) else {
            return fail(
                "InvalidArgumentException",
                400,
                "messagePayload is required.",
            );
        };
        if payload.len() > limits.max_payload {
            return fail(
                "InvalidArgumentException",
                400,
                "messagePayload is longer than allowed.",
            );
        }
        if msg
            .correlation
            .as_deref()
            .is_some_and(|c| c.len() > 256 || !c.bytes().all(id_byte))
        {
            return Vec::new();
        }
        if now.duration_since(c.window.0) >= Duration::from_secs(1) {
            c.window = (now, [0; 3]);
        }
        let (slot, rate) = match action {
            Action::Offer => (0, limits.offers_per_sec),
            Action::Answer => (1, limits.answers_per_sec),
            Action::Candidate => (2, limits.candidates_per_sec),
        };
        c.window.1[slot] += 1;
        if c.window.1[slot] > rate {
            return fail(
                "ClientLimitExceededException",
                400,
                "The message rate of this connection is over its limit.",
            );
        }
        // A viewer talks to the master (any recipient is ignored), except on a channel whose
        // storage session runs: peers then talk to the session, not to each other (the JS SDK
        // lets viewers name no recipient). The master must name the viewer. Oxbow's own
        // participant may name a viewer or send to the master.
        let session = self
            .channels
            .get(&c.channel)
            .and_then(|ch| ch.viewers.keys().find(|v| is_internal(v)).cloned());
        let recipient = match (&c.role, &msg.recipient, session) {
            (Role::Viewer(me), Some(v), _) if is_internal(me) => Role::Viewer(v.clone()),
            (Role::Viewer(me), _, Some(session)) if !is_internal(me) => Role::Viewer(session),
            (Role::Viewer(_), _, _) => Role::Master,
            (Role::Master, Some(v), _) => Role::Viewer(v.clone()),
            (Role::Master, None, _) => {
                return fail(
                    "InvalidArgumentException",
                    400,
                    "recipientClientId is required for messages from the master.",
                )
            }
        };
        let text = event(&c.role, action, payload);
        let ttl = c.ttl;
        let Some(ch) = self.channels.get_mut(&c.channel) else {
            return Vec::new();
        };
        let to = match &recipient {
            Role::Master => ch.master,
            Role::Viewer(v) => ch.viewers.get(v).copied(),
        };
        if let Some(to) = to {
            return vec![(to, Out::Text(text))];
        }
        let w = ch.waiting.entry(recipient).or_default();
        let until = now + ttl;
        match action {
            Action::Offer => w.offer = Some((until, text)),
            Action::Answer => w.answer = Some((until, text)),
            Action::Candidate => {
                w.candidates.retain(|(u, _)| *u > now);
                if w.candidates.len() >= limits.max_queued {
                    return fail(
                        "ClientLimitExceededException",
                        400,
                        "Too many messages are waiting for this recipient.",
                    );
                }
                w.candidates.push_back((until, text));
            }
        }
        Vec::new()
    }

    /// When [`Hub::timeout`] is next due for `conn`.
    pub fn poll_timeout(&self, conn: ConnId) -> Option<Instant> {
        let c = self.conns.get(&conn)?;
        let go_away = c.connected + self.limits.max_duration - self.limits.go_away_grace;
        let end = c.connected + self.limits.max_duration;
        let age = if c.go_away_sent { end } else { go_away };
        Some(age.min(c.last_data + self.limits.idle))
    }

    /// Time passed for `conn`: idle too long, or old enough for GO_AWAY or the close.
    pub fn timeout(&mut self, now: Instant, conn: ConnId) -> Vec<(ConnId, Out)> {
        let limits = &self.limits;
        let Some(c) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        let age = now.duration_since(c.connected);
        if now.duration_since(c.last_data) >= limits.idle || age >= limits.max_duration {
            return vec![(conn, Out::Close)];
        }
        if !c.go_away_sent && age + limits.go_away_grace >= limits.max_duration {
            c.go_away_sent = true;
            return vec![(conn, Out::Text(GO_AWAY.into()))];
        }
        Vec::new()
    }

    /// Drops expired waiting messages (and channels left with nothing).
    pub fn sweep(&mut self, now: Instant) {
        self.channels.retain(|_, ch| {
            for w in ch.waiting.values_mut() {
                if w.offer.as_ref().is_some_and(|(u, _)| *u <= now) {
                    w.offer = None;
                }
                if w.answer.as_ref().is_some_and(|(u, _)| *u <= now) {
                    w.answer = None;
                }
                w.candidates.retain(|(u, _)| *u > now);
            }
            ch.waiting.retain(|_, w| !w.is_empty());
            ch.master.is_some() || !ch.viewers.is_empty() || !ch.waiting.is_empty()
        });
    }
}

/// Oxbow's own participants (a WebRTC storage session) use client ids starting `AWS_`, which
/// clients are refused; they take no viewer's place.
fn is_internal(client_id: &str) -> bool {
    client_id.starts_with("AWS_")
}

fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;

    const CH: &str = "arn:aws:kinesisvideo:us-east-1:123456789012:channel/c/1";
    const TTL: Duration = Duration::from_secs(60);

    fn viewer(id: &str) -> Role {
        Role::Viewer(id.into())
    }

    fn text(out: &[(ConnId, Out)], to: ConnId) -> Vec<Value> {
        out.iter()
            .filter(|(c, _)| *c == to)
            .filter_map(|(_, o)| match o {
                Out::Text(t) => Some(serde_json::from_str(t).unwrap()),
                Out::Close => None,
            })
            .collect()
    }

    #[test]
    fn viewer_to_master_and_back_with_client_ids() {
        let now = Instant::now();
        let mut hub = Hub::new(HubLimits::default());
        let (m, _) = hub.connect(now, CH, TTL, Role::Master).unwrap();
        let (v, _) = hub.connect(now, CH, TTL, viewer("v1")).unwrap();
        // The C SDK's PascalCase, an empty recipient and an extra member.
        let out = hub.message(
            now,
            v,
            r#"{"action":"SDP_OFFER","RecipientClientId":"","MessagePayload":"b2ZmZXI=","IceServerList":[]}"#,
        );
        assert_eq!(
            text(&out, m),
            vec![
                json!({"senderClientId":"v1","messageType":"SDP_OFFER","messagePayload":"b2ZmZXI="})
            ]
        );
        let out = hub.message(
            now,
            m,
            r#"{"action":"SDP_ANSWER","recipientClientId":"v1","messagePayload":"YW5zd2Vy"}"#,
        );
        assert_eq!(
            text(&out, v),
            vec![json!({"messageType":"SDP_ANSWER","messagePayload":"YW5zd2Vy"})]
        );
    }

    #[test]
    fn payloads_pass_byte_for_byte() {
        let now = Instant::now();
        let mut hub = Hub::new(HubLimits::default());
        let (m, _) = hub.connect(now, CH, TTL, Role::Master).unwrap();
        let (v, _) = hub.connect(now, CH, TTL, viewer("v1")).unwrap();
        // URL-safe base64 as Android sends it, never decoded or re-encoded.
        let out = hub.message(
            now,
            v,
            r#"{"action":"ICE_CANDIDATE","messagePayload":"eyJj-_x=="}"#,
        );
        let Out::Text(t) = &out[0].1 else { panic!() };
        assert_eq!(out[0].0, m);
        assert!(t.contains(r#""messagePayload":"eyJj-_x==""#), "{t}");
    }

    #[test]
    fn the_master_must_name_a_viewer_and_a_viewer_cannot_reach_a_viewer() {
        let now = Instant::now();
        let mut hub = Hub::new(HubLimits::default());
        let (m, _) = hub.connect(now, CH, TTL, Role::Master).unwrap();
        let (v1, _) = hub.connect(now, CH, TTL, viewer("v1")).unwrap();
        let (v2, _) = hub.connect(now, CH, TTL, viewer("v2")).unwrap();
        let out = hub.message(
            now,
            m,
            r#"{"action":"SDP_OFFER","messagePayload":"eA==","correlationId":"c1"}"#,
        );
        assert_eq!(
            text(&out, m),
            vec![json!({"messageType":"STATUS_RESPONSE","statusResponse":{
                "correlationId":"c1","errorType":"InvalidArgumentException","statusCode":"400",
                "description":"recipientClientId is required for messages from the master."}})]
        );
        // A viewer naming another viewer still reaches only the master.
        let out = hub.message(
            now,
            v1,
            r#"{"action":"ICE_CANDIDATE","recipientClientId":"v2","messagePayload":"eA=="}"#,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, m);
        assert!(text(&out, v2).is_empty());
    }

    #[test]
    fn the_newest_master_wins_and_the_old_one_is_closed() {
        let now = Instant::now();
        let mut hub = Hub::new(HubLimits::default());
        let (m1, _) = hub.connect(now, CH, TTL, Role::Master).unwrap();
        let (m2, out) = hub.connect(now, CH, TTL, Role::Master).unwrap();
        assert_eq!(out, vec![(m1, Out::Close)]);
        let (v, _) = hub.connect(now, CH, TTL, viewer("v")).unwrap();
        let out = hub.message(now, v, r#"{"action":"SDP_OFFER","messagePayload":"eA=="}"#);
        assert_eq!(out[0].0, m2);
        // The replaced master leaving does not unseat the new one.
        hub.disconnect(m1);
        let out = hub.message(
            now,
            v,
            r#"{"action":"ICE_CANDIDATE","messagePayload":"eA=="}"#,
        );
        assert_eq!(out[0].0, m2);
    }

    #[test]
    fn a_storage_session_reaches_viewers_and_viewers_reach_it() {
        let now = Instant::now();
        let mut hub = Hub::new(HubLimits::default());
        let (master, _) = hub.connect(now, CH, TTL, Role::Master).unwrap();
        let (v1, _) = hub.connect(now, CH, TTL, viewer("v1")).unwrap();
        let (session, _) = hub
            .connect(now, CH, TTL, viewer("AWS_STORAGE_SESSION"))
            .unwrap();
        let offer = r#"{"action":"SDP_OFFER","recipientClientId":"v1","messagePayload":"x"}"#;
        let out = hub.message(now, session, offer);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, v1);
        assert_eq!(text(&out, v1)[0]["senderClientId"], "AWS_STORAGE_SESSION");
        // While the session runs, a viewer's messages (the JS SDK names no recipient) go to
        // it, whatever recipient they name.
        let answer = r#"{"action":"SDP_ANSWER","messagePayload":"y"}"#;
        assert_eq!(hub.message(now, v1, answer)[0].0, session);
        let sideways = r#"{"action":"SDP_OFFER","recipientClientId":"v2","messagePayload":"z"}"#;
        assert_eq!(hub.message(now, v1, sideways)[0].0, session);
        // Without a recipient the session talks to the master.
        let to_master = r#"{"action":"SDP_OFFER","messagePayload":"z"}"#;
        assert_eq!(hub.message(now, session, to_master)[0].0, master);
        // Once the session is gone, viewers reach the master again.
        hub.disconnect(session);
        assert_eq!(hub.message(now, v1, answer)[0].0, master);
    }

    #[test]
    fn viewers_are_limited_per_channel() {
        let now = Instant::now();
        let mut hub = Hub::new(HubLimits {
            max_viewers: 2,
            ..HubLimits::default()
        });
        hub.connect(now, CH, TTL, viewer("a")).unwrap();
        let (b, _) = hub.connect(now, CH, TTL, viewer("b")).unwrap();
        assert_eq!(
            hub.connect(now, CH, TTL, viewer("c")).err(),
            Some(Refused::TooManyViewers)
        );
        // The same client id reconnecting replaces itself rather than counting twice.
        let (_, out) = hub.connect(now, CH, TTL, viewer("b")).unwrap();
        assert_eq!(out, vec![(b, Out::Close)]);
        // Another channel has its own count.
        hub.connect(now, "arn:other", TTL, viewer("c")).unwrap();
        // Oxbow's own storage session takes no viewer's place, and counts for none.
        hub.connect(now, CH, TTL, viewer("AWS_STORAGE_SESSION"))
            .unwrap();
        assert_eq!(
            hub.connect(now, CH, TTL, viewer("c")).err(),
            Some(Refused::TooManyViewers)
        );
    }

    #[test]
    fn messages_wait_for_a_late_recipient_within_the_ttl() {
        let t0 = Instant::now();
        let mut hub = Hub::new(HubLimits::default());
        let (v, _) = hub.connect(t0, CH, TTL, viewer("v1")).unwrap();
        hub.message(t0, v, r#"{"action":"SDP_OFFER","messagePayload":"b2xk"}"#);
        hub.message(t0, v, r#"{"action":"SDP_OFFER","messagePayload":"bmV3"}"#);
        hub.message(
            t0,
            v,
            r#"{"action":"ICE_CANDIDATE","messagePayload":"YzE="}"#,
        );
        hub.message(
            t0,
            v,
            r#"{"action":"ICE_CANDIDATE","messagePayload":"YzI="}"#,
        );
        let (m, out) = hub
            .connect(t0 + Duration::from_secs(59), CH, TTL, Role::Master)
            .unwrap();
        let payloads: Vec<_> = text(&out, m)
            .iter()
            .map(|e| e["messagePayload"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            payloads,
            ["bmV3", "YzE=", "YzI="],
            "newest offer, candidates in order"
        );
        // Past the TTL nothing is delivered.
        let (v2, _) = hub.connect(t0, CH, TTL, viewer("v2")).unwrap();
        hub.disconnect(m);
        hub.message(t0, v2, r#"{"action":"SDP_OFFER","messagePayload":"eA=="}"#);
        let (m2, out) = hub
            .connect(t0 + Duration::from_secs(60), CH, TTL, Role::Master)
            .unwrap();
        assert!(text(&out, m2).is_empty());
    }

    #[test]
    fn message_rates_are_limited_per_connection() {
        let t0 = Instant::now();
        let mut hub = Hub::new(HubLimits::default());
        hub.connect(t0, CH, TTL, Role::Master).unwrap();
        let (v, _) = hub.connect(t0, CH, TTL, viewer("v")).unwrap();
        let offer = r#"{"action":"SDP_OFFER","messagePayload":"eA==","correlationId":"x"}"#;
        for _ in 0..5 {
            assert!(text(&hub.message(t0, v, offer), v).is_empty());
        }
        let refused = text(&hub.message(t0, v, offer), v);
        assert_eq!(
            refused[0]["statusResponse"]["errorType"],
            "ClientLimitExceededException"
        );
        // Candidates have their own budget, and a new second starts over.
        let cand = r#"{"action":"ICE_CANDIDATE","messagePayload":"eA=="}"#;
        assert_eq!(hub.message(t0, v, cand).len(), 1);
        let t1 = t0 + Duration::from_secs(1);
        assert!(text(&hub.message(t1, v, offer), v).is_empty());
    }

    #[test]
    fn bad_frames_get_an_error_only_when_they_carry_a_correlation_id() {
        let now = Instant::now();
        let mut hub = Hub::new(HubLimits {
            max_payload: 8,
            ..HubLimits::default()
        });
        let (m, _) = hub.connect(now, CH, TTL, Role::Master).unwrap();
        let (v, _) = hub.connect(now, CH, TTL, viewer("v")).unwrap();
        for bad in ["not json", "[1,2]", "{}", r#"{"action":"SDP_OFFER"}"#] {
            assert!(hub.message(now, v, bad).is_empty(), "{bad}");
        }
        let out = hub.message(
            now,
            v,
            r#"{"action":"HELLO","messagePayload":"eA==","correlationId":"k"}"#,
        );
        assert_eq!(text(&out, v)[0]["statusResponse"]["statusCode"], "400");
        let out = hub.message(
            now,
            v,
            r#"{"action":"SDP_OFFER","messagePayload":"123456789","correlationId":"k"}"#,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, v, "refused, not relayed");
        assert!(text(&out, m).is_empty());
    }

    #[test]
    fn idle_connections_close_and_old_ones_get_go_away_first() {
        let t0 = Instant::now();
        let limits = HubLimits::default();
        let mut hub = Hub::new(limits.clone());
        let (m, _) = hub.connect(t0, CH, TTL, Role::Master).unwrap();
        assert_eq!(hub.poll_timeout(m), Some(t0 + limits.idle));
        let t = t0 + limits.idle;
        assert_eq!(hub.timeout(t, m), vec![(m, Out::Close)]);

        let mut hub = Hub::new(limits.clone());
        let (m, _) = hub.connect(t0, CH, TTL, Role::Master).unwrap();
        // Active every 5 minutes: never idle, but GO_AWAY at 59 minutes and the close at 60.
        for i in 1..=11 {
            let now = t0 + Duration::from_secs(300 * i);
            hub.message(now, m, "{}");
            assert!(hub.timeout(now, m).is_empty(), "at {i} x 5 min");
        }
        let go_away = hub.poll_timeout(m).unwrap();
        assert_eq!(go_away, t0 + Duration::from_secs(59 * 60));
        assert_eq!(
            hub.timeout(go_away, m),
            vec![(m, Out::Text(GO_AWAY.into()))]
        );
        assert_eq!(hub.poll_timeout(m), Some(t0 + Duration::from_secs(3600)));
        assert_eq!(
            hub.timeout(t0 + Duration::from_secs(3600), m),
            vec![(m, Out::Close)]
        );
    }
}
