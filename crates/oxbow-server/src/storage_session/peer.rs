//! The storage session's WebRTC peer toward one camera (the channel's master), sans-IO:
//! str0m's `Rtc` does ICE, DTLS-SRTP and RTP depacketization; this adds what KVS's storage
//! session does around it. Signaling messages, datagrams and time go in; datagrams to send,
//! signaling messages to send and recorded MKV bytes come out. The driver (`session.rs`) owns
//! the socket, the signaling connection and the ingest.
//!
//! The session offers (receive-only H.264 video and Opus audio), with its one host candidate
//! in the SDP (no trickling needed); the camera answers and trickles its candidates, which may
//! be TURN relays only. Payloads are what the SDKs put in `messagePayload`: base64 of the
//! browser's JSON description or candidate.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use super::recorder::{Chunk, Counts, Recorder, RecorderLimits};

/// A camera that has not connected this long after the offer is given up on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection that stays disconnected this long is over (ICE may recover before).
const DISCONNECTED_GRACE: Duration = Duration::from_secs(5);
/// A connected camera that sends nothing this long has hung up: a live camera sends video,
/// audio and RTCP all the time, while a browser that closes its peer connection sends no
/// goodbye str0m reports (ICE consent would take half a minute to notice).
const SILENCE: Duration = Duration::from_secs(3);

/// Why a peer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// No answer, or ICE never connected, within the connect timeout.
    NeverConnected,
    /// The connection was lost (ICE disconnected past the grace, or closed).
    Disconnected,
    /// The answer or the connection broke str0m's rules.
    Failed,
}

/// What the peer wants done.
#[derive(Debug)]
pub enum PeerOutput {
    /// Send a datagram from the session's socket.
    Transmit { to: SocketAddr, data: Vec<u8> },
    /// Recorded MKV bytes for the ingest.
    Media(Chunk),
    /// The peer is over; nothing more comes out.
    End(Ended),
}

pub struct Peer {
    rtc: Rtc,
    pending: Option<SdpPendingOffer>,
    /// Candidates that came before the answer, added once it is applied.
    early: Vec<Candidate>,
    video: Mid,
    recorder: Recorder,
    started: Instant,
    connected: bool,
    disconnected_since: Option<Instant>,
    last_received: Instant,
    ended: Option<Ended>,
    next_timeout: Instant,
    local: SocketAddr,
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
    /// A new peer with its host candidate at `local`, and the SDP offer payload to send.
    pub fn offer(
        now: Instant,
        local: SocketAddr,
        limits: RecorderLimits,
    ) -> Option<(Self, String)> {
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").ok()?);
        let mut change = rtc.sdp_api();
        let video = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        let (offer, pending) = change.apply()?;
        let payload = description_payload("offer", &offer.to_sdp_string());
        Some((
            Self {
                rtc,
                pending: Some(pending),
                early: Vec::new(),
                video,
                recorder: Recorder::new(limits),
                started: now,
                connected: false,
                disconnected_since: None,
                last_received: now,
                ended: None,
                next_timeout: now,
                local,
            },
            payload,
        ))
    }

    pub fn counts(&self) -> Counts {
        self.recorder.counts()
    }

    /// A relayed signaling event (`messageType`, `messagePayload`) from the camera.
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
                    tracing::info!(%error, "storage session: the camera's answer is unusable");
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

    /// A datagram that arrived on the session's socket.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        self.last_received = now;
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!(error = %e, "storage session: datagram refused");
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
        let silent = self.connected && now.duration_since(self.last_received) >= SILENCE;
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
            t = t.min(self.last_received + SILENCE);
        }
        t
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
                Ok(Output::Event(e)) => self.event(now, wall_ms, e),
                Err(e) => {
                    tracing::info!(error = %e, "storage session: peer failed");
                    self.ended = Some(Ended::Failed);
                    break;
                }
            }
        }
        if self.connected && self.recorder.wants_keyframe(wall_ms) {
            let asked = self
                .rtc
                .writer(self.video)
                .map(|mut w| w.request_keyframe(None, KeyframeRequestKind::Pli));
            if matches!(asked, Some(Ok(()))) {
                self.recorder.keyframe_requested(wall_ms);
                // The request is a mutation: drain again (str0m's one rule).
                return self.poll(now, wall_ms, out);
            }
        }
        out.extend(self.recorder.take().into_iter().map(PeerOutput::Media));
        if let Some(end) = self.ended {
            out.push(PeerOutput::End(end));
        }
    }

    /// The recorder lost bytes downstream (the ingest queue was full).
    pub fn media_lost(&mut self) {
        self.recorder.gap();
    }

    /// The ingest is gone; the next one needs a Segment head first.
    pub fn restart_recording(&mut self) {
        self.recorder.restart();
    }

    fn event(&mut self, now: Instant, wall_ms: i64, e: Event) {
        match e {
            Event::Connected => {
                tracing::info!("storage session: camera connected (DTLS up)");
                self.connected = true;
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
            Event::MediaData(m) => {
                let age = now.saturating_duration_since(m.network_time);
                let arrival_ms = wall_ms - age.as_millis() as i64;
                let (ticks, rate) = (m.time.numer(), m.time.denom());
                if m.mid == self.video {
                    self.recorder
                        .video(arrival_ms, ticks, rate, &m.data, m.contiguous);
                } else {
                    self.recorder.audio(arrival_ms, ticks, rate, &m.data);
                }
            }
            _ => {}
        }
    }
}
