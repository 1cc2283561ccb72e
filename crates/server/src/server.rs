//! The listener side of the shell: validates the configuration, starts the
//! timers, accepts connections up to `connections_max`, and runs the shutdown
//! sequence (stop accepting, drain connections, stop timers, close the
//! broker). What happens on one socket is `connection.rs`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citystream_broker::Broker;
use citystream_membership::MemberView;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::load::LoadMeter;
use crate::node::ClusterNode;
use crate::{
    SHUTDOWN_DRAIN_MS, ServeOptions, ServerConfig, ServerError, cluster, connection, timers,
};

/// First pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF_MS_MIN: u64 = 10;
/// Longest pause between `accept` retries; the loop never gives up, since a
/// broker that stops listening on a transient error is worse than a slow one.
const ACCEPT_BACKOFF_MS_MAX: u64 = 1_000;
/// How long a new connection may take to show whether it is a peer's.
const PREAMBLE_WAIT_MS: u64 = 2_000;

/// What every connection and request task of one server shares.
pub(crate) struct Shared {
    pub(crate) broker: Arc<Broker>,
    pub(crate) config: ServerConfig,
    /// Every connection and request task, so shutdown can wait for them.
    pub(crate) tasks: TaskTracker,
    /// Bytes in and out, for gossip and ClusterStatus.
    pub(crate) load: LoadMeter,
    /// Partition replication in cluster mode; `None` standalone.
    pub(crate) node: Option<Arc<ClusterNode>>,
    /// The gossip member list in cluster mode; `None` standalone.
    pub(crate) members: Option<watch::Receiver<Vec<MemberView>>>,
    /// When this server started (ms since the Unix epoch): its generation.
    pub(crate) started_ms: u64,
    /// The coordinator's local copy of the replicated group offsets
    /// (cluster mode; unused standalone).
    pub(crate) offsets_mirror: crate::handlers::coordinator::OffsetsMirror,
}

/// Body of [`crate::serve`].
pub(crate) async fn run(
    listener: TcpListener,
    broker: Arc<Broker>,
    config: ServerConfig,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    check_config(&config)?;
    let members = options
        .membership
        .as_ref()
        .map(|membership| membership.watch());
    let node = match options.cluster {
        Some(cluster) => {
            Some(ClusterNode::start(cluster, Arc::clone(&broker), members.clone()).await?)
        }
        None => None,
    };
    let shared = Arc::new(Shared {
        broker: Arc::clone(&broker),
        node,
        config,
        tasks: TaskTracker::new(),
        load: LoadMeter::new(Instant::now()),
        members,
        started_ms: u64::try_from(crate::clock::now_ms()).unwrap_or_default(),
        offsets_mirror: Default::default(),
    });
    if let Some(node) = &shared.node {
        let handler = crate::handlers::coordinator::native_handler(Arc::downgrade(&shared));
        let _ = node.groups.native.set(handler);
    }
    let timers_stop = CancellationToken::new();
    let timers = timers::start(&shared, &timers_stop);
    let cluster_stop = CancellationToken::new();
    let cluster = options.membership.map(|membership| {
        cluster::start(
            membership,
            options.discovery,
            Arc::clone(&shared),
            cluster_stop.clone(),
        )
    });
    tracing::info!(
        node = broker.config().node_id,
        address = ?listener.local_addr().ok(),
        cluster_mode = cluster.is_some(),
        "accepting connections"
    );
    if let Some(local) = &options.local {
        local.serve(&shared, shutdown.child_token());
    }
    accept_loop(&listener, &shared, &shutdown).await;
    drop(listener);
    drain(&shared.tasks).await;
    // Gossip goes on while the last requests finish, then stops before the
    // logs are closed: peers see this node leave as soon as it stops serving.
    cluster_stop.cancel();
    if let Some(cluster) = cluster
        && let Err(error) = cluster.await
    {
        tracing::warn!(%error, "the cluster task failed");
    }
    if let Some(node) = &shared.node {
        node.shutdown().await;
    }
    // Timers stop after the connections so joins and sessions keep being
    // driven while the last requests finish.
    timers_stop.cancel();
    timers.wait().await;
    broker.close()?;
    tracing::info!("server stopped");
    Ok(())
}

