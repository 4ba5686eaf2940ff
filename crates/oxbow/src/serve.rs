//! `oxbow serve`: flags to configuration, readiness message, signal handling.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use oxbow_server::{Limits, Server, ServerConfig, TlsConfig};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on (TLS when a certificate is configured).
    #[arg(long, default_value = "127.0.0.1:7800", env = "OXBOW_LISTEN")]
    listen: SocketAddr,
    /// An extra plain-HTTP listener beside a TLS --listen, for local tools.
    #[arg(long, env = "OXBOW_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Where the catalog, media and generated credentials live.
    #[arg(long, default_value = "./oxbow-data", env = "OXBOW_DATA_DIR")]
    data_dir: PathBuf,
    /// The AWS region this server answers for (clients must sign for it).
    #[arg(long, default_value = "us-east-1", env = "OXBOW_REGION")]
    region: String,
    /// The 12-digit account id that appears in ARNs.
    #[arg(long, default_value = "123456789012", env = "OXBOW_ACCOUNT_ID")]
    account_id: String,
    /// Base URL handed out by GetDataEndpoint and GetSignalingChannelEndpoint
    /// [default: derived from --listen]. Use `https://host` (no port) for the KVS C SDKs,
    /// which only connect to port 443.
    #[arg(long, env = "OXBOW_PUBLIC_URL")]
    public_url: Option<String>,
    /// PEM certificate chain for TLS (with --tls-key).
    #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve TLS with a CA and certificate for localhost created in the data directory.
    #[arg(long)]
    tls_self_signed: bool,
    /// The catalog: a PostgreSQL URL (`postgres://user:password@host:5432/db`) that several
    /// nodes share in cluster mode [default: the embedded SQLite catalog in --data-dir].
    #[arg(long, env = "OXBOW_CATALOG")]
    catalog: Option<String>,
    /// A PEM CA file trusted, besides the system's roots, for the catalog's TLS: add
    /// `?sslmode=require` (or verify-full, verify-ca) to --catalog to connect over TLS, always
    /// verifying the server's certificate (and its name, but for verify-ca); the URL's
    /// `sslrootcert`, `sslcert` and `sslkey` work as in psql (repeatable).
    #[arg(long = "catalog-ca", requires = "catalog")]
    catalog_cas: Vec<PathBuf>,
    /// Connections this node opens to the catalog for its statements, one more listening for
    /// other nodes' changes: keep nodes × (this + 1) under PostgreSQL's max_connections
    /// [default: 8].
    #[arg(
        long,
        env = "OXBOW_CATALOG_CONNECTIONS",
        value_parser = clap::value_parser!(u16).range(1..=1000),
        requires = "catalog"
    )]
    catalog_connections: Option<u16>,
    /// Cluster mode: how long a node's ownership of a stream lasts unrenewed, i.e. how soon
    /// another node takes a dead node's streams over.
    #[arg(long, default_value_t = 6000, env = "OXBOW_LEASE_TTL_MS")]
    lease_ttl_ms: u64,
    /// Threads that run requests. Set it to this node's share of the cores when several
    /// nodes share a machine: more busy threads than cores only add context switches
    /// [default: the cores this process may use].
    #[arg(long, env = "OXBOW_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,
    /// Keep media in a bucket of an S3-compatible server, `s3://bucket/prefix`, so every node
    /// of a cluster reads it (with --media-s3-endpoint) [default: segment files in --data-dir].
    #[arg(long, env = "OXBOW_MEDIA", requires = "media_s3_endpoint")]
    media: Option<String>,
    /// The S3-compatible server of --media (path-style, e.g. http://127.0.0.1:9000).
    #[arg(long, env = "OXBOW_MEDIA_S3_ENDPOINT", requires = "media")]
    media_s3_endpoint: Option<String>,
    /// The access key --media is written with [default: AWS_ACCESS_KEY_ID].
    #[arg(long, env = "OXBOW_MEDIA_S3_ACCESS_KEY_ID")]
    media_s3_access_key_id: Option<String>,
    /// Its secret [default: AWS_SECRET_ACCESS_KEY].
    #[arg(long, env = "OXBOW_MEDIA_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    media_s3_secret_access_key: Option<String>,
    /// Serve the IoT credentials provider (mutual TLS, `GET /role-aliases/<alias>/credentials`)
    /// on this address, e.g. 127.0.0.1:7843.
    #[arg(long, env = "OXBOW_IOT_LISTEN")]
    iot_listen: Option<SocketAddr>,
    /// A PEM CA file whose device certificates the IoT listener also accepts (repeatable);
    /// register the devices' certificates with `oxbow admin register-certificate`.
    #[arg(long = "iot-ca")]
    iot_trusted_cas: Vec<PathBuf>,
    /// A TURN server GetIceServerConfig hands out, e.g. `turn:turn.example.com:3478?transport=udp`
    /// (repeatable, up to 4); its credentials are derived from --turn-secret.
    #[arg(long = "turn-uri")]
    turn_uris: Vec<String>,
    /// Where the embedded STUN/TURN server listens (UDP). It runs unless --turn-uri names
    /// external TURN servers or --no-turn is given.
    #[arg(long, default_value = "0.0.0.0:3478", env = "OXBOW_TURN_LISTEN")]
    turn_listen: SocketAddr,
    /// Where the embedded TURN server takes TURN over TLS (`turns:`, with the server's
    /// certificate). Only when Oxbow serves TLS.
    #[arg(long, default_value = "0.0.0.0:5349", env = "OXBOW_TURN_TLS_LISTEN")]
    turn_tls_listen: SocketAddr,
    /// Write generated images for `s3://bucket/prefix` destinations to this S3-compatible
    /// server (path-style, e.g. http://127.0.0.1:9000) instead of <data-dir>/images/.
    #[arg(long, env = "OXBOW_IMAGE_S3_ENDPOINT")]
    image_s3_endpoint: Option<String>,
    /// A PEM CA file trusted for https:// notification webhooks besides the system's roots
    /// (repeatable).
    #[arg(long = "webhook-ca")]
    webhook_cas: Vec<PathBuf>,
    /// The access key for --image-s3-endpoint [default: AWS_ACCESS_KEY_ID].
    #[arg(
        long,
        env = "OXBOW_IMAGE_S3_ACCESS_KEY_ID",
        requires = "image_s3_endpoint"
    )]
    image_s3_access_key_id: Option<String>,
    /// The secret key for --image-s3-endpoint [default: AWS_SECRET_ACCESS_KEY].
    #[arg(
        long,
        env = "OXBOW_IMAGE_S3_SECRET_ACCESS_KEY",
        hide_env_values = true,
        requires = "image_s3_endpoint"
    )]
    image_s3_secret_access_key: Option<String>,
    /// The address the embedded TURN server's relayed sockets bind to and clients are told
    /// (default: the --turn-listen address, or 127.0.0.1 when that is 0.0.0.0). Set it to an
    /// address your peers can reach.
    #[arg(long)]
    turn_external_ip: Option<std::net::IpAddr>,
    /// Relayed bit rate per TURN allocation and direction, kbit/s (0 = unlimited).
    #[arg(long, default_value_t = 5_000)]
    turn_max_kbps: u64,
    /// TURN allocations open at once per signaling channel (0 = unlimited).
    #[arg(long, default_value_t = 50)]
    turn_max_allocations_per_channel: usize,
    /// Do not run the embedded STUN/TURN server.
    #[arg(long)]
    no_turn: bool,
    /// The TURN REST shared secret (coturn: `use-auth-secret` with `static-auth-secret`).
    #[arg(long, env = "OXBOW_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// The shortest session STS AssumeRole grants, in seconds (AWS: 900). Lower it only to
    /// test how clients handle expiring credentials.
    #[arg(long, default_value_t = 900)]
    min_session_seconds: i64,
    /// Streams per account [default: 10000 in us-east-1 and us-west-2, else 5000].
    #[arg(long)]
    max_streams: Option<u64>,
    /// Signaling channels per account.
    #[arg(long, default_value_t = 10_000)]
    max_channels: u64,
    /// How long CREATING, UPDATING and DELETING last before they settle (milliseconds).
    #[arg(long, default_value_t = 0)]
    lifecycle_delay_ms: i64,
    /// How long an edge configuration stays SYNCING or DELETING (milliseconds).
    #[arg(long, default_value_t = 1_000)]
    edge_sync_delay_ms: i64,
    /// PutMedia: largest fragment in bytes.
    #[arg(long, default_value_t = 50 << 20)]
    put_max_fragment_bytes: usize,
    /// PutMedia: longest fragment (milliseconds).
    #[arg(long, default_value_t = 20_000)]
    put_max_fragment_duration_ms: i64,
    /// PutMedia: longest connection (milliseconds).
    #[arg(long, default_value_t = 45 * 60 * 1000)]
    put_max_connection_ms: u64,
    /// PutMedia: completed fragments (MiB) one session may have waiting for the disk; past
    /// this it reads no more of the body until they are durable (backpressure).
    #[arg(long, default_value_t = 32)]
    put_max_pending_mb: usize,
    /// Free space (MiB) that media never uses on the data directory's filesystem, so the
    /// catalog can still write, and DeleteStream free space, when media has filled the disk.
    #[arg(long, default_value_t = 16)]
    store_reserve_mb: u64,
    /// How long a request body may take to arrive (milliseconds; PutMedia has its own idle
    /// rule).
    #[arg(long, default_value_t = 20_000)]
    request_body_timeout_ms: u64,
    /// Close a connection whose client takes no bytes of its response for this long
    /// (milliseconds): a reader that stopped reading.
    #[arg(long, default_value_t = 20_000)]
    write_stall_timeout_ms: u64,
    /// GetMedia: the response ends after this long with nothing new to send (milliseconds;
    /// KVS: 3 s).
    #[arg(long, default_value_t = 3_000)]
    get_media_idle_ms: u64,
    /// PutMedia: silence before the connection is closed (milliseconds).
    #[arg(long, default_value_t = 30_000)]
    put_idle_close_ms: u64,
    /// PutMedia: interval of IDLE acks while nothing arrives (milliseconds).
    #[arg(long, default_value_t = 3_000)]
    put_idle_ack_ms: u64,
    /// PutMedia: read rate per stream in bytes/s (0 = unlimited).
    #[arg(long, default_value_t = 12_500_000)]
    put_max_bytes_per_sec: u64,
    /// GetMedia: concurrent connections per stream.
    #[arg(long, default_value_t = 3)]
    get_media_max_connections: usize,
    /// GetMedia: bytes/s sent per response (0 = unlimited).
    #[arg(long, default_value_t = 25_000_000)]
    get_media_max_bytes_per_sec: u64,
    /// PutMedia and GetMedia calls per second per stream (0 = unlimited).
    #[arg(long, default_value_t = 5)]
    media_tps_per_stream: u32,
    /// Signaling: viewers connected to one channel at once.
    #[arg(long, default_value_t = 10)]
    signaling_max_viewers: usize,
    /// Signaling: close a connection that sent no message for this long (milliseconds).
    #[arg(long, default_value_t = 600_000)]
    signaling_idle_timeout_ms: u64,
    /// Signaling: close a connection at this age, after a GO_AWAY (milliseconds).
    #[arg(long, default_value_t = 3_600_000)]
    signaling_max_connection_ms: u64,
    /// Signaling: the longest messagePayload accepted (bytes).
    #[arg(long, default_value_t = 10_240)]
    signaling_max_payload: usize,
    /// Signaling: ConnectAsMaster, and ConnectAsViewer, handshakes per second per channel
    /// (0 = unlimited).
    #[arg(long, default_value_t = 3)]
    signaling_connect_tps: u32,
    /// Serve LIVE HLS playlists exactly as KVS does, without the low-latency (LL-HLS) parts,
    /// blocking reloads and preload hints that let players run under a second behind.
    #[arg(long)]
    no_low_latency_hls: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Server(#[from] oxbow_server::ServerError),
    #[error("root credentials: set both OXBOW_ROOT_ACCESS_KEY_ID and OXBOW_ROOT_SECRET_ACCESS_KEY, or neither")]
    HalfCredentials,
    #[error("--media: {0}")]
    Media(String),
}

