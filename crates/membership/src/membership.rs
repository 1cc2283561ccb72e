//! [`Membership`]: the I/O shell around chitchat. It starts chitchat's UDP gossip,
//! publishes this node's [`NodeInfo`] as key-values, and runs one refresh task
//! that samples the gossip state every gossip interval (and whenever chitchat's live set
//! changes) into the member list that [`Membership::members`] and [`Membership::watch`]
//! return.
//!
//! What it does not do: decide anything. Membership is a hint for routing, placement and
//! the console; Raft's metadata group is the truth about which brokers exist and who
//! leads what. Nothing here reads Raft, and Raft never reads this.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use chitchat::{Chitchat, ChitchatHandle, spawn_chitchat};
use tokio::sync::{Mutex, watch};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::MembershipConfig;
use crate::error::MembershipError;
use crate::node_info::{NodeId, NodeInfo, diff_key_values};
use crate::transport::ClusterFilterTransport;
use crate::view::{
    DetectorVerdict, LastHeard, MemberSample, MemberView, Rejected, derive_members, find_member,
    same_members,
};

/// Rejected members remembered for "log once"; past this the memory is cleared.
pub const REJECTIONS_LOGGED_MAX: usize = 1_024;
/// Tries to start gossip on a picked free port before giving up.
pub const PORT_PICK_ATTEMPTS_MAX: usize = 5;

/// This node's membership in the cluster's gossip. Dropping it stops gossip too, but
/// [`Membership::shutdown`] also waits for the tasks and the socket to be gone.
pub struct Membership {
    handle: ChitchatHandle,
    node_id: NodeId,
    advertise_addr: SocketAddr,
    local: Mutex<LocalState>,
    members_rx: watch::Receiver<Vec<MemberView>>,
    tasks: TaskTracker,
    cancel_on_drop: DropGuard,
}

/// This node's info and the key-values last written for it.
struct LocalState {
    info: NodeInfo,
    published: BTreeMap<String, String>,
}

/// What the refresh task needs.
struct Refresher {
    chitchat: Arc<Mutex<Chitchat>>,
    cluster_id: String,
    config: MembershipConfig,
    last_heard: LastHeard,
    logged: HashSet<(String, u64)>,
}

impl Membership {
    /// Binds `config.gossip_listen` and starts gossiping as `initial`, which must name
    /// the configured node and cluster (its generation is replaced by the configured
    /// one). Port 0 picks a free port: chitchat binds the socket itself and must know
    /// its advertised address before, so a free port is found by binding and releasing
    /// it, and a lost race is retried `PORT_PICK_ATTEMPTS_MAX` times.
    pub async fn start(
        config: MembershipConfig,
        mut initial: NodeInfo,
    ) -> Result<Membership, MembershipError> {
        config.validate()?;
        check_identity(&config, &initial)?;
        initial.generation = config.generation;
        let published = initial.to_key_values()?;
        let (handle, advertise_addr) = spawn_gossip(&config, &published).await?;
        info!(node = %config.node_id, generation = config.generation, gossip = %advertise_addr,
            seeds = config.seeds.len(), "membership started");
        let mut refresher = Refresher::new(handle.chitchat(), config.clone());
        let (members_tx, members_rx) = watch::channel(refresher.refresh().await);
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(refresher.run(members_tx, cancel.clone()));
        Ok(Membership {
            handle,
            node_id: config.node_id,
            advertise_addr,
            local: Mutex::new(LocalState {
                info: initial,
                published,
            }),
            members_rx,
            tasks,
            cancel_on_drop: cancel.drop_guard(),
        })
    }

