//! Consumer-group membership: joining (the broker answers every joiner with
//! its assignment once the rebalance completes), a heartbeat task that keeps
//! the member alive and raises a flag when the group asks members to
//! re-join, committing and fetching offsets, and leaving. Which offsets to
//! commit and when is the consumer's business (`mod.rs`).

use std::sync::Arc;
use std::time::Duration;

use citystream_protocol::{
    CommitOffsetsRequest, CommittedOffset, ErrorCode, FetchOffsetsRequest, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, Request, Response, TopicPartition,
};
use parking_lot::Mutex;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::error::status_result;
use crate::{Client, ClientError};

/// Join attempts answered with a retriable error before giving up.
const JOIN_ATTEMPTS_MAX: u32 = 10;
/// Pause between such attempts.
const JOIN_RETRY_BACKOFF_MS: u64 = 200;

/// Whether a group error means "re-join to get a new assignment".
pub(crate) fn needs_rejoin(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::REBALANCE_IN_PROGRESS
            | ErrorCode::ILLEGAL_GENERATION
            | ErrorCode::UNKNOWN_MEMBER
    )
}

/// What a member needs to join.
pub(crate) struct JoinSpec {
    pub(crate) group: String,
    pub(crate) client_id: String,
    pub(crate) topics: Vec<String>,
    pub(crate) session_timeout_ms: u32,
    pub(crate) rebalance_timeout_ms: u32,
    pub(crate) heartbeat_interval_ms: u64,
}

/// A joined member: its id, generation, and the heartbeat task's verdict.
pub(crate) struct Membership {
    pub(crate) member_id: String,
    pub(crate) generation: u32,
    /// Set by the heartbeat task to the code that asks for a re-join.
    rejoin: Arc<Mutex<Option<ErrorCode>>>,
    /// Stops the heartbeat task when the membership is replaced or dropped.
    _heartbeat: DropGuard,
}

impl Membership {
    /// Why the group wants this member to re-join, if it does.
    pub(crate) fn rejoin_reason(&self) -> Option<ErrorCode> {
        *self.rejoin.lock()
    }

    /// Marks the membership stale (e.g. a commit was refused with `code`).
    pub(crate) fn request_rejoin(&self, code: ErrorCode) {
        self.rejoin.lock().get_or_insert(code);
    }
}

/// Joins (or re-joins with `member_id`) and starts heartbeats; returns the
/// membership and its assignment.
pub(crate) async fn join(
    client: &Client,
    spec: &JoinSpec,
    member_id: String,
) -> Result<(Membership, Vec<TopicPartition>), ClientError> {
    let mut member_id = member_id;
    let mut attempt = 0;
    let response = loop {
        let request = Request::JoinGroup(JoinGroupRequest {
            group: spec.group.clone(),
            member_id: member_id.clone(),
            client_id: spec.client_id.clone(),
            topics: spec.topics.clone(),
            session_timeout_ms: spec.session_timeout_ms,
            rebalance_timeout_ms: spec.rebalance_timeout_ms,
        });
        attempt += 1;
        match client.request(request).await {
            Ok(Response::JoinGroup(response)) => break response,
            Ok(other) => return Err(ClientError::unexpected_response("JoinGroup", &other)),
            Err(error) if attempt < JOIN_ATTEMPTS_MAX && join_retriable(&error) => {
                if error.code() == Some(ErrorCode::UNKNOWN_MEMBER) {
                    member_id.clear();
                }
                tokio::time::sleep(Duration::from_millis(JOIN_RETRY_BACKOFF_MS)).await;
            }
            Err(error) => return Err(error),
        }
    };
    tracing::debug!(group = %spec.group, member = %response.member_id,
        generation = response.generation, partitions = response.assignment.len(), "joined");
    let rejoin = Arc::new(Mutex::new(None));
    let stop = CancellationToken::new();
    tokio::spawn(heartbeat_loop(
        client.clone(),
        HeartbeatRequest {
            group: spec.group.clone(),
            member_id: response.member_id.clone(),
            generation: response.generation,
        },
        Duration::from_millis(spec.heartbeat_interval_ms.max(1)),
        rejoin.clone(),
        stop.clone(),
    ));
    let membership = Membership {
        member_id: response.member_id,
        generation: response.generation,
        rejoin,
        _heartbeat: stop.drop_guard(),
    };
    Ok((membership, response.assignment))
}

