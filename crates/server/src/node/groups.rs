//! [`Groups`]: every Raft group this node runs (the metadata group and its
//! partition replicas), as the peer server finds them, plus the metadata
//! writes: committed locally when this node leads the metadata group,
//! forwarded to the leader over the peer link otherwise.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use citystream_cluster::{
    BrokerState, MetadataCommand, MetadataError, MetadataRaft, MetadataState, MetadataStateMachine,
    ReassignPartition, propose, rebalance, replace_broker,
};
use citystream_peer::{ErrorCode, GroupId, GroupRouter, PeerNetwork, RaftHandle, RemoteError};
use citystream_raft::PeerAddr;
use futures::future::BoxFuture;
use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver;
use parking_lot::RwLock;

use super::calls::{self, CallAnswer, Moved, NodeCall, Refusal};
use super::liveness::Liveness;
use super::replica::Replica;

/// Default replication factor cap (`min(3, active brokers)`).
pub(crate) const REPLICATION_DEFAULT_MAX: u32 = 3;
/// Voters of the metadata group that joining nodes fill up to; nodes that
/// join later are learners (they apply the metadata, do not vote).
pub(crate) const METADATA_VOTERS: usize = 3;
/// How long the metadata leader waits for a joining node to catch up
/// before telling it to ask again.
const JOIN_CATCH_UP: Duration = Duration::from_secs(10);
/// How long a node that forwards a join waits for the metadata leader.
const JOIN_FORWARD_PATIENCE: Duration = Duration::from_secs(5);

/// Serves a forwarded native request (an encoded frame), answering the
/// encoded response frame; installed by the server once it runs.
pub(crate) type NativeHandler = Arc<dyn Fn(Vec<u8>) -> BoxFuture<'static, Vec<u8>> + Send + Sync>;

pub(crate) struct Groups {
    pub meta_raft: MetadataRaft,
    pub meta_sm: MetadataStateMachine,
    /// The metadata group's contact with its leader: its tick is off too
    /// and the election watch turns it on (`liveness.rs`).
    pub meta_liveness: Liveness,
    pub replicas: RwLock<HashMap<u64, Arc<Replica>>>,
    pub native: std::sync::OnceLock<NativeHandler>,
    /// The peer links, for calls this registry forwards.
    pub network: PeerNetwork,
}

impl Groups {
    pub fn replica(&self, group: u64) -> Option<Arc<Replica>> {
        self.replicas.read().get(&group).cloned()
    }

    pub fn metadata(&self) -> Arc<MetadataState> {
        self.meta_sm.state()
    }

    /// Brokers to expect: the metadata group's voters (the static
    /// cluster) not removed, or the active brokers if more.
    pub fn expected_brokers(&self, state: &MetadataState) -> usize {
        let metrics = self.meta_raft.metrics().borrow_watched().clone();
        let voters = metrics
            .membership_config
            .membership()
            .voter_ids()
            .filter(|id| {
                let id = u32::try_from(*id).unwrap_or(u32::MAX);
                state
                    .brokers
                    .get(&id)
                    .is_none_or(|broker| broker.state != BrokerState::Removed)
            })
            .count();
        voters.max(state.active_brokers().len())
    }

    /// The metadata group's current term.
    pub fn metadata_term(&self) -> u64 {
        self.meta_raft.metrics().borrow_watched().current_term
    }

    /// The metadata leader's id and native address, if known.
    pub fn metadata_leader(&self) -> Option<(u64, String)> {
        let metrics = self.meta_raft.metrics().borrow_watched().clone();
        let leader = metrics.current_leader?;
        let node = metrics.membership_config.membership().get_node(&leader)?;
        Some((leader, node.peer.clone()))
    }

