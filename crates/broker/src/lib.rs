//! The broker domain: the one facade every transport (native TCP, HTTP/SSE,
//! MQTT) calls. It owns topics and their partition logs, the produce and
//! fetch rules (validation, limits, idempotent-producer dedup), offset
//! lookups, and consumer groups with durable committed offsets.
//!
//! It owns no sockets, tasks or clocks: time comes in as `now_ms`, and the
//! server drives [`Broker::tick`] (session expiry, rebalance deadlines,
//! retention) and [`Broker::sync_logs`] (interval fsync). Long-poll fetches
//! and blocking group joins use `tokio::sync` channels, which do no I/O.
//!
//! Map of the crate: [`Broker`] (the facade, `broker/`) routes each call to
//! a [`topic`] and its [`partition`]s (validated by [`produce`], deduped by
//! [`producer_state`]), to the [`group`] coordinator, or to the committed
//! [`offsets`] store; [`names`] is a pure rule shared
//! with clients; [`data_dir`] owns the files outside the partition logs.

mod broker;
mod config;
pub mod data_dir;
mod error;
pub mod group;
pub mod names;
pub mod offsets;
pub mod partition;
pub mod produce;
pub mod producer_ids;
pub mod producer_state;
pub mod topic;
mod topic_settings;

pub use broker::{Broker, CheckedCommit, TopicCatalog};
/// The key partitioner every transport shares (Kafka's murmur2), defined once
/// in the record crate.
pub use citystream_record::{murmur2, partition_for_key};
pub use config::{BrokerConfig, COMPACTION_BUFFER_BYTES_MIN, FsyncPolicy, LogConfig};
pub use error::{BrokerError, LeaderHint};
pub use group::{
    GroupOverview, GroupPartition, JoinRequest, JoinResult, JoinTicket, MemberOverview,
};
pub use partition::{
    FetchOutcome, OffsetQuery, ProduceOutcome, read_committed, rebuild_producer_states,
};
pub use topic::{PartitionInfo, TopicInfo, log_config};
pub use topic_settings::{
    COMPACTED_SEGMENT_ROLL_MS_DEFAULT, Cleanup, TOMBSTONE_RETENTION_MS_DEFAULT, TopicSettings,
    UnknownCleanup,
};

#[cfg(test)]
mod tests {
    /// The facade can be shared across the server's tasks and threads.
    #[test]
    fn broker_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<super::Broker>();
    }
}
