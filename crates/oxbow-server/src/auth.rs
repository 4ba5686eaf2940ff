//! Who is calling: SigV4 verification against the access keys in the catalog. The key that
//! signed is returned; [`crate::authz`] then decides what its principal may do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::session_keys::SessionKeys;
use oxbow_auth::{ParsedAuth, Request};
use oxbow_catalog::{AccessKey, SESSION_ISSUED_TO};
use oxbow_core::{time::now_ms, ApiError, ErrorKind};
use time::OffsetDateTime;

use oxbow_catalog::Catalog;

/// The SigV4 service name every KVS client signs with.
pub const SERVICE: &str = "kinesisvideo";
/// The service name STS requests (AssumeRole) are signed with.
pub const STS_SERVICE: &str = "sts";
/// The service IAM's query API is signed for.
pub const IAM_SERVICE: &str = "iam";
/// The signing name of the AWS IoT control-plane API.
pub const IOT_SERVICE: &str = "iot";

/// The service a request's SigV4 credential scope names (`…/region/service/aws4_request`),
/// from the Authorization header or a presigned query.
pub fn signed_service(parts: &http::request::Parts) -> Option<String> {
    let from_header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .map(|c| c.split([',', ' ']).next().unwrap_or_default().to_string());
    let from_query = || {
        form_urlencoded::parse(parts.uri.query()?.as_bytes())
            .find(|(k, _)| k == "X-Amz-Credential")
            .map(|(_, v)| v.into_owned())
    };
    let credential = from_header.or_else(from_query)?;
    credential.split('/').nth(3).map(str::to_string)
}

fn invalid_token() -> ApiError {
    ApiError::new(
        ErrorKind::UnrecognizedClient,
        "The security token included in the request is invalid.",
    )
}

/// How long a looked-up access key is trusted before the catalog is asked again. Bounds how
/// long a key changed by another node stays usable; changes made through this node
/// invalidate the entry at once.
const KEY_CACHE_TTL: Duration = Duration::from_secs(2);
const KEY_CACHE_MAX: usize = 10_000;

/// Key id → the key (or `None`: unknown) and when it was looked up.
type KeyEntries = HashMap<String, (Option<Arc<AccessKey>>, Instant)>;

/// Recently used access keys (including unknown ones, so a flood of bad keys does not reach
/// the catalog either).
pub struct KeyCache {
    catalog: Arc<dyn Catalog>,
    /// The region signatures must name.
    region: String,
    entries: Mutex<KeyEntries>,
    /// Opens the temporary credentials this server sealed (they are in no table).
    sealed: Arc<SessionKeys>,
}

impl KeyCache {
    pub fn new(catalog: Arc<dyn Catalog>, region: &str, sealed: Arc<SessionKeys>) -> Self {
        Self {
            catalog,
            region: region.to_string(),
            entries: Mutex::default(),
            sealed,
        }
    }

    /// Seals a new temporary key (its token and secret filled in): nothing is stored.
    pub fn seal(&self, key: AccessKey) -> AccessKey {
        self.sealed.ring().seal(key)
    }

    /// The keys temporary credentials are sealed with, to rotate or reload them.
    pub fn session_keys(&self) -> &SessionKeys {
        &self.sealed
    }

    async fn get(&self, id: &str) -> Result<Option<Arc<AccessKey>>, ApiError> {
        let now = Instant::now();
        if let Some((key, at)) = self.lock().get(id) {
            if now.duration_since(*at) < KEY_CACHE_TTL {
                return Ok(key.clone());
            }
        }
        let key = self
            .catalog
            .access_keys()
            .get(id)
            .await
            .map_err(|e| ApiError::dependency("look up the access key", e))?
            .map(Arc::new);
        let mut entries = self.lock();
        if entries.len() >= KEY_CACHE_MAX {
            entries.retain(|_, (_, at)| now.duration_since(*at) < KEY_CACHE_TTL);
        }
        entries.insert(id.to_string(), (key.clone(), now));
        Ok(key)
    }

    /// Whether a temporary key was issued before a revocation that covers it: one for every
    /// session, for its principal, or for the principal its chain of sessions started from.
    /// The revocations table is small and cached in memory by the catalog.
    async fn revoked(&self, key: &AccessKey) -> Result<bool, ApiError> {
        let table = self.catalog.revocations();
        let issued_to = key.context.get(SESSION_ISSUED_TO).map(String::as_str);
        for principal in ["*", key.principal.as_str()].into_iter().chain(issued_to) {
            let record = table
                .get(principal)
                .await
                .map_err(|e| ApiError::dependency("read the session revocations", e))?;
            if record.is_some_and(|r| key.created_ms < r.before_ms) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Forgets a key after it changed, so the change applies to the next request.
    pub fn invalidate(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Forgets every key (after announcements of changes may have been missed).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeyEntries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Verifies the request's signature for `service` and returns the key that signed it.
    pub async fn authenticate(
        &self,
        req: &Request<'_>,
        service: &str,
    ) -> Result<Arc<AccessKey>, ApiError> {
        let parsed = oxbow_auth::parse(req)?;
        // A sealed session carries itself; anything else (long-term keys, sessions issued
        // before sessions were sealed) is in the catalog.
        let sealed = match parsed.security_token.as_deref() {
            Some(token) => self.sealed.open(token).await,
            None => None,
        }
        .filter(|k| k.access_key_id == parsed.access_key_id);
        let key = match sealed {
            Some(k) => Arc::new(k),
            None => self
                .get(&parsed.access_key_id)
                .await?
                .filter(|k| k.active)
                .ok_or_else(invalid_token)?,
        };
        check_session(&key, &parsed)?;
        if key.expires_ms.is_some() && self.revoked(&key).await? {
            return Err(invalid_token());
        }
        // IAM is global: clients sign it for us-east-1, or (with a custom endpoint) for their
        // own region. Both are accepted for IAM; every other service names this server's.
        let region = if service == IAM_SERVICE && parsed.region == "us-east-1" {
            "us-east-1"
        } else {
            &self.region
        };
        oxbow_auth::verify(
            &parsed,
            req,
            &key.secret_access_key,
            region,
            service,
            OffsetDateTime::now_utc(),
        )?;
        Ok(key)
    }
}

/// Temporary keys need their session token and must not have expired; long-term keys take none.
fn check_session(key: &AccessKey, parsed: &ParsedAuth) -> Result<(), ApiError> {
    if key.session_token.as_deref() != parsed.security_token.as_deref() {
        return Err(invalid_token());
    }
    if key.expires_ms.is_some_and(|t| t <= now_ms()) {
        return Err(ApiError::new(
            ErrorKind::ExpiredToken,
            "The security token included in the request is expired",
        ));
    }
    Ok(())
}
