//! The async driver of one storage session: its UDP socket, its signaling connection (an
//! internal participant of the channel's hub), the camera's [`Peer`], and the ingest its
//! recording feeds. Every decision is the peer's, the recorder's or the ingest's; this only
//! moves bytes and time between them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oxbow_catalog::{ChannelRecord, StreamRecord};
use oxbow_core::time::now_ms;
use oxbow_core::ApiError;
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::peer::{Peer, PeerOutput};
use super::recorder::{Chunk, RecorderLimits};
use super::seats::{SeatRules, Seats};
use super::{Command, SESSION_CLIENT_ID};
use crate::deadline::sleep_until;
use crate::media::ChannelBody;
use crate::media::{start_ingest, IngestSession};
use crate::relay::{Out, Role};
use crate::state::AppState;

/// A session with no camera for this long ends (a camera that comes back joins a new one).
const IDLE: Duration = Duration::from_secs(60);
/// Recorded chunks waiting for the ingest at most; past it media is dropped to the next key
/// frame rather than held (a live camera cannot be slowed down).
const MEDIA_QUEUE: usize = 256;
/// A viewer's hold on the camera's loudspeaker lapses after this much silence.
const FLOOR_RELEASE: Duration = Duration::from_secs(1);
/// Acks the session reads (for its log) from its ingest.
const ACK_QUEUE: usize = 64;

/// The camera's peer and, once media flows, the ingest it feeds.
struct Camera {
    peer: Peer,
    media: Option<mpsc::Sender<Bytes>>,
}

/// Starts a session for `channel` recording into `stream`, and gives it its first command.
pub(super) async fn start(
    state: &Arc<AppState>,
    channel: ChannelRecord,
    stream: StreamRecord,
    first: Command,
) -> Result<(), ApiError> {
    let sessions = &state.storage_sessions;
    let socket = UdpSocket::bind((sessions.media_ip(), 0))
        .await
        .map_err(|e| ApiError::server("bind a UDP socket for a storage session", e))?;
    let arn = channel.arn.clone();
    let (id, commands) = sessions.register(&arn);
    if let Err(e) = sessions.command(&arn, first) {
        return Err(ApiError::internal(format!(
            "a new storage session refused its first command: {e:?}"
        )));
    }
    let state = Arc::clone(state);
    let span =
        tracing::info_span!("storage_session", channel = %channel.name, stream = %stream.name);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            run(&state, channel, stream, commands, socket).await;
            state.storage_sessions.finished(&arn, id);
        },
        span,
    ));
    Ok(())
}

async fn run(
    state: &Arc<AppState>,
    channel: ChannelRecord,
    stream: StreamRecord,
    mut commands: mpsc::Receiver<Command>,
    socket: UdpSocket,
) {
    let Ok(local) = socket.local_addr() else {
        return;
    };
    let ttl = Duration::from_secs(channel.message_ttl_seconds.clamp(5, 120) as u64);
    let (conn, mut inbox) = match state.relay.connect(
        &channel.arn,
        ttl,
        Role::Viewer(SESSION_CLIENT_ID.to_string()),
    ) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(?e, "storage session cannot join the channel's signaling");
            return;
        }
    };
    tracing::info!(%local, "storage session started");
    let mut s = Session {
        state,
        stream,
        socket,
        local,
        conn,
        camera: None,
        viewers: HashMap::new(),
        seats: Seats::new(SeatRules::default()),
        camera_seen: None,
        idle_since: Instant::now(),
        floor: None,
        to_camera: Vec::new(),
    };
    let mut draining = state.draining.subscribe();
    let mut buf = vec![0u8; 2048];
    loop {
        s.poll_all().await;
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::JoinMaster) => {
                    if !s.join_master() {
                        break;
                    }
                }
                Some(Command::JoinViewer { client_id, seated }) => {
                    let _ = seated.send(s.join_viewer(&client_id));
                }
                Some(Command::Stop) | None => break,
            },
            out = inbox.recv() => match out {
                Some(Out::Text(text)) => s.signal(&text),
                Some(Out::Close) | None => {
                    tracing::info!("storage session: its signaling connection was closed");
                    break;
                }
            },
            received = s.socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => s.receive(from, &buf[..n]),
                Err(e) => tracing::debug!(error = %e, "storage session: receive failed"),
            },
            _ = sleep_until(Some(s.deadline())) => {
                if !s.tick() {
                    tracing::info!("storage session: no camera or viewer for a minute; ending");
                    break;
                }
            }
            _ = draining.wait_for(|d| *d) => break,
        }
    }
    state.relay.disconnect(conn);
    tracing::info!("storage session ended");
}

