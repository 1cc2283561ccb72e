//! Consumer groups in cluster mode: one coordinator for every group, the
//! metadata leader. A group request reaching another node is forwarded to
//! it over the peer link (an encoded native frame in a `Call`) and its
//! answer relayed, so every member of a group meets the same coordinator
//! wherever it connected. The coordinator runs the standalone group
//! handlers against its own broker.
//!
//! Known limit: committed offsets live in the coordinator's local
//! `__consumer_offsets` and are not replicated; after the metadata leader
//! changes, groups start over from their reset policy.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use citystream_protocol::{
    ApiError, ErrorCode, PROTOCOL_VERSION, Request, RequestFrame, ResponseFrame, decode_request,
    decode_response, encode_request, encode_response,
};
use tokio_util::sync::CancellationToken;

use crate::dispatch::{Outcome, dispatch};
use crate::errors::api_error;
use crate::node::{ClusterNode, NativeHandler};
use crate::server::Shared;

/// Longest wait for a forwarded group request: a join may wait out a
/// rebalance (bounded by the group's session timeout, at most 5 minutes).
const FORWARD_PATIENCE: Duration = Duration::from_secs(330);
/// Bytes of a frame's length prefix, which the decoders expect stripped.
const LENGTH_PREFIX_BYTES: usize = 4;

/// Requests one coordinator must serve.
pub(crate) fn is_group_request(request: &Request) -> bool {
    matches!(
        request,
        Request::JoinGroup(_)
            | Request::SyncGroup(_)
            | Request::Heartbeat(_)
            | Request::LeaveGroup(_)
            | Request::CommitOffsets(_)
            | Request::FetchOffsets(_)
            | Request::ListGroups(_)
            | Request::DescribeGroup(_)
    )
}

/// Serves `request` at the metadata leader and relays its answer.
pub(crate) async fn forward(node: &ClusterNode, request: Request) -> Outcome {
    let frame = RequestFrame {
        request_id: 0,
        api_version: PROTOCOL_VERSION,
        request,
    };
    let mut encoded = BytesMut::new();
    encode_request(&frame, &mut encoded);
    let answer = match node
        .forward_native(encoded.to_vec(), FORWARD_PATIENCE)
        .await
    {
        Ok(bytes) => Bytes::from(bytes),
        Err(error) => return Some(Err(api_error(&error))),
    };
    match decode_response(answer.slice(LENGTH_PREFIX_BYTES.min(answer.len())..)) {
        Ok(frame) => Some(frame.response),
        Err(error) => Some(Err(ApiError::new(
            ErrorCode::INTERNAL,
            format!("the coordinator's answer does not decode: {}", error.error),
        ))),
    }
}

/// The handler the metadata leader serves forwarded frames with: decode,
/// dispatch as a local request, encode the answer.
pub(crate) fn native_handler(shared: Weak<Shared>) -> NativeHandler {
    Arc::new(move |request: Vec<u8>| {
        let shared = shared.clone();
        Box::pin(async move {
            let request = Bytes::from(request);
            let decoded = decode_request(request.slice(LENGTH_PREFIX_BYTES.min(request.len())..));
            let (api_key, response) = match (decoded, shared.upgrade()) {
                (Ok(frame), Some(shared)) => {
                    let api_key = frame.request.api_key();
                    let outcome = dispatch(&shared, &CancellationToken::new(), frame.request).await;
                    let response = outcome.unwrap_or_else(|| {
                        Err(ApiError::new(ErrorCode::INTERNAL, "no answer to relay"))
                    });
                    (api_key, response)
                }
                (Ok(frame), None) => (
                    frame.request.api_key(),
                    Err(ApiError::new(
                        ErrorCode::SHUTTING_DOWN,
                        "the coordinator is stopping",
                    )),
                ),
                (Err(error), _) => (citystream_protocol::ApiKey::Hello, Err(error.error)),
            };
            let mut out = BytesMut::new();
            encode_response(
                &ResponseFrame {
                    request_id: 0,
                    api_key,
                    response,
                },
                &mut out,
            );
            out.to_vec()
        })
    })
}
