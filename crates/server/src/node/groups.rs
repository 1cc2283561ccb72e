//! [`Groups`]: every Raft group this node runs (the metadata group and its
//! partition replicas), as the peer server finds them, plus the metadata
//! writes: committed locally when this node leads the metadata group,
//! forwarded to the leader over the peer link otherwise.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use citystream_cluster::{
    BrokerState, MetadataCommand, MetadataError, MetadataRaft, MetadataState, MetadataStateMachine,
    ReassignPartition, propose, rebalance, replace_broker,
};
use citystream_peer::{ErrorCode, GroupId, GroupRouter, PeerNetwork, RaftHandle, RemoteError};
use futures::future::BoxFuture;
use openraft::async_runtime::WatchReceiver;
use parking_lot::RwLock;

use super::calls::{self, CallAnswer, Moved, NodeCall, Refusal};
use super::replica::Replica;

/// Default replication factor cap (`min(3, active brokers)`).
pub(crate) const REPLICATION_DEFAULT_MAX: u32 = 3;

/// Serves a forwarded native request (an encoded frame), answering the
/// encoded response frame; installed by the server once it runs.
pub(crate) type NativeHandler = Arc<dyn Fn(Vec<u8>) -> BoxFuture<'static, Vec<u8>> + Send + Sync>;

pub(crate) struct Groups {
    pub meta_raft: MetadataRaft,
    pub meta_sm: MetadataStateMachine,
    pub replicas: RwLock<HashMap<u64, Arc<Replica>>>,
    pub native: std::sync::OnceLock<NativeHandler>,
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
        if let Some(replica) = self.0.replica(group.0) {
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
            let answer = groups.serve_call(call).await;
            Ok(Bytes::from(calls::encode(&answer)))
        })
    }
}