impl ServeArgs {
    fn config(self) -> Result<ServerConfig, ServeError> {
        let root = match (
            std::env::var("OXBOW_ROOT_ACCESS_KEY_ID").ok(),
            std::env::var("OXBOW_ROOT_SECRET_ACCESS_KEY").ok(),
        ) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => None,
            _ => return Err(ServeError::HalfCredentials),
        };
        let mut limits = Limits::for_region(&self.region);
        if let Some(n) = self.max_streams {
            limits.max_streams = n;
        }
        limits.max_channels = self.max_channels;
        limits.lifecycle_delay_ms = self.lifecycle_delay_ms;
        limits.edge_sync_delay_ms = self.edge_sync_delay_ms;
        limits.put_max_fragment_bytes = self.put_max_fragment_bytes;
        limits.put_max_fragment_duration_ms = self.put_max_fragment_duration_ms;
        limits.put_max_connection_ms = self.put_max_connection_ms;
        limits.put_idle_close_ms = self.put_idle_close_ms;
        limits.put_max_pending_bytes = self.put_max_pending_mb << 20;
        limits.request_body_timeout_ms = self.request_body_timeout_ms;
        limits.store_reserve_bytes = self.store_reserve_mb << 20;
        limits.get_media_idle_ms = self.get_media_idle_ms;
        limits.write_stall_timeout_ms = self.write_stall_timeout_ms;
        limits.put_idle_ack_ms = self.put_idle_ack_ms;
        limits.put_max_bytes_per_sec = self.put_max_bytes_per_sec;
        limits.get_media_max_connections = self.get_media_max_connections;
        limits.get_media_max_bytes_per_sec = self.get_media_max_bytes_per_sec;
        limits.media_tps_per_stream = self.media_tps_per_stream;
        limits.signaling_max_viewers = self.signaling_max_viewers;
        limits.signaling_idle_ms = self.signaling_idle_timeout_ms;
        limits.signaling_max_connection_ms = self.signaling_max_connection_ms;
        limits.signaling_max_payload = self.signaling_max_payload;
        limits.signaling_connect_tps = self.signaling_connect_tps;
        limits.hls_low_latency = !self.no_low_latency_hls;
        let tls = match (self.tls_cert, self.tls_key, self.tls_self_signed) {
            (Some(cert), Some(key), _) => Some(TlsConfig::Files { cert, key }),
            (_, _, true) => Some(TlsConfig::SelfSigned),
            _ => None,
        };
        // Absolute, so every path printed or written into the AWS config names the same file
        // from any working directory.
        let data_dir = std::path::absolute(&self.data_dir).unwrap_or(self.data_dir);
        let mut config = ServerConfig::new(self.listen, data_dir);
        config.http_listen = self.http_listen;
        config.catalog_url = self.catalog;
        config.catalog_cas = self.catalog_cas;
        if let Some(n) = self.catalog_connections {
            config.catalog_connections = usize::from(n);
        }
        config.lease_ttl_ms = self.lease_ttl_ms;
        config.region = self.region;
        config.account_id = self.account_id;
        config.public_url = self.public_url;
        config.tls = tls;
        config.root_credentials = root;
        config.iot_listen = self.iot_listen;
        config.iot_trusted_cas = self.iot_trusted_cas;
        config.turn_listen = (!self.no_turn).then_some(self.turn_listen);
        config.turn_tls_listen = Some(self.turn_tls_listen);
        config.webhook_cas = self.webhook_cas.clone();
        config.image_s3 = self.image_s3_endpoint.clone().map(|endpoint| {
            s3_target(
                endpoint,
                &config.region,
                &self.image_s3_access_key_id,
                &self.image_s3_secret_access_key,
                process_env,
            )
        });
        config.turn_external_ip = self.turn_external_ip;
        if let (Some(uri), Some(endpoint)) = (&self.media, &self.media_s3_endpoint) {
            let server = s3_target(
                endpoint.clone(),
                &config.region,
                &self.media_s3_access_key_id,
                &self.media_s3_secret_access_key,
                process_env,
            );
            config.media_bucket = Some(
                oxbow_server::config::MediaBucket::parse(uri, server).map_err(ServeError::Media)?,
            );
        }
        config.turn_max_kbps = self.turn_max_kbps;
        config.turn_max_allocations_per_channel = self.turn_max_allocations_per_channel;
        if !self.turn_uris.is_empty() || self.turn_secret.is_some() {
            config.turn = Some(oxbow_server::TurnConfig {
                uris: self.turn_uris,
                secret: self.turn_secret.unwrap_or_default(),
                ttl_secs: 300,
            });
        }
        config.min_session_seconds = self.min_session_seconds;
        config.limits = limits;
        Ok(config)
    }
}

