//! The broker's domain errors; the server maps each to a wire error code.

/// Domain errors; the server maps each to a wire error code.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("invalid topic name {name:?}: {rule}")]
    InvalidTopicName { name: String, rule: &'static str },
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error("topic {topic:?} has no partition {partition} (it has {partitions})")]
    UnknownPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("batch of {size} bytes exceeds the limit of {limit} bytes")]
    BatchTooLarge { size: usize, limit: u32 },
    #[error("record {index} of {size} bytes exceeds the record limit of {limit} bytes")]
    RecordTooLarge { index: u32, size: usize, limit: u32 },
    #[error("corrupt batch: {0}")]
    CorruptBatch(#[from] citystream_record::BatchError),
    #[error("offset {requested} is out of range [{start}, {end}]")]
    OffsetOutOfRange {
        requested: u64,
        start: u64,
        end: u64,
    },
    #[error(
        "producer {producer_id} sent sequence {received} on {topic}/{partition}, expected {expected}"
    )]
    OutOfOrderSequence {
        producer_id: u64,
        topic: String,
        partition: u32,
        expected: u32,
        received: u32,
    },
    #[error("unknown producer id {0}")]
    UnknownProducer(u64),
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    #[error("unknown member {member_id:?} in group {group:?}")]
    UnknownMember { group: String, member_id: String },
    #[error("generation {received} of group {group:?} is stale (current {current})")]
    IllegalGeneration {
        group: String,
        received: u32,
        current: u32,
    },
    #[error("group {0:?} is rebalancing; re-join")]
    RebalanceInProgress(String),
    /// A replicated partition led by another node (or by none right now).
    #[error("this node does not lead {topic}/{partition}{}", leader_text(leader))]
    NotLeader {
        topic: String,
        partition: u32,
        leader: Option<LeaderHint>,
    },
    /// The cluster cannot answer now (no quorum yet, a write timed out, a
    /// retry of a batch still in flight); the same request may succeed later.
    #[error("{0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Storage(#[from] citystream_log::LogError),
}

/// Where a partition's leader is: its node id and native address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderHint {
    pub node_id: u32,
    pub address: String,
}

fn leader_text(leader: &Option<LeaderHint>) -> String {
    match leader {
        Some(hint) => format!(" (node {} at {} does)", hint.node_id, hint.address),
        None => " (no leader is known yet)".to_owned(),
    }
}
