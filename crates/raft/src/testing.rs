//! An in-process network for tests of any group on [`Tc`] (partition or
//! metadata, whatever its state machine `SM`): a `RaftNetworkFactory` whose
//! connections hand each RPC straight to the target's `Raft` handle (which
//! forwards it to that node's Raft core over its API channel). No sockets,
//! no serialization. A node can be *cut*: every RPC from or to it fails as
//! `Unreachable`, and a reply that arrives after the cut is dropped, as a
//! partitioned link would lose it.
//!
//! Test support only; the real peer link is `crates/peer` (0005 §4, 0007).
//! Also the log and batch helpers the raft, cluster and peer tests share.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{OptionalSend, Raft, RaftNetworkFactory, RaftNetworkV2};
use parking_lot::Mutex;

use bytes::Bytes;
use citystream_log::{FsyncPolicy, LogConfig, Offset, PartitionLog, Storage};
use citystream_record::{BatchBuilder, BatchHeader};

use crate::snapshot_prefix::transfer_in_process;
use crate::{
    PartitionRaftStorage, PartitionSnapshot, PartitionStateMachine, PeerAddr, SharedLog, Tc,
};

struct RouterState<SM: RaftStateMachine<Tc>> {
    nodes: BTreeMap<u64, Raft<Tc, SM>>,
    cut: BTreeSet<u64>,
}

/// Who is reachable; shared by every node's network factory.
pub struct Router<SM: RaftStateMachine<Tc>> {
    state: Arc<Mutex<RouterState<SM>>>,
}

impl<SM: RaftStateMachine<Tc>> Default for Router<SM> {
    fn default() -> Self {
        let state = RouterState {
            nodes: BTreeMap::new(),
            cut: BTreeSet::new(),
        };
        Router {
            state: Arc::new(Mutex::new(state)),
        }
    }
}