pub async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = args.config()?;
    let region = config.region.clone();
    let shutdown = shutdown_signal()?;
    let server = Server::bind(config).await.map_err(ServeError::from)?;
    print_ready(&server.info, &region);
    server.serve(shutdown).await;
    eprintln!("oxbow: stopped");
    Ok(())
}

fn print_ready(info: &oxbow_server::ServerInfo, region: &str) {
    let dir = info.aws_config_dir.display();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Oxbow {} is ready: {}",
        env!("CARGO_PKG_VERSION"),
        info.url
    );
    if let Some(plain) = &info.plain_url {
        let _ = writeln!(out, "  plain HTTP also on {plain}");
    }
    let _ = writeln!(out, "  public URL (handed to clients): {}", info.public_url);
    let _ = writeln!(out, "  catalog: {}", info.catalog);
    let _ = writeln!(out, "  media: {}", info.media);
    if let Some(ca) = &info.ca_path {
        let _ = writeln!(out, "  TLS CA certificate: {}", ca.display());
    }
    if let Some(iot) = &info.iot_url {
        let _ = writeln!(out, "  IoT credentials provider (mutual TLS): {iot}");
        if let Some(ca) = &info.iot_server_ca {
            let _ = writeln!(out, "    devices verify it with {}", ca.display());
        }
    }
    if let Some(turn) = &info.turn_addr {
        let _ = writeln!(out, "  STUN/TURN (UDP): {turn}");
    }
    if let Some(turn) = &info.turn_tls_addr {
        let _ = writeln!(out, "  TURN over TLS: {turn}");
    }
    let _ = writeln!(
        out,
        "  IoT device CA (create-keys-and-certificate): {}",
        info.iot_ca_path.display()
    );
    let _ = writeln!(
        out,
        "  region {region}, root access key {}",
        info.root.access_key_id
    );
    let _ = writeln!(out, "Use it with the AWS CLI:");
    let _ = writeln!(
        out,
        "  export AWS_SHARED_CREDENTIALS_FILE={dir}/credentials AWS_CONFIG_FILE={dir}/config AWS_PROFILE=oxbow"
    );
    let _ = writeln!(out, "  aws kinesisvideo list-streams");
    let _ = out.flush();
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives right after the readiness banner
/// still shuts down cleanly.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

