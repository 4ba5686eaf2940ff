//! The storage session's WebRTC peers, sans-IO: one toward the camera (the channel's master),
//! whose media is recorded, and one toward each viewer that joined through the session, to
//! which the camera's media is forwarded as it arrives (no transcoding). str0m's `Rtc` does
//! ICE, DTLS-SRTP and RTP (de)packetization; this adds what KVS's storage session does around
//! it. Signaling messages, datagrams, forwarded frames and time go in; datagrams to send,
//! recorded MKV bytes, frames to forward and key frame requests come out. The driver
//! (`session.rs`) owns the socket, the signaling connection and the ingest.
//!
//! The session always offers, with its one host candidate in the SDP (no trickling needed);
//! the peer answers and trickles its candidates, which may be TURN relays only. Payloads are
//! what the SDKs put in `messagePayload`: base64 of the browser's JSON description or
//! candidate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use super::recorder::{Chunk, Counts, Recorder, RecorderLimits};

/// A peer that has not connected this long after the offer is given up on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection that stays disconnected this long is over (ICE may recover before).
const DISCONNECTED_GRACE: Duration = Duration::from_secs(5);
/// A connected camera that sends nothing this long has hung up: a live camera sends video,
/// audio and RTCP all the time, while a browser that closes its peer connection sends no
/// goodbye str0m reports (ICE consent would take half a minute to notice).
const CAMERA_SILENCE: Duration = Duration::from_secs(3);
/// A viewer only sends RTCP reports and consent checks: it is given longer.
const VIEWER_SILENCE: Duration = Duration::from_secs(10);

/// Why a peer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// No answer, or ICE never connected, within the connect timeout.
    NeverConnected,
    /// The connection was lost (silence, ICE disconnected past the grace, or closed).
    Disconnected,
    /// The answer or the connection broke str0m's rules.
    Failed,
}

/// What a peer wants done.
#[derive(Debug)]
pub enum PeerOutput {
    /// Send a datagram from the session's socket.
    Transmit { to: SocketAddr, data: Vec<u8> },
    /// Recorded MKV bytes for the ingest (camera).
    Media(Chunk),
    /// A frame from the camera, for the viewers.
    Frame(Arc<MediaData>),
    /// A viewer asks for a key frame (camera: ask the camera).
    KeyframeWanted,
    /// The peer is over; nothing more comes out.
    End(Ended),
}

/// What the peer is for.
enum Kind {
    Camera { recorder: Box<Recorder> },
    Viewer,
}

pub struct Peer {
    rtc: Rtc,
    kind: Kind,
    pending: Option<SdpPendingOffer>,
    /// Candidates that came before the answer, added once it is applied.
    early: Vec<Candidate>,
    video: Mid,
    audio: Mid,
    started: Instant,
    connected: bool,
    disconnected_since: Option<Instant>,
    last_received: Instant,
    ended: Option<Ended>,
    next_timeout: Instant,
    local: SocketAddr,
    keyframe_now: bool,
}

/// base64 of the JSON a browser's RTCSessionDescription serializes to.
fn description_payload(kind: &str, sdp: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(json!({ "type": kind, "sdp": sdp }).to_string())
}

fn decode_payload(payload: &str) -> Option<Value> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .ok()?;
    serde_json::from_slice(&raw).ok()
}

impl Peer {
    /// A peer toward the camera, receiving H.264 and Opus (and sending it a viewer's Opus),
    /// and the SDP offer payload to send.
    pub fn camera(
        now: Instant,
        local: SocketAddr,
        limits: RecorderLimits,
    ) -> Option<(Self, String)> {
        let kind = Kind::Camera {
            recorder: Box::new(Recorder::new(limits)),
        };
        Self::offer(now, local, Direction::RecvOnly, kind)
    }

    /// A peer toward a viewer, sending it the camera's H.264 and Opus, and receiving the
    /// viewer's own Opus, if it sends any.
    pub fn viewer(now: Instant, local: SocketAddr) -> Option<(Self, String)> {
        Self::offer(now, local, Direction::SendOnly, Kind::Viewer)
    }

