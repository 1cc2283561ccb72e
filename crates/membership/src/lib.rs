//! Gossip membership for citystream: every broker publishes its listener addresses,
//! load and the Raft groups it leads, and learns the same about every other broker,
//! with liveness (`Alive`, `Suspect`, `Dead`) from chitchat's phi-accrual failure
//! detector. Optional LAN discovery by UDP multicast finds peers without a seed list.
//!
//! Gossip carries hints for routing and the console; Raft stays the source of truth
//! for which brokers are members and who leads what. See
//! `docs/decisions/0006-gossip-membership.md`.
//!
//! Layout: pure parts (`node_info`: the key schema; `view`: the member list and its
//! states; `discovery::announcement`: the multicast payload) and the I/O shell
//! (`membership`, `transport`, `discovery`).

mod config;
pub mod discovery;
mod error;
mod membership;
pub mod node_info;
mod transport;
mod view;

pub use config::{
    DEAD_NODE_GRACE_MS_DEFAULT, GOSSIP_INTERVAL_MS_DEFAULT, MembershipConfig,
    PHI_THRESHOLD_DEFAULT, SUSPECT_AFTER_MS_DEFAULT,
};
pub use discovery::{Discovery, DiscoveryConfig};
pub use error::{DecodeError, MembershipError};
pub use membership::Membership;
pub use node_info::{LeaderHint, NodeId, NodeInfo, NodeLoad};
pub use view::{MemberState, MemberView};