/// An S3-compatible server's address and keys; keys not given come from the AWS SDK's
/// variables, as every S3 client reads them.
fn s3_target(
    endpoint: String,
    region: &str,
    access_key_id: &Option<String>,
    secret_access_key: &Option<String>,
    env: impl Fn(&str) -> Option<String>,
) -> oxbow_server::config::S3Target {
    oxbow_server::config::S3Target {
        endpoint,
        region: region.to_string(),
        access_key_id: access_key_id
            .clone()
            .or_else(|| env("AWS_ACCESS_KEY_ID"))
            .unwrap_or_default(),
        secret_access_key: secret_access_key
            .clone()
            .or_else(|| env("AWS_SECRET_ACCESS_KEY"))
            .unwrap_or_default(),
    }
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_env(name: &str) -> Option<String> {
        match name {
            "AWS_ACCESS_KEY_ID" => Some("env-key".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("env-secret".into()),
            _ => None,
        }
    }

    #[test]
    fn s3_keys_come_from_the_flags_or_else_from_the_aws_variables() {
        let given = s3_target(
            "http://s3".into(),
            "eu-west-1",
            &Some("flag-key".into()),
            &Some("flag-secret".into()),
            aws_env,
        );
        assert_eq!(
            (
                given.endpoint.as_str(),
                given.region.as_str(),
                given.access_key_id.as_str(),
                given.secret_access_key.as_str()
            ),
            ("http://s3", "eu-west-1", "flag-key", "flag-secret")
        );
        let from_env = s3_target("http://s3".into(), "eu-west-1", &None, &None, aws_env);
        assert_eq!(
            (
                from_env.access_key_id.as_str(),
                from_env.secret_access_key.as_str()
            ),
            ("env-key", "env-secret")
        );
        let neither = s3_target("http://s3".into(), "eu-west-1", &None, &None, |_| None);
        assert_eq!(neither.access_key_id, "");
    }
}
