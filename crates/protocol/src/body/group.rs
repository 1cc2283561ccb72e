//! Wire layouts of the consumer-group apis: JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, CommitOffsets, FetchOffsets, ListGroups and DescribeGroup.
//! Each body is its fields in the listed order (see `docs/protocol.md`).

use crate::wire::wire_struct;
use crate::{
    CommitOffsetsRequest, CommitOffsetsResponse, CommitPartitionResponse, CommittedOffset,
    DescribeGroupRequest, DescribeGroupResponse, FetchOffsetsRequest, FetchOffsetsResponse,
    FetchedOffset, GroupMember, GroupOffsetLag, GroupSummary, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};

wire_struct!(JoinGroupRequest {
    group,
    member_id,
    client_id,
    topics,
    session_timeout_ms,
    rebalance_timeout_ms,
});
wire_struct!(JoinGroupResponse {
    generation,
    member_id,
    assignment,
});

wire_struct!(SyncGroupRequest {
    group,
    member_id,
    generation,
});
wire_struct!(SyncGroupResponse { assignment });

wire_struct!(HeartbeatRequest {
    group,
    member_id,
    generation,
});
wire_struct!(HeartbeatResponse {});

wire_struct!(LeaveGroupRequest { group, member_id });
wire_struct!(LeaveGroupResponse {});

wire_struct!(CommitOffsetsRequest {
    group,
    member_id,
    generation,
    offsets,
});
wire_struct!(CommittedOffset {
    topic,
    partition,
    offset,
    metadata,
});
wire_struct!(CommitOffsetsResponse { partitions });
wire_struct!(CommitPartitionResponse {
    topic,
    partition,
    status,
});

wire_struct!(FetchOffsetsRequest { group, partitions });
wire_struct!(FetchOffsetsResponse { offsets });
wire_struct!(FetchedOffset {
    topic,
    partition,
    offset,
    metadata,
});

wire_struct!(ListGroupsRequest {});
wire_struct!(ListGroupsResponse { groups });
wire_struct!(GroupSummary {
    group,
    state,
    generation,
    member_count,
});

wire_struct!(DescribeGroupRequest { group });
wire_struct!(DescribeGroupResponse {
    summary,
    members,
    offsets,
});
wire_struct!(GroupMember {
    member_id,
    client_id,
    assignment,
});
wire_struct!(GroupOffsetLag {
    topic,
    partition,
    committed,
    high_watermark,
});
