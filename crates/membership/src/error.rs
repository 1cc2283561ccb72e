//! Typed errors of this crate: [`MembershipError`] for starting, updating and stopping
//! membership and discovery, and [`DecodeError`] for a peer's key-values that cannot be
//! read as a [`crate::NodeInfo`]. Decode errors never leave the crate as failures: a
//! malformed peer is left out of the member list and logged once.

use std::net::SocketAddr;

/// What can go wrong when starting, updating or stopping membership or discovery.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// The configuration was refused before anything was bound.
    #[error("invalid membership configuration: {reason}")]
    InvalidConfig { reason: String },

    /// The initial `NodeInfo` names another node or cluster than the configuration.
    #[error(
        "node info is for node {info_node_id} of cluster {info_cluster_id:?}, \
         but the configuration is for node {config_node_id} of cluster {config_cluster_id:?}"
    )]
    IdentityMismatch {
        config_node_id: u32,
        config_cluster_id: String,
        info_node_id: u32,
        info_cluster_id: String,
    },

    /// `update_local` tried to change the node id, cluster id or generation.
    #[error("node id, cluster id and generation are fixed for the life of a membership")]
    IdentityChanged,

    /// A listener or group name cannot be written into the key schema.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },

    /// An encoded value would not fit in one gossip datagram.
    #[error("value of key {key:?} is {value_bytes} bytes, the limit is {limit_bytes}")]
    ValueTooLarge {
        key: String,
        value_bytes: usize,
        limit_bytes: usize,
    },

    /// A UDP socket could not be bound or configured.
    #[error("cannot {action} UDP socket {addr}: {source}")]
    Socket {
        action: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    /// The gossip server (chitchat) failed to start or stopped with an error.
    #[error("gossip server: {0}")]
    Gossip(String),
}

/// Why a peer's key-values could not be read as a `NodeInfo`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A key every node writes is absent.
    #[error("required key {0:?} is missing")]
    MissingKey(&'static str),

    /// A value could not be parsed.
    #[error("key {key:?} has malformed value {value:?}")]
    Malformed { key: String, value: String },

    /// The peer writes a key schema this node does not understand.
    #[error("unsupported schema version {0:?}")]
    UnsupportedSchema(String),

    /// The `node_id` key disagrees with the gossip identity.
    #[error("node_id key {in_value} differs from the gossip identity {in_identity:?}")]
    NodeIdMismatch { in_value: u32, in_identity: String },
}
