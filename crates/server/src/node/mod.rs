//! Cluster mode's replication side (decision 0005): the metadata Raft group,
//! one Raft group per partition replica this node hosts, and the peer
//! transport they share. [`ClusterNode::start`] opens the metadata group
//! (bootstrapped from the static `--peers` list: every listed node
//! initializes it with the same members, which openraft documents as safe),
//! registers this broker through the metadata leader, and runs these tasks:
//!
//! - the **reconciler** (`reconcile`), which opens a partition group for
//!   every placement naming this node and drops groups of deleted topics;
//! - the **beat round** (`liveness`): one timer for every group this node
//!   leads, a Raft heartbeat for the busy ones and one beat per peer for the
//!   quiet ones (openraft's per-group heartbeat and tick are off, 0008);
//! - the **election watch** (`liveness`), which lets openraft elect in a
//!   group whose leader went silent;
//! - the **registration**, retried until the metadata leader commits it;
//! - **retention** (`retention`), which deletes expired segments of every
//!   replica through a snapshot at the retention point.
//!
//! Peer connections arrive on the native port and are handed over by the
//! accept loop (`serve_peer`); peers' addresses are their native addresses.
//!
//! Module map: `replica` (one partition: sequencer, acks, committed reads),
//! `groups` (the group registry the peer server routes to; metadata writes
//! and their forwarding), `calls` (what nodes ask each other),
//! `reconcile` (placement -> local groups), `liveness` (quiet groups and
//! elections), `retention`, `data` (the produce/fetch entry points the
//! handlers call).

mod calls;
mod data;
mod groups;
mod liveness;
mod preferred;
mod reconcile;
mod replica;
mod retention;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use citystream_broker::Broker;
use citystream_cluster::{BrokerAddresses, MetadataState, MetadataStateMachine, metadata_config};
use citystream_log::{FsyncPolicy, LogConfig, MemoryStorage, PartitionLog, Storage};
use citystream_membership::MemberView;
use citystream_peer::{LinkConfig, PeerNetwork, PeerServer};
use citystream_raft::{
    PartitionRaftStorage, PeerAddr, SharedLog, Timing, UnsyncedLogs, initialize_members, seeded,
};
use openraft::Raft;
use openraft::async_runtime::WatchReceiver;
use parking_lot::RwLock;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::liveness::Liveness;

pub(crate) use calls::{CallAnswer, Moved, NodeCall};
pub(crate) use groups::{Groups, NativeHandler};
pub(crate) use replica::Replica;

/// How long start-up registration and admin writes wait for a metadata
/// leader before reporting the cluster unavailable.
pub(crate) const METADATA_WRITE_PATIENCE: Duration = Duration::from_secs(10);
/// How long a join request may take (the leader waits up to 10 s for the
/// new node to catch up).
const JOIN_CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How often replica metrics (leader, commit lag) are sampled.
const METRICS_SAMPLE_PERIOD: Duration = Duration::from_secs(1);
const JOIN_RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Join attempts between two warnings that the node is still outside.
const JOIN_WARN_EVERY: u64 = 20;
/// The peer link to the `--join` node, whose id is not known yet.
const JOIN_SEED_LINK: u64 = u64::MAX;

/// What cluster mode needs beyond a standalone broker.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub node_id: u32,
    /// The static cluster (`--peers`): node id -> native address, this node
    /// included. Empty when joining a running cluster.
    pub peers: BTreeMap<u32, String>,
    /// With no `peers`: the native address of a running node to join
    /// through (`--join`). Gossip members are asked too (`--discover`).
    pub join: Option<String>,
    /// This node's native address as peers and clients reach it (Raft
    /// traffic shares the port).
    pub advertised_address: String,
    /// This node's gossip address, recorded in the metadata.
    pub gossip_address: String,
    pub cluster_id: String,
    pub timing: Timing,
    /// The most bytes a second a leader sends of a compacted partition's
    /// log to a replica that is behind or new; `None`: no cap.
    pub snapshot_transfer_bytes_per_sec: Option<u64>,
}