impl<SM: RaftStateMachine<Tc>> Clone for Router<SM> {
    fn clone(&self) -> Self {
        Router {
            state: Arc::clone(&self.state),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("node {0} is unreachable from node {1}")]
struct Down(u64, u64);

impl<SM: RaftStateMachine<Tc>> Router<SM> {
    pub fn add(&self, id: u64, raft: Raft<Tc, SM>) {
        self.state.lock().nodes.insert(id, raft);
    }

    /// Isolates `id` from every other node.
    pub fn cut(&self, id: u64) {
        self.state.lock().cut.insert(id);
    }

    /// Reconnects `id`.
    pub fn heal(&self, id: u64) {
        self.state.lock().cut.remove(&id);
    }

    pub fn is_cut(&self, id: u64) -> bool {
        self.state.lock().cut.contains(&id)
    }

    /// A factory for the connections of node `from`.
    pub fn factory(&self, from: u64) -> NetworkFactory<SM> {
        NetworkFactory {
            router: self.clone(),
            from,
        }
    }

    fn link(&self, from: u64, to: u64) -> Result<Raft<Tc, SM>, Unreachable<Tc>> {
        let state = self.state.lock();
        if state.cut.contains(&from) || state.cut.contains(&to) {
            return Err(Unreachable::new(&Down(to, from)));
        }
        state
            .nodes
            .get(&to)
            .cloned()
            .ok_or_else(|| Unreachable::new(&Down(to, from)))
    }

    /// Passes a reply back only if the link still stands.
    fn reply<T>(&self, from: u64, to: u64, reply: T) -> Result<T, Unreachable<Tc>> {
        self.link(from, to).map(|_| reply)
    }
}

pub struct NetworkFactory<SM: RaftStateMachine<Tc>> {
    router: Router<SM>,
    from: u64,
}

impl<SM: SnapshotDelivery> RaftNetworkFactory<Tc> for NetworkFactory<SM> {
    type Network = Connection<SM>;

    async fn new_client(&mut self, target: u64, _node: &PeerAddr) -> Connection<SM> {
        Connection {
            router: self.router.clone(),
            from: self.from,
            target,
        }
    }
}

/// Node `from`'s link to `target`.
pub struct Connection<SM: RaftStateMachine<Tc>> {
    router: Router<SM>,
    from: u64,
    target: u64,
}

fn unreachable(e: &(impl std::error::Error + 'static)) -> RPCError<Tc> {
    RPCError::Unreachable(Unreachable::new(e))
}

impl<SM: SnapshotDelivery> RaftNetworkV2<Tc> for Connection<SM> {
    type SnapshotData = SM::SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Tc>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<Tc>, RPCError<Tc>> {
        let raft = self.router.link(self.from, self.target)?;
        let reply = raft
            .append_entries(rpc)
            .await
            .map_err(|e| unreachable(&e))?;
        Ok(self.router.reply(self.from, self.target, reply)?)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Tc>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Tc>, RPCError<Tc>> {
        let raft = self.router.link(self.from, self.target)?;
        let reply = raft.vote(rpc).await.map_err(|e| unreachable(&e))?;
        Ok(self.router.reply(self.from, self.target, reply)?)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<Tc>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Tc>, RPCError<Tc>> {
        let raft = self.router.link(self.from, self.target)?;
        let reply = raft.pre_vote(rpc).await.map_err(|e| unreachable(&e))?;
        Ok(self.router.reply(self.from, self.target, reply)?)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<Tc>,
        snapshot: SnapshotOf<Tc, SM::SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<Tc>, StreamingError<Tc>> {
        let raft = self.router.link(self.from, self.target)?;
        let reply = SM::deliver(&raft, vote, snapshot)
            .await
            .map_err(|e| StreamingError::Unreachable(Unreachable::new(&Refused(e))))?;
        Ok(self.router.reply(self.from, self.target, reply)?)
    }
}

/// How an in-process network hands a group's snapshot to a replica.
pub trait SnapshotDelivery: RaftStateMachine<Tc> + Sized {
    fn deliver(
        raft: &Raft<Tc, Self>,
        vote: VoteOf<Tc>,
        snapshot: SnapshotOf<Tc, Self::SnapshotData>,
    ) -> impl Future<Output = Result<SnapshotResponse<Tc>, String>> + Send;
}

/// A partition's snapshot goes with its prefix, if it carries one.
impl SnapshotDelivery for PartitionStateMachine {
    async fn deliver(
        raft: &Raft<Tc, Self>,
        vote: VoteOf<Tc>,
        snapshot: SnapshotOf<Tc, PartitionSnapshot>,
    ) -> Result<SnapshotResponse<Tc>, String> {
        transfer_in_process(raft, vote, snapshot).await
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// Every batch a log serves, in order, as (header, bytes).
pub fn log_batches(log: &PartitionLog) -> Vec<(BatchHeader, Bytes)> {
    let mut batches = Vec::new();
    let mut offset = log.start_offset().0;
    // Ends: every read returns at least one batch and moves `offset` on.
    while offset < log.next_offset().0 {
        let mut bytes = log.read(Offset(offset), 64 * 1024).expect("read").bytes;
        while !bytes.is_empty() {
            let header = BatchHeader::decode(&bytes).expect("header");
            offset = header.next_offset();
            batches.push((header, bytes.split_to(header.batch_len as usize)));
        }
    }
    batches
}

/// A data batch of 1–3 records whose values are `"{tag}-{n}-{i}"`.
pub fn batch(tag: &str, n: u32) -> Bytes {
    let mut builder = BatchBuilder::new();
    for i in 0..(n % 3 + 1) {
        let value = format!("{tag}-{n}-{i}");
        let timestamp_ms = 1_700_000_000_000 + i64::from(n);
        builder
            .push(timestamp_ms, None, value.as_bytes(), &[])
            .expect("push");
    }
    builder.finish()
}

/// The log settings of the in-process test groups: 4 KiB segments, so a
/// few hundred batches roll many of them; fsync on every append.
pub fn test_log_config() -> LogConfig {
    LogConfig {
        segment_bytes_max: 4096,
        index_interval_bytes: 256,
        fsync: FsyncPolicy::Always,
        ..LogConfig::default()
    }
}

/// Opens a group's log on `storage` (fresh, or kept from an earlier run)
/// and its Raft storage, as a test node does before building its state
/// machine.
pub fn open_test_log(
    storage: Arc<dyn Storage>,
    config: LogConfig,
) -> (SharedLog, PartitionRaftStorage) {
    let log = PartitionLog::open_with(storage.clone(), config).expect("log opens");
    let log: SharedLog = Arc::new(parking_lot::RwLock::new(log));
    let raft_storage = PartitionRaftStorage::open(log.clone(), storage).expect("raft storage");
    (log, raft_storage)
}
