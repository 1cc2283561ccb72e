//! Cluster metadata (decision 0005 §3): which brokers exist, which topics,
//! where each partition's replicas live, the id allocators, and committed
//! consumer-group offsets, as the state machine of the metadata Raft
//! group. Decisions only: this crate owns no sockets and no tasks; the
//! server runs the group (its log is a `citystream_raft::PartitionRaftStorage`)
//! and acts on the published state.
//!
//! Module map: `command` (commands, outcomes, errors, their encoding),
//! `state` (the metadata and `apply`), `placement` (placing, replacing,
//! rebalancing replicas), `state_machine` (openraft's `RaftStateMachine`),
//! `sm_state` (the snapshot file), `config` (openraft settings),
//! `propose` (the leader-side write), `group_offsets` (committed
//! consumer-group offsets, replicated so they survive the coordinator).

mod command;
mod config;
mod group_offsets;
mod placement;
mod propose;
pub mod sm_state;
mod state;
mod state_machine;

pub use command::{
    BrokerAddresses, COMMAND_FORMAT, Committed, DecodeError, MetadataCommand, MetadataError,
    MetadataOutcome, OffsetChange,
};
pub use config::{SNAPSHOT_ENTRIES, metadata_config};
pub use group_offsets::GroupOffsets;
pub use placement::{Candidate, ReassignPartition, place_topic, rebalance, replace_broker};
pub use propose::{ProposeError, propose};
pub use state::{
    BROKER_FIELD_BYTES_MAX, BrokerInfo, BrokerState, MetadataState, PRODUCER_ID_BLOCK_MAX,
    PartitionAssignment, STATE_FORMAT, TopicConfig, TopicId, TopicMeta,
};
pub use state_machine::{
    ApplyResult, COMMAND_KEY, MetadataRaft, MetadataStateMachine, OUTCOMES_MAX, command_batch,
};
