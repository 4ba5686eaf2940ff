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
    pub region: String,
    pub account_id: String,
    pub partition: String,
    /// Base URL handed out by GetDataEndpoint and GetSignalingChannelEndpoint.
    pub public_url: Option<String>,
    pub tls: Option<TlsConfig>,
    /// Root credentials from the environment; generated and kept in the catalog otherwise.
    pub root_credentials: Option<(String, String)>,
    pub limits: Limits,
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
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            partition: "aws".into(),
            public_url: None,
            tls: None,
            root_credentials: None,
            limits: Limits::for_region("us-east-1"),
        }
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
