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
    /// A batch behind what the partition holds (not a recent retry).
    #[error(
        "producer {producer_id} sent sequence {received} on {topic}/{partition}, behind the expected {expected}: its state here was lost; start over with a new producer id"
    )]
    OutOfOrderSequence {
        producer_id: u64,
        topic: String,
        partition: u32,
        expected: u32,
        received: u32,
    },
    /// A batch ahead of the next expected sequence: an earlier one is missing.
    #[error(
        "producer {producer_id} sent sequence {received} on {topic}/{partition}, expected {expected}: an earlier batch has not arrived; re-send from the first unacknowledged batch"
    )]
    OutOfSequence {
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

impl BrokerError {
    /// The refusal of an idempotent batch of `producer_id` starting at
    /// `received` on `topic`/`partition`.
    pub fn sequence_refused(
        refusal: crate::producer_state::OutOfOrder,
        producer_id: u64,
        topic: &str,
        partition: u32,
        received: u32,
    ) -> BrokerError {
        use crate::producer_state::OutOfOrder;
        let topic = topic.to_owned();
        match refusal {
            OutOfOrder::Gap { expected } => BrokerError::OutOfSequence {
                producer_id,
                topic,
                partition,
                expected,
                received,
            },
            OutOfOrder::Stale { expected } => BrokerError::OutOfOrderSequence {
                producer_id,
                topic,
                partition,
                expected,
                received,
            },
        }
    }
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
