//! The simulated network: a `RaftNetworkFactory` for [`Tc`] whose
//! connections hand each RPC to the target's `Raft` handle after a seeded
//! random delay, and which may drop the request, drop the reply, or deliver
//! the request a second time (a duplicate whose reply nobody reads). Links
//! follow a partition map (nodes in different sides cannot talk) and the set
//! of crashed nodes. Every random draw comes from a seeded RNG per directed
//! link, so a message's fate depends only on the seed, its link and its
//! place in that link's sequence.
//!
//! A snapshot is handed over whole and without faults, as one stream
//! openraft retries as a unit. The prefix chunks a compacted partition's
//! snapshot carries first (decision 0017 §5) are messages of their own:
//! each is delayed, may be lost or its acknowledgement lost (the transfer
//! then fails and openraft sends the snapshot again later), or delivered
//! a second time later, like any request. Staging a chunk raises the
//! receiver's compaction horizon bound to the sender's
//! ([`crate::compaction::Horizons`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use citystream_raft::snapshot_prefix::{PrefixReader, deliver_chunk, install_after_prefix};
use citystream_raft::{PartitionRaft, PartitionSnapshot, PeerAddr, Tc};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{OptionalSend, RaftNetworkFactory, RaftNetworkV2};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::compaction::Horizons;

/// Per-seed fault rates of the network.
#[derive(Debug, Clone, Copy)]
pub struct NetFaults {
    /// Each message (request or reply) waits 0..=this many simulated ms.
    pub max_delay_ms: u64,
    /// Per mille of requests lost, and independently of replies lost.
    pub drop_per_mille: u32,
    /// Per mille of requests delivered twice.
    pub dup_per_mille: u32,
}

struct NetState {
    nodes: BTreeMap<u64, PartitionRaft>,
    /// Which side of a partition each node is on; absent means side 0.
    side: BTreeMap<u64, u8>,
    down: BTreeSet<u64>,
    faults: NetFaults,
    seed: u64,
    /// One RNG per directed link: tokio wakes watch receivers in an order
    /// it draws from its own unseeded RNG, so two links' messages sent at
    /// the same instant may be sent in either order. Per-link RNGs keep
    /// every message's fate independent of that order.
    links: BTreeMap<(u64, u64), StdRng>,
    delivered: u64,
    dropped: u64,
    duplicated: u64,
    prefix_chunks: u64,
    prefix_installs: u64,
    /// Every RPC's fate, when `CITYSTREAM_SIM_NET_TRACE` asks for it.
    log: Option<Vec<String>>,
    start: tokio::time::Instant,
}

/// The network shared by every node's factory. Cheap to clone.
#[derive(Clone)]
pub struct Net {
    state: Arc<Mutex<NetState>>,
    horizons: Horizons,
}

/// Counters of what the network did, for the run summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    /// Snapshot prefix chunks staged (duplicates included).
    pub prefix_chunks: u64,
    /// Snapshots installed with their prefix staged before.
    pub prefix_installs: u64,
}

#[derive(Debug)]
struct LinkDown {
    from: u64,
    to: u64,
    why: &'static str,
}

impl fmt::Display for LinkDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {} -> {}: {}", self.from, self.to, self.why)
    }
}

impl std::error::Error for LinkDown {}

/// What the RNG decided for one RPC.
struct Fate {
    delay: Duration,
    drop_request: bool,
    drop_reply: bool,
    duplicate: Option<Duration>,
    reply_delay: Duration,
}

impl Net {
    /// The network of a seed; `horizons` is raised as prefixes move.
    pub fn new(seed: u64, faults: NetFaults, horizons: Horizons) -> Net {
        Net {
            horizons,
            state: Arc::new(Mutex::new(NetState {
                nodes: BTreeMap::new(),
                side: BTreeMap::new(),
                down: BTreeSet::new(),
                faults,
                seed,
                links: BTreeMap::new(),
                delivered: 0,
                dropped: 0,
                duplicated: 0,
                prefix_chunks: 0,
                prefix_installs: 0,
                log: std::env::var_os("CITYSTREAM_SIM_NET_TRACE").map(|_| Vec::new()),
                start: tokio::time::Instant::now(),
            })),
        }
    }

    /// Registers a (re)started node and marks it up.
    pub fn up(&self, id: u64, raft: PartitionRaft) {
        let mut state = self.state.lock();
        state.nodes.insert(id, raft);
        state.down.remove(&id);
    }

    /// Marks a crashed node down; its handle is forgotten.
    pub fn down(&self, id: u64) {
        let mut state = self.state.lock();
        state.nodes.remove(&id);
        state.down.insert(id);
    }

    /// Puts every node on the side `sides` names (others on side 0).
    pub fn partition(&self, sides: BTreeMap<u64, u8>) {
        self.state.lock().side = sides;
    }

