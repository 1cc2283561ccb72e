//! The metadata group's commands ([`MetadataCommand`]), what applying one
//! yields ([`MetadataOutcome`]) or why it was refused ([`MetadataError`]),
//! and the command encoding stored as the value of a Raft entry's record.
//!
//! Encoding: a JSON envelope `{"v":1,"command":{...}}` (decision 0001 keeps
//! serde for metadata; 0005 §3 proposes postcard, JSON is used until a
//! binary format is worth a dependency). `v` is checked on decode, so a
//! replica never applies a command from a format it does not know.
//!
//! This module does not apply commands ([`crate::state`]) nor build batches
//! ([`crate::state_machine`]).

pub use citystream_broker::offsets::Committed;
use serde::{Deserialize, Serialize};

use crate::state::{TopicConfig, TopicId};

/// The envelope version this code writes and reads.
pub const COMMAND_FORMAT: u32 = 1;

/// One change to the cluster metadata. Applied in log order on every
/// replica; applying is deterministic, so every replica ends in the same
/// state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MetadataCommand {
    /// Sets the cluster id once; a different id later is refused.
    InitCluster {
        cluster_id: String,
    },
    /// Adds a broker, or updates the addresses and rack of an active one.
    RegisterBroker {
        node_id: u32,
        addresses: BrokerAddresses,
        rack: Option<String>,
    },
    /// Stops placing new replicas on a broker; its replicas stay.
    DrainBroker {
        node_id: u32,
    },
    /// Marks a broker removed for good (its id is never reused). Its
    /// replicas move by follow-up [`MetadataCommand::ReassignPartition`]s
    /// that [`crate::replace_broker`] computes.
    RemoveBroker {
        node_id: u32,
    },
    /// Creates a topic with the placement the leader computed
    /// ([`crate::MetadataState::plan_create_topic`]). The topic id is
    /// assigned by applying, from `next_topic_id`.
    CreateTopic {
        name: String,
        replication_factor: u32,
        settings: TopicConfig,
        /// One replica list per partition; the first is the preferred leader.
        placement: Vec<Vec<u32>>,
    },
    DeleteTopic {
        name: String,
    },
    /// Replaces a partition's replica list (and bumps its epoch).
    ReassignPartition {
        topic: String,
        partition: u32,
        replicas: Vec<u32>,
    },
    /// Hands out `count` producer ids that no one else will ever get.
    AllocateProducerIds {
        count: u32,
    },
    /// Sets or deletes committed consumer-group offsets. The group
    /// coordinator (the metadata leader) has vouched for the committer;
    /// applying checks only the input (group name, limits, partitions).
    CommitOffsets {
        group: String,
        offsets: Vec<OffsetChange>,
    },
}

/// One partition of a [`MetadataCommand::CommitOffsets`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetChange {
    pub topic: String,
    pub partition: u32,
    /// `None` deletes the partition's committed offset.
    pub committed: Option<Committed>,
}

/// Where a broker listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BrokerAddresses {
    /// The client (native protocol) address.
    pub native: String,
    /// The gossip (membership) address.
    pub gossip: String,
    /// The Raft peer address, named in every group's membership.
    pub peer: String,
}

/// What an applied command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataOutcome {
    ClusterInitialized,
    BrokerRegistered {
        node_id: u32,
    },
    BrokerDraining {
        node_id: u32,
    },
    BrokerRemoved {
        node_id: u32,
    },
    TopicCreated {
        topic_id: TopicId,
    },
    TopicDeleted {
        topic_id: TopicId,
    },
    PartitionReassigned {
        topic_id: TopicId,
        epoch: u32,
    },
    /// Ids `[first, first + count)` belong to the caller.
    ProducerIds {
        first: u64,
        count: u32,
    },
    OffsetsCommitted,
}

/// Why a command was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MetadataError {
    #[error("{0}")]
    InvalidTopicName(String),
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    #[error("topic '{topic}' has {partitions} partitions; there is no partition {partition}")]
    UnknownPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    #[error("a topic has 1-{max} partitions, not {partitions}")]
    PartitionCount { partitions: u32, max: u32 },
    #[error("replication factor must be at least 1")]
    ReplicationFactorZero,
    #[error("replication factor {replication_factor} exceeds the {active} active brokers")]
    ReplicationFactorTooHigh {
        replication_factor: u32,
        active: u32,
    },
    #[error("invalid topic settings: {0}")]
    InvalidSettings(String),
    #[error("invalid placement: {0}")]
    InvalidPlacement(String),
    #[error("unknown broker {0}")]
    UnknownBroker(u32),
    #[error("broker {0} was removed; a removed id is never reused")]
    BrokerRemoved(u32),
    #[error("broker {0} is not active")]
    BrokerNotActive(u32),
    #[error("broker address is invalid: {0}")]
    InvalidBroker(String),
    #[error("cluster id '{wanted}' does not match this cluster's '{current}'")]
    ClusterIdMismatch { current: String, wanted: String },
    #[error("producer id blocks are 1-{max} ids, not {count}")]
    ProducerIdCount { count: u32, max: u32 },
    #[error("invalid consumer group: {0}")]
    InvalidGroup(String),
    #[error("invalid offset commit: {0}")]
    InvalidOffsets(String),
    #[error("{0} ids are exhausted")]
    IdsExhausted(&'static str),
}

