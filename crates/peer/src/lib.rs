//! The broker-to-broker transport of Raft (decision 0007): every Raft group
//! a broker hosts, the metadata group (0) included, talks to a given peer
//! broker over one shared TCP connection, and one writer task per
//! connection coalesces whatever is queued (heartbeats of many groups
//! included) into one write. The same connection carries calls: opaque
//! request/response between brokers outside Raft. A connection starts with
//! [`PEER_PREAMBLE`], so peers can share the broker's native client port.
//!
//! Module map: `wire` (little-endian primitives), `frame` (the preamble
//! and the envelope: length, kind, request id, group id, rpc), `message`
//! (the openraft RPC payloads; `message::snapshot` the snapshot data of a
//! partition group and of the metadata group); these three are pure. The
//! I/O shell: `connection` (the coalescing writer and frame reader both
//! ends use), `link` (the client end of one connection: lazy connect,
//! preamble, reconnect with capped backoff, pending requests by id),
//! `network` (openraft's `RaftNetworkFactory` and `RaftNetworkV2` over
//! links, generic over the snapshot data), `call` (`PeerNetwork::call`),
//! `server` (accepts peers or is handed their connections, dispatches
//! Raft requests to the local group's `Raft`, a partition's or the
//! metadata group's, and calls to the router).
//!
//! Not here: group membership, the heartbeat ticker, peer discovery,
//! authentication/TLS and the handshake of 0005 §4 (see 0007).

mod call;
mod connection;
pub mod frame;
mod link;
pub mod message;
mod network;
mod server;
pub mod wire;

pub use call::CallError;
pub use frame::{ErrorCode, FRAME_BYTES_MAX, GroupId, PEER_PREAMBLE, RemoteError};
pub use link::{LinkConfig, LinkError};
pub use message::SnapshotWire;
pub use network::{GroupNetworkFactory, LinkStats, PeerClient, PeerNetwork};
pub use server::{GroupRouter, PeerServer, RaftHandle, serve};
