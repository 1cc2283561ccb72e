//! The client end of one peer connection ([`Link`]): every group of the
//! local broker sends its requests to a given peer through the same link.
//! Requests are multiplexed by `request_id`; a pending map hands each
//! response to the caller waiting for it. The link connects lazily (on the
//! first frame), writes the peer preamble first on every connection, fails
//! everything pending when the connection drops, and reconnects with capped
//! exponential backoff, failing requests at once while the peer is down so
//! openraft backs off instead of waiting out its timeouts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::connection::{FrameReader, WriteStats, write_coalesced};
use crate::frame::{
    self, Frame, FrameHeader, FrameKind, FrameTooLarge, GroupId, PEER_PREAMBLE, RemoteError, Rpc,
};
use crate::wire::DecodeError;

/// Limits and timing of a link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Encoded frames queued for the writer, per peer.
    pub outbound_queue_max: usize,
    /// Requests awaiting a response, per peer.
    pub pending_max: usize,
    /// The writer stops adding queued frames to a write past this size.
    pub write_bytes_max: usize,
    pub connect_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// The most bytes a second a leader sends of a compacted partition's
    /// log to a follower that is behind or new (decision 0017 §5), so a
    /// catch-up leaves room for live traffic; `None`: no cap.
    pub snapshot_prefix_bytes_per_sec: Option<u64>,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            outbound_queue_max: 4096,
            pending_max: 4096,
            write_bytes_max: 1024 * 1024,
            connect_timeout: Duration::from_secs(1),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
            snapshot_prefix_bytes_per_sec: None,
        }
    }
}

/// Why a request to a peer got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("peer {node} at {addr} is unreachable: {reason}")]
    Unreachable {
        node: u64,
        addr: String,
        reason: String,
    },
    #[error("connection to peer {node} closed before it answered")]
    Disconnected { node: u64 },
    #[error("outbound queue to peer {node} is full ({max} frames)")]
    QueueFull { node: u64, max: usize },
    #[error("{max} requests to peer {node} are already in flight")]
    TooManyPending { node: u64, max: usize },
    #[error("the peer network is shut down")]
    Shutdown,
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("undecodable answer: {0}")]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    TooLarge(#[from] FrameTooLarge),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

type Waiter = oneshot::Sender<Result<Frame, LinkError>>;

/// One peer's connection, shared by every group.
pub(crate) struct Link {
    node: u64,
    addr: Mutex<String>,
    config: LinkConfig,
    queue: mpsc::Sender<Bytes>,
    pending: Mutex<HashMap<u32, Waiter>>,
    next_request_id: AtomicU32,
    pub(crate) stats: WriteStats,
    pub(crate) connects: AtomicU64,
}

/// Removes a request from the pending map when its caller stops waiting
/// (answered, timed out, or dropped by openraft).
struct PendingGuard<'a> {
    link: &'a Link,
    request_id: u32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.link.pending.lock().remove(&self.request_id);
    }
}

impl Link {
    /// A link to `node` at `addr` and the receiving end of its queue, for
    /// [`Link::run`].
    pub fn new(node: u64, addr: String, config: LinkConfig) -> (Arc<Link>, mpsc::Receiver<Bytes>) {
        let (queue, receiver) = mpsc::channel(config.outbound_queue_max);
        let link = Link {
            node,
            addr: Mutex::new(addr),
            config,
            queue,
            pending: Mutex::new(HashMap::new()),
            next_request_id: AtomicU32::new(1),
            stats: WriteStats::default(),
            connects: AtomicU64::new(0),
        };
        (Arc::new(link), receiver)
    }

    /// Points later connects at `addr` (the membership may move a broker).
    pub fn set_addr(&self, addr: &str) {
        let mut current = self.addr.lock();
        if *current != addr {
            *current = addr.to_owned();
        }
    }

