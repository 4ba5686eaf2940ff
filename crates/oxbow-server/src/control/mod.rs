//! The control plane: the 32 operations of the `kinesisvideo` service. Each family of
//! operations has its own module; this one owns the routing table (exact, case-sensitive
//! paths) and the dispatch.

mod access;
mod channels;
mod edge;
mod endpoints;
mod features;
mod paging;
mod storage;
mod streams;
mod tags;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use oxbow_core::ApiError;
use serde_json::Value;

use crate::api::{Call, Handled, Judged, Operation};
use crate::http::json;
use crate::state::AppState;

/// What a handler returns: a JSON body, or `None` for the empty 200 of output-less operations.
pub type Reply = Result<Option<Value>, ApiError>;

macro_rules! operations {
    ($($op:ident => $path:literal,)*) => {
        /// A control-plane operation. Its name is also its IAM action (`kinesisvideo:<name>`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Op { $($op,)* }

        impl Op {
            pub const ALL: &'static [Op] = &[$(Op::$op,)*];

            pub fn path(self) -> &'static str {
                match self { $(Op::$op => $path,)* }
            }

            pub fn name(self) -> &'static str {
                match self { $(Op::$op => stringify!($op),)* }
            }

            /// The IAM action, `kinesisvideo:<name>`.
            pub fn action(self) -> &'static str {
                match self { $(Op::$op => concat!("kinesisvideo:", stringify!($op)),)* }
            }

            pub fn from_path(path: &str) -> Option<Op> {
                match path { $($path => Some(Op::$op),)* _ => None }
            }
        }
    };
}

operations! {
    CreateStream => "/createStream",
    DescribeStream => "/describeStream",
    ListStreams => "/listStreams",
    DeleteStream => "/deleteStream",
    UpdateStream => "/updateStream",
    UpdateDataRetention => "/updateDataRetention",
    GetDataEndpoint => "/getDataEndpoint",
    TagStream => "/tagStream",
    UntagStream => "/untagStream",
    ListTagsForStream => "/listTagsForStream",
    DescribeStreamStorageConfiguration => "/describeStreamStorageConfiguration",
    UpdateStreamStorageConfiguration => "/updateStreamStorageConfiguration",
    CreateSignalingChannel => "/createSignalingChannel",
    DescribeSignalingChannel => "/describeSignalingChannel",
    ListSignalingChannels => "/listSignalingChannels",
    DeleteSignalingChannel => "/deleteSignalingChannel",
    UpdateSignalingChannel => "/updateSignalingChannel",
    GetSignalingChannelEndpoint => "/getSignalingChannelEndpoint",
    TagResource => "/TagResource",
    UntagResource => "/UntagResource",
    ListTagsForResource => "/ListTagsForResource",
    DescribeImageGenerationConfiguration => "/describeImageGenerationConfiguration",
    UpdateImageGenerationConfiguration => "/updateImageGenerationConfiguration",
    DescribeNotificationConfiguration => "/describeNotificationConfiguration",
    UpdateNotificationConfiguration => "/updateNotificationConfiguration",
    DescribeMediaStorageConfiguration => "/describeMediaStorageConfiguration",
    UpdateMediaStorageConfiguration => "/updateMediaStorageConfiguration",
    DescribeMappedResourceConfiguration => "/describeMappedResourceConfiguration",
    StartEdgeConfigurationUpdate => "/startEdgeConfigurationUpdate",
    DescribeEdgeConfiguration => "/describeEdgeConfiguration",
    DeleteEdgeConfiguration => "/deleteEdgeConfiguration",
    ListEdgeAgentConfigurations => "/listEdgeAgentConfigurations",
}

/// Routes `POST` to the operation at its exact path.
pub fn route(parts: &http::request::Parts) -> Option<Box<dyn Operation>> {
    if parts.method != Method::POST {
        return None;
    }
    Op::from_path(parts.uri.path()).map(|op| Box::new(op) as Box<dyn Operation>)
}

