//! The inbound side of the peer transport: [`PeerServer`] accepts peer
//! connections on a listener the caller bound ([`PeerServer::serve`]), or
//! is handed ones the caller accepted on a port it shares with clients
//! ([`PeerServer::serve_stream`]). Either way it checks the peer preamble
//! first, then decodes requests, hands each to the local `Raft` of its
//! group (found through a [`GroupRouter`]) and writes the answers back,
//! coalesced, on the same connection. Requests
//! run concurrently; each answer carries its request's id. A group this
//! broker does not host is answered with an error frame, which the asking
//! side maps to `Unreachable`. A call ([`Rpc::Call`]) goes to the router's
//! `call`, not to a group.

use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use citystream_cluster::MetadataRaft;
use citystream_raft::snapshot_prefix::{deliver_chunk, prepare_install};
use citystream_raft::{PartitionRaft, PartitionSnapshot, PrefixChunk, PrefixRefused, Tc};
use futures::future::{self, BoxFuture, FutureExt};
use openraft::Raft;
use openraft::raft::{AppendEntriesRequest, TransferLeaderRequest, VoteRequest};
use openraft::storage::RaftStateMachine;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::{FrameReader, WriteStats, write_coalesced};
use crate::frame::{self, ErrorCode, Frame, FrameKind, GroupId, PEER_PREAMBLE, RemoteError, Rpc};
use crate::message::{self, ChunkAck, SnapshotRequest, SnapshotWire, WireMessage};

/// Peer connections served at once; more wait in the listen backlog
/// (`serve`) or are closed (`serve_stream`).
const CONNECTIONS_MAX: usize = 256;
/// How long a new connection may take to send its preamble before it is
/// closed (it holds a connection slot meanwhile).
const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests of one connection being handled at once; reading pauses past it.
const REQUESTS_IN_FLIGHT_MAX: usize = 1024;
/// Encoded answers queued for one connection's writer. At least the
/// in-flight limit, so a handler never waits to queue its one answer (and
/// a closing connection's handlers all finish).
const RESPONSE_QUEUE_MAX: usize = REQUESTS_IN_FLIGHT_MAX;
/// The writer stops adding queued answers to a write past this size.
const WRITE_BYTES_MAX: usize = 1024 * 1024;

/// The local `Raft` of a group: a partition group's, or the metadata
/// group's (0), whose snapshots hold a different type.
#[derive(Clone)]
pub enum RaftHandle {
    Partition(PartitionRaft),
    Metadata(MetadataRaft),
}

impl From<PartitionRaft> for RaftHandle {
    fn from(raft: PartitionRaft) -> RaftHandle {
        RaftHandle::Partition(raft)
    }
}

impl From<MetadataRaft> for RaftHandle {
    fn from(raft: MetadataRaft) -> RaftHandle {
        RaftHandle::Metadata(raft)
    }
}

/// Finds the local replica of a group, and serves calls.
pub trait GroupRouter: Send + Sync + 'static {
    /// `None` if this broker hosts no replica of `group`.
    fn raft(&self, group: GroupId) -> Option<RaftHandle>;

    /// Told of each AppendEntries request for `group`, before its Raft
    /// handles it: the group's leader (or one that believes it is) is
    /// alive. By default, nothing.
    fn append_entries_arrived(&self, group: GroupId) {
        let _ = group;
    }

    /// The answer to one [`Rpc::Call`]: opaque bytes both ways, defined by
    /// the broker. Calls run concurrently with every other request, and
    /// may take as long as the caller's timeout. By default, refused.
    fn call(&self, payload: Bytes) -> BoxFuture<'static, Result<Bytes, RemoteError>> {
        drop(payload);
        let refused = RemoteError {
            code: ErrorCode::Unsupported,
            message: "calls are not served here".into(),
        };
        future::ready(Err(refused)).boxed()
    }
}

/// Accepts peer connections and serves their requests.
pub struct PeerServer {
    router: Arc<dyn GroupRouter>,
    /// One permit per connection served, [`CONNECTIONS_MAX`] in all.
    slots: Arc<Semaphore>,
    accepted: AtomicU64,
    stats: WriteStats,
}

/// Serves peers on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    router: Arc<dyn GroupRouter>,
    shutdown: CancellationToken,
) {
    PeerServer::new(router).serve(listener, shutdown).await
}

impl PeerServer {
    pub fn new(router: Arc<dyn GroupRouter>) -> Arc<PeerServer> {
        Arc::new(PeerServer {
            router,
            slots: Arc::new(Semaphore::new(CONNECTIONS_MAX)),
            accepted: AtomicU64::new(0),
            stats: WriteStats::default(),
        })
    }

    /// Connections accepted since start (with a peer preamble or not).
    pub fn connections_accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// `(writes, frames)` of answers sent so far, over all connections.
    pub fn answer_writes(&self) -> (u64, u64) {
        let writes = self.stats.writes.load(Ordering::Relaxed);
        (writes, self.stats.frames.load(Ordering::Relaxed))
    }

