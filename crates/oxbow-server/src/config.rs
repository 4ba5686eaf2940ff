//! Server configuration. Every limit KVS documents is here with its KVS default, so operators
//! can raise them on their own hardware.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::ServerError;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// An extra plain-HTTP listener beside a TLS `listen`, for local tools.
    pub http_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    /// A cluster's shared catalog (`postgres://…`); `None` for the embedded SQLite catalog in
    /// `data_dir`.
    pub catalog_url: Option<String>,
    /// PEM CA files trusted, besides the system's roots, for the catalog's TLS (when its URL
    /// asks for TLS).
    pub catalog_cas: Vec<PathBuf>,
    /// Connections to the PostgreSQL catalog for statements (one more listens).
    pub catalog_connections: usize,
    /// A cluster's shared media bucket; `None` for the embedded segment store in `data_dir`.
    pub media_bucket: Option<MediaBucket>,
    /// How long a node's ownership of a stream lasts unrenewed (cluster mode): how soon
    /// another node takes over from a dead one.
    pub lease_ttl_ms: u64,
    pub region: String,
    pub account_id: String,
    pub partition: String,
    /// Base URL handed out by GetDataEndpoint and GetSignalingChannelEndpoint.
    pub public_url: Option<String>,
    pub tls: Option<TlsConfig>,
    /// Root credentials from the environment; generated and kept in the catalog otherwise.
    pub root_credentials: Option<(String, String)>,
    /// Where the IoT credentials provider (mutual TLS) listens; off when `None`.
    pub iot_listen: Option<SocketAddr>,
    /// Extra CAs whose device certificates the IoT listener accepts (besides Oxbow's own).
    pub iot_trusted_cas: Vec<PathBuf>,
    /// TURN servers GetIceServerConfig hands out (`turn:host:port?transport=udp`, ...), with
    /// the shared secret their time-limited credentials are derived from (the TURN REST
    /// convention coturn's `use-auth-secret` follows).
    pub turn: Option<TurnConfig>,
    /// Where the embedded STUN/TURN server listens (UDP); off when `None`, and when `turn`
    /// names external servers.
    pub turn_listen: Option<SocketAddr>,
    /// Where the embedded server takes TURN over TLS (`turns:`), with the server's certificate;
    /// only when Oxbow serves TLS.
    pub turn_tls_listen: Option<SocketAddr>,
    /// Where image generation writes `s3://bucket/prefix` destinations: an S3-compatible
    /// server; `None` writes them under `<data_dir>/images/` instead.
    pub image_s3: Option<S3Target>,
    /// CA files (PEM) trusted for https:// notification webhooks besides the system's.
    pub webhook_cas: Vec<PathBuf>,
    /// The address relayed sockets bind to and clients are told about (default: the listen
    /// address, or 127.0.0.1 when that is unspecified).
    pub turn_external_ip: Option<std::net::IpAddr>,
    /// Relayed bit rate per allocation and direction, in kbit/s (KVS: 5 Mbps); 0 = unlimited.
    pub turn_max_kbps: u64,
    /// TURN allocations open at once per signaling channel (KVS: 50); 0 = unlimited.
    pub turn_max_allocations_per_channel: usize,
    /// The shortest session AssumeRole grants (AWS: 900 s); lower only to test expiry.
    pub min_session_seconds: i64,
    pub limits: Limits,
}

#[derive(Debug, Clone)]
pub struct TurnConfig {
    pub uris: Vec<String>,
    pub secret: String,
    /// How long credentials last (KVS: 300 s).
    pub ttl_secs: u64,
}

