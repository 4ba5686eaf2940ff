//! What every request handler can reach.

use std::sync::Arc;

use oxbow_catalog::Catalog;

use crate::auth::KeyCache;
use crate::config::ServerConfig;

pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub config: ServerConfig,
    /// `http(s)://host[:port]` of this server as clients should reach it.
    pub public_url: String,
    /// The same authority with the WebSocket scheme matching the public URL's.
    pub public_ws_url: String,
    /// Recently used access keys, so verifying a signature rarely touches the catalog.
    pub keys: KeyCache,
}

impl AppState {
    pub fn new(catalog: Arc<dyn Catalog>, config: ServerConfig, public_url: &str) -> Self {
        let public_ws_url = if let Some(rest) = public_url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", public_url.trim_start_matches("http://"))
        };
        Self {
            catalog,
            config,
            public_url: public_url.to_string(),
            public_ws_url,
            keys: KeyCache::default(),
        }
    }

    /// The KMS key a stream gets when CreateStream names none.
    pub fn default_kms_key(&self) -> String {
        format!(
            "arn:{}:kms:{}:{}:alias/aws/kinesisvideo",
            self.config.partition, self.config.region, self.config.account_id
        )
    }
}
