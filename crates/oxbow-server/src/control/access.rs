//! What each control-plane operation asks permission for: its IAM action
//! (`kinesisvideo:<Op>`), the resource the request names, and the error a denial gets. The
//! spec declares NotAuthorizedException for the stream APIs and AccessDeniedException for
//! the channel, tagging, configuration and edge APIs.

use std::sync::Arc;

use oxbow_core::{ErrorKind, ResourceType};

use super::Op;
use crate::access::{anything, named, naming};
use crate::authz::Access;
use crate::state::AppState;

/// Where a request names its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    Stream,
    Channel,
    /// `ResourceARN` (TagResource and friends).
    AnyArn,
    /// No particular resource (the List operations).
    Nothing,
}

fn names(op: Op) -> Names {
    use Op::*;
    match op {
        ListStreams | ListSignalingChannels | ListEdgeAgentConfigurations => Names::Nothing,
        TagResource | UntagResource | ListTagsForResource => Names::AnyArn,
        CreateSignalingChannel
        | DescribeSignalingChannel
        | DeleteSignalingChannel
        | UpdateSignalingChannel
        | GetSignalingChannelEndpoint
        | DescribeMediaStorageConfiguration
        | UpdateMediaStorageConfiguration => Names::Channel,
        _ => Names::Stream,
    }
}

/// The error a denied control-plane call answers with.
pub fn denied_error(op: Op) -> ErrorKind {
    use Op::*;
    match op {
        CreateStream
        | DescribeStream
        | ListStreams
        | DeleteStream
        | UpdateStream
        | UpdateDataRetention
        | GetDataEndpoint
        | TagStream
        | UntagStream
        | ListTagsForStream
        | ListEdgeAgentConfigurations => ErrorKind::NotAuthorized,
        _ => ErrorKind::AccessDenied,
    }
}

/// The permission a control-plane request needs.
pub async fn control(state: &AppState, op: Op, body: &[u8]) -> Access {
    let n = naming(body);
    let resource = match names(op) {
        Names::Nothing => anything(),
        Names::AnyArn => n
            .resource_arn
            .map_or_else(anything, |a| Arc::from(a.as_ref())),
        Names::Stream => named(state, ResourceType::Stream, n.stream_arn, n.stream_name).await,
        Names::Channel => named(state, ResourceType::Channel, n.channel_arn, n.channel_name).await,
    };
    Access {
        action: op.action(),
        resource,
        denied: denied_error(op),
    }
}
