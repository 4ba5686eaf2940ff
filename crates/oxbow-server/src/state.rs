//! What every request handler can reach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oxbow_catalog::Catalog;
use oxbow_core::{ResourceArn, ResourceType};
use oxbow_store::Store;

use crate::auth::KeyCache;
use crate::authz::{Account, Authorizer};
use crate::config::ServerConfig;
use crate::device_ca::IotCa;
use crate::relay::{HubLimits, Relay};
use crate::turn::TurnHandle;

pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub config: ServerConfig,
    /// `http(s)://host[:port]` of this server as clients should reach it.
    pub public_url: String,
    /// The same authority with the WebSocket scheme matching the public URL's.
    pub public_ws_url: String,
    /// Recently used access keys, so verifying a signature rarely touches the catalog.
    pub keys: KeyCache,
    /// Signs device certificates for the IoT credentials provider.
    pub iot_ca: Arc<IotCa>,
    /// `host:port` of the IoT credentials provider, when it listens: what IoT's
    /// DescribeEndpoint answers for `iot:CredentialProvider`.
    pub iot_endpoint: Option<String>,
    /// Ownership of streams, in cluster mode (a shared catalog); `None` for one node.
    pub leases: Option<crate::leases::Leases>,
    /// Compiled policies and recent decisions per access key.
    pub authz: Authorizer,
    /// Every stream's fragments.
    pub store: Arc<Store>,
    /// Open GetMedia responses per stream.
    pub get_media_connections: Arc<ConnectionCounter>,
    /// Media API calls per stream in the current second.
    pub call_rate: CallRate,
    /// The embedded TURN server, when it runs (GetIceServerConfig registers credentials).
    pub turn: Option<TurnHandle>,
    /// A secret for the embedded TURN server's credentials, new at every start.
    pub turn_secret: String,
    /// Who is connected to which signaling channel, and the messages between them.
    pub relay: Arc<Relay>,
    /// The key streaming session tokens are sealed with.
    pub playback_key: Vec<u8>,
    /// Packaged init and media segments, built once for every player that fetches them.
    pub segment_cache: crate::byte_cache::ByteCache,
    /// Notifications and image generation for tagged fragments, off the ingest path.
    pub fragment_events: crate::fragment_events::FragmentEvents,
    /// GetClip and GetImages calls working at once (a clip may hold 200 MB; images decode
    /// video on a blocking thread).
    pub heavy_permits: tokio::sync::Semaphore,
    /// WebRTC storage sessions recording channels into streams, one per channel.
    pub storage_sessions: crate::storage_session::StorageSessions,
    /// Turns true when the server starts shutting down: long-lived sessions (PutMedia) end
    /// then, so their clients reconnect at once instead of waiting on a draining server.
    pub draining: tokio::sync::watch::Sender<bool>,
}

/// (stream key, API name) → (start of the current one-second window, calls in it).
type Windows = HashMap<(String, &'static str), (std::time::Instant, u32)>;

/// Counts calls per (stream, API) in one-second windows.
#[derive(Default)]
pub struct CallRate {
    windows: Mutex<Windows>,
}

impl CallRate {
    /// Counts a call; false if `limit` calls were already made this second (0: unlimited).
    pub fn allow(&self, key: &str, api: &'static str, limit: u32) -> bool {
        if limit == 0 {
            return true;
        }
        let now = std::time::Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now.duration_since(*start).as_secs() < 1);
        }
        let (start, count) = windows.entry((key.to_string(), api)).or_insert((now, 0));
        if now.duration_since(*start).as_secs() >= 1 {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= limit
    }
}

/// Counts open connections per stream against a limit.
#[derive(Default)]
pub struct ConnectionCounter {
    open: Mutex<HashMap<String, usize>>,
}

impl ConnectionCounter {
    /// A slot for one more connection on `key`, unless `limit` are already open.
    pub fn acquire(self: &Arc<Self>, key: &str, limit: usize) -> Option<ConnectionGuard> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key.to_string()).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(ConnectionGuard {
            counter: Arc::clone(self),
            key: key.to_string(),
        })
    }
}

/// Holds a connection slot; frees it when dropped.
pub struct ConnectionGuard {
    counter: Arc<ConnectionCounter>,
    key: String,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.counter.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The server's own secrets, kept in its data directory.
pub struct ServerKeys {
    /// Seals streaming session tokens.
    pub playback: Vec<u8>,
    /// Seals temporary credentials (STS, IoT, camera URLs).
    pub sessions: Arc<crate::session_keys::SessionKeys>,
    /// Signs notification webhooks.
    pub webhook: Vec<u8>,
    /// Trusts https:// webhooks.
    pub webhook_tls: tokio_rustls::TlsConnector,
}

impl AppState {
    /// Whether this node owns stream `name` now: always outside a cluster; in one, while it
    /// holds the stream's lease.
    pub fn owns_stream(&self, name: &str) -> bool {
        self.leases
            .as_ref()
            .is_none_or(|l| l.holds(&crate::leases::stream_key(name)))
    }

