//! The reconciler: makes the partition groups this node runs match the
//! placement in the metadata (0005 §3). For every partition whose replicas
//! name this node and that has no local group, it opens the partition log
//! (`DATA/raft/<topic id>-<partition>`), starts its Raft group and, for a
//! placement never reassigned (epoch 0), initializes it with exactly the
//! replicas the metadata lists — every replica does the same with the same
//! committed set, which openraft documents as safe. Groups of topics that
//! are gone are stopped and their directories removed.
//!
//! Each pass also drives membership changes of the groups this node leads
//! (`drive_memberships`) and hands leaderships back to preferred replicas
//! (`preferred`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use citystream_broker::{TopicSettings, log_config};
use citystream_cluster::{MetadataState, PartitionAssignment, TopicMeta};
use citystream_log::PartitionLog;
use citystream_peer::GroupId;
use citystream_raft::{
    PartitionRaftStorage, PartitionStateMachine, PeerAddr, SharedLog, initialize_members,
    partition_config, seeded,
};
use openraft::async_runtime::WatchReceiver;
use openraft::{ChangeMembers, Raft};

use super::liveness::Liveness;
use super::replica::{Replica, ReplicaId};

/// Period of the reconciler's own pass (membership changes to drive).
const RECONCILE_INTERVAL: Duration = Duration::from_millis(500);
/// How long a replica no longer placed on this node keeps running while
/// its group still counts it as a voter.
const DEPLACED_GRACE: Duration = Duration::from_secs(60);
use super::{ClusterNode, open_storage, rand_seed};

impl ClusterNode {
    /// Reconciles on every metadata change, and every
    /// [`RECONCILE_INTERVAL`] (leaderships move without metadata changes),
    /// until the node stops.
    pub(super) async fn reconcile_loop(self: Arc<Self>) {
        let mut state = self.groups.meta_sm.subscribe();
        let mut tick = tokio::time::interval(RECONCILE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let current = state.borrow_and_update().clone();
            self.reconcile(&current).await;
            self.drive_memberships(&current);
            self.prefer_leaders(&current);
            self.observe_replicated_clocks();
            tokio::select! {
                () = self.stop.cancelled() => return,
                changed = state.changed() => if changed.is_err() { return },
                _ = tick.tick() => {}
            }
        }
    }

    /// Moves this node's HLC past the newest record of every replica it
    /// holds, so records a follower later stamps as leader order after
    /// what it replicated (within one reconcile period).
    fn observe_replicated_clocks(&self) {
        let newest = self
            .groups
            .replicas
            .read()
            .values()
            .filter_map(|replica| replica.log().read().last_batch())
            .map(|header| header.last_hlc())
            .max();
        if let Some(newest) = newest {
            self.broker.clock().lock().observe(newest);
        }
    }

