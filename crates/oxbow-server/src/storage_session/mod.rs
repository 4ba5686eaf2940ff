//! WebRTC ingestion: a signaling channel whose media storage configuration is ENABLED is
//! recorded into its stream by a storage session, a server-side WebRTC peer that KVS runs per
//! channel. A camera (the channel's master) calls JoinStorageSession (`api.rs`); the session
//! joins the channel's signaling as an internal participant, offers to the camera, receives
//! H.264 and Opus (`peer.rs`), and turns them into the MKV a PutMedia producer would send
//! (`recorder.rs`), which goes through the PutMedia rules into the stream (`session.rs`).
//! Viewers that call JoinStorageSessionAsViewer get the camera's media forwarded by the
//! session (no transcoding).
//!
//! - [`StorageSessions`]: the sessions running, one per channel (held by `AppState`, so it
//!   knows nothing of it: `api` and `session` start and drive sessions).
//! - `api`: JoinStorageSession / JoinStorageSessionAsViewer on the WEBRTC endpoint.
//! - `session`: the async driver of one session (socket, signaling, ingest).
//! - `peer`: the session's peer toward the camera, sans-IO around str0m.
//! - `recorder`: frames into Matroska, pure.
//! - `seats`: who may watch through the session (three viewers, held seats), pure.

pub mod api;
mod peer;
mod recorder;
mod seats;
mod session;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use tokio::sync::mpsc;

/// The client id the storage session signals under: `AWS_` ids are refused to clients, so no
/// camera or viewer can impersonate it, and the hub counts it as no viewer.
pub const SESSION_CLIENT_ID: &str = "AWS_STORAGE_SESSION";

/// Requests a session acts on, in order.
#[derive(Debug)]
pub(crate) enum Command {
    /// The master called JoinStorageSession: offer to it (again); the newest call wins.
    JoinMaster,
    /// A viewer called JoinStorageSessionAsViewer: offer to it, if it gets a seat; the answer
    /// says whether it did.
    JoinViewer {
        client_id: String,
        seated: tokio::sync::oneshot::Sender<bool>,
    },
    /// The channel's media storage was disabled or the channel deleted: stop recording.
    Stop,
}

/// Why a command was not delivered.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// No session runs for the channel: the command comes back.
    NotRunning(Command),
    /// The session's queue is full.
    Busy,
}

/// Commands waiting for a busy session at most.
const COMMANDS: usize = 8;

struct Running {
    id: u64,
    commands: mpsc::Sender<Command>,
}

/// The storage sessions running, by channel ARN.
pub struct StorageSessions {
    /// The address sessions bind their UDP sockets to and offer as their host candidate.
    media_ip: IpAddr,
    running: Mutex<HashMap<String, Running>>,
    next_id: Mutex<u64>,
}

impl StorageSessions {
    pub fn new(media_ip: IpAddr) -> Self {
        Self {
            media_ip,
            running: Mutex::new(HashMap::new()),
            next_id: Mutex::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions running now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Hands `command` to the channel's running session; gives it back if none runs (or the
    /// one running is ending), so the caller starts one.
    pub(crate) fn command(&self, channel_arn: &str, command: Command) -> Result<(), Delivery> {
        let running = self.lock();
        let Some(r) = running.get(channel_arn) else {
            return Err(Delivery::NotRunning(command));
        };
        match r.commands.try_send(command) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Delivery::Busy),
            Err(mpsc::error::TrySendError::Closed(c)) => Err(Delivery::NotRunning(c)),
        }
    }

    /// Registers a new session for the channel (replacing an ending one); returns its id
    /// and its command queue.
    pub(crate) fn register(&self, channel_arn: &str) -> (u64, mpsc::Receiver<Command>) {
        let (tx, rx) = mpsc::channel(COMMANDS);
        let id = {
            let mut n = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            *n
        };
        self.lock()
            .insert(channel_arn.to_string(), Running { id, commands: tx });
        (id, rx)
    }

    /// A session ended: forgets it, unless a newer one took its place.
    pub(crate) fn finished(&self, channel_arn: &str, id: u64) {
        let mut running = self.lock();
        if running.get(channel_arn).is_some_and(|r| r.id == id) {
            running.remove(channel_arn);
        }
    }

    pub fn media_ip(&self) -> IpAddr {
        self.media_ip
    }

    /// Stops the channel's session, if one runs (its last fragment is completed).
    pub fn stop(&self, channel_arn: &str) {
        if let Some(r) = self.lock().remove(channel_arn) {
            let _ = r.commands.try_send(Command::Stop);
        }
    }
}
