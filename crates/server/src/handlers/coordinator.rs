//! Consumer groups in cluster mode: one coordinator for every group, the
//! metadata leader. A group request reaching another node is forwarded to
//! it over the peer link (an encoded native frame in a `Call`) and its
//! answer relayed, so every member of a group meets the same coordinator
//! wherever it connected. The coordinator runs the standalone group
//! handlers against its own broker.
//!
//! Committed offsets are replicated through the metadata group, so an
//! acknowledged commit survives the loss of the coordinator: the
//! coordinator checks a commit (membership, generation, partitions) with
//! its broker, proposes it as `MetadataCommand::CommitOffsets`, and answers
//! only once it is committed there; then it copies the committed values to
//! its local `__consumer_offsets`, which FetchOffsets, ListGroups and
//! DescribeGroup read. A node that becomes metadata leader first waits
//! until its metadata state has applied everything committed and makes its
//! local offsets equal to the replicated ones ([`take_over`]); it does so
//! again when topics come or go, since deleting a topic drops its offsets.
//!
//! Known limits: group membership (members, generations) is not replicated,
//! so after a coordinator change members re-join, and resume from the
//! replicated offsets. The coordinator does not hold the group lock while
//! the commit is proposed, so a rebalance completing in that window lets
//! a commit of the previous generation through (the standalone broker
//! holds the lock across its local write).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use citystream_broker::offsets::{Committed, OffsetUpdate};
use citystream_broker::{BrokerError, GroupPartition};
use citystream_cluster::{MetadataCommand, MetadataError, MetadataState, OffsetChange};
use citystream_protocol::{
    ApiError, CommitOffsetsRequest, CommitOffsetsResponse, ErrorCode, PROTOCOL_VERSION, Request,
    RequestFrame, ResponseFrame, decode_request, decode_response, encode_request, encode_response,
};
use openraft::ReadPolicy;
use tokio_util::sync::CancellationToken;

use crate::dispatch::{Outcome, dispatch};
use crate::errors::api_error;
use crate::handlers::group;
use crate::node::{ClusterNode, METADATA_WRITE_PATIENCE, NativeHandler};
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

// ---- replicated offsets -------------------------------------------------------

/// What the coordinator keeps between group requests about its local copy
/// of the replicated offsets.
#[derive(Debug, Default)]
pub(crate) struct OffsetsMirror {
    /// The metadata the local offsets were last made equal to; held across
    /// a take-over so concurrent group requests wait for it.
    synced: tokio::sync::Mutex<Option<SyncMark>>,
    /// Orders local writes of replicated offsets: each reads the metadata
    /// state and writes under it, so the last write holds the newest values
    /// even when two commits of one partition finish out of order.
    writes: parking_lot::Mutex<()>,
}

/// The metadata term and topic set a sync copied. Creating a topic moves
/// `next_topic_id` and deleting one shrinks `topics`, so any change of the
/// topic set changes the mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SyncMark {
    term: u64,
    next_topic_id: u64,
    topics: usize,
}

impl SyncMark {
    fn of(term: u64, state: &MetadataState) -> SyncMark {
        SyncMark {
            term,
            next_topic_id: state.next_topic_id,
            topics: state.topics.len(),
        }
    }
}

/// Before the metadata leader serves a group request: in a new term, or
/// after the topic set changed, wait until the metadata state has applied
/// everything committed and make the local offsets equal to it.
pub(crate) async fn take_over(shared: &Shared, node: &ClusterNode) -> Result<(), ApiError> {
    let mut synced = shared.offsets_mirror.synced.lock().await;
    let term = node.groups.metadata_term();
    if *synced == Some(SyncMark::of(term, &node.metadata())) {
        return Ok(());
    }
    await_applied(node).await?;
    if node.groups.metadata_term() != term {
        return Err(unavailable("the metadata leader changed during take-over"));
    }
    let _order = shared.offsets_mirror.writes.lock();
    let state = node.metadata();
    let changed = shared
        .broker
        .replace_offsets(&replicated_offsets(&state))
        .map_err(|e| api_error(&e))?;
    *synced = Some(SyncMark::of(term, &state));
    tracing::info!(
        term,
        changed,
        "coordinator offsets follow the metadata group"
    );
    Ok(())
}

