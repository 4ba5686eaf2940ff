//! The async driver of one storage session: its UDP socket, its signaling connection (an
//! internal participant of the channel's hub), the camera's [`Peer`], and the ingest its
//! recording feeds. Every decision is the peer's, the recorder's or the ingest's; this only
//! moves bytes and time between them.

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
use super::{Command, SESSION_CLIENT_ID};
use crate::deadline::sleep_until;
use crate::media::ChannelBody;
use crate::media::{start_ingest, IngestSession as Session};
use crate::relay::{Out, Role};
use crate::state::AppState;

/// A session with no camera for this long ends (a camera that comes back joins a new one).
const IDLE: Duration = Duration::from_secs(60);
/// Recorded chunks waiting for the ingest at most; past it media is dropped to the next key
/// frame rather than held (a live camera cannot be slowed down).
const MEDIA_QUEUE: usize = 256;
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
    let limits = RecorderLimits::default();
    let mut draining = state.draining.subscribe();
    let mut camera: Option<Camera> = None;
    let mut idle_since = Instant::now();
    let mut buf = vec![0u8; 2048];
    let mut outputs = Vec::new();
    loop {
        if let Some(cam) = camera.as_mut() {
            cam.peer.poll(Instant::now(), now_ms(), &mut outputs);
            let mut ended = None;
            for out in outputs.drain(..) {
                match out {
                    PeerOutput::Transmit { to, data } => {
                        if let Err(e) = socket.send_to(&data, to).await {
                            tracing::debug!(error = %e, %to, "storage session: send failed");
                        }
                    }
                    PeerOutput::Media(chunk) => feed(state, &stream, cam, chunk).await,
                    PeerOutput::End(why) => ended = Some(why),
                }
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
                camera = None;
                idle_since = Instant::now();
            }
        }
        let deadline = match &camera {
            Some(cam) => cam.peer.poll_timeout(),
            None => idle_since + IDLE,
        };
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::JoinMaster) => {
                    let Some((peer, offer)) = Peer::offer(Instant::now(), local, limits) else {
                        tracing::error!("storage session: no offer could be made");
                        break;
                    };
                    // The newest join wins: a camera before it (and its ingest) ends here.
                    camera = Some(Camera { peer, media: None });
                    let message = json!({"action": "SDP_OFFER", "messagePayload": offer});
                    state.relay.message(conn, &message.to_string());
                    tracing::info!("storage session: offer sent to the master");
                }
                Some(Command::Stop) | None => break,
            },
            out = inbox.recv() => match out {
                Some(Out::Text(text)) => {
                    if let Some(cam) = camera.as_mut() {
                        signal(&mut cam.peer, &text);
                    }
                }
                Some(Out::Close) | None => {
                    tracing::info!("storage session: its signaling connection was closed");
                    break;
                }
            },
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => {
                    if let Some(cam) = camera.as_mut() {
                        cam.peer.receive(Instant::now(), from, &buf[..n]);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "storage session: receive failed"),
            },
            _ = sleep_until(Some(deadline)) => match camera.as_mut() {
                Some(cam) => cam.peer.tick(Instant::now()),
                None => {
                    tracing::info!("storage session: no camera for a minute; ending");
                    break;
                }
            },
            _ = draining.wait_for(|d| *d) => break,
        }
    }
    state.relay.disconnect(conn);
    tracing::info!("storage session ended");
}

/// A relayed signaling event for the session; only the master's (no sender id) concern it.
fn signal(peer: &mut Peer, text: &str) {
    let Ok(event) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if event.get("senderClientId").is_some() {
        return;
    }
    let (Some(kind), Some(payload)) = (
        event["messageType"].as_str(),
        event["messagePayload"].as_str(),
    ) else {
        return;
    };
    peer.signal(kind, payload);
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
            Session {
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
