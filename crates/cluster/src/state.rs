//! [`MetadataState`]: the cluster metadata (brokers, topics, placements,
//! id allocators) and [`MetadataState::apply`], the one place it changes.
//!
//! Invariants (checked by `apply`, which validates a command completely
//! before changing anything, so a refused command changes nothing):
//! - topic ids and producer ids only grow and are never handed out twice,
//!   even after a topic is deleted;
//! - a removed broker stays removed, and new placements name active
//!   brokers only;
//! - every partition's replicas are distinct, non-empty known brokers;
//! - committed consumer-group offsets name existing partitions only
//!   (deleting a topic drops its offsets, [`crate::group_offsets`]).
//!
//! This module does not decide placements ([`crate::placement`]) or talk to
//! Raft ([`crate::state_machine`]).

use std::collections::{BTreeMap, BTreeSet};

use citystream_broker::BrokerError;
use citystream_broker::names::validate_user_topic_name;
use citystream_broker::topic::PARTITIONS_PER_TOPIC_MAX;
use citystream_broker::{Cleanup, TopicSettings};
use serde::{Deserialize, Serialize};

use crate::command::{
    BrokerAddresses, DecodeError, MetadataCommand, MetadataError, MetadataOutcome,
    decode_versioned_since, encode_versioned,
};
use crate::group_offsets::GroupOffsets;
use crate::placement::{Candidate, place_topic};

/// The snapshot envelope version. Format 2 added
/// [`MetadataState::log_next_offset`], format 3
/// [`MetadataState::group_offsets`]; formats 1 and 2 still decode, without
/// them. A version that does not know the offsets refuses format 3 instead
/// of silently dropping them.
pub const STATE_FORMAT: u32 = 3;
const STATE_FORMAT_OLDEST: u32 = 1;
/// Largest producer-id block one command may take.
pub const PRODUCER_ID_BLOCK_MAX: u32 = 1_000_000;
/// Longest address or rack string a broker may register.
pub const BROKER_FIELD_BYTES_MAX: usize = 255;

/// A topic's id: assigned at creation, never reused, so a Raft group of a
/// deleted topic can never be confused with a new topic of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicId(pub u64);

impl TopicId {
    /// The Raft group id of one partition (0005 §3: `topic_id << 32 |
    /// partition`; group 0 is the metadata group, topic ids start at 1).
    pub fn partition_group(self, partition: u32) -> u64 {
        assert!(
            self.0 > 0 && self.0 <= u64::from(u32::MAX),
            "topic id fits a group id"
        );
        self.0 << 32 | u64::from(partition)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerState {
    /// Takes new replicas.
    Active,
    /// Keeps its replicas but takes no new ones.
    Draining,
    /// Gone for good; its id is never reused.
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub addresses: BrokerAddresses,
    pub rack: Option<String>,
    pub state: BrokerState,
}

/// The per-topic settings of [`TopicSettings`], in a serializable form.
/// The compaction settings (decision 0017 §9) default when absent, and are
/// left out while at their defaults, so a delete topic's JSON is unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segment_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "is_delete")]
    pub cleanup: Cleanup,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction_lag_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone_retention_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_roll_ms: Option<u64>,
}

fn is_delete(cleanup: &Cleanup) -> bool {
    *cleanup == Cleanup::Delete
}

impl From<&TopicSettings> for TopicConfig {
    fn from(s: &TopicSettings) -> Self {
        TopicConfig {
            retention_ms: s.retention_ms,
            retention_bytes: s.retention_bytes,
            segment_bytes: s.segment_bytes,
            cleanup: s.cleanup,
            compaction_lag_ms: s.compaction_lag_ms,
            tombstone_retention_ms: s.tombstone_retention_ms,
            segment_roll_ms: s.segment_roll_ms,
        }
    }
}

impl From<&TopicConfig> for TopicSettings {
    fn from(c: &TopicConfig) -> Self {
        TopicSettings {
            retention_ms: c.retention_ms,
            retention_bytes: c.retention_bytes,
            segment_bytes: c.segment_bytes,
            cleanup: c.cleanup,
            compaction_lag_ms: c.compaction_lag_ms,
            tombstone_retention_ms: c.tombstone_retention_ms,
            segment_roll_ms: c.segment_roll_ms,
        }
    }
}

/// One partition's replicas; the first is the preferred leader. `epoch`
/// counts reassignments (0: the placement the topic was created with, the
/// one every replica initializes its group with).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionAssignment {
    pub replicas: Vec<u32>,
    pub epoch: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub topic_id: TopicId,
    pub replication_factor: u32,
    pub settings: TopicConfig,
    /// One per partition, indexed by partition number.
    pub partitions: Vec<PartitionAssignment>,
}

