//! A snapshot installed on a replica (as a leader sends one to a lagging
//! follower) is published at once and written to `sm-state`, so the
//! replica restarts from it; building a snapshot gives back the same.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use citystream_cluster::{MetadataCommand, MetadataState, MetadataStateMachine, TopicConfig};
use citystream_log::{MemoryStorage, Storage};
use citystream_raft::PeerAddr;
use openraft::storage::RaftStateMachine;
use openraft::{LogId, Membership, RaftSnapshotBuilder, SnapshotMeta, StoredMembership};

fn sample_state() -> MetadataState {
    let mut state = MetadataState::default();
    for id in 1..=2 {
        state
            .apply(&MetadataCommand::RegisterBroker {
                node_id: id,
                addresses: citystream_cluster::BrokerAddresses {
                    native: format!("b{id}:9092"),
                    gossip: format!("b{id}:7946"),
                    peer: format!("b{id}:9093"),
                },
                rack: Some(format!("r{id}")),
            })
            .unwrap();
    }
    let plan = state
        .plan_create_topic("t", 2, 2, TopicConfig::default())
        .unwrap();
    state.apply(&plan).unwrap();
    state
}

/// Installed, published, persisted, rebuilt identically.
#[tokio::test]
async fn installed_snapshot_survives_restart() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let mut sm = MetadataStateMachine::open(storage.clone()).unwrap();
    let nodes: BTreeMap<u64, PeerAddr> = (1..=2)
        .map(|id| {
            (
                id,
                PeerAddr {
                    peer: format!("b{id}:9093"),
                },
            )
        })
        .collect();
    let membership = Membership::new(vec![BTreeSet::from([1, 2])], nodes).unwrap();
    let meta = SnapshotMeta {
        last_log_id: Some(LogId::new_term_index(3, 40)),
        last_membership: StoredMembership::new(Some(LogId::new_term_index(1, 0)), membership),
    };
    let state = sample_state();
    let updates = sm.subscribe();
    sm.install_snapshot(&meta, state.clone()).await.unwrap();
    assert!(updates.has_changed().unwrap());
    assert_eq!(*sm.state(), state);

    let mut reopened = MetadataStateMachine::open(storage).unwrap();
    assert_eq!(*reopened.state(), state);
    assert_eq!(reopened.applied(), meta.last_log_id);
    let (applied, stored_membership) = reopened.applied_state().await.unwrap();
    assert_eq!(
        (applied, stored_membership),
        (meta.last_log_id, meta.last_membership.clone())
    );
    let current = reopened.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, meta);
    let built = reopened
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!((built.meta, built.snapshot), (meta, state));
}
