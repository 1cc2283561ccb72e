//! What one node asks another over the peer link's `Call` rpc, and the
//! answers: today, metadata writes forwarded to the metadata leader (0005
//! §3: requests reach any node and go to the leader). JSON, like the
//! metadata commands themselves.

use citystream_cluster::{MetadataCommand, MetadataError, MetadataOutcome, TopicConfig};
use serde::{Deserialize, Serialize};

use super::liveness::QuietGroup;

/// A request to the metadata leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum NodeCall {
    /// Commit this command as it is.
    Propose(MetadataCommand),
    /// Plan a topic's placement from the leader's state, then commit it.
    CreateTopic {
        name: String,
        partitions: u32,
        /// 0: the default, `min(3, active brokers)`.
        replication_factor: u32,
        settings: TopicConfig,
    },
    /// Retire a broker: move its replicas to others, then mark it removed.
    RemoveNode { node_id: u32 },
    /// Even out replica counts over the active brokers (plan only with
    /// `dry_run`).
    Rebalance { dry_run: bool },
    /// A native-protocol request (an encoded request frame) for the
    /// metadata leader to serve as if a client had sent it there: consumer
    /// group requests, which one coordinator must see.
    Native(Vec<u8>),
    /// Add a broker to the metadata group (`--join`, `--discover`): any
    /// node takes it and forwards it to the metadata leader.
    AddNode {
        node_id: u32,
        /// Its native address (Raft traffic shares the port).
        address: String,
        cluster_id: String,
    },
    /// A leader's beat (`liveness`): the quiet groups it leads that the
    /// receiver holds a replica of. Answered by any node.
    Beat { leader: u64, quiet: Vec<QuietGroup> },
}

/// One partition's replica list before and after a move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Moved {
    pub topic: String,
    pub partition: u32,
    pub from: Vec<u32>,
    pub to: Vec<u32>,
}

/// The answer: the command's outcome, or why it was refused or not made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum CallAnswer {
    Applied(MetadataOutcome),
    /// The replica moves committed (or planned, for a dry run).
    Reassigned(Vec<Moved>),
    /// The encoded response frame to a forwarded native request.
    Native(Vec<u8>),
    /// The groups of a beat this follower acknowledges as quiet.
    Beat(Vec<u64>),
    /// The broker is in the metadata group, as a voter or a learner.
    Joined {
        voter: bool,
    },
    Refused(Refusal),
    /// Not committed: not the leader (any more), no quorum, shutting down.
    Unavailable(String),
}

/// A refused command, as the broker error it becomes at the asking node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Refusal {
    TopicExists(String),
    UnknownTopic(String),
    /// Any other refusal: the request was invalid; the message says why.
    Invalid(String),
}

impl From<MetadataError> for Refusal {
    fn from(error: MetadataError) -> Self {
        match error {
            MetadataError::TopicExists(name) => Refusal::TopicExists(name),
            MetadataError::UnknownTopic(name) => Refusal::UnknownTopic(name),
            other => Refusal::Invalid(other.to_string()),
        }
    }
}

impl From<Refusal> for citystream_broker::BrokerError {
    fn from(refusal: Refusal) -> Self {
        use citystream_broker::BrokerError;
        match refusal {
            Refusal::TopicExists(name) => BrokerError::TopicExists(name),
            Refusal::UnknownTopic(name) => BrokerError::UnknownTopic(name),
            Refusal::Invalid(message) => BrokerError::InvalidRequest(message),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&citystream_broker::BrokerError::from(self.clone()).to_string())
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("call types serialize")
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("undecodable node call: {e}"))
}
