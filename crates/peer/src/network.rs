//! openraft's network over links: [`PeerNetwork`] owns one [`Link`] per
//! remote broker and hands each group a [`GroupNetworkFactory`]; the
//! clients it creates ([`PeerClient`], one per group and target) share the
//! target's link. Factory and client are generic over the group's snapshot
//! data ([`SnapshotWire`]): `PartitionSnapshot` (the default) for partition
//! groups, `MetadataState` for the metadata group. Errors map to what openraft acts on: a peer that cannot
//! be reached, or answers that it has no such group or its Raft stopped,
//! is `Unreachable` (openraft backs off); no answer within the RPC's
//! `hard_ttl` is `Timeout`; an undecodable answer is a `Network` error.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use citystream_cluster::MetadataState;
use citystream_raft::{PartitionSnapshot, PeerAddr, Tc};
use openraft::error::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{OptionalSend, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::frame::{GroupId, Rpc};
use crate::link::{Link, LinkConfig, LinkError};
use crate::message::{self, ChunkAck, SnapshotRequest, SnapshotWire, WireMessage};

struct NetworkInner {
    local: u64,
    config: LinkConfig,
    links: Mutex<HashMap<u64, Arc<Link>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// The outbound side of a broker's peer transport: one link per remote
/// broker, shared by all groups. Clones share links.
#[derive(Clone)]
pub struct PeerNetwork {
    inner: Arc<NetworkInner>,
}

/// Write counters of one link: `frames / writes` is the coalescing factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    pub connects: u64,
    pub writes: u64,
    pub frames: u64,
}

impl PeerNetwork {
    /// The network of broker `local`.
    pub fn new(local: u64, config: LinkConfig) -> PeerNetwork {
        let inner = NetworkInner {
            local,
            config,
            links: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        PeerNetwork {
            inner: Arc::new(inner),
        }
    }

    /// The network factory to pass to `Raft::new` for partition `group`.
    pub fn factory(&self, group: GroupId) -> GroupNetworkFactory {
        self.group_factory(group)
    }

    /// The network factory to pass to `Raft::new` for the metadata group.
    pub fn metadata_factory(&self) -> GroupNetworkFactory<MetadataState> {
        self.group_factory(GroupId::METADATA)
    }

    fn group_factory<S: SnapshotWire>(&self, group: GroupId) -> GroupNetworkFactory<S> {
        GroupNetworkFactory {
            network: self.clone(),
            group,
            snapshot: PhantomData,
        }
    }

    /// The link to `target`, created (not yet connected) on first use.
    pub(crate) fn link(&self, target: u64, addr: &str) -> Arc<Link> {
        let mut links = self.inner.links.lock();
        if let Some(link) = links.get(&target) {
            link.set_addr(addr);
            return link.clone();
        }
        let (link, queue) = Link::new(target, addr.to_owned(), self.inner.config.clone());
        let run = link.clone().run(queue, self.inner.shutdown.clone());
        self.inner.tasks.spawn(run);
        links.insert(target, link.clone());
        link
    }

    /// Counters of every link, by remote broker.
    pub fn link_stats(&self) -> HashMap<u64, LinkStats> {
        let links = self.inner.links.lock();
        let stats = |link: &Link| LinkStats {
            connects: link.connects.load(Ordering::Relaxed),
            writes: link.stats.writes.load(Ordering::Relaxed),
            frames: link.stats.frames.load(Ordering::Relaxed),
        };
        links.iter().map(|(id, link)| (*id, stats(link))).collect()
    }

    /// Closes every link and waits for their tasks; later requests fail.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

/// openraft's factory for one group whose snapshots hold an `S`: clients
/// share the broker's links.
pub struct GroupNetworkFactory<S = PartitionSnapshot> {
    network: PeerNetwork,
    group: GroupId,
    snapshot: PhantomData<fn() -> S>,
}

impl<S: SnapshotWire> RaftNetworkFactory<Tc> for GroupNetworkFactory<S> {
    type Network = PeerClient<S>;

    async fn new_client(&mut self, target: u64, node: &PeerAddr) -> PeerClient<S> {
        PeerClient {
            link: self.network.link(target, &node.peer),
            group: self.group,
            local: self.network.inner.local,
            target,
            prefix_rate: self.network.inner.config.snapshot_prefix_bytes_per_sec,
            snapshot: PhantomData,
        }
    }
}

/// Group `group`'s client to broker `target`, over the shared link; the
/// group's snapshots hold an `S`.
pub struct PeerClient<S = PartitionSnapshot> {
    link: Arc<Link>,
    group: GroupId,
    local: u64,
    target: u64,
    /// The cap on a snapshot prefix's bytes a second (`LinkConfig`).
    prefix_rate: Option<u64>,
    snapshot: PhantomData<fn() -> S>,
}

impl<S: SnapshotWire> PeerClient<S> {
    async fn call<Req: WireMessage, Resp: WireMessage>(
        &self,
        rpc: Rpc,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, LinkError> {
        let write = |out: &mut BytesMut| message::encode(request, out);
        let payload = self.link.call(self.group, rpc, write, timeout).await?;
        Ok(message::decode(payload)?)
    }

    fn rpc_error(&self, action: RPCTypes, error: LinkError) -> RPCError<Tc> {
        tracing::debug!(group = %self.group, target = self.target, %error, "peer rpc failed");
        match error {
            LinkError::Timeout(timeout) => RPCError::Timeout(Timeout {
                action,
                id: self.local,
                target: self.target,
                timeout,
            }),
            LinkError::Decode(e) => RPCError::Network(NetworkError::new(&e)),
            other => RPCError::Unreachable(Unreachable::new(&other)),
        }
    }

    fn streaming_error(&self, error: LinkError) -> StreamingError<Tc> {
        match self.rpc_error(RPCTypes::InstallSnapshot, error) {
            RPCError::Timeout(e) => StreamingError::Timeout(e),
            RPCError::Unreachable(e) => StreamingError::Unreachable(e),
            RPCError::Network(e) => StreamingError::Network(e),
            RPCError::RemoteError(e) => StreamingError::Unreachable(Unreachable::new(&e)),
        }
    }
}

impl<S: SnapshotWire> RaftNetworkV2<Tc> for PeerClient<S> {
    type SnapshotData = S;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Tc>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<Tc>, RPCError<Tc>> {
        let ttl = option.hard_ttl();
        self.call(Rpc::AppendEntries, &rpc, ttl)
            .await
            .map_err(|e| self.rpc_error(RPCTypes::AppendEntries, e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Tc>,
        option: RPCOption,
    ) -> Result<VoteResponse<Tc>, RPCError<Tc>> {
        let ttl = option.hard_ttl();
        self.call(Rpc::Vote, &rpc, ttl)
            .await
            .map_err(|e| self.rpc_error(RPCTypes::Vote, e))
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<Tc>,
        option: RPCOption,
    ) -> Result<VoteResponse<Tc>, RPCError<Tc>> {
        let ttl = option.hard_ttl();
        self.call(Rpc::PreVote, &rpc, ttl)
            .await
            .map_err(|e| self.rpc_error(RPCTypes::Vote, e))
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<Tc>,
        snapshot: SnapshotOf<Tc, S>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<Tc>, StreamingError<Tc>> {
        let ttl = option.hard_ttl();
        let prefix = S::prefix_reader(vote, &snapshot);
        let request = SnapshotRequest { vote, snapshot };
        let transfer = async {
            // A compacted partition's prefix goes first (decision 0017 §5).
            // Paced to `prefix_rate`, if set.
            if let Some(mut prefix) = prefix {
                let started = Instant::now();
                let mut sent = 0u64;
                while let Some(chunk) = prefix
                    .next_chunk()
                    .map_err(|e| StreamingError::Unreachable(Unreachable::new(&e)))?
                {
                    sent += chunk.batches.len() as u64;
                    let _: ChunkAck = self
                        .call(Rpc::SnapshotChunk, &chunk, ttl)
                        .await
                        .map_err(|e| self.streaming_error(e))?;
                    if let Some(rate) = self.prefix_rate {
                        tokio::time::sleep(pacing_delay(sent, rate, started.elapsed())).await;
                    }
                }
            }
            self.call(Rpc::FullSnapshot, &request, ttl)
                .await
                .map_err(|e| self.streaming_error(e))
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            answer = transfer => answer,
        }
    }

    async fn transfer_leader(
        &mut self,
        request: TransferLeaderRequest<Tc>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<Tc>, RPCError<Tc>> {
        let ttl = option.hard_ttl();
        self.call(Rpc::TransferLeader, &request, ttl)
            .await
            .map_err(|e| self.rpc_error(RPCTypes::TransferLeader, e))
    }
}

/// How long to wait, after `sent` bytes in `elapsed`, to stay at or below
/// `bytes_per_sec` on average.
fn pacing_delay(sent: u64, bytes_per_sec: u64, elapsed: Duration) -> Duration {
    let due = Duration::from_secs_f64(sent as f64 / bytes_per_sec.max(1) as f64);
    due.saturating_sub(elapsed)
}

#[cfg(test)]
mod pacing_tests {
    use super::*;

    /// A sender ahead of the rate waits for the difference; one behind it
    /// (a slow peer) does not wait at all.
    #[test]
    fn the_prefix_is_paced_to_its_rate() {
        let mib = 1024 * 1024;
        let ms = Duration::from_millis;
        assert_eq!(pacing_delay(4 * mib, 2 * mib, ms(500)), ms(1_500));
        assert_eq!(pacing_delay(mib, 2 * mib, ms(500)), Duration::ZERO);
        assert_eq!(pacing_delay(mib, 2 * mib, ms(900)), Duration::ZERO);
        assert_eq!(pacing_delay(3 * mib, mib, Duration::ZERO), ms(3_000));
    }
}