/// Rejects settings that would make the server hang or panic later.
fn check_config(config: &ServerConfig) -> io::Result<()> {
    let problem = if config.connections_max == 0 {
        "connections_max must be at least 1"
    } else if config.in_flight_per_connection_max == 0 {
        "in_flight_per_connection_max must be at least 1"
    } else if config.tick_interval_ms == 0 {
        "tick_interval_ms must be at least 1"
    } else if (config.frame_bytes_max as usize) < citystream_protocol::REQUEST_HEADER_BYTES {
        "frame_bytes_max cannot hold a request header"
    } else {
        return Ok(());
    };
    Err(io::Error::new(io::ErrorKind::InvalidInput, problem))
}

/// Accepts until `shutdown` is cancelled.
async fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, shutdown: &CancellationToken) {
    let slots = Arc::new(Semaphore::new(shared.config.connections_max));
    let mut backoff_ms = ACCEPT_BACKOFF_MS_MIN;
    loop {
        let slot = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            slot = connection_slot(&slots, shared.config.connections_max) => slot,
        };
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff_ms = ACCEPT_BACKOFF_MS_MIN;
                spawn_connection(shared, stream, peer, slot, shutdown);
            }
            Err(error) => {
                tracing::warn!(%error, backoff_ms, "accept failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(backoff_ms)) => {}
                }
                backoff_ms = (backoff_ms * 2).min(ACCEPT_BACKOFF_MS_MAX);
            }
        }
    }
}

/// Waits for a free connection slot. At the limit the listener simply stops
/// accepting (new peers wait in the kernel backlog) until a connection closes.
async fn connection_slot(slots: &Arc<Semaphore>, connections_max: usize) -> OwnedSemaphorePermit {
    if let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
        return slot;
    }
    tracing::warn!(
        connections_max,
        "connection limit reached; accepting again when one closes"
    );
    Arc::clone(slots)
        .acquire_owned()
        .await
        .expect("the connection semaphore is never closed")
}

fn spawn_connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    shutdown: &CancellationToken,
) {
    // Responses are small and latency-bound; Nagle would delay them.
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "could not disable Nagle's algorithm");
    }
    let span = tracing::info_span!("connection", node = shared.broker.config().node_id, %peer);
    let (shared, stop) = (Arc::clone(shared), shutdown.child_token());
    shared.clone().tasks.spawn(
        async move {
            // Raft traffic from peers shares the port: told apart by its
            // preamble, which no native frame can start with.
            if let Some(node) = &shared.node
                && starts_with_peer_preamble(&stream).await
            {
                node.spawn_peer(stream);
            } else {
                connection::run(stream, shared, stop).await;
            }
            drop(slot);
        }
        .instrument(span),
    );
}

/// Whether the first bytes a connection sends are the peer preamble. A
/// native client's first byte (a frame length's high byte) differs from
/// the preamble's at once; a silent connection counts as native.
async fn starts_with_peer_preamble(stream: &TcpStream) -> bool {
    let preamble = citystream_peer::PEER_PREAMBLE;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(PREAMBLE_WAIT_MS);
    let mut seen = [0u8; 8];
    loop {
        let read = tokio::time::timeout_at(deadline, stream.peek(&mut seen)).await;
        let Ok(Ok(len)) = read else { return false };
        if len == 0 || seen[..len] != preamble[..len] {
            return false;
        }
        if len == preamble.len() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits, bounded by [`SHUTDOWN_DRAIN_MS`], for connections to flush their
/// last responses and close.
async fn drain(tasks: &TaskTracker) {
    tasks.close();
    let drain = Duration::from_millis(SHUTDOWN_DRAIN_MS);
    if tokio::time::timeout(drain, tasks.wait()).await.is_err() {
        tracing::warn!(
            tasks = tasks.len(),
            drain_ms = SHUTDOWN_DRAIN_MS,
            "shutdown drain timed out; abandoning the remaining requests"
        );
    }
}