/// One session's peers and what ties them to the world.
struct Session<'a> {
    state: &'a Arc<AppState>,
    stream: StreamRecord,
    socket: UdpSocket,
    local: std::net::SocketAddr,
    conn: crate::relay::ConnId,
    camera: Option<Camera>,
    viewers: HashMap<String, Peer>,
    seats: Seats,
    /// When a camera was last connected.
    camera_seen: Option<Instant>,
    /// Since when the session has had no peer at all.
    idle_since: Instant,
    /// The viewer whose audio goes to the camera, and when it last sent some.
    floor: Option<(String, Instant)>,
    /// Viewer audio waiting to be forwarded to the camera.
    to_camera: Vec<Arc<str0m::media::MediaData>>,
}

impl Session<'_> {
    fn join_master(&mut self) -> bool {
        let limits = RecorderLimits::default();
        let Some((peer, offer)) = Peer::camera(Instant::now(), self.local, limits) else {
            tracing::error!("storage session: no offer could be made");
            return false;
        };
        // The newest join wins: a camera before it (and its ingest) ends here.
        self.camera = Some(Camera { peer, media: None });
        let message = json!({"action": "SDP_OFFER", "messagePayload": offer});
        self.state.relay.message(self.conn, &message.to_string());
        tracing::info!("storage session: offer sent to the master");
        true
    }

    fn join_viewer(&mut self, id: &str) -> bool {
        let now = Instant::now();
        if !self.seats.admit(now, id) {
            return false;
        }
        let Some((peer, offer)) = Peer::viewer(now, self.local) else {
            self.seats.leave(now, id);
            return false;
        };
        // The same client id joining again replaces its peer.
        self.viewers.insert(id.to_string(), peer);
        let message =
            json!({"action": "SDP_OFFER", "recipientClientId": id, "messagePayload": offer});
        self.state.relay.message(self.conn, &message.to_string());
        tracing::info!(viewer = id, "storage session: offer sent to a viewer");
        true
    }

    /// A relayed signaling event: the master's carry no sender id, a viewer's its own.
    fn signal(&mut self, text: &str) {
        let Ok(event) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let (Some(kind), Some(payload)) = (
            event["messageType"].as_str(),
            event["messagePayload"].as_str(),
        ) else {
            return;
        };
        tracing::debug!(kind, from = ?event["senderClientId"].as_str(), "storage session: signaling message");
        let peer = match event["senderClientId"].as_str() {
            Some(viewer) => self.viewers.get_mut(viewer),
            None => self.camera.as_mut().map(|c| &mut c.peer),
        };
        if let Some(peer) = peer {
            peer.signal(kind, payload);
        }
    }

    /// A datagram, for whichever peer it belongs to.
    fn receive(&mut self, from: std::net::SocketAddr, data: &[u8]) {
        let now = Instant::now();
        let peers = self
            .camera
            .as_mut()
            .map(|c| &mut c.peer)
            .into_iter()
            .chain(self.viewers.values_mut());
        for peer in peers {
            if peer.accepts(now, from, data) {
                peer.receive(now, from, data);
                return;
            }
        }
    }

    /// When something is next due: a peer's timer, a viewer's time without a camera, the
    /// end of an idle session.
    fn deadline(&self) -> Instant {
        let mut t = self.idle_since + IDLE;
        if let Some(cam) = &self.camera {
            t = t.min(cam.peer.poll_timeout());
        }
        for (id, peer) in &self.viewers {
            t = t.min(peer.poll_timeout());
            if let Some(joined) = self.seats.joined(id) {
                t = t.min(self.seats.deadline(joined, self.camera_seen));
            }
        }
        t
    }

    /// Time passed; false once the session has been idle too long.
    fn tick(&mut self) -> bool {
        let now = Instant::now();
        if let Some(cam) = self.camera.as_mut() {
            cam.peer.tick(now);
        }
        let camera_seen = self.camera_seen;
        let mut gone = Vec::new();
        for (id, peer) in self.viewers.iter_mut() {
            peer.tick(now);
            let joined = self.seats.joined(id).unwrap_or(now);
            if now >= self.seats.deadline(joined, camera_seen) {
                tracing::info!(viewer = %id, "storage session: no camera for three minutes; the viewer goes");
                gone.push(id.clone());
            }
        }
        for id in gone {
            self.viewers.remove(&id);
            self.seats.leave(now, &id);
        }
        let idle = self.camera.is_none() && self.viewers.is_empty();
        !(idle && now >= self.idle_since + IDLE)
    }

    /// Drains every peer: datagrams out, recorded media to the ingest, the camera's frames
    /// on to the viewers, key frame requests back to the camera.
    async fn poll_all(&mut self) {
        let mut out = Vec::new();
        let mut keyframe = false;
        let mut frames = Vec::new();
        let to_camera = std::mem::take(&mut self.to_camera);
        if let Some(cam) = self.camera.as_mut() {
            let mut ended = None;
            // str0m's rule: each mutation (a forwarded frame) is followed by a drain.
            for f in to_camera.iter().map(Some).chain([None]) {
                if let Some(f) = f {
                    cam.peer.forward(f);
                }
                cam.peer.poll(Instant::now(), now_ms(), &mut out);
                for o in out.drain(..) {
                    match o {
                        PeerOutput::Transmit { to, data } => send(&self.socket, to, &data).await,
                        PeerOutput::Media(chunk) => {
                            feed(self.state, &self.stream, cam, chunk).await
                        }
                        PeerOutput::Frame(f) => frames.push(f),
                        PeerOutput::KeyframeWanted => {}
                        PeerOutput::End(why) => ended = Some(why),
                    }
                }
                if ended.is_some() {
                    break;
                }
            }
            if cam.peer.is_connected() {
                self.camera_seen = Some(Instant::now());
            }
            if let Some(why) = ended {
                let c = cam.peer.counts();
                tracing::info!(
                    ?why,
                    fragments = c.fragments,
                    video_frames = c.video_frames,
                    audio_frames = c.audio_frames,
                    dropped_video = c.dropped_video,
                    "storage session: camera gone; its last fragment is completed"
                );
                self.camera = None;
            }
        }
        let mut gone = Vec::new();
        for (id, peer) in self.viewers.iter_mut() {
            // str0m's rule: each mutation (a forwarded frame) is followed by a drain.
            let mut ended = None;
            for f in frames.iter().map(Some).chain([None]) {
                if let Some(f) = f {
                    peer.forward(f);
                }
                peer.poll(Instant::now(), now_ms(), &mut out);
                for o in out.drain(..) {
                    match o {
                        PeerOutput::Transmit { to, data } => send(&self.socket, to, &data).await,
                        PeerOutput::KeyframeWanted => keyframe = true,
                        PeerOutput::End(why) => ended = Some(why),
                        // A viewer's audio goes to the camera, one speaker at a time: the
                        // floor is the first viewer's that talks, until it is silent a second.
                        PeerOutput::Frame(f) => {
                            let now = Instant::now();
                            let free = match &self.floor {
                                None => true,
                                Some((holder, last)) => {
                                    holder == id || now.duration_since(*last) >= FLOOR_RELEASE
                                }
                            };
                            if free {
                                self.floor = Some((id.clone(), now));
                                self.to_camera.push(f);
                            }
                        }
                        PeerOutput::Media(_) => {}
                    }
                }
                if ended.is_some() {
                    break;
                }
            }
            if let Some(why) = ended {
                tracing::info!(viewer = %id, ?why, "storage session: viewer gone");
                gone.push(id.clone());
            }
        }
        let now = Instant::now();
        for id in gone {
            self.viewers.remove(&id);
            self.seats.leave(now, &id);
        }
        if keyframe {
            if let Some(cam) = self.camera.as_mut() {
                cam.peer.request_keyframe();
            }
        }
        let has_peers = self.camera.is_some() || !self.viewers.is_empty();
        self.idle_since = idle_since(self.idle_since, now, has_peers);
    }
}

