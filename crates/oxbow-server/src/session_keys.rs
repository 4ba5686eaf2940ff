//! Rotating the key temporary credentials are sealed with (STS, the IoT credentials provider,
//! camera URLs): a new key seals from then on, the one it replaces still opens what it sealed,
//! and the key before that opens nothing more. A single node keeps the keys in its data
//! directory; the nodes of a cluster keep them in the shared catalog, and each node reads them
//! again when the catalog announces a change, or when a request carries a token sealed by a
//! key it does not know (at most once a second: forged tokens cannot flood the catalog).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxbow_catalog::{AccessKey, Catalog, CatalogError, SecretRecord};
use oxbow_core::time::now_ms;
use oxbow_core::{ApiError, ErrorKind};

use crate::sealed_sessions::Keyring;

/// The key files of a single node, and the records of a cluster's catalog.
pub const CURRENT_FILE: &str = "session-credentials.key";
pub const PREVIOUS_FILE: &str = "session-credentials.previous.key";
pub const CURRENT_RECORD: &str = "session-credentials";
pub const PREVIOUS_RECORD: &str = "session-credentials.previous";

/// How often a token of an unknown key may make a node read the keys again.
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// Where the keys live.
enum Home {
    Files(PathBuf),
    Catalog(Arc<dyn Catalog>),
}

pub struct SessionKeys {
    ring: Keyring,
    home: Home,
    last_reload: Mutex<Option<Instant>>,
    /// One rotation at a time on this node.
    rotating: tokio::sync::Mutex<()>,
}

impl SessionKeys {
    /// Keys kept in `data_dir`.
    pub fn in_files(ring: Keyring, data_dir: PathBuf) -> Self {
        Self::new(ring, Home::Files(data_dir))
    }

    /// Keys kept in a cluster's catalog.
    pub fn in_catalog(ring: Keyring, catalog: Arc<dyn Catalog>) -> Self {
        Self::new(ring, Home::Catalog(catalog))
    }

    fn new(ring: Keyring, home: Home) -> Self {
        Self {
            ring,
            home,
            last_reload: Mutex::new(None),
            rotating: tokio::sync::Mutex::new(()),
        }
    }

    pub fn ring(&self) -> &Keyring {
        &self.ring
    }

    /// Makes a new key current and the current one previous; returns both keys' names.
    pub async fn rotate(&self) -> Result<(String, Option<String>), ApiError> {
        let _one = self.rotating.lock().await;
        let new: [u8; 32] = rand::random();
        match &self.home {
            Home::Files(dir) => {
                let current = crate::key_files::load_or_create_key(&dir.join(CURRENT_FILE))
                    .map_err(|e| ApiError::server("read the session key", e))?;
                // The previous file first: a crash between the two writes leaves the current
                // key in both places, which opens everything it did.
                for (file, key) in [(PREVIOUS_FILE, &current[..]), (CURRENT_FILE, &new[..])] {
                    crate::key_files::write_key(&dir.join(file), key)
                        .map_err(|e| ApiError::server(format!("write {file}"), e))?;
                }
                self.ring.replace(new.to_vec(), Some(current));
            }
            Home::Catalog(catalog) => {
                rotate_in_catalog(catalog.as_ref(), &new)
                    .await
                    .map_err(|e| match e {
                        CatalogError::Rejected(_) => ApiError::new(
                            ErrorKind::ResourceInUse,
                            "Another node rotated the session key at the same time; try again.",
                        ),
                        other => ApiError::dependency("rotate the session key", other),
                    })?;
                self.reload()
                    .await
                    .map_err(|e| ApiError::dependency("read the session keys", e))?;
            }
        }
        let ids = self.ring.key_ids();
        tracing::info!(current = %ids.0, previous = ?ids.1, "session key rotated");
        Ok(ids)
    }

    /// Reads a cluster's keys from the catalog again (nothing to do for files: only this node
    /// changes them).
    pub async fn reload(&self) -> Result<(), CatalogError> {
        let Home::Catalog(catalog) = &self.home else {
            return Ok(());
        };
        *self.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let table = catalog.server_secrets();
        let Some(current) = table.get(CURRENT_RECORD).await?.and_then(decode) else {
            return Ok(());
        };
        // No previous record (no rotation yet): the previous key this node had, if any.
        let previous = match table.get(PREVIOUS_RECORD).await?.and_then(decode) {
            Some(previous) => Some(previous),
            None => self.ring.previous(),
        };
        self.ring.replace(current, previous);
        Ok(())
    }

