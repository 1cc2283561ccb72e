//! The I/O shell of a citystream broker: it accepts native-protocol TCP
//! connections, decodes frames, dispatches each request to the broker domain
//! and writes responses, runs the housekeeping timers (group ticks, interval
//! fsync, retention) and shuts everything down cleanly on a cancellation
//! token. Listeners are bound by the caller so tests can use port 0.
//!
//! Module map: `server` (accept loop, timers, shutdown order), `connection`
//! (one socket: framing, handshake gate, pipelined request tasks),
//! `dispatch` (the one `Request` -> handler match), `handlers/` (one file per
//! resource), `errors` (the one `BrokerError` -> wire error mapping),
//! `writer` (response queue to socket), `timers` (tick and interval fsync),
//! `local` (the same dispatch for clients in this process, no socket),
//! `clock` (wall time for the domain), `identity` (`node.json`: which node
//! of which cluster a data dir belongs to), `cluster` (cluster mode: load
//! into gossip, discovery, gossip shutdown), `load` (byte rates).
//!
//! Standalone ([`serve`]) and cluster mode ([`serve_with`] and a
//! [`Membership`]) differ only in where the node list comes from; partition
//! replication is not wired in yet, so each node serves its own partitions.

mod clock;
mod cluster;
mod connection;
mod dispatch;
mod errors;
mod handlers;
pub mod identity;
mod load;
mod local;
mod metrics;
mod node;
mod server;
mod timers;
mod writer;

use std::sync::Arc;

use citystream_broker::Broker;
use citystream_membership::{Discovery, Membership};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for in-flight requests to finish and their
/// responses to be flushed before giving up on them.
pub const SHUTDOWN_DRAIN_MS: u64 = 5_000;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub cluster_id: String,
    /// Address clients should use to reach this node (metadata answers).
    pub advertised_address: String,
    pub frame_bytes_max: u32,
    pub connections_max: usize,
    /// Requests of one connection processed concurrently (pipelining depth).
    pub in_flight_per_connection_max: usize,
    /// Period of `Broker::tick` (group sessions, rebalances, retention).
    pub tick_interval_ms: u64,
    /// Upper bound on a fetch's long-poll wait.
    pub fetch_wait_ms_max: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            cluster_id: "citystream".to_string(),
            advertised_address: "127.0.0.1:9400".to_string(),
            frame_bytes_max: citystream_protocol::FRAME_BYTES_MAX_DEFAULT,
            connections_max: 10_000,
            in_flight_per_connection_max: 64,
            tick_interval_ms: 100,
            fetch_wait_ms_max: 30_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("broker error: {0}")]
    Broker(#[from] citystream_broker::BrokerError),
}

pub use citystream_raft::Timing;
pub use cluster::LOAD_PUBLISH_MS;
pub use identity::{IdentityError, NodeIdentity};
pub use local::Local;
pub use node::ClusterConfig;

/// What a server runs besides its listener; the default is a standalone
/// broker.
#[derive(Default)]
pub struct ServeOptions {
    /// Gossip membership, started by the caller: cluster mode. The server
    /// lists its members in Metadata and ClusterStatus, publishes this
    /// node's load into it, and shuts it down on shutdown.
    pub membership: Option<Membership>,
    /// Multicast discovery feeding `membership` (ignored without it).
    pub discovery: Option<Discovery>,
    /// Partition replication (Raft): topics in a metadata group, each
    /// partition a Raft group over its replicas. Peer (Raft) connections
    /// share the native listener.
    pub cluster: Option<ClusterConfig>,
    /// Served once the server serves: the door for this process's own
    /// clients (decision 0021).
    pub local: Option<Local>,
}

/// Serves a standalone broker: [`serve_with`] and no membership.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    config: ServerConfig,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    serve_with(listener, broker, config, ServeOptions::default(), shutdown).await
}

/// Serves `listener` until `shutdown` is cancelled, then stops accepting,
/// lets in-flight requests finish (bounded), stops gossip (if any) and the
/// timers, and syncs the logs (`Broker::close`).
pub async fn serve_with(
    listener: TcpListener,
    broker: Arc<Broker>,
    config: ServerConfig,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    server::run(listener, broker, config, options, shutdown).await
}