/// The replication side of one broker in cluster mode.
pub(crate) struct ClusterNode {
    pub config: ClusterConfig,
    pub broker: Arc<Broker>,
    pub groups: Arc<Groups>,
    pub network: PeerNetwork,
    peer_server: Arc<PeerServer>,
    data_dir: Option<PathBuf>,
    /// Gossip's member list, for leader hints of partitions not held here.
    members: Option<watch::Receiver<Vec<MemberView>>>,
    /// The replicas' logs awaiting the interval fsync (decision 0020);
    /// `None` unless the policy is `interval`.
    unsynced: Option<Arc<UnsyncedLogs>>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl ClusterNode {
    /// Opens the metadata group, bootstraps it from `config.peers` when it
    /// is new, and starts the node's tasks.
    pub async fn start(
        config: ClusterConfig,
        broker: Arc<Broker>,
        members: Option<watch::Receiver<Vec<MemberView>>>,
    ) -> Result<Arc<ClusterNode>, std::io::Error> {
        let node_id = u64::from(config.node_id);
        let log_policy = broker.config().log.fsync;
        let data_dir = broker.config().data_dir.as_ref().map(|d| d.join("raft"));
        let link = LinkConfig {
            snapshot_prefix_bytes_per_sec: config.snapshot_transfer_bytes_per_sec,
            ..LinkConfig::default()
        };
        let network = PeerNetwork::new(node_id, link);
        let storage = open_storage(data_dir.as_ref().map(|d| d.join("meta")))?;
        let log_config = LogConfig {
            fsync: FsyncPolicy::Always,
            ..LogConfig::default()
        };
        let log = PartitionLog::open_with(Arc::clone(&storage), log_config)
            .map_err(std::io::Error::other)?;
        let log: SharedLog = Arc::new(parking_lot::RwLock::new(log));
        let raft_storage = PartitionRaftStorage::open(Arc::clone(&log), Arc::clone(&storage))?;
        let meta_sm = MetadataStateMachine::open(Arc::clone(&storage), log)?;
        // Elections are started by the node's election watch, as in the
        // partition groups (liveness.rs): no 20 ms tick per node.
        let mut raft_config = (*metadata_config(config.timing, FsyncPolicy::Always)
            .map_err(std::io::Error::other)?)
        .clone();
        raft_config.enable_tick = false;
        let raft_config = Arc::new(raft_config);
        let factory = network.metadata_factory();
        let meta_raft = seeded(rand_seed(node_id), async {
            Raft::new(node_id, raft_config, factory, raft_storage, meta_sm.clone()).await
        })
        .await
        .map_err(std::io::Error::other)?;
        if !config.peers.is_empty() {
            let members: BTreeMap<u64, PeerAddr> = config
                .peers
                .iter()
                .map(|(id, address)| {
                    let peer = PeerAddr {
                        peer: address.clone(),
                    };
                    (u64::from(*id), peer)
                })
                .collect();
            if let Err(error) = initialize_members(&meta_raft, members).await {
                tracing::warn!(%error, "the metadata group could not be initialized");
            }
        }
        let groups = Arc::new(Groups {
            meta_raft,
            meta_sm,
            meta_liveness: Liveness::new(
                (
                    Duration::from_millis(config.timing.election_min_ms),
                    Duration::from_millis(config.timing.election_max_ms),
                ),
                rand_seed(node_id),
            ),
            replicas: RwLock::new(HashMap::new()),
            native: std::sync::OnceLock::new(),
            network: network.clone(),
        });
        let peer_server = PeerServer::new(Arc::new(groups::Router(Arc::clone(&groups))));
        // Consumer groups use the replicated topics, not the local ones.
        let catalog_groups = Arc::downgrade(&groups);
        broker.set_topic_catalog(Arc::new(move |name: &str| {
            let Some(groups) = catalog_groups.upgrade() else {
                return 0;
            };
            let state = groups.metadata();
            state.topics.get(name).map_or(0, |topic| {
                u32::try_from(topic.partitions.len()).unwrap_or(u32::MAX)
            })
        }));
        let node = Arc::new(ClusterNode {
            config,
            broker,
            groups,
            network,
            peer_server,
            data_dir,
            members,
            unsynced: matches!(log_policy, FsyncPolicy::Interval { .. }).then(UnsyncedLogs::new),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        if let (Some(unsynced), FsyncPolicy::Interval { interval_ms }) =
            (&node.unsynced, log_policy)
        {
            let (written, synced) = (Arc::clone(unsynced), Arc::clone(unsynced));
            node.tasks.spawn(crate::timers::group_commit(
                interval_ms,
                node.stop.clone(),
                move || {
                    let unsynced = Arc::clone(&written);
                    async move { unsynced.written().await }
                },
                move || synced.sync_all(),
            ));
        }
        if node.config.peers.is_empty() {
            node.tasks.spawn(Arc::clone(&node).join());
        }
        node.tasks.spawn(Arc::clone(&node).register());
        node.tasks.spawn(Arc::clone(&node).reconcile_loop());
        node.tasks.spawn(Arc::clone(&node).beats());
        node.tasks.spawn(Arc::clone(&node).election_watch());
        node.tasks.spawn(Arc::clone(&node).retention());
        node.tasks.spawn(Arc::clone(&node).sample_metrics());
        Ok(node)
    }

    pub fn node_id(&self) -> u32 {
        self.config.node_id
    }

    /// Serves a peer connection that arrived on the native port, until it
    /// closes or the node stops (after the client connections drained, so
    /// their last quorum writes can still complete).
    pub fn spawn_peer(&self, stream: TcpStream) {
        let (server, stop) = (Arc::clone(&self.peer_server), self.stop.child_token());
        self.tasks
            .spawn(async move { server.serve_stream(stream, stop).await });
    }

    pub fn metadata(&self) -> Arc<MetadataState> {
        self.groups.metadata()
    }

    /// Stops the node's tasks, every group, and the peer links.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        let replicas: Vec<Arc<Replica>> = self
            .groups
            .replicas
            .write()
            .drain()
            .map(|(_, r)| r)
            .collect();
        for replica in replicas {
            if let Err(error) = replica.raft.shutdown().await {
                tracing::debug!(%error, "partition group did not stop cleanly");
            }
        }
        if let Err(error) = self.groups.meta_raft.shutdown().await {
            tracing::debug!(%error, "metadata group did not stop cleanly");
        }
        if let Some(unsynced) = &self.unsynced
            && let Err(error) = unsynced.sync_all()
        {
            tracing::warn!(%error, "the last interval fsync of the replicas failed");
        }
        self.network.shutdown().await;
    }

    /// Until this node is in the metadata group: asks a node it knows (the
    /// `--join` node, then every gossip member) to add it; the metadata
    /// leader does (`Groups::add_node`). A refusal (another cluster, a
    /// removed id) is final and logged as an error.
    async fn join(self: Arc<Self>) {
        let call = NodeCall::AddNode {
            node_id: self.config.node_id,
            address: self.config.advertised_address.clone(),
            cluster_id: self.config.cluster_id.clone(),
        };
        let payload = bytes::Bytes::from(calls::encode(&call));
        for attempt in 1u64.. {
            if self.in_metadata_group() {
                return;
            }
            if attempt % JOIN_WARN_EVERY == 0 {
                tracing::warn!(
                    attempt,
                    "still not in the metadata group; is a node of the cluster reachable?"
                );
            }
            for (target, address) in self.join_contacts() {
                let answer = self
                    .network
                    .call(target, &address, payload.clone(), JOIN_CALL_TIMEOUT)
                    .await
                    .map_err(|error| error.to_string())
                    .and_then(|bytes| calls::decode::<CallAnswer>(&bytes));
                match answer {
                    Ok(CallAnswer::Joined { voter }) => {
                        tracing::info!(via = %address, voter, "joined the metadata group");
                        return;
                    }
                    Ok(CallAnswer::Refused(refused)) => {
                        tracing::error!(%refused, "the cluster refused this node");
                        return;
                    }
                    Ok(other) => tracing::debug!(via = %address, ?other, "not joined yet"),
                    Err(error) => tracing::debug!(via = %address, %error, "not joined yet"),
                }
            }
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(JOIN_RETRY_PAUSE) => {}
            }
        }
    }

    fn in_metadata_group(&self) -> bool {
        let id = u64::from(self.config.node_id);
        let metrics = self.groups.meta_raft.metrics();
        let metrics = metrics.borrow_watched();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .is_some()
    }

    /// Who to ask to join: the `--join` node, then alive gossip members.
    fn join_contacts(&self) -> Vec<(u64, String)> {
        let mut contacts: Vec<(u64, String)> = self
            .config
            .join
            .iter()
            .map(|address| (JOIN_SEED_LINK, address.clone()))
            .collect();
        if let Some(members) = &self.members {
            let members = members.borrow();
            contacts.extend(
                members
                    .iter()
                    .filter(|m| !m.is_self && m.state == citystream_membership::MemberState::Alive)
                    .filter_map(|m| {
                        let address = m.info.listener(crate::handlers::cluster::NATIVE_LISTENER)?;
                        Some((u64::from(m.info.node_id.0), address.to_owned()))
                    }),
            );
        }
        contacts
    }

    /// Records this broker (and, once, the cluster id) in the metadata,
    /// retrying until the metadata leader commits it.
    async fn register(self: Arc<Self>) {
        let addresses = BrokerAddresses {
            native: self.config.advertised_address.clone(),
            gossip: self.config.gossip_address.clone(),
            peer: self.config.advertised_address.clone(),
        };
        let commands = [
            citystream_cluster::MetadataCommand::InitCluster {
                cluster_id: self.config.cluster_id.clone(),
            },
            citystream_cluster::MetadataCommand::RegisterBroker {
                node_id: self.config.node_id,
                addresses,
                rack: None,
            },
        ];
        for command in commands {
            loop {
                let write = self.groups.metadata_write(
                    &self.network,
                    NodeCall::Propose(command.clone()),
                    METADATA_WRITE_PATIENCE,
                );
                let answer = tokio::select! {
                    () = self.stop.cancelled() => return,
                    answer = write => answer,
                };
                match answer {
                    CallAnswer::Applied(outcome) => {
                        tracing::info!(?outcome, "registered in the cluster metadata");
                        break;
                    }
                    CallAnswer::Reassigned(_)
                    | CallAnswer::Native(_)
                    | CallAnswer::Beat(_)
                    | CallAnswer::Joined { .. } => {
                        break;
                    }
                    CallAnswer::Refused(refused) => {
                        tracing::error!(%refused, "the cluster refused this node");
                        break;
                    }
                    CallAnswer::Unavailable(reason) => {
                        tracing::info!(%reason, "waiting for the metadata group to register");
                    }
                }
            }
        }
    }

    /// Every [`METRICS_SAMPLE_PERIOD`]: each replica's leader and commit lag
    /// as gauges, and a counter of the leader changes it saw.
    async fn sample_metrics(self: Arc<Self>) {
        let mut leaders: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
        let mut ticks = tokio::time::interval(METRICS_SAMPLE_PERIOD);
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let replicas: Vec<Arc<replica::Replica>> =
                self.groups.replicas.read().values().cloned().collect();
            leaders.retain(|group, _| replicas.iter().any(|r| r.group == *group));
            for replica in replicas {
                let leader = replica
                    .raft
                    .metrics()
                    .borrow_watched()
                    .current_leader
                    .unwrap_or(0);
                let (_, end, committed) = replica.extent();
                let (topic, partition) = (&replica.id.topic, replica.id.partition);
                crate::metrics::replica_sampled(
                    topic,
                    partition,
                    leader,
                    end.saturating_sub(committed),
                );
                if leaders
                    .insert(replica.group, leader)
                    .is_some_and(|before| before != leader)
                {
                    crate::metrics::leader_changed(topic, partition);
                }
            }
        }
    }

