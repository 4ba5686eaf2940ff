//! The Oxbow server: one HTTP(S) listener whose front door verifies SigV4 and routes by path to
//! the API handlers. [`Server::bind`] opens the catalog and sockets, then [`Server::serve`] runs
//! until the shutdown future completes.

#![forbid(unsafe_code)]

mod access;
pub mod admin;
mod alexa;
mod api;
mod auth;
mod authz;
mod bootstrap;
mod byte_cache;
mod camera;
mod catalog_changes;
pub mod config;
pub mod control;
mod deadline;
mod device_ca;
mod fragment_events;
mod front;
mod head_check;
mod http;
mod iam;
mod ice;
mod input;
mod iot_control;
mod iot_credentials;
mod key_files;
mod leases;
mod listener;
pub mod media;
mod media_bucket;
mod playback;
mod query;
mod reaper;
mod relay;
mod resource;
mod sealed_sessions;
mod session_keys;
mod sessions;
mod signaling;
mod stall;
mod state;
mod storage_session;
mod sts;
mod tls;
mod turn;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use oxbow_catalog::{Catalog, PostgresCatalog, SqliteCatalog};
use tokio::net::TcpListener;

use api::RouteFn;
use listener::Listener;

pub use bootstrap::RootCredentials;
pub use config::{Limits, ServerConfig, TlsConfig, TurnConfig};
use state::AppState;

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("catalog: {0}")]
    Catalog(#[from] oxbow_catalog::CatalogError),
    #[error("media store: {0}")]
    Store(#[from] oxbow_store::StoreError),
    #[error("cannot use the media bucket: {0}")]
    MediaBucket(std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("configuration: {0}")]
    Config(String),
}

/// A bound, ready-to-serve Oxbow.
pub struct Server {
    state: Arc<AppState>,
    primary: TcpListener,
    plain: Option<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    iot: Option<IotListener>,
    turn: Option<turn::TurnListener>,
    /// What the operator needs to know to connect: URLs, credentials, CA path.
    pub info: ServerInfo,
}

/// Facts about a started server, for the readiness message and the tests.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub url: String,
    /// Which catalog this node uses, without credentials.
    pub catalog: String,
    /// Where this node keeps media.
    pub media: String,
    pub plain_url: Option<String>,
    pub public_url: String,
    pub ca_path: Option<std::path::PathBuf>,
    pub root: RootCredentials,
    pub aws_config_dir: std::path::PathBuf,
    /// `https://host:port` of the IoT credentials provider, when enabled.
    pub iot_url: Option<String>,
    /// The CA that signs device certificates (`CreateKeysAndCertificate`).
    pub iot_ca_path: std::path::PathBuf,
    /// The CA devices verify the IoT listener with (`curl --cacert`), when self-signed.
    pub iot_server_ca: Option<std::path::PathBuf>,
    /// `ip:port` of the embedded STUN/TURN server (UDP), when it runs.
    pub turn_addr: Option<SocketAddr>,
    /// `ip:port` of its TURN-over-TLS listener, when it runs.
    pub turn_tls_addr: Option<SocketAddr>,
}

/// The catalog as the banner names it: the SQLite file, or the PostgreSQL server and database
/// with any user and password left out.
fn catalog_description(config: &ServerConfig) -> String {
    match &config.catalog_url {
        Some(url) => {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let place = rest.rsplit_once('@').map_or(rest, |(_, p)| p);
            format!("PostgreSQL {place} (shared: cluster mode)")
        }
        None => format!(
            "embedded SQLite {}",
            config.data_dir.join("catalog.sqlite").display()
        ),
    }
}

/// The bound IoT credentials listener.
struct IotListener {
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    url: String,
    server_ca: Option<std::path::PathBuf>,
}

/// Binds the IoT credentials provider. It always speaks TLS: with the main listener's
/// certificate, or a self-signed one when the main listener is plain.
async fn iot_listener(
    config: &ServerConfig,
    addr: SocketAddr,
    identity: Option<tls::Identity>,
    public_url: &str,
    ca: &device_ca::IotCa,
) -> Result<IotListener, ServerError> {
    let identity = match identity {
        Some(i) => i,
        None => tls::identity(&TlsConfig::SelfSigned, &config.data_dir, public_url)?,
    };
    let mut client_cas = vec![ca.path.clone()];
    client_cas.extend(config.iot_trusted_cas.iter().cloned());
    let acceptor = tls::mutual_acceptor(&identity, &client_cas)?;
    let listener = bind(addr).await?;
    let local = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    Ok(IotListener {
        listener,
        acceptor,
        url: format!("https://{}", display_addr(local)),
        server_ca: identity.ca,
    })
}

