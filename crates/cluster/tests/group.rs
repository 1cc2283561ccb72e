//! A 3-node metadata group in one process (no sockets): brokers register
//! and a topic is created through the leader, every replica publishes the
//! same state, a new leader deletes the topic after a failover, and
//! restarted replicas rebuild the state from their log, or from a snapshot
//! and their log up to the committed id they saved.

mod support;

use std::collections::BTreeSet;

use citystream_cluster::{
    BrokerAddresses, MetadataCommand, MetadataOutcome, MetadataState, TopicConfig, TopicId,
};
use openraft::async_runtime::WatchReceiver;
use support::group::{Group, WAIT};

const NODES: [u64; 3] = [1, 2, 3];

fn register(id: u32) -> MetadataCommand {
    MetadataCommand::RegisterBroker {
        node_id: id,
        addresses: BrokerAddresses {
            native: format!("node-{id}:9092"),
            gossip: format!("node-{id}:7946"),
            peer: format!("node-{id}:9093"),
        },
        rack: None,
    }
}

/// Three partitions on three brokers with RF 3: every replica list is a
/// permutation of the brokers and each broker is preferred leader once.
fn assert_valid_placement(state: &MetadataState) {
    let topic = &state.topics["orders"];
    assert_eq!(topic.topic_id, TopicId(1));
    assert_eq!(topic.partitions.len(), 3);
    let mut leaders = BTreeSet::new();
    for assignment in &topic.partitions {
        let replicas: BTreeSet<u32> = assignment.replicas.iter().copied().collect();
        assert_eq!(replicas, BTreeSet::from([1, 2, 3]), "{assignment:?}");
        assert_eq!(assignment.epoch, 0);
        leaders.insert(assignment.replicas[0]);
    }
    assert_eq!(leaders.len(), 3, "preferred leaders spread: {topic:?}");
}

/// Waits until `node` has a snapshot covering at least `index`.
async fn wait_snapshot(group: &Group, node: u64, index: u64) {
    let raft = &group.nodes[&node].raft;
    let done = tokio::time::timeout(WAIT, async {
        loop {
            let snapshot = raft.metrics().borrow_watched().snapshot;
            if snapshot.is_some_and(|s| s.index >= index) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
    done.await.expect("snapshot in time");
}

/// The whole life of the group described in the file's doc.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metadata_group_replicates_fails_over_and_restarts() {
    let mut group = Group::start(&NODES, 0x3e7a).await;
    let init = MetadataCommand::InitCluster {
        cluster_id: "city-a".into(),
    };
    assert_eq!(
        group.propose(&init).await,
        Ok(MetadataOutcome::ClusterInitialized)
    );
    for id in 1..=3 {
        let outcome = group.propose(&register(id)).await;
        assert_eq!(
            outcome,
            Ok(MetadataOutcome::BrokerRegistered { node_id: id })
        );
    }
    // The leader plans from its own state, as the server will.
    let leader = group.leader().await;
    let plan = group.nodes[&leader]
        .sm
        .state()
        .plan_create_topic("orders", 3, 3, TopicConfig::default())
        .expect("valid topic");
    let created = group.propose(&plan).await;
    assert_eq!(
        created,
        Ok(MetadataOutcome::TopicCreated {
            topic_id: TopicId(1)
        })
    );
    let state = group.converged().await;
    assert_valid_placement(&state);
    assert_eq!(state.cluster_id.as_deref(), Some("city-a"));

    // A follower snapshots now (the topic exists in its snapshot).
    let follower = *NODES.iter().find(|&&id| id != leader).unwrap();
    let applied = group.nodes[&follower].sm.applied().unwrap().index;
    group.nodes[&follower]
        .raft
        .trigger()
        .snapshot()
        .await
        .unwrap();
    wait_snapshot(&group, follower, applied).await;

    // Failover: the old leader goes, the new one deletes the topic.
    group.kill(leader).await;
    let new_leader = group.leader().await;
    assert_ne!(new_leader, leader);
    let delete = MetadataCommand::DeleteTopic {
        name: "orders".into(),
    };
    assert_eq!(
        group.propose(&delete).await,
        Ok(MetadataOutcome::TopicDeleted {
            topic_id: TopicId(1)
        })
    );
    let after_delete = group.converged().await;
    assert!(after_delete.topics.is_empty());
    assert_eq!(after_delete.next_topic_id, 2, "topic ids are never reused");

    // The old leader restarts from its log alone and catches up.
    group.restart(leader).await;
    assert_eq!(group.converged().await, after_delete);

    // The follower restarts from its snapshot (taken while the topic
    // existed) and re-applies its log up to the committed id it saved, so
    // before it hears from anyone it is back where it was: no topic.
    group.kill(follower).await;
    let rebuilt = group.restart(follower).await;
    assert_eq!(*rebuilt, after_delete, "re-applied past the snapshot");
    wait_snapshot(&group, follower, applied).await;
    let ids = MetadataCommand::AllocateProducerIds { count: 1000 };
    assert_eq!(
        group.propose(&ids).await,
        Ok(MetadataOutcome::ProducerIds {
            first: 0,
            count: 1000
        })
    );
    let last = group.converged().await;
    assert!(last.topics.is_empty());
    assert_eq!(last.next_producer_id, 1000);
    assert_eq!(last.brokers.len(), 3);
}

/// A replica that was down while the leader snapshotted and purged its log
/// catches up from the snapshot, then keeps applying later entries like
/// the others (its log continues right after the snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lagging_replica_installs_a_snapshot_and_keeps_applying() {
    let mut group = Group::start(&NODES, 0x1a6e).await;
    for id in 1..=2 {
        group.propose(&register(id)).await.expect("registered");
    }
    group.converged().await;
    let leader = group.leader().await;
    let lagging = *NODES.iter().find(|&&id| id != leader).unwrap();
    group.kill(lagging).await;

    for id in 3..=5 {
        group.propose(&register(id)).await.expect("registered");
    }
    let leader = group.leader().await;
    let raft = &group.nodes[&leader].raft;
    raft.trigger().snapshot().await.expect("leader runs");
    let wait = raft.wait(Some(WAIT));
    let snapshotted = wait.metrics(
        |metrics| metrics.snapshot.is_some() && metrics.snapshot == metrics.last_applied,
        "snapshot of everything applied",
    );
    let index = snapshotted
        .await
        .expect("snapshot in time")
        .snapshot
        .unwrap()
        .index;
    raft.trigger().purge_log(index).await.expect("leader runs");
    let purged = wait.metrics(
        |metrics| metrics.purged.is_some_and(|purged| purged.index >= index),
        "log purged up to the snapshot",
    );
    purged.await.expect("purged in time");

    group.restart(lagging).await;
    wait_snapshot(&group, lagging, index).await;
    let drain = MetadataCommand::DrainBroker { node_id: 5 };
    assert_eq!(
        group.propose(&drain).await,
        Ok(MetadataOutcome::BrokerDraining { node_id: 5 })
    );
    group.propose(&register(6)).await.expect("registered");
    let last = group.converged().await;
    assert_eq!(last.brokers.len(), 6);
    assert_eq!(*group.nodes[&lagging].sm.state(), last);
    let applied = group.nodes[&lagging].sm.applied().unwrap().index;
    assert!(applied > index, "applied {applied} after snapshot {index}");
}
