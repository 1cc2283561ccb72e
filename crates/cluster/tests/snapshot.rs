//! A snapshot installed on a replica (as a leader sends one to a lagging
//! follower) is published at once, written to `sm-state` so the replica
//! restarts from it, and restarts the metadata log right after it; building
//! a snapshot gives back the same.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use citystream_cluster::{
    MetadataCommand, MetadataState, MetadataStateMachine, TopicConfig, sm_state,
};
use citystream_log::{LogConfig, MemoryStorage, Offset, PartitionLog, Storage, Term};
use citystream_raft::{PeerAddr, SharedLog, Tc};
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::SnapshotMetaOf;
use openraft::{LogId, Membership, RaftSnapshotBuilder, SnapshotMeta, StoredMembership};
use parking_lot::RwLock;

/// The snapshot's last entry: openraft index 40 (stored 41) in term 3,
/// whose batch ends the log at offset 41.
const LAST_INDEX: u64 = 40;
const LAST_TERM: u64 = 3;
const NEXT_OFFSET: u64 = 41;

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
    state.log_next_offset = Some(NEXT_OFFSET);
    state
}

fn sample_meta() -> SnapshotMetaOf<Tc> {
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
    SnapshotMeta {
        last_log_id: Some(LogId::new_term_index(LAST_TERM, LAST_INDEX)),
        last_membership: StoredMembership::new(Some(LogId::new_term_index(1, 0)), membership),
    }
}

/// The metadata log on `storage`, opened (again) from what it holds.
fn open_log(storage: &Arc<dyn Storage>) -> SharedLog {
    let log = PartitionLog::open_with(storage.clone(), LogConfig::default()).unwrap();
    Arc::new(RwLock::new(log))
}

/// Where `log` continues: next offset, last term, last Raft index.
fn log_end(log: &SharedLog) -> (Offset, Term, u64) {
    let log = log.read();
    (log.next_offset(), log.last_term(), log.last_raft_index())
}

/// Installed, published, persisted, rebuilt identically; the log restarts
/// right after the snapshot's last entry, so the next entry continues it.
#[tokio::test]
async fn installed_snapshot_survives_restart() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let log = open_log(&storage);
    let mut sm = MetadataStateMachine::open(storage.clone(), log.clone()).unwrap();
    let meta = sample_meta();
    let state = sample_state();
    let updates = sm.subscribe();
    sm.install_snapshot(&meta, state.clone()).await.unwrap();
    assert!(updates.has_changed().unwrap());
    assert_eq!(*sm.state(), state);
    let after = (Offset(NEXT_OFFSET), Term(LAST_TERM), LAST_INDEX + 1);
    assert_eq!(log_end(&log), after);

    let log = open_log(&storage);
    assert_eq!(log_end(&log), after, "the reset is durable");
    let mut reopened = MetadataStateMachine::open(storage, log.clone()).unwrap();
    assert_eq!(log_end(&log), after, "a matching log is kept");
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

/// A crash after `sm-state` was written but before the log was restarted:
/// opening restarts the log after the snapshot.
#[tokio::test]
async fn open_restarts_a_log_behind_its_snapshot() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    sm_state::write(&*storage, &sample_meta(), &sample_state()).unwrap();
    let log = open_log(&storage);
    MetadataStateMachine::open(storage, log.clone()).unwrap();
    let after = (Offset(NEXT_OFFSET), Term(LAST_TERM), LAST_INDEX + 1);
    assert_eq!(log_end(&log), after);
}

/// A format-1 snapshot (no `log_next_offset`) whose point this log does
/// not hold cannot be installed: refused clearly, and nothing is kept.
#[tokio::test]
async fn snapshot_without_log_offset_is_refused() {
    let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    let log = open_log(&storage);
    let mut sm = MetadataStateMachine::open(storage.clone(), log.clone()).unwrap();
    let state = MetadataState {
        log_next_offset: None,
        ..sample_state()
    };
    let error = sm
        .install_snapshot(&sample_meta(), state)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("format 1"), "{error}");
    assert_eq!(sm_state::read(&*storage).unwrap(), None);
    assert_eq!(log_end(&log), (Offset(0), Term(0), 0));
}