    /// The address peers gossip to (the bound port when port 0 was asked for).
    pub fn local_gossip_addr(&self) -> SocketAddr {
        self.advertise_addr
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// This node's info as last published.
    pub async fn local_info(&self) -> NodeInfo {
        self.local.lock().await.info.clone()
    }

    /// Changes this node's info and publishes the keys that changed. Identity (node id,
    /// cluster id, generation) cannot change; invalid names are refused and nothing is
    /// published.
    pub async fn update_local(
        &self,
        change: impl FnOnce(&mut NodeInfo),
    ) -> Result<(), MembershipError> {
        let mut local = self.local.lock().await;
        let mut next = local.info.clone();
        change(&mut next);
        let info = &local.info;
        if (next.node_id, &next.cluster_id, next.generation)
            != (info.node_id, &info.cluster_id, info.generation)
        {
            return Err(MembershipError::IdentityChanged);
        }
        let encoded = next.to_key_values()?;
        let diff = diff_key_values(&local.published, &encoded);
        self.handle
            .with_chitchat(|chitchat| {
                let state = chitchat.self_node_state();
                for key in &diff.delete {
                    state.delete(key);
                }
                for (key, value) in &diff.set {
                    state.set(key, value);
                }
            })
            .await;
        debug!(node = %self.node_id, set = diff.set.len(), deleted = diff.delete.len(),
            "published local node info");
        *local = LocalState {
            info: next,
            published: encoded,
        };
        Ok(())
    }

    /// The member list, this node included, sorted by node id. Refreshed every gossip
    /// interval, so it can be up to one interval old.
    pub fn members(&self) -> Vec<MemberView> {
        self.members_rx.borrow().clone()
    }

    /// One member by node id.
    pub fn member(&self, node_id: NodeId) -> Option<MemberView> {
        find_member(&self.members_rx.borrow(), node_id).cloned()
    }

    /// A receiver notified whenever a member joins, leaves, changes state or changes its
    /// info (not when only `silent_for` moves).
    pub fn watch(&self) -> watch::Receiver<Vec<MemberView>> {
        self.members_rx.clone()
    }

    /// Gossips with `addr` once, now. If it answers, it joins the gossip state and is
    /// gossiped with from then on; if the datagram is lost, nothing retries: callers
    /// such as discovery call this again on the next announcement.
    pub fn contact_peer(&self, addr: SocketAddr) -> Result<(), MembershipError> {
        if addr == self.advertise_addr {
            return Ok(());
        }
        self.handle
            .gossip(addr)
            .map_err(|error| MembershipError::Gossip(format!("{error:#}")))
    }

    /// Stops the refresh task and the gossip server, and waits until the socket is
    /// closed, so the same address can be bound again at once.
    pub async fn shutdown(self) -> Result<(), MembershipError> {
        let Membership {
            handle,
            tasks,
            cancel_on_drop,
            node_id,
            ..
        } = self;
        cancel_on_drop.disarm().cancel();
        tasks.close();
        tasks.wait().await;
        let result = handle
            .shutdown()
            .await
            .map_err(|error| MembershipError::Gossip(format!("{error:#}")));
        info!(node = %node_id, "membership stopped");
        result
    }
}

/// Starts chitchat on the configured address (or a picked free port) and returns its
/// handle with the advertised address.
async fn spawn_gossip(
    config: &MembershipConfig,
    published: &BTreeMap<String, String>,
) -> Result<(ChitchatHandle, SocketAddr), MembershipError> {
    let attempts = if config.gossip_listen.port() == 0 {
        PORT_PICK_ATTEMPTS_MAX
    } else {
        1
    };
    let mut last_error = None;
    for _ in 0..attempts {
        let listen = pick_port(config.gossip_listen)?;
        let advertise = config.advertise_addr(listen)?;
        let transport = ClusterFilterTransport::new(config.cluster_id.clone());
        let initial_key_values = published.clone().into_iter().collect();
        match spawn_chitchat(
            config.to_chitchat(advertise, listen),
            initial_key_values,
            &transport,
        )
        .await
        {
            Ok(handle) => return Ok((handle, advertise)),
            Err(error) => last_error = Some(format!("{error:#}")),
        }
    }
    Err(MembershipError::Gossip(last_error.unwrap_or_default()))
}

/// `listen` itself, or with port 0 replaced by a port that was free a moment ago.
fn pick_port(listen: SocketAddr) -> Result<SocketAddr, MembershipError> {
    if listen.port() != 0 {
        return Ok(listen);
    }
    let socket_error = |source| MembershipError::Socket {
        action: "pick a port with",
        addr: listen,
        source,
    };
    let probe = std::net::UdpSocket::bind(listen).map_err(socket_error)?;
    probe.local_addr().map_err(socket_error)
}

fn check_identity(config: &MembershipConfig, info: &NodeInfo) -> Result<(), MembershipError> {
    if info.node_id == config.node_id && info.cluster_id == config.cluster_id {
        return Ok(());
    }
    Err(MembershipError::IdentityMismatch {
        config_node_id: config.node_id.0,
        config_cluster_id: config.cluster_id.clone(),
        info_node_id: info.node_id.0,
        info_cluster_id: info.cluster_id.clone(),
    })
}

impl Refresher {
    fn new(chitchat: Arc<Mutex<Chitchat>>, config: MembershipConfig) -> Refresher {
        Refresher {
            chitchat,
            cluster_id: config.cluster_id.clone(),
            config,
            last_heard: LastHeard::default(),
            logged: HashSet::new(),
        }
    }