impl Server {
    /// Opens the data directory, catalog and listeners. Nothing is served until [`Server::serve`].
    pub async fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        config.check()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let catalog: Arc<dyn Catalog> = match &config.catalog_url {
            Some(url) => {
                let url = oxbow_catalog::CatalogUrl::parse(url)?;
                let tls = match url.tls() {
                    Some(files) => Some(tls::catalog_connector(&config.catalog_cas, files)?),
                    None => None,
                };
                let options = oxbow_catalog::PostgresOptions {
                    tls,
                    connections: config.catalog_connections,
                };
                Arc::new(PostgresCatalog::connect_with(&url, options).await?)
            }
            None => Arc::new(SqliteCatalog::open(
                &config.data_dir.join("catalog.sqlite"),
            )?),
        };
        let store_config = oxbow_store::StoreConfig {
            reserve_bytes: config.limits.store_reserve_bytes,
            ..Default::default()
        };
        let store = match &config.media_bucket {
            Some(media) => {
                let bucket = media_bucket::S3Bucket::connect(media)
                    .await
                    .map_err(ServerError::MediaBucket)?;
                oxbow_store::Store::with_backend(
                    Box::new(oxbow_store::ObjectBackend::new(
                        Arc::new(bucket),
                        &media.prefix,
                    )),
                    store_config,
                )
            }
            None => oxbow_store::Store::open(&config.data_dir.join("media"), store_config)?,
        };
        let primary = bind(config.listen).await?;
        let plain = match config.http_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let local = primary.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let url = base_url(scheme, local);
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| url.clone())
            .trim_end_matches('/')
            .to_string();
        let identity = match &config.tls {
            Some(t) => Some(tls::identity(t, &config.data_dir, &public_url)?),
            None => None,
        };
        let tls = identity.as_ref().map(tls::acceptor).transpose()?;
        let turn_tls = identity.as_ref().map(tls::turn_acceptor).transpose()?;
        let ca_path = identity.as_ref().and_then(|i| i.ca.clone());
        let mut iot_ca = device_ca::IotCa::open_or_create(&config.data_dir.join("iot"))?;
        if config.catalog_url.is_some() {
            iot_ca =
                bootstrap::shared_iot_ca(catalog.as_ref(), &config.data_dir.join("iot"), iot_ca)
                    .await?;
        }
        let iot = match config.iot_listen {
            Some(addr) => Some(iot_listener(&config, addr, identity, &public_url, &iot_ca).await?),
            None => None,
        };
        let (turn, turn_handle) = match (&config.turn, config.turn_listen) {
            (None, Some(addr)) => {
                let external = config.media_ip();
                let limits = turn::TurnLimits {
                    max_kbps: config.turn_max_kbps,
                    max_allocations_per_channel: config.turn_max_allocations_per_channel,
                };
                let tls = config.turn_tls_listen.zip(turn_tls);
                let (l, h) = turn::bind(addr, tls, external, "oxbow", limits).await?;
                (Some(l), Some(h))
            }
            _ => (None, None),
        };
        let turn_addr = turn_handle.as_ref().map(|h| h.external);
        let turn_tls_addr = turn_handle.as_ref().and_then(|h| h.external_tls);
        let root = bootstrap::root_credentials(catalog.as_ref(), &config).await?;
        let aws_config_dir =
            bootstrap::write_aws_files(&config, &root, &public_url, ca_path.as_deref())?;
        let plain_url = plain
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| format!("http://{}", display_addr(a)));
        let iot_ca_path = iot_ca.path.clone();
        let iot_url = iot.as_ref().map(|l| l.url.clone());
        let iot_server_ca = iot.as_ref().and_then(|l| l.server_ca.clone());
        let key = |file: &str| {
            let path = config.data_dir.join(file);
            key_files::load_or_create_key(&path).map_err(|source| ServerError::DataDir {
                path: path.display().to_string(),
                source,
            })
        };
        // A cluster's nodes must seal and open alike: each key is the shared catalog's.
        let cluster = config.catalog_url.is_some();
        let shared = |name: &'static str, local: Vec<u8>| {
            let catalog = Arc::clone(&catalog);
            async move {
                if cluster {
                    bootstrap::shared_key(catalog.as_ref(), name, local).await
                } else {
                    Ok(local)
                }
            }
        };
        // Temporary credentials: the current key seals, the previous one (if a rotation left
        // one) still verifies.
        let previous = config.data_dir.join(session_keys::PREVIOUS_FILE);
        let previous = previous
            .exists()
            .then(|| key(session_keys::PREVIOUS_FILE))
            .transpose()?;
        let sessions = shared(
            session_keys::CURRENT_RECORD,
            key(session_keys::CURRENT_FILE)?,
        )
        .await?;
        let ring = sealed_sessions::Keyring::new(sessions, previous);
        let sessions = if cluster {
            let keys = session_keys::SessionKeys::in_catalog(ring, Arc::clone(&catalog));
            // A rotation in the cluster's past left its previous key in the catalog.
            keys.reload().await?;
            keys
        } else {
            session_keys::SessionKeys::in_files(ring, config.data_dir.clone())
        };
        let keys = state::ServerKeys {
            sessions: Arc::new(sessions),
            playback: shared("playback-session", key("playback-session.key")?).await?,
            webhook: shared("notification-webhook", key("notification-webhook.key")?).await?,
            webhook_tls: tls::client_connector(&config.webhook_cas)?,
        };
        let mut state = AppState::new(
            catalog,
            Arc::new(store),
            config,
            &public_url,
            iot_ca,
            turn_handle,
            keys,
        );
        if state.config.catalog_url.is_some() {
            let node = format!("node-{}", oxbow_core::ids::request_id());
            tracing::info!(node = %node, "cluster node");
            state.leases = Some(leases::Leases::new(
                node,
                state.public_url.clone(),
                std::time::Duration::from_millis(state.config.lease_ttl_ms),
            ));
        }
        state.iot_endpoint = iot_url
            .as_deref()
            .map(|u| u.trim_start_matches("https://").to_string());
        let state = Arc::new(state);
        let catalog = catalog_description(&state.config);
        let media = match &state.config.media_bucket {
            Some(m) => format!(
                "s3://{}/{} at {} (shared: cluster mode)",
                m.bucket, m.prefix, m.server.endpoint
            ),
            None => format!(
                "segment files in {}",
                state.config.data_dir.join("media").display()
            ),
        };
        Ok(Server {
            state,
            primary,
            plain,
            tls,
            iot,
            turn,
            info: ServerInfo {
                url,
                catalog,
                media,
                plain_url,
                public_url,
                ca_path,
                root,
                aws_config_dir,
                iot_url,
                iot_ca_path,
                iot_server_ca,
                turn_addr,
                turn_tls_addr,
            },
        })
    }

    /// Serves until `shutdown` completes, then drains open connections (up to 10 s).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let reaper = tokio::spawn(reaper::run(Arc::clone(&self.state)));
        let follower = tokio::spawn(catalog_changes::follow(Arc::clone(&self.state)));
        let kept = Arc::clone(&self.state);
        let keeper = tokio::spawn(async move {
            if let Some(leases) = &kept.leases {
                leases.keep(kept.catalog.as_ref()).await;
            }
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let tls_primary = self.tls.is_some();
        let mut listeners = vec![Listener {
            tcp: self.primary,
            tls: self.tls,
            routes: KVS_ROUTES,
            plain_beside_tls: false,
        }];
        if let Some(plain) = self.plain {
            listeners.push(Listener {
                tcp: plain,
                tls: None,
                routes: KVS_ROUTES,
                plain_beside_tls: tls_primary,
            });
        }
        if let Some(iot) = self.iot {
            listeners.push(Listener {
                tcp: iot.listener,
                tls: Some(iot.acceptor),
                routes: IOT_ROUTES,
                plain_beside_tls: false,
            });
        }
        let turn = self
            .turn
            .map(|t| tokio::spawn(turn::run(t, stop_rx.clone())));
        let tasks: Vec<_> = listeners
            .into_iter()
            .map(|l| tokio::spawn(listener::run(l, Arc::clone(&self.state), stop_rx.clone())))
            .collect();
        shutdown.await;
        tracing::info!("shutting down: no new connections, draining open ones");
        let _ = stop_tx.send(true);
        self.state.draining.send_replace(true);
        // Signaling connections are upgraded out of hyper's reach: each says GO_AWAY and
        // closes on its own; give them a moment to do so before the process ends.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while self.state.relay.connections() > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        for t in tasks {
            let _ = t.await;
        }
        if let Some(t) = turn {
            let _ = t.await;
        }
        reaper.abort();
        follower.abort();
        keeper.abort();
        if let Some(leases) = &self.state.leases {
            leases.release_all(self.state.catalog.as_ref()).await;
        }
    }
}