    /// Serves a forwarded call: only the metadata leader commits.
    pub async fn serve_call(&self, call: NodeCall) -> CallAnswer {
        let command = match call {
            NodeCall::Propose(command) => command,
            NodeCall::RemoveNode { node_id } => return self.remove_node(node_id).await,
            NodeCall::AddNode {
                node_id,
                address,
                cluster_id,
            } => return self.add_node(node_id, address, &cluster_id).await,
            NodeCall::Beat { leader, quiet } => {
                return CallAnswer::Beat(self.answer_beat(leader, &quiet));
            }
            NodeCall::Native(request) => {
                if self.meta_raft.as_leader().is_err() {
                    return CallAnswer::Unavailable("not the metadata leader any more".into());
                }
                return match self.native.get() {
                    Some(handler) => CallAnswer::Native(handler(request).await),
                    None => CallAnswer::Unavailable("this node is still starting".into()),
                };
            }
            NodeCall::Rebalance { dry_run } => {
                let state = self.metadata();
                let moves = rebalance(&state);
                return self.reassign(&state, moves, dry_run).await;
            }
            NodeCall::CreateTopic {
                name,
                partitions,
                replication_factor,
                settings,
            } => {
                let state = self.metadata();
                // The static members count as brokers to place on: right
                // after start they may not all have registered yet.
                let members = self.expected_brokers(&state);
                let replication = match replication_factor {
                    0 => default_replication(members),
                    given => given,
                };
                match state.plan_create_topic(&name, partitions, replication, settings) {
                    Ok(command) => command,
                    Err(MetadataError::ReplicationFactorTooHigh { active, .. })
                        if (active as usize) < members =>
                    {
                        return CallAnswer::Unavailable(format!(
                            "{active} of {members} brokers have registered so far"
                        ));
                    }
                    Err(refused) => return CallAnswer::Refused(refused.into()),
                }
            }
        };
        match propose(&self.meta_raft, &self.meta_sm, &command).await {
            Ok(Ok(outcome)) => CallAnswer::Applied(outcome),
            Ok(Err(refused)) => CallAnswer::Refused(refused.into()),
            Err(error) => CallAnswer::Unavailable(error.to_string()),
        }
    }