    /// The partitions this node leads, as gossip's `leaderships` map
    /// (`topic/partition` -> term).
    pub fn leaderships(&self) -> BTreeMap<String, u64> {
        self.groups
            .replicas
            .read()
            .values()
            .filter_map(|replica| {
                let term = replica.leader_term().ok()?;
                Some((
                    data::leadership_key(&replica.id.topic, replica.id.partition),
                    term,
                ))
            })
            .collect()
    }

    /// The metadata leader and its term, as gossip carries it.
    pub fn metadata_leader_hint(&self) -> Option<citystream_membership::LeaderHint> {
        let metrics = self.groups.meta_raft.metrics().borrow_watched().clone();
        let leader = u32::try_from(metrics.current_leader?).ok()?;
        Some(citystream_membership::LeaderHint {
            node_id: citystream_membership::NodeId(leader),
            term: metrics.current_term,
        })
    }
}

/// File storage under `dir`, or memory when the broker runs in memory.
fn open_storage(dir: Option<PathBuf>) -> std::io::Result<Arc<dyn Storage>> {
    Ok(match dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            Arc::new(citystream_log::FileStorage::new(dir)?)
        }
        None => Arc::new(MemoryStorage::new()),
    })
}

/// A seed for openraft's randomness (election timeouts): distinct per node
/// and per start, so nodes do not time out in lockstep.
fn rand_seed(node_id: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ node_id.rotate_left(32) ^ u64::from(std::process::id())
}