#[derive(Debug, Clone)]
pub enum TlsConfig {
    /// PEM certificate chain and private key files.
    Files { cert: PathBuf, key: PathBuf },
    /// A CA and a localhost certificate created (once) in the data directory.
    SelfSigned,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Streams per account (KVS: 10,000 in us-east-1 and us-west-2, 5,000 elsewhere).
    pub max_streams: u64,
    /// Signaling channels per account (KVS: 10,000).
    pub max_channels: u64,
    /// How long CREATING, UPDATING and DELETING last before settling, in milliseconds.
    pub lifecycle_delay_ms: i64,
    /// How long an edge configuration stays SYNCING (or DELETING) before it settles.
    pub edge_sync_delay_ms: i64,
    /// Largest control-plane request body accepted.
    pub max_request_bytes: usize,
    /// Free space media leaves on the data filesystem (the catalog, and a DeleteStream that
    /// frees space, must still be able to write).
    pub store_reserve_bytes: u64,
    /// How long a request body (other than PutMedia's stream) may take to arrive.
    pub request_body_timeout_ms: u64,
    /// How long a response may wait for the client to take bytes before the connection
    /// is closed (a reader that stopped reading).
    pub write_stall_timeout_ms: u64,
    /// PutMedia: largest fragment (KVS: 50 MB).
    pub put_max_fragment_bytes: usize,
    /// PutMedia: longest fragment (KVS: 20 s).
    pub put_max_fragment_duration_ms: i64,
    /// PutMedia: tracks per stream (KVS: 3).
    pub put_max_tracks: usize,
    /// PutMedia: metadata tags per fragment (KVS: 10).
    pub put_max_fragment_tags: usize,
    /// PutMedia: how long one connection may last (KVS: 45 minutes).
    pub put_max_connection_ms: u64,
    /// PutMedia: silence before the connection is closed (KVS: 30 s).
    pub put_idle_close_ms: u64,
    /// PutMedia: how often IDLE is acknowledged while nothing arrives.
    pub put_idle_ack_ms: u64,
    /// PutMedia: read rate per stream (KVS: 12.5 MB/s); 0 = unlimited.
    pub put_max_bytes_per_sec: u64,
    /// PutMedia: bytes of completed fragments a session may have waiting to become durable;
    /// past it the session reads no more of the body until the disk catches up.
    pub put_max_pending_bytes: usize,
    /// PutMedia: how far ahead of the server clock a producer timestamp may be.
    pub put_max_future_ms: i64,
    /// GetMedia: concurrent connections per stream (KVS: 3).
    pub get_media_max_connections: usize,
    /// GetMedia: the response ends after this long with nothing new (KVS: 3 s).
    pub get_media_idle_ms: u64,
    /// GetMedia: bytes per second sent per response (KVS: 25 MB/s); 0 = unlimited.
    pub get_media_max_bytes_per_sec: u64,
    /// PutMedia and GetMedia calls per second per stream (KVS: 5); 0 = unlimited.
    pub media_tps_per_stream: u32,
    /// Signaling: viewers connected to one channel at once (KVS: 10).
    pub signaling_max_viewers: usize,
    /// Signaling: a connection with no message for this long is closed (KVS: 10 minutes).
    pub signaling_idle_ms: u64,
    /// Signaling: a connection is closed at this age, after GO_AWAY a minute before (KVS: 1 h).
    pub signaling_max_connection_ms: u64,
    /// Signaling: the longest `messagePayload` (KVS: "10K").
    pub signaling_max_payload: usize,
    /// Signaling: ConnectAsMaster (and, separately, ConnectAsViewer) handshakes per second per
    /// channel (KVS: 3); 0 = unlimited.
    pub signaling_connect_tps: u32,
    /// LIVE HLS playlists carry LL-HLS (parts, blocking reloads, preload hints); off for
    /// playlists exactly like KVS's.
    pub hls_low_latency: bool,
}

