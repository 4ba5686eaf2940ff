//! First-start chores: the root access key (from the environment, or generated once and kept
//! in the catalog) and an AWS shared credentials + config pair in the data directory, so that
//! `aws --profile oxbow` and the SDKs work against this server without further setup.

use std::fs;
use std::path::{Path, PathBuf};

use oxbow_catalog::{AccessKey, Catalog, CatalogError};
use oxbow_core::{ids, time::now_ms};

use crate::authz::ROOT as ROOT_PRINCIPAL;
use crate::config::ServerConfig;
use crate::ServerError;

/// The profile name written to the generated AWS config files.
pub const PROFILE: &str = "oxbow";

#[derive(Debug, Clone)]
pub struct RootCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Ensures the root key exists: the environment's if given, else the stored one, else a new one.
pub async fn root_credentials(
    catalog: &dyn Catalog,
    config: &ServerConfig,
) -> Result<RootCredentials, ServerError> {
    let keys = catalog.access_keys();
    if let Some((id, secret)) = &config.root_credentials {
        let key = root_key(id, secret);
        match keys.insert(key.clone(), u64::MAX).await {
            Ok(()) => {}
            Err(CatalogError::Exists) => {
                let secret = secret.clone();
                keys.update(
                    id,
                    Box::new(move |k| {
                        k.secret_access_key = secret;
                        k.principal = ROOT_PRINCIPAL.into();
                        k.active = true;
                        Ok(())
                    }),
                )
                .await?;
            }
            Err(e) => return Err(e.into()),
        }
        return Ok(RootCredentials {
            access_key_id: id.clone(),
            secret_access_key: key.secret_access_key,
        });
    }
    let existing = keys
        .list(Some("AKIA"), None, usize::MAX)
        .await?
        .into_iter()
        .find(|k| k.principal == ROOT_PRINCIPAL && k.active && k.session_token.is_none());
    let key = match existing {
        Some(k) => k,
        None => {
            let k = root_key(&ids::access_key_id("AKIA"), &ids::secret_access_key());
            keys.insert(k.clone(), u64::MAX).await?;
            tracing::info!(access_key_id = %k.access_key_id, "generated root credentials");
            k
        }
    };
    Ok(RootCredentials {
        access_key_id: key.access_key_id,
        secret_access_key: key.secret_access_key,
    })
}

fn root_key(id: &str, secret: &str) -> AccessKey {
    AccessKey::long_term(id, secret, ROOT_PRINCIPAL, now_ms())
}

/// Writes `<data>/aws/credentials` and `<data>/aws/config` (profile `oxbow`). Returns the folder.
pub fn write_aws_files(
    config: &ServerConfig,
    root: &RootCredentials,
    public_url: &str,
    ca: Option<&Path>,
) -> Result<PathBuf, ServerError> {
    let dir = config.data_dir.join("aws");
    let io = |e: std::io::Error| ServerError::DataDir {
        path: dir.display().to_string(),
        source: e,
    };
    fs::create_dir_all(&dir).map_err(io)?;
    let credentials = format!(
        "[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        root.access_key_id, root.secret_access_key
    );
    crate::tls::write_private(&dir.join("credentials"), &credentials)?;
    let mut profile = format!(
        "[profile {PROFILE}]\nregion = {}\nendpoint_url = {public_url}\n",
        config.region
    );
    if let Some(ca) = ca {
        let ca = fs::canonicalize(ca).unwrap_or_else(|_| ca.to_path_buf());
        profile.push_str(&format!("ca_bundle = {}\n", ca.display()));
    }
    fs::write(dir.join("config"), profile).map_err(io)?;
    Ok(fs::canonicalize(&dir).unwrap_or(dir))
}

/// The key `name` every node of a cluster holds alike: the one in the shared catalog, or (the
/// first node to ask) this node's own `local` key, which then becomes the cluster's — so a
/// single node moved onto a shared catalog keeps its sessions valid.
pub async fn shared_key(
    catalog: &dyn Catalog,
    name: &str,
    local: Vec<u8>,
) -> Result<Vec<u8>, ServerError> {
    let table = catalog.server_secrets();
    let decode = |r: oxbow_catalog::SecretRecord| {
        hex::decode(r.hex.trim()).map_err(|e| {
            ServerError::Catalog(CatalogError::Storage(
                format!("the shared key {name} is not hex: {e}").into(),
            ))
        })
    };
    if let Some(r) = table.get(name).await? {
        return decode(r);
    }
    let record = oxbow_catalog::SecretRecord {
        name: name.to_string(),
        hex: hex::encode(&local),
        created_ms: now_ms(),
    };
    match table.insert(record, u64::MAX).await {
        Ok(()) => Ok(local),
        Err(CatalogError::Exists) => match table.get(name).await? {
            Some(r) => decode(r),
            None => Err(CatalogError::NotFound.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// The cluster's IoT device CA: the first node's, kept in the catalog with its key, so a
/// certificate made on any node gets credentials at every node's IoT listener. Certificate
/// and key travel in one record, so nodes starting at once cannot mix two CAs. Returns `local`
/// when it is the cluster's, else the cluster's CA, written into `dir`.
pub async fn shared_iot_ca(
    catalog: &dyn Catalog,
    dir: &std::path::Path,
    local: crate::device_ca::IotCa,
) -> Result<crate::device_ca::IotCa, ServerError> {
    let (cert, key) = local.to_pems();
    let ours =
        serde_json::to_vec(&serde_json::json!({"cert": cert, "key": key})).unwrap_or_default();
    let shared = shared_key(catalog, "iot-device-ca", ours.clone()).await?;
    if shared == ours {
        return Ok(local);
    }
    let v: serde_json::Value = serde_json::from_slice(&shared).unwrap_or_default();
    let (Some(cert), Some(key)) = (v["cert"].as_str(), v["key"].as_str()) else {
        return Err(ServerError::Catalog(CatalogError::Storage(
            "the cluster's IoT device CA record does not read".into(),
        )));
    };
    crate::device_ca::IotCa::adopt(dir, cert, key)
}
