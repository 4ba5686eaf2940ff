//! KVS operations this version does not serve yet: answered with an error that says so
//! (501 NotImplemented), rather than one that reads like a wrong endpoint.

use std::sync::Arc;

use oxbow_core::{ApiError, ErrorKind};

use crate::api::{Call, Handled, Operation};
use crate::state::AppState;

/// The operations not built yet, by path.
const NOT_BUILT: [(&str, &str); 1] =
    [("/joinStorageSessionAsViewer", "JoinStorageSessionAsViewer")];

pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    if parts.method != http::Method::POST {
        return None;
    }
    NOT_BUILT
        .iter()
        .find(|(p, _)| *p == parts.uri.path())
        .map(|(_, name)| Box::new(NotBuilt(name)) as Box<dyn Operation>)
}

/// Signed like the operation it stands for, so an unsigned probe learns nothing.
struct NotBuilt(&'static str);

impl Operation for NotBuilt {
    fn handle<'a>(&'a self, _state: &'a Arc<AppState>, _call: Call) -> Handled<'a> {
        let name = self.0;
        Box::pin(async move {
            Err(ApiError::new(
                ErrorKind::NotImplemented,
                format!(
                    "{name} is a Kinesis Video Streams operation that this version of Oxbow does not implement yet."
                ),
            ))
        })
    }
}