/// What the main listener (and the plain one beside it) serves: the KVS APIs, STS, admin,
/// camera URLs and the signaling handshake, and a clear answer for KVS operations not built.
const KVS_ROUTES: &[RouteFn] = &[
    iot_control::route,
    control::route,
    media::route,
    playback::route,
    iam::route,
    sts::route,
    admin::route,
    camera::route,
    signaling::route,
    ice::route,
    alexa::route,
    storage_session::api::route,
];

/// What the IoT credentials provider's mutual-TLS listener serves.
const IOT_ROUTES: &[RouteFn] = &[iot_credentials::route];

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// `scheme://host[:port]`, without the port when it is the scheme's own: the WebRTC C SDK
/// fails on an endpoint URL that names a port, so a server on 443 must hand out none.
fn base_url(scheme: &str, addr: SocketAddr) -> String {
    let authority = display_addr(addr);
    match (scheme, addr.port()) {
        ("https", 443) | ("http", 80) => {
            let host = authority
                .rsplit_once(':')
                .map_or(authority.as_str(), |(h, _)| h);
            format!("{scheme}://{host}")
        }
        _ => format!("{scheme}://{authority}"),
    }
}

/// An address as a URL authority: unspecified IPs become loopback so the URL is usable.
fn display_addr(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    format!("{ip}:{}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_leave_out_the_default_port() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(base_url("https", at("0.0.0.0:443")), "https://127.0.0.1");
        assert_eq!(base_url("https", at("[::]:443")), "https://[::1]");
        assert_eq!(
            base_url("https", at("10.0.0.5:8443")),
            "https://10.0.0.5:8443"
        );
        assert_eq!(base_url("http", at("127.0.0.1:80")), "http://127.0.0.1");
        assert_eq!(
            base_url("http", at("127.0.0.1:443")),
            "http://127.0.0.1:443"
        );
    }
}