impl Limits {
    pub fn for_region(region: &str) -> Self {
        Self {
            max_streams: if matches!(region, "us-east-1" | "us-west-2") {
                10_000
            } else {
                5_000
            },
            max_channels: 10_000,
            lifecycle_delay_ms: 0,
            edge_sync_delay_ms: 1_000,
            max_request_bytes: 1 << 20,
            request_body_timeout_ms: 20_000,
            store_reserve_bytes: oxbow_store::DEFAULT_RESERVE_BYTES,
            write_stall_timeout_ms: 20_000,
            put_max_fragment_bytes: 50 << 20,
            put_max_fragment_duration_ms: 20_000,
            put_max_tracks: 3,
            put_max_fragment_tags: 10,
            put_max_connection_ms: 45 * 60 * 1000,
            put_idle_close_ms: 30_000,
            put_idle_ack_ms: 3_000,
            put_max_bytes_per_sec: 12_500_000,
            put_max_future_ms: 10 * 60 * 1000,
            put_max_pending_bytes: 32 << 20,
            get_media_max_connections: 3,
            get_media_idle_ms: 3_000,
            get_media_max_bytes_per_sec: 25_000_000,
            media_tps_per_stream: 5,
            signaling_max_viewers: 10,
            signaling_idle_ms: 600_000,
            signaling_max_connection_ms: 3_600_000,
            signaling_max_payload: 10_240,
            signaling_connect_tps: 3,
            hls_low_latency: true,
        }
    }
}

impl ServerConfig {
    /// A configuration with KVS's defaults for the given listen address and data directory.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            listen,
            http_listen: None,
            data_dir,
            catalog_url: None,
            catalog_cas: Vec::new(),
            catalog_connections: oxbow_catalog::PostgresOptions::default().connections,
            media_bucket: None,
            lease_ttl_ms: 6_000,
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            partition: "aws".into(),
            public_url: None,
            tls: None,
            root_credentials: None,
            iot_listen: None,
            iot_trusted_cas: Vec::new(),
            turn: None,
            turn_listen: None,
            turn_tls_listen: None,
            image_s3: None,
            webhook_cas: Vec::new(),
            turn_external_ip: None,
            turn_max_kbps: 5_000,
            turn_max_allocations_per_channel: 50,
            min_session_seconds: 900,
            limits: Limits::for_region("us-east-1"),
        }
    }

    /// Where WebRTC media reaches this server (TURN relays, storage sessions): the external
    /// IP if set, else the listen address, or 127.0.0.1 when that is unspecified.
    pub fn media_ip(&self) -> std::net::IpAddr {
        let listen = self.turn_listen.unwrap_or(self.listen).ip();
        self.turn_external_ip.unwrap_or(if listen.is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            listen
        })
    }

    pub(crate) fn check(&self) -> Result<(), ServerError> {
        let bad = |m: String| Err(ServerError::Config(m));
        if self.account_id.len() != 12 || !self.account_id.chars().all(|c| c.is_ascii_digit()) {
            return bad(format!(
                "account id must be 12 digits, got '{}'",
                self.account_id
            ));
        }
        let region_ok = !self.region.is_empty()
            && self
                .region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !region_ok {
            return bad(format!("region '{}' is not a region name", self.region));
        }
        if let Some(t) = &self.turn {
            if t.uris.is_empty() || t.uris.len() > 4 {
                return bad("give 1 to 4 TURN URIs (the WebRTC C SDK refuses more)".into());
            }
            if let Some(u) = t
                .uris
                .iter()
                .find(|u| !(u.starts_with("turn:") || u.starts_with("turns:")))
            {
                return bad(format!("TURN URI '{u}' must start with turn: or turns:"));
            }
            if t.secret.is_empty() {
                return bad("a TURN URI needs --turn-secret".into());
            }
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!(
                    "public URL must start with http:// or https://, got '{url}'"
                ));
            }
        }
        Ok(())
    }
}

/// Where cluster mode keeps media: a bucket (and key prefix) on an S3-compatible server.
#[derive(Debug, Clone)]
pub struct MediaBucket {
    pub server: S3Target,
    pub bucket: String,
    pub prefix: String,
}

impl MediaBucket {
    /// `s3://bucket/prefix` on `server`.
    pub fn parse(uri: &str, server: S3Target) -> Result<Self, String> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{uri}: media must be s3://bucket[/prefix]"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{uri}: no bucket named"));
        }
        Ok(Self {
            server,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }
}

/// An S3-compatible server and the key Oxbow writes to it with.
#[derive(Debug, Clone)]
pub struct S3Target {
    /// e.g. `http://127.0.0.1:9000` (path-style requests).
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}
