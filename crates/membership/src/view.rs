//! The member list a caller sees, derived from samples of the gossip state. Pure: the
//! shell passes the samples and the current instant; nothing here reads a clock.
//!
//! States, from the phi-accrual detector of chitchat plus a local "last heard" clock:
//! - `Alive`: live for the detector and its heartbeat advanced within `suspect_after`.
//! - `Dead`: the detector has declared this generation dead (phi over the threshold) and
//!   it has been silent for longer than `suspect_after`.
//! - `Suspect`: anything between: live but silent for longer than `suspect_after`, or
//!   "dead" while heard from recently, which is how chitchat labels a node it has seen
//!   fewer than two heartbeats of (a joining or restarted node). A member first seen
//!   after this node started is also `Suspect` for up to `suspect_after`, because only
//!   then can this node know that it is silent.
//!
//! `suspect_after` must stay below the detector's dead time (see the config), or a
//! dying node goes from `Alive` straight to `Dead`.
//!
//! One entry per node id: when a node restarts, its new generation replaces the old one
//! (the old generation turns dead in chitchat and is garbage collected later). Members
//! whose key-values do not decode, or that carry another `cluster_id`, are left out and
//! reported so the shell can log them once.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::error::DecodeError;
use crate::node_info::{NodeId, NodeInfo};

/// Liveness of a member as seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberState {
    Alive,
    Suspect,
    Dead,
}

/// One member of the cluster as seen from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub info: NodeInfo,
    pub state: MemberState,
    /// Where this member gossips.
    pub gossip_addr: SocketAddr,
    /// Time since this node last saw the member's heartbeat advance (zero for self).
    pub silent_for: Duration,
    /// True for the node this membership runs on.
    pub is_self: bool,
}

impl MemberView {
    /// Equal in everything but `silent_for`, which changes on every look.
    pub fn same_except_timing(&self, other: &MemberView) -> bool {
        self.info == other.info
            && self.state == other.state
            && self.gossip_addr == other.gossip_addr
            && self.is_self == other.is_self
    }
}

/// True if both lists hold the same members in the same states, ignoring `silent_for`.
pub fn same_members(left: &[MemberView], right: &[MemberView]) -> bool {
    left.len() == right.len() && left.iter().zip(right).all(|(l, r)| l.same_except_timing(r))
}

/// What chitchat's failure detector says about one generation of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorVerdict {
    Live,
    Dead,
    /// Known but not yet judged (fewer than two heartbeats).
    Unknown,
}

/// One generation of one node as read from the gossip state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSample {
    pub gossip_node_id: String,
    pub generation: u64,
    pub gossip_addr: SocketAddr,
    pub heartbeat: u64,
    pub verdict: DetectorVerdict,
    pub is_self: bool,
    pub key_values: Vec<(String, String)>,
}

/// A member left out of the list, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub gossip_node_id: String,
    pub generation: u64,
    pub gossip_addr: SocketAddr,
    pub reason: RejectReason,
}

/// Why a member was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    Undecodable(DecodeError),
    ForeignCluster(String),
}

/// The result of one derivation.
#[derive(Debug, Default)]
pub struct Derived {
    /// Sorted by node id.
    pub members: Vec<MemberView>,
    pub rejected: Vec<Rejected>,
}

type GenerationKey = (String, u64);

/// Remembers, per node generation, the last heartbeat value and when it advanced.
#[derive(Debug, Default)]
pub struct LastHeard {
    entries: HashMap<GenerationKey, (u64, Instant)>,
}

impl LastHeard {
    /// Records the samples' heartbeats at `now` and forgets generations no longer present.
    pub fn observe(&mut self, samples: &[MemberSample], now: Instant) {
        let mut next = HashMap::with_capacity(samples.len());
        for sample in samples {
            let key = (sample.gossip_node_id.clone(), sample.generation);
            let entry = match self.entries.get(&key) {
                Some(&(heartbeat, at)) if heartbeat >= sample.heartbeat => (heartbeat, at),
                _ => (sample.heartbeat, now),
            };
            next.insert(key, entry);
        }
        self.entries = next;
    }

    /// Time since the heartbeat of this generation last advanced; zero if never seen.
    pub fn silent_for(&self, node: &str, generation: u64, now: Instant) -> Duration {
        self.entries
            .get(&(node.to_string(), generation))
            .map(|&(_, at)| now.saturating_duration_since(at))
            .unwrap_or_default()
    }
}

/// Derives the member list: newest generation per node, decoded, same cluster only.
pub fn derive_members(
    samples: &[MemberSample],
    cluster_id: &str,
    last_heard: &LastHeard,
    now: Instant,
    suspect_after: Duration,
) -> Derived {
    let mut derived = Derived::default();
    for sample in newest_generations(samples) {
        match decode_sample(sample, cluster_id) {
            Ok(info) => {
                let silent_for = if sample.is_self {
                    Duration::ZERO
                } else {
                    last_heard.silent_for(&sample.gossip_node_id, sample.generation, now)
                };
                derived.members.push(MemberView {
                    info,
                    state: member_state(sample, silent_for, suspect_after),
                    gossip_addr: sample.gossip_addr,
                    silent_for,
                    is_self: sample.is_self,
                });
            }
            Err(reason) => derived.rejected.push(Rejected {
                gossip_node_id: sample.gossip_node_id.clone(),
                generation: sample.generation,
                gossip_addr: sample.gossip_addr,
                reason,
            }),
        }
    }
    derived.members.sort_by_key(|member| member.info.node_id);
    derived
}

/// The state rule documented at the top of this module.
pub fn member_state(
    sample: &MemberSample,
    silent_for: Duration,
    suspect_after: Duration,
) -> MemberState {
    let heard_recently = silent_for <= suspect_after;
    match sample.verdict {
        _ if sample.is_self => MemberState::Alive,
        DetectorVerdict::Live if heard_recently => MemberState::Alive,
        // chitchat calls a node with fewer than two heartbeats dead; one we heard from
        // recently is joining or restarting, not dead.
        DetectorVerdict::Dead if !heard_recently => MemberState::Dead,
        _ => MemberState::Suspect,
    }
}

/// Keeps, for each gossip node id, only the sample with the highest generation.
fn newest_generations(samples: &[MemberSample]) -> impl Iterator<Item = &MemberSample> {
    let mut newest: BTreeMap<&str, &MemberSample> = BTreeMap::new();
    for sample in samples {
        let slot = newest.entry(&sample.gossip_node_id).or_insert(sample);
        if sample.generation > slot.generation {
            *slot = sample;
        }
    }
    newest.into_values()
}

fn decode_sample(sample: &MemberSample, cluster_id: &str) -> Result<NodeInfo, RejectReason> {
    let pairs = sample
        .key_values
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()));
    let decoded = NodeInfo::decode(&sample.gossip_node_id, sample.generation, pairs)
        .map_err(RejectReason::Undecodable)?;
    // chitchat already refuses SYNs from other clusters; this is the second check.
    if decoded.info.cluster_id != cluster_id {
        return Err(RejectReason::ForeignCluster(decoded.info.cluster_id));
    }
    Ok(decoded.info)
}

/// Looks up a member by node id in a derived list.
pub fn find_member(members: &[MemberView], node_id: NodeId) -> Option<&MemberView> {
    members.iter().find(|member| member.info.node_id == node_id)
}

#[cfg(test)]
mod tests;