    pub fn heal(&self) {
        self.state.lock().side.clear();
    }

    pub fn set_faults(&self, faults: NetFaults) {
        self.state.lock().faults = faults;
    }

    pub fn stats(&self) -> NetStats {
        let state = self.state.lock();
        NetStats {
            delivered: state.delivered,
            dropped: state.dropped,
            duplicated: state.duplicated,
            prefix_chunks: state.prefix_chunks,
            prefix_installs: state.prefix_installs,
        }
    }

    /// Whether `from` and `to` can currently talk.
    pub fn connected(&self, from: u64, to: u64) -> bool {
        let state = self.state.lock();
        Self::connected_in(&state, from, to)
    }

    fn connected_in(state: &NetState, from: u64, to: u64) -> bool {
        let side = |id: u64| state.side.get(&id).copied().unwrap_or(0);
        !state.down.contains(&from) && !state.down.contains(&to) && side(from) == side(to)
    }

    pub fn factory(&self, from: u64) -> NetFactory {
        NetFactory {
            net: self.clone(),
            from,
        }
    }

    /// The RPC log (empty unless `CITYSTREAM_SIM_NET_TRACE` is set).
    pub fn take_log(&self) -> Vec<String> {
        self.state.lock().log.take().unwrap_or_default()
    }

    fn fate(&self, from: u64, to: u64, kind: &str) -> Fate {
        let mut state = self.state.lock();
        let faults = state.faults;
        let link_seed = state.seed ^ 0x6e65_7477_6f72_6b00 ^ (from << 40) ^ (to << 20);
        let rng = state
            .links
            .entry((from, to))
            .or_insert_with(|| StdRng::seed_from_u64(link_seed));
        let delay = Duration::from_millis(rng.random_range(0..=faults.max_delay_ms));
        let drop_request = rng.random_range(0..1000) < faults.drop_per_mille;
        let drop_reply = rng.random_range(0..1000) < faults.drop_per_mille;
        let duplicate = (rng.random_range(0..1000) < faults.dup_per_mille)
            .then(|| Duration::from_millis(rng.random_range(0..=faults.max_delay_ms)));
        let reply_delay = Duration::from_millis(rng.random_range(0..=faults.max_delay_ms));
        let at = state.start.elapsed();
        if let Some(log) = &mut state.log {
            log.push(format!(
                "{at:?} {kind} {from}->{to} delay {delay:?} drop {drop_request}/{drop_reply} dup {duplicate:?}"
            ));
        }
        Fate {
            delay,
            drop_request,
            drop_reply,
            duplicate,
            reply_delay,
        }
    }

    fn link(&self, from: u64, to: u64) -> Result<PartitionRaft, Unreachable<Tc>> {
        let state = self.state.lock();
        if !Self::connected_in(&state, from, to) {
            return Err(Unreachable::new(&LinkDown {
                from,
                to,
                why: "partitioned or down",
            }));
        }
        state.nodes.get(&to).cloned().ok_or_else(|| {
            Unreachable::new(&LinkDown {
                from,
                to,
                why: "not running",
            })
        })
    }

    fn count(&self, f: impl FnOnce(&mut NetState)) {
        f(&mut self.state.lock());
    }

    /// Delivers one RPC under the network's faults. `call` runs the RPC on
    /// the target; a duplicate runs it again later and its reply is lost.
    async fn deliver<Req, Resp, Fut>(
        &self,
        kind: &str,
        from: u64,
        to: u64,
        request: Req,
        call: impl Fn(PartitionRaft, Req) -> Fut,
    ) -> Result<Resp, RPCError<Tc>>
    where
        Req: Clone + Send + 'static,
        Fut: Future<Output = Option<Resp>> + Send + 'static,
        Resp: Send + 'static,
    {
        // Fail fast when the link is down, as a refused connection would.
        self.link(from, to)?;
        let fate = self.fate(from, to, kind);
        tokio::time::sleep(fate.delay).await;
        if fate.drop_request {
            self.count(|s| s.dropped += 1);
            return Err(lost(from, to, "request lost"));
        }
        let raft = self.link(from, to)?;
        if let Some(later) = fate.duplicate {
            self.count(|s| s.duplicated += 1);
            let duplicate = call(raft.clone(), request.clone());
            tokio::spawn(async move {
                tokio::time::sleep(later).await;
                let _ = duplicate.await;
            });
        }
        self.count(|s| s.delivered += 1);
        let Some(reply) = call(raft, request).await else {
            return Err(RPCError::Unreachable(Unreachable::new(&LinkDown {
                from,
                to,
                why: "target shut down",
            })));
        };
        tokio::time::sleep(fate.reply_delay).await;
        if fate.drop_reply {
            self.count(|s| s.dropped += 1);
            return Err(lost(from, to, "reply lost"));
        }
        // A reply crossing a partition made meanwhile is lost too.
        self.link(to, from)?;
        Ok(reply)
    }
}

