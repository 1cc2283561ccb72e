//! The metadata cache: for each topic its partition count, cleanup policy
//! and each partition's leader node, and for each node its address. It is pure data,
//! filled from `Metadata` responses and corrected by `NOT_LEADER` hints; the
//! client (`cluster.rs`) decides when to refresh it.

use std::collections::HashMap;

use citystream_protocol::{Cleanup, ErrorCode, MetadataResponse, NodeRef};

/// What the cache knows about one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicRoute {
    /// Leader node id of each partition, indexed by partition number.
    pub(crate) leaders: Vec<u32>,
    /// As the broker reported it (always `Delete` from a v1 broker).
    pub(crate) cleanup: Cleanup,
}

/// Topic → partition leaders, node id → address.
#[derive(Debug, Default)]
pub(crate) struct MetadataCache {
    topics: HashMap<String, TopicRoute>,
    nodes: HashMap<u32, String>,
}

impl MetadataCache {
    /// Merges a response: its brokers are added, each topic it names is
    /// replaced, and a topic it reports as unknown is forgotten.
    pub(crate) fn apply(&mut self, response: &MetadataResponse) {
        for node in &response.brokers {
            self.nodes.insert(node.node_id, node.address.clone());
        }
        for topic in &response.topics {
            if topic.status.error == ErrorCode::UNKNOWN_TOPIC || !topic.status.error.is_ok() {
                self.topics.remove(&topic.name);
                continue;
            }
            let mut leaders = vec![0; topic.partitions.len()];
            for partition in &topic.partitions {
                if let Some(slot) = leaders.get_mut(partition.partition as usize) {
                    *slot = partition.leader;
                }
            }
            let route = TopicRoute {
                leaders,
                cleanup: topic.config.cleanup,
            };
            self.topics.insert(topic.name.clone(), route);
        }
    }

    /// Number of partitions of `topic`, if known.
    pub(crate) fn partition_count(&self, topic: &str) -> Option<u32> {
        self.topics
            .get(topic)
            .map(|route| route.leaders.len() as u32)
    }

    /// The cleanup policy of `topic`, if known.
    pub(crate) fn cleanup(&self, topic: &str) -> Option<Cleanup> {
        self.topics.get(topic).map(|route| route.cleanup)
    }

    /// Address of the broker leading `topic`/`partition`, if known.
    pub(crate) fn leader_address(&self, topic: &str, partition: u32) -> Option<&str> {
        let leader = *self.topics.get(topic)?.leaders.get(partition as usize)?;
        self.nodes.get(&leader).map(String::as_str)
    }

    /// Records a `NOT_LEADER` hint: `leader` now leads `topic`/`partition`.
    pub(crate) fn apply_leader_hint(&mut self, topic: &str, partition: u32, leader: &NodeRef) {
        self.nodes.insert(leader.node_id, leader.address.clone());
        if let Some(slot) = self
            .topics
            .get_mut(topic)
            .and_then(|route| route.leaders.get_mut(partition as usize))
        {
            *slot = leader.node_id;
        }
    }

    /// The node known by `address`, if any.
    pub(crate) fn node_of(&self, address: &str) -> Option<u32> {
        self.nodes
            .iter()
            .find_map(|(node_id, known)| (known == address).then_some(*node_id))
    }

    /// Every known broker address (for falling back when one is down).
    pub(crate) fn addresses(&self) -> Vec<String> {
        self.nodes.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use citystream_protocol::{PartitionMetadata, PartitionStatus, TopicConfig, TopicMetadata};

    use super::*;

    fn topic(name: &str, leaders: &[u32]) -> TopicMetadata {
        TopicMetadata {
            name: name.to_string(),
            status: PartitionStatus::ok(),
            config: TopicConfig::default(),
            partitions: leaders
                .iter()
                .enumerate()
                .map(|(index, leader)| PartitionMetadata {
                    partition: index as u32,
                    leader: *leader,
                    replicas: vec![*leader],
                    log_start_offset: 0,
                    high_watermark: 0,
                })
                .collect(),
        }
    }

    fn response(topics: Vec<TopicMetadata>) -> MetadataResponse {
        MetadataResponse {
            cluster_id: "c".to_string(),
            controller_id: 1,
            brokers: vec![
                NodeRef {
                    node_id: 1,
                    address: "a:1".to_string(),
                },
                NodeRef {
                    node_id: 2,
                    address: "b:2".to_string(),
                },
            ],
            topics,
        }
    }

    /// Leaders resolve to their node's address, per partition.
    #[test]
    fn routes_partitions_to_leader_addresses() {
        let mut cache = MetadataCache::default();
        cache.apply(&response(vec![topic("t", &[1, 2])]));
        assert_eq!(cache.partition_count("t"), Some(2));
        assert_eq!(cache.leader_address("t", 0), Some("a:1"));
        assert_eq!(cache.leader_address("t", 1), Some("b:2"));
        assert_eq!(cache.leader_address("t", 2), None);
        assert_eq!(cache.leader_address("other", 0), None);
    }

    /// A NOT_LEADER hint moves one partition and teaches a new address.
    #[test]
    fn leader_hint_moves_a_partition() {
        let mut cache = MetadataCache::default();
        cache.apply(&response(vec![topic("t", &[1, 1])]));
        let hint = NodeRef {
            node_id: 3,
            address: "c:3".to_string(),
        };
        cache.apply_leader_hint("t", 1, &hint);
        assert_eq!(cache.leader_address("t", 0), Some("a:1"));
        assert_eq!(cache.leader_address("t", 1), Some("c:3"));
    }

    /// A topic reported unknown is forgotten.
    #[test]
    fn unknown_topic_is_forgotten() {
        let mut cache = MetadataCache::default();
        cache.apply(&response(vec![topic("t", &[1])]));
        let mut gone = topic("t", &[]);
        gone.status = PartitionStatus::error(ErrorCode::UNKNOWN_TOPIC, "no such topic");
        cache.apply(&response(vec![gone]));
        assert_eq!(cache.partition_count("t"), None);
    }
}