    /// Accepts and serves until `shutdown`; returns after every connection
    /// task has ended. Waits to accept while [`CONNECTIONS_MAX`]
    /// connections are served.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: CancellationToken) {
        let tasks = TaskTracker::new();
        // Ends on shutdown.
        loop {
            let slot = tokio::select! {
                _ = shutdown.cancelled() => break,
                slot = self.slots.clone().acquire_owned() => slot.expect("never closed"),
            };
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "peer accept failed");
                    continue;
                }
            };
            let (server, shutdown) = (self.clone(), shutdown.clone());
            tasks.spawn(async move { server.serve_accepted(stream, slot, shutdown).await });
        }
        tasks.close();
        tasks.wait().await;
    }

    /// Serves one connection that the caller accepted (on the shared
    /// native port, say, after peeking at [`PEER_PREAMBLE`]) until it
    /// closes, fails, or `shutdown`. Reads and checks the preamble itself:
    /// a connection without it is closed. Past [`CONNECTIONS_MAX`]
    /// connections served at once, closes it at once.
    pub async fn serve_stream(self: &Arc<Self>, stream: TcpStream, shutdown: CancellationToken) {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            tracing::warn!(
                max = CONNECTIONS_MAX,
                "too many peer connections; closed one"
            );
            return;
        };
        self.serve_accepted(stream, slot, shutdown).await
    }

    /// Serves one connection while holding its `_slot`.
    async fn serve_accepted(
        self: &Arc<Self>,
        mut stream: TcpStream,
        _slot: OwnedSemaphorePermit,
        shutdown: CancellationToken,
    ) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let remote = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        if let Err(reason) = read_preamble(&mut stream, &shutdown).await {
            tracing::debug!(%remote, %reason, "not a peer connection; closed");
            return;
        }
        tracing::debug!(%remote, "peer connected");
        self.clone().connection(stream, shutdown).await;
    }

    /// Serves one connection until it closes, fails, or shutdown.
    async fn connection(self: Arc<Self>, stream: TcpStream, shutdown: CancellationToken) {
        let _ = stream.set_nodelay(true);
        let (read_half, mut write_half) = stream.into_split();
        let (answers, mut queue) = mpsc::channel(RESPONSE_QUEUE_MAX);
        let handlers = TaskTracker::new();
        let in_flight = Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT_MAX));
        let read = async {
            let mut reader = FrameReader::new(read_half);
            // Ends on EOF, a read error, or a frame that is not a request.
            while let Ok(Some(frame)) = reader.next().await {
                if frame.header.kind != FrameKind::Request {
                    tracing::warn!("peer sent an answer on an inbound connection");
                    return;
                }
                let permit = in_flight
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("never closed");
                let (server, answers) = (self.clone(), answers.clone());
                let cancelled = shutdown.clone();
                handlers.spawn(async move {
                    tokio::select! {
                        _ = cancelled.cancelled() => {}
                        answer = server.answer(frame) => { let _ = answers.send(answer).await; }
                    }
                    drop(permit);
                });
            }
        };
        let write = write_coalesced(
            &mut write_half,
            None,
            &mut queue,
            WRITE_BYTES_MAX,
            &self.stats,
        );
        tokio::select! {
            _ = shutdown.cancelled() => {}
            () = read => {}
            _ = write => {}
        }
        handlers.close();
        handlers.wait().await;
    }

    /// The encoded answer frame to one request frame.
    async fn answer(&self, request: Frame) -> Bytes {
        let header = request.header;
        let result = match header.rpc {
            Rpc::Call => self.router.call(request.payload).await,
            rpc => self.raft_answer(header.group, rpc, request.payload).await,
        };
        let encoded = match result {
            Ok(payload) => frame::encode(&header.reply(FrameKind::Response), |out| {
                out.extend_from_slice(&payload)
            }),
            Err(error) => frame::encode(&header.reply(FrameKind::Error), |out| error.encode(out)),
        };
        encoded.unwrap_or_else(|too_large| {
            let error = RemoteError {
                code: ErrorCode::BadRequest,
                message: too_large.to_string(),
            };
            frame::encode(&header.reply(FrameKind::Error), |out| error.encode(out))
                .expect("an error frame is small")
        })
    }

    /// The answer of `group`'s local Raft to a Raft rpc.
    async fn raft_answer(
        &self,
        group: GroupId,
        rpc: Rpc,
        payload: Bytes,
    ) -> Result<Bytes, RemoteError> {
        let Some(raft) = self.router.raft(group) else {
            return Err(RemoteError {
                code: ErrorCode::UnknownGroup,
                message: format!("no replica of {group} here"),
            });
        };
        if rpc == Rpc::AppendEntries {
            self.router.append_entries_arrived(group);
        }
        let answer = dispatch(&raft, rpc, payload).await?;
        Ok(answer.freeze())
    }
}

