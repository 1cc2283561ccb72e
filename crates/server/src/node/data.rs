//! The data and admin entry points the handlers call in cluster mode, with
//! the same shapes as the standalone [`citystream_broker::Broker`] facade:
//! find the local replica of a partition (or say who leads it), produce
//! through Raft, read committed data, and change topics through the
//! metadata leader.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use citystream_broker::produce::validate_batch;
use citystream_broker::{BrokerError, Cleanup, FetchOutcome, LeaderHint, OffsetQuery};
use citystream_cluster::{MetadataState, TopicConfig};
use citystream_membership::MemberView;
use citystream_protocol::Acks;
use citystream_record::NO_PRODUCER;
use tokio::sync::watch;

use super::calls::Moved;
use super::replica::{PendingAppend, Replica};
use super::{CallAnswer, ClusterNode, METADATA_WRITE_PATIENCE, NodeCall};

/// Gossip key of a partition's leadership (`leaderships` map).
pub(crate) fn leadership_key(topic: &str, partition: u32) -> String {
    format!("{topic}/{partition}")
}

impl ClusterNode {
    /// The local replica of `topic`/`partition`; an error naming the
    /// leader (when known) if this node holds none.
    pub fn replica_for(&self, topic: &str, partition: u32) -> Result<Arc<Replica>, BrokerError> {
        let state = self.metadata();
        let meta = state
            .topics
            .get(topic)
            .ok_or_else(|| BrokerError::UnknownTopic(topic.to_owned()))?;
        let partitions = u32::try_from(meta.partitions.len()).unwrap_or(u32::MAX);
        if partition >= partitions {
            return Err(BrokerError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                partitions,
            });
        }
        let group = meta.topic_id.partition_group(partition);
        self.groups.replica(group).ok_or_else(|| {
            // Gossip knows the leader; without it, a replica is one hop
            // from the answer (it names its leader).
            let leader = self
                .gossip_leader(&state, topic, partition)
                .or_else(|| self.other_replica(&state, topic, partition));
            BrokerError::NotLeader {
                topic: topic.to_owned(),
                partition,
                leader,
            }
        })
    }

    /// Validates and submits one batch; the future waits for its ack.
    pub async fn submit(
        &self,
        topic: &str,
        partition: u32,
        batch: Bytes,
        acks: Acks,
        now_ms: i64,
        timeout: Duration,
    ) -> Result<PendingAppend, BrokerError> {
        let replica = match self.replica_for(topic, partition) {
            Err(BrokerError::UnknownTopic(_)) if self.broker.config().auto_create_topics => {
                self.auto_create(topic).await?;
                return Err(BrokerError::NotLeader {
                    topic: topic.to_owned(),
                    partition,
                    leader: None,
                });
            }
            other => other?,
        };
        let batch = validate_batch(batch, self.broker.produce_limits(), self.cleanup(topic))?;
        let producer_id = batch.header().producer_id;
        if producer_id != NO_PRODUCER && !self.broker.producer_id_is_plausible(producer_id) {
            return Err(BrokerError::UnknownProducer(producer_id));
        }
        replica.propose(batch, acks, now_ms, timeout).await
    }

    /// The cleanup policy of `topic` in cluster metadata (`Delete` for a
    /// topic this node does not know, whose produce fails before this).
    pub fn cleanup(&self, topic: &str) -> Cleanup {
        self.metadata()
            .topics
            .get(topic)
            .map_or(Cleanup::Delete, |meta| meta.settings.cleanup)
    }

    pub fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: u32,
    ) -> Result<FetchOutcome, BrokerError> {
        self.replica_for(topic, partition)?.fetch(offset, max_bytes)
    }

    pub fn list_offset(
        &self,
        topic: &str,
        partition: u32,
        query: OffsetQuery,
    ) -> Result<u64, BrokerError> {
        self.replica_for(topic, partition)?.list_offset(query)
    }

    pub fn watch_partition(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<watch::Receiver<u64>, BrokerError> {
        Ok(self.replica_for(topic, partition)?.watch())
    }

    /// Creates a topic through the metadata leader; returns once this node
    /// knows it (its metadata applied the creation).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: u32,
        settings: TopicConfig,
    ) -> Result<(), BrokerError> {
        let call = NodeCall::CreateTopic {
            name: name.to_owned(),
            partitions,
            replication_factor,
            settings,
        };
        self.admin_write(call).await?;
        self.await_metadata(|state| state.topics.contains_key(name))
            .await;
        Ok(())
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), BrokerError> {
        let command = citystream_cluster::MetadataCommand::DeleteTopic {
            name: name.to_owned(),
        };
        self.admin_write(NodeCall::Propose(command)).await?;
        self.await_metadata(|state| !state.topics.contains_key(name))
            .await;
        Ok(())
    }

    async fn auto_create(&self, topic: &str) -> Result<(), BrokerError> {
        let partitions = self.broker.config().default_partitions;
        match self
            .create_topic(topic, partitions, 0, TopicConfig::default())
            .await
        {
            Err(BrokerError::TopicExists(_)) | Ok(()) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Moves every replica off `node_id` and marks it removed.
    pub async fn remove_node(&self, node_id: u32) -> Result<Vec<Moved>, BrokerError> {
        self.admin_write(NodeCall::RemoveNode { node_id }).await
    }

    /// Evens out replica counts over the active brokers.
    pub async fn rebalance(&self, dry_run: bool) -> Result<Vec<Moved>, BrokerError> {
        self.admin_write(NodeCall::Rebalance { dry_run }).await
    }

    /// Whether this node leads the metadata group (and so coordinates
    /// consumer groups).
    pub fn leads_metadata(&self) -> bool {
        self.groups.meta_raft.as_leader().is_ok()
    }

    /// Has the metadata leader serve an encoded native request; its
    /// encoded response. Retried while leadership moves, for at most
    /// `patience`.
    pub async fn forward_native(
        &self,
        request: Vec<u8>,
        patience: Duration,
    ) -> Result<Vec<u8>, BrokerError> {
        let answer = self
            .groups
            .metadata_write(&self.network, NodeCall::Native(request), patience)
            .await;
        match answer {
            CallAnswer::Native(response) => Ok(response),
            CallAnswer::Unavailable(reason) => Err(BrokerError::Unavailable(format!(
                "the group coordinator (metadata leader) cannot be reached: {reason}"
            ))),
            other => Err(BrokerError::Unavailable(format!(
                "unexpected coordinator answer {other:?}"
            ))),
        }
    }

    /// Commits `call` at the metadata leader; the replica moves it made.
    async fn admin_write(&self, call: NodeCall) -> Result<Vec<Moved>, BrokerError> {
        let answer = self
            .groups
            .metadata_write(&self.network, call, METADATA_WRITE_PATIENCE)
            .await;
        match answer {
            CallAnswer::Applied(_) => Ok(Vec::new()),
            CallAnswer::Reassigned(moves) => Ok(moves),
            CallAnswer::Native(_) | CallAnswer::Beat(_) | CallAnswer::Joined { .. } => {
                Ok(Vec::new())
            }
            CallAnswer::Refused(refused) => Err(refused.into()),
            CallAnswer::Unavailable(reason) => Err(BrokerError::Unavailable(format!(
                "the metadata group cannot commit now: {reason}"
            ))),
        }
    }

    /// Waits (bounded) until this node's metadata satisfies `done`: a
    /// write committed at the leader reaches followers a heartbeat later.
    async fn await_metadata(&self, done: impl Fn(&MetadataState) -> bool) {
        let mut state = self.groups.meta_sm.subscribe();
        let wait = state.wait_for(|s| done(s));
        let _ = tokio::time::timeout(METADATA_WRITE_PATIENCE, wait).await;
    }

    /// The leader of a partition as far as this node knows: its own
    /// group's view if it holds a replica, else (or if that group knows no
    /// leader) the highest term gossip reports, else another replica, which
    /// will know.
    pub fn partition_leader(
        &self,
        state: &MetadataState,
        topic: &str,
        partition: u32,
    ) -> Option<LeaderHint> {
        let meta = state.topics.get(topic)?;
        let group = meta.topic_id.partition_group(partition);
        if let Some(replica) = self.groups.replica(group) {
            match replica.leader_term() {
                Ok(_) => {
                    return Some(LeaderHint {
                        node_id: self.node_id(),
                        address: self.config.advertised_address.clone(),
                    });
                }
                Err(BrokerError::NotLeader {
                    leader: Some(hint), ..
                }) if hint.node_id != self.node_id() => return Some(hint),
                Err(_) => {}
            }
        }
        self.gossip_leader(state, topic, partition)
            .filter(|hint| hint.node_id != self.node_id())
            .or_else(|| self.other_replica(state, topic, partition))
    }

    /// A replica of the partition other than this node, at its address.
    fn other_replica(
        &self,
        state: &MetadataState,
        topic: &str,
        partition: u32,
    ) -> Option<LeaderHint> {
        let assignment = state
            .topics
            .get(topic)?
            .partitions
            .get(partition as usize)?;
        let node_id = *assignment
            .replicas
            .iter()
            .find(|id| **id != self.node_id())?;
        let address = state.brokers.get(&node_id)?.addresses.native.clone();
        Some(LeaderHint { node_id, address })
    }

    fn gossip_leader(
        &self,
        state: &MetadataState,
        topic: &str,
        partition: u32,
    ) -> Option<LeaderHint> {
        let members = self.members.as_ref()?;
        let key = leadership_key(topic, partition);
        let members: Vec<MemberView> = members.borrow().clone();
        let (node_id, _) = members
            .iter()
            .filter_map(|m| {
                m.info
                    .leaderships
                    .get(&key)
                    .map(|term| (m.info.node_id.0, *term))
            })
            .max_by_key(|(_, term)| *term)?;
        let address = state.brokers.get(&node_id)?.addresses.native.clone();
        Some(LeaderHint { node_id, address })
    }
}
