//! Placement properties (proptest, fixed case counts): distinct replicas,
//! RF honored, even spread on an empty cluster, rack diversity, complete
//! replacement of a removed broker, and rebalance that converges without
//! ever increasing imbalance.

use std::collections::{BTreeMap, BTreeSet};

use citystream_cluster::{
    BrokerAddresses, Candidate, MetadataCommand, MetadataState, TopicConfig, place_topic,
    rebalance, replace_broker,
};
use proptest::prelude::*;

fn candidates(count: u32, racks: u32) -> Vec<Candidate> {
    (1..=count)
        .map(|id| Candidate {
            node_id: id,
            rack: (racks > 0).then(|| format!("rack-{}", id % racks)),
        })
        .collect()
}

fn register(state: &mut MetadataState, id: u32) {
    let addresses = BrokerAddresses {
        native: format!("b{id}:9092"),
        gossip: format!("b{id}:7946"),
        peer: format!("b{id}:9093"),
    };
    let command = MetadataCommand::RegisterBroker {
        node_id: id,
        addresses,
        rack: None,
    };
    state.apply(&command).unwrap();
}

/// A cluster of `brokers` brokers with `topics` topics planned on it.
fn cluster(brokers: u32, topics: &[(u32, u32)]) -> MetadataState {
    let mut state = MetadataState::default();
    for id in 1..=brokers {
        register(&mut state, id);
    }
    for (i, &(partitions, rf)) in topics.iter().enumerate() {
        let rf = rf.min(brokers);
        let plan = state
            .plan_create_topic(&format!("t{i}"), partitions, rf, TopicConfig::default())
            .unwrap();
        state.apply(&plan).unwrap();
    }
    state
}

fn spread(load: impl Iterator<Item = u32>) -> u32 {
    let load: Vec<u32> = load.collect();
    load.iter().max().unwrap() - load.iter().min().unwrap()
}

fn active_spread(state: &MetadataState) -> u32 {
    let active: BTreeSet<u32> = state.active_brokers().iter().map(|b| b.node_id).collect();
    spread(
        state
            .replica_load()
            .into_iter()
            .filter(|(id, _)| active.contains(id))
            .map(|(_, n)| n),
    )
}

fn check_placement(placement: &[Vec<u32>], partitions: u32, rf: u32) {
    assert_eq!(placement.len(), partitions as usize);
    for replicas in placement {
        assert_eq!(replicas.len(), rf as usize);
        let distinct: BTreeSet<_> = replicas.iter().collect();
        assert_eq!(distinct.len(), replicas.len(), "{replicas:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// On an empty cluster every broker ends within one replica and one
    /// preferred leadership of every other.
    #[test]
    fn empty_cluster_is_even(brokers in 1u32..12, partitions in 1u32..64, rf in 1u32..5, start in 0u64..100) {
        let rf = rf.min(brokers);
        let placement = place_topic(&candidates(brokers, 0), partitions, rf, start, &BTreeMap::new());
        check_placement(&placement, partitions, rf);
        let mut load: BTreeMap<u32, u32> = (1..=brokers).map(|id| (id, 0)).collect();
        let mut leaders = load.clone();
        for replicas in &placement {
            *leaders.get_mut(&replicas[0]).unwrap() += 1;
            for id in replicas {
                *load.get_mut(id).unwrap() += 1;
            }
        }
        prop_assert!(spread(load.values().copied()) <= 1, "replicas {load:?}");
        prop_assert!(spread(leaders.values().copied()) <= 1, "leaders {leaders:?}");
    }

    /// With at least RF racks, each partition's replicas are on distinct racks.
    #[test]
    fn racks_are_distinct(racks in 2u32..5, per_rack in 1u32..4, partitions in 1u32..32, rf in 1u32..5, start in 0u64..50) {
        let rf = rf.min(racks);
        let brokers = candidates(racks * per_rack, racks);
        let placement = place_topic(&brokers, partitions, rf, start, &BTreeMap::new());
        check_placement(&placement, partitions, rf);
        for replicas in &placement {
            let used: BTreeSet<u32> = replicas.iter().map(|id| id % racks).collect();
            prop_assert_eq!(used.len(), replicas.len(), "{:?}", replicas);
        }
    }

    /// Existing load is honored: a new broker gets the new replicas first.
    #[test]
    fn new_topics_fill_new_brokers(partitions in 1u32..20) {
        let mut state = cluster(3, &[(12, 1)]);
        register(&mut state, 4);
        let plan = state.plan_create_topic("new", partitions, 1, TopicConfig::default()).unwrap();
        state.apply(&plan).unwrap();
        let load = state.replica_load();
        if partitions <= 4 {
            prop_assert_eq!(load[&4], partitions);
        } else {
            prop_assert!(spread(load.values().copied()) <= 1, "{:?}", load);
        }
    }

    /// After remove + replace, the removed broker holds no replica, every
    /// partition keeps its replica count, and every reassignment applies.
    #[test]
    fn replace_removes_every_replica(brokers in 2u32..8, topics in prop::collection::vec((1u32..10, 1u32..4), 1..4), victim in 1u32..8) {
        let mut state = cluster(brokers, &topics);
        let victim = 1 + (victim - 1) % brokers;
        state.apply(&MetadataCommand::RemoveBroker { node_id: victim }).unwrap();
        for reassign in replace_broker(&state, victim) {
            state.apply(&reassign.command()).unwrap();
        }
        prop_assert_eq!(state.replica_load()[&victim], 0);
        for topic in state.topics.values() {
            for p in &topic.partitions {
                let wanted = topic.replication_factor.min(brokers - 1) as usize;
                prop_assert_eq!(p.replicas.len(), wanted);
            }
        }
    }

    /// Adding brokers then rebalancing never increases the spread, ends
    /// within one, and a second rebalance has nothing to do.
    #[test]
    fn rebalance_converges(brokers in 1u32..6, added in 1u32..4, topics in prop::collection::vec((1u32..16, 1u32..4), 1..4)) {
        let mut state = cluster(brokers, &topics);
        for id in brokers + 1..=brokers + added {
            register(&mut state, id);
        }
        let before = active_spread(&state);
        let total_before: u32 = state.replica_load().values().sum();
        let moves = rebalance(&state);
        for reassign in &moves {
            state.apply(&reassign.command()).unwrap();
        }
        let after = active_spread(&state);
        prop_assert!(after <= before);
        prop_assert!(after <= 1, "spread {after} after {} moves", moves.len());
        prop_assert_eq!(state.replica_load().values().sum::<u32>(), total_before);
        prop_assert!(rebalance(&state).is_empty());
        for topic in state.topics.values() {
            for p in &topic.partitions {
                let distinct: BTreeSet<_> = p.replicas.iter().collect();
                prop_assert_eq!(distinct.len(), p.replicas.len());
            }
        }
    }
}