    /// Sends one request and waits at most `timeout` for its answer.
    pub async fn call(
        &self,
        group: GroupId,
        rpc: Rpc,
        write_payload: impl FnOnce(&mut BytesMut),
        timeout: Duration,
    ) -> Result<Bytes, LinkError> {
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let header = FrameHeader {
            kind: FrameKind::Request,
            request_id,
            group,
            rpc,
        };
        let frame = frame::encode(&header, write_payload)?;
        let (answer, waiter) = oneshot::channel();
        let _guard = self.register(request_id, answer)?;
        self.queue.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => LinkError::QueueFull {
                node: self.node,
                max: self.config.outbound_queue_max,
            },
            mpsc::error::TrySendError::Closed(_) => LinkError::Shutdown,
        })?;
        let frame = match tokio::time::timeout(timeout, waiter).await {
            Err(_) => return Err(LinkError::Timeout(timeout)),
            Ok(Err(_)) => return Err(LinkError::Shutdown),
            Ok(Ok(answer)) => answer?,
        };
        match frame.header.kind {
            FrameKind::Error => Err(RemoteError::decode(frame.payload)?.into()),
            _ => Ok(frame.payload),
        }
    }

    fn register(&self, request_id: u32, answer: Waiter) -> Result<PendingGuard<'_>, LinkError> {
        let mut pending = self.pending.lock();
        if pending.len() >= self.config.pending_max {
            return Err(LinkError::TooManyPending {
                node: self.node,
                max: self.config.pending_max,
            });
        }
        let previous = pending.insert(request_id, answer);
        assert!(
            previous.is_none(),
            "request id {request_id} reused while pending"
        );
        Ok(PendingGuard {
            link: self,
            request_id,
        })
    }

    /// Answers every pending request with `error`.
    fn fail_pending(&self, error: &LinkError) {
        let pending = std::mem::take(&mut *self.pending.lock());
        for (_, waiter) in pending {
            let _ = waiter.send(Err(error.clone()));
        }
    }

    fn deliver(&self, frame: Frame) {
        if frame.header.kind == FrameKind::Request {
            tracing::warn!(
                node = self.node,
                "peer sent a request on an outbound link; ignored"
            );
            return;
        }
        // A missing waiter timed out or was dropped: the answer is late.
        if let Some(waiter) = self.pending.lock().remove(&frame.header.request_id) {
            let _ = waiter.send(Ok(frame));
        }
    }

    /// The link's task: connect on demand, pump frames both ways, and
    /// reconnect after failures. Returns once `shutdown` is cancelled.
    pub async fn run(
        self: Arc<Self>,
        mut queue: mpsc::Receiver<Bytes>,
        shutdown: CancellationToken,
    ) {
        let mut backoff = self.config.backoff_min;
        // Exits only on shutdown; every round waits for a frame or a backoff.
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                first = queue.recv() => match first { Some(f) => f, None => break },
            };
            match self.connect().await {
                Ok(stream) => {
                    backoff = self.config.backoff_min;
                    let reason = self.pump(stream, first, &mut queue, &shutdown).await;
                    tracing::debug!(node = self.node, %reason, "peer connection ended");
                    self.fail_pending(&LinkError::Disconnected { node: self.node });
                    // Their callers were just failed; do not send them late.
                    while queue.try_recv().is_ok() {}
                }
                Err(error) => {
                    tracing::debug!(node = self.node, %error, "peer connect failed");
                    self.fail_pending(&error);
                    if !self
                        .fail_fast_for(backoff, &mut queue, &error, &shutdown)
                        .await
                    {
                        break;
                    }
                    backoff = (backoff * 2).min(self.config.backoff_max);
                }
            }
        }
        self.fail_pending(&LinkError::Shutdown);
    }

    async fn connect(&self) -> Result<TcpStream, LinkError> {
        let addr = self.addr.lock().clone();
        let unreachable = |reason: String| LinkError::Unreachable {
            node: self.node,
            addr: addr.clone(),
            reason,
        };
        let mut stream =
            tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(&addr))
                .await
                .map_err(|_| unreachable("connect timed out".into()))?
                .map_err(|e| unreachable(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| unreachable(e.to_string()))?;
        // Tells the far side's shared port that this is a peer, not a client.
        stream
            .write_all(&PEER_PREAMBLE)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        self.connects.fetch_add(1, Ordering::Relaxed);
        Ok(stream)
    }

    /// Waits out `backoff`, failing whatever is sent meanwhile; false on
    /// shutdown.
    async fn fail_fast_for(
        &self,
        backoff: Duration,
        queue: &mut mpsc::Receiver<Bytes>,
        error: &LinkError,
        shutdown: &CancellationToken,
    ) -> bool {
        let deadline = tokio::time::sleep(backoff);
        tokio::pin!(deadline);
        // Ends at the deadline or on shutdown.
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = &mut deadline => return true,
                frame = queue.recv() => match frame {
                    // Everything pending is unsent now: the link is down.
                    Some(_) => self.fail_pending(error),
                    None => return false,
                },
            }
        }
    }

    /// Runs one connection until it fails or shutdown; says why it ended.
    async fn pump(
        &self,
        stream: TcpStream,
        first: Bytes,
        queue: &mut mpsc::Receiver<Bytes>,
        shutdown: &CancellationToken,
    ) -> String {
        let (read_half, mut write_half) = stream.into_split();
        let mut reader = FrameReader::new(read_half);
        let write_bytes_max = self.config.write_bytes_max;
        let writer = write_coalesced(
            &mut write_half,
            Some(first),
            queue,
            write_bytes_max,
            &self.stats,
        );
        let read = async {
            // Ends on EOF or a read error.
            loop {
                match reader.next().await {
                    Ok(Some(frame)) => self.deliver(frame),
                    Ok(None) => return "peer closed the connection".to_string(),
                    Err(e) => return format!("read failed: {e}"),
                }
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => "shutdown".into(),
            reason = read => reason,
            written = writer => match written {
                Ok(()) => "outbound queue closed".into(),
                Err(e) => format!("write failed: {e}"),
            },
        }
    }
}
