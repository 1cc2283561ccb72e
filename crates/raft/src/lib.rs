//! Raft replication of one partition, on openraft `=0.10.0-alpha.37`
//! (design: `docs/decisions/0005-cluster-replication-design.md`).
//!
//! The partition log *is* the Raft log: one entry is one record batch, and
//! the offsets a batch gets are assigned when Raft appends it, identically
//! on every replica. The state machine only moves the high watermark, below
//! which fetches may read. This crate owns the openraft types, storage and
//! state machine of a group; it owns no sockets and no tasks of its own
//! (the network and the heartbeat ticker belong to the server).
//!
//! Module map: `types` (the type configuration, index mapping), `control`
//! (blank and membership entries as control batches), `leader_acks`
//! (`acks=leader` waiters), `raft_state` (vote, last purged id and
//! committed id file), `log_storage` (`RaftLogStorage`), `log_reader`
//! (`RaftLogReader`), `state_machine` (`RaftStateMachine`, snapshots),
//! `snapshot_file` (the current snapshot, kept across restarts),
//! `retention` (deleting old segments through a snapshot), `compaction`
//! (compacting below the purge point), `snapshot_prefix` (a compacted
//! topic's snapshot carries its log), `unsynced` (group commit of a
//! node's logs under `FsyncPolicy::Interval`), `config` (openraft
//! settings).

mod compaction;
mod config;
mod control;
mod heartbeat;
mod initialize;
mod leader_acks;
mod log_reader;
mod log_storage;
mod raft_state;
mod retention;
mod snapshot_file;
pub mod snapshot_prefix;
mod state_machine;
pub mod testing;
mod types;
mod unsynced;

use std::future::Future;

pub use compaction::{CompactionError, apply_compaction, plan_compaction};
pub use config::{Timing, partition_config};
pub use control::{
    CONTROL_KEY, ControlEntry, ControlError, PartitionMembership, decode_membership_prefix,
    encode_membership,
};
pub use heartbeat::heartbeat_ticker;
pub use initialize::initialize_members;
pub use leader_acks::{LeaderAcks, TooManyWaiting};
pub use log_reader::{LIMITED_READ_BYTES, PartitionLogReader, SharedLog};
pub use log_storage::PartitionRaftStorage;
pub use raft_state::{COMMITTED_RECORDS_MAX, RAFT_STATE_FILE, RaftState};
pub use retention::{RetentionError, apply_retention};
pub use snapshot_file::SNAPSHOT_FILE;
pub use snapshot_prefix::{PrefixChunk, PrefixReader, PrefixRefused};
pub use state_machine::{PartitionSnapshot, PartitionStateMachine};
pub use types::{
    Appended, BatchData, PartitionRaft, PeerAddr, Runtime, Tc, raft_index, stored_index,
};
pub use unsynced::UnsyncedLogs;

/// Runs `future` with openraft's RNG seeded from `seed`. `Raft::new` (and
/// anything that spawns openraft tasks) must run inside it.
pub fn seeded<F: Future>(seed: u64, future: F) -> impl Future<Output = F::Output> {
    Runtime::scope(seed, future)
}
