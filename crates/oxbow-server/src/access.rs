//! The resource a request is judged on: the members that name it, and its ARN. Each API
//! family says which action and which of these members its operations are judged on (see
//! `Operation::access`); this module turns names into ARNs for all of them.
//!
//! A request that names a resource by name is judged against the resource's real ARN; a
//! resource that does not exist yet is judged against the ARN it would get if created now, so
//! `stream/cam-1/*` patterns work for CreateStream and for requests that then get a 404.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use oxbow_catalog::Table;
use oxbow_core::time::now_ms;
use oxbow_core::{ErrorKind, ResourceType};
use serde::Deserialize;

use crate::authz::Access;
use crate::resource::Managed;
use crate::state::AppState;

/// The members that name a request's resource, borrowed from the body where they need no
/// unescaping; everything else in the body is skipped unparsed. A body that does not parse
/// names nothing (the handler then reports why).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Naming<'a> {
    #[serde(borrow)]
    pub stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "StreamARN", borrow)]
    pub stream_arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub channel_name: Option<Cow<'a, str>>,
    #[serde(rename = "ChannelARN", borrow)]
    pub channel_arn: Option<Cow<'a, str>>,
    #[serde(rename = "ResourceARN", borrow)]
    pub resource_arn: Option<Cow<'a, str>>,
}

pub fn naming(body: &[u8]) -> Naming<'_> {
    serde_json::from_slice(body).unwrap_or_default()
}

/// `*`: the resource of requests that name none.
pub fn anything() -> Arc<str> {
    static ANY: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("*"));
    Arc::clone(&ANY)
}

/// The permission for `action` on the channel a request body names by `ChannelARN` (the
/// signaling data plane), denied with NotAuthorized as its API reference declares.
pub async fn channel_in_body(state: &AppState, action: &'static str, body: &[u8]) -> Access {
    let n = naming(body);
    Access {
        action,
        resource: named(state, ResourceType::Channel, n.channel_arn, None).await,
        denied: ErrorKind::NotAuthorized,
    }
}

/// The permission to connect to a channel's signaling as master or viewer.
pub fn connect(channel_arn: &str, as_master: bool) -> Access {
    Access {
        action: if as_master {
            "kinesisvideo:ConnectAsMaster"
        } else {
            "kinesisvideo:ConnectAsViewer"
        },
        resource: Arc::from(channel_arn),
        denied: ErrorKind::AccessDenied,
    }
}

/// The ARN a request names: the given ARN, else the named resource's ARN, else (no such
/// resource yet) the ARN it would get now; `*` if the request names nothing.
pub async fn named(
    state: &AppState,
    kind: ResourceType,
    arn: Option<Cow<'_, str>>,
    name: Option<Cow<'_, str>>,
) -> Arc<str> {
    if let Some(arn) = arn {
        return Arc::from(arn.as_ref());
    }
    let Some(name) = name.as_deref() else {
        return anything();
    };
    if let Some(arn) = state.authz.known_arn(kind, name) {
        return arn;
    }
    let existing = match kind {
        ResourceType::Stream => current_arn(state.catalog.streams(), name).await,
        ResourceType::Channel => current_arn(state.catalog.channels(), name).await,
    };
    match existing {
        Some(arn) => {
            let arn: Arc<str> = Arc::from(arn);
            state.authz.remember_arn(kind, name, Arc::clone(&arn));
            arn
        }
        None => Arc::from(state.arn(kind, name, now_ms())),
    }
}

/// The ARN of the live record called `name`, if any. Callers cache it: every change to a
/// stream or channel goes through `control::lookup`, which forgets the cached ARN.
async fn current_arn<T: Managed>(table: &dyn Table<T>, name: &str) -> Option<String> {
    let record = table.get(name).await.ok().flatten()?;
    record
        .lifecycle()
        .at(now_ms())
        .map(|_| record.arn().to_string())
}