/// Why bytes are not a command this version can apply.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("metadata encoding is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("metadata format {found} is not known here (this version reads {known})")]
    UnknownFormat { found: u32, known: u32 },
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u32,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Deserialize)]
struct Version {
    v: u32,
}

#[derive(Serialize, Deserialize)]
struct CommandBody {
    command: MetadataCommand,
}

/// Serializes `body`'s fields next to a format version `v`.
pub(crate) fn encode_versioned<T: Serialize>(version: u32, body: &T) -> Vec<u8> {
    serde_json::to_vec(&EnvelopeOut { v: version, body })
        .expect("metadata types serialize (string keys, no non-finite floats)")
}

/// Checks the envelope version, then decodes the body.
pub(crate) fn decode_versioned<T: for<'de> Deserialize<'de>>(
    known: u32,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    decode_versioned_since(known, known, bytes)
}

/// As [`decode_versioned`], also taking the older formats `oldest..known`
/// of a body whose newer fields have serde defaults.
pub(crate) fn decode_versioned_since<T: for<'de> Deserialize<'de>>(
    oldest: u32,
    known: u32,
    bytes: &[u8],
) -> Result<T, DecodeError> {
    let Version { v } = serde_json::from_slice(bytes)?;
    if !(oldest..=known).contains(&v) {
        return Err(DecodeError::UnknownFormat { found: v, known });
    }
    Ok(serde_json::from_slice(bytes)?)
}

impl MetadataCommand {
    /// The bytes stored as the value of the command's record.
    pub fn encode(&self) -> Vec<u8> {
        let body = CommandBody {
            command: self.clone(),
        };
        encode_versioned(COMMAND_FORMAT, &body)
    }

    pub fn decode(bytes: &[u8]) -> Result<MetadataCommand, DecodeError> {
        let body: CommandBody = decode_versioned(COMMAND_FORMAT, bytes)?;
        Ok(body.command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_command() -> Vec<MetadataCommand> {
        vec![
            MetadataCommand::InitCluster {
                cluster_id: "city-a".into(),
            },
            MetadataCommand::RegisterBroker {
                node_id: 3,
                addresses: BrokerAddresses {
                    native: "b3:9092".into(),
                    gossip: "b3:7946".into(),
                    peer: "b3:9093".into(),
                },
                rack: Some("r1".into()),
            },
            MetadataCommand::DrainBroker { node_id: 3 },
            MetadataCommand::RemoveBroker { node_id: 3 },
            MetadataCommand::CreateTopic {
                name: "orders".into(),
                replication_factor: 2,
                settings: TopicConfig {
                    retention_ms: Some(1000),
                    ..TopicConfig::default()
                },
                placement: vec![vec![1, 2], vec![2, 1]],
            },
            MetadataCommand::DeleteTopic {
                name: "orders".into(),
            },
            MetadataCommand::ReassignPartition {
                topic: "orders".into(),
                partition: 1,
                replicas: vec![3, 1],
            },
            MetadataCommand::AllocateProducerIds { count: 1000 },
            MetadataCommand::CommitOffsets {
                group: "billing".into(),
                offsets: vec![
                    OffsetChange {
                        topic: "orders".into(),
                        partition: 1,
                        committed: Some(Committed {
                            offset: 42,
                            metadata: "m".into(),
                        }),
                    },
                    OffsetChange {
                        topic: "orders".into(),
                        partition: 0,
                        committed: None,
                    },
                ],
            },
        ]
    }

    /// Every command kind decodes to what was encoded.
    #[test]
    fn commands_round_trip() {
        for command in every_command() {
            let bytes = command.encode();
            assert_eq!(MetadataCommand::decode(&bytes).unwrap(), command);
        }
    }

    /// The exact bytes of one command: the format is stable on disk.
    #[test]
    fn command_exact_bytes() {
        let bytes = MetadataCommand::DrainBroker { node_id: 3 }.encode();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":1,"command":{"kind":"drain_broker","node_id":3}}"#
        );
    }

    /// A future format, truncated input and garbage are refused.
    #[test]
    fn bad_command_bytes_are_refused() {
        let future = br#"{"v":2,"command":{"kind":"drain_broker","node_id":3}}"#;
        assert!(matches!(
            MetadataCommand::decode(future),
            Err(DecodeError::UnknownFormat { found: 2, known: 1 })
        ));
        let bytes = MetadataCommand::AllocateProducerIds { count: 5 }.encode();
        for cut in 0..bytes.len() {
            assert!(MetadataCommand::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        assert!(MetadataCommand::decode(b"\xff\x00").is_err());
    }
}
