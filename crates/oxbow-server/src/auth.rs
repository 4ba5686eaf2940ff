//! Who is calling: SigV4 verification against the access keys in the catalog. Authorization
//! (policies) builds on the principal returned here; today every active key acts as its
//! principal and the root key may do everything.

use oxbow_auth::{ParsedAuth, Request};
use oxbow_catalog::AccessKey;
use oxbow_core::{time::now_ms, ApiError, ErrorKind};
use time::OffsetDateTime;

use crate::state::AppState;

/// The SigV4 service name every KVS client signs with.
pub const SERVICE: &str = "kinesisvideo";

#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub access_key_id: String,
}

fn invalid_token() -> ApiError {
    ApiError::new(
        ErrorKind::UnrecognizedClient,
        "The security token included in the request is invalid.",
    )
}

/// Verifies the request's signature and returns the principal behind its access key.
pub async fn authenticate(state: &AppState, req: &Request<'_>) -> Result<Principal, ApiError> {
    let parsed = oxbow_auth::parse(req)?;
    let key = state
        .catalog
        .access_keys()
        .get(&parsed.access_key_id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .filter(|k| k.active)
        .ok_or_else(invalid_token)?;
    check_session(&key, &parsed)?;
    oxbow_auth::verify(
        &parsed,
        req,
        &key.secret_access_key,
        &state.config.region,
        SERVICE,
        OffsetDateTime::now_utc(),
    )?;
    Ok(Principal {
        name: key.principal,
        access_key_id: key.access_key_id,
    })
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