    /// In each group this node leads whose voters differ from the placement,
    /// adds the new replicas as learners (waiting until they caught up) and
    /// then makes the placement the voter set (joint consensus). One change
    /// per group at a time; a new leader picks up an unfinished one.
    fn drive_memberships(&self, state: &MetadataState) {
        let replicas: Vec<Arc<Replica>> = self.groups.replicas.read().values().cloned().collect();
        for replica in replicas {
            let Some(topic) = state.topics.get(&replica.id.topic) else {
                continue;
            };
            let Some(assignment) = topic.partitions.get(replica.id.partition as usize) else {
                continue;
            };
            if replica.leader_term().is_err() {
                continue;
            }
            let wanted: BTreeSet<u64> = assignment
                .replicas
                .iter()
                .map(|id| u64::from(*id))
                .collect();
            let voters: BTreeSet<u64> = {
                let metrics = replica.raft.metrics().borrow_watched().clone();
                metrics.membership_config.membership().voter_ids().collect()
            };
            if wanted == voters || !replica.begin_membership_change() {
                continue;
            }
            let added: BTreeMap<u64, PeerAddr> = members(state, &assignment.replicas)
                .into_iter()
                .filter(|(id, _)| !voters.contains(id))
                .collect();
            let task_replica = Arc::clone(&replica);
            self.tasks.spawn(async move {
                let replica = task_replica;
                let (topic, partition) = (replica.id.topic.clone(), replica.id.partition);
                tracing::info!(%topic, partition, ?voters, ?wanted, "changing replicas");
                let mut result = replica.renew_lease().await.map_err(|e| e.to_string());
                for (id, node) in added.into_iter().filter(|_| result.is_ok()) {
                    if let Err(error) = replica.raft.add_learner(id, node, true).await {
                        result = Err(error.to_string());
                        break;
                    }
                }
                if result.is_ok() {
                    let change = ChangeMembers::ReplaceAllVoters(wanted.clone());
                    result = replica
                        .raft
                        .change_membership(change, false)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string());
                }
                match result {
                    Ok(()) => tracing::info!(%topic, partition, ?wanted, "replicas changed"),
                    Err(error) => tracing::warn!(%topic, partition, %error, "replica change failed; retrying later"),
                }
                replica.end_membership_change();
            });
        }
    }

    async fn reconcile(&self, state: &MetadataState) {
        let me = self.config.node_id;
        let mut wanted = HashSet::new();
        for (name, topic) in &state.topics {
            for (partition, assignment) in topic.partitions.iter().enumerate() {
                let partition = partition as u32;
                let group = topic.topic_id.partition_group(partition);
                if !assignment.replicas.contains(&me) {
                    if let Some(replica) = self.groups.replica(group) {
                        replica.mark_unplaced();
                    }
                    continue;
                }
                wanted.insert(group);
                if self.groups.replica(group).is_some() {
                    continue;
                }
                match self
                    .open_replica(state, name, topic, partition, assignment)
                    .await
                {
                    Ok(replica) => {
                        tracing::info!(topic = %name, partition, group, "replica started");
                        self.groups.replicas.write().insert(group, replica);
                    }
                    Err(error) => {
                        tracing::error!(topic = %name, partition, %error, "replica did not start");
                    }
                }
            }
        }
        let gone: Vec<(u64, Arc<Replica>)> = {
            let mut replicas = self.groups.replicas.write();
            let ids: Vec<u64> = replicas
                .iter()
                .filter(|(g, r)| !wanted.contains(g) && self.may_stop(state, r))
                .map(|(g, _)| *g)
                .collect();
            ids.into_iter()
                .filter_map(|g| replicas.remove(&g).map(|r| (g, r)))
                .collect()
        };
        for (group, replica) in gone {
            let _ = replica.raft.shutdown().await;
            tracing::info!(topic = %replica.id.topic, partition = replica.id.partition, group, "replica stopped: no longer placed here");
            if let Some(dir) = self.replica_dir(&replica.id)
                && let Err(error) = std::fs::remove_dir_all(&dir)
            {
                tracing::warn!(dir = %dir.display(), %error, "could not remove a replica's directory");
            }
        }
    }

    /// Whether a replica no longer placed here may stop: at once if its
    /// topic is gone; otherwise once its group's membership no longer names
    /// this node (the leader moved it out, so the data lives on elsewhere),
    /// or [`DEPLACED_GRACE`] after it was first seen unplaced.
    fn may_stop(&self, state: &MetadataState, replica: &Replica) -> bool {
        if !state.topics.contains_key(&replica.id.topic) {
            return true;
        }
        let me = u64::from(self.config.node_id);
        let metrics = replica.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        if !membership.voter_ids().any(|id| id == me) {
            return true;
        }
        replica.unplaced_for() >= DEPLACED_GRACE
    }

    fn replica_dir(&self, id: &ReplicaId) -> Option<std::path::PathBuf> {
        self.data_dir
            .as_ref()
            .map(|d| d.join(format!("{}-{}", id.topic_id, id.partition)))
    }

    async fn open_replica(
        &self,
        state: &MetadataState,
        name: &str,
        topic: &TopicMeta,
        partition: u32,
        assignment: &PartitionAssignment,
    ) -> std::io::Result<Arc<Replica>> {
        let id = ReplicaId {
            topic: name.to_owned(),
            topic_id: topic.topic_id.0,
            partition,
        };
        let group = topic.topic_id.partition_group(partition);
        let storage = open_storage(self.replica_dir(&id))?;
        // Retention is applied through snapshots (the node's retention
        // task), never by the log on its own.
        let settings = TopicSettings::from(&topic.settings);
        let log_config = log_config(name, &settings, &self.broker.config().log);
        let log = PartitionLog::open_with(Arc::clone(&storage), log_config.clone())
            .map_err(std::io::Error::other)?;
        if let Some(last) = log.last_batch() {
            self.broker.clock().lock().observe(last.last_hlc());
        }
        let log: SharedLog = Arc::new(parking_lot::RwLock::new(log));
        let mut raft_storage = PartitionRaftStorage::open(Arc::clone(&log), Arc::clone(&storage))?;
        if let Some(unsynced) = &self.unsynced {
            raft_storage = raft_storage.with_group_commit(Arc::clone(unsynced));
        }
        let sm = PartitionStateMachine::open(log, storage)?;
        // Elections are started by the node's election watch (liveness.rs).
        let mut raft_config = (*partition_config(self.config.timing, log_config.fsync)
            .map_err(std::io::Error::other)?)
        .clone();
        raft_config.enable_tick = false;
        let raft_config = Arc::new(raft_config);
        let node_id = u64::from(self.config.node_id);
        let factory = self.network.factory(GroupId(group));
        let (storage_for_raft, sm_for_raft) = (raft_storage.clone(), sm.clone());
        let raft = seeded(rand_seed(node_id ^ group), async move {
            Raft::new(node_id, raft_config, factory, storage_for_raft, sm_for_raft).await
        })
        .await
        .map_err(std::io::Error::other)?;
        if assignment.epoch == 0 {
            let members = members(state, &assignment.replicas);
            if let Err(error) = initialize_members(&raft, members).await {
                tracing::warn!(group, %error, "the partition group could not be initialized");
            }
        }
        let timing = self.config.timing;
        let election_range = (
            Duration::from_millis(timing.election_min_ms),
            Duration::from_millis(timing.election_max_ms),
        );
        Ok(Arc::new(Replica::new(
            id,
            group,
            raft,
            raft_storage,
            sm,
            self.broker.clock(),
            Duration::from_millis(timing.election_max_ms),
            Liveness::new(election_range, rand_seed(node_id ^ group)),
        )))
    }
}

/// The Raft members of a replica list, at their peer addresses.
fn members(state: &MetadataState, replicas: &[u32]) -> BTreeMap<u64, PeerAddr> {
    replicas
        .iter()
        .map(|id| {
            let peer = state
                .brokers
                .get(id)
                .map(|b| b.addresses.peer.clone())
                .unwrap_or_default();
            (u64::from(*id), PeerAddr { peer })
        })
        .collect()
}