fn join_retriable(error: &ClientError) -> bool {
    error.is_retriable()
        || error
            .code()
            .is_some_and(|code| needs_rejoin(code) || code == ErrorCode::UNKNOWN_GROUP)
}

/// Heartbeats every `interval` until stopped or told to re-join.
async fn heartbeat_loop(
    client: Client,
    request: HeartbeatRequest,
    interval: Duration,
    rejoin: Arc<Mutex<Option<ErrorCode>>>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            result = client.request(Request::Heartbeat(request.clone())) => result,
        };
        match result {
            Ok(_) => {}
            Err(error) if error.code().is_some_and(needs_rejoin) => {
                tracing::debug!(group = %request.group, %error, "heartbeat asks to re-join");
                *rejoin.lock() = error.code();
                return;
            }
            Err(error) => tracing::debug!(group = %request.group, %error, "heartbeat failed"),
        }
    }
}

/// Commits `offsets` for `group` (member `""`, generation 0 for a manual
/// assignment); the first per-partition error is returned.
pub(crate) async fn commit(
    client: &Client,
    group: &str,
    member: Option<&Membership>,
    offsets: Vec<(TopicPartition, u64)>,
) -> Result<(), ClientError> {
    if offsets.is_empty() {
        return Ok(());
    }
    let request = Request::CommitOffsets(CommitOffsetsRequest {
        group: group.to_string(),
        member_id: member.map(|m| m.member_id.clone()).unwrap_or_default(),
        generation: member.map_or(0, |m| m.generation),
        offsets: offsets
            .into_iter()
            .map(|(tp, offset)| CommittedOffset {
                topic: tp.topic,
                partition: tp.partition,
                offset,
                metadata: String::new(),
            })
            .collect(),
    });
    match client.request(request).await? {
        Response::CommitOffsets(response) => response
            .partitions
            .iter()
            .try_for_each(|partition| status_result(&partition.status)),
        other => Err(ClientError::unexpected_response("CommitOffsets", &other)),
    }
}

/// The group's committed offsets for `partitions` (`None`: nothing committed).
pub(crate) async fn committed_offsets(
    client: &Client,
    group: &str,
    partitions: Vec<TopicPartition>,
) -> Result<Vec<(TopicPartition, Option<u64>)>, ClientError> {
    let request = Request::FetchOffsets(FetchOffsetsRequest {
        group: group.to_string(),
        partitions,
    });
    match client.request(request).await {
        Ok(Response::FetchOffsets(response)) => Ok(response
            .offsets
            .into_iter()
            .map(|o| {
                let tp = TopicPartition {
                    topic: o.topic,
                    partition: o.partition,
                };
                (tp, o.offset)
            })
            .collect()),
        Ok(other) => Err(ClientError::unexpected_response("FetchOffsets", &other)),
        Err(error) if error.code() == Some(ErrorCode::UNKNOWN_GROUP) => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

/// Leaves the group so the others rebalance now, not after a session timeout.
pub(crate) async fn leave(
    client: &Client,
    group: &str,
    membership: Membership,
) -> Result<(), ClientError> {
    let request = Request::LeaveGroup(LeaveGroupRequest {
        group: group.to_string(),
        member_id: membership.member_id.clone(),
    });
    drop(membership);
    match client.request(request).await? {
        Response::LeaveGroup(_) => Ok(()),
        other => Err(ClientError::unexpected_response("LeaveGroup", &other)),
    }
}
