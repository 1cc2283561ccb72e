//! `MetadataState::apply`: each command's effect, each refusal, and that a
//! refused command changes nothing.

use citystream_cluster::{
    BrokerAddresses, BrokerState, MetadataCommand, MetadataError, MetadataOutcome, MetadataState,
    STATE_FORMAT, TopicConfig, TopicId,
};

fn register(id: u32) -> MetadataCommand {
    MetadataCommand::RegisterBroker {
        node_id: id,
        addresses: BrokerAddresses {
            native: format!("b{id}:9092"),
            gossip: format!("b{id}:7946"),
            peer: format!("b{id}:9093"),
        },
        rack: None,
    }
}

fn with_brokers(count: u32) -> MetadataState {
    let mut state = MetadataState::default();
    for id in 1..=count {
        state.apply(&register(id)).unwrap();
    }
    state
}

/// Applies `command`, expects a refusal, and checks nothing changed.
fn refused(state: &mut MetadataState, command: MetadataCommand) -> MetadataError {
    let before = state.clone();
    let error = state.apply(&command).unwrap_err();
    assert_eq!(*state, before, "{command:?} changed the state");
    error
}

/// A planned topic gets id 1, RF distinct replicas per partition, and ids
/// are not reused after deletion.
#[test]
fn create_delete_never_reuses_ids() {
    let mut state = with_brokers(3);
    let create = state
        .plan_create_topic("orders", 3, 3, TopicConfig::default())
        .unwrap();
    let outcome = state.apply(&create).unwrap();
    assert_eq!(
        outcome,
        MetadataOutcome::TopicCreated {
            topic_id: TopicId(1)
        }
    );
    let topic = &state.topics["orders"];
    assert_eq!(topic.partitions.len(), 3);
    let leaders: Vec<u32> = topic.partitions.iter().map(|p| p.replicas[0]).collect();
    let mut sorted = leaders.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![1, 2, 3],
        "preferred leaders spread: {leaders:?}"
    );
    let deleted = state
        .apply(&MetadataCommand::DeleteTopic {
            name: "orders".into(),
        })
        .unwrap();
    assert_eq!(
        deleted,
        MetadataOutcome::TopicDeleted {
            topic_id: TopicId(1)
        }
    );
    let again = state
        .plan_create_topic("orders", 1, 1, TopicConfig::default())
        .unwrap();
    assert_eq!(
        state.apply(&again).unwrap(),
        MetadataOutcome::TopicCreated {
            topic_id: TopicId(2)
        }
    );
}

/// The replication-factor error names the numbers the operator needs.
#[test]
fn replication_factor_above_active_brokers_is_refused() {
    let mut state = with_brokers(2);
    let error = state
        .plan_create_topic("orders", 1, 3, TopicConfig::default())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "replication factor 3 exceeds the 2 active brokers"
    );
    let placement = vec![vec![1, 2, 3]];
    let create = MetadataCommand::CreateTopic {
        name: "orders".into(),
        replication_factor: 3,
        settings: TopicConfig::default(),
        placement,
    };
    assert_eq!(refused(&mut state, create), error);
}

