//! Consumer groups as a resource: membership (join, sync, heartbeat, leave),
//! committed offsets, and listing. Rebalancing and assignment are the
//! broker's; this file converts types and waits for a join without holding
//! up the connection (the join runs in its own request task).

use std::time::Duration;

use citystream_broker::{BrokerError, GroupOverview, GroupPartition, JoinRequest, JoinResult};
use citystream_protocol::{
    ApiError, CommitOffsetsRequest, CommitOffsetsResponse, CommitPartitionResponse,
    CommittedOffset, DescribeGroupRequest, DescribeGroupResponse, ErrorCode, FetchOffsetsRequest,
    FetchOffsetsResponse, FetchedOffset, GroupMember, GroupOffsetLag, GroupSummary,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsResponse, PartitionStatus, SyncGroupRequest, SyncGroupResponse,
    TopicPartition,
};
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::errors::{api_error, partition_status};
use crate::server::Shared;

/// Longest a join waits for its rebalance, whatever the client asked: the
/// broker completes overdue rebalances on tick, so this only bounds a bug.
const JOIN_WAIT_MS_MAX: u64 = 10 * 60 * 1_000;
/// Added to the client's rebalance timeout before the server gives up.
const JOIN_WAIT_SLACK_MS: u64 = 5_000;

// ---- membership ---------------------------------------------------------------

/// Joins, then waits for the rebalance to complete (or `stop`).
pub(crate) async fn join(
    shared: &Shared,
    stop: &CancellationToken,
    request: JoinGroupRequest,
) -> Result<JoinGroupResponse, ApiError> {
    let wait_ms =
        (u64::from(request.rebalance_timeout_ms) + JOIN_WAIT_SLACK_MS).min(JOIN_WAIT_MS_MAX);
    let group = request.group.clone();
    let ticket = shared
        .broker
        .join_group(join_request(request), now_ms())
        .map_err(|e| api_error(&e))?;
    let joined = tokio::select! {
        biased;
        () = stop.cancelled() => {
            return Err(ApiError::new(ErrorCode::SHUTTING_DOWN, "the connection is closing"));
        }
        joined = tokio::time::timeout(Duration::from_millis(wait_ms), ticket) => joined,
    };
    let result = match joined {
        Ok(Ok(result)) => result.map_err(|e| api_error(&e))?,
        Ok(Err(_abandoned)) => {
            return Err(ApiError::new(
                ErrorCode::REBALANCE_IN_PROGRESS,
                format!("the join of group {group:?} was abandoned; re-join"),
            ));
        }
        Err(_elapsed) => {
            return Err(ApiError::new(
                ErrorCode::REQUEST_TIMED_OUT,
                format!("group {group:?} did not complete its rebalance in {wait_ms} ms"),
            ));
        }
    };
    tracing::debug!(%group, member_id = %result.member_id, generation = result.generation, "joined group");
    Ok(join_response(result))
}

pub(crate) fn sync(
    shared: &Shared,
    request: &SyncGroupRequest,
) -> Result<SyncGroupResponse, ApiError> {
    let assignment = shared
        .broker
        .sync_group(&request.group, &request.member_id, request.generation)
        .map_err(|e| api_error(&e))?;
    Ok(SyncGroupResponse {
        assignment: assignment.into_iter().map(topic_partition).collect(),
    })
}

pub(crate) fn heartbeat(
    shared: &Shared,
    request: &HeartbeatRequest,
) -> Result<HeartbeatResponse, ApiError> {
    shared
        .broker
        .heartbeat(
            &request.group,
            &request.member_id,
            request.generation,
            now_ms(),
        )
        .map_err(|e| api_error(&e))?;
    Ok(HeartbeatResponse {})
}

pub(crate) fn leave(
    shared: &Shared,
    request: &LeaveGroupRequest,
) -> Result<LeaveGroupResponse, ApiError> {
    shared
        .broker
        .leave_group(&request.group, &request.member_id, now_ms())
        .map_err(|e| api_error(&e))?;
    tracing::debug!(group = %request.group, member_id = %request.member_id, "left group");
    Ok(LeaveGroupResponse {})
}

// ---- offsets ------------------------------------------------------------------

