//! The openraft type configuration of a partition group ([`Tc`]) and the
//! small types it names: the entry payload ([`BatchData`]), the apply
//! response ([`Appended`]) and the node address ([`PeerAddr`]).
//!
//! It also owns the one mapping between openraft's log indexes and the Raft
//! index stored in a batch header. openraft numbers entries from 0 (the
//! membership entry that `initialize` writes is index 0), while the log
//! crate numbers batches from 1 and keeps 0 for "no entry". The stored index
//! is therefore always the openraft index plus one; every conversion goes
//! through [`stored_index`] and [`raft_index`].

use std::fmt;

use bytes::Bytes;
use openraft_rt::deterministic_rng::DeterministicRng;
use openraft_rt_tokio::TokioRuntime;

use crate::state_machine::PartitionStateMachine;

/// One record batch as a Raft payload: the encoded batch, moved as opaque
/// bytes (no per-record work). On a follower and when read back from the
/// log, the header already carries the offset, term and Raft index the
/// leader's log assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchData {
    pub bytes: Bytes,
    /// Leader-local correlation id for `acks=leader` (0: none). Never
    /// encoded in the batch and never replicated meaningfully.
    pub token: u64,
}

impl BatchData {
    /// A payload for a batch built by a producer (header fields that the
    /// leader assigns are still 0).
    pub fn new(bytes: Bytes) -> BatchData {
        BatchData { bytes, token: 0 }
    }
}

impl fmt::Display for BatchData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match citystream_record::BatchHeader::decode(&self.bytes) {
            Ok(header) => write!(
                f,
                "batch(records={}, bytes={})",
                header.record_count,
                self.bytes.len()
            ),
            Err(_) => write!(f, "batch(undecodable, bytes={})", self.bytes.len()),
        }
    }
}

/// Where an applied entry landed in the partition: its batch's first and
/// last offset. The response of a quorum-acked write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Appended {
    pub base_offset: u64,
    pub last_offset: u64,
}

/// The address of a broker's peer (Raft) port, as the metadata knows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PeerAddr {
    pub peer: String,
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.peer)
    }
}

/// The async runtime of every group: tokio, with openraft's randomness
/// (election timeouts, tick phases) drawn from a seeded RNG, so a
/// simulation can replay a run. `Raft::new` must therefore run inside
/// [`DeterministicRng::scope`]; see [`crate::seeded`].
pub type Runtime = DeterministicRng<TokioRuntime>;

openraft::declare_raft_types!(
    /// Type configuration of a partition group (decision 0005 §1).
    pub Tc:
        D = BatchData,
        R = Appended,
        // A broker id (u32) widened: openraft's storage suite needs `From<u64>`.
        NodeId = u64,
        Node = PeerAddr,
        Term = u64,
        // Log id = (term, index); the committed leader id is the term alone.
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
        AsyncRuntime = Runtime,
);

/// A running partition group.
pub type PartitionRaft = openraft::Raft<Tc, PartitionStateMachine>;

/// The Raft index a batch header stores for openraft log index `index`.
pub fn stored_index(index: u64) -> u64 {
    index
        .checked_add(1)
        .expect("openraft log indexes stay below u64::MAX")
}

/// The openraft log index of a batch whose header stores `stored`; `None`
/// for 0, which the log uses for "no entry".
pub fn raft_index(stored: u64) -> Option<u64> {
    stored.checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index 0 (the first openraft entry) is stored as 1, and stored 0
    /// means no entry.
    #[test]
    fn index_mapping_round_trips() {
        assert_eq!(stored_index(0), 1);
        assert_eq!(raft_index(1), Some(0));
        assert_eq!(raft_index(0), None);
        for index in [0, 1, 7, u64::MAX - 1] {
            assert_eq!(raft_index(stored_index(index)), Some(index));
        }
    }
}