/// Names, partition counts, placements and settings are all validated.
#[test]
fn bad_topics_are_refused_without_change() {
    let mut state = with_brokers(3);
    let create = |name: &str, placement: Vec<Vec<u32>>, rf: u32| MetadataCommand::CreateTopic {
        name: name.into(),
        replication_factor: rf,
        settings: TopicConfig::default(),
        placement,
    };
    assert!(matches!(
        refused(&mut state, create("bad name", vec![vec![1]], 1)),
        MetadataError::InvalidTopicName(_)
    ));
    assert!(matches!(
        refused(&mut state, create("__internal", vec![vec![1]], 1)),
        MetadataError::InvalidTopicName(_)
    ));
    assert!(matches!(
        refused(&mut state, create("t", vec![], 1)),
        MetadataError::PartitionCount {
            partitions: 0,
            max: 10_000
        }
    ));
    assert!(matches!(
        refused(&mut state, create("t", vec![vec![1]; 10_001], 1)),
        MetadataError::PartitionCount { .. }
    ));
    assert_eq!(
        refused(&mut state, create("t", vec![vec![]], 0)),
        MetadataError::ReplicationFactorZero
    );
    assert!(matches!(
        refused(&mut state, create("t", vec![vec![1, 1]], 2)),
        MetadataError::InvalidPlacement(_)
    ));
    assert!(matches!(
        refused(&mut state, create("t", vec![vec![1, 2], vec![1]], 2)),
        MetadataError::InvalidPlacement(_)
    ));
    assert_eq!(
        refused(&mut state, create("t", vec![vec![9]], 1)),
        MetadataError::UnknownBroker(9)
    );
    let small_segments = MetadataCommand::CreateTopic {
        name: "t".into(),
        replication_factor: 1,
        settings: TopicConfig {
            segment_bytes: Some(10),
            ..TopicConfig::default()
        },
        placement: vec![vec![1]],
    };
    assert!(matches!(
        refused(&mut state, small_segments),
        MetadataError::InvalidSettings(_)
    ));
    state.apply(&create("t", vec![vec![1]], 1)).unwrap();
    assert_eq!(
        refused(&mut state, create("t", vec![vec![2]], 1)),
        MetadataError::TopicExists("t".into())
    );
    assert_eq!(
        refused(
            &mut state,
            MetadataCommand::DeleteTopic { name: "u".into() }
        ),
        MetadataError::UnknownTopic("u".into())
    );
}

/// Removed brokers stay removed and take no replicas; draining ones keep
/// theirs but take no new ones.
#[test]
fn broker_lifecycle() {
    let mut state = with_brokers(3);
    state
        .apply(&MetadataCommand::CreateTopic {
            name: "t".into(),
            replication_factor: 2,
            settings: TopicConfig::default(),
            placement: vec![vec![1, 2]],
        })
        .unwrap();
    state
        .apply(&MetadataCommand::DrainBroker { node_id: 2 })
        .unwrap();
    assert_eq!(state.brokers[&2].state, BrokerState::Draining);
    // A draining replica may stay in a reassignment, not be added.
    let keep = MetadataCommand::ReassignPartition {
        topic: "t".into(),
        partition: 0,
        replicas: vec![2, 3],
    };
    assert_eq!(
        state.apply(&keep).unwrap(),
        MetadataOutcome::PartitionReassigned {
            topic_id: TopicId(1),
            epoch: 1
        }
    );
    let add = MetadataCommand::ReassignPartition {
        topic: "t".into(),
        partition: 0,
        replicas: vec![1, 3],
    };
    state.apply(&add).unwrap();
    let back = MetadataCommand::ReassignPartition {
        topic: "t".into(),
        partition: 0,
        replicas: vec![1, 2],
    };
    assert_eq!(refused(&mut state, back), MetadataError::BrokerNotActive(2));
    state
        .apply(&MetadataCommand::RemoveBroker { node_id: 3 })
        .unwrap();
    assert_eq!(
        refused(&mut state, register(3)),
        MetadataError::BrokerRemoved(3)
    );
    assert_eq!(
        refused(&mut state, MetadataCommand::RemoveBroker { node_id: 3 }),
        MetadataError::BrokerRemoved(3)
    );
    assert_eq!(
        refused(&mut state, MetadataCommand::DrainBroker { node_id: 7 }),
        MetadataError::UnknownBroker(7)
    );
    let missing = MetadataCommand::ReassignPartition {
        topic: "t".into(),
        partition: 1,
        replicas: vec![1],
    };
    assert!(matches!(
        refused(&mut state, missing),
        MetadataError::UnknownPartition { partitions: 1, .. }
    ));
    // Re-registering an active broker updates its addresses only.
    state.apply(&register(1)).unwrap();
    assert_eq!(state.brokers[&1].state, BrokerState::Active);
}