    /// The session `token` carries, if one of the keys sealed it. A token that does not open
    /// because a key this node does not know sealed it (a rotation at another node whose
    /// announcement has not arrived yet) makes the node read the keys, if it did not in the
    /// last second, and try once more; a token that opens costs one try.
    pub async fn open(&self, token: &str) -> Option<AccessKey> {
        if let Some(key) = self.ring.open(token) {
            return Some(key);
        }
        self.learn_sealer_of(token).await;
        self.ring.open(token)
    }

    async fn learn_sealer_of(&self, token: &str) {
        if !matches!(self.home, Home::Catalog(_)) || self.ring.knows_sealer_of(token) {
            return;
        }
        let recently = self
            .last_reload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() < RELOAD_AT_MOST_EVERY);
        if recently {
            return;
        }
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "cannot read the session keys");
        }
    }
}

fn decode(record: SecretRecord) -> Option<Vec<u8>> {
    hex::decode(record.hex.trim()).ok()
}

/// The current key becomes the previous record, then `new` the current one, unless another
/// node changed the current key in between (then `Rejected`, and nothing more is written).
async fn rotate_in_catalog(catalog: &dyn Catalog, new: &[u8]) -> Result<(), CatalogError> {
    let table = catalog.server_secrets();
    let current = table
        .get(CURRENT_RECORD)
        .await?
        .ok_or(CatalogError::NotFound)?;
    let previous = SecretRecord {
        name: PREVIOUS_RECORD.to_string(),
        hex: current.hex.clone(),
        created_ms: now_ms(),
    };
    match table.insert(previous.clone(), u64::MAX).await {
        Err(CatalogError::Exists) => {
            table
                .update(
                    PREVIOUS_RECORD,
                    Box::new(move |r: &mut SecretRecord| {
                        *r = previous;
                        Ok(())
                    }),
                )
                .await?;
        }
        other => other?,
    }
    let (expected, new) = (current.hex, hex::encode(new));
    table
        .update(
            CURRENT_RECORD,
            Box::new(move |r: &mut SecretRecord| {
                if r.hex != expected {
                    return Err("the current key changed meanwhile".into());
                }
                r.hex = new;
                r.created_ms = now_ms();
                Ok(())
            }),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> AccessKey {
        AccessKey {
            access_key_id: "ASIAROTATEDROTATED00".into(),
            secret_access_key: String::new(),
            principal: "role/r".into(),
            session_token: None,
            expires_ms: Some(i64::MAX),
            created_ms: 1,
            active: true,
            context: Default::default(),
            session_policy: None,
        }
    }

    /// Two nodes on one catalog that announces nothing (the embedded one): a node that meets
    /// a token of a key rotated in at the other node reads the keys and opens it; it reads
    /// them at most once a second, however many unknown tokens come.
    #[tokio::test]
    async fn a_token_of_an_unknown_key_makes_a_node_read_the_keys_at_most_once_a_second() {
        let dir =
            std::env::temp_dir().join(format!("oxbow-keys-{}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&dir).unwrap();
        let catalog: Arc<dyn Catalog> =
            Arc::new(oxbow_catalog::SqliteCatalog::open(&dir.join("catalog.db")).unwrap());
        let first = vec![1; 32];
        let record = SecretRecord {
            name: CURRENT_RECORD.into(),
            hex: hex::encode(&first),
            created_ms: 0,
        };
        catalog
            .server_secrets()
            .insert(record, u64::MAX)
            .await
            .unwrap();
        let node = |catalog: &Arc<dyn Catalog>| {
            SessionKeys::in_catalog(Keyring::new(first.clone(), None), Arc::clone(catalog))
        };
        let (x, y) = (node(&catalog), node(&catalog));
        let old = y.ring().seal(session()).session_token.unwrap();

        let (current, previous) = x.rotate().await.unwrap();
        let new = x.ring().seal(session()).session_token.unwrap();
        assert!(new.contains(&current));
        assert!(y.ring().open(&new).is_none(), "y has not read the keys yet");
        assert!(y.open(&new).await.is_some());
        assert!(y.ring().open(&old).is_some());
        assert_eq!(y.ring().key_ids(), (current, previous));

        // Rotated again at x: y met an unknown key less than a second ago, so it does not
        // read the keys yet; after the second it does.
        x.rotate().await.unwrap();
        let newest = x.ring().seal(session()).session_token.unwrap();
        assert!(y.open(&newest).await.is_none());
        *y.last_reload.lock().unwrap() = Some(Instant::now() - RELOAD_AT_MOST_EVERY);
        assert!(y.open(&newest).await.is_some());
        assert!(y.ring().open(&old).is_none(), "the oldest key is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