    /// `video_dir` is the direction of video; audio goes both ways.
    fn offer(
        now: Instant,
        local: SocketAddr,
        video_dir: Direction,
        kind: Kind,
    ) -> Option<(Self, String)> {
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").ok()?);
        let mut change = rtc.sdp_api();
        let stream = Some("kvs-storage-session".to_string());
        let video = change.add_media(MediaKind::Video, video_dir, stream.clone(), None, None);
        let audio = change.add_media(MediaKind::Audio, Direction::SendRecv, stream, None, None);
        let (offer, pending) = change.apply()?;
        let payload = description_payload("offer", &offer.to_sdp_string());
        Some((
            Self {
                rtc,
                kind,
                pending: Some(pending),
                early: Vec::new(),
                video,
                audio,
                started: now,
                connected: false,
                disconnected_since: None,
                last_received: now,
                ended: None,
                next_timeout: now,
                local,
                keyframe_now: false,
            },
            payload,
        ))
    }

    /// What the camera's recorder did (zero for a viewer).
    pub fn counts(&self) -> Counts {
        match &self.kind {
            Kind::Camera { recorder } => recorder.counts(),
            Kind::Viewer => Counts::default(),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// A relayed signaling event (`messageType`, `messagePayload`) from the peer.
    pub fn signal(&mut self, message_type: &str, payload: &str) {
        let Some(value) = decode_payload(payload) else {
            tracing::debug!(
                message_type,
                "storage session: a payload that is not base64 JSON"
            );
            return;
        };
        match message_type {
            "SDP_ANSWER" => {
                let Some(pending) = self.pending.take() else {
                    return;
                };
                let sdp = value["sdp"].as_str().unwrap_or_default();
                let applied = SdpAnswer::from_sdp_string(sdp)
                    .map_err(|e| e.to_string())
                    .and_then(|a| {
                        self.rtc
                            .sdp_api()
                            .accept_answer(pending, a)
                            .map_err(|e| e.to_string())
                    });
                if let Err(error) = applied {
                    tracing::info!(%error, "storage session: an unusable answer");
                    self.ended = Some(Ended::Failed);
                    return;
                }
                for c in std::mem::take(&mut self.early) {
                    self.rtc.add_remote_candidate(c);
                }
            }
            "ICE_CANDIDATE" => {
                let line = value["candidate"].as_str().unwrap_or_default();
                let line = line.strip_prefix("a=").unwrap_or(line);
                if line.is_empty() {
                    return; // end of candidates
                }
                match Candidate::from_sdp_string(line) {
                    Ok(c) if self.pending.is_some() => self.early.push(c),
                    Ok(c) => self.rtc.add_remote_candidate(c),
                    Err(e) => tracing::debug!(error = %e, "storage session: unreadable candidate"),
                }
            }
            _ => {}
        }
    }

    fn input<'a>(&self, now: Instant, source: SocketAddr, data: &'a [u8]) -> Option<Input<'a>> {
        Some(Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents: data.try_into().ok()?,
            },
        ))
    }

    /// Whether a datagram on the shared socket is this peer's.
    pub fn accepts(&self, now: Instant, source: SocketAddr, data: &[u8]) -> bool {
        self.input(now, source, data)
            .is_some_and(|input| self.rtc.accepts(&input))
    }

    /// A datagram for this peer.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        self.last_received = now;
        let Some(input) = self.input(now, source, data) else {
            return;
        };
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!(error = %e, "storage session: datagram refused");
        }
    }

    fn silence(&self) -> Duration {
        match self.kind {
            Kind::Camera { .. } => CAMERA_SILENCE,
            Kind::Viewer => VIEWER_SILENCE,
        }
    }

    /// Time passed.
    pub fn tick(&mut self, now: Instant) {
        if !self.rtc.is_alive() {
            self.ended.get_or_insert(Ended::Disconnected);
        }
        if now >= self.next_timeout {
            if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
                tracing::info!(error = %e, "storage session: peer failed");
                self.ended = Some(Ended::Failed);
            }
        }
        if !self.connected && now.duration_since(self.started) >= CONNECT_TIMEOUT {
            self.ended.get_or_insert(Ended::NeverConnected);
        }
        let silent = self.connected && now.duration_since(self.last_received) >= self.silence();
        if silent
            || self
                .disconnected_since
                .is_some_and(|t| now.duration_since(t) >= DISCONNECTED_GRACE)
        {
            self.ended.get_or_insert(Ended::Disconnected);
        }
    }

    /// When [`Peer::tick`] is next due.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_timeout;
        if !self.connected {
            t = t.min(self.started + CONNECT_TIMEOUT);
        }
        if let Some(since) = self.disconnected_since {
            t = t.min(since + DISCONNECTED_GRACE);
        }
        if self.connected {
            t = t.min(self.last_received + self.silence());
        }
        t
    }

    /// Ask the camera for a key frame at once (a viewer joined or asked).
    pub fn request_keyframe(&mut self) {
        self.keyframe_now = true;
    }

    /// Sends a frame on (nothing before the peer is connected): the camera's video and
    /// audio to a viewer, a viewer's audio to the camera.
    pub fn forward(&mut self, frame: &MediaData) {
        if !self.connected {
            return;
        }
        let audio = frame.params.spec().codec.is_audio();
        let mid = match (&self.kind, audio) {
            (_, true) => self.audio,
            (Kind::Viewer, false) => self.video,
            (Kind::Camera { .. }, false) => return,
        };
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let Some(pt) = writer.match_params(frame.params) else {
            return;
        };
        if let Err(e) = writer.write(pt, frame.network_time, frame.time, frame.data.clone()) {
            tracing::debug!(error = %e, "storage session: a frame not forwarded");
        }
    }

    /// Drains str0m and the recorder; `wall_ms` is the wall clock at `now`.
    pub fn poll(&mut self, now: Instant, wall_ms: i64, out: &mut Vec<PeerOutput>) {
        if let Some(end) = self.ended {
            out.push(PeerOutput::End(end));
            return;
        }
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next_timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => out.push(PeerOutput::Transmit {
                    to: t.destination,
                    data: t.contents.into(),
                }),
                Ok(Output::Event(e)) => self.event(now, wall_ms, e, out),
                Err(e) => {
                    tracing::info!(error = %e, "storage session: peer failed");
                    self.ended = Some(Ended::Failed);
                    break;
                }
            }
        }
        if let Kind::Camera { recorder } = &mut self.kind {
            if self.connected && (self.keyframe_now || recorder.wants_keyframe(wall_ms)) {
                let asked = self
                    .rtc
                    .writer(self.video)
                    .map(|mut w| w.request_keyframe(None, KeyframeRequestKind::Pli));
                if matches!(asked, Some(Ok(()))) {
                    recorder.keyframe_requested(wall_ms);
                    self.keyframe_now = false;
                    // The request is a mutation: drain again (str0m's one rule).
                    return self.poll(now, wall_ms, out);
                }
            }
            out.extend(recorder.take().into_iter().map(PeerOutput::Media));
        }
        if let Some(end) = self.ended {
            out.push(PeerOutput::End(end));
        }
    }

    /// The recorder lost bytes downstream (the ingest queue was full).
    pub fn media_lost(&mut self) {
        if let Kind::Camera { recorder } = &mut self.kind {
            recorder.gap();
        }
    }

    /// The ingest is gone; the next one needs a Segment head first.
    pub fn restart_recording(&mut self) {
        if let Kind::Camera { recorder } = &mut self.kind {
            recorder.restart();
        }
    }

    fn event(&mut self, now: Instant, wall_ms: i64, e: Event, out: &mut Vec<PeerOutput>) {
        match e {
            Event::Connected => {
                tracing::info!(
                    camera = matches!(self.kind, Kind::Camera { .. }),
                    "storage session: peer connected (DTLS up)"
                );
                self.connected = true;
                self.last_received = now;
                if let Kind::Viewer = self.kind {
                    out.push(PeerOutput::KeyframeWanted);
                }
            }
            Event::IceConnectionStateChange(s) => match s {
                IceConnectionState::Disconnected => {
                    self.disconnected_since.get_or_insert(now);
                }
                IceConnectionState::Connected | IceConnectionState::Completed => {
                    self.disconnected_since = None;
                }
                _ => {}
            },
            Event::KeyframeRequest(_) => out.push(PeerOutput::KeyframeWanted),
            Event::MediaData(m) => {
                let Kind::Camera { recorder } = &mut self.kind else {
                    // A viewer's audio, for the camera.
                    if m.mid == self.audio {
                        out.push(PeerOutput::Frame(Arc::new(m)));
                    }
                    return;
                };
                let age = now.saturating_duration_since(m.network_time);
                let arrival_ms = wall_ms - age.as_millis() as i64;
                let (ticks, rate) = (m.time.numer(), m.time.denom());
                if m.mid == self.video {
                    recorder.video(arrival_ms, ticks, rate, &m.data, m.contiguous);
                } else {
                    recorder.audio(arrival_ms, ticks, rate, &m.data);
                }
                out.push(PeerOutput::Frame(Arc::new(m)));
            }
            _ => {}
        }
    }
}
