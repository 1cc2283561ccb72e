//! Request and response types of every api, as plain data. Encoding and
//! decoding live in the codec modules; this file is the vocabulary shared by
//! the server's dispatcher and the client.

use bytes::Bytes;

use crate::{ApiError, ErrorCode};

/// Numeric id of each request kind. Never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ApiKey {
    Hello = 0,
    Produce = 1,
    Fetch = 2,
    ListOffsets = 3,
    Metadata = 4,
    CreateTopic = 5,
    DeleteTopic = 6,
    InitProducer = 7,
    JoinGroup = 8,
    SyncGroup = 9,
    Heartbeat = 10,
    LeaveGroup = 11,
    CommitOffsets = 12,
    FetchOffsets = 13,
    ListGroups = 14,
    DescribeGroup = 15,
    ClusterStatus = 16,
    RemoveNode = 17,
    Rebalance = 18,
}

/// A decoded request frame.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFrame {
    pub request_id: u32,
    pub api_version: u16,
    pub request: Request,
}

/// A decoded response frame: the body, or a request-level error.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseFrame {
    pub request_id: u32,
    pub api_key: ApiKey,
    pub response: Result<Response, ApiError>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Hello(HelloRequest),
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    CreateTopic(CreateTopicRequest),
    DeleteTopic(DeleteTopicRequest),
    InitProducer(InitProducerRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    CommitOffsets(CommitOffsetsRequest),
    FetchOffsets(FetchOffsetsRequest),
    ListGroups(ListGroupsRequest),
    DescribeGroup(DescribeGroupRequest),
    ClusterStatus(ClusterStatusRequest),
    RemoveNode(RemoveNodeRequest),
    Rebalance(RebalanceRequest),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Hello(HelloResponse),
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    Metadata(MetadataResponse),
    CreateTopic(CreateTopicResponse),
    DeleteTopic(DeleteTopicResponse),
    InitProducer(InitProducerResponse),
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    CommitOffsets(CommitOffsetsResponse),
    FetchOffsets(FetchOffsetsResponse),
    ListGroups(ListGroupsResponse),
    DescribeGroup(DescribeGroupResponse),
    ClusterStatus(ClusterStatusResponse),
    RemoveNode(ReassignmentsResponse),
    Rebalance(ReassignmentsResponse),
}

// ---- shared pieces ----------------------------------------------------------

/// A topic and one of its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

/// A broker node and the address of its native listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    pub node_id: u32,
    pub address: String,
}

/// Outcome of one partition inside a multi-partition request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    pub error: ErrorCode,
    /// Human message; empty when `error` is NONE.
    pub message: String,
    /// Set with `NOT_LEADER` when the leader is known.
    pub leader_hint: Option<NodeRef>,
}

impl PartitionStatus {
    pub fn ok() -> PartitionStatus {
        PartitionStatus {
            error: ErrorCode::NONE,
            message: String::new(),
            leader_hint: None,
        }
    }

    pub fn error(error: ErrorCode, message: impl Into<String>) -> PartitionStatus {
        PartitionStatus {
            error,
            message: message.into(),
            leader_hint: None,
        }
    }
}

// ---- handshake ----------------------------------------------------------------

/// First request on every connection; anything else before it gets
/// `HANDSHAKE_REQUIRED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloRequest {
    pub version_min: u16,
    pub version_max: u16,
    pub client_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloResponse {
    /// The version both sides will speak.
    pub version: u16,
    pub node_id: u32,
    pub cluster_id: String,
    pub frame_bytes_max: u32,
    pub record_bytes_max: u32,
}

// ---- produce / fetch ----------------------------------------------------------------

/// How much durability the producer waits for before the ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Acks {
    /// No response is sent at all (fire and forget).
    None = 0,
    /// Ack after the partition leader appended the batch.
    Leader = 1,
    /// Ack after a majority of replicas have the batch (cluster mode).
    Quorum = 2,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProduceRequest {
    pub acks: Acks,
    pub timeout_ms: u32,
    pub partitions: Vec<ProducePartition>,
}