pub(crate) fn commit(
    shared: &Shared,
    request: CommitOffsetsRequest,
) -> Result<CommitOffsetsResponse, ApiError> {
    let offsets = commit_entries(request.offsets);
    let outcomes = shared
        .broker
        .commit_offsets(
            &request.group,
            &request.member_id,
            request.generation,
            &offsets,
        )
        .map_err(|e| api_error(&e))?;
    Ok(commit_response(offsets, outcomes))
}

/// A commit request's partitions as the broker takes them.
pub(crate) fn commit_entries(offsets: Vec<CommittedOffset>) -> Vec<(GroupPartition, u64, String)> {
    offsets
        .into_iter()
        .map(|o| (group_partition(o.topic, o.partition), o.offset, o.metadata))
        .collect()
}

/// The answer to a commit: one status per partition, in request order.
pub(crate) fn commit_response(
    offsets: Vec<(GroupPartition, u64, String)>,
    outcomes: Vec<Result<(), BrokerError>>,
) -> CommitOffsetsResponse {
    assert_eq!(
        outcomes.len(),
        offsets.len(),
        "the broker answers every committed partition"
    );
    let partitions = offsets
        .into_iter()
        .zip(outcomes)
        .map(|((partition, _, _), outcome)| CommitPartitionResponse {
            topic: partition.topic,
            partition: partition.partition,
            status: outcome.map_or_else(|e| partition_status(&e), |()| PartitionStatus::ok()),
        })
        .collect();
    CommitOffsetsResponse { partitions }
}

pub(crate) fn fetch_offsets(shared: &Shared, request: FetchOffsetsRequest) -> FetchOffsetsResponse {
    let partitions: Vec<GroupPartition> = request
        .partitions
        .into_iter()
        .map(|p| group_partition(p.topic, p.partition))
        .collect();
    let offsets = shared
        .broker
        .fetch_offsets(&request.group, &partitions)
        .into_iter()
        .map(|(partition, offset, metadata)| FetchedOffset {
            topic: partition.topic,
            partition: partition.partition,
            offset,
            metadata,
        })
        .collect();
    FetchOffsetsResponse { offsets }
}

// ---- listing ------------------------------------------------------------------

pub(crate) fn list(shared: &Shared) -> ListGroupsResponse {
    let groups = shared
        .broker
        .list_groups()
        .iter()
        .map(group_summary)
        .collect();
    ListGroupsResponse { groups }
}

pub(crate) fn describe(
    shared: &Shared,
    request: &DescribeGroupRequest,
) -> Result<DescribeGroupResponse, ApiError> {
    let overview = shared
        .broker
        .describe_group(&request.group)
        .map_err(|e| api_error(&e))?;
    let summary = group_summary(&overview);
    let members = overview
        .members
        .into_iter()
        .map(|member| GroupMember {
            member_id: member.member_id,
            client_id: member.client_id,
            assignment: member.assignment.into_iter().map(topic_partition).collect(),
        })
        .collect();
    let offsets = overview
        .offsets
        .into_iter()
        .map(|(partition, committed, high_watermark)| GroupOffsetLag {
            topic: partition.topic,
            partition: partition.partition,
            committed,
            high_watermark,
        })
        .collect();
    Ok(DescribeGroupResponse {
        summary,
        members,
        offsets,
    })
}

// ---- conversions --------------------------------------------------------------

fn join_request(request: JoinGroupRequest) -> JoinRequest {
    JoinRequest {
        group: request.group,
        member_id: request.member_id,
        client_id: request.client_id,
        topics: request.topics,
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: request.rebalance_timeout_ms,
    }
}

fn join_response(result: JoinResult) -> JoinGroupResponse {
    JoinGroupResponse {
        generation: result.generation,
        member_id: result.member_id,
        assignment: result.assignment.into_iter().map(topic_partition).collect(),
    }
}

fn group_summary(overview: &GroupOverview) -> GroupSummary {
    GroupSummary {
        group: overview.group.clone(),
        state: overview.state.to_string(),
        generation: overview.generation,
        member_count: u32::try_from(overview.members.len()).unwrap_or(u32::MAX),
    }
}

fn topic_partition(partition: GroupPartition) -> TopicPartition {
    TopicPartition {
        topic: partition.topic,
        partition: partition.partition,
    }
}

fn group_partition(topic: String, partition: u32) -> GroupPartition {
    GroupPartition { topic, partition }
}