impl Net {
    /// Hands `snapshot` to `target` (node `to`): its prefix chunk by chunk
    /// under the network's faults, if it carries one, then the snapshot.
    async fn transfer_snapshot(
        &self,
        (from, to): (u64, u64),
        target: &PartitionRaft,
        vote: VoteOf<Tc>,
        snapshot: SnapshotOf<Tc, PartitionSnapshot>,
    ) -> Result<SnapshotResponse<Tc>, String> {
        if let Some(mut prefix) = PrefixReader::new(vote, &snapshot) {
            while let Some(chunk) = prefix.next_chunk().map_err(|e| e.to_string())? {
                // Read from `from`'s log just now, with no await since.
                self.horizons.inherit(to, from);
                self.send_chunk(from, to, target, chunk).await?;
            }
            self.count(|s| s.prefix_installs += 1);
        }
        install_after_prefix(target, vote, snapshot).await
    }

    /// One prefix chunk as a message: delayed, maybe lost (request or
    /// acknowledgement), maybe delivered again later.
    async fn send_chunk(
        &self,
        from: u64,
        to: u64,
        target: &PartitionRaft,
        chunk: citystream_raft::PrefixChunk,
    ) -> Result<(), String> {
        let fate = self.fate(from, to, "prefix_chunk");
        tokio::time::sleep(fate.delay).await;
        if fate.drop_request {
            self.count(|s| s.dropped += 1);
            return Err(format!("prefix chunk at {} lost", chunk.from_offset));
        }
        self.link(from, to).map_err(|e| e.to_string())?;
        if let Some(later) = fate.duplicate {
            self.count(|s| s.duplicated += 1);
            let (target, duplicate) = (target.clone(), chunk.clone());
            tokio::spawn(async move {
                tokio::time::sleep(later).await;
                let _ = deliver_chunk(&target, duplicate).await;
            });
        }
        self.count(|s| s.prefix_chunks += 1);
        let from_offset = chunk.from_offset;
        deliver_chunk(target, chunk)
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::sleep(fate.reply_delay).await;
        if fate.drop_reply {
            self.count(|s| s.dropped += 1);
            return Err(format!(
                "acknowledgement of prefix chunk at {from_offset} lost"
            ));
        }
        Ok(())
    }
}

fn lost(from: u64, to: u64, why: &'static str) -> RPCError<Tc> {
    RPCError::Network(NetworkError::new(&LinkDown { from, to, why }))
}

pub struct NetFactory {
    net: Net,
    from: u64,
}

impl RaftNetworkFactory<Tc> for NetFactory {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, _node: &PeerAddr) -> Connection {
        Connection {
            net: self.net.clone(),
            from: self.from,
            target,
        }
    }
}

/// Node `from`'s link to `target`.
pub struct Connection {
    net: Net,
    from: u64,
    target: u64,
}

impl RaftNetworkV2<Tc> for Connection {
    type SnapshotData = PartitionSnapshot;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Tc>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<Tc>, RPCError<Tc>> {
        self.net
            .deliver(
                "append_entries",
                self.from,
                self.target,
                rpc,
                |raft, rpc| async move { raft.append_entries(rpc).await.ok() },
            )
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Tc>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Tc>, RPCError<Tc>> {
        self.net
            .deliver(
                "vote",
                self.from,
                self.target,
                rpc,
                |raft, rpc| async move { raft.vote(rpc).await.ok() },
            )
            .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<Tc>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Tc>, RPCError<Tc>> {
        self.net
            .deliver(
                "pre_vote",
                self.from,
                self.target,
                rpc,
                |raft, rpc| async move { raft.pre_vote(rpc).await.ok() },
            )
            .await
    }

    async fn transfer_leader(
        &mut self,
        rpc: TransferLeaderRequest<Tc>,
        _option: RPCOption,
    ) -> Result<TransferLeaderResponse<Tc>, RPCError<Tc>> {
        self.net
            .deliver(
                "transfer_leader",
                self.from,
                self.target,
                rpc,
                |raft, rpc| async move { raft.handle_transfer_leader(rpc).await.ok() },
            )
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<Tc>,
        snapshot: SnapshotOf<Tc, PartitionSnapshot>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<Tc>, StreamingError<Tc>> {
        // Sent when a follower is behind the leader's purge point (after
        // retention or a compaction step); the snapshot itself is not
        // faulted, its prefix chunks are.
        let raft = self.net.link(self.from, self.target)?;
        let reply = self
            .net
            .transfer_snapshot((self.from, self.target), &raft, vote, snapshot)
            .await
            .map_err(|e| StreamingError::Unreachable(Unreachable::new(&io::Error::other(e))))?;
        self.net.link(self.target, self.from)?;
        Ok(reply)
    }
}