/// Since when a session has had no peer: the clock restarts while it has one and stands
/// still while it has none, so a session left alone ends [`IDLE`] after its last peer.
fn idle_since(since: Instant, now: Instant, has_peers: bool) -> Instant {
    if has_peers {
        now
    } else {
        since
    }
}

async fn send(socket: &UdpSocket, to: std::net::SocketAddr, data: &[u8]) {
    if let Err(e) = socket.send_to(data, to).await {
        tracing::debug!(error = %e, %to, "storage session: send failed");
    }
}

/// Hands recorded bytes to the camera's ingest, starting one at each new Segment (the one
/// before ends with its body, its last fragment completed).
async fn feed(state: &Arc<AppState>, stream: &StreamRecord, cam: &mut Camera, chunk: Chunk) {
    if chunk.new_segment {
        cam.media = None;
    } else if cam.media.is_none() {
        // No ingest takes bytes that do not start a Segment.
        return;
    }
    let bytes = chunk.bytes;
    if cam.media.is_none() {
        let (media, body) = ChannelBody::new(MEDIA_QUEUE);
        let (acks, ack_rx) = mpsc::channel(ACK_QUEUE);
        let started = start_ingest(
            state,
            stream.clone(),
            IngestSession {
                relative: false,
                producer_start_ms: None,
                acks,
            },
            body,
            tracing::info_span!("storage_session_ingest", stream = %stream.name),
        )
        .await;
        if let Err(e) = started {
            tracing::warn!(error = %e, "storage session: the stream refuses media");
            cam.peer.restart_recording();
            return;
        }
        tokio::spawn(log_acks(ack_rx));
        cam.media = Some(media);
    }
    let Some(media) = &cam.media else { return };
    match media.try_send(bytes) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(
                "storage session: the stream cannot keep up; video skips to a key frame"
            );
            cam.peer.media_lost();
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            // The ingest ended (its connection limit, the stream deleted): the next key
            // frame starts another, as a producer SDK reconnects.
            cam.media = None;
            cam.peer.restart_recording();
        }
    }
}

/// The ingest's acks, as a producer would read them: errors are logged.
async fn log_acks(mut acks: mpsc::Receiver<Bytes>) {
    while let Some(line) = acks.recv().await {
        let text = String::from_utf8_lossy(&line);
        if text.contains("\"ERROR\"") {
            tracing::warn!(ack = %text.trim(), "storage session: a fragment was refused");
        } else {
            tracing::trace!(ack = %text.trim(), "storage session ack");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idle_clock_stands_still_without_peers() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(30);
        assert_eq!(idle_since(t0, later, true), later);
        // Polled again and again with nobody there, the session still ends IDLE after t0.
        let mut since = t0;
        for s in 1..=70 {
            since = idle_since(since, t0 + Duration::from_secs(s), false);
        }
        assert_eq!(since, t0);
    }
}