    pub fn new(
        catalog: Arc<dyn Catalog>,
        store: Arc<Store>,
        config: ServerConfig,
        public_url: &str,
        iot_ca: IotCa,
        turn: Option<TurnHandle>,
        secrets: ServerKeys,
    ) -> Self {
        let public_ws_url = if let Some(rest) = public_url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", public_url.trim_start_matches("http://"))
        };
        let keys = KeyCache::new(
            Arc::clone(&catalog),
            &config.region,
            secrets.sessions.clone(),
        );
        let authz = Authorizer::new(
            Arc::clone(&catalog),
            Account {
                id: config.account_id.clone(),
                partition: config.partition.clone(),
            },
        );
        let l = &config.limits;
        let relay = Arc::new(Relay::new(HubLimits {
            max_viewers: l.signaling_max_viewers,
            max_payload: l.signaling_max_payload,
            idle: std::time::Duration::from_millis(l.signaling_idle_ms),
            max_duration: std::time::Duration::from_millis(l.signaling_max_connection_ms),
            go_away_grace: std::time::Duration::from_millis(l.signaling_max_connection_ms / 60)
                .min(std::time::Duration::from_secs(60)),
            ..HubLimits::default()
        }));
        Self {
            turn,
            turn_secret: rand::distr::SampleString::sample_string(
                &rand::distr::Alphanumeric,
                &mut rand::rng(),
                40,
            ),
            relay,
            playback_key: secrets.playback,
            segment_cache: crate::byte_cache::ByteCache::new(64 << 20),
            heavy_permits: tokio::sync::Semaphore::new(2),
            fragment_events: crate::fragment_events::FragmentEvents::start(
                crate::fragment_events::Context {
                    catalog: Arc::clone(&catalog),
                    account_id: config.account_id.clone(),
                    webhook_key: secrets.webhook,
                    image_root: config.data_dir.join("images"),
                    s3: config
                        .image_s3
                        .as_ref()
                        .map(crate::fragment_events::s3_client),
                    decoder: crate::fragment_events::decoder_thread(),
                    tls: secrets.webhook_tls,
                },
            ),
            storage_sessions: crate::storage_session::StorageSessions::new(config.media_ip()),
            catalog,
            config,
            keys,
            authz,
            public_url: public_url.to_string(),
            public_ws_url,
            iot_ca: Arc::new(iot_ca),
            iot_endpoint: None,
            leases: None,
            store,
            get_media_connections: Arc::default(),
            call_rate: CallRate::default(),
            draining: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Counts a call of `api` on `key` (a stream or channel); ClientLimitExceeded past `limit`
    /// a second, as KVS limits its data-plane APIs.
    pub fn limit_rate(
        &self,
        key: &str,
        api: &'static str,
        limit: u32,
        per: &str,
    ) -> Result<(), oxbow_core::ApiError> {
        if self.call_rate.allow(key, api, limit) {
            return Ok(());
        }
        Err(oxbow_core::ApiError::new(
            oxbow_core::ErrorKind::ClientLimitExceeded,
            format!("{api} is limited to {limit} calls per second per {per}. Try making the call later."),
        ))
    }

    /// The ARN of a resource created now: the name and the creation time in ms.
    pub fn arn(&self, resource_type: ResourceType, name: &str, creation_ms: i64) -> String {
        ResourceArn {
            partition: self.config.partition.clone(),
            region: self.config.region.clone(),
            account: self.config.account_id.clone(),
            resource_type,
            name: name.to_string(),
            creation_ms,
        }
        .to_string()
    }

    /// `arn:aws:iam::<account>:<kind>/<name>` (users, roles, policies).
    pub fn iam_arn(&self, kind: &str, name: &str) -> String {
        format!(
            "arn:{}:iam::{}:{kind}/{name}",
            self.config.partition, self.config.account_id
        )
    }

    /// `arn:aws:iot:<region>:<account>:<kind>/<name>` (things, certificates, role aliases).
    pub fn iot_arn(&self, kind: &str, name: &str) -> String {
        format!(
            "arn:{}:iot:{}:{}:{kind}/{name}",
            self.config.partition, self.config.region, self.config.account_id
        )
    }

    /// The KMS key a stream gets when CreateStream names none.
    pub fn default_kms_key(&self) -> String {
        format!(
            "arn:{}:kms:{}:{}:alias/aws/kinesisvideo",
            self.config.partition, self.config.region, self.config.account_id
        )
    }
}
