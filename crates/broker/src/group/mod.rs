//! Consumer groups: the membership state machine ([`coordinator`]), the
//! partition assignment ([`assignor`]) and the types the facade exposes.
//! Committed offsets are not here: they live in [`crate::offsets`], because
//! they outlive membership (and a broker restart) and need the log.

pub mod assignor;
pub mod coordinator;
mod membership;

pub use coordinator::GroupCoordinator;

use crate::BrokerError;

/// A partition a group member owns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupPartition {
    pub topic: String,
    pub partition: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub group: String,
    /// Empty on first join.
    pub member_id: String,
    pub client_id: String,
    pub topics: Vec<String>,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub generation: u32,
    pub member_id: String,
    pub assignment: Vec<GroupPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOverview {
    pub group: String,
    /// "Empty", "Rebalancing" or "Stable".
    pub state: &'static str,
    pub generation: u32,
    pub members: Vec<MemberOverview>,
    /// (partition, committed offset, high watermark) for each committed partition.
    pub offsets: Vec<(GroupPartition, u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberOverview {
    pub member_id: String,
    pub client_id: String,
    pub assignment: Vec<GroupPartition>,
}

/// Resolves when a blocking join completes (or fails).
pub type JoinTicket = tokio::sync::oneshot::Receiver<Result<JoinResult, BrokerError>>;

/// Partition count of a topic as the coordinator sees it (0: no such topic).
pub type PartitionCount<'a> = &'a dyn Fn(&str) -> u32;

#[cfg(test)]
mod tests;