/// The whole cluster metadata. Small: kept in memory, snapshotted whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataState {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<u32, BrokerInfo>,
    pub topics: BTreeMap<String, TopicMeta>,
    pub next_topic_id: u64,
    pub next_producer_id: u64,
    /// The metadata log's offset right after the last applied entry.
    /// Commands never change it: the state machine sets it as it applies
    /// entries (the same offsets on every replica), so a replica that
    /// installs this state as a snapshot restarts its log there (0005 §2).
    /// `None` until the state machine sets it, and in a format-1 snapshot.
    #[serde(default)]
    pub log_next_offset: Option<u64>,
    /// Committed consumer-group offsets by group (the coordinator's source
    /// of truth in cluster mode). Empty in a format-1 or -2 snapshot.
    #[serde(default)]
    pub group_offsets: BTreeMap<String, GroupOffsets>,
}

impl Default for MetadataState {
    fn default() -> Self {
        MetadataState {
            cluster_id: None,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            next_topic_id: 1,
            next_producer_id: 0,
            log_next_offset: None,
            group_offsets: BTreeMap::new(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StateBody {
    state: MetadataState,
}

impl MetadataState {
    /// Applies one command, or refuses it and changes nothing.
    pub fn apply(&mut self, command: &MetadataCommand) -> Result<MetadataOutcome, MetadataError> {
        use MetadataCommand as C;
        match command {
            C::InitCluster { cluster_id } => self.init_cluster(cluster_id),
            C::RegisterBroker {
                node_id,
                addresses,
                rack,
            } => self.register_broker(*node_id, addresses, rack),
            C::DrainBroker { node_id } => self.set_broker_state(*node_id, BrokerState::Draining),
            C::RemoveBroker { node_id } => self.set_broker_state(*node_id, BrokerState::Removed),
            C::CreateTopic {
                name,
                replication_factor,
                settings,
                placement,
            } => self.create_topic(name, *replication_factor, settings, placement),
            C::DeleteTopic { name } => self.delete_topic(name),
            C::ReassignPartition {
                topic,
                partition,
                replicas,
            } => self.reassign(topic, *partition, replicas),
            C::AllocateProducerIds { count } => self.allocate_producer_ids(*count),
            C::CommitOffsets { group, offsets } => self.commit_offsets(group, offsets),
        }
    }

    /// Brokers that take new replicas, with their racks.
    pub fn active_brokers(&self) -> Vec<Candidate> {
        self.brokers
            .iter()
            .filter(|(_, b)| b.state == BrokerState::Active)
            .map(|(&id, b)| Candidate {
                node_id: id,
                rack: b.rack.clone(),
            })
            .collect()
    }

    /// Replicas hosted per broker, over every known broker (0 if none).
    pub fn replica_load(&self) -> BTreeMap<u32, u32> {
        let mut load: BTreeMap<u32, u32> = self.brokers.keys().map(|&id| (id, 0)).collect();
        for topic in self.topics.values() {
            for assignment in &topic.partitions {
                for id in &assignment.replicas {
                    *load.entry(*id).or_default() += 1;
                }
            }
        }
        load
    }

    /// Validates a topic creation and computes its placement (least-loaded
    /// active brokers, leaders spread, rotation seeded by the topic id it
    /// will get). The leader proposes the returned command.
    pub fn plan_create_topic(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: u32,
        settings: TopicConfig,
    ) -> Result<MetadataCommand, MetadataError> {
        self.check_new_topic(name, partitions, replication_factor, &settings)?;
        let placement = place_topic(
            &self.active_brokers(),
            partitions,
            replication_factor,
            self.next_topic_id,
            &self.replica_load(),
        );
        Ok(MetadataCommand::CreateTopic {
            name: name.to_owned(),
            replication_factor,
            settings,
            placement,
        })
    }

    /// The bytes of a snapshot of the whole state (versioned JSON).
    /// [`Self::decode`] also reads format 1 (`log_next_offset` is `None`).
    pub fn encode(&self) -> Vec<u8> {
        encode_versioned(
            STATE_FORMAT,
            &StateBody {
                state: self.clone(),
            },
        )
    }

    pub fn decode(bytes: &[u8]) -> Result<MetadataState, DecodeError> {
        let body: StateBody = decode_versioned_since(STATE_FORMAT_OLDEST, STATE_FORMAT, bytes)?;
        Ok(body.state)
    }

    fn init_cluster(&mut self, cluster_id: &str) -> Result<MetadataOutcome, MetadataError> {
        match &self.cluster_id {
            Some(current) if current != cluster_id => Err(MetadataError::ClusterIdMismatch {
                current: current.clone(),
                wanted: cluster_id.to_owned(),
            }),
            _ if cluster_id.is_empty() || cluster_id.len() > BROKER_FIELD_BYTES_MAX => Err(
                MetadataError::InvalidBroker("cluster id must be 1-255 bytes".into()),
            ),
            _ => {
                self.cluster_id = Some(cluster_id.to_owned());
                Ok(MetadataOutcome::ClusterInitialized)
            }
        }
    }

    fn register_broker(
        &mut self,
        node_id: u32,
        addresses: &BrokerAddresses,
        rack: &Option<String>,
    ) -> Result<MetadataOutcome, MetadataError> {
        let fields = [&addresses.native, &addresses.gossip, &addresses.peer];
        if fields
            .iter()
            .any(|f| f.is_empty() || f.len() > BROKER_FIELD_BYTES_MAX)
            || rack
                .as_ref()
                .is_some_and(|r| r.is_empty() || r.len() > BROKER_FIELD_BYTES_MAX)
        {
            return Err(MetadataError::InvalidBroker(format!(
                "addresses are 1-{BROKER_FIELD_BYTES_MAX} bytes and a rack, if set, too"
            )));
        }
        let state = match self.brokers.get(&node_id).map(|b| b.state) {
            Some(BrokerState::Removed) => return Err(MetadataError::BrokerRemoved(node_id)),
            Some(state) => state,
            None => BrokerState::Active,
        };
        let info = BrokerInfo {
            addresses: addresses.clone(),
            rack: rack.clone(),
            state,
        };
        self.brokers.insert(node_id, info);
        Ok(MetadataOutcome::BrokerRegistered { node_id })
    }

    fn set_broker_state(
        &mut self,
        node_id: u32,
        to: BrokerState,
    ) -> Result<MetadataOutcome, MetadataError> {
        let broker = self
            .brokers
            .get_mut(&node_id)
            .ok_or(MetadataError::UnknownBroker(node_id))?;
        if broker.state == BrokerState::Removed {
            return Err(MetadataError::BrokerRemoved(node_id));
        }
        broker.state = to;
        Ok(match to {
            BrokerState::Draining => MetadataOutcome::BrokerDraining { node_id },
            _ => MetadataOutcome::BrokerRemoved { node_id },
        })
    }

    fn check_new_topic(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: u32,
        settings: &TopicConfig,
    ) -> Result<(), MetadataError> {
        validate_user_topic_name(name)
            .map_err(|e| MetadataError::InvalidTopicName(e.to_string()))?;
        if self.topics.contains_key(name) {
            return Err(MetadataError::TopicExists(name.to_owned()));
        }
        if partitions == 0 || partitions > PARTITIONS_PER_TOPIC_MAX {
            return Err(MetadataError::PartitionCount {
                partitions,
                max: PARTITIONS_PER_TOPIC_MAX,
            });
        }
        if replication_factor == 0 {
            return Err(MetadataError::ReplicationFactorZero);
        }
        let active = self.active_brokers().len() as u32;
        if replication_factor > active {
            return Err(MetadataError::ReplicationFactorTooHigh {
                replication_factor,
                active,
            });
        }
        TopicSettings::from(settings)
            .validate()
            .map_err(|e| MetadataError::InvalidSettings(invalid_settings_text(e)))?;
        if self.next_topic_id > u64::from(u32::MAX) {
            return Err(MetadataError::IdsExhausted("topic"));
        }
        Ok(())
    }

    fn create_topic(
        &mut self,
        name: &str,
        replication_factor: u32,
        settings: &TopicConfig,
        placement: &[Vec<u32>],
    ) -> Result<MetadataOutcome, MetadataError> {
        let partitions = u32::try_from(placement.len()).unwrap_or(u32::MAX);
        self.check_new_topic(name, partitions, replication_factor, settings)?;
        for (partition, replicas) in placement.iter().enumerate() {
            if replicas.len() != replication_factor as usize {
                return Err(MetadataError::InvalidPlacement(format!(
                    "partition {partition} has {} replicas, not {replication_factor}",
                    replicas.len()
                )));
            }
            self.check_replicas(replicas, &[])?;
        }
        let topic_id = TopicId(self.next_topic_id);
        self.next_topic_id += 1;
        let partitions = placement
            .iter()
            .map(|replicas| PartitionAssignment {
                replicas: replicas.clone(),
                epoch: 0,
            })
            .collect();
        let meta = TopicMeta {
            topic_id,
            replication_factor,
            settings: settings.clone(),
            partitions,
        };
        self.topics.insert(name.to_owned(), meta);
        Ok(MetadataOutcome::TopicCreated { topic_id })
    }

    /// Distinct, non-empty, and every broker active, except that brokers in
    /// `current` may stay while draining.
    fn check_replicas(&self, replicas: &[u32], current: &[u32]) -> Result<(), MetadataError> {
        let distinct: BTreeSet<u32> = replicas.iter().copied().collect();
        if replicas.is_empty() || distinct.len() != replicas.len() {
            return Err(MetadataError::InvalidPlacement(format!(
                "replicas {replicas:?} must be distinct and non-empty"
            )));
        }
        for id in replicas {
            match self.brokers.get(id).map(|b| b.state) {
                None => return Err(MetadataError::UnknownBroker(*id)),
                Some(BrokerState::Removed) => return Err(MetadataError::BrokerRemoved(*id)),
                Some(BrokerState::Draining) if !current.contains(id) => {
                    return Err(MetadataError::BrokerNotActive(*id));
                }
                Some(BrokerState::Draining) => {}
                Some(BrokerState::Active) => {}
            }
        }
        Ok(())
    }

    fn delete_topic(&mut self, name: &str) -> Result<MetadataOutcome, MetadataError> {
        let meta = self
            .topics
            .remove(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_owned()))?;
        self.forget_topic_offsets(name);
        Ok(MetadataOutcome::TopicDeleted {
            topic_id: meta.topic_id,
        })
    }

    fn reassign(
        &mut self,
        topic: &str,
        partition: u32,
        replicas: &[u32],
    ) -> Result<MetadataOutcome, MetadataError> {
        let meta = self
            .topics
            .get(topic)
            .ok_or_else(|| MetadataError::UnknownTopic(topic.to_owned()))?;
        let partitions = meta.partitions.len() as u32;
        let current = meta.partitions.get(partition as usize).ok_or_else(|| {
            MetadataError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                partitions,
            }
        })?;
        self.check_replicas(replicas, &current.replicas)?;
        let epoch = current
            .epoch
            .checked_add(1)
            .ok_or(MetadataError::IdsExhausted("partition epoch"))?;
        // Validated above: the topic and partition exist.
        let meta = self.topics.get_mut(topic).expect("topic checked");
        meta.partitions[partition as usize] = PartitionAssignment {
            replicas: replicas.to_vec(),
            epoch,
        };
        Ok(MetadataOutcome::PartitionReassigned {
            topic_id: meta.topic_id,
            epoch,
        })
    }

    fn allocate_producer_ids(&mut self, count: u32) -> Result<MetadataOutcome, MetadataError> {
        if count == 0 || count > PRODUCER_ID_BLOCK_MAX {
            return Err(MetadataError::ProducerIdCount {
                count,
                max: PRODUCER_ID_BLOCK_MAX,
            });
        }
        let first = self.next_producer_id;
        self.next_producer_id = first
            .checked_add(u64::from(count))
            .ok_or(MetadataError::IdsExhausted("producer"))?;
        Ok(MetadataOutcome::ProducerIds { first, count })
    }
}

/// The message of a settings refusal, without the broker's error prefix.
fn invalid_settings_text(error: BrokerError) -> String {
    match error {
        BrokerError::InvalidRequest(message) => message,
        other => other.to_string(),
    }
}