    /// Adds a broker to the metadata group (at the metadata leader): as a
    /// learner that has caught up, then as a voter while the group has
    /// fewer than [`METADATA_VOTERS`]. A member already is answered as one.
    async fn add_node(&self, node_id: u32, address: String, cluster_id: &str) -> CallAnswer {
        if self.meta_raft.as_leader().is_err() {
            return CallAnswer::Unavailable("not the metadata leader any more".into());
        }
        if let Err(refusal) = check_join(&self.metadata(), node_id, cluster_id) {
            return CallAnswer::Refused(refusal);
        }
        let id = u64::from(node_id);
        let (voters, known) = {
            let metrics = self.meta_raft.metrics();
            let metrics = metrics.borrow_watched();
            let membership = metrics.membership_config.membership();
            let voters: BTreeSet<u64> = membership.voter_ids().collect();
            (voters, membership.get_node(&id).is_some())
        };
        if voters.contains(&id) {
            return CallAnswer::Joined { voter: true };
        }
        if !known {
            tracing::info!(node_id, %address, "adding a node to the metadata group");
            let add = self
                .meta_raft
                .add_learner(id, PeerAddr { peer: address }, true);
            match tokio::time::timeout(JOIN_CATCH_UP, add).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return CallAnswer::Unavailable(error.to_string()),
                Err(_) => {
                    return CallAnswer::Unavailable(format!(
                        "node {node_id} is a learner but has not caught up within {JOIN_CATCH_UP:?}"
                    ));
                }
            }
        }
        if voters.len() >= METADATA_VOTERS {
            return CallAnswer::Joined { voter: false };
        }
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        match self.meta_raft.change_membership(change, false).await {
            Ok(_) => CallAnswer::Joined { voter: true },
            Err(error) => CallAnswer::Unavailable(error.to_string()),
        }
    }

    /// Takes a removed broker out of the metadata group; a voter is
    /// replaced by a learner on an active broker, if there is one.
    async fn leave_metadata_group(&self, node_id: u32) -> Result<(), String> {
        let id = u64::from(node_id);
        let state = self.metadata();
        let change = {
            let metrics = self.meta_raft.metrics();
            let metrics = metrics.borrow_watched();
            let membership = metrics.membership_config.membership();
            let mut voters: BTreeSet<u64> = membership.voter_ids().collect();
            if voters.remove(&id) {
                let spares = membership.learner_ids().filter(|learner| {
                    let broker = u32::try_from(*learner)
                        .ok()
                        .and_then(|l| state.brokers.get(&l));
                    broker.is_some_and(|b| b.state == BrokerState::Active)
                });
                let missing = METADATA_VOTERS.saturating_sub(voters.len());
                voters.extend(spares.take(missing));
                Some(ChangeMembers::ReplaceAllVoters(voters))
            } else if membership.get_node(&id).is_some() {
                Some(ChangeMembers::RemoveNodes(BTreeSet::from([id])))
            } else {
                None
            }
        };
        let Some(change) = change else {
            return Ok(());
        };
        tracing::info!(
            node_id,
            ?change,
            "taking a removed node out of the metadata group"
        );
        self.meta_raft
            .change_membership(change, false)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Marks `node_id` removed and moves each of its replicas elsewhere.
    async fn remove_node(&self, node_id: u32) -> CallAnswer {
        let state = self.metadata();
        match state.brokers.get(&node_id) {
            None => {
                return CallAnswer::Refused(Refusal::Invalid(format!("unknown broker {node_id}")));
            }
            Some(info) if info.state == BrokerState::Removed => {
                return CallAnswer::Refused(Refusal::Invalid(format!(
                    "broker {node_id} is already removed"
                )));
            }
            Some(_) => {}
        }
        let moves = replace_broker(&state, node_id);
        let remove = MetadataCommand::RemoveBroker { node_id };
        match propose(&self.meta_raft, &self.meta_sm, &remove).await {
            Ok(Ok(_)) => {}
            Ok(Err(refused)) => return CallAnswer::Refused(refused.into()),
            Err(error) => return CallAnswer::Unavailable(error.to_string()),
        }
        if let Err(error) = self.leave_metadata_group(node_id).await {
            return CallAnswer::Unavailable(format!(
                "node {node_id} is removed but still in the metadata group: {error}"
            ));
        }
        self.reassign(&state, moves, false).await
    }

    /// Commits each move (unless `dry_run`) and reports them. Each partition
    /// group's leader then changes its Raft membership to match
    /// (`reconcile`).
    async fn reassign(
        &self,
        before: &MetadataState,
        moves: Vec<ReassignPartition>,
        dry_run: bool,
    ) -> CallAnswer {
        let mut done = Vec::new();
        for change in moves {
            let from = before
                .topics
                .get(&change.topic)
                .and_then(|t| t.partitions.get(change.partition as usize))
                .map(|a| a.replicas.clone())
                .unwrap_or_default();
            if !dry_run {
                match propose(&self.meta_raft, &self.meta_sm, &change.command()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(refused)) => return CallAnswer::Refused(refused.into()),
                    Err(error) => return CallAnswer::Unavailable(error.to_string()),
                }
            }
            done.push(Moved {
                topic: change.topic,
                partition: change.partition,
                from,
                to: change.replicas,
            });
        }
        CallAnswer::Reassigned(done)
    }

    /// Commits `call` at the metadata leader, wherever it is, retrying
    /// while there is no leader, for at most `patience`.
    pub async fn metadata_write(
        &self,
        network: &PeerNetwork,
        call: NodeCall,
        patience: Duration,
    ) -> CallAnswer {
        let deadline = tokio::time::Instant::now() + patience;
        let mut last = String::from("no metadata leader yet");
        loop {
            let answer = match self.meta_raft.as_leader() {
                Ok(_) => Some(self.serve_call(call.clone()).await),
                Err(_) => match self.metadata_leader() {
                    Some((leader, address)) => {
                        let remaining =
                            deadline.saturating_duration_since(tokio::time::Instant::now());
                        let payload = Bytes::from(calls::encode(&call));
                        match network
                            .call(
                                leader,
                                &address,
                                payload,
                                remaining.max(Duration::from_millis(100)),
                            )
                            .await
                        {
                            Ok(bytes) => {
                                Some(calls::decode(&bytes).unwrap_or_else(CallAnswer::Unavailable))
                            }
                            Err(error) => {
                                last = format!("metadata leader {leader} at {address}: {error}");
                                None
                            }
                        }
                    }
                    None => None,
                },
            };
            match answer {
                Some(CallAnswer::Unavailable(reason)) => last = reason,
                Some(answer) => return answer,
                None => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return CallAnswer::Unavailable(last);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Why `node_id` of `cluster_id` may not join the cluster `state` describes.
fn check_join(state: &MetadataState, node_id: u32, cluster_id: &str) -> Result<(), Refusal> {
    if let Some(ours) = &state.cluster_id
        && ours != cluster_id
    {
        return Err(Refusal::Invalid(format!(
            "node {node_id} belongs to cluster {cluster_id:?}, this is cluster {ours:?}"
        )));
    }
    match state.brokers.get(&node_id) {
        Some(broker) if broker.state == BrokerState::Removed => Err(Refusal::Invalid(format!(
            "node {node_id} was removed from this cluster and its id is never reused; \
             start it with a new --node-id and an empty data dir"
        ))),
        _ => Ok(()),
    }
}

/// `min(3, brokers)`, at least 1.
pub(crate) fn default_replication(brokers: usize) -> u32 {
    let brokers = u32::try_from(brokers).unwrap_or(u32::MAX);
    brokers.clamp(1, REPLICATION_DEFAULT_MAX)
}

/// The peer server's view: which local Raft serves a group, and calls.
pub(crate) struct Router(pub Arc<Groups>);

impl GroupRouter for Router {
    fn raft(&self, group: GroupId) -> Option<RaftHandle> {
        if group == GroupId::METADATA {
            return Some(RaftHandle::Metadata(self.0.meta_raft.clone()));
        }
        self.0
            .replica(group.0)
            .map(|replica| RaftHandle::Partition(replica.raft.clone()))
    }

    fn append_entries_arrived(&self, group: GroupId) {
        if group == GroupId::METADATA {
            self.0.meta_liveness.appended();
        } else if let Some(replica) = self.0.replica(group.0) {
            replica.liveness.appended();
        }
    }

    fn call(&self, payload: Bytes) -> BoxFuture<'static, Result<Bytes, RemoteError>> {
        let groups = Arc::clone(&self.0);
        Box::pin(async move {
            let call: NodeCall = calls::decode(&payload).map_err(|message| RemoteError {
                code: ErrorCode::BadRequest,
                message,
            })?;
            let answer = match call {
                // A joining node knows any one node: take it to the leader.
                NodeCall::AddNode { .. } => {
                    let network = groups.network.clone();
                    groups
                        .metadata_write(&network, call, JOIN_FORWARD_PATIENCE)
                        .await
                }
                call => groups.serve_call(call).await,
            };
            Ok(Bytes::from(calls::encode(&answer)))
        })
    }
}

#[cfg(test)]
mod tests {
    use citystream_cluster::{BrokerAddresses, MetadataCommand};

    use super::*;

    fn state_with(commands: &[MetadataCommand]) -> MetadataState {
        let mut state = MetadataState::default();
        for command in commands {
            state.apply(command).expect("valid command");
        }
        state
    }

    fn register(node_id: u32) -> MetadataCommand {
        let address = format!("127.0.0.1:{}", 9400 + node_id);
        MetadataCommand::RegisterBroker {
            node_id,
            addresses: BrokerAddresses {
                native: address.clone(),
                gossip: address.clone(),
                peer: address,
            },
            rack: None,
        }
    }

    /// A node of another cluster, or with the id of a removed broker, is
    /// refused with the reason; a new id or a registered one may join.
    #[test]
    fn joins_are_checked() {
        let init = MetadataCommand::InitCluster {
            cluster_id: "city-a".into(),
        };
        let state = state_with(&[
            init,
            register(1),
            register(2),
            MetadataCommand::RemoveBroker { node_id: 2 },
        ]);
        assert!(check_join(&state, 4, "city-a").is_ok());
        assert!(check_join(&state, 1, "city-a").is_ok());
        let Err(Refusal::Invalid(other)) = check_join(&state, 4, "city-b") else {
            panic!("another cluster joined");
        };
        assert!(
            other.contains("\"city-b\", this is cluster \"city-a\""),
            "{other}"
        );
        let Err(Refusal::Invalid(removed)) = check_join(&state, 2, "city-a") else {
            panic!("a removed id joined");
        };
        assert!(removed.contains("never reused"), "{removed}");
    }
}
