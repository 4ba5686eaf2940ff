//! What every request handler can reach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oxbow_catalog::Catalog;
use oxbow_store::LocalStore as Store;

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
    /// Every stream's fragments.
    pub store: Arc<Store>,
    /// Open GetMedia responses per stream.
    pub get_media_connections: Arc<ConnectionCounter>,
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

impl AppState {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        store: Arc<Store>,
        config: ServerConfig,
        public_url: &str,
    ) -> Self {
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
            store,
            get_media_connections: Arc::default(),
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