/// Waits until this leader's metadata state holds every committed entry:
/// `wait_for_recovery` covers a leader restarted within its term (its
/// committed index survives a kill, but after a power loss it may be up to
/// 1,024 commits old: `citystream_raft::raft_state`), `ensure_linearizable`
/// a new leader whose first entry of the term is not applied yet.
async fn await_applied(node: &ClusterNode) -> Result<(), ApiError> {
    let raft = &node.groups.meta_raft;
    let ready = async {
        raft.wait_for_recovery(Some(METADATA_WRITE_PATIENCE))
            .await
            .map_err(|e| e.to_string())?;
        raft.ensure_linearizable(ReadPolicy::ReadIndex)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    };
    match tokio::time::timeout(METADATA_WRITE_PATIENCE, ready).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(reason)) => Err(unavailable(&reason)),
        Err(_elapsed) => Err(unavailable("the metadata group did not catch up in time")),
    }
}

/// Commits offsets at the coordinator: the broker checks the committer,
/// the metadata group makes the accepted partitions durable, then the
/// local store gets them. A refused request proposes nothing.
pub(crate) async fn commit(
    shared: &Shared,
    node: &ClusterNode,
    request: CommitOffsetsRequest,
) -> Result<CommitOffsetsResponse, ApiError> {
    let offsets = group::commit_entries(request.offsets);
    let checked = shared
        .broker
        .check_commit(
            &request.group,
            &request.member_id,
            request.generation,
            &offsets,
        )
        .map_err(|e| api_error(&e))?;
    if !checked.updates.is_empty() {
        replicate(node, &request.group, &checked.updates).await?;
        mirror_commit(shared, node, &request.group, &checked.updates)?;
    }
    Ok(group::commit_response(offsets, checked.results))
}

/// Proposes the changes to the metadata group and waits for the commit.
async fn replicate(
    node: &ClusterNode,
    group: &str,
    updates: &[OffsetUpdate],
) -> Result<(), ApiError> {
    let command = MetadataCommand::CommitOffsets {
        group: group.to_owned(),
        offsets: updates.iter().map(offset_change).collect(),
    };
    let proposal =
        citystream_cluster::propose(&node.groups.meta_raft, &node.groups.meta_sm, &command);
    match tokio::time::timeout(METADATA_WRITE_PATIENCE, proposal).await {
        Ok(Ok(Ok(_outcome))) => Ok(()),
        // Committed but refused: a topic was deleted since the check.
        Ok(Ok(Err(refused))) => Err(api_error(&refusal(refused))),
        Ok(Err(error)) => Err(unavailable(&error.to_string())),
        Err(_elapsed) => Err(unavailable("the metadata group did not commit in time")),
    }
}

/// Copies the committed values of `updates`' partitions from the metadata
/// state to the local store (the state may already hold a later commit).
fn mirror_commit(
    shared: &Shared,
    node: &ClusterNode,
    group: &str,
    updates: &[OffsetUpdate],
) -> Result<(), ApiError> {
    let _order = shared.offsets_mirror.writes.lock();
    let state = node.metadata();
    let current: Vec<OffsetUpdate> = updates
        .iter()
        .map(|(partition, _)| {
            let committed = state
                .committed_offset(group, &partition.topic, partition.partition)
                .cloned();
            (partition.clone(), committed)
        })
        .collect();
    shared
        .broker
        .apply_offsets(group, &current)
        .map_err(|e| api_error(&e))
}

/// The replicated offsets in the broker's shape.
fn replicated_offsets(
    state: &MetadataState,
) -> BTreeMap<String, BTreeMap<GroupPartition, Committed>> {
    let mut wanted: BTreeMap<String, BTreeMap<GroupPartition, Committed>> = BTreeMap::new();
    for (group, topics) in &state.group_offsets {
        let offsets = wanted.entry(group.clone()).or_default();
        for (topic, partitions) in topics {
            for (partition, offset) in partitions {
                let key = GroupPartition {
                    topic: topic.clone(),
                    partition: *partition,
                };
                offsets.insert(key, offset.clone());
            }
        }
    }
    wanted
}

fn offset_change((partition, committed): &OffsetUpdate) -> OffsetChange {
    OffsetChange {
        topic: partition.topic.clone(),
        partition: partition.partition,
        committed: committed.clone(),
    }
}

/// A commit the metadata group refused, as the broker error it answers.
fn refusal(error: MetadataError) -> BrokerError {
    match error {
        MetadataError::UnknownTopic(topic) => BrokerError::UnknownTopic(topic),
        MetadataError::UnknownPartition {
            topic,
            partition,
            partitions,
        } => BrokerError::UnknownPartition {
            topic,
            partition,
            partitions,
        },
        other => BrokerError::InvalidRequest(other.to_string()),
    }
}

/// A retriable error: the coordinator cannot commit or read the replicated
/// offsets now (no quorum, leadership moving); the client retries.
fn unavailable(reason: &str) -> ApiError {
    api_error(&BrokerError::Unavailable(format!(
        "the group coordinator is not available: {reason}"
    )))
}