/// One encoded record batch (see the record crate) for one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct ProducePartition {
    pub topic: String,
    pub partition: u32,
    pub batch: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProduceResponse {
    pub partitions: Vec<ProducePartitionResponse>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProducePartitionResponse {
    pub topic: String,
    pub partition: u32,
    pub status: PartitionStatus,
    /// Offset of the batch's first record (meaningless on error).
    pub base_offset: u64,
    pub log_start_offset: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    /// Long-poll: wait up to this long for `min_bytes` to be available.
    pub max_wait_ms: u32,
    pub min_bytes: u32,
    /// Limit over all partitions of the response.
    pub max_bytes: u32,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchPartition {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub max_bytes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchResponse {
    pub partitions: Vec<FetchPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchPartitionResponse {
    pub topic: String,
    pub partition: u32,
    pub status: PartitionStatus,
    /// Offset after the last record consumers may read (committed end).
    pub high_watermark: u64,
    pub log_start_offset: u64,
    /// Whole record batches, concatenated; the first may start before the
    /// requested offset (skip records below it).
    pub records: Bytes,
}

/// Where to look an offset up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// First offset whose timestamp is `>=` this (Latest if none).
    Timestamp(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListOffsetsRequest {
    pub partitions: Vec<ListOffsetsPartition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListOffsetsPartition {
    pub topic: String,
    pub partition: u32,
    pub spec: OffsetSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListOffsetsResponse {
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListOffsetsPartitionResponse {
    pub topic: String,
    pub partition: u32,
    pub status: PartitionStatus,
    pub offset: u64,
}

// ---- metadata and topic admin ---------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataRequest {
    /// `None`: every topic.
    pub topics: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetadataResponse {
    pub cluster_id: String,
    /// Node leading cluster metadata (the only node on a single broker).
    pub controller_id: u32,
    pub brokers: Vec<NodeRef>,
    pub topics: Vec<TopicMetadata>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicMetadata {
    pub name: String,
    /// `UNKNOWN_TOPIC` for a requested topic that does not exist.
    pub status: PartitionStatus,
    pub config: TopicConfig,
    pub partitions: Vec<PartitionMetadata>,
}

/// A topic's settings. The last four fields travel only at protocol
/// version 2: a version-1 peer neither sends them (its topics are
/// `Cleanup::Delete` with defaults) nor receives them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicConfig {
    pub replication: u16,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segment_bytes: Option<u64>,
    pub cleanup: Cleanup,
    /// `None`: 0 (the broker's compaction lag floor applies anyway).
    pub compaction_lag_ms: Option<u64>,
    /// `None`: 86 400 000 (24 h) of log time.
    pub tombstone_retention_ms: Option<u64>,
    /// `None`: no age roll, or 3 600 000 on a compacted topic.
    pub segment_roll_ms: Option<u64>,
}

/// What happens to a topic's old records (decision 0017 §9). Wire tag in
/// parentheses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Cleanup {
    /// (0) Whole segments are deleted by age and size.
    #[default]
    Delete = 0,
    /// (1) Only the newest record of each key is kept; tombstones allowed.
    Compact = 1,
    /// (2) Compacted, and old segments are also deleted by retention.
    CompactDelete = 2,
}

impl Cleanup {
    /// Whether the newest record per key is kept (and tombstones allowed).
    pub fn compacts(self) -> bool {
        matches!(self, Cleanup::Compact | Cleanup::CompactDelete)
    }

    /// `delete`, `compact` or `compact,delete`: the name every transport
    /// and the CLI use.
    pub fn as_str(self) -> &'static str {
        match self {
            Cleanup::Delete => "delete",
            Cleanup::Compact => "compact",
            Cleanup::CompactDelete => "compact,delete",
        }
    }
}

impl std::fmt::Display for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Cleanup {
    type Err = String;

    /// Also takes `delete,compact`, the same set written the other way.
    fn from_str(text: &str) -> Result<Cleanup, String> {
        match text.trim() {
            "delete" => Ok(Cleanup::Delete),
            "compact" => Ok(Cleanup::Compact),
            "compact,delete" | "delete,compact" => Ok(Cleanup::CompactDelete),
            other => Err(format!(
                "unknown cleanup policy {other:?}: expected delete, compact or compact,delete"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: u32,
    pub leader: u32,
    pub replicas: Vec<u32>,
    pub log_start_offset: u64,
    pub high_watermark: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicRequest {
    pub name: String,
    pub partitions: u32,
    /// Replication factor settings; `replication == 0` means the default.
    pub config: TopicConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTopicResponse {
    pub topic: TopicMetadata,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTopicRequest {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTopicResponse {}

// ---- idempotent producers -------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerRequest {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerResponse {
    /// Fresh id, never 0 (0 marks a non-idempotent batch).
    pub producer_id: u64,
}

// ---- consumer groups ----------------------------------------------------------------------

/// Where a group with no committed offset for a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StartFrom {
    Latest = 0,
    Earliest = 1,
}

/// Joins (or re-joins) a group. The broker holds the response until every
/// known member has re-joined or the rebalance timeout passed, then answers
/// all joiners with the new generation and each one's assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupRequest {
    pub group: String,
    /// Empty on the first join; the broker assigns one.
    pub member_id: String,
    pub client_id: String,
    pub topics: Vec<String>,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResponse {
    pub generation: u32,
    pub member_id: String,
    pub assignment: Vec<TopicPartition>,
}

/// Returns the member's assignment in `generation` (e.g. after reconnecting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupRequest {
    pub group: String,
    pub member_id: String,
    pub generation: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupResponse {
    pub assignment: Vec<TopicPartition>,
}

/// Keeps a member alive; `REBALANCE_IN_PROGRESS` tells it to re-join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub group: String,
    pub member_id: String,
    pub generation: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResponse {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupRequest {
    pub group: String,
    pub member_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveGroupResponse {}

/// Commits consumed positions. `member_id` empty and `generation` 0 commit
/// for a client that uses manual assignment (no membership check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOffsetsRequest {
    pub group: String,
    pub member_id: String,
    pub generation: u32,
    pub offsets: Vec<CommittedOffset>,
}

/// The offset of the next record the group will read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub metadata: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommitOffsetsResponse {
    pub partitions: Vec<CommitPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommitPartitionResponse {
    pub topic: String,
    pub partition: u32,
    pub status: PartitionStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOffsetsRequest {
    pub group: String,
    /// Empty: every partition the group has committed.
    pub partitions: Vec<TopicPartition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchOffsetsResponse {
    pub offsets: Vec<FetchedOffset>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedOffset {
    pub topic: String,
    pub partition: u32,
    /// `None`: nothing committed yet.
    pub offset: Option<u64>,
    pub metadata: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsRequest {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroupsResponse {
    pub groups: Vec<GroupSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub group: String,
    /// `Empty`, `Rebalancing` or `Stable`.
    pub state: String,
    pub generation: u32,
    pub member_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupRequest {
    pub group: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeGroupResponse {
    pub summary: GroupSummary,
    pub members: Vec<GroupMember>,
    pub offsets: Vec<GroupOffsetLag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub assignment: Vec<TopicPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsetLag {
    pub topic: String,
    pub partition: u32,
    pub committed: u64,
    pub high_watermark: u64,
}

// ---- cluster status -----------------------------------------------------------------------

/// Asks any node for its view of the cluster: members, their liveness and
/// load (from gossip), and the partitions it knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatusRequest {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatusResponse {
    pub cluster_id: String,
    /// The node that answered.
    pub node_id: u32,
    /// Leader of the metadata Raft group, if known (`None` until Raft runs).
    pub metadata_leader: Option<u32>,
    /// The metadata group's Raft term as the answering node knows it (0
    /// when it runs no metadata group, as a standalone broker).
    pub metadata_term: u64,
    /// Every member the answering node knows of, by node id.
    pub nodes: Vec<ClusterNode>,
    pub partitions: Vec<ClusterPartition>,
}

/// Liveness of a node as seen by the answering node (a hint, not a vote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeState {
    Alive = 0,
    Suspect = 1,
    Dead = 2,
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    pub node_id: u32,
    /// Listener name (`native`, `http`, `mqtt`, ...) and the address to dial.
    pub addresses: Vec<ListenerAddress>,
    pub state: NodeState,
    pub partitions_led: u32,
    pub bytes_in_per_s: u64,
    pub bytes_out_per_s: u64,
    /// CPU use in thousandths of one core.
    pub cpu_permille: u32,
    /// Start time of this run of the node (ms since the Unix epoch); a
    /// restart is a new generation.
    pub generation: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerAddress {
    pub name: String,
    pub address: String,
}

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPartition {
    pub topic: String,
    pub partition: u32,
    pub leader: u32,
    pub replicas: Vec<u32>,
    /// Offset after the last committed record (the high watermark).
    pub commit_index: u64,
    /// Offset after the last record in the leader's log.
    pub log_end: u64,
    /// `log_end - commit_index`: records written but not yet committed.
    pub lag: u64,
    /// The partition's group is quiet (idle, fully replicated; its leader
    /// sends no Raft heartbeats), as far as the answering node's replica
    /// knows. False where it holds none.
    pub quiet: bool,
}

// ---- replica placement ----------------------------------------------------------------------

/// Asks the metadata leader to move every replica off `node_id` so the node
/// can be retired. Answered with the moves committed to cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveNodeRequest {
    pub node_id: u32,
}

/// Asks the metadata leader to spread replicas and leaders evenly over the
/// alive nodes. With `dry_run` it only plans: the answer lists the moves it
/// would commit and nothing changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebalanceRequest {
    pub dry_run: bool,
}

/// The answer of RemoveNode and Rebalance: the replica moves committed (or,
/// for a dry run, planned), one per partition whose replicas change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentsResponse {
    /// `NOT_LEADER` with the metadata leader as `leader_hint` when the
    /// answering node does not lead cluster metadata (then `reassignments`
    /// is empty); `NONE` otherwise.
    pub status: PartitionStatus,
    pub reassignments: Vec<Reassignment>,
}

/// One partition's replica set before and after a move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    pub topic: String,
    pub partition: u32,
    /// Replica node ids before the move.
    pub from: Vec<u32>,
    /// Replica node ids after the move.
    pub to: Vec<u32>,
}

impl Request {
    pub fn api_key(&self) -> ApiKey {
        match self {
            Request::Hello(_) => ApiKey::Hello,
            Request::Produce(_) => ApiKey::Produce,
            Request::Fetch(_) => ApiKey::Fetch,
            Request::ListOffsets(_) => ApiKey::ListOffsets,
            Request::Metadata(_) => ApiKey::Metadata,
            Request::CreateTopic(_) => ApiKey::CreateTopic,
            Request::DeleteTopic(_) => ApiKey::DeleteTopic,
            Request::InitProducer(_) => ApiKey::InitProducer,
            Request::JoinGroup(_) => ApiKey::JoinGroup,
            Request::SyncGroup(_) => ApiKey::SyncGroup,
            Request::Heartbeat(_) => ApiKey::Heartbeat,
            Request::LeaveGroup(_) => ApiKey::LeaveGroup,
            Request::CommitOffsets(_) => ApiKey::CommitOffsets,
            Request::FetchOffsets(_) => ApiKey::FetchOffsets,
            Request::ListGroups(_) => ApiKey::ListGroups,
            Request::DescribeGroup(_) => ApiKey::DescribeGroup,
            Request::ClusterStatus(_) => ApiKey::ClusterStatus,
            Request::RemoveNode(_) => ApiKey::RemoveNode,
            Request::Rebalance(_) => ApiKey::Rebalance,
        }
    }
}