    /// Refreshes every gossip interval and on every live-set change until cancelled.
    async fn run(mut self, members_tx: watch::Sender<Vec<MemberView>>, cancel: CancellationToken) {
        let mut live_rx = self.chitchat.lock().await.live_nodes_watcher();
        let mut ticker = tokio::time::interval(self.config.gossip_interval());
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticker.tick() => {}
                changed = live_rx.changed() => if changed.is_err() { return },
            }
            let members = self.refresh().await;
            members_tx.send_if_modified(|current| {
                let changed = !same_members(current, &members);
                *current = members;
                changed
            });
        }
    }

    /// Samples the gossip state and derives the member list.
    async fn refresh(&mut self) -> Vec<MemberView> {
        let samples = take_samples(&*self.chitchat.lock().await);
        let now = Instant::now();
        self.last_heard.observe(&samples, now);
        let derived = derive_members(
            &samples,
            &self.cluster_id,
            &self.last_heard,
            now,
            self.config.suspect_after(),
        );
        for rejected in &derived.rejected {
            self.log_rejection_once(rejected);
        }
        derived.members
    }

    fn log_rejection_once(&mut self, rejected: &Rejected) {
        let key = (rejected.gossip_node_id.clone(), rejected.generation);
        if self.logged.contains(&key) {
            return;
        }
        if self.logged.len() >= REJECTIONS_LOGGED_MAX {
            self.logged.clear();
        }
        warn!(node = %self.config.node_id, peer = %rejected.gossip_node_id,
            generation = rejected.generation, gossip = %rejected.gossip_addr,
            reason = ?rejected.reason, "leaving a gossip member out of the member list");
        self.logged.insert(key);
    }
}

/// Copies what the view needs out of chitchat's state (under its lock, so keep it short).
fn take_samples(chitchat: &Chitchat) -> Vec<MemberSample> {
    let self_id = chitchat.self_chitchat_id();
    let live: HashSet<_> = chitchat.live_nodes().collect();
    let dead: HashSet<_> = chitchat.dead_nodes().collect();
    chitchat
        .node_states()
        .iter()
        .map(|(id, state)| MemberSample {
            gossip_node_id: id.node_id.to_string(),
            generation: id.generation_id,
            gossip_addr: id.gossip_advertise_addr,
            heartbeat: u64::from(state.heartbeat()),
            verdict: if live.contains(id) {
                DetectorVerdict::Live
            } else if dead.contains(id) {
                DetectorVerdict::Dead
            } else {
                DetectorVerdict::Unknown
            },
            is_self: id == self_id,
            key_values: state
                .key_values()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        })
        .collect()
}