impl Operation for Op {
    fn access<'a>(&'a self, state: &'a AppState, call: &'a Call) -> Judged<'a> {
        Box::pin(async move { Some(access::control(state, *self, call.bytes()).await) })
    }

    fn handle<'a>(&'a self, state: &'a Arc<AppState>, call: Call) -> Handled<'a> {
        Box::pin(async move {
            let plain = call.plain_url();
            let data_endpoint = plain.as_deref().unwrap_or(&state.public_url);
            let body = match dispatch(*self, call.bytes(), state, data_endpoint).await? {
                Some(v) => Bytes::from(v.to_string()),
                None => Bytes::new(),
            };
            Ok(json(StatusCode::OK, body))
        })
    }
}

/// Runs one control-plane operation. `data_endpoint` is the URL GetDataEndpoint hands this
/// caller (the public URL, or the plain URL a caller on `--http-listen` used).
pub async fn dispatch(op: Op, body: &[u8], state: &AppState, data_endpoint: &str) -> Reply {
    use crate::input::parse;
    match op {
        Op::CreateStream => streams::create(state, parse(body)?).await,
        Op::DescribeStream => streams::describe(state, parse(body)?).await,
        Op::ListStreams => streams::list(state, parse(body)?).await,
        Op::DeleteStream => streams::delete(state, parse(body)?).await,
        Op::UpdateStream => streams::update(state, parse(body)?).await,
        Op::UpdateDataRetention => streams::update_retention(state, parse(body)?).await,
        Op::DescribeStreamStorageConfiguration => {
            streams::describe_storage(state, parse(body)?).await
        }
        Op::UpdateStreamStorageConfiguration => streams::update_storage(state, parse(body)?).await,
        Op::GetDataEndpoint => endpoints::data(state, parse(body)?, data_endpoint).await,
        Op::TagStream => tags::tag_stream(state, parse(body)?).await,
        Op::UntagStream => tags::untag_stream(state, parse(body)?).await,
        Op::ListTagsForStream => tags::list_stream(state, parse(body)?).await,
        Op::CreateSignalingChannel => channels::create(state, parse(body)?).await,
        Op::DescribeSignalingChannel => channels::describe(state, parse(body)?).await,
        Op::ListSignalingChannels => channels::list(state, parse(body)?).await,
        Op::DeleteSignalingChannel => channels::delete(state, parse(body)?).await,
        Op::UpdateSignalingChannel => channels::update(state, parse(body)?).await,
        Op::GetSignalingChannelEndpoint => endpoints::signaling(state, parse(body)?).await,
        Op::TagResource => tags::tag_resource(state, parse(body)?).await,
        Op::UntagResource => tags::untag_resource(state, parse(body)?).await,
        Op::ListTagsForResource => tags::list_resource(state, parse(body)?).await,
        Op::DescribeImageGenerationConfiguration => {
            features::describe_image(state, parse(body)?).await
        }
        Op::UpdateImageGenerationConfiguration => features::update_image(state, parse(body)?).await,
        Op::DescribeNotificationConfiguration => {
            features::describe_notification(state, parse(body)?).await
        }
        Op::UpdateNotificationConfiguration => {
            features::update_notification(state, parse(body)?).await
        }
        Op::DescribeMediaStorageConfiguration => storage::describe(state, parse(body)?).await,
        Op::UpdateMediaStorageConfiguration => storage::update(state, parse(body)?).await,
        Op::DescribeMappedResourceConfiguration => storage::mapped(state, parse(body)?).await,
        Op::StartEdgeConfigurationUpdate => edge::start(state, parse(body)?).await,
        Op::DescribeEdgeConfiguration => edge::describe(state, parse(body)?).await,
        Op::DeleteEdgeConfiguration => edge::delete(state, parse(body)?).await,
        Op::ListEdgeAgentConfigurations => edge::list(state, parse(body)?).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_two_operations_with_unique_paths() {
        assert_eq!(Op::ALL.len(), 32);
        for op in Op::ALL {
            assert_eq!(Op::from_path(op.path()), Some(*op));
        }
        assert_eq!(
            Op::from_path("/tagResource"),
            None,
            "paths are case-sensitive"
        );
        assert_eq!(Op::from_path("/TagResource"), Some(Op::TagResource));
    }
}