/// Producer-id blocks are disjoint and bounded; the cluster id is set once.
#[test]
fn producer_ids_and_cluster_id() {
    let mut state = MetadataState::default();
    let first = state
        .apply(&MetadataCommand::AllocateProducerIds { count: 1000 })
        .unwrap();
    let second = state
        .apply(&MetadataCommand::AllocateProducerIds { count: 5 })
        .unwrap();
    assert_eq!(
        first,
        MetadataOutcome::ProducerIds {
            first: 0,
            count: 1000
        }
    );
    assert_eq!(
        second,
        MetadataOutcome::ProducerIds {
            first: 1000,
            count: 5
        }
    );
    assert!(matches!(
        refused(
            &mut state,
            MetadataCommand::AllocateProducerIds { count: 0 }
        ),
        MetadataError::ProducerIdCount { .. }
    ));
    state
        .apply(&MetadataCommand::InitCluster {
            cluster_id: "city-a".into(),
        })
        .unwrap();
    state
        .apply(&MetadataCommand::InitCluster {
            cluster_id: "city-a".into(),
        })
        .unwrap();
    assert!(matches!(
        refused(
            &mut state,
            MetadataCommand::InitCluster {
                cluster_id: "city-b".into()
            }
        ),
        MetadataError::ClusterIdMismatch { .. }
    ));
}

/// The whole state survives its snapshot encoding; format 1 (before
/// `log_next_offset`) still decodes, a future format does not.
#[test]
fn state_round_trips() {
    let mut state = with_brokers(3);
    let create = state
        .plan_create_topic("orders", 4, 2, TopicConfig::default())
        .unwrap();
    state.apply(&create).unwrap();
    state
        .apply(&MetadataCommand::AllocateProducerIds { count: 3 })
        .unwrap();
    state.log_next_offset = Some(12);
    let bytes = state.encode();
    assert_eq!(MetadataState::decode(&bytes).unwrap(), state);
    let json = String::from_utf8(bytes).unwrap();
    let version = format!("\"v\":{STATE_FORMAT}");
    let v1 = json
        .replacen(&version, "\"v\":1", 1)
        .replacen(",\"log_next_offset\":12", "", 1);
    let old = MetadataState::decode(v1.as_bytes()).unwrap();
    assert_eq!(old.log_next_offset, None);
    assert_eq!(old.topics, state.topics);
    let future = json.replacen(&version, "\"v\":9", 1);
    assert!(MetadataState::decode(future.as_bytes()).is_err());
}

/// Partition groups get `topic_id << 32 | partition`; 0 stays the metadata group.
#[test]
fn partition_group_ids() {
    assert_eq!(TopicId(1).partition_group(0), 1 << 32);
    assert_eq!(TopicId(2).partition_group(7), (2 << 32) | 7);
}

/// A delete topic's settings keep their old JSON (so older nodes read
/// them), old JSON reads as a delete topic, and compaction settings round
/// trip (decision 0017 §9).
#[test]
fn topic_config_json_is_compatible() {
    let delete = serde_json::to_string(&TopicConfig::default()).unwrap();
    assert_eq!(
        delete,
        r#"{"retention_ms":null,"retention_bytes":null,"segment_bytes":null}"#
    );
    let old: TopicConfig = serde_json::from_str(&delete).unwrap();
    assert_eq!(old, TopicConfig::default());
    let compacted = TopicConfig {
        cleanup: citystream_broker::Cleanup::CompactDelete,
        tombstone_retention_ms: Some(5),
        ..TopicConfig::default()
    };
    let json = serde_json::to_string(&compacted).unwrap();
    assert!(json.contains(r#""cleanup":"compact,delete""#), "{json}");
    assert_eq!(
        serde_json::from_str::<TopicConfig>(&json).unwrap(),
        compacted
    );
}

/// Invalid compaction settings are refused when planned, naming the setting.
#[test]
fn invalid_compaction_settings_are_refused() {
    let state = with_brokers(1);
    let zero = TopicConfig {
        cleanup: citystream_broker::Cleanup::Compact,
        tombstone_retention_ms: Some(0),
        ..TopicConfig::default()
    };
    let error = state.plan_create_topic("t", 1, 1, zero).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid topic settings: tombstone_retention_ms must be greater than 0"
    );
}