/// Reads the first bytes of a connection; `Err` says why they are not
/// [`PEER_PREAMBLE`].
async fn read_preamble(stream: &mut TcpStream, shutdown: &CancellationToken) -> Result<(), String> {
    let mut preamble = [0; PEER_PREAMBLE.len()];
    let read = tokio::time::timeout(PREAMBLE_TIMEOUT, stream.read_exact(&mut preamble));
    let read = tokio::select! {
        _ = shutdown.cancelled() => return Err("shutdown".into()),
        read = read => read,
    };
    match read {
        Err(_) => Err(format!("no preamble within {PREAMBLE_TIMEOUT:?}")),
        Ok(Err(error)) => Err(format!("reading the preamble failed: {error}")),
        Ok(Ok(_)) if preamble != PEER_PREAMBLE => Err(format!("wrong preamble {preamble:?}")),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Calls the Raft API that `rpc` names on whichever kind of group `raft`
/// is; returns the encoded answer.
async fn dispatch(raft: &RaftHandle, rpc: Rpc, payload: Bytes) -> Result<BytesMut, RemoteError> {
    match raft {
        RaftHandle::Partition(raft) => dispatch_to_partition(raft, rpc, payload).await,
        RaftHandle::Metadata(_) if rpc == Rpc::SnapshotChunk => Err(RemoteError {
            code: ErrorCode::BadRequest,
            message: "the metadata group's snapshots carry no prefix".into(),
        }),
        RaftHandle::Metadata(raft) => dispatch_to(raft, rpc, payload).await,
    }
}

/// A partition group's snapshot may carry its log's prefix (a compacted
/// topic, decision 0017 §5): its chunks are staged first, and the snapshot
/// is installed only once they are all there.
async fn dispatch_to_partition(
    raft: &PartitionRaft,
    rpc: Rpc,
    payload: Bytes,
) -> Result<BytesMut, RemoteError> {
    match rpc {
        Rpc::SnapshotChunk => {
            let chunk: PrefixChunk = decode_request(payload)?;
            deliver_chunk(raft, chunk).await.map_err(prefix_refused)?;
            encode_answer(Ok::<_, RemoteError>(ChunkAck))
        }
        Rpc::FullSnapshot => {
            let request: SnapshotRequest<PartitionSnapshot> = decode_request(payload)?;
            prepare_install(raft, request.vote, &request.snapshot)
                .await
                .map_err(prefix_refused)?;
            encode_answer(
                raft.install_full_snapshot(request.vote, request.snapshot)
                    .await,
            )
        }
        _ => dispatch_to(raft, rpc, payload).await,
    }
}

fn prefix_refused(refused: PrefixRefused) -> RemoteError {
    let code = match refused {
        PrefixRefused::Refused(_) => ErrorCode::CallFailed,
        PrefixRefused::Stopped => ErrorCode::RaftStopped,
    };
    RemoteError {
        code,
        message: refused.to_string(),
    }
}

async fn dispatch_to<SM>(
    raft: &Raft<Tc, SM>,
    rpc: Rpc,
    payload: Bytes,
) -> Result<BytesMut, RemoteError>
where
    SM: RaftStateMachine<Tc>,
    SM::SnapshotData: SnapshotWire,
{
    match rpc {
        Rpc::AppendEntries => {
            let request: AppendEntriesRequest<_> = decode_request(payload)?;
            encode_answer(raft.append_entries(request).await)
        }
        Rpc::Vote => {
            let request: VoteRequest<_> = decode_request(payload)?;
            encode_answer(raft.vote(request).await)
        }
        Rpc::PreVote => {
            let request: VoteRequest<_> = decode_request(payload)?;
            encode_answer(raft.pre_vote(request).await)
        }
        Rpc::FullSnapshot => {
            let request: SnapshotRequest<SM::SnapshotData> = decode_request(payload)?;
            encode_answer(
                raft.install_full_snapshot(request.vote, request.snapshot)
                    .await,
            )
        }
        Rpc::TransferLeader => {
            let request: TransferLeaderRequest<_> = decode_request(payload)?;
            encode_answer(raft.handle_transfer_leader(request).await)
        }
        Rpc::Call => unreachable!("calls are answered by the router, not a group"),
        Rpc::SnapshotChunk => unreachable!("snapshot chunks are answered by a partition group"),
    }
}

fn decode_request<M: WireMessage>(payload: Bytes) -> Result<M, RemoteError> {
    message::decode(payload).map_err(|e| RemoteError {
        code: ErrorCode::BadRequest,
        message: e.to_string(),
    })
}

/// A Raft API error means the group's Raft has stopped (the only error
/// these calls return).
fn encode_answer<M: WireMessage, E: Display>(
    answer: Result<M, E>,
) -> Result<BytesMut, RemoteError> {
    let answer = answer.map_err(|e| RemoteError {
        code: ErrorCode::RaftStopped,
        message: e.to_string(),
    })?;
    let mut out = BytesMut::new();
    message::encode(&answer, &mut out);
    Ok(out)
}
